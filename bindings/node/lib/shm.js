'use strict';
// SharedMemory: a raw named block of bytes (Python's multiprocessing.shared_memory).
// `buffer` is an ArrayBuffer over the mapping itself — zero-copy: what other processes
// write shows through it. It must not be used after close().

const { native, KIND, modeOf, attrOf } = require('./native');
const { Handle } = require('./handle');

class SharedMemory extends Handle {
  /** @param opts {name, size (used when creating; 0 with mode 'open': any), mode, root,
   *   domain, fileMode} */
  constructor(opts = {}) {
    const [h, buffer, name] = native.shmOpen(opts.name ?? null, modeOf(opts), opts.size ?? 0, attrOf(opts));
    super(KIND.SHM, h, name);
    /** The bytes, shared. */
    this.buffer = buffer;
    this.size = buffer.byteLength;
  }

  close() {
    this.buffer = null;
    super.close();
  }
}

module.exports = { SharedMemory };
