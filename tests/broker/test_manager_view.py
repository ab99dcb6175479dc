"""shoal.Manager's reads through the broker's read view (docs/broker.md, "The read
view"): over shm:// a repeated read is answered from shared memory — the session's
hit counter moves — with the broker's value; a process told of each acknowledged
write never reads an older value; the writer's own reads after its pipelined writes
see them; reads in other processes see every kind of change.

Run by CTest (broker.view_python) with SHOAL_LIBRARY, SHOAL_CLI and PYTHONPATH set
(and the C extension's directory: the view is used by its synchronous calls).
"""
import ctypes
import multiprocessing
import os
import unittest

import manager_case
from shoal import managers
from shoal._lib import C, _plib


def _hits(proxy):
    s = managers._session(proxy._address, proxy._authkey)
    h, m = ctypes.c_uint64(), ctypes.c_uint64()
    used = C.manager_view_stats(s.handle, ctypes.byref(h), ctypes.byref(m))
    return used, h.value


def _reader(d, conn):
    """Reads d["k"] until told to stop; never older than the last value it was told
    of. Sends back (stale reads, hits)."""
    told, stale = 0, 0
    while True:
        while conn.poll():
            v = conn.recv()
            if v is None:
                conn.send((stale, _hits(d)[1]))
                return
            told = v
        if d["k"] < told:
            stale += 1


def _read_all(d, l, ns, v, ev, out):
    out.put((d["k"], len(d), "k" in d, l[0], len(l), ns.x, v.value, ev.is_set()))


class ViewTest(manager_case.ManagerCase):
    def test_repeated_reads_hit(self):
        d = self.m.dict(k=1)
        used, before = _hits(d)
        if not managers._FAST:
            self.skipTest("the pure-Python path sends every read to the broker")
        self.assertEqual(used, 1)
        for _ in range(10):
            self.assertEqual(d["k"], 1)
        self.assertGreaterEqual(_hits(d)[1] - before, 9)
        d["k"] = 2
        self.assertEqual(d["k"], 2)  # its own write, pipelined: seen
        self.assertEqual(d.get("k"), 2)
        with self.assertRaises(KeyError):
            d["nope"]

    def test_c_and_python_requests_share_entries(self):
        # the C client's request packer and the extension's encoder make the same
        # bytes (the view's key): a get published for one is a hit for the other
        if not managers._FAST:
            self.skipTest("the pure-Python path sends every read to the broker")
        d = self.m.dict(k=41)
        self.assertEqual(d["k"], 41)  # published
        s = managers._session(d._address, d._authkey)
        mv_str = _plib.shoal_mv_str
        mv_str.restype, mv_str.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        call = _plib.shoal_manager_call
        call.restype = ctypes.c_int
        res = ctypes.c_void_p()
        before = _hits(d)[1]
        rc = call(s.handle, d._name.encode(), b"get", ctypes.c_int64(0), ctypes.byref(res),
                  ctypes.c_size_t(1), ctypes.c_void_p(mv_str(b"k")))
        self.assertEqual(rc, 0)
        as_int = _plib.shoal_mv_as_int
        as_int.restype, as_int.argtypes = ctypes.c_int64, [ctypes.c_void_p]
        self.assertEqual(as_int(res), 41)
        _plib.shoal_mv_free.argtypes = [ctypes.c_void_p]
        _plib.shoal_mv_free(res)
        self.assertEqual(_hits(d)[1], before + 1)

    def test_linearizable_across_processes(self):
        d = self.m.dict(k=0)
        ours, theirs = multiprocessing.Pipe()
        p = multiprocessing.Process(target=_reader, args=(d, theirs))
        p.start()
        for i in range(1, 2001):
            d["k"] = i
            self.assertEqual(d["k"], i)  # waits for the write: acknowledged
            ours.send(i)
        ours.send(None)
        stale, hits = ours.recv()
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(stale, 0)
        if managers._FAST:
            self.assertGreater(hits, 0)

    def test_changes_seen_by_other_processes(self):
        d, l, ns = self.m.dict(k=1), self.m.list([5]), self.m.Namespace(x=1)
        v, ev = self.m.Value("i", 1), self.m.Event()
        q = multiprocessing.Queue()
        expect = (1, 1, True, 5, 1, 1, 1, False)
        for step in range(4):
            for _ in range(2):  # the second read of each is the view's
                p = multiprocessing.Process(target=_read_all, args=(d, l, ns, v, ev, q))
                p.start()
                self.assertEqual(q.get(timeout=30), expect)
                p.join(30)
            if step == 0:
                d["k"], ns.x, v.value = 2, 2, 2
                ev.set()
                expect = (2, 1, True, 5, 1, 2, 2, True)
            elif step == 1:
                del d["k"]
                d["j"] = 0
                l.append(6)
                l[0] = 4
                ev.clear()
                expect = None
            elif step == 2:
                d.clear()
                d.update(k=3)
                l.pop()
                expect = (3, 1, True, 4, 1, 2, 2, False)
            if expect is None:
                d["k"] = 7
                expect = (7, 2, True, 4, 2, 2, 2, False)


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    unittest.main()
