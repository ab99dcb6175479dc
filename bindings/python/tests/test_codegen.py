"""emit_python: the generated ctypes structures match the C compiler's layout exactly
(size, alignment, every member's offset and size), carry the same layout hash,
validate like the C code, and travel through shoal objects."""

import ctypes
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal import _gen  # noqa: E402

SRC = _util.source_dir()
SCHEMAS = [  # (include dir, protos)
    (os.path.join(SRC, "tests", "codegen", "proto"), ["features.proto", "common.proto"]),
    (os.path.join(SRC, "examples", "orders"), ["orders.proto"]),
    (os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto"),
     ["pyfeatures.proto"]),
]

ASSERT_SIZE = re.compile(r"SHOAL_GEN_ASSERT\(sizeof\((\w+)\) == \d+")
ASSERT_MEMBER = re.compile(r"SHOAL_GEN_ASSERT\(offsetof\((\w+), (\w+)\) == \d+")


def setUpModule():
    global OUT
    if _util.codegen_tools() is None:
        raise unittest.SkipTest("the schema compiler was not built")
    OUT = tempfile.mkdtemp(prefix="shoal-pygen-")
    for inc, protos in SCHEMAS:
        existing = [p for p in protos if os.path.exists(os.path.join(inc, p))]
        if existing:
            _util.generate(OUT, [inc], existing, "python")
            _util.generate(OUT, [inc], existing, "c")
    sys.path.insert(0, OUT)


def tearDownModule():
    shutil.rmtree(OUT, ignore_errors=True)


def _modules():
    return sorted(f[:-3] for f in os.listdir(OUT) if f.endswith("_shoal.py"))


class _Probe(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int)]


_CField = type(_Probe.x)


def _python_member(cls, c_member):
    """The ctypes member of cls for a C struct member name (C keywords get a '_'
    appended in C, Python ones in Python; converted members are stored as _r_*)."""
    base = c_member[:-1] if c_member.endswith("_") else c_member
    for cand in (c_member, "_r_" + c_member, base, "_r_" + base, base + "_"):
        d = cls.__dict__.get(cand)
        if isinstance(d, _CField):
            return cand, d
    return None, None


class LayoutTest(unittest.TestCase):
    """Sizes, alignments, offsets and hashes against the C compiler's."""

    def test_against_the_c_compiler(self):
        checks = []  # (C type, [C members])
        headers = []
        for f in sorted(os.listdir(OUT)):
            if not f.endswith(".shoal.h"):
                continue
            headers.append(f)
            with open(os.path.join(OUT, f)) as fh:
                text = fh.read()
            for t in ASSERT_SIZE.findall(text):
                members = [m for tt, m in ASSERT_MEMBER.findall(text) if tt == t]
                checks.append((t, members))
        self.assertGreater(len(checks), 5)
        lines = ["#include <stdio.h>", "#include <stddef.h>"]
        lines += ['#include "%s"' % h for h in headers]
        lines.append("int main(void) {")
        for t, members in checks:
            lines.append('printf("T %s %%zu %%zu %%llu\\n", sizeof(%s), _Alignof(%s), '
                         '(unsigned long long)%s_LAYOUT_HASH);' % (t, t, t, t))
            for m in members:
                lines.append('printf("M %s %s %%zu %%zu\\n", offsetof(%s, %s), '
                             'sizeof(((%s *)0)->%s));' % (t, m, t, m, t, m))
        lines.append("return 0; }")
        src = os.path.join(OUT, "layout_check.c")
        with open(src, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        exe = os.path.join(OUT, "layout_check")
        cc = os.environ.get("CC", "cc")
        inc = os.path.join(SRC, "runtime", "include")
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        subprocess.run([cc, "-std=c11", "-I", OUT, "-I", inc, src, "-o", exe], check=True,
                       env=env, timeout=120)
        out = subprocess.run([exe], check=True, capture_output=True, text=True,
                             env=env).stdout
        classes = {}
        for mod in _modules():
            m = importlib.import_module(mod)
            for name, obj in vars(m).items():
                if isinstance(obj, type) and issubclass(obj, _gen.Message) and \
                        obj.__module__ == m.__name__:
                    classes[name] = obj
        seen_types = seen_members = 0
        for ln in out.splitlines():
            parts = ln.split()
            cls = classes.get(parts[1])
            self.assertIsNotNone(cls, "no Python class for C type %s" % parts[1])
            if parts[0] == "T":
                size, align, lhash = int(parts[2]), int(parts[3]), int(parts[4])
                with self.subTest(type=parts[1]):
                    self.assertEqual(ctypes.sizeof(cls), size)
                    self.assertEqual(ctypes.alignment(cls), align)
                    self.assertEqual(cls._shoal_hash_, lhash)
                    self.assertEqual(shoal.layout_hash(cls), lhash)
                seen_types += 1
            else:
                raw, d = _python_member(cls, parts[2])
                with self.subTest(type=parts[1], member=parts[2]):
                    self.assertIsNotNone(d, "no ctypes member for %s" % parts[2])
                    self.assertEqual((d.offset, d.size), (int(parts[3]), int(parts[4])))
                seen_members += 1
        self.assertEqual(seen_types, len(checks))
        self.assertGreater(seen_members, 40)


class GeneratedTypesTest(unittest.TestCase):
    def test_fields_and_conversions(self):
        f = importlib.import_module("features_shoal")
        c = importlib.import_module("common_shoal")
        e = f.Everything(scalars=f.Scalars(f_string="hello", f_bool=True),
                         r_string=["a", "bb"], color=c.Color.BLUE)
        e.r_point = [c.Point(1, 2, "x"), {"x": 3, "y": 4, "label": "yy"}]
        e.c_text = "choose"
        e.maybe = 5
        self.assertTrue(e.has_maybe)
        self.assertFalse(e.has_maybe_text)
        self.assertEqual(e.scalars.f_string, "hello")
        self.assertIs(e.scalars.f_bool, True)
        self.assertEqual(e.r_string, ["a", "bb"])
        self.assertEqual(e.r_point[1].label, "yy")
        self.assertIs(e.color, c.Color.BLUE)
        self.assertEqual((e.c_text, e.c_int, e.choice_case), ("choose", None, 13))
        e.c_int = 7
        self.assertEqual((e.c_text, e.c_int, e.choice_case), (None, 7, 12))
        e.validate()
        with self.assertRaises(shoal.InvalidData) as cm:
            e.scalars.f_string = "x" * 11
        self.assertIn("feat.Scalars.f_string", str(cm.exception))
        with self.assertRaises(shoal.InvalidData):
            e.r_int32 = [1, 2, 3, 4]
        self.assertEqual(f.Empty.__dict__["_shoal_desc_"].size, 1)
        self.assertEqual(f.Level.TOP, f.Level.HIGH)  # aliases

    def test_validation_mirrors_c(self):
        o = importlib.import_module("orders_shoal")
        order = o.Order(1, "AAPL", 10.5, 3, o.Side.BUY, [1, 2])
        order.validate()
        order._r_symbol.len = 9
        with self.assertRaises(shoal.InvalidData) as cm:
            order.validate()
        self.assertEqual(str(cm.exception),
                         "orders.Order.symbol: length 9 over max_len 8")
        order._r_symbol.len = 4
        order._r_side = 7
        with self.assertRaises(shoal.InvalidData) as cm:
            order.validate()
        self.assertEqual(str(cm.exception),
                         "orders.Order.side: 7 is not a value of orders.Side")
        self.assertEqual(order.side, 7)  # unknown values read as plain ints
        order._r_side = 1
        order._r_fills.count = 5
        with self.assertRaises(shoal.InvalidData):
            order.validate()

    def test_defaults_and_keywords(self):
        p = importlib.import_module("pyfeatures_shoal")
        d = p.Defaults()
        self.assertEqual(d.count, 7)
        self.assertFalse(d.has_count)  # defaults are not "set"
        self.assertEqual(d.name, "h\u00e9llo")
        self.assertEqual(d.raw, b"\x01\x02x")
        self.assertEqual(d.ratio, float("inf"))
        self.assertIs(d.on, True)
        self.assertIs(d.answer, p.Answer.YES)
        self.assertEqual(d.class_, -2**63)
        self.assertEqual(d.lambda_, 1.5)
        self.assertIs(d.plain, p.Answer.None_)
        d.from_ = 3
        self.assertTrue(d.has_from)
        self.assertIn("from_", d.to_dict())

    def test_through_shoal_objects(self):
        o = importlib.import_module("orders_shoal")
        q = o.Order.Queue(8)
        order = o.Order(id=5, symbol="MSFT", price=2.5, quantity=9, side=o.Side.SELL,
                        fills=[4])
        q.put(order)
        got = q.get()
        self.assertEqual(got, order)
        with q.loan() as slot:
            slot.id = 6
            slot.symbol = "IBM"
            slot.fills = []
        with q.peek() as view:
            self.assertEqual((view.id, view.symbol), (6, "IBM"))
        self.assertEqual(q.qsize(), 0)
        bad = o.Order(id=1)
        bad._r_fills.count = 99
        with self.assertRaises(shoal.InvalidData):
            q.put(bad)
        v = o.Order.Value(7, "X", name="order-value")
        self.assertEqual(v.value.id, 7)
        with v.modify() as m:
            m.quantity = 11
        self.assertEqual(v.value.quantity, 11)
        self.assertEqual(shoal.stat("order-value")["type"], "orders.Order")
        a = o.Order.Array(3)
        a[1] = o.Order(id=2)
        self.assertEqual(a[1].id, 2)

    def test_received_messages_are_validated(self):
        # Writes in place bypass put()'s validation, as another process's could:
        # get() checks what it receives and raises InvalidData naming the field.
        f = importlib.import_module("features_shoal")
        o = importlib.import_module("orders_shoal")
        q = f.Everything.Queue(8)
        bad = [("choice_case", 77, "feat.Everything.choice: unknown case 77"),
               ("color", 5, "feat.Everything.color: 5 is not a value"),
               ("bool", 2, "feat.Scalars.f_bool: a bool holds neither 0 nor 1")]
        for what, value, detail in bad:
            with q.loan() as slot:
                ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(slot))
                if what == "bool":
                    slot.scalars._r_f_bool = value
                elif what == "color":
                    slot._r_color = value
                else:
                    setattr(slot, what, value)
            with self.assertRaises(shoal.InvalidData) as cm:
                q.get(timeout=10)
            self.assertIn(detail, str(cm.exception))
        oq = o.Order.Queue(4)
        with oq.loan() as slot:
            ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(slot))
            ctypes.memmove(ctypes.addressof(slot._r_symbol) + 4, b"\xff\xfe", 2)
            slot._r_symbol.len = 2
        with self.assertRaises(shoal.InvalidData) as cm:
            oq.get(timeout=10)
        self.assertEqual(str(cm.exception), "orders.Order.symbol: the string is not UTF-8")
        # reading such a string raises InvalidData too, never UnicodeDecodeError
        order = o.Order()
        ctypes.memmove(ctypes.addressof(order._r_symbol) + 4, b"\xc0\xaf", 2)
        order._r_symbol.len = 2
        with self.assertRaises(shoal.InvalidData):
            order.symbol
        with self.assertRaises(shoal.InvalidData):
            oq.put(order)

    def test_protobuf_form(self):
        # to_bytes() writes protobuf's standard encoding (protoc reads it), and
        # from_bytes() reads protoc's; what does not fit is refused by name.
        f = importlib.import_module("features_shoal")
        c = importlib.import_module("common_shoal")
        e = f.Everything(scalars=f.Scalars(f_int64=-2**63, f_sint32=-3, f_string="h\u00e9",
                                           f_bytes=b"\x00\xff", f_enum=f.Level.HIGH),
                         color=c.Color.BLUE, r_int32=[-1, 300], r_string=["a"],
                         r_point=[c.Point(1, -2, "p")])
        e.c_text = "choice"
        e.maybe = 0
        data = e.to_bytes()
        back = f.Everything.from_bytes(data)
        self.assertEqual(back, e)
        self.assertTrue(back.has_maybe)
        protoc = _util.codegen_tools()[0]
        inc = ["-I" + SCHEMAS[0][0], "-I" + os.path.join(SRC, "schemas")]
        cp = subprocess.run([protoc, "--decode=feat.Everything"] + inc + ["features.proto"],
                            input=data, capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        text = cp.stdout.decode()
        for want in ("f_int64: -9223372036854775808", "f_sint32: -3", "f_enum: HIGH",
                     "color: BLUE", "r_int32: 300", 'c_text: "choice"', "maybe: 0"):
            self.assertIn(want, text)
        cp = subprocess.run([protoc, "--encode=feat.Everything"] + inc + ["features.proto"],
                            input=cp.stdout, capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(f.Everything.from_bytes(cp.stdout), e)
        self.assertEqual(f.Everything.from_bytes(cp.stdout).to_bytes(), data)
        with self.assertRaises(shoal.InvalidData) as cm:  # 11 bytes, max_len 10
            f.Scalars.from_bytes(b"\x72\x0b" + b"x" * 11)
        self.assertIn("feat.Scalars.f_string: 11 bytes over max_len 10", str(cm.exception))
        with self.assertRaises(shoal.InvalidData):  # 4 elements, max_count 3
            f.Everything.from_bytes(b"\x2a\x04\x01\x02\x03\x04")
        with self.assertRaises(shoal.InvalidData):  # cut short
            f.Scalars.from_bytes(b"\x08")
        self.assertEqual(f.Scalars.from_bytes(b"").to_bytes(), b"")


if __name__ == "__main__":
    unittest.main()
