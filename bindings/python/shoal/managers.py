"""Manager: multiprocessing.Manager's objects, served by a shoal broker.

``with shoal.Manager() as m:`` starts a private broker (the ``shoal broker`` command)
listening on shared memory, as multiprocessing starts its server process;
``shoal.Manager(address=..., authkey=...)`` connects to a running one (``shm://name``,
``ipc:///path``, ``tcp://host:port`` or a ``(host, port)`` tuple; over tcp the authkey
is the broker's token). ``m.dict()``, ``m.list()``, ``m.Namespace()``, ``m.Value()``,
``m.Array()``, ``m.Queue()``, ``m.JoinableQueue()``, ``m.Lock()``, ``m.RLock()``,
``m.Semaphore()``, ``m.BoundedSemaphore()``, ``m.Event()``, ``m.Condition()``,
``m.Barrier()`` return proxies to objects held by the broker; each call is one atomic operation there.

Differences from multiprocessing, all on purpose:

* Values travel in a language-neutral form (None, bool, int, float, str, bytes, list,
  tuple, dict with scalar keys), so C and other clients read them too. Other Python
  objects are refused unless the manager was made with ``pickle=True``: then they
  travel pickled (the broker stores the bytes and never unpickles them).
* A list or dict inside a dict or list is itself a proxy: ``d['x'].append(1)`` changes
  the stored list (multiprocessing silently changes a copy).
* Atomic compound operations: ``d.increment(key, delta)``, ``d.compare_and_set(key,
  expected, new)``, ``setdefault``, ``pop`` — no lock needed for a shared counter.
* A process that dies holding a Lock does not wedge the others: the broker frees it,
  and the next ``acquire()`` gets it (``raise_owner_died=True`` raises OwnerDied
  instead, with the lock held).
* Writes whose result nobody needs before the next call (``d[k] = v``,
  ``l.append(x)``, ``ns.x = v``, ``lock.release()``, ...) are pipelined: sent without
  waiting for the reply. A refused one raises its error from that thread's next call
  that waits for a reply, from ``flush()``, or from ``shutdown()`` (docs/broker.md).
  With the C extension they travel in per-thread batches, sent when full, at the
  thread's next call that waits or write that may wake someone, and at the latest
  about 1 ms after the batch's first write, even if the thread then sleeps or
  computes (a background thread sends it): other processes see a write promptly.

Proxies pickle by (address, authkey, name), so they pass to child processes however
started; each process opens its own session with the broker on first use.

The wire protocol is schemas/shoal/broker.proto, sent through libshoal's client
(shoal/manager.h). Each operation is one call into the C extension
(shoal/_speedups.c, ManagerBase), which encodes the request, sends it and decodes the
reply, and keeps the pipelined writes; the proxies derive from its ProxyBase, whose C
methods are their hot ones (d[k], d[k] = v, l.append(x), a lock's acquire, release
and with) and the _op / _write every other method calls. Values it does not handle
itself, and the whole path without the extension (SHOAL_PY_PURE), use this module's
Python codec and ctypes (_PyWire, and BaseProxy's Python methods).
"""

import atexit
import collections
import ctypes
import os
import pickle as _pickle
import queue as _queue
import shutil
import struct
import subprocess
import threading
import time
import uuid
import weakref

from . import errors
from . import sync as _sync
from ._lib import C, F, error

__all__ = ["Manager", "SyncManager", "BaseProxy", "Watch", "Change", "DictProxy",
           "ListProxy",
           "NamespaceProxy", "ValueProxy", "ArrayProxy", "QueueProxy", "JoinableQueueProxy",
           "LockProxy",
           "SemaphoreProxy", "EventProxy", "ConditionProxy", "BarrierProxy"]

# broker.proto's Kind
DICT, LIST, NAMESPACE, VALUE, ARRAY, QUEUE, LOCK, RLOCK = 1, 2, 3, 4, 5, 6, 7, 8
SEMAPHORE, BOUNDED_SEMAPHORE, EVENT, CONDITION, BARRIER = 9, 10, 11, 12, 13
JOINABLE_QUEUE = 14

# ---- the protobuf encoding of broker.proto ----------------------------------------------

_pack_d = struct.Struct("<d").pack
_unpack_d = struct.Struct("<d").unpack_from
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


_SMALL = [bytes((i,)) for i in range(0x80)]  # the one-byte varints


def _varint(n):
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n):
    return (n << 1) ^ (n >> 63)


def _unzigzag(n):
    """The signed value of zigzag varint n (read as unsigned 64-bit)."""
    return (n >> 1) ^ -(n & 1)


def _len_field(tag, data):
    n = len(data)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + data


def _enc_value(v, allow_pickle):
    """A Value message for Python object v."""
    t = type(v)
    if v is None:
        return b"\x08\x01"
    if t is bool:
        return b"\x10\x01" if v else b"\x10\x00"
    if t is int:
        if _INT64_MIN <= v <= _INT64_MAX:
            return b"\x18" + _varint(_zigzag(v) & 0xFFFFFFFFFFFFFFFF)
    elif t is float:
        return b"\x21" + _pack_d(v)
    elif t is str:
        return _len_field(b"\x2a", v.encode("utf-8"))
    elif t in (bytes, bytearray):
        return _len_field(b"\x32", bytes(v))
    elif t in (list, tuple):
        items = b"".join(_len_field(b"\x0a", _enc_value(x, allow_pickle)) for x in v)
        return _len_field(b"\x3a" if t is list else b"\x42", items)
    elif t is dict:
        entries = b"".join(
            _len_field(b"\x0a", _len_field(b"\x0a", _enc_value(k, allow_pickle)) +
                       _len_field(b"\x12", _enc_value(x, allow_pickle)))
            for k, x in v.items())
        return _len_field(b"\x4a", entries)
    if isinstance(v, BaseProxy):
        return _enc_ref(v, allow_pickle)
    if allow_pickle:
        return _len_field(b"\x5a", _pickle.dumps(v))
    raise TypeError("shoal.Manager: %s values do not travel to the broker (use None, bool, "
                    "int (64-bit), float, str, bytes, list, tuple, dict; or "
                    "Manager(pickle=True))" % t.__name__)


# A proxy stored in a container travels as a reference to its object: a Value of kind
# message, type "shoal.broker.Ref", data "KIND:NAME" (KIND: broker.proto's Kind number).
_REF_TYPE = "shoal.broker.Ref"
_refs_decoded = [0]  # counts the references decoded: results that hold none need no walk


class _Ref:
    __slots__ = ("kind", "name")

    def __init__(self, kind, name):
        self.kind, self.name = kind, name


def _enc_ref(p, allow_pickle):
    if p._path:  # a container nested in another object: its value, as multiprocessing
        return _enc_value(p._getvalue(), allow_pickle)
    typed = (_len_field(b"\x0a", _REF_TYPE.encode()) +
             _len_field(b"\x12", b"%d:%s" % (p._kind, p._name.encode("utf-8"))))
    return _len_field(b"\x52", typed)


def _read_varint(buf, i):
    """The varint at buf[i]: (value, index after it)."""
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def _fields(buf):
    """Yields (field number, value) of a message: ints for varints, floats for
    fixed64 (all broker.proto's fixed64 fields are doubles), bytes for the others."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _read_varint(buf, i)
        wt = key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
            yield key >> 3, v
        elif wt == 1:
            yield key >> 3, _unpack_d(buf, i)[0]
            i += 8
        elif wt == 2:
            ln, i = _read_varint(buf, i)
            yield key >> 3, buf[i:i + ln]
            i += ln
        elif wt == 5:
            i += 4
        else:
            raise errors.InvalidData("shoal.Manager: a reply that does not decode", -29)


def _dec_value(buf):
    for num, v in _fields(buf):
        if num == 1:
            return None
        if num == 2:
            return bool(v)
        if num == 3:
            return _unzigzag(v)
        if num == 4:
            return v
        if num == 5:
            return bytes(v).decode("utf-8")
        if num == 6:
            return bytes(v)
        if num in (7, 8):
            items = [_dec_value(x) for f, x in _fields(v) if f == 1]
            return items if num == 7 else tuple(items)
        if num == 9:
            out = {}
            for f, e in _fields(v):
                if f == 1:
                    k = x = None
                    for ef, ev in _fields(e):
                        if ef == 1:
                            k = _dec_value(ev)
                        elif ef == 2:
                            x = _dec_value(ev)
                    out[k] = x
            return out
        if num == 10:
            typ = data = b""
            for f, x in _fields(v):
                if f == 1:
                    typ = bytes(x).decode()
                elif f == 2:
                    data = bytes(x)
            if typ == _REF_TYPE and b":" in data:
                _refs_decoded[0] += 1
                kind, name = data.split(b":", 1)
                return _Ref(int(kind), name.decode("utf-8"))
            return (typ, data)
        if num == 11:
            return _pickle.loads(v)
    return None


def _enc_target(name, path):
    """The Request's object and path fields (the same for every call on a proxy)."""
    return _len_field(b"\x12", name.encode("utf-8")) + b"".join(
        _len_field(b"\x1a", _enc_value(p, False)) for p in path)


_op_fields = {}
_thread_fields = {}


def _enc_call(rid, target, op, args, timeout_ms, thread, allow_pickle):
    """A Request: target from _enc_target (fields may come in any order on the wire;
    the op and thread fields are kept once encoded)."""
    opf = _op_fields.get(op)
    if opf is None:
        opf = _op_fields[op] = _len_field(b"\x22", op.encode())
    thf = _thread_fields.get(thread)
    if thf is None:
        thf = _thread_fields[thread] = b"\x38" + _varint(thread)
    out = [b"\x08" + _varint(rid), target, opf]
    for a in args:
        out.append(_len_field(b"\x2a", _enc_value(a, allow_pickle)))
    if timeout_ms:
        out.append(b"\x30" + _varint(_zigzag(timeout_ms) & 0xFFFFFFFFFFFFFFFF))
    out.append(thf)
    return b"".join(out)


def _dec_reply(buf):
    status, err, result = 0, "", None
    for num, v in _fields(buf):
        if num == 2:
            status = _unzigzag(v)
            if status >= 1 << 31:
                status -= 1 << 32
        elif num == 3:
            err = bytes(v).decode("utf-8", "replace")
        elif num == 4:
            result = _dec_value(v)
    return status, err, result


# ---- sessions: one per (process, broker address) -----------------------------------------


class _Config(ctypes.Structure):
    _fields_ = [("connect_timeout", ctypes.c_int64), ("token", ctypes.c_char_p),
                ("attr", ctypes.c_void_p), ("tls_ca_file", ctypes.c_char_p),
                ("tls_cert_file", ctypes.c_char_p), ("tls_key_file", ctypes.c_char_p),
                ("tls_server_name", ctypes.c_char_p)]


_TLS_KEYS = ("ca_file", "cert_file", "key_file", "server_name")
# address -> the tls settings (a dict, as shoal.rpc.channel takes) of its manager: how
# this process's sessions to a tls+tcp:// broker are made (proxies carry them along
# when pickled).
_tls_settings = {}


def _check_tls(tls):
    tls = dict(tls or {})
    unknown = set(tls) - set(_TLS_KEYS)
    if unknown:
        raise TypeError("unknown tls settings: %s" % ", ".join(sorted(unknown)))
    return tls


# Writes whose result the caller does not need before its next call (d[k] = v,
# l.append(x), lock.release(), ...) go out without waiting for their replies,
# collected by that thread's next call that needs a reply (or flush(), or pickling a
# proxy, or the session closing). With the C extension they travel in batches of up
# to this many (docs/broker.md, "Batches"); without it, up to this many are in flight
# per thread. 0: every call waits.
pipeline_depth = 64


class _Pending:
    """A thread's writes in flight on a session — (id, proxy, op, args), oldest first —
    and the first error their replies carried, not raised yet."""

    __slots__ = ("q", "error")

    def __init__(self):
        self.q = collections.deque()
        self.error = None


class _PyWire:
    """A session's requests and replies through ctypes and the Python codec above (the
    path without the C extension; _speedups.ManagerBase has the same methods in C)."""

    def _attach(self, handle):
        self._h = ctypes.c_void_p(handle) if handle else None
        self.pending = {}  # thread ident -> _Pending
        self._use_lock = threading.Lock()

    def _enter(self):
        """The handle, for a call of libshoal (made with the GIL released), the thread
        counted as inside a call on it (shoal_manager_enter, until _leave) so that
        shoal_manager_close frees it only once no thread is inside one. Taken and
        counted under _use_lock: _quiesce drops the handle under it."""
        with self._use_lock:
            h = self._h
            if not h:
                raise ValueError("shoal.Manager: the session is closed")
            rc = F.manager_enter(h)
            if rc < 0:
                raise error(rc, "manager")
            return h

    def _leave(self, h):
        F.manager_leave(h)

    def _quiesce(self):
        """Before the session is freed (shoal_manager_close, which waits for the
        threads inside a call): no thread takes the handle any more."""
        with self._use_lock:
            self._h = None

    def _send(self, target, op, args, timeout_ms, allow_pickle):
        """Sends a request (target: _enc_target's bytes); returns its id."""
        h = self._enter()
        try:
            rid = C.manager_next_id(h)
            req = _enc_call(rid, target, op, args, timeout_ms, threading.get_ident(),
                            allow_pickle)
            rc = C.manager_send_raw(h, req, len(req))
        finally:
            self._leave(h)
        if rc < 0:
            raise error(rc, "manager")
        return rid

    def _reply(self, rid):
        """Waits for the reply to request rid: (status, error text, result)."""
        buf = ctypes.c_void_p()
        ln = ctypes.c_size_t()
        h = self._enter()
        try:
            rc = C.manager_wait_raw(h, rid, ctypes.byref(buf), ctypes.byref(ln))
        finally:
            self._leave(h)
        if rc < 0:
            raise error(rc, "manager")
        try:
            data = ctypes.string_at(buf, ln.value)
        finally:
            C.manager_free(buf)
        return _dec_reply(data)

    def request(self, target, allow_pickle, op, args, timeout_ms):
        """After the calling thread's pipelined writes (raising their first error),
        sends a request and waits for its reply: (status, error text, result)."""
        self.flush()
        return self._reply(self._send(target, op, args, timeout_ms, allow_pickle))

    def write(self, proxy, target, allow_pickle, op, args, timeout_ms, depth, send=True):
        """Sends a write of proxy's without waiting for its reply (collecting the
        oldest reply first when depth are in flight). Every write is sent at once
        here (send is for the C extension's batches)."""
        tid = threading.get_ident()
        p = self.pending.get(tid)
        if p is None:
            p = self.pending[tid] = _Pending()
        if len(p.q) >= depth:
            self._collect_one(p)
        rid = self._send(target, op, args, timeout_ms, allow_pickle)
        p.q.append((rid, proxy, op, args))

    def op(self, proxy, target, allow_pickle, op, args):
        """request() of a call with no timeout that only success suits: its result,
        or proxy._exception(...) raised."""
        status, err, result = self.request(target, allow_pickle, op, args, 0)
        if status < 0:
            raise proxy._exception(op, args, status, err)
        return result

    def _collect_one(self, p):
        rid, proxy, op, args = p.q.popleft()
        status, err, _ = self._reply(rid)
        if status < 0 and p.error is None:
            p.error = proxy._exception(op, args, status, err)

    def flush(self, tid=None):
        """Collects the replies to the writes the thread (default: the calling one)
        has in flight and raises the first error they carry."""
        p = self.pending.get(tid or threading.get_ident())
        if p is None:
            return
        while p.q:
            self._collect_one(p)
        e, p.error = p.error, None
        if e is not None:
            raise e

    def _send_open(self):
        pass  # nothing is kept unsent here

    def _idle_stop(self):
        pass  # no idle flusher here

    def _pending_tids(self):
        return [tid for tid, p in self.pending.items() if p.q or p.error is not None]


def _c_wire():
    """_speedups.ManagerBase, ready; None without the C extension (SHOAL_PY_PURE set,
    or not built)."""
    from ._lib import speedups, _plib
    if speedups is None or not hasattr(speedups, "ManagerBase"):
        return None
    speedups.manager_init(
        {n: ctypes.cast(getattr(_plib, n), ctypes.c_void_p).value for n in (
            "shoal_manager_next_id", "shoal_manager_send_raw", "shoal_manager_wait_raw",
            "shoal_manager_free", "shoal_manager_enter", "shoal_manager_leave",
            "shoal_manager_call_raw")},
        _enc_value, _dec_value, _dec_reply, error)
    os.register_at_fork(after_in_child=speedups.manager_after_fork)
    return speedups.ManagerBase


_Wire = _c_wire() or _PyWire
# With the C extension, proxies derive from _speedups.ProxyBase, whose C methods
# (_op, _write, and the hot ones installed below as __getitem__, __setitem__,
# append, acquire, release, __enter__, __exit__) make no Python frame; proxy_init,
# at the end of this module, gives it pipeline_depth, _resolve and _nested.
_FAST = _Wire is not _PyWire
if _FAST:
    from ._lib import speedups as _speedups
    _ProxyBase = _speedups.ProxyBase
else:
    _ProxyBase = object


class _Session(_Wire):
    """This process's connection to one broker (libshoal's shoal_manager)."""

    def __init__(self, address, authkey):
        self.handle = ctypes.c_void_p()
        tls = _tls_settings.get(address, {})
        cfg = _Config(0, authkey, None, *(
            os.fsencode(tls[k]) if tls.get(k) else None for k in _TLS_KEYS))
        rc = C.manager_connect(ctypes.byref(self.handle), address.encode(), ctypes.byref(cfg))
        if rc < 0:
            raise error(rc, "manager %s" % address)
        self._attach(self.handle.value)
        self.pid = _pid
        self.watches = weakref.WeakSet()  # closed before the session
        self.held = {}  # (lock name, thread ident or 0) -> acquired here, not released

    def call(self, name, op, args=(), path=(), timeout_ms=0, allow_pickle=False):
        return self.request(_enc_target(name, path), allow_pickle, op, tuple(args),
                            timeout_ms)

    def close(self):
        """Collects every thread's writes in flight, closes the session, then raises
        the first error of the calling thread's writes."""
        first = None
        if self.handle and self.pid == _pid:
            for w in list(self.watches):
                w.close()
            for tid in self._pending_tids():
                try:
                    self.flush(tid)
                except Exception as e:  # ShoalError, KeyError, ... of a pipelined write
                    if first is None and tid == threading.get_ident():
                        first = e
            self._idle_stop()
            # threads still waiting in a call (a daemon thread in a get, at exit)
            # return ECLOSED, and none is inside libshoal when it frees the session
            C.manager_shutdown(self.handle)
            self._quiesce()
            C.manager_close(self.handle)
        self.handle = None
        self._attach(None)
        if first is not None:
            raise first


_sessions = {}
_sessions_lock = threading.Lock()
_pid = os.getpid()  # kept: os.getpid() is a system call; sessions are per process
_exit_hook_pid = None


def _session(address, authkey):
    key = (address, authkey)
    s = _sessions.get(key)
    if s is None or s.pid != _pid:
        with _sessions_lock:
            s = _sessions.get(key)
            if s is None or s.pid != _pid:
                s = _sessions[key] = _Session(address, authkey)
                _hook_process_exit()
    return s


def _hook_process_exit():
    """A multiprocessing child ends with os._exit (no atexit): its sessions are closed
    (their writes in flight collected) by multiprocessing's own exit hook."""
    global _exit_hook_pid
    if _exit_hook_pid != _pid:
        from multiprocessing import util
        util.Finalize(None, _close_sessions, exitpriority=10)
        _exit_hook_pid = _pid


def flush(proxy=None):
    """Waits for the writes this thread has in flight (to proxy's broker, or to every
    broker) and raises the first error they carry."""
    for key, s in list(_sessions.items()):
        if s.pid == _pid and (proxy is None or key == (proxy._address, proxy._authkey)):
            s.flush()


def _forget_sessions():
    global _pid
    _pid = os.getpid()
    _sessions.clear()  # a forked child opens its own


def _send_batches():
    """Before a fork: the writes kept in batches go out, so the child (and everyone)
    sees them."""
    for s in list(_sessions.values()):
        if s.pid == _pid and s.handle:
            try:
                s._send_open()
            except Exception:
                pass  # a session that failed: its next call raises


os.register_at_fork(before=_send_batches, after_in_child=_forget_sessions)


@atexit.register
def _close_sessions():
    for s in list(_sessions.values()):
        try:
            s.close()
        except Exception:
            pass  # an error of a write nobody waited for, at exit
    _sessions.clear()


def _timeout_ms(timeout, block=True):
    if not block:
        return 0
    if timeout is None or timeout < 0:
        return -1
    return max(1, int(timeout * 1000)) if timeout > 0 else 0


# ---- watches --------------------------------------------------------------------------

_WHOLE = object()  # watch(): no key, the whole object


class Change:
    """One change to a watched object (broker.proto's Change): ``seq`` (the object's
    write counter), ``op`` ("set", "append", ...; "resync": ``value`` is the whole
    current state; "released": the broker freed what an ended session held;
    "deleted": the object is gone, the last change), ``path``, ``args`` and
    ``result`` (object watches), ``value`` and ``present`` (key watches: the key's
    value after the change, and whether it exists; "resync": the state)."""

    __slots__ = ("seq", "op", "path", "args", "result", "value", "present")

    def __init__(self, buf):
        self.seq, self.op, self.path, self.args = 0, "", [], []
        self.result = self.value = None
        self.present = False
        for num, v in _fields(buf):
            if num == 1:
                self.seq = v
            elif num == 2:
                self.op = bytes(v).decode("utf-8")
            elif num == 3:
                self.path.append(_dec_value(v))
            elif num == 4:
                self.args.append(_dec_value(v))
            elif num == 5:
                self.result = _dec_value(v)
            elif num == 6:
                self.value = _dec_value(v)
            elif num == 7:
                self.present = bool(v)

    def __repr__(self):
        return ("Change(seq=%d, op=%r, path=%r, args=%r, result=%r, value=%r, present=%r)" %
                (self.seq, self.op, self.path, self.args, self.result, self.value,
                 self.present))


class Watch:
    """An iterator of the Changes to a proxy's object (``proxy.watch(key=None)``): the
    first is a "resync" with the current state; the iteration ends after the object's
    "deleted" change. A watcher that falls behind gets a "resync" instead of the
    changes it missed. ``next(timeout)`` waits at most timeout seconds (None when it
    passed); ``close()`` (or ``with``) ends the watch."""

    def __init__(self, proxy, key=_WHOLE):
        self._session = _session(proxy._address, proxy._authkey)
        self._session.flush()  # the watch starts after this thread's pipelined writes
        req = _len_field(b"\x0a", proxy._name.encode("utf-8"))
        if key is not _WHOLE:
            req += _len_field(b"\x12", _enc_value(key, False))
        self._h = ctypes.c_void_p()
        rc = C.manager_watch_open_raw(self._session.handle, req, len(req),
                                      ctypes.byref(self._h))
        if rc == errors.ENOENT:
            raise KeyError(proxy._name)
        if rc < 0:
            raise error(rc, "manager watch %s" % proxy._name)
        self._done = False
        self._session.watches.add(self)

    def next(self, timeout=None):
        """The next Change, waiting at most timeout seconds (None: no limit); None when
        the timeout passed. Raises StopIteration once the watch is over."""
        if self._done or not self._h:
            raise StopIteration
        s = self._session
        if s.handle and s.pid == _pid:
            s._send_open()  # the changes it waits for may be this process's writes
        buf, ln = ctypes.c_void_p(), ctypes.c_size_t()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 0.1 if deadline is None else min(0.1, max(0.0,
                                                             deadline - time.monotonic()))
            rc = C.manager_watch_next_raw(self._h, int(left * 1e9), ctypes.byref(buf),
                                          ctypes.byref(ln))
            if rc == 1:
                try:
                    return Change(ctypes.string_at(buf, ln.value))
                finally:
                    C.manager_free(buf)
            if rc == errors.ECLOSED:
                self._done = True
                raise StopIteration
            if rc < 0:
                raise error(rc, "manager watch")
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def close(self):
        """Ends the watch (the broker forgets it)."""
        if self._h and self._session.pid == os.getpid():
            C.manager_watch_close(self._h)
        self._h = None
        self._session.watches.discard(self)

    cancel = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---- proxies --------------------------------------------------------------------------


class BaseProxy(_ProxyBase):
    """A reference to an object in a broker: its address, authkey and name (and, for
    a container inside another, the path of keys to it)."""

    _kind = 0
    # Whether a pipelined write of this proxy may wake another client (a lock
    # released, an event set, an item put): such a write goes out at once, with the
    # thread's writes before it; the writes of data proxies (False) may wait in the
    # thread's batch until its next call that waits, or the batch is full.
    _signals = True

    def __init__(self, address, authkey, name, path=(), allow_pickle=False):
        object.__setattr__(self, "_address", address)
        object.__setattr__(self, "_authkey", authkey)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_path", tuple(path))
        object.__setattr__(self, "_pickle", allow_pickle)
        object.__setattr__(self, "_tgt", _enc_target(name, self._path))
        object.__setattr__(self, "_s", None)  # the session, once used (_ses)

    def _ses(self):
        """This process's session with the proxy's broker, kept on the proxy while it
        is open (a forked child, or a closed session, looks it up again)."""
        s = self._s
        if s is None or s.pid != _pid or s.handle is None:
            s = _session(self._address, self._authkey)
            object.__setattr__(self, "_s", s)
        return s

    def _call(self, op, *args, timeout_ms=0, ok=(0,)):
        return self._request(op, args, timeout_ms, ok)

    def _request(self, op, args, timeout_ms=0, ok=(0,)):
        """Runs op(args) and waits for its reply: (status, result); raises the error
        of a status not in ok."""
        refs = _refs_decoded[0]
        s = self._s
        if s is None or s.pid != _pid or s.handle is None:
            s = self._ses()
        status, err, result = s.request(self._tgt, self._pickle, op, args, timeout_ms)
        if _refs_decoded[0] != refs:
            result = _resolve(self, result)
        if status < 0 and status not in ok:
            raise self._exception(op, args, status, err)
        return status, result

    def _exception(self, op, args, status, err):
        """The exception for the broker's error status of op(args) on this object."""
        if status == errors.ENOENT and op in ("get", "pop", "del") and self._kind != ARRAY:
            return KeyError(args[0] if args else self._name)
        if status == errors.ENOENT and op in ("remove", "index"):
            return ValueError("%r is not in list" % (args[0],))
        return errors.error_class(status)(err, status)

    if not _FAST:  # else ProxyBase's, the same in C
        def _op(self, op, *args):
            """Runs op(args), waits for its reply and returns its result; raises its
            error. The hot path: one call into the session, no tuple in between."""
            refs = _refs_decoded[0]
            s = self._s
            if s is None or s.pid != _pid or s.handle is None:
                s = self._ses()
            result = s.op(self, self._tgt, self._pickle, op, args)
            if _refs_decoded[0] != refs:
                result = _resolve(self, result)
            return result

        def _write(self, op, *args):
            """A write whose result nobody needs: pipelined (its error, if any, is
            raised by this thread's next call that waits for a reply, or by
            flush())."""
            s = self._s
            if s is None or s.pid != _pid or s.handle is None:
                s = self._ses()
            if pipeline_depth <= 0:
                s.op(self, self._tgt, self._pickle, op, args)
            else:
                s.write(self, self._tgt, self._pickle, op, args, 0, pipeline_depth,
                        self._signals)

    def __reduce__(self):
        flush(self)  # the process it goes to sees this one's writes
        return (_rebuild, (type(self), self._address, self._authkey, self._name, self._path,
                           self._pickle, _tls_settings.get(self._address)))

    def watch(self, key=_WHOLE):
        """A Watch: an iterator of the Changes to this object, or with key, to that key
        of a dict or Namespace (docs/broker.md, "Watch")."""
        if self._path:
            raise TypeError("shoal.Manager: watch a top-level object (or one of its keys)")
        return Watch(self, key)

    def _getvalue(self):
        return self._op("copy")

    def __repr__(self):
        return "<%s object, typeid %r at %#x>" % (type(self).__name__,
                                                  type(self).__name__[:-5], id(self))


def _rebuild(cls, address, authkey, name, path, allow_pickle, tls=None):
    if tls:
        _tls_settings.setdefault(address, tls)
    return cls(address, authkey, name, path, allow_pickle)


def _resolve(proxy, v):
    """v with the references to objects (of proxy's broker) made proxies."""
    t = type(v)
    if t is _Ref:
        cls = _PROXIES.get(v.kind, BaseProxy)
        return cls(proxy._address, proxy._authkey, v.name, (), proxy._pickle)
    if t is list or t is tuple:
        return t(_resolve(proxy, x) for x in v)
    if t is dict:
        return {k: _resolve(proxy, x) for k, x in v.items()}
    return v


def _nested(proxy, key, value):
    """A list or dict found inside a container: a proxy to it, not a copy."""
    if type(value) is list:
        return ListProxy(proxy._address, proxy._authkey, proxy._name, proxy._path + (key,),
                         proxy._pickle)
    if type(value) is dict:
        return DictProxy(proxy._address, proxy._authkey, proxy._name, proxy._path + (key,),
                         proxy._pickle)
    return value


class _Container(BaseProxy):
    _signals = False

    def __len__(self):
        return self._op("len")

    def __contains__(self, x):
        return self._op("contains", x)

    def clear(self):
        self._op("clear")

    def copy(self):
        return self._op("copy")

    def __str__(self):
        return str(self._getvalue())

    def __repr__(self):
        return repr(self._getvalue())

    def __eq__(self, other):
        if isinstance(other, BaseProxy):
            other = other._getvalue()
        return self._getvalue() == other

    def increment(self, key, delta=1, initial=0):
        """Adds delta to self[key] (which starts at `initial` if missing) atomically;
        returns the new value."""
        return self._op("incr", key, delta, initial)

    def compare_and_set(self, key, expected, new):
        """Sets self[key] = new if it equals expected, atomically; returns whether."""
        return self._op("cas", key, expected, new)


class DictProxy(_Container):
    _kind = DICT

    def __getitem__(self, key):
        v = self._op("get", key)
        t = type(v)
        return _nested(self, key, v) if t is list or t is dict else v

    def __setitem__(self, key, value):
        self._write("set", key, value)

    def __delitem__(self, key):
        self._op("del", key)

    def __iter__(self):
        return _DictIter(self)

    def get(self, key, default=None):
        return _nested(self, key, self._op("get", key, default))

    def keys(self):
        return self._op("keys")

    def values(self):
        return self._op("values")

    def items(self):
        return self._op("items")

    def pop(self, key, *default):
        return self._op("pop", key, *default[:1])

    def popitem(self):
        for k in self._op("keys")[::-1]:
            try:
                return (k, self._op("pop", k))
            except KeyError:
                continue
        raise KeyError("popitem(): dictionary is empty")

    def setdefault(self, key, default=None):
        return _nested(self, key, self._op("setdefault", key, default))

    def update(self, other=(), **kw):
        d = dict(other)
        d.update(kw)
        self._write("update", d)

    if _FAST:
        __getitem__ = _ProxyBase._get_nested
        __setitem__ = _ProxyBase._write_set


class _DictIter:
    """Iterates over a dict proxy's keys as they are at the first next(); raises
    RuntimeError, as a dict's iterator, when the dict's size changed since iter()."""

    def __init__(self, d):
        self._d, self._n, self._keys = d, len(d), None

    def __iter__(self):
        return self

    def __next__(self):
        if self._keys is None:
            keys = self._d._op("keys")
            if len(keys) != self._n:
                self._keys = iter(())
                raise RuntimeError("dictionary changed size during iteration")
            self._keys = iter(keys)
        return next(self._keys)


class ListProxy(_Container):
    _kind = LIST

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._getvalue()[i]
        return _nested(self, i, self._op("get", i))

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            v = self._getvalue()
            v[i] = value
            self._op("clear")
            self._op("extend", v)
            return
        self._op("set", i, value)

    def __delitem__(self, i):
        self._op("del", i)

    def __iter__(self):  # the items as they are at the first next()
        yield from self._getvalue()

    def __iadd__(self, other):
        self._write("extend", list(other))
        return self

    def __imul__(self, n):
        if n <= 0:
            self._op("clear")
        elif n > 1:
            self._op("extend", self._getvalue() * (n - 1))
        return self

    def __add__(self, other):
        return self._getvalue() + other

    def __radd__(self, other):
        return other + self._getvalue()

    def __mul__(self, n):
        return self._getvalue() * n

    __rmul__ = __mul__

    def append(self, x):
        self._write("append", x)

    def extend(self, xs):
        self._write("extend", list(xs))

    def insert(self, i, x):
        self._op("insert", i, x)

    def pop(self, i=-1):
        return self._op("pop", i)

    def remove(self, x):
        self._op("remove", x)

    def index(self, x, *args):
        if args:
            return self._getvalue().index(x, *args)
        return self._op("index", x)

    def count(self, x):
        return self._op("count", x)

    def reverse(self):
        self._op("reverse")

    def sort(self, key=None, reverse=False):
        v = self._getvalue()
        v.sort(key=key, reverse=reverse)
        self._op("clear")
        self._op("extend", v)

    if _FAST:
        append = _ProxyBase._write_append


class NamespaceProxy(BaseProxy):
    _kind = NAMESPACE
    _signals = False

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._op("get", key)
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        if key.startswith("_"):
            return object.__setattr__(self, key, value)
        self._write("set", key, value)

    def __delattr__(self, key):
        try:
            self._op("del", key)
        except KeyError:
            raise AttributeError(key) from None

    def __repr__(self):
        items = self._op("items")
        return "Namespace(%s)" % ", ".join("%s=%r" % kv for kv in items)


class ValueProxy(BaseProxy):
    _kind = VALUE
    _signals = False

    def get(self):
        return self._op("get")

    def set(self, value):
        self._write("set", value)

    value = property(get, set)

    def increment(self, delta=1):
        return self._op("incr", delta)

    def compare_and_set(self, expected, new):
        return self._op("cas", expected, new)

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.get())


class ArrayProxy(BaseProxy):
    _kind = ARRAY
    _signals = False

    def __len__(self):
        return self._op("len")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._op("copy")[i]
        return self._op("get", i)

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            idx = range(*i.indices(len(self)))
            value = list(value)
            if len(value) != len(idx):
                raise ValueError("Can only assign sequence of same size")
            for j, x in zip(idx, value):
                self._op("set", j, x)
            return
        self._op("set", i, value)

    def __iter__(self):
        return iter(self._op("copy"))

    def tolist(self):
        return self._op("copy")

    def __repr__(self):
        return repr(self._op("copy"))


class QueueProxy(BaseProxy):
    _kind = QUEUE
    _unbounded = False  # made by this process's manager with no maxsize: put never waits

    def put(self, obj, block=True, timeout=None):
        if self._unbounded:
            return self._write("put", obj)
        st, _ = self._call("put", obj, timeout_ms=_timeout_ms(timeout, block),
                           ok=(0, errors.ETIMEDOUT))
        if st == errors.ETIMEDOUT:
            raise _queue.Full

    def get(self, block=True, timeout=None):
        st, v = self._call("get", timeout_ms=_timeout_ms(timeout, block),
                           ok=(0, errors.ETIMEDOUT))
        if st == errors.ETIMEDOUT:
            raise _queue.Empty
        return v

    def put_nowait(self, obj):
        self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def qsize(self):
        return self._op("qsize")

    def empty(self):
        return self._op("empty")

    def full(self):
        return self._op("full")


class JoinableQueueProxy(QueueProxy):
    _kind = JOINABLE_QUEUE

    def task_done(self):
        self._write("task_done")

    def join(self):
        self._call("join", timeout_ms=-1)


_ACQUIRE_OK = (0, errors.ETIMEDOUT, errors.EOWNERDEAD, errors.EDEADLK)
_get_ident = threading.get_ident


class _Acquirer(BaseProxy):
    # Held by a thread (Lock, RLock, Condition) or by the session (semaphore units).
    _per_thread = True

    def _held_key(self):
        return (self._name, _get_ident() if self._per_thread else 0)

    def _acquire_py(self, blocking=True, timeout=-1, raise_owner_died=False):
        if blocking is True and timeout == -1:
            t = -1  # the common case, without the conversion
        else:
            t = _timeout_ms(None if timeout is None or timeout < 0 else timeout, blocking)
        s = self._s
        if s is None or s.pid != _pid or s.handle is None:
            s = self._ses()
        st, err, _ = s.request(self._tgt, self._pickle, "acquire", (), t)
        return self._acquired(s, st, err, t, raise_owner_died)

    def _acquired(self, s, st, err, t, raise_owner_died):
        """acquire()'s result for the broker's reply (status st, error text err) to an
        acquire with timeout t (ms) on session s: True once taken (counted in
        s.held); raises what it must."""
        if st == 0:  # the common case: taken
            held = s.held
            key = (self._name, _get_ident() if self._per_thread else 0)
            held[key] = held.get(key, 0) + 1
            return True
        if st < 0 and st not in _ACQUIRE_OK:
            raise self._exception("acquire", (), st, err)
        if st == errors.EDEADLK:  # this thread holds it: would wait for ever
            if t < 0:
                raise errors.error_class(st)("%s %r: already held by this thread" %
                                             (type(self).__name__, self._name), st)
            if t > 0:
                time.sleep(t / 1000)
            return False
        if st != errors.ETIMEDOUT:
            held = s.held
            key = self._held_key()
            held[key] = held.get(key, 0) + 1
        if st == errors.EOWNERDEAD and raise_owner_died:
            raise errors.OwnerDied("%s %r: its previous holder died holding it" %
                                   (type(self).__name__, self._name), st)
        return st != errors.ETIMEDOUT

    def _release_py(self, *n):
        """Pipelined when this process took what it gives back (it cannot fail then);
        otherwise waits, so a release of what is not held raises at once."""
        s = self._s
        if s is None or s.pid != _pid or s.handle is None:
            s = self._ses()
        held = s.held
        key = (self._name, _get_ident() if self._per_thread else 0)
        units = n[0] if n and isinstance(n[0], int) else 1
        if held.get(key, 0) >= units > 0:
            held[key] -= units
            if pipeline_depth <= 0:
                s.op(self, self._tgt, self._pickle, "release", n)
            else:
                s.write(self, self._tgt, self._pickle, "release", n, 0, pipeline_depth,
                        True)
        else:
            self._op("release", *n)

    if _FAST:
        acquire = _ProxyBase._lock_acquire
        release = _ProxyBase._lock_release
        __enter__ = _ProxyBase._lock_enter
        __exit__ = _ProxyBase._lock_exit
    else:
        acquire = _acquire_py
        release = _release_py

        def __enter__(self):
            self.acquire()
            return self

        def __exit__(self, *exc):
            self.release()


class LockProxy(_Acquirer):
    _kind = LOCK

    def locked(self):
        return self._op("locked")


class SemaphoreProxy(_Acquirer):
    _kind = SEMAPHORE
    _per_thread = False

    def get_value(self):
        return self._op("value")


class EventProxy(BaseProxy):
    _kind = EVENT

    def set(self):
        self._write("set")

    def clear(self):
        self._write("clear")

    def is_set(self):
        return self._op("is_set")

    def wait(self, timeout=None):
        st, v = self._call("wait", timeout_ms=_timeout_ms(timeout),
                           ok=(0, errors.ETIMEDOUT))
        return st == 0 and v


class ConditionProxy(LockProxy):
    _kind = CONDITION

    def wait(self, timeout=None):
        return self._call("wait", timeout_ms=_timeout_ms(timeout))[1]

    def wait_for(self, predicate, timeout=None):
        import time
        end = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n=1):
        self._write("notify", n)

    def notify_all(self):
        self._write("notify_all")


class BarrierProxy(BaseProxy):
    """A Barrier; its action and default timeout travel with the proxy (pickled). With
    an action, wait() passes the barrier twice: the party given index 0 runs the action
    between the two passes, so it has run before any party returns (an action that
    raises breaks the barrier)."""

    _kind = BARRIER
    _action = None
    _timeout = None

    def __reduce__(self):
        fn, args = BaseProxy.__reduce__(self)
        return fn, args, {"_action": self._action, "_timeout": self._timeout}

    def _pass(self, timeout):
        st, v = self._call("wait", timeout_ms=_timeout_ms(timeout), ok=(0, errors.EBROKEN))
        if st == errors.EBROKEN:
            raise threading.BrokenBarrierError
        return v

    wait = _sync.Barrier.wait  # the same two passes, over _pass, _action, _timeout

    def abort(self):
        self._op("abort")

    def reset(self):
        self._op("reset")

    parties = property(lambda self: self._op("parties"))
    n_waiting = property(lambda self: self._op("n_waiting"))
    broken = property(lambda self: self._op("broken"))


_PROXIES = {DICT: DictProxy, LIST: ListProxy, NAMESPACE: NamespaceProxy, VALUE: ValueProxy,
            ARRAY: ArrayProxy, QUEUE: QueueProxy, JOINABLE_QUEUE: JoinableQueueProxy,
            LOCK: LockProxy, RLOCK: LockProxy, SEMAPHORE: SemaphoreProxy,
            BOUNDED_SEMAPHORE: SemaphoreProxy, EVENT: EventProxy, CONDITION: ConditionProxy,
            BARRIER: BarrierProxy}


# ---- the manager ----------------------------------------------------------------------


def _broker_command():
    exe = os.environ.get("SHOAL_CLI") or shutil.which("shoal")
    if not exe:
        raise errors.LibraryNotFound("shoal.Manager: the `shoal` command (which runs the "
                                     "broker) is not on the PATH; set SHOAL_CLI to it")
    return exe


def _stop_broker(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SyncManager:
    """multiprocessing's SyncManager over a shoal broker: see the module's text."""

    def __init__(self, address=None, authkey=None, pickle=False, data_dir=None, tls=None):
        if isinstance(address, tuple):
            address = "tcp://%s:%d" % address
        tls = _check_tls(tls)
        if tls and address:
            _tls_settings[address] = tls
        if isinstance(authkey, str):
            authkey = authkey.encode()
        self._address = address
        self._authkey = authkey
        self._pickle = pickle
        self._data_dir = data_dir
        self._proc = None
        self._finalizer = None

    @property
    def address(self):
        return self._address

    def start(self):
        """Starts a private broker on shm:// (stopped by shutdown(), at exit, or when
        this process dies). Its stdin is a pipe whose write end only this process
        holds (and the children it forks, which may use the broker too): when the
        last of them is gone, however it died, the broker stops cleanly
        (--stop-at-stdin-eof) — not when the thread that started it ends."""
        if self._proc is not None:
            raise errors.ShoalError("shoal.Manager: already started", -1)
        self._address = "shm://manager-%d-%s" % (os.getpid(), uuid.uuid4().hex[:12])
        cmd = [_broker_command(), "broker", "--listen", self._address,
               "--stop-at-stdin-eof"]
        if self._data_dir:
            cmd += ["--data-dir", self._data_dir]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        for line in self._proc.stdout:
            if line.strip() == b"shoal broker: ready":
                break
        else:
            self._proc.wait()
            raise errors.ShoalError("shoal.Manager: the broker did not start (exit %s)" %
                                    self._proc.returncode, -28)
        self._proc.stdout.close()
        self._finalizer = weakref.finalize(self, _stop_broker, self._proc)
        return self

    def connect(self):
        """Connects to the broker at address (checks that it answers)."""
        _session(self._address, self._authkey)
        return self

    def flush(self):
        """Waits for the writes this thread has in flight to this broker and raises the
        first error they carry (the next call that needs a reply does the same)."""
        s = _sessions.get((self._address, self._authkey))
        if s is not None and s.pid == _pid:
            s.flush()

    def shutdown(self):
        """Collects the writes in flight, closes this process's session and stops the
        broker started by start(); raises the first error of this thread's writes."""
        key = (self._address, self._authkey)
        s = _sessions.pop(key, None)
        try:
            if s is not None:
                s.close()
        finally:
            if self._finalizer is not None:
                self._finalizer()

    def __enter__(self):
        if self._address is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def _create(self, cls, kind, init=None, typecode="", name=None):
        name = name or "%s-%s" % (cls.__name__[:-5].lower(), uuid.uuid4().hex)
        p = cls(self._address, self._authkey, name, (), self._pickle)
        p._call("create", kind, init, typecode)
        return p

    def dict(self, *args, name=None, **kw):
        return self._create(DictProxy, DICT, dict(*args, **kw), name=name)

    def list(self, sequence=(), name=None):
        return self._create(ListProxy, LIST, list(sequence), name=name)

    def Namespace(self, name=None, **kw):
        return self._create(NamespaceProxy, NAMESPACE, kw, name=name)

    def Value(self, typecode, value, lock=True, name=None):
        return self._create(ValueProxy, VALUE, value, typecode if
                            isinstance(typecode, str) else "", name=name)

    def Array(self, typecode, sequence, lock=True, name=None):
        if isinstance(sequence, int):
            sequence = [0.0 if typecode in "fd" else 0] * sequence
        return self._create(ArrayProxy, ARRAY, list(sequence), typecode, name=name)

    def Queue(self, maxsize=0, name=None):
        return self._queue(QueueProxy, QUEUE, maxsize, name)

    def JoinableQueue(self, maxsize=0, name=None):
        return self._queue(JoinableQueueProxy, JOINABLE_QUEUE, maxsize, name)

    def _queue(self, cls, kind, maxsize, name):
        q = self._create(cls, kind, maxsize, name=name)
        if maxsize <= 0:
            object.__setattr__(q, "_unbounded", True)
        return q

    def Lock(self, name=None):
        return self._create(LockProxy, LOCK, name=name)

    def RLock(self, name=None):
        return self._create(LockProxy, RLOCK, name=name)

    def Semaphore(self, value=1, name=None):
        return self._create(SemaphoreProxy, SEMAPHORE, value, name=name)

    def BoundedSemaphore(self, value=1, name=None):
        return self._create(SemaphoreProxy, BOUNDED_SEMAPHORE, value, name=name)

    def Event(self, name=None):
        return self._create(EventProxy, EVENT, name=name)

    def Condition(self, lock=None, name=None):
        return self._create(ConditionProxy, CONDITION, name=name)

    def Barrier(self, parties, action=None, timeout=None, name=None):
        b = self._create(BarrierProxy, BARRIER, parties, name=name)
        object.__setattr__(b, "_action", action)
        object.__setattr__(b, "_timeout", timeout)
        return b


def Manager(address=None, authkey=None, pickle=False, data_dir=None, tls=None):
    """A started SyncManager: a private broker (address None), or a connection to the
    broker at address. tls (for tls+tcp://): a dict of PEM file names, as
    shoal.rpc.channel takes — ca_file (required), cert_file and key_file (when the
    broker requires client certificates), server_name."""
    m = SyncManager(address, authkey, pickle, data_dir, tls)
    return m.connect() if address is not None else m.start()


if _FAST:
    _speedups.proxy_init(globals())
