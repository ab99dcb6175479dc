'use strict';
// Value and Array: a typed scalar or struct and a typed fixed-length array in shared
// memory, opened by name from any process and any language (multiprocessing's Value
// and Array). Reads and writes take the object's robust lock (unless made with
// {lock: false}); getLock() exposes it for compound updates. Integer scalars have
// lock-free atomics (add, exchange, compareExchange, load, store). Whatever comes out
// is validated (generated types check their bounds and enum values), whatever goes in
// is validated first.

const { native, KIND, error, modeOf, attrOf } = require('./native');
const { codecOf, encode } = require('./types');
const { Handle } = require('./handle');
const { Lock } = require('./sync');

function lockOf(h, owner) {
  return h ? Lock._borrowed(h, owner) : null;
}

class Value extends Handle {
  /**
   * @param type a typecode ('i', 'd', 'q', ...) or a generated message class
   * @param init the initial value (used only when creating; default zero)
   * @param opts {name, mode: 'open'|'create'|'openOrCreate', lock: false, root, domain, fileMode}
   */
  constructor(type, init, opts = {}) {
    const codec = codecOf(type);
    const bytes = init === undefined || init === null ? null : encode(codec, init);
    const [h, name, lock] = native.valueOpen(opts.name ?? null, modeOf(opts), codec.native, bytes, attrOf(opts));
    super(KIND.VALUE, h, name);
    this._codec = codec;
    this._buf = new Uint8Array(codec.size);
    this._lock = lockOf(lock, this);
  }

  /** A copy of the value, read under the lock and validated. */
  get() {
    native.valueRead(this._handle(), this._buf);
    return this._codec.decode(this._buf);
  }

  /** Validates v and writes it under the lock. */
  set(v) {
    this._codec.encodeInto(v, this._buf);
    native.valueWrite(this._handle(), this._buf);
  }

  get value() {
    return this.get();
  }

  set value(v) {
    this.set(v);
  }

  /** A torn-free copy read without the lock and without blocking writers. */
  snapshot() {
    native.valueSnapshot(this._handle(), this._buf);
    return this._codec.decode(this._buf);
  }

  _int(r) {
    return this._codec.big ? BigInt(r) : Number(r);
  }

  /** Atomically adds delta (integer scalars); returns the previous value. */
  add(delta) {
    return this._int(native.valueAtomic(this._handle(), 0, delta));
  }

  /** Atomically stores v; returns the previous value. */
  exchange(v) {
    return this._int(native.valueAtomic(this._handle(), 1, v));
  }

  /** Stores desired if the value is expected: {ok, current}. */
  compareExchange(expected, desired) {
    const [ok, cur] = native.valueAtomic(this._handle(), 2, expected, desired);
    return { ok, current: this._int(cur) };
  }

  load() {
    return this._int(native.valueAtomic(this._handle(), 3));
  }

  store(v) {
    native.valueAtomic(this._handle(), 4, v);
  }

  /** The value's lock (null with {lock: false}). */
  getLock() {
    return this._lock;
  }
}

class SharedArray extends Handle {
  /**
   * @param type a typecode or a generated message class
   * @param init the length, or the initial elements (an array or iterable)
   * @param opts as for Value; with mode 'open' a length of 0 accepts any length
   */
  constructor(type, init, opts = {}) {
    const codec = codecOf(type);
    let count = init;
    let bytes = null;
    if (typeof init !== 'number') {
      const items = Array.from(init);
      count = items.length;
      bytes = new Uint8Array(count * codec.size);
      items.forEach((v, i) => codec.encodeInto(v, bytes, i * codec.size));
    }
    const [h, name, lock, length] = native.arrayOpen(opts.name ?? null, modeOf(opts), codec.native, count, bytes, attrOf(opts));
    super(KIND.ARRAY, h, name);
    this._codec = codec;
    this.length = length;
    this._lock = lockOf(lock, this);
  }

  /** Elements start..start+n, read under the lock. */
  read(start = 0, n = this.length - start) {
    const u8 = new Uint8Array(n * this._codec.size);
    native.arrayCopy(this._handle(), false, start, n, u8);
    return Array.from({ length: n }, (_, i) => this._codec.decode(u8, i * this._codec.size));
  }

  /** Writes values from index start, under the lock. */
  write(start, values) {
    const items = Array.from(values);
    const u8 = new Uint8Array(items.length * this._codec.size);
    items.forEach((v, i) => this._codec.encodeInto(v, u8, i * this._codec.size));
    native.arrayCopy(this._handle(), true, start, items.length, u8);
  }

  get(i) {
    return this.read(i, 1)[0];
  }

  set(i, v) {
    this.write(i, [v]);
  }

  toArray() {
    return this.read(0, this.length);
  }

  /** Atomically adds delta to element i (integer scalars); returns its previous value. */
  add(i, delta) {
    const r = native.arrayAdd(this._handle(), i, delta);
    return this._codec.big ? BigInt(r) : Number(r);
  }

  getLock() {
    return this._lock;
  }
}

module.exports = { Value, SharedArray, error };
