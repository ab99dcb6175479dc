'use strict';
// Services: gRPC-like calls to a shoal server (C, Python or Rust) over the
// address's transport — shm://name (shared memory on this host), ipc:///path or
// tcp://host:port (with the server's token).
//
// A Channel is opened with `await Channel.open(address, {token})`. Every call is a Call
// over libshoal's rpc call; each step that may wait (connect, send into a full window,
// receive, finish) runs off the main thread and returns a Promise, one step at a time
// per call (the Call queues them), so the event loop never blocks. A unary call resolves
// with its response (a Buffer) or rejects with an RpcError carrying gRPC's status code
// (`code`, a number; `codeName`, e.g. 'DEADLINE_EXCEEDED'), the details, and the
// response headers and trailers. Streamed responses are an async iterator
// (`for await (const m of call)`); requests go out with `await call.send(bytes)` and
// `call.closeSend()`; `call.cancel()` ends the call CANCELLED on both sides.
//
// On the wire, messages are the protobuf encodings of the request and response types,
// as the C, Python and Rust stubs send them. At this level they are bytes, unless the
// call (or handler) is given its message types, {request, response}: a generated
// message class each, fixed or encoded (the message travels as its protobuf form,
// toPb / fromPb), or null for bytes. The code
// `shoal gen --lang node` emits passes the types: its clients and handlers take and
// return generated messages. A typed message that does not encode or decode (invalid)
// is an RpcError INVALID_ARGUMENT: on the client nothing is sent (or the call is
// cancelled when a response is invalid), in a server the handler does not run.
//
// A Server serves services on addresses: its loop runs on a thread of its own and each
// call's handler is an async function on the main thread, called through a
// threadsafe function while libshoal's handler thread waits for it to settle.

const { native, attrOf, nanos } = require('./native');

/** gRPC's status codes, with gRPC's numbers. */
const Code = Object.freeze({
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5,
  ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9,
  ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
});

/** The kinds of method. */
const Kind = Object.freeze({ UNARY: 0, SERVER_STREAMING: 1, CLIENT_STREAMING: 2, BIDI_STREAMING: 3 });

/** A call that did not end OK. */
class RpcError extends Error {
  constructor(code, details, headers = [], trailers = []) {
    const name = native.rpcCodeName(code) ?? 'UNKNOWN';
    super(`${name}: ${details}`);
    this.name = 'RpcError';
    this.code = code;
    this.codeName = name;
    this.details = details;
    this.headers = headers; // [[key, value], ...]
    this.trailers = trailers;
  }
}

/** The RpcError of a library failure outside a call's status (a bad argument, ...). */
function asRpcError(e) {
  if (e instanceof RpcError) return e;
  const code = e.code === 'EMSGSIZE' ? Code.RESOURCE_EXHAUSTED : e.code === 'EINVAL' ? Code.INVALID_ARGUMENT : Code.INTERNAL;
  return new RpcError(code, e.message);
}

/** The wire bytes of msg: its protobuf form when cls is its generated class, msg itself
 * (bytes) when cls is null. */
function encodeMsg(cls, msg) {
  if (!cls) return msg;
  if (!(msg instanceof cls)) throw new RpcError(Code.INVALID_ARGUMENT, `a ${cls.FULL_NAME} is needed, not ${msg}`);
  try {
    return msg.toPb();
  } catch (e) {
    throw new RpcError(Code.INVALID_ARGUMENT, e.detail || e.message);
  }
}

/** The message of wire bytes (a cls, or the bytes when cls is null). */
function decodeMsg(cls, bytes) {
  if (!cls || bytes === null) return bytes;
  try {
    return cls.fromPb(bytes);
  } catch (e) {
    throw new RpcError(Code.INVALID_ARGUMENT, e.detail || e.message);
  }
}

function metadataOf(md) {
  if (md == null) return [];
  const pairs = Array.isArray(md) ? md : Object.entries(md);
  return pairs.map(([k, v]) => [String(k), String(v)]);
}

class Channel {
  constructor(h) {
    this._h = h;
  }

  /**
   * Opens a channel to `address`. opts: token (tcp://), connectTimeout (ms, default
   * 2000), root / domain (shm:// objects). Rejects with a ShoalError: ENOENT (no
   * server), ETIMEDOUT, EACCES (token refused), EINVAL (bad address).
   */
  static async open(address, opts = {}) {
    const timeout = opts.connectTimeout == null ? 0 : nanos(opts.connectTimeout);
    return new Channel(await native.rpcOpen(address, opts.token ?? null, timeout, attrOf(opts)));
  }

  _handle() {
    if (!this._h) throw new RpcError(Code.UNAVAILABLE, 'the channel is closed');
    return this._h;
  }

  /**
   * Starts a call of `service`/`method` of kind `kind` (Kind.*). `request` is the one
   * request of unary and server-streaming methods (null otherwise). opts: timeout (ms),
   * deadline (a Date or epoch ms), metadata ({key: value} or [[key, value], ...]).
   * types: the message types {request, response} (generated classes; null or left
   * out: bytes).
   */
  start(service, method, kind, request, opts = {}, types = {}) {
    let timeout = opts.timeout;
    if (opts.deadline != null) timeout = Math.max(Number(opts.deadline) - Date.now(), 1e-6);
    const ns = timeout == null || timeout === Infinity ? 0 : nanos(timeout) || 1;
    const bytes = request == null ? null : encodeMsg(types.request, request);
    const h = native.rpcStart(this._handle(), service, method, kind, bytes, ns, metadataOf(opts.metadata));
    return new Call(h, kind, types);
  }

  /** A unary call: resolves with the response, or rejects with an RpcError. */
  async unary(service, method, request, opts = {}, types = {}) {
    const call = this.start(service, method, Kind.UNARY, request, opts, types);
    try {
      return await call.response();
    } finally {
      call.free();
    }
  }

  /** A server-streaming call: iterate over it for the responses. */
  serverStreaming(service, method, request, opts = {}, types = {}) {
    return this.start(service, method, Kind.SERVER_STREAMING, request, opts, types);
  }

  /** A client-streaming call: send, then `await call.response()`. */
  clientStreaming(service, method, opts = {}, types = {}) {
    return this.start(service, method, Kind.CLIENT_STREAMING, null, opts, types);
  }

  /** A bidirectional call: send and receive freely. */
  bidiStreaming(service, method, opts = {}, types = {}) {
    return this.start(service, method, Kind.BIDI_STREAMING, null, opts, types);
  }

  /** Cancels the calls still running and disconnects. */
  close() {
    if (this._h) native.rpcChannelClose(this._h);
    this._h = null;
  }
}

class Call {
  constructor(h, kind, types = {}) {
    this._h = h;
    this.kind = kind;
    this._types = types;
    this._tail = Promise.resolve(); // the steps run one at a time
    this._status = null;
    this.headers = [];
    this.trailers = [];
  }

  /** Runs fn(handle) after the steps queued before it. */
  _step(fn) {
    const p = this._tail.then(() => {
      if (!this._h) throw new RpcError(Code.CANCELLED, 'the call was freed');
      return fn(this._h);
    });
    this._tail = p.catch(() => {});
    return p;
  }

  /** Sends a request (waits, off the main thread, while the server's window is full).
   * A call already over rejects with its status. */
  async send(msg) {
    const bytes = encodeMsg(this._types.request, msg);
    try {
      await this._step((h) => native.rpcSend(h, bytes));
    } catch (e) {
      if (e.code === 'ECLOSED') throw (await this.finish()).error ?? new RpcError(Code.FAILED_PRECONDITION, 'send after closeSend');
      throw asRpcError(e);
    }
  }

  /** Half-closes: the server sees the end of the requests. */
  closeSend() {
    return this._step((h) => native.rpcCallOp(h, 0));
  }

  /** The next response (a Buffer, or a message of the response type), or null once
   * they ended OK; rejects with the RpcError the call ended with, or INVALID_ARGUMENT
   * (the call cancelled) when a response is no valid message of its type. */
  async recv() {
    let m;
    try {
      m = await this._step((h) => native.rpcRecv(h));
    } catch (e) {
      throw asRpcError(e);
    }
    if (m !== null) {
      try {
        return decodeMsg(this._types.response, m);
      } catch (e) {
        this.cancel();
        throw e;
      }
    }
    const st = await this.finish();
    if (st.error) throw st.error;
    return null;
  }

  /** Waits for the end of the call: {code, details, headers, trailers, error}. */
  async finish() {
    if (!this._status) {
      this._status = this._step((h) => native.rpcFinish(h)).then(([code, details, headers, trailers]) => {
        this.headers = headers;
        this.trailers = trailers;
        const error = code === Code.OK ? null : new RpcError(code, details, headers, trailers);
        return { code, details, headers, trailers, error };
      });
    }
    return this._status;
  }

  /** The one response of a unary or client-streaming call (half-closing first). */
  async response() {
    if (this.kind === Kind.CLIENT_STREAMING) await this.closeSend();
    const m = await this.recv();
    const st = await this.finish();
    if (st.error) throw st.error;
    if (m === null) throw new RpcError(Code.INTERNAL, 'no response');
    return m;
  }

  /** Cancels the call now (even while a step waits): it ends CANCELLED. */
  cancel() {
    if (this._h) native.rpcCallOp(this._h, 1);
  }

  /** Frees the call once its pending steps are done (cancelling it if still running). */
  free() {
    const h = this._h;
    if (!h) return;
    this._tail.then(() => {
      if (this._h) {
        this._h = null;
        native.rpcCallOp(h, 2);
      }
    });
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (;;) {
        const m = await this.recv();
        if (m === null) return;
        yield m;
      }
    } finally {
      this.free();
    }
  }
}

// ---- server ------------------------------------------------------------------------

/** What a handler sees of its call (valid until the handler settles). */
class ServerCall {
  constructor(h, method, types = {}) {
    this._h = h;
    this._types = types; // {request, response}: generated classes, or null (bytes)
    this.method = method; // 'pkg.Service/Method'
    [this.metadata] = native.rpcCtxInfo(h); // [[key, value], ...]
  }

  /** The next request, or null at their end; rejects CANCELLED (or DEADLINE_EXCEEDED)
   * once the call is over, INVALID_ARGUMENT for a request that failed its check or is
   * no valid message of the request type. */
  async recv() {
    let m;
    try {
      m = await native.rpcCtxRecv(this._h);
    } catch (e) {
      throw this._ended(e);
    }
    return decodeMsg(this._types.request, m);
  }

  /** Sends a response (waits, off the main thread, while the client's window is full);
   * an invalid message of the response type rejects INVALID_ARGUMENT, unsent. */
  async send(msg) {
    const bytes = encodeMsg(this._types.response, msg);
    try {
      await native.rpcCtxSend(this._h, bytes);
    } catch (e) {
      throw this._ended(e);
    }
  }

  _ended(e) {
    if (e.code === 'EINVALID_DATA') return new RpcError(Code.INVALID_ARGUMENT, 'invalid request');
    if (e.code === 'ECLOSED') return new RpcError(this.timeRemaining() === 0 ? Code.DEADLINE_EXCEEDED : Code.CANCELLED, e.message);
    return asRpcError(e);
  }

  /** Milliseconds left until the deadline (Infinity: none). */
  timeRemaining() {
    const ns = native.rpcCtxInfo(this._h)[1];
    return ns < 0 ? Infinity : Number(ns) / 1e6;
  }

  /** True once the call was cancelled, its deadline passed or its client died. */
  isCancelled() {
    return native.rpcCtxInfo(this._h)[2];
  }

  addHeader(key, value) {
    native.rpcCtxAddMd(this._h, false, key, value);
  }

  addTrailer(key, value) {
    native.rpcCtxAddMd(this._h, true, key, value);
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const m = await this.recv();
      if (m === null) return;
      yield m;
    }
  }
}

/** The one request of a unary or server-streaming call. */
async function single(call) {
  const m = await call.recv();
  if (m === null) throw new RpcError(Code.INVALID_ARGUMENT, 'no request');
  return m;
}

/** How each kind of handler is run: unary (request, call) -> response; server
 * streaming (request, call) sending with call.send; client streaming (call) ->
 * response, reading `for await (const r of call)`; bidi (call). */
const RUN = {
  [Kind.UNARY]: async (fn, call) => call.send(await fn(await single(call), call)),
  [Kind.SERVER_STREAMING]: async (fn, call) => fn(await single(call), call),
  [Kind.CLIENT_STREAMING]: async (fn, call) => call.send(await fn(call)),
  [Kind.BIDI_STREAMING]: async (fn, call) => fn(call),
};

/**
 * A server: services on addresses. Its loop and each call's wait run off the main
 * thread; the handlers (async functions) run on it. A handler's rejection with an
 * RpcError ends the call with its code, details and trailers; any other error ends it
 * INTERNAL. opts: root / domain of shm:// objects.
 */
class Server {
  constructor(opts = {}) {
    this._services = new Map();
    this._ports = [];
    this._token = null;
    this._attr = attrOf(opts);
    this._h = null;
  }

  /** Adds service `name` ('pkg.Service'): handlers {Method: {kind, fn, request,
   * response}} (request / response: the message types, generated classes, or null or
   * left out for bytes); methods left out answer UNIMPLEMENTED. */
  addService(name, handlers) {
    this._services.set(name, handlers);
    return this;
  }

  addPort(address) {
    this._ports.push(address);
    return this;
  }

  /** The token tcp:// clients must prove they know (at least 8 characters). */
  setToken(token) {
    this._token = token;
    return this;
  }

  /** Starts serving; throws the listening error (EBUSY, EINVAL, ...). */
  start() {
    const services = [...this._services].map(([name, h]) => ({
      name,
      methods: Object.entries(h).map(([m, { kind }]) => [m, kind]),
    }));
    this._h = native.rpcServe(services, this._ports, this._token, this._attr, (h, method) => {
      this._run(h, method);
    });
  }

  async _run(h, method) {
    const [svc, name] = [method.slice(0, method.lastIndexOf('/')), method.slice(method.lastIndexOf('/') + 1)];
    let code = Code.OK;
    let details = '';
    try {
      const handler = this._services.get(svc)?.[name];
      const call = new ServerCall(h, method, handler ?? {});
      if (!handler?.fn) throw new RpcError(Code.UNIMPLEMENTED, `${method}: no handler`);
      try {
        await RUN[handler.kind](handler.fn, call);
      } catch (e) {
        if (e instanceof RpcError) for (const [k, v] of e.trailers ?? []) call.addTrailer(k, v);
        throw e;
      }
    } catch (e) {
      code = e instanceof RpcError ? e.code : Code.INTERNAL;
      details = e instanceof RpcError ? e.details : String(e?.stack ?? e);
    }
    native.rpcCtxDone(h, code, details.slice(0, 500));
  }

  /** Stops serving: cancels the calls still running, waits for their handlers. */
  async stop() {
    const h = this._h;
    this._h = null;
    if (h) await native.rpcServerStop(h);
  }
}

module.exports = { Channel, Call, Code, Kind, RpcError, Server, ServerCall };
