'use strict';
// Loading the native addon (shoal.node, built from src/shoal_node.c with CMake) and the
// conventions every module shares: errors, open modes, attributes and timeouts.
//
// The addon is looked for at $SHOAL_NODE_ADDON, then next to this file (a copy bundled
// with the package), then in a CMake build tree beside the sources (build/bindings/node).
// It links libshoal, which the dynamic loader finds (LD_LIBRARY_PATH or an installed
// libshoal.so.0).

const path = require('path');
const fs = require('fs');

class ShoalError extends Error {
  /** @param {string} message @param {number} errno @param {string} code @param {string} detail */
  constructor(message, errno, code, detail) {
    super(message);
    this.name = 'ShoalError';
    this.errno = errno; // the negative SHOAL_E* number
    this.code = code; // 'ELAYOUT', 'ETIMEDOUT', ...
    this.detail = detail; // names the object and what was wrong
  }
}

function load() {
  const tried = [];
  const candidates = [
    process.env.SHOAL_NODE_ADDON,
    path.join(__dirname, 'shoal.node'),
    path.join(__dirname, '..', '..', '..', 'build', 'bindings', 'node', 'shoal.node'),
  ].filter(Boolean);
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      return require(file);
    } catch (e) {
      tried.push(`${file} (${e.message})`);
    }
  }
  throw new Error('shoal: cannot load the native addon shoal.node. Tried:\n  ' + tried.join('\n  ') +
    '\nBuild it with CMake (target shoal_node) and set SHOAL_NODE_ADDON to its path.');
}

const native = load();
native.setErrorClass(ShoalError);

const CODES = {
  EINVAL: -1, ENOMEM: -2, ENOENT: -3, EEXIST: -4, ENAME: -5, EKIND: -6, ELAYOUT: -7,
  ECORRUPT: -8, ETRUNCATED: -9, EFOREIGN: -10, EVERSION: -11, ENOSPC: -12, ETIMEDOUT: -13,
  EAGAIN: -14, EOWNERDEAD: -15, EPERM: -16, ERANGE: -17, EOVERFLOW: -18, EMSGSIZE: -19,
  ECLOSED: -20, EEOF: -21, EPEERDEAD: -22, EBROKEN: -23, EDEADLK: -24, ETYPE: -25,
  EACCES: -26, EBUSY: -27, ESYS: -28, EINVALID_DATA: -29, EINTR: -30,
};
const NAMES = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k]));

function error(code, detail) {
  return new ShoalError(`${code}: ${detail}`, CODES[code], code, detail);
}

const KIND = {
  SHM: 1, VALUE: 2, ARRAY: 3, LOCK: 4, RLOCK: 5, SEMAPHORE: 6, BOUNDED_SEMAPHORE: 7,
  CONDITION: 8, EVENT: 9, BARRIER: 10, QUEUE: 11, PIPE: 12,
};

const MODES = { open: 1, create: 2, openOrCreate: 3 };

/** The open mode of options: 'open' | 'create' | 'openOrCreate' (default: openOrCreate
 * for a named object, create for an anonymous one). */
function modeOf(opts) {
  const m = opts.mode ?? (opts.name == null ? 'create' : 'openOrCreate');
  if (!(m in MODES)) throw error('EINVAL', `mode ${JSON.stringify(m)}: use open, create or openOrCreate`);
  return MODES[m];
}

/** Attributes for the addon: {root, domain, mode (file mode), lock (0 rlock, 1 none)}. */
function attrOf(opts) {
  return {
    root: opts.root ?? null,
    domain: opts.domain ?? null,
    mode: opts.fileMode ?? 0,
    lock: opts.lock === false ? 1 : 0,
  };
}

/** A timeout in milliseconds (Infinity: none) as the addon's nanoseconds. */
function nanos(ms) {
  if (ms === undefined || ms === null || ms === Infinity) return -1;
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw error('EINVAL', `timeout ${ms}: milliseconds`);
  return ms <= 0 ? 0 : Math.round(ms * 1e6);
}

module.exports = { native, ShoalError, CODES, NAMES, KIND, error, modeOf, attrOf, nanos };
