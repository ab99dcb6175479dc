//! The synchronisation primitives: Lock and RLock (robust), Semaphore and
//! BoundedSemaphore, Condition, Event and Barrier, each a named segment any process
//! opens by name.
//!
//! Locks hand out RAII guards. A lock whose previous holder died holding it is still
//! acquired, but reported as [`LockError::OwnerDied`] carrying the guard, as
//! `std::sync::PoisonError` does: repair the data it protects, then carry on with
//! [`LockError::into_guard`]. A guard releases on drop and stays on its thread (libshoal
//! records the holder's thread id), so guards are neither `Send` nor `Sync`; the
//! primitives themselves are futex words in shared memory and are `Send + Sync`.
//!
//! Waiting calls take a `Duration` ([`crate::FOREVER`] waits without limit); a wait that
//! expires is an error of kind `TimedOut`, a `try_*` form that would wait one of kind
//! `Again`.
use std::ffi::{c_int, c_void};
use std::fmt;
use std::marker::PhantomData;
use std::ptr;
use std::time::Duration;

use shoal_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::options::{borrowed_str, c_name, name_ptr, nanos, OpenMode, Options};

/// Opens a named primitive with one of libshoal's `*_open` functions.
fn open_named<P>(
    name: Option<&str>,
    opts: &Options,
    f: impl FnOnce(*mut *mut P, *const std::ffi::c_char, *const sys::shoal_attr) -> c_int,
) -> Result<*mut P> {
    let cname = c_name(name)?;
    let attr = opts.raw();
    let mut out = ptr::null_mut();
    check(f(&mut out, name_ptr(&cname), &attr))?;
    Ok(out)
}

fn sync_name<'a, P>(p: *mut P) -> &'a str {
    // SAFETY: p is a live named primitive; its name lives as long as the mapping.
    unsafe { borrowed_str(sys::shoal_sync_name(p as *const c_void)) }
}

// ---- Lock / RLock ------------------------------------------------------------------

/// A robust process-shared lock, plain or recursive (an RLock).
pub struct Lock {
    raw: *mut sys::shoal_lock,
    owned: bool, // a named lock this handle closes; false: the lock of a Value/Array
}

// SAFETY: a lock is a futex word in shared memory, made for concurrent use.
unsafe impl Send for Lock {}
unsafe impl Sync for Lock {}

/// Why an acquisition did not simply succeed.
pub enum LockError<G> {
    /// Acquired, but the previous holder died holding it: the data it protects may
    /// be half updated. The guard is held.
    OwnerDied(G),
    /// Not acquired (timed out, would block, deadlock, ...).
    Failed(Error),
}

impl<G> LockError<G> {
    /// The guard of an owner-died acquisition; panics on `Failed`.
    pub fn into_guard(self) -> G {
        match self {
            LockError::OwnerDied(g) => g,
            LockError::Failed(e) => panic!("lock not acquired: {e}"),
        }
    }
    /// The error as a plain [`Error`] (kind `OwnerDead` for an owner-died one).
    pub fn error(&self) -> Error {
        match self {
            LockError::OwnerDied(_) => {
                Error::new(ErrorKind::OwnerDead, "the previous holder died holding the lock")
            }
            LockError::Failed(e) => e.clone(),
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error(), f)
    }
}

impl<G> std::error::Error for LockError<G> {}

/// `Ok(guard)`, or a [`LockError`].
pub type LockResult<G> = std::result::Result<G, LockError<G>>;

/// Holds a [`Lock`] until dropped.
pub struct LockGuard<'a> {
    lock: &'a Lock,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockGuard({:?})", self.lock.name())
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this thread holds the lock (the guard exists and cannot move threads).
        unsafe { sys::shoal_lock_release(self.lock.raw) };
    }
}

impl Lock {
    /// Opens or creates the named Lock `name` (None: a new anonymous one).
    pub fn open(name: Option<&str>, mode: OpenMode, opts: &Options) -> Result<Lock> {
        let raw = open_named(name, opts, |o, n, a| unsafe { sys::shoal_lock_open(o, n, mode.raw(), a) })?;
        Ok(Lock { raw, owned: true })
    }

    /// Opens or creates the named RLock `name`: the holding thread may re-enter it.
    pub fn open_recursive(name: Option<&str>, mode: OpenMode, opts: &Options) -> Result<Lock> {
        let raw = open_named(name, opts, |o, n, a| unsafe { sys::shoal_rlock_open(o, n, mode.raw(), a) })?;
        Ok(Lock { raw, owned: true })
    }

    /// A lock inside another object (a Value's or Array's), valid while it is.
    pub(crate) fn borrowed(raw: *mut sys::shoal_lock) -> Option<Lock> {
        (!raw.is_null()).then_some(Lock { raw, owned: false })
    }

    fn guard(&self, rc: c_int) -> LockResult<LockGuard<'_>> {
        let guard = || LockGuard { lock: self, _not_send: PhantomData };
        match rc {
            sys::SHOAL_EOWNERDEAD => Err(LockError::OwnerDied(guard())),
            rc if rc < 0 => Err(LockError::Failed(Error::last(rc))),
            _ => Ok(guard()),
        }
    }

    /// Acquires the lock, waiting at most `timeout`.
    pub fn acquire(&self, timeout: Duration) -> LockResult<LockGuard<'_>> {
        // SAFETY: raw is a live lock.
        self.guard(unsafe { sys::shoal_lock_acquire(self.raw, nanos(timeout)) })
    }

    /// Acquires the lock if it is free now (else `Failed` of kind `Again`).
    pub fn try_acquire(&self) -> LockResult<LockGuard<'_>> {
        self.guard(unsafe { sys::shoal_lock_try(self.raw) })
    }

    /// Whether anyone holds it at this instant.
    pub fn locked(&self) -> bool {
        unsafe { sys::shoal_lock_locked(self.raw) == 1 }
    }

    /// Whether it is free because its last holder died holding it.
    pub fn holder_died(&self) -> bool {
        unsafe { sys::shoal_lock_holder_died(self.raw) == 1 }
    }

    /// Its name ("" for the lock of a Value or Array).
    pub fn name(&self) -> &str {
        if self.owned {
            sync_name(self.raw)
        } else {
            ""
        }
    }

    pub(crate) fn raw(&self) -> *mut sys::shoal_lock {
        self.raw
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: no guard outlives the lock (guards borrow it).
            unsafe { sys::shoal_lock_close(self.raw) };
        }
    }
}

// ---- Semaphore -----------------------------------------------------------------------

/// A counting semaphore; a bounded one refuses releases above its initial value.
pub struct Semaphore {
    raw: *mut sys::shoal_sem,
}
unsafe impl Send for Semaphore {}
unsafe impl Sync for Semaphore {}

impl Semaphore {
    /// Opens or creates the named Semaphore `name`; `value` is used only when creating.
    pub fn open(name: Option<&str>, mode: OpenMode, value: u32, opts: &Options) -> Result<Semaphore> {
        let raw =
            open_named(name, opts, |o, n, a| unsafe { sys::shoal_sem_open(o, n, mode.raw(), value, a) })?;
        Ok(Semaphore { raw })
    }
    /// Opens or creates a BoundedSemaphore.
    pub fn open_bounded(name: Option<&str>, mode: OpenMode, value: u32, opts: &Options) -> Result<Semaphore> {
        let raw =
            open_named(name, opts, |o, n, a| unsafe { sys::shoal_bsem_open(o, n, mode.raw(), value, a) })?;
        Ok(Semaphore { raw })
    }
    /// Decrements, waiting at most `timeout` while the value is 0.
    pub fn acquire(&self, timeout: Duration) -> Result<()> {
        check(unsafe { sys::shoal_sem_acquire(self.raw, nanos(timeout)) }).map(drop)
    }
    pub fn try_acquire(&self) -> Result<()> {
        check(unsafe { sys::shoal_sem_try(self.raw) }).map(drop)
    }
    /// Increments (kind `Overflow` above a bounded semaphore's initial value).
    pub fn release(&self) -> Result<()> {
        check(unsafe { sys::shoal_sem_release(self.raw) }).map(drop)
    }
    pub fn value(&self) -> u32 {
        unsafe { sys::shoal_sem_value(self.raw) }
    }
    pub fn name(&self) -> &str {
        sync_name(self.raw)
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        unsafe { sys::shoal_sem_close(self.raw) };
    }
}

// ---- Condition -----------------------------------------------------------------------

/// A condition variable used with a [`Lock`].
pub struct Condition {
    raw: *mut sys::shoal_cond,
}
unsafe impl Send for Condition {}
unsafe impl Sync for Condition {}

impl Condition {
    pub fn open(name: Option<&str>, mode: OpenMode, opts: &Options) -> Result<Condition> {
        let raw = open_named(name, opts, |o, n, a| unsafe { sys::shoal_cond_open(o, n, mode.raw(), a) })?;
        Ok(Condition { raw })
    }
    /// Releases the guard's lock, waits for a notify or the timeout, and takes it
    /// back (always, to the depth it had: the runtime's wait does, after a timeout too,
    /// once a live holder lets it go). Wake-ups may be spurious. Errors: `TimedOut`,
    /// and `OwnerDead` when taking it back found the lock's holder dead (the guard's
    /// lock is held again in both cases).
    pub fn wait(&self, guard: &LockGuard<'_>, timeout: Duration) -> Result<()> {
        check(unsafe { sys::shoal_cond_wait(self.raw, guard.lock.raw(), nanos(timeout)) }).map(drop)
    }
    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: u32) {
        unsafe { sys::shoal_cond_notify(self.raw, n) };
    }
    pub fn notify_all(&self) {
        unsafe { sys::shoal_cond_notify_all(self.raw) };
    }
    pub fn name(&self) -> &str {
        sync_name(self.raw)
    }
}

impl Drop for Condition {
    fn drop(&mut self) {
        unsafe { sys::shoal_cond_close(self.raw) };
    }
}

// ---- Event ---------------------------------------------------------------------------

/// A flag processes wait on.
pub struct Event {
    raw: *mut sys::shoal_event,
}
unsafe impl Send for Event {}
unsafe impl Sync for Event {}

impl Event {
    pub fn open(name: Option<&str>, mode: OpenMode, opts: &Options) -> Result<Event> {
        let raw = open_named(name, opts, |o, n, a| unsafe { sys::shoal_event_open(o, n, mode.raw(), a) })?;
        Ok(Event { raw })
    }
    pub fn set(&self) {
        unsafe { sys::shoal_event_set(self.raw) };
    }
    pub fn clear(&self) {
        unsafe { sys::shoal_event_clear(self.raw) };
    }
    pub fn is_set(&self) -> bool {
        unsafe { sys::shoal_event_is_set(self.raw) == 1 }
    }
    /// Waits until set (error `TimedOut` after `timeout`).
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        check(unsafe { sys::shoal_event_wait(self.raw, nanos(timeout)) }).map(drop)
    }
    pub fn name(&self) -> &str {
        sync_name(self.raw)
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        unsafe { sys::shoal_event_close(self.raw) };
    }
}

// ---- Barrier -------------------------------------------------------------------------

/// Waits until `parties` processes or threads have arrived.
pub struct Barrier {
    raw: *mut sys::shoal_barrier,
}
unsafe impl Send for Barrier {}
unsafe impl Sync for Barrier {}

impl Barrier {
    pub fn open(name: Option<&str>, mode: OpenMode, parties: u32, opts: &Options) -> Result<Barrier> {
        let raw = open_named(name, opts, |o, n, a| unsafe {
            sys::shoal_barrier_open(o, n, mode.raw(), parties, a)
        })?;
        Ok(Barrier { raw })
    }
    /// Waits for the others; returns this caller's arrival index. A timeout breaks
    /// the barrier (`TimedOut` here, `Broken` for the others) until [`Barrier::reset`].
    pub fn wait(&self, timeout: Duration) -> Result<u32> {
        check(unsafe { sys::shoal_barrier_wait(self.raw, nanos(timeout)) }).map(|i| i as u32)
    }
    pub fn abort(&self) {
        unsafe { sys::shoal_barrier_abort(self.raw) };
    }
    pub fn reset(&self) {
        unsafe { sys::shoal_barrier_reset(self.raw) };
    }
    /// (parties, waiting now, broken).
    pub fn state(&self) -> (u32, u32, bool) {
        let (mut p, mut w, mut b) = (0, 0, 0);
        unsafe { sys::shoal_barrier_state(self.raw, &mut p, &mut w, &mut b) };
        (p, w, b != 0)
    }
    pub fn name(&self) -> &str {
        sync_name(self.raw)
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        unsafe { sys::shoal_barrier_close(self.raw) };
    }
}
