//! How objects are opened: the open mode, the optional attributes (root directory,
//! domain, file mode, locking of values and arrays), names and timeouts, converted to
//! what the C API takes.
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::time::Duration;

use shoal_sys as sys;

use crate::error::{Error, ErrorKind, Result};

/// How an object is opened by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// It must exist.
    Open,
    /// It must not exist (exclusive create).
    Create,
    /// Open it, or create it if absent; race-free between processes.
    OpenOrCreate,
}

impl OpenMode {
    pub(crate) fn raw(self) -> i32 {
        match self {
            OpenMode::Open => sys::SHOAL_OPEN,
            OpenMode::Create => sys::SHOAL_CREATE,
            OpenMode::OpenOrCreate => sys::SHOAL_OPEN_OR_CREATE,
        }
    }
}

/// How a Value or Array is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// A robust recursive lock inside the object (the default, as in multiprocessing).
    #[default]
    RLock,
    /// No lock: raw access (atomics and snapshots still work).
    None,
}

/// Optional attributes of an object; `Options::default()` takes `$SHOAL_ROOT` /
/// `$SHOAL_DOMAIN` or the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    root: Option<CString>,
    domain: Option<CString>,
    mode: u32,
    lock: LockMode,
}

impl Options {
    pub fn new() -> Options {
        Options::default()
    }
    /// The directory of domains (default `$SHOAL_ROOT` or `/dev/shm/shoal`).
    pub fn root(mut self, root: &str) -> Options {
        self.root = CString::new(root).ok();
        self
    }
    /// The namespace under the root (default `$SHOAL_DOMAIN` or `default`).
    pub fn domain(mut self, domain: &str) -> Options {
        self.domain = CString::new(domain).ok();
        self
    }
    /// The file mode of a created object (default 0600).
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = mode;
        self
    }
    /// How a Value or Array is locked.
    pub fn lock(mut self, lock: LockMode) -> Options {
        self.lock = lock;
        self
    }

    pub(crate) fn raw(&self) -> sys::shoal_attr {
        sys::shoal_attr {
            root: self.root.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            domain: self.domain.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            mode: self.mode,
            lock: match self.lock {
                LockMode::RLock => sys::SHOAL_LOCK_RLOCK,
                LockMode::None => sys::SHOAL_LOCK_NONE,
            },
            caller_lock: ptr::null_mut(),
        }
    }
}

/// An optional object name as a C string (a NUL inside is a `Name` error).
pub(crate) fn c_name(name: Option<&str>) -> Result<Option<CString>> {
    name.map(|n| {
        CString::new(n).map_err(|_| Error::new(ErrorKind::Name, format!("name {n:?} contains a NUL byte")))
    })
    .transpose()
}

pub(crate) fn name_ptr(name: &Option<CString>) -> *const c_char {
    name.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// A C string owned by the library (an object's name) as `&str`.
pub(crate) unsafe fn borrowed_str<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        ""
    } else {
        CStr::from_ptr(p).to_str().unwrap_or("")
    }
}

/// Waits without limit: pass it wherever a timeout is asked for.
pub const FOREVER: Duration = Duration::MAX;

/// A timeout in the C API's nanoseconds; anything beyond i64 nanoseconds (about 292
/// years, e.g. [`FOREVER`]) waits without limit.
pub(crate) fn nanos(d: Duration) -> sys::shoal_duration {
    i64::try_from(d.as_nanos()).unwrap_or(sys::SHOAL_FOREVER)
}
