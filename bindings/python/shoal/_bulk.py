"""What queues and pipes send: pickles made by multiprocessing's reduction, and
messages of any size.

Pickling. Objects are pickled as multiprocessing pickles them (its ForkingPickler,
with every reducer registered there: sockets, Connections, file descriptors, shared
ctypes), through one pickler per thread that is reused (creating one per message
would cost more than the pickling).

Large messages. A ring slot holds up to the queue's or pipe's max_msg bytes. A longer
message travels in a shared-memory segment of its own: the sender creates the
segment under a fresh name, writes the message into it once, and puts in the ring a
reference of this layout

    MAGIC (11 bytes "\\0shoal-big\\0") | length (8 bytes, little-endian) | name

The receiver maps the segment, unpickles straight from the mapping (or copies the
bytes out once, for recv_bytes), then unlinks it. A message that is short but starts
with MAGIC (raw bytes can) is sent the same way, so a reference is never ambiguous.
A pickle never starts with a NUL byte. A reference whose segment is gone (its
receiver died mid-way, say) raises shoal.NotFound; a segment left behind by a dead
receiver is removed by ``shoal gc``.
"""

import copyreg
import io
import itertools
import os
import pickle
import struct
import sys
import threading
import traceback
from ctypes import byref, c_char, c_void_p, memmove, string_at

from multiprocessing.reduction import ForkingPickler

from ._lib import C, check, encode_name, speedups

_plain = speedups.plain if speedups else None
_pdumps = pickle.dumps

MAGIC = b"\0shoal-big\0"
_HEAD = struct.Struct("<Q")
_REF_MIN = len(MAGIC) + _HEAD.size
_tls = threading.local()
_counter = itertools.count()
_token = os.urandom(4).hex()


def _pickler():
    st = getattr(_tls, "pickler", None)
    n = len(ForkingPickler._extra_reducers)
    if st is None or st[2] != n:
        buf = io.BytesIO()
        p = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
        table = copyreg.dispatch_table.copy()
        table.update(ForkingPickler._extra_reducers)
        p.dispatch_table = table
        st = _tls.pickler = (p, buf, n)
    return st


def dumps(obj):
    """obj pickled with multiprocessing's reducers (plain builtin data, which no
    reducer changes, by pickle.dumps: faster)."""
    if _plain is not None and _plain(obj):
        return _pdumps(obj, pickle.HIGHEST_PROTOCOL)
    p, buf, _ = _pickler()
    buf.seek(0)
    buf.truncate()
    try:
        p.dump(obj)
    finally:
        p.clear_memo()
    return buf.getvalue()


loads = pickle.loads


def report_unpicklable(obj):
    """What multiprocessing's queue feeder does with an object it cannot pickle:
    prints the traceback on stderr and goes on. Call from an except block."""
    print("shoal: cannot pickle %s for the queue; it is dropped:"
          % type(obj).__name__, file=sys.stderr)
    traceback.print_exc()


def needs_segment(data, max_msg):
    """Whether data must travel out of line (see the module doc)."""
    return len(data) > max_msg or data[:len(MAGIC)] == MAGIC


def to_segment(data, place):
    """Writes data into a new segment; returns the reference to send."""
    pid = os.getpid()
    name = "big-%d-%d-%s" % (pid, next(_counter), _token)
    h = c_void_p()
    check(C.shm_open(byref(h), encode_name(name), 2, max(len(data), 1),
                     place.attr()), "segment %r" % name)
    try:
        memmove(C.shm_data(h), data, len(data))
    finally:
        C.shm_close(h)
    return MAGIC + _HEAD.pack(len(data)) + name.encode()


def is_ref(buf, n):
    """Whether the n bytes at buf (a ctypes buffer) are a reference."""
    return n >= _REF_MIN and string_at(buf, len(MAGIC)) == MAGIC


def drop(ref, place):
    """Removes the segment of a reference that could not be sent."""
    C.unlink(bytes(ref[_REF_MIN:]), place.attr())


def from_segment(ref, place, unpickle):
    """Takes the message a reference names: unpickles it (unpickle=True) or returns
    its bytes; removes the segment."""
    length, = _HEAD.unpack_from(ref, len(MAGIC))
    name = bytes(ref[_REF_MIN:])
    h = c_void_p()
    check(C.shm_open(byref(h), name, 1, 0, place.attr()), "segment %r" % name)
    C.unlink(name, place.attr())
    try:
        addr = C.shm_data(h)
        if unpickle:
            view = (c_char * length).from_address(addr)
            return loads(memoryview(view))
        return string_at(addr, length)
    finally:
        C.shm_close(h)

