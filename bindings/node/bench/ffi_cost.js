'use strict';
// The call cost that chose this binding's FFI: one small libshoal call (an atomic add
// on a Value) made from JavaScript through the N-API addon and, when the koffi package
// can be loaded (`npm install --no-save koffi` here, or NODE_PATH), through koffi.
//
//   node bench/ffi_cost.js [ROUNDS]      prints ns per call, best of ROUNDS x 1e6 calls
const path = require('path');
const shoal = require('..');
const { native } = require('../lib/native');

const N = 1e6;
const rounds = Number(process.argv[2] || 7);

function best(f) {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / N);
  }
  return min;
}

const v = new shoal.Value('q', 0n);
const cases = {
  'N-API addon: shoal_value_add(v, 1, &old)': () => native.valueAtomic(v._h, 0, 1),
  'shoal.Value.add(1) (the public method)': () => v.add(1),
};
let koffi = null;
try {
  koffi = require('koffi');
} catch (e) {
  console.log(`koffi not installed (${e.code}): only the addon is measured`);
}
if (koffi) {
  const lib = koffi.load(process.env.SHOAL_LIBRARY || path.join(__dirname, '..', '..', '..', 'build', 'runtime', 'libshoal.so'));
  const open = lib.func('int shoal_value_open(_Out_ void **out, const char *name, int mode, void *type, void *init, void *attr)');
  const typecode = lib.func('void *shoal_typecode(char c)');
  const add = lib.func('int shoal_value_add(void *v, int64_t delta, void *old)');
  const out = [null];
  open(out, null, 2, typecode('q'.charCodeAt(0)), null, null);
  const old = new BigInt64Array(1);
  cases[`koffi ${koffi.version}: shoal_value_add(v, 1, &old)`] = () => add(out[0], 1, old);
}
for (const [name, f] of Object.entries(cases)) console.log(`${name}: ${best(f).toFixed(1)} ns/call`);
