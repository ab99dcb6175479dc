"""Runs an example program and compares its output with the "Expected output:" block of
its docstring. A line containing "..." matches any text there; "Expected output (any
order):" compares the lines as a multiset. Exits non-zero on a difference.

usage: run_example.py EXAMPLE.py
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap


def expected_of(path):
    with open(path) as fh:
        doc = ast.get_docstring(ast.parse(fh.read())) or ""
    m = re.search(r"^Expected output( \(any order\))?:\n(.*)", doc, re.M | re.S)
    if not m:
        raise SystemExit("%s: no 'Expected output:' block in the docstring" % path)
    lines = textwrap.dedent(m.group(2)).strip("\n").splitlines()
    return [ln.rstrip() for ln in lines], bool(m.group(1))


def matches(pattern, line):
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line) is not None


def main():
    path = os.path.abspath(sys.argv[1])
    want, any_order = expected_of(path)
    root = tempfile.mkdtemp(prefix="shoal-example-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    env = dict(os.environ, SHOAL_ROOT=root)
    # Buffered output, as a program's stdout to a pipe normally is: print(..., flush=True)
    # is then one write, so lines of processes printing at once do not break up (with
    # PYTHONUNBUFFERED the text and its newline are two writes).
    env.pop("PYTHONUNBUFFERED", None)
    try:
        cp = subprocess.run([sys.executable, path], capture_output=True, text=True,
                            timeout=240, env=env, cwd=os.path.dirname(path))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    got = [ln.rstrip() for ln in cp.stdout.strip("\n").splitlines()]
    sys.stdout.write(cp.stdout)
    sys.stderr.write(cp.stderr)
    if cp.returncode != 0:
        raise SystemExit("%s exited with %d" % (path, cp.returncode))
    if any_order:
        ok = sorted(got) == sorted(want)
    else:
        ok = len(got) == len(want) and all(matches(w, g) for w, g in zip(want, got))
    if not ok:
        raise SystemExit("%s: output differs from its docstring.\nexpected:\n  %s\n"
                         "got:\n  %s" % (path, "\n  ".join(want), "\n  ".join(got)))
    print("-- output as documented")


if __name__ == "__main__":
    main()
