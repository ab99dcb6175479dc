//! Raw declarations of libshoal's C API (`shoal.h`), one for one.
//!
//! Everything here is `unsafe` and mirrors the public headers in
//! runtime/include/shoal/: the same names, the same types, the same numbers. The
//! documentation of each function is in its header; the safe binding is the `shoal`
//! crate. Functions return 0 or a negative `SHOAL_E*` code; `shoal_errdetail()` gives
//! the calling thread's detail message for its last failure.
#![allow(non_camel_case_types)]
#![no_std]

use core::ffi::{c_char, c_int, c_uint, c_void};

// ---- common.h ------------------------------------------------------------------------

pub const SHOAL_OK: c_int = 0;
pub const SHOAL_EINVAL: c_int = -1;
pub const SHOAL_ENOMEM: c_int = -2;
pub const SHOAL_ENOENT: c_int = -3;
pub const SHOAL_EEXIST: c_int = -4;
pub const SHOAL_ENAME: c_int = -5;
pub const SHOAL_EKIND: c_int = -6;
pub const SHOAL_ELAYOUT: c_int = -7;
pub const SHOAL_ECORRUPT: c_int = -8;
pub const SHOAL_ETRUNCATED: c_int = -9;
pub const SHOAL_EFOREIGN: c_int = -10;
pub const SHOAL_EVERSION: c_int = -11;
pub const SHOAL_ENOSPC: c_int = -12;
pub const SHOAL_ETIMEDOUT: c_int = -13;
pub const SHOAL_EAGAIN: c_int = -14;
pub const SHOAL_EOWNERDEAD: c_int = -15;
pub const SHOAL_EPERM: c_int = -16;
pub const SHOAL_ERANGE: c_int = -17;
pub const SHOAL_EOVERFLOW: c_int = -18;
pub const SHOAL_EMSGSIZE: c_int = -19;
pub const SHOAL_ECLOSED: c_int = -20;
pub const SHOAL_EEOF: c_int = -21;
pub const SHOAL_EPEERDEAD: c_int = -22;
pub const SHOAL_EBROKEN: c_int = -23;
pub const SHOAL_EDEADLK: c_int = -24;
pub const SHOAL_ETYPE: c_int = -25;
pub const SHOAL_EACCES: c_int = -26;
pub const SHOAL_EBUSY: c_int = -27;
pub const SHOAL_ESYS: c_int = -28;
pub const SHOAL_EINVALID_DATA: c_int = -29;
pub const SHOAL_EINTR: c_int = -30;

pub type shoal_duration = i64;
pub const SHOAL_FOREVER: shoal_duration = -1;
pub const SHOAL_NOWAIT: shoal_duration = 0;

pub const SHOAL_NAME_MAX: usize = 100;
pub const SHOAL_DOMAIN_MAX: usize = 64;

pub const SHOAL_OPEN: c_int = 1;
pub const SHOAL_CREATE: c_int = 2;
pub const SHOAL_OPEN_OR_CREATE: c_int = 3;

pub const SHOAL_LOCK_RLOCK: c_int = 0;
pub const SHOAL_LOCK_NONE: c_int = 1;
pub const SHOAL_LOCK_CALLER: c_int = 2;

pub const SHOAL_KIND_SHM: c_int = 1;
pub const SHOAL_KIND_VALUE: c_int = 2;
pub const SHOAL_KIND_ARRAY: c_int = 3;
pub const SHOAL_KIND_LOCK: c_int = 4;
pub const SHOAL_KIND_RLOCK: c_int = 5;
pub const SHOAL_KIND_SEMAPHORE: c_int = 6;
pub const SHOAL_KIND_BOUNDED_SEMAPHORE: c_int = 7;
pub const SHOAL_KIND_CONDITION: c_int = 8;
pub const SHOAL_KIND_EVENT: c_int = 9;
pub const SHOAL_KIND_BARRIER: c_int = 10;
pub const SHOAL_KIND_QUEUE: c_int = 11;
pub const SHOAL_KIND_PIPE: c_int = 12;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_attr {
    pub root: *const c_char,
    pub domain: *const c_char,
    pub mode: c_uint,
    pub lock: c_int,
    pub caller_lock: *mut shoal_lock,
}

// ---- type.h --------------------------------------------------------------------------

pub const SHOAL_FIELD_INT8: u32 = 1;
pub const SHOAL_FIELD_UINT8: u32 = 2;
pub const SHOAL_FIELD_INT16: u32 = 3;
pub const SHOAL_FIELD_UINT16: u32 = 4;
pub const SHOAL_FIELD_INT32: u32 = 5;
pub const SHOAL_FIELD_UINT32: u32 = 6;
pub const SHOAL_FIELD_INT64: u32 = 7;
pub const SHOAL_FIELD_UINT64: u32 = 8;
pub const SHOAL_FIELD_FLOAT: u32 = 9;
pub const SHOAL_FIELD_DOUBLE: u32 = 10;
pub const SHOAL_FIELD_BOOL: u32 = 11;
pub const SHOAL_FIELD_CHAR: u32 = 12;
pub const SHOAL_FIELD_ENUM: u32 = 13;
pub const SHOAL_FIELD_STRING: u32 = 14;
pub const SHOAL_FIELD_BYTES: u32 = 15;
pub const SHOAL_FIELD_MESSAGE: u32 = 16;
pub const SHOAL_FIELD_UNION: u32 = 17;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_field {
    pub name: *const c_char,
    pub number: u32,
    pub kind: u32,
    pub offset: u32,
    pub size: u32,
    pub max_count: u32,
    pub max_len: u32,
    pub type_: *const shoal_type,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_type {
    pub name: *const c_char,
    pub layout_hash: u64,
    pub size: u32,
    pub align: u32,
    pub typecode: c_char,
    pub nfields: u32,
    pub fields: *const shoal_field,
}

pub const SHOAL_FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

// ---- typed.h: the protobuf form of fixed messages ----------------------------------

pub const SHOAL_PB_REPEATED: u8 = 1;
pub const SHOAL_PB_PACKED: u8 = 2;
pub const SHOAL_PB_HAS: u8 = 4;
pub const SHOAL_PB_ONEOF: u8 = 8;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_pb_field {
    pub number: u32,
    pub type_: u8,
    pub flags: u8,
    pub offset: u32,
    pub has_offset: u32,
    pub elem_size: u32,
    pub items_offset: u32,
    pub max_len: u32,
    pub max_count: u32,
    pub msg: *const shoal_pb_message,
    pub name: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_pb_message {
    pub name: *const c_char,
    pub size: u32,
    pub init: *const c_void,
    pub nfields: u32,
    pub fields: *const shoal_pb_field,
}

extern "C" {
    pub fn shoal_pb_encode(
        d: *const shoal_pb_message,
        m: *const c_void,
        buf: *mut c_void,
        cap: usize,
        len: *mut usize,
    ) -> c_int;
    pub fn shoal_pb_decode(
        d: *const shoal_pb_message,
        m: *mut c_void,
        buf: *const c_void,
        len: usize,
    ) -> c_int;
}

// ---- sync.h --------------------------------------------------------------------------

#[repr(C, align(8))]
pub struct shoal_lock {
    pub opaque: [u8; 64],
}
#[repr(C, align(8))]
pub struct shoal_sem {
    pub opaque: [u8; 16],
}
#[repr(C, align(8))]
pub struct shoal_cond {
    pub opaque: [u8; 16],
}
#[repr(C, align(8))]
pub struct shoal_event {
    pub opaque: [u8; 8],
}
#[repr(C, align(8))]
pub struct shoal_barrier {
    pub opaque: [u8; 32],
}

// ---- opaque handles ------------------------------------------------------------------

#[repr(C)]
pub struct shoal_shm {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_value {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_array {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_queue {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_pipe {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_queue_config {
    pub type_: *const shoal_type,
    pub max_msg: usize,
    pub capacity: usize,
    pub spsc: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct shoal_queue_stats {
    pub capacity: u64,
    pub depth: u64,
    pub max_msg: u64,
    pub puts: u64,
    pub gets: u64,
    pub full_waits: u64,
    pub empty_waits: u64,
    pub closed: c_int,
    pub spsc: c_int,
}

pub const SHOAL_PIPE_TAKEOVER: c_int = 0x100;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct shoal_object_info {
    pub name: [c_char; SHOAL_NAME_MAX + 1],
    pub kind: c_int,
    pub status: c_int,
    pub type_name: [c_char; 64],
    pub layout_hash: u64,
    pub elem_size: u64,
    pub count: u64,
    pub file_size: u64,
    pub creator_pid: i32,
    pub users: c_int,
    pub anonymous: c_int,
}

extern "C" {
    // common.h
    pub fn shoal_strerror(rc: c_int) -> *const c_char;
    pub fn shoal_errdetail() -> *const c_char;
    pub fn shoal_kind_name(kind: c_int) -> *const c_char;
    pub fn shoal_set_spin_ns(ns: i64);
    pub fn shoal_spin_ns() -> i64;

    // type.h
    pub fn shoal_typecode(code: c_char) -> *const shoal_type;
    pub fn shoal_fnv1a(h: u64, data: *const c_void, len: usize) -> u64;
    pub fn shoal_invalid(fmt: *const c_char, ...) -> c_int;

    // segment.h
    pub fn shoal_shm_open(
        out: *mut *mut shoal_shm,
        name: *const c_char,
        mode: c_int,
        size: usize,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_shm_data(shm: *mut shoal_shm) -> *mut c_void;
    pub fn shoal_shm_size(shm: *const shoal_shm) -> usize;
    pub fn shoal_shm_name(shm: *const shoal_shm) -> *const c_char;
    pub fn shoal_shm_close(shm: *mut shoal_shm) -> c_int;
    pub fn shoal_unlink(name: *const c_char, attr: *const shoal_attr) -> c_int;
    pub fn shoal_name_check(name: *const c_char) -> c_int;
    pub fn shoal_list(
        attr: *const shoal_attr,
        f: Option<unsafe extern "C" fn(*const shoal_object_info, *mut c_void) -> c_int>,
        arg: *mut c_void,
    ) -> c_int;
    pub fn shoal_stat(name: *const c_char, attr: *const shoal_attr, info: *mut shoal_object_info) -> c_int;
    pub fn shoal_gc(attr: *const shoal_attr) -> c_int;

    // sync.h
    pub fn shoal_sync_name(prim: *const c_void) -> *const c_char;
    pub fn shoal_lock_init(lock: *mut shoal_lock, recursive: c_int) -> c_int;
    pub fn shoal_lock_open(
        out: *mut *mut shoal_lock,
        name: *const c_char,
        mode: c_int,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_rlock_open(
        out: *mut *mut shoal_lock,
        name: *const c_char,
        mode: c_int,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_lock_close(lock: *mut shoal_lock) -> c_int;
    pub fn shoal_lock_acquire(lock: *mut shoal_lock, timeout: shoal_duration) -> c_int;
    pub fn shoal_lock_try(lock: *mut shoal_lock) -> c_int;
    pub fn shoal_lock_release(lock: *mut shoal_lock) -> c_int;
    pub fn shoal_lock_locked(lock: *mut shoal_lock) -> c_int;
    pub fn shoal_lock_state(
        lock: *mut shoal_lock,
        recursive: *mut c_int,
        owner_tid: *mut i32,
        depth: *mut u32,
    );
    pub fn shoal_lock_holder_died(lock: *mut shoal_lock) -> c_int;

    pub fn shoal_sem_init(sem: *mut shoal_sem, value: u32, bounded: c_int) -> c_int;
    pub fn shoal_sem_open(
        out: *mut *mut shoal_sem,
        name: *const c_char,
        mode: c_int,
        value: u32,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_bsem_open(
        out: *mut *mut shoal_sem,
        name: *const c_char,
        mode: c_int,
        value: u32,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_sem_close(sem: *mut shoal_sem) -> c_int;
    pub fn shoal_sem_acquire(sem: *mut shoal_sem, timeout: shoal_duration) -> c_int;
    pub fn shoal_sem_try(sem: *mut shoal_sem) -> c_int;
    pub fn shoal_sem_release(sem: *mut shoal_sem) -> c_int;
    pub fn shoal_sem_value(sem: *mut shoal_sem) -> u32;

    pub fn shoal_cond_init(cond: *mut shoal_cond) -> c_int;
    pub fn shoal_cond_open(
        out: *mut *mut shoal_cond,
        name: *const c_char,
        mode: c_int,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_cond_close(cond: *mut shoal_cond) -> c_int;
    pub fn shoal_cond_wait(cond: *mut shoal_cond, lock: *mut shoal_lock, timeout: shoal_duration) -> c_int;
    pub fn shoal_cond_notify(cond: *mut shoal_cond, n: u32) -> c_int;
    pub fn shoal_cond_notify_all(cond: *mut shoal_cond) -> c_int;

    pub fn shoal_event_init(ev: *mut shoal_event) -> c_int;
    pub fn shoal_event_open(
        out: *mut *mut shoal_event,
        name: *const c_char,
        mode: c_int,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_event_close(ev: *mut shoal_event) -> c_int;
    pub fn shoal_event_set(ev: *mut shoal_event) -> c_int;
    pub fn shoal_event_clear(ev: *mut shoal_event) -> c_int;
    pub fn shoal_event_is_set(ev: *mut shoal_event) -> c_int;
    pub fn shoal_event_wait(ev: *mut shoal_event, timeout: shoal_duration) -> c_int;

    pub fn shoal_barrier_init(b: *mut shoal_barrier, parties: u32) -> c_int;
    pub fn shoal_barrier_open(
        out: *mut *mut shoal_barrier,
        name: *const c_char,
        mode: c_int,
        parties: u32,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_barrier_close(b: *mut shoal_barrier) -> c_int;
    pub fn shoal_barrier_wait(b: *mut shoal_barrier, timeout: shoal_duration) -> c_int;
    pub fn shoal_barrier_abort(b: *mut shoal_barrier) -> c_int;
    pub fn shoal_barrier_reset(b: *mut shoal_barrier) -> c_int;
    pub fn shoal_barrier_state(
        b: *mut shoal_barrier,
        parties: *mut u32,
        waiting: *mut u32,
        broken: *mut c_int,
    );

    // value.h
    pub fn shoal_value_open(
        out: *mut *mut shoal_value,
        name: *const c_char,
        mode: c_int,
        type_: *const shoal_type,
        init: *const c_void,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_value_close(v: *mut shoal_value) -> c_int;
    pub fn shoal_value_name(v: *const shoal_value) -> *const c_char;
    pub fn shoal_value_type(v: *const shoal_value) -> *const shoal_type;
    pub fn shoal_value_read(v: *mut shoal_value, out: *mut c_void) -> c_int;
    pub fn shoal_value_write(v: *mut shoal_value, in_: *const c_void) -> c_int;
    pub fn shoal_value_snapshot(v: *mut shoal_value, out: *mut c_void) -> c_int;
    pub fn shoal_value_modify(v: *mut shoal_value) -> *mut c_void;
    pub fn shoal_value_commit(v: *mut shoal_value) -> c_int;
    pub fn shoal_value_data(v: *mut shoal_value) -> *mut c_void;
    pub fn shoal_value_get_lock(v: *mut shoal_value) -> *mut shoal_lock;
    pub fn shoal_value_add(v: *mut shoal_value, delta: i64, old: *mut i64) -> c_int;
    pub fn shoal_value_exchange(v: *mut shoal_value, desired: i64, old: *mut i64) -> c_int;
    pub fn shoal_value_cas(v: *mut shoal_value, expected: *mut i64, desired: i64) -> c_int;
    pub fn shoal_value_load(v: *mut shoal_value, out: *mut i64) -> c_int;
    pub fn shoal_value_store(v: *mut shoal_value, in_: i64) -> c_int;

    pub fn shoal_array_open(
        out: *mut *mut shoal_array,
        name: *const c_char,
        mode: c_int,
        type_: *const shoal_type,
        count: usize,
        init: *const c_void,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_array_close(a: *mut shoal_array) -> c_int;
    pub fn shoal_array_name(a: *const shoal_array) -> *const c_char;
    pub fn shoal_array_type(a: *const shoal_array) -> *const shoal_type;
    pub fn shoal_array_len(a: *const shoal_array) -> usize;
    pub fn shoal_array_get(a: *mut shoal_array, index: usize, out: *mut c_void) -> c_int;
    pub fn shoal_array_set(a: *mut shoal_array, index: usize, in_: *const c_void) -> c_int;
    pub fn shoal_array_read(a: *mut shoal_array, start: usize, n: usize, out: *mut c_void) -> c_int;
    pub fn shoal_array_write(a: *mut shoal_array, start: usize, n: usize, in_: *const c_void) -> c_int;
    pub fn shoal_array_add(a: *mut shoal_array, index: usize, delta: i64, old: *mut i64) -> c_int;
    pub fn shoal_array_data(a: *mut shoal_array) -> *mut c_void;
    pub fn shoal_array_get_lock(a: *mut shoal_array) -> *mut shoal_lock;

    // queue.h
    pub fn shoal_queue_open(
        out: *mut *mut shoal_queue,
        name: *const c_char,
        mode: c_int,
        cfg: *const shoal_queue_config,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_queue_close(q: *mut shoal_queue) -> c_int;
    pub fn shoal_queue_name(q: *const shoal_queue) -> *const c_char;
    pub fn shoal_queue_put(
        q: *mut shoal_queue,
        msg: *const c_void,
        len: usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_queue_try_put(q: *mut shoal_queue, msg: *const c_void, len: usize) -> c_int;
    pub fn shoal_queue_get(
        q: *mut shoal_queue,
        buf: *mut c_void,
        cap: usize,
        len: *mut usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_queue_try_get(q: *mut shoal_queue, buf: *mut c_void, cap: usize, len: *mut usize) -> c_int;
    pub fn shoal_queue_put_batch(
        q: *mut shoal_queue,
        elems: *const c_void,
        n: usize,
        done: *mut usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_queue_get_batch(
        q: *mut shoal_queue,
        elems: *mut c_void,
        max: usize,
        done: *mut usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_queue_loan(
        q: *mut shoal_queue,
        slot: *mut *mut c_void,
        cap: *mut usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_queue_commit(q: *mut shoal_queue, slot: *mut c_void, len: usize) -> c_int;
    pub fn shoal_queue_peek(
        q: *mut shoal_queue,
        msg: *mut *const c_void,
        len: *mut usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_queue_release(q: *mut shoal_queue, msg: *const c_void) -> c_int;
    pub fn shoal_queue_shutdown(q: *mut shoal_queue) -> c_int;
    pub fn shoal_queue_stats_get(q: *mut shoal_queue, st: *mut shoal_queue_stats) -> c_int;

    // pipe.h
    pub fn shoal_pipe_open(
        out: *mut *mut shoal_pipe,
        name: *const c_char,
        end: c_int,
        mode: c_int,
        cfg: *const shoal_queue_config,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_pipe_pair(
        end0: *mut *mut shoal_pipe,
        end1: *mut *mut shoal_pipe,
        name: *const c_char,
        cfg: *const shoal_queue_config,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_pipe_close(p: *mut shoal_pipe) -> c_int;
    pub fn shoal_pipe_name(p: *const shoal_pipe) -> *const c_char;
    pub fn shoal_pipe_send(
        p: *mut shoal_pipe,
        msg: *const c_void,
        len: usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_pipe_recv(
        p: *mut shoal_pipe,
        buf: *mut c_void,
        cap: usize,
        len: *mut usize,
        timeout: shoal_duration,
    ) -> c_int;
    pub fn shoal_pipe_poll(p: *mut shoal_pipe, timeout: shoal_duration) -> c_int;
}

// ---- loop.h (what a server needs) ----------------------------------------------------

#[repr(C)]
pub struct shoal_loop {
    _private: [u8; 0],
}

extern "C" {
    pub fn shoal_loop_create(out: *mut *mut shoal_loop) -> c_int;
    pub fn shoal_loop_destroy(l: *mut shoal_loop);
    pub fn shoal_loop_stop(l: *mut shoal_loop);
    pub fn shoal_loop_run(l: *mut shoal_loop) -> c_int;
}

// ---- rpc.h -------------------------------------------------------------------------

pub const SHOAL_RPC_UNARY: c_int = 0;
pub const SHOAL_RPC_SERVER_STREAMING: c_int = 1;
pub const SHOAL_RPC_CLIENT_STREAMING: c_int = 2;
pub const SHOAL_RPC_BIDI_STREAMING: c_int = 3;
pub const SHOAL_RPC_WINDOW: usize = 128;
pub const SHOAL_RPC_DETAIL_MAX: usize = 512;
pub const SHOAL_RPC_KEY_MAX: usize = 128;
pub const SHOAL_RPC_VALUE_MAX: usize = 4096;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_rpc_kv {
    pub key: *mut c_char,
    pub value: *mut c_char,
}

#[repr(C)]
#[derive(Debug)]
pub struct shoal_rpc_md {
    pub count: usize,
    pub items: *mut shoal_rpc_kv,
}

#[repr(C)]
pub struct shoal_rpc_ctx {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_rpc_channel {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_rpc_call {
    _private: [u8; 0],
}
#[repr(C)]
pub struct shoal_rpc_server {
    _private: [u8; 0],
}

pub type shoal_rpc_handler = Option<unsafe extern "C" fn(ctx: *mut shoal_rpc_ctx, arg: *mut c_void) -> c_int>;
pub type shoal_rpc_check = Option<unsafe extern "C" fn(msg: *const c_void, len: usize) -> c_int>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_rpc_method {
    pub name: *const c_char,
    pub kind: c_int,
    pub check_request: shoal_rpc_check,
    pub check_response: shoal_rpc_check,
    pub handler: shoal_rpc_handler,
    pub blocking: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_rpc_service {
    pub name: *const c_char,
    pub methods: *const shoal_rpc_method,
    pub n_methods: usize,
    pub arg: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_rpc_channel_config {
    pub connect_timeout: shoal_duration,
    pub attr: *const shoal_attr,
    pub token: *const c_char,
    pub max_frame: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shoal_rpc_options {
    pub timeout: shoal_duration,
    pub metadata: *const shoal_rpc_md,
}

extern "C" {
    pub fn shoal_rpc_code_name(code: c_int) -> *const c_char;
    pub fn shoal_rpc_code_from_name(name: *const c_char) -> c_int;

    pub fn shoal_rpc_md_add(md: *mut shoal_rpc_md, key: *const c_char, value: *const c_char) -> c_int;
    pub fn shoal_rpc_md_get(md: *const shoal_rpc_md, key: *const c_char) -> *const c_char;
    pub fn shoal_rpc_md_clear(md: *mut shoal_rpc_md);

    pub fn shoal_rpc_channel_open(
        out: *mut *mut shoal_rpc_channel,
        address: *const c_char,
        cfg: *const shoal_rpc_channel_config,
    ) -> c_int;
    pub fn shoal_rpc_channel_close(ch: *mut shoal_rpc_channel);
    pub fn shoal_rpc_call_start(
        out: *mut *mut shoal_rpc_call,
        ch: *mut shoal_rpc_channel,
        service: *const c_char,
        m: *const shoal_rpc_method,
        opts: *const shoal_rpc_options,
    ) -> c_int;
    pub fn shoal_rpc_call_start_request(
        out: *mut *mut shoal_rpc_call,
        ch: *mut shoal_rpc_channel,
        service: *const c_char,
        m: *const shoal_rpc_method,
        req: *const c_void,
        len: usize,
        opts: *const shoal_rpc_options,
    ) -> c_int;
    pub fn shoal_rpc_call_send(c: *mut shoal_rpc_call, msg: *const c_void, len: usize) -> c_int;
    pub fn shoal_rpc_call_close_send(c: *mut shoal_rpc_call) -> c_int;
    pub fn shoal_rpc_call_send_ready(c: *mut shoal_rpc_call) -> c_int;
    pub fn shoal_rpc_call_recv(c: *mut shoal_rpc_call, msg: *mut *mut c_void, len: *mut usize) -> c_int;
    pub fn shoal_rpc_call_wait(c: *mut shoal_rpc_call, timeout: shoal_duration) -> c_int;
    pub fn shoal_rpc_call_cancel(c: *mut shoal_rpc_call);
    pub fn shoal_rpc_call_finish(c: *mut shoal_rpc_call, detail: *mut c_char, cap: usize) -> c_int;
    pub fn shoal_rpc_call_headers(c: *const shoal_rpc_call) -> *const shoal_rpc_md;
    pub fn shoal_rpc_call_trailers(c: *const shoal_rpc_call) -> *const shoal_rpc_md;
    pub fn shoal_rpc_call_free(c: *mut shoal_rpc_call);

    pub fn shoal_rpc_server_create(out: *mut *mut shoal_rpc_server, l: *mut shoal_loop) -> c_int;
    pub fn shoal_rpc_server_add_service(s: *mut shoal_rpc_server, svc: *const shoal_rpc_service) -> c_int;
    pub fn shoal_rpc_server_set_token(s: *mut shoal_rpc_server, token: *const c_char) -> c_int;
    pub fn shoal_rpc_server_listen(
        s: *mut shoal_rpc_server,
        address: *const c_char,
        attr: *const shoal_attr,
    ) -> c_int;
    pub fn shoal_rpc_server_destroy(s: *mut shoal_rpc_server);

    pub fn shoal_rpc_ctx_recv(ctx: *mut shoal_rpc_ctx, msg: *mut *mut c_void, len: *mut usize) -> c_int;
    pub fn shoal_rpc_ctx_send(ctx: *mut shoal_rpc_ctx, msg: *const c_void, len: usize) -> c_int;
    pub fn shoal_rpc_ctx_time_remaining(ctx: *const shoal_rpc_ctx) -> shoal_duration;
    pub fn shoal_rpc_ctx_cancelled(ctx: *const shoal_rpc_ctx) -> c_int;
    pub fn shoal_rpc_ctx_metadata(ctx: *const shoal_rpc_ctx) -> *const shoal_rpc_md;
    pub fn shoal_rpc_ctx_method(ctx: *const shoal_rpc_ctx) -> *const c_char;
    pub fn shoal_rpc_ctx_add_header(
        ctx: *mut shoal_rpc_ctx,
        key: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub fn shoal_rpc_ctx_add_trailer(
        ctx: *mut shoal_rpc_ctx,
        key: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub fn shoal_rpc_ctx_set_detail(ctx: *mut shoal_rpc_ctx, fmt: *const c_char, ...);
}

// ---- manager.h -----------------------------------------------------------------------

/// A broker value (opaque).
#[repr(C)]
pub struct shoal_mv {
    _private: [u8; 0],
}
/// A broker connection (opaque).
#[repr(C)]
pub struct shoal_manager {
    _private: [u8; 0],
}

pub const SHOAL_MV_NONE: c_int = 1;
pub const SHOAL_MV_BOOL: c_int = 2;
pub const SHOAL_MV_INT: c_int = 3;
pub const SHOAL_MV_DOUBLE: c_int = 4;
pub const SHOAL_MV_STR: c_int = 5;
pub const SHOAL_MV_BYTES: c_int = 6;
pub const SHOAL_MV_LIST: c_int = 7;
pub const SHOAL_MV_TUPLE: c_int = 8;
pub const SHOAL_MV_MAP: c_int = 9;
pub const SHOAL_MV_MESSAGE: c_int = 10;
pub const SHOAL_MV_PICKLE: c_int = 11;

pub type shoal_manager_kind = c_int;
pub const SHOAL_M_DICT: shoal_manager_kind = 1;
pub const SHOAL_M_LIST: shoal_manager_kind = 2;
pub const SHOAL_M_NAMESPACE: shoal_manager_kind = 3;
pub const SHOAL_M_VALUE: shoal_manager_kind = 4;
pub const SHOAL_M_ARRAY: shoal_manager_kind = 5;
pub const SHOAL_M_QUEUE: shoal_manager_kind = 6;
pub const SHOAL_M_LOCK: shoal_manager_kind = 7;
pub const SHOAL_M_RLOCK: shoal_manager_kind = 8;
pub const SHOAL_M_SEMAPHORE: shoal_manager_kind = 9;
pub const SHOAL_M_BOUNDED_SEMAPHORE: shoal_manager_kind = 10;
pub const SHOAL_M_EVENT: shoal_manager_kind = 11;
pub const SHOAL_M_CONDITION: shoal_manager_kind = 12;
pub const SHOAL_M_BARRIER: shoal_manager_kind = 13;
pub const SHOAL_M_JOINABLE_QUEUE: shoal_manager_kind = 14;

/// A watch of a broker object (opaque).
#[repr(C)]
pub struct shoal_manager_watch {
    _private: [u8; 0],
}

#[repr(C)]
pub struct shoal_manager_change {
    pub seq: u64,
    pub op: *const c_char,
    pub path: *const shoal_mv,
    pub args: *const shoal_mv,
    pub result: *const shoal_mv,
    pub value: *const shoal_mv,
    pub priv_: *mut c_void,
}

#[repr(C)]
pub struct shoal_manager_config {
    pub connect_timeout: shoal_duration,
    pub token: *const c_char,
    pub attr: *const shoal_attr,
    pub tls_ca_file: *const c_char,
    pub tls_cert_file: *const c_char,
    pub tls_key_file: *const c_char,
    pub tls_server_name: *const c_char,
}

#[repr(C)]
pub struct shoal_manager_request {
    pub name: *const c_char,
    pub op: *const c_char,
    pub path: *mut *mut shoal_mv,
    pub npath: usize,
    pub args: *mut *mut shoal_mv,
    pub nargs: usize,
    pub timeout: shoal_duration,
}

extern "C" {
    pub fn shoal_mv_none() -> *mut shoal_mv;
    pub fn shoal_mv_bool(b: c_int) -> *mut shoal_mv;
    pub fn shoal_mv_int(i: i64) -> *mut shoal_mv;
    pub fn shoal_mv_double(d: f64) -> *mut shoal_mv;
    pub fn shoal_mv_str(s: *const c_char) -> *mut shoal_mv;
    pub fn shoal_mv_bytes(p: *const c_void, len: usize) -> *mut shoal_mv;
    pub fn shoal_mv_message(type_: *const c_char, p: *const c_void, len: usize) -> *mut shoal_mv;
    pub fn shoal_mv_pickle(p: *const c_void, len: usize) -> *mut shoal_mv;
    pub fn shoal_mv_list() -> *mut shoal_mv;
    pub fn shoal_mv_tuple() -> *mut shoal_mv;
    pub fn shoal_mv_map() -> *mut shoal_mv;
    pub fn shoal_mv_append(seq: *mut shoal_mv, item: *mut shoal_mv) -> c_int;
    pub fn shoal_mv_put(map: *mut shoal_mv, key: *mut shoal_mv, value: *mut shoal_mv) -> c_int;
    pub fn shoal_mv_copy(v: *const shoal_mv) -> *mut shoal_mv;
    pub fn shoal_mv_free(v: *mut shoal_mv);
    pub fn shoal_mv_type(v: *const shoal_mv) -> c_int;
    pub fn shoal_mv_as_bool(v: *const shoal_mv) -> c_int;
    pub fn shoal_mv_as_int(v: *const shoal_mv) -> i64;
    pub fn shoal_mv_as_double(v: *const shoal_mv) -> f64;
    pub fn shoal_mv_as_str(v: *const shoal_mv) -> *const c_char;
    pub fn shoal_mv_as_bytes(v: *const shoal_mv, len: *mut usize) -> *const c_void;
    pub fn shoal_mv_message_type(v: *const shoal_mv) -> *const c_char;
    pub fn shoal_mv_len(v: *const shoal_mv) -> usize;
    pub fn shoal_mv_item(v: *const shoal_mv, i: usize) -> *const shoal_mv;
    pub fn shoal_mv_key(v: *const shoal_mv, i: usize) -> *const shoal_mv;
    pub fn shoal_mv_value(v: *const shoal_mv, i: usize) -> *const shoal_mv;
    pub fn shoal_mv_get(map: *const shoal_mv, key: *const shoal_mv) -> *const shoal_mv;
    pub fn shoal_mv_equal(a: *const shoal_mv, b: *const shoal_mv) -> c_int;
    pub fn shoal_mv_format(v: *const shoal_mv, buf: *mut c_char, cap: usize) -> usize;

    pub fn shoal_manager_connect(
        out: *mut *mut shoal_manager,
        address: *const c_char,
        cfg: *const shoal_manager_config,
    ) -> c_int;
    pub fn shoal_manager_close(m: *mut shoal_manager);
    pub fn shoal_manager_shutdown(m: *mut shoal_manager);
    pub fn shoal_manager_enter(m: *mut shoal_manager) -> c_int;
    pub fn shoal_manager_leave(m: *mut shoal_manager);
    pub fn shoal_manager_create(
        m: *mut shoal_manager,
        name: *const c_char,
        kind: shoal_manager_kind,
        init: *mut shoal_mv,
        typecode: *const c_char,
    ) -> c_int;
    pub fn shoal_manager_delete(m: *mut shoal_manager, name: *const c_char) -> c_int;
    pub fn shoal_manager_call(
        m: *mut shoal_manager,
        name: *const c_char,
        op: *const c_char,
        timeout: shoal_duration,
        result: *mut *mut shoal_mv,
        nargs: usize,
        ...
    ) -> c_int;
    pub fn shoal_manager_submit(
        m: *mut shoal_manager,
        r: *const shoal_manager_request,
        id: *mut u64,
    ) -> c_int;
    pub fn shoal_manager_wait(m: *mut shoal_manager, id: u64, result: *mut *mut shoal_mv) -> c_int;
    pub fn shoal_manager_flush(m: *mut shoal_manager) -> c_int;
    pub fn shoal_manager_view_stats(m: *mut shoal_manager, hits: *mut u64, misses: *mut u64) -> c_int;
    pub fn shoal_manager_watch_open(
        m: *mut shoal_manager,
        name: *const c_char,
        key: *mut shoal_mv,
        out: *mut *mut shoal_manager_watch,
    ) -> c_int;
    pub fn shoal_manager_watch_next(
        w: *mut shoal_manager_watch,
        timeout: shoal_duration,
        ch: *mut *mut shoal_manager_change,
    ) -> c_int;
    pub fn shoal_manager_change_free(ch: *mut shoal_manager_change);
    pub fn shoal_manager_watch_close(w: *mut shoal_manager_watch);
}

/// Layout checks of the structs shared with C (the sizes the headers document).
const _: () = {
    assert!(core::mem::size_of::<shoal_lock>() == 64);
    assert!(core::mem::size_of::<shoal_sem>() == 16);
    assert!(core::mem::size_of::<shoal_cond>() == 16);
    assert!(core::mem::size_of::<shoal_event>() == 8);
    assert!(core::mem::size_of::<shoal_barrier>() == 32);
    assert!(core::mem::size_of::<shoal_attr>() == 32);
    assert!(core::mem::size_of::<shoal_field>() == 40);
    assert!(core::mem::size_of::<shoal_type>() == 40);
    assert!(core::mem::size_of::<shoal_queue_config>() == 32);
    assert!(core::mem::size_of::<shoal_rpc_method>() == 48);
    assert!(core::mem::size_of::<shoal_rpc_service>() == 32);
    assert!(core::mem::size_of::<shoal_rpc_channel_config>() == 32);
    assert!(core::mem::size_of::<shoal_rpc_options>() == 16);
    assert!(core::mem::size_of::<shoal_rpc_md>() == 16);
    assert!(core::mem::size_of::<shoal_manager_config>() == 56);
    assert!(core::mem::size_of::<shoal_manager_request>() == 56);
    assert!(core::mem::size_of::<shoal_manager_change>() == 56);
};
