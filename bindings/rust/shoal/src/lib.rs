//! shoal for Rust: typed, crash-safe shared memory between processes in any language.
//!
//! The same named objects as libshoal's C API and every other binding: [`Value`],
//! [`Array`] and [`Queue`] of scalars or of structs generated from `.proto` schemas
//! (`shoal gen --lang rust`), [`ByteQueue`]s and [`Pipe`]s of byte messages, raw [`SharedMemory`], and the robust
//! primitives [`Lock`] (and RLock), [`Semaphore`], [`Condition`], [`Event`],
//! [`Barrier`]. Any process opens an object by name; a process that dies holding a
//! lock wedges nobody (the next holder gets [`LockError::OwnerDied`] with the guard).
//! [`manager`] is the client of a Manager broker (`shoal broker`): dicts, lists,
//! queues, locks... held by a broker process for clients in any language.
//!
//! ```no_run
//! use shoal::{OpenMode, Options, Value, FOREVER};
//! let hits: Value<i32> = Value::open(Some("hits"), OpenMode::OpenOrCreate, None, &Options::default())?;
//! hits.add(1)?; // lock-free atomic add
//! {
//!     let _g = hits.lock().unwrap().acquire(FOREVER); // compound update under the lock
//!     hits.set(&(hits.get()? * 2))?;
//! }
//! # Ok::<(), shoal::Error>(())
//! ```
//!
//! Every failure is an [`Error`]: its [`ErrorKind`] matches a `SHOAL_E*` code, its
//! detail names the object and what was wrong. Blocking calls take a `Duration`
//! ([`FOREVER`] waits without limit); timeouts are errors of kind `TimedOut`.
//! The library is found when linking through `$SHOAL_LIB_DIR` or pkg-config's shoal.pc
//! (see shoal-sys).

pub mod element;
pub mod error;
pub mod manager;
mod manager_start;
pub mod message;
mod options;
pub mod pb;
pub mod pipe;
pub mod queue;
pub mod rpc;
mod rpc_typed;
pub mod schema;
pub mod shm;
pub mod sync;
pub mod value;

pub use shoal_sys as sys;

pub use element::{type_info, Element, Integer};
pub use error::{strerror, Error, ErrorKind, Result};
pub use manager::{MValue, Manager};
pub use message::{FixedMessage, Message};
pub use options::{LockMode, OpenMode, Options, FOREVER};
pub use pipe::Pipe;
pub use queue::{ByteQueue, Queue, QueueStats};
pub use shm::{unlink, SharedMemory};
pub use sync::{Barrier, Condition, Event, Lock, LockError, LockGuard, LockResult, Semaphore};
pub use value::{Array, Value};

/// How long waiters spin before sleeping, in nanoseconds, for the whole process.
pub fn set_spin_ns(ns: i64) {
    unsafe { sys::shoal_set_spin_ns(ns) }
}
