'use strict';
// The synchronisation primitives, named segments any process opens by name: Lock and
// RLock (robust), Semaphore and BoundedSemaphore, Condition, Event and Barrier.
//
// libshoal records a lock's holder by thread, so locks are acquired on the main thread:
// acquire() tries at once and then retries from the event loop (never blocking it) until
// the timeout; acquireSync() blocks. A lock whose previous holder died is acquired with
// lock.ownerDied set to true (repair the data it protects), instead of hanging.
// Semaphore, Event and Barrier waits run off the main thread and return Promises.
// Condition.waitSync() blocks the calling thread: it must hold the lock, which lives on
// the main thread. Timeouts are in milliseconds (Infinity: none).

const { native, CODES, KIND, modeOf, attrOf, nanos } = require('./native');
const { Handle, pollUntil } = require('./handle');

const OP = { SEM_ACQUIRE: 5, EVENT_WAIT: 6, BARRIER_WAIT: 7 };
const CALL = {
  LOCK_RELEASE: 0, LOCK_LOCKED: 1, LOCK_HOLDER_DIED: 2, SEM_RELEASE: 3, SEM_VALUE: 4,
  COND_NOTIFY: 5, COND_NOTIFY_ALL: 6, EVENT_SET: 7, EVENT_CLEAR: 8, EVENT_IS_SET: 9,
  BARRIER_ABORT: 10, BARRIER_RESET: 11, BARRIER_PARTIES: 12, BARRIER_WAITING: 13,
  BARRIER_BROKEN: 14,
};

function openSync(kind, opts, value = 0) {
  return native.syncOpen(kind, opts.name ?? null, modeOf(opts), value, attrOf(opts));
}

class Lock extends Handle {
  /** @param opts {name, mode, root, domain, fileMode} */
  constructor(opts = {}, kind = KIND.LOCK) {
    const [h, name] = opts._borrowed ? [opts._borrowed, opts._owner.name] : openSync(kind, opts);
    super(kind, h, name);
    this._owned = !opts._borrowed;
    /** True after an acquisition that found the previous holder dead. */
    this.ownerDied = false;
  }

  static _borrowed(h, owner) {
    return new Lock({ _borrowed: h, _owner: owner });
  }

  _got(rc) {
    if (rc === 0 || rc === CODES.EOWNERDEAD) {
      this.ownerDied = rc === CODES.EOWNERDEAD;
      return true;
    }
    return undefined;
  }

  /** Acquires without blocking the event loop: resolves true, or false on timeout. */
  async acquire(timeout = Infinity) {
    const r = await pollUntil(() => this._got(native.lockAcquire(this._handle(), 0)), timeout);
    return r === true;
  }

  /** Acquires, blocking the calling thread: true, or false on timeout. */
  acquireSync(timeout = Infinity) {
    return this._got(native.lockAcquire(this._handle(), nanos(timeout))) === true;
  }

  release() {
    native.syncCall(CALL.LOCK_RELEASE, this._handle());
  }

  /** Runs fn holding the lock (released when fn's promise settles). */
  async with(fn, timeout = Infinity) {
    if (!(await this.acquire(timeout))) throw require('./native').error('ETIMEDOUT', `${this.name}: lock not acquired`);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  locked() {
    return native.syncCall(CALL.LOCK_LOCKED, this._handle()) === 1;
  }

  /** Whether it is free because its last holder died holding it. */
  holderDied() {
    return native.syncCall(CALL.LOCK_HOLDER_DIED, this._handle()) === 1;
  }

  close() {
    if (this._owned) super.close();
  }
}

class RLock extends Lock {
  constructor(opts = {}) {
    super(opts, KIND.RLOCK);
  }
}

class Semaphore extends Handle {
  constructor(value = 1, opts = {}, kind = KIND.SEMAPHORE) {
    const [h, name] = openSync(kind, opts, value);
    super(kind, h, name);
  }

  /** Resolves true once decremented, false on timeout. */
  async acquire(timeout = Infinity) {
    try {
      await this._wait(OP.SEM_ACQUIRE, null, timeout);
      return true;
    } catch (e) {
      if (e.code === 'ETIMEDOUT' || e.code === 'EAGAIN') return false;
      throw e;
    }
  }

  tryAcquire() {
    return native.tryOp(OP.SEM_ACQUIRE, this._handle(), null) >= 0;
  }

  /** Increments (EOVERFLOW above a bounded semaphore's initial value). */
  release() {
    native.syncCall(CALL.SEM_RELEASE, this._handle());
  }

  get value() {
    return native.syncCall(CALL.SEM_VALUE, this._handle());
  }
}

class BoundedSemaphore extends Semaphore {
  constructor(value = 1, opts = {}) {
    super(value, opts, KIND.BOUNDED_SEMAPHORE);
  }
}

class Condition extends Handle {
  /** @param lock the Lock or RLock it is used with (default: a new anonymous RLock) */
  constructor(lock = null, opts = {}) {
    const [h, name] = openSync(KIND.CONDITION, opts);
    super(KIND.CONDITION, h, name);
    this.lock = lock ?? new RLock({ root: opts.root, domain: opts.domain });
  }

  /** Releases the lock (held by the caller), waits for a notify or the timeout, and
   * returns holding the lock again at its depth (after a timeout too, once another
   * process lets it go). Blocks the calling thread. Returns false on timeout; sets
   * lock.ownerDied when the lock's holder died meanwhile. */
  waitSync(timeout = Infinity) {
    const rc = native.condWait(this._handle(), this.lock._handle(), nanos(timeout));
    this.lock.ownerDied = rc === CODES.EOWNERDEAD;
    return rc !== CODES.ETIMEDOUT;
  }

  notify(n = 1) {
    native.syncCall(CALL.COND_NOTIFY, this._handle(), n);
  }

  notifyAll() {
    native.syncCall(CALL.COND_NOTIFY_ALL, this._handle());
  }
}

class Event extends Handle {
  constructor(opts = {}) {
    const [h, name] = openSync(KIND.EVENT, opts);
    super(KIND.EVENT, h, name);
  }

  set() {
    native.syncCall(CALL.EVENT_SET, this._handle());
  }

  clear() {
    native.syncCall(CALL.EVENT_CLEAR, this._handle());
  }

  isSet() {
    return native.syncCall(CALL.EVENT_IS_SET, this._handle()) === 1;
  }

  /** Resolves true once set, false on timeout. */
  async wait(timeout = Infinity) {
    try {
      await this._wait(OP.EVENT_WAIT, null, timeout);
      return true;
    } catch (e) {
      if (e.code === 'ETIMEDOUT' || e.code === 'EAGAIN') return false;
      throw e;
    }
  }
}

class Barrier extends Handle {
  constructor(parties, opts = {}) {
    const [h, name] = openSync(KIND.BARRIER, opts, parties);
    super(KIND.BARRIER, h, name);
  }

  /** Resolves with this caller's arrival index; a timeout breaks the barrier
   * (ETIMEDOUT here, EBROKEN for the others). */
  wait(timeout = Infinity) {
    return this._wait(OP.BARRIER_WAIT, null, timeout, true);
  }

  abort() {
    native.syncCall(CALL.BARRIER_ABORT, this._handle());
  }

  reset() {
    native.syncCall(CALL.BARRIER_RESET, this._handle());
  }

  get parties() {
    return native.syncCall(CALL.BARRIER_PARTIES, this._handle());
  }

  get nWaiting() {
    return native.syncCall(CALL.BARRIER_WAITING, this._handle());
  }

  get broken() {
    return native.syncCall(CALL.BARRIER_BROKEN, this._handle()) === 1;
  }
}

module.exports = { Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier };
