//! Support for the code `shoal gen --lang rust` writes: the inline member types of
//! fixed layouts, the wrappers that let layout descriptors be statics, and the
//! validation error. Generated structs are `#[repr(C)]` compositions of these types
//! and scalars, so Rust's layout is C's (docs/schema.md section 3); the generated file
//! asserts every size and offset at compile time.
//!
//! Each type here accepts every bit pattern (a bool is a byte, an enum an i32, a length
//! or count may be out of range): values arrive from other processes, and validation,
//! not the type system, decides whether they are acceptable.
use std::ffi::c_char;
use std::fmt;

use shoal_sys as sys;

use crate::element::Element;
use crate::error::{Error, ErrorKind, Result};

/// A bounded string or bytes field of capacity `N`: a u32 length, then `N` bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Str<const N: usize> {
    pub len: u32,
    pub data: [u8; N],
}

impl<const N: usize> Str<N> {
    /// The bytes in use (at most `N`, even if `len` says more).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..(self.len as usize).min(N)]
    }
    /// The text (kind `InvalidData` if it is not UTF-8).
    pub fn as_str(&self) -> Result<&str> {
        std::str::from_utf8(self.as_bytes())
            .map_err(|e| Error::new(ErrorKind::InvalidData, format!("not UTF-8: {e}")))
    }
    /// Stores `b`, refusing more than `N` bytes (`what` names the field in the error).
    pub fn set(&mut self, b: &[u8], what: &str) -> Result<()> {
        if b.len() > N {
            return Err(invalid(format!("{what}: length {} over max_len {N}", b.len())));
        }
        self.data[..b.len()].copy_from_slice(b);
        self.len = b.len() as u32;
        Ok(())
    }
}

impl<const N: usize> Default for Str<N> {
    fn default() -> Self {
        Str { len: 0, data: [0; N] }
    }
}

impl<const N: usize> fmt::Debug for Str<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(_) => fmt::Debug::fmt(self.as_bytes(), f),
        }
    }
}

impl<const N: usize> PartialEq for Str<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// A repeated field of capacity `K`: a u32 count, then `K` elements.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Repeated<T: Copy, const K: usize> {
    pub count: u32,
    pub items: [T; K],
}

impl<T: Copy, const K: usize> Repeated<T, K> {
    /// The elements in use (at most `K`).
    pub fn as_slice(&self) -> &[T] {
        &self.items[..(self.count as usize).min(K)]
    }
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Replaces the elements, refusing more than `K`.
    pub fn set(&mut self, v: &[T], what: &str) -> Result<()> {
        if v.len() > K {
            return Err(invalid(format!("{what}: count {} over max_count {K}", v.len())));
        }
        self.items[..v.len()].copy_from_slice(v);
        self.count = v.len() as u32;
        Ok(())
    }
    /// Appends one element, refusing the (K+1)-th.
    pub fn push(&mut self, v: T, what: &str) -> Result<()> {
        let n = self.len();
        if n >= K {
            return Err(invalid(format!("{what}: count {} over max_count {K}", n + 1)));
        }
        self.items[n] = v;
        self.count = n as u32 + 1;
        Ok(())
    }
}

impl<T: Copy + fmt::Debug, const K: usize> fmt::Debug for Repeated<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<T: Copy + PartialEq, const K: usize> PartialEq for Repeated<T, K> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// A bool member: one byte that should hold 0 or 1.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Bool(pub u8);

impl Bool {
    pub fn get(self) -> bool {
        self.0 != 0
    }
}

impl From<bool> for Bool {
    fn from(b: bool) -> Bool {
        Bool(b as u8)
    }
}

impl fmt::Debug for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("false"),
            1 => f.write_str("true"),
            n => write!(f, "Bool({n})"),
        }
    }
}

/// A type descriptor that can be a `static` (it holds only pointers to statics).
#[repr(transparent)]
pub struct TypeDesc(pub sys::shoal_type);
// SAFETY: immutable, pointing only at static data.
unsafe impl Sync for TypeDesc {}

/// A descriptor's field list as a `static`.
#[repr(transparent)]
pub struct Fields<const N: usize>(pub [sys::shoal_field; N]);
// SAFETY: immutable, pointing only at static data.
unsafe impl<const N: usize> Sync for Fields<N> {}

/// One field entry of a descriptor.
#[allow(clippy::too_many_arguments)]
pub const fn field(
    name: &'static std::ffi::CStr,
    number: u32,
    kind: u32,
    offset: u32,
    size: u32,
    max_count: u32,
    max_len: u32,
    nested: *const sys::shoal_type,
) -> sys::shoal_field {
    sys::shoal_field { name: name.as_ptr(), number, kind, offset, size, max_count, max_len, type_: nested }
}

/// A struct's descriptor.
pub const fn desc(
    name: &'static std::ffi::CStr,
    hash: u64,
    size: u32,
    align: u32,
    fields: *const sys::shoal_field,
    nfields: u32,
) -> sys::shoal_type {
    sys::shoal_type { name: name.as_ptr(), layout_hash: hash, size, align, typecode: 0, nfields, fields }
}

/// Records a validation failure as the thread's detail message (as generated C code
/// does) and returns it as an `InvalidData` error.
pub fn invalid(msg: String) -> Error {
    let c = std::ffi::CString::new(msg.replace('\0', "?")).unwrap_or_default();
    // SAFETY: a "%s" format with one C string argument.
    let rc = unsafe { sys::shoal_invalid(c"%s".as_ptr() as *const c_char, c.as_ptr()) };
    Error::last(rc)
}

/// An all-zero value (every generated type and scalar accepts every bit pattern).
pub fn zeroed<T: Element>() -> T {
    // SAFETY: Element requires every bit pattern to be valid.
    unsafe { std::mem::zeroed() }
}
