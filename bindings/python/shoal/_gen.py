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

An encoded message (no fixed layout) becomes instead a plain class of
:class:`Encoded`, with a table that the pure-Python protobuf codec below walks (see
"encoded messages"), and queues and pipes of it (EncodedQueue, EncodedConnection).

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


# ---- encoded messages ------------------------------------------------------------------
#
# A message without a fixed layout (an unbounded string, bytes or repeated field, a map)
# is "encoded": it travels as protobuf bytes (what protoc-c's code writes in C) through
# variable-size queues and pipes. Its generated class is a plain Python object whose
# attributes are the schema's fields; the emitter gives each class a table, one row per
# field: (attribute, number, protobuf type, label, ref, oneof, max_len, max_count), where
# label is L_IMPLICIT (proto3 scalar: written unless it holds the default), L_OPTIONAL
# (explicit presence: None when absent), L_REPEATED, L_PACKED or L_MAP, with L_CLOSED
# added for a proto2 (closed) enum; ref is the nested class, the enum class, or for a map
# (key type, value type, value ref, value closed); oneof names the field's oneof or is
# None. max_len / max_count are the (shoal.max_len) / (shoal.max_count) bounds, 0 when
# unbounded. One encoder and one decoder below walk these tables.

import struct as _struct  # noqa: E402

L_IMPLICIT, L_OPTIONAL, L_REPEATED, L_PACKED, L_MAP, L_CLOSED = 0, 1, 2, 3, 4, 8

# protobuf's FieldDescriptorProto.Type numbers
(T_DOUBLE, T_FLOAT, T_INT64, T_UINT64, T_INT32, T_FIXED64, T_FIXED32, T_BOOL, T_STRING,
 T_GROUP, T_MESSAGE, T_BYTES, T_UINT32, T_ENUM, T_SFIXED32, T_SFIXED64, T_SINT32,
 T_SINT64) = range(1, 19)

_WT_VARINT, _WT_I64, _WT_LEN, _WT_SGROUP, _WT_EGROUP, _WT_I32 = 0, 1, 2, 3, 4, 5
_FIXED = {T_DOUBLE: "<d", T_FLOAT: "<f", T_FIXED64: "<Q", T_FIXED32: "<I",
          T_SFIXED32: "<i", T_SFIXED64: "<q"}
_FIXED_PACK = {t: _struct.Struct(f) for t, f in _FIXED.items()}
_VARINT_T = frozenset((T_INT64, T_UINT64, T_INT32, T_BOOL, T_UINT32, T_ENUM, T_SINT32,
                       T_SINT64))
_RANGE = {T_INT32: (-2**31, 2**31 - 1), T_SINT32: (-2**31, 2**31 - 1),
          T_SFIXED32: (-2**31, 2**31 - 1), T_ENUM: (-2**31, 2**31 - 1),
          T_UINT32: (0, 2**32 - 1), T_FIXED32: (0, 2**32 - 1),
          T_INT64: (-2**63, 2**63 - 1), T_SINT64: (-2**63, 2**63 - 1),
          T_SFIXED64: (-2**63, 2**63 - 1), T_UINT64: (0, 2**64 - 1),
          T_FIXED64: (0, 2**64 - 1)}
_M64 = 2**64 - 1


def _wire_type(t):
    if t in _VARINT_T:
        return _WT_VARINT
    if t in (T_DOUBLE, T_FIXED64, T_SFIXED64):
        return _WT_I64
    if t in (T_FLOAT, T_FIXED32, T_SFIXED32):
        return _WT_I32
    return _WT_LEN


def _zero(t, ref):
    """protobuf's default of a scalar of type t."""
    if t == T_STRING:
        return ""
    if t == T_BYTES:
        return b""
    if t in (T_DOUBLE, T_FLOAT):
        return 0.0
    if t == T_BOOL:
        return False
    if t == T_ENUM:
        return _enum_value(ref, 0)
    if t == T_MESSAGE:
        return None
    return 0


def _enum_value(enum, v):
    m = enum._value2member_map_.get(v)
    return m if m is not None else v


class _Row:
    """One field of an encoded message's table, with what the codec needs at hand."""

    __slots__ = ("name", "number", "type", "label", "ref", "oneof", "max_len",
                 "max_count", "closed", "wt", "key", "where")

    def __init__(self, msg_name, name, number, ptype, label, ref, oneof, max_len,
                 max_count):
        self.name, self.number, self.type = name, number, ptype
        self.label, self.closed = label & 7, bool(label & L_CLOSED)
        self.ref, self.oneof = ref, oneof
        self.max_len, self.max_count = max_len, max_count
        self.wt = _wire_type(ptype)
        self.key = _varint_bytes((number << 3) | self.wt)
        self.where = "%s.%s" % (msg_name, name)

    def default(self):
        if self.label in (L_REPEATED, L_PACKED):
            return []
        if self.label == L_MAP:
            return {}
        if self.label == L_OPTIONAL:
            return None
        return _zero(self.type, self.ref)


def encoded(cls, name, rows):
    """Completes a generated encoded-message class with its table (see above)."""
    cls._shoal_name_ = name
    table = tuple(_Row(name, *r) for r in rows)
    cls._shoal_rows_ = table
    cls._shoal_wire_order_ = tuple(sorted(table, key=lambda r: r.number))  # as protoc
    cls._shoal_by_number_ = {r.number: r for r in table}
    cls._shoal_by_name_ = {r.name: r for r in table}
    groups = {}
    for r in table:
        if r.oneof is not None:
            groups.setdefault(r.oneof, []).append(r.name)
    cls._shoal_oneof_of_ = {n: tuple(groups[r.oneof]) for r in table
                            if r.oneof is not None for n in (r.name,)}
    cls._shoal_oneofs_ = {k: tuple(v) for k, v in groups.items()}
    return cls


class Encoded:
    """Base of generated encoded-message classes: plain Python objects whose
    attributes are the schema's fields (repeated fields as lists, maps as dicts,
    nested messages as instances or None, enums as the generated IntEnum or, for an
    unknown value of an open enum, the int). Setting a oneof member to a value other
    than None clears the other members of its oneof."""

    _shoal_name_ = None
    _shoal_rows_ = ()
    _shoal_by_name_ = {}
    _shoal_oneof_of_ = {}

    def __init__(self, *args, **kwargs):
        rows = self._shoal_rows_
        for r in rows:
            object.__setattr__(self, r.name, r.default())
        if len(args) > len(rows):
            raise TypeError("%s takes at most %d positional arguments"
                            % (type(self).__name__, len(rows)))
        for r, value in zip(rows, args):
            setattr(self, r.name, value)
        for name, value in kwargs.items():
            if name not in self._shoal_by_name_:
                raise TypeError("%s has no field %r" % (type(self).__name__, name))
            setattr(self, name, value)

    def __setattr__(self, name, value):
        if name not in self._shoal_by_name_:
            raise AttributeError("%s has no field %r" % (type(self).__name__, name))
        group = self._shoal_oneof_of_.get(name)
        if group is not None and value is not None:
            for other in group:
                if other != name:
                    object.__setattr__(self, other, None)
        object.__setattr__(self, name, value)

    def which_oneof(self, oneof):
        """The name of the member of oneof `oneof` that is set, or None."""
        members = self._shoal_oneofs_.get(oneof)
        if members is None:
            raise ValueError("%s has no oneof %r" % (type(self).__name__, oneof))
        for name in members:
            if getattr(self, name) is not None:
                return name
        return None

    def to_dict(self):
        """The fields as a dict of Python values (nested messages as dicts)."""
        return {r.name: _plain_enc(getattr(self, r.name)) for r in self._shoal_rows_}

    def to_bytes(self):
        """The message in protobuf's standard encoding. Raises TypeError for a value
        of the wrong type, shoal.InvalidData (naming the field) for one out of range
        or over a shoal bound."""
        out = bytearray()
        _encode(self, out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data):
        """A new message parsed from protobuf bytes: absent fields at their
        defaults, unknown fields skipped. Raises shoal.InvalidData naming the message
        and field for truncated or malformed input, a string that is not UTF-8, a
        closed enum's unknown value, or a value over a shoal bound."""
        m = cls()
        mv = memoryview(bytes(data) if not isinstance(data, bytes) else data)
        try:
            _decode(m, mv, 0, len(mv))
        except RecursionError:
            invalid("%s: messages nested too deeply", cls._shoal_name_)
        return m

    def validate(self):
        """Raises what to_bytes() would for a value it cannot write."""
        self.to_bytes()

    @classmethod
    def Queue(cls, maxsize=0, **kwargs):
        """A queue of messages of this class (an EncodedQueue, below)."""
        return EncodedQueue(cls, maxsize, **kwargs)

    @classmethod
    def Pipe(cls, **kwargs):
        """A pipe of messages of this class: its two ends,
        end 0 first (EncodedConnection, below); keyword arguments as shoal.Pipe's."""
        from .connection import Pipe
        a, b = Pipe(True, **_channel_args(kwargs))
        return EncodedConnection(cls, a), EncodedConnection(cls, b)

    @classmethod
    def pipe_open(cls, name, end, **kwargs):
        """End `end` of the pipe `name` (shoal.Connection.open's arguments)."""
        from .connection import Connection
        return EncodedConnection(cls, Connection.open(name, end, **_channel_args(kwargs)))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self):
        inner = ", ".join("%s=%r" % (r.name, getattr(self, r.name))
                          for r in self._shoal_rows_)
        return "%s(%s)" % (type(self).__name__, inner)

    def __reduce__(self):
        return (type(self).from_bytes, (self.to_bytes(),))


def _plain_enc(v):
    if isinstance(v, Encoded):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain_enc(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain_enc(x) for k, x in v.items()}
    return v


# -- encoding --


def _varint_bytes(v):
    out = bytearray()
    _put_varint(out, v)
    return bytes(out)


def _put_varint(out, v):
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _scalar_int(r, t, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("%s: expected int, not %s" % (r.where, type(v).__name__))
    v = int(v)
    lo, hi = _RANGE[t]
    if not lo <= v <= hi:
        invalid("%s: %d is out of range for its type", r.where, v)
    if t == T_ENUM and r.closed and v not in r.ref._value2member_map_:
        invalid("%s: %d is not a value of %s", r.where, v, r.ref.__name__)
    return v


def _put_value(r, t, ref, v, out):
    """Appends the encoding of one value of type t (no key)."""
    if t == T_STRING:
        if not isinstance(v, str):
            raise TypeError("%s: expected str, not %s" % (r.where, type(v).__name__))
        v = v.encode("utf-8")
        _check_len(r, len(v))
        _put_varint(out, len(v))
        out += v
    elif t == T_BYTES:
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise TypeError("%s: expected bytes, not %s" % (r.where, type(v).__name__))
        v = bytes(v)
        _check_len(r, len(v))
        _put_varint(out, len(v))
        out += v
    elif t == T_MESSAGE:
        if not isinstance(v, ref):
            raise TypeError("%s: expected %s, not %s" % (r.where, ref.__name__,
                                                         type(v).__name__))
        if isinstance(v, Message):  # a fixed message inside an encoded one
            sub = v.to_bytes()
        else:
            sub = bytearray()
            _encode(v, sub)
        _put_varint(out, len(sub))
        out += sub
    elif t == T_BOOL:
        if not isinstance(v, (bool, int)) or v not in (0, 1):
            raise TypeError("%s: expected bool, not %r" % (r.where, v))
        out.append(1 if v else 0)
    elif t in (T_FLOAT, T_DOUBLE):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError("%s: expected float, not %s" % (r.where, type(v).__name__))
        try:
            out += _FIXED_PACK[t].pack(v)
        except OverflowError:
            invalid("%s: %r is out of range for its type", r.where, v)
    else:
        v = _scalar_int(r, t, v)
        if t in _FIXED_PACK:
            out += _FIXED_PACK[t].pack(v)
        elif t == T_SINT32 or t == T_SINT64:
            _put_varint(out, ((v << 1) ^ (v >> 63)) & _M64)
        else:
            _put_varint(out, v & _M64)  # a negative int32 takes 10 bytes


def _check_len(r, n):
    if r.max_len and n > r.max_len:
        invalid("%s: %d bytes over max_len %d", r.where, n, r.max_len)


def _check_count(r, n):
    if r.max_count and n > r.max_count:
        invalid("%s: %d items over max_count %d", r.where, n, r.max_count)


def _is_default(t, v):
    if t == T_STRING or t == T_BYTES:
        return len(v) == 0
    if t in (T_FLOAT, T_DOUBLE):  # -0.0 is written, as protobuf does
        return v == 0 and _struct.pack("<d", v) == b"\0" * 8
    return v == 0


def _encode(m, out):
    for r in m._shoal_wire_order_:
        v = getattr(m, r.name)
        label, t = r.label, r.type
        if label == L_IMPLICIT or label == L_OPTIONAL:
            if v is None:
                if label == L_IMPLICIT and t != T_MESSAGE:
                    raise TypeError("%s: None is not a value of a field without "
                                    "presence" % r.where)
                continue
            if label == L_IMPLICIT and t != T_MESSAGE and _is_default(t, v):
                _put_value(r, t, r.ref, v, bytearray())  # still checks its type
                continue
            out += r.key
            _put_value(r, t, r.ref, v, out)
        elif label == L_MAP:
            if not isinstance(v, dict):
                raise TypeError("%s: expected dict, not %s" % (r.where, type(v).__name__))
            _check_count(r, len(v))
            kt, vt, vref, vclosed = r.ref
            kkey = _varint_bytes((1 << 3) | _wire_type(kt))
            vkey = _varint_bytes((2 << 3) | _wire_type(vt))
            for k, x in v.items():
                entry = bytearray(kkey)
                _put_value(r, kt, None, k, entry)
                if x is None:
                    raise TypeError("%s: None is not a map value" % r.where)
                entry += vkey
                _put_value(r, vt, vref, x, entry)
                out += _varint_bytes((r.number << 3) | _WT_LEN)
                _put_varint(out, len(entry))
                out += entry
        else:
            if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
                raise TypeError("%s: expected a list, not %s" % (r.where,
                                                                 type(v).__name__))
            v = list(v)
            _check_count(r, len(v))
            if label == L_PACKED:
                if v:
                    body = bytearray()
                    for x in v:
                        _put_value(r, t, r.ref, x, body)
                    out += _varint_bytes((r.number << 3) | _WT_LEN)
                    _put_varint(out, len(body))
                    out += body
            else:
                for x in v:
                    if x is None:
                        raise TypeError("%s: None in a repeated field" % r.where)
                    out += r.key
                    _put_value(r, t, r.ref, x, out)


# -- decoding --


def _bad(where, what):
    invalid("%s: %s", where, what)


def _get_varint(buf, pos, end, where):
    if pos < end and buf[pos] < 0x80:  # one byte: most keys and small values
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= end:
            _bad(where, "truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if shift == 63 and b > 1:
                _bad(where, "varint over 64 bits")
            return result, pos
        shift += 7
        if shift > 63:
            _bad(where, "varint longer than 10 bytes")


def _skip(buf, pos, end, wt, number, where):
    """The position after an unknown field's value."""
    if wt == _WT_VARINT:
        return _get_varint(buf, pos, end, where)[1]
    if wt == _WT_I64:
        n = 8
    elif wt == _WT_I32:
        n = 4
    elif wt == _WT_LEN:
        n, pos = _get_varint(buf, pos, end, where)
    elif wt == _WT_SGROUP:
        while True:
            key, pos = _get_varint(buf, pos, end, where)
            if key & 7 == _WT_EGROUP:
                if key >> 3 != number:
                    _bad(where, "mismatched group end")
                return pos
            pos = _skip(buf, pos, end, key & 7, key >> 3, where)
    else:
        _bad(where, "bad wire type %d" % wt)
    if pos + n > end:
        _bad(where, "truncated field %d" % number)
    return pos + n


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _get_value(r, t, ref, closed, buf, pos, end, into=None):
    """Reads one value of type t at pos (no key); returns (value, new pos). into: the
    message to merge a repeated occurrence of a singular message into."""
    where = r.where
    if t in _FIXED_PACK:
        p = _FIXED_PACK[t]
        if pos + p.size > end:
            _bad(where, "truncated")
        return p.unpack_from(buf, pos)[0], pos + p.size
    if t in _VARINT_T:
        v, pos = _get_varint(buf, pos, end, where)
        if t == T_INT32:
            v = _signed(v, 32)
        elif t == T_INT64:
            v = _signed(v, 64)
        elif t == T_UINT32:
            v &= 0xFFFFFFFF
        elif t == T_BOOL:
            v = v != 0
        elif t == T_SINT32:
            v &= 0xFFFFFFFF
            v = (v >> 1) ^ -(v & 1)
        elif t == T_SINT64:
            v = (v >> 1) ^ -(v & 1)
        elif t == T_ENUM:
            v = _signed(v, 32)
            m = ref._value2member_map_.get(v)
            if m is None and closed:
                _bad(where, "%d is not a value of %s" % (v, ref.__name__))
            v = m if m is not None else v
        return v, pos
    n, pos = _get_varint(buf, pos, end, where)
    if pos + n > end:
        _bad(where, "length %d runs past the end of the data" % n)
    stop = pos + n
    if t == T_STRING:
        _check_len(r, n)
        try:
            return str(buf[pos:stop], "utf-8"), stop
        except UnicodeDecodeError:
            _bad(where, "the string is not UTF-8")
    if t == T_BYTES:
        _check_len(r, n)
        return bytes(buf[pos:stop]), stop
    if issubclass(ref, Message):  # a fixed message inside an encoded one
        return ref.from_bytes(buf[pos:stop]), stop
    m = into if into is not None else ref()
    _decode(m, buf, pos, stop)
    return m, stop


def _decode(m, buf, pos, end):
    by_number = m._shoal_by_number_
    name = m._shoal_name_
    while pos < end:
        key, pos = _get_varint(buf, pos, end, name)
        number, wt = key >> 3, key & 7
        if number == 0:
            _bad(name, "field number 0")
        r = by_number.get(number)
        if r is None:
            pos = _skip(buf, pos, end, wt, number, name)
            continue
        label, t = r.label, r.type
        if label == L_MAP:
            if wt != _WT_LEN:
                _bad(r.where, "wire type %d, expected 2" % wt)
            n, pos = _get_varint(buf, pos, end, r.where)
            if pos + n > end:
                _bad(r.where, "length %d runs past the end of the data" % n)
            k, x = _map_entry(r, buf, pos, pos + n)
            d = getattr(m, r.name)
            d[k] = x
            _check_count(r, len(d))
            pos += n
            continue
        if label in (L_REPEATED, L_PACKED):
            lst = getattr(m, r.name)
            if wt == _WT_LEN and r.wt != _WT_LEN:  # packed (accepted either way)
                n, pos = _get_varint(buf, pos, end, r.where)
                stop = pos + n
                if stop > end:
                    _bad(r.where, "length %d runs past the end of the data" % n)
                while pos < stop:
                    v, pos = _get_value(r, t, r.ref, r.closed, buf, pos, stop)
                    lst.append(v)
                if pos != stop:
                    _bad(r.where, "packed values overrun their length")
            elif wt == r.wt:
                v, pos = _get_value(r, t, r.ref, r.closed, buf, pos, end)
                lst.append(v)
            else:
                _bad(r.where, "wire type %d, expected %d" % (wt, r.wt))
            _check_count(r, len(lst))
            continue
        if wt != r.wt:
            _bad(r.where, "wire type %d, expected %d" % (wt, r.wt))
        into = getattr(m, r.name) if t == T_MESSAGE else None
        v, pos = _get_value(r, t, r.ref, r.closed, buf, pos, end, into)
        setattr(m, r.name, v)


def _map_entry(r, buf, pos, end):
    kt, vt, vref, vclosed = r.ref
    kwt, vwt = _wire_type(kt), _wire_type(vt)
    k = _zero(kt, None)
    x = None
    while pos < end:
        key, pos = _get_varint(buf, pos, end, r.where)
        number, wt = key >> 3, key & 7
        if number == 1 and wt == kwt:
            k, pos = _get_value(r, kt, None, False, buf, pos, end)
        elif number == 2 and wt == vwt:
            x, pos = _get_value(r, vt, vref, vclosed, buf, pos, end, x)
        elif number in (1, 2):
            _bad(r.where, "map entry: wire type %d for field %d" % (wt, number))
        else:
            pos = _skip(buf, pos, end, wt, number, r.where)
    if x is None:
        x = vref() if vt == T_MESSAGE else _zero(vt, vref)
    return k, x


# -- channels --


def _channel_args(kwargs):
    kwargs = dict(kwargs)
    if kwargs.get("max_msg") is None and kwargs.get("create") is not False:
        kwargs["max_msg"] = MAX_MSG
    return kwargs


# The default largest encoded message of a queue or pipe (C's SHOAL_GEN_MAX_MSG).
MAX_MSG = 4096


def _packed(cls, m, max_msg, what, name):
    """m's protobuf bytes for the channel `what` `name`, checked against its class
    and the channel's max_msg (never out of line: C reads every message)."""
    if not isinstance(m, cls):
        raise TypeError("expected %s, not %s" % (cls.__name__, type(m).__name__))
    data = m.to_bytes()
    if len(data) > max_msg:
        raise errors.MessageTooLarge("%s %r: %s of %d bytes; its max_msg is %d" % (
            what, name, cls._shoal_name_, len(data), max_msg), errors.EMSGSIZE)
    return data


class EncodedQueue:
    """A queue of encoded messages of one class: each travels as its protobuf bytes
    in a variable-size shoal queue, which C code opens with Foo_queue_open and uses
    with Foo_queue_put / Foo_queue_get. put() raises shoal.MessageTooLarge for a
    message over the queue's max_msg (default MAX_MSG, as C's); get() validates what
    it receives (shoal.InvalidData; the message is consumed). Other methods (qsize,
    empty, shutdown, close, ...) are the underlying shoal.Queue's, which `queue`
    holds. The queue is bounded (maxsize <= 0 gives shoal.DEFAULT_CAPACITY slots), so
    that a C process sees every message."""

    def __init__(self, cls, maxsize=0, **kwargs):
        from .queues import DEFAULT_CAPACITY, Queue
        self.cls = cls
        if isinstance(maxsize, Queue):
            self.queue = maxsize
        else:
            self.queue = Queue(maxsize if maxsize > 0 else DEFAULT_CAPACITY,
                               **_channel_args(kwargs))

    def put(self, m, block=True, timeout=None):
        data = _packed(self.cls, m, self.queue.max_msg, "queue", self.queue.name)
        self.queue.put_bytes(data, block, timeout)

    def put_nowait(self, m):
        self.put(m, False)

    def get(self, block=True, timeout=None):
        return self.cls.from_bytes(self.queue.get_bytes(block, timeout))

    def get_nowait(self):
        return self.get(False)

    def __getattr__(self, name):
        return getattr(self.queue, name)

    def __reduce__(self):
        return (EncodedQueue, (self.cls, self.queue))


class EncodedConnection:
    """One end of a pipe of encoded messages (see EncodedQueue): send(m) and recv()
    move one message as its protobuf bytes; C uses Foo_pipe_send / Foo_pipe_recv.
    Other methods (poll, close, ...) are the shoal.Connection's (`conn`)."""

    def __init__(self, cls, conn):
        self.cls, self.conn = cls, conn

    def send(self, m):
        self.conn.send_bytes(_packed(self.cls, m, self.conn._cap(), "pipe",
                                     self.conn.name))

    def recv(self):
        return self.cls.from_bytes(self.conn.recv_bytes())

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def __reduce__(self):
        return (EncodedConnection, (self.cls, self.conn))
