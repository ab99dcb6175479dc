//! The protobuf codec of encoded messages: the messages `shoal gen --lang rust` cannot
//! lay out (an unbounded string, bytes or repeated field) are plain Rust structs with
//! owned fields (`String`, `Vec<u8>`, `Vec<T>`, `Option<Box<M>>`, enums, an enum per
//! oneof), and this module is their wire format.
//!
//! A generated encoded message implements [`Fields`]: `write_fields` writes each field
//! that is present (proto3 scalars when not zero, as protoc's code does; repeated
//! scalars packed when the schema says so), `read_field` decodes one field from a
//! [`Reader`] (unknown numbers are skipped), `check` applies the schema's bounds and
//! closed enums with the same messages as libshoal's check of protoc-c's structs
//! (`shoal_pb_check`). [`encode`] checks then writes; [`decode`] starts from the
//! defaults, merges the bytes (a repeated singular message merges, as protobuf says)
//! and checks. Every malformed input is an `InvalidData` error naming the message and
//! the field: a truncated varint or field, a length past the end, a wire type that is
//! not the field's, a field number 0, a group (not supported), nesting deeper than
//! [`MAX_DEPTH`], a string that is not UTF-8, a proto2 `required` field missing.
//! Nothing here panics on input bytes.
//!
//! Scalars go through marker types, one per protobuf type ([`Int32`], [`Sint64`],
//! [`Fixed32`], ...): the Rust type alone does not say how a value is encoded. Nested
//! messages, fixed or encoded, go through [`crate::Message`]: a fixed one is its
//! libshoal protobuf form.
use std::marker::PhantomData;

use crate::error::Result;
use crate::message::Message;
use crate::schema::invalid;

/// How deep messages may nest in bytes being decoded (libshoal's check has the same
/// limit).
pub const MAX_DEPTH: u32 = 100;

/// Wire type of varints.
pub const VARINT: u32 = 0;
/// Wire type of 64-bit values.
pub const I64: u32 = 1;
/// Wire type of length-delimited values.
pub const LEN: u32 = 2;
/// Wire type of 32-bit values.
pub const I32: u32 = 5;

/// A generated encoded message's fields.
pub trait Fields: Default {
    /// The message's full name, for error messages.
    const NAME: &'static str;
    /// The numbers and names of its proto2 `required` fields (each must be in the bytes
    /// of every occurrence of the message).
    const REQUIRED: &'static [(u32, &'static str)] = &[];
    /// Appends the fields present (nested messages are checked as they are encoded).
    fn write_fields(&self, w: &mut Writer) -> Result<()>;
    /// Decodes field `number` of wire type `wire` from `r` into the message; returns
    /// false for a number the message does not have (the caller skips it).
    fn read_field(&mut self, r: &mut Reader<'_>, number: u32, wire: u32) -> Result<bool>;
    /// The schema's checks: bounds, closed enums, nested messages.
    fn check(&self) -> Result<()>;
}

/// Checks `m` and returns its protobuf encoding.
pub fn encode<M: Fields>(m: &M) -> Result<Vec<u8>> {
    m.check()?;
    let mut w = Writer::default();
    m.write_fields(&mut w)?;
    Ok(w.buf)
}

/// Merges the fields of `bytes` into `m` (no check), `depth` levels down.
pub fn merge<M: Fields>(m: &mut M, bytes: &[u8], depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("{}: nested more than {MAX_DEPTH} deep", M::NAME)));
    }
    let mut r = Reader { buf: bytes, pos: 0, name: M::NAME, depth };
    let mut seen = 0u64; // the required fields read (the first 64)
    while let Some((number, wire)) = r.next_key()? {
        if !m.read_field(&mut r, number, wire)? {
            r.skip(wire)?;
        }
        if let Some(k) = M::REQUIRED.iter().take(64).position(|f| f.0 == number) {
            seen |= 1 << k;
        }
    }
    match M::REQUIRED.iter().take(64).enumerate().find(|(k, _)| seen & (1 << k) == 0) {
        Some((_, (_, field))) => Err(invalid(format!("{}.{field}: required field missing", M::NAME))),
        None => Ok(()),
    }
}

/// The message of protobuf bytes: defaults, then the bytes' fields, then the checks.
pub fn decode<M: Fields>(bytes: &[u8]) -> Result<M> {
    let mut m = M::default();
    merge(&mut m, bytes, 0)?;
    m.check()?;
    Ok(m)
}

/// Protobuf bytes being written.
#[derive(Default)]
pub struct Writer {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Appends a varint.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Appends a field's key.
    pub fn key(&mut self, number: u32, wire: u32) {
        self.varint(((number as u64) << 3) | wire as u64);
    }

    /// Appends a length-delimited field (strings, bytes, nested messages).
    pub fn bytes(&mut self, number: u32, b: &[u8]) {
        self.key(number, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Appends a scalar field.
    pub fn put<S: Scalar>(&mut self, number: u32, v: S::T) {
        self.key(number, S::WIRE);
        S::put(self, v);
    }

    /// Appends a repeated scalar field, packed (one length-delimited field) or one
    /// field per element; nothing when empty.
    pub fn put_repeated<S: Scalar>(&mut self, number: u32, vs: &[S::T], packed: bool) {
        if vs.is_empty() {
            return;
        }
        if !packed {
            vs.iter().for_each(|v| self.put::<S>(number, *v));
            return;
        }
        let mut inner = Writer::default();
        vs.iter().for_each(|v| S::put(&mut inner, *v));
        self.bytes(number, &inner.buf);
    }

    /// Appends a nested message (checked and encoded by its own [`Message::to_pb`]).
    pub fn message<M: Message>(&mut self, number: u32, m: &M) -> Result<()> {
        let b = m.to_pb()?;
        self.bytes(number, &b);
        Ok(())
    }
}

/// Protobuf bytes being read, with the message they are of (for errors) and how deep
/// it is nested.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    name: &'static str,
    depth: u32,
}

impl<'a> Reader<'a> {
    fn fail(&self, field: &str, what: String) -> crate::Error {
        let dot = if field.is_empty() { "" } else { "." };
        invalid(format!("{}{dot}{field}: {what} (byte {} of {})", self.name, self.pos, self.buf.len()))
    }

    /// The next varint.
    pub fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.fail("", "truncated varint".into()));
            };
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.fail("", "varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.buf.len() - self.pos {
            return Err(self.fail(field, format!("{n} bytes announced, {} left", self.buf.len() - self.pos)));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next field's number and wire type, None at the end of the bytes.
    pub fn next_key(&mut self) -> Result<Option<(u32, u32)>> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        let (number, wire) = (k >> 3, (k & 7) as u32);
        if number == 0 || number > 0x1fff_ffff {
            return Err(self.fail("", format!("field number {number} out of range")));
        }
        if !matches!(wire, VARINT | I64 | LEN | I32) {
            return Err(self.fail("", format!("field {number}: wire type {wire} not supported")));
        }
        Ok(Some((number as u32, wire)))
    }

    /// Skips a field of wire type `wire` (one the message does not have).
    pub fn skip(&mut self, wire: u32) -> Result<()> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            I64 => self.take(8, "").map(|_| ()),
            I32 => self.take(4, "").map(|_| ()),
            _ => {
                let n = self.len()?;
                self.take(n, "").map(|_| ())
            }
        }
    }

    fn len(&mut self) -> Result<usize> {
        let n = self.varint()?;
        usize::try_from(n).map_err(|_| self.fail("", format!("length {n} too large")))
    }

    fn expect(&self, wire: u32, want: u32, field: &str) -> Result<()> {
        if wire == want {
            return Ok(());
        }
        Err(self.fail(field, format!("wire type {wire} where the field has {want}")))
    }

    /// A length-delimited field's bytes.
    pub fn bytes(&mut self, wire: u32, field: &str) -> Result<&'a [u8]> {
        self.expect(wire, LEN, field)?;
        let n = self.len()?;
        self.take(n, field)
    }

    /// A string field (UTF-8 required).
    pub fn string(&mut self, wire: u32, field: &str) -> Result<String> {
        let b = self.bytes(wire, field)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.fail(field, "a string that is not UTF-8".into())),
        }
    }

    /// A scalar field.
    pub fn get<S: Scalar>(&mut self, wire: u32, field: &str) -> Result<S::T> {
        self.expect(wire, S::WIRE, field)?;
        S::get(self)
    }

    /// Appends a repeated scalar field's elements: packed or one element (a parser
    /// accepts both, whatever the schema says).
    pub fn get_repeated<S: Scalar>(&mut self, wire: u32, field: &str, out: &mut Vec<S::T>) -> Result<()> {
        if wire != LEN || S::WIRE == LEN {
            out.push(self.get::<S>(wire, field)?);
            return Ok(());
        }
        let b = self.bytes(wire, field)?;
        let mut inner = Reader { buf: b, pos: 0, name: self.name, depth: self.depth };
        while inner.pos < b.len() {
            out.push(
                S::get(&mut inner)
                    .map_err(|_| self.fail(field, "a packed element runs past its field".into()))?,
            );
        }
        Ok(())
    }

    /// Merges a nested message field into `m`.
    pub fn message<M: Message>(&mut self, wire: u32, field: &str, m: &mut M) -> Result<()> {
        let b = self.bytes(wire, field)?;
        m.merge_nested(b, self.depth + 1)
    }

    /// A nested message field as a new message (repeated fields, oneof members).
    pub fn new_message<M: Message>(&mut self, wire: u32, field: &str) -> Result<M> {
        let mut m = M::default();
        self.message(wire, field, &mut m)?;
        Ok(m)
    }
}

/// How one protobuf scalar type is written and read.
pub trait Scalar {
    /// Its Rust type.
    type T: Copy;
    /// Its wire type.
    const WIRE: u32;
    /// Writes the value (no key).
    fn put(w: &mut Writer, v: Self::T);
    /// Reads the value (no key).
    fn get(r: &mut Reader<'_>) -> Result<Self::T>;
}

macro_rules! varint_scalar {
    ($(#[$doc:meta])* $name:ident, $t:ty, |$pv:ident| $put:expr, |$gv:ident| $get:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl Scalar for $name {
            type T = $t;
            const WIRE: u32 = VARINT;
            fn put(w: &mut Writer, $pv: $t) {
                w.varint($put)
            }
            fn get(r: &mut Reader<'_>) -> Result<$t> {
                let $gv = r.varint()?;
                Ok($get)
            }
        }
    };
}

varint_scalar!(/** int32 (negative values take ten bytes, as protobuf says). */
    Int32, i32, |v| v as i64 as u64, |v| v as i32);
varint_scalar!(/** int64. */ Int64, i64, |v| v as u64, |v| v as i64);
varint_scalar!(/** uint32. */ Uint32, u32, |v| v as u64, |v| v as u32);
varint_scalar!(/** uint64. */ Uint64, u64, |v| v, |v| v);
varint_scalar!(/** sint32 (zigzag). */
    Sint32, i32, |v| ((v << 1) ^ (v >> 31)) as u32 as u64, |v| ((v as u32 >> 1) as i32) ^ -((v & 1) as i32));
varint_scalar!(/** sint64 (zigzag). */
    Sint64, i64, |v| ((v << 1) ^ (v >> 63)) as u64, |v| ((v >> 1) as i64) ^ -((v & 1) as i64));
varint_scalar!(/** bool. */ Bool, bool, |v| v as u64, |v| v != 0);

macro_rules! fixed_scalar {
    ($(#[$doc:meta])* $name:ident, $t:ty, $n:expr, $wire:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl Scalar for $name {
            type T = $t;
            const WIRE: u32 = $wire;
            fn put(w: &mut Writer, v: $t) {
                w.buf.extend_from_slice(&v.to_le_bytes())
            }
            fn get(r: &mut Reader<'_>) -> Result<$t> {
                let b = r.take($n, "")?;
                Ok(<$t>::from_le_bytes(b.try_into().expect("length checked")))
            }
        }
    };
}

fixed_scalar!(/** fixed32. */ Fixed32, u32, 4, I32);
fixed_scalar!(/** sfixed32. */ Sfixed32, i32, 4, I32);
fixed_scalar!(/** float. */ Float, f32, 4, I32);
fixed_scalar!(/** fixed64. */ Fixed64, u64, 8, I64);
fixed_scalar!(/** sfixed64. */ Sfixed64, i64, 8, I64);
fixed_scalar!(/** double. */ Double, f64, 8, I64);

/// A generated enum: an i32 newtype.
pub trait EnumValue: Copy {
    /// The enum of a number (unknown numbers kept: checks decide).
    fn from_i32(v: i32) -> Self;
    /// Its number.
    fn to_i32(self) -> i32;
}

/// An enum field: its number as an int32.
pub struct Enum<E>(PhantomData<E>);

impl<E: EnumValue> Scalar for Enum<E> {
    type T = E;
    const WIRE: u32 = VARINT;
    fn put(w: &mut Writer, v: E) {
        Int32::put(w, v.to_i32())
    }
    fn get(r: &mut Reader<'_>) -> Result<E> {
        Int32::get(r).map(E::from_i32)
    }
}
