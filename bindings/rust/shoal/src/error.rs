//! Errors: every failure of libshoal is a negative `SHOAL_E*` code plus a per-thread
//! detail message naming the object and what was wrong. [`Error`] carries both: its
//! [`ErrorKind`] is the code (the discriminants are the C numbers) and its detail is
//! the message `shoal_errdetail()` held right after the failing call.
use std::ffi::{c_int, CStr};
use std::fmt;

use shoal_sys as sys;

/// What went wrong, one variant per `SHOAL_E*` code (same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorKind {
    Inval = -1,
    NoMem = -2,
    NoEnt = -3,
    Exist = -4,
    Name = -5,
    Kind = -6,
    Layout = -7,
    Corrupt = -8,
    Truncated = -9,
    Foreign = -10,
    Version = -11,
    NoSpc = -12,
    TimedOut = -13,
    Again = -14,
    OwnerDead = -15,
    Perm = -16,
    Range = -17,
    Overflow = -18,
    MsgSize = -19,
    Closed = -20,
    Eof = -21,
    PeerDead = -22,
    Broken = -23,
    Deadlk = -24,
    Type = -25,
    Acces = -26,
    Busy = -27,
    Sys = -28,
    InvalidData = -29,
    Intr = -30,
    /// A code this version of the binding does not know.
    Unknown = i32::MIN,
}

impl ErrorKind {
    /// The kind of a negative `SHOAL_E*` code.
    pub fn from_code(rc: i32) -> ErrorKind {
        use ErrorKind::*;
        const ALL: [ErrorKind; 30] = [
            Inval,
            NoMem,
            NoEnt,
            Exist,
            Name,
            Kind,
            Layout,
            Corrupt,
            Truncated,
            Foreign,
            Version,
            NoSpc,
            TimedOut,
            Again,
            OwnerDead,
            Perm,
            Range,
            Overflow,
            MsgSize,
            Closed,
            Eof,
            PeerDead,
            Broken,
            Deadlk,
            Type,
            Acces,
            Busy,
            Sys,
            InvalidData,
            Intr,
        ];
        if (-30..=-1).contains(&rc) {
            ALL[(-rc - 1) as usize]
        } else {
            Unknown
        }
    }
}

/// A failed shoal operation: the code and the detail message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: i32,
    detail: String,
}

/// `Result` with shoal's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error for `rc` with the calling thread's current detail message (call it
    /// right after the failing C function).
    pub fn last(rc: i32) -> Error {
        // SAFETY: shoal_errdetail returns a valid NUL-terminated string.
        let detail = unsafe { CStr::from_ptr(sys::shoal_errdetail()) };
        Error { code: rc, detail: detail.to_string_lossy().into_owned() }
    }

    /// An error made on the Rust side, with its own detail.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error { code: kind as i32, detail: detail.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_code(self.code)
    }

    /// The `SHOAL_E*` number.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The detail message (may be empty).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// `shoal_strerror()` of the code: a short constant text.
    pub fn summary(&self) -> &'static str {
        strerror(self.code)
    }
}

/// `shoal_strerror(rc)`.
pub fn strerror(rc: i32) -> &'static str {
    // SAFETY: shoal_strerror returns a constant, static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::shoal_strerror(rc)) }.to_str().unwrap_or("unknown error")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.summary())
        } else {
            write!(f, "{}: {}", self.summary(), self.detail)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}, {:?})", self.kind(), self.detail)
    }
}

impl std::error::Error for Error {}

/// 0 or a positive result passes; a negative code becomes an [`Error`].
pub(crate) fn check(rc: c_int) -> Result<c_int> {
    if rc < 0 {
        Err(Error::last(rc))
    } else {
        Ok(rc)
    }
}
