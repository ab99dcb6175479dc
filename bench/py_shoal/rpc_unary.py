#!/usr/bin/env python3
"""Python <-> Python unary calls of shoal.rpc over shm://: the latency per call.

  rpc_unary.py [--calls N] [--size BYTES] [--repeats R] [--workers W] [--inline]
               [--handler-threads N] [--timeout SECONDS] [--profile client|server]

A server process (forked from this one) serves a unary echo of bytes (no
serializers: what is measured is the rpc layer, not a message codec); this process
calls it N times per repeat and prints the median and the 10th / 90th percentiles of
the per-call times, in microseconds, as one `RESULT case=py_rpc_unary ...` line.
--workers and --inline pick the server's way of running handlers (rpc.server's
max_workers and inline_unary); --handler-threads N sets how many Python threads a
server without workers keeps in shoal_rpc_server_work (0: each call on a thread C
starts for it, as before they existed). --timeout gives each call a timeout.
--profile runs cProfile on one side (the client in this process, or the server's
handler thread) and prints the functions by total time.

libshoal: $SHOAL_LIBRARY (the shoal package finds it as usual); PYTHONPATH must
reach bindings/python.
"""
import argparse
import cProfile
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time

from shoal import rpc

SERVICE = "bench.Echo"


def serve(address, root, profile, ready_w, workers, inline):
    prof = cProfile.Profile() if profile else None

    def echo(request, context):
        return request

    if prof is not None:
        def echo(request, context, _echo=echo):  # noqa: F811
            prof.enable()  # counts the rest of the call on this thread from here
            return _echo(request, context)
    server = rpc.server(max_workers=workers, root=root, inline_unary=inline)
    server.add_generic_handlers((rpc.method_handlers_generic_handler(
        SERVICE, {"Echo": rpc.unary_unary_rpc_method_handler(echo)}),))
    server.add_port(address)
    server.start()
    if prof is not None:
        signal.signal(signal.SIGTERM, lambda *a: (prof.disable(), _report(prof),
                                                   os._exit(0)))
    os.write(ready_w, b"r")
    server.wait_for_termination()


def _report(prof):
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--inline", action="store_true")
    ap.add_argument("--handler-threads", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=None, help="each call's timeout")
    ap.add_argument("--profile", choices=("client", "server"))
    args = ap.parse_args()
    if args.handler_threads is not None:
        rpc._HANDLER_THREADS = args.handler_threads
    root = tempfile.mkdtemp(prefix="shoal-rpc-bench-")
    address = "shm://py-rpc-bench-%d" % os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            serve(address, root, args.profile == "server", w, args.workers, args.inline)
        finally:
            os._exit(0)
    os.close(w)
    os.read(r, 1)
    ch = rpc.channel(address, root=root)
    echo = ch.unary_unary("/%s/Echo" % SERVICE)
    payload = b"x" * args.size
    for _ in range(2000):  # warm up
        assert echo(payload) == payload
    prof = cProfile.Profile() if args.profile == "client" else None
    times = []
    for _ in range(args.repeats):
        if prof is not None:
            prof.enable()
        for _ in range(args.calls):
            t0 = time.perf_counter_ns()
            echo(payload, timeout=args.timeout)
            times.append(time.perf_counter_ns() - t0)
        if prof is not None:
            prof.disable()
    ch.close()
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    if prof is not None:
        _report(prof)
    q = statistics.quantiles(times, n=10)
    mode = ("inline" if args.inline else "workers%d" % args.workers if args.workers
            else "threads%d" % rpc._HANDLER_THREADS)
    print("RESULT case=py_rpc_unary server=%s timeout=%s size=%d calls=%d median_us=%.1f p10_us=%.1f "
          "p90_us=%.1f" % (mode, args.timeout, args.size, len(times), statistics.median(times) / 1e3,
                           q[0] / 1e3, q[-1] / 1e3))


if __name__ == "__main__":
    main()
