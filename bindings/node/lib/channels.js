'use strict';
// Queue and Pipe.
//
// A Queue is bounded and multi-producer multi-consumer (or single-producer
// single-consumer, chosen at creation), of fixed-size typed messages (a typecode or a
// generated message class) or, with a null type, of byte messages up to maxMsg bytes.
// put/get return Promises and never block the event loop; tryPut/tryGet never wait. A
// queue is an async iterator: `for await (const m of queue)` ends when the queue is
// shut down and drained. Every typed message is validated going in and coming out. A
// queue of a generated encoded class is a byte queue of their protobuf forms (what C's
// Foo_queue_put of an encoded message puts): put encodes, get decodes (EINVALID_DATA
// when the bytes are not one).
//
// A Pipe is a duplex 1:1 channel of byte messages between two processes (send takes an
// encoded message as its protobuf form; Cls.fromPb reads one); recv rejects with EEOF
// once the other end closed (after draining) and EPEERDEAD if it died.

const { native, CODES, KIND, error, modeOf, attrOf } = require('./native');
const { codecOf } = require('./types');
const { Handle } = require('./handle');
const { Encoded } = require('./pb');

const OP = { QUEUE_PUT: 0, QUEUE_GET: 1, PIPE_SEND: 2, PIPE_RECV: 3, PIPE_POLL: 4 };

/** Bytes of a byte message: a Buffer/TypedArray as is, a string as UTF-8, an encoded
 * message its protobuf form (validated). */
function bytesOf(msg) {
  if (typeof msg === 'string') return Buffer.from(msg, 'utf8');
  if (msg instanceof Encoded) return msg.toPb();
  if (ArrayBuffer.isView(msg)) return msg;
  if (msg instanceof ArrayBuffer) return new Uint8Array(msg);
  throw error('EINVAL', `a byte message must be a Buffer, TypedArray or string, not ${typeof msg}`);
}

class Queue extends Handle {
  /**
   * @param type a typecode, a generated message class (fixed: typed slots; encoded:
   *   its protobuf forms as byte messages), or null for byte messages
   * @param opts {name, mode, capacity (default 1024), spsc, maxMsg (byte queues,
   *   default 4096), root, domain, fileMode}
   */
  constructor(type, opts = {}) {
    const cls = typeof type === 'function' && type.prototype instanceof Encoded ? type : null;
    if (cls) type = null;
    const codec = type === null || type === undefined ? null : codecOf(type);
    const maxMsg = codec ? 0 : opts.maxMsg ?? 4096;
    const [h, name] = native.queueOpen(opts.name ?? null, modeOf(opts), codec ? codec.native : null,
      maxMsg, opts.capacity ?? 0, !!opts.spsc, attrOf(opts));
    super(KIND.QUEUE, h, name);
    this._codec = codec;
    this._cls = cls;
    this._cap = codec ? codec.size : Number(native.queueStats(h).maxMsg) || maxMsg;
  }

  _encode(msg) {
    if (this._cls && !(msg instanceof this._cls)) throw error('EINVAL', `a ${this._cls.FULL_NAME} is needed`);
    if (!this._codec) return bytesOf(msg);
    const u8 = new Uint8Array(this._codec.size);
    this._codec.encodeInto(msg, u8);
    return u8;
  }

  _decode(buf, len) {
    if (this._cls) return this._cls.fromPb(buf.subarray(0, len));
    return this._codec ? this._codec.decode(buf) : buf.subarray(0, len);
  }

  /** Validates msg and puts it; waits (off the main thread) up to timeout ms for room.
   * Rejects with ETIMEDOUT, ECLOSED (shut down), EMSGSIZE, EINVALID_DATA. */
  async put(msg, timeout = Infinity) {
    await this._wait(OP.QUEUE_PUT, this._encode(msg), timeout);
  }

  /** Puts msg if there is room now: true, or false when full. */
  tryPut(msg) {
    return native.tryOp(OP.QUEUE_PUT, this._handle(), this._encode(msg)) >= 0;
  }

  /** The oldest message; rejects with ETIMEDOUT, or EEOF once shut down and drained. */
  async get(timeout = Infinity) {
    const buf = Buffer.allocUnsafe(this._cap);
    const len = await this._wait(OP.QUEUE_GET, buf, timeout);
    return this._decode(buf, len);
  }

  /** A message if one is there now, else undefined (EEOF once shut down and drained). */
  tryGet() {
    const buf = Buffer.allocUnsafe(this._cap);
    const len = native.tryOp(OP.QUEUE_GET, this._handle(), buf);
    return len < 0 ? undefined : this._decode(buf, len);
  }

  /** Ends the stream for every process: puts fail with ECLOSED, gets drain then EEOF. */
  shutdown() {
    native.queueShutdown(this._handle());
  }

  /** {capacity, depth, maxMsg, puts, gets, fullWaits, emptyWaits, closed, spsc} */
  stats() {
    return native.queueStats(this._handle());
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      let m;
      try {
        m = await this.get();
      } catch (e) {
        if (e.code === 'EEOF') return;
        throw e;
      }
      yield m;
    }
  }
}

class Pipe extends Handle {
  constructor(h, name, maxMsg) {
    super(KIND.PIPE, h, name);
    this._cap = maxMsg;
  }

  /** Creates a pipe (anonymous without opts.name) and opens both ends here: [end0, end1].
   * opts: {name, maxMsg (default 4096), capacity, root, domain, fileMode}. */
  static pair(opts = {}) {
    const maxMsg = opts.maxMsg ?? 4096;
    const [a, b, name] = native.pipePair(opts.name ?? null, maxMsg, opts.capacity ?? 0, attrOf(opts));
    return [new Pipe(a, name, maxMsg), new Pipe(b, name, maxMsg)];
  }

  /** Opens end 0 or 1 of the pipe `name` (EBUSY while another live process holds it). */
  static open(name, end, opts = {}) {
    const maxMsg = opts.maxMsg ?? 4096;
    const [h, n] = native.pipeOpen(name, end, modeOf({ name, ...opts }), maxMsg, opts.capacity ?? 0, attrOf(opts));
    return new Pipe(h, n, maxMsg);
  }

  async send(msg, timeout = Infinity) {
    await this._wait(OP.PIPE_SEND, bytesOf(msg), timeout);
  }

  /** The next message (a Buffer); rejects with EEOF (peer closed), EPEERDEAD (peer
   * died) or ETIMEDOUT. */
  async recv(timeout = Infinity) {
    const buf = Buffer.allocUnsafe(this._cap);
    const len = await this._wait(OP.PIPE_RECV, buf, timeout);
    return buf.subarray(0, len);
  }

  /** Resolves true when a message (or the end of the stream) is ready. */
  async poll(timeout = 0) {
    try {
      await this._wait(OP.PIPE_POLL, null, timeout);
      return true;
    } catch (e) {
      if (e.code === 'ETIMEDOUT' || e.code === 'EAGAIN') return false;
      throw e;
    }
  }
}

module.exports = { Queue, Pipe, CODES };
