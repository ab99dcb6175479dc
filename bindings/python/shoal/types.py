"""Element types: the array-module typecodes and described structs.

A typecode ('i', 'd', ...) has the same fixed size in every language (unlike C's
``long``): b B h H i I l L q Q f d c, with 'l'/'q' int64 and 'L'/'Q' uint64. ctypes
simple types (c_int, c_double, ...) are accepted for their typecode.

Structs are ctypes.Structure subclasses. Those the schema compiler generates derive
from :class:`Struct` and carry their schema name, layout hash and field descriptors,
so C and every other language agree on the layout (opening an object with another
layout raises shoal.LayoutMismatch). A plain ctypes.Structure works too: its name is
its qualified class name and its layout hash is computed from its fields.
"""

import ctypes

from ._lib import C, shoal_field, shoal_type

TYPECODES = {
    "b": ctypes.c_int8, "B": ctypes.c_uint8, "h": ctypes.c_int16, "H": ctypes.c_uint16,
    "i": ctypes.c_int32, "I": ctypes.c_uint32, "l": ctypes.c_int64, "L": ctypes.c_uint64,
    "q": ctypes.c_int64, "Q": ctypes.c_uint64, "f": ctypes.c_float, "d": ctypes.c_double,
    "c": ctypes.c_char,
}
_INTEGER = frozenset("bBhHiIlLqQc")

# shoal_field_kind numbers (runtime/include/shoal/type.h)
(F_INT8, F_UINT8, F_INT16, F_UINT16, F_INT32, F_UINT32, F_INT64, F_UINT64, F_FLOAT,
 F_DOUBLE, F_BOOL, F_CHAR, F_ENUM, F_STRING, F_BYTES, F_MESSAGE, F_UNION) = range(1, 18)

_FNV_OFFSET = 0xcbf29ce484222325


def fnv1a(data, h=_FNV_OFFSET):
    """FNV-1a-64, as libshoal and the schema compiler compute layout hashes."""
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


class Struct(ctypes.Structure):
    """Base of the struct types the schema compiler generates (through
    shoal._gen.Message, which records each class's schema name, layout hash and
    field descriptors in ``_shoal_desc_``). A hand-written subclass may instead set
    ``_shoal_name_`` and ``_shoal_hash_`` (and ``_shoal_fields_``: tuples of name,
    number, kind, offset, size, max_count, max_len, nested type or None) to match a
    C type; without them its name and hash are derived from its fields."""

    _shoal_name_ = None
    _shoal_hash_ = None

    def validate(self):
        """Raises shoal.InvalidData when a length, count or enum value is out of
        bounds. Generated subclasses implement the checks."""

    @classmethod
    def Queue(cls, maxsize=0, **kwargs):
        """A shoal.TypedQueue of this type (see shoal.TypedQueue for the arguments)."""
        from .queues import TypedQueue
        return TypedQueue(cls, maxsize, **kwargs)

    @classmethod
    def Value(cls, *args, **kwargs):
        """A shoal.Value holding this type: Value(*field values, lock=..., name=...)."""
        from .sharedctypes import Value
        return Value(cls, *args, **kwargs)

    @classmethod
    def Array(cls, size_or_initializer, **kwargs):
        """A shoal.Array of this type."""
        from .sharedctypes import Array
        return Array(cls, size_or_initializer, **kwargs)

    def _shoal_values(self):
        return {name: getattr(self, name) for name, *_ in self._fields_}

    def __repr__(self):
        inner = ", ".join("%s=%r" % kv for kv in self._shoal_values().items())
        return "%s(%s)" % (type(self).__name__, inner)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return bytes(self) == bytes(other)

    def __hash__(self):
        return hash(bytes(self))


_simple_base = ctypes.c_int.__mro__[1]  # _SimpleCData


def _ctypes_code(ct):
    code = getattr(ct, "_type_", None)
    if isinstance(code, str) and code in TYPECODES and \
            ctypes.sizeof(TYPECODES[code]) == ctypes.sizeof(ct):
        return code
    return None


def _auto_descriptor(cls):
    """Name, hash and field list for a plain ctypes.Structure."""
    parts = []
    for f in cls._fields_:
        fname, ftype = f[0], f[1]
        desc = getattr(cls, fname)
        parts.append("%s:%s/%d@%d" % (fname, getattr(ftype, "__name__", "?"),
                                      desc.size, desc.offset))
    name = cls.__qualname__[:63]
    text = "%s{%s}size=%d" % (name, ";".join(parts), ctypes.sizeof(cls))
    return name, fnv1a(text.encode())


class TypeDesc:
    """A layout descriptor as the schema compiler states it: name, layout hash, size,
    alignment and fields (tuples of name, number, kind, offset, size, max_count,
    max_len, nested type — a Struct class, a TypeDesc or None)."""

    __slots__ = ("name", "layout_hash", "size", "align", "fields", "_ctype")

    def __init__(self, name, layout_hash, size, align, fields=()):
        self.name, self.layout_hash = name, layout_hash
        self.size, self.align = size, align
        self.fields = tuple(fields)
        self._ctype = None


def _desc_of(x):
    """The TypeDesc of a Struct class (declared or derived), or x itself."""
    if isinstance(x, TypeDesc):
        return x
    d = x.__dict__.get("_shoal_desc_")
    if d is not None:
        return d
    name, lhash = x.__dict__.get("_shoal_name_"), x.__dict__.get("_shoal_hash_")
    if name is None or lhash is None:
        name, lhash = _auto_descriptor(x)
    d = TypeDesc(name, lhash, ctypes.sizeof(x), ctypes.alignment(x),
                 x.__dict__.get("_shoal_fields_") or ())
    x._shoal_desc_ = d
    return d


def _build_ctype(x):
    """The shoal_type describing a struct class or TypeDesc (built once, kept)."""
    d = _desc_of(x)
    if d._ctype is not None:
        return d._ctype
    fields = (shoal_field * max(len(d.fields), 1))()
    keep = []
    for i, (fname, number, kind, offset, size, max_count, max_len, nested) in \
            enumerate(d.fields):
        fb = fname.encode()
        keep.append(fb)
        nested_t = ctypes.pointer(_build_ctype(nested)) if nested is not None else None
        fields[i] = shoal_field(fb, number, kind, offset, size, max_count, max_len,
                                nested_t)
    nb = d.name.encode()
    t = shoal_type(nb, d.layout_hash, d.size, d.align, b"\0", len(d.fields), fields)
    t._keep = (nb, keep, fields)  # the C side holds pointers into these
    d._ctype = t
    return t


class ElemType:
    """An element type resolved for libshoal: ctype (the Python ctypes class),
    ptr (a shoal_type pointer), code (typecode or None), size and key (what a pickle
    carries to name it again)."""

    __slots__ = ("ctype", "ptr", "code", "size", "key", "name")

    def __init__(self, ctype, ptr, code, key, name):
        self.ctype, self.ptr, self.code, self.key, self.name = ctype, ptr, code, key, name
        self.size = ctypes.sizeof(ctype)

    @property
    def is_struct(self):
        return self.code is None

    @property
    def is_integer(self):
        return self.code in _INTEGER


_by_code = {}


def elem_type(spec):
    """Resolves a typecode, ctypes simple type or struct class into an ElemType."""
    if isinstance(spec, ElemType):
        return spec
    if isinstance(spec, str):
        t = _by_code.get(spec)
        if t is None:
            if spec not in TYPECODES:
                raise TypeError("unknown typecode %r (use one of %s)" %
                                (spec, " ".join(TYPECODES)))
            ptr = C.typecode(spec.encode())
            t = ElemType(TYPECODES[spec], ptr, spec, spec, ptr.contents.name.decode())
            _by_code[spec] = t
        return t
    if isinstance(spec, type) and issubclass(spec, _simple_base):
        code = _ctypes_code(spec)
        if code is None:
            raise TypeError("ctypes type %s has no shoal typecode" % spec.__name__)
        return elem_type(code)
    if isinstance(spec, type) and issubclass(spec, ctypes.Structure):
        ct = _build_ctype(spec)
        return ElemType(spec, ctypes.pointer(ct), None, spec, ct.name.decode())
    raise TypeError("expected a typecode, a ctypes type or a ctypes.Structure, not %r"
                    % (spec,))


def from_handle_type(tptr):
    """The ElemType of a scalar an object holds (opened without a type)."""
    t = tptr.contents
    code = t.typecode.decode() if t.typecode not in (b"", b"\0") else None
    if code is None:
        raise TypeError("the object holds struct %s: pass its Python type to open it"
                        % t.name.decode())
    return elem_type(code)


def layout_hash(cls):
    """The layout hash libshoal records for a struct class (or a typecode)."""
    t = elem_type(cls)
    return t.ptr.contents.layout_hash

