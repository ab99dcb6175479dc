'use strict';
// Encoded messages: the messages `shoal gen --lang node` cannot lay out (an unbounded
// string, bytes or repeated field, a map) are classes of plain properties — numbers,
// BigInts for 64-bit integers, booleans, strings, Uint8Arrays, arrays for repeated
// fields and maps (of entry messages, in the order of the bytes), null or a message for
// a nested message, null for an absent optional scalar, and per oneof one accessor per
// member plus `<oneof>_case` (the number of the member set, 0 for none), as the fixed
// classes have. This module is their base class and their protobuf codec.
//
// A generated class extends Encoded and registers its table with encoded(cls, name,
// fields): one entry per field, [number, property, proto name, protobuf type, flags,
// ref, max_len, max_count, oneof, enum default], ref being the class of a message field
// or {values, name} of a closed enum (open enums keep any number). check() validates
// every property against its field (its JavaScript type, the integer ranges, the
// schema's bounds and closed enums, with libshoal's messages) and throws ShoalError
// EINVALID_DATA naming the field; toPb() checks and writes the fields present (proto3
// scalars when not zero, as protoc's code does; repeated scalars packed when the schema
// says so); fromPb() starts from the defaults, merges the bytes (a repeated singular
// message merges, as protobuf says) and checks. A nested fixed message is its class's
// protobuf form (libshoal's codec). Malformed bytes — a truncated varint or field, a
// length past the end, a wire type that is not the field's, field number 0, a group, a
// string that is not UTF-8, nesting deeper than 100, a proto2 required field missing —
// throw EINVALID_DATA naming the message and the field, never anything else.

const { error } = require('./native');

const MAX_DEPTH = 100;
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const REPEATED = 1;
const PACKED = 2;
const PRESENCE = 4;
const REQUIRED = 8;
// protobuf types (google.protobuf.FieldDescriptorProto.Type)
const T = {
  DOUBLE: 1, FLOAT: 2, INT64: 3, UINT64: 4, INT32: 5, FIXED64: 6, FIXED32: 7, BOOL: 8,
  STRING: 9, MESSAGE: 11, BYTES: 12, UINT32: 13, ENUM: 14, SFIXED32: 15, SFIXED64: 16,
  SINT32: 17, SINT64: 18,
};
const BIG = new Set([T.INT64, T.UINT64, T.FIXED64, T.SFIXED64, T.SINT64]);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function invalid(detail) {
  throw error('EINVALID_DATA', detail);
}

function wireOf(type) {
  switch (type) {
    case T.DOUBLE: case T.FIXED64: case T.SFIXED64: return I64;
    case T.FLOAT: case T.FIXED32: case T.SFIXED32: return I32;
    case T.STRING: case T.BYTES: case T.MESSAGE: return LEN;
    default: return VARINT;
  }
}

/** The value a field starts at (and is not written at, in proto3). */
function defaultOf(f) {
  if (f.flags & REPEATED) return [];
  if (f.flags & PRESENCE || f.type === T.MESSAGE) return null;
  if (BIG.has(f.type)) return 0n;
  switch (f.type) {
    case T.BOOL: return false;
    case T.STRING: return '';
    case T.BYTES: return new Uint8Array(0);
    case T.ENUM: return f.enumDefault;
    default: return 0;
  }
}

class Encoded {
  /** A message with every field at its default, then init's properties assigned. */
  constructor(init) {
    this._oneofs = {};
    for (const f of this.constructor.shoalEncoded.fields) if (!f.oneof) this[f.prop] = defaultOf(f);
    if (init) Object.assign(this, init);
  }

  /** Throws ShoalError EINVALID_DATA naming the first field that is not valid. */
  validate() {
    check(this, 0);
  }

  /** Validates the message and returns its protobuf encoding (a Buffer). */
  toPb() {
    check(this, 0);
    const w = new Writer();
    write(this, w);
    return w.done();
  }

  /** The message of protobuf bytes (see the top of lib/pb.js for what is refused). */
  static fromPb(bytes) {
    if (!(bytes instanceof Uint8Array)) throw error('EINVAL', `${this.FULL_NAME}: fromPb needs a Uint8Array`);
    const m = new this();
    merge(m, bytes, 0);
    check(m, 0);
    return m;
  }

  /** A deep copy. */
  clone() {
    return this.constructor.fromPb(this.toPb());
  }

  /** The fields as a plain object (oneof members: the one set). */
  toJSON() {
    const o = {};
    const plain = (v) => (v instanceof Encoded || (v && typeof v.toJSON === 'function') ? v.toJSON() : v);
    for (const f of this.constructor.shoalEncoded.fields) {
      const v = this[f.prop];
      if (v === undefined) continue;
      o[f.prop] = Array.isArray(v) ? v.map(plain) : plain(v);
    }
    return o;
  }
}

/** Registers a generated encoded class: its full name and field table. */
function encoded(cls, name, rows) {
  const fields = rows.map(([number, prop, pname, type, flags, ref, maxLen, maxCount, oneof, enumDefault]) =>
    ({ number, prop, pname, type, flags, ref, maxLen, maxCount, oneof, enumDefault }));
  let table = null; // message classes resolved on first use (they may come later in the file)
  Object.defineProperty(cls, 'shoalEncoded', {
    get() {
      if (!table) {
        for (const f of fields) if (f.type === T.MESSAGE) f.ref = f.ref();
        table = Object.freeze({ name, fields, byNumber: new Map(fields.map((f) => [f.number, f])) });
      }
      return table;
    },
  });
  Object.defineProperty(cls, 'FULL_NAME', { value: name });
  for (const o of new Set(fields.filter((f) => f.oneof).map((f) => f.oneof))) {
    Object.defineProperty(cls.prototype, `${o}_case`, {
      get() { return this._oneofs[o] ? this._oneofs[o][0] : 0; },
      set(v) { if (v === 0) delete this._oneofs[o]; else invalid(`${name}.${o}: set a member to choose it`); },
    });
  }
  for (const f of fields.filter((x) => x.oneof)) {
    Object.defineProperty(cls.prototype, f.prop, {
      get() { const c = this._oneofs[f.oneof]; return c && c[0] === f.number ? c[1] : undefined; },
      set(v) {
        if (v === undefined || v === null) {
          if (this[f.prop] !== undefined) delete this._oneofs[f.oneof];
        } else {
          this._oneofs[f.oneof] = [f.number, v];
        }
      },
      enumerable: true,
    });
  }
  return cls;
}

// ---- checks -----------------------------------------------------------------------------

function checkValue(msg, f, v, depth) {
  const where = `${msg}.${f.pname}`;
  const int = (lo, hi) => {
    if (!Number.isInteger(v) || v < lo || v > hi) invalid(`${where}: ${String(v)} is not an integer in [${lo}, ${hi}]`);
  };
  const big = (signed) => {
    const b = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : null;
    if (b === null || (signed ? BigInt.asIntN(64, b) : BigInt.asUintN(64, b)) !== b)
      invalid(`${where}: ${String(v)} is not a ${signed ? '' : 'un'}signed 64-bit integer`);
  };
  switch (f.type) {
    case T.INT32: case T.SINT32: case T.SFIXED32: return int(-0x80000000, 0x7fffffff);
    case T.UINT32: case T.FIXED32: return int(0, 0xffffffff);
    case T.INT64: case T.SINT64: case T.SFIXED64: return big(true);
    case T.UINT64: case T.FIXED64: return big(false);
    case T.FLOAT: case T.DOUBLE:
      if (typeof v !== 'number') invalid(`${where}: a number is needed, not ${typeof v}`);
      return;
    case T.BOOL:
      if (typeof v !== 'boolean') invalid(`${where}: a boolean is needed, not ${typeof v}`);
      return;
    case T.ENUM:
      int(-0x80000000, 0x7fffffff);
      if (f.ref && !f.ref.values.has(v)) invalid(`${where}: ${v} is not a value of ${f.ref.name}`);
      return;
    case T.STRING: {
      if (typeof v !== 'string') invalid(`${where}: a string is needed, not ${typeof v}`);
      const n = Buffer.byteLength(v, 'utf8');
      if (f.maxLen && n > f.maxLen) invalid(`${where}: length ${n} over max_len ${f.maxLen}`);
      return;
    }
    case T.BYTES:
      if (!(v instanceof Uint8Array)) invalid(`${where}: a Uint8Array is needed`);
      if (f.maxLen && v.byteLength > f.maxLen) invalid(`${where}: length ${v.byteLength} over max_len ${f.maxLen}`);
      return;
    case T.MESSAGE:
      if (!(v instanceof f.ref)) invalid(`${where}: a ${f.ref.FULL_NAME} is needed`);
      if (v instanceof Encoded) check(v, depth + 1);
      else v.validate();
      return;
    default:
      invalid(`${where}: protobuf type ${f.type} is not supported`);
  }
}

function check(m, depth) {
  const t = m.constructor.shoalEncoded;
  if (depth > MAX_DEPTH) invalid(`${t.name}: nested more than ${MAX_DEPTH} deep`);
  for (const f of t.fields) {
    const v = m[f.prop];
    if (f.flags & REPEATED) {
      if (!Array.isArray(v)) invalid(`${t.name}.${f.pname}: an array is needed`);
      if (f.maxCount && v.length > f.maxCount) invalid(`${t.name}.${f.pname}: count ${v.length} over max_count ${f.maxCount}`);
      for (const e of v) checkValue(t.name, f, e, depth);
    } else if (v === undefined || v === null) {
      if (!f.oneof && !(f.flags & PRESENCE) && f.type !== T.MESSAGE) invalid(`${t.name}.${f.pname}: no value`);
    } else {
      checkValue(t.name, f, v, depth);
    }
  }
}

// ---- writing ----------------------------------------------------------------------------

class Writer {
  constructor() {
    this.buf = Buffer.allocUnsafe(64);
    this.len = 0;
  }

  room(n) {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }

  varint(v) {
    this.room(10);
    if (typeof v === 'number' && v >= 0 && v < 2 ** 31) {
      while (v >= 0x80) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
      return;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b >= 0x80n) {
      this.buf[this.len++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.len++] = Number(b);
  }

  key(number, wire) {
    this.varint(number * 8 + wire);
  }

  bytes(b) {
    this.varint(b.byteLength);
    this.room(b.byteLength);
    this.buf.set(b, this.len);
    this.len += b.byteLength;
  }

  fixed(n, setter, v) {
    this.room(n);
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.len, n);
    setter.call(dv, 0, v, true);
    this.len += n;
  }

  /** One value of f (no key). */
  value(f, v) {
    switch (f.type) {
      case T.DOUBLE: return this.fixed(8, DataView.prototype.setFloat64, v);
      case T.FLOAT: return this.fixed(4, DataView.prototype.setFloat32, v);
      case T.FIXED64: return this.fixed(8, DataView.prototype.setBigUint64, BigInt(v));
      case T.SFIXED64: return this.fixed(8, DataView.prototype.setBigInt64, BigInt(v));
      case T.FIXED32: return this.fixed(4, DataView.prototype.setUint32, v);
      case T.SFIXED32: return this.fixed(4, DataView.prototype.setInt32, v);
      case T.BOOL: return this.varint(v ? 1 : 0);
      case T.SINT32: return this.varint(((v << 1) ^ (v >> 31)) >>> 0);
      case T.SINT64: {
        const b = BigInt(v);
        return this.varint(BigInt.asUintN(64, (b << 1n) ^ (b >> 63n)));
      }
      case T.STRING: return this.bytes(Buffer.from(v, 'utf8'));
      case T.BYTES: return this.bytes(v);
      case T.MESSAGE: return this.bytes(v.toPb());
      default: return this.varint(v); // int32, int64, uint32, uint64, enum
    }
  }

  done() {
    return this.buf.subarray(0, this.len);
  }
}

function isZero(f, v) {
  if (f.type === T.STRING || f.type === T.BYTES) return v.length === 0;
  if (f.type === T.DOUBLE || f.type === T.FLOAT) return v === 0 && !Object.is(v, -0);
  return v === 0 || v === 0n || v === false;
}

function write(m, w) {
  for (const f of m.constructor.shoalEncoded.fields) {
    const v = m[f.prop];
    if (f.flags & REPEATED) {
      if (!v.length) continue;
      if (f.flags & PACKED) {
        const inner = new Writer();
        for (const e of v) inner.value(f, e);
        w.key(f.number, LEN);
        w.bytes(inner.done());
      } else {
        for (const e of v) {
          w.key(f.number, wireOf(f.type));
          w.value(f, e);
        }
      }
      continue;
    }
    if (v === undefined || v === null) continue;
    if (!f.oneof && !(f.flags & (PRESENCE | REQUIRED)) && f.type !== T.MESSAGE && isZero(f, v)) continue;
    w.key(f.number, wireOf(f.type));
    w.value(f, v);
  }
}

// ---- reading ----------------------------------------------------------------------------

class Reader {
  constructor(buf, name, depth) {
    this.buf = buf;
    this.pos = 0;
    this.name = name;
    this.depth = depth;
  }

  fail(field, what) {
    invalid(`${this.name}${field ? '.' + field : ''}: ${what} (byte ${this.pos} of ${this.buf.length})`);
  }

  varint() {
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail('', 'truncated varint');
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (b < 0x80) return v;
    }
    return this.fail('', 'varint longer than 10 bytes');
  }

  take(n, field) {
    const left = this.buf.length - this.pos;
    if (n > left) this.fail(field, `${n} bytes announced, ${left} left`);
    const s = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  len(field) {
    const n = this.varint();
    if (n > BigInt(this.buf.length)) this.fail(field, `${n} bytes announced, ${this.buf.length - this.pos} left`);
    return Number(n);
  }

  skip(wire) {
    if (wire === VARINT) this.varint();
    else if (wire === I64) this.take(8, '');
    else if (wire === I32) this.take(4, '');
    else this.take(this.len(''), '');
  }

  fixed(n, getter, field) {
    const b = this.take(n, field);
    return getter.call(new DataView(b.buffer, b.byteOffset, n), 0, true);
  }

  /** One value of f (its wire type already checked). */
  value(f, existing) {
    const p = f.pname;
    switch (f.type) {
      case T.DOUBLE: return this.fixed(8, DataView.prototype.getFloat64, p);
      case T.FLOAT: return this.fixed(4, DataView.prototype.getFloat32, p);
      case T.FIXED64: return this.fixed(8, DataView.prototype.getBigUint64, p);
      case T.SFIXED64: return this.fixed(8, DataView.prototype.getBigInt64, p);
      case T.FIXED32: return this.fixed(4, DataView.prototype.getUint32, p);
      case T.SFIXED32: return this.fixed(4, DataView.prototype.getInt32, p);
      case T.BOOL: return this.varint() !== 0n;
      case T.INT64: return BigInt.asIntN(64, this.varint());
      case T.UINT64: return BigInt.asUintN(64, this.varint());
      case T.SINT64: {
        const v = BigInt.asUintN(64, this.varint());
        return BigInt.asIntN(64, (v >> 1n) ^ -(v & 1n));
      }
      case T.SINT32: {
        const v = Number(BigInt.asUintN(32, this.varint()));
        return (v >>> 1) ^ -(v & 1);
      }
      case T.UINT32: return Number(BigInt.asUintN(32, this.varint()));
      case T.STRING: {
        const b = this.take(this.len(p), p);
        try {
          return utf8.decode(b);
        } catch {
          return this.fail(p, 'a string that is not UTF-8');
        }
      }
      case T.BYTES: return Uint8Array.prototype.slice.call(this.take(this.len(p), p));
      case T.MESSAGE: {
        const b = this.take(this.len(p), p);
        if (!(f.ref.prototype instanceof Encoded)) return f.ref.fromPb(b);
        const m = existing instanceof f.ref ? existing : new f.ref();
        merge(m, b, this.depth + 1);
        return m;
      }
      default: return Number(BigInt.asIntN(32, this.varint())); // int32, enum
    }
  }
}

function merge(m, bytes, depth) {
  const t = m.constructor.shoalEncoded;
  if (depth > MAX_DEPTH) invalid(`${t.name}: nested more than ${MAX_DEPTH} deep`);
  const r = new Reader(bytes, t.name, depth);
  const seen = new Set(); // the required fields read
  while (r.pos < bytes.length) {
    const key = r.varint();
    const number = key >> 3n;
    const wire = Number(key & 7n);
    if (number === 0n || number > 0x1fffffffn) r.fail('', `field number ${number} out of range`);
    if (wire !== VARINT && wire !== I64 && wire !== LEN && wire !== I32)
      r.fail('', `field ${number}: wire type ${wire} not supported`);
    const f = t.byNumber.get(Number(number));
    if (!f) {
      r.skip(wire);
      continue;
    }
    if (f.flags & REQUIRED) seen.add(f);
    const want = wireOf(f.type);
    if (f.flags & REPEATED && wire === LEN && want !== LEN) {
      const inner = new Reader(r.take(r.len(f.pname), f.pname), t.name, depth);
      while (inner.pos < inner.buf.length) m[f.prop].push(inner.value(f));
      continue;
    }
    if (wire !== want) r.fail(f.pname, `wire type ${wire} where the field has ${want}`);
    if (f.flags & REPEATED) m[f.prop].push(r.value(f));
    else m[f.prop] = r.value(f, m[f.prop]);
  }
  for (const f of t.fields)
    if (f.flags & REQUIRED && !seen.has(f)) invalid(`${t.name}.${f.pname}: required field missing`);
}

module.exports = { Encoded, encoded, T, REPEATED, PACKED, PRESENCE, REQUIRED, MAX_DEPTH };
