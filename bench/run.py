#!/usr/bin/env python3
"""Runs shoal's side-by-side benchmarks and prints the table.

Every row is one benchmark program run as `PROG CASE SIZE COUNT`, which prints one
`RESULT ...` line (or `SKIP ...` when the case cannot run here): the C programs in
--bin-dir, py/mp_bench.py (Python multiprocessing next to the C peers) and
py_shoal/py_bench.py (shoal's Python binding next to multiprocessing, run with the
libshoal and the schema compiler of the build that --bin-dir belongs to). The driver:

  1. picks, per case, a count of messages / round trips / operations that fills a
     fixed time window (--window-ms; found by doubling a small probe), so fast and
     slow rows are timed over the same window and every row is in steady state;
  2. runs every case --repeats times, the cases interleaved (a slow spell on the
     machine hits all rows alike), and takes the median of each number;
  3. prints the tables with ratios against shoal and the bare baselines, and checks
     the performance targets of the specification (a missed target is shown, never
     an error).

    python3 bench/run.py --bin-dir build/bench             # full run, 3-5 minutes
    python3 bench/run.py --bin-dir build/bench --quick     # smoke run, seconds
    python3 bench/run.py ... --markdown bench/RESULTS.md   # also write Markdown

The exit status is 0 unless a program crashed, hung, exited non-zero or printed
something that is not a result: timings never fail a run.
"""
import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MP_BENCH = os.path.join(HERE, "py", "mp_bench.py")
PY_BENCH = os.path.join(HERE, "py_shoal", "py_bench.py")

SIZES = (8, 64, 1024)
RTT_SIZE = 8

# (key, label, program, case). Programs are in --bin-dir; "py" is py/mp_bench.py and
# "py_shoal" is py_shoal/py_bench.py.
TPUT = [
    ("ring", "bare SPSC ring (textbook: cached indices)", "bench_bare", "ring"),
    ("ring_mark", "bare SPSC ring, a ready marker per slot (8 + message bytes)",
     "bench_bare", "ring_mark"),
    ("ring_hyst", "bare SPSC ring, producer waits for 1/8 free", "bench_bare", "ring_hyst"),
    ("spsc", "**shoal** SPSC queue, put/get", "bench_channels", "shoal_spsc"),
    ("spsc_batch", "shoal SPSC queue, batches of 64", "bench_channels", "shoal_spsc_batch"),
    ("loan", "shoal SPSC queue, loan/commit + peek/release", "bench_channels", "shoal_loan"),
    ("mpmc", "shoal MPMC queue, 1 producer 1 consumer", "bench_channels", "shoal_mpmc"),
    ("mpmc22", "shoal MPMC queue, 2 producers 2 consumers (4 processes)", "bench_channels",
     "shoal_mpmc_2p2c"),
    ("pipe", "pipe(2)", "bench_fd", "pipe"),
    ("unix", "Unix socketpair (stream)", "bench_fd", "unix"),
    ("mq", "POSIX mq", "bench_mq", "mq"),
    ("nng_pair", "nng pair1 ipc://, default buffers", "bench_nng", "nng_pair"),
    ("nng_pair_big", "nng pair1 ipc://, 8192-message buffers", "bench_nng", "nng_pair_big"),
    ("nng_reqrep", "nng req/rep ipc://, default buffers", "bench_nng", "nng_reqrep"),
    ("nng_reqrep_big", "nng req/rep ipc://, 8192-message buffers", "bench_nng",
     "nng_reqrep_big"),
    ("zmq_pair", "ZeroMQ PAIR ipc://, high-water marks 1024", "bench_zmq", "zmq_pair"),
    ("mp_queue", "Python multiprocessing.Queue", "py", "mp_queue"),
    ("mp_pipe", "Python multiprocessing.Pipe (one-way, send_bytes)", "py", "mp_pipe"),
]

RTT = [
    ("spin", "bare spin ping-pong, one cache line (polling)", "bench_bare", "spin"),
    ("spin2", "bare spin ping-pong, flag and data in two lines (polling)", "bench_bare",
     "spin2"),
    ("spin1d", "bare spin ping-pong, a line of its own each way (polling)", "bench_bare",
     "spin1d"),
    ("spin1c", "bare spin ping-pong, two rings with MPMC slot steps (polling)",
     "bench_bare", "spin1c"),
    ("spin1b", "bare spin ping-pong, two biased SPSC rings (polling)", "bench_bare",
     "spin1b"),
    ("futex", "bare futex ping-pong (asleep)", "bench_bare", "futex"),
    ("futex2t", "bare futex ping-pong, a word each way, 5 ms timeouts (asleep)",
     "bench_bare", "futex2t"),
    ("futexsc", "bare futex ping-pong with a ring's sleeper count (asleep)", "bench_bare",
     "futexsc"),
    ("pipe_poll", "**shoal** Pipe, polling", "bench_channels", "shoal_pipe_poll_rtt"),
    ("pipe_sleep", "**shoal** Pipe, asleep (spin budget 0)", "bench_channels",
     "shoal_pipe_sleep_rtt"),
    ("qpair_poll", "shoal SPSC queue pair, polling", "bench_channels",
     "shoal_queue_poll_rtt"),
    ("qpair_sleep", "shoal SPSC queue pair, asleep (spin budget 0)", "bench_channels",
     "shoal_queue_sleep_rtt"),
    ("mpmcq_poll", "shoal MPMC queue pair, polling (the Pipe's rings)", "bench_channels",
     "shoal_mpmcq_poll_rtt"),
    ("pipe", "pipe(2)", "bench_fd", "pipe_rtt"),
    ("unix", "Unix socketpair (stream)", "bench_fd", "unix_rtt"),
    ("mq", "POSIX mq", "bench_mq", "mq_rtt"),
    ("nng_pair", "nng pair1 ipc://", "bench_nng", "nng_pair_rtt"),
    ("nng_reqrep", "nng req/rep ipc://", "bench_nng", "nng_reqrep_rtt"),
    ("zmq_pair", "ZeroMQ PAIR ipc://", "bench_zmq", "zmq_pair_rtt"),
    ("mp_pipe", "Python multiprocessing.Pipe", "py", "mp_pipe_rtt"),
    ("mp_queue", "Python multiprocessing.Queue (two)", "py", "mp_queue_rtt"),
]

# The event loop (bench_loop): message-to-callback round trips with N sources watched
# and one of them used, against a direct blocking get and epoll. (key, label, case).
LOOP_SOURCES = (1, 16, 1000)
LOOP = [("direct_poll", "shoal queue, direct blocking get, polling", "direct_poll_rtt"),
        ("direct_sleep", "shoal queue, direct blocking get, asleep", "direct_sleep_rtt")]
for _mode, _how in (("poll", "polling"), ("sleep", "asleep")):
    for _n in LOOP_SOURCES:
        for _eng in ("uring", "epoll"):
            LOOP.append((f"loop_{_eng}_{_mode}_{_n}",
                         f"**shoal_loop** ({_eng}), {_how}, {_n} source(s)",
                         f"loop_{_eng}_{_mode}_{_n}_rtt"))
        if _mode == "sleep":  # the epoll engine's helper path: a descriptor watched too
            LOOP.append((f"loop_epoll_{_mode}_{_n}_fd",
                         f"**shoal_loop** (epoll), {_how}, {_n} source(s) + an idle eventfd",
                         f"loop_epoll_{_mode}_{_n}_fd_rtt"))
        for _fd in ("eventfd", "pipe"):
            LOOP.append((f"epoll_{_fd}_{_mode}_{_n}",
                         f"epoll_wait on {_n} {_fd}(s), {_how}",
                         f"epoll_{_fd}_{_mode}_{_n}_rtt"))

# Every single operation measured, as (case, program)...
OPS = [
    ("bare_add", "bench_sync"),
    ("bare_add_2p", "bench_sync"),
    ("shoal_value_add", "bench_sync"),
    ("shoal_value_add_2p", "bench_sync"),
    ("bare_mutex", "bench_sync"),
    ("bare_mutex_2p", "bench_sync"),
    ("shoal_lock", "bench_sync"),
    ("shoal_lock_2p", "bench_sync"),
    ("shoal_rlock", "bench_sync"),
    ("bare_value_read", "bench_sync"),
    ("shoal_value_read", "bench_sync"),
    ("bare_value_write", "bench_sync"),
    ("shoal_value_write", "bench_sync"),
    ("shoal_value_snapshot", "bench_sync"),
    ("mp_lock", "py"),
    ("mp_value_read", "py"),
    ("mp_value_write", "py"),
    ("mp_value_add", "py"),
    ("clock", "bench_bare"),
]
# ...and how the sync table pairs them: (label, bare, shoal, multiprocessing).
SYNC_ROWS = [
    ("atomic add, 1 process", "bare_add", "shoal_value_add", "mp_value_add"),
    ("atomic add, 2 processes at once", "bare_add_2p", "shoal_value_add_2p", None),
    ("Lock acquire + release, uncontended", "bare_mutex", "shoal_lock", "mp_lock"),
    ("RLock acquire + release, uncontended", "bare_mutex", "shoal_rlock", None),
    ("Lock, 2 processes contending (lock, add, unlock)", "bare_mutex_2p", "shoal_lock_2p",
     None),
    ("Value read (int64, under its lock)", "bare_value_read", "shoal_value_read",
     "mp_value_read"),
    ("Value write (int64, under its lock)", "bare_value_write", "shoal_value_write",
     "mp_value_write"),
    ("Value snapshot (lock-free read)", None, "shoal_value_snapshot", None),
]

# The Python binding against multiprocessing, all run by py_shoal/py_bench.py:
# (label, kind, shoal case, multiprocessing case, size). A case named twice runs once.
PY_ROWS = [
    ("Queue of 64-byte `bytes` objects", "tput", "shoal_py_queue", "mp_py_queue", 64),
    ("Queue of small Python objects, `(i, \"AAPL\", 101.25, [1, 2])`", "tput",
     "shoal_py_queue_obj", "mp_py_queue_obj", 8),
    ("Queue of generated `Order` structs (64 B; multiprocessing pickles them)", "tput",
     "shoal_py_queue_struct", "mp_py_queue_struct", 64),
    ("Pipe round trip of a small int", "rtt", "shoal_py_pipe_rtt", "mp_py_pipe_rtt", 8),
    ("`Value('q')` += 1 under its lock", "op", "shoal_py_value_lock", "mp_py_value_lock",
     8),
    ("atomic add (shoal: `fetch_add(1)`; multiprocessing has none: += under its lock)",
     "op", "shoal_py_value_atomic", "mp_py_value_lock", 8),
    ("`Array('q', 8)`: `a[i & 7] += 1` (locked Array)", "op", "shoal_py_array_rmw",
     "mp_py_array_rmw", 8),
    ("Lock `acquire(); release()`, uncontended", "op", "shoal_py_lock", "mp_py_lock", 8),
]

# The Rust and Node bindings next to C and Python, on the same operations: (label, kind,
# size, C (kind, key) of the rows above, Python case of py_bench.py, Rust case of
# shoal-bench (bindings/rust/shoal-tests, built by CMake in release mode under
# <build>/bindings/rust/target), Node case of bindings/node/bench/bench.js).
NODE_BENCH = os.path.join(HERE, "..", "bindings", "node", "bench", "bench.js")
LANG_ROWS = [
    ("Queue of generated `Order` structs (64 B), msgs/s", "tput", 64, ("tput", "spsc"),
     "shoal_py_queue_struct", "rust_queue_struct", "node_queue_struct"),
    ("Pipe round trip, 8 B, median", "rtt", 8, ("rtt", "pipe_poll"), "shoal_py_pipe_rtt",
     "rust_pipe_rtt", "node_pipe_rtt"),
    ("Value atomic add", "op", 8, ("op", "shoal_value_add"), "shoal_py_value_atomic",
     "rust_value_add", "node_value_add"),
    ("Lock acquire + release, uncontended", "op", 8, ("op", "shoal_lock"), None,
     "rust_lock", "node_lock"),
]


class Case:
    """One program invocation repeated: a row cell of a table."""

    def __init__(self, kind, key, label, prog, case, size):
        self.kind, self.key, self.label = kind, key, label
        self.prog, self.case, self.size = prog, case, size
        self.count = None
        self.results = []  # dicts of numbers, one per repeat
        self.skip = None  # reason
        self.failure = None  # text
        self.notes = set()
        self.retried = 0  # runs done again because the machine was busy
        self.disturbed = 0  # results kept although the machine was busy

    @property
    def python(self):
        return self.prog in ("py", "py_shoal")

    def metric(self):
        return {"tput": "msgs_per_s", "rtt": "median_ns", "op": "ns_per_op"}[self.kind]

    def median(self, key=None):
        vals = [r[key or self.metric()] for r in self.results]
        return statistics.median(vals) if vals else None


def all_cases():
    cases = []
    for key, label, prog, case in TPUT:
        for size in SIZES:
            cases.append(Case("tput", key, label, prog, case, size))
    for key, label, prog, case in RTT:
        cases.append(Case("rtt", key, label, prog, case, RTT_SIZE))
    for key, label, case in LOOP:
        cases.append(Case("rtt", key, label, "bench_loop", case, RTT_SIZE))
    for case, prog in OPS:
        cases.append(Case("op", case, case, prog, case, 8))
    seen = set()
    for label, kind, shoal, mp, size in PY_ROWS:
        for case in (shoal, mp):
            if (case, size) not in seen:
                seen.add((case, size))
                cases.append(Case(kind, case, case, "py_shoal", case, size))
    for _, kind, size, _, _, rust, node in LANG_ROWS:
        cases.append(Case(kind, rust, rust, "rust", rust, size))
        cases.append(Case(kind, node, node, "node", node, size))
    return cases


# ---- running ------------------------------------------------------------------------

RESULT_RE = re.compile(r"^RESULT case=(\S+) size=(\d+) count=(\d+)((?: \w+=\S+)*)$")
SKIP_RE = re.compile(r"^SKIP case=(\S+) reason=(\S+)$")


def command(args, c, count):
    if c.python:
        script = PY_BENCH if c.prog == "py_shoal" else MP_BENCH
        return [sys.executable, script, c.case, str(c.size), str(count)]
    if c.prog == "rust":
        return [os.path.join(args.bin_dir, "..", "bindings", "rust", "target", "release",
                             "shoal-bench"), c.case, str(c.size), str(count)]
    if c.prog == "node":
        return [shutil.which("node") or "node", NODE_BENCH, c.case, str(c.size), str(count)]
    return [os.path.join(args.bin_dir, c.prog), c.case, str(c.size), str(count)]


def cmake_cache(args):
    """The settings of the build --bin-dir belongs to, as a dict (empty if none)."""
    cache, out = os.path.join(args.bin_dir, "..", "CMakeCache.txt"), {}
    if os.path.exists(cache):
        for line in open(cache, encoding="utf-8", errors="replace"):
            k, eq, v = line.partition("=")
            if eq and not line.startswith(("#", "//")):
                out[k.split(":", 1)[0]] = v.strip()
    return out


def sanitized(cache):
    return cache.get("SHOAL_SANITIZE", "").upper() in ("ON", "1", "TRUE", "YES", "Y")


def py_shoal_env(args, env):
    """The environment of py_bench.py: the libshoal and schema compiler built next to
    --bin-dir, byte-code caches and temporary files out of the source tree, and, for a
    sanitizer build, the ASan runtime loaded first into the uninstrumented python.
    Returns (env, None) or (None, the reason the Python binding rows cannot run)."""
    build = os.path.abspath(os.path.join(args.bin_dir, ".."))
    lib = os.path.join(build, "runtime", "libshoal.so")
    if not os.path.exists(lib):
        return None, "libshoal.so not built"
    args.py_order = "generated by protoc-gen-shoal"
    env = dict(env, SHOAL_LIBRARY=lib, TMPDIR=args.tmp,
               PYTHONPYCACHEPREFIX=os.path.join(args.tmp, "pycache"))
    plugin = os.path.join(build, "codegen", "protoc-gen-shoal")
    if os.path.exists(plugin) and shutil.which("protoc"):
        env["SHOAL_PLUGIN"] = plugin
    else:  # py_bench.py then uses a hand-written ctypes Order of the same layout
        args.py_order = "hand-written ctypes.Structure (no protoc-gen-shoal)"
    cache = cmake_cache(args)
    if sanitized(cache):
        cc = cache.get("CMAKE_C_COMPILER", "cc")
        asan = sh([cc, "-print-file-name=libasan.so"]).strip()
        if not os.path.isabs(asan) or not os.path.exists(asan):
            return None, "sanitizer build, but no libasan.so to preload into python"
        # CPython's deliberate leaks at exit are not shoal's.
        opts = env.get("ASAN_OPTIONS", "")
        env["LD_PRELOAD"] = asan
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "abort_on_error=1:") + \
            "detect_leaks=0"
    return env, None


def lang_env(args, env):
    """The environment of the Rust and Node programs: the libshoal, Node addon and shoal
    command built next to --bin-dir (and the ASan runtime preloaded for a sanitizer
    build). Returns (env, None) or (None, the reason the rows cannot run)."""
    build = os.path.abspath(os.path.join(args.bin_dir, ".."))
    env = dict(env, LD_LIBRARY_PATH=os.path.join(build, "runtime"), TMPDIR=args.tmp,
               SHOAL_NODE_ADDON=os.path.join(build, "bindings", "node", "shoal.node"),
               SHOAL_CLI=os.path.join(build, "cli", "shoal"))
    if args.py_env and "LD_PRELOAD" in args.py_env:
        env["LD_PRELOAD"] = args.py_env["LD_PRELOAD"]
        env["ASAN_OPTIONS"] = args.py_env["ASAN_OPTIONS"]
    return env, None if os.path.exists(env["SHOAL_NODE_ADDON"]) else "shoal.node not built"


def cpu_busy():
    """Seconds of CPU time the whole machine has spent busy since boot."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            t = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = t[3] + (t[4] if len(t) > 4 else 0)  # idle + iowait
    return (sum(t[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    """CPU seconds used by this driver's finished children (and theirs), and the times
    they were preempted (involuntary context switches)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_nivcsw


class Patience:
    """The time the run may spend, in all, waiting for the machine to become idle and
    redoing runs that other processes disturbed (--patience seconds)."""

    def __init__(self, seconds):
        self.left = seconds

    def spend(self, seconds):
        self.left -= seconds

    def __bool__(self):
        return self.left > 0


def wait_quiet(args):
    """Waits, within the patience left, until the other processes of the machine use
    less than a tenth of one CPU, so a run does not start in the middle of someone
    else's build."""
    if not args.machine_busy:  # the last run saw no one else: no need to look
        return
    started = time.monotonic()
    while args.patience:
        b0 = cpu_busy()
        time.sleep(0.1)
        b1 = cpu_busy()
        if b0 is None or b1 - b0 < 0.01:
            break
        time.sleep(0.4)
        args.patience.spend(time.monotonic() - started)
        started = time.monotonic()


def run_once(args, c, count, env):
    """Runs one case once. Returns a dict of numbers, or None (skip or failure, which
    are recorded on the case). The result's "others" is the CPU time (s) that
    processes other than the benchmark's used meanwhile."""
    cmd = command(args, c, count)
    if not c.python and not os.access(cmd[0], os.X_OK):
        c.skip = f"{c.prog} not built"
        return None
    if c.prog == "py_shoal":
        if args.py_skip:
            c.skip = args.py_skip
            return None
        env = args.py_env
    if c.prog in ("rust", "node"):
        env, skip = args.lang_env
        if c.prog == "node" and skip:
            c.skip = skip
            return None
    busy0, own0, wall0 = cpu_busy(), own_cpu(), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True, text=True)
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        c.failure = f"hung: killed after {args.timeout} s"
        return None
    finally:
        try:  # children left behind by a crash
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    busy1, own1, wall = cpu_busy(), own_cpu(), time.monotonic() - wall0
    others = (busy1 - busy0) - (own1[0] - own0[0]) if busy0 is not None else 0.0
    preempted = own1[1] - own0[1]
    tail = " | ".join(err.strip().splitlines()[-3:])
    if proc.returncode != 0:
        how = (f"signal {-proc.returncode}" if proc.returncode < 0
               else f"exit {proc.returncode}")
        c.failure = f"{how}: {tail}"
        return None
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if len(lines) == 1 and SKIP_RE.match(lines[0]):
        c.skip = SKIP_RE.match(lines[0]).group(2).replace("_", " ")
        return None
    m = RESULT_RE.match(lines[0]) if len(lines) == 1 else None
    if not m or m.group(1) != c.case:
        c.failure = f"unexpected output: {out.strip()[:200]!r} {tail}"
        return None
    res = {"count": int(m.group(3)), "others_cpu_s": max(others, 0.0), "wall_s": wall,
           "preempted": preempted}
    args.machine_busy = disturbed(res)
    for kv in m.group(4).split():
        k, v = kv.split("=", 1)
        if k == "note":
            c.notes.add(v.replace("_", " "))
            continue
        try:
            res[k] = float(v)
        except ValueError:
            c.failure = f"non-numeric {k}={v!r}"
            return None
        if not math.isfinite(res[k]) or res[k] <= 0:
            c.failure = f"impossible {k}={v}"
            return None
    if c.metric() not in res:
        c.failure = f"missing {c.metric()}: {out.strip()!r}"
        return None
    return res


def seconds(c, res):
    """Duration of the timed window of one result, in seconds."""
    if c.kind == "tput":
        return res["count"] / res["msgs_per_s"]
    if c.kind == "rtt":
        return res["count"] * res["mean_ns"] * 1e-9
    return res["count"] * res["ns_per_op"] * 1e-9


def quick_count(c):
    base = {"tput": 2000, "rtt": 200, "op": 20000}[c.kind]
    return max(base // 10, 100) if c.python else base


def calibrate(args, c, env):
    """Finds the count that fills the time window: probe, grow tenfold while the probe
    is too short to scale from, scale, and check the scaled count once (a probe slowed
    down by a busy moment would otherwise give a window much too short). A check that
    confirms the count is kept as the first result."""
    count = max(quick_count(c), 1000 if c.kind == "tput" and not c.python else 0)
    limit = {"tput": 50_000_000, "rtt": 2_000_000, "op": 100_000_000}[c.kind]
    window = args.window_ms / 1000.0

    def scaled(count, took):
        want = min(max(count * window / max(took, 1e-9), quick_count(c)), limit)
        digits = 10 ** max(int(math.log10(want)) - 1, 0)  # two significant digits
        return int(round(want / digits) * digits)

    checked = False
    while True:
        res = measure(args, c, count, env)
        if res is None:
            return None
        took = seconds(c, res)
        if count >= limit or (checked and took >= window / 2):
            # A run at the final count: it is the first of the repeats.
            c.disturbed += disturbed(res)
            c.results.append(res)
            return count
        if took < window / 20:
            count *= 10
        elif not checked:
            count, checked = scaled(count, took), True
        else:
            return scaled(count, took)


def run_all(args, cases, env):
    log = sys.stderr
    t0 = time.monotonic()
    if not args.quick:
        print(f"calibrating {len(cases)} cases to a {args.window_ms} ms window...",
              file=log, flush=True)
        for c in cases:
            c.count = calibrate(args, c, env)
        print(f"calibrated in {time.monotonic() - t0:.0f} s; "
              f"{max(args.patience.left, 0):.0f} s of patience left", file=log, flush=True)
    else:
        for c in cases:
            c.count = quick_count(c)
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}/{args.repeats}...", file=log, flush=True)
        for c in cases:
            if c.skip or c.failure or not c.count or len(c.results) > rep:
                continue
            res = measure(args, c, c.count, env)
            if res is not None:
                c.disturbed += disturbed(res)
                c.results.append(res)


def measure(args, c, count, env):
    """run_once, done again (up to --retries times, within the patience left) when
    other processes used the CPUs meanwhile."""
    for attempt in range(1 + args.retries):
        if not args.quick:
            wait_quiet(args)
        res = run_once(args, c, count, env)
        if (res is None or not disturbed(res) or attempt == args.retries or
                not args.patience):
            return res
        args.patience.spend(res["wall_s"])
        c.retried += 1


def disturbed(res):
    """Whether other processes took a noticeable share of the CPUs during the run: the
    benchmark's processes poll and are pinned, so any competitor skews the result."""
    return res["others_cpu_s"] > 0.015 + 0.04 * res["wall_s"]


# ---- machine ------------------------------------------------------------------------


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine(args):
    info = {}
    for line in sh(["lscpu"]).splitlines():
        k, _, v = line.partition(":")
        info[k.strip()] = v.strip()
    cpu = info.get("Model name", platform.processor() or "unknown CPU")
    cores = info.get("CPU(s)", str(os.cpu_count()))
    extra = ", ".join(
        x for x in (
            f"{info['Thread(s) per core']} thread(s) per core" if "Thread(s) per core" in info
            else "",
            f"hypervisor {info['Hypervisor vendor']}" if "Hypervisor vendor" in info else "",
        ) if x)
    cache = cmake_cache(args)
    btype = cache.get("CMAKE_BUILD_TYPE", "")
    cc = os.path.basename(cache.get("CMAKE_C_COMPILER", ""))
    if sanitized(cache):
        btype = (btype + ", " if btype else "") + "ASan+UBSan"
    ccv = sh([cc, "-dumpfullversion"]).strip() if cc else ""
    return {
        "cpu": f"{cpu}, {cores} CPUs" + (f" ({extra})" if extra else ""),
        "os": f"Linux {platform.release()} ({platform.machine()})",
        "build": " ".join(x for x in (cc, ccv, btype and f"({btype} build)") if x),
        "python": f"Python {platform.python_version()}",
    }


# ---- tables -------------------------------------------------------------------------


def fmt_rate(v):
    if v is None:
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= div:
            return f"{v / div:.3g} {unit}"
    return f"{v:.3g}"


def fmt_ns(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.3g} ms"
    if v >= 10000:
        return f"{v / 1000:.3g} µs"
    return f"{v:.3g} ns" if v < 100 else f"{v:.0f} ns"


def fmt_ratio(x):
    if x is None:
        return "—"
    return f"{x:.3g}×" if x < 100 else f"{x:.0f}×"


def ratio(a, b):
    return a / b if a is not None and b else None


def cell(c, fmt):
    if c is None:
        return "—"
    if c.failure:
        return "FAIL"
    if not c.results:
        return "n/a"
    return fmt(c.median())


def find(cases, kind, key, size=None):
    for c in cases:
        if c.kind == kind and c.key == key and (size is None or c.size == size):
            return c
    return None


def val(c, key=None):
    return c.median(key) if c is not None and c.results else None


def table(header, rows, align):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def py_speedup(cases, kind, shoal, mp, size):
    """How many times faster shoal's Python binding is than multiprocessing on a row
    (throughput: shoal ÷ multiprocessing; times: multiprocessing ÷ shoal)."""
    s, m = val(find(cases, kind, shoal, size)), val(find(cases, kind, mp, size))
    return ratio(s, m) if kind == "tput" else ratio(m, s)


def py_target_label(cases):
    """The Python Queue target's label, naming the other two Queue rows' ratios."""
    others = []
    for what, row in (("small objects", PY_ROWS[1]), ("Order structs", PY_ROWS[2])):
        x = py_speedup(cases, *row[1:])
        if x is not None:
            others.append(f"{what} {x:.3g}")
    return ("Python Queue ÷ multiprocessing.Queue, 64-byte `bytes` objects" +
            (f" (other rows: {', '.join(others)})" if others else ""))


def python_table(args, cases):
    L = [f"**Python binding: shoal vs multiprocessing.** Both sides are Python processes "
         f"forked from one parent and pinned to distinct cores; queues hold 1024 "
         f"messages, each put/get one object at a time (shoal pickles `bytes` and "
         f"Python objects as multiprocessing does, and copies a generated struct "
         f"without pickling). Throughput in messages per second, times per operation. "
         f"× = how many times faster shoal is. Order type: {args.py_order}.", ""]
    rows = []
    for label, kind, shoal, mp, size in PY_ROWS:
        pair = (find(cases, kind, shoal, size), find(cases, kind, mp, size))
        if kind == "rtt":  # the median, and the tail
            label += " (median, p99)"
            cells = [cell(c, fmt_ns) + (f", {fmt_ns(val(c, 'p99_ns'))}" if c and c.results
                                        else "") for c in pair]
        else:
            cells = [cell(c, fmt_rate if kind == "tput" else fmt_ns) for c in pair]
        rows.append([label] + cells + [fmt_ratio(py_speedup(cases, kind, shoal, mp, size))])
    L += table(["operation", "shoal", "multiprocessing", "×"], rows, "lrrr")
    L.append("")
    return L


def loop_ratio(cases, key):
    """A loop or epoll row's median ÷ the direct blocking get in the same mode."""
    direct = "direct_poll" if "_poll" in key else "direct_sleep"
    return ratio(val(find(cases, "rtt", key)), val(find(cases, "rtt", direct)))


def loop_table(cases):
    L = [f"**Event loop**, {RTT_SIZE}-byte round trip: the server watches N sources and "
         "the client uses one of them; the reply comes back on one SPSC queue. "
         "÷ direct = the row ÷ a direct blocking get in the same mode.", ""]
    rows = []
    for key, label, _ in LOOP:
        c = find(cases, "rtt", key)
        rows.append([label, cell(c, fmt_ns),
                     fmt_ns(val(c, "p99_ns")) if c and c.results else cell(c, fmt_ns),
                     fmt_ratio(loop_ratio(cases, key))])
    L += table(["server", "median", "p99", "÷ direct"], rows, "lrrr")
    L.append("")
    return L


def lang_table(cases):
    L = ["**Every binding on the same operations**: C calls libshoal directly; Python "
         "(ctypes), Rust (the shoal crate) and Node (an N-API addon, waits off the main "
         "thread) go through their bindings. Throughput in messages per second between "
         "two processes pinned to distinct cores (Node's not pinned), "
         "times per operation. ÷ C = the binding's cost in units of C's (above 1: "
         "slower than C).", ""]
    rows = []
    for label, kind, size, (ckind, ckey), py, rust, node in LANG_ROWS:
        fmt = fmt_rate if kind == "tput" else fmt_ns
        c = find(cases, ckind, ckey, size if ckind == "tput" else None)
        r = [label, cell(c, fmt)]
        for case in (py, rust, node):
            b = find(cases, kind, case, size) if case else None
            rel = (ratio(val(c), val(b)) if kind == "tput" else ratio(val(b), val(c))) \
                if b is not None else None
            r += [cell(b, fmt) if b is not None else "n/a", fmt_ratio(rel)]
        rows.append(r)
    L += table(["operation", "C", "Python", "÷ C", "Rust", "÷ C", "Node", "÷ C"], rows,
               "lrrrrrrr")
    L.append("")
    return L


def render(args, cases, info, cmdline, elapsed):
    L = []
    reps = "1 run" if args.repeats == 1 else f"median of {args.repeats} runs"
    L.append(f"Machine: {info['cpu']}; {info['os']}; {info['build']}; {info['python']}.")
    L.append("")
    how = ("smoke run with tiny counts: the numbers mean little" if args.quick else
           f"{reps} per cell, each timed over a {args.window_ms} ms window after a warm-up")
    L.append(f"Command: `{cmdline}` ({how}; the run took {elapsed / 60:.1f} min).")
    L.append("")

    spsc = {s: val(find(cases, "tput", "spsc", s)) for s in SIZES}
    L.append(f"**Throughput**, messages per second, one producer process and one "
             f"consumer process on distinct cores; queues hold 1024 messages. "
             f"× = shoal SPSC put/get ÷ the row (above 1: shoal is faster).")
    L.append("")
    rows = []
    for key, label, _, _ in TPUT:
        r = [label]
        for s in SIZES:
            c = find(cases, "tput", key, s)
            r.append(cell(c, fmt_rate))
            r.append(fmt_ratio(ratio(spsc[s], val(c))))
        rows.append(r)
    hdr = ["channel"]
    for s in SIZES:
        hdr += [f"{s} B", "×"]
    L += table(hdr, rows, "l" + "rr" * len(SIZES))
    L.append("")

    spin, futex = val(find(cases, "rtt", "spin")), val(find(cases, "rtt", "futex"))
    L.append(f"**Round trip**, {RTT_SIZE}-byte message there and back between two "
             f"processes on distinct cores (each sample includes one clock read, "
             f"{fmt_ns(val(find(cases, 'op', 'clock')))}).")
    L.append("")
    rows = []
    for key, label, _, _ in RTT:
        c = find(cases, "rtt", key)
        med = val(c)
        rows.append([label, cell(c, fmt_ns),
                     fmt_ns(val(c, "p99_ns")) if c and c.results else cell(c, fmt_ns),
                     fmt_ratio(ratio(med, spin)), fmt_ratio(ratio(med, futex))])
    L += table(["channel", "median", "p99", "÷ bare spin", "÷ bare futex"], rows, "lrrrr")
    L.append("")

    L += loop_table(cases)

    L.append("**Synchronisation**, nanoseconds per operation (two-process rows: wall "
             "time ÷ the operations of both). Bare: a C11 atomic on shared memory, a "
             "glibc robust process-shared pthread mutex. Python: `Lock`, `Value('q')."
             "value`, and `with v.get_lock(): v.value += 1` for the add.")
    L.append("")
    rows = []
    for label, bare, shoal, mp in SYNC_ROWS:
        cb = find(cases, "op", bare) if bare else None
        cs = find(cases, "op", shoal) if shoal else None
        cm = find(cases, "op", mp) if mp else None
        rows.append([label, cell(cb, fmt_ns), cell(cs, fmt_ns),
                     fmt_ratio(ratio(val(cs), val(cb))), cell(cm, fmt_ns)])
    L += table(["operation", "bare", "shoal", "shoal ÷ bare", "Python multiprocessing"],
               rows, "lrrrr")
    L.append("")

    L += python_table(args, cases)
    L += lang_table(cases)

    L.append("**Targets** (specification, section 8), as ratios measured in this run.")
    L.append("")
    nng64 = [val(find(cases, "tput", k, 64)) for k in ("nng_pair", "nng_pair_big")]
    nng64 = max([v for v in nng64 if v], default=None)
    targets = [
        (f"SPSC queue {s} B ÷ bare ring {s} B", f">= {want}",
         ratio(spsc[s], val(find(cases, "tput", "ring", s))),
         lambda x, want=want: x >= want)
        for s, want in ((8, 0.8), (64, 0.9), (1024, 0.95))
    ] + [
        ("Pipe round trip, polling ÷ bare spin", "<= 1.5",
         ratio(val(find(cases, "rtt", "pipe_poll")), spin), lambda x: x <= 1.5),
        ("SPSC queue pair round trip, polling ÷ bare spin", "<= 1.5",
         ratio(val(find(cases, "rtt", "qpair_poll")), spin), lambda x: x <= 1.5),
        ("Pipe round trip, asleep ÷ bare futex", "<= 1.05",
         ratio(val(find(cases, "rtt", "pipe_sleep")), futex), lambda x: x <= 1.05),
        ("SPSC queue pair round trip, asleep ÷ bare futex", "<= 1.05",
         ratio(val(find(cases, "rtt", "qpair_sleep")), futex), lambda x: x <= 1.05),
        ("SPSC queue 64 B ÷ POSIX mq 64 B", ">= 10",
         ratio(spsc[64], val(find(cases, "tput", "mq", 64))), lambda x: x >= 10),
        ("SPSC queue 64 B ÷ best nng pair1 64 B", ">= 50", ratio(spsc[64], nng64),
         lambda x: x >= 50),
    ] + [
        (f"Loop ({eng}) round trip, {how}, {n} source(s) ÷ direct blocking get", "<= 1.2",
         loop_ratio(cases, f"loop_{eng}_{mode}_{n}"), lambda x: x <= 1.2)
        for eng in ("uring", "epoll") for mode, how in (("poll", "polling"),
                                                         ("sleep", "asleep"))
        for n in (1, 1000)
    ] + [
        (py_target_label(cases), ">= 10",
         py_speedup(cases, *PY_ROWS[0][1:]), lambda x: x >= 10),
    ]
    rows = []
    for label, want, got, ok in targets:
        status = "n/a" if got is None else ("met" if ok(got) else "**MISSED**")
        rows.append([label, want, "n/a" if got is None else f"{got:.3g}", status])
    L += table(["target", "required", "measured", ""], rows, "llrl")
    L.append("")

    notes = []
    for c in cases:
        what = f"{c.case} {c.size} B" if c.kind == "tput" else c.case
        if c.failure:
            notes.append(f"FAIL {what}: {c.failure}")
        elif c.skip:
            notes.append(f"n/a {what}: {c.skip}")
        for n in sorted(c.notes):
            notes.append(f"{what}: {n}")
    retried = sum(c.retried for c in cases)
    kept = sum(c.disturbed for c in cases)
    if not args.quick and (retried or kept):
        notes.append(f"{retried} runs were done again because other processes used the "
                     f"CPUs meanwhile; {kept} of the results kept still had such company")
    # Collapse the per-size duplicates of a skipped or limited row.
    seen, uniq = set(), []
    for n in notes:
        k = re.sub(r" \d+ B", "", n)
        if k not in seen:
            seen.add(k)
            uniq.append(k)
    if uniq:
        L.append("Notes: " + "; ".join(uniq) + ".")
        L.append("")
    def spread(c):
        vals = [r[c.metric()] for r in c.results]
        f = fmt_rate if c.kind == "tput" else fmt_ns
        return f"{f(min(vals))} – {f(max(vals))}" if len(vals) > 1 else f(vals[0])

    rows = [[c.case, str(c.size), str(c.count), spread(c)] for c in cases if c.results]
    L.append("<details><summary>Counts and spread (lowest – highest of the runs) per "
             "case</summary>\n")
    L += table(["case", "bytes", "count", "spread"], rows, "lrrr")
    L.append("\n</details>")
    return "\n".join(L) + "\n"


# ---- main ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join("build", "bench"),
                    help="directory holding the built bench programs (default build/bench)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: tiny counts, one repeat (what CI runs)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs per case, medians reported (default 5; --quick: 1)")
    ap.add_argument("--window-ms", type=int, default=200,
                    help="timed window per run in milliseconds (default 200)")
    ap.add_argument("--only", default=None,
                    help="regular expression: run only the cases whose name matches")
    ap.add_argument("--timeout", type=int, default=None,
                    help="seconds before a run counts as hung (default 60; --quick: 30)")
    ap.add_argument("--retries", type=int, default=None,
                    help="times a run is repeated when other processes used the CPUs "
                         "meanwhile (default 3; --quick: 0)")
    ap.add_argument("--patience", type=float, default=120.0,
                    help="seconds the whole run may spend waiting for the machine to "
                         "become idle and redoing disturbed runs (default 120; --quick: 0)")
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    ap.add_argument("--json", default=None,
                    help="also write every result of every repeat to this file")
    args = ap.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.retries is None:
        args.retries = 0 if args.quick else 3
    args.patience = Patience(0 if args.quick else args.patience)
    args.machine_busy = True
    if args.timeout is None:
        args.timeout = 30 if args.quick else 60

    cases = all_cases()
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.case)]
    root = tempfile.mkdtemp(prefix="shoal-bench-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args.tmp = tempfile.mkdtemp(prefix="shoal-bench-tmp-")
    env = dict(os.environ, SHOAL_ROOT=root, SHOAL_DOMAIN="bench")
    args.py_order = "none (the rows did not run)"
    args.py_env, args.py_skip = py_shoal_env(args, env)
    args.lang_env = lang_env(args, env)
    started = time.monotonic()
    try:
        run_all(args, cases, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(args.tmp, ignore_errors=True)
    elapsed = time.monotonic() - started

    cmdline = " ".join(["python3", os.path.relpath(os.path.abspath(__file__))] +
                       sys.argv[1:])
    text = render(args, cases, machine(args), cmdline, elapsed)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([{"case": c.case, "size": c.size, "count": c.count, "skip": c.skip,
                        "failure": c.failure, "results": c.results} for c in cases], f,
                      indent=1)
    failed = [c for c in cases if c.failure]
    for c in failed:
        print(f"FAIL {c.case} size={c.size}: {c.failure}", file=sys.stderr)
    ran = sum(1 for c in cases if c.results)
    print(f"{ran} cases measured, {sum(1 for c in cases if c.skip)} n/a, "
          f"{len(failed)} failed, in {elapsed:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
