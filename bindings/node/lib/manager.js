'use strict';
// The Manager broker's client (docs/broker.md): multiprocessing.Manager's shared
// objects — dict, list, Namespace, Value, Array, Queue, JoinableQueue, Lock, RLock,
// Semaphore, BoundedSemaphore, Event, Condition, Barrier — held by a `shoal broker`
// process and shared by name with C, Python and Rust clients.
//
// Manager.start(opts) starts a private broker (lib/manager_start.js), as Python's
// `with shoal.Manager() as m:` does, and connects to it; Manager#shutdown() stops it.
// Manager.connect(address) opens one session (shoal/manager.h's shoal_manager) through
// the addon; proxies name an object (and, for a container nested in another, a path of
// keys or indices) and run the broker's operations (broker.proto; the op names of
// broker/core.c) on it. Every call is one request and its reply, made on the calling
// thread; over shm:// a pure read (a get, a size, ...) is answered from the broker's
// read view in shared memory without a round trip (Manager#viewStats counts them).
//
// Blocking operations follow the rest of the binding: the plain name returns a Promise
// and never blocks the event loop, the ...Sync form blocks the calling thread. A queue
// get/put, an Event, Barrier or JoinableQueue wait and a Semaphore acquire run on
// libuv's thread pool (one pool thread per pending wait). Locks are held by (session,
// thread), so Lock/RLock/Condition acquire() tries from the main thread, then waits on
// the pool as the main thread (the addon names it in the request; over shm:// a lock
// of the broker's lock table is waited for there, in this process), and
// Condition#waitSync (which must run on the holding thread) has no Promise form.
// Timeouts are in milliseconds (Infinity: none; 0: do not wait).
//
// Pipelining: Manager#pipeline() submits many requests without waiting, then collects
// their replies in order (shoal_manager_submit / shoal_manager_wait).
//
// Values (broker.proto's Value), both ways:
//   null, undefined          <-> None (reads give null)
//   boolean                  <-> bool
//   number: a safe integer   <-> int; any other number (1.5, 1e300, NaN) -> double, and
//     a double reads as a number, so 2.0 comes back as 2 and goes out again as an int:
//     new Double(x) sends x as a double whatever its value
//   BigInt                   -> int (ERANGE outside 64 bits); an int outside ±2^53
//                               reads as a BigInt
//   string                   <-> str (a NUL character in it is refused)
//   Buffer, TypedArray, DataView, ArrayBuffer -> bytes; bytes read as a Buffer
//   Array                    <-> list
//   Tuple (an Array subclass) <-> tuple (tuple keys of Python dicts read as Tuples)
//   Map, plain object        -> map (keys: scalars or Tuples of scalars; a plain object's
//                               are strings); maps read as Map
//   Pickled                  <-> Python's pickled values (their bytes, never unpickled)
//   Message                  <-> a schema-typed message: its type name and protobuf
//                               bytes (a proxy stored inside a container by Python is
//                               one, of type 'shoal.broker.Ref'); both go back as read
// Anything else (a function, a Symbol, a Date, a class instance) is refused with ETYPE
// before anything is sent.

const { native, NAMES, error, nanos } = require('./native');
const { BrokerProcess } = require('./manager_start');

/** A tuple value (Python's tuple): an Array that travels as broker.proto's tuple. */
class Tuple extends Array {}

/** A number sent as a double even when it is integral. */
class Double {
  constructor(value) {
    this.value = Number(value);
  }
}

/** A value Python stored pickled (Manager(pickle=True)): its bytes, never unpickled. */
class Pickled {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

/** A schema-typed message: its full type name and its protobuf bytes. */
class Message {
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
}

native.mgrSetClasses(Tuple, Double, Pickled, Message, Map, Object.prototype);

/** broker.proto's Kind. */
const KIND = {
  DICT: 1, LIST: 2, NAMESPACE: 3, VALUE: 4, ARRAY: 5, QUEUE: 6, LOCK: 7, RLOCK: 8,
  SEMAPHORE: 9, BOUNDED_SEMAPHORE: 10, EVENT: 11, CONDITION: 12, BARRIER: 13,
  JOINABLE_QUEUE: 14,
};

const ETIMEDOUT = -13;
const EOWNERDEAD = -15;

function fail(rc, detail) {
  return error(NAMES[rc] || 'EUNKNOWN', detail);
}

/** x when it is an integer (number or BigInt), else an EINVAL naming `what`. */
function intArg(x, what) {
  if (Number.isInteger(x) || typeof x === 'bigint') return x;
  throw error('EINVAL', `${what} must be an integer, not ${typeof x === 'number' ? x : typeof x}`);
}

let counter = 0;
function autoName(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
}

class Manager {
  constructor(h, address) {
    this._h = h;
    this._broker = null;
    /** The broker's address. */
    this.address = address;
  }

  /**
   * Connects to the broker at address (shm://NAME, ipc:///path, tcp://host:port,
   * tls+tcp://host:port). opts: {token (tcp://), connectTimeout (ms, default 2000),
   * root, domain (shm://), tls: {caFile, certFile, keyFile, serverName}}.
   */
  static connect(address, opts = {}) {
    const tls = opts.tls || {};
    const h = native.mgrConnect(address, {
      token: opts.token ?? null,
      connectTimeoutNs: opts.connectTimeout === undefined ? null : nanos(opts.connectTimeout),
      root: opts.root ?? null,
      domain: opts.domain ?? null,
      tlsCa: tls.caFile ?? null,
      tlsCert: tls.certFile ?? null,
      tlsKey: tls.keyFile ?? null,
      tlsServerName: tls.serverName ?? null,
    });
    return new Manager(h, address);
  }

  /**
   * Starts a private broker on an shm:// address of its own and resolves with a
   * Manager connected to it. The broker is opts.cli, else $SHOAL_CLI when set and not
   * empty, else `shoal` found on the PATH (Python's rule), run as `shoal broker
   * --listen shm://manager-PID-RANDOM --stop-at-stdin-eof`. shutdown() stops it; it
   * also stops when this process ends, however (SIGKILL too). opts: {cli, root,
   * domain (shm://: passed to the broker and used here), dataDir (keep the objects in
   * LMDB there), readyTimeout (ms, default 10000)}. Rejects with ENOENT (no `shoal`
   * command), ESYS (it cannot be run, or exited before it was ready: the detail has
   * its exit status and stderr), ETIMEDOUT (not ready in time: it is killed), or an
   * error of connecting.
   */
  static async start(opts = {}) {
    const b = await BrokerProcess.start(opts);
    let m;
    try {
      m = Manager.connect(b.address, { root: opts.root, domain: opts.domain });
    } catch (e) {
      await b.stop();
      throw e;
    }
    m._broker = b;
    return m;
  }

  /** The process id of the broker Manager.start() started (null otherwise, and after
   * shutdown()). */
  get brokerPid() {
    return this._broker ? this._broker.pid : null;
  }

  /** Ends the session (as close()), then stops the broker Manager.start() started:
   * SIGTERM, and resolves once it has exited (its segments are gone then); rejects
   * with ESYS when it exited with an error status. For a connected Manager, close(). */
  async shutdown() {
    this.close();
    const b = this._broker;
    this._broker = null;
    if (!b) return;
    const status = await b.stop();
    if (status !== 'exit status 0') throw error('ESYS', `manager ${this.address}: the broker stopped with ${status}`);
  }

  _handle() {
    if (!this._h) throw error('ECLOSED', `manager ${this.address}: closed`);
    return this._h;
  }

  /** Ends the session: the broker has run every request sent when it returns, frees
   * this session's locks, and pending waits end with ECLOSED. */
  close() {
    const h = this._h;
    this._h = null;
    if (h) native.mgrClose(h);
  }

  /** Writes the requests pipelining kept in the transport's buffer (ipc://, tcp://). */
  flush() {
    native.mgrFlush(this._handle());
  }

  /** {view: whether reads use the broker's read view (shm://), hits, misses}. */
  viewStats() {
    const [view, hits, misses] = native.mgrViewStats(this._handle());
    return { view, hits, misses };
  }

  /** Creates object `name` of kind (KIND), or opens it when it exists with that kind
   * (EKIND otherwise): true when created. */
  create(name, kind, init = null, typecode = null) {
    return native.mgrCreate(this._handle(), name, kind, init, typecode) === 1;
  }

  /** Deletes object `name` (its waiters get ENOENT). */
  delete(name) {
    native.mgrDelete(this._handle(), name);
  }

  /** A proxy to the existing object `name`, of its kind (ENOENT when there is none). */
  open(name) {
    const kind = new BaseProxy(this, name)._call('kind');
    const Cls = PROXIES[kind] || BaseProxy;
    return new Cls(this, name);
  }

  /** The names of the objects the broker holds. */
  names() {
    return new BaseProxy(this, '')._call('names').map(([name]) => name);
  }

  _make(Cls, kind, prefix, opts, init = null, typecode = null) {
    const name = opts.name ?? autoName(prefix);
    this.create(name, kind, init, typecode);
    return new Cls(this, name);
  }

  /** A dict (init: a Map or plain object); opts.name opens or creates that one. */
  dict(init = null, opts = {}) {
    return this._make(DictProxy, KIND.DICT, 'dict', opts, init);
  }

  list(init = null, opts = {}) {
    return this._make(ListProxy, KIND.LIST, 'list', opts, init);
  }

  Namespace(init = null, opts = {}) {
    return this._make(NamespaceProxy, KIND.NAMESPACE, 'namespace', opts, init);
  }

  /** A Value; typecode ("i", "d", ... as Python's array module) or null: any value. */
  Value(typecode, value, opts = {}) {
    return this._make(ValueProxy, KIND.VALUE, 'value', opts, value, typecode);
  }

  /** An Array of typecode: of the items of init, or of init zeros when it is a number. */
  Array(typecode, init, opts = {}) {
    const items = typeof init === 'number' ? new Array(intArg(init, 'Array length')).fill('fd'.includes(typecode) ? new Double(0) : 0) : init;
    return this._make(ArrayProxy, KIND.ARRAY, 'array', opts, items, typecode);
  }

  Queue(maxsize = 0, opts = {}) {
    return this._make(QueueProxy, KIND.QUEUE, 'queue', opts, intArg(maxsize, 'maxsize'));
  }

  JoinableQueue(maxsize = 0, opts = {}) {
    return this._make(JoinableQueueProxy, KIND.JOINABLE_QUEUE, 'queue', opts, intArg(maxsize, 'maxsize'));
  }

  Lock(opts = {}) {
    return this._make(LockProxy, KIND.LOCK, 'lock', opts);
  }

  RLock(opts = {}) {
    return this._make(LockProxy, KIND.RLOCK, 'rlock', opts);
  }

  Semaphore(value = 1, opts = {}) {
    return this._make(SemaphoreProxy, KIND.SEMAPHORE, 'semaphore', opts, intArg(value, 'Semaphore value'));
  }

  BoundedSemaphore(value = 1, opts = {}) {
    return this._make(SemaphoreProxy, KIND.BOUNDED_SEMAPHORE, 'semaphore', opts, intArg(value, 'Semaphore value'));
  }

  Event(opts = {}) {
    return this._make(EventProxy, KIND.EVENT, 'event', opts);
  }

  Condition(opts = {}) {
    return this._make(ConditionProxy, KIND.CONDITION, 'condition', opts);
  }

  Barrier(parties, opts = {}) {
    return this._make(BarrierProxy, KIND.BARRIER, 'barrier', opts, intArg(parties, 'Barrier parties'));
  }

  /** A Pipeline: many requests in flight, their results collected in order. */
  pipeline() {
    return new Pipeline(this);
  }
}

/** Requests submitted without waiting (shoal_manager_submit); collect() waits for their
 * replies in the order they were made. */
class Pipeline {
  constructor(manager) {
    this._m = manager;
    this._ids = [];
  }

  /** Submits op(...args) on proxy's object; returns its index in the results. */
  call(proxy, op, ...args) {
    this._ids.push(native.mgrSubmit(this._m._handle(), proxy.name, proxy.path, op, 0, false, ...args));
    return this._ids.length - 1;
  }

  /** How many requests are waiting to be collected. */
  get size() {
    return this._ids.length;
  }

  /** The results, in order. When some failed, waits for all the same, then throws the
   * first error, with .results (undefined where failed) and .errors ([index, error]). */
  collect() {
    const ids = this._ids;
    this._ids = [];
    const results = new Array(ids.length);
    const errors = [];
    for (let i = 0; i < ids.length; i++) {
      try {
        results[i] = native.mgrWait(this._m._handle(), ids[i]);
      } catch (e) {
        errors.push([i, e]);
      }
    }
    if (errors.length) {
      const e = errors[0][1];
      e.results = results;
      e.errors = errors;
      throw e;
    }
    return results;
  }
}

class BaseProxy {
  constructor(manager, name, path = null) {
    this.manager = manager;
    /** The object's name in the broker. */
    this.name = name;
    /** Keys / indices of the nested container this proxy is for (null: the object). */
    this.path = path;
  }

  /** Runs op(...args) and returns its result; throws the broker's error. */
  _call(op, ...args) {
    return native.mgrCall(this.manager._handle(), this.name, this.path, op, 0, false, ...args);
  }

  /** A blocking op on the calling thread: [rc, result, detail] (rc 0 or a code). */
  _block(op, args, timeout) {
    const r = native.mgrCall(this.manager._handle(), this.name, this.path, op, nanos(timeout), true, ...args);
    return [r[0], r[1], r.detail];
  }

  /** A blocking op on libuv's thread pool: a Promise of [rc, result, detail]. */
  async _blockAsync(op, args, timeout) {
    const r = await native.mgrCallAsync(this.manager._handle(), this.name, this.path, op, nanos(timeout), false, ...args);
    return [r[0], r[1], r.detail];
  }

  /** {kind, size, data, ...}: the broker's description of the object. */
  describe() {
    return this._call('describe');
  }

  _child(Cls, key) {
    return new Cls(this.manager, this.name, [...(this.path || []), key]);
  }
}

/** The reply of a wait whose timeout is a result: true, false at the timeout. */
function waited([rc, , detail]) {
  if (rc === ETIMEDOUT) return false;
  if (rc < 0) throw fail(rc, detail);
  return true;
}

/** The result of a wait whose timeout is an error. */
function resultOf([rc, result, detail]) {
  if (rc < 0) throw fail(rc, detail);
  return result;
}

/** A dict (or a map nested in an object): Python's dict operations. */
class DictProxy extends BaseProxy {
  /** d[key]; ENOENT when the key is absent. */
  get(key) {
    return this._call('get', key);
  }

  /** d.get(key, dflt): never fails for an absent key. */
  getOrDefault(key, dflt = null) {
    return this._call('get', key, dflt);
  }

  set(key, value) {
    this._call('set', key, value);
  }

  has(key) {
    return this._call('contains', key);
  }

  /** del d[key]; ENOENT when absent. */
  delete(key) {
    this._call('del', key);
  }

  /** Removes key and returns its value (dflt when absent, if given; else ENOENT). */
  pop(key, ...dflt) {
    return this._call('pop', key, ...dflt.slice(0, 1));
  }

  setdefault(key, dflt = null) {
    return this._call('setdefault', key, dflt);
  }

  /** Sets every entry of a Map or plain object. */
  update(entries) {
    this._call('update', entries);
  }

  size() {
    return this._call('len');
  }

  keys() {
    return this._call('keys');
  }

  values() {
    return this._call('values');
  }

  /** [key, value] Tuples, in insertion order. */
  entries() {
    return this._call('items');
  }

  /** The whole dict as a Map. */
  copy() {
    return this._call('copy');
  }

  clear() {
    this._call('clear');
  }

  /** Atomically adds delta to d[key] (initial when absent); the new value. */
  increment(key, delta = 1, initial = 0) {
    return this._call('incr', key, delta, initial);
  }

  /** Atomically sets d[key] to next if it equals expected; whether it did. */
  compareAndSet(key, expected, next) {
    return this._call('cas', key, expected, next);
  }

  /** A proxy to the dict stored at key (no round trip: EKIND at use if it is not one). */
  dictAt(key) {
    return this._child(DictProxy, key);
  }

  /** A proxy to the list stored at key. */
  listAt(key) {
    return this._child(ListProxy, key);
  }

  [Symbol.iterator]() {
    return this.entries()[Symbol.iterator]();
  }
}

/** A Namespace: a dict of attribute names (get/set/has/delete by name). */
class NamespaceProxy extends DictProxy {
  /** The attributes as a plain object. */
  toObject() {
    return Object.fromEntries(this.entries());
  }
}

/** An Array (fixed length, typecode-checked) — and the reads and in-place writes of a
 * list. */
class ArrayProxy extends BaseProxy {
  get(i) {
    return this._call('get', intArg(i, 'index'));
  }

  set(i, value) {
    this._call('set', intArg(i, 'index'), value);
  }

  size() {
    return this._call('len');
  }

  has(value) {
    return this._call('contains', value);
  }

  index(value) {
    return this._call('index', value);
  }

  count(value) {
    return this._call('count', value);
  }

  toArray() {
    return this._call('copy');
  }

  increment(i, delta = 1) {
    return this._call('incr', intArg(i, 'index'), delta);
  }

  compareAndSet(i, expected, next) {
    return this._call('cas', intArg(i, 'index'), expected, next);
  }

  [Symbol.iterator]() {
    return this.toArray()[Symbol.iterator]();
  }
}

/** A list (or a list nested in an object). */
class ListProxy extends ArrayProxy {
  append(value) {
    this._call('append', value);
  }

  extend(values) {
    this._call('extend', values);
  }

  insert(i, value) {
    this._call('insert', intArg(i, 'index'), value);
  }

  /** Removes and returns item i (default: the last). */
  pop(i) {
    return i === undefined ? this._call('pop') : this._call('pop', intArg(i, 'index'));
  }

  delete(i) {
    this._call('del', intArg(i, 'index'));
  }

  /** Removes the first item equal to value (ENOENT when none). */
  remove(value) {
    this._call('remove', value);
  }

  reverse() {
    this._call('reverse');
  }

  clear() {
    this._call('clear');
  }

  dictAt(i) {
    return this._child(DictProxy, intArg(i, 'index'));
  }

  listAt(i) {
    return this._child(ListProxy, intArg(i, 'index'));
  }
}

class ValueProxy extends BaseProxy {
  get() {
    return this._call('get');
  }

  set(value) {
    this._call('set', value);
  }

  get value() {
    return this.get();
  }

  set value(v) {
    this.set(v);
  }

  /** Atomically adds delta; the new value. */
  increment(delta = 1) {
    return this._call('incr', delta);
  }

  /** Atomically sets next if the value equals expected; whether it did. */
  compareAndSet(expected, next) {
    return this._call('cas', expected, next);
  }
}

class QueueProxy extends BaseProxy {
  /** Puts value; waits (off the main thread) for room up to timeout ms; rejects with
   * ETIMEDOUT. */
  async put(value, timeout = Infinity) {
    resultOf(await this._blockAsync('put', [value], timeout));
  }

  putSync(value, timeout = Infinity) {
    resultOf(this._block('put', [value], timeout));
  }

  /** The oldest item; waits (off the main thread) up to timeout ms; rejects with
   * ETIMEDOUT. */
  async get(timeout = Infinity) {
    return resultOf(await this._blockAsync('get', [], timeout));
  }

  /** The same, blocking the calling thread. */
  getSync(timeout = Infinity) {
    return resultOf(this._block('get', [], timeout));
  }

  size() {
    return this._call('qsize');
  }

  empty() {
    return this._call('empty');
  }

  full() {
    return this._call('full');
  }
}

class JoinableQueueProxy extends QueueProxy {
  /** One item put earlier is done (EOVERFLOW when called more often than items were put). */
  taskDone() {
    this._call('task_done');
  }

  /** Resolves true once every item put is done, false at the timeout. */
  async join(timeout = Infinity) {
    return waited(await this._blockAsync('join', [], timeout));
  }

  joinSync(timeout = Infinity) {
    return waited(this._block('join', [], timeout));
  }
}

/** A Lock or RLock (held by this session's main thread). */
class LockProxy extends BaseProxy {
  constructor(manager, name, path) {
    super(manager, name, path);
    /** True after an acquisition that found the previous holder dead. */
    this.ownerDied = false;
  }

  _got([rc, , detail]) {
    if (rc === 0 || rc === EOWNERDEAD) {
      this.ownerDied = rc === EOWNERDEAD;
      return true;
    }
    if (rc === ETIMEDOUT) return undefined;
    throw fail(rc, detail);
  }

  /** Acquires without blocking the event loop (tries from the main thread, then waits
   * on libuv's thread pool, held by the main thread): resolves true, or false at the
   * timeout. */
  async acquire(timeout = Infinity) {
    const got = this._got(this._block('acquire', [], 0));
    if (got !== undefined || timeout === 0) return got === true;
    return this._got(await this._blockAsync('acquire', [], timeout)) === true;
  }

  /** Acquires, blocking the calling thread: true, or false at the timeout. */
  acquireSync(timeout = Infinity) {
    return this._got(this._block('acquire', [], timeout)) === true;
  }

  /** Releases (EPERM when this thread of this session does not hold it). */
  release() {
    this._call('release');
  }

  locked() {
    return this._call('locked');
  }

  /** Runs fn holding the lock (released when fn's promise settles). */
  async with(fn, timeout = Infinity) {
    if (!(await this.acquire(timeout))) throw error('ETIMEDOUT', `${this.name}: lock not acquired`);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

class ConditionProxy extends LockProxy {
  /** Releases the lock (held by the caller), waits for a notify, takes the lock back:
   * false at the timeout. Blocks the calling thread (the holder). */
  waitSync(timeout = Infinity) {
    return resultOf(this._block('wait', [], timeout)) === true;
  }

  notify(n = 1) {
    this._call('notify', intArg(n, 'notify count'));
  }

  notifyAll() {
    this._call('notify_all');
  }
}

/** A Semaphore or BoundedSemaphore (units held by this session). */
class SemaphoreProxy extends BaseProxy {
  /** Resolves true once acquired, false at the timeout (waits off the main thread). */
  async acquire(timeout = Infinity) {
    return waited(await this._blockAsync('acquire', [], timeout));
  }

  acquireSync(timeout = Infinity) {
    return waited(this._block('acquire', [], timeout));
  }

  /** Releases n units (a BoundedSemaphore refuses to go above its initial value). */
  release(n = 1) {
    this._call('release', intArg(n, 'release count'));
  }

  value() {
    return this._call('value');
  }
}

class EventProxy extends BaseProxy {
  set() {
    this._call('set');
  }

  clear() {
    this._call('clear');
  }

  isSet() {
    return this._call('is_set');
  }

  /** Resolves true once set, false at the timeout. */
  async wait(timeout = Infinity) {
    return resultOf(await this._blockAsync('wait', [], timeout)) === true;
  }

  waitSync(timeout = Infinity) {
    return resultOf(this._block('wait', [], timeout)) === true;
  }
}

class BarrierProxy extends BaseProxy {
  /** Resolves with this party's index once all arrived; rejects with EBROKEN when the
   * barrier is broken (abort(), or a party's timeout: this one's too). */
  async wait(timeout = Infinity) {
    return resultOf(await this._blockAsync('wait', [], timeout));
  }

  waitSync(timeout = Infinity) {
    return resultOf(this._block('wait', [], timeout));
  }

  abort() {
    this._call('abort');
  }

  reset() {
    this._call('reset');
  }

  parties() {
    return this._call('parties');
  }

  nWaiting() {
    return this._call('n_waiting');
  }

  broken() {
    return this._call('broken');
  }
}

const PROXIES = {
  [KIND.DICT]: DictProxy, [KIND.LIST]: ListProxy, [KIND.NAMESPACE]: NamespaceProxy,
  [KIND.VALUE]: ValueProxy, [KIND.ARRAY]: ArrayProxy, [KIND.QUEUE]: QueueProxy,
  [KIND.JOINABLE_QUEUE]: JoinableQueueProxy, [KIND.LOCK]: LockProxy, [KIND.RLOCK]: LockProxy,
  [KIND.SEMAPHORE]: SemaphoreProxy, [KIND.BOUNDED_SEMAPHORE]: SemaphoreProxy,
  [KIND.EVENT]: EventProxy, [KIND.CONDITION]: ConditionProxy, [KIND.BARRIER]: BarrierProxy,
};

module.exports = {
  Manager, Pipeline, Tuple, Double, Pickled, Message, MANAGER_KIND: KIND,
  DictProxy, ListProxy, NamespaceProxy, ValueProxy, ArrayProxy, QueueProxy, JoinableQueueProxy,
  LockProxy, ConditionProxy, SemaphoreProxy, EventProxy, BarrierProxy,
};
