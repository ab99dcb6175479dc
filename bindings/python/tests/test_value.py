"""Value and Array: multiprocessing's API over named shared memory."""

import ctypes
import multiprocessing as mp
import pickle
import unittest
from multiprocessing.reduction import ForkingPickler

import _util

_util.setup_root()

import shoal  # noqa: E402

fork = mp.get_context("fork")


class Foo(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]
spawn = mp.get_context("spawn")


def _locked_increments(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def _atomic_increments(v, n):
    for _ in range(n):
        v.fetch_add(1)


def _array_negate(a, v):
    v.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


def _use_then_wait(v, used, go, result):
    v.value = 41  # first use: the child opens the value anew by name
    used.set()
    go.wait(10)
    again = pickle.loads(pickle.dumps(v))  # a fresh open by name
    result.value = again.value + 1


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_double), ("tag", ctypes.c_char * 6)]


class Point2(ctypes.Structure):  # same size, other layout
    _fields_ = [("y", ctypes.c_double), ("x", ctypes.c_int32), ("tag", ctypes.c_char * 6)]


class ValueTest(unittest.TestCase):
    def test_typecodes_round_trip_and_sizes(self):
        cases = {"b": (-128, 127), "B": (0, 255), "h": (-32768, 32767),
                 "H": (0, 65535), "i": (-2**31, 2**31 - 1), "I": (0, 2**32 - 1),
                 "l": (-2**63, 2**63 - 1), "L": (0, 2**64 - 1), "q": (-2**63, 2**63 - 1),
                 "Q": (0, 2**64 - 1), "f": (-1.5, 2.25), "d": (-1e300, 3.1415),
                 "c": (b"\x00", b"z")}
        sizes = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8,
                 "q": 8, "Q": 8, "f": 4, "d": 8, "c": 1}
        for code, (lo, hi) in cases.items():
            with self.subTest(code=code):
                v = shoal.Value(code, lo)
                self.assertEqual(v.value, lo)
                v.value = hi
                self.assertEqual(v.value, hi)
                self.assertEqual(shoal.stat(v.name)["elem_size"], sizes[code])
                v.close()

    def test_default_zero_and_repr(self):
        v = shoal.Value("d")
        self.assertEqual(v.value, 0.0)
        self.assertIn("float64", repr(v))
        self.assertEqual(shoal.Value("i").value, 0)

    def test_unknown_typecode(self):
        with self.assertRaises(TypeError):
            shoal.Value("x", 1)
        with self.assertRaises(TypeError):
            shoal.Value(ctypes.c_bool, True)

    def test_ctypes_type_is_its_typecode(self):
        v = shoal.Value(ctypes.c_int, 7, name="ctypes-int")
        w = shoal.Value("i", name="ctypes-int", create=False)
        self.assertEqual(w.value, 7)

    def test_default_lock_is_a_recursive_lock(self):
        v = shoal.Value("i", 0)
        lock = v.get_lock()
        self.assertIsInstance(lock, shoal.RLock)
        with lock:
            with lock:  # recursive
                v.value += 1  # .value takes the same lock again
        self.assertEqual(v.value, 1)
        self.assertFalse(lock.locked())
        with v:  # as multiprocessing: the value's lock
            self.assertTrue(lock.locked())
        self.assertFalse(lock.locked())

    def test_locked_increments_in_four_processes_are_exact(self):
        v = shoal.Value("i", 0)
        procs = [fork.Process(target=_locked_increments, args=(v, 2000))
                 for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(v.value, 8000)

    def test_atomic_fetch_add_in_four_processes_is_exact(self):
        v = shoal.sharedctypes.owner_of(shoal.Value("q", 0, lock=False))
        procs = [fork.Process(target=_atomic_increments, args=(v, 5000))
                 for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(v.value, 20000)

    def test_atomics(self):
        v = shoal.Value("b", 127)
        self.assertEqual(v.fetch_add(1), 127)
        self.assertEqual(v.value, -128)  # wraps at the type's width
        self.assertEqual(v.exchange(5), -128)
        self.assertEqual(v.compare_exchange(5, 9), (True, 5))
        self.assertEqual(v.compare_exchange(5, 1), (False, 9))
        v.store(-3)
        self.assertEqual(v.load(), -3)
        d = shoal.Value("d", 1.0)
        with self.assertRaises(shoal.WrongType) as cm:
            d.fetch_add(1)
        self.assertIsInstance(cm.exception, TypeError)
        self.assertIn("float64", str(cm.exception))

    def test_lock_false_is_raw(self):
        # As multiprocessing: the plain ctypes object, in shared memory.
        v = shoal.Value("I", 1, lock=False, name="raw-1")
        self.assertIsInstance(v, ctypes.c_uint32)
        self.assertFalse(hasattr(v, "get_lock") or hasattr(v, "get_obj"))
        v.value += 2
        self.assertEqual(v.value, 3)
        self.assertEqual(shoal.Value("I", name="raw-1", create=False).value, 3)
        owner = shoal.sharedctypes.owner_of(v)
        self.assertEqual(owner.name, "raw-1")
        self.assertFalse(owner.has_lock)
        r = shoal.RawValue("d", 2.5)
        self.assertEqual(r.value, 2.5)
        # Pickled by multiprocessing's reduction, it maps the same memory.
        twin = pickle.loads(ForkingPickler.dumps(r))
        twin.value = 7.5
        self.assertEqual(r.value, 7.5)
        # lock=None makes a lock, as multiprocessing; a lock of the wrong kind is
        # refused; something that is no lock at all is an AttributeError.
        self.assertTrue(shoal.Value("i", 5, lock=None).get_lock())
        with self.assertRaises(AttributeError):
            shoal.Value("i", 5, lock="navalue")

    def test_struct_value_fields_and_sharedctypes_helpers(self):
        v = shoal.Value(Foo, 3, 2)
        self.assertEqual((v.x, v.y), (3, 2.0))
        v.x *= 2
        self.assertEqual(v.value.x, 6)
        twin = pickle.loads(pickle.dumps(v))
        self.assertEqual(twin.x, 6)
        c = shoal.sharedctypes.copy(Foo(2, 5.0))
        self.assertEqual((c.x, c.y), (2, 5.0))
        self.assertIsNotNone(shoal.sharedctypes.owner_of(c))
        s = shoal.sharedctypes.synchronized(shoal.RawArray("i", [1, 2, 3]))
        with s.get_lock():
            s[0] = 10
        self.assertEqual((len(s), s[0]), (3, 10))
        self.assertIs(s.get_obj()._shoal_owner, shoal.sharedctypes.owner_of(s.get_obj()))

    def test_caller_lock_is_shared_by_every_opener(self):
        lock = shoal.Lock(name="guard-1")
        v = shoal.Value("i", 3, lock=lock, name="guarded")
        self.assertEqual(v.get_lock().name, "guard-1")
        other = shoal.Value("i", name="guarded", create=False)
        self.assertEqual(other.get_lock().name, "guard-1")
        with lock:
            self.assertTrue(other.get_lock().locked())
        self.assertFalse(other.get_lock().locked())
        with self.assertRaises(TypeError):
            shoal.Value("i", 0, lock=mp.Lock())
        with self.assertRaises(TypeError):  # the embedded lock of another object
            shoal.Value("i", 0, lock=shoal.Value("i").get_lock())

    def test_named_value_opened_by_an_unrelated_process(self):
        v = shoal.Value("i", 5, name="shared-five")
        _util.run_py("""
            import shoal
            v = shoal.Value('i', name='shared-five', create=False)
            assert v.value == 5, v.value
            v.value = 7
        """)
        self.assertEqual(v.value, 7)

    def test_open_modes(self):
        shoal.Value("i", 1, name="modes")
        with self.assertRaises(shoal.AlreadyExists) as cm:
            shoal.Value("i", 1, name="modes", create=True)
        self.assertIsInstance(cm.exception, FileExistsError)
        with self.assertRaises(shoal.NotFound) as cm:
            shoal.Value("i", name="no-such-value", create=False)
        self.assertIsInstance(cm.exception, FileNotFoundError)
        self.assertIn("no-such-value", str(cm.exception))
        same = shoal.Value("i", 99, name="modes")  # open-or-create: opens, init unused
        self.assertEqual(same.value, 1)

    def test_layout_mismatch_names_both_types(self):
        shoal.Value("d", 1.0, name="typed-d")
        with self.assertRaises(shoal.LayoutMismatch) as cm:
            shoal.Value("i", name="typed-d")
        msg = str(cm.exception)
        self.assertIn("float64", msg)
        self.assertIn("int32", msg)
        self.assertEqual(cm.exception.code, shoal.errors.ELAYOUT)
        shoal.Array("i", 3, name="an-array")
        with self.assertRaises(shoal.WrongKind):
            shoal.Value("i", name="an-array")

    def test_bad_names(self):
        for bad in ("a/b", "", ".hidden", "x" * 101):
            with self.subTest(name=bad):
                with self.assertRaises(shoal.BadName) as cm:
                    shoal.Value("i", 0, name=bad)
                self.assertIsInstance(cm.exception, ValueError)
        with self.assertRaises(TypeError):
            shoal.Value("i", 0, name=5)

    def test_pickles_by_name_to_an_unrelated_process(self):
        v = shoal.Value("d", 2.5)  # anonymous: pickles by its generated name
        blob = pickle.dumps(v).hex()
        cp = _util.run_py("""
            import pickle, sys, shoal
            v = pickle.loads(bytes.fromhex(sys.argv[1]))
            print(v.value)
            v.value = 11.25
        """, blob)
        self.assertEqual(cp.stdout.strip(), "2.5")
        self.assertEqual(v.value, 11.25)

    def test_spawned_child_gets_value_by_name(self):
        v = shoal.Value("d", 0.0)
        a = shoal.Array("i", range(10))
        p = spawn.Process(target=_array_negate, args=(a, v))
        p.start()
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(v.value, 3.1415927)
        self.assertEqual(a[:], [0, -1, -2, -3, -4, -5, -6, -7, -8, -9])

    def test_anonymous_value_is_removed_when_unused(self):
        v = shoal.Value("i", 1)
        name = v.name
        self.assertTrue(name)
        self.assertTrue(shoal.stat(name)["anonymous"])
        v.close()
        with self.assertRaises(shoal.NotFound):
            shoal.stat(name)
        with self.assertRaises(ValueError):
            v.value

    def test_forked_child_becomes_a_user(self):
        # The child re-opens the value by name on first use, so it keeps the anonymous
        # value alive after the parent released it.
        v = shoal.Value("i", 0)
        result = shoal.Value("i", 0)
        used, go = shoal.Event(), shoal.Event()
        p = fork.Process(target=_use_then_wait, args=(v, used, go, result))
        p.start()
        self.assertTrue(used.wait(30))
        self.assertEqual(shoal.stat(v.name)["users"], 2)
        v.close()
        go.set()
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(result.value, 42)


class StructValueTest(unittest.TestCase):
    def test_struct_value(self):
        v = shoal.Value(Point, 1, 2.5, b"abc", name="point")
        self.assertEqual((v.value.x, v.value.y, v.value.tag), (1, 2.5, b"abc"))
        v.value = Point(3, 4.5, b"xyz")
        self.assertEqual(v.snapshot().x, 3)
        with v.modify() as p:
            p.x += 10
        self.assertEqual(v.value.x, 13)
        with self.assertRaises(ZeroDivisionError):
            with v.modify() as p:
                p.x = 99
                1 / 0
        self.assertEqual(v.value.x, 13)  # discarded
        v.value = Point(5, 4.5, b"ok")  # and the value is writable again
        self.assertEqual(v.value.x, 5)
        other = shoal.Value(Point, name="point", create=False)
        self.assertEqual(other.value.y, 4.5)
        with self.assertRaises(shoal.LayoutMismatch):
            shoal.Value(Point2, name="point", create=False)

    def test_struct_value_pickles(self):
        v = shoal.Value(Point, 7, 1.0, b"q")
        w = pickle.loads(pickle.dumps(v))
        self.assertEqual(w.value.x, 7)
        self.assertEqual(shoal.layout_hash(Point), shoal.stat(v.name)["layout_hash"])


class ArrayTest(unittest.TestCase):
    def test_indexing_and_slicing(self):
        a = shoal.Array("i", range(10))
        self.assertEqual(len(a), 10)
        self.assertEqual(a[0], 0)
        self.assertEqual(a[-1], 9)
        self.assertEqual(a[2:5], [2, 3, 4])
        self.assertEqual(a[::3], [0, 3, 6, 9])
        self.assertEqual(a[::-2], [9, 7, 5, 3, 1])
        self.assertEqual(a[5:2], [])
        self.assertEqual(list(a), list(range(10)))
        a[0] += 100
        self.assertEqual(a[0], 100)
        a[1:4] = [7, 8, 9]
        a[::5] = [-1, -2]
        self.assertEqual(a[:], [-1, 7, 8, 9, 4, -2, 6, 7, 8, 9])
        with self.assertRaises(ValueError):
            a[0:3] = [1, 2]
        with self.assertRaises(IndexError):
            a[10]
        with self.assertRaises(IndexError):
            a[-11] = 1

    def test_raw_array_same_semantics(self):
        a = shoal.RawArray("d", [0.5, 1.5, 2.5])
        self.assertFalse(shoal.sharedctypes.owner_of(a).has_lock)
        self.assertEqual(a[1:], [1.5, 2.5])
        a[2] = 9.0
        self.assertEqual(a[-1], 9.0)
        self.assertEqual(a[::-1], [9.0, 1.5, 0.5])
        with self.assertRaises(IndexError):
            a[3]

    def test_zeros_and_char_arrays(self):
        self.assertEqual(shoal.Array("d", 4)[:], [0.0] * 4)
        c = shoal.Array("c", b"hello world")
        self.assertEqual(c.value, b"hello world")
        c.value = b"hi"
        self.assertEqual(c.value, b"hi")
        self.assertEqual(c[0:2], b"hi")
        empty = shoal.Array("i", 0)  # as multiprocessing allows
        self.assertEqual((len(empty), empty[:]), (0, []))
        self.assertEqual(len(pickle.loads(pickle.dumps(empty))), 0)
        with self.assertRaises(IndexError):
            empty[0]
        with self.assertRaises(ValueError):
            shoal.Array("i", -1)

    def test_length_and_type_checked_on_open(self):
        shoal.Array("i", 5, name="five-ints")
        self.assertEqual(len(shoal.Array("i", name="five-ints", create=False)), 5)
        with self.assertRaises(shoal.LayoutMismatch):
            shoal.Array("i", 6, name="five-ints")
        with self.assertRaises(shoal.LayoutMismatch):
            shoal.Array("h", 5, name="five-ints")

    def test_array_fetch_add_and_lock(self):
        a = shoal.Array("l", 3)
        self.assertEqual(a.fetch_add(1, 5), 0)
        self.assertEqual(a[1], 5)
        with a.get_lock():
            a[2] = a[1] * 2
        self.assertEqual(a[2], 10)

    def test_array_pickles_and_is_shared_with_fork(self):
        a = shoal.Array("i", 4)
        v = shoal.Value("i")

        b = pickle.loads(pickle.dumps(a))
        b[3] = 33
        self.assertEqual(a[3], 33)
        p = fork.Process(target=_square_into, args=(a, v))
        p.start()
        p.join(30)
        self.assertEqual(a[:], [1, 4, 9, 16])
        self.assertEqual(v.value, 30)


def _square_into(a, v):
    for i, x in enumerate([1, 2, 3, 4]):
        a[i] = x * x
    v.value = sum(a)


if __name__ == "__main__":
    unittest.main()
