"""SharedMemory and ShareableList with multiprocessing.shared_memory's API, over
shoal's shared-memory segments.

``SharedMemory(name=None, create=False, size=0)`` is a block of bytes (``.buf``, a
memoryview) in a shoal segment of the SharedMemory kind: any process opens it by
name — a Python one with ``SharedMemory(name)``, a C one with ``shoal_shm_open`` —
in the domain of $SHOAL_ROOT / $SHOAL_DOMAIN (or ``root=`` / ``domain=``). A name may
start with "/", as POSIX shared-memory names do; the segment is named without it.
Generated names come from multiprocessing's own generator (``psm_`` and random
hex digits).

As multiprocessing's: ``close()`` unmaps the block in this process (raising
BufferError while views taken from ``buf`` are alive), ``unlink()`` removes its name
(a second unlink raises FileNotFoundError), pickling reopens it by name, and the
sizes, errors and argument checks are the same. Unlike multiprocessing's, no
resource-tracker process is involved: a block is removed by unlink(), or by
``shoal gc`` once every process that had it open is dead.

``ShareableList(sequence=None, *, name=None)`` is multiprocessing's class (every
method inherited, the same layout in memory: item count, offsets, packed items,
their formats and their decoding codes) with its block in a shoal SharedMemory.
"""

import os
import struct
import sys
from ctypes import byref, c_char, c_void_p
from multiprocessing import shared_memory as _mp_shm

from . import errors
from ._lib import C, CREATE, OPEN, OPEN_OR_CREATE, Place, check, encode_name

__all__ = ["SharedMemory", "ShareableList"]

# What multiprocessing.shared_memory exposes about its names and platform.
_SHM_NAME_PREFIX = _mp_shm._SHM_NAME_PREFIX
_USE_POSIX = True


class SharedMemory:
    """A named block of shared memory (multiprocessing.shared_memory.SharedMemory)."""

    # As multiprocessing's: a subclass may set O_CREAT here to open or create.
    _flags = os.O_RDWR
    _h = None
    _buf = None
    _view = None

    def __init__(self, name=None, create=False, size=0, *, root=None, domain=None):
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if create and size == 0:
            raise ValueError("'size' must be a positive number different from zero")
        if name is None and not create:
            raise ValueError("'name' can only be None if create=True")
        self._place = Place(root, domain)
        if create:
            mode = CREATE
        else:
            mode = OPEN_OR_CREATE if self._flags & os.O_CREAT else OPEN
        if name is None:
            while True:
                name = _mp_shm._make_filename()  # looked up each time (mockable)
                try:
                    self._open(name, mode, size)
                    break
                except FileExistsError:
                    continue
        else:
            self._open(name, mode, size)
        self._name = name

    def _open(self, name, mode, size):
        h = c_void_p()
        if mode == OPEN_OR_CREATE and size == 0:  # nothing could be created
            mode = OPEN
        seg = name[1:] if name.startswith("/") else name
        check(C.shm_open(byref(h), encode_name(seg), mode, size if mode != OPEN else 0,
                         self._place.attr()), "shared memory %r" % name)
        self._h = h
        self._size = C.shm_size(h)
        self._view = (c_char * max(self._size, 1)).from_address(C.shm_data(h))
        self._buf = memoryview(self._view).cast("B")[:self._size]
        self._refs = sys.getrefcount(self._view)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self):
        return "%s(%r, size=%d)" % (type(self).__name__, self.name, self.size)

    @property
    def buf(self):
        """The block's bytes (None once closed)."""
        return self._buf

    @property
    def name(self):
        """The block's name, without a leading "/"."""
        n = self._name
        return n[1:] if n.startswith("/") else n

    @property
    def size(self):
        """The block's size in bytes."""
        return self._size

    def close(self):
        """Unmaps the block in this process (it stays for the others)."""
        if self._h is None:
            return
        if self._buf is not None:
            self._buf.release()
            self._buf = None
        # The views taken from buf share one reference to the mapped array: it is
        # gone with the last of them. (As multiprocessing, buf is released anyway.)
        if sys.getrefcount(self._view) >= self._refs:
            raise BufferError("cannot close shared memory %r: views of its buffer "
                              "are still alive" % self.name)
        self._view = None
        h, self._h = self._h, None
        C.shm_close(h)

    def unlink(self):
        """Removes the block's name: it goes once every process has closed it.
        FileNotFoundError when the name is already gone."""
        seg = self.name
        try:
            check(C.unlink(encode_name(seg), self._place.attr()),
                  "shared memory %r" % seg)
        except errors.NotFound as e:
            raise FileNotFoundError(2, "No such shared memory block", seg) from e


class ShareableList(_mp_shm.ShareableList):
    """multiprocessing.shared_memory.ShareableList in a shoal SharedMemory."""

    def __init__(self, sequence=None, *, name=None):
        if name is not None and sequence is None:  # attach to an existing list
            self.shm = SharedMemory(name)
            self._list_len = len(self)
            self._allocated_offsets = list(struct.unpack_from(
                self._format_size_metainfo, self.shm.buf, 8))
            return
        items = list(sequence or ())
        formats = [self._slot_format(x) for x in items]
        self._list_len = len(items)
        ends = [0]
        for f in formats:
            ends.append(ends[-1] + (int(f[:-1]) if f.endswith("s") else self._alignment))
        self._allocated_offsets = ends
        layout = ("q" + self._format_size_metainfo + "".join(formats) +
                  self._format_packing_metainfo + self._format_back_transform_codes)
        self.shm = SharedMemory(name, create=True, size=struct.calcsize(layout))
        buf = self.shm.buf
        struct.pack_into("q" + self._format_size_metainfo, buf, 0, len(items), *ends)
        struct.pack_into("".join(formats), buf, self._offset_data_start,
                         *(x.encode(_mp_shm._encoding) if isinstance(x, str) else x
                           for x in items))
        struct.pack_into(self._format_packing_metainfo, buf,
                         self._offset_packing_formats, *(f.encode() for f in formats))
        struct.pack_into(self._format_back_transform_codes, buf,
                         self._offset_back_transform_codes,
                         *(self._extract_recreation_code(x) for x in items))

    def _slot_format(self, item):
        """An item's struct format: its type's, strings and bytes in a slot of the
        next multiple of 8 above their length."""
        fmt = self._types_mapping[type(item)]
        if isinstance(item, (str, bytes)):  # len: characters, as multiprocessing
            fmt = fmt % (self._alignment * (len(item) // self._alignment + 1))
        return fmt
