'use strict';
// The Manager broker's client (lib/manager.js) against a real `shoal broker` process:
// every proxy kind, every value kind both ways, Python's client on the same objects,
// the errors (bad values refused before anything is sent, the broker's own, a broker
// killed under a call), pipelining and the read view; Manager.start's private brokers
// (started, used, stopped, two at once, the errors of a missing command and of a broker
// that exits, a broker outliving no SIGKILLed parent).
const test = require('node:test');
const assert = require('node:assert');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const shoal = require('..');
const { root } = require('./util');

const { Manager, Tuple, Double, Pickled, Message } = shoal;
const code = (c) => (e) => e instanceof shoal.ShoalError && e.code === c;
const cli = process.env.SHOAL_CLI;
const env = { ...process.env, SHOAL_ROOT: root, SHOAL_DOMAIN: 'node' };
const place = { root, domain: 'node' };

/** Starts `shoal broker --listen shm://NAME` (or at a full address) with the extra
 * arguments; resolves with the child once it is ready. */
function startBroker(name, extra = []) {
  const address = name.includes('://') ? name : `shm://${name}`;
  return new Promise((resolve, reject) => {
    const p = spawn(cli, ['broker', '--listen', address, ...extra], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.on('error', reject);
    p.on('exit', (c) => reject(new Error(`the broker exited (${c}) before it was ready: ${out}`)));
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('shoal broker: ready')) resolve(p);
    });
  });
}

function stopBroker(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.removeAllListeners('exit');
    p.on('exit', resolve);
    p.kill('SIGTERM');
  });
}

const brokerName = `node-mgr-${process.pid}`;
let broker;
let m;

test.before(async () => {
  broker = await startBroker(brokerName);
  m = Manager.connect(`shm://${brokerName}`, place);
});

test.after(async () => {
  if (m) m.close();
  if (broker) await stopBroker(broker);
});

test('every value kind round-trips', () => {
  const d = m.dict(null, { name: 'values' });
  const cases = [
    null, true, false, 0, -1, 42, 2 ** 53 - 1, -(2 ** 53 - 1), 1.5, -0.25, 1e300,
    2n ** 62n, -(2n ** 63n), 'text', 'é ✓', '', Buffer.from([0, 1, 255]), Buffer.alloc(0),
    // strings about the addon's 256-byte buffer, a character of 2, 3 or 4 bytes across it
    ...[252, 253, 254, 255, 256].flatMap((k) => ['é', '✓', '😀', 'x'].map((ch) => 'a'.repeat(k) + ch + 'z')),
    'b'.repeat(70000 / 2),
    [1, 'a', [2, [3]]], Tuple.of(1, 'two'), new Map([[1, 'one'], ['k', [true]], [Tuple.of(1, 2), null]]),
  ];
  cases.forEach((v, i) => d.set(i, v));
  cases.forEach((v, i) => assert.deepStrictEqual(d.get(i), v, `case ${i}`));
  assert.ok(d.get(cases.length - 1).get(1) === 'one');
  assert.ok(d.get(cases.length - 2) instanceof Tuple);
  // undefined is None; a plain object is a map; a TypedArray / ArrayBuffer are bytes
  d.set('u', undefined);
  assert.strictEqual(d.get('u'), null);
  d.set('o', { a: 1, b: { c: [1] } });
  assert.deepStrictEqual(d.get('o'), new Map([['a', 1], ['b', new Map([['c', [1]]])]]));
  d.set('ta', new Uint16Array([1, 2]));
  assert.deepStrictEqual(d.get('ta'), Buffer.from([1, 0, 2, 0]));
  d.set('ab', new Uint8Array([9, 8]).buffer);
  assert.deepStrictEqual(d.get('ab'), Buffer.from([9, 8]));
  // numbers: a safe integer is an int, anything else a double; Double forces a double
  d.set('n', NaN);
  assert.ok(Number.isNaN(d.get('n')));
  d.set('inf', -Infinity);
  assert.strictEqual(d.get('inf'), -Infinity);
  d.set('big', 2 ** 60); // not a safe integer: a double
  assert.strictEqual(d.increment('big', 0.5), 2 ** 60 + 0.5 - 0.5 + 0.5);
  d.set('dbl', new Double(3));
  assert.strictEqual(d.increment('dbl', 0.5), 3.5);
  d.set('int', 3);
  assert.strictEqual(d.increment('int', 2), 5);
  assert.strictEqual(d.increment('int', 2n), 7);
  d.set('wide', 2n ** 60n);
  assert.strictEqual(d.increment('wide', 1), 2n ** 60n + 1n); // outside ±2^53: a BigInt
  // 1, 1.0 and true are one key, as in Python
  d.set(1, 'x');
  assert.strictEqual(d.get(new Double(1)), 'x');
  assert.strictEqual(d.get(true), 'x');
  m.delete('values');
});

test('dict, Namespace and nested containers', () => {
  const d = m.dict({ a: 1 }, { name: 'scores' });
  assert.strictEqual(m.dict(null, { name: 'scores' }).get('a'), 1); // opened, not made anew
  d.set('b', 2);
  assert.ok(d.has('b'));
  assert.ok(!d.has('zz'));
  assert.strictEqual(d.size(), 2);
  assert.deepStrictEqual(d.keys(), ['a', 'b']);
  assert.deepStrictEqual(d.values(), [1, 2]);
  assert.deepStrictEqual(d.entries(), [Tuple.of('a', 1), Tuple.of('b', 2)]);
  assert.deepStrictEqual([...d].map(([k]) => k), ['a', 'b']);
  assert.strictEqual(d.getOrDefault('zz', 'dflt'), 'dflt');
  assert.strictEqual(d.getOrDefault('zz'), null);
  assert.throws(() => d.get('zz'), (e) => code('ENOENT')(e) && e.detail.includes('scores'));
  assert.strictEqual(d.setdefault('c', 3), 3);
  assert.strictEqual(d.setdefault('c', 4), 3);
  assert.strictEqual(d.pop('c'), 3);
  assert.strictEqual(d.pop('c', 'gone'), 'gone');
  assert.throws(() => d.pop('c'), code('ENOENT'));
  d.update(new Map([['x', 10], [5, 'five']]));
  d.update({ y: 20 });
  assert.deepStrictEqual(d.copy(), new Map([['a', 1], ['b', 2], ['x', 10], [5, 'five'], ['y', 20]]));
  d.delete('x');
  assert.throws(() => d.delete('x'), code('ENOENT'));
  assert.strictEqual(d.increment('hits'), 1);
  assert.strictEqual(d.increment('hits', 10), 11);
  assert.strictEqual(d.increment('fresh', 1, 100), 101);
  assert.strictEqual(d.compareAndSet('hits', 11, 0), true);
  assert.strictEqual(d.compareAndSet('hits', 11, 5), false);
  assert.strictEqual(d.get('hits'), 0);
  // a list and a dict inside the dict, changed in place through proxies
  d.set('l', [1]);
  d.set('m', { k: [] });
  d.listAt('l').append(2);
  d.listAt('l').extend([3, 4]);
  d.dictAt('m').set('k2', 'v');
  d.dictAt('m').listAt('k').append('deep');
  assert.deepStrictEqual(d.get('l'), [1, 2, 3, 4]);
  assert.deepStrictEqual(d.get('m'), new Map([['k', ['deep']], ['k2', 'v']]));
  assert.throws(() => d.listAt('a').append(1), (e) => e instanceof shoal.ShoalError);
  d.clear();
  assert.strictEqual(d.size(), 0);

  const ns = m.Namespace({ x: 1 }, { name: 'ns' });
  ns.set('y', 'two');
  assert.strictEqual(ns.get('x'), 1);
  assert.deepStrictEqual(ns.toObject(), { x: 1, y: 'two' });
  const opened = m.open('ns');
  assert.ok(opened instanceof shoal.manager.NamespaceProxy);
  assert.strictEqual(opened.get('y'), 'two');
  m.delete('scores');
  m.delete('ns');
  // names travel whole (the broker's limit: 255 bytes), a character across the
  // addon's buffer too
  for (const k of [158, 159, 160, 161, 162]) {
    const name = `${'n'.repeat(k)}é😀`;
    m.dict({ k }, { name });
    assert.strictEqual(m.open(name).get('k'), k);
    assert.ok(m.names().includes(name));
    m.delete(name);
  }
  const long = m.dict(null, { name: `${'n'.repeat(250)}a` });
  const other = m.dict(null, { name: `${'n'.repeat(250)}b` });
  assert.throws(() => m.dict(null, { name: 'n'.repeat(256) }), code('ENAME'));
  assert.throws(() => new shoal.manager.DictProxy(m, 'n'.repeat(256)).get('k'), code('ENOENT'));
  long.set('k', 1);
  other.set('k', 2);
  assert.deepStrictEqual([long.get('k'), other.get('k')], [1, 2]);
  assert.strictEqual(m.open(long.name).get('k'), 1);
  m.delete(long.name);
  m.delete(other.name);
});

test('list and Array', () => {
  const l = m.list([3, 1], { name: 'lst' });
  l.append(2);
  l.extend(['a', 'b']);
  l.insert(0, 'first');
  assert.deepStrictEqual(l.toArray(), ['first', 3, 1, 2, 'a', 'b']);
  assert.strictEqual(l.size(), 6);
  assert.strictEqual(l.get(1), 3);
  assert.strictEqual(l.get(-1), 'b');
  l.set(1, 30);
  assert.strictEqual(l.pop(), 'b');
  assert.strictEqual(l.pop(0), 'first');
  l.remove('a');
  assert.throws(() => l.remove('a'), (e) => e instanceof shoal.ShoalError);
  assert.strictEqual(l.index(2), 2);
  assert.strictEqual(l.count(1), 1);
  assert.ok(l.has(30));
  l.delete(0);
  l.reverse();
  assert.deepStrictEqual([...l], [2, 1]);
  assert.strictEqual(l.increment(0, 5), 7);
  assert.strictEqual(l.compareAndSet(1, 1, 'one'), true);
  l.append([]);
  l.listAt(2).append('nested');
  l.append({});
  l.dictAt(3).set('k', 1);
  assert.deepStrictEqual(l.toArray(), [7, 'one', ['nested'], new Map([['k', 1]])]);
  assert.throws(() => l.get(99), code('ERANGE'));
  assert.throws(() => l.get(1.5), (e) => code('EINVAL')(e) && e.detail.includes('integer'));
  l.clear();
  assert.strictEqual(l.size(), 0);

  const a = m.Array('i', [1, 2, 3], { name: 'arr' });
  a.set(0, 10);
  assert.strictEqual(a.increment(1, 5), 7);
  assert.deepStrictEqual(a.toArray(), [10, 7, 3]);
  assert.throws(() => a.set(0, 'text'), code('ETYPE'));
  assert.throws(() => a.set(0, 1.5), code('ETYPE'));
  assert.strictEqual(a.size(), 3);
  const z = m.Array('d', 4);
  assert.deepStrictEqual(z.toArray(), [0, 0, 0, 0]);
  z.set(1, 2.5);
  assert.strictEqual(z.get(1), 2.5);
  assert.ok(m.open('arr') instanceof shoal.manager.ArrayProxy);
  assert.strictEqual(typeof m.open('arr').append, 'undefined');
  for (const n of ['lst', 'arr', z.name]) m.delete(n);
});

test('Value', () => {
  const v = m.Value('i', 5, { name: 'val' });
  assert.strictEqual(v.value, 5);
  v.value = 6;
  assert.strictEqual(v.get(), 6);
  assert.strictEqual(v.increment(), 7);
  assert.strictEqual(v.increment(-10), -3);
  assert.strictEqual(v.compareAndSet(-3, 0), true);
  assert.strictEqual(v.compareAndSet(-3, 1), false);
  assert.throws(() => v.set('no'), code('ETYPE'));
  const any = m.Value(null, 'anything');
  any.set([1, { a: 2 }]);
  assert.deepStrictEqual(any.get(), [1, new Map([['a', 2]])]);
  m.delete('val');
  m.delete(any.name);
});

test('Queue and JoinableQueue', async () => {
  const q = m.Queue(2, { name: 'jobs' });
  q.putSync('a');
  await q.put({ b: 1 });
  assert.ok(q.full());
  assert.strictEqual(q.size(), 2);
  await assert.rejects(q.put('c', 50), code('ETIMEDOUT'));
  assert.throws(() => q.putSync('c', 0), code('ETIMEDOUT'));
  assert.strictEqual(q.getSync(), 'a');
  assert.deepStrictEqual(await q.get(1000), new Map([['b', 1]]));
  assert.ok(q.empty());
  const t0 = Date.now();
  assert.throws(() => q.getSync(100), (e) => code('ETIMEDOUT')(e) && e.detail.includes('jobs'));
  assert.ok(Date.now() - t0 >= 90);
  await assert.rejects(q.get(50), code('ETIMEDOUT'));
  // a get waiting off the main thread while the event loop puts
  const pending = q.get(5000);
  setTimeout(() => q.putSync('late'), 50);
  assert.strictEqual(await pending, 'late');

  const jq = m.JoinableQueue(0, { name: 'jq' });
  jq.putSync(1);
  jq.putSync(2);
  assert.strictEqual(jq.joinSync(50), false);
  jq.getSync();
  jq.taskDone();
  const joined = jq.join(5000);
  jq.getSync();
  jq.taskDone();
  assert.strictEqual(await joined, true);
  assert.throws(() => jq.taskDone(), code('EOVERFLOW'));
  m.delete('jobs');
  m.delete('jq');
});

test('Lock, RLock, Condition, Semaphore, Event, Barrier', async () => {
  const l = m.Lock({ name: 'lk' });
  assert.ok(await l.acquire(100));
  assert.ok(l.locked());
  assert.throws(() => l.acquireSync(50), code('EDEADLK')); // a Lock is not recursive
  l.release();
  assert.throws(() => l.release(), code('EPERM'));
  assert.strictEqual(await l.with(() => l.locked()), true);
  assert.ok(!l.locked());

  const r = m.RLock({ name: 'rlk' });
  assert.ok(r.acquireSync());
  assert.ok(r.acquireSync(0));
  r.release();
  assert.ok(r.locked());
  r.release();
  assert.ok(!r.locked());

  const c = m.Condition({ name: 'cond' });
  assert.ok(c.acquireSync());
  assert.strictEqual(c.waitSync(50), false); // nobody notifies: false, the lock held again
  assert.ok(c.locked());
  c.notify();
  c.notifyAll();
  c.release();

  const s = m.BoundedSemaphore(2, { name: 'sem' });
  assert.ok(await s.acquire());
  assert.ok(s.acquireSync(0));
  assert.strictEqual(s.value(), 0);
  assert.strictEqual(await s.acquire(50), false);
  assert.strictEqual(s.acquireSync(0), false);
  s.release(2);
  assert.strictEqual(s.value(), 2);
  assert.throws(() => s.release(), (e) => e instanceof shoal.ShoalError);
  const s2 = m.Semaphore(0);
  const got = s2.acquire(5000);
  setTimeout(() => s2.release(), 30);
  assert.strictEqual(await got, true);

  const e = m.Event({ name: 'ev' });
  assert.strictEqual(e.isSet(), false);
  assert.strictEqual(e.waitSync(30), false);
  assert.strictEqual(await e.wait(30), false);
  const w = e.wait(5000);
  setTimeout(() => e.set(), 30);
  assert.strictEqual(await w, true);
  assert.strictEqual(e.waitSync(0), true);
  e.clear();
  assert.strictEqual(e.isSet(), false);

  const b = m.Barrier(2, { name: 'bar' });
  assert.strictEqual(b.parties(), 2);
  const first = b.wait(5000);
  for (let i = 0; i < 200 && b.nWaiting() < 1; i++) await new Promise((res) => setTimeout(res, 5));
  const second = b.waitSync(5000);
  assert.deepStrictEqual([await first, second].sort(), [0, 1]);
  await assert.rejects(b.wait(30), code('EBROKEN')); // its timeout broke it
  assert.strictEqual(b.broken(), true);
  b.reset();
  assert.strictEqual(b.broken(), false);
  b.abort();
  assert.throws(() => b.waitSync(1000), code('EBROKEN'));
  for (const n of ['lk', 'rlk', 'cond', 'sem', s2.name, 'ev', 'bar']) m.delete(n);
});

test('a client killed holding a Lock: the next acquirer gets it, ownerDied set', async () => {
  const l = m.Lock({ name: 'held' });
  const src = `const shoal = require(${JSON.stringify(path.join(__dirname, '..'))});
const m = shoal.Manager.connect('shm://${brokerName}', ${JSON.stringify(place)});
if (!m.open('held').acquireSync(10000)) process.exit(3);
console.log('held');
setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1e6);`;
  const kid = spawn(process.execPath, ['-e', src], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res, rej) => {
    kid.stdout.on('data', (d) => String(d).includes('held') && res());
    kid.on('exit', (c) => rej(new Error(`the child exited (${c}) before it held the lock`)));
  });
  assert.strictEqual(await l.acquire(50), false); // the child holds it
  kid.removeAllListeners('exit');
  kid.kill('SIGKILL');
  assert.strictEqual(await l.acquire(20000), true);
  assert.strictEqual(l.ownerDied, true);
  l.release();
  assert.strictEqual(l.acquireSync(1000), true);
  assert.strictEqual(l.ownerDied, false);
  l.release();
  m.delete('held');
});

/** The broker's count of requests parked as waiters since it started. */
function parked(mgr) {
  const s = new shoal.manager.DictProxy(mgr, '')._call('stats');
  return s instanceof Map ? s.get('parked') : s.parked;
}

const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** 100 hand-offs each way of lock `name` (a Lock or RLock) between this process and a
 * child, each acquireSync made while the other holds it for holdMs more: resolves with
 * [hand-offs per second, the acquires that waited at least holdMs / 2]. */
async function handOffs(address, name, rlock, holdMs) {
  const make = rlock ? 'RLock' : 'Lock';
  const conn = Manager.connect(address, place);
  const l = conn[make]({ name });
  const src = `const shoal = require(${JSON.stringify(path.join(__dirname, '..'))});
const m = shoal.Manager.connect(${JSON.stringify(address)}, ${JSON.stringify(place)});
const l = m.${make}({ name: ${JSON.stringify(name)} });
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
let waited = 0, buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  for (; buf.includes('\\n'); buf = buf.slice(buf.indexOf('\\n') + 1)) {
    if (buf.startsWith('end')) { console.log('waited ' + waited); m.close(); process.exit(0); }
    const t = process.hrtime.bigint();
    if (!l.acquireSync(20000)) process.exit(3);
    if (Number(process.hrtime.bigint() - t) >= ${holdMs} * 5e5) waited++;
    console.log('got');
    sleep(${holdMs});
    l.release();
  }
});
console.log('ready');`;
  const kid = spawn(process.execPath, ['-e', src], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let wake = null, out = '';
  kid.stdout.on('data', (d) => {
    out += d;
    for (let i; (i = out.indexOf('\n')) >= 0; out = out.slice(i + 1)) lines.push(out.slice(0, i));
    if (wake && lines.length) wake();
  });
  const line = () => (lines.length ? Promise.resolve(lines.shift()) :
    new Promise((res) => (wake = () => ((wake = null), res(lines.shift())))));
  assert.strictEqual(await line(), 'ready');
  const t0 = process.hrtime.bigint();
  let waited = 0;
  assert.ok(l.acquireSync(20000));
  for (let i = 0; i < 100; i++) {
    kid.stdin.write('go\n');
    sleepMs(holdMs);
    l.release();
    assert.strictEqual(await line(), 'got');
    const t = process.hrtime.bigint();
    // the child holds it for holdMs more; the Promise form waits on the pool as the
    // main thread, which releases it (an RLock too)
    assert.ok(i % 2 ? await l.acquire(20000) : l.acquireSync(20000));
    if (Number(process.hrtime.bigint() - t) >= holdMs * 5e5) waited++;
  }
  const rate = 200 / (Number(process.hrtime.bigint() - t0) / 1e9);
  l.release();
  kid.stdin.write('end\n');
  waited += Number((await line()).split(' ')[1]);
  await new Promise((res) => (kid.exitCode !== null ? res() : kid.on('exit', res)));
  conn.close();
  return [rate, waited];
}

test('contended acquires between two processes wait in the lock table, not the broker', async () => {
  for (const rlock of [false, true]) {
    const name = rlock ? 'tbl-rl' : 'tbl-lk';
    const p0 = parked(m);
    const [, waited] = await handOffs(`shm://${brokerName}`, name, rlock, 2);
    assert.ok(waited >= 100, `${name}: ${waited} of 200 acquires waited for the other holder`);
    assert.strictEqual(parked(m), p0, `${name}: no contended acquire was parked in the broker`);
    m.delete(name);
  }
  // Without the lock table the broker parks them; an RLock taken by the Promise form
  // (on the pool, as the main thread) is still released by the main thread.
  const name = `node-mgr-nolt-${process.pid}`;
  const b = await startBroker(name, ['--no-lock-table']);
  const m2 = Manager.connect(`shm://${name}`, place);
  try {
    const p0 = parked(m2);
    const [, waited] = await handOffs(`shm://${name}`, 'brk-rl', true, 2);
    assert.ok(parked(m2) - p0 >= waited - 10, 'the broker parked the waiting acquires');
  } finally {
    m2.close();
    await stopBroker(b);
  }
});

if (process.env.SHOAL_BENCH_HANDOFF) {
  test('contended hand-offs per second (SHOAL_BENCH_HANDOFF=1)', async () => {
    for (let round = 0; round < 5; round++) {
      const p0 = parked(m);
      const [rate, waited] = await handOffs(`shm://${brokerName}`, 'rate', false, 0.1);
      console.log(`round ${round}: ${rate.toFixed(0)} hand-offs/s, ${waited} of 200 waited, ${parked(m) - p0} parked`);
    }
  });
}

test('errors: unknown object, wrong kind, bad values, oversized values', () => {
  const d = m.dict(null, { name: 'errs' });
  assert.throws(() => m.open('no-such-object'), (e) => code('ENOENT')(e) && e.detail.includes('no-such-object'));
  assert.throws(() => new shoal.manager.DictProxy(m, 'no-such-object').get('k'), code('ENOENT'));
  assert.throws(() => m.list(null, { name: 'errs' }), code('EKIND'));
  assert.throws(() => new shoal.manager.QueueProxy(m, 'errs').putSync(1, 0), (e) => code('EKIND')(e) &&
    e.detail.includes('errs'));
  const bad = [
    [() => 1, 'function'], [Symbol('s'), 'Symbol'], [new Date(), 'Date'], [new Set([1]), 'Set'],
    [new Map([[{}, 1]]), 'map key'], [new Map([[[1], 1]]), 'map key'], [2n ** 64n, 'BigInt'],
    ['a\0b', 'NUL'], [[1, 2, [() => 0]], 'function'],
  ];
  for (const [v, what] of bad) {
    assert.throws(() => d.set('k', v), (e) => e instanceof shoal.ShoalError && e.detail.includes(what) &&
      e.detail.includes('errs'), what);
  }
  let deep = [];
  for (let i = 0; i < 60; i++) deep = [deep];
  assert.throws(() => d.set('k', deep), (e) => code('EINVAL')(e) && e.detail.includes('48'));
  assert.ok(!d.has('k')); // nothing was sent
  let nested = d;
  for (let i = 0; i < 49; i++) nested = nested.dictAt('x');
  assert.throws(() => nested.get('k'), (e) => code('EINVAL')(e) && e.detail.includes('48'));
  // larger than a frame of the shm:// transport (64 KiB)
  assert.throws(() => d.set('big', Buffer.alloc(100000)), code('EMSGSIZE'));
  assert.ok(!d.has('big'));
  // a value not fitting a typecode
  assert.throws(() => m.Value('i', 'x'), (e) => e instanceof shoal.ShoalError);
  assert.throws(() => m.Queue(1.5), (e) => code('EINVAL')(e) && e.detail.includes('maxsize'));
  // failed conversions free what they built: many of them, RSS stays put (not under
  // ASan, whose quarantine keeps freed memory)
  if (!/asan/.test(process.env.LD_PRELOAD || '')) leakCheck(d);
  m.delete('errs');
});

function leakCheck(d) {
  const items = Array.from({ length: 2000 }, (_, i) => `item ${i}`);
  items.push(() => 0);
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 2000; i++) assert.throws(() => d.set('k', items), code('ETYPE'));
  const grown = (process.memoryUsage().rss - before) / 1048576;
  assert.ok(grown < 64, `RSS grew ${grown.toFixed(1)} MiB over 4 M values built and refused`);
}

test('pipelining: 1,000 sets submitted, then their replies in order', () => {
  const d = m.dict(null, { name: 'pipe' });
  const p = m.pipeline();
  for (let i = 0; i < 1000; i++) assert.strictEqual(p.call(d, 'set', i, i * 2), i);
  assert.strictEqual(p.size, 1000);
  const results = p.collect();
  assert.strictEqual(results.length, 1000);
  assert.ok(results.every((r) => r === null));
  assert.strictEqual(d.size(), 1000);
  for (let i = 0; i < 1000; i++) p.call(d, 'incr', i, 1);
  assert.deepStrictEqual(p.collect(), Array.from({ length: 1000 }, (_, i) => i * 2 + 1));
  // an error in the middle: every reply is still collected, the first error thrown
  p.call(d, 'get', 1);
  p.call(d, 'get', 'absent');
  p.call(d, 'get', 2);
  assert.throws(() => p.collect(), (e) => code('ENOENT')(e) && e.results[0] === 3 && e.results[2] === 5 &&
    e.errors.length === 1 && e.errors[0][0] === 1);
  assert.strictEqual(p.size, 0);
  m.delete('pipe');
});

test('a plain read is answered from the read view (shm://)', () => {
  const d = m.dict({ k: 'v' }, { name: 'viewed' });
  const before = m.viewStats();
  assert.strictEqual(before.view, true);
  for (let i = 0; i < 50; i++) assert.strictEqual(d.get('k'), 'v');
  const after = m.viewStats();
  assert.ok(after.hits - before.hits >= 40, `view hits ${after.hits - before.hits} of 50 reads`);
  d.set('k', 'w'); // a write, then the reads see it
  assert.strictEqual(d.get('k'), 'w');
  m.delete('viewed');
});

const python = process.env.SHOAL_PYTHON || 'python3';
const noPython = spawnSync(python, ['--version']).status !== 0 && `no ${python}`;

test('cross-language: Python writes, Node reads and writes back, Python checks', { skip: noPython }, () => {
  const pyEnv = {
    ...env, PYTHONPATH: path.join(process.env.SHOAL_SOURCE_DIR || path.join(__dirname, '..', '..', '..'), 'bindings', 'python'),
    PYTHONDONTWRITEBYTECODE: '1',
  };
  const run = (src) => {
    const r = spawnSync(python, ['-c', `import shoal\nm = shoal.Manager(address='shm://${brokerName}', pickle=True)\n${src}\nm.shutdown()\n`],
      { env: pyEnv, encoding: 'utf8', timeout: 120000 });
    assert.strictEqual(r.status, 0, `python failed:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  run(`
d = m.dict(name='xl')
d['nested'] = {'l': [1, 2.5, b'\\x00\\xff', None], 'm': {1: 'one', (1, 2): 3.5}, 's': 'é'}
d['big'] = 2 ** 60
v = m.Value('i', 41, name='xl.v')
q = m.Queue(name='xl.q')
q.put({'msg': 'hi', 'n': [True, 0.5]})
d['ref'] = m.list([7, 8], name='xl.l')
d['pickled'] = frozenset({1, 2})
`);
  const d = m.open('xl');
  const nested = d.get('nested');
  assert.deepStrictEqual(nested.get('l'), [1, 2.5, Buffer.from([0, 255]), null]);
  const mm = nested.get('m');
  assert.strictEqual(mm.get(1), 'one');
  const [tk, tv] = [...mm].find(([k]) => k instanceof Tuple);
  assert.deepStrictEqual([[...tk], tv], [[1, 2], 3.5]);
  assert.strictEqual(nested.get('s'), 'é');
  assert.strictEqual(d.get('big'), 2n ** 60n);
  const v = m.open('xl.v');
  assert.strictEqual(v.get(), 41);
  const q = m.open('xl.q');
  assert.deepStrictEqual(q.getSync(1000), new Map([['msg', 'hi'], ['n', [true, 0.5]]]));
  // A proxy Python stored is a reference message, a pickle its bytes: both go back
  // as read, and Python finds its list and its set again.
  const ref = d.get('ref');
  assert.ok(ref instanceof Message, `${ref}`);
  assert.strictEqual(ref.type, 'shoal.broker.Ref');
  assert.ok(ref.data.toString().endsWith(':xl.l'), ref.data.toString());
  d.set('copyOfRef', ref);
  const pickled = d.get('pickled');
  assert.ok(pickled instanceof Pickled && pickled.bytes.length > 0);
  d.set('copyOfPickled', pickled);
  assert.throws(() => d.set('bad', new Message('', Buffer.alloc(1))), { code: 'ETYPE' });
  assert.throws(() => d.set('bad', new Message('a.B', 'not bytes')), { code: 'ETYPE' });
  // Node writes back
  d.set('fromNode', [new Double(1), 'ü', Buffer.from('raw'), Tuple.of(1, 'a'), new Map([[2, null]]), 2n ** 62n, -7]);
  d.dictAt('nested').listAt('l').append('node');
  v.increment(1);
  q.putSync(Tuple.of('reply', { ok: true }));
  const out = run(`
d = m.dict(name='xl')
got = d.copy()
x = got['fromNode']
assert x == [1.0, 'ü', b'raw', (1, 'a'), {2: None}, 2 ** 62, -7], x
assert type(x[0]) is float and type(x[3]) is tuple and type(x[6]) is int, [type(i) for i in x]
assert got['nested']['l'][-1] == 'node', got['nested']
assert m.Value('i', 0, name='xl.v').value == 42
d['copyOfRef'].append(9)
assert m.list(name='xl.l')[:] == [7, 8, 9], m.list(name='xl.l')[:]
assert d['copyOfPickled'] == frozenset({1, 2}), d['copyOfPickled']
r = m.Queue(name='xl.q').get(timeout=5)
assert r == ('reply', {'ok': True}), r
print('python ok')
`);
  assert.match(out, /python ok/);
  for (const n of ['xl', 'xl.v', 'xl.q', 'xl.l']) m.delete(n);
});

test('the broker SIGKILLed during calls: errors, no hang', async () => {
  const name = `node-mgr-kill-${process.pid}`;
  const b = await startBroker(name);
  const m2 = Manager.connect(`shm://${name}`, place);
  const q = m2.Queue(0, { name: 'doomed' });
  const pending = q.get(); // waits forever, off the main thread
  const holder = Manager.connect(`shm://${name}`, place); // holds a lock m2 waits for
  assert.ok(holder.Lock({ name: 'doomed-lk' }).acquireSync(1000));
  const lockPending = m2.Lock({ name: 'doomed-lk' }).acquire(); // in the lock table
  // a blocking call on the main thread: another process kills the broker meanwhile
  const killer = spawn('sh', ['-c', `sleep 0.3; kill -9 ${b.pid}`], { stdio: 'ignore' });
  const t0 = Date.now();
  assert.throws(() => q.getSync(), (e) => e instanceof shoal.ShoalError && ['EPEERDEAD', 'ECLOSED'].includes(e.code));
  assert.ok(Date.now() - t0 < 30000);
  const gone = (e) => e instanceof shoal.ShoalError && ['EPEERDEAD', 'ECLOSED'].includes(e.code);
  await Promise.all([assert.rejects(pending, gone), assert.rejects(lockPending, gone)]);
  assert.throws(() => q.size(), (e) => e instanceof shoal.ShoalError);
  m2.close();
  holder.close();
  assert.throws(() => q.size(), code('ECLOSED'));
  await new Promise((res) => (killer.exitCode !== null ? res() : killer.on('exit', res)));
  await stopBroker(b);
  assert.throws(() => Manager.connect(`shm://${name}`, { ...place, connectTimeout: 200 }), (e) =>
    e instanceof shoal.ShoalError);
});

test('over ipc:// (nng): calls, pipelining, a wait, no read view', { skip: !process.env.SHOAL_RPC_NNG && 'built without nng' }, async () => {
  const sock = path.join(os.tmpdir(), `shoal-node-mgr-${process.pid}.sock`); // short: sun_path
  const b = await startBroker(`ipc://${sock}`);
  const mi = Manager.connect(`ipc://${sock}`);
  try {
    const d = mi.dict({ a: 1 }, { name: 'ipc' });
    assert.ok(mi.names().includes('ipc'));
    const p = mi.pipeline();
    for (let i = 0; i < 1000; i++) p.call(d, 'set', i, Buffer.from([i & 255]));
    p.collect();
    assert.strictEqual(d.size(), 1001);
    assert.deepStrictEqual(d.get(999), Buffer.from([999 & 255]));
    const q = mi.Queue();
    const got = q.get(5000);
    setTimeout(() => q.putSync('x'), 30);
    assert.strictEqual(await got, 'x');
    assert.strictEqual(mi.viewStats().view, false);
    mi.flush();
  } finally {
    mi.close();
    await stopBroker(b);
  }
});

test('close wakes a pending wait', async () => {
  const m3 = Manager.connect(`shm://${brokerName}`, place);
  const q = m3.Queue(0);
  const pending = q.get();
  assert.ok(m.Lock({ name: 'close-lk' }).acquireSync(1000)); // held: m3 waits for it
  const lockPending = m3.Lock({ name: 'close-lk' }).acquire(); // in the lock table
  await new Promise((res) => setTimeout(res, 50));
  m3.close();
  await Promise.all([assert.rejects(pending, code('ECLOSED')), assert.rejects(lockPending, code('ECLOSED'))]);
  m.open('close-lk').release();
  m.delete(q.name);
  m.delete('close-lk');
});

// ---- Manager.start: a private broker ----------------------------------------------------

const startPlace = { root, domain: 'nodestart' };

/** The segments left of the broker at address (its name, NAME:...). */
function segmentsOf(address) {
  const name = address.slice('shm://'.length);
  let files = [];
  try {
    files = require('fs').readdirSync(path.join(root, 'nodestart'));
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  return files.filter((f) => f === name || f.startsWith(`${name}:`));
}

/** Whether process pid runs (not gone, not a zombie waiting to be reaped). */
function running(pid) {
  let stat;
  try {
    stat = require('fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
  return state !== 'Z' && state !== 'X';
}

/** Resolves with whether `cond()` came true within `ms`. */
async function within(ms, cond) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

test('Manager.start: a private broker, used, then stopped by shutdown', async () => {
  const ms = await Manager.start(startPlace);
  const pid = ms.brokerPid;
  assert.match(ms.address, new RegExp(`^shm://manager-${process.pid}-[0-9a-f]{12}$`));
  assert.ok(running(pid));
  const d = ms.dict({ a: 1 }, { name: 'd' });
  assert.strictEqual(d.increment('a', 2), 3);
  const other = Manager.connect(ms.address, startPlace); // another session sees it
  assert.strictEqual(other.dict(null, { name: 'd' }).get('a'), 3);
  other.close();
  assert.ok(segmentsOf(ms.address).length > 0);
  await ms.shutdown();
  assert.ok(!running(pid), `the broker ${pid} still runs`);
  assert.deepStrictEqual(segmentsOf(ms.address), []);
  assert.strictEqual(ms.brokerPid, null);
  assert.throws(() => d.get('a'), code('ECLOSED'));
  const ls = spawnSync(cli, ['ls', '--root', root, '--domain', 'nodestart'], { encoding: 'utf8' });
  assert.ok(!ls.stdout.includes(ms.address.slice(6)), ls.stdout);
  await ms.shutdown(); // again: nothing more to do
});

test('Manager.start: two at once do not collide', async () => {
  const [a, b] = await Promise.all([Manager.start(startPlace), Manager.start(startPlace)]);
  try {
    assert.notStrictEqual(a.address, b.address);
    assert.notStrictEqual(a.brokerPid, b.brokerPid);
    a.dict(null, { name: 'same' }).set('k', 'a');
    b.dict(null, { name: 'same' }).set('k', 'b');
    assert.strictEqual(a.dict(null, { name: 'same' }).get('k'), 'a');
    assert.strictEqual(b.dict(null, { name: 'same' }).get('k'), 'b');
  } finally {
    await a.shutdown();
    await b.shutdown();
  }
  assert.deepStrictEqual([...segmentsOf(a.address), ...segmentsOf(b.address)], []);
});

test('Manager.start: the errors name what failed', async () => {
  await assert.rejects(Manager.start({ ...startPlace, cli: '/nonexistent/shoal' }), (e) =>
    code('ESYS')(e) && e.detail.includes('cannot run /nonexistent/shoal'));
  // the broker exits before it is ready: its exit status and stderr
  await assert.rejects(Manager.start({ ...startPlace, dataDir: '/dev/null/x' }), (e) =>
    code('ESYS')(e) && e.detail.includes('exited before it was ready (exit status 3)') &&
    e.detail.includes('/dev/null/x'));
  // neither $SHOAL_CLI nor `shoal` on the PATH
  const saved = [process.env.SHOAL_CLI, process.env.PATH];
  process.env.SHOAL_CLI = '';
  process.env.PATH = '/nonexistent';
  try {
    await assert.rejects(Manager.start(startPlace), (e) =>
      code('ENOENT')(e) && e.detail.includes('the `shoal` command') && e.detail.includes('set SHOAL_CLI'));
  } finally {
    [process.env.SHOAL_CLI, process.env.PATH] = saved;
  }
});

test('Manager.start: the broker ends with its SIGKILLed parent', async () => {
  const script = `const { Manager } = require(${JSON.stringify(path.join(__dirname, '..'))});
    Manager.start(${JSON.stringify(startPlace)}).then((m) => {
      m.dict(null, { name: 'd' }).set('k', 1);
      console.log('broker', m.brokerPid, m.address);
      setInterval(() => {}, 1000); // killed here
    });`;
  const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    p.on('exit', (c) => reject(new Error(`the child exited (${c}): ${out}`)));
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out);
    });
  });
  p.removeAllListeners('exit');
  const [, pid, address] = line.trim().split(' ');
  assert.ok(running(Number(pid)));
  const exited = new Promise((r) => p.on('exit', r));
  p.kill('SIGKILL');
  await exited;
  assert.ok(await within(10000, () => !running(Number(pid))), `the broker ${pid} outlived its parent`);
  // It stopped cleanly: nothing of its own left. The killed client's own pipe
  // (NAME:cPID.N) may stay when the broker stopped before it saw that client die, as
  // after any SIGKILLed client: `shoal gc` removes it (here, the test does).
  const clientPipe = `${address.slice('shm://'.length)}:c${p.pid}.`;
  const own = () => segmentsOf(address).filter((f) => !f.startsWith(clientPipe));
  assert.ok(await within(5000, () => own().length === 0), `it left ${own()}`);
  for (const f of segmentsOf(address)) require('fs').unlinkSync(path.join(root, 'nodestart', f));
});
