"""shoal.Manager's client paths: the C requests and replies of shoal/_speedups.c
(ManagerBase, encode_value, decode_value) against the Python codec of
shoal/managers.py, byte for byte and value for value, including every case the C
code hands back to Python; then the broker suites of tests/broker (every proxy kind,
pipelined writes and their errors, watches, TLS) once more on the path this process
takes — the C one here (python.manager_client), the ctypes one in broker.python,
broker.pipeline and broker.features.
"""
import os
import pickle
import sys
import threading
import unittest

import shoal
from shoal import managers
from shoal._lib import speedups

from _util import source_dir

sys.path.insert(0, os.path.join(source_dir(), "tests", "broker"))
import manager_case  # noqa: E402
import test_manager  # noqa: E402 (the broker suites, run here once more)
import test_manager_features  # noqa: E402
import test_manager_pipeline  # noqa: E402

C_PATH = managers._Wire is not managers._PyWire
VALUES = [
    None, True, False, 0, 1, -1, 127, 128, -129, 1 << 62, -(1 << 62), (1 << 63) - 1,
    -(1 << 63), 0.0, -0.0, 1.5, float("inf"), 1e-300, "", "a", "héllo €", "x" * 300,
    b"", b"\x00\xff", bytearray(b"ab"), [], (), {}, [1, [2, (3, None)], {"k": b"v"}],
    (1,), {"a": {1: None}, (1, "2"): [1.5], 3: "x", 2.5: (), None: 0, True: False},
    list(range(300)), {str(i): i for i in range(100)}, [[[[[[]]]]]],
]


class Opaque:
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return type(other) is Opaque and other.x == self.x


class IntSub(int):
    pass


@unittest.skipUnless(C_PATH, "the C extension is not loaded (SHOAL_PY_PURE, or not built)")
class CodecTest(unittest.TestCase):
    def assertSameEncoding(self, v, allow_pickle=False):
        self.assertEqual(speedups.encode_value(v, allow_pickle),
                         managers._enc_value(v, allow_pickle), type(v).__name__)

    def test_values_encode_as_the_python_codec_does(self):
        for v in VALUES:
            self.assertSameEncoding(v)

    def test_values_decode_as_the_python_codec_does(self):
        for v in VALUES:
            buf = managers._enc_value(v, False)
            got, want = speedups.decode_value(buf), managers._dec_value(buf)
            self.assertEqual(got, want)
            self.assertEqual(repr(got), repr(want))  # types too, nested ones included
            self.assertEqual(got, bytes(v) if type(v) is bytearray else v)

    def test_what_c_does_not_do_goes_to_python(self):
        p = managers.DictProxy("shm://x", None, "d")
        nested = managers.ListProxy("shm://x", None, "d", ("k",))
        for v in (p, [p, {"in": p}], Opaque(1), 1 << 64, IntSub(3)):
            self.assertSameEncoding(v, allow_pickle=True)
        for v in (Opaque(1), [Opaque(2)], {"k": Opaque(3)}, 1 << 64, IntSub(3)):
            with self.assertRaises(TypeError):
                speedups.encode_value(v, False)
        self.assertRaises(shoal.ShoalError, speedups.encode_value, nested, False)
        self.assertRaises(UnicodeEncodeError, speedups.encode_value, "\ud800", False)
        deep = []
        for _ in range(100):  # past the C recursion bound: Python finishes it
            deep = [deep]
        self.assertSameEncoding(deep)
        cyclic = []
        cyclic.append(cyclic)
        self.assertRaises(RecursionError, speedups.encode_value, cyclic, False)

    def test_references_and_pickles_decode_through_python(self):
        ref = managers._enc_value(managers.LockProxy("shm://x", None, "lk"), False)
        before = managers._refs_decoded[0]
        r = speedups.decode_value(managers._enc_value([1, {"l": None}], False)[:0] + ref)
        self.assertEqual((type(r), r.kind, r.name), (managers._Ref, managers.LOCK, "lk"))
        self.assertEqual(managers._refs_decoded[0], before + 1)  # proxies get resolved
        pk = managers._enc_value([Opaque(5)], True)
        self.assertEqual(speedups.decode_value(pk), [Opaque(5)])
        self.assertEqual(speedups.decode_value(b""), None)
        typed = managers._len_field(b"\x52", managers._len_field(b"\x0a", b"my.T") +
                                    managers._len_field(b"\x12", b"\x01\x02"))
        self.assertEqual(speedups.decode_value(typed), ("my.T", b"\x01\x02"))

    def test_malformed_values_fail_as_in_python(self):
        def outcome(fn, buf):
            try:
                return "=", fn(buf)
            except Exception as e:
                return "!", type(e)

        for buf in (b"\x2a\x05ab", b"\x3a\x03\x0a\x09\x08", b"\x0f", b"\x18",
                    b"\x4a\x04\x0a\x02\x0a\x00", b"\x18\xff\xff", b"\x22\x01x"):
            self.assertEqual(outcome(speedups.decode_value, buf),
                             outcome(managers._dec_value, buf), buf)
        self.assertRaises(UnicodeDecodeError, speedups.decode_value, b"\x2a\x01\xff")


class ZigzagTest(unittest.TestCase):
    def test_large_ints_round_trip_in_python(self):
        # the Python decoder once read a zigzag varint >= 2**63 as negative first
        for v in (1 << 62, -(1 << 62) - 1, (1 << 63) - 1, -(1 << 63)):
            self.assertEqual(managers._dec_value(managers._enc_value(v, False)), v)


class BrokerTest(manager_case.ManagerCase):
    def tearDown(self):
        managers.pipeline_depth = 64

    def test_values_round_trip_through_the_broker(self):
        d = self.m.dict()
        for i, v in enumerate(VALUES):
            d[i] = v
        for i, v in enumerate(VALUES):
            self.assertEqual(d[i], bytes(v) if type(v) is bytearray else v)

    def test_each_thread_gets_its_own_errors(self):
        v = self.m.Value("i", 0)
        errs, go = {}, threading.Barrier(4)

        def worker(n):
            go.wait()
            for i in range(200):
                v.value = "bad" if (n == 1 and i == 50) else i
            try:
                managers.flush()
                errs[n] = None
            except shoal.WrongType as e:
                errs[n] = e

        ts = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertIsInstance(errs.pop(1), shoal.WrongType)
        self.assertEqual(set(errs.values()), {None})
        managers.flush()  # nothing left for this thread

    def test_threads_share_the_session_unpipelined(self):
        # every call waits (no batches): the threads' round trips cross on the one
        # session, each reply reaching its own thread, each thread's writes in order
        managers.pipeline_depth = 0
        d, go, bad = self.m.dict(), threading.Barrier(4), []
        ls = [self.m.list() for _ in range(4)]

        def worker(n):
            go.wait()
            for i in range(500):
                d[n] = i
                ls[n].append(i)
                if d[n] != i:
                    bad.append((n, i))

        ts = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(bad, [])
        self.assertEqual([l[:] for l in ls], [list(range(500))] * 4)

    def test_a_depth_of_one_collects_before_each_write(self):
        managers.pipeline_depth = 1
        l = self.m.list()
        for i in range(100):
            l.append(i)
        self.assertEqual(l[:], list(range(100)))

    def test_shutdown_collects_other_threads_writes(self):
        m = shoal.Manager(address=self.m.address)  # this process's session to it
        d, v = m.dict(), m.Value("i", 0)

        def writer():
            for i in range(300):
                d[i] = i
            v.value = "bad"  # its error belongs to that thread: not raised below

        t = threading.Thread(target=writer)
        t.start()
        t.join()
        m.shutdown()  # collects the thread's writes, then closes the session
        self.assertEqual(len(d), 300)  # a new session
        self.assertEqual(v.value, 0)

    def test_unpipelined_calls_raise_their_own_error_at_once(self):
        managers.pipeline_depth = 0
        d, v, l = self.m.dict(), self.m.Value("i", 0), self.m.list([1])
        with self.assertRaises(KeyError):
            d["missing"]
        with self.assertRaises(shoal.WrongType) as cm:
            v.value = "bad"
        self.assertTrue(str(cm.exception))  # the broker's detail travels
        with self.assertRaises(ValueError):
            l.remove(2)
        d["k"] = [1, 2]  # a nested list comes back as a proxy
        d["k"].append(3)
        self.assertEqual(d["k"][:], [1, 2, 3])
        managers.flush()  # nothing was left in flight

    def test_lock_bookkeeping_with_and_without_pipelining(self):
        for depth in (0, 64):
            managers.pipeline_depth = depth
            lk = self.m.Lock()
            for _ in range(50):
                with lk:
                    self.assertTrue(lk.locked())
            self.assertFalse(lk.locked())
            with self.assertRaises(shoal.ShoalError):
                lk.release()  # not held: waits for the refusal, raises at once
            self.assertTrue(lk.acquire())
            got = []
            t = threading.Thread(target=lambda: got.append(lk.acquire(False)))
            t.start()
            t.join()
            self.assertEqual(got, [False])
            lk.release()
            managers.flush()

    @unittest.skipUnless(C_PATH, "the C extension is not loaded")
    def test_the_hot_methods_are_the_c_ones(self):
        pb = speedups.ProxyBase
        self.assertIs(managers.DictProxy.__setitem__, pb._write_set)
        self.assertIs(managers.DictProxy.__getitem__, pb._get_nested)
        self.assertIs(managers.ListProxy.append, pb._write_append)
        for cls in (managers.LockProxy, managers.SemaphoreProxy, managers.ConditionProxy):
            self.assertIs(cls.__enter__, pb._lock_enter)
            self.assertIs(cls.release, pb._lock_release)
        self.assertIs(managers.BaseProxy._op, pb._op)

    def test_locks_and_semaphores_without_and_with_arguments(self):
        for depth in (0, 64):
            managers.pipeline_depth = depth
            rl, sem, cond = self.m.RLock(), self.m.Semaphore(2), self.m.Condition()
            with rl:
                with rl:  # the RLock's count, in the session's bookkeeping too
                    self.assertTrue(rl.locked())
                self.assertTrue(rl.locked())
            self.assertFalse(rl.locked())
            lk = self.m.Lock()
            with lk:  # a Lock this thread holds: a blocking acquire would wait for ever
                with self.assertRaises(shoal.ShoalError):
                    lk.acquire()
                self.assertFalse(lk.acquire(timeout=0.01))
            self.assertTrue(sem.acquire())
            t = threading.Thread(target=sem.release)  # units belong to the session
            t.start()
            t.join()
            self.assertTrue(sem.acquire(timeout=1))
            self.assertTrue(sem.acquire(False))
            self.assertFalse(sem.acquire(False))
            sem.release(2)  # with an argument: the Python method
            self.assertEqual(sem.get_value(), 2)
            with cond:
                cond.notify()
                self.assertFalse(cond.wait(0.01))
            managers.flush()

    def test_a_closed_session_is_replaced_on_the_next_call(self):
        for depth in (0, 64):
            managers.pipeline_depth = depth
            m = shoal.Manager(address=self.m.address)
            d, l, lk = m.dict(), m.list(), m.Lock()
            d["k"] = 1
            m.shutdown()  # the proxies' session is closed: they open a new one
            d["k"] = 2
            l.append(d["k"])
            with lk:
                self.assertEqual(l[:], [2])
            managers.flush()

    def test_a_forked_child_uses_its_own_session(self):
        d = self.m.dict()
        d["parent"] = 1  # the proxy keeps this process's session
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                d["child"] = d["parent"] + 1
                managers.flush()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(d["child"], 2)


def load_tests(loader, tests, pattern):
    for mod in (test_manager, test_manager_pipeline, test_manager_features):
        tests.addTests(loader.loadTestsFromModule(mod))
    return tests


if __name__ == "__main__":
    unittest.main()
