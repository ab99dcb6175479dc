"""shoal.Manager closing while other threads are inside a call: a daemon thread blocked
in a queue get, another in a lock acquire and a third waiting for a reply while the
main thread ends the interpreter (atexit closes the session) or closes the session
itself. Those threads return with an error (the session is closed) and nothing touches
the freed session: under the sanitizers (libshoal built with SHOAL_SANITIZE, its
runtime preloaded) a use after free aborts the child, which this test sees.

And closing loses no write: a process makes pipelined writes (sent without waiting for
their replies) and then ends — the interpreter's exit, manager.shutdown(), the end of a
multiprocessing child — and every write is in the broker afterwards, each way repeated.

Each case runs in a fresh interpreter; both client paths (the C extension and, as
python.manager_exit.pure, ctypes) take part.
"""
import os
import subprocess
import sys
import textwrap
import unittest

_PRELUDE = textwrap.dedent("""
    import sys, threading, time
    import shoal
    from shoal import managers

    m = shoal.Manager()  # started: a private broker
    q = m.Queue()
    lock = m.Lock()
    lock.acquire()  # held by the main thread: the acquirers below block
    d = m.dict()
    started = threading.Barrier(5)
    errors = []

    def getter():
        started.wait()
        try:
            q.get()
        except Exception as e:
            errors.append(type(e).__name__)

    def acquirer():
        started.wait()
        try:
            lock.acquire()
        except Exception as e:
            errors.append(type(e).__name__)

    def writer():
        started.wait()
        try:
            while True:
                d["k"] = d.get("k", 0) + 1
        except Exception as e:
            errors.append(type(e).__name__)

    for f in (getter, getter, acquirer, writer):
        threading.Thread(target=f, daemon=True).start()
    started.wait()
    time.sleep(0.3)  # the threads are inside their calls, the GIL released
""")


def _run(body):
    env = dict(os.environ)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    p = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(body)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(
        errors="replace")


class ExitWithThreadsInsideTest(unittest.TestCase):
    def check(self, body, out):
        rc, stdout, stderr = _run(body)
        self.assertNotIn("AddressSanitizer", stderr)
        self.assertEqual(rc, 0, stderr[-3000:])
        self.assertIn(out, stdout, stderr[-3000:])

    def test_interpreter_exit_with_daemon_threads_blocked(self):
        # atexit closes the session while the daemon threads wait in libshoal
        self.check("""
            print("exiting", flush=True)
        """, "exiting")

    def test_close_wakes_the_waiting_threads(self):
        # the session closed by hand: every thread returns with an error, none hangs
        self.check("""
            s = managers._sessions[(m.address, m._authkey)]
            s.close()
            for _ in range(500):
                if len(errors) == 4:
                    break
                time.sleep(0.01)
            print("woken", sorted(set(errors)), len(errors), flush=True)
            assert len(errors) == 4, errors
            m.shutdown()
        """, "woken")


_WRITER = textwrap.dedent("""
    import multiprocessing, sys
    import shoal

    address, base, n, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

    def write():
        m = shoal.Manager(address=address)
        d = m.dict(name="written")
        for i in range(base, base + n):
            d[i] = i  # pipelined: nobody waits for the reply
        return m

    if how == "mp":  # a multiprocessing child ends with os._exit
        p = multiprocessing.get_context("fork").Process(target=write)
        p.start()
        p.join()
        sys.exit(p.exitcode)
    m = write()
    if how == "shutdown":
        m.shutdown()
    # "exit": the interpreter's exit closes the session
""")


class ExitKeepsPipelinedWritesTest(unittest.TestCase):
    def test_writes_then_end(self):
        import shoal
        n = 2000
        with shoal.Manager() as m:
            d = m.dict(name="written")
            base = 0
            for _ in range(3):
                for how in ("exit", "shutdown", "mp"):
                    p = subprocess.run(
                        [sys.executable, "-c", _WRITER, m.address, str(base), str(n),
                         how], stderr=subprocess.PIPE, timeout=120)
                    self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
                    base += n
                    self.assertEqual(len(d), base, how)
                    self.assertEqual(d[base - 1], base - 1, how)


if __name__ == "__main__":
    unittest.main()
