"""Exceptions mirroring libshoal's SHOAL_E* codes.

Every error a shoal call can report is a :class:`ShoalError` carrying the C code
(``.code``), its constant text (``.text``) and the library's detail message
(``.detail``, naming the object and what was wrong). Each code has its own subclass,
which also derives from the built-in exception a Python programmer would catch for the
same situation (``FileNotFoundError`` for an unknown name, ``TimeoutError`` for an
expired wait, ``IndexError`` for an index out of range, ...), so code written for
``multiprocessing`` keeps working.
"""

import queue as _queue
import threading as _threading

# The C codes (runtime/include/shoal/common.h). Stable numbers.
OK = 0
EINVAL = -1
ENOMEM = -2
ENOENT = -3
EEXIST = -4
ENAME = -5
EKIND = -6
ELAYOUT = -7
ECORRUPT = -8
ETRUNCATED = -9
EFOREIGN = -10
EVERSION = -11
ENOSPC = -12
ETIMEDOUT = -13
EAGAIN = -14
EOWNERDEAD = -15
EPERM = -16
ERANGE = -17
EOVERFLOW = -18
EMSGSIZE = -19
ECLOSED = -20
EEOF = -21
EPEERDEAD = -22
EBROKEN = -23
EDEADLK = -24
ETYPE = -25
EACCES = -26
EBUSY = -27
ESYS = -28
EINVALID_DATA = -29
EINTR = -30  # an interruptible wait was ended by a signal handler


class ShoalError(Exception):
    """A libshoal call failed. ``code`` is the SHOAL_E* number, ``detail`` the
    library's message naming the object."""

    code = None
    text = "shoal error"

    def __init__(self, detail="", code=None):
        if code is not None:
            self.code = code
        self.detail = detail
        super().__init__(detail or self.text)

    def __reduce__(self):
        return (type(self), (self.detail, self.code))


def _optional(name):
    """A built-in base that only newer Pythons have (e.g. queue.ShutDown, 3.13)."""
    base = getattr(_queue, name, None)
    return (base,) if base is not None else ()


class InvalidArgument(ShoalError, ValueError):
    code, text = EINVAL, "invalid argument"


class OutOfMemory(ShoalError, MemoryError):
    code, text = ENOMEM, "out of memory"


class NotFound(ShoalError, FileNotFoundError):
    code, text = ENOENT, "no such object"


class AlreadyExists(ShoalError, FileExistsError):
    code, text = EEXIST, "object already exists"


class BadName(ShoalError, ValueError):
    code, text = ENAME, "invalid name"


class WrongKind(ShoalError, TypeError):
    code, text = EKIND, "wrong kind of object"


class LayoutMismatch(ShoalError, TypeError):
    code, text = ELAYOUT, "layout mismatch"


class CorruptSegment(ShoalError, OSError):
    code, text = ECORRUPT, "corrupt segment"


class TruncatedSegment(CorruptSegment):
    code, text = ETRUNCATED, "truncated segment"


class ForeignSegment(ShoalError, OSError):
    code, text = EFOREIGN, "not a shoal segment"


class VersionMismatch(ShoalError, OSError):
    code, text = EVERSION, "incompatible segment format version"


class NoSpace(ShoalError, OSError):
    code, text = ENOSPC, "no space left for the segment"


class Timeout(ShoalError, TimeoutError):
    code, text = ETIMEDOUT, "timed out"


class WouldBlock(ShoalError, BlockingIOError):
    code, text = EAGAIN, "would block"


class OwnerDied(ShoalError):
    """The lock was acquired, but its previous holder died holding it: the data it
    protects may be half updated. The lock IS held by the caller when this is
    raised (only with ``acquire(raise_owner_died=True)``)."""

    code, text = EOWNERDEAD, "previous owner died"


class NotOwner(ShoalError, RuntimeError, ValueError):
    """Release of a lock the caller does not hold. A RuntimeError as for threading's
    locks, and a ValueError as for multiprocessing's."""

    code, text = EPERM, "not the owner"


class OutOfRange(ShoalError, IndexError):
    code, text = ERANGE, "index out of range"


class ReleasedTooManyTimes(ShoalError, ValueError):
    code, text = EOVERFLOW, "released too many times"


class MessageTooLarge(ShoalError, ValueError):
    code, text = EMSGSIZE, "message size wrong or too large"


class Closed(ShoalError, ValueError, *_optional("ShutDown")):
    """The queue was shut down (or the pipe end closed): no more puts or sends."""

    code, text = ECLOSED, "closed"


class EndOfStream(ShoalError, EOFError, *_optional("ShutDown")):
    """The queue was shut down and drained, or the pipe's other end closed and
    everything it sent was received: nothing more will ever arrive."""

    code, text = EEOF, "end of stream"


class PeerDied(EndOfStream):
    """The other end's process died (after everything it sent was received)."""

    code, text = EPEERDEAD, "peer process died"


class BrokenPipe(ShoalError, BrokenPipeError):
    """A send to a pipe whose other end is closed (code EEOF) or whose process died
    (code EPEERDEAD)."""

    code, text = EEOF, "the other end of the pipe is closed or dead"


class BrokenBarrier(ShoalError, _threading.BrokenBarrierError):
    code, text = EBROKEN, "barrier broken"


class Deadlock(ShoalError, RuntimeError):
    code, text = EDEADLK, "lock already held by this thread"


class WrongType(ShoalError, TypeError):
    code, text = ETYPE, "wrong element type for this operation"


class AccessDenied(ShoalError, PermissionError):
    code, text = EACCES, "permission denied"


class Busy(ShoalError, OSError):
    code, text = EBUSY, "in use"


class SystemFailure(ShoalError, OSError):
    code, text = ESYS, "system error"


class InvalidData(ShoalError, ValueError):
    code, text = EINVALID_DATA, "invalid data"


class Interrupted(ShoalError, InterruptedError):
    code, text = EINTR, "interrupted by a signal"


class LibraryNotFound(ImportError):
    """libshoal could not be loaded (see shoal._lib for where it is looked for)."""


_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgument, OutOfMemory, NotFound, AlreadyExists, BadName, WrongKind,
        LayoutMismatch, CorruptSegment, TruncatedSegment, ForeignSegment,
        VersionMismatch, NoSpace, Timeout, WouldBlock, OwnerDied, NotOwner, OutOfRange,
        ReleasedTooManyTimes, MessageTooLarge, Closed, EndOfStream, PeerDied,
        BrokenBarrier, Deadlock, WrongType, AccessDenied, Busy, SystemFailure,
        InvalidData, Interrupted,
    )
}


def error_class(code):
    """The exception class for a SHOAL_E* code (ShoalError for an unknown one)."""
    return _BY_CODE.get(code, ShoalError)
