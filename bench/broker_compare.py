#!/usr/bin/env python3
"""Sets shoal's Manager broker beside multiprocessing.Manager and Redis; prints ratios.

    python3 bench/broker_compare.py --build-dir build [--repeats 5] [--quick]
        [--only python|redis|rust] [--ops "dict set,dict get"] [--clients 1]
        [--transports shm]

Part 1, Python clients: shoal.Manager (the broker over shm://, over tcp:// on
loopback, and over shm:// with --data-dir: every write committed to LMDB and fsynced
before its reply) against multiprocessing.Manager, for dict set, dict get, list
append and a proxied lock's acquire + release, with 1 and 4 client processes.
shoal runs each twice: unpipelined (every call waits for its reply:
managers.pipeline_depth = 0) and pipelined (the default: writes go out without
waiting). multiprocessing has no pipelining; its one figure is the baseline of both.

Part 2, C clients: redis-server, started here on a free loopback port with no
persistence (and once more with appendfsync always, beside the durable broker),
measured by redis-benchmark for SET and GET at -P 1 and -P 16, against the broker
measured by bench_broker (shoal/manager.h) with the same depth and clients. Skipped
with a line saying so when redis-server or redis-benchmark is not installed
(scripts/setup-bench-peers.sh installs them).

Part 3, Rust against C: the Rust client (shoal::manager, `shoal-bench broker`, built
in release mode under BUILD/bindings/rust/target) beside bench_broker, same
arguments, same broker, over shm:// and tcp://, for dict set and get at depth 1 and
16 with 1 and 4 clients. Skipped with a line saying so when shoal-bench is not built.

Every case runs --repeats times, all cases interleaved (a slow spell hits every row
alike); the figures are medians of the runs. Timing means something only on an
otherwise idle machine; --quick is a smoke run (tiny counts, one repeat).
"""
import argparse
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

OPS = ("dict set", "dict get", "list append", "lock acquire+release")
CLIENTS = (1, 4)
TARGET_UNPIPELINED, TARGET_PIPELINED = 10.0, 50.0
TARGET_REDIS_SHM, TARGET_REDIS_TCP = 2.0, 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- brokers ----------------------------------------------------------------------------


class Broker:
    """A `shoal broker` process of this run."""

    def __init__(self, cli, address, data_dir=None, token=None, tcp=None):
        self.address, self.token, self.tcp = address, token, tcp
        cmd = [cli, "broker", "--listen", address] + (["--listen", tcp] if tcp else [])
        if data_dir:
            cmd += ["--data-dir", data_dir]
        if token:
            tf = os.path.join(tempfile.mkdtemp(prefix="shoal-bench-"), "token")
            with open(tf, "w") as f:
                f.write(token)
            os.chmod(tf, 0o600)
            cmd += ["--token-file", tf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for line in self.proc.stdout:
            if line.strip() == b"shoal broker: ready":
                break
        else:
            sys.exit("broker_compare: %s did not start" % " ".join(cmd))
        self.proc.stdout.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Redis:
    """A redis-server of this run on a free loopback port."""

    def __init__(self, durable, workdir):
        self.port = free_port()
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--dir", workdir, "--daemonize", "no",
               "--protected-mode", "yes", "--loglevel", "warning"]
        cmd += (["--appendonly", "yes", "--appendfsync", "always"] if durable else
                ["--appendonly", "no"])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.01)
        sys.exit("broker_compare: redis-server did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- part 1: Python clients -------------------------------------------------------------


def _py_client(kind, target, op, count, pipelined, barrier, out):
    """One client process: count operations op on the objects named in target."""
    if kind == "shoal":
        from shoal import managers
        managers.pipeline_depth = 64 if pipelined else 0
    d, l, lk = target
    if op == "dict set":
        def one(i):
            d["k"] = i
    elif op == "dict get":
        def one(i):
            d["k"]
    elif op == "list append":
        def one(i):
            l.append(i)
    else:
        def one(i):
            lk.acquire()
            lk.release()
    for i in range(min(100, count)):  # the session opened, warm
        one(i)
    if kind == "shoal":
        managers.flush()
    barrier.wait()
    t0 = time.monotonic()
    for i in range(count):
        one(i)
    if kind == "shoal":
        managers.flush()
    out.put((t0, time.monotonic()))


def py_case(kind, target, op, nclients, count, pipelined):
    """Operations per second of nclients processes, count operations each."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(nclients), ctx.Queue()
    ps = [ctx.Process(target=_py_client,
                      args=(kind, target, op, count, pipelined, barrier, out))
          for _ in range(nclients)]
    for p in ps:
        p.start()
    spans = []
    while len(spans) < nclients:
        try:
            spans.append(out.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in ps):
                for p in ps:
                    p.kill()
                sys.exit("broker_compare: a %s client failed (%s)" % (kind, op))
    for p in ps:
        p.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return nclients * count / wall


def start_brokers(cli, tag):
    """A memory-only broker on shm:// and tcp:// (one broker: the objects are made over
    shm:// and reached over either) and a durable one on shm://."""
    token = "bench-token-%d" % os.getpid()
    tcp = "tcp://127.0.0.1:%d" % free_port()
    durable_dir = tempfile.mkdtemp(prefix="shoal-bench-lmdb-")
    return (Broker(cli, "shm://bench-broker-%s-%d" % (tag, os.getpid()), token=token,
                   tcp=tcp),
            Broker(cli, "shm://bench-broker-%sd-%d" % (tag, os.getpid()),
                   data_dir=durable_dir), durable_dir)


def part_python(a, cli):
    mem, durable, durable_dir = start_brokers(cli, "py")
    try:
        run_python(a, mem, durable)
    finally:
        mem.stop()
        durable.stop()
        shutil.rmtree(durable_dir, ignore_errors=True)


def run_python(a, mem, durable):
    import shoal
    targets = {}
    # nng is not fork-safe: this process never opens a tcp:// session (the clients,
    # forked, do), so the tcp proxies are the shm ones renamed
    for name, b in (("shm", mem), ("durable", durable)):
        m = shoal.Manager(address=b.address)
        targets[name] = (m.dict(k=0), m.list(), m.Lock())
    targets["tcp"] = tuple(type(p)(mem.tcp, mem.token.encode(), p._name)
                           for p in targets["shm"])
    mpm = multiprocessing.get_context("fork").Manager()
    targets["mp"] = (mpm.dict(k=0), mpm.list(), mpm.Lock())

    cases = []  # (key, kind, target, op, clients, count, pipelined)
    for op in a.ops:
        for n in a.clients:
            cases.append(((op, n, "mp"), "mp", targets["mp"], op, n, a.mp_count, False))
            for t in a.transports:
                for pl in (False, True):
                    count = a.durable_count if t == "durable" else a.count
                    cases.append(((op, n, t, pl), "shoal", targets[t], op, n, count, pl))
    runs = {c[0]: [] for c in cases}
    for rep in range(a.repeats):
        for c in cases if rep % 2 == 0 else cases[::-1]:
            runs[c[0]].append(py_case(*c[1:]))
    mpm.shutdown()

    med = {k: statistics.median(v) for k, v in runs.items()}
    print("\nPython clients: shoal.Manager vs multiprocessing.Manager "
          "(operations/s, all clients; median of %d)" % a.repeats)
    print("%-22s %3s %10s | %-8s %12s %7s | %12s %7s" %
          ("operation", "cl", "mp", "shoal", "unpipelined", "x mp", "pipelined", "x mp"))
    for op in a.ops:
        for n in a.clients:
            base = med[(op, n, "mp")]
            for t in a.transports:
                u, p = med[(op, n, t, False)], med[(op, n, t, True)]
                mark_u = mark(u / base, TARGET_UNPIPELINED) if t == "shm" else ""
                mark_p = mark(p / base, TARGET_PIPELINED) if t == "shm" else ""
                print("%-22s %3d %10.0f | %-8s %12.0f %6.1fx%s | %12.0f %6.1fx%s" %
                      (op, n, base, t, u, u / base, mark_u, p, p / base, mark_p))
    print("(targets over shm://: unpipelined >= %gx, pipelined >= %gx multiprocessing; "
          "* marks a missed one)" % (TARGET_UNPIPELINED, TARGET_PIPELINED))


def mark(ratio, target):
    return " " if ratio >= target else "*"


# ---- part 2: C clients against Redis ----------------------------------------------------


def redis_bench(port, test, depth, clients, count):
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
                          "-n", str(count * clients), "-c", str(clients), "-P", str(depth),
                          "--csv"], check=True, capture_output=True, text=True,
                         timeout=600).stdout
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f and f[0].upper() == test.upper():
            return float(f[1])
    sys.exit("broker_compare: redis-benchmark printed no %s line: %r" % (test, out))


def shoal_bench(prog, op, depth, clients, count, address, token=None):
    """bench_broker's figure (prog: its path, or a command list: shoal-bench broker)."""
    cmd = (prog if isinstance(prog, list) else [prog]) + [op, str(depth), str(count),
                                                         address, str(clients)]
    if token:
        cmd.append(token)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         timeout=600).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return float(dict(kv.split("=", 1) for kv in line.split()[1:])["ops_per_s"])
    sys.exit("broker_compare: %s printed no RESULT: %r" % (" ".join(cmd), out))


def part_redis(a, cli, prog):
    missing = [p for p in ("redis-server", "redis-benchmark") if not shutil.which(p)]
    if missing:
        print("\nRedis: skipped (%s not installed: scripts/setup-bench-peers.sh)" %
              " and ".join(missing))
        return
    if not os.access(prog, os.X_OK):
        print("\nRedis: skipped (%s not built: cmake --build BUILD --target bench_broker)" %
              prog)
        return
    work = tempfile.mkdtemp(prefix="shoal-bench-redis-")
    os.mkdir(os.path.join(work, "aof"))
    mem, durable, durable_dir = start_brokers(cli, "c")
    redis = {"mem": Redis(False, work), "aof": Redis(True, os.path.join(work, "aof"))}
    try:
        run_redis(a, prog, mem, durable, redis)
    finally:
        mem.stop()
        durable.stop()
        for r in redis.values():
            r.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(durable_dir, ignore_errors=True)


# The broker's client rows: CLIENTS threads with a connection each, and the four
# connections driven by one thread, as redis-benchmark drives its -c connections (one
# thread, an event loop); Redis's figure for "4/1" is its -c 4 figure.
REDIS_ROWS = CLIENTS + ("4/1",)


def run_redis(a, prog, mem, durable, redis):
    where = {"shm": (mem.address, None), "tcp": (mem.tcp, mem.token),
             "durable": (durable.address, None)}
    cases = []  # (key, fn)
    for test in ("set", "get"):
        for depth in (1, 16):
            for n in REDIS_ROWS:
                for t in ("shm", "tcp", "durable"):
                    count = a.redis_durable_count if t == "durable" else a.redis_count
                    cases.append(((test, depth, n, t),
                                  (shoal_bench, prog, test, depth, n, count) + where[t]))
                if n not in CLIENTS:
                    continue
                for r in ("mem", "aof"):
                    count = a.redis_durable_count if r == "aof" else a.redis_count
                    cases.append(((test, depth, n, r),
                                  (redis_bench, redis[r].port, test, depth, n, count)))
    runs = {k: [] for k, _ in cases}
    for rep in range(a.repeats):
        for k, c in cases if rep % 2 == 0 else cases[::-1]:
            runs[k].append(c[0](*c[1:]))

    med = {k: statistics.median(v) for k, v in runs.items()}
    print("\nC clients: the broker (bench_broker, shoal/manager.h) vs Redis (redis-benchmark"
          " on loopback); requests/s, all clients, median of %d" % a.repeats)
    print("%-4s %5s %3s | %12s %12s %7s | %12s %7s | %12s %12s %7s" %
          ("op", "depth", "cl", "redis", "shoal shm", "x", "shoal tcp", "x",
           "redis fsync", "shoal durbl", "x"))
    for test in ("set", "get"):
        for depth in (1, 16):
            for n in REDIS_ROWS:
                rn = int(str(n).split("/")[0])  # Redis's row: its -c figure
                r, ra = med[(test, depth, rn, "mem")], med[(test, depth, rn, "aof")]
                s, t, sd = (med[(test, depth, n, k)] for k in ("shm", "tcp", "durable"))
                print("%-4s %5d %3s | %12.0f %12.0f %6.1fx%s | %12.0f %6.1fx%s | %12.0f "
                      "%12.0f %6.1fx" %
                      (test, depth, n, r, s, s / r, mark(s / r, TARGET_REDIS_SHM), t, t / r,
                       mark(t / r, TARGET_REDIS_TCP), ra, sd, sd / ra))
    print("(targets: shm:// >= %gx Redis, tcp:// >= %gx at the same depth; * marks a "
          "missed one; durable: every write fsynced before its reply on both sides; "
          "cl 4/1: the broker's four connections on one client thread, as "
          "redis-benchmark's)" %
          (TARGET_REDIS_SHM, TARGET_REDIS_TCP))


def part_rust(a, cli, prog, rust):
    for p, what in ((prog, "bench_broker"), (rust, "shoal-bench (cargo, release)")):
        if not os.access(p, os.X_OK):
            print("\nRust: skipped (%s not built: %s)" % (what, p))
            return
    mem = Broker(cli, "shm://bench-broker-rs-%d" % os.getpid(),
                 token="bench-token-%d" % os.getpid(), tcp="tcp://127.0.0.1:%d" % free_port())
    try:
        run_rust(a, prog, rust, mem)
    finally:
        mem.stop()


def run_rust(a, prog, rust, mem):
    where = {"shm": (mem.address, None), "tcp": (mem.tcp, mem.token)}
    cases = []  # (key, args of shoal_bench)
    for test in ("set", "get"):
        for depth in (1, 16):
            for n in CLIENTS:
                for t in ("shm", "tcp"):
                    for lang, p in (("c", prog), ("rust", [rust, "broker"])):
                        cases.append(((test, depth, n, t, lang),
                                      (p, test, depth, n, a.redis_count) + where[t]))
    runs = {k: [] for k, _ in cases}
    for rep in range(a.repeats):
        for k, c in cases if rep % 2 == 0 else cases[::-1]:
            runs[k].append(shoal_bench(*c))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print("\nRust clients (shoal::manager, shoal-bench broker) vs C clients (bench_broker) on"
          " one broker; requests/s, all clients, median of %d (min-max of the Rust runs)" %
          a.repeats)
    print("%-4s %5s %3s %4s | %12s %12s %6s | %s" %
          ("op", "depth", "cl", "via", "C", "Rust", "Rust/C", "Rust runs"))
    for test in ("set", "get"):
        for depth in (1, 16):
            for n in CLIENTS:
                for t in ("shm", "tcp"):
                    c, r = (med[(test, depth, n, t, lang)] for lang in ("c", "rust"))
                    rr = runs[(test, depth, n, t, "rust")]
                    print("%-4s %5d %3d %4s | %12.0f %12.0f %5.2fx | %.0f-%.0f" %
                          (test, depth, n, t, c, r, r / c, min(rr), max(rr)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                    help="the CMake build tree (its cli/shoal, runtime/libshoal.so, "
                         "bench/bench_broker)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--count", type=int, default=20000,
                    help="operations per Python client (shoal, memory only)")
    ap.add_argument("--mp-count", type=int, default=2000,
                    help="operations per multiprocessing client")
    ap.add_argument("--durable-count", type=int, default=500,
                    help="operations per Python client on the durable broker")
    ap.add_argument("--redis-count", type=int, default=100000,
                    help="requests per C or Rust client (memory only)")
    ap.add_argument("--redis-durable-count", type=int, default=2000,
                    help="requests per C client with fsync per write")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny counts, once")
    ap.add_argument("--only", choices=("python", "redis", "rust"), help="run one part")
    ap.add_argument("--ops", default=",".join(OPS),
                    help="Python part: the operations, comma-separated (default: all: %s)" %
                         ", ".join(OPS))
    ap.add_argument("--clients", default=",".join(map(str, CLIENTS)),
                    help="Python part: the client counts, comma-separated (default: 1,4)")
    ap.add_argument("--transports", default="shm,tcp,durable",
                    help="Python part: shoal's transports, comma-separated (default: "
                         "shm,tcp,durable)")
    a = ap.parse_args()
    a.ops = [o.strip() for o in a.ops.split(",")]
    a.clients = [int(n) for n in a.clients.split(",")]
    a.transports = [t.strip() for t in a.transports.split(",")]
    for o in a.ops:
        if o not in OPS:
            ap.error("--ops: %r is none of %s" % (o, ", ".join(OPS)))
    for t in a.transports:
        if t not in ("shm", "tcp", "durable"):
            ap.error("--transports: %r is none of shm, tcp, durable" % t)
    if a.quick:
        a.repeats, a.count, a.mp_count, a.durable_count = 1, 200, 100, 20
        a.redis_count, a.redis_durable_count = 500, 20
    build = os.path.abspath(a.build_dir)
    cli = os.path.join(build, "cli", "shoal")
    lib = os.path.join(build, "runtime", "libshoal.so")
    for p in (cli, lib):
        if not os.path.exists(p):
            sys.exit("broker_compare: %s not built" % p)
    os.environ["SHOAL_LIBRARY"] = lib
    os.environ["SHOAL_CLI"] = cli
    ext = os.path.join(build, "bindings", "pyext")  # the C extension, when built
    if os.path.isdir(ext):
        os.environ.setdefault("SHOAL_PY_EXT_DIR", ext)
    sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
    if a.only in (None, "python"):
        part_python(a, cli)
    prog = os.path.join(build, "bench", "bench_broker")
    if a.only in (None, "redis"):
        part_redis(a, cli, prog)
    if a.only in (None, "rust"):
        part_rust(a, cli, prog, os.path.join(build, "bindings", "rust", "target", "release",
                                             "shoal-bench"))


if __name__ == "__main__":
    main()
