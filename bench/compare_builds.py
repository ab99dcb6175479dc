#!/usr/bin/env python3
"""Compares two builds of shoal's C benchmarks in one run: old against new.

    python3 bench/compare_builds.py --old OLD/build/bench --new build/bench

Takes the C cases of run.py whose program is shoal's own (bench_channels, bench_sync)
and exists in both builds, calibrates each case's count once on the new build, then
runs the two builds alternately (old, new, new, old, ...) --repeats times each, so that
a slow spell of the machine falls on both. Prints, per case, the median of each build
and the speed of new relative to old (above 1: new is faster). Runs that other
processes disturbed are redone as run.py does. Speeds are never asserted: a row worse
than --flag (default 0.95) is marked for a human to look at.
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: the cases and the runner)

PROGRAMS = ("bench_channels", "bench_sync")


def cases():
    return [c for c in run.all_cases() if c.prog in PROGRAMS]


def speed(c, value):
    """Higher is better for every kind."""
    return value if c.kind == "tput" else 1.0 / value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="bench directory of the old build")
    ap.add_argument("--new", required=True, help="bench directory of the new build")
    ap.add_argument("--repeats", type=int, default=5, help="runs per build and case")
    ap.add_argument("--window-ms", type=int, default=200)
    ap.add_argument("--only", default=None, help="regular expression on the case name")
    ap.add_argument("--flag", type=float, default=0.95,
                    help="mark rows where new/old speed is below this")
    ap.add_argument("--patience", type=float, default=300.0)
    args = ap.parse_args()
    args.quick, args.retries, args.timeout = False, 3, 60
    args.patience = run.Patience(args.patience)
    args.machine_busy, args.py_skip, args.py_env, args.lang_env = True, None, None, None

    root = tempfile.mkdtemp(prefix="shoal-cmp-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    env = dict(os.environ, SHOAL_ROOT=root, SHOAL_DOMAIN="bench")
    rows = []
    try:
        for c in cases():
            if args.only and not re.search(args.only, c.case):
                continue
            pair = {}
            for which in ("old", "new"):
                d = getattr(args, which)
                pair[which] = run.Case(c.kind, c.key, c.label, c.prog, c.case, c.size)
                if not os.access(os.path.join(d, c.prog), os.X_OK):
                    pair[which].skip = f"{c.prog} not in {which} build"
            if pair["old"].skip or pair["new"].skip:
                continue
            args.bin_dir = args.new
            count = run.calibrate(args, pair["new"], env)
            if not count:
                rows.append((c, None, None, pair["new"].skip or pair["new"].failure))
                continue
            pair["new"].results.clear()
            for rep in range(args.repeats):
                order = ("old", "new") if rep % 2 == 0 else ("new", "old")
                for which in order:
                    args.bin_dir = getattr(args, which)
                    res = run.measure(args, pair[which], count, env)
                    if res is not None:
                        pair[which].results.append(res)
            why = pair["old"].skip or pair["old"].failure or pair["new"].failure
            if why or not pair["old"].results or not pair["new"].results:
                rows.append((c, None, None, why or "no result"))
                continue
            rows.append((c, pair["old"].median(), pair["new"].median(), None))
            print(f"{c.case} size={c.size}: done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    unit = {"tput": "msgs/s", "rtt": "ns", "op": "ns/op"}
    print(f"| case | size | unit | old (median of {args.repeats}) | new | new/old speed |")
    print("|---|---:|---|---:|---:|---:|")
    worse = 0
    for c, old, new, why in rows:
        if why:
            print(f"| {c.case} | {c.size} | | n/a: {why} | | |")
            continue
        r = speed(c, new) / speed(c, old)
        mark = " (slower)" if r < args.flag else ""
        worse += r < args.flag
        print(f"| {c.case} | {c.size} | {unit[c.kind]} | {old:,.0f} | {new:,.0f} | "
              f"{r:.2f}{mark} |")
    print(f"{len(rows)} cases, {worse} below {args.flag}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
