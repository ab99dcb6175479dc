"""The base of every shared object: a libshoal handle, its name and place, closing,
pickling by name, and re-attaching in a forked child.

Lifetime. A handle is released by close(), by garbage collection, or at interpreter
exit; an object created without a name is removed once every process using it has
released it (or died).

Fork. A forked child inherits the parent's handles (the mappings stay valid), but it
is not registered as a user of the objects, and releasing an inherited handle would
unregister the parent. So a child never releases an inherited handle; on first use
it opens the object anew by name, becoming a user in its own right (if that fails,
e.g. because the parent has already removed an anonymous object, it keeps using the
inherited mapping).

Pickling. Objects pickle as (their class, name, place and type): the receiving
process, forked or not, started by anyone, opens the same object by name. The
sender must keep an anonymous object open until the receiver has opened it.
"""

import weakref
from ctypes import c_void_p

from . import _lib
from ._lib import proc


def _release(closer, handle, pid):
    # Only the process that opened a handle releases it (see "Fork" above).
    if pid == proc.pid and handle:
        try:
            closer(handle)
        except Exception:  # interpreter shutdown: the OS reclaims the rest
            pass


class SharedObject:
    """A named object in shared memory, opened in this process."""

    _what = "object"  # noun for messages
    _closer = None  # the C function releasing a handle (a staticmethod-like callable)

    _h = None  # the handle, an int
    _hp = None  # the same as a c_void_p, for the fast calls
    _name = None
    _place = None
    _pid = None
    _finalizer = None

    def _attach(self, handle, place, owned=True):
        """Adopts a freshly opened handle."""
        self._h = handle
        self._hp = c_void_p(handle)
        self._place = place
        self._pid = proc.pid
        if owned and self._closer is not None:
            self._finalizer = weakref.finalize(self, _release, type(self)._closer,
                                               handle, proc.pid)
        else:
            self._finalizer = None

    def _reopen(self):
        """Opens the object anew by name in this process; returns the new handle.
        Subclasses implement it."""
        raise NotImplementedError

    def _handle(self):
        """The handle valid in this process (re-attached after a fork)."""
        h = self._h
        if h is not None and self._pid == proc.pid:
            return h
        return self._slow_handle()

    def _fast(self):
        """The handle as a c_void_p (for the F functions), re-attached after a fork."""
        hp = self._hp
        if hp is not None and self._pid == proc.pid:
            return hp
        self._slow_handle()
        return self._hp

    def _slow_handle(self):
        if self._h is None:
            raise ValueError("%s %r is closed" % (self._what, self._name))
        # First use in a forked child: keep the inherited handle alive, unreleased.
        inherited = self._h
        try:
            fresh = self._reopen()
        except Exception:
            self._pid = proc.pid  # keep using the inherited mapping
            self._finalizer = None
            return inherited
        if self._finalizer is not None:
            self._finalizer.detach()
        self._attach(fresh, self._place, owned=True)
        return fresh

    @property
    def name(self):
        """The object's name (generated when it was created without one)."""
        return self._name

    @property
    def place(self):
        return self._place

    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Releases this process's handle (the object itself stays for the others;
        an anonymous object goes when its last user releases it)."""
        if self._h is None:
            return
        self._before_close()
        fin = self._finalizer
        self._h = None
        self._hp = None
        if fin is not None:
            fin()

    def _before_close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = " closed" if self._h is None else ""
        return "<shoal.%s %r%s>" % (type(self).__name__, self._name, state)


def decode(s):
    return s.decode("utf-8") if s is not None else None


def unlink(name, root=None, domain=None):
    """Removes the name of any object: processes that have it open keep using it,
    new opens fail with NotFound."""
    place = _lib.Place(root, domain)
    _lib.check(_lib.C.unlink(_lib.encode_name(name), place.attr()), name)


def gc(root=None, domain=None):
    """Removes the domain's objects that no live process has open; returns how many."""
    place = _lib.Place(root, domain)
    return _lib.check(_lib.C.gc(place.attr()))


def stat(name, root=None, domain=None):
    """What the segment header of object `name` says: a dict of kind, type, sizes,
    creator and users."""
    place = _lib.Place(root, domain)
    info = _lib.shoal_object_info()
    _lib.check(_lib.C.stat(_lib.encode_name(name), place.attr(), _lib.byref(info)), name)
    return {
        "name": decode(info.name),
        "kind": decode(_lib.C.kind_name(info.kind)),
        "type": decode(info.type_name),
        "layout_hash": info.layout_hash,
        "elem_size": info.elem_size,
        "count": info.count,
        "file_size": info.file_size,
        "creator_pid": info.creator_pid,
        "users": info.users,
        "anonymous": bool(info.anonymous),
    }
