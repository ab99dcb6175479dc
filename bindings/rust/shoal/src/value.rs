//! Value and Array: a typed scalar or struct, and a typed fixed-length array, in shared
//! memory, opened by name from any process and any language.
//!
//! Reads and writes take the object's robust lock (unless it was made with
//! `LockMode::None`); [`Value::lock`] exposes it for compound updates. Integer scalars
//! have lock-free atomics (`add`, `exchange`, `compare_exchange`, `load`, `store`).
//! Whatever comes out of shared memory another process may have written: it is
//! validated (generated types check bounds and enum values) before it is returned,
//! and whatever goes in is validated first. Handles are `Send + Sync`: every operation
//! is a locked copy or an atomic.
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::ptr;

use shoal_sys as sys;

use crate::element::{Element, Integer};
use crate::error::{check, Error, ErrorKind, Result};
use crate::options::{borrowed_str, c_name, name_ptr, OpenMode, Options};
use crate::sync::Lock;

fn check_size<T: Element>() {
    // SAFETY: Element guarantees a valid static descriptor.
    let size = unsafe { (*T::shoal_type()).size } as usize;
    assert_eq!(size, size_of::<T>(), "shoal: element descriptor size differs from the Rust type's");
}

/// A typed value in shared memory, like `multiprocessing.Value`.
pub struct Value<T: Element> {
    raw: *mut sys::shoal_value,
    lock: Option<Lock>,
    _t: PhantomData<T>,
}

unsafe impl<T: Element> Send for Value<T> {}
unsafe impl<T: Element> Sync for Value<T> {}

impl<T: Element> Value<T> {
    /// Opens or creates the Value `name` (None: a new anonymous one, removed when its
    /// last user has gone). `init` (default: zeros) is used only when creating.
    pub fn open(name: Option<&str>, mode: OpenMode, init: Option<&T>, opts: &Options) -> Result<Value<T>> {
        check_size::<T>();
        if let Some(v) = init {
            v.validate()?;
        }
        let cname = c_name(name)?;
        let attr = opts.raw();
        let mut raw = ptr::null_mut();
        let init_ptr = init.map_or(ptr::null(), |v| v as *const T as *const _);
        check(unsafe {
            sys::shoal_value_open(&mut raw, name_ptr(&cname), mode.raw(), T::shoal_type(), init_ptr, &attr)
        })?;
        let lock = Lock::borrowed(unsafe { sys::shoal_value_get_lock(raw) });
        Ok(Value { raw, lock, _t: PhantomData })
    }

    /// A new anonymous value holding `init`, with default options.
    pub fn new(init: T) -> Result<Value<T>> {
        Value::open(None, OpenMode::Create, Some(&init), &Options::default())
    }

    /// Its name (generated for an anonymous value).
    pub fn name(&self) -> &str {
        unsafe { borrowed_str(sys::shoal_value_name(self.raw)) }
    }

    /// A copy of the value, read under its lock and validated.
    pub fn get(&self) -> Result<T> {
        let mut out = MaybeUninit::<T>::uninit();
        check(unsafe { sys::shoal_value_read(self.raw, out.as_mut_ptr() as *mut _) })?;
        let v = unsafe { out.assume_init() };
        v.validate()?;
        Ok(v)
    }

    /// Validates `v` and writes it under the lock.
    pub fn set(&self, v: &T) -> Result<()> {
        v.validate()?;
        check(unsafe { sys::shoal_value_write(self.raw, v as *const T as *const _) }).map(drop)
    }

    /// A torn-free copy read without the lock and without blocking writers.
    pub fn snapshot(&self) -> Result<T> {
        let mut out = MaybeUninit::<T>::uninit();
        check(unsafe { sys::shoal_value_snapshot(self.raw, out.as_mut_ptr() as *mut _) })?;
        let v = unsafe { out.assume_init() };
        v.validate()?;
        Ok(v)
    }

    /// The value's lock (None with `LockMode::None`), for compound updates:
    /// `let _g = v.lock().unwrap().acquire(FOREVER); v.set(&(v.get()? * 2))?;`.
    pub fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }
}

impl<T: Integer> Value<T> {
    /// Atomically adds `delta` (wrapping at the type's width); returns the old value.
    pub fn add(&self, delta: T) -> Result<T> {
        let mut old = 0i64;
        check(unsafe { sys::shoal_value_add(self.raw, delta.to_i64(), &mut old) })?;
        Ok(T::from_i64(old))
    }
    /// Atomically stores `v`; returns the old value.
    pub fn exchange(&self, v: T) -> Result<T> {
        let mut old = 0i64;
        check(unsafe { sys::shoal_value_exchange(self.raw, v.to_i64(), &mut old) })?;
        Ok(T::from_i64(old))
    }
    /// Stores `desired` if the value is `expected`: `Ok(Ok(expected))`, else
    /// `Ok(Err(current))`.
    pub fn compare_exchange(&self, expected: T, desired: T) -> Result<std::result::Result<T, T>> {
        let mut cur = expected.to_i64();
        match unsafe { sys::shoal_value_cas(self.raw, &mut cur, desired.to_i64()) } {
            0 => Ok(Ok(expected)),
            sys::SHOAL_EAGAIN => Ok(Err(T::from_i64(cur))),
            rc => Err(Error::last(rc)),
        }
    }
    /// Atomic load.
    pub fn load(&self) -> Result<T> {
        let mut v = 0i64;
        check(unsafe { sys::shoal_value_load(self.raw, &mut v) })?;
        Ok(T::from_i64(v))
    }
    /// Atomic store.
    pub fn store(&self, v: T) -> Result<()> {
        check(unsafe { sys::shoal_value_store(self.raw, v.to_i64()) }).map(drop)
    }
}

impl<T: Element> Drop for Value<T> {
    fn drop(&mut self) {
        self.lock = None;
        unsafe { sys::shoal_value_close(self.raw) };
    }
}

/// A typed fixed-length array in shared memory, like `multiprocessing.Array`.
pub struct Array<T: Element> {
    raw: *mut sys::shoal_array,
    lock: Option<Lock>,
    len: usize,
    _t: PhantomData<T>,
}

unsafe impl<T: Element> Send for Array<T> {}
unsafe impl<T: Element> Sync for Array<T> {}

impl<T: Element> Array<T> {
    /// Opens or creates the Array `name` of `len` elements (with `OpenMode::Open`, 0
    /// accepts any length). `init` (default: zeros) must hold `len` elements; it is
    /// used only when creating.
    pub fn open(
        name: Option<&str>,
        mode: OpenMode,
        len: usize,
        init: Option<&[T]>,
        opts: &Options,
    ) -> Result<Array<T>> {
        check_size::<T>();
        if let Some(v) = init {
            if v.len() != len {
                return Err(Error::new(
                    ErrorKind::Inval,
                    format!("initial data has {} elements, the array {len}", v.len()),
                ));
            }
            v.iter().try_for_each(Element::validate)?;
        }
        let cname = c_name(name)?;
        let attr = opts.raw();
        let mut raw = ptr::null_mut();
        let init_ptr = init.map_or(ptr::null(), |v| v.as_ptr() as *const _);
        check(unsafe {
            sys::shoal_array_open(
                &mut raw,
                name_ptr(&cname),
                mode.raw(),
                T::shoal_type(),
                len,
                init_ptr,
                &attr,
            )
        })?;
        let lock = Lock::borrowed(unsafe { sys::shoal_array_get_lock(raw) });
        let len = unsafe { sys::shoal_array_len(raw) };
        Ok(Array { raw, lock, len, _t: PhantomData })
    }

    /// A new anonymous array holding a copy of `init`.
    pub fn new(init: &[T]) -> Result<Array<T>> {
        Array::open(None, OpenMode::Create, init.len(), Some(init), &Options::default())
    }

    pub fn name(&self) -> &str {
        unsafe { borrowed_str(sys::shoal_array_name(self.raw)) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i` (kind `Range` past the end), validated.
    pub fn get(&self, i: usize) -> Result<T> {
        let mut out = MaybeUninit::<T>::uninit();
        check(unsafe { sys::shoal_array_get(self.raw, i, out.as_mut_ptr() as *mut _) })?;
        let v = unsafe { out.assume_init() };
        v.validate()?;
        Ok(v)
    }

    /// Validates `v` and stores it at `i`.
    pub fn set(&self, i: usize, v: &T) -> Result<()> {
        v.validate()?;
        check(unsafe { sys::shoal_array_set(self.raw, i, v as *const T as *const _) }).map(drop)
    }

    /// Copies `out.len()` elements from index `start`, under the lock.
    pub fn read(&self, start: usize, out: &mut [T]) -> Result<()> {
        check(unsafe { sys::shoal_array_read(self.raw, start, out.len(), out.as_mut_ptr() as *mut _) })?;
        out.iter().try_for_each(Element::validate)
    }

    /// Writes `src` from index `start`, under the lock.
    pub fn write(&self, start: usize, src: &[T]) -> Result<()> {
        src.iter().try_for_each(Element::validate)?;
        check(unsafe { sys::shoal_array_write(self.raw, start, src.len(), src.as_ptr() as *const _) })
            .map(drop)
    }

    /// Every element.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let mut v = Vec::with_capacity(self.len);
        check(unsafe { sys::shoal_array_read(self.raw, 0, self.len, v.as_mut_ptr() as *mut _) })?;
        unsafe { v.set_len(self.len) };
        v.iter().try_for_each(Element::validate)?;
        Ok(v)
    }

    pub fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }
}

impl<T: Integer> Array<T> {
    /// Atomically adds `delta` to element `i`; returns the old value.
    pub fn add(&self, i: usize, delta: T) -> Result<T> {
        let mut old = 0i64;
        check(unsafe { sys::shoal_array_add(self.raw, i, delta.to_i64(), &mut old) })?;
        Ok(T::from_i64(old))
    }
}

impl<T: Element> Drop for Array<T> {
    fn drop(&mut self) {
        self.lock = None;
        unsafe { sys::shoal_array_close(self.raw) };
    }
}
