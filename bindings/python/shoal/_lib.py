"""Loading libshoal through ctypes: where it is found, the C prototypes, error
mapping, timeouts and the per-process bookkeeping the objects share.

The library is looked for, in order:

1. ``$SHOAL_LIBRARY``: the full path of libshoal.so (the build tree's tests use this);
2. next to the package: ``shoal/libshoal.so*`` (a copy bundled with the package);
3. the installed location: the dynamic loader's search path (``libshoal.so.0``), then
   ``<prefix>/lib`` and ``<prefix>/lib/<multiarch>`` for the prefixes /usr/local and
   /usr (``cmake --install`` puts it there; ``ldconfig`` need not have run).

If none loads, importing shoal raises :class:`shoal.errors.LibraryNotFound` listing
every place tried.
"""

import ctypes
import glob
import os
import sys
import threading
import time
from ctypes import (
    POINTER, Structure, byref, c_char, c_char_p, c_int, c_int32, c_int64, c_size_t,
    c_uint32, c_uint64, c_void_p,
)

from . import errors

# ---- finding the library ----------------------------------------------------------


def _candidates():
    env = os.environ.get("SHOAL_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "libshoal.so*"))):
        yield path
    yield "libshoal.so.0"
    yield "libshoal.so"
    multiarch = getattr(sys.implementation, "_multiarch", "")
    for prefix in ("/usr/local", "/usr"):
        subs = ["lib", "lib64"] + ([os.path.join("lib", multiarch)] if multiarch else [])
        for sub in subs:
            yield os.path.join(prefix, sub, "libshoal.so.0")


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise errors.LibraryNotFound(
        "shoal: cannot load libshoal. Tried:\n  " + "\n  ".join(tried) +
        "\nSet SHOAL_LIBRARY to the path of libshoal.so, or install shoal "
        "(cmake --install <build-dir>).")


lib, library_path = _load()

# ---- C structs ----------------------------------------------------------------------


class shoal_attr(Structure):
    _fields_ = [("root", c_char_p), ("domain", c_char_p), ("mode", ctypes.c_uint),
                ("lock", c_int), ("caller_lock", c_void_p)]


class shoal_field(Structure):
    pass


class shoal_type(Structure):
    _fields_ = [("name", c_char_p), ("layout_hash", c_uint64), ("size", c_uint32),
                ("align", c_uint32), ("typecode", c_char), ("nfields", c_uint32),
                ("fields", POINTER(shoal_field))]


shoal_field._fields_ = [
    ("name", c_char_p), ("number", c_uint32), ("kind", c_uint32), ("offset", c_uint32),
    ("size", c_uint32), ("max_count", c_uint32), ("max_len", c_uint32),
    ("type", POINTER(shoal_type))]


class shoal_queue_config(Structure):
    _fields_ = [("type", POINTER(shoal_type)), ("max_msg", c_size_t),
                ("capacity", c_size_t), ("spsc", c_int)]


class shoal_queue_stats(Structure):
    _fields_ = [("capacity", c_uint64), ("depth", c_uint64), ("max_msg", c_uint64),
                ("puts", c_uint64), ("gets", c_uint64), ("full_waits", c_uint64),
                ("empty_waits", c_uint64), ("closed", c_int), ("spsc", c_int)]


class shoal_object_info(Structure):
    _fields_ = [("name", c_char * 101), ("kind", c_int), ("status", c_int),
                ("type_name", c_char * 64), ("layout_hash", c_uint64),
                ("elem_size", c_uint64), ("count", c_uint64), ("file_size", c_uint64),
                ("creator_pid", c_int32), ("users", c_int), ("anonymous", c_int)]


class shoal_rpc_kv(Structure):
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class shoal_rpc_md(Structure):
    _fields_ = [("count", c_size_t), ("items", POINTER(shoal_rpc_kv))]


# int handler(shoal_rpc_ctx *ctx, void *arg)
rpc_handler_t = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)


class shoal_rpc_method(Structure):
    _fields_ = [("name", c_char_p), ("kind", c_int), ("check_request", c_void_p),
                ("check_response", c_void_p), ("handler", rpc_handler_t),
                ("blocking", c_int)]


class shoal_rpc_service(Structure):
    _fields_ = [("name", c_char_p), ("methods", POINTER(shoal_rpc_method)),
                ("n_methods", c_size_t), ("arg", c_void_p)]


class shoal_rpc_channel_config(Structure):
    _fields_ = [("connect_timeout", c_int64), ("attr", POINTER(shoal_attr)),
                ("token", c_char_p), ("max_frame", c_size_t), ("tls_ca_file", c_char_p),
                ("tls_cert_file", c_char_p), ("tls_key_file", c_char_p),
                ("tls_server_name", c_char_p)]


class shoal_rpc_options(Structure):
    _fields_ = [("timeout", c_int64), ("metadata", POINTER(shoal_rpc_md))]


# ---- prototypes ---------------------------------------------------------------------

P = c_void_p
PP = POINTER(c_void_p)
ATTR = POINTER(shoal_attr)
TYPE = POINTER(shoal_type)
CFG = POINTER(shoal_queue_config)
I64P = POINTER(c_int64)
SZP = POINTER(c_size_t)
D = c_int64  # shoal_duration

_PROTOS = {
    # common.h / type.h / segment.h
    "shoal_strerror": (c_char_p, [c_int]),
    "shoal_errdetail": (c_char_p, []),
    "shoal_kind_name": (c_char_p, [c_int]),
    "shoal_set_spin_ns": (None, [c_int64]),
    "shoal_spin_ns": (c_int64, []),
    "shoal_typecode": (TYPE, [c_char]),
    "shoal_fnv1a": (c_uint64, [c_uint64, c_void_p, c_size_t]),
    "shoal_shm_open": (c_int, [PP, c_char_p, c_int, c_size_t, ATTR]),
    "shoal_shm_data": (P, [P]),
    "shoal_shm_size": (c_size_t, [P]),
    "shoal_shm_name": (c_char_p, [P]),
    "shoal_shm_close": (c_int, [P]),
    "shoal_unlink": (c_int, [c_char_p, ATTR]),
    "shoal_name_check": (c_int, [c_char_p]),
    "shoal_stat": (c_int, [c_char_p, ATTR, POINTER(shoal_object_info)]),
    "shoal_gc": (c_int, [ATTR]),
    # sync.h
    "shoal_sync_name": (c_char_p, [P]),
    "shoal_lock_open": (c_int, [PP, c_char_p, c_int, ATTR]),
    "shoal_rlock_open": (c_int, [PP, c_char_p, c_int, ATTR]),
    "shoal_lock_close": (c_int, [P]),
    "shoal_lock_acquire": (c_int, [P, D]),
    "shoal_lock_try": (c_int, [P]),
    "shoal_lock_release": (c_int, [P]),
    "shoal_lock_locked": (c_int, [P]),
    "shoal_lock_state": (None, [P, POINTER(c_int), POINTER(c_int32), POINTER(c_uint32)]),
    "shoal_sem_open": (c_int, [PP, c_char_p, c_int, c_uint32, ATTR]),
    "shoal_bsem_open": (c_int, [PP, c_char_p, c_int, c_uint32, ATTR]),
    "shoal_sem_close": (c_int, [P]),
    "shoal_sem_acquire": (c_int, [P, D]),
    "shoal_sem_try": (c_int, [P]),
    "shoal_sem_release": (c_int, [P]),
    "shoal_sem_value": (c_uint32, [P]),
    "shoal_cond_open": (c_int, [PP, c_char_p, c_int, ATTR]),
    "shoal_cond_close": (c_int, [P]),
    "shoal_cond_wait": (c_int, [P, P, D]),
    "shoal_cond_wait_intr": (c_int, [P, P, D]),
    "shoal_cond_notify": (c_int, [P, c_uint32]),
    "shoal_cond_notify_all": (c_int, [P]),
    "shoal_event_open": (c_int, [PP, c_char_p, c_int, ATTR]),
    "shoal_event_close": (c_int, [P]),
    "shoal_event_set": (c_int, [P]),
    "shoal_event_clear": (c_int, [P]),
    "shoal_event_is_set": (c_int, [P]),
    "shoal_event_wait": (c_int, [P, D]),
    "shoal_barrier_open": (c_int, [PP, c_char_p, c_int, c_uint32, ATTR]),
    "shoal_barrier_close": (c_int, [P]),
    "shoal_barrier_wait": (c_int, [P, D]),
    "shoal_barrier_abort": (c_int, [P]),
    "shoal_barrier_reset": (c_int, [P]),
    "shoal_barrier_state": (None, [P, POINTER(c_uint32), POINTER(c_uint32),
                                   POINTER(c_int)]),
    # value.h
    "shoal_value_open": (c_int, [PP, c_char_p, c_int, TYPE, c_void_p, ATTR]),
    "shoal_value_close": (c_int, [P]),
    "shoal_value_name": (c_char_p, [P]),
    "shoal_value_type": (TYPE, [P]),
    "shoal_value_read": (c_int, [P, c_void_p]),
    "shoal_value_write": (c_int, [P, c_void_p]),
    "shoal_value_snapshot": (c_int, [P, c_void_p]),
    "shoal_value_data": (P, [P]),
    "shoal_value_modify": (P, [P]),
    "shoal_value_commit": (c_int, [P]),
    "shoal_value_get_lock": (P, [P]),
    "shoal_value_add": (c_int, [P, c_int64, I64P]),
    "shoal_value_exchange": (c_int, [P, c_int64, I64P]),
    "shoal_value_cas": (c_int, [P, I64P, c_int64]),
    "shoal_value_load": (c_int, [P, I64P]),
    "shoal_value_store": (c_int, [P, c_int64]),
    "shoal_array_open": (c_int, [PP, c_char_p, c_int, TYPE, c_size_t, c_void_p, ATTR]),
    "shoal_array_close": (c_int, [P]),
    "shoal_array_name": (c_char_p, [P]),
    "shoal_array_type": (TYPE, [P]),
    "shoal_array_len": (c_size_t, [P]),
    "shoal_array_get": (c_int, [P, c_size_t, c_void_p]),
    "shoal_array_set": (c_int, [P, c_size_t, c_void_p]),
    "shoal_array_read": (c_int, [P, c_size_t, c_size_t, c_void_p]),
    "shoal_array_write": (c_int, [P, c_size_t, c_size_t, c_void_p]),
    "shoal_array_add": (c_int, [P, c_size_t, c_int64, I64P]),
    "shoal_array_data": (P, [P]),
    "shoal_array_get_lock": (P, [P]),
    # queue.h
    "shoal_queue_open": (c_int, [PP, c_char_p, c_int, CFG, ATTR]),
    "shoal_queue_close": (c_int, [P]),
    "shoal_queue_name": (c_char_p, [P]),
    "shoal_queue_put": (c_int, [P, c_void_p, c_size_t, D]),
    "shoal_queue_try_put": (c_int, [P, c_void_p, c_size_t]),
    "shoal_queue_try_get": (c_int, [P, c_void_p, c_size_t, SZP]),
    "shoal_queue_get": (c_int, [P, c_void_p, c_size_t, SZP, D]),
    "shoal_queue_put_batch": (c_int, [P, c_void_p, c_size_t, SZP, D]),
    "shoal_queue_get_batch": (c_int, [P, c_void_p, c_size_t, SZP, D]),
    "shoal_queue_loan": (c_int, [P, PP, SZP, D]),
    "shoal_queue_commit": (c_int, [P, c_void_p, c_size_t]),
    "shoal_queue_peek": (c_int, [P, PP, SZP, D]),
    "shoal_queue_release": (c_int, [P, c_void_p]),
    "shoal_queue_shutdown": (c_int, [P]),
    "shoal_queue_stats_get": (c_int, [P, POINTER(shoal_queue_stats)]),
    # pipe.h
    "shoal_pipe_open": (c_int, [PP, c_char_p, c_int, c_int, CFG, ATTR]),
    "shoal_pipe_pair": (c_int, [PP, PP, c_char_p, CFG, ATTR]),
    "shoal_pipe_close": (c_int, [P]),
    "shoal_pipe_name": (c_char_p, [P]),
    "shoal_pipe_send": (c_int, [P, c_void_p, c_size_t, D]),
    "shoal_pipe_recv": (c_int, [P, c_void_p, c_size_t, SZP, D]),
    "shoal_pipe_poll": (c_int, [P, D]),
    # rpc.h
    "shoal_rpc_code_name": (c_char_p, [c_int]),
    "shoal_rpc_md_add": (c_int, [POINTER(shoal_rpc_md), c_char_p, c_char_p]),
    "shoal_rpc_md_clear": (None, [POINTER(shoal_rpc_md)]),
    "shoal_rpc_channel_open": (c_int, [PP, c_char_p, POINTER(shoal_rpc_channel_config)]),
    "shoal_rpc_channel_close": (None, [P]),
    "shoal_rpc_call_start": (c_int, [PP, P, c_char_p, POINTER(shoal_rpc_method),
                                     POINTER(shoal_rpc_options)]),
    "shoal_rpc_call_start_request": (c_int, [PP, P, c_char_p, POINTER(shoal_rpc_method),
                                             c_void_p, c_size_t,
                                             POINTER(shoal_rpc_options)]),
    "shoal_rpc_call_send": (c_int, [P, c_void_p, c_size_t]),
    "shoal_rpc_call_close_send": (c_int, [P]),
    "shoal_rpc_call_wait": (c_int, [P, D]),
    "shoal_rpc_call_recv": (c_int, [P, PP, SZP]),
    "shoal_rpc_call_cancel": (None, [P]),
    "shoal_rpc_call_finish": (c_int, [P, c_char_p, c_size_t]),
    "shoal_rpc_call_headers": (POINTER(shoal_rpc_md), [P]),
    "shoal_rpc_call_trailers": (POINTER(shoal_rpc_md), [P]),
    "shoal_rpc_call_free": (None, [P]),
    "shoal_rpc_server_create": (c_int, [PP, P]),
    "shoal_rpc_server_add_service": (c_int, [P, POINTER(shoal_rpc_service)]),
    "shoal_rpc_server_set_token": (c_int, [P, c_char_p]),
    "shoal_rpc_server_set_tls": (c_int, [P, c_char_p, c_char_p, c_char_p, c_int]),
    "shoal_rpc_server_set_workers": (c_int, [P, ctypes.c_uint, ctypes.c_uint]),
    "shoal_rpc_server_reserve_workers": (c_int, [P, ctypes.c_uint]),
    "shoal_rpc_server_work": (None, [P]),
    "shoal_rpc_server_wait_idle": (c_int, [P, D]),
    "shoal_rpc_server_listen": (c_int, [P, c_char_p, ATTR]),
    "shoal_rpc_server_destroy": (None, [P]),
    "shoal_rpc_ctx_recv": (c_int, [P, PP, SZP]),
    "shoal_rpc_ctx_send": (c_int, [P, c_void_p, c_size_t]),
    "shoal_rpc_ctx_time_remaining": (D, [P]),
    "shoal_rpc_ctx_cancelled": (c_int, [P]),
    "shoal_rpc_ctx_metadata": (POINTER(shoal_rpc_md), [P]),
    "shoal_rpc_ctx_method": (c_char_p, [P]),
    "shoal_rpc_ctx_add_header": (c_int, [P, c_char_p, c_char_p]),
    "shoal_rpc_ctx_add_trailer": (c_int, [P, c_char_p, c_char_p]),
    "shoal_rpc_ctx_set_detail": (None, [P, c_char_p, c_char_p]),  # fmt "%s", detail
    # loop.h (a server's loop)
    "shoal_loop_create": (c_int, [PP]),
    "shoal_loop_destroy": (None, [P]),
    "shoal_loop_run": (c_int, [P]),
    "shoal_loop_stop": (None, [P]),
    "shoal_pipe_fd": (c_int, [P]),
    "shoal_readyfd_open_queue": (c_int, [PP, P]),
    "shoal_readyfd_fd": (c_int, [P]),
    "shoal_readyfd_sync": (c_int, [P]),
    "shoal_readyfd_close": (None, [P]),
    # manager.h (the Manager broker's client; managers.py encodes the messages)
    "shoal_manager_connect": (c_int, [POINTER(c_void_p), c_char_p, c_void_p]),
    "shoal_manager_close": (None, [P]),
    "shoal_manager_shutdown": (None, [P]),
    "shoal_manager_enter": (c_int, [P]),
    "shoal_manager_leave": (None, [P]),
    "shoal_manager_next_id": (ctypes.c_uint64, [P]),
    "shoal_manager_send_raw": (c_int, [P, c_char_p, c_size_t]),
    "shoal_manager_wait_raw": (c_int, [P, ctypes.c_uint64, POINTER(c_void_p), SZP]),
    "shoal_manager_free": (None, [c_void_p]),
    "shoal_manager_call_raw": (c_int, [P, c_char_p, c_size_t, POINTER(c_void_p), SZP]),
    "shoal_manager_view_stats": (c_int, [P, POINTER(ctypes.c_uint64),
                                         POINTER(ctypes.c_uint64)]),
    "shoal_manager_watch_open_raw": (c_int, [P, c_char_p, c_size_t, POINTER(c_void_p)]),
    "shoal_manager_watch_next_raw": (c_int, [P, ctypes.c_int64, POINTER(c_void_p), SZP]),
    "shoal_manager_watch_close": (None, [P]),
}


class _Missing:
    """Stands in for a function this libshoal does not export (an older build)."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        raise errors.ShoalError("%s is not available in %s" % (self.name, library_path))


class _Funcs:
    pass


C = _Funcs()
for _name, (_res, _args) in _PROTOS.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        setattr(C, _name[6:], _Missing(_name))
        continue
    _f.restype = _res
    _f.argtypes = _args
    setattr(C, _name[6:], _f)  # C.value_open, C.lock_acquire, ...

# The same functions called without releasing the GIL, for the calls that never
# block (the try forms with NOWAIT, releases, atomics): releasing and re-taking the
# GIL would cost as much as the call itself. Never use these with a timeout.
# They have no argtypes (converting each argument through from_param costs more than
# the call) and the default int result: call them with ctypes objects only — c_void_p
# handles, c_int64 / c_size_t numbers (NOWAIT_C), byref() pointers, bytes.
_NONBLOCKING = (
    "shoal_queue_try_put", "shoal_queue_try_get", "shoal_queue_put_batch",
    "shoal_queue_get_batch", "shoal_queue_stats_get", "shoal_pipe_send",
    "shoal_pipe_recv", "shoal_pipe_poll", "shoal_lock_try", "shoal_lock_release",
    "shoal_sem_try", "shoal_sem_release", "shoal_event_is_set", "shoal_value_add",
    "shoal_value_exchange", "shoal_value_cas", "shoal_value_load", "shoal_value_store",
    "shoal_value_snapshot", "shoal_array_add", "shoal_manager_enter",
    "shoal_manager_leave",
)

_plib = ctypes.PyDLL(library_path)
F = _Funcs()
for _name in _NONBLOCKING:
    try:
        _f = getattr(_plib, _name)
    except AttributeError:
        setattr(F, _name[6:], _Missing(_name))
        continue
    setattr(F, _name[6:], _f)
NOWAIT_C = c_int64(0)

# The C hot paths (shoal/_speedups.c), unless $SHOAL_PY_PURE is set or the extension
# was not built: then everything runs through ctypes.
speedups = None
if not os.environ.get("SHOAL_PY_PURE"):
    try:
        from . import _speedups as speedups
    except ImportError:
        speedups = None
    else:
        speedups.init({n: ctypes.cast(getattr(_plib, n), c_void_p).value for n in (
            "shoal_lock_try", "shoal_lock_release", "shoal_queue_try_put",
            "shoal_queue_try_get", "shoal_pipe_send", "shoal_pipe_recv",
            "shoal_value_add", "shoal_queue_get")})

_sizes = {}


def size_c(n):
    """An immutable c_size_t of n (shared: cached for the sizes messages keep
    having), for the F functions."""
    c = _sizes.get(n)
    if c is None:
        c = c_size_t(n)
        if len(_sizes) < 4096:
            _sizes[n] = c
    return c


OPEN, CREATE, OPEN_OR_CREATE = 1, 2, 3
LOCK_RLOCK, LOCK_NONE, LOCK_CALLER = 0, 1, 2
FOREVER = -1
NOWAIT = 0

KIND_SHM, KIND_VALUE, KIND_ARRAY, KIND_LOCK, KIND_RLOCK = 1, 2, 3, 4, 5
KIND_SEMAPHORE, KIND_BOUNDED_SEMAPHORE, KIND_CONDITION = 6, 7, 8
KIND_EVENT, KIND_BARRIER, KIND_QUEUE, KIND_PIPE = 9, 10, 11, 12

# ---- errors ----------------------------------------------------------------------


def error(rc, what=None):
    """The exception for a failed call's rc, with the calling thread's detail."""
    detail = C.errdetail()
    detail = detail.decode("utf-8", "replace") if detail else ""
    if not detail:
        text = C.strerror(rc).decode()
        detail = "%s: %s" % (what, text) if what else text
    return errors.error_class(rc)(detail, rc)


def check(rc, what=None):
    """Raises the matching exception when rc is negative; returns rc otherwise."""
    if rc < 0:
        raise error(rc, what)
    return rc


# ---- names, attributes and timeouts -------------------------------------------------


def encode_name(name):
    if name is None:
        return None
    if isinstance(name, bytes):
        return name
    if not isinstance(name, str):
        raise TypeError("name must be a str, not %s" % type(name).__name__)
    return name.encode("utf-8")


def open_mode(create):
    """create=None: open or create; True: create (the name must be free); False:
    open (it must exist)."""
    if create is None:
        return OPEN_OR_CREATE
    return CREATE if create else OPEN


class Place:
    """Where an object lives: root directory and domain, resolved when the object is
    made so that another process (with another environment) opens the same one."""

    __slots__ = ("root", "domain", "_attr")

    def __init__(self, root=None, domain=None):
        self.root = root if root is not None else (os.environ.get("SHOAL_ROOT") or None)
        self.domain = domain if domain is not None else (
            os.environ.get("SHOAL_DOMAIN") or None)
        self._attr = None

    def attr(self, lock=LOCK_RLOCK, caller_lock=None, mode=0):
        if lock == LOCK_RLOCK and caller_lock is None and mode == 0:
            if self._attr is None:
                self._attr = self._make(LOCK_RLOCK, None, 0)
            return self._attr
        return self._make(lock, caller_lock, mode)

    def _make(self, lock, caller_lock, mode):
        return shoal_attr(encode_name(self.root), encode_name(self.domain), mode, lock,
                          caller_lock)

    def __reduce__(self):
        return (Place, (self.root, self.domain))

    def __repr__(self):
        return "Place(root=%r, domain=%r)" % (self.root, self.domain)


# Longest single wait, so that a blocked thread returns to the interpreter regularly
# and Ctrl-C (KeyboardInterrupt) works; waits are level-triggered, so looping is safe.
_SLICE_NS = 200_000_000


def to_ns(timeout):
    """seconds (None: forever) -> shoal_duration."""
    if timeout is None:
        return FOREVER
    if timeout <= 0:
        return NOWAIT
    return int(timeout * 1e9)


def wait_loop(fn, args, timeout, timed_out=errors.ETIMEDOUT):
    """Calls fn(*args, slice_ns) until it returns something other than timed_out or
    the timeout (seconds, None: forever) has passed. Returns fn's last rc."""
    if timeout is not None and timeout <= 0:
        return fn(*args, NOWAIT)
    total = to_ns(timeout)
    if total != FOREVER and total <= _SLICE_NS:
        return fn(*args, total)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = _SLICE_NS
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return timed_out
            step = min(step, max(int(left * 1e9), 1))
        rc = fn(*args, step)
        if rc != timed_out:
            return rc


# ---- processes ----------------------------------------------------------------------


class _ProcState:
    pid = os.getpid()


proc = _ProcState()


def _after_fork_in_child():
    proc.pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_tls = threading.local()


def recv_state(size):
    """This thread's receive scratch: (buffer of >= size bytes, its size, a size_t
    for the received length, a pointer to that size_t)."""
    st = getattr(_tls, "rx", None)
    if st is None or st[1] < size:
        n = c_size_t()
        st = (ctypes.create_string_buffer(max(size, 4096)), max(size, 4096), n, byref(n))
        _tls.rx = st
    return st


def set_spin_ns(ns):
    """Sets how long waiters of this process busy-poll before sleeping (ns)."""
    C.set_spin_ns(int(ns))


def spin_ns():
    return C.spin_ns()


__all__ = ["C", "F", "lib", "library_path", "check", "error", "speedups"]
