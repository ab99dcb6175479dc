#!/usr/bin/env python3
"""Sets shoal's services beside gRPC C++ on the same echo method and prints ratios.

    bench/peers/grpc_compare.py --bin-dir build/bench [--size 64] [--count 20000]

Runs each pair --repeats times, the two sides alternately (bench_rpc for shoal,
bench_grpc for gRPC, built when scripts/setup-bench-grpc.sh installed gRPC C++), and
prints, per pair, the median over the runs of each side's median round trip (or
rate) and how many times faster shoal is. Timing means something only on an
otherwise idle machine.
"""
import argparse
import os
import statistics
import subprocess
import sys

# (label, shoal case, gRPC case, kind): round trips compare medians, throughputs rates.
PAIRS = [
    ("unary round trip, server polling (shm) vs gRPC (Unix socket)",
     "rpc_shm_poll_rtt", "grpc_uds_rtt", "rtt"),
    ("unary round trip, server asleep (shm) vs gRPC asleep (Unix socket)",
     "rpc_shm_sleep_rtt", "grpc_uds_sleep_rtt", "rtt"),
    ("16 calls in flight (shm) vs gRPC (Unix socket)",
     "rpc_shm_tput16", "grpc_uds_tput16", "tput"),
    ("unary round trip, ipc:// vs gRPC (Unix socket)",
     "rpc_ipc_rtt", "grpc_uds_rtt", "rtt"),
    ("unary round trip, tcp:// vs gRPC (TCP), loopback",
     "rpc_tcp_rtt", "grpc_tcp_rtt", "rtt"),
]


def run(prog, case, size, count):
    out = subprocess.run([prog, case, str(size), str(count)], check=True,
                         capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
    sys.exit(f"{prog} {case}: no RESULT line in: {out!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    shoal = os.path.join(a.bin_dir, "bench_rpc")
    grpc = os.path.join(a.bin_dir, "bench_grpc")
    for p in (shoal, grpc):
        if not os.access(p, os.X_OK):
            sys.exit(f"{p}: not built (gRPC C++: scripts/setup-bench-grpc.sh)")
    for label, sc, gc, kind in PAIRS:
        key = "median_ns" if kind == "rtt" else "msgs_per_s"
        runs = {"s": [], "g": []}
        for rep in range(a.repeats):
            order = (("s", shoal, sc), ("g", grpc, gc))
            for side, prog, case in order if rep % 2 == 0 else order[::-1]:
                runs[side].append(float(run(prog, case, a.size, a.count)[key]))
        sv, gv = statistics.median(runs["s"]), statistics.median(runs["g"])
        if kind == "rtt":
            print(f"{label}: shoal {sv / 1000:.2f} us, gRPC {gv / 1000:.2f} us, "
                  f"shoal {gv / sv:.1f}x faster")
        else:
            print(f"{label}: shoal {sv:.0f}/s, gRPC {gv:.0f}/s, shoal {sv / gv:.1f}x")

if __name__ == "__main__":
    main()
