"""shoal: typed, crash-safe shared memory between processes, with multiprocessing's API.

Change ``from multiprocessing import Process, Value, Array, Queue, Pipe, Lock`` into
``from shoal import ...`` and the program runs on shoal: every object now also has a
name, so any process — forked, spawned, or started by hand, in Python or in another
language — opens it by that name, and objects pickle by name (they can travel through
queues and reach processes that were not forked from their creator).

Process management (Process, current_process, ...) is multiprocessing's own,
re-exported here so that only the imports change.
"""

import multiprocessing as _mp
import os as _os

# A build tree keeps the compiled extension (shoal._speedups) outside the sources:
# $SHOAL_PY_EXT_DIR names its directory.
if _os.environ.get("SHOAL_PY_EXT_DIR"):
    __path__.append(_os.environ["SHOAL_PY_EXT_DIR"])

from . import errors, rpc
from ._lib import library_path, set_spin_ns, spin_ns
from ._object import gc, stat, unlink
from .connection import Connection, Pipe
from .errors import (
    AccessDenied, AlreadyExists, BadName, BrokenBarrier, BrokenPipe, Busy, Closed,
    CorruptSegment,
    Deadlock, EndOfStream, ForeignSegment, InvalidArgument, InvalidData, LayoutMismatch,
    LibraryNotFound, MessageTooLarge, NoSpace, NotFound, NotOwner, OutOfRange, OwnerDied,
    PeerDied, ReleasedTooManyTimes, ShoalError, SystemFailure, Timeout, TruncatedSegment,
    VersionMismatch, WouldBlock, WrongKind, WrongType,
)
from .managers import Manager, SyncManager
from .queues import JoinableQueue, Queue, SimpleQueue, TypedQueue
from .sharedctypes import Array, RawArray, RawValue, Value
from .sync import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore
from .types import Struct, layout_hash

# multiprocessing's process management, unchanged.
Process = _mp.Process
current_process = _mp.current_process
active_children = _mp.active_children
parent_process = _mp.parent_process
cpu_count = _mp.cpu_count
freeze_support = _mp.freeze_support
set_start_method = _mp.set_start_method
get_start_method = _mp.get_start_method
get_context = _mp.get_context
Pool = _mp.Pool
TimeoutError = _mp.TimeoutError

__version__ = "0.1.0"

__all__ = [
    "Array", "Barrier", "BoundedSemaphore", "Condition", "Connection", "Event",
    "JoinableQueue", "Lock", "Manager", "Pipe", "Pool", "Process", "Queue", "RLock", "RawArray",
    "RawValue", "Semaphore", "SimpleQueue", "SyncManager", "Struct", "TypedQueue", "Value",
    "active_children", "cpu_count", "current_process", "errors", "freeze_support",
    "gc", "get_context", "get_start_method", "layout_hash", "library_path",
    "parent_process", "rpc", "set_spin_ns", "set_start_method", "spin_ns", "stat",
    "unlink",
    "AccessDenied", "AlreadyExists", "BadName", "BrokenBarrier", "BrokenPipe", "Busy",
    "Closed",
    "CorruptSegment", "Deadlock", "EndOfStream", "ForeignSegment", "InvalidArgument",
    "InvalidData", "LayoutMismatch", "LibraryNotFound", "MessageTooLarge", "NoSpace",
    "NotFound", "NotOwner", "OutOfRange", "OwnerDied", "PeerDied",
    "ReleasedTooManyTimes", "ShoalError", "SystemFailure", "Timeout", "TimeoutError",
    "TruncatedSegment", "VersionMismatch", "WouldBlock", "WrongKind", "WrongType",
]
