"""Python processes and C processes on the same named objects.

1. A C producer puts 100,000 generated Orders; a Python consumer receives them all,
   in order, field for field equal; and the reverse direction.
2. Five Python processes and four C processes each add 50 to one Value under its
   lock: exactly 450.
3. A Python process holding a Lock is SIGKILLed; a C process acquires it and is told
   the owner died; and the reverse.
4. A Value created by Python with the generated Order type, opened by C with a changed
   Order type: a layout-mismatch error naming both.

The C side is interop_helper ($SHOAL_INTEROP_HELPER); order i is made the same way on
both sides (make_order in examples/orders/order_gen.h, _make_order here).
"""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402

HELPER = os.environ.get("SHOAL_INTEROP_HELPER")
N_ORDERS = 100000
fork = mp.get_context("fork")
orders = None


def setUpModule():
    global orders, _gen_dir
    if not HELPER or _util.codegen_tools() is None:
        raise unittest.SkipTest("interop_helper or the schema compiler was not built")
    _gen_dir = tempfile.mkdtemp(prefix="shoal-interop-")
    _util.generate(_gen_dir, [os.path.join(_util.source_dir(), "examples", "orders")],
                   ["orders.proto"])
    sys.path.insert(0, _gen_dir)
    import orders_shoal
    orders = orders_shoal


def tearDownModule():
    import shutil
    shutil.rmtree(_gen_dir, ignore_errors=True)


SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA"]


def _make_order(i):
    """Order i, as make_order() in examples/orders/order_gen.h makes it."""
    quantity = 10 * (i % 7 + 1)
    return orders.Order(id=i, symbol=SYMBOLS[i % 5], price=100.0 + i * 0.25,
                        quantity=quantity,
                        side=orders.Side.BUY if i % 2 else orders.Side.SELL,
                        fills=[quantity // 4] * (i % 4))


def helper(*args, **kw):
    return subprocess.run([HELPER] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=kw.get("timeout", 300))


def _py_add(v, n):
    for _ in range(n):
        with v.get_lock():
            x = v.value
            os.sched_yield()  # invite a lost update, should the lock not work
            v.value = x + 1


def _py_hold_and_die(name, held):
    lock = shoal.Lock(name=name, create=False)
    lock.acquire()
    held.set()
    os.kill(os.getpid(), signal.SIGKILL)


class OrdersTest(unittest.TestCase):
    def test_c_producer_python_consumer(self):
        q = orders.Order.Queue(1024, name="c-to-py")
        producer = subprocess.Popen([HELPER, "produce-orders", "c-to-py", str(N_ORDERS)],
                                    stderr=subprocess.PIPE, text=True)
        for i in range(1, N_ORDERS + 1):
            got = q.get(timeout=60)
            got.validate()
            want = _make_order(i)
            if got != want:  # field for field (to_dict), named in the failure
                self.assertEqual(got.to_dict(), want.to_dict(), "order %d" % i)
        _, err = producer.communicate(timeout=60)
        self.assertEqual(producer.returncode, 0, err)
        self.assertTrue(q.empty())

    def test_python_producer_c_consumer(self):
        q = orders.Order.Queue(1024, name="py-to-c")
        consumer = subprocess.Popen([HELPER, "consume-orders", "py-to-c", str(N_ORDERS)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        for i in range(1, N_ORDERS + 1):
            q.put(_make_order(i), timeout=60)
        q.shutdown()  # the C consumer then expects end-of-stream
        out, err = consumer.communicate(timeout=120)
        self.assertEqual(consumer.returncode, 0, out + err)
        self.assertIn("consumed %d orders" % N_ORDERS, out)


class ValueTest(unittest.TestCase):
    def test_five_python_and_four_c_processes_add_under_the_lock(self):
        v = shoal.Value("i", 0, name="shared-counter")
        py = [fork.Process(target=_py_add, args=(v, 50)) for _ in range(5)]
        c = [subprocess.Popen([HELPER, "add-value", "shared-counter", "50"],
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in py:
            p.start()
        for p in py:
            p.join(120)
            self.assertEqual(p.exitcode, 0)
        for p in c:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(v.value, 450)


class OwnerDiedTest(unittest.TestCase):
    def test_python_dies_holding_c_acquires(self):
        lock = shoal.Lock(name="py-holds")
        held = shoal.Event()
        p = fork.Process(target=_py_hold_and_die, args=("py-holds", held))
        p.start()
        p.join(60)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertTrue(held.is_set())
        cp = helper("acquire-lock", "py-holds")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.strip(), "owner-died")
        self.assertTrue(lock.acquire(timeout=10))  # usable afterwards
        self.assertFalse(lock.owner_died)
        lock.release()

    def test_c_dies_holding_python_acquires(self):
        lock = shoal.Lock(name="c-holds")
        c = subprocess.Popen([HELPER, "hold-lock", "c-holds"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.assertEqual(c.stdout.readline().strip(), "held")
        self.assertFalse(lock.acquire(timeout=0.1))
        c.kill()
        c.communicate(timeout=30)
        self.assertTrue(lock.acquire(timeout=10))  # no hang
        self.assertTrue(lock.owner_died)
        lock.release()


class LayoutTest(unittest.TestCase):
    def test_changed_type_is_refused(self):
        v = orders.Order.Value(1, "AAPL", name="order-v1")
        cp = helper("open-v2", "order-v1")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("layout mismatch", cp.stdout)
        self.assertIn("orders.Order#%016x" % orders.Order._shoal_hash_, cp.stdout)
        self.assertEqual(v.value.id, 1)  # untouched


if __name__ == "__main__":
    unittest.main()
