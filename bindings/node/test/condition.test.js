'use strict';
// Condition.waitSync always returns holding its lock at the depth it had, after a
// timeout too: the library takes the lock back, once another process lets it go.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { spawn } = require('child_process');
const shoal = require('..');
const { opts, fresh } = require('./util');

const code = (c) => (e) => e instanceof shoal.ShoalError && e.code === c;
// Generous: child processes start slowly on a loaded machine or under a sanitizer.
const LONG = 120000;
const HOLD_MS = 800;

/** A process that takes the lock (while the parent waits), says so, keeps it a while. */
function holder() {
  const o = opts();
  const script = `
    const shoal = require(${JSON.stringify(path.join(__dirname, '..'))});
    const o = ${JSON.stringify(o)};
    const lock = new shoal.RLock({ ...o, name: 'cv.held.lock', mode: 'open' });
    const ev = new shoal.Event({ ...o, name: 'cv.held.ev', mode: 'open' });
    if (!lock.acquireSync(${LONG})) process.exit(3);
    ev.set();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${HOLD_MS});
    lock.release();
  `;
  const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', (c, signal) => resolve({ code: c, signal }));
  });
}

test('a timed-out wait returns holding the RLock at its depth', async () => {
  const lock = new shoal.RLock(fresh('cv.held.lock'));
  const ev = new shoal.Event(fresh('cv.held.ev'));
  const c = new shoal.Condition(lock, opts());
  assert.ok(lock.acquireSync());
  assert.ok(lock.acquireSync()); // depth 2
  const done = holder(); // the process starts now; its exit is awaited below
  const end = Date.now() + LONG / 4; // this thread is blocked: no exit event seen
  let got = null;
  let took = 0;
  while (!ev.isSet() && Date.now() < end) {
    const t0 = Date.now();
    got = c.waitSync(50); // the holder takes the lock during one of these
    took = Date.now() - t0;
  }
  assert.ok(ev.isSet());
  assert.strictEqual(got, false); // timed out, nobody notified
  assert.ok(took >= HOLD_MS / 2, `the wait returned after ${took} ms, before the lock was free`);
  assert.strictEqual(lock.ownerDied, false);
  lock.release();
  lock.release(); // held twice again: both releases are ours
  assert.throws(() => lock.release(), code('EPERM'));
  assert.strictEqual(lock.locked(), false);
  assert.deepStrictEqual(await done, { code: 0, signal: null });
  for (const o of [c, ev, lock]) o.close();
  shoal.unlink('cv.held.lock', opts());
  shoal.unlink('cv.held.ev', opts());
});
