"""Queues: of Python objects (pickled, in a variable-size queue) and of typed
elements (generated schema structs or typecodes, in fixed-size slots).

``Queue(maxsize=0, *, name=None, create=None, max_msg=None, spsc=False, root=None,
domain=None)`` has multiprocessing.Queue's methods. Differences, because a shoal
queue is a bounded ring in shared memory that any process may open by name:

- ``maxsize`` <= 0: unbounded, as multiprocessing's (see "Unbounded queues"; an
  ``spsc=True`` queue keeps DEFAULT_CAPACITY (1024) slots);
- a pickled object of at most ``max_msg`` bytes (default DEFAULT_MAX_MSG, 16 KiB)
  travels in a ring slot; a bigger one in a segment of its own (shoal._bulk);
- objects are pickled with multiprocessing's reduction (sockets, Connections, file
  descriptors travel); one that cannot be pickled is reported on stderr and
  dropped, as multiprocessing's feeder thread does;
- ``put`` is synchronous: when it returns, the object is in the queue (no feeder
  thread, so no join_thread() / cancel_join_thread() subtleties: they do nothing);
- ``close()`` releases this process's handle, as in multiprocessing;
  ``shutdown()`` ends the stream for every process: later puts raise shoal.Closed,
  and getters receive what was already queued, then shoal.EndOfStream (an EOFError,
  and queue.ShutDown on Python >= 3.13) — no sentinel values needed;
- ``qsize()``, ``empty()`` and ``full()`` are exact at the instant they look.

Unbounded queues. The queue itself is ring 0 (DEFAULT_CAPACITY slots, what a C
process opening the name sees). When a put finds the last ring full, the producer
creates ring k+1 (segment ``<name>.ring<k+1>``, twice the slots of ring k, at most
64 times ring 0's), records it as the tail in the companion ``<name>.chain`` (an
Array [head, tail, closed] made at the first overflow: a queue that never overflows
costs nothing more) and seals ring k with shoal_queue_shutdown. Producers that meet
a full or sealed ring look up the tail again; consumers take from the oldest ring
until it reports its end (sealed and drained), then move to the next one and remove
the drained ring. Sealing is what makes the hand-over exact: no put can land in a
ring after consumers left it, and each producer's messages keep their order.
shutdown() sets closed and seals the tail. Rings a queue left behind when every
user died are removed by ``shoal gc``.

Opening with ``create=False`` (or with ``create=None`` and no explicit maxsize /
max_msg) accepts the existing queue's configuration.

``TypedQueue(type, maxsize=0, *, ...)`` carries fixed-size elements: instances of
a generated struct class (or a ctypes.Structure, or a typecode's values). A C process
opening the same name with its generated type exchanges the same bytes; a different
layout raises shoal.LayoutMismatch. ``put``/``get`` copy one element; ``loan()`` and
``peek()`` give zero-copy views of a slot; ``put_many``/``get_many`` move batches.
"""

import ctypes
import pickle
import types as _types
import queue as _queue
import threading
import weakref
from contextlib import contextmanager
from ctypes import byref, c_size_t, c_void_p

from . import _bulk, errors
from ._lib import (
    C, F, NOWAIT, _SLICE_NS, Place, _sizes, check, encode_name, error, open_mode,
    recv_state, size_c,
    proc as _proc, speedups as _speedups,
    shoal_queue_config, shoal_queue_stats, shoal_type, wait_loop,
)
from ._object import SharedObject, decode, unlink
from .types import elem_type

__all__ = ["Queue", "SimpleQueue", "JoinableQueue", "TypedQueue", "DEFAULT_CAPACITY",
           "DEFAULT_MAX_MSG"]

DEFAULT_CAPACITY = 1024
DEFAULT_MAX_MSG = 16 * 1024

_ETIMEDOUT, _EAGAIN = errors.ETIMEDOUT, errors.EAGAIN
_EEOF, _ECLOSED, _EMSGSIZE = errors.EEOF, errors.ECLOSED, errors.EMSGSIZE
_dumps, _loads = _bulk.dumps, pickle.loads
_pdumps, _HIGHEST = pickle.dumps, pickle.HIGHEST_PROTOCOL
_plain = _speedups.plain if _speedups else None
# The try forms hold the GIL (they never wait); waits go through C (GIL released).
# With the extension, the byte transfers of Queue skip ctypes (shoal._speedups).
_try_put, _try_get = F.queue_try_put, F.queue_try_get
if _speedups:
    _sp_put, _sp_get = _speedups.queue_try_put, _speedups.queue_try_get
    _sp_get_wait = _speedups.queue_get_wait
_rx = threading.local()


def _rx_state(size):
    """This thread's receive buffer, at least size bytes: (buffer, its size as a
    c_size_t, pointer to the received length)."""
    size = max(size, 65536)
    st = _rx.state = (ctypes.create_string_buffer(size), c_size_t(size),
                      byref(c_size_t()))
    return st


# Variable-size queues record this element type name ("shoal.bytes") and a hash
# that depends on max_msg; only the name is checked.
_BYTES_TYPE = shoal_type(b"shoal.bytes", 0, 0, 0, b"\0", 0, None)


def _open_queue(name, mode, cfg, place):
    out = c_void_p()
    check(C.queue_open(byref(out), encode_name(name), mode,
                       byref(cfg) if cfg is not None else None, place.attr()),
          "queue %r" % name)
    return out.value


class _QueueBase(SharedObject):
    _what = "queue"
    _closer = C.queue_close

    def _open(self, name, create, place, cfg, explicit):
        """Opens per the create rules in the module doc; cfg describes a new queue."""
        if create is False or (create is None and not explicit and name is not None):
            try:
                h = _open_queue(name, 1, None, place)  # any configuration
            except errors.NotFound:
                if create is False:
                    raise
                h = _open_queue(name, open_mode(None), cfg, place)
            else:
                try:
                    self._verify(h, name, place)
                except Exception:
                    C.queue_close(h)
                    raise
        else:
            h = _open_queue(name, open_mode(create), cfg, place)
        self._attach(h, place)
        self._name = decode(C.queue_name(h))
        st = self._stats(h)
        self._capacity = st.capacity
        self._max_msg = st.max_msg
        self._capc = c_size_t(st.max_msg)
        self._spsc = bool(st.spsc)

    def _verify(self, h, name, place):
        """Checks the element type of a queue opened without a configuration."""
        from ._object import stat
        info = stat(decode(C.queue_name(h)), place.root, place.domain)
        want = self._want_type()
        if info["type"] != want.name.decode() or (
                want.layout_hash and info["layout_hash"] != want.layout_hash):
            raise errors.LayoutMismatch(
                "queue %r: layout mismatch: it holds %s#%016x, caller expects %s"
                % (name, info["type"], info["layout_hash"], want.name.decode()),
                errors.ELAYOUT)

    def _stats(self, h=None):
        st = shoal_queue_stats()
        check(C.queue_stats_get(h or self._handle(), byref(st)), self._what)
        return st

    def _reopen(self):
        return _open_queue(self._name, 1, None, self._place)

    # -- multiprocessing.Queue's inspection methods --

    def qsize(self):
        """Messages in the queue now."""
        return self._stats().depth

    def empty(self):
        return self._stats().depth == 0

    def full(self):
        return self._stats().depth >= self._capacity

    @property
    def maxsize(self):
        return self._capacity

    @property
    def max_msg(self):
        return self._max_msg

    def stats(self):
        """Depth, capacity and counters, as a dict."""
        st = self._stats()
        return {f: getattr(st, f) for f, _ in st._fields_}

    def shutdown(self):
        """Ends the stream for every process (see the module doc)."""
        check(C.queue_shutdown(self._handle()), self._what)

    # -- readiness for shoal.connection.wait --

    # [(pid, ring index, shoal_readyfd, ring handle or None) or None], shared with
    # the finalizer that closes the descriptor before the queue's handle
    _ready_box = None
    _ready_fin = None  # the finalizer that closes it

    def _wait_ready(self):
        """Whether get() would return at once (a message, or the end of the
        stream)."""
        st = self._stats()
        return st.depth > 0 or bool(st.closed)

    def _wait_ring(self):
        """The ring the next message lands in while the queue is empty (its index)."""
        return 0

    def _wait_fd(self):
        """A descriptor readable while the ring the next message lands in is ready,
        synced now (see shoal_readyfd in shoal/pipe.h); opened on first use, closed
        with the queue."""
        k = self._wait_ring()
        box = self._ready_box
        r = box[0] if box else None
        if r is None or r[0] != _proc.pid or r[1] != k:
            self._close_ready_fd()
            h = self._handle()
            ring = None if k == 0 else _open_queue(self._ring_name(k), 1, None,
                                                   self._place)
            out = c_void_p()
            rc = C.readyfd_open_queue(byref(out), ring or h)
            if rc:
                if ring:
                    C.queue_close(ring)
                raise error(rc, "queue %r" % self._name)
            r = (_proc.pid, k, out.value, ring)
            self._tie_ready_fd(r)
        C.readyfd_sync(r[2])
        return C.readyfd_fd(r[2])

    def _tie_ready_fd(self, r):
        # Garbage collection must close the descriptor before the queue's handle: the
        # handle's finalizer is replaced by one that does both.
        fin = self._finalizer
        if self._ready_box is not None and fin is self._ready_fin:
            self._ready_box[0] = r
            return
        self._ready_box = [r]
        if fin is not None and fin.alive:
            fn, args = fin.detach()[1:3]
            self._finalizer = weakref.finalize(self, _release_with_fd,
                                               self._ready_box, fn, args)
        self._ready_fin = self._finalizer

    def _close_ready_fd(self):
        box = self._ready_box
        if box and box[0] is not None:
            r, box[0] = box[0], None
            _close_ready_fd(r)

    def _before_close(self):
        self._close_ready_fd()

    def join_thread(self):
        """Nothing to wait for: put() is synchronous."""

    def cancel_join_thread(self):
        """Nothing to cancel: put() is synchronous."""

    def _raise_put(self, rc, size):
        if rc == _ETIMEDOUT or rc == _EAGAIN:
            raise _queue.Full
        if rc == _EMSGSIZE:
            raise errors.MessageTooLarge(
                "queue %r: message of %d bytes; the queue's max_msg is %d (create it "
                "with a larger max_msg)" % (self._name, size, self._max_msg), rc)
        raise error(rc, "queue %r" % self._name)

    def _raise_get(self, rc):
        if rc == _ETIMEDOUT or rc == _EAGAIN:
            raise _queue.Empty
        raise error(rc, "queue %r" % self._name)


class Queue(_QueueBase):
    """A process-shared FIFO of Python objects (multiprocessing.Queue)."""

    _unbounded = False
    _chain = None  # the companion Array [head, tail, closed], once the ring overflowed
    _put_ring = _get_ring = None  # (pid, k, handle) of the rings in use beyond ring 0

    def __init__(self, maxsize=0, *, name=None, create=None, max_msg=None, spsc=False,
                 root=None, domain=None):
        explicit = maxsize > 0 or max_msg is not None
        cfg = shoal_queue_config(None, max_msg or DEFAULT_MAX_MSG,
                                 maxsize if maxsize > 0 else DEFAULT_CAPACITY, int(spsc))
        self._unbounded = maxsize <= 0 and not spsc
        self._open(name, create, Place(root, domain), cfg, explicit)

    @staticmethod
    def _want_type():
        return _BYTES_TYPE

    def __reduce__(self):
        return (_reopen_queue, (type(self), self._name, self._place, self._unbounded))

    def put(self, obj, block=True, timeout=None):
        """Puts obj (pickled). Raises queue.Full when the queue stays full for the
        timeout (at once with block=False), shoal.Closed after shutdown(). An object
        that cannot be pickled is reported on stderr and dropped, as
        multiprocessing's feeder thread does."""
        try:  # plain builtin data (which no reducer changes) by pickle.dumps, in line
            data = _pdumps(obj, _HIGHEST) if _plain and _plain(obj) else _dumps(obj)
        except Exception:
            _bulk.report_unpicklable(obj)
            return
        n = len(data)
        if n > self._max_msg:
            data = _bulk.to_segment(data, self._place)
            n = len(data)
        if _speedups:
            h = self._h
            if h is None or self._pid != _proc.pid:
                h = self._handle()
            rc = _sp_put(h, data)
        else:
            hp = self._hp
            if hp is None or self._pid != _proc.pid:
                hp = self._fast()
            rc = _try_put(hp, data, _sizes.get(n) or size_c(n))
        if rc:
            self._put_slow(rc, data, n, block, timeout)

    def _put_slow(self, rc, data, n, block, timeout):
        if self._unbounded and (rc == _EAGAIN or rc == _ECLOSED):
            rc = self._put_chained(data, n, rc)
        elif rc == _EAGAIN and block:
            rc = wait_loop(C.queue_put, (self._h, data, n), timeout)  # GIL released
        if rc:
            if data[:1] == b"\0":
                _bulk.drop(data, self._place)
            self._raise_put(rc, n)

    def put_bytes(self, data, block=True, timeout=None):
        """Puts a bytes-like message as it is (a C consumer sees these bytes; one
        longer than max_msg travels out of line, for Python consumers only)."""
        data = bytes(data)
        hp = self._fast()
        if _bulk.needs_segment(data, self._max_msg):
            data = _bulk.to_segment(data, self._place)
        n = len(data)
        rc = _try_put(hp, data, c_size_t(n))
        if rc:
            self._put_slow(rc, data, n, block, timeout)

    def put_nowait(self, obj):
        self.put(obj, False)

    def get(self, block=True, timeout=None):
        """Removes and returns the oldest object. Raises queue.Empty when none
        arrives within the timeout (at once with block=False), shoal.EndOfStream
        after shutdown() once drained."""
        try:
            buf, cap, nref = _rx.state  # this thread's receive buffer
        except AttributeError:
            buf, cap, nref = _rx_state(self._max_msg)
        if _speedups:
            h = self._h
            if h is None or self._pid != _proc.pid:
                h = self._handle()
            if block and timeout is None:  # waits in C, GIL released
                rc, n = _sp_get_wait(h, buf, _SLICE_NS)
            else:
                rc, n = _sp_get(h, buf)
        else:
            hp = self._hp
            if hp is None or self._pid != _proc.pid:
                hp = self._fast()
            rc = _try_get(hp, buf, cap, nref)
            n = -1
        if rc:
            buf = self._get_slow(rc, block, timeout)
            n = -1
        try:
            return _loads(buf)  # reads up to the pickle's STOP; the rest is ignored
        except pickle.UnpicklingError:
            if n < 0:
                n = _rx.state[2]._obj.value
            if not _bulk.is_ref(buf, n):
                raise
        return _bulk.from_segment(buf.raw[:n], self._place, True)

    def _get_slow(self, rc, block, timeout):
        """After a try that did not get a message: grows this thread's buffer if the
        message did not fit, waits (GIL released) if allowed. Returns the buffer
        holding the message."""
        buf, cap, nref = _rx.state
        if rc == _EMSGSIZE and cap.value < self._max_msg:
            buf, cap, nref = _rx_state(self._max_msg)
            rc = _try_get(self._hp, buf, cap, nref)
        if rc == _EEOF and self._unbounded:
            rc = self._get_chained(buf, cap, nref, block, timeout)
        elif rc == _EAGAIN and block:
            rc = wait_loop(C.queue_get, (self._h, buf, cap, nref), timeout)
        if rc:
            self._raise_get(rc)
        return buf

    def get_bytes(self, block=True, timeout=None):
        """Removes and returns the oldest message's bytes."""
        hp = self._fast()
        cap = self._max_msg
        buf, have, n, nref = recv_state(cap)
        rc = _try_get(hp, buf, c_size_t(cap), nref)
        if rc == _EEOF and self._unbounded:
            rc = self._get_chained(buf, c_size_t(cap), nref, block, timeout)
        elif rc == _EAGAIN and block:
            rc = wait_loop(C.queue_get, (self._h, buf, cap, nref), timeout)
        if rc:
            self._raise_get(rc)
        if _bulk.is_ref(buf, n.value):
            return _bulk.from_segment(buf.raw[:n.value], self._place, False)
        return buf.raw[:n.value] if n.value > 256 else ctypes.string_at(buf, n.value)

    def get_nowait(self):
        return self.get(False)


    # -- unbounded: rings chained as further segments (see the module doc) --

    def _ring_name(self, k):
        return "%s.ring%d" % (self._name, k)

    def _chain_state(self, create):
        """The companion Array, opened (or created) on first need; None when the
        queue never overflowed (and create is false)."""
        if self._chain is None:
            from .sharedctypes import Array
            p = self._place
            try:
                self._chain = Array("q", 3, name=self._name + ".chain",
                                    create=None if create else False, root=p.root,
                                    domain=p.domain)
            except errors.NotFound:
                return None
        return self._chain

    def _ring(self, slot, k, cfg=None):
        """The handle of ring k (0: the queue itself) for put or get (slot is the
        attribute caching it), opening it, or creating it with cfg."""
        if k == 0:
            return self._handle()
        r = getattr(self, slot)
        if r is not None and r[0] == _proc.pid and r[1] == k:
            return r[2]
        if r is not None and r[0] == _proc.pid:
            C.queue_close(r[2])
        h = _open_queue(self._ring_name(k), 1 if cfg is None else 3, cfg, self._place)
        setattr(self, slot, (_proc.pid, k, h))
        return h

    def _grow(self, k):
        """Ring k is full: unless another producer did already, creates ring k+1
        (twice as large, up to 64 times ring 0), makes it the tail and seals ring k,
        so that every producer moves on and consumers drain ring k first."""
        chain = self._chain_state(True)
        with chain.get_lock():
            if chain[1] != k or chain[2]:
                return
            full = self._ring("_put_ring", k)
            cfg = shoal_queue_config(None, self._max_msg,
                                     self._capacity << min(k + 1, 6), 0)
            C.queue_close(_open_queue(self._ring_name(k + 1), 3, cfg, self._place))
            chain[1] = k + 1
            C.queue_shutdown(full)

    def _put_chained(self, data, n, rc):
        """put() once ring 0 was full (rc EAGAIN) or sealed (ECLOSED). Returns an
        rc."""
        while True:
            chain = self._chain_state(rc == _EAGAIN)
            if chain is None:
                return rc  # shut down, never overflowed
            if chain[2]:
                return _ECLOSED
            k = chain[1]
            rc = C.queue_try_put(self._ring("_put_ring", k), data, n)
            if rc == _EAGAIN:
                self._grow(k)
            elif rc != _ECLOSED or chain[1] == k:  # sealed rings have a successor
                return rc

    def _get_chained(self, buf, cap, nref, block, timeout):
        """get() once ring 0 reported its end: takes from the oldest ring not yet
        drained, moving on (and removing drained rings) as each reports its end.
        Returns an rc."""
        chain = self._chain_state(False)
        if chain is None:
            return _EEOF  # shut down without ever overflowing
        while True:
            r = self._get_ring
            k = r[1] if r is not None and r[0] == _proc.pid else max(chain[0], 1)
            h = self._ring("_get_ring", k)
            if block:
                rc = wait_loop(C.queue_get, (h, buf, cap, nref), timeout)
            else:
                rc = C.queue_try_get(h, buf, cap, nref)
            if rc != _EEOF:
                return rc
            with chain.get_lock():
                if chain[2] and chain[1] == k:
                    return _EEOF  # shut down: the end of the stream
                if chain[0] <= k:
                    chain[0] = k + 1
                    unlink(self._ring_name(k), self._place.root, self._place.domain)
            self._ring("_get_ring", k + 1)

    def shutdown(self):
        """Ends the stream for every process (see the module doc)."""
        chain = self._chain_state(False) if self._unbounded else None
        if chain is None:
            return super().shutdown()
        with chain.get_lock():
            chain[2] = 1
            k = chain[1]
        check(C.queue_shutdown(self._ring("_put_ring", k)), self._what)

    def qsize(self):
        """Messages in the queue now (in every ring of an unbounded queue)."""
        n = self._stats().depth
        chain = self._chain_state(False) if self._unbounded else None
        if chain is not None:
            head, tail = max(chain[0], 1), chain[1]
            for k in range(head, tail + 1):
                try:
                    h = _open_queue(self._ring_name(k), 1, None, self._place)
                except errors.NotFound:
                    continue
                n += self._stats(h).depth
                C.queue_close(h)
        return n

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return False if self._unbounded else super().full()

    def _wait_ready(self):
        chain = self._chain_state(False) if self._unbounded else None
        if chain is None:
            return super()._wait_ready()
        return bool(chain[2]) or self.qsize() > 0

    def _wait_ring(self):
        chain = self._chain_state(False) if self._unbounded else None
        return 0 if chain is None else chain[1]

    def _before_close(self):
        super()._before_close()
        for slot in ("_put_ring", "_get_ring"):
            r = getattr(self, slot)
            if r is not None and r[0] == _proc.pid:
                C.queue_close(r[2])
            setattr(self, slot, None)
        if self._chain is not None:
            self._chain.close()
            self._chain = None


def _close_ready_fd(r):
    pid, _, rfd, ring = r
    C.readyfd_close(rfd)  # an inherited one is released without touching the parent's
    if ring is not None and pid == _proc.pid:
        C.queue_close(ring)


def _release_with_fd(box, fn, args):
    if box[0] is not None:
        r, box[0] = box[0], None
        _close_ready_fd(r)
    fn(*args)


class SimpleQueue(Queue):
    """multiprocessing.SimpleQueue: get, put, empty, close."""


def _reopen_queue(cls, name, place, unbounded=False):
    obj = cls.__new__(cls)
    obj._unbounded = unbounded
    obj._open(name, False, place, None, False)
    return obj


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue: a Queue with task_done() and join(). The count
    of unfinished tasks and its condition are shared objects too: named after the
    queue (``<name>.unfinished``, ``<name>.cond``) when the queue has a name, so that
    every process opening it by name sees the same, and anonymous otherwise."""

    def __init__(self, maxsize=0, **kwargs):
        super().__init__(maxsize, **kwargs)
        self._companions(kwargs.get("name"), kwargs.get("create"))

    def _companions(self, name, create):
        from .sync import Condition, Semaphore
        p = self._place
        self._unfinished = Semaphore(0, name=name and name + ".unfinished",
                                     create=create, root=p.root, domain=p.domain)
        self._cond = Condition(name=name and name + ".cond", create=create,
                               root=p.root, domain=p.domain)

    def __reduce__(self):
        return (_reopen_joinable, (self._name, self._place, self._unfinished,
                                   self._cond, self._unbounded))

    def put(self, obj, block=True, timeout=None):
        with self._cond:
            super().put(obj, block, timeout)
            self._unfinished.release()

    def task_done(self):
        with self._cond:
            if not self._unfinished.acquire(False):
                raise ValueError("task_done() called too many times")
            if self._unfinished.get_value() == 0:
                self._cond.notify_all()

    def join(self):
        with self._cond:
            while self._unfinished.get_value() != 0:
                self._cond.wait()


def _reopen_joinable(name, place, unfinished, cond, unbounded=False):
    obj = JoinableQueue.__new__(JoinableQueue)
    obj._unbounded = unbounded
    obj._open(name, False, place, None, False)
    obj._unfinished, obj._cond = unfinished, cond
    return obj


def _validator(ct):
    """The function validating one element of struct class ct (called with the
    element, as element.validate() would be), None when there is nothing to check,
    or False when it cannot be called that way."""
    v = getattr(ct, "validate", None)
    if v is None:
        return None
    from ._gen import Message
    if v is Message.validate:  # generated: straight to the generated checks
        v = ct._shoal_validate_
        if v is Message._shoal_validate_:
            return None
    return v if isinstance(v, _types.FunctionType) else False


# With the extension, TypedQueue.put/get of structs run in C (TypedBase), which calls
# _put_py / _get_py for everything else; without it they are put/get.
if _speedups:
    _TypedBases = (_speedups.TypedBase, _QueueBase)

    class _Probe(ctypes.Structure):
        _fields_ = [("x", ctypes.c_int64)]
    _p = _Probe()
    _speedups.check_cdata(_p, ctypes.addressof(_p))
    del _p
else:
    _TypedBases = (_QueueBase,)


class TypedQueue(*_TypedBases):
    """A queue of fixed-size elements of one type (see the module doc)."""

    def __init__(self, type, maxsize=0, *, name=None, create=None, spsc=False, root=None,
                 domain=None):
        self._setup(type)
        explicit = maxsize > 0 or spsc
        cfg = shoal_queue_config(self._et.ptr, 0,
                                 maxsize if maxsize > 0 else DEFAULT_CAPACITY, int(spsc))
        self._open(name, create, Place(root, domain), cfg, explicit)

    def _setup(self, type):
        self._n = c_size_t()  # received length (always the element size)
        self._nref = byref(self._n)
        self._et = elem_type(type)
        self._ct = self._et.ctype
        self._size = self._et.size
        self._sizec = c_size_t(self._size)
        if _speedups:
            valid = _validator(self._ct) if self._et.is_struct else False
            if valid is not False:
                self._cct, self._csize, self._cvalid = self._ct, self._size, valid
                self._cslice = _SLICE_NS

    def _attach(self, handle, place, owned=True):
        super()._attach(handle, place, owned)
        if _speedups:  # the handle for the C fast path, and where it is valid
            self._ch, self._cpid = handle, _proc.pid

    def _before_close(self):
        super()._before_close()
        if _speedups:
            self._ch = 0

    def _want_type(self):
        return self._et.ptr.contents

    def __reduce__(self):
        return (_reopen_typed, (self._name, self._place, self._et.key))

    def _coerce(self, obj):
        if isinstance(obj, self._ct):
            return obj
        if isinstance(obj, tuple):
            return self._ct(*obj)
        if isinstance(obj, dict):
            return self._ct(**obj)
        return self._ct(obj)

    def _put_py(self, obj, block=True, timeout=None):
        """Puts one element (an instance of the type; a tuple or dict of its fields,
        or a scalar for a typecode, is converted). Validated when the type has
        validate()."""
        hp = self._hp
        if hp is None or self._pid != _proc.pid:
            hp = self._fast()
        x = obj if type(obj) is self._ct else self._coerce(obj)
        v = getattr(x, "validate", None)
        if v is not None:
            v()
        rc = _sp_put(self._h, x) if _speedups else _try_put(hp, byref(x), self._sizec)
        if rc:
            self._put_wait(rc, x, block, timeout)

    def _put_wait(self, rc, x, block, timeout):
        """After a try-put of element x that returned rc: waits if allowed (GIL
        released), raises."""
        if rc == _EAGAIN and block:
            rc = wait_loop(C.queue_put, (self._h, byref(x), self._size), timeout)
        if rc:
            self._raise_put(rc, self._size)

    def put_nowait(self, obj):
        self.put(obj, False)

    def _get_py(self, block=True, timeout=None):
        """Removes the oldest element and returns a copy (for a typecode: its value)."""
        hp = self._hp
        if hp is None or self._pid != _proc.pid:
            hp = self._fast()
        ct = self._ct
        out = ct.__new__(ct)  # zeroed, without running a generated __init__
        p = byref(out)
        nref = self._nref
        if _speedups:
            rc = _sp_get(self._h, out)[0]
        else:
            rc = _try_get(hp, p, self._sizec, nref)
        if rc:
            if rc == _EAGAIN and block:
                rc = wait_loop(C.queue_get, (self._h, p, self._size, nref), timeout)
            if rc:
                self._raise_get(rc)
        if self._et.is_struct:  # any process may have written it: InvalidData if bad
            v = getattr(out, "validate", None)
            if v is not None:
                v()
        return out if self._et.is_struct else out.value

    if not _speedups:
        put, get = _put_py, _get_py

    def get_nowait(self):
        return self.get(False)

    def put_many(self, items, timeout=None):
        """Puts a sequence of elements, waiting (up to timeout) while the queue is
        full. Returns the number put (all of them unless the timeout expired)."""
        arr = (self._ct * len(items))(*[self._coerce(x) for x in items])
        for x in arr:
            v = getattr(x, "validate", None)
            if v is not None:
                v()
        h = self._handle()
        done_total = 0
        done = c_size_t()
        while done_total < len(arr):
            rest = len(arr) - done_total
            ptr = ctypes.byref(arr, done_total * self._size)
            rc = wait_loop(C.queue_put_batch, (h, ptr, rest, byref(done)), timeout)
            if rc == _ETIMEDOUT or rc == _EAGAIN:
                break
            if rc:
                self._raise_put(rc, self._size)
            done_total += done.value
        return done_total

    def get_many(self, max_items, block=True, timeout=None):
        """Removes up to max_items elements (waiting only for the first); returns a
        list (empty on timeout)."""
        arr = (self._ct * max_items)()
        done = c_size_t()
        h = self._handle()
        if block:
            rc = wait_loop(C.queue_get_batch, (h, arr, max_items, byref(done)), timeout)
        else:
            rc = C.queue_get_batch(h, arr, max_items, byref(done), NOWAIT)
        if rc == _ETIMEDOUT or rc == _EAGAIN:
            return []
        if rc:
            self._raise_get(rc)
        items = arr[:done.value]
        for x in items:  # checked on receipt, as get() does
            v = getattr(x, "validate", None)
            if v is not None:
                v()
        return items

    @contextmanager
    def loan(self, timeout=None):
        """Zero-copy put: ``with q.loan() as m: m.x = 1`` writes the element in
        place in a reserved slot and publishes it when the block ends. The slot starts
        with unspecified contents: set every field. (It is published even if the
        block raises; a reservation is only withdrawn when its process dies.)"""
        h = self._handle()
        slot, cap = c_void_p(), c_size_t()
        rc = wait_loop(C.queue_loan, (h, byref(slot), byref(cap)), timeout)
        if rc:
            self._raise_put(rc, self._size)
        view = self._ct.from_address(slot.value)
        try:
            yield view
        finally:
            check(C.queue_commit(h, slot.value, self._size), self._what)

    @contextmanager
    def peek(self, timeout=None):
        """Zero-copy get: ``with q.peek() as m: ...`` reads the oldest element in
        place; its slot is released when the block ends. Do not keep the view."""
        h = self._handle()
        msg, n = c_void_p(), c_size_t()
        rc = wait_loop(C.queue_peek, (h, byref(msg), byref(n)), timeout)
        if rc:
            self._raise_get(rc)
        view = self._ct.from_address(msg.value)
        try:
            yield view
        finally:
            check(C.queue_release(h, msg.value), self._what)

    @property
    def type(self):
        return self._ct


def _reopen_typed(name, place, key):
    obj = TypedQueue.__new__(TypedQueue)
    obj._setup(key)
    obj._open(name, False, place, None, False)
    return obj

