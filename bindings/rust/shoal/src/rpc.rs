//! Services: gRPC-like calls between processes, over libshoal's rpc layer (rpc.h).
//!
//! The address picks the transport, the API is the same for all: `shm://name` (shared
//! memory on this host), `ipc:///path` and `tcp://host:port` (nng; tcp:// clients
//! prove they know the server's token). Messages are opaque bytes at this level; the
//! typed layer on top ([`Channel::call_unary`], [`Streaming`], [`ServerStream`],
//! [`Service::typed_unary`] and the rest, [`RpcMessage`]) carries generated messages
//! as their protobuf form, and is what the code `shoal gen --lang rust` emits uses.
//!
//! Client side: a [`Channel`] is opened on an address and shared by any number of
//! threads. A unary call ([`Channel::unary`]) returns the response or the [`Status`]
//! the call failed with (its [`Code`] is one of gRPC's seventeen, its details and
//! trailers come with it). Every other kind of call is a [`Call`]: the requests go out
//! with [`Call::send`] and [`Call::close_send`], the responses come in with
//! [`Call::recv`] or by iterating over the call, and [`Call::cancel`] ends it
//! CANCELLED on both sides. [`CallOptions`] carry a timeout (or a deadline) and the
//! request metadata.
//!
//! Server side: a [`Server`] runs libshoal's event loop on a thread of its own, which
//! serves every address given with [`Server::add_port`]. A [`Service`] maps method
//! names to handlers; libshoal runs each call's handler on a thread of its own, so a
//! handler may block in [`ServerCtx::recv`] / [`ServerCtx::send`]. A handler returns
//! `Ok` (status OK) or the `Status` the call ends with; a handler that panics ends its
//! call INTERNAL. Every message arrives in a private copy, so a peer cannot change it
//! while it is looked at.
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shoal_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::options::{nanos, Options};
pub use crate::rpc_typed::{RpcMessage, ServerStream, Streaming};

extern "C" {
    fn free(p: *mut c_void);
}

/// gRPC's status codes, with gRPC's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code numbered `n`; numbers outside gRPC's range are `Unknown`, as gRPC
    /// treats them.
    pub fn from_i32(n: i32) -> Code {
        usize::try_from(n).ok().and_then(|i| Code::ALL.get(i).copied()).unwrap_or(Code::Unknown)
    }

    /// gRPC's name of the code ("OK", "DEADLINE_EXCEEDED", ...).
    pub fn name(self) -> &'static str {
        // SAFETY: every code is in range: the C function returns a static string.
        unsafe { CStr::from_ptr(sys::shoal_rpc_code_name(self as c_int)) }.to_str().unwrap_or("UNKNOWN")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// String key/value pairs: request metadata, response headers, trailers (keys are not
/// unique; order is kept).
pub type Metadata = Vec<(String, String)>;

/// The outcome of a call that did not succeed (or, with `Code::Ok`, of one that did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub details: String,
    /// The trailers the server sent (on the server side: the trailers to send).
    pub trailers: Metadata,
}

impl Status {
    pub fn new(code: Code, details: impl Into<String>) -> Status {
        Status { code, details: details.into(), trailers: Vec::new() }
    }

    /// The status with these trailers.
    pub fn with_trailers(mut self, trailers: Metadata) -> Status {
        self.trailers = trailers;
        self
    }

    /// The status of a library failure outside any call (`Error` of kind `Acces`:
    /// UNAUTHENTICATED, `TimedOut`: DEADLINE_EXCEEDED, `NoEnt`: UNAVAILABLE, ...).
    pub fn from_error(e: &Error) -> Status {
        let code = match e.kind() {
            ErrorKind::Acces => Code::Unauthenticated,
            ErrorKind::TimedOut => Code::DeadlineExceeded,
            ErrorKind::NoEnt | ErrorKind::PeerDead | ErrorKind::Closed => Code::Unavailable,
            ErrorKind::Inval | ErrorKind::InvalidData => Code::InvalidArgument,
            ErrorKind::MsgSize => Code::ResourceExhausted,
            _ => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.details)
    }
}

impl std::error::Error for Status {}

// ---- metadata conversions -------------------------------------------------------------

/// A `shoal_rpc_md` built from pairs, freed on drop.
struct RawMd(sys::shoal_rpc_md);

impl RawMd {
    fn new(pairs: &[(String, String)]) -> std::result::Result<RawMd, Status> {
        let mut md = RawMd(sys::shoal_rpc_md { count: 0, items: ptr::null_mut() });
        for (k, v) in pairs {
            let bad = || Status::new(Code::InvalidArgument, format!("metadata {k:?}: a NUL byte"));
            let (ck, cv) =
                (CString::new(k.as_str()).map_err(|_| bad())?, CString::new(v.as_str()).map_err(|_| bad())?);
            // SAFETY: md.0 is a valid list; the strings are NUL-terminated.
            let rc = unsafe { sys::shoal_rpc_md_add(&mut md.0, ck.as_ptr(), cv.as_ptr()) };
            check(rc).map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))?;
        }
        Ok(md)
    }
}

impl Drop for RawMd {
    fn drop(&mut self) {
        // SAFETY: built by shoal_rpc_md_add only.
        unsafe { sys::shoal_rpc_md_clear(&mut self.0) }
    }
}

/// The pairs of a list libshoal owns.
unsafe fn md_pairs(md: *const sys::shoal_rpc_md) -> Metadata {
    if md.is_null() || (*md).items.is_null() {
        return Vec::new();
    }
    let items = std::slice::from_raw_parts((*md).items, (*md).count);
    let s = |p: *const c_char| CStr::from_ptr(p).to_string_lossy().into_owned();
    items.iter().map(|kv| (s(kv.key), s(kv.value))).collect()
}

/// Takes a message libshoal allocated with malloc.
unsafe fn take_msg(p: *mut c_void, len: usize) -> Vec<u8> {
    let v = if len == 0 { Vec::new() } else { std::slice::from_raw_parts(p as *const u8, len).to_vec() };
    free(p);
    v
}

fn c_string(what: &str, s: &str) -> std::result::Result<CString, Status> {
    CString::new(s)
        .map_err(|_| Status::new(Code::InvalidArgument, format!("{what} {s:?} contains a NUL byte")))
}

// ---- client ---------------------------------------------------------------------------

/// The kinds of method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    BidiStreaming,
}

impl Kind {
    fn raw(self) -> c_int {
        match self {
            Kind::Unary => sys::SHOAL_RPC_UNARY,
            Kind::ServerStreaming => sys::SHOAL_RPC_SERVER_STREAMING,
            Kind::ClientStreaming => sys::SHOAL_RPC_CLIENT_STREAMING,
            Kind::BidiStreaming => sys::SHOAL_RPC_BIDI_STREAMING,
        }
    }
    /// The client sends exactly one request.
    pub fn single_request(self) -> bool {
        matches!(self, Kind::Unary | Kind::ServerStreaming)
    }
}

/// Options of one call: the time it may take and its request metadata.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Time allowed for the whole call (`None`: no limit but an inherited deadline:
    /// inside a handler, the handler's deadline applies when it is earlier).
    pub timeout: Option<Duration>,
    pub metadata: Metadata,
}

impl CallOptions {
    pub fn new() -> CallOptions {
        CallOptions::default()
    }
    /// The call may take `t`.
    pub fn timeout(mut self, t: Duration) -> CallOptions {
        self.timeout = Some(t);
        self
    }
    /// The call must end by `deadline` (one already passed fails DEADLINE_EXCEEDED).
    pub fn deadline(mut self, deadline: Instant) -> CallOptions {
        self.timeout = Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1)));
        self
    }
    /// Adds a request metadata pair.
    pub fn metadata(mut self, key: &str, value: &str) -> CallOptions {
        self.metadata.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// Options of a channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelOptions {
    /// tcp://: the server's token.
    pub token: Option<String>,
    /// How long to wait for the server to accept (`None`: 2 seconds).
    pub connect_timeout: Option<Duration>,
    /// shm://: root and domain of the objects.
    pub objects: Options,
}

/// A connection to a server; any number of threads may make calls on it at once.
pub struct Channel {
    raw: *mut sys::shoal_rpc_channel,
}

// SAFETY: rpc.h: a channel may be used by many threads at once.
unsafe impl Send for Channel {}
unsafe impl Sync for Channel {}

impl Channel {
    /// Opens a channel to `address`, with the server's token for tcp:// (see
    /// [`Channel::open_with`]).
    pub fn open(address: &str, token: Option<&str>) -> Result<Channel> {
        let opts = ChannelOptions { token: token.map(str::to_owned), ..Default::default() };
        Channel::open_with(address, &opts)
    }

    /// Opens a channel to `address` and connects it. Fails with `Inval` (an unknown
    /// scheme), `NoEnt` (no server there), `TimedOut` (no server accepted in time),
    /// `Acces` (the server refused the token).
    pub fn open_with(address: &str, opts: &ChannelOptions) -> Result<Channel> {
        let bad = |what: &str| Error::new(ErrorKind::Inval, format!("{what} contains a NUL byte"));
        let addr = CString::new(address).map_err(|_| bad("address"))?;
        let token = opts.token.as_deref().map(CString::new).transpose().map_err(|_| bad("token"))?;
        let attr = opts.objects.raw();
        let cfg = sys::shoal_rpc_channel_config {
            connect_timeout: opts.connect_timeout.map_or(0, nanos),
            attr: &attr,
            token: token.as_ref().map_or(ptr::null(), |t| t.as_ptr()),
            max_frame: 0,
        };
        let mut raw = ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        check(unsafe { sys::shoal_rpc_channel_open(&mut raw, addr.as_ptr(), &cfg) })?;
        Ok(Channel { raw })
    }

    /// Starts a call of `service`/`method` (of kind `kind`). For unary and
    /// server-streaming methods `request` is the one request, sent with the start
    /// (the call is then half-closed); for the others it must be `None`, and the
    /// requests go out with [`Call::send`].
    pub fn start(
        &self,
        service: &str,
        method: &str,
        kind: Kind,
        request: Option<&[u8]>,
        opts: &CallOptions,
    ) -> std::result::Result<Call, Status> {
        if kind.single_request() != request.is_some() {
            return Err(Status::new(
                Code::InvalidArgument,
                format!(
                    "{service}/{method}: {kind:?} takes {} request at start",
                    if kind.single_request() { "one" } else { "no" }
                ),
            ));
        }
        let name = c_string("method", method)?;
        let svc = c_string("service", service)?;
        let m = Box::new(sys::shoal_rpc_method {
            name: name.as_ptr(),
            kind: kind.raw(),
            check_request: None,
            check_response: None,
            handler: None,
            blocking: 0,
        });
        let md = RawMd::new(&opts.metadata)?;
        let o = sys::shoal_rpc_options { timeout: opts.timeout.map_or(0, nanos), metadata: &md.0 };
        let mut raw = ptr::null_mut();
        // SAFETY: the method table and its name live in the Call as long as the C call.
        let rc = unsafe {
            match request {
                Some(r) => sys::shoal_rpc_call_start_request(
                    &mut raw,
                    self.raw,
                    svc.as_ptr(),
                    &*m,
                    r.as_ptr().cast(),
                    r.len(),
                    &o,
                ),
                None => sys::shoal_rpc_call_start(&mut raw, self.raw, svc.as_ptr(), &*m, &o),
            }
        };
        check(rc).map_err(|e| Status::from_error(&e))?;
        Ok(Call { raw, _method: m, _name: name, status: None, done: false })
    }

    /// A unary call: sends `request`, returns the one response, or the status the call
    /// ended with.
    pub fn unary(
        &self,
        service: &str,
        method: &str,
        request: &[u8],
        opts: &CallOptions,
    ) -> std::result::Result<Vec<u8>, Status> {
        let mut call = self.start(service, method, Kind::Unary, Some(request), opts)?;
        let resp = call.recv()?;
        let status = call.finish();
        match (resp, status.code) {
            (Some(r), Code::Ok) => Ok(r),
            (None, Code::Ok) => Err(Status::new(Code::Internal, format!("{service}/{method}: no response"))),
            _ => Err(status),
        }
    }

    /// A server-streaming call: the responses are the items of the returned call.
    pub fn server_streaming(
        &self,
        service: &str,
        method: &str,
        request: &[u8],
        opts: &CallOptions,
    ) -> std::result::Result<Call, Status> {
        self.start(service, method, Kind::ServerStreaming, Some(request), opts)
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // SAFETY: raw came from shoal_rpc_channel_open; calls keep their own reference.
        unsafe { sys::shoal_rpc_channel_close(self.raw) }
    }
}

/// One call on a channel. Iterating over it yields the responses, then (if the call
/// did not end OK) one `Err(status)`.
pub struct Call {
    raw: *mut sys::shoal_rpc_call,
    _method: Box<sys::shoal_rpc_method>,
    _name: CString,
    status: Option<Status>,
    done: bool,
}

// SAFETY: rpc.h: a call is used by one thread at a time (it is not Sync).
unsafe impl Send for Call {}

impl Call {
    /// Sends a request (client and bidirectional streams), waiting while the server
    /// has a window of them unconsumed. A call that is over gives its status.
    pub fn send(&mut self, msg: &[u8]) -> std::result::Result<(), Status> {
        // SAFETY: msg is valid for len bytes.
        let rc = unsafe { sys::shoal_rpc_call_send(self.raw, msg.as_ptr().cast(), msg.len()) };
        match rc {
            0 => Ok(()),
            sys::SHOAL_ECLOSED => {
                let st = self.finish();
                Err(if st.code == Code::Ok {
                    Status::new(Code::FailedPrecondition, "send after close_send")
                } else {
                    st
                })
            }
            rc => Err(Status::from_error(&Error::last(rc))),
        }
    }

    /// Half-closes: the server sees the end of the requests.
    pub fn close_send(&mut self) -> std::result::Result<(), Status> {
        // SAFETY: raw is a live call.
        match unsafe { sys::shoal_rpc_call_close_send(self.raw) } {
            0 => Ok(()),
            _ => Err(self.finish()),
        }
    }

    /// The next response: `Ok(Some(msg))`, `Ok(None)` once the responses ended with
    /// status OK, or the status the call ended with.
    pub fn recv(&mut self) -> std::result::Result<Option<Vec<u8>>, Status> {
        let (mut p, mut len) = (ptr::null_mut(), 0usize);
        // SAFETY: raw is a live call; p is malloc'ed by libshoal when rc == 1.
        let rc = unsafe { sys::shoal_rpc_call_recv(self.raw, &mut p, &mut len) };
        if rc == 1 {
            return Ok(Some(unsafe { take_msg(p, len) }));
        }
        if rc < 0 {
            return Err(Status::from_error(&Error::last(rc)));
        }
        let st = self.finish();
        if st.code == Code::Ok {
            Ok(None)
        } else {
            Err(st)
        }
    }

    /// Waits at most `timeout` until [`Call::recv`] would not block; `true` when ready.
    pub fn wait(&self, timeout: Duration) -> bool {
        // SAFETY: raw is a live call.
        unsafe { sys::shoal_rpc_call_wait(self.raw, nanos(timeout)) == 1 }
    }

    /// Cancels the call: the handler sees it and the status becomes CANCELLED unless
    /// the call had already ended.
    pub fn cancel(&self) {
        // SAFETY: raw is a live call.
        unsafe { sys::shoal_rpc_call_cancel(self.raw) }
    }

    /// Waits for the end of the call (responses not received are dropped) and returns
    /// its status, with the trailers.
    pub fn finish(&mut self) -> Status {
        if let Some(st) = &self.status {
            return st.clone();
        }
        let mut detail = [0 as c_char; sys::SHOAL_RPC_DETAIL_MAX + 1];
        // SAFETY: detail has the capacity passed.
        let code = unsafe { sys::shoal_rpc_call_finish(self.raw, detail.as_mut_ptr(), detail.len()) };
        let details = unsafe { CStr::from_ptr(detail.as_ptr()) }.to_string_lossy().into_owned();
        let trailers = unsafe { md_pairs(sys::shoal_rpc_call_trailers(self.raw)) };
        let st = Status { code: Code::from_i32(code), details, trailers };
        self.status = Some(st.clone());
        st
    }

    /// The response headers received so far.
    pub fn headers(&self) -> Metadata {
        // SAFETY: raw is a live call.
        unsafe { md_pairs(sys::shoal_rpc_call_headers(self.raw)) }
    }

    /// The trailers received so far.
    pub fn trailers(&self) -> Metadata {
        // SAFETY: raw is a live call.
        unsafe { md_pairs(sys::shoal_rpc_call_trailers(self.raw)) }
    }

    /// A client-streaming call's end: half-closes, then returns the one response.
    pub fn close_and_recv(&mut self) -> std::result::Result<Vec<u8>, Status> {
        // A call already over reports its status through recv.
        let _ = self.close_send();
        match self.recv()? {
            Some(r) => match self.finish() {
                st if st.code == Code::Ok => Ok(r),
                st => Err(st),
            },
            None => Err(Status::new(Code::Internal, "no response")),
        }
    }
}

impl Iterator for Call {
    type Item = std::result::Result<Vec<u8>, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.recv() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(st) => {
                self.done = true;
                Some(Err(st))
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // SAFETY: raw came from shoal_rpc_call_start*; cancels it if still running.
        unsafe { sys::shoal_rpc_call_free(self.raw) }
    }
}

// ---- server ---------------------------------------------------------------------------

/// What a handler sees of its call.
pub struct ServerCtx {
    raw: *mut sys::shoal_rpc_ctx,
}

impl ServerCtx {
    /// The next request: `Ok(None)` at the end of the requests; an `Err` when the
    /// call was cancelled, its deadline passed or a request was invalid (return it).
    pub fn recv(&mut self) -> std::result::Result<Option<Vec<u8>>, Status> {
        let (mut p, mut len) = (ptr::null_mut(), 0usize);
        // SAFETY: raw is the live context of the running handler.
        match unsafe { sys::shoal_rpc_ctx_recv(self.raw, &mut p, &mut len) } {
            1 => Ok(Some(unsafe { take_msg(p, len) })),
            0 => Ok(None),
            sys::SHOAL_EINVALID_DATA => Err(Status::new(Code::InvalidArgument, "invalid request")),
            rc => Err(self.ended(rc)),
        }
    }

    /// Sends a response, waiting while the client has a window of them unconsumed.
    pub fn send(&mut self, msg: &[u8]) -> std::result::Result<(), Status> {
        // SAFETY: msg is valid for len bytes.
        match unsafe { sys::shoal_rpc_ctx_send(self.raw, msg.as_ptr().cast(), msg.len()) } {
            0 => Ok(()),
            rc => Err(self.ended(rc)),
        }
    }

    fn ended(&self, rc: c_int) -> Status {
        let e = Error::last(rc);
        if rc == sys::SHOAL_ECLOSED {
            let code = if self.time_remaining() == Some(Duration::ZERO) {
                Code::DeadlineExceeded
            } else {
                Code::Cancelled
            };
            Status::new(code, e.to_string())
        } else {
            Status::from_error(&e)
        }
    }

    /// Time left until the call's deadline (`None`: no deadline).
    pub fn time_remaining(&self) -> Option<Duration> {
        // SAFETY: raw is live.
        let ns = unsafe { sys::shoal_rpc_ctx_time_remaining(self.raw) };
        u64::try_from(ns).ok().map(Duration::from_nanos)
    }

    /// True once the call was cancelled, its deadline passed or its client died.
    pub fn is_cancelled(&self) -> bool {
        // SAFETY: raw is live.
        unsafe { sys::shoal_rpc_ctx_cancelled(self.raw) != 0 }
    }

    /// The request metadata.
    pub fn metadata(&self) -> Metadata {
        // SAFETY: raw is live.
        unsafe { md_pairs(sys::shoal_rpc_ctx_metadata(self.raw)) }
    }

    /// "pkg.Service/Method".
    pub fn method(&self) -> String {
        // SAFETY: raw is live; the string is the context's.
        unsafe { CStr::from_ptr(sys::shoal_rpc_ctx_method(self.raw)) }.to_string_lossy().into_owned()
    }

    /// Adds a response header (before the first response).
    pub fn add_header(&mut self, key: &str, value: &str) -> std::result::Result<(), Status> {
        self.add_md(key, value, sys::shoal_rpc_ctx_add_header)
    }

    /// Adds a trailer.
    pub fn add_trailer(&mut self, key: &str, value: &str) -> std::result::Result<(), Status> {
        self.add_md(key, value, sys::shoal_rpc_ctx_add_trailer)
    }

    fn add_md(
        &mut self,
        key: &str,
        value: &str,
        f: unsafe extern "C" fn(*mut sys::shoal_rpc_ctx, *const c_char, *const c_char) -> c_int,
    ) -> std::result::Result<(), Status> {
        let (k, v) = (c_string("metadata key", key)?, c_string("metadata value", value)?);
        // SAFETY: raw is live; the strings are NUL-terminated.
        check(unsafe { f(self.raw, k.as_ptr(), v.as_ptr()) })
            .map(drop)
            .map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))
    }
}

/// A method's handler: runs one call, on a thread of its own.
pub trait Handler: Send + Sync {
    fn call(&self, ctx: &mut ServerCtx) -> std::result::Result<(), Status>;
}

impl<F> Handler for F
where
    F: Fn(&mut ServerCtx) -> std::result::Result<(), Status> + Send + Sync,
{
    fn call(&self, ctx: &mut ServerCtx) -> std::result::Result<(), Status> {
        self(ctx)
    }
}

/// The one request of a unary or server-streaming call.
fn single_request(ctx: &mut ServerCtx) -> std::result::Result<Vec<u8>, Status> {
    ctx.recv()?.ok_or_else(|| Status::new(Code::InvalidArgument, "no request"))
}

/// A service: handlers by method name, under a full name ("pkg.Service"). Methods
/// without a handler answer UNIMPLEMENTED.
pub struct Service {
    name: String,
    methods: Vec<(String, Kind, Arc<dyn Handler>)>,
}

impl Service {
    pub fn new(name: &str) -> Service {
        Service { name: name.to_owned(), methods: Vec::new() }
    }

    /// The full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a method of any kind whose handler talks to its context directly.
    pub fn method(mut self, name: &str, kind: Kind, h: impl Handler + 'static) -> Service {
        self.methods.push((name.to_owned(), kind, Arc::new(h)));
        self
    }

    /// A unary method: request in, response out.
    pub fn unary<F>(self, name: &str, f: F) -> Service
    where
        F: Fn(&mut ServerCtx, Vec<u8>) -> std::result::Result<Vec<u8>, Status> + Send + Sync + 'static,
    {
        self.method(name, Kind::Unary, move |ctx: &mut ServerCtx| {
            let req = single_request(ctx)?;
            let resp = f(ctx, req)?;
            ctx.send(&resp)
        })
    }

    /// A server-streaming method: the handler sends its responses with `ctx.send`.
    pub fn server_streaming<F>(self, name: &str, f: F) -> Service
    where
        F: Fn(&mut ServerCtx, Vec<u8>) -> std::result::Result<(), Status> + Send + Sync + 'static,
    {
        self.method(name, Kind::ServerStreaming, move |ctx: &mut ServerCtx| {
            let req = single_request(ctx)?;
            f(ctx, req)
        })
    }

    /// A client-streaming method: the handler reads the requests with `ctx.recv` and
    /// returns the one response.
    pub fn client_streaming<F>(self, name: &str, f: F) -> Service
    where
        F: Fn(&mut ServerCtx) -> std::result::Result<Vec<u8>, Status> + Send + Sync + 'static,
    {
        self.method(name, Kind::ClientStreaming, move |ctx: &mut ServerCtx| {
            let resp = f(ctx)?;
            ctx.send(&resp)
        })
    }

    /// A bidirectional method: the handler uses `ctx.recv` and `ctx.send` freely.
    pub fn bidi_streaming<F>(self, name: &str, f: F) -> Service
    where
        F: Fn(&mut ServerCtx) -> std::result::Result<(), Status> + Send + Sync + 'static,
    {
        self.method(name, Kind::BidiStreaming, f)
    }
}

/// A service as libshoal holds it: the C tables and what they point to. Boxed: the
/// table's `arg` is its address.
struct RawService {
    c: sys::shoal_rpc_service,
    table: Vec<sys::shoal_rpc_method>,
    _names: Vec<CString>,
    handlers: HashMap<String, Arc<dyn Handler>>,
}

// SAFETY: the raw pointers point into the service itself (its names and table), which
// moves to the loop thread as a whole; the handlers are Send + Sync.
unsafe impl Send for RawService {}

impl RawService {
    fn new(svc: Service) -> std::result::Result<Box<RawService>, Error> {
        let bad =
            |s: &str| Error::new(ErrorKind::Inval, format!("service {s:?}: a name contains a NUL byte"));
        let mut names = vec![CString::new(svc.name.as_str()).map_err(|_| bad(&svc.name))?];
        let mut table = Vec::new();
        let mut handlers = HashMap::new();
        for (name, kind, h) in svc.methods {
            let c = CString::new(name.as_str()).map_err(|_| bad(&svc.name))?;
            table.push(sys::shoal_rpc_method {
                name: c.as_ptr(),
                kind: kind.raw(),
                check_request: None,
                check_response: None,
                handler: Some(trampoline),
                blocking: 1,
            });
            names.push(c);
            handlers.insert(name, h);
        }
        let mut raw = Box::new(RawService {
            c: sys::shoal_rpc_service {
                name: names[0].as_ptr(),
                methods: ptr::null(),
                n_methods: 0,
                arg: ptr::null_mut(),
            },
            table,
            _names: names,
            handlers,
        });
        raw.c.methods = raw.table.as_ptr();
        raw.c.n_methods = raw.table.len();
        raw.c.arg = (&*raw as *const RawService).cast_mut().cast();
        Ok(raw)
    }
}

/// The C handler of every method: finds the Rust handler by the call's method name,
/// runs it and turns its outcome into the call's status.
unsafe extern "C" fn trampoline(ctx: *mut sys::shoal_rpc_ctx, arg: *mut c_void) -> c_int {
    let svc = &*(arg as *const RawService);
    let mut sctx = ServerCtx { raw: ctx };
    let full = sctx.method();
    let method = full.rsplit('/').next().unwrap_or("");
    let outcome = match svc.handlers.get(method) {
        Some(h) => catch_unwind(AssertUnwindSafe(|| h.call(&mut sctx)))
            .unwrap_or_else(|_| Err(Status::new(Code::Internal, format!("{full}: the handler panicked")))),
        None => Err(Status::new(Code::Unimplemented, format!("{full}: no handler"))),
    };
    match outcome {
        Ok(()) => Code::Ok as c_int,
        Err(st) => {
            for (k, v) in &st.trailers {
                let _ = sctx.add_trailer(k, v);
            }
            let detail = CString::new(st.details.replace('\0', " ")).unwrap_or_default();
            sys::shoal_rpc_ctx_set_detail(ctx, c"%s".as_ptr(), detail.as_ptr());
            st.code as c_int
        }
    }
}

/// Raw pointers handed to the loop thread (which alone uses them).
struct Owned<T>(T);
// SAFETY: the loop pointer is used from other threads only through shoal_loop_stop,
// which is safe from any thread; the services are read-only after start.
unsafe impl<T> Send for Owned<T> {}

/// A server: services on addresses, served by an event loop on a thread of its own.
pub struct Server {
    services: Vec<Service>,
    ports: Vec<String>,
    token: Option<String>,
    objects: Options,
    running: Option<(Owned<*mut sys::shoal_loop>, JoinHandle<()>)>,
}

impl Default for Server {
    fn default() -> Server {
        Server::new()
    }
}

impl Server {
    pub fn new() -> Server {
        Server {
            services: Vec::new(),
            ports: Vec::new(),
            token: None,
            objects: Options::default(),
            running: None,
        }
    }

    /// Adds a service (before [`Server::start`]).
    pub fn add_service(&mut self, svc: Service) -> &mut Server {
        self.services.push(svc);
        self
    }

    /// Listens on `address` once started (any number of addresses).
    pub fn add_port(&mut self, address: &str) -> &mut Server {
        self.ports.push(address.to_owned());
        self
    }

    /// The token tcp:// clients must prove they know (at least 8 characters).
    pub fn set_token(&mut self, token: &str) -> &mut Server {
        self.token = Some(token.to_owned());
        self
    }

    /// shm://: root, domain and mode of the objects.
    pub fn set_objects(&mut self, objects: Options) -> &mut Server {
        self.objects = objects;
        self
    }

    /// Starts serving: on a new thread, creates the loop and the server, adds the
    /// services and listens on every port; returns the first failure (`Busy`: an
    /// address in use; `Inval`: a bad address, or tcp:// without a token) with
    /// nothing left running.
    pub fn start(&mut self) -> Result<()> {
        if self.running.is_some() {
            return Err(Error::new(ErrorKind::Inval, "rpc server: already started"));
        }
        let services = self.services.drain(..).map(RawService::new).collect::<Result<Vec<_>>>()?;
        let (ports, token, objects) = (self.ports.clone(), self.token.clone(), self.objects.clone());
        let (tx, rx) = mpsc::channel::<Result<Owned<*mut sys::shoal_loop>>>();
        let thread = std::thread::Builder::new()
            .name("shoal-rpc-server".into())
            .spawn(move || serve(services, ports, token, objects, tx))
            .map_err(|e| Error::new(ErrorKind::Sys, format!("rpc server thread: {e}")))?;
        match rx.recv() {
            Ok(Ok(lp)) => {
                self.running = Some((lp, thread));
                Ok(())
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::new(ErrorKind::Sys, "rpc server thread ended"))
            }
        }
    }

    /// Stops serving: cancels the calls still running, waits for their handlers and
    /// closes the connections (clients then get UNAVAILABLE).
    pub fn stop(&mut self) {
        if let Some((lp, thread)) = self.running.take() {
            // SAFETY: the loop lives until its thread returns, joined just below.
            unsafe { sys::shoal_loop_stop(lp.0) };
            let _ = thread.join();
        }
    }

    /// Blocks until the server has stopped (by [`Server::stop`] from another thread
    /// holding it, or forever).
    pub fn wait(mut self) {
        if let Some((_, thread)) = self.running.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server thread: sets everything up, reports, runs the loop, tears down.
#[allow(clippy::vec_box)] // boxed: each service's C table points at its own address
fn serve(
    services: Vec<Box<RawService>>,
    ports: Vec<String>,
    token: Option<String>,
    objects: Options,
    tx: mpsc::Sender<Result<Owned<*mut sys::shoal_loop>>>,
) {
    let (mut lp, mut srv) = (ptr::null_mut(), ptr::null_mut());
    let attr = objects.raw();
    let mut setup = || -> Result<()> {
        // SAFETY: out-pointers are valid; the service tables outlive the server (they
        // are dropped at the end of this function, after shoal_rpc_server_destroy).
        unsafe {
            check(sys::shoal_loop_create(&mut lp))?;
            check(sys::shoal_rpc_server_create(&mut srv, lp))?;
            for s in &services {
                check(sys::shoal_rpc_server_add_service(srv, &s.c))?;
            }
            if let Some(t) = &token {
                let t = CString::new(t.as_str())
                    .map_err(|_| Error::new(ErrorKind::Inval, "token contains a NUL byte"))?;
                check(sys::shoal_rpc_server_set_token(srv, t.as_ptr()))?;
            }
            for p in &ports {
                let a = CString::new(p.as_str())
                    .map_err(|_| Error::new(ErrorKind::Inval, "address contains a NUL byte"))?;
                check(sys::shoal_rpc_server_listen(srv, a.as_ptr(), &attr))?;
            }
        }
        Ok(())
    };
    let ok = match setup() {
        Ok(()) => tx.send(Ok(Owned(lp))).is_ok(),
        Err(e) => {
            let _ = tx.send(Err(e));
            false
        }
    };
    // SAFETY: lp and srv are ours (or NULL, which the destroy functions ignore).
    unsafe {
        if ok {
            sys::shoal_loop_run(lp);
        }
        sys::shoal_rpc_server_destroy(srv);
        if !lp.is_null() {
            sys::shoal_loop_destroy(lp);
        }
    }
    drop(services);
}
