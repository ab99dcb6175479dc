'use strict';
// shoal for Node.js: typed, crash-safe shared memory between processes in any language.
//
// The same named objects as libshoal's C API and the C, Python and Rust bindings: Value,
// Array, Queue of scalars or of message classes generated from .proto schemas
// (`shoal gen --lang node`), byte Pipes, SharedMemory as a zero-copy ArrayBuffer, and the
// robust primitives. Waiting never blocks the event loop: blocking operations return
// Promises and run off the main thread; a Queue is an async iterator. Errors are
// ShoalError instances whose `code` is the SHOAL_E* name ('ELAYOUT', 'ETIMEDOUT', ...)
// and whose `detail` names the object and what was wrong. Manager.connect(address)
// reaches a Manager broker's shared dicts, lists, queues and locks (lib/manager.js).

const { native, ShoalError, CODES, error, attrOf } = require('./native');
const { Value, SharedArray } = require('./values');
const { Queue, Pipe } = require('./channels');
const { SharedMemory } = require('./shm');
const sync = require('./sync');
const gen = require('./gen');
const rpc = require('./rpc');
const manager = require('./manager');

/** Removes the name of any object (processes that have it open keep using it). */
function unlink(name, opts = {}) {
  native.unlink(name, attrOf(opts));
}

/** How long waiters spin before sleeping, in nanoseconds, for the whole process. */
function setSpinNs(ns) {
  native.setSpinNs(ns);
}

/** {name, size, align, hash} of an element type as libshoal records it. */
function typeInfo(type) {
  const { codecOf } = require('./types');
  return native.typeInfo(codecOf(type).native);
}

module.exports = {
  Value,
  Array: SharedArray,
  SharedArray,
  Queue,
  Pipe,
  SharedMemory,
  ...sync,
  ShoalError,
  CODES,
  unlink,
  setSpinNs,
  typeInfo,
  error,
  gen,
  rpc,
  Manager: manager.Manager,
  Tuple: manager.Tuple,
  Double: manager.Double,
  Pickled: manager.Pickled,
  Message: manager.Message,
  manager,
};
