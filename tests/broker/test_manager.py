"""shoal.Manager against a real broker: every proxy kind, processes forked and spawned,
a client killed holding a lock, values that do not travel, connecting by address.

Run by CTest (broker.python) with SHOAL_LIBRARY, SHOAL_CLI and PYTHONPATH set.
"""
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import unittest

import manager_case
import shoal


def _count(d, n):
    for _ in range(n):
        d.increment("hits")


def _hold_and_stop(lk, ev):
    lk.acquire()
    ev.set()
    os.kill(os.getpid(), signal.SIGSTOP)


def _append_nested(d):
    d["x"].append(2)


class ManagerTest(manager_case.ManagerCase):
    def test_dict(self):
        d = self.m.dict(a=1)
        d["b"] = [1, 2]
        d[(1, "t")] = {"k": b"\x00\xff"}
        self.assertEqual(d.copy(), {"a": 1, "b": [1, 2], (1, "t"): {"k": b"\x00\xff"}})
        self.assertEqual(len(d), 3)
        self.assertIn("a", d)
        self.assertEqual(d.get("zz", 5), 5)
        self.assertEqual(d.setdefault("c", 3), 3)
        self.assertEqual(d.pop("c"), 3)
        with self.assertRaises(KeyError):
            d["nope"]
        with self.assertRaises(KeyError):
            del d["nope"]
        self.assertEqual(d.increment("n", 2.5), 2.5)
        self.assertTrue(d.compare_and_set("a", 1, "one"))
        self.assertFalse(d.compare_and_set("a", 1, "two"))
        self.assertEqual(d["a"], "one")
        d.update({"u": None}, v=True)
        self.assertEqual(sorted(map(str, d.keys())), sorted(map(str, d.copy().keys())))

    def test_nested_containers_are_proxies(self):
        d = self.m.dict(x=[1])
        d["x"].append(2)                      # kept: not a copy
        p = multiprocessing.get_context("fork").Process(target=_append_nested, args=(d,))
        p.start()
        p.join()
        self.assertEqual(d["x"][:], [1, 2, 2])
        d["y"] = {"z": []}
        d["y"]["z"].extend([7, 8])
        self.assertEqual(d.copy()["y"], {"z": [7, 8]})

    def test_list_namespace_value_array(self):
        l = self.m.list(range(3))
        l += [3]
        l.insert(0, -1)
        self.assertEqual(l.pop(), 3)
        self.assertEqual(l[:], [-1, 0, 1, 2])
        self.assertEqual(l.index(1), 2)
        with self.assertRaises(ValueError):
            l.remove(99)
        with self.assertRaises(IndexError):
            l[10]
        ns = self.m.Namespace(x=1)
        ns.y = "why"
        self.assertEqual((ns.x, ns.y), (1, "why"))
        with self.assertRaises(AttributeError):
            ns.nope
        v = self.m.Value("i", 7)
        v.value += 1
        self.assertEqual(v.value, 8)
        with self.assertRaises(shoal.WrongType):
            v.value = "text"                  # pipelined: the error comes with flush()
            self.m.flush()
        a = self.m.Array("d", 3)
        a[1] = 2
        self.assertEqual(a[:], [0.0, 2.0, 0.0])

    def test_values_that_do_not_travel(self):
        d = self.m.dict()
        with self.assertRaises(TypeError):
            d["o"] = object()
        with self.assertRaises(TypeError):
            d["big"] = 1 << 70
        with self.assertRaises(shoal.InvalidArgument):
            d[[1]] = 1                        # a list is no key
            len(d)                            # the next call that waits raises it
        with shoal.Manager(address=self.m.address, pickle=True) as m2:
            d2 = m2.dict()
            d2["s"] = {1, 2}                  # opt-in: pickled, stored as bytes
            self.assertEqual(d2["s"], {1, 2})

    def test_atomic_increment_from_processes(self):
        d = self.m.dict()
        ctx = multiprocessing.get_context("spawn")   # proxies pickle by name
        ps = [ctx.Process(target=_count, args=(d, 50)) for _ in range(3)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        self.assertEqual(d["hits"], 150)

    def test_queue(self):
        q = self.m.Queue(1)
        q.put("a")
        with self.assertRaises(queue.Full):
            q.put("b", timeout=0.05)
        self.assertEqual(q.get(), "a")
        with self.assertRaises(queue.Empty):
            q.get_nowait()
        t = threading.Timer(0.1, q.put, args=(42,))
        t.start()
        self.assertEqual(q.get(timeout=20), 42)

    def test_joinable_queue(self):
        q = self.m.JoinableQueue()
        done = []

        def worker():
            while True:
                item = q.get()
                done.append(item)
                q.task_done()
                if item is None:
                    break
        t = threading.Thread(target=worker)
        t.start()
        for i in range(5):
            q.put(i)
        q.put(None)
        q.join()                              # returns once all six are done
        self.assertEqual(done, [0, 1, 2, 3, 4, None])
        t.join()
        with self.assertRaises(ValueError):
            q.task_done()
            q.qsize()

    def test_lock_of_a_killed_client(self):
        lk, ev = self.m.Lock(), self.m.Event()
        p = multiprocessing.get_context("fork").Process(target=_hold_and_stop, args=(lk, ev))
        p.start()
        self.assertTrue(ev.wait(20))
        self.assertFalse(lk.acquire(timeout=0.05))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        with self.assertRaises(shoal.OwnerDied):
            lk.acquire(timeout=20, raise_owner_died=True)
        lk.release()
        self.assertTrue(lk.acquire(timeout=1))
        lk.release()

    def test_rlock_semaphore_condition_barrier(self):
        r = self.m.RLock()
        with r:
            with r:
                pass
        with self.assertRaises(shoal.NotOwner):
            r.release()
        s = self.m.BoundedSemaphore(1)
        self.assertTrue(s.acquire())
        self.assertFalse(s.acquire(timeout=0.02))
        s.release()
        with self.assertRaises(ValueError):
            s.release()
        c = self.m.Condition()
        box = []

        def waiter():
            with c:
                box.append(c.wait_for(lambda: len(box) > 0 or True, 5))
        t = threading.Thread(target=waiter)
        t.start()
        t.join()
        with c:
            self.assertFalse(c.wait(0.02))
        b = self.m.Barrier(2)
        out = []
        t = threading.Thread(target=lambda: out.append(b.wait(20)))
        t.start()
        out.append(b.wait(20))
        t.join()
        self.assertEqual(sorted(out), [0, 1])
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait(0.02)

    def test_session_survives_fork_children(self):
        # a fork child inherits the session's pipe end: its death (however it ends,
        # even without touching the manager) must not end the parent's session
        d = self.m.dict(a=1)
        for kill in (False, True, False, True):
            pid = os.fork()
            if pid == 0:
                time.sleep(0 if not kill else 10)
                os._exit(0)
            if kill:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            time.sleep(0.1)                   # the broker looks at dead holders
            self.assertEqual(d["a"], 1)

    def test_proxies_pickle(self):
        d = self.m.dict(k="v")
        d2 = pickle.loads(pickle.dumps(d))
        self.assertEqual(d2["k"], "v")
        self.assertEqual(shoal.Manager(address=self.m.address).connect().address,
                         self.m.address)


if __name__ == "__main__":
    unittest.main()
