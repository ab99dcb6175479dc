//! The protobuf form of the messages `shoal gen --lang rust` generates: [`Message`],
//! which every generated message implements (encoded ones through [`crate::pb`]).
//!
//! A generated fixed struct implements [`FixedMessage`]: its [`PbTable`] is the table libshoal's
//! codec (`shoal_pb_encode` / `shoal_pb_decode`, the one C's `Foo_to_pb` and
//! `Foo_from_pb` use) reads: each field's number, protobuf type, offset in the struct
//! and bounds, built once per type on first use. [`fixed_to_pb`] validates and
//! encodes, as protoc's generated code would encode the same message;
//! [`fixed_from_pb`] starts from the defaults, decodes (a value over its bound is an
//! error, never truncated) and validates. These are the bytes services carry, so a
//! Rust peer exchanges fixed messages with C, Python and Node peers, and with any
//! protobuf implementation over nng.
use std::ffi::{c_void, CStr};

use shoal_sys as sys;

use crate::element::Element;
use crate::error::{check, Result};

/// A message's protobuf table (static for the life of the process).
#[repr(transparent)]
pub struct PbTable(pub sys::shoal_pb_message);
// SAFETY: immutable once built, pointing only at data leaked for the process's life.
unsafe impl Sync for PbTable {}
// SAFETY: as above.
unsafe impl Send for PbTable {}

impl PbTable {
    /// The table of `T`: its full name and its fields' entries ([`pb_field`]); the
    /// defaults instance and the field array are kept for the life of the process.
    pub fn new<T: Element + Default>(name: &'static CStr, fields: Vec<sys::shoal_pb_field>) -> PbTable {
        let init: &'static T = Box::leak(Box::new(T::default()));
        let fields: &'static [sys::shoal_pb_field] = Box::leak(fields.into_boxed_slice());
        PbTable(sys::shoal_pb_message {
            name: name.as_ptr(),
            size: std::mem::size_of::<T>() as u32,
            init: (init as *const T).cast(),
            nfields: fields.len() as u32,
            fields: if fields.is_empty() { std::ptr::null() } else { fields.as_ptr() },
        })
    }
}

/// One field's entry of a [`PbTable`]: the numbers of the C table (shoal/typed.h).
#[allow(clippy::too_many_arguments)]
pub fn pb_field(
    name: &'static CStr,
    number: u32,
    type_: u8,
    flags: u8,
    offset: u32,
    has_offset: u32,
    elem_size: u32,
    items_offset: u32,
    max_len: u32,
    max_count: u32,
    msg: Option<&'static PbTable>,
) -> sys::shoal_pb_field {
    sys::shoal_pb_field {
        number,
        type_,
        flags,
        offset,
        has_offset,
        elem_size,
        items_offset,
        max_len,
        max_count,
        msg: msg.map_or(std::ptr::null(), |t| &t.0),
        name: name.as_ptr(),
    }
}

/// A generated message with a protobuf form: a fixed message (its [`FixedMessage`]
/// table and libshoal's codec) or an encoded one ([`crate::pb`]). What queues, pipes
/// and services carry.
pub trait Message: Sized + Default + Send + 'static {
    /// Validates the message and returns its protobuf encoding. Fails with
    /// `InvalidData` naming the field when the message is invalid.
    fn to_pb(&self) -> Result<Vec<u8>>;

    /// Decodes protobuf bytes into a new message (fields absent from them keep their
    /// defaults) and validates it. Fails with `InvalidData` naming the message and the
    /// field when the bytes do not decode or a value is over its bound.
    fn from_pb(bytes: &[u8]) -> Result<Self>;

    /// Merges the bytes of a nested occurrence of the message, `depth` levels down
    /// (the codec of encoded messages calls it). A fixed message is replaced by the
    /// message of the bytes; an encoded one merges them, as protobuf says.
    #[doc(hidden)]
    fn merge_nested(&mut self, bytes: &[u8], depth: u32) -> Result<()> {
        let _ = depth;
        *self = Self::from_pb(bytes)?;
        Ok(())
    }
}

/// A generated fixed message: its protobuf table, for [`fixed_to_pb`] and
/// [`fixed_from_pb`] (the bodies of its [`Message`] methods).
pub trait FixedMessage: Element + Default {
    /// The message's protobuf table.
    fn pb_table() -> &'static PbTable;
}

/// [`Message::to_pb`] of a fixed message.
pub fn fixed_to_pb<T: FixedMessage>(m: &T) -> Result<Vec<u8>> {
    m.validate()?;
    let t = T::pb_table();
    let mut buf = vec![0u8; 64];
    loop {
        let mut len = 0usize;
        // SAFETY: the table describes T; buf has the capacity passed.
        let rc = unsafe {
            sys::shoal_pb_encode(&t.0, (m as *const T).cast(), buf.as_mut_ptr().cast(), buf.len(), &mut len)
        };
        if rc == sys::SHOAL_EMSGSIZE && len > buf.len() {
            buf.resize(len, 0);
            continue;
        }
        check(rc)?;
        buf.truncate(len);
        return Ok(buf);
    }
}

/// [`Message::from_pb`] of a fixed message.
pub fn fixed_from_pb<T: FixedMessage>(bytes: &[u8]) -> Result<T> {
    let mut m = T::default();
    // SAFETY: the table describes T; every bit pattern of T is valid.
    check(unsafe {
        sys::shoal_pb_decode(
            &T::pb_table().0,
            (&mut m as *mut T).cast::<c_void>(),
            bytes.as_ptr().cast(),
            bytes.len(),
        )
    })?;
    m.validate()?;
    Ok(m)
}
