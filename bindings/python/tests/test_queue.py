"""Queue (Python objects), TypedQueue (fixed-size elements), JoinableQueue."""

import contextlib
import ctypes
import io
import multiprocessing as mp
import pickle
import queue
import signal
import time
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


class Tick(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("price", ctypes.c_double),
                ("sym", ctypes.c_char * 8)]


class Tock(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint32)]


def _drain(q, n, report):
    items = [q.get(timeout=30) for _ in range(n)]
    report.put((items[:-1] == list(range(n - 1)), len(items[-1])))


class _Unpicklable:
    def __reduce__(self):
        raise AttributeError("not picklable")


def _produce(q, base, n):
    for i in range(n):
        q.put((base, i))


def _consume(q, out_q, n):
    got = [q.get(timeout=30) for _ in range(n)]
    out_q.put(got)


def _use_passed_objects(q):
    v, inner = q.get(timeout=30)
    v.value = 99
    inner.put("from the child")


def _worker(jq, done):
    while True:
        item = jq.get(timeout=30)
        if item is None:
            jq.task_done()
            break
        done.fetch_add(item)
        jq.task_done()


class QueueTest(unittest.TestCase):
    def test_fifo_of_objects(self):
        q = shoal.Queue()
        items = [1, "two", {"key": "value"}, [3, 4], None, 2.5, b"bytes", (1, (2,))]
        for x in items:
            q.put(x)
        self.assertEqual(q.qsize(), len(items))
        self.assertFalse(q.empty())
        self.assertEqual([q.get() for _ in items], items)
        self.assertTrue(q.empty())
        self.assertEqual(q.maxsize, shoal.queues.DEFAULT_CAPACITY)

    def test_objects_are_copies(self):
        q = shoal.Queue()
        d = {"key": "value"}
        q.put(d)
        d["key"] = "new-value"
        got = q.get()
        self.assertEqual(got, {"key": "value"})
        self.assertIsNot(got, d)

    def test_full_and_empty(self):
        q = shoal.Queue(2)
        q.put(1)
        q.put_nowait(2)
        self.assertTrue(q.full())
        with self.assertRaises(queue.Full):
            q.put_nowait(3)
        t0 = time.monotonic()
        with self.assertRaises(queue.Full):
            q.put(3, timeout=0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        with self.assertRaises(queue.Full):
            q.put(3, block=False)
        self.assertEqual(q.get(), 1)
        self.assertEqual(q.get_nowait(), 2)
        with self.assertRaises(queue.Empty):
            q.get_nowait()
        t0 = time.monotonic()
        with self.assertRaises(queue.Empty):
            q.get(timeout=0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)

    def test_messages_of_any_size(self):
        q = shoal.Queue(max_msg=100)
        q.put("x" * 200)  # in a segment of its own
        q.put_bytes(b"z" * 300)
        self.assertEqual(q.get(), "x" * 200)
        self.assertEqual(q.get_bytes(), b"z" * 300)
        big = shoal.Queue(4, max_msg=1 << 20)
        big.put("y" * 500000)
        self.assertEqual(len(big.get()), 500000)
        full = shoal.Queue(1, max_msg=100)
        full.put(1)
        with self.assertRaises(queue.Full):  # its segment is removed again
            full.put("w" * 1000, timeout=0.05)
        self.assertEqual(_util.segments_named("big-"), [])

    def test_unbounded_queue_grows_and_keeps_order(self):
        # 10,000 items before any consumer (multiprocessing's Queue is unbounded):
        # rings chained as further segments, drained in order by another process.
        q = shoal.Queue()
        for i in range(10000):
            q.put_nowait(i)
        q.put(b"b" * (4 << 20))
        self.assertEqual(q.qsize(), 10001)
        self.assertFalse(q.full())
        r = shoal.Queue()
        p = fork.Process(target=_drain, args=(q, 10001, r))
        p.start()
        ok, last = r.get(timeout=60)
        p.join(60)
        self.assertTrue(ok)
        self.assertEqual(last, 4 << 20)
        self.assertEqual(q.qsize(), 0)
        # Drained rings are gone; only the current one (the tail) remains.
        self.assertEqual(len([n for n in _util.segments_named(q.name) if ".ring" in n]), 1)
        q.put("after")
        q.shutdown()
        self.assertEqual(q.get(), "after")
        with self.assertRaises(shoal.EndOfStream):
            q.get()
        with self.assertRaises(shoal.Closed):
            q.put(1)

    def test_unpicklable_object_is_reported_and_dropped(self):
        # multiprocessing's feeder logs it and the queue keeps working.
        q = shoal.Queue(maxsize=1)
        with contextlib.redirect_stderr(io.StringIO()) as err:
            q.put(_Unpicklable())
        self.assertIn("cannot pickle", err.getvalue())
        q.put(True)
        self.assertEqual(q.qsize(), 1)
        self.assertTrue(q.get(timeout=5))

    def test_shutdown_is_end_of_stream(self):
        q = shoal.Queue()
        q.put("a")
        q.put("b")
        q.shutdown()
        with self.assertRaises(shoal.Closed) as cm:
            q.put("c")
        self.assertIsInstance(cm.exception, ValueError)
        self.assertEqual([q.get(), q.get()], ["a", "b"])  # drained first
        with self.assertRaises(EOFError):
            q.get(timeout=5)
        if hasattr(queue, "ShutDown"):
            with self.assertRaises(queue.ShutDown):
                q.get()

    def test_close_releases_the_handle(self):
        q = shoal.Queue()
        q.close()
        with self.assertRaises(ValueError):
            q.put(1)
        q.join_thread()
        q.cancel_join_thread()

    def test_named_queue_between_unrelated_processes(self):
        q = shoal.Queue(name="named-q")
        child = _util.start_py("""
            import shoal
            q = shoal.Queue(name='named-q', create=False)
            for i in range(1000):
                q.put({'i': i, 'sq': i * i})
        """)
        got = [q.get(timeout=30) for _ in range(1000)]
        _, err = child.communicate(timeout=30)
        self.assertEqual(child.returncode, 0, err)
        self.assertEqual(got, [{"i": i, "sq": i * i} for i in range(1000)])

    def test_shared_objects_travel_through_queues(self):
        # multiprocessing cannot do this ("Synchronized objects should only be shared
        # between processes through inheritance"); shoal objects pickle by name.
        q = shoal.Queue()
        v = shoal.Value("I", 1, lock=False)
        inner = shoal.Queue()
        q.put((v, inner))
        p = spawn.Process(target=_use_passed_objects, args=(q,))
        p.start()
        self.assertEqual(inner.get(timeout=60), "from the child")
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(v.value, 99)

    def test_many_producers_and_consumers(self):
        q = shoal.Queue(64)
        results = shoal.Queue(max_msg=1 << 20)
        n = 1500
        producers = [fork.Process(target=_produce, args=(q, b, n)) for b in range(3)]
        consumers = [fork.Process(target=_consume, args=(q, results, 3 * n // 2))
                     for _ in range(2)]
        for p in producers + consumers:
            p.start()
        got = results.get(timeout=60) + results.get(timeout=60)
        for p in producers + consumers:
            p.join(30)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(sorted(got), sorted((b, i) for b in range(3) for i in range(n)))
        for b in range(3):  # each producer's items arrive in its order
            seq = [i for bb, i in got if bb == b]
            self.assertEqual(len(seq), n)

    def test_open_rules(self):
        shoal.Queue(8, name="cfg-q", max_msg=512)
        q = shoal.Queue(name="cfg-q")  # no explicit config: accepts the existing one
        self.assertEqual((q.maxsize, q.max_msg), (8, 512))
        with self.assertRaises(shoal.LayoutMismatch):
            shoal.Queue(name="cfg-q", max_msg=1024)
        shoal.TypedQueue("d", name="typed-q")
        with self.assertRaises(shoal.LayoutMismatch):
            shoal.Queue(name="typed-q", create=False)
        with self.assertRaises(shoal.NotFound):
            shoal.Queue(name="no-such-queue", create=False)

    def test_pickled_queue(self):
        q = shoal.Queue()
        twin = pickle.loads(pickle.dumps(q))
        twin.put("via twin")
        self.assertEqual(q.get(), "via twin")


class TypedQueueTest(unittest.TestCase):
    def test_scalars(self):
        q = shoal.TypedQueue("d", 4)
        q.put(1.5)
        q.put(2)
        self.assertEqual([q.get(), q.get()], [1.5, 2.0])

    def test_structs_and_batches(self):
        q = shoal.TypedQueue(Tick, 16, name="ticks")
        q.put(Tick(1, 9.5, b"AAPL"))
        q.put((2, 10.5, b"MSFT"))
        t = q.get()
        self.assertEqual((t.seq, t.price, t.sym), (1, 9.5, b"AAPL"))
        self.assertEqual(q.get().sym, b"MSFT")
        self.assertEqual(q.put_many([Tick(i, i, b"X") for i in range(10)]), 10)
        got = q.get_many(100)
        self.assertEqual([t.seq for t in got], list(range(10)))
        self.assertEqual(q.get_many(5, block=False), [])
        with q.loan() as slot:
            slot.seq, slot.price, slot.sym = 77, 1.0, b"LOAN"
        with q.peek() as view:
            self.assertEqual(view.seq, 77)
        self.assertTrue(q.empty())
        with self.assertRaises(shoal.LayoutMismatch):
            shoal.TypedQueue(Tock, name="ticks")
        other = shoal.TypedQueue(Tick, name="ticks", create=False)
        self.assertEqual(other.maxsize, 16)

    def test_struct_put_and_get_edges(self):
        # The C path of put/get (structs of the queue's type) and everything it hands
        # over: a full or empty queue, timeouts, other types, a closed queue, a child.
        class Checked(ctypes.Structure):
            _fields_ = [("seq", ctypes.c_uint32)]

            def validate(self):
                if self.seq == 13:
                    raise shoal.InvalidData("seq 13")

        q = shoal.TypedQueue(Checked, 2)
        q.put(Checked(1))
        q.put(Checked(2))
        with self.assertRaises(queue.Full):
            q.put(Checked(3), timeout=0.05)
        with self.assertRaises(queue.Full):
            q.put(Checked(3), False)
        self.assertEqual([q.get().seq, q.get(timeout=1).seq], [1, 2])
        with self.assertRaises(queue.Empty):
            q.get(False)
        t0 = time.monotonic()
        with self.assertRaises(queue.Empty):
            q.get(timeout=0.05)
        self.assertGreaterEqual(time.monotonic() - t0, 0.04)
        with self.assertRaises(shoal.InvalidData):
            q.put(Checked(13))  # checked before it goes in
        q.put((4,))
        q.put({"seq": 5})
        self.assertEqual([q.get().seq, q.get().seq], [4, 5])
        with self.assertRaises(TypeError):
            q.put("not a Checked")
        p = fork.Process(target=q.put, args=(Checked(6),))  # re-attaches in the child
        p.start()
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(q.get(timeout=10).seq, 6)
        q.shutdown()
        with self.assertRaises(shoal.Closed):
            q.put(Checked(7))
        with self.assertRaises(shoal.EndOfStream):
            q.get()
        q.close()
        with self.assertRaises(ValueError):
            q.get()

    def _ctrl_c_in_get(self, opening, put):
        """A child interpreter that runs `opening` (which sets q) waits in q.get();
        SIGINT raises KeyboardInterrupt there, and the queue works on afterwards."""
        child = _util.start_py("""
            import ctypes, shoal
            class Tick(ctypes.Structure):
                _fields_ = [("seq", ctypes.c_uint64), ("price", ctypes.c_double),
                            ("sym", ctypes.c_char * 8)]
            q = %s
            print('waiting', flush=True)
            try:
                q.get()
            except KeyboardInterrupt:
                print('interrupted', flush=True)
            m = q.get()
            print(getattr(m, "seq", m), flush=True)
        """ % opening)
        self.assertEqual(child.stdout.readline().strip(), "waiting")
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        self.assertEqual(child.stdout.readline().strip(), "interrupted")
        put()
        out, err = child.communicate(timeout=30)
        self.assertEqual(child.returncode, 0, err)
        return out.strip()

    def test_ctrl_c_in_a_waiting_get(self):
        q = shoal.Queue(4, name="ctrl-c-objects")
        out = self._ctrl_c_in_get(
            "shoal.Queue(name='ctrl-c-objects', create=False)",
            lambda: q.put(("after", 1)))
        self.assertEqual(out, "('after', 1)")

    def test_ctrl_c_in_a_waiting_struct_get(self):
        q = shoal.TypedQueue(Tick, 4, name="ctrl-c-ticks")
        out = self._ctrl_c_in_get(
            "shoal.TypedQueue(Tick, name='ctrl-c-ticks', create=False)",
            lambda: q.put(Tick(42, 1.0, b"X")))
        self.assertEqual(out, "42")

    def test_typed_between_processes(self):
        q = shoal.TypedQueue("q", 32, name="ints")
        child = _util.start_py("""
            import shoal
            q = shoal.TypedQueue('q', name='ints', create=False)
            for i in range(5000):
                q.put(i * 3)
            q.shutdown()
        """)
        got = []
        while True:
            try:
                got.append(q.get(timeout=30))
            except EOFError:
                break
        child.communicate(timeout=30)
        self.assertEqual(got, [i * 3 for i in range(5000)])


class JoinableQueueTest(unittest.TestCase):
    def test_task_done_and_join(self):
        jq = shoal.JoinableQueue()
        done = shoal.Value("q", 0)
        p = fork.Process(target=_worker, args=(jq, done))
        p.start()
        for i in range(1, 101):
            jq.put(i)
        jq.put(None)
        jq.join()  # returns only once every item was processed
        self.assertEqual(done.value, 5050)
        p.join(30)
        with self.assertRaises(ValueError):
            jq.task_done()
        self.assertTrue(shoal.stat(jq._cond.name)["anonymous"])  # goes with the queue

    def test_named_joinable_queue(self):
        jq = shoal.JoinableQueue(name="jobs")
        jq.put("job")
        other = shoal.JoinableQueue(name="jobs", create=False)
        self.assertEqual(other.get(), "job")
        other.task_done()
        jq.join()  # sees the other handle's task_done
        self.assertEqual(jq._unfinished.name, "jobs.unfinished")


if __name__ == "__main__":
    unittest.main()
