"""CPython's own multiprocessing manager tests, run on shoal.Manager.

The installed Python's ``test._test_multiprocessing`` builds its manager test cases
by mixing each ``_Test*`` class that allows the 'manager' type with ``ManagerMixin``,
which starts ``multiprocessing.Manager()`` for the class and hands out its proxies
(``Queue = property(attrgetter('manager.Queue'))``, ...). This module does the same
with ``shoal.Manager()`` (a private ``shoal broker``), through mp_suite's installer,
under the start method named by ``$SHOAL_MP_START`` (default fork):

    SHOAL_MP_START=spawn python3 -m unittest -v mp_manager_suite

EXCLUDED names the tests that check multiprocessing.managers' internals, each with
the reason no reimplementation can match them.
"""

import operator
import unittest

import mp_suite
from mp_suite import tm

import shoal

# The test classes for the 'manager' type whose tests use the proxies the mixin hands
# out. Not these, which test multiprocessing.managers itself rather than the objects:
# _TestPool (manager.Pool: a pool proxied by a server that runs Python callables; the
# broker holds data and never runs client code), _TestMyManager, _TestRemoteManager,
# _TestManagerRestart (subclasses of multiprocessing's BaseManager with register(),
# its server process and its listener on a Python socket).
CLASSES = [
    "_TestQueue", "_TestLock", "_TestSemaphore", "_TestCondition", "_TestEvent",
    "_TestBarrier", "_TestContainers",
]

# test id (Class.method) -> why it is not run.
EXCLUDED = {
    # Its last line asserts that a list nested in a list comes back as a plain list
    # (a copy: changing it changes nothing in the manager). shoal hands out a proxy to
    # the nested list instead, on purpose, so that outer[0].append(1) is not lost
    # (docs/broker.md); everything before that line passes.
    "_TestContainers.test_dict_proxy_nested":
        "asserts that a nested list is handed out as a copy; shoal hands out a proxy",
}

# test id -> what is missing: run as expected failures.
KNOWN_FAILING = {}

# test id -> what it waits for: skipped with that reason.
PENDING = {}


class ShoalManagerMixin(tm.ManagerMixin):
    """ManagerMixin with shoal.Manager()."""

    @classmethod
    def setUpClass(cls):
        tm.BaseMixin.setUpClass.__func__(cls)
        cls.manager = shoal.Manager()

    @classmethod
    def tearDownClass(cls):
        cls.manager.shutdown()
        cls.manager = None
        tm.BaseMixin.tearDownClass.__func__(cls)


mp_suite.install(globals(), CLASSES, ShoalManagerMixin, EXCLUDED, KNOWN_FAILING, PENDING,
                 prefix="WithShoalManager")

if __name__ == "__main__":
    unittest.main()
