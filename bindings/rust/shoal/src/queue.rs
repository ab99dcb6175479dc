//! Queue: a bounded multi-producer multi-consumer queue of fixed-size typed messages in
//! shared memory (or single-producer single-consumer, chosen at creation); ByteQueue:
//! the same of variable-size byte messages (up to a maximum size), e.g. encoded ones.
//!
//! Every message put is validated first, every message got is validated before it is
//! returned (another process, in any language, may have written it). `shutdown` ends
//! the stream for everyone: producers then get `Closed`, consumers drain what was
//! committed and then get `Eof` — and [`Queue::iter`] ends. Handles are `Send + Sync`
//! (an MPMC queue is made for concurrent producers and consumers; an SPSC queue allows
//! one producer and one consumer at a time, whatever process or thread they are in).
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::ptr;
use std::time::Duration;

use shoal_sys as sys;

use crate::element::Element;
use crate::error::{check, ErrorKind, Result};
use crate::message::Message;
use crate::options::{borrowed_str, c_name, name_ptr, nanos, OpenMode, Options, FOREVER};

/// What both kinds of queue hold: the handle, with the operations that do not depend
/// on the messages.
struct RawQueue(*mut sys::shoal_queue);

impl RawQueue {
    fn open(
        name: Option<&str>,
        mode: OpenMode,
        cfg: &sys::shoal_queue_config,
        opts: &Options,
    ) -> Result<RawQueue> {
        let cname = c_name(name)?;
        let attr = opts.raw();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::shoal_queue_open(&mut raw, name_ptr(&cname), mode.raw(), cfg, &attr) })?;
        Ok(RawQueue(raw))
    }

    fn name(&self) -> &str {
        unsafe { borrowed_str(sys::shoal_queue_name(self.0)) }
    }

    fn shutdown(&self) {
        unsafe { sys::shoal_queue_shutdown(self.0) };
    }

    fn stats(&self) -> QueueStats {
        let mut st = QueueStats::default();
        unsafe { sys::shoal_queue_stats_get(self.0, &mut st) };
        st
    }
}

impl Drop for RawQueue {
    fn drop(&mut self) {
        unsafe { sys::shoal_queue_close(self.0) };
    }
}

/// A typed queue of `T`.
pub struct Queue<T: Element> {
    q: RawQueue,
    _t: PhantomData<T>,
}

unsafe impl<T: Element> Send for Queue<T> {}
unsafe impl<T: Element> Sync for Queue<T> {}

/// Depth and counters.
pub type QueueStats = sys::shoal_queue_stats;

impl<T: Element> Queue<T> {
    /// Opens or creates the queue `name` (None: anonymous). `capacity` (0: 1024) and
    /// `spsc` are used only when creating; an opener takes them as made. A queue of
    /// another element type is refused with kind `Layout`, naming both types.
    pub fn open(
        name: Option<&str>,
        mode: OpenMode,
        capacity: usize,
        spsc: bool,
        opts: &Options,
    ) -> Result<Queue<T>> {
        let cfg = sys::shoal_queue_config { type_: T::shoal_type(), max_msg: 0, capacity, spsc: spsc as i32 };
        Ok(Queue { q: RawQueue::open(name, mode, &cfg, opts)?, _t: PhantomData })
    }

    pub fn name(&self) -> &str {
        self.q.name()
    }

    /// Validates `m` and puts it, waiting at most `timeout` for room.
    pub fn put(&self, m: &T, timeout: Duration) -> Result<()> {
        m.validate()?;
        check(unsafe {
            sys::shoal_queue_put(self.q.0, m as *const T as *const _, size_of::<T>(), nanos(timeout))
        })
        .map(drop)
    }

    /// Puts `m` if there is room now (else kind `Again`).
    pub fn try_put(&self, m: &T) -> Result<()> {
        m.validate()?;
        check(unsafe { sys::shoal_queue_try_put(self.q.0, m as *const T as *const _, size_of::<T>()) })
            .map(drop)
    }

    fn got(rc: i32, out: MaybeUninit<T>) -> Result<T> {
        check(rc)?;
        let m = unsafe { out.assume_init() };
        m.validate()?;
        Ok(m)
    }

    /// Gets the oldest message, waiting at most `timeout`; kind `Eof` once shut down
    /// and drained.
    pub fn get(&self, timeout: Duration) -> Result<T> {
        let mut out = MaybeUninit::<T>::uninit();
        let mut len = 0usize;
        let rc = unsafe {
            sys::shoal_queue_get(
                self.q.0,
                out.as_mut_ptr() as *mut _,
                size_of::<T>(),
                &mut len,
                nanos(timeout),
            )
        };
        Self::got(rc, out)
    }

    /// Gets a message if one is there now (else kind `Again`).
    pub fn try_get(&self) -> Result<T> {
        let mut out = MaybeUninit::<T>::uninit();
        let mut len = 0usize;
        let rc = unsafe {
            sys::shoal_queue_try_get(self.q.0, out.as_mut_ptr() as *mut _, size_of::<T>(), &mut len)
        };
        Self::got(rc, out)
    }

    /// Puts as many of `msgs` as fit, waiting at most `timeout` for the first;
    /// returns how many went in.
    pub fn put_batch(&self, msgs: &[T], timeout: Duration) -> Result<usize> {
        msgs.iter().try_for_each(Element::validate)?;
        let mut done = 0usize;
        check(unsafe {
            sys::shoal_queue_put_batch(
                self.q.0,
                msgs.as_ptr() as *const _,
                msgs.len(),
                &mut done,
                nanos(timeout),
            )
        })?;
        Ok(done)
    }

    /// Gets up to `max` messages, waiting at most `timeout` for the first.
    pub fn get_batch(&self, max: usize, timeout: Duration) -> Result<Vec<T>> {
        let mut v: Vec<T> = Vec::with_capacity(max);
        let mut done = 0usize;
        check(unsafe {
            sys::shoal_queue_get_batch(self.q.0, v.as_mut_ptr() as *mut _, max, &mut done, nanos(timeout))
        })?;
        unsafe { v.set_len(done) };
        v.iter().try_for_each(Element::validate)?;
        Ok(v)
    }

    /// Ends the stream for every process.
    pub fn shutdown(&self) {
        self.q.shutdown()
    }

    pub fn stats(&self) -> QueueStats {
        self.q.stats()
    }

    /// The messages until the stream ends: each item is a message or the error that
    /// stopped one (an invalid message, ...); `Eof` ends the iteration.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { q: self }
    }
}

/// See [`Queue::iter`].
pub struct Iter<'a, T: Element> {
    q: &'a Queue<T>,
}

impl<T: Element> Iterator for Iter<'_, T> {
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        until_eof(self.q.get(FOREVER))
    }
}

/// An iterator's item: None once the stream has ended.
fn until_eof<M>(r: Result<M>) -> Option<Result<M>> {
    match r {
        Err(e) if e.kind() == ErrorKind::Eof => None,
        r => Some(r),
    }
}

/// A queue of byte messages of at most `max_msg` bytes.
pub struct ByteQueue {
    q: RawQueue,
    max_msg: usize,
}

unsafe impl Send for ByteQueue {}
unsafe impl Sync for ByteQueue {}

impl ByteQueue {
    /// Opens or creates the byte queue `name` (None: anonymous) of messages up to
    /// `max_msg` bytes (an opener must give the creator's); `capacity` (0: 1024) and
    /// `spsc` as for [`Queue::open`].
    pub fn open(
        name: Option<&str>,
        mode: OpenMode,
        max_msg: usize,
        capacity: usize,
        spsc: bool,
        opts: &Options,
    ) -> Result<ByteQueue> {
        let cfg = sys::shoal_queue_config { type_: ptr::null(), max_msg, capacity, spsc: spsc as i32 };
        let q = RawQueue::open(name, mode, &cfg, opts)?;
        let max_msg = q.stats().max_msg as usize;
        Ok(ByteQueue { q, max_msg })
    }

    pub fn name(&self) -> &str {
        self.q.name()
    }

    /// Puts `msg`, waiting at most `timeout` for room (kind `MsgSize` over max_msg).
    pub fn put(&self, msg: &[u8], timeout: Duration) -> Result<()> {
        check(unsafe { sys::shoal_queue_put(self.q.0, msg.as_ptr() as *const _, msg.len(), nanos(timeout)) })
            .map(drop)
    }

    pub fn try_put(&self, msg: &[u8]) -> Result<()> {
        check(unsafe { sys::shoal_queue_try_put(self.q.0, msg.as_ptr() as *const _, msg.len()) }).map(drop)
    }

    /// Gets the oldest message, waiting at most `timeout`; kind `Eof` once shut down
    /// and drained.
    pub fn get(&self, timeout: Duration) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.max_msg.max(1)];
        let mut len = 0usize;
        check(unsafe {
            sys::shoal_queue_get(self.q.0, buf.as_mut_ptr() as *mut _, buf.len(), &mut len, nanos(timeout))
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    pub fn try_get(&self) -> Result<Vec<u8>> {
        self.get(Duration::ZERO)
    }

    pub fn shutdown(&self) {
        self.q.shutdown()
    }

    pub fn stats(&self) -> QueueStats {
        self.q.stats()
    }

    /// Puts a generated message as its protobuf form ([`Message::to_pb`]: invalid, it
    /// is refused with `InvalidData` and nothing is put), as C's `Foo_queue_put` of an
    /// encoded message does.
    pub fn put_msg<M: Message>(&self, m: &M, timeout: Duration) -> Result<()> {
        self.put(&m.to_pb()?, timeout)
    }

    /// Gets a message and decodes it as an `M` ([`Message::from_pb`]): `InvalidData`
    /// when it is not one (the message is consumed).
    pub fn get_msg<M: Message>(&self, timeout: Duration) -> Result<M> {
        M::from_pb(&self.get(timeout)?)
    }

    /// The messages until the stream ends.
    pub fn iter(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        std::iter::from_fn(move || until_eof(self.get(FOREVER)))
    }
}
