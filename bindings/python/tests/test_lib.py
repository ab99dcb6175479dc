"""The ctypes layer: loading libshoal, the error codes, typecodes, object management."""

import ctypes
import os
import re
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal import _lib, errors  # noqa: E402


class ErrorCodesTest(unittest.TestCase):
    def test_codes_mirror_the_c_header(self):
        path = os.path.join(_util.source_dir(), "runtime", "include", "shoal", "common.h")
        with open(path) as fh:
            text = fh.read()
        codes = dict((n, int(v)) for n, v in
                     re.findall(r"SHOAL_(E[A-Z_]+)\s*=\s*\n?\s*(-\d+)", text))
        self.assertGreater(len(codes), 25)
        for name, value in codes.items():
            with self.subTest(code=name):
                self.assertEqual(getattr(errors, name), value)
                cls = errors.error_class(value)
                self.assertIsNot(cls, errors.ShoalError)
                self.assertEqual(cls.code, value)
                self.assertEqual(cls.text, _lib.C.strerror(value).decode())

    def test_builtin_bases(self):
        expect = {
            errors.ENOENT: FileNotFoundError, errors.EEXIST: FileExistsError,
            errors.ETIMEDOUT: TimeoutError, errors.ERANGE: IndexError,
            errors.ELAYOUT: TypeError, errors.EKIND: TypeError, errors.ENAME: ValueError,
            errors.EINVAL: ValueError, errors.EEOF: EOFError, errors.EPEERDEAD: EOFError,
            errors.EACCES: PermissionError, errors.EMSGSIZE: ValueError,
            errors.EOVERFLOW: ValueError, errors.EPERM: RuntimeError,
            errors.ENOMEM: MemoryError, errors.EAGAIN: BlockingIOError,
        }
        for code, base in expect.items():
            with self.subTest(code=code):
                e = _lib.error(code)
                self.assertIsInstance(e, base)
                self.assertIsInstance(e, shoal.ShoalError)
        import threading
        self.assertTrue(issubclass(shoal.BrokenBarrier, threading.BrokenBarrierError))
        self.assertTrue(issubclass(shoal.PeerDied, shoal.EndOfStream))

    def test_detail_message_names_the_object(self):
        with self.assertRaises(shoal.NotFound) as cm:
            shoal.Lock(name="nobody-here", create=False)
        e = cm.exception
        self.assertEqual(e.code, errors.ENOENT)
        self.assertIn("nobody-here", e.detail)
        self.assertEqual(str(e), e.detail)

    def test_exceptions_pickle(self):
        import pickle
        e = pickle.loads(pickle.dumps(shoal.LayoutMismatch("value x: mismatch",
                                                           errors.ELAYOUT)))
        self.assertIsInstance(e, shoal.LayoutMismatch)
        self.assertEqual(e.detail, "value x: mismatch")


class LoadingTest(unittest.TestCase):
    def test_uses_shoal_library(self):
        self.assertEqual(shoal.library_path, os.environ["SHOAL_LIBRARY"])

    def test_clear_error_when_missing(self):
        cp = _util.run_py("import shoal", check=False,
                          env={"SHOAL_LIBRARY": "/nonexistent/libshoal.so"})
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("LibraryNotFound", cp.stderr)
        self.assertIn("/nonexistent/libshoal.so", cp.stderr)
        self.assertIn("Set SHOAL_LIBRARY", cp.stderr)


class MiscTest(unittest.TestCase):
    def test_typecodes_match_the_library(self):
        for code, ct in shoal.types.TYPECODES.items():
            t = _lib.C.typecode(code.encode()).contents
            self.assertEqual(t.size, ctypes.sizeof(ct), code)
            self.assertEqual(t.typecode, code.encode())
            self.assertEqual(t.layout_hash, shoal.types.fnv1a(t.name))

    def test_spin_budget(self):
        old = shoal.spin_ns()
        shoal.set_spin_ns(1234)
        self.assertEqual(shoal.spin_ns(), 1234)
        shoal.set_spin_ns(old)

    def test_stat_unlink_gc(self):
        v = shoal.Value("d", 1.0, name="stat-me")
        info = shoal.stat("stat-me")
        self.assertEqual((info["kind"], info["type"], info["elem_size"]),
                         ("value", "float64", 8))
        self.assertEqual(info["creator_pid"], os.getpid())
        self.assertFalse(info["anonymous"])
        shoal.unlink("stat-me")
        with self.assertRaises(shoal.NotFound):
            shoal.stat("stat-me")
        v.value = 2.0  # still usable by those who have it open
        self.assertEqual(v.value, 2.0)
        self.assertGreaterEqual(shoal.gc(), 0)
        with self.assertRaises(shoal.NotFound):
            shoal.unlink("stat-me")

    def test_domains_are_separate(self):
        shoal.Value("i", 1, name="same-name", domain="d1")
        shoal.Value("i", 2, name="same-name", domain="d2")
        self.assertEqual(shoal.Value("i", name="same-name", domain="d1",
                                     create=False).value, 1)
        with self.assertRaises(shoal.NotFound):
            shoal.Value("i", name="same-name", domain="d3", create=False)

    def test_objects_close_with_a_context_manager(self):
        with shoal.Queue() as q:
            q.put(1)
        self.assertTrue(q.closed)



class SpeedupsTest(unittest.TestCase):
    def test_the_selected_path_is_in_use(self):
        # $SHOAL_PY_PURE selects the ctypes path; otherwise the C extension is used
        # wherever it was built ($SHOAL_PY_EXT_DIR in the build tree).
        from shoal import _lib
        if os.environ.get("SHOAL_PY_PURE"):
            self.assertIsNone(_lib.speedups)
            self.assertEqual(shoal.Lock.__mro__[1].__name__, "_PyLockBase")
        elif os.environ.get("SHOAL_PY_EXT_DIR"):
            self.assertIsNotNone(_lib.speedups)
            self.assertIs(shoal.Lock.__mro__[1], _lib.speedups.LockBase)

if __name__ == "__main__":
    unittest.main()
