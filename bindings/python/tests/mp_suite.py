"""CPython's own multiprocessing tests, run on shoal's objects.

The installed Python's ``test._test_multiprocessing`` builds its process test cases
by mixing each ``_Test*`` class with ``ProcessesMixin``, which lists
multiprocessing's objects (``Queue = staticmethod(multiprocessing.Queue)``, ...).
This module does the same with a mixin listing shoal's, for every test class whose
tests exercise those objects, and runs them under the start method named by
``$SHOAL_MP_START`` (fork, spawn or forkserver; default fork):

    SHOAL_MP_START=spawn python3 -m unittest -v mp_suite

The module-level names the suite itself imports from multiprocessing
(``sharedctypes.Value`` and ``copy``, ``shared_memory``) are swapped for shoal's too.
Where the ``test`` package is not installed the module raises SkipTest.

EXCLUDED names the few tests that check multiprocessing's internals, each with the
reason no reimplementation can match them; KNOWN_FAILING the tests of what the
binding still lacks (run as expected failures).
"""

import multiprocessing
import os
import sys
import unittest

try:
    import test._test_multiprocessing as tm
except ImportError as e:  # Debian splits the test package out (libpython3-testsuite)
    raise unittest.SkipTest("the test package is not installed: %s" % e)

import _util

_util.setup_root()

import shoal  # noqa: E402
import shoal.connection  # noqa: E402
import shoal.sharedctypes  # noqa: E402

START = os.environ.get("SHOAL_MP_START", "fork")

# The test classes whose tests use the objects the mixin swaps in. (The others test
# process management, pools, listeners and the heap: multiprocessing's own, which
# shoal re-exports unchanged.)
CLASSES = [
    "_TestQueue", "_TestLock", "_TestSemaphore", "_TestCondition", "_TestEvent",
    "_TestBarrier", "_TestValue", "_TestArray", "_TestConnection", "_TestPoll",
    "_TestPicklingConnections", "_TestSharedCTypes", "_TestSharedMemory",
]

MANAGER = "the Manager (broker) is not part of the binding yet"

# test id (Class.method) -> why it is not run.
EXCLUDED = {
    # Internals of multiprocessing.Queue's feeder thread: it patches
    # multiprocessing.queues.Queue._on_queue_feeder_error and _after_fork, hooks a
    # shoal Queue (no feeder thread: put() is synchronous) does not have.
    "_TestQueue.test_queue_feeder_on_queue_feeder_error":
        "subclasses multiprocessing.queues.Queue to hook its feeder thread",
    # The text of multiprocessing's Event.__repr__ is not an API.
    "_TestEvent.test_repr": "checks the text of multiprocessing's Event.__repr__",
    # reduction.send_handle(conn, fd, pid) wraps conn.fileno() in a Unix socket and
    # passes the descriptor with SCM_RIGHTS: only a socket-based Connection can.
    # (Descriptors do travel through a shoal Connection's send(): pickled by
    # multiprocessing's reduction, see test_pipe.)
    "_TestConnection.test_fd_transfer": "send_handle needs a socket Connection",
    "_TestConnection.test_large_fd_transfer": "send_handle needs a socket Connection",
    "_TestConnection.test_missing_fd_transfer": "send_handle needs a socket Connection",
    # Mock multiprocessing.shared_memory's private file-name generator.
    "_TestSharedMemory.test_shared_memory_cleaned_after_process_termination":
        "counts on multiprocessing's resource tracker and its warning text",
    "_TestSharedMemory.test_shared_memory_untracking":
        "runs multiprocessing's resource tracker in a subprocess",
    "_TestSharedMemory.test_shared_memory_tracking":
        "runs multiprocessing's resource tracker in a subprocess",
    "_TestSharedMemory.test_shared_memory_SharedMemoryServer_ignores_sigint": MANAGER,
    "_TestSharedMemory.test_shared_memory_SharedMemoryManager_basics": MANAGER,
    "_TestSharedMemory.test_shared_memory_SharedMemoryManager_reuses_resource_tracker":
        MANAGER,
}


# test id -> what is missing: tests that fail today, run as expected failures so
# that the day they pass is noticed.
KNOWN_FAILING = {}


# test id -> what it waits for: tests that fail, or pass only by luck of timing,
# until a change outside the binding lands; skipped with that reason.
PENDING = {}


class ShoalProcessesMixin(tm.BaseMixin):
    """ProcessesMixin with shoal's objects."""

    TYPE = "processes"
    Process = multiprocessing.Process
    connection = multiprocessing.connection
    current_process = staticmethod(multiprocessing.current_process)
    parent_process = staticmethod(multiprocessing.parent_process)
    active_children = staticmethod(multiprocessing.active_children)
    set_executable = staticmethod(multiprocessing.set_executable)
    Pool = staticmethod(multiprocessing.Pool)
    Pipe = staticmethod(shoal.Pipe)
    Queue = staticmethod(shoal.Queue)
    JoinableQueue = staticmethod(shoal.JoinableQueue)
    Lock = staticmethod(shoal.Lock)
    RLock = staticmethod(shoal.RLock)
    Semaphore = staticmethod(shoal.Semaphore)
    BoundedSemaphore = staticmethod(shoal.BoundedSemaphore)
    Condition = staticmethod(shoal.Condition)
    Event = staticmethod(shoal.Event)
    Barrier = staticmethod(shoal.Barrier)
    Value = staticmethod(shoal.Value)
    Array = staticmethod(shoal.Array)
    RawValue = staticmethod(shoal.RawValue)
    RawArray = staticmethod(shoal.RawArray)


def _swap_module_names():
    # What the suite imported at its top from multiprocessing, used by the tests
    # directly instead of through the mixin.
    tm.Value = shoal.sharedctypes.Value
    if hasattr(shoal.sharedctypes, "copy"):
        tm.copy = shoal.sharedctypes.copy
    try:
        from shoal import shared_memory
    except ImportError:
        tm.HAS_SHMEM = False
    else:
        tm.shared_memory = shared_memory
        tm.HAS_SHMEM = True


def _skip(reason):
    def skipped(self):
        self.skipTest(reason)
    return skipped


def _rehome_staticmethods(base, body, newname, module):
    """A static method given to a Process pickles by its own qualified name, in the
    suite's module: a spawned child would import only that module, and miss the
    names swapped above. Each gets a wrapper living here (importing this module, the
    child swaps them too)."""
    for attr, obj in vars(base).items():
        if isinstance(obj, staticmethod) and attr not in body:
            fn = obj.__func__

            def wrapper(*args, __fn=fn, **kwargs):
                return __fn(*args, **kwargs)
            wrapper.__name__ = attr
            wrapper.__qualname__ = "%s.%s" % (newname, attr)
            wrapper.__module__ = module
            body[attr] = staticmethod(wrapper)


def install(globs, classes, mixin, excluded, known_failing, pending, prefix="WithShoal"):
    """Puts into globs a test case per class of `classes` of the suite whose
    ALLOWED_TYPES has mixin.TYPE, mixed with `mixin`: the tests of `excluded` and
    `pending` (test id -> reason) skipped, those of `known_failing` expected to fail;
    and the suite's module set-up."""
    _swap_module_names()
    for cname in classes:
        base = getattr(tm, cname, None)
        if base is None or mixin.TYPE not in base.ALLOWED_TYPES:
            continue
        body = {}
        for test_id, reason in list(excluded.items()) + list(pending.items()):
            c, m = test_id.split(".")
            if c == cname and hasattr(base, m):
                body[m] = _skip(reason)
        for test_id in known_failing:
            c, m = test_id.split(".")
            if c == cname and hasattr(base, m):
                body[m] = unittest.expectedFailure(getattr(base, m))
        newname = prefix + cname[1:]
        _rehome_staticmethods(base, body, newname, globs["__name__"])
        cls = type(newname, (base, mixin, unittest.TestCase), body)
        cls.__qualname__ = newname
        cls.__module__ = globs["__name__"]
        globs[newname] = cls
    # The suite's own module set-up (start method, forkserver preload, checks for
    # dangling processes), as install_tests_in_module_dict makes it.
    scratch = {"__name__": globs["__name__"]}
    tm.install_tests_in_module_dict(scratch, START, only_type=mixin.TYPE)
    globs["setUpModule"] = scratch["setUpModule"]
    globs["tearDownModule"] = scratch["tearDownModule"]


install(globals(), CLASSES, ShoalProcessesMixin, EXCLUDED, KNOWN_FAILING, PENDING)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("fork", "spawn", "forkserver"):
        os.environ["SHOAL_MP_START"] = START = sys.argv.pop(1)
    unittest.main()
