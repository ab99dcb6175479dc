"""The broker the shoal.Manager suites share: a test class derived from ManagerCase
has one shoal.Manager (a `shoal broker` process of its own) as `cls.m` for all its
tests, shut down after the last one.

The suites are run as scripts (by CTest, with their directory first on sys.path) and
imported by bindings/python/tests/test_manager_client.py (which puts this directory
on sys.path): both find this module beside them.
"""
import unittest

import shoal


class ManagerCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = shoal.Manager()

    @classmethod
    def tearDownClass(cls):
        cls.m.shutdown()
