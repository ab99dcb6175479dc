#!/usr/bin/env python3
"""Python multiprocessing, measured the way the C programs measure the other peers.

Run as `mp_bench.py CASE SIZE COUNT`; prints one `RESULT case=... key=value ...` line
(or `SKIP case=... reason=...`), like every bench program.

  mp_queue, mp_pipe            throughput, producer -> consumer: Queue(maxsize=1024)
                               put/get of bytes; Pipe(duplex=False) send_bytes/recv_bytes
  mp_queue_rtt, mp_pipe_rtt    ping-pong round trip (two Queues; one duplex Pipe)
  mp_lock                      Lock acquire + release, one process
  mp_value_read, mp_value_write  Value('q').value (the default lock taken each time)
  mp_value_add                 with v.get_lock(): v.value += 1

The two sides run in processes forked from this one and pinned to distinct CPUs, as
in the C programs.
"""
import multiprocessing as mp
import os
import struct
import sys
import time

CAPACITY = 1024  # as BENCH_CAPACITY in common.h


def warm_of(count):
    return min(count // 10, 1000)


def pin(slot):
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[slot % len(cpus)]})
    except (AttributeError, OSError):
        pass


def message(seq, pad):
    return struct.pack("<Q", seq) + pad


def check(what, msg, want, size):
    if len(msg) != size:
        raise SystemExit(f"bench: {what}: {len(msg)} bytes, expected {size}")
    got = struct.unpack_from("<Q", msg)[0]
    if got != want:
        raise SystemExit(f"bench: {what}: message {want} arrived as {got}")


# ---- throughput -------------------------------------------------------------------


def producer(kind, chan, size, total, barrier):
    pin(0)
    pad = bytes(size - 8)
    barrier.wait()
    if kind == "queue":
        put = chan.put
        for i in range(total):
            put(message(i, pad))
    else:
        send = chan.send_bytes
        for i in range(total):
            send(message(i, pad))


def consumer(kind, chan, size, warm, total, barrier, out):
    pin(1)
    get = chan.get if kind == "queue" else chan.recv_bytes
    barrier.wait()
    t0 = 0
    for i in range(total):
        if i == warm:
            t0 = time.monotonic_ns()
        check(kind, get(), i, size)
    out[0] = t0
    out[1] = time.monotonic_ns()


def run_tput(ctx, kind, size, count):
    warm = warm_of(count)
    total = warm + count
    barrier = ctx.Barrier(2)
    out = ctx.Array("q", 2, lock=False)
    if kind == "queue":
        q = ctx.Queue(maxsize=CAPACITY)
        tx = rx = q
    else:
        rx, tx = ctx.Pipe(duplex=False)
    procs = [
        ctx.Process(target=producer, args=(kind, tx, size, total, barrier)),
        ctx.Process(target=consumer, args=(kind, rx, size, warm, total, barrier, out)),
    ]
    finish(procs)
    dt = out[1] - out[0]
    if dt <= 0:
        raise SystemExit("bench: empty timed window")
    return f"msgs_per_s={count * 1e9 / dt:.1f} elapsed_ns={dt}"


# ---- round trip -------------------------------------------------------------------


def ping(kind, ends, size, warm, count, barrier, out):
    pin(0)
    pad = bytes(size - 8)
    if kind == "queue":
        send, recv = ends[0].put, ends[1].get
    else:
        send, recv = ends[0].send_bytes, ends[0].recv_bytes
    lat = []
    now = time.monotonic_ns
    barrier.wait()
    for i in range(warm + count):
        t = now()
        send(message(i, pad))
        reply = recv()
        if i >= warm:
            lat.append(now() - t)
        check(kind + " reply", reply, i, size)
    lat.sort()
    out[0] = lat[len(lat) // 2]
    out[1] = lat[min(int(len(lat) * 0.99), len(lat) - 1)]
    out[2] = sum(lat) / len(lat)


def pong(kind, ends, size, total, barrier):
    pin(1)
    if kind == "queue":
        send, recv = ends[1].put, ends[0].get
    else:
        send, recv = ends[1].send_bytes, ends[1].recv_bytes
    barrier.wait()
    for i in range(total):
        msg = recv()
        check(kind + " request", msg, i, size)
        send(msg)


def run_rtt(ctx, kind, size, count):
    warm = warm_of(count)
    barrier = ctx.Barrier(2)
    out = ctx.Array("d", 3, lock=False)
    if kind == "queue":
        ends = (ctx.Queue(maxsize=CAPACITY), ctx.Queue(maxsize=CAPACITY))
    else:
        ends = ctx.Pipe(duplex=True)
    procs = [
        ctx.Process(target=ping, args=(kind, ends, size, warm, count, barrier, out)),
        ctx.Process(target=pong, args=(kind, ends, size, warm + count, barrier)),
    ]
    finish(procs)
    return f"median_ns={out[0]:.1f} p99_ns={out[1]:.1f} mean_ns={out[2]:.1f}"


def finish(procs):
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    bad = [p for p in procs if p.exitcode != 0]
    for p in procs:
        if p.exitcode is None:
            p.kill()
            p.join()
    if bad:
        raise SystemExit(f"bench: child failed (exit codes {[p.exitcode for p in procs]})")


# ---- synchronisation (one process) ------------------------------------------------


def run_op(ctx, case, count):
    pin(0)
    now = time.monotonic_ns
    if case == "mp_lock":
        lk = ctx.Lock()
        acq, rel = lk.acquire, lk.release
        t0 = now()
        for _ in range(count):
            acq()
            rel()
        dt = now() - t0
    else:
        v = ctx.Value("q", 0)
        if case == "mp_value_read":
            t0 = now()
            for _ in range(count):
                v.value
            dt = now() - t0
        elif case == "mp_value_write":
            t0 = now()
            for i in range(count):
                v.value = i
            dt = now() - t0
        else:
            lk = v.get_lock()
            t0 = now()
            for _ in range(count):
                with lk:
                    v.value += 1
            dt = now() - t0
            if v.value != count:
                raise SystemExit(f"bench: value is {v.value}, expected {count}")
    return f"ns_per_op={dt / count:.2f} elapsed_ns={dt}"


CASES = {
    "mp_queue": lambda ctx, s, n: run_tput(ctx, "queue", s, n),
    "mp_pipe": lambda ctx, s, n: run_tput(ctx, "pipe", s, n),
    "mp_queue_rtt": lambda ctx, s, n: run_rtt(ctx, "queue", s, n),
    "mp_pipe_rtt": lambda ctx, s, n: run_rtt(ctx, "pipe", s, n),
    "mp_lock": lambda ctx, s, n: run_op(ctx, "mp_lock", n),
    "mp_value_read": lambda ctx, s, n: run_op(ctx, "mp_value_read", n),
    "mp_value_write": lambda ctx, s, n: run_op(ctx, "mp_value_write", n),
    "mp_value_add": lambda ctx, s, n: run_op(ctx, "mp_value_add", n),
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in CASES:
        sys.exit(f"usage: mp_bench.py CASE SIZE COUNT\ncases: {' '.join(CASES)}")
    case, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if size < 8 or count < 1:
        sys.exit("mp_bench.py: SIZE must be >= 8 and COUNT >= 1")
    try:
        ctx = mp.get_context("fork")
        ctx.Lock()  # needs working POSIX semaphores
    except (OSError, ValueError) as e:
        print(f"SKIP case={case} reason=multiprocessing:{type(e).__name__}")
        return
    res = CASES[case](ctx, size, count)
    if case in ("mp_lock", "mp_value_read", "mp_value_write", "mp_value_add"):
        size = 8
    print(f"RESULT case={case} size={size} count={count} {res}", flush=True)


if __name__ == "__main__":
    main()
