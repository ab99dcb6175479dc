"""Encoded messages between C and Python through a queue: a C producer's
Note_queue_put is read by a Python consumer of the generated class, and a Python
producer's put by Note_queue_get in C, every field compared (an open enum's unknown
number included: both keep it); a message C's validator refuses (a string that is not
UTF-8) is reported to the C consumer.

The C side is encoded_helper ($SHOAL_ENCODED_HELPER); note i is built the same way on
both sides (make_note in encoded_helper.c, note() here)."""

import os
import subprocess
import sys
import tempfile
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal._object import unlink  # noqa: E402

HELPER = os.environ.get("SHOAL_ENCODED_HELPER")
N = 200
pb = None


def setUpModule():
    global pb, _gen_dir
    if not HELPER or _util.codegen_tools() is None:
        raise unittest.SkipTest("encoded_helper or the schema compiler was not built")
    _gen_dir = tempfile.mkdtemp(prefix="shoal-interop-enc-")
    _util.generate(_gen_dir, [os.path.dirname(os.path.abspath(__file__))],
                   ["encoded_note.proto"])
    sys.path.insert(0, _gen_dir)
    import encoded_note_shoal
    pb = encoded_note_shoal


def tearDownModule():
    import shutil
    shutil.rmtree(_gen_dir, ignore_errors=True)


def note(i):
    """Note i, as make_note() in encoded_helper.c builds it."""
    # kind 3 is a number the open (proto3) enum Kind does not name: kept by both
    n = pb.Note(seq=i, text="note %d \u00e9" % i, values=[-i, i * 10**12],
                tags={"n": i, "neg": -i}, kind=pb.Kind(i % 4) if i % 4 < 3 else 3,
                meta=pb.Meta(bytes([0, 0xff, i & 0xff])))
    if i % 2:
        n.why = "odd %d" % i
    else:
        n.code = i * 7
    return n


def helper(*args):
    return subprocess.run([HELPER] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=300)


class EncodedInterop(unittest.TestCase):
    def setUp(self):
        self.q = pb.Note.Queue(name="enc-interop-%d-%s"
                               % (os.getpid(), self._testMethodName))

    def tearDown(self):
        name = self.q.name
        self.q.close()
        unlink(name)

    def test_c_to_python(self):
        cp = helper("produce", self.q.name, N)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        for i in range(1, N + 1):
            got = self.q.get(timeout=60)
            self.assertEqual(got, note(i))
            if i % 4 == 3:  # an open enum's unknown number, as the bare int
                self.assertEqual((type(got.kind), got.kind), (int, 3))
        self.assertTrue(self.q.empty())

    def test_python_to_c(self):
        proc = subprocess.Popen([HELPER, "consume", self.q.name, str(N)],
                                stderr=subprocess.PIPE, text=True)
        for i in range(1, N + 1):
            self.q.put(note(i), timeout=60)
        _, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 0, err)

    def test_c_refuses_what_does_not_validate(self):
        self.q.queue.put_bytes(b"\x12\x02\xc3\x28")  # text: not UTF-8
        cp = helper("consume", self.q.name, 1)
        self.assertEqual(cp.returncode, 1)
        self.assertIn("invalid", cp.stderr.lower())
        self.assertIn("text", cp.stderr)
        self.assertTrue(self.q.empty())  # consumed
        with self.assertRaises(shoal.InvalidData):
            pb.Note.from_bytes(b"\x12\x02\xc3\x28")


if __name__ == "__main__":
    unittest.main()
