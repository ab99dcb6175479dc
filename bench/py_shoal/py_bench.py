#!/usr/bin/env python3
"""The Python binding against Python's multiprocessing, measured side by side.

Two ways to run it:

  py_bench.py --compare [--quick] [--repeats N]
      one run of every pair below, interleaved, medians of N repeats; prints the
      table with the shoal / multiprocessing ratios and checks the targets (every
      row >= 1x, Queue and Pipe round trip >= 10x, locked increment >= 1.5x).

  py_bench.py CASE SIZE COUNT
      one case, printing one `RESULT case=... key=value ...` line as every program
      of bench/ does (for bench/run.py).

Cases (shoal_py_* and the matching mp_py_*):
  *_queue        throughput, producer -> consumer process: Queue(1024) of bytes
                 objects of SIZE bytes (each is pickled, as multiprocessing does)
  *_queue_obj    the same with a small Python object: (i, "AAPL", 101.25, [1, 2])
  *_queue_struct the same with the 64-byte Order struct of examples/orders
                 (shoal: the generated type in a TypedQueue, no pickling;
                 multiprocessing: the same ctypes object, pickled)
  *_pipe_rtt     round trip of a small object over a duplex Pipe
  *_value_lock   `with v.get_lock(): v.value += 1` on a Value('q')
  shoal_py_value_atomic  v.fetch_add(1) (multiprocessing has no atomic add: the
                 ratio is against its locked increment)
  *_array_rmw    a[i & 7] += 1 on a locked Array('q', 8)
  *_lock         lock.acquire(); lock.release(), uncontended

With the binding's C extension built (<build>/bindings/pyext, found through
$SHOAL_PY_EXT_DIR) shoal runs its hot paths in C; SHOAL_PY_PURE=1 measures the ctypes
path instead.

The two sides of a channel run in processes forked from this one and pinned to
distinct CPUs, as in bench/py/mp_bench.py. libshoal: $SHOAL_LIBRARY, else
<repo>/build/runtime/libshoal.so. The generated Order type: made with the schema
compiler found by --plugin / $SHOAL_PLUGIN / <lib dir>/../codegen/protoc-gen-shoal,
else a hand-written ctypes.Structure of the same layout.
"""
import argparse
import atexit
import ctypes
import itertools
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CAPACITY = 1024


def setup_shoal(plugin=None):
    """Imports shoal from the source tree and the Order type; returns (shoal, Order,
    where Order came from)."""
    if not os.environ.get("SHOAL_LIBRARY"):
        lib = os.path.join(REPO, "build", "runtime", "libshoal.so")
        if os.path.exists(lib):
            os.environ["SHOAL_LIBRARY"] = lib
    if not os.environ.get("SHOAL_PY_EXT_DIR"):  # the C extension of a build tree
        ext = os.path.join(os.path.dirname(os.path.dirname(
            os.environ.get("SHOAL_LIBRARY", ""))), "bindings", "pyext")
        if os.path.isdir(ext):
            os.environ["SHOAL_PY_EXT_DIR"] = ext
    sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
    import shoal
    return shoal, *order_type(shoal, plugin)


def order_type(shoal, plugin):
    plugin = plugin or os.environ.get("SHOAL_PLUGIN") or os.path.join(
        os.path.dirname(os.path.dirname(shoal.library_path)), "codegen",
        "protoc-gen-shoal")
    protoc = shutil.which("protoc")
    if protoc and os.path.exists(plugin):
        out = tempfile.mkdtemp(prefix="shoal-bench-gen-")
        atexit.register(shutil.rmtree, out, True)  # forked workers leave by os._exit
        cp = subprocess.run([protoc, "--plugin=protoc-gen-shoal=" + plugin,
                             "--shoal_out=lang=python:" + out,
                             "-I" + os.path.join(REPO, "examples", "orders"),
                             "-I" + os.path.join(REPO, "schemas"), "orders.proto"],
                            capture_output=True)
        if cp.returncode == 0:
            sys.path.insert(0, out)
            import orders_shoal
            return orders_shoal.Order, "generated"

    class Order(ctypes.Structure):  # orders.Order's layout, by hand
        _fields_ = [("id", ctypes.c_int64), ("symbol_len", ctypes.c_uint32),
                    ("symbol", ctypes.c_char * 8), ("price", ctypes.c_double),
                    ("quantity", ctypes.c_uint32), ("side", ctypes.c_int32),
                    ("fills_count", ctypes.c_uint32), ("fills", ctypes.c_uint32 * 4)]
    return Order, "ctypes"


def pin(slot):
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[slot % len(cpus)]})
    except (AttributeError, OSError):
        pass


def warm_of(count):
    return min(count // 10, 1000)


# ---- messages ----------------------------------------------------------------------
#
# Message i carries i mod 256 (bytes: its first byte) or i mod 4096 (tuples, structs),
# which the consumer checks: cheap enough not to hide the channel's own cost.

N_MSGS = 4096


def make_message(kind, size, Order, i):
    if kind == "queue":
        return bytes((i & 255,)) + bytes(max(size - 1, 0))
    if kind == "queue_obj":
        return (i & (N_MSGS - 1), "AAPL", 101.25, [1, 2])
    o = Order()
    o.id = i & (N_MSGS - 1)
    o.price = 101.25
    o.quantity = 7
    return o


# ---- throughput --------------------------------------------------------------------


def producer(q, kind, size, total, barrier, Order):
    pin(0)
    msgs = [make_message(kind, size, Order, i) for i in range(N_MSGS)]
    put = q.put
    barrier.wait()
    for m in itertools.islice(itertools.cycle(msgs), total):
        put(m)


def consume(get, kind, start, stop):
    """Gets messages start..stop-1 and checks each one's sequence number."""
    if kind == "queue":
        for i in range(start, stop):
            if get()[0] != i & 255:
                raise SystemExit("bench: message %d arrived out of order" % i)
    elif kind == "queue_obj":
        for i in range(start, stop):
            if get()[0] != i & (N_MSGS - 1):
                raise SystemExit("bench: message %d arrived out of order" % i)
    else:
        for i in range(start, stop):
            if get().id != i & (N_MSGS - 1):
                raise SystemExit("bench: message %d arrived out of order" % i)


def consumer(q, kind, size, warm, total, barrier, out, Order):
    pin(1)
    get = q.get
    barrier.wait()
    consume(get, kind, 0, warm)
    t0 = time.monotonic_ns()
    consume(get, kind, warm, total)
    out[0] = t0
    out[1] = time.monotonic_ns()


def run_tput(impl, kind, size, count, shoal, Order):
    ctx = mp.get_context("fork")
    warm = warm_of(count)
    total = warm + count
    barrier = ctx.Barrier(2)
    out = ctx.Array("q", 2, lock=False)
    if impl == "shoal":
        q = shoal.TypedQueue(Order, CAPACITY) if kind == "queue_struct" else \
            shoal.Queue(CAPACITY, max_msg=max(size * 2, 256))
    else:
        q = ctx.Queue(maxsize=CAPACITY)
    procs = [ctx.Process(target=producer, args=(q, kind, size, total, barrier, Order)),
             ctx.Process(target=consumer, args=(q, kind, size, warm, total, barrier, out,
                                                Order))]
    finish(procs)
    dt = out[1] - out[0]
    return "msgs_per_s=%.1f elapsed_ns=%d" % (count * 1e9 / dt, dt)


# ---- round trip --------------------------------------------------------------------


def pong(conn, total, barrier):
    pin(1)
    recv, send = conn.recv, conn.send
    barrier.wait()
    for _ in range(total):
        send(recv())


def run_rtt(impl, count, shoal):
    ctx = mp.get_context("fork")
    warm = warm_of(count)
    barrier = ctx.Barrier(2)
    a, b = shoal.Pipe() if impl == "shoal" else ctx.Pipe()
    p = ctx.Process(target=pong, args=(b, warm + count, barrier))
    p.start()
    pin(0)
    lat = []
    now = time.monotonic_ns
    barrier.wait()
    for i in range(warm + count):
        t = now()
        a.send(i)
        if a.recv() != i:
            raise SystemExit("bench: wrong reply")
        if i >= warm:
            lat.append(now() - t)
    finish([p], started=True)
    lat.sort()
    return "median_ns=%.1f p99_ns=%.1f mean_ns=%.1f" % (
        lat[len(lat) // 2], lat[min(int(len(lat) * 0.99), len(lat) - 1)],
        sum(lat) / len(lat))


# ---- Value increments ----------------------------------------------------------------


def run_value(impl, how, count, shoal):
    pin(0)
    v = shoal.Value("q", 0) if impl == "shoal" else mp.get_context("fork").Value("q", 0)
    now = time.monotonic_ns
    if how == "atomic":
        add = v.fetch_add
        t0 = now()
        for _ in range(count):
            add(1)
        dt = now() - t0
    else:
        lk = v.get_lock()
        t0 = now()
        for _ in range(count):
            with lk:
                v.value += 1
        dt = now() - t0
    if v.value != count:
        raise SystemExit("bench: value is %d, expected %d" % (v.value, count))
    return "ns_per_op=%.2f elapsed_ns=%d" % (dt / count, dt)


def run_array(impl, count, shoal):
    """a[i] += 1 on a locked Array('q', 8): an element read and an element write."""
    pin(0)
    a = shoal.Array("q", 8) if impl == "shoal" else mp.get_context("fork").Array("q", 8)
    now = time.monotonic_ns
    t0 = now()
    for i in range(count):
        a[i & 7] += 1
    dt = now() - t0
    if sum(a[:]) != count:
        raise SystemExit("bench: array sums to %d, expected %d" % (sum(a[:]), count))
    return "ns_per_op=%.2f elapsed_ns=%d" % (dt / count, dt)


def run_lock(impl, count, shoal):
    """lock.acquire(); lock.release() with nobody else wanting the lock."""
    pin(0)
    lk = shoal.Lock() if impl == "shoal" else mp.get_context("fork").Lock()
    acquire, release = lk.acquire, lk.release
    now = time.monotonic_ns
    t0 = now()
    for _ in range(count):
        acquire()
        release()
    dt = now() - t0
    return "ns_per_op=%.2f elapsed_ns=%d" % (dt / count, dt)


def finish(procs, started=False):
    if not started:
        for p in procs:
            p.start()
    for p in procs:
        p.join(300)
    for p in procs:
        if p.exitcode is None:
            p.kill()
            p.join()
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit("bench: child failed (exit codes %s)"
                         % [p.exitcode for p in procs])


# ---- cases -----------------------------------------------------------------------

def case_fn(case):
    impl, _, what = case.partition("_py_")
    if impl not in ("shoal", "mp"):
        return None
    if what in ("queue", "queue_obj", "queue_struct"):
        return lambda s, n, sh, O: run_tput(impl, what, s, n, sh, O)
    if what == "pipe_rtt":
        return lambda s, n, sh, O: run_rtt(impl, n, sh)
    if what == "value_lock":
        return lambda s, n, sh, O: run_value(impl, "lock", n, sh)
    if what == "array_rmw":
        return lambda s, n, sh, O: run_array(impl, n, sh)
    if what == "lock":
        return lambda s, n, sh, O: run_lock(impl, n, sh)
    if what == "value_atomic" and impl == "shoal":
        return lambda s, n, sh, O: run_value(impl, "atomic", n, sh)
    return None


CASES = ["shoal_py_queue", "mp_py_queue", "shoal_py_queue_obj", "mp_py_queue_obj",
         "shoal_py_queue_struct", "mp_py_queue_struct", "shoal_py_pipe_rtt",
         "mp_py_pipe_rtt", "shoal_py_value_lock", "mp_py_value_lock",
         "shoal_py_value_atomic", "shoal_py_array_rmw", "mp_py_array_rmw",
         "shoal_py_lock", "mp_py_lock"]

# (label, shoal case, multiprocessing case, metric, higher is better, size)
ROWS = [
    ("Queue throughput, 64-byte bytes objects", "shoal_py_queue", "mp_py_queue",
     "msgs_per_s", True, 64),
    ("Queue throughput, small tuple objects", "shoal_py_queue_obj", "mp_py_queue_obj",
     "msgs_per_s", True, 8),
    ("Queue throughput, Order structs (64 B)", "shoal_py_queue_struct",
     "mp_py_queue_struct", "msgs_per_s", True, 64),
    ("Pipe round trip (median)", "shoal_py_pipe_rtt", "mp_py_pipe_rtt", "median_ns",
     False, 8),
    ("Value += 1 under the lock", "shoal_py_value_lock", "mp_py_value_lock",
     "ns_per_op", False, 8),
    ("Value atomic add (mp: under the lock)", "shoal_py_value_atomic",
     "mp_py_value_lock", "ns_per_op", False, 8),
    ("Array a[i] += 1 (locked Array)", "shoal_py_array_rmw", "mp_py_array_rmw",
     "ns_per_op", False, 8),
    ("Lock acquire + release", "shoal_py_lock", "mp_py_lock", "ns_per_op", False, 8),
]


# The ratio each shoal case must reach (others: 1x).
TARGETS = {"shoal_py_queue": 10, "shoal_py_queue_obj": 10, "shoal_py_queue_struct": 10,
           "shoal_py_pipe_rtt": 10, "shoal_py_value_lock": 1.5}


def one(case, size, count, plugin):
    """Runs one case in a fresh interpreter (as bench/run.py does); returns its
    numbers."""
    env = dict(os.environ)
    if plugin:
        env["SHOAL_PLUGIN"] = plugin
    cp = subprocess.run([sys.executable, os.path.abspath(__file__), case, str(size),
                         str(count)], capture_output=True, text=True, env=env,
                        timeout=600)
    line = cp.stdout.strip().splitlines()[-1] if cp.stdout.strip() else ""
    if cp.returncode != 0 or not line.startswith("RESULT "):
        raise SystemExit("py_bench.py: %s failed: %s %s" % (case, cp.stdout, cp.stderr))
    return dict(kv.split("=") for kv in line.split()[1:])


def compare(args):
    shoal, Order, origin = setup_shoal(args.plugin)
    counts = {"msgs_per_s": 300000, "median_ns": 20000, "ns_per_op": 300000}
    scale = 0.1 if args.quick else 1.0
    results = {}
    for rep in range(args.repeats):
        for label, s_case, m_case, metric, _, size in ROWS:
            n = max(int(counts[metric] * scale), 1000)
            n_mp = max(n // 5, 1000) if m_case.startswith("mp_py_queue") else n
            for case, cnt in ((s_case, n), (m_case, n_mp)):
                if len(results.get((case, size), ())) > rep:
                    continue  # a multiprocessing case shared by two rows
                r = one(case, size, cnt, args.plugin)
                results.setdefault((case, size), []).append(float(r[metric]))
    cpus = os.cpu_count()
    model = platform_cpu()
    print("Python binding vs multiprocessing — one run, median of %d, %d CPUs (%s), "
          "Python %s, Order type: %s" % (args.repeats, cpus, model,
                                         sys.version.split()[0], origin))
    print()
    print("| measurement | shoal | multiprocessing | shoal / multiprocessing |")
    print("|---|---:|---:|---:|")
    ok, missed = True, []
    for label, s_case, m_case, metric, higher, size in ROWS:
        s = statistics.median(results[(s_case, size)])
        m = statistics.median(results[(m_case, size)])
        ratio = s / m if higher else m / s
        unit = (lambda x: "%.0f k msg/s" % (x / 1000)) if metric == "msgs_per_s" else \
            (lambda x: "%.2f us" % (x / 1000))
        print("| %s | %s | %s | %.1fx %s |" % (label, unit(s), unit(m), ratio,
                                              "faster" if ratio >= 1 else "slower"))
        need = TARGETS.get(s_case, 1.0)
        if ratio < need:
            ok = False
            missed.append("%s (%.1fx, target %.1fx)" % (label, ratio, need))
    print()
    print("targets: every row >= 1x multiprocessing, Queue >= 10x, Pipe round trip "
          ">= 10x, locked increment >= 1.5x: %s" % ("met" if ok else
                                                    "MISSED: " + "; ".join(missed)))


def platform_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    if len(sys.argv) == 4 and not sys.argv[1].startswith("-"):
        case, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        shoal, Order, _ = setup_shoal()
        fn = case_fn(case)
        if fn is None:
            sys.exit("py_bench.py: unknown case %s" % case)
        res = fn(size, count, shoal, Order)
        print("RESULT case=%s size=%d count=%d %s" % (case, size, count, res),
              flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", action="store_true", required=True)
    ap.add_argument("--quick", action="store_true", help="a smoke run, seconds")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plugin", help="protoc-gen-shoal, to generate the Order type")
    compare(ap.parse_args())


if __name__ == "__main__":
    main()
