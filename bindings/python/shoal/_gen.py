"""Support for the Python modules protoc-gen-shoal generates (``lang=python``).

A generated message class is a :class:`shoal.Struct` (a ctypes.Structure) laid out
exactly as the C struct of the same message. Its ctypes fields keep C's layout; the
schema's fields are reached through properties that convert:

- scalar fields and nested messages are plain ctypes fields (a nested message reads
  as a view into the containing struct);
- strings and bytes read as str / bytes and refuse values over their max_len;
- bools read as bool; enums as the generated IntEnum (or the bare int when the value
  is not one the schema knows — validate() reports it);
- repeated fields read as lists (of views, for messages) and refuse more than
  max_count items;
- a oneof member reads as None unless it is the member set; setting it selects it.

This module is internal: generated code calls it; its names may change with the
compiler (a generated module checks ABI below when imported).
"""

import ctypes

from . import errors
from .types import Struct, TypeDesc

# Bumped when generated code needs something new from this module.
ABI = 2


def require(abi):
    """Called by each generated module: fails clearly when this shoal is too old."""
    if abi > ABI:
        raise ImportError("this module was generated for a newer shoal Python binding "
                          "(generated ABI %d, installed %d)" % (abi, ABI))


def invalid(fmt, *args):
    raise errors.InvalidData(fmt % args if args else fmt, errors.EINVALID_DATA)


def check_utf8(s, where):
    """Raises InvalidData unless the bounded string s (its len bytes) is UTF-8, as
    protobuf requires of strings (another language may have written it)."""
    try:
        ctypes.string_at(ctypes.addressof(s) + _DATA, s.len).decode("utf-8")
    except UnicodeDecodeError:
        invalid("%s: the string is not UTF-8", where)


_strings = {}
_DATA = 4  # offset of the bytes after the uint32 length


def String(max_len):
    """The layout of a bounded string or bytes field: uint32 len, then max_len bytes."""
    cls = _strings.get(max_len)
    if cls is None:
        cls = type("String%d" % max_len, (ctypes.Structure,), {
            "_fields_": [("len", ctypes.c_uint32), ("data", ctypes.c_char * max_len)]})
        _strings[max_len] = cls
    return cls


_repeated = {}


def Repeated(elem, max_count):
    """The layout of a bounded repeated field: uint32 count, then max_count items."""
    key = (elem, max_count)
    cls = _repeated.get(key)
    if cls is None:
        cls = type("Repeated_%s_%d" % (elem.__name__, max_count), (ctypes.Structure,), {
            "_fields_": [("count", ctypes.c_uint32), ("items", elem * max_count)]})
        _repeated[key] = cls
    return cls


# ---- element converters: get(raw) -> Python value; put(holder, key, value) ----------


def _slot(holder, key):
    return holder[key] if isinstance(key, int) else getattr(holder, key)


def _store(holder, key, value):
    if isinstance(key, int):
        holder[key] = value
    else:
        setattr(holder, key, value)


class Scalar:
    def __init__(self, where):
        self.where = where

    def get(self, raw):
        return raw

    def put(self, holder, key, value):
        _store(holder, key, value)


class Bool(Scalar):
    def get(self, raw):
        return raw != 0

    def put(self, holder, key, value):
        _store(holder, key, 1 if value else 0)


class Enum(Scalar):
    def __init__(self, where, enum):
        self.where = where
        self.enum = enum
        self.known = enum._value2member_map_

    def get(self, raw):
        m = self.known.get(raw)
        return m if m is not None else raw

    def put(self, holder, key, value):
        _store(holder, key, int(value))


class Text(Scalar):
    """A string (decoded as UTF-8) or bytes field."""

    def __init__(self, where, max_len, is_str):
        self.where, self.max_len, self.is_str = where, max_len, is_str

    def get(self, s):
        n = s.len
        if n > self.max_len:
            invalid("%s: length %d over max_len %d", self.where, n, self.max_len)
        data = ctypes.string_at(ctypes.addressof(s) + _DATA, n)
        if not self.is_str:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            invalid("%s: the string is not UTF-8", self.where)

    def put(self, holder, key, value):
        if self.is_str and isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("%s: expected %s, not %s" % (
                self.where, "str" if self.is_str else "bytes", type(value).__name__))
        value = bytes(value)
        if len(value) > self.max_len:
            invalid("%s: %d bytes over max_len %d", self.where, len(value), self.max_len)
        s = _slot(holder, key)
        ctypes.memmove(ctypes.addressof(s) + _DATA, value, len(value))
        s.len = len(value)


class Nested(Scalar):
    def __init__(self, where, cls):
        self.where, self.cls = where, cls

    def put(self, holder, key, value):
        if not isinstance(value, self.cls):
            if isinstance(value, dict):
                value = self.cls(**value)
            elif isinstance(value, (tuple, list)):
                value = self.cls(*value)
            else:
                raise TypeError("%s: expected %s, not %s" % (
                    self.where, self.cls.__name__, type(value).__name__))
        _store(holder, key, value)


class List:
    """A repeated field of elements converted by elem."""

    def __init__(self, where, elem, max_count):
        self.where, self.elem, self.max_count = where, elem, max_count

    def get(self, r):
        n = r.count
        if n > self.max_count:
            invalid("%s: count %d over max_count %d", self.where, n, self.max_count)
        items, get = r.items, self.elem.get
        return [get(items[i]) for i in range(n)]

    def put(self, holder, key, values):
        values = list(values)
        if len(values) > self.max_count:
            invalid("%s: %d items over max_count %d", self.where, len(values),
                    self.max_count)
        r = _slot(holder, key)
        r.count = 0
        for i, v in enumerate(values):
            self.elem.put(r.items, i, v)
        r.count = len(values)


class Field:
    """The property of a schema field over its ctypes member `raw`, in the struct or
    (for oneof members) in the union `container`, selected by the case word."""

    def __init__(self, raw, conv, container=None, case=None, number=0, has=None):
        self.raw, self.conv, self.container = raw, conv, container
        self.case, self.number, self.has = case, number, has

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        if self.case is not None and getattr(obj, self.case) != self.number:
            return None
        holder = obj if self.container is None else getattr(obj, self.container)
        return self.conv.get(getattr(holder, self.raw))

    def __set__(self, obj, value):
        holder = obj if self.container is None else getattr(obj, self.container)
        if self.case is not None:
            if value is None:  # clears the oneof if this member is the one set
                if getattr(obj, self.case) == self.number:
                    setattr(obj, self.case, 0)
                return
            if getattr(obj, self.case) != self.number:
                ctypes.memset(ctypes.addressof(holder), 0, ctypes.sizeof(holder))
        self.conv.put(holder, self.raw, value)
        if self.case is not None:
            setattr(obj, self.case, self.number)
        if self.has is not None:
            setattr(obj, self.has, 1)


# ---- message classes -------------------------------------------------------------


class Message(Struct):
    """Base of generated message classes."""

    _shoal_names_ = ()  # schema fields in order (positional arguments)
    _shoal_defaults_ = ()  # (name, value) applied by the constructor
    _shoal_oneofs_ = ()  # (case member, ((member name, number), ...))

    def __init__(self, *args, **kwargs):
        super().__init__()
        cls = type(self)
        for name, value in self._shoal_defaults_:  # schema defaults set no has_ flag
            f = cls.__dict__.get(name)
            if isinstance(f, Field):
                f.conv.put(self, f.raw, value)
            else:
                setattr(self, name, value)
        if len(args) > len(self._shoal_names_):
            raise TypeError("%s takes at most %d positional arguments" % (
                type(self).__name__, len(self._shoal_names_)))
        for name, value in zip(self._shoal_names_, args):
            setattr(self, name, value)
        for name, value in kwargs.items():
            if not hasattr(type(self), name):
                raise TypeError("%s has no field %r" % (type(self).__name__, name))
            setattr(self, name, value)

    def validate(self):
        """Raises shoal.InvalidData naming the field when a length, count, enum value,
        bool or oneof case is out of bounds."""
        self._shoal_validate_()

    def _shoal_validate_(self):
        pass

    def to_dict(self):
        """The message as a dict of Python values (nested messages as dicts)."""
        out = {}
        for name in self._shoal_names_:
            out[name] = _plain(getattr(self, name))
        for case, members in self._shoal_oneofs_:
            which = getattr(self, case)
            for name, number in members:
                if number == which:
                    out[name] = _plain(getattr(self, name))
        return out

    def _shoal_values(self):
        return self.to_dict()

    def to_bytes(self):
        """The message in protobuf's standard encoding (what protoc's code of the same
        schema writes), after validate(): a peer needs no knowledge of shoal."""
        self.validate()
        return _pb_encode(self)

    @classmethod
    def from_bytes(cls, data):
        """A new message parsed from protobuf bytes (absent fields at their defaults,
        unknown fields skipped), validated. InvalidData names what does not decode or
        does not fit the layout (a string over max_len, more than max_count items):
        never truncation."""
        m = cls()
        _pb_decode(m, data)
        m.validate()
        return m

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


def _plain(v):
    if isinstance(v, Message):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def finish(cls, name, layout_hash, size, align, fields, members):
    """Completes a generated class: records its descriptor and checks that ctypes laid
    it out as the schema compiler did (size, alignment, every member's offset and
    size) — the Python counterpart of the C header's static assertions."""
    where = name
    if ctypes.sizeof(cls) != size or ctypes.alignment(cls) != align:
        raise ImportError("%s: ctypes lays it out in %d bytes, align %d; the schema "
                          "compiler in %d, align %d" % (where, ctypes.sizeof(cls),
                                                        ctypes.alignment(cls), size,
                                                        align))
    for raw, offset, msize in members:
        d = getattr(cls, raw)
        if d.offset != offset or d.size != msize:
            raise ImportError("%s.%s: ctypes puts it at %d+%d, the schema compiler at "
                              "%d+%d" % (where, raw, d.offset, d.size, offset, msize))
    cls._shoal_name_ = name
    cls._shoal_hash_ = layout_hash
    cls._shoal_desc_ = TypeDesc(name, layout_hash, size, align, fields)
    return cls


def union(name, layout_hash, size, align, fields):
    """The descriptor of a oneof (a case word, then the union), for layout descriptors."""
    return TypeDesc(name, layout_hash, size, align, fields)


# ---- the protobuf form of fixed messages ----------------------------------------------
#
# libshoal's table-driven encoder and decoder (shoal_pb_encode / shoal_pb_decode, the
# ones generated C code uses) work on the struct's bytes, which a generated class shares
# with C: each class gets the same table as its C counterpart, built into the C
# structures of shoal/typed.h on first use.

PB_REPEATED, PB_PACKED, PB_HAS, PB_ONEOF = 1, 2, 4, 8


class _PbField(ctypes.Structure):
    _fields_ = [("number", ctypes.c_uint32), ("type", ctypes.c_uint8),
                ("flags", ctypes.c_uint8), ("offset", ctypes.c_uint32),
                ("has_offset", ctypes.c_uint32), ("elem_size", ctypes.c_uint32),
                ("items_offset", ctypes.c_uint32), ("max_len", ctypes.c_uint32),
                ("max_count", ctypes.c_uint32), ("msg", ctypes.c_void_p),
                ("name", ctypes.c_char_p)]


class _PbMessage(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("size", ctypes.c_uint32),
                ("init", ctypes.c_void_p), ("nfields", ctypes.c_uint32),
                ("fields", ctypes.POINTER(_PbField))]


def pb(cls, fields):
    """Records a generated class's protobuf table: (number, protobuf type, PB_* flags,
    offset, has_ or case offset, element size, items offset, max_len, max_count,
    nested class or None, name) per field."""
    cls._shoal_pb_fields_ = fields
    cls._shoal_pb_ = None  # built on first use


def _pb_table(cls):
    d = cls.__dict__.get("_shoal_pb_")
    if d is not None:
        return d
    rows = cls._shoal_pb_fields_
    arr = (_PbField * max(len(rows), 1))()
    keep = [arr]
    for i, (number, ptype, flags, off, has_off, esize, ioff, max_len, max_count,
            nested, fname) in enumerate(rows):
        sub = None
        if nested is not None:
            sub = _pb_table(nested)
            keep.append(sub)
        fname = fname.encode()
        keep.append(fname)
        arr[i] = _PbField(number, ptype, flags, off, has_off, esize, ioff, max_len,
                          max_count, ctypes.addressof(sub) if sub is not None else None,
                          fname)
    init = cls()  # every field at its default
    name = cls._shoal_name_.encode()
    d = _PbMessage(name, ctypes.sizeof(cls), ctypes.addressof(init), len(rows), arr)
    d._keep = (keep, init, name)
    cls._shoal_pb_ = d
    return d


_pb_c = []  # libshoal's shoal_pb_encode and shoal_pb_decode, typed on first use


def _pb_funcs():
    if not _pb_c:
        from ._lib import lib
        enc, dec = lib.shoal_pb_encode, lib.shoal_pb_decode
        enc.restype = dec.restype = ctypes.c_int
        enc.argtypes = [ctypes.POINTER(_PbMessage), ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
        dec.argtypes = [ctypes.POINTER(_PbMessage), ctypes.c_void_p, ctypes.c_char_p,
                        ctypes.c_size_t]
        _pb_c.extend((enc, dec))
    return _pb_c


def _pb_encode(m):
    from ._lib import check
    enc = _pb_funcs()[0]
    d = _pb_table(type(m))
    n = ctypes.c_size_t()
    buf = ctypes.create_string_buffer(256)
    rc = enc(ctypes.byref(d), ctypes.addressof(m), buf, 256, ctypes.byref(n))
    if rc == errors.EMSGSIZE:
        buf = ctypes.create_string_buffer(n.value)
        rc = enc(ctypes.byref(d), ctypes.addressof(m), buf, n.value, ctypes.byref(n))
    check(rc, type(m)._shoal_name_)
    return buf.raw[:n.value]


def _pb_decode(m, data):
    from ._lib import check
    dec = _pb_funcs()[1]
    data = bytes(data)
    check(dec(ctypes.byref(_pb_table(type(m))), ctypes.addressof(m), data, len(data)),
          type(m)._shoal_name_)
