"""Value and Array: typed scalars, structs and fixed-length arrays in shared memory,
with multiprocessing's API.

``Value(typecode_or_type, *args, lock=True, name=None, create=None, root=None,
domain=None)`` and ``Array(typecode_or_type, size_or_initializer, lock=True, ...)``:

- ``lock=True`` (default): a robust recursive lock inside the object; ``.value``,
  indexing and slicing take it, ``get_lock()`` returns it for compound updates
  (``with v.get_lock(): v.value += 1``);
- ``lock=False``: no lock (RawValue / RawArray): raw access, as multiprocessing's
  raw ctypes objects;
- ``lock=<shoal.Lock or shoal.RLock>``: that lock guards the object, in every
  process that opens it.

``name``/``create``/``root``/``domain`` are as for every shoal object (see
shoal.sync). Opening an existing object with another type raises
shoal.LayoutMismatch naming both types; with another length, for arrays, too.

Beyond multiprocessing: integer Values and Arrays have lock-free atomics
(``fetch_add``, ``exchange``, ``compare_exchange``, ``load``, ``store``), since
``v.value += 1`` is not atomic even with the lock (the read and the write take it
separately); a struct Value reads consistently without the lock (``snapshot()``) and
is updated in place with ``with v.modify() as s: ...``.

As in multiprocessing, ``lock=False`` (and RawValue / RawArray) returns the plain
ctypes object, in place in shared memory (no get_lock / get_obj); it still pickles by
name through multiprocessing's reduction (Process arguments, shoal queues and pipes),
and ``owner_of(obj)`` gives the shoal object behind it (its name, close()). A Value of
a ctypes Structure exposes the fields (``Value(Point, 1, 2).x``), each read or
written under the lock. ``copy(obj)`` and ``synchronized(obj, lock=None)`` are
multiprocessing.sharedctypes' functions.
"""

import ctypes
import pickle
import threading
from contextlib import contextmanager
from ctypes import byref, c_int64, c_size_t, c_void_p

from . import errors
from ._lib import (
    C, F, LOCK_CALLER, LOCK_NONE, LOCK_RLOCK, Place, check, encode_name, error,
    open_mode, proc as _proc, speedups as _speedups,
)
from ._object import SharedObject, decode
from .sync import GuardedByLock, Lock
from .types import elem_type, from_handle_type

__all__ = ["Value", "Array", "RawValue", "RawArray", "copy", "synchronized", "owner_of"]

_try_acquire = F.lock_try  # never waits: it holds the GIL
_lock_release = F.lock_release
_value_add = F.value_add
_EOWNERDEAD, _EDEADLK = errors.EOWNERDEAD, errors.EDEADLK
_get_ident = threading.get_ident


def _lock_attr(place, lock):
    """The shoal_attr for multiprocessing's lock argument (None: a new RLock, as
    True)."""
    if lock is True or lock is None:
        return place.attr(LOCK_RLOCK)
    if lock is False:
        return place.attr(LOCK_NONE)
    if isinstance(lock, Lock):
        if lock._owner is not None or lock.name is None:
            raise TypeError("lock must be a named shoal Lock or RLock, not the lock of "
                            "another object")
        return place.attr(LOCK_CALLER, lock._handle())
    if hasattr(lock, "acquire"):
        raise TypeError("lock must be True, False, None or a shoal Lock/RLock, not %s "
                        "(multiprocessing locks cannot guard shoal objects)"
                        % type(lock).__name__)
    # multiprocessing fails looking up lock.acquire: an AttributeError.
    raise AttributeError("lock must be True, False, None or a shoal Lock/RLock, not %r "
                         "(multiprocessing locks cannot guard shoal objects)" % (lock,))


# ---- raw objects: plain ctypes objects in shared memory ------------------------------


def owner_of(obj):
    """The shoal Value or Array behind a raw ctypes object (lock=False, RawValue,
    RawArray, get_obj()), or None."""
    return getattr(obj, "_shoal_owner", None)


def _raw_view(owner):
    """The ctypes object, in place, of a Value or Array without a lock."""
    if isinstance(owner, Array):
        view = (owner._ct * owner._len).from_address(C.array_data(owner._handle()))
    else:
        view = owner._ct.from_address(C.value_data(owner._handle()))
    view._shoal_owner = owner  # keeps the mapping alive as long as the view
    _register_raw(type(view))
    return view


def _rebuild_raw(owner):
    return _raw_view(owner)


_registered = set()


def _register_raw(ctype):
    """Makes multiprocessing's reduction pickle raw objects of ctype by name (the
    receiver maps the same memory); other objects of that type keep their own
    reduction (multiprocessing's shared ctypes, or a copy)."""
    if ctype in _registered:
        return
    from multiprocessing.reduction import ForkingPickler
    previous = ForkingPickler._extra_reducers.get(ctype)

    def reduce(obj):
        owner = getattr(obj, "_shoal_owner", None)
        if owner is not None:
            return (_rebuild_raw, (owner,))
        if previous is not None:
            return previous(obj)
        return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

    ForkingPickler.register(ctype, reduce)
    _registered.add(ctype)


def copy(obj):
    """A new raw object in shared memory holding a copy of ctypes object obj
    (multiprocessing.sharedctypes.copy)."""
    if isinstance(obj, _Locked):
        obj = obj.get_obj()
    ct = type(obj)
    if issubclass(ct, ctypes.Array):
        new = RawArray(ct._type_, len(obj))
    else:
        new = RawValue(ct)
    ctypes.memmove(ctypes.addressof(new), ctypes.addressof(obj), ctypes.sizeof(obj))
    return new


def synchronized(obj, lock=None, ctx=None):
    """A raw object (or a ctypes object made by shoal) guarded by a lock, as
    multiprocessing.sharedctypes.synchronized: .value, indexing and the fields are
    read and written under it; get_lock(), get_obj(), acquire(), release(), with."""
    if isinstance(obj, _Locked):
        return obj
    if owner_of(obj) is None:
        raise TypeError("synchronized() needs a shoal raw object (RawValue, RawArray, "
                        "lock=False), not %s" % type(obj).__name__)
    from .sync import RLock
    return Synchronized(obj, lock if lock is not None else RLock())


class Synchronized(GuardedByLock):
    """What synchronized() returns (see there). Pickles by name."""

    def __init__(self, obj, lock):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_lock", lock)

    def __reduce__(self):
        return (synchronized, (self._obj, self._lock))

    def get_obj(self):
        return self._obj

    def get_lock(self):
        return self._lock

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        with self._lock:
            return getattr(self._obj, name)

    def __setattr__(self, name, x):
        with self._lock:
            setattr(self._obj, name, x)

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, i):
        with self._lock:
            return self._obj[i]

    def __setitem__(self, i, x):
        with self._lock:
            self._obj[i] = x

    def __repr__(self):
        return "<shoal.Synchronized wrapper for %r>" % (self._obj,)


class _PyValueBase:
    """Value's access in Python: the fallback of shoal._speedups.ValueBase, whose
    `value` does the scalar fast path in C and calls the same methods otherwise."""

    _lock_obj = None
    value = property(lambda self: self._value_slow(),
                     lambda self, x: self._value_slow_set(x),
                     doc="The value (under the lock, if the object has one). Structs: "
                         "a copy.")


class _PyArrayBase:
    """Array's indexing in Python: the fallback of shoal._speedups.ArrayBase."""

    _lock_obj = None

    def __getitem__(self, i):
        return self._getitem_slow(i)

    def __setitem__(self, i, x):
        self._setitem_slow(i, x)


_ValueBase = _speedups.ValueBase if _speedups else _PyValueBase
_ArrayBase = _speedups.ArrayBase if _speedups else _PyArrayBase


def _set_fast(obj, pid, address, lock, code, n=1):
    """Hands the C fast path where obj's scalars are (and their lock, None: none)."""
    if _speedups:
        obj._cdata, obj._clock, obj._cpid = address, lock.value if lock else 0, pid
        obj._ccode = ord(code) if code and _speedups.fast_code(code) else 0
        obj._clen = n


class _Locked(SharedObject):
    """What Value and Array share: the lock."""

    _get_lock_fn = None

    def _lock_handle(self):
        return type(self)._get_lock_fn(self._handle())

    def get_lock(self):
        """The object's lock (a shoal RLock unless created with another)."""
        if self._lock_obj is None:
            h = self._lock_handle()
            if not h:
                raise AttributeError("%s %r has no lock (created with lock=False)"
                                     % (self._what, self._name))
            self._lock_obj = Lock._wrap(h, self)
        return self._lock_obj

    def acquire(self, *args, **kwargs):
        return self.get_lock().acquire(*args, **kwargs)

    def release(self):
        self.get_lock().release()

    # `with v:` holds the lock, as multiprocessing's synchronized wrappers do.
    def __enter__(self):
        return self.get_lock().__enter__()

    def __exit__(self, *exc):
        return self.get_lock().__exit__(*exc)

    @property
    def has_lock(self):
        return bool(self._lock_handle())

    def _before_close(self):
        self._lock_obj = None
        self._fast_at = None
        if _speedups:
            self._cdata = 0


# ---- Value -------------------------------------------------------------------------


class Value(_ValueBase, _Locked):
    """A typed scalar or struct in shared memory (multiprocessing.Value)."""

    _what = "value"
    _closer = C.value_close
    _get_lock_fn = C.value_get_lock

    def __new__(cls, typecode_or_type=None, *args, lock=True, **kwargs):
        if cls is Value and isinstance(typecode_or_type, type) and issubclass(
                typecode_or_type, ctypes.Structure):
            cls = _struct_value_class(typecode_or_type)
        obj = super().__new__(cls)
        if lock is False:  # multiprocessing: the plain ctypes object
            obj.__init__(typecode_or_type, *args, lock=False, **kwargs)
            return _raw_view(obj)
        return obj

    def __init__(self, typecode_or_type, *args, lock=True, name=None, create=None,
                 root=None, domain=None):
        place = Place(root, domain)
        attr = _lock_attr(place, lock)
        if typecode_or_type is None:
            if create is not False:
                raise TypeError("a type is needed to create a Value")
            self._open(None, name, create, place, attr, None)
            return
        et = elem_type(typecode_or_type)
        if isinstance(lock, Lock):
            self._lock_obj = lock  # get_lock() returns the caller's own object
        init = None
        if args:
            init = et.ctype(*args)
            if et.is_struct and hasattr(init, "validate"):
                init.validate()
        self._open(et, name, create, place, attr, init)

    def _open(self, et, name, create, place, attr, init):
        out = c_void_p()
        rc = C.value_open(byref(out), encode_name(name), open_mode(create),
                          et.ptr if et else None,
                          byref(init) if init is not None else None, attr)
        check(rc, "value %r" % name)
        self._attach(out.value, place)
        self._name = decode(C.value_name(out.value))
        if et is None:
            et = from_handle_type(C.value_type(out.value))
        self._setup(et)

    def _setup(self, et):
        self._et = et
        self._ct = et.ctype
        self._fast_at = None  # scalars: (pid, handle, view, lock) of this process

    def _scalar(self):
        """For a scalar: the value in place as a ctypes object, and its lock's handle
        (None without a lock), valid in this process."""
        h = self._handle()
        addr = C.value_data(h)
        view = self._ct.from_address(addr)
        lk = C.value_get_lock(h)
        st = self._fast_at = (_proc.pid, h, view, c_void_p(lk) if lk else None)
        _set_fast(self, _proc.pid, addr, st[3], self._et.code)
        return st

    def _reopen(self):
        out = c_void_p()
        check(C.value_open(byref(out), encode_name(self._name), open_mode(False),
                           self._et.ptr, None, self._place.attr()), self._what)
        return out.value

    def __reduce__(self):
        cls = Value if type(self) in _struct_classes.values() else type(self)
        return (_reopen_value, (cls, self._name, self._place, self._et.key))

    # -- access --
    #
    # A scalar is read and written in place, under its lock taken without releasing the
    # GIL when it is free (a single aligned load or store, as libshoal's own); when
    # the lock is held elsewhere, libshoal waits for it with the GIL released. A plain
    # caller Lock already held by this thread is not taken again (as libshoal does).

    def _value_slow(self):
        """The value (under the lock, if the object has one). Structs: a copy."""
        st = self._fast_at
        if st is None or st[0] != _proc.pid or st[1] != self._h:
            if self._et.is_struct:
                out = self._ct()
                C.value_read(self._handle(), byref(out))
                return out
            st = self._scalar()
        view, lk = st[2], st[3]
        if lk is None:
            return view.value
        o = self._lock_obj
        if o is not None and o._held_tid == _get_ident() and o._held_pid == _proc.pid:
            return view.value  # this thread holds it (with v.get_lock(): ...)
        rc = _try_acquire(lk)
        if rc == 0 or rc == _EOWNERDEAD:
            x = view.value
            _lock_release(lk)
            return x
        if rc == _EDEADLK:
            return view.value
        tmp = self._ct()
        C.value_read(self._h, byref(tmp))
        return tmp.value

    def _value_slow_set(self, x):
        st = self._fast_at
        if st is None or st[0] != _proc.pid or st[1] != self._h:
            if self._et.is_struct:
                if not isinstance(x, self._ct):
                    x = self._ct(*x) if isinstance(x, (tuple, list)) else self._ct(**x)
                if hasattr(x, "validate"):
                    x.validate()
                C.value_write(self._handle(), byref(x))
                return
            st = self._scalar()
        view, lk = st[2], st[3]
        if lk is None:
            view.value = x
            return
        o = self._lock_obj
        if o is not None and o._held_tid == _get_ident() and o._held_pid == _proc.pid:
            view.value = x
            return
        rc = _try_acquire(lk)
        if rc == 0 or rc == _EOWNERDEAD:
            try:
                view.value = x
            finally:
                _lock_release(lk)
        elif rc == _EDEADLK:
            view.value = x
        else:
            C.value_write(self._h, byref(self._ct(x)))

    def snapshot(self):
        """Reads the value without the lock and without blocking writers; never torn."""
        out = self._ct()
        C.value_snapshot(self._handle(), byref(out))
        return out if self._et.is_struct else out.value

    def get_obj(self):
        """The value as a ctypes object in shared memory (scalars; a struct gives a
        snapshot copy, since its storage moves with each write)."""
        if self._et.is_struct:
            return self.snapshot()
        obj = self._ct.from_address(C.value_data(self._handle()))
        obj._shoal_owner = self
        return obj

    @contextmanager
    def modify(self):
        """In-place update of a struct, under the lock:
        ``with v.modify() as s: s.qty += 1`` — a private copy, published atomically
        at the end; discarded if the block raises or the result fails validation.
        (A scalar is changed in place at once: use .value or the atomics.)"""
        h = self._handle()
        lock = self.get_lock() if self._lock_handle() else None
        if lock is not None:
            lock.acquire()
        try:
            p = C.value_modify(h)
            obj = self._ct.from_address(p)
            try:
                yield obj
                if hasattr(obj, "validate"):
                    obj.validate()
            except BaseException:
                if self._et.is_struct:  # publish the current value unchanged
                    ctypes.memmove(p, C.value_data(h), ctypes.sizeof(self._ct))
                    C.value_commit(h)
                raise
            check(C.value_commit(h), self._what)
        finally:
            if lock is not None:
                lock.release()

    # -- integer atomics --

    def fetch_add(self, delta=1):
        """Atomically adds delta; returns the previous value (integers only)."""
        if _speedups:
            h = self._h
            if h is None or self._pid != _proc.pid:
                h = self._handle()
            rc, old = _speedups.value_add(h, delta)
            if rc:
                raise error(rc, self._what)
            return old
        old = c_int64()
        rc = _value_add(self._fast(), c_int64(delta), byref(old))
        if rc:
            raise error(rc, self._what)
        return old.value

    def exchange(self, new):
        """Atomically stores new; returns the previous value."""
        old = c_int64()
        rc = F.value_exchange(self._fast(), c_int64(new), byref(old))
        if rc:
            raise error(rc, self._what)
        return old.value

    def compare_exchange(self, expected, desired):
        """Stores desired if the value equals expected. Returns (True, expected) on
        success, else (False, the current value)."""
        exp = c_int64(expected)
        rc = F.value_cas(self._fast(), byref(exp), c_int64(desired))
        if rc == errors.EAGAIN:
            return False, exp.value
        if rc:
            raise error(rc, self._what)
        return True, expected

    def load(self):
        """Atomically loads an integer value (without the lock)."""
        out = c_int64()
        rc = F.value_load(self._fast(), byref(out))
        if rc:
            raise error(rc, self._what)
        return out.value

    def store(self, x):
        """Atomically stores an integer value (without the lock)."""
        rc = F.value_store(self._fast(), c_int64(x))
        if rc:
            raise error(rc, self._what)

    @property
    def typecode(self):
        return self._et.code

    def __repr__(self):
        if self._h is None:
            return "<shoal.Value %r closed>" % self._name
        return "<shoal.Value %r %s %r>" % (self._name, self._et.name, self.value)


_struct_classes = {}


def _struct_value_class(ct):
    """The Value subclass for struct type ct: one property per field, read and
    written under the lock (multiprocessing's synchronized struct)."""
    cls = _struct_classes.get(ct)
    if cls is None:
        body = {}
        for f in ct._fields_:
            if not hasattr(Value, f[0]):  # a field named like a method stays hidden
                body[f[0]] = _field_property(f[0])
        cls = _struct_classes[ct] = type("Value", (Value,), body)
        cls.__qualname__ = "Value"
    return cls


def _field_property(field):
    def get(self):
        return getattr(self.value, field)

    def set(self, x):
        with self.modify() as s:
            setattr(s, field, x)
    return property(get, set, doc="field %s, under the lock" % field)


def _reopen_value(cls, name, place, key):
    et = elem_type(key)
    obj = cls.__new__(cls, et.ctype if et.is_struct else None)
    obj._open(elem_type(key), name, False, place, place.attr(), None)
    return obj


def RawValue(typecode_or_type, *args, **kwargs):
    """A Value without a lock (multiprocessing.RawValue)."""
    kwargs["lock"] = False
    return Value(typecode_or_type, *args, **kwargs)


# ---- Array -------------------------------------------------------------------------


class Array(_ArrayBase, _Locked):
    """A fixed-length typed array in shared memory (multiprocessing.Array)."""

    _what = "array"
    _closer = C.array_close
    _get_lock_fn = C.array_get_lock

    def __new__(cls, typecode_or_type=None, size_or_initializer=None, *, lock=True,
                **kwargs):
        obj = super().__new__(cls)
        if lock is False:  # multiprocessing: the plain ctypes array
            obj.__init__(typecode_or_type, size_or_initializer, lock=False, **kwargs)
            return _raw_view(obj)
        return obj

    def __init__(self, typecode_or_type, size_or_initializer=None, *, lock=True,
                 name=None, create=None, root=None, domain=None):
        place = Place(root, domain)
        attr = _lock_attr(place, lock)
        if typecode_or_type is None:
            if create is not False:
                raise TypeError("a type is needed to create an Array")
            self._open(None, name, create, place, attr, None, None)
            return
        et = elem_type(typecode_or_type)
        if isinstance(lock, Lock):
            self._lock_obj = lock
        init = None
        if size_or_initializer is None:  # open: any length
            count = None
        elif isinstance(size_or_initializer, int):
            count = size_or_initializer
        else:
            items = size_or_initializer
            if et.code == "c" and isinstance(items, (bytes, bytearray)):
                items = [bytes((b,)) for b in items]
            else:
                items = list(items)
            count = len(items)
            init = (et.ctype * count)(*items)
        if count is not None and count < 0:
            raise ValueError("an Array cannot have a negative length")
        self._open(et, name, create, place, attr, count, init)

    # An empty Array (multiprocessing allows one) is kept in a segment of one element
    # that its Python users see as empty; C sees that element.
    def _open(self, et, name, create, place, attr, count, init):
        out = c_void_p()
        rc = C.array_open(byref(out), encode_name(name), open_mode(create),
                          et.ptr if et else None, 0 if count is None else max(count, 1),
                          init, attr)
        check(rc, "array %r" % name)
        self._attach(out.value, place)
        self._name = decode(C.array_name(out.value))
        if et is None:
            et = from_handle_type(C.array_type(out.value))
        self._et = et
        self._ct = et.ctype
        self._len = 0 if count == 0 else C.array_len(out.value)
        self._raw = not self._lock_handle()
        self._fast_at = None  # (pid, handle, view, lock) of this process

    def _reopen(self):
        out = c_void_p()
        check(C.array_open(byref(out), encode_name(self._name), open_mode(False),
                           self._et.ptr, max(self._len, 1), None, self._place.attr()),
              self._what)
        return out.value

    def __reduce__(self):
        return (_reopen_array, (type(self), self._name, self._place, self._et.key,
                                self._len))

    def _state(self):
        """(pid, handle, the elements in place as a ctypes array, the lock's handle
        or None), valid in this process."""
        st = self._fast_at
        if st is None or st[0] != _proc.pid or st[1] != self._h:
            h = self._handle()
            addr = C.array_data(h)
            view = (self._ct * self._len).from_address(addr)
            view._shoal_owner = self  # the mapping lives as long as the view
            lk = C.array_get_lock(h)
            st = self._fast_at = (_proc.pid, h, view, c_void_p(lk) if lk else None)
            _set_fast(self, _proc.pid, addr, st[3], self._et.code, self._len)
        return st

    def _view(self):
        return self._state()[2]

    def __len__(self):
        return self._len

    def _index(self, i):
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("array %r index out of range (length %d)"
                             % (self._name, self._len))
        return i

    def _conv(self, x):
        return x if self._et.is_struct else x.value

    # Scalar elements are read and written in place under the lock, taken without
    # releasing the GIL when it is free (see Value.value); struct elements are copied
    # by libshoal.

    def _getitem_slow(self, i):
        if isinstance(i, slice):
            return self._get_slice(i)
        i = self._index(i)
        if self._et.is_struct:
            out = self._ct()
            check(C.array_get(self._handle(), i, byref(out)), self._what)
            return out
        _, _, view, lk = self._state()
        if lk is None:
            return view[i]
        o = self._lock_obj
        if o is not None and o._held_tid == _get_ident() and o._held_pid == _proc.pid:
            return view[i]
        rc = _try_acquire(lk)
        if rc == 0 or rc == _EOWNERDEAD:
            x = view[i]
            _lock_release(lk)
            return x
        if rc == _EDEADLK:
            return view[i]
        tmp = self._ct()
        check(C.array_get(self._h, i, byref(tmp)), self._what)
        return tmp.value

    def _setitem_slow(self, i, x):
        if isinstance(i, slice):
            return self._set_slice(i, x)
        i = self._index(i)
        if self._et.is_struct:
            val = x if isinstance(x, self._ct) else self._ct(*x)
            if hasattr(val, "validate"):
                val.validate()
            check(C.array_set(self._handle(), i, byref(val)), self._what)
            return
        _, _, view, lk = self._state()
        if lk is None:
            view[i] = x
            return
        o = self._lock_obj
        if o is not None and o._held_tid == _get_ident() and o._held_pid == _proc.pid:
            view[i] = x
            return
        rc = _try_acquire(lk)
        if rc == 0 or rc == _EOWNERDEAD:
            try:
                view[i] = x
            finally:
                _lock_release(lk)
        elif rc == _EDEADLK:
            view[i] = x
        else:
            check(C.array_set(self._h, i, byref(self._ct(x))), self._what)

    def _get_slice(self, s):
        idx = range(*s.indices(self._len))
        if not idx:
            items = []
        elif self._raw:
            items = self._view()[s]
        else:  # one locked copy of the range covering the slice
            lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            buf = (self._ct * (hi - lo))()
            check(C.array_read(self._handle(), lo, hi - lo, buf), self._what)
            items = buf[:] if idx.step == 1 else [buf[i - lo] for i in idx]
        if self._et.code == "c":
            return items if isinstance(items, bytes) else b"".join(items)
        return items

    def _set_slice(self, s, values):
        start, stop, step = s.indices(self._len)
        idx = range(start, stop, step)
        if self._et.code == "c" and isinstance(values, (bytes, bytearray)):
            values = [bytes((b,)) for b in values]
        values = list(values)
        if len(values) != len(idx):
            raise ValueError("can only assign a sequence of the same size (%d, not %d)"
                             % (len(idx), len(values)))
        if not idx:
            return
        if step == 1:
            buf = (self._ct * len(values))(*values)
            if self._raw:
                ctypes.memmove(ctypes.addressof(self._view()) +
                               start * ctypes.sizeof(self._ct), buf, ctypes.sizeof(buf))
            else:
                check(C.array_write(self._handle(), start, len(values), buf), self._what)
            return
        lock = None if self._raw else self.get_lock()
        if lock is not None:
            lock.acquire()
        try:
            for i, v in zip(idx, values):
                self[i] = v
        finally:
            if lock is not None:
                lock.release()

    def __iter__(self):
        return iter(self[:])

    def tolist(self):
        return self[:]

    # -- 'c' arrays: multiprocessing's .value and .raw --

    @property
    def value(self):
        """For a 'c' array: the bytes up to the first NUL."""
        raw = self.raw
        return raw.split(b"\0", 1)[0]

    @value.setter
    def value(self, b):
        if self._et.code != "c":
            raise AttributeError("only 'c' arrays have .value")
        if len(b) > self._len:
            raise ValueError("byte string too long")
        self[0:len(b)] = b
        if len(b) < self._len:
            self[len(b)] = b"\0"

    @property
    def raw(self):
        if self._et.code != "c":
            raise AttributeError("only 'c' arrays have .raw")
        return self[:]

    @raw.setter
    def raw(self, b):
        if self._et.code != "c":
            raise AttributeError("only 'c' arrays have .raw")
        self[0:len(b)] = b

    def get_obj(self):
        """The elements as a ctypes array in shared memory (raw access)."""
        return self._view()

    def fetch_add(self, index, delta=1):
        """Atomically adds delta to an integer element; returns its previous value."""
        old = c_int64()
        rc = F.array_add(self._fast(), c_size_t(self._index(index)), c_int64(delta),
                         byref(old))
        if rc:
            raise error(rc, self._what)
        return old.value

    @property
    def typecode(self):
        return self._et.code

    def __repr__(self):
        if self._h is None:
            return "<shoal.Array %r closed>" % self._name
        return "<shoal.Array %r %s[%d] %r>" % (self._name, self._et.name, self._len,
                                               self[:])


def _reopen_array(cls, name, place, key, count):
    obj = cls.__new__(cls)  # an empty one stays empty (count 0)
    obj._open(elem_type(key), name, False, place, place.attr(), count, None)
    return obj


def RawArray(typecode_or_type, size_or_initializer, **kwargs):
    """An Array without a lock (multiprocessing.RawArray)."""
    kwargs["lock"] = False
    return Array(typecode_or_type, size_or_initializer, **kwargs)
