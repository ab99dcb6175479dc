"""Pipe and Connection: a duplex 1:1 channel with multiprocessing's API.

``Pipe(duplex=True, *, name=None, max_msg=None, capacity=None, root=None,
domain=None)`` returns two Connections, ends 0 and 1 of one shoal pipe (with
``duplex=False``: a receive-only end 0 and a send-only end 1, as multiprocessing
returns (reader, writer)). ``Connection.open(name, end)`` opens one end of a named
pipe from any process.

- ``recv()`` raises EOFError once the other end is closed (shoal.EndOfStream) or
  its process died (shoal.PeerDied, a subclass), after everything it sent has been
  received — never a hang;
- ``send()`` raises shoal.BrokenPipe (a BrokenPipeError) when the other end is
  closed or dead; a message over ``max_msg`` bytes (default DEFAULT_MAX_MSG,
  16 KiB) travels in a segment of its own (see shoal._bulk), so any size goes;
- objects are pickled with multiprocessing's reduction (sockets, Connections and
  file descriptors can be sent); ``recv_bytes_into`` a buffer too small raises
  multiprocessing.BufferTooShort holding the message;
- ``poll(timeout)`` says whether recv() would return at once (a message, or the
  end of the stream);
- an end may be held by several processes at once, as a file descriptor may: a
  forked child holds the ends it inherits, and a Connection passed by pickling (e.g.
  to a spawned process) is opened there by name and joins the holders of its end.
  The peer receives EOFError only once the last holder has closed the end or exited
  (shoal.PeerDied when one of the last ones died without closing it). A process
  that closes an end it pickled for others keeps its handle until every receiver has
  joined (a background thread waits for them), so the end never looks closed while
  it is on its way.

- ``fileno()`` is a descriptor readable exactly while ``poll()`` would return True
  (shoal_pipe_fd: an eventfd kept in step by a helper thread, started in a process
  the first time it asks for a descriptor), for select, selectors and
  multiprocessing.connection.wait. Only wait for readability on it. A message taken
  by another process holding the same end may leave it readable until this process
  polls or receives (as a socket shared by processes may wake a waiter for nothing).

``wait(object_list, timeout=None)`` is multiprocessing.connection.wait for shoal
Connections and Queues (ready: get() would not wait) mixed with anything it accepts
(Connections, sockets, ``Process.sentinel``, objects with ``fileno()``, integers).
"""

import atexit
import pickle
import selectors
import threading
import time
import weakref
from ctypes import byref, c_size_t, c_void_p

from multiprocessing import BufferTooShort

from . import _bulk, errors
from ._lib import (
    C, F, NOWAIT_C, Place, _SLICE_NS, _sizes, _tls, check, encode_name, error,
    open_mode, proc, recv_state, shoal_queue_config, size_c,
    speedups as _speedups, wait_loop,
)
from ._object import SharedObject, _release, decode

__all__ = ["Pipe", "Connection", "wait", "DEFAULT_MAX_MSG", "DEFAULT_CAPACITY"]

DEFAULT_MAX_MSG = 16 * 1024
DEFAULT_CAPACITY = 128  # messages per direction

_ETIMEDOUT, _EAGAIN, _EMSGSIZE = errors.ETIMEDOUT, errors.EAGAIN, errors.EMSGSIZE
_EEOF, _EPEERDEAD = errors.EEOF, errors.EPEERDEAD
_dumps, _loads = _bulk.dumps, pickle.loads
_pdumps, _HIGHEST = pickle.dumps, pickle.HIGHEST_PROTOCOL

_TAKEOVER = 0x100  # SHOAL_PIPE_TAKEOVER (shoal/pipe.h)
if _speedups:  # the non-blocking byte transfers without ctypes (shoal._speedups)
    _sp_send, _sp_recv_wait = _speedups.pipe_send, _speedups.pipe_recv_wait
_plain = _speedups.plain if _speedups else None


def _config(max_msg, capacity):
    return shoal_queue_config(None, max_msg or DEFAULT_MAX_MSG,
                              capacity or DEFAULT_CAPACITY, 0)


def Pipe(duplex=True, *, name=None, max_msg=None, capacity=None, root=None,
         domain=None):
    """Creates a pipe (name None: a generated one); returns its two Connections."""
    place = Place(root, domain)
    a, b = c_void_p(), c_void_p()
    cfg = _config(max_msg, capacity)
    check(C.pipe_pair(byref(a), byref(b), encode_name(name), byref(cfg), place.attr()),
          "pipe %r" % name)
    c0 = Connection._adopt(a.value, 0, place, readable=True, writable=duplex)
    c1 = Connection._adopt(b.value, 1, place, readable=duplex, writable=True)
    return c0, c1


class Connection(SharedObject):
    """One end of a shoal pipe (multiprocessing.connection.Connection)."""

    _what = "pipe"
    _closer = C.pipe_close

    @classmethod
    def open(cls, name, end, *, create=None, max_msg=None, capacity=None, root=None,
             domain=None, readable=True, writable=True, takeover=False):
        """Opens end `end` (0 or 1) of the pipe `name`, creating the pipe if create
        allows. Raises shoal.Busy when a live process holds that end, unless
        takeover=True: then this process joins its holders."""
        place = Place(root, domain)
        cfg = _config(max_msg, capacity) if create is not False else None
        h = _open_end(name, end, open_mode(create), cfg, place, takeover)
        return cls._adopt(h, end, place, readable, writable)

    @classmethod
    def _adopt(cls, h, end, place, readable=True, writable=True):
        c = cls.__new__(cls)
        c._attach(h, place)
        c._name = decode(C.pipe_name(h))
        c._end = end
        c._readable, c._writable = readable, writable
        c._max_msg = None
        return c

    def _slow_handle(self):
        # A Connection inherited across fork(): the child holds the end from its first
        # instant (see pipe.h), uses the inherited handle itself and may close it.
        if self._h is None:
            raise OSError("handle is closed")
        self._pid = proc.pid
        self._finalizer = weakref.finalize(self, _release, C.pipe_close, self._h,
                                           proc.pid)
        return self._h

    def __reduce__(self):
        # Pickled to be sent to another process, which joins the holders of the end
        # when it unpickles it, then sets `joined`. Until then our handle must stay:
        # released earlier, it could leave the end without a holder, which the peer
        # reads as the end of the stream (see close()).
        from .sync import Event
        joined = Event(root=self._place.root, domain=self._place.domain)
        self._joins = self._joins + [joined]
        return (_reopen_end, (self._name, self._end, self._place, self._readable,
                              self._writable, joined))

    _joins = []  # an Event per pickled copy, set once its receiver holds the end

    def close(self):
        """Closes this end: the peer receives what was sent, then EOFError once no
        other process holds the end. (A Connection pickled for other processes
        releases its handle once they have all opened the end.)"""
        joins, self._joins = self._joins, []
        if joins and self._h is not None and self._pid == proc.pid and self._finalizer:
            info = self._finalizer.detach()
            self._h = self._hp = None
            if info is not None:
                _Handoff(info[1:], joins)
            return
        for ev in joins:
            ev.close()
        super().close()

    @property
    def end(self):
        return self._end

    @property
    def readable(self):
        return self._readable

    @property
    def writable(self):
        return self._writable

    def fileno(self):
        """A file descriptor readable exactly while poll() would return True (see the
        module doc); closed with the Connection. Do not read, write or close it."""
        fd = C.pipe_fd(self._handle())
        if fd < 0:
            raise error(fd, "pipe %r" % self._name)
        return fd

    def _wait_ready(self):
        return self._readable and self.poll()

    def _cap(self):
        if self._max_msg is None:
            from ._object import stat
            self._max_msg = stat(self._name, self._place.root,
                                 self._place.domain)["elem_size"]
            self._capc = c_size_t(self._max_msg)
        return self._max_msg

    # -- sending --

    def send(self, obj):
        """Sends a picklable object (pickled by multiprocessing's reduction)."""
        if not self._writable:
            raise OSError("connection is read-only")
        # plain builtin data (which no reducer changes) by pickle.dumps, in line
        data = _pdumps(obj, _HIGHEST) if _plain and _plain(obj) else _dumps(obj)
        n = len(data)
        if n > (self._max_msg or self._cap()):
            data = _bulk.to_segment(data, self._place)
            n = len(data)
        if _speedups:
            h = self._h
            if h is None or self._pid != proc.pid:
                h = self._handle()
            rc = _sp_send(h, data)
        else:
            hp = self._hp
            if hp is None or self._pid != proc.pid:
                hp = self._fast()
            rc = F.pipe_send(hp, data, _sizes.get(n) or size_c(n), NOWAIT_C)
        if rc:
            self._send_slow(rc, data, n)

    def _send_slow(self, rc, data, n):
        if rc == _EAGAIN:
            rc = wait_loop(C.pipe_send, (self._h, data, n), None)
        if rc:
            if data[:1] == b"\0":
                _bulk.drop(data, self._place)
            self._raise_send(rc, n)

    def send_bytes(self, buf, offset=0, size=None):
        """Sends bytes (a bytes-like object, or a slice of one)."""
        if not self._writable:
            raise OSError("connection is read-only")
        mv = memoryview(buf).cast("B")
        if offset < 0 or offset > len(mv):
            raise ValueError("offset is negative or too large")
        if size is None:
            size = len(mv) - offset
        elif size < 0 or offset + size > len(mv):
            raise ValueError("size is negative or too large")
        data = bytes(mv[offset:offset + size])
        hp = self._fast()
        if _bulk.needs_segment(data, self._max_msg or self._cap()):
            data = _bulk.to_segment(data, self._place)
        n = len(data)
        rc = F.pipe_send(hp, data, c_size_t(n), NOWAIT_C)
        if rc:
            self._send_slow(rc, data, n)

    def _raise_send(self, rc, n):
        if rc == _EEOF or rc == _EPEERDEAD:
            e = error(rc, "pipe %r" % self._name)
            raise errors.BrokenPipe(e.detail, rc)
        if rc == _EMSGSIZE:
            raise errors.MessageTooLarge(
                "pipe %r: message of %d bytes; the pipe's max_msg is %d"
                % (self._name, n, self._cap()), rc)
        raise error(rc, "pipe %r" % self._name)

    # -- receiving --

    def _recv_into_scratch(self):
        """Receives one message into this thread's scratch buffer; returns
        (buffer, length)."""
        if not self._readable:
            raise OSError("connection is write-only")
        cap = self._max_msg or self._cap()
        buf, have, n, nref = recv_state(cap)
        if _speedups:
            h = self._h
            if h is None or self._pid != proc.pid:
                h = self._handle()
            rc, got = _sp_recv_wait(h, buf, _SLICE_NS)  # waits, GIL released
            if rc == 0:
                return buf, got
            raise error(rc, "pipe %r" % self._name)
        else:
            hp = self._hp
            if hp is None or self._pid != proc.pid:
                hp = self._fast()
            rc = F.pipe_recv(hp, buf, self._capc, nref, NOWAIT_C)
        if rc:
            if rc == _EAGAIN:
                rc = wait_loop(C.pipe_recv, (self._h, buf, cap, nref), None)
            if rc:
                raise error(rc, "pipe %r" % self._name)
        return buf, n.value

    def _recv_raw(self):
        buf, n = self._recv_into_scratch()
        if _bulk.is_ref(buf, n):
            return memoryview(_bulk.from_segment(buf.raw[:n], self._place, False))
        return memoryview(buf).cast("B")[:n]

    def recv(self):
        """Receives an object; EOFError when nothing more will come."""
        # With the extension, once this thread has its scratch buffer, in line:
        st = _tls.__dict__.get("rx") if _speedups and self._readable else None
        h = self._h
        if (st is not None and h is not None and self._pid == proc.pid
                and st[1] >= (self._max_msg or self._cap())):
            buf = st[0]
            rc, n = _sp_recv_wait(h, buf, _SLICE_NS)  # waits, GIL released
            if rc:
                raise error(rc, "pipe %r" % self._name)
        else:
            buf, n = self._recv_into_scratch()
        try:
            return _loads(buf)  # reads up to the pickle's STOP; the rest is ignored
        except pickle.UnpicklingError:
            if not _bulk.is_ref(buf, n):
                raise
        return _bulk.from_segment(buf.raw[:n], self._place, True)

    def recv_bytes(self, maxlength=None):
        """Receives one message as bytes."""
        data = bytes(self._recv_raw())
        if maxlength is not None and len(data) > maxlength:
            raise OSError("bad message length")
        return data

    def recv_bytes_into(self, buf, offset=0):
        """Receives one message into a writable buffer; returns its length."""
        data = self._recv_raw()
        mv = memoryview(buf).cast("B")
        if offset < 0 or offset > len(mv):
            raise ValueError("offset is negative or too large")
        if len(data) > len(mv) - offset:  # the message is lost to recv otherwise
            raise BufferTooShort(bytes(data))
        mv[offset:offset + len(data)] = data
        return len(data)

    def poll(self, timeout=0.0):
        """Whether there is anything to receive (a message, or the end of the
        stream), waiting up to timeout seconds (None: forever)."""
        if not self._readable:
            raise OSError("connection is write-only")
        rc = F.pipe_poll(self._fast(), NOWAIT_C)
        if rc == 0 and (timeout is None or timeout > 0):
            rc = wait_loop(C.pipe_poll, (self._h,), timeout, 0)
        if rc == 1:
            return True
        if rc == 0 or rc == _ETIMEDOUT or rc == _EAGAIN:
            return False
        if rc == _EEOF or rc == _EPEERDEAD:
            return True  # recv() will raise at once
        raise error(rc, "pipe %r" % self._name)

    def __repr__(self):
        state = " closed" if self._h is None else ""
        return "<shoal.Connection %r end %d%s>" % (self._name, self._end, state)


class _Handoff:
    """The handle of a closed Connection whose pickled copies have not all been opened
    yet: released by a daemon thread once every receiver has joined the end, or at
    exit, whichever comes first."""

    pending = set()

    def __init__(self, release, joins):
        self._release = release  # (function, args, kwargs) of the handle's finalizer
        self._lock = threading.Lock()
        if all(ev.is_set() for ev in joins):
            self.release()
            for ev in joins:
                ev.close()
            return
        _Handoff.pending.add(self)
        threading.Thread(target=self._wait, args=(joins,), daemon=True,
                         name="shoal-pipe-handoff").start()

    def _wait(self, joins):
        for ev in joins:
            while not ev.wait(0.1):
                if self._release is None:  # released at exit
                    return
        self.release()
        for ev in joins:
            ev.close()

    def release(self):
        with self._lock:
            info, self._release = self._release, None
        _Handoff.pending.discard(self)
        if info is not None:
            fn, args, kwargs = info
            fn(*args, **kwargs)


@atexit.register
def _release_handoffs():
    for h in list(_Handoff.pending):
        h.release()


def _open_end(name, end, mode, cfg, place, takeover):
    out = c_void_p()
    flag = _TAKEOVER if takeover else 0
    check(C.pipe_open(byref(out), encode_name(name), end | flag, mode,
                      byref(cfg) if cfg is not None else None, place.attr()),
          "pipe %r end %d" % (name, end))
    return out.value


def _reopen_end(name, end, place, readable, writable, joined=None):
    # Unpickled in another process: it joins the holders of the end, then tells the
    # sender (see Connection.__reduce__).
    h = _open_end(name, end, 1, None, place, True)
    conn = Connection._adopt(h, end, place, readable, writable)
    if joined is not None:
        joined.set()
        joined.close()
    return conn


# ---- wait ---------------------------------------------------------------------------


def _is_shoal(obj):
    from .queues import _QueueBase
    return isinstance(obj, (Connection, _QueueBase))


def _fd_of(obj):
    if isinstance(obj, int):
        return obj
    if _is_shoal(obj):
        return obj._wait_fd() if not isinstance(obj, Connection) else obj.fileno()
    return obj.fileno()


def wait(object_list, timeout=None):
    """Waits until one or more of object_list is ready; returns those that are (in
    object_list's order), or [] when timeout seconds (None: no limit) pass first, as
    multiprocessing.connection.wait does. A shoal Connection is ready when poll()
    would return True, a shoal Queue when get() would not wait (a message, or the end
    of the stream); anything else when its file descriptor (an int, or fileno()) is
    readable. Shoal objects are re-checked after a wake-up: one whose message another
    process took in the meantime is not reported."""
    objs = list(object_list)
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    while True:
        fds = [_fd_of(o) for o in objs]  # syncs the shoal objects' descriptors
        ready = {id(o) for o in objs if _is_shoal(o) and o._wait_ready()}
        left = None if deadline is None else max(deadline - time.monotonic(), 0)
        got = _select(fds, 0 if ready else left)
        for o, fd in zip(objs, fds):
            if fd in got and id(o) not in ready and (not _is_shoal(o)
                                                     or o._wait_ready()):
                ready.add(id(o))
        if ready or (deadline is not None and time.monotonic() >= deadline):
            return [o for o in objs if id(o) in ready]


_Selector = getattr(selectors, "PollSelector", selectors.SelectSelector)


def _select(fds, timeout):
    """The set of fds readable within timeout seconds (None: no limit)."""
    with _Selector() as sel:
        for fd in set(fds):
            sel.register(fd, selectors.EVENT_READ)
        return {key.fd for key, _ in sel.select(timeout)}
