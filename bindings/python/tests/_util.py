"""Helpers shared by the binding's tests: a private root directory per test program,
fresh interpreters (processes that share nothing with the test but what they open by
name), and waiting with timeouts."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time


def setup_root():
    """Gives this test program its own SHOAL_ROOT under /dev/shm (inherited by its
    children, forked or not) and removes it when the program exits."""
    if os.environ.get("SHOAL_PYTEST_OWNER"):  # a child of a test: reuse
        return os.environ["SHOAL_ROOT"]
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = tempfile.mkdtemp(prefix="shoal-pytest-%d-" % os.getpid(), dir=base)
    os.environ["SHOAL_ROOT"] = root
    os.environ["SHOAL_PYTEST_OWNER"] = str(os.getpid())
    owner = os.getpid()

    def cleanup():
        if os.getpid() == owner:
            shutil.rmtree(root, ignore_errors=True)

    atexit.register(cleanup)
    return root


def run_py(code, *args, timeout=60, check=True, env=None):
    """Runs `code` in a new python interpreter (not a fork of this one) and returns
    the CompletedProcess; with check, fails unless it exits 0."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    cp = subprocess.run([sys.executable, "-c", textwrap.dedent(code)] + list(args),
                        capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and cp.returncode != 0:
        raise AssertionError("child failed (%d):\n%s\n%s" % (cp.returncode, cp.stdout,
                                                              cp.stderr))
    return cp


def start_py(code, *args, env=None):
    """Starts `code` in a new interpreter; returns the Popen (stdout piped)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)


def segments_named(prefix):
    """The names of the segments of this program's root (every domain) that start
    with prefix."""
    root = os.environ["SHOAL_ROOT"]
    names = []
    for d in os.listdir(root):
        if os.path.isdir(os.path.join(root, d)):
            names += [n for n in os.listdir(os.path.join(root, d)) if n.startswith(prefix)]
    return names


def wait_until(pred, timeout=10.0, step=0.005):
    """Polls pred() until true; returns whether it became true in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def source_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("SHOAL_SOURCE_DIR") or os.path.abspath(
        os.path.join(here, "..", "..", ".."))


def codegen_tools():
    """(protoc, plugin) from the build (SHOAL_PROTOC, SHOAL_PLUGIN), or None."""
    protoc = os.environ.get("SHOAL_PROTOC") or shutil.which("protoc")
    plugin = os.environ.get("SHOAL_PLUGIN")
    if not protoc or not plugin or not os.path.exists(plugin):
        return None
    return protoc, plugin


def generate(out_dir, include_dirs, protos, lang="python"):
    """Runs the schema compiler on protos (paths relative to an include dir) into
    out_dir. Raises AssertionError with protoc's message when it fails."""
    protoc, plugin = codegen_tools()
    inc = list(include_dirs) + [os.path.join(source_dir(), "schemas")]
    cmd = [protoc, "--plugin=protoc-gen-shoal=" + plugin,
           "--shoal_out=lang=%s:%s" % (lang, out_dir)] + ["-I" + d for d in inc] + \
        list(protos)
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        raise AssertionError("protoc failed: %s\n%s" % (" ".join(cmd), cp.stderr))
    return cp
