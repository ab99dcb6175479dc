"""Connection.fileno() and shoal.connection.wait(): descriptors readable exactly while
poll() is true, select() woken by another process, wait() over shoal and OS objects
mixed, and no descriptor leaked."""

import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import select
import socket
import time
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal.connection import wait  # noqa: E402

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


def readable(fd, timeout=0.0):
    return bool(select.select([fd], [], [], timeout)[0])


def _send_after(conn, delay, msg):
    time.sleep(delay)
    conn.send(msg)


def _child_fileno(conn, out):
    # A Connection received by pickling (spawn) or inherited (fork): its own fd.
    fd = conn.fileno()
    ok = readable(fd, 30) and conn.recv() == "to child" and not readable(fd)
    out.send(ok)


class TestFileno(unittest.TestCase):
    def test_readable_exactly_while_poll(self):
        a, b = shoal.Pipe()
        fd = b.fileno()
        self.assertIsInstance(fd, int)
        self.assertEqual(b.fileno(), fd)
        self.assertFalse(readable(fd, 0.05))
        a.send("one")
        a.send_bytes(b"two")
        self.assertTrue(readable(fd, 10))
        self.assertEqual(b.recv(), "one")
        self.assertTrue(readable(fd))
        self.assertEqual(b.recv_bytes(), b"two")
        self.assertFalse(readable(fd))
        self.assertFalse(b.poll())
        a.close()  # end of stream: readable for good
        self.assertTrue(readable(fd, 10))
        self.assertRaises(EOFError, b.recv)
        self.assertTrue(readable(fd))
        b.close()
        self.assertRaises(OSError, os.fstat, fd)  # closed with the connection
        self.assertRaises(OSError, b.fileno)

    def test_select_from_another_process(self):
        a, b = shoal.Pipe()
        fd = b.fileno()
        p = spawn.Process(target=_send_after, args=(a, 0.2, "from afar"))
        p.start()
        r, _, _ = select.select([b], [], [], 30)  # select() takes the Connection
        self.assertEqual(r, [b])
        self.assertEqual(b.recv(), "from afar")
        p.join(30)
        self.assertFalse(readable(fd))

    def test_fileno_in_children(self):
        for ctx in (fork, spawn):
            with self.subTest(ctx.get_start_method()):
                a, b = shoal.Pipe()
                b.fileno()  # the parent has one already
                out_r, out_w = ctx.Pipe(False)
                p = ctx.Process(target=_child_fileno, args=(b, out_w))
                p.start()
                a.send("to child")
                self.assertTrue(out_r.poll(60))
                self.assertTrue(out_r.recv())
                p.join(30)
                a.close()
                b.close()

    def test_multiprocessing_wait_accepts_it(self):
        a, b = shoal.Pipe()
        self.assertEqual(mpc.wait([b], 0.05), [])
        a.send(1)
        self.assertEqual(mpc.wait([b], 10), [b])
        b.recv()
        self.assertEqual(mpc.wait([b], 0), [])

    def test_no_fd_leak(self):
        a, b = shoal.Pipe()
        b.fileno()  # the helper thread runs: its descriptors are counted below
        q = shoal.Queue()
        before = len(os.listdir("/proc/self/fd"))
        for i in range(100):  # (creating a pipe is the slow part: 100 of them)
            x, y = shoal.Pipe()
            y.fileno()
            if i % 2:
                x.send(i)
            x.close()
            y.close()
        for i in range(1000):  # a queue's descriptor opened and closed 1,000 times
            if i % 2:
                q.put(i)
            self.assertEqual(wait([q], 0), [q] if i % 2 else [])
            if i % 2:
                q.get()
            q._close_ready_fd()
        self.assertEqual(len(os.listdir("/proc/self/fd")), before)
        q.close()


class TestWait(unittest.TestCase):
    def test_mixed_objects(self):
        a, b = shoal.Pipe()
        q = shoal.Queue()
        mr, mw = mp.Pipe(False)
        s1, s2 = socket.socketpair()
        r_fd, w_fd = os.pipe()
        objs = [b, q, mr, s1, r_fd]
        try:
            self.assertEqual(wait(objs, 0.05), [])
            q.put("q")
            self.assertEqual(wait(objs, 10), [q])
            s2.send(b"s")
            a.send("c")
            self.assertEqual(wait(objs, 10), [b, q, s1])
            self.assertEqual(q.get(), "q")
            self.assertEqual(b.recv(), "c")
            s1.recv(1)
            mw.send("m")
            os.write(w_fd, b"x")
            self.assertEqual(wait(objs, 10), [mr, r_fd])
            mr.recv()
            os.read(r_fd, 1)
            self.assertEqual(wait(objs, 0), [])
        finally:
            for o in (a, b, q, mr, mw, s1, s2):
                o.close()
            os.close(r_fd)
            os.close(w_fd)

    def test_woken_by_another_process_and_sentinel(self):
        a, b = shoal.Pipe()
        q = shoal.Queue()
        p = fork.Process(target=q.put, args=("later",))
        t0 = time.monotonic()
        p2 = spawn.Process(target=_send_after, args=(a, 0.3, "x"))
        p2.start()
        self.assertEqual(wait([b, q], 30), [b])
        self.assertEqual(b.recv(), "x")
        p2.join(30)
        p.start()
        got = wait([q], 30)
        self.assertEqual(got, [q])
        p.join(30)
        self.assertEqual(wait([p.sentinel, q], 1), [p.sentinel, q])
        self.assertEqual(q.get(), "later")
        self.assertEqual(wait([q], 0.05), [])
        self.assertLess(time.monotonic() - t0, 60)

    def test_timeout_and_end_of_stream(self):
        q = shoal.Queue()
        t0 = time.monotonic()
        self.assertEqual(wait([q], 0.2), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        q.shutdown()  # get() raises at once: ready
        self.assertEqual(wait([q], 10), [q])
        self.assertRaises(EOFError, q.get)

    def test_typed_and_unbounded_queue(self):
        tq = shoal.TypedQueue("i", 4)
        self.assertEqual(wait([tq], 0), [])
        tq.put(7)
        self.assertEqual(wait([tq], 10), [tq])
        self.assertEqual(tq.get(), 7)
        self.assertEqual(wait([tq], 0), [])
        # an unbounded queue past its first ring: the chain's rings are watched
        q = shoal.Queue()
        for i in range(3000):
            q.put(i)
        self.assertEqual(wait([q], 10), [q])
        for i in range(3000):
            self.assertEqual(q.get(), i)
        self.assertEqual(wait([q], 0.05), [])
        p = fork.Process(target=_put_later, args=(q,))
        p.start()
        self.assertEqual(wait([q], 30), [q])
        self.assertEqual(q.get(), "late")
        p.join(30)


def _put_later(q):
    time.sleep(0.2)
    q.put("late")


if __name__ == "__main__":
    unittest.main()
