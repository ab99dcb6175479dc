"""Runs mp_suite (CPython's multiprocessing tests on shoal's objects) — or the module
given as the second argument, e.g. mp_manager_suite (its manager tests on
shoal.Manager) — under the start method given as the first argument; exits 77
(CTest's skip) when the installed Python has no `test` package. The suite runs in a
directory of its own: CPython's tests make files with fixed names (tempcwd) in the
current directory, and the variants of one suite may run at once."""

import os
import shutil
import subprocess
import sys
import tempfile

try:
    import test._test_multiprocessing  # noqa: F401
except ImportError as e:
    print("skipped: the test package is not installed (%s)" % e)
    sys.exit(77)

method = sys.argv[1] if len(sys.argv) > 1 else "fork"
module = sys.argv[2] if len(sys.argv) > 2 else "mp_suite"
here = os.path.dirname(os.path.abspath(__file__))
path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
env = dict(os.environ, SHOAL_MP_START=method, PYTHONPATH=path)
work = tempfile.mkdtemp(prefix="shoal-mp-suite-")
try:
    rc = subprocess.call([sys.executable, "-m", "unittest", "-v", module], cwd=work,
                         env=env)
finally:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
