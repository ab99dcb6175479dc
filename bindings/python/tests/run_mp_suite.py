"""Runs mp_suite (CPython's multiprocessing tests on shoal's objects) — or the module
given as the second argument, e.g. mp_manager_suite (its manager tests on
shoal.Manager) — under the start method given as the first argument; exits 77
(CTest's skip) when the installed Python has no `test` package."""

import os
import subprocess
import sys

try:
    import test._test_multiprocessing  # noqa: F401
except ImportError as e:
    print("skipped: the test package is not installed (%s)" % e)
    sys.exit(77)

method = sys.argv[1] if len(sys.argv) > 1 else "fork"
module = sys.argv[2] if len(sys.argv) > 2 else "mp_suite"
env = dict(os.environ, SHOAL_MP_START=method)
here = os.path.dirname(os.path.abspath(__file__))
sys.exit(subprocess.call([sys.executable, "-m", "unittest", "-v", module],
                         cwd=here, env=env))
