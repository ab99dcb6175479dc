'use strict';
// Support for the code `shoal gen --lang node` writes: the base class of generated
// messages and the element codecs their accessors use (encoded messages: lib/pb.js).
//
// A generated message is a class over a DataView of exactly its C layout (docs/schema.md
// section 3): the generated accessors read and write at the model's offsets, so a
// message is its bytes — put into a queue slot, read from a Value — with no encoding
// step. Element codecs know one element's size and how to read and write it at an
// offset; strings and bytes are a u32 length then max_len bytes, repeated fields a u32
// count then the elements. Reads never run past a capacity even if a length or count
// (written by another process) is out of range: validate() reports that.
//
// A message's protobuf form (toPb / fromPb, what services carry) is libshoal's codec,
// the one C's Foo_to_pb / Foo_from_pb use: the class's shoalPb table (each field's
// number, protobuf type, flags, offsets and bounds, nested messages by class) is
// turned once into the C table, with the defaults of a new message as its start.

const { native, error } = require('./native');

/** The native protobuf table of cls, made on first use. */
function pbHandle(cls) {
  if (!Object.prototype.hasOwnProperty.call(cls, '_pbHandle')) {
    const table = (c) => ({
      name: c.shoalPb.name,
      size: c.SIZE,
      init: new c().bytes,
      fields: c.shoalPb.fields.map((f) => [...f.slice(0, 9), f[9] ? table(f[9]) : null, f[10]]),
    });
    Object.defineProperty(cls, '_pbHandle', { value: native.pbTable(table(cls)) });
  }
  return cls._pbHandle;
}

class Message {
  /** @param bytes the message's bytes (default: zeros), a Uint8Array of SIZE bytes,
   *   viewed, not copied. */
  constructor(bytes) {
    const size = this.constructor.SIZE;
    if (bytes === undefined) bytes = new Uint8Array(size);
    else if (!(bytes instanceof Uint8Array) || bytes.byteLength !== size)
      throw error('EINVAL', `${this.constructor.FULL_NAME}: needs a Uint8Array of ${size} bytes`);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, size);
  }

  /** A copy over new bytes. */
  clone() {
    return new this.constructor(Uint8Array.prototype.slice.call(this.bytes));
  }

  /** Validates the message and returns its protobuf encoding (a Buffer); throws
   * ShoalError EINVALID_DATA naming the field when it is invalid. */
  toPb() {
    this.validate();
    return native.pbEncode(pbHandle(this.constructor), this.bytes);
  }

  /** The message of protobuf bytes: the defaults, then the fields the bytes hold;
   * throws ShoalError EINVALID_DATA when they do not decode, a value does not fit its
   * bound or the message is invalid. */
  static fromPb(bytes) {
    const m = new this(native.pbDecode(pbHandle(this), bytes));
    m.validate();
    return m;
  }

  /** The fields as a plain object (64-bit integers stay BigInts). */
  toJSON() {
    const o = {};
    for (const f of this.constructor.FIELD_NAMES) {
      const v = this[f];
      o[f] = v instanceof Message ? v.toJSON() : Array.isArray(v) ? v.map((x) => (x instanceof Message ? x.toJSON() : x)) : v;
    }
    return o;
  }
}

/** Throws the EINVALID_DATA error of a validation failure. */
function invalid(detail) {
  throw error('EINVALID_DATA', detail);
}

function scalar(size, name) {
  const get = DataView.prototype['get' + name];
  const set = DataView.prototype['set' + name];
  const big = name.startsWith('Big');
  return {
    size,
    get: (m, off) => get.call(m.view, off, true),
    set: (m, off, v) => set.call(m.view, off, big ? BigInt(v) : Number(v), true),
  };
}

const i8 = scalar(1, 'Int8');
const u8 = scalar(1, 'Uint8');
const i16 = scalar(2, 'Int16');
const u16 = scalar(2, 'Uint16');
const i32 = scalar(4, 'Int32');
const u32 = scalar(4, 'Uint32');
const i64 = scalar(8, 'BigInt64');
const u64 = scalar(8, 'BigUint64');
const f32 = scalar(4, 'Float32');
const f64 = scalar(8, 'Float64');
const bool = {
  size: 1,
  get: (m, off) => m.view.getUint8(off) !== 0,
  set: (m, off, v) => m.view.setUint8(off, v ? 1 : 0),
};

/** The bytes of a bounded string/bytes element at off (clamped to max). */
function textBytes(m, off, max) {
  const n = Math.min(m.view.getUint32(off, true), max);
  return m.bytes.subarray(off + 4, off + 4 + n);
}

function text(max, isString) {
  return {
    size: (4 + max + 3) & ~3,
    max,
    get: (m, off) => {
      const b = textBytes(m, off, max);
      return isString ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8') : Uint8Array.prototype.slice.call(b);
    },
    set: (m, off, v, where) => {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      if (!(b instanceof Uint8Array)) throw error('EINVAL', `${where}: a ${isString ? 'string' : 'Uint8Array'} is needed`);
      if (b.byteLength > max) invalid(`${where}: length ${b.byteLength} over max_len ${max}`);
      m.bytes.set(b, off + 4);
      m.view.setUint32(off, b.byteLength, true);
    },
  };
}

/** A nested message element: reads give a live view into the parent's bytes. */
function message(cls) {
  return {
    size: cls.SIZE,
    cls,
    get: (m, off) => new cls(m.bytes.subarray(off, off + cls.SIZE)),
    set: (m, off, v, where) => {
      if (!(v instanceof cls)) throw error('EINVAL', `${where}: a ${cls.FULL_NAME} is needed`);
      m.bytes.set(v.bytes, off);
    },
  };
}

/** A repeated field: count word at off, elements from off + items. */
function list(m, off, items, max, elem) {
  const n = Math.min(m.view.getUint32(off, true), max);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = elem.get(m, off + items + i * elem.size);
  return out;
}

function setList(m, off, items, max, elem, values, where) {
  const vs = Array.from(values);
  if (vs.length > max) invalid(`${where}: count ${vs.length} over max_count ${max}`);
  vs.forEach((v, i) => elem.set(m, off + items + i * elem.size, v, where));
  m.view.setUint32(off, vs.length, true);
}

const { Encoded, encoded } = require('./pb');

module.exports = {
  Message, Encoded, encoded, invalid, text, message, list, setList,
  i8, u8, i16, u16, i32, u32, i64, u64, f32, f64, bool,
};
