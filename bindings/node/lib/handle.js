'use strict';
// What every shoal object of the Node binding shares: its native handle, its name, an
// explicit close(), and the way blocking operations run.
//
// A blocking operation first tries the non-blocking form on the main thread (a busy
// channel never leaves it); only if it would wait does it run in the addon's thread
// pool, in slices of at most SLICE_MS, so that close() never frees a handle under a
// pending wait: close() marks the object closing and the last pending operation (within
// one slice) finishes with ECLOSED and closes it.

const { native, CODES, error, nanos } = require('./native');

const SLICE_MS = 250;

class Handle {
  constructor(kind, h, name) {
    this._kind = kind;
    this._h = h;
    this._pending = 0;
    this._closing = false;
    /** The object's name (generated for an anonymous object). */
    this.name = name;
  }

  _handle() {
    if (this._closing) throw error('ECLOSED', `${this.name}: closed in this process`);
    return this._h;
  }

  /** Releases this process's handle (the object stays; see unlink). */
  close() {
    if (this._closing) return;
    this._closing = true;
    if (this._pending === 0) this._release();
  }

  _release() {
    const h = this._h;
    this._h = null;
    native.close(this._kind, h);
  }

  /**
   * Runs op (an addon operation number) on buf: the try form first, then off the main
   * thread until the timeout (milliseconds, Infinity: none). Resolves with the result
   * (a length, an index, ...); rejects with ETIMEDOUT or the operation's error.
   * `whole`: an operation whose timeout has an effect (a barrier breaks) runs as one
   * wait, without a try first and without slices.
   */
  async _wait(op, buf, timeoutMs, whole = false) {
    const forever = timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity;
    if (whole) return this._pendingOp(() => native.startAsync(op, this._handle(), buf, nanos(timeoutMs)));
    const r = native.tryOp(op, this._handle(), buf);
    if (r >= 0) return r;
    if (!forever && timeoutMs <= 0) throw error(r === CODES.EAGAIN ? 'EAGAIN' : 'ETIMEDOUT', `${this.name}: would wait`);
    const deadline = forever ? Infinity : Date.now() + timeoutMs;
    this._pending++;
    try {
      for (;;) {
        if (this._closing) throw error('ECLOSED', `${this.name}: closed in this process`);
        const left = deadline - Date.now();
        const slice = Math.max(0, Math.min(SLICE_MS, left));
        try {
          return await native.startAsync(op, this._h, buf, nanos(slice));
        } catch (e) {
          if (e.code !== 'ETIMEDOUT' || deadline - Date.now() <= 0) throw e;
        }
      }
    } finally {
      if (--this._pending === 0 && this._closing) this._release();
    }
  }

  async _pendingOp(start) {
    this._pending++;
    try {
      return await start();
    } finally {
      if (--this._pending === 0 && this._closing) this._release();
    }
  }
}

/** Polls fn (which returns undefined while it must wait) from the event loop until it
 * returns a result or the timeout passes (then resolves undefined). For the waits that
 * must happen on the main thread (acquiring a lock libshoal records as the thread's). */
async function pollUntil(fn, timeoutMs) {
  const deadline = timeoutMs === undefined || timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const r = fn();
    if (r !== undefined) return r;
    if (Date.now() >= deadline) return undefined;
    await new Promise((res) => (i < 50 ? setImmediate(res) : setTimeout(res, Math.min(1 + (i >> 6), 10))));
  }
}

module.exports = { Handle, pollUntil, SLICE_MS };
