"""Pipe and Connection."""

import multiprocessing as mp
import os
import pickle
import signal
import socket
import time
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal import _bulk  # noqa: E402

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


def _echo(conn):
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        conn.send(("echo", msg))
    conn.close()


def _send_then_die(conn, ready):
    conn.send("last words")
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def _write_n(conn, who, n, start):
    start.wait(60)
    for i in range(n):
        conn.send((who, i))
        if i % 50 == 0:
            time.sleep(0.001 * who)  # the writers finish at different times
    conn.close()


def _send_and_exit(conn):
    for m in ["hello", "hey", "hru?", "END"]:
        conn.send(m)
    conn.close()


class PipeTest(unittest.TestCase):
    def test_duplex_in_one_process(self):
        a, b = shoal.Pipe()
        a.send({"x": 1})
        b.send([1, 2])
        self.assertTrue(b.poll())
        self.assertEqual(b.recv(), {"x": 1})
        self.assertEqual(a.recv(), [1, 2])
        self.assertFalse(a.poll())
        t0 = time.monotonic()
        self.assertFalse(a.poll(0.1))
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        self.assertEqual((a.end, b.end), (0, 1))

    def test_bytes(self):
        a, b = shoal.Pipe()
        a.send_bytes(b"abcdef", 1, 3)
        self.assertEqual(b.recv_bytes(), b"bcd")
        a.send_bytes(bytearray(b"xyz"))
        buf = bytearray(10)
        self.assertEqual(b.recv_bytes_into(buf, 2), 3)
        self.assertEqual(bytes(buf[2:5]), b"xyz")
        a.send_bytes(b"too long")
        with self.assertRaises(OSError):
            b.recv_bytes(maxlength=3)
        with self.assertRaises(ValueError):
            a.send_bytes(b"abc", 2, 5)

    def test_one_way(self):
        r, w = shoal.Pipe(duplex=False)
        w.send(1)
        self.assertEqual(r.recv(), 1)
        with self.assertRaises(OSError):
            r.send(2)
        with self.assertRaises(OSError):
            w.recv()
        self.assertIsInstance(r.fileno(), int)  # see test_connwait

    def test_round_trips_with_a_forked_child(self):
        parent, child = shoal.Pipe()
        p = fork.Process(target=_echo, args=(child,))
        p.start()
        for i in range(200):
            parent.send(i)
            self.assertEqual(parent.recv(), ("echo", i))
        parent.close()  # the child then gets EOFError and exits
        p.join(30)
        self.assertEqual(p.exitcode, 0)

    def test_eof_after_draining(self):
        a, b = shoal.Pipe()
        p = fork.Process(target=_send_and_exit, args=(b,))
        p.start()
        p.join(30)
        got = []
        while True:
            try:
                got.append(a.recv())
            except EOFError as e:
                self.assertIsInstance(e, shoal.EndOfStream)
                self.assertNotIsInstance(e, shoal.PeerDied)
                break
        self.assertEqual(got, ["hello", "hey", "hru?", "END"])
        self.assertTrue(a.poll())  # recv would not block: it raises at once
        with self.assertRaises(BrokenPipeError):
            a.send("anyone?")

    def test_peer_died(self):
        a, b = shoal.Pipe()
        ready = shoal.Event()
        p = fork.Process(target=_send_then_die, args=(b, ready))
        p.start()
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertEqual(a.recv(), "last words")
        t0 = time.monotonic()
        with self.assertRaises(shoal.PeerDied) as cm:
            a.recv()
        self.assertIsInstance(cm.exception, EOFError)
        self.assertLess(time.monotonic() - t0, 10)

    def test_spawned_child_takes_its_end(self):
        parent, child = shoal.Pipe()
        p = spawn.Process(target=_echo, args=(child,))
        p.start()
        child.close()  # pickled for the child: released once the child holds the end
        parent.send("over spawn")
        self.assertEqual(parent.recv(), ("echo", "over spawn"))
        parent.close()
        p.join(60)
        self.assertEqual(p.exitcode, 0)

    def _three_writers(self, ctx):
        # Three processes hold the writing end (the parent closes its own copy): the
        # reader gets every message of every writer, and EOFError only after the last
        # of them has closed the end, whichever exits first.
        r, w = shoal.Pipe(duplex=False)
        start = ctx.Event()
        ps = [ctx.Process(target=_write_n, args=(w, k, 200, start)) for k in range(3)]
        for p in ps:
            p.start()
        w.close()
        start.set()
        got = {0: [], 1: [], 2: []}
        t0 = time.monotonic()
        while True:
            try:
                who, i = r.recv()
            except EOFError as e:
                self.assertNotIsInstance(e, shoal.PeerDied)
                break
            got[who].append(i)
        self.assertLess(time.monotonic() - t0, 60)
        self.assertEqual(got, {k: list(range(200)) for k in range(3)})
        for p in ps:
            p.join(60)
            self.assertEqual(p.exitcode, 0)

    def test_three_forked_writers_on_one_end(self):
        self._three_writers(fork)

    def test_three_spawned_writers_on_one_end(self):
        self._three_writers(spawn)

    def test_one_of_several_writers_killed(self):
        # A writer killed without closing the end does not end the stream while
        # another holds it; once the survivor closes, the reader gets PeerDied.
        r, w = shoal.Pipe(duplex=False)
        ready = fork.Event()
        victim = fork.Process(target=_send_then_die, args=(w, ready))
        start = fork.Event()
        survivor = fork.Process(target=_write_n, args=(w, 0, 5, start))
        survivor.start()
        victim.start()
        w.close()
        victim.join(60)
        self.assertEqual(victim.exitcode, -signal.SIGKILL)
        self.assertEqual(r.recv(), "last words")
        self.assertFalse(r.poll(0.2))  # the survivor still holds the end
        start.set()
        self.assertEqual([r.recv() for _ in range(5)], [(0, i) for i in range(5)])
        with self.assertRaises(shoal.PeerDied):
            r.recv()
        survivor.join(60)
        self.assertEqual(survivor.exitcode, 0)

    def test_named_ends_opened_by_unrelated_processes(self):
        a = shoal.Connection.open("named-pipe", 0)
        child = _util.start_py("""
            import shoal
            try:
                shoal.Connection.open('named-pipe', 0, create=False)
            except shoal.Busy as e:
                print('busy:', e, flush=True)
            c = shoal.Connection.open('named-pipe', 1, create=False)
            c.send(c.recv() * 2)
            c.close()
        """)
        a.send(21)
        self.assertEqual(a.recv(), 42)
        with self.assertRaises(EOFError):
            a.recv()
        out, err = child.communicate(timeout=30)
        self.assertEqual(child.returncode, 0, err)
        self.assertIn('busy: pipe "named-pipe": end 0 is held by process %d'
                      % os.getpid(), out)

    def test_ctrl_c_in_a_waiting_recv(self):
        # recv() waits with the GIL released; Ctrl-C still raises KeyboardInterrupt,
        # and the pipe works on afterwards.
        a = shoal.Connection.open("ctrl-c-pipe", 0)
        child = _util.start_py("""
            import shoal
            c = shoal.Connection.open('ctrl-c-pipe', 1, create=False)
            print('waiting', flush=True)
            try:
                c.recv()
            except KeyboardInterrupt:
                print('interrupted', flush=True)
            print(c.recv(), flush=True)
        """)
        self.assertEqual(child.stdout.readline().strip(), "waiting")
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        self.assertEqual(child.stdout.readline().strip(), "interrupted")
        a.send("after")
        out, err = child.communicate(timeout=30)
        self.assertEqual(child.returncode, 0, err)
        self.assertEqual(out.strip(), "after")

    def test_messages_of_any_size(self):
        # Longer than max_msg: in a segment of its own, removed once received.
        a, b = shoal.Pipe(max_msg=64)
        a.send("x" * 100)
        self.assertEqual(b.recv(), "x" * 100)
        a.send_bytes(b"y" * (16 << 20))
        self.assertEqual(len(b.recv_bytes()), 16 << 20)
        # Raw bytes that look like an out-of-line reference still arrive as sent.
        tricky = _bulk.MAGIC + b"\0" * 8 + b"no-such-segment"
        a.send_bytes(tricky)
        self.assertEqual(b.recv_bytes(), tricky)
        self.assertEqual(_util.segments_named("big-"), [])

    def test_recv_bytes_into_too_small_buffer(self):
        a, b = shoal.Pipe()
        a.send_bytes(b"abcdef")
        with self.assertRaises(mp.BufferTooShort) as cm:
            b.recv_bytes_into(bytearray(3))
        self.assertEqual(cm.exception.args[0], b"abcdef")

    def test_sockets_travel_by_multiprocessing_reduction(self):
        a, b = shoal.Pipe()
        s1, s2 = socket.socketpair()
        a.send(s1)
        got = b.recv()
        got.sendall(b"ping")
        self.assertEqual(s2.recv(4), b"ping")
        for s in (s1, s2, got):
            s.close()

    def test_pickled_connection_reopens_by_name(self):
        a, b = shoal.Pipe()
        twin = pickle.loads(pickle.dumps(b))
        a.send("to twin")
        self.assertEqual(twin.recv(), "to twin")


if __name__ == "__main__":
    unittest.main()
