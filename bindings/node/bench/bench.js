'use strict';
// The Node binding's benchmark cases, for bench/run.py: `node bench.js CASE SIZE COUNT`
// prints one `RESULT case=... size=... count=... key=value` line, as the C programs of
// bench/ do.
//
//   node_queue_struct  throughput of the generated 64-byte Order through an SPSC Queue
//                      of 1024 slots, producer and consumer processes (the consumer's
//                      get resolves from the non-blocking try while messages wait)
//   node_pipe_rtt      round trip of a SIZE-byte message over a Pipe between two
//                      processes, both polling (a spin budget of 10 s, as the C
//                      case's; median and p99 of COUNT samples)
//   node_value_add     Value('q').add(1), one process
//   node_lock          Lock acquireSync + release, uncontended
//   node_broker_set    a Manager dict set of one key to a 3-byte value, through the
//                      broker at $SHOAL_BENCH_BROKER (started by the caller), SIZE at a
//                      time: SIZE 1 waits for each reply, more submits SIZE through a
//                      pipeline and then collects them (bench_broker set's DEPTH)
//   node_broker_get    a Manager dict get of that key (over shm://: the read view)
//
// The Order class is generated with $SHOAL_CLI (or `shoal` on the PATH) into a
// temporary directory. The other process is this script again (`--child`).
const { execFileSync, fork } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const shoal = require('..');

const domain = `bench-node-${process.env.SHOAL_BENCH_PARENT || process.pid}`;
const opts = (more) => ({ domain, ...more });

function orderClass() {
  const dir = process.env.SHOAL_BENCH_GEN || fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-node-bench-'));
  if (!process.env.SHOAL_BENCH_GEN) {
    const src = path.join(__dirname, '..', '..', '..', 'examples', 'orders');
    execFileSync(process.env.SHOAL_CLI || 'shoal', ['gen', '--lang', 'node', '-I', src, '-o', dir, path.join(src, 'orders.proto')]);
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'node_modules', 'shoal'), 'dir');
    process.env.SHOAL_BENCH_GEN = dir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return require(path.join(dir, 'orders_shoal.js')).Order;
}

function child(...args) {
  return fork(__filename, ['--child', ...args.map(String)], {
    env: { ...process.env, SHOAL_BENCH_PARENT: String(process.pid) },
  });
}

const exited = (p) => new Promise((res) => p.on('exit', res));

async function queueStruct(count) {
  const Order = orderClass();
  const q = new shoal.Queue(Order, opts({ name: 'q', mode: 'create', capacity: 1024, spsc: true }));
  const kid = child('produce', count);
  let last = await q.get(30000);
  const t0 = process.hrtime.bigint();
  for (let i = 1; i < count; i++) last = q.tryGet() ?? (await q.get());
  const dt = Number(process.hrtime.bigint() - t0);
  if (last.id !== BigInt(count - 1)) throw new Error(`last order ${last.id} of ${count}`);
  await exited(kid);
  console.log(`RESULT case=node_queue_struct size=64 count=${count} msgs_per_s=${((count - 1) * 1e9 / dt).toFixed(1)} elapsed_ns=${dt}`);
}

async function produce(count) {
  const Order = orderClass();
  const q = new shoal.Queue(Order, opts({ name: 'q', mode: 'open' }));
  const o = new Order();
  o.symbol = 'ACME';
  for (let i = 0; i < count; i++) {
    o.id = BigInt(i);
    if (!q.tryPut(o)) await q.put(o);
  }
}

async function pipeRtt(size, count) {
  shoal.setSpinNs(10e9);
  const p = shoal.Pipe.open('p', 0, opts({ mode: 'create', maxMsg: Math.max(size, 8), capacity: 64 }));
  const kid = child('echo', size);
  const msg = Buffer.alloc(size, 7);
  const samples = [];
  for (let i = 0; i < count + 100; i++) {
    const t0 = process.hrtime.bigint();
    await p.send(msg);
    await p.recv();
    if (i >= 100) samples.push(Number(process.hrtime.bigint() - t0));
  }
  await p.send(Buffer.alloc(0));
  await exited(kid);
  samples.sort((a, b) => a - b);
  const med = samples[samples.length >> 1];
  const p99 = samples[Math.min(samples.length - 1, Math.floor((samples.length * 99) / 100))];
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(`RESULT case=node_pipe_rtt size=${size} count=${count} median_ns=${med.toFixed(1)} p99_ns=${p99.toFixed(1)} mean_ns=${mean.toFixed(1)}`);
}

async function echo(size) {
  shoal.setSpinNs(10e9);
  const p = shoal.Pipe.open('p', 1, opts({ mode: 'open', maxMsg: Math.max(size, 8), capacity: 64 }));
  for (;;) {
    const m = await p.recv();
    if (m.length === 0) break;
    await p.send(m);
  }
  p.close();
}

function op(name, count) {
  let t0;
  if (name === 'node_value_add') {
    const v = new shoal.Value('q', 0n, opts());
    t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) v.add(1);
  } else {
    const l = new shoal.Lock(opts());
    t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      l.acquireSync();
      l.release();
    }
  }
  const dt = Number(process.hrtime.bigint() - t0);
  console.log(`RESULT case=${name} size=8 count=${count} ns_per_op=${(dt / count).toFixed(2)} elapsed_ns=${dt}`);
}

/** The dict cases of bench/bench_broker.c from Node: the same key, value and DEPTH. */
function brokerOp(name, depth, count) {
  const address = process.env.SHOAL_BENCH_BROKER;
  if (!address) return console.log(`SKIP case=${name} reason=no-SHOAL_BENCH_BROKER`);
  const m = shoal.Manager.connect(address);
  const d = m.dict(null, { name: `bench-node-${process.pid}` });
  const [key, value] = ['key:000000000042', 'xxx'];
  d.set(key, value);
  const p = m.pipeline();
  const t0 = process.hrtime.bigint();
  if (name === 'node_broker_get') {
    for (let i = 0; i < count; i++) if (d.get(key) !== value) throw new Error('get: wrong value');
  } else if (depth <= 1) {
    for (let i = 0; i < count; i++) d.set(key, value);
  } else {
    for (let i = 0; i < count; i += depth) {
      for (let j = 0; j < depth && i + j < count; j++) p.call(d, 'set', key, value);
      p.collect();
    }
  }
  const dt = Number(process.hrtime.bigint() - t0);
  const { hits } = m.viewStats();
  m.delete(d.name);
  m.close();
  console.log(`RESULT case=${name} depth=${depth} count=${count} ops_per_s=${(count * 1e9 / dt).toFixed(1)} view_hits=${hits} elapsed_ns=${dt}`);
}

async function main(argv) {
  if (argv[0] === '--child') return argv[1] === 'produce' ? produce(Number(argv[2])) : echo(Number(argv[2]));
  if (argv.length !== 3) {
    console.error('usage: node bench.js CASE SIZE COUNT');
    process.exit(2);
  }
  const [name, size, count] = [argv[0], Number(argv[1]), Math.max(2, Number(argv[2]))];
  try {
    if (name === 'node_queue_struct') await queueStruct(count);
    else if (name === 'node_pipe_rtt') await pipeRtt(size, count);
    else if (name === 'node_value_add' || name === 'node_lock') op(name, count);
    else if (name === 'node_broker_set' || name === 'node_broker_get') brokerOp(name, size, count);
    else console.log(`SKIP case=${name} reason=unknown-case`);
  } finally {
    for (const n of ['q', 'p']) try { shoal.unlink(n, opts()); } catch (e) { /* not made */ }
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(`bench.js: ${e.stack || e}`);
    process.exit(1);
  },
);
