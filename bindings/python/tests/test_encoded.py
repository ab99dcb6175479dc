"""Generated classes of encoded messages (no fixed layout): to_bytes() / from_bytes()
agree with protoc's own encoder and decoder for every field kind, malformed input is
refused by name, and messages travel through typed queues and pipes."""

import importlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal._object import unlink  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INC = os.path.join(HERE, "proto")
PROTO = "pyencoded.proto"


def setUpModule():
    global OUT, enc, enc2
    if _util.codegen_tools() is None:
        raise unittest.SkipTest("the schema compiler was not built")
    OUT = tempfile.mkdtemp(prefix="shoal-pyenc-")
    _util.generate(OUT, [INC], [PROTO, "pyencoded2.proto"], "python")
    sys.path.insert(0, OUT)
    enc = importlib.import_module("pyencoded_shoal")
    enc2 = importlib.import_module("pyencoded2_shoal")


def tearDownModule():
    sys.path.remove(OUT)
    shutil.rmtree(OUT, ignore_errors=True)


def protoc(mode, data, msg="enc.All", proto=PROTO):
    """protoc --encode / --decode of msg (text format <-> binary)."""
    tools = _util.codegen_tools()
    cmd = [tools[0], "--%s=%s" % (mode, msg), "-I" + INC,
           "-I" + os.path.join(_util.source_dir(), "schemas"), proto]
    cp = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
    if cp.returncode:
        raise AssertionError(cp.stderr.decode())
    return cp.stdout


def full():
    return enc.All(
        f_int32=-5, f_int64=-2**63, f_uint32=2**32 - 1, f_uint64=2**64 - 1,
        f_sint32=-2**31, f_sint64=-3, f_fixed32=7, f_fixed64=2**64 - 2,
        f_sfixed32=-9, f_sfixed64=-2**63, f_float=1.5, f_double=-0.25, f_bool=True,
        f_string="h\u00e9llo", f_bytes=b"\x00\xff", f_mood=enc.Mood.GRUMPY,
        inner=enc.Inner("in", [-1, 2**62]), point=enc.Point(3, -4), maybe=0,
        packed=[1, -1, 300], unpacked=[-7, 8], names=["a", ""],
        inners=[enc.Inner("x"), enc.Inner(deltas=[5])],
        counts={"k": -1, "": 2}, by_id={-3: enc.Inner("neg")}, c_inner=enc.Inner("c"),
        moods=[enc.Mood.HAPPY, 7], short="abcd")


def _deep_group(depth):
    """An unknown field 127: a group nested depth times (what a hostile peer could
    send to exhaust the decoder's stack)."""
    return b"\xfb\x07" * depth + b"\xfc\x07" * depth


def _child_put(q):
    q.put(enc.Inner("from child", [-1]))


class Generated(unittest.TestCase):
    def test_defaults_and_attributes(self):
        a = enc.All()
        self.assertEqual((a.f_int32, a.f_string, a.f_bytes, a.f_bool, a.f_double),
                         (0, "", b"", False, 0.0))
        self.assertIs(a.f_mood, enc.Mood.MOOD_NONE)
        self.assertIsNone(a.inner)
        self.assertIsNone(a.maybe)
        self.assertEqual((a.packed, a.counts), ([], {}))
        self.assertEqual(a.to_bytes(), b"")
        self.assertEqual(enc.All.from_bytes(b""), a)
        with self.assertRaises(AttributeError):
            a.no_such = 1
        with self.assertRaises(TypeError):
            enc.All(nope=1)

    def test_oneof(self):
        a = enc.All(c_text="t")
        self.assertEqual(a.which_oneof("choice"), "c_text")
        a.c_num = 5
        self.assertIsNone(a.c_text)
        self.assertEqual(a.which_oneof("choice"), "c_num")
        self.assertEqual(enc.All.from_bytes(a.to_bytes()).c_num, 5)
        a.c_num = 0  # a set member is written even at zero
        self.assertEqual(enc.All.from_bytes(a.to_bytes()).which_oneof("choice"), "c_num")

    def test_against_protoc(self):
        a = full()
        data = a.to_bytes()
        text = protoc("decode", data).decode()
        for want in ("f_int32: -5", "f_int64: -9223372036854775808",
                     "f_uint64: 18446744073709551615", "f_sint32: -2147483648",
                     "f_sint64: -3", "f_fixed64: 18446744073709551614",
                     "f_sfixed32: -9", "f_float: 1.5", "f_double: -0.25",
                     "f_bool: true", "f_mood: GRUMPY", "maybe: 0", "packed: 300",
                     "unpacked: -7", 'c_inner {\n  label: "c"', "moods: 7",
                     'key: "k"', "value: -1", "key: -3", 'short: "abcd"'):
            self.assertIn(want, text)
        back = enc.All.from_bytes(data)
        self.assertEqual(back, a)
        self.assertEqual(back.moods, [enc.Mood.HAPPY, 7])  # unknown, kept (open enum)
        again = protoc("encode", text.encode())
        self.assertEqual(enc.All.from_bytes(again), a)
        # the same text back (protoc prints map entries sorted; their order on the
        # wire is free)
        self.assertEqual(protoc("decode", enc.All.from_bytes(again).to_bytes()).decode(),
                         text)

    def test_wire_details(self):
        # a negative int32 takes 10 bytes; sint uses zigzag; proto3 packs by default
        self.assertEqual(enc.All(f_int32=-1).to_bytes(), b"\x08" + b"\xff" * 9 + b"\x01")
        self.assertEqual(enc.All(f_sint32=-1).to_bytes(), b"\x28\x01")
        self.assertEqual(enc.All(f_sint64=1).to_bytes(), b"\x30\x02")
        self.assertEqual(enc.All(f_fixed32=1).to_bytes(), b"\x3d\x01\x00\x00\x00")
        self.assertEqual(enc.All(packed=[1, 2]).to_bytes(), b"\xa2\x01\x02\x01\x02")
        self.assertEqual(enc.All(unpacked=[1, 2]).to_bytes(), b"\xa8\x01\x01\xa8\x01\x02")
        # both forms are read for either field
        self.assertEqual(enc.All.from_bytes(b"\xa0\x01\x01\xa0\x01\x02").packed, [1, 2])
        self.assertEqual(enc.All.from_bytes(b"\xaa\x01\x02\x01\x02").unpacked, [1, 2])
        # unknown fields (every wire type, a group too) are skipped
        unknown = (b"\xf8\x07\x05" + b"\xf9\x07" + b"\x00" * 8 + b"\xfa\x07\x01x" +
                   b"\xfd\x07" + b"\x00" * 4 + b"\xfb\x07\x08\x01\xfc\x07")
        self.assertEqual(enc.All.from_bytes(unknown + b"\x08\x02").f_int32, 2)
        # a singular message seen twice is merged
        merged = enc.All.from_bytes(b"\x8a\x01\x03\x0a\x01a" + b"\x8a\x01\x02\x10\x02")
        self.assertEqual(merged.inner, enc.Inner("a", [1]))
        self.assertTrue(math.isnan(enc.All.from_bytes(
            enc.All(f_double=float("nan")).to_bytes()).f_double))

    def test_malformed_input(self):
        cases = [
            (b"\x08", "enc.All.f_int32: truncated varint"),
            (b"\x80", "enc.All: truncated varint"),
            (b"\x08" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes"),
            (b"\x72\x05ab", "enc.All.f_string: length 5 runs past the end"),
            (b"\x72\x02\xc3\x28", "enc.All.f_string: the string is not UTF-8"),
            (b"\x3d\x01\x00", "enc.All.f_fixed32: truncated"),
            (b"\x0a\x01a", "enc.All.f_int32: wire type 2, expected 0"),
            (b"\x8a\x01\x02\x0a\x05", "enc.Inner.label: length 5 runs past the end"),
            (b"\xf2\x01\x05abcde", "enc.All.short: 5 bytes over max_len 4"),
            (b"\x00", "enc.All: field number 0"),
            (b"\xfb\x07\xfc\x08", "mismatched group end"),
            (b"\xfe\x07", "bad wire type 6"),
            (_deep_group(5000), "enc.All: messages nested too deeply"),
        ]
        for data, want in cases:
            with self.subTest(data=data):
                with self.assertRaises(shoal.InvalidData) as cm:
                    enc.All.from_bytes(data)
                self.assertIn(want, str(cm.exception))

    def test_bad_values(self):
        with self.assertRaises(TypeError):
            enc.All(f_int32="1").to_bytes()
        with self.assertRaises(TypeError):
            enc.All(f_string=b"x").to_bytes()
        with self.assertRaises(TypeError):
            enc.All(inner=enc.Point()).to_bytes()
        with self.assertRaises(shoal.InvalidData) as cm:
            enc.All(f_int32=2**31).to_bytes()
        self.assertIn("enc.All.f_int32", str(cm.exception))
        with self.assertRaises(shoal.InvalidData):
            enc.All(f_uint32=-1).to_bytes()
        with self.assertRaises(shoal.InvalidData):
            enc.All(short="12345").to_bytes()
        with self.assertRaises(shoal.InvalidData):
            enc.All(f_float=1e300).to_bytes()


class RealSchema(unittest.TestCase):
    def test_descriptor_set_round_trip(self):
        # protoc's own FileDescriptorSet of descriptor.proto and plugin.proto (proto2,
        # nested and recursive messages, closed enums, packed source locations), read
        # and written back byte for byte.
        pb_inc = "/usr/include"
        if not os.path.exists(os.path.join(pb_inc, "google/protobuf/descriptor.proto")):
            self.skipTest("protobuf's descriptor.proto is not installed")
        out = tempfile.mkdtemp(prefix="shoal-pyenc-desc-")
        try:
            protos = ["google/protobuf/descriptor.proto",
                      "google/protobuf/compiler/plugin.proto"]
            _util.generate(out, [pb_inc], protos, "python")
            cmd = [_util.codegen_tools()[0], "-I" + pb_inc, "--include_imports",
                   "--include_source_info", "--descriptor_set_out=/dev/stdout"] + protos
            data = subprocess.run(cmd, capture_output=True, check=True,
                                  timeout=60).stdout
            # loaded from its file: an installed google.protobuf package would hide it
            spec = importlib.util.spec_from_file_location(
                "shoal_test_descriptor",
                os.path.join(out, "google", "protobuf", "descriptor_shoal.py"))
            desc = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(desc)
            fds = desc.FileDescriptorSet.from_bytes(data)
            self.assertEqual([f.name for f in fds.file], protos)
            self.assertEqual(fds.file[0].message_type[0].name, "FileDescriptorSet")
            self.assertEqual(fds.to_bytes(), data)
        finally:
            shutil.rmtree(out, ignore_errors=True)


class Proto2(unittest.TestCase):
    def test_closed_enums_and_presence(self):
        b = enc2.Box()
        self.assertEqual((b.n, b.name, b.color), (None, None, None))
        self.assertEqual(b.to_bytes(), b"")
        b = enc2.Box(n=0, name="", color=enc2.Color.GREEN, nums=[1, -1],
                     colors=[enc2.Color.RED], dense=[3, 4], by_name={"g": enc2.Color.GREEN},
                     class_=5)
        data = b.to_bytes()
        self.assertEqual(data[:4], b"\x08\x00\x12\x00")  # present zeros are written
        text = protoc("decode", data, "enc2.Box", "pyencoded2.proto").decode()
        for want in ("n: 0", 'name: ""', "color: GREEN", "nums: -1", "colors: RED",
                     "dense: 4", "class: 5", "value: GREEN"):
            self.assertIn(want, text)
        again = protoc("encode", text.encode(), "enc2.Box", "pyencoded2.proto")
        self.assertEqual(again, data)
        self.assertEqual(enc2.Box.from_bytes(again), b)
        # proto2 repeated scalars are not packed unless asked
        self.assertEqual(enc2.Box(nums=[1, 2]).to_bytes(), b"\x20\x01\x20\x02")
        # a closed enum's unknown value is refused, written or read
        with self.assertRaises(shoal.InvalidData) as cm:
            enc2.Box.from_bytes(b"\x18\x07")
        self.assertIn("enc2.Box.color: 7 is not a value of Color", str(cm.exception))
        with self.assertRaises(shoal.InvalidData):
            enc2.Box.from_bytes(b"\x3a\x05\x0a\x01g\x10\x09")  # map value 9
        with self.assertRaises(shoal.InvalidData):
            enc2.Box(color=7).to_bytes()


class Channels(unittest.TestCase):
    def test_queue_between_processes(self):
        q = enc.All.Queue(name="pyenc-q-%d" % os.getpid())
        try:
            q.put(full())
            q.put(enc.All(f_int32=1))
            code = ("import sys; sys.path.insert(0, %r)\n"
                    "import shoal, pyencoded_shoal as enc\n"
                    "q = enc.All.Queue(name=%r, create=False)\n"
                    "a = q.get(timeout=30); b = q.get(timeout=30)\n"
                    "q.put(enc.All(f_string=a.f_string + '!', f_int32=b.f_int32 + 1))\n"
                    % (OUT, q.name))
            _util.run_py(code)
            got = q.get(timeout=30)
            self.assertEqual((got.f_string, got.f_int32), ("h\u00e9llo!", 2))
            with self.assertRaises(TypeError):
                q.put(enc.Inner())
            with self.assertRaises(shoal.MessageTooLarge):
                q.put(enc.All(f_bytes=b"x" * 5000))
            q.queue.put_bytes(b"\x72\x02\xc3\x28")  # not UTF-8: consumed, refused
            with self.assertRaises(shoal.InvalidData):
                q.get(timeout=30)
            self.assertTrue(q.empty())
        finally:
            name = q.name
            q.close()
            unlink(name)

    def test_queue_handed_to_a_child(self):
        # the queue pickles as the class and the shoal queue it wraps
        import multiprocessing as mp
        q = enc.Inner.Queue(4)
        p = mp.get_context("fork").Process(target=_child_put, args=(q,))
        p.start()
        self.assertEqual(q.get(timeout=60), enc.Inner("from child", [-1]))
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        q.close()

    def test_pipe(self):
        a, b = enc.Inner.Pipe()
        a.send(enc.Inner("hi", [-2]))
        self.assertEqual(b.recv(), enc.Inner("hi", [-2]))
        b.send(enc.Inner())
        self.assertEqual(a.recv(), enc.Inner())
        with self.assertRaises(shoal.MessageTooLarge):  # over the default 4096
            a.send(enc.Inner("x" * 5000))
        with self.assertRaises(TypeError):
            a.send(enc.All())
        self.assertFalse(b.poll(0))
        a.close()
        b.close()


if __name__ == "__main__":
    unittest.main()
