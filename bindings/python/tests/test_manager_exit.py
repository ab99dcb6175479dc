"""shoal.Manager closing while other threads are inside a call: a daemon thread blocked
in a queue get, another in a lock acquire and a third waiting for a reply while the
main thread ends the interpreter (atexit closes the session) or closes the session
itself. Those threads return with an error (the session is closed) and nothing touches
the freed session: under the sanitizers (libshoal built with SHOAL_SANITIZE, its
runtime preloaded) a use after free aborts the child, which this test sees.

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


if __name__ == "__main__":
    unittest.main()
