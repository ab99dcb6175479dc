"""shoal.Manager's pipelined writes against a real broker: writes sent without waiting
keep their order, their errors surface at the next call that waits (or flush(),
shutdown()), per thread; processes that end right after writing lose nothing; a
proxy pickled to another process carries the writes made before.

Run by CTest (broker.pipeline) with SHOAL_LIBRARY, SHOAL_CLI and PYTHONPATH set.
"""
import multiprocessing
import pickle
import threading
import time
import unittest

import manager_case
import shoal
from shoal import managers


def _write_and_return(d, l, n):
    for i in range(n):
        d[i] = i
        l.append(i)


def _read(d, key, out):
    out.put(d.get(key))


def _read_after(ev, d, n, out):
    ev.wait(20)
    out.put([d.get(i) for i in range(n)])


def _poll(d, keys, out, limit=10.0):
    """Puts how long keys took to show in d (or None after limit seconds)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if all(d.get(k) is not None for k in keys):
            out.put(time.monotonic() - t0)
            return
        time.sleep(0.005)
    out.put(None)


def _write_then_idle(d, keys, ready):
    """A forked child: writes, tells, then idles without any manager call."""
    for k in keys:
        d[k] = "child"
    ready.put(True)
    time.sleep(3)


def _count_under_lock(lk, d, n, depth):
    """n increments of d["n"] under lk, the write pipelined (depth 64: the release then
    leaves with it, in one batch, for the broker to run after it) or not (depth 0: the
    write acknowledged first, the release then taken in the broker's lock table over
    shm://, docs/broker.md "Locks over shm://")."""
    managers.pipeline_depth = depth
    for _ in range(n):
        with lk:
            d["n"] = d["n"] + 1


class PipelineTest(manager_case.ManagerCase):
    def tearDown(self):
        managers.pipeline_depth = 64

    def test_a_failed_write_in_the_middle_of_batches(self):
        # 300 writes span several batches; the one at 130 fails: its error comes once,
        # at the next call that waits, and every write after it ran
        d, v = self.m.dict(), self.m.Value("i", 0)
        for i in range(300):
            if i == 130:
                v.value = "not an int"
            d[i] = i
        with self.assertRaises(TypeError):
            len(d)
        self.assertEqual(len(d), 300)
        self.assertEqual(d[299], 299)

    def test_a_signalling_write_carries_the_data_writes_before_it(self):
        # data writes may wait in the thread's batch; an event set goes out at once
        # with them, so a process woken by it sees them
        d, ev = self.m.dict(), self.m.Event()
        out = multiprocessing.get_context("fork").Queue()
        p = multiprocessing.get_context("fork").Process(target=_read_after,
                                                        args=(ev, d, 5, out))
        p.start()
        for i in range(5):
            d[i] = i * 10
        ev.set()
        self.assertEqual(out.get(timeout=30), [0, 10, 20, 30, 40])
        p.join()

    def test_idle_writes_reach_other_processes(self):
        # a thread writes a few keys then sleeps with no other manager call: the idle
        # flusher sends its batch, and another process sees the keys well before the
        # sleep ends
        d = self.m.dict()
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        p = ctx.Process(target=_poll, args=(d, ["status", "step"], out))
        p.start()
        d["status"] = "running"
        d["step"] = 1
        t0 = time.monotonic()
        time.sleep(2)
        waited = out.get(timeout=30)
        p.join()
        self.assertIsNotNone(waited, "the writes never showed")
        # seen while the writer slept (polled from before the writes)
        self.assertLess(waited, 0.5 + (time.monotonic() - t0 - 2))

    def test_an_error_found_by_the_idle_flusher_comes_at_the_next_call(self):
        # three batches sent by the idle flusher alone (the thread only sleeps
        # between them): sending the third collects the first, whose write failed;
        # the error is the writer's, raised once at its next call
        d, v = self.m.dict(), self.m.Value("i", 0)
        v.value = "not an int"
        for i in range(3):
            d[i] = i
            time.sleep(0.2)
        with self.assertRaises(TypeError):
            len(d)
        self.assertEqual(len(d), 3)
        self.assertEqual(v.value, 0)

    def test_a_forked_childs_idle_writes_are_sent(self):
        # the flusher thread is not in a forked child: the child's first batch starts
        # its own, and its writes show while it idles
        d = self.m.dict()
        d["parent"] = 1  # the parent's flusher running
        time.sleep(0.1)
        ctx = multiprocessing.get_context("fork")
        ready = ctx.Queue()
        p = ctx.Process(target=_write_then_idle, args=(d, ["a", "b"], ready))
        p.start()
        self.assertTrue(ready.get(timeout=30))
        t0 = time.monotonic()
        while d.get("b") is None and time.monotonic() - t0 < 10:
            time.sleep(0.005)
        seen = time.monotonic() - t0
        self.assertEqual((d.get("a"), d.get("b")), ("child", "child"))
        self.assertLess(seen, 2.5)  # before the child's sleep ends
        p.join()
        self.assertEqual(p.exitcode, 0)

    def test_writes_keep_their_order(self):
        d, l, ns = self.m.dict(), self.m.list(), self.m.Namespace()
        for i in range(500):                  # more than the pipeline's depth
            d["k"] = i
            l.append(i)
            ns.x = i
        l.extend([500, 501])
        self.assertEqual(d["k"], 499)
        self.assertEqual(l[:], list(range(502)))
        self.assertEqual(ns.x, 499)

    def test_first_error_surfaces_at_the_next_wait(self):
        v = self.m.Value("i", 1)
        q = self.m.JoinableQueue()
        v.value = 2
        v.value = "not an int"                # refused by the broker: raised later
        q.task_done()                         # too many: a second error, not raised
        v.value = 3                           # still runs
        with self.assertRaises(shoal.WrongType):
            v.value                           # waits: collects the three, raises
        self.assertEqual(v.value, 3)          # the error was raised once

    def test_release_of_what_is_not_held_raises_at_once(self):
        lk, r, s = self.m.Lock(), self.m.RLock(), self.m.BoundedSemaphore(2)
        with self.assertRaises(shoal.NotOwner):
            lk.release()
        with r:
            with r:
                pass
        with self.assertRaises(shoal.NotOwner):
            r.release()
        s.acquire()
        s.release()                           # taken here: pipelined
        with self.assertRaises(ValueError):
            s.release()                       # not taken: waits, raises
        r.acquire()
        out = []

        def other():
            try:
                r.release()                   # another thread does not hold it
            except shoal.NotOwner:
                out.append("refused at once")
        t = threading.Thread(target=other)
        t.start()
        t.join()
        self.assertEqual(out, ["refused at once"])
        r.release()
        self.assertFalse(r.locked())

    def test_error_of_a_write_past_the_depth(self):
        managers.pipeline_depth = 4
        d = self.m.dict()
        d[[1]] = 0                            # broker refuses a list key
        for i in range(20):                   # its reply is collected on the way
            d[i] = i
        with self.assertRaises(shoal.InvalidArgument):
            self.m.flush()
        self.assertEqual(len(d), 20)

    def test_depth_zero_waits_for_each(self):
        managers.pipeline_depth = 0
        v = self.m.Value("i", 1)
        with self.assertRaises(shoal.WrongType):
            v.value = "text"

    def test_errors_belong_to_their_thread(self):
        v = self.m.Value("i", 1)
        d = self.m.dict()
        seen = []

        def bad():
            v.value = "text"
            try:
                v.value
            except shoal.WrongType:
                seen.append("bad")

        def good():
            for i in range(200):
                d[i] = i
            seen.append(len(d))
        ts = [threading.Thread(target=bad), threading.Thread(target=good)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(map(str, seen)), ["200", "bad"])

    def test_processes_that_end_right_after_writing(self):
        for method in ("fork", "spawn"):
            d, l = self.m.dict(), self.m.list()
            p = multiprocessing.get_context(method).Process(target=_write_and_return,
                                                            args=(d, l, 300))
            p.start()
            p.join()
            self.assertEqual(p.exitcode, 0)
            self.assertEqual(len(d), 300, method)
            self.assertEqual(l[:], list(range(300)), method)

    def test_pickled_proxy_sees_the_writes_before(self):
        d = self.m.dict()
        q = self.m.Queue()
        d["x"] = "written"
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_read, args=(d, "x", q))
        p.start()
        self.assertEqual(q.get(timeout=60), "written")
        p.join()
        d2 = pickle.loads(pickle.dumps(d))
        d["y"] = 1
        pickle.dumps(d)                       # flushes
        self.assertEqual(d2.get("y"), 1)

    def test_unbounded_queue_put_and_lock_release(self):
        q, lk, ev = self.m.Queue(), self.m.Lock(), self.m.Event()
        for i in range(100):
            q.put(i)
        self.assertEqual([q.get() for _ in range(100)], list(range(100)))
        for _ in range(50):
            lk.acquire()
            lk.release()
        ev.set()
        self.assertTrue(ev.wait(0))
        self.assertTrue(lk.acquire(timeout=5))
        lk.release()

    def test_what_the_holder_wrote_is_seen_by_the_next(self):
        # 4 processes x 5,000 increments under one lock, each write pipelined (then,
        # each waited for): the sum is exact, whether the release went with the write
        # (the batch) or alone, in the lock table
        for depth in (64, 0):
            lk, d = self.m.Lock(), self.m.dict()
            d["n"] = 0
            ctx = multiprocessing.get_context("fork")
            ps = [ctx.Process(target=_count_under_lock, args=(lk, d, 5000, depth))
                  for _ in range(4)]
            for p in ps:
                p.start()
            for p in ps:
                p.join(120)
                self.assertEqual(p.exitcode, 0)
            self.assertEqual(d["n"], 20000)
            self.assertFalse(lk.locked())

    def test_shutdown_raises_the_pending_error(self):
        m2 = shoal.Manager()
        v = m2.Value("i", 0)
        v.value = "text"
        with self.assertRaises(shoal.WrongType):
            m2.shutdown()


if __name__ == "__main__":
    unittest.main()
