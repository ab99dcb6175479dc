"""Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier: named,
process-shared, with multiprocessing's (and threading's) methods.

Every constructor takes, beyond multiprocessing's arguments, keyword-only
``name`` (None: a generated one), ``create`` (None: open the object or create it;
True: create, the name must be free; False: open, it must exist) and ``root`` /
``domain`` (where the object lives; default $SHOAL_ROOT or /dev/shm/shoal, and
$SHOAL_DOMAIN or "default").

Robust locks. If a process dies holding a Lock or RLock, the next acquirer gets the
lock instead of hanging. acquire() then returns True as usual and sets the lock
object's ``owner_died`` attribute to True (it is False after an ordinary
acquisition), so code that cares can repair the data the lock protects; with
``acquire(raise_owner_died=True)`` it raises :class:`shoal.OwnerDied` instead —
while holding the lock.

Differences from multiprocessing, all deliberate:
- a Lock held by the calling thread and acquired again, blocking without a
  timeout, raises shoal.Deadlock instead of hanging forever (with block=False it
  returns False, with a timeout False once the timeout has passed, as
  multiprocessing); releasing a lock the caller does not hold raises
  shoal.NotOwner (a RuntimeError and a ValueError);
- Condition.wait() needs its lock held; an RLock held several times is released
  completely for the wait and re-taken to the same depth, as threading does (after
  a timeout too: the lock is held again, once another process lets it go).

Barrier's ``action`` runs in the caller that gets index 0 while the other parties
are still held: the barrier is passed twice, the second time once the action has
returned (if it raises, the barrier breaks: the others get BrokenBarrierError).
"""

import threading
import time
from ctypes import byref, c_int, c_int32, c_uint32, c_void_p

from . import errors
from ._lib import (
    C, F, Place, check, encode_name, error, open_mode, proc as _proc, to_ns,
    wait_loop,
)
from ._lib import speedups as _speedups
from ._object import SharedObject, decode

_get_ident = threading.get_ident
_try_acquire = F.lock_try  # never waits: it holds the GIL
_lock_release = F.lock_release
_ETIMEDOUT = errors.ETIMEDOUT
_EAGAIN = errors.EAGAIN
_EOWNERDEAD = errors.EOWNERDEAD
_EDEADLK = errors.EDEADLK
_EINTR = errors.EINTR


def _check_signals():
    """Runs pending signal handlers at once (their exception propagates), where the
    interpreter can say so; elsewhere they run at its next check."""
    try:
        import ctypes
        ctypes.pythonapi.PyErr_CheckSignals()
    except (AttributeError, OSError):
        pass


def _open(fn, what, name, create, place, *extra):
    out = c_void_p()
    rc = fn(byref(out), encode_name(name), open_mode(create), *extra, place.attr())
    check(rc, "%s %r" % (what, name))
    return out.value


class _Named(SharedObject):
    """A primitive opened by name (shoal_*_open)."""

    _opener = None  # C open function

    def _open_named(self, name, create, root, domain, *extra):
        place = Place(root, domain)
        h = _open(type(self)._opener, self._what, name, create, place, *extra)
        self._attach(h, place)
        self._name = decode(C.sync_name(h))

    def _reopen(self):
        return _open(type(self)._opener, self._what, self._name, False, self._place,
                     *self._reopen_extra())

    def _reopen_extra(self):
        return ()

    def __reduce__(self):
        return (_reopen_named, (type(self), self._name, self._place))


def _reopen_named(cls, name, place):
    obj = cls.__new__(cls)
    obj._open_named(name, False, place.root, place.domain, *obj._reopen_extra())
    return obj


# ---- Lock and RLock ----------------------------------------------------------------


class _PyLockBase:
    """The fast path of Lock in Python (the fallback of shoal._speedups.LockBase,
    which does the same in C): a try-acquire holding the GIL, the slow paths in
    Lock."""

    owner_died = False
    # Which thread of which process holds the lock through this object, and how many
    # times: lets a Value or Array guarded by it skip taking it again. Set after the
    # lock is taken and cleared before it is released, so it never claims a lock
    # that is not held (a lost update only costs a re-entry).
    _held_tid = 0
    _held_pid = 0
    _held_depth = 0

    def acquire(self, block=True, timeout=None, *, raise_owner_died=False):
        """Acquires the lock; returns True, or False when it could not within the
        timeout (or at once, with block=False). See the module doc on owner_died."""
        hp = self._hp
        if hp is None or self._pid != _proc.pid:
            hp = self._fast()
        rc = _try_acquire(hp)
        if rc == 0:
            if self.owner_died:
                self.owner_died = False
            self._took()
            return True
        return self._acquire_slow(rc, block, timeout, raise_owner_died)

    def release(self):
        hp = self._hp
        if hp is None or self._pid != _proc.pid:
            hp = self._fast()
        if self._held_tid == _get_ident():
            if self._held_depth > 1:
                self._held_depth -= 1
            else:
                self._held_tid = 0
        rc = _lock_release(hp)
        if rc:
            self._raise_rc(rc)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, t, v, tb):
        self.release()


_LockBase = _speedups.LockBase if _speedups else _PyLockBase


class Lock(_LockBase, _Named):
    """A robust, process-shared lock (multiprocessing.Lock)."""

    _what = "lock"
    _opener = C.lock_open
    _closer = C.lock_close
    _recursive = False

    _owner = None  # for a lock embedded in a Value/Array: that object

    def __init__(self, *, name=None, create=None, root=None, domain=None):
        self._open_named(name, create, root, domain)

    def _attach(self, handle, place, owned=True):
        super()._attach(handle, place, owned)
        if _speedups:  # the handle for the C fast path, and where it is valid
            self._ch, self._cpid = handle, _proc.pid

    @classmethod
    def _wrap(cls, handle, owner):
        """A lock libshoal opened for a Value or Array (not released by us)."""
        rec = c_int()
        C.lock_state(handle, byref(rec), None, None)
        cls = RLock if rec.value else Lock
        obj = cls.__new__(cls)
        obj._attach(handle, owner.place, owned=False)
        obj._name = decode(C.sync_name(handle))
        obj._owner = owner
        return obj

    def _slow_handle(self):
        if self._owner is not None:  # follow the owner's re-attachment
            if self._h is None or self._owner.closed:
                raise ValueError("the lock's %s is closed" % self._owner._what)
            fresh = self._owner._lock_handle()
            self._attach(fresh, self._place, owned=False)
            return fresh
        return super()._slow_handle()

    def _acquire_slow(self, rc, block, timeout, raise_owner_died):
        if rc == _EAGAIN and block and (timeout is None or timeout > 0):
            rc = wait_loop(C.lock_acquire, (self._h,), timeout)  # GIL released
        if rc == 0:
            self.owner_died = False
            self._took()
            return True
        if rc == _EOWNERDEAD:
            self.owner_died = True
            self._took()
            if raise_owner_died:
                raise error(rc)
            return True
        if rc == _ETIMEDOUT or rc == _EAGAIN:
            return False
        if rc == _EDEADLK and (not block or timeout is not None):
            # Held by this very thread: nothing can free it within the wait.
            if block and timeout > 0:
                time.sleep(timeout)
            return False
        raise error(rc, self._what)

    def _took(self):
        tid = _get_ident()
        if self._held_tid == tid and self._held_pid == _proc.pid:
            self._held_depth += 1
        else:
            self._held_pid, self._held_depth, self._held_tid = _proc.pid, 1, tid

    def _raise_rc(self, rc):
        raise error(rc, self._what)

    def held_here(self):
        """Whether this thread holds the lock (taken through this object)."""
        return self._held_tid == _get_ident() and self._held_pid == _proc.pid

    def locked(self):
        """Whether the lock is held, by anyone, at this instant."""
        return bool(C.lock_locked(self._handle()))

    def _state(self):
        rec, tid, depth = c_int(), c_int32(), c_uint32()
        C.lock_state(self._handle(), byref(rec), byref(tid), byref(depth))
        return tid.value, depth.value

    def close(self):
        if self._owner is None:
            super().close()
            if _speedups:
                self._ch = 0

    def __reduce__(self):
        if self._owner is not None and self._name is None:
            return (_lock_of, (self._owner,))
        return super().__reduce__()

    def __repr__(self):
        tid, depth = self._state() if self._h is not None else (0, 0)
        state = "unlocked" if not tid else "held by thread %d" % tid
        if self._recursive and tid:
            state += ", depth %d" % depth
        return "<shoal.%s %r %s>" % (type(self).__name__, self._name, state)


class RLock(Lock):
    """A robust, recursive, process-shared lock (multiprocessing.RLock)."""

    _what = "rlock"
    _opener = C.rlock_open
    _recursive = True


def _lock_of(owner):
    return owner.get_lock()


# ---- Semaphore and BoundedSemaphore -------------------------------------------------


class Semaphore(_Named):
    """A process-shared counting semaphore (multiprocessing.Semaphore)."""

    _what = "semaphore"
    _opener = C.sem_open
    _closer = C.sem_close

    def __init__(self, value=1, *, name=None, create=None, root=None, domain=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._open_named(name, create, root, domain, value)

    def _reopen_extra(self):
        return (0,)

    def acquire(self, block=True, timeout=None):
        """Decrements; returns True, or False if it could not within the timeout."""
        rc = F.sem_try(self._fast())
        if rc == _EAGAIN and block and (timeout is None or timeout > 0):
            rc = wait_loop(C.sem_acquire, (self._h,), timeout)
        if rc == 0:
            return True
        if rc == _ETIMEDOUT or rc == _EAGAIN:
            return False
        raise error(rc, self._what)

    def release(self, n=1):
        hp = self._fast()
        for _ in range(n):
            rc = F.sem_release(hp)
            if rc:
                raise error(rc, self._what)

    def get_value(self):
        return C.sem_value(self._handle())

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        value = self.get_value() if self._h is not None else "closed"
        return "<shoal.%s %r value=%s>" % (type(self).__name__, self._name, value)


class BoundedSemaphore(Semaphore):
    """A semaphore that may not be released above its initial value (raises
    shoal.ReleasedTooManyTimes, a ValueError, as multiprocessing does)."""

    _what = "bounded semaphore"
    _opener = C.bsem_open


# ---- Condition ---------------------------------------------------------------------


class GuardedByLock:
    """acquire(), release() and ``with`` of an object guarded by the lock in its
    ``_lock`` attribute (Condition, sharedctypes.synchronized's wrapper)."""

    def acquire(self, *args, **kwargs):
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        self._lock.release()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)


class Condition(GuardedByLock, _Named):
    """A process-shared condition variable over a Lock or RLock
    (multiprocessing.Condition). Without a lock it makes an RLock, named
    ``<name>.lock`` when the condition is named so that other processes opening the
    condition by name get the same lock."""

    _what = "condition"
    _opener = C.cond_open
    _closer = C.cond_close

    def __init__(self, lock=None, *, name=None, create=None, root=None, domain=None):
        if lock is None:
            lock = RLock(name=None if name is None else name + ".lock", create=create,
                         root=root, domain=domain)
        elif not isinstance(lock, Lock):
            raise TypeError("Condition needs a shoal Lock or RLock, not %s" %
                            type(lock).__name__)
        self._lock = lock
        self._open_named(name, create, root, domain)

    def __reduce__(self):
        return (_reopen_condition, (self._name, self._place, self._lock))

    def wait(self, timeout=None):
        """Releases the lock (fully, an RLock held several times too), waits for a
        notify or the timeout, and returns holding the lock again at the same depth,
        whatever happens: the runtime's wait takes it back. Returns False if the
        timeout expired, else True. A lock whose holder died meanwhile is taken with
        its ``owner_died`` set (True). A signal ends the wait (Ctrl-C raises
        KeyboardInterrupt here, with the lock held again, as threading.Condition
        does); a handler that does not raise makes it a spurious wake-up (True). A
        notification is never lost to an interrupted waiter: it either returns with
        it or leaves it to another."""
        lock = self._lock
        rc = C.cond_wait_intr(self._handle(), lock._handle(), to_ns(timeout))
        if rc == 0:
            return True
        if rc == _ETIMEDOUT:
            return False
        if rc == _EINTR:
            _check_signals()  # runs the handlers now: KeyboardInterrupt from here
            return True
        if rc == _EOWNERDEAD:
            lock.owner_died = True
            return True
        if lock._state()[0] != threading.get_native_id():
            lock._held_tid = 0  # a lock that could not be taken back at all
        raise error(rc, self._what)

    def wait_for(self, predicate, timeout=None):
        """Waits until predicate() is true (checked under the lock); returns its last
        value."""
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n=1):
        check(C.cond_notify(self._handle(), n), self._what)

    def notify_all(self):
        check(C.cond_notify_all(self._handle()), self._what)

    notifyAll = notify_all

    def close(self):
        super().close()


class _NoCount:
    """multiprocessing's Condition keeps three semaphores (_sleeping_count,
    _woken_count, _wait_semaphore) that CPython's tests read where sem_getvalue
    exists, accepting NotImplementedError (as on macOS). A shoal condition has no
    such semaphores: it counts its waiters in its futex word."""

    def get_value(self):
        raise NotImplementedError("a shoal Condition has no waiter semaphores")


Condition._sleeping_count = Condition._woken_count = Condition._wait_semaphore = \
    _NoCount()


def _reopen_condition(name, place, lock):
    return Condition(lock, name=name, create=False, root=place.root, domain=place.domain)


# ---- Event -------------------------------------------------------------------------


class Event(_Named):
    """A process-shared event (multiprocessing.Event)."""

    _what = "event"
    _opener = C.event_open
    _closer = C.event_close

    def __init__(self, *, name=None, create=None, root=None, domain=None):
        self._open_named(name, create, root, domain)

    def is_set(self):
        return bool(C.event_is_set(self._handle()))

    def set(self):
        check(C.event_set(self._handle()), self._what)

    def clear(self):
        check(C.event_clear(self._handle()), self._what)

    def wait(self, timeout=None):
        """Waits until the event is set; returns True, or False on timeout."""
        rc = wait_loop(C.event_wait, (self._handle(),), timeout)
        if rc == 0:
            return True
        if rc == _ETIMEDOUT or rc == _EAGAIN:
            return False
        raise error(rc, self._what)


# ---- Barrier -----------------------------------------------------------------------


class Barrier(_Named):
    """A process-shared barrier (multiprocessing.Barrier). A wait that times out
    breaks the barrier and raises threading.BrokenBarrierError (shoal.BrokenBarrier),
    as do waits on a broken barrier until reset()."""

    _what = "barrier"
    _opener = C.barrier_open
    _closer = C.barrier_close

    def __init__(self, parties, action=None, timeout=None, *, name=None, create=None,
                 root=None, domain=None):
        if parties < 1:
            raise ValueError("a barrier needs at least one party")
        self._action = action
        self._timeout = timeout
        self._open_named(name, create, root, domain, parties)

    def _reopen_extra(self):
        return (0,)

    def __reduce__(self):
        return (_reopen_barrier, (self._name, self._place, self._action, self._timeout))

    def wait(self, timeout=None):
        """Waits for all parties; returns this caller's arrival index in
        [0, parties)."""
        if timeout is None:
            timeout = self._timeout
        rc = self._pass(timeout)
        if self._action is not None:  # the second passage (see the module doc)
            if rc == 0:
                try:
                    self._action()
                except BaseException:
                    self.abort()
                    raise
            self._pass(timeout)
        return rc

    def _pass(self, timeout):
        # One call: a barrier wait that times out breaks the barrier, so it cannot
        # be cut into slices.
        rc = C.barrier_wait(self._handle(), to_ns(timeout) if timeout is not None
                            else -1)
        if rc >= 0:
            return rc
        if rc == _ETIMEDOUT:
            raise errors.BrokenBarrier("barrier %r: timed out (now broken)" % self._name,
                                       errors.EBROKEN)
        raise error(rc, self._what)

    def abort(self):
        check(C.barrier_abort(self._handle()), self._what)

    def reset(self):
        check(C.barrier_reset(self._handle()), self._what)

    def _bstate(self):
        parties, waiting, broken = c_uint32(), c_uint32(), c_int()
        C.barrier_state(self._handle(), byref(parties), byref(waiting), byref(broken))
        return parties.value, waiting.value, bool(broken.value)

    @property
    def parties(self):
        return self._bstate()[0]

    @property
    def n_waiting(self):
        return self._bstate()[1]

    @property
    def broken(self):
        return self._bstate()[2]


def _reopen_barrier(name, place, action, timeout):
    b = Barrier.__new__(Barrier)
    b._action = action
    b._timeout = timeout
    b._open_named(name, False, place.root, place.domain, 0)
    return b
