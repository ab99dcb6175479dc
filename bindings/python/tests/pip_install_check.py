"""Installs the package with pip, offline and without build isolation (as on a fresh
Debian machine with python3-pip and python3-setuptools), from a copy of the sources,
then checks that the installed package works and finds libshoal in each documented
place (or says clearly that it cannot).

usage: pip_install_check.py BINDINGS_PYTHON_DIR   (SHOAL_LIBRARY: the built library)
"""

import os
import shutil
import subprocess
import sys
import tempfile


def run(cmd, env, check=True):
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    if check and cp.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s\n%s" % (cp.returncode, " ".join(cmd),
                                                      cp.stdout, cp.stderr))
    return cp


CAN_BUILD = """
import sys
import setuptools
try:
    import wheel  # setuptools before 70.1 builds wheels with it
except ImportError:
    v = tuple(int(x) for x in setuptools.__version__.split(".")[:2])
    sys.exit(0 if v >= (70, 1) else 1)
import pip
"""


def builder():
    """An interpreter that can build the package offline: this one, or Debian's
    (python3-pip, python3-setuptools, python3-wheel), or None."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(exe) and subprocess.run([exe, "-c", CAN_BUILD],
                                                  capture_output=True).returncode == 0:
            return exe
    return None


def main():
    src = os.path.abspath(sys.argv[1])
    python = builder()
    if python is None:
        print("SKIP: no python3 with pip, setuptools and wheel (install python3-pip, "
              "python3-setuptools and python3-wheel: scripts/setup-debian.sh)")
        sys.exit(77)
    lib = os.environ["SHOAL_LIBRARY"]
    scratch = tempfile.mkdtemp(prefix="shoal-pip-")
    shm = tempfile.mkdtemp(prefix="shoal-pip-root-",
                           dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        copy = os.path.join(scratch, "src")
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns(
            "tests", "__pycache__", "build", "*.egg-info", "libshoal.so*"))
        site = os.path.join(scratch, "site")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", SHOAL_ROOT=shm)
        run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
             "--no-index", "--no-cache-dir", "--target", site, copy], env)
        env["PYTHONPATH"] = site
        env.pop("SHOAL_PY_EXT_DIR", None)
        env.pop("SHOAL_PY_PURE", None)
        probe = ("import shoal; v = shoal.Value('i', 41); v.value += 1; "
                 "print(shoal.library_path, v.value)")
        # The C extension was compiled by pip, and is used.
        out = run([python, "-c", "from shoal import _lib; print(_lib.speedups.__file__)"],
                  env).stdout.strip()
        assert out.startswith(os.path.join(site, "shoal", "_speedups")), out

        # 1. $SHOAL_LIBRARY
        out = run([python, "-c", probe], env).stdout.split()
        assert out == [lib, "42"], out
        assert os.path.dirname(run([python, "-c",
                                    "import shoal; print(shoal.__file__)"],
                                   env).stdout.strip()).startswith(site)

        # 2. next to the package
        shutil.copy(lib, os.path.join(site, "shoal", "libshoal.so"))
        env2 = {k: v for k, v in env.items() if k != "SHOAL_LIBRARY"}
        out = run([python, "-c", probe], env2).stdout.split()
        assert out == [os.path.join(site, "shoal", "libshoal.so"), "42"], out

        # 3. nowhere: a clear error naming what was tried
        os.remove(os.path.join(site, "shoal", "libshoal.so"))
        env3 = dict(env, SHOAL_LIBRARY=os.path.join(scratch, "missing", "libshoal.so"))
        cp = run([python, "-c", "import shoal"], env3, check=False)
        assert cp.returncode != 0
        assert "cannot load libshoal" in cp.stderr and "SHOAL_LIBRARY" in cp.stderr, \
            cp.stderr
        assert "LibraryNotFound" in cp.stderr, cp.stderr
        print("pip install check passed (with %s)" % python)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
