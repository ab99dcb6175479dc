'use strict';
// The Node binding against the real library: every object, its errors, and several
// processes at once (test/child.js).
const test = require('node:test');
const assert = require('node:assert');
const shoal = require('..');
const { opts, fresh, child, childAt, killWhenStopped } = require('./util');

const code = (c) => (e) => e instanceof shoal.ShoalError && e.code === c;
// Generous: child processes start slowly on a loaded machine or under a sanitizer.
const LONG = 120000;

test('errors name the object', () => {
  assert.throws(() => new shoal.Value('i', 0, opts({ name: 'no-such', mode: 'open' })), (e) =>
    code('ENOENT')(e) && e.errno === -3 && e.detail.includes('no-such'));
  assert.throws(() => new shoal.Value('i', 0, opts({ name: 'a/b' })), code('ENAME'));
  assert.throws(() => new shoal.Value('x', 0, opts()), code('EINVAL'));
  const v = new shoal.Value('i', 5, fresh('err.int'));
  assert.throws(() => new shoal.Value('i', 0, opts({ name: 'err.int', mode: 'create' })), code('EEXIST'));
  assert.throws(() => new shoal.Value('d', 0, opts({ name: 'err.int', mode: 'open' })), (e) =>
    code('ELAYOUT')(e) && e.detail.includes('int32') && e.detail.includes('float64'));
  assert.throws(() => new shoal.Queue('i', opts({ name: 'err.int', mode: 'open' })), code('EKIND'));
  assert.strictEqual(v.value, 5);
  v.close();
  assert.throws(() => v.get(), code('ECLOSED'));
  shoal.unlink('err.int', opts());
  assert.throws(() => shoal.unlink('err.int', opts()), code('ENOENT'));
});

test('Value and Array across processes', async () => {
  const v = new shoal.Value('q', 0n, fresh('val.total'));
  const a = new shoal.Array('i', [10, 20, 30], fresh('val.total.arr'));
  const kids = await Promise.all([1, 2, 3, 4].map(() => child('adder', 'val.total')));
  for (const k of kids) assert.strictEqual(k.code, 0);
  assert.strictEqual(v.load(), 8000n);
  assert.deepStrictEqual(a.toArray(), [14, 24, 34]);
  assert.strictEqual(v.exchange(5n), 8000n);
  assert.deepStrictEqual(v.compareExchange(5n, 6n), { ok: true, current: 5n });
  assert.deepStrictEqual(v.compareExchange(5n, 7n), { ok: false, current: 6n });
  v.value = -1n;
  const lock = v.getLock();
  assert.ok(await lock.acquire(1000));
  v.value = v.value * 2n; // the lock is recursive
  lock.release();
  assert.strictEqual(v.snapshot(), -2n);
  assert.throws(() => a.get(3), code('ERANGE'));
  a.set(1, 7);
  assert.deepStrictEqual(a.read(1, 2), [7, 34]);
  assert.throws(() => new shoal.Array('i', 4, opts({ name: 'val.total.arr', mode: 'open' })), code('ELAYOUT'));
  const d = new shoal.Value('d', 0.5, opts({ lock: false }));
  assert.strictEqual(d.getLock(), null);
  assert.strictEqual(d.value, 0.5);
  assert.throws(() => d.add(1), code('ETYPE'));
  for (const o of [v, a, d]) o.close();
  shoal.unlink('val.total', opts());
  shoal.unlink('val.total.arr', opts());
});

test('Queue: each message once, async iteration, end of stream', async () => {
  const q = new shoal.Queue('q', fresh('q.mpmc', { capacity: 64 }));
  assert.strictEqual(q.tryGet(), undefined);
  await assert.rejects(q.get(5), code('ETIMEDOUT'));
  const kids = Promise.all([1, 2, 3].map((id) => child('producer', `q.mpmc,${id}`)));
  const seen = new Set();
  for (let i = 0; i < 9000; i++) {
    const m = await q.get(LONG);
    assert.ok(!seen.has(m), `duplicate ${m}`);
    seen.add(m);
  }
  for (const k of await kids) assert.strictEqual(k.code, 0);
  assert.strictEqual(seen.size, 9000);
  for (let id = 1n; id <= 3n; id++) for (let i = 0n; i < 3000n; i++) assert.ok(seen.has(id * 1000000n + i));
  assert.ok(q.tryPut(1n));
  await q.put(2n);
  assert.strictEqual(q.stats().depth, 2);
  q.shutdown();
  await assert.rejects(q.put(3n), code('ECLOSED'));
  const rest = [];
  for await (const m of q) rest.push(m);
  assert.deepStrictEqual(rest, [1n, 2n]);
  await assert.rejects(q.get(), code('EEOF'));
  q.close();
  shoal.unlink('q.mpmc', opts());
});

test('a process killed inside put or get loses and duplicates nothing', async () => {
  const q = new shoal.Queue('q', fresh('q.crash', { capacity: 16 }));
  await q.put(1n);
  // A producer killed with its message written into a reserved slot, not committed.
  assert.strictEqual((await killWhenStopped(childAt('queue.reserved', 'put_one', 'q.crash'))).signal, 'SIGKILL');
  // A consumer killed after copying message 1 out, before freeing its slot.
  assert.strictEqual((await killWhenStopped(childAt('queue.claimed', 'get_one', 'q.crash'))).signal, 'SIGKILL');
  await q.put(3n);
  assert.strictEqual(await q.get(LONG), 1n, "the dead consumer's message is delivered again");
  assert.strictEqual(await q.get(LONG), 3n, "the dead producer's message never appears");
  await assert.rejects(q.get(200), code('ETIMEDOUT'));
  q.close();
  shoal.unlink('q.crash', opts());
});

test('Queue of bytes; a waiting get does not block the event loop', async () => {
  const q = new shoal.Queue(null, opts({ maxMsg: 16, capacity: 4 }));
  let settled = false;
  const pending = q.get(LONG).finally(() => (settled = true));
  // Were the wait blocking the event loop, this timer could only fire after it ended.
  await new Promise((r) => setTimeout(r, 20));
  assert.strictEqual(settled, false);
  await q.put('hello');
  assert.strictEqual((await pending).toString(), 'hello');
  await assert.rejects(q.put(Buffer.alloc(17)), code('EMSGSIZE'));
  q.close();
});

test('Pipe: echo, end of stream, dead peer', async () => {
  for (const [name, crash] of [['pipe.echo', false], ['pipe.crash', true]]) {
    const p = shoal.Pipe.open(name, 0, fresh(name, { maxMsg: 256, capacity: 16 }));
    const kid = child('echo', name);
    for (let i = 0; i < 50; i++) {
      await p.send(`m${i}`, LONG);
      assert.strictEqual((await p.recv(LONG)).toString(), `m${i}`);
    }
    await p.send(crash ? 'crash' : 'bye');
    await assert.rejects(p.recv(LONG), code(crash ? 'EPEERDEAD' : 'EEOF'));
    const k = await kid;
    assert.strictEqual(k.code === 0, !crash);
    p.close();
    shoal.unlink(name, opts());
  }
  const [a, b] = shoal.Pipe.pair(opts({ maxMsg: 8 }));
  await assert.rejects(a.send(Buffer.alloc(9)), code('EMSGSIZE'));
  assert.strictEqual(await b.poll(0), false);
  await a.send('ping');
  assert.strictEqual(await b.poll(1000), true);
  assert.strictEqual((await b.recv()).toString(), 'ping');
  b.close();
  await assert.rejects(a.recv(1000), code('EEOF'));
  a.close();
});

test('Lock: owner died, timeouts, RLock', async () => {
  const l = new shoal.Lock(fresh('lock.dead'));
  const ev = new shoal.Event(fresh('lock.dead.ev'));
  const kid = child('die_holding', 'lock.dead');
  assert.ok(await ev.wait(LONG));
  assert.strictEqual((await kid).signal, 'SIGKILL');
  assert.ok(await l.acquire(LONG));
  assert.strictEqual(l.ownerDied, true);
  assert.throws(() => l.acquireSync(0), code('EDEADLK'));
  l.release();
  assert.ok(l.acquireSync(1000));
  assert.strictEqual(l.ownerDied, false);
  l.release();
  const r = new shoal.RLock(opts());
  assert.ok(r.acquireSync() && r.acquireSync());
  r.release();
  r.release();
  assert.strictEqual(r.locked(), false);
  const got = await l.with(() => 42);
  assert.strictEqual(got, 42);
  for (const o of [l, ev, r]) o.close();
  shoal.unlink('lock.dead', opts());
  shoal.unlink('lock.dead.ev', opts());
});

test('Semaphore, Event, Barrier, Condition', async () => {
  const s = new shoal.BoundedSemaphore(1, opts());
  assert.ok(await s.acquire());
  assert.strictEqual(s.tryAcquire(), false);
  assert.strictEqual(await s.acquire(5), false);
  s.release();
  assert.throws(() => s.release(), code('EOVERFLOW'));
  assert.strictEqual(s.value, 1);
  const ev = new shoal.Event(opts());
  assert.strictEqual(await ev.wait(5), false);
  const later = ev.wait(5000);
  ev.set();
  assert.strictEqual(await later, true);
  assert.ok(ev.isSet());
  const b = new shoal.Barrier(2, opts());
  const [i, j] = await Promise.all([b.wait(5000), b.wait(5000)]);
  assert.deepStrictEqual([i, j].sort(), [0, 1]);
  await assert.rejects(b.wait(10), code('ETIMEDOUT'));
  assert.strictEqual(b.broken, true);
  b.reset();
  assert.strictEqual(b.broken, false);
  const c = new shoal.Condition(null, opts());
  assert.ok(c.lock.acquireSync());
  assert.strictEqual(c.waitSync(5), false);
  c.notifyAll();
  c.lock.release();
  for (const o of [s, ev, b, c]) o.close();
});

test('SharedMemory is a zero-copy view', async () => {
  const m = new shoal.SharedMemory(fresh('shm.block', { size: 4096 }));
  assert.strictEqual(m.size, 4096);
  const b = new Uint8Array(m.buffer);
  b.set(Buffer.from('hello'));
  assert.strictEqual((await child('shm', 'shm.block')).code, 0);
  assert.strictEqual(Buffer.from(b.subarray(100, 105)).toString(), 'world');
  m.close();
  shoal.unlink('shm.block', opts());
});
