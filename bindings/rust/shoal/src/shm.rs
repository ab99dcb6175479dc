//! SharedMemory: a raw named block of bytes, as Python's
//! `multiprocessing.shared_memory` offers, for users who lay out their own data.
//!
//! Other processes may change the bytes at any time, so the block is never lent out as
//! a Rust slice by safe code: [`SharedMemory::read`] and [`SharedMemory::write`] copy,
//! and [`SharedMemory::as_ptr`] gives the mapping for atomics or your own protocol.
use std::ptr;

use shoal_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::options::{borrowed_str, c_name, name_ptr, OpenMode, Options};

pub struct SharedMemory {
    raw: *mut sys::shoal_shm,
    data: *mut u8,
    len: usize,
}

unsafe impl Send for SharedMemory {}
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Opens or creates the block `name` (None: anonymous) of `size` bytes, zero-filled
    /// when new (`size` 0 with `OpenMode::Open` accepts any size).
    pub fn open(name: Option<&str>, mode: OpenMode, size: usize, opts: &Options) -> Result<SharedMemory> {
        let cname = c_name(name)?;
        let attr = opts.raw();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::shoal_shm_open(&mut raw, name_ptr(&cname), mode.raw(), size, &attr) })?;
        let data = unsafe { sys::shoal_shm_data(raw) } as *mut u8;
        let len = unsafe { sys::shoal_shm_size(raw) };
        Ok(SharedMemory { raw, data, len })
    }

    pub fn name(&self) -> &str {
        unsafe { borrowed_str(sys::shoal_shm_name(self.raw)) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes (valid while `self` lives).
    pub fn as_ptr(&self) -> *mut u8 {
        self.data
    }

    /// The bytes as a slice.
    ///
    /// # Safety
    /// No process may write the block while the slice lives.
    pub unsafe fn as_slice(&self) -> &[u8] {
        std::slice::from_raw_parts(self.data, self.len)
    }

    fn range(&self, offset: usize, n: usize) -> Result<()> {
        match offset.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::new(
                ErrorKind::Range,
                format!(
                    "shared memory \"{}\": bytes {offset}..+{n} beyond its {} bytes",
                    self.name(),
                    self.len
                ),
            )),
        }
    }

    /// Copies `out.len()` bytes from `offset`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.range(offset, out.len())?;
        unsafe { ptr::copy_nonoverlapping(self.data.add(offset), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `src` to `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<()> {
        self.range(offset, src.len())?;
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.data.add(offset), src.len()) };
        Ok(())
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        unsafe { sys::shoal_shm_close(self.raw) };
    }
}

/// Removes the name of any object (processes that have it open keep using it).
pub fn unlink(name: &str, opts: &Options) -> Result<()> {
    let cname = c_name(Some(name))?;
    let attr = opts.raw();
    check(unsafe { sys::shoal_unlink(name_ptr(&cname), &attr) }).map(drop)
}
