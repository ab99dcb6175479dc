"""C, Python, Rust and Node processes, started separately, on one typed Queue and one
Value of a generated type (four_lang.c describes the protocol).

1. Four times, once with each language as the reader: one writer per language puts
   2000 numbered orders on the queue "four.orders" (orders.Order) and adds each id to
   the Value "four.tally" (interop.Tally) under its lock, all at once; when the writers
   are done the queue is shut down, and the reader must have received each of the 8000
   orders exactly once, intact, and find the tally's total exact.
2. A queue of orders.Order opened by Rust, Node and Python builds of a changed Order
   (orders_v2.proto) is refused with a layout mismatch naming both types.

Programs: $SHOAL_FOUR_C (four_lang.c), four_lang.py, $SHOAL_FOUR_RUST (shoal-interop of
bindings/rust/shoal-tests), four_lang.js run by $SHOAL_NODE with the addon at
$SHOAL_NODE_ADDON. The schemas are compiled with $SHOAL_CLI.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SHOAL_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
N = 2000
LANGS = ["c", "python", "rust", "node"]
tmp = None


def commands(gen):
    """The command line of each language's program, by language."""
    return {
        "c": [os.environ.get("SHOAL_FOUR_C", "")],
        "python": [sys.executable, os.path.join(HERE, "four_lang.py")],
        "rust": [os.environ.get("SHOAL_FOUR_RUST", "")],
        "node": [os.environ.get("SHOAL_NODE", "node"), os.path.join(HERE, "four_lang.js"), gen],
    }


def setUpModule():
    global tmp, gen, root
    need = ["SHOAL_FOUR_C", "SHOAL_FOUR_RUST", "SHOAL_NODE_ADDON", "SHOAL_CLI"]
    missing = [v for v in need if not os.environ.get(v)]
    if missing:
        raise unittest.SkipTest("not built: " + ", ".join(missing))
    tmp = tempfile.mkdtemp(prefix="shoal-four-")
    gen, root = os.path.join(tmp, "gen"), os.path.join(tmp, "shm")
    os.makedirs(root)
    cli = os.environ["SHOAL_CLI"]
    for lang in ("python", "node"):
        for inc, protos in ((os.path.join(SRC, "examples", "orders"), ["orders.proto"]),
                            (HERE, ["tally.proto", "orders_v2.proto"])):
            subprocess.run([cli, "gen", "--lang", lang, "-I", inc, "-o", gen] +
                           [os.path.join(inc, p) for p in protos], check=True)
    os.makedirs(os.path.join(gen, "node_modules"))
    os.symlink(os.path.join(SRC, "bindings", "node"), os.path.join(gen, "node_modules", "shoal"))
    sys.path.insert(0, gen)


def tearDownModule():
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def env_for(domain):
    env = dict(os.environ, SHOAL_ROOT=root, SHOAL_DOMAIN=domain)
    env["PYTHONPATH"] = os.pathsep.join([gen, env.get("PYTHONPATH", "")])
    return env


def start(lang, args, domain):
    return subprocess.Popen(commands(gen)[lang] + [str(a) for a in args], env=env_for(domain),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, what, timeout=300):
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("%s failed (%s):\n%s%s" % (what, p.returncode, out, err))
    return out


class FourLanguages(unittest.TestCase):
    def test_each_language_reads_what_all_four_wrote(self):
        import shoal
        import orders_shoal
        for reader in LANGS:
            with self.subTest(reader=reader):
                domain = "four-" + reader
                r = start(reader, ["reader", N], domain)
                writers = [start(lang, ["writer", i + 1, N], domain)
                           for i, lang in enumerate(LANGS)]
                for lang, w in zip(LANGS, writers):
                    finish(w, "%s writer" % lang)
                q = shoal.TypedQueue(orders_shoal.Order, 256, name="four.orders", create=False,
                                     root=root, domain=domain)
                q.shutdown()
                q.close()
                out = finish(r, "%s reader" % reader)
                self.assertIn("%s reader: %d orders exactly once" % (reader, 4 * N), out)

    def test_other_layout_refused_naming_both(self):
        import shoal
        import orders_shoal
        import orders_v2_shoal
        domain = "four-mismatch"
        q = shoal.TypedQueue(orders_shoal.Order, 16, name="four.orders", root=root,
                             domain=domain)
        want = "orders.Order#bf38098f87e9011a"  # docs/schema.md 4
        for lang in ("rust", "node"):
            out = finish(start(lang, ["mismatch"], domain), "%s mismatch" % lang)
            self.assertIn(want, out)
            self.assertRegex(out, r"orders\.Order#(?!bf38098f87e9011a)[0-9a-f]{16}")
        with self.assertRaises(shoal.LayoutMismatch) as cm:
            shoal.TypedQueue(orders_v2_shoal.v2_Order, name="four.orders", create=False,
                             root=root, domain=domain)
        self.assertIn(want, str(cm.exception))
        q.close()


if __name__ == "__main__":
    unittest.main()
