//! The client of a Manager broker (`shoal broker`, docs/broker.md), over libshoal's
//! C client (manager.h): the objects of Python's `multiprocessing.Manager`, held by a
//! broker process, shared with C, Python, Node.js and Rust clients by name.
//!
//! A [`Manager`] is one connection (one session of the broker) to `shm://NAME` (this
//! host, shared memory), `ipc:///path`, `tcp://host:port` (with the broker's token) or
//! `tls+tcp://`. Clones share the connection, and so do the proxies made from it: the
//! connection ends when the last of them is dropped (or at once with
//! [`Manager::close`]; calls made afterwards fail with `Closed`). It may be used from
//! any number of threads. [`Manager::start`] starts a private broker first, as Python's
//! `shoal.Manager()` does (manager_start.rs), stopped by [`Manager::shutdown`] or with
//! the connection, and when this process dies.
//!
//! Values are [`MValue`]s, the language-neutral values of `broker.proto`: none, bool,
//! 64-bit int, double, string, bytes, list, tuple and map (keys: scalars or tuples of
//! them), so what a Python or C client stored reads back here as it was. Each call
//! converts its arguments into the C client's `shoal_mv` trees (handed over to the C
//! call, which frees them) and the result back into an `MValue` (freeing the tree).
//! Pickled Python objects and schema-typed messages (a Python proxy stored inside a
//! container is a `shoal.broker.Ref` message) read back as [`MValue::Pickle`] and
//! [`MValue::Message`] and are sent back unchanged.
//!
//! Proxies: [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`ValueProxy`],
//! [`ArrayProxy`], [`QueueProxy`], [`JoinableQueueProxy`], [`LockProxy`] (Lock, RLock
//! and the lock of a [`ConditionProxy`]), [`SemaphoreProxy`] (Semaphore,
//! BoundedSemaphore), [`EventProxy`], [`BarrierProxy`]. A proxy is an object's name
//! and, for a container nested in a dict or list, the path of keys leading to it
//! ([`DictProxy::dict_at`], [`ListProxy::list_at`], ...), so `d.list_at("x").append(1)`
//! changes the list stored in `d["x"]`, as Python's `d['x'].append(1)` does. Every
//! method is one request, run atomically by the broker (the op names of
//! docs/broker.md, "Operations"): counters and compare-and-set need no lock.
//!
//! Every call goes through `shoal_manager_submit` and `shoal_manager_wait` (a lock's
//! acquire through `shoal_manager_call`, so over shm:// one that must wait waits in the
//! broker's lock table, in this process, rather than parked in the broker): over
//! shm:// a pure read (a dict get, len, a Value's get, ...) is answered from the
//! broker's read view in shared memory when it holds the current reply, without a
//! round trip ([`Manager::view_stats`] counts them). A request's path and arguments
//! are converted into an array on the stack (up to four: no allocation besides the
//! trees themselves), and the operation names of the proxies are static C strings. A
//! [`Pipeline`] submits many requests before waiting for their replies, which it
//! returns in order.
//!
//! [`DictProxy::watch`] (and the same on every proxy through [`Proxy::watch`]) streams
//! an object's changes, or one key's, as they happen ([`Watch`], [`Change`]).
//!
//! Errors are the crate's [`Error`], with the broker's codes and texts: `NoEnt` (no
//! such object or key), `Kind` (wrong kind, no such operation), `Range`, `Type` (a
//! value an Array's typecode refuses), `TimedOut`, `Perm` (a release of what is not
//! held), `Broken` (a barrier), `MsgSize` (larger than the transport carries),
//! `InvalidData` (a value nested deeper than the broker's 48 levels, or of more than a
//! million values), `Inval` (what an `MValue` cannot carry: a NUL in a string, a list
//! as a map key), `PeerDead` (the broker went away), `Closed` (after
//! [`Manager::close`]). A lock whose holder's session ended (the
//! process died) is taken by the next acquirer with [`LockError::OwnerDied`].
//!
//! ```no_run
//! use shoal::manager::{MValue, Manager};
//! use std::time::Duration;
//! let m = Manager::connect("shm://mgr", None)?;
//! let d = m.dict("scores")?;
//! d.set("a", 10)?;
//! assert_eq!(d.increment("a", 1, 0)?, MValue::Int(11));
//! d.set("x", MValue::list([1, 2]))?;
//! d.list_at("x").append(3)?; // changes the stored list
//! let mut p = m.pipeline();
//! for i in 0..100 {
//!     p.submit(&d, "set", &[i.into(), "v".into()], Duration::ZERO)?;
//! }
//! assert!(p.wait_all().iter().all(|r| r.is_ok()));
//! # Ok::<(), shoal::Error>(())
//! ```
use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::manager_start::BrokerProcess;
pub use crate::manager_start::StartOptions;
use crate::options::{nanos, Options};
use crate::sync::{LockError, LockResult};

// ---- values -------------------------------------------------------------------------

/// A value stored in the broker (broker.proto's `Value`, the C client's `shoal_mv`).
///
/// `From` makes one of the Rust scalars (the integers that fit an i64: not u64 or
/// usize, convert those with `i64::try_from`), `&str` / `String`, `&[u8]` / `Vec<u8>`
/// (bytes), `Vec<MValue>` (a list), 2- and 3-tuples, `Option` (None or the value),
/// `HashMap` and `BTreeMap`; [`MValue::list`] and [`MValue::map`] build the others.
#[derive(Debug, Clone, PartialEq)]
pub enum MValue {
    /// Python's None.
    None,
    /// A bool.
    Bool(bool),
    /// A 64-bit signed int.
    Int(i64),
    /// A double.
    Double(f64),
    /// A string (UTF-8).
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<MValue>),
    /// A tuple (a map key may be one).
    Tuple(Vec<MValue>),
    /// A map, in the broker's order; keys are scalars or tuples of scalars.
    Map(Vec<(MValue, MValue)>),
    /// Pickled Python object bytes: stored and passed on, unpickled only by Python.
    Pickle(Vec<u8>),
    /// A schema-typed message: its full type name and protobuf bytes
    /// (`shoal.broker.Ref`: the Python client's reference to another object).
    Message {
        /// The message's full type name, e.g. "shop.Order".
        type_name: String,
        /// Its protobuf encoding.
        data: Vec<u8>,
    },
}

impl MValue {
    /// A list of the items.
    pub fn list<T: Into<MValue>>(items: impl IntoIterator<Item = T>) -> MValue {
        MValue::List(items.into_iter().map(Into::into).collect())
    }
    /// A map of the pairs.
    pub fn map<K: Into<MValue>, V: Into<MValue>>(pairs: impl IntoIterator<Item = (K, V)>) -> MValue {
        MValue::Map(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
    /// Whether it is None.
    pub fn is_none(&self) -> bool {
        matches!(self, MValue::None)
    }
    /// A bool, or an int or double read as Python's truth value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MValue::Bool(b) => Some(b),
            MValue::Int(i) => Some(i != 0),
            _ => None,
        }
    }
    /// An int (a bool reads as 0 or 1).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MValue::Int(i) => Some(i),
            MValue::Bool(b) => Some(b as i64),
            _ => None,
        }
    }
    /// A double, or an int as a double.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MValue::Double(d) => Some(d),
            MValue::Int(i) => Some(i as f64),
            _ => None,
        }
    }
    /// A string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MValue::Str(s) => Some(s),
            _ => None,
        }
    }
    /// Bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            MValue::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The items of a list or tuple.
    pub fn as_slice(&self) -> Option<&[MValue]> {
        match self {
            MValue::List(v) | MValue::Tuple(v) => Some(v),
            _ => None,
        }
    }
    /// The entries of a map.
    pub fn as_map(&self) -> Option<&[(MValue, MValue)]> {
        match self {
            MValue::Map(m) => Some(m),
            _ => None,
        }
    }
    /// `map[key]` (keys compare as in the broker: 1 == 1.0 == true).
    pub fn get(&self, key: impl Into<MValue>) -> Option<&MValue> {
        let key = key.into();
        self.as_map()?.iter().find(|(k, _)| k.key_eq(&key)).map(|(_, v)| v)
    }

    /// Whether two map keys are the same key (numbers compare by value, as in
    /// Python: 1 == 1.0 == true).
    fn key_eq(&self, other: &MValue) -> bool {
        let num = |v: &MValue| match *v {
            MValue::Bool(b) => Some(b as i64 as f64),
            MValue::Int(i) => Some(i as f64),
            MValue::Double(d) => Some(d),
            _ => None,
        };
        match (num(self), num(other)) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for MValue {
            fn from(v: $t) -> MValue {
                MValue::Int(v as i64)
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, isize);

impl From<bool> for MValue {
    fn from(v: bool) -> MValue {
        MValue::Bool(v)
    }
}
impl From<f32> for MValue {
    fn from(v: f32) -> MValue {
        MValue::Double(v as f64)
    }
}
impl From<f64> for MValue {
    fn from(v: f64) -> MValue {
        MValue::Double(v)
    }
}
impl From<()> for MValue {
    fn from(_: ()) -> MValue {
        MValue::None
    }
}
impl From<&str> for MValue {
    fn from(v: &str) -> MValue {
        MValue::Str(v.to_owned())
    }
}
impl From<String> for MValue {
    fn from(v: String) -> MValue {
        MValue::Str(v)
    }
}
impl From<&String> for MValue {
    fn from(v: &String) -> MValue {
        MValue::Str(v.clone())
    }
}
/// Bytes (not a list of ints).
impl From<&[u8]> for MValue {
    fn from(v: &[u8]) -> MValue {
        MValue::Bytes(v.to_vec())
    }
}
/// Bytes (not a list of ints).
impl From<Vec<u8>> for MValue {
    fn from(v: Vec<u8>) -> MValue {
        MValue::Bytes(v)
    }
}
/// A list.
impl From<Vec<MValue>> for MValue {
    fn from(v: Vec<MValue>) -> MValue {
        MValue::List(v)
    }
}
impl From<&MValue> for MValue {
    fn from(v: &MValue) -> MValue {
        v.clone()
    }
}
/// None, or the value.
impl<T: Into<MValue>> From<Option<T>> for MValue {
    fn from(v: Option<T>) -> MValue {
        v.map_or(MValue::None, Into::into)
    }
}
/// A tuple.
impl<A: Into<MValue>, B: Into<MValue>> From<(A, B)> for MValue {
    fn from((a, b): (A, B)) -> MValue {
        MValue::Tuple(vec![a.into(), b.into()])
    }
}
/// A tuple.
impl<A: Into<MValue>, B: Into<MValue>, C: Into<MValue>> From<(A, B, C)> for MValue {
    fn from((a, b, c): (A, B, C)) -> MValue {
        MValue::Tuple(vec![a.into(), b.into(), c.into()])
    }
}
/// A map.
impl<K: Into<MValue>, V: Into<MValue>> From<HashMap<K, V>> for MValue {
    fn from(m: HashMap<K, V>) -> MValue {
        MValue::map(m)
    }
}
/// A map, in key order.
impl<K: Into<MValue>, V: Into<MValue>> From<BTreeMap<K, V>> for MValue {
    fn from(m: BTreeMap<K, V>) -> MValue {
        MValue::map(m)
    }
}

/// A `shoal_mv` tree owned here: freed on drop unless handed to a C call.
struct Raw(*mut sys::shoal_mv);

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: an owned tree (NULL is ignored).
        unsafe { sys::shoal_mv_free(self.0) }
    }
}

impl Raw {
    fn new(p: *mut sys::shoal_mv) -> Result<Raw> {
        if p.is_null() {
            Err(Error::new(ErrorKind::NoMem, "out of memory making a broker value"))
        } else {
            Ok(Raw(p))
        }
    }
    /// Hands the tree over (to a C call that takes it).
    fn into_ptr(self) -> *mut sys::shoal_mv {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

/// The `shoal_mv` tree of v (`Inval`: a string with a NUL byte, a map key that is not
/// a scalar or a tuple of scalars, a message type name empty or with a NUL byte).
fn to_raw(v: &MValue) -> Result<Raw> {
    // SAFETY: every constructor returns a fresh tree or NULL; the pointers passed
    // are valid for the calls; append and put take their item whatever they return.
    unsafe {
        match v {
            MValue::None => Raw::new(sys::shoal_mv_none()),
            MValue::Bool(b) => Raw::new(sys::shoal_mv_bool(*b as c_int)),
            MValue::Int(i) => Raw::new(sys::shoal_mv_int(*i)),
            MValue::Double(d) => Raw::new(sys::shoal_mv_double(*d)),
            MValue::Str(s) if s.len() < 64 && !s.as_bytes().contains(&0) => {
                // A short string is terminated on the stack, not in a CString.
                let mut buf = [0u8; 64];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                Raw::new(sys::shoal_mv_str(buf.as_ptr().cast()))
            }
            MValue::Str(s) => {
                let c = CString::new(s.as_str())
                    .map_err(|_| Error::new(ErrorKind::Inval, format!("string {s:?} contains a NUL byte")))?;
                Raw::new(sys::shoal_mv_str(c.as_ptr()))
            }
            MValue::Bytes(b) => Raw::new(sys::shoal_mv_bytes(b.as_ptr().cast(), b.len())),
            MValue::List(items) | MValue::Tuple(items) => {
                let seq = Raw::new(if matches!(v, MValue::List(_)) {
                    sys::shoal_mv_list()
                } else {
                    sys::shoal_mv_tuple()
                })?;
                for it in items {
                    let item = to_raw(it)?;
                    check(sys::shoal_mv_append(seq.0, item.into_ptr()))?;
                }
                Ok(seq)
            }
            MValue::Map(entries) => {
                let map = Raw::new(sys::shoal_mv_map())?;
                for (k, val) in entries {
                    let (kr, vr) = (to_raw(k)?, to_raw(val)?);
                    if sys::shoal_mv_put(map.0, kr.into_ptr(), vr.into_ptr()) < 0 {
                        return Err(Error::new(
                            ErrorKind::Inval,
                            format!("map key {k:?}: not a scalar or a tuple of scalars"),
                        ));
                    }
                }
                Ok(map)
            }
            MValue::Pickle(b) => Raw::new(sys::shoal_mv_pickle(b.as_ptr().cast(), b.len())),
            MValue::Message { type_name, data } => {
                let t = CString::new(type_name.as_str())
                    .ok()
                    .filter(|t| !t.as_bytes().is_empty())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Inval,
                            format!("message type name {type_name:?}: empty or with a NUL byte"),
                        )
                    })?;
                Raw::new(sys::shoal_mv_message(t.as_ptr(), data.as_ptr().cast(), data.len()))
            }
        }
    }
}

/// The MValue of a `shoal_mv` tree (borrowed).
///
/// # Safety
/// p is a valid tree.
unsafe fn from_raw(p: *const sys::shoal_mv) -> MValue {
    let seq = |p| (0..sys::shoal_mv_len(p)).map(|i| from_raw(sys::shoal_mv_item(p, i))).collect();
    let bytes = |p| {
        let mut len = 0;
        let b = sys::shoal_mv_as_bytes(p, &mut len);
        if b.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(b.cast::<u8>(), len).to_vec()
        }
    };
    match sys::shoal_mv_type(p) {
        sys::SHOAL_MV_BOOL => MValue::Bool(sys::shoal_mv_as_bool(p) != 0),
        sys::SHOAL_MV_INT => MValue::Int(sys::shoal_mv_as_int(p)),
        sys::SHOAL_MV_DOUBLE => MValue::Double(sys::shoal_mv_as_double(p)),
        sys::SHOAL_MV_STR => {
            MValue::Str(CStr::from_ptr(sys::shoal_mv_as_str(p)).to_string_lossy().into_owned())
        }
        sys::SHOAL_MV_BYTES => MValue::Bytes(bytes(p)),
        sys::SHOAL_MV_PICKLE => MValue::Pickle(bytes(p)),
        sys::SHOAL_MV_LIST => MValue::List(seq(p)),
        sys::SHOAL_MV_TUPLE => MValue::Tuple(seq(p)),
        sys::SHOAL_MV_MAP => MValue::Map(
            (0..sys::shoal_mv_len(p))
                .map(|i| (from_raw(sys::shoal_mv_key(p, i)), from_raw(sys::shoal_mv_value(p, i))))
                .collect(),
        ),
        sys::SHOAL_MV_MESSAGE => MValue::Message {
            type_name: CStr::from_ptr(sys::shoal_mv_message_type(p)).to_string_lossy().into_owned(),
            data: bytes(p),
        },
        _ => MValue::None,
    }
}

/// The result of a call or wait that returned rc and left its result tree at out (taken
/// either way), or its error (read before the tree is freed).
fn reply(rc: c_int, out: *mut sys::shoal_mv) -> Result<MValue> {
    let err = (rc < 0).then(|| Error::last(rc));
    let v = take_result(out);
    match err {
        Some(e) => Err(e),
        None => Ok(v),
    }
}

/// Takes a result tree: its MValue (None for no result), the tree freed.
fn take_result(p: *mut sys::shoal_mv) -> MValue {
    if p.is_null() {
        return MValue::None;
    }
    let owned = Raw(p);
    // SAFETY: a tree the C client handed over.
    unsafe { from_raw(owned.0) }
}

/// The trees of a request's path or arguments, made for one call: in place for up to
/// four (the common requests allocate nothing here), freed on drop unless handed over.
struct RawList {
    inline: [*mut sys::shoal_mv; 4],
    heap: Vec<*mut sys::shoal_mv>,
    n: usize,
}

impl RawList {
    fn new(vals: &[MValue]) -> Result<RawList> {
        let mut l = RawList { inline: [ptr::null_mut(); 4], heap: Vec::new(), n: 0 };
        let big = vals.len() > l.inline.len();
        if big {
            l.heap.reserve_exact(vals.len());
        }
        for v in vals {
            let p = to_raw(v)?.into_ptr();
            if big {
                l.heap.push(p);
            } else {
                l.inline[l.n] = p;
            }
            l.n += 1;
        }
        Ok(l)
    }

    fn len(&self) -> usize {
        self.n
    }

    fn as_mut_ptr(&mut self) -> *mut *mut sys::shoal_mv {
        if self.heap.is_empty() {
            self.inline.as_mut_ptr()
        } else {
            self.heap.as_mut_ptr()
        }
    }

    /// The trees now belong to the C call.
    fn handed_over(&mut self) {
        self.n = 0;
    }
}

impl Drop for RawList {
    fn drop(&mut self) {
        let trees = if self.heap.is_empty() { &self.inline[..self.n] } else { &self.heap[..self.n] };
        for &p in trees {
            // SAFETY: a tree made here and not handed over.
            unsafe { sys::shoal_mv_free(p) }
        }
    }
}

// ---- connections ----------------------------------------------------------------------

/// The kinds of object (broker.proto's `Kind`, the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Kind {
    /// A dict.
    Dict = 1,
    /// A list.
    List = 2,
    /// A Namespace.
    Namespace = 3,
    /// A Value.
    Value = 4,
    /// An Array.
    Array = 5,
    /// A Queue.
    Queue = 6,
    /// A Lock.
    Lock = 7,
    /// An RLock.
    RLock = 8,
    /// A Semaphore.
    Semaphore = 9,
    /// A BoundedSemaphore.
    BoundedSemaphore = 10,
    /// An Event.
    Event = 11,
    /// A Condition.
    Condition = 12,
    /// A Barrier.
    Barrier = 13,
    /// A JoinableQueue.
    JoinableQueue = 14,
}

/// Options of a connection ([`Manager::connect_with`]).
#[derive(Debug, Clone, Default)]
pub struct ManagerOptions {
    /// How long connecting may take (None: 2 seconds).
    pub connect_timeout: Option<Duration>,
    /// tcp://: the broker's token.
    pub token: Option<String>,
    /// shm://: the root and domain of the broker's queue (default: `$SHOAL_ROOT`,
    /// `$SHOAL_DOMAIN`).
    pub objects: Options,
    /// tls+tcp://: the CA file the broker's certificate must chain to (required).
    pub tls_ca_file: Option<String>,
    /// tls+tcp://: this client's certificate, for a broker that requires one.
    pub tls_cert_file: Option<String>,
    /// tls+tcp://: this client's key.
    pub tls_key_file: Option<String>,
    /// tls+tcp://: the name the broker's certificate must carry (None: the host).
    pub tls_server_name: Option<String>,
}

/// The connection; closed when the last Manager or proxy holding it is dropped, and
/// then the broker [`Manager::start`] started is stopped.
struct Conn {
    raw: *mut sys::shoal_manager,
    address: String,
    broker: Mutex<Option<BrokerProcess>>,
}

// SAFETY: the C client is thread-safe: calls from any threads, close once all are done
// (the last Arc drops it).
unsafe impl Send for Conn {}
unsafe impl Sync for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: nobody else holds the connection any more.
        unsafe { sys::shoal_manager_close(self.raw) }
        // then the broker field, when there is one, is dropped: stopped
    }
}

/// A connection to a broker (one session); cheap to clone, shared by its clones and
/// proxies, usable from any thread.
#[derive(Clone)]
pub struct Manager {
    conn: Arc<Conn>,
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorKind::Inval, format!("{what} {s:?} contains a NUL byte")))
}

fn opt_c_string(what: &str, s: &Option<String>) -> Result<Option<CString>> {
    s.as_deref().map(|s| c_string(what, s)).transpose()
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("raw", &self.conn.raw).finish()
    }
}

impl Manager {
    /// Connects to the broker at `address` (shm://NAME, ipc:///path, tcp://host:port
    /// with `token`). Fails with `Inval` (bad address), `NoEnt` (no broker there),
    /// `TimedOut`, `Acces` (wrong or missing token).
    pub fn connect(address: &str, token: Option<&str>) -> Result<Manager> {
        Manager::connect_with(
            address,
            &ManagerOptions { token: token.map(str::to_owned), ..Default::default() },
        )
    }

    /// Connects with every option of the C client (tls+tcp:// files, the shm://
    /// root and domain, the connect timeout); errors as [`Manager::connect`].
    pub fn connect_with(address: &str, opts: &ManagerOptions) -> Result<Manager> {
        let addr = c_string("address", address)?;
        let token = opt_c_string("token", &opts.token)?;
        let ca = opt_c_string("tls_ca_file", &opts.tls_ca_file)?;
        let cert = opt_c_string("tls_cert_file", &opts.tls_cert_file)?;
        let key = opt_c_string("tls_key_file", &opts.tls_key_file)?;
        let server = opt_c_string("tls_server_name", &opts.tls_server_name)?;
        let attr = opts.objects.raw();
        let cfg = sys::shoal_manager_config {
            connect_timeout: opts.connect_timeout.map_or(0, nanos),
            token: opt_ptr(&token),
            attr: &attr,
            tls_ca_file: opt_ptr(&ca),
            tls_cert_file: opt_ptr(&cert),
            tls_key_file: opt_ptr(&key),
            tls_server_name: opt_ptr(&server),
        };
        let mut raw = ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        check(unsafe { sys::shoal_manager_connect(&mut raw, addr.as_ptr(), &cfg) })?;
        Ok(Manager { conn: Arc::new(Conn { raw, address: address.to_owned(), broker: Mutex::new(None) }) })
    }

    /// Starts a private broker and connects to it, as Python's `shoal.Manager()`
    /// does: [`Manager::start_with`] with the default options.
    pub fn start() -> Result<Manager> {
        Manager::start_with(&StartOptions::default())
    }

    /// Starts a private broker on an shm:// address of its own (`shm://manager-PID-
    /// RANDOM`) and connects to it. The broker is the `shoal` command given in
    /// `opts.cli`, else `$SHOAL_CLI` when set and not empty, else `shoal` found on the
    /// `PATH` (Python's rule), run as `shoal broker --listen ADDRESS
    /// --stop-at-stdin-eof`; this waits until it prints that it is ready. It is
    /// stopped (SIGTERM, then a wait; it then removes its segments) by
    /// [`Manager::shutdown`], or when the last clone of this Manager and of its proxies
    /// is dropped, and it stops by itself when this process ends, however (SIGKILL
    /// too): its stdin is a pipe only this process holds. Fails with `NoEnt` (no
    /// `shoal` command), `Sys` (it cannot be run, or it exited before it was ready: the
    /// detail has its exit status and what it wrote on stderr), `TimedOut` (not ready
    /// within `opts.ready_timeout`: it is killed), or an error of connecting.
    pub fn start_with(opts: &StartOptions) -> Result<Manager> {
        let (broker, address) = BrokerProcess::start(opts)?;
        let mut objects = Options::new();
        if let Some(root) = &opts.root {
            objects = objects.root(root);
        }
        if let Some(domain) = &opts.domain {
            objects = objects.domain(domain);
        }
        let m = Manager::connect_with(&address, &ManagerOptions { objects, ..Default::default() })?;
        *m.conn.broker.lock().unwrap() = Some(broker);
        Ok(m)
    }

    /// The address this Manager is connected to (for a started one, its broker's).
    pub fn address(&self) -> &str {
        &self.conn.address
    }

    /// The process id of the broker [`Manager::start`] started; None for a Manager
    /// that connected to a running broker, or after [`Manager::shutdown`].
    pub fn broker_pid(&self) -> Option<u32> {
        self.conn.broker.lock().unwrap().as_ref().map(BrokerProcess::pid)
    }

    /// Ends the session as [`Manager::close`] does, then stops the broker
    /// [`Manager::start`] started (SIGTERM, and waits until it has exited: its
    /// segments are gone when this returns), for every clone and proxy of this
    /// Manager. Fails with `Sys` when the broker exited with an error status (or was
    /// gone), `TimedOut` when it had not stopped 10 s after SIGTERM (it is then
    /// killed). For a connected Manager, the same as [`Manager::close`].
    pub fn shutdown(self) -> Result<()> {
        let broker = self.conn.broker.lock().unwrap().take();
        // SAFETY: the connection is alive (this handle holds it).
        unsafe { sys::shoal_manager_shutdown(self.raw()) }
        broker.map_or(Ok(()), |mut b| b.stop())
    }

    fn raw(&self) -> *mut sys::shoal_manager {
        self.conn.raw
    }

    /// Ends the session now, for this Manager, its clones and proxies: the requests
    /// sent before have been run by the broker when it returns (at most 5 s for a
    /// broker that stopped answering); threads blocked in a call return `Closed`, and
    /// so does every later call. The memory goes when the last handle is dropped.
    pub fn close(self) {
        // SAFETY: the connection is alive (this handle holds it).
        unsafe { sys::shoal_manager_shutdown(self.raw()) }
    }

    /// Writes the requests submitted and not written yet (see [`Pipeline`]).
    pub fn flush(&self) -> Result<()> {
        // SAFETY: live connection.
        check(unsafe { sys::shoal_manager_flush(self.raw()) }).map(drop)
    }

    /// Over shm://, how many reads the broker's read view answered and how many it
    /// was asked in vain; None when this connection has no view.
    pub fn view_stats(&self) -> Option<(u64, u64)> {
        let (mut hits, mut misses) = (0, 0);
        // SAFETY: live connection, valid pointers.
        let rc = unsafe { sys::shoal_manager_view_stats(self.raw(), &mut hits, &mut misses) };
        (rc == 1).then_some((hits, misses))
    }

    /// Creates object `name` of `kind` with `init` (dict, Namespace: a map; list,
    /// Array: a list; Value: the value; queues: maxsize; semaphores: the value;
    /// Barrier: the parties) and `typecode` (Value, Array: "i", "d", ... as Python's
    /// array module), or opens it when it exists with that kind. Returns whether it
    /// was created; `Kind` when it exists with another kind.
    pub fn create(
        &self,
        name: &str,
        kind: Kind,
        init: Option<MValue>,
        typecode: Option<&str>,
    ) -> Result<bool> {
        let cname = c_string("name", name)?;
        let tc = typecode.map(|t| c_string("typecode", t)).transpose()?;
        let init = init.as_ref().map(to_raw).transpose()?.map_or(ptr::null_mut(), Raw::into_ptr);
        // SAFETY: valid pointers; init is taken.
        let rc = unsafe {
            sys::shoal_manager_create(self.raw(), cname.as_ptr(), kind as c_int, init, opt_ptr(&tc))
        };
        check(rc).map(|rc| rc == 1)
    }

    /// Deletes object `name` (its waiters get `NoEnt`).
    pub fn delete(&self, name: &str) -> Result<()> {
        let cname = c_string("name", name)?;
        // SAFETY: valid pointers.
        check(unsafe { sys::shoal_manager_delete(self.raw(), cname.as_ptr()) }).map(drop)
    }

    /// Runs operation `op` (docs/broker.md, "Operations") on object `name` with
    /// `args` and returns its result; `timeout` for blocking operations. The typed
    /// proxies are made of this.
    pub fn call(&self, name: &str, op: &str, args: &[MValue], timeout: Duration) -> Result<MValue> {
        let target = Target { m: self.clone(), name: c_string("name", name)?, path: Vec::new() };
        target.call(&c_string("operation", op)?, args, timeout)
    }

    fn open<P>(
        &self,
        name: &str,
        kind: Kind,
        init: Option<MValue>,
        tc: Option<&str>,
        f: fn(Target) -> P,
    ) -> Result<P> {
        self.create(name, kind, init, tc)?;
        Ok(f(Target { m: self.clone(), name: c_string("name", name)?, path: Vec::new() }))
    }

    /// The dict `name` (created empty when absent).
    pub fn dict(&self, name: &str) -> Result<DictProxy> {
        self.open(name, Kind::Dict, None, None, DictProxy)
    }
    /// The list `name` (created empty when absent).
    pub fn list(&self, name: &str) -> Result<ListProxy> {
        self.open(name, Kind::List, None, None, ListProxy)
    }
    /// The Namespace `name` (created empty when absent).
    pub fn namespace(&self, name: &str) -> Result<NamespaceProxy> {
        self.open(name, Kind::Namespace, None, None, NamespaceProxy)
    }
    /// The Value `name` (created holding `init`, of typecode `typecode` when given).
    pub fn value(&self, name: &str, init: impl Into<MValue>, typecode: Option<&str>) -> Result<ValueProxy> {
        self.open(name, Kind::Value, Some(init.into()), typecode, ValueProxy)
    }
    /// The Array `name` of typecode `typecode` (created holding `init`).
    pub fn array(&self, name: &str, typecode: &str, init: Vec<MValue>) -> Result<ArrayProxy> {
        self.open(name, Kind::Array, Some(MValue::List(init)), Some(typecode), ArrayProxy)
    }
    /// The Queue `name` (created with `maxsize` items at most; 0: no limit).
    pub fn queue(&self, name: &str, maxsize: i64) -> Result<QueueProxy> {
        self.open(name, Kind::Queue, Some(MValue::Int(maxsize)), None, QueueProxy)
    }
    /// The JoinableQueue `name` (created with `maxsize`; 0: no limit).
    pub fn joinable_queue(&self, name: &str, maxsize: i64) -> Result<JoinableQueueProxy> {
        self.open(name, Kind::JoinableQueue, Some(MValue::Int(maxsize)), None, |t| {
            JoinableQueueProxy(QueueProxy(t))
        })
    }
    /// The Lock `name`.
    pub fn lock(&self, name: &str) -> Result<LockProxy> {
        self.open(name, Kind::Lock, None, None, LockProxy)
    }
    /// The RLock `name` (its holder may take it again; released as often).
    pub fn rlock(&self, name: &str) -> Result<LockProxy> {
        self.open(name, Kind::RLock, None, None, LockProxy)
    }
    /// The Semaphore `name` (created with `value` units).
    pub fn semaphore(&self, name: &str, value: i64) -> Result<SemaphoreProxy> {
        self.open(name, Kind::Semaphore, Some(MValue::Int(value)), None, SemaphoreProxy)
    }
    /// The BoundedSemaphore `name` (created with `value` units, never more).
    pub fn bounded_semaphore(&self, name: &str, value: i64) -> Result<SemaphoreProxy> {
        self.open(name, Kind::BoundedSemaphore, Some(MValue::Int(value)), None, SemaphoreProxy)
    }
    /// The Event `name`.
    pub fn event(&self, name: &str) -> Result<EventProxy> {
        self.open(name, Kind::Event, None, None, EventProxy)
    }
    /// The Condition `name` (with its own lock).
    pub fn condition(&self, name: &str) -> Result<ConditionProxy> {
        self.open(name, Kind::Condition, None, None, |t| ConditionProxy(LockProxy(t)))
    }
    /// The Barrier `name` (created for `parties`).
    pub fn barrier(&self, name: &str, parties: i64) -> Result<BarrierProxy> {
        self.open(name, Kind::Barrier, Some(MValue::Int(parties)), None, BarrierProxy)
    }

    /// A pipeline of requests on this connection.
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline { m: self, ids: Vec::new() }
    }

    /// Waits for the reply to request id.
    fn wait(&self, id: u64) -> Result<MValue> {
        let mut out = ptr::null_mut();
        // SAFETY: live connection; the result tree is ours.
        let rc = unsafe { sys::shoal_manager_wait(self.raw(), id, &mut out) };
        reply(rc, out)
    }
}

// ---- targets ------------------------------------------------------------------------

/// What a proxy points at: an object of a connection and the path of keys or indices
/// to a container nested in it.
#[derive(Clone, Debug)]
pub struct Target {
    m: Manager,
    name: CString,
    path: Vec<MValue>,
}

impl Target {
    /// The object's name.
    pub fn name(&self) -> &str {
        self.name.to_str().unwrap_or("")
    }
    /// The keys or indices leading to the nested container (empty: the object).
    pub fn path(&self) -> &[MValue] {
        &self.path
    }
    /// The connection.
    pub fn manager(&self) -> &Manager {
        &self.m
    }

    fn nested(&self, key: MValue) -> Target {
        let mut t = self.clone();
        t.path.push(key);
        t
    }

    /// Submits op with args; the reply is taken by [`Manager::wait`].
    fn submit(&self, op: &CStr, args: &[MValue], timeout: Duration) -> Result<u64> {
        let mut path = RawList::new(&self.path)?;
        let mut args = RawList::new(args)?;
        let req = sys::shoal_manager_request {
            name: self.name.as_ptr(),
            op: op.as_ptr(),
            path: path.as_mut_ptr(),
            npath: path.len(),
            args: args.as_mut_ptr(),
            nargs: args.len(),
            timeout: nanos(timeout),
        };
        let mut id = 0;
        // SAFETY: valid request; the path and args trees are taken whatever it returns.
        let rc = unsafe { sys::shoal_manager_submit(self.m.raw(), &req, &mut id) };
        path.handed_over();
        args.handed_over();
        check(rc)?;
        Ok(id)
    }

    /// Runs op with args and returns its result.
    fn call(&self, op: &CStr, args: &[MValue], timeout: Duration) -> Result<MValue> {
        let id = self.submit(op, args, timeout)?;
        self.m.wait(id)
    }

    /// Runs op, without path or arguments, through `shoal_manager_call`: over shm:// a
    /// lock's acquire that must wait waits in the broker's lock table (a submit would
    /// hand it to the broker, which parks it).
    fn call_here(&self, op: &CStr, timeout: Duration) -> Result<MValue> {
        if !self.path.is_empty() {
            return self.call(op, &[], timeout);
        }
        let mut out = ptr::null_mut();
        // SAFETY: live connection, valid strings; the result tree is ours.
        let rc = unsafe {
            sys::shoal_manager_call(
                self.m.raw(),
                self.name.as_ptr(),
                op.as_ptr(),
                nanos(timeout),
                &mut out,
                0,
            )
        };
        reply(rc, out)
    }

    fn op(&self, op: &CStr, args: &[MValue]) -> Result<MValue> {
        self.call(op, args, Duration::ZERO)
    }

    fn op_bool(&self, op: &CStr, args: &[MValue]) -> Result<bool> {
        Ok(self.op(op, args)?.as_bool().unwrap_or(false))
    }

    fn op_int(&self, op: &CStr, args: &[MValue]) -> Result<i64> {
        Ok(self.op(op, args)?.as_i64().unwrap_or(0))
    }

    fn op_unit(&self, op: &CStr, args: &[MValue]) -> Result<()> {
        self.op(op, args).map(drop)
    }
}

/// A proxy of a broker object: its [`Target`], for [`Pipeline::submit`].
pub trait Proxy {
    /// What the proxy points at.
    fn target(&self) -> &Target;

    /// Watches the object (of a nested proxy: the whole object it is in): every write
    /// to it, in order, after a first "resync" change with its state. `NoEnt`: no such
    /// object.
    fn watch(&self) -> Result<Watch> {
        Watch::open(self.target(), None)
    }
}

/// A stream of changes to a broker object, or to one key of a dict or Namespace
/// (docs/broker.md, "Watch"): a first "resync" with the current state, then one
/// change per write. A watcher that falls behind gets a "resync" instead of the
/// changes it missed. Ends with a "deleted" change when the object is deleted.
pub struct Watch {
    raw: *mut sys::shoal_manager_watch,
    _m: Manager, // the connection outlives the watch
}

// SAFETY: a watch is a stream of its own, used by one thread at a time (&mut self).
unsafe impl Send for Watch {}

/// One change to a watched object.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The object's write counter after the change.
    pub seq: u64,
    /// "set", "del", "append", ...; "resync" (value: the whole state), "released"
    /// (the broker freed what an ended session held), "deleted" (the last change).
    pub op: String,
    /// The path of the nested container it changed.
    pub path: Vec<MValue>,
    /// Object watch: the operation's arguments.
    pub args: Vec<MValue>,
    /// Object watch: the operation's result.
    pub result: Option<MValue>,
    /// Key watch: the key's value after the change (None: absent); "resync": the
    /// state.
    pub value: Option<MValue>,
}

impl Watch {
    fn open(t: &Target, key: Option<&MValue>) -> Result<Watch> {
        let key = key.map(to_raw).transpose()?.map_or(ptr::null_mut(), Raw::into_ptr);
        let mut raw = ptr::null_mut();
        // SAFETY: live connection, valid name; key is taken.
        check(unsafe { sys::shoal_manager_watch_open(t.m.raw(), t.name.as_ptr(), key, &mut raw) })?;
        Ok(Watch { raw, _m: t.m.clone() })
    }

    /// The next change, waiting at most `timeout` (None when none came). `Closed`
    /// after the "deleted" change, `PeerDead` when the broker went away.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Change>> {
        let mut ch = ptr::null_mut();
        // SAFETY: live watch.
        let rc = check(unsafe { sys::shoal_manager_watch_next(self.raw, nanos(timeout), &mut ch) })?;
        if rc == 0 {
            return Ok(None);
        }
        // SAFETY: a change the C client handed over, freed below; its trees are valid
        // until then.
        unsafe {
            let c = &*ch;
            let opt = |p: *const sys::shoal_mv| (!p.is_null()).then(|| from_raw(p));
            let change = Change {
                seq: c.seq,
                op: if c.op.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(c.op).to_string_lossy().into_owned()
                },
                path: opt(c.path).map_or_else(Vec::new, seq_of),
                args: opt(c.args).map_or_else(Vec::new, seq_of),
                result: opt(c.result),
                value: opt(c.value),
            };
            sys::shoal_manager_change_free(ch);
            Ok(Some(change))
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: live watch, closed before the connection (held by _m) can go.
        unsafe { sys::shoal_manager_watch_close(self.raw) }
    }
}

macro_rules! proxy {
    ($($(#[$doc:meta])* $name:ident),*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(Target);
        impl Proxy for $name {
            fn target(&self) -> &Target {
                &self.0
            }
        }
    )*};
}

proxy!(
    /// A dict in the broker, or a map nested in a container.
    DictProxy,
    /// A list in the broker, or a list nested in a container.
    ListProxy,
    /// A Namespace: named attributes.
    NamespaceProxy,
    /// A Value: one value, optionally of a typecode.
    ValueProxy,
    /// An Array: a fixed-length list of one typecode.
    ArrayProxy,
    /// A Queue of values.
    QueueProxy,
    /// A Lock or RLock (held by the connection's thread that acquired it).
    LockProxy,
    /// A Semaphore or BoundedSemaphore (units held by the connection).
    SemaphoreProxy,
    /// An Event.
    EventProxy,
    /// A Barrier.
    BarrierProxy
);

/// A JoinableQueue: a [`QueueProxy`] (through `Deref`) with `task_done` and `join`.
#[derive(Clone, Debug)]
pub struct JoinableQueueProxy(QueueProxy);

impl Proxy for JoinableQueueProxy {
    fn target(&self) -> &Target {
        &self.0 .0
    }
}

impl std::ops::Deref for JoinableQueueProxy {
    type Target = QueueProxy;
    fn deref(&self) -> &QueueProxy {
        &self.0
    }
}

/// A Condition: its lock (a [`LockProxy`], through `Deref`) with `wait` and `notify`.
#[derive(Clone, Debug)]
pub struct ConditionProxy(LockProxy);

impl Proxy for ConditionProxy {
    fn target(&self) -> &Target {
        &self.0 .0
    }
}

impl std::ops::Deref for ConditionProxy {
    type Target = LockProxy;
    fn deref(&self) -> &LockProxy {
        &self.0
    }
}

// ---- dict, list, Namespace ------------------------------------------------------------

impl DictProxy {
    /// `d[key]`; `NoEnt` when absent.
    pub fn get(&self, key: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"get", &[key.into()])
    }
    /// `d.get(key, default)`.
    pub fn get_or(&self, key: impl Into<MValue>, default: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"get", &[key.into(), default.into()])
    }
    /// `d[key] = value`.
    pub fn set(&self, key: impl Into<MValue>, value: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"set", &[key.into(), value.into()])
    }
    /// `key in d`.
    pub fn contains(&self, key: impl Into<MValue>) -> Result<bool> {
        self.0.op_bool(c"contains", &[key.into()])
    }
    /// `del d[key]`; `NoEnt` when absent.
    pub fn remove(&self, key: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"del", &[key.into()])
    }
    /// `d.pop(key)`; `NoEnt` when absent.
    pub fn pop(&self, key: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"pop", &[key.into()])
    }
    /// `d.pop(key, default)`.
    pub fn pop_or(&self, key: impl Into<MValue>, default: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"pop", &[key.into(), default.into()])
    }
    /// `d.setdefault(key, default)`: the value, `default` stored when absent.
    pub fn setdefault(&self, key: impl Into<MValue>, default: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"setdefault", &[key.into(), default.into()])
    }
    /// `d.update(map)` (an [`MValue::Map`]).
    pub fn update(&self, map: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"update", &[map.into()])
    }
    /// `len(d)`.
    pub fn len(&self) -> Result<usize> {
        Ok(self.0.op_int(c"len", &[])? as usize)
    }
    /// `len(d) == 0`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// The keys, in the broker's order.
    pub fn keys(&self) -> Result<Vec<MValue>> {
        Ok(seq_of(self.0.op(c"keys", &[])?))
    }
    /// The values.
    pub fn values(&self) -> Result<Vec<MValue>> {
        Ok(seq_of(self.0.op(c"values", &[])?))
    }
    /// The (key, value) pairs.
    pub fn items(&self) -> Result<Vec<(MValue, MValue)>> {
        Ok(seq_of(self.0.op(c"items", &[])?).into_iter().filter_map(pair_of).collect())
    }
    /// A copy of the whole dict (an [`MValue::Map`]).
    pub fn copy(&self) -> Result<MValue> {
        self.0.op(c"copy", &[])
    }
    /// Empties it.
    pub fn clear(&self) -> Result<()> {
        self.0.op_unit(c"clear", &[])
    }
    /// Adds delta to `d[key]` (`initial` when absent) atomically; the new value.
    pub fn increment(
        &self,
        key: impl Into<MValue>,
        delta: impl Into<MValue>,
        initial: impl Into<MValue>,
    ) -> Result<MValue> {
        self.0.op(c"incr", &[key.into(), delta.into(), initial.into()])
    }
    /// Sets `d[key] = new` if it equals `expected`, atomically; whether it did.
    pub fn compare_and_set(
        &self,
        key: impl Into<MValue>,
        expected: impl Into<MValue>,
        new: impl Into<MValue>,
    ) -> Result<bool> {
        self.0.op_bool(c"cas", &[key.into(), expected.into(), new.into()])
    }
    /// Watches one key: a change whenever its value changes (value None: absent).
    pub fn watch_key(&self, key: impl Into<MValue>) -> Result<Watch> {
        Watch::open(&self.0, Some(&key.into()))
    }
    /// The dict stored at `d[key]`, as a proxy (no copy).
    pub fn dict_at(&self, key: impl Into<MValue>) -> DictProxy {
        DictProxy(self.0.nested(key.into()))
    }
    /// The list stored at `d[key]`, as a proxy (no copy).
    pub fn list_at(&self, key: impl Into<MValue>) -> ListProxy {
        ListProxy(self.0.nested(key.into()))
    }
}

fn seq_of(v: MValue) -> Vec<MValue> {
    match v {
        MValue::List(v) | MValue::Tuple(v) => v,
        _ => Vec::new(),
    }
}

fn pair_of(v: MValue) -> Option<(MValue, MValue)> {
    let mut it = seq_of(v).into_iter();
    Some((it.next()?, it.next()?))
}

impl ListProxy {
    /// `l[i]` (negative: from the end); `Range` out of range.
    pub fn get(&self, i: i64) -> Result<MValue> {
        self.0.op(c"get", &[MValue::Int(i)])
    }
    /// `l[i] = v`.
    pub fn set(&self, i: i64, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"set", &[MValue::Int(i), v.into()])
    }
    /// `l.append(v)`.
    pub fn append(&self, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"append", &[v.into()])
    }
    /// `l.extend(items)`.
    pub fn extend<T: Into<MValue>>(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        self.0.op_unit(c"extend", &[MValue::list(items)])
    }
    /// `l.insert(i, v)`.
    pub fn insert(&self, i: i64, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"insert", &[MValue::Int(i), v.into()])
    }
    /// `l.pop(i)` (None: the last); `Range` when empty or out of range.
    pub fn pop(&self, i: Option<i64>) -> Result<MValue> {
        let args: Vec<MValue> = i.into_iter().map(MValue::Int).collect();
        self.0.op(c"pop", &args)
    }
    /// `del l[i]`.
    pub fn remove_at(&self, i: i64) -> Result<()> {
        self.0.op_unit(c"del", &[MValue::Int(i)])
    }
    /// `l.remove(v)`: the first item equal to v; `NoEnt` when there is none.
    pub fn remove(&self, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"remove", &[v.into()])
    }
    /// `l.index(v)`; `NoEnt` when absent.
    pub fn index(&self, v: impl Into<MValue>) -> Result<i64> {
        self.0.op_int(c"index", &[v.into()])
    }
    /// `l.count(v)`.
    pub fn count(&self, v: impl Into<MValue>) -> Result<i64> {
        self.0.op_int(c"count", &[v.into()])
    }
    /// `v in l`.
    pub fn contains(&self, v: impl Into<MValue>) -> Result<bool> {
        self.0.op_bool(c"contains", &[v.into()])
    }
    /// `l.reverse()`.
    pub fn reverse(&self) -> Result<()> {
        self.0.op_unit(c"reverse", &[])
    }
    /// `len(l)`.
    pub fn len(&self) -> Result<usize> {
        Ok(self.0.op_int(c"len", &[])? as usize)
    }
    /// `len(l) == 0`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// A copy of the items.
    pub fn to_vec(&self) -> Result<Vec<MValue>> {
        Ok(seq_of(self.0.op(c"copy", &[])?))
    }
    /// Empties it.
    pub fn clear(&self) -> Result<()> {
        self.0.op_unit(c"clear", &[])
    }
    /// Adds delta to `l[i]` atomically; the new value.
    pub fn increment(&self, i: i64, delta: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"incr", &[MValue::Int(i), delta.into()])
    }
    /// Sets `l[i] = new` if it equals `expected`, atomically; whether it did.
    pub fn compare_and_set(
        &self,
        i: i64,
        expected: impl Into<MValue>,
        new: impl Into<MValue>,
    ) -> Result<bool> {
        self.0.op_bool(c"cas", &[MValue::Int(i), expected.into(), new.into()])
    }
    /// The dict stored at `l[i]`, as a proxy.
    pub fn dict_at(&self, i: i64) -> DictProxy {
        DictProxy(self.0.nested(MValue::Int(i)))
    }
    /// The list stored at `l[i]`, as a proxy.
    pub fn list_at(&self, i: i64) -> ListProxy {
        ListProxy(self.0.nested(MValue::Int(i)))
    }
}

impl NamespaceProxy {
    /// `ns.attr`; `NoEnt` when it has none.
    pub fn get(&self, attr: &str) -> Result<MValue> {
        self.0.op(c"get", &[attr.into()])
    }
    /// `ns.attr = v`.
    pub fn set(&self, attr: &str, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"set", &[attr.into(), v.into()])
    }
    /// Watches one attribute: a change whenever its value changes.
    pub fn watch_key(&self, attr: &str) -> Result<Watch> {
        Watch::open(&self.0, Some(&attr.into()))
    }
    /// `del ns.attr`.
    pub fn remove(&self, attr: &str) -> Result<()> {
        self.0.op_unit(c"del", &[attr.into()])
    }
    /// The attributes and their values.
    pub fn items(&self) -> Result<Vec<(MValue, MValue)>> {
        Ok(seq_of(self.0.op(c"items", &[])?).into_iter().filter_map(pair_of).collect())
    }
}

// ---- Value, Array ---------------------------------------------------------------------

impl ValueProxy {
    /// The value.
    pub fn get(&self) -> Result<MValue> {
        self.0.op(c"get", &[])
    }
    /// Sets it (`Type` when its typecode refuses v).
    pub fn set(&self, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"set", &[v.into()])
    }
    /// Adds delta atomically; the new value.
    pub fn increment(&self, delta: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"incr", &[delta.into()])
    }
    /// Sets it to `new` if it equals `expected`, atomically; whether it did.
    pub fn compare_and_set(&self, expected: impl Into<MValue>, new: impl Into<MValue>) -> Result<bool> {
        self.0.op_bool(c"cas", &[expected.into(), new.into()])
    }
}

impl ArrayProxy {
    /// `a[i]`.
    pub fn get(&self, i: i64) -> Result<MValue> {
        self.0.op(c"get", &[MValue::Int(i)])
    }
    /// `a[i] = v` (`Type` when the typecode refuses v).
    pub fn set(&self, i: i64, v: impl Into<MValue>) -> Result<()> {
        self.0.op_unit(c"set", &[MValue::Int(i), v.into()])
    }
    /// Its length.
    pub fn len(&self) -> Result<usize> {
        Ok(self.0.op_int(c"len", &[])? as usize)
    }
    /// Whether it has no items.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// A copy of the items.
    pub fn to_vec(&self) -> Result<Vec<MValue>> {
        Ok(seq_of(self.0.op(c"copy", &[])?))
    }
    /// Adds delta to `a[i]` atomically; the new value.
    pub fn increment(&self, i: i64, delta: impl Into<MValue>) -> Result<MValue> {
        self.0.op(c"incr", &[MValue::Int(i), delta.into()])
    }
    /// Sets `a[i] = new` if it equals `expected`, atomically; whether it did.
    pub fn compare_and_set(
        &self,
        i: i64,
        expected: impl Into<MValue>,
        new: impl Into<MValue>,
    ) -> Result<bool> {
        self.0.op_bool(c"cas", &[MValue::Int(i), expected.into(), new.into()])
    }
}

// ---- queues -------------------------------------------------------------------------

impl QueueProxy {
    /// Puts v, waiting at most `timeout` while the queue is full (`TimedOut`;
    /// `Duration::ZERO`: do not wait).
    pub fn put(&self, v: impl Into<MValue>, timeout: Duration) -> Result<()> {
        self.0.call(c"put", &[v.into()], timeout).map(drop)
    }
    /// Takes the oldest item, waiting at most `timeout` while the queue is empty
    /// (`TimedOut`; `Duration::ZERO`: do not wait).
    pub fn get(&self, timeout: Duration) -> Result<MValue> {
        self.0.call(c"get", &[], timeout)
    }
    /// The number of items.
    pub fn qsize(&self) -> Result<usize> {
        Ok(self.0.op_int(c"qsize", &[])? as usize)
    }
    /// Whether it is empty.
    pub fn empty(&self) -> Result<bool> {
        self.0.op_bool(c"empty", &[])
    }
    /// Whether it is full.
    pub fn full(&self) -> Result<bool> {
        self.0.op_bool(c"full", &[])
    }
}

impl JoinableQueueProxy {
    /// Marks one item taken as done (an error when more are done than were put).
    pub fn task_done(&self) -> Result<()> {
        self.0 .0.op_unit(c"task_done", &[])
    }
    /// Waits at most `timeout` until every item put is done (`TimedOut`).
    pub fn join(&self, timeout: Duration) -> Result<()> {
        self.0 .0.call(c"join", &[], timeout).map(drop)
    }
}

// ---- locks ----------------------------------------------------------------------------

/// Holds a broker lock (Lock, RLock, Condition) until dropped; stays on the thread
/// that acquired it (the broker records the holder's thread).
pub struct ManagerLockGuard<'a> {
    lock: &'a LockProxy,
    _not_send: PhantomData<*const ()>,
}

impl ManagerLockGuard<'_> {
    /// Releases it now, with the broker's error if the release failed.
    pub fn release(self) -> Result<()> {
        let rc = self.lock.release();
        std::mem::forget(self);
        rc
    }
}

impl Drop for ManagerLockGuard<'_> {
    fn drop(&mut self) {
        // A failure (the session closed, the broker gone) frees the lock anyway.
        let _ = self.lock.release();
    }
}

impl LockProxy {
    /// Acquires it, waiting at most `timeout` (`Duration::ZERO`: do not wait; a
    /// timeout is `Failed` with kind `TimedOut`). `OwnerDied` (the guard held) when its
    /// previous holder's session ended holding it.
    pub fn acquire(&self, timeout: Duration) -> LockResult<ManagerLockGuard<'_>> {
        let guard = || ManagerLockGuard { lock: self, _not_send: PhantomData };
        match self.0.call_here(c"acquire", timeout) {
            Ok(_) => Ok(guard()),
            Err(e) if e.kind() == ErrorKind::OwnerDead => Err(LockError::OwnerDied(guard())),
            Err(e) => Err(LockError::Failed(e)),
        }
    }
    /// Releases it without a guard (`Perm` when this thread does not hold it).
    pub fn release(&self) -> Result<()> {
        self.0.op_unit(c"release", &[])
    }
    /// Whether anyone holds it.
    pub fn locked(&self) -> Result<bool> {
        self.0.op_bool(c"locked", &[])
    }
}

impl ConditionProxy {
    /// Releases the lock (held by this thread), waits at most `timeout` for a notify
    /// and takes the lock back; false at the timeout.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        Ok(self.0 .0.call(c"wait", &[], timeout)?.as_bool().unwrap_or(false))
    }
    /// Wakes up to n waiters.
    pub fn notify(&self, n: i64) -> Result<()> {
        self.0 .0.op_unit(c"notify", &[MValue::Int(n)])
    }
    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        self.0 .0.op_unit(c"notify_all", &[])
    }
}

impl SemaphoreProxy {
    /// Takes a unit, waiting at most `timeout` (`TimedOut`); the connection holds it
    /// until [`SemaphoreProxy::release`] or until its session ends.
    pub fn acquire(&self, timeout: Duration) -> Result<()> {
        self.0.call(c"acquire", &[], timeout).map(drop)
    }
    /// Gives back n units (a BoundedSemaphore refuses to go over its value).
    pub fn release(&self, n: i64) -> Result<()> {
        self.0.op_unit(c"release", &[MValue::Int(n)])
    }
    /// The free units.
    pub fn value(&self) -> Result<i64> {
        self.0.op_int(c"value", &[])
    }
}

impl EventProxy {
    /// Sets the flag (wakes the waiters).
    pub fn set(&self) -> Result<()> {
        self.0.op_unit(c"set", &[])
    }
    /// Clears the flag.
    pub fn clear(&self) -> Result<()> {
        self.0.op_unit(c"clear", &[])
    }
    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool> {
        self.0.op_bool(c"is_set", &[])
    }
    /// Waits at most `timeout` for the flag; whether it is set.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        Ok(self.0.call(c"wait", &[], timeout)?.as_bool().unwrap_or(false))
    }
}

impl BarrierProxy {
    /// Waits at most `timeout` for the other parties; this party's index. `Broken`
    /// when the barrier is or gets broken (a timeout breaks it).
    pub fn wait(&self, timeout: Duration) -> Result<i64> {
        Ok(self.0.call(c"wait", &[], timeout)?.as_i64().unwrap_or(0))
    }
    /// Breaks it: the waiters get `Broken`.
    pub fn abort(&self) -> Result<()> {
        self.0.op_unit(c"abort", &[])
    }
    /// Back to the initial state (the waiters get `Broken`).
    pub fn reset(&self) -> Result<()> {
        self.0.op_unit(c"reset", &[])
    }
    /// The number of parties.
    pub fn parties(&self) -> Result<i64> {
        self.0.op_int(c"parties", &[])
    }
    /// How many are waiting.
    pub fn n_waiting(&self) -> Result<i64> {
        self.0.op_int(c"n_waiting", &[])
    }
    /// Whether it is broken.
    pub fn broken(&self) -> Result<bool> {
        self.0.op_bool(c"broken", &[])
    }
}

// ---- pipelining ---------------------------------------------------------------------

/// Requests submitted without waiting for their replies: [`Pipeline::submit`] sends
/// (over ipc:// and tcp:// a burst leaves in one write), [`Pipeline::wait_all`]
/// collects the results in the order submitted. The broker runs a connection's
/// requests in the order sent. Dropping a pipeline waits for the replies not
/// collected (so none is left behind).
pub struct Pipeline<'m> {
    m: &'m Manager,
    ids: Vec<u64>,
}

impl Pipeline<'_> {
    /// Submits operation `op` with `args` on `proxy`'s object (`timeout` for a
    /// blocking one); an error here is one of sending (the result's errors come
    /// from [`Pipeline::wait_all`]). `Inval` for a proxy of another connection.
    pub fn submit(&mut self, proxy: &impl Proxy, op: &str, args: &[MValue], timeout: Duration) -> Result<()> {
        let t = proxy.target();
        if !Arc::ptr_eq(&t.m.conn, &self.m.conn) {
            return Err(Error::new(
                ErrorKind::Inval,
                format!("object {:?}: a proxy of another connection", t.name()),
            ));
        }
        let id = t.submit(&c_string("operation", op)?, args, timeout)?;
        self.ids.push(id);
        Ok(())
    }

    /// How many requests wait for their replies.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The result of every request submitted, in order.
    pub fn wait_all(&mut self) -> Vec<Result<MValue>> {
        let ids = std::mem::take(&mut self.ids);
        ids.into_iter().map(|id| self.m.wait(id)).collect()
    }
}

impl Drop for Pipeline<'_> {
    fn drop(&mut self) {
        self.wait_all();
    }
}
