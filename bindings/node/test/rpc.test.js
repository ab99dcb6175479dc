'use strict';
// Node clients (the shoal package's rpc module and the GenClient `shoal gen --lang
// node` emits) of a C server (tests/rpc's svcpeer serving svct.Gen, $SHOAL_RPC_PEER)
// in another process, over shm:// and, when libshoal has nng ($SHOAL_RPC_NNG=1),
// tcp:// with a token: the four kinds of call, metadata both ways, error codes,
// deadlines, cancellation, invalid requests, and a dead server.
//
// svct.Gen: Ask(Fix) -> Enc {n + 1, text + the "who" metadata, items {n, n}}, n == -1
// fails FAILED_PRECONDITION; Count(Enc) -> n Fix 0..n-1 (20 ms apart when text is
// "slow"); Sum(stream Fix) -> the sum; Chat(stream Enc) -> each back with n * 2;
// Wait(Fix) waits until the call ends; Missing has no handler. The generated client
// and handlers are typed: Fix, a fixed message, is the generated class over its C
// layout, Enc, an encoded message, the generated class of plain properties; both
// travel as their protobuf form (raw calls below send Enc's bytes).
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const fs = require('fs');
const readline = require('readline');
const { rpc } = require('..');
const path = require('path');
const { opts } = require('./util');
const { generate } = require('./gen');

const GEN = generate('rpc');
const { Enc, Fix, GenClient, addGenService } = require(path.join(GEN, 'svct_shoal.js'));

const { Channel, Code, Kind, RpcError } = rpc;
const PEER = process.env.SHOAL_RPC_PEER;
const TOKEN = 'rpc-test-token';
const SVC = 'svct.Gen';
const SEC = 60000;

// ---- messages ----------------------------------------------------------------------

/** The protobuf bytes of an Enc (the generated class of an encoded message), for raw calls. */
function encode({ n = 0, text = '', items = [] }) {
  return new Enc({ n, text, items }).toPb();
}

/** The fields of an Enc, or of the protobuf bytes of one. */
function decode(x) {
  const m = x instanceof Enc ? x : Enc.fromPb(x);
  return { n: m.n, text: m.text, items: m.items };
}

/** A Fix with n and text. */
function fix(n, text = '') {
  const m = new Fix();
  m.n = n;
  m.text = text;
  return m;
}

// ---- the C server ----------------------------------------------------------------

let serial = 0;
function addresses() {
  const a = [`shm://node-rpc-${process.pid}-${serial++}`];
  if (process.env.SHOAL_RPC_NNG === '1') a.push(`tcp://127.0.0.1:${20000 + ((process.pid * 11 + serial++ * 17) % 12000)}`);
  return a;
}

/** Starts svcpeer on the addresses; resolves once it is ready, with `.lines` (an
 * async iterator over what it prints next) and `.proc`. */
async function peer(addrs) {
  const proc = spawn(PEER, ['server', ...addrs], {
    env: { ...process.env, SHOAL_ROOT: opts().root, SHOAL_DOMAIN: opts().domain },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => proc.kill('SIGKILL')); // even when this process fails
  const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  assert.strictEqual(first.value, 'ready');
  return { proc, lines, next: async () => (await lines.next()).value };
}

const open = (a) => Channel.open(a, { token: TOKEN, connectTimeout: SEC, ...opts() });
const isCode = (code) => (e) => e instanceof RpcError && e.code === code;

test('Node client, C server: all kinds of call, errors, deadlines, cancel', { skip: !PEER && 'SHOAL_RPC_PEER not set' }, async () => {
  const addrs = addresses();
  const server = await peer(addrs);
  try {
    for (const a of addrs) {
      const ch = await open(a);
      // unary with metadata both ways
      const call = ch.start(SVC, 'Ask', Kind.UNARY, encode({ n: 41, text: 'hi ' }), { timeout: SEC, metadata: { who: 'node' } });
      assert.deepStrictEqual(decode(await call.response()), { n: 42, text: 'hi node', items: [41, 41] });
      const st = await call.finish();
      assert.deepStrictEqual(st.headers, [['who', 'node']]);
      assert.deepStrictEqual(st.trailers, [['served-by', 'c']]);
      call.free();
      // the generated client: Fix and Enc typed
      const gen = new GenClient(ch);
      assert.strictEqual(GenClient.SERVICE, SVC);
      assert.deepStrictEqual(decode(await gen.ask(fix(1, 'typed'), { timeout: SEC })), { n: 2, text: 'typed', items: [1, 1] });
      await assert.rejects(gen.missing(fix(1)), isCode(Code.UNIMPLEMENTED));
      const counted = [];
      for await (const m of gen.count(new Enc({ n: 3 }))) {
        assert.ok(m instanceof Fix);
        counted.push(m.n);
      }
      assert.deepStrictEqual(counted, [0, 1, 2]);
      const s3 = gen.sum({ timeout: SEC });
      for (const n of [1, 2, 3]) await s3.send(fix(n));
      const total = await s3.response();
      assert.ok(total instanceof Fix);
      assert.strictEqual(total.n, 6);
      s3.free();
      const c1 = gen.chat();
      await c1.send(new Enc({ n: 5, text: 'é', items: [-1, 2] }));
      const back = await c1.recv();
      assert.ok(back instanceof Enc);
      assert.deepStrictEqual(decode(back), { n: 10, text: 'é', items: [-1, 2] });
      await assert.rejects(c1.send(new Enc({ n: 'five' })), (e) => isCode(Code.INVALID_ARGUMENT)(e) && /svct\.Enc\.n/.test(e.details));
      await assert.rejects(c1.send(encode({ n: 1 })), isCode(Code.INVALID_ARGUMENT)); // bytes, not an Enc
      c1.free();
      // typed messages that are invalid: refused before anything is sent
      const bad = fix(1);
      bad.view.setUint32(4, 32, true); // text's length over its max_len 31
      await assert.rejects(gen.ask(bad), (e) => isCode(Code.INVALID_ARGUMENT)(e) && /svct\.Fix\.text/.test(e.details));
      await assert.rejects(gen.ask(encode({ n: 1 })), isCode(Code.INVALID_ARGUMENT)); // not a Fix
      const s4 = gen.sum({ timeout: SEC });
      await assert.rejects(s4.send(bad), isCode(Code.INVALID_ARGUMENT));
      s4.cancel();
      s4.free();
      // Fix's protobuf form: what the C peer encodes and decodes
      assert.deepStrictEqual(decode(fix(7, 'pb').toPb()), { n: 7, text: 'pb', items: [] });
      assert.strictEqual(Fix.fromPb(encode({ n: 9, text: 'x' })).text, 'x');
      assert.throws(() => Fix.fromPb(encode({ text: 'y'.repeat(32) })), (e) => e.code === 'EINVALID_DATA');
      // error codes
      await assert.rejects(ch.unary(SVC, 'Ask', encode({ n: -1 })), (e) => isCode(Code.FAILED_PRECONDITION)(e) && e.details === 'negative' && e.codeName === 'FAILED_PRECONDITION');
      await assert.rejects(ch.unary(SVC, 'Missing', encode({ n: 1 })), isCode(Code.UNIMPLEMENTED));
      await assert.rejects(ch.unary(SVC, 'Ask', Buffer.from([0xff, 0xff, 0xff]), { timeout: SEC }), isCode(Code.INVALID_ARGUMENT));
      // server streaming past the window, as an async iterator
      const got = [];
      for await (const m of ch.serverStreaming(SVC, 'Count', encode({ n: 40 }), { timeout: SEC })) got.push(decode(m).n);
      assert.deepStrictEqual(got, [...Array(40).keys()]);
      // client streaming
      const sum = ch.clientStreaming(SVC, 'Sum', { timeout: SEC });
      for (let i = 0; i < 40; i++) await sum.send(encode({ n: i }));
      assert.strictEqual(decode(await sum.response()).n, 780);
      sum.free();
      // bidirectional, one in flight at a time
      const chat = ch.bidiStreaming(SVC, 'Chat', { timeout: SEC });
      for (let i = 0; i < 40; i++) {
        await chat.send(encode({ n: i, text: 'x', items: [i] }));
        assert.deepStrictEqual(decode(await chat.recv()), { n: 2 * i, text: 'x', items: [i] });
      }
      await chat.closeSend();
      assert.strictEqual(await chat.recv(), null);
      assert.strictEqual((await chat.finish()).code, Code.OK);
      chat.free();
      // deadline: the handler sees it pass too; a deadline already passed
      const t0 = Date.now();
      await assert.rejects(ch.unary(SVC, 'Wait', encode({ n: 1 }), { timeout: 200 }), isCode(Code.DEADLINE_EXCEEDED));
      assert.ok(Date.now() - t0 >= 190);
      assert.strictEqual(await server.next(), 'cancelled Wait');
      await assert.rejects(ch.unary(SVC, 'Ask', encode({ n: 1 }), { deadline: Date.now() - 1 }), isCode(Code.DEADLINE_EXCEEDED));
      // cancel reaches the streaming handler, while a recv waits
      const slow = ch.serverStreaming(SVC, 'Count', encode({ n: 1000, text: 'slow' }), { timeout: SEC });
      assert.strictEqual(decode(await slow.recv()).n, 0);
      slow.cancel();
      await assert.rejects(async () => {
        for (;;) if ((await slow.recv()) === null) break;
      }, isCode(Code.CANCELLED));
      slow.free();
      assert.strictEqual(await server.next(), 'cancelled Count');
      // the event loop stays free while a call waits
      const wait = ch.unary(SVC, 'Wait', encode({ n: 1 }), { timeout: 300 });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      await assert.rejects(wait, isCode(Code.DEADLINE_EXCEEDED));
      clearInterval(timer);
      assert.ok(ticks >= 5, `${ticks} timer ticks during a 300 ms call`);
      assert.strictEqual(await server.next(), 'cancelled Wait');
      ch.close();
    }
  } finally {
    server.proc.kill('SIGKILL');
  }
});

test('a server killed mid-stream gives UNAVAILABLE; no server, wrong token', { skip: !PEER && 'SHOAL_RPC_PEER not set' }, async () => {
  await assert.rejects(Channel.open(`shm://node-none-${process.pid}`, opts()), (e) => e.code === 'ENOENT');
  const addrs = addresses();
  const server = await peer(addrs);
  if (addrs.length > 1) await assert.rejects(Channel.open(addrs[1], { token: 'wrong-token-here', connectTimeout: SEC }), (e) => e.code === 'EACCES');
  const ch = await open(addrs[0]);
  const slow = ch.serverStreaming(SVC, 'Count', encode({ n: 1000, text: 'slow' }), { timeout: SEC });
  assert.strictEqual(decode(await slow.recv()).n, 0);
  server.proc.kill('SIGKILL');
  const t0 = Date.now();
  await assert.rejects(async () => {
    for (;;) if ((await slow.recv()) === null) break;
  }, isCode(Code.UNAVAILABLE));
  assert.ok(Date.now() - t0 < 20000);
  slow.free();
  ch.close();
});

// ---- a Node server of svct.Gen, through the generated addGenService ------------------

function nodeServer(addrs, events) {
  const server = new rpc.Server(opts());
  server.setToken(TOKEN);
  for (const a of addrs) server.addPort(a);
  addGenService(server, {
    ask: async (req, call) => {
      assert.ok(req instanceof Fix);
      if (req.n === -1) throw new RpcError(Code.FAILED_PRECONDITION, 'negative');
      const who = call.metadata.find(([k]) => k === 'who')?.[1];
      if (who) call.addHeader('who', who);
      call.addTrailer('served-by', 'node');
      return new Enc({ n: req.n + 1, text: req.text + (who ?? ''), items: [req.n, req.n] });
    },
    count: async (m, call) => {
      assert.ok(m instanceof Enc);
      for (let i = 0; i < m.n; i++) {
        try {
          await call.send(fix(i));
        } catch (e) {
          events.push('cancelled Count');
          throw e;
        }
        if (m.text === 'slow') await new Promise((r) => setTimeout(r, 20));
      }
    },
    sum: async (call) => {
      let n = 0;
      for await (const m of call) n += m.n;
      return fix(n);
    },
    chat: async (call) => {
      for await (const m of call) {
        m.n *= 2;
        await call.send(m);
      }
    },
    wait: async (req, call) => {
      while (!call.isCancelled()) await new Promise((r) => setTimeout(r, 2));
      events.push('cancelled Wait');
      throw new RpcError(Code.CANCELLED, 'cancelled');
    },
  });
  server.start();
  return server;
}

test('C client, Node server: every check of the C peer', { skip: !PEER && 'SHOAL_RPC_PEER not set' }, async () => {
  const addrs = addresses();
  const events = [];
  const server = nodeServer(addrs, events);
  try {
    for (const a of addrs) {
      const out = await new Promise((resolve, reject) => {
        const p = spawn(PEER, ['client', a], {
          env: { ...process.env, SHOAL_ROOT: opts().root, SHOAL_DOMAIN: opts().domain },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let text = '';
        p.stdout.on('data', (d) => (text += d));
        p.on('error', reject);
        p.on('exit', (code) => resolve({ code, text }));
      });
      assert.strictEqual(out.code, 0, out.text);
      for (const check of ['ask', 'ask_fails', 'missing', 'deadline', 'count', 'cancel', 'sum', 'chat'])
        assert.ok(out.text.split('\n').includes(`ok ${check}`), `${check}:\n${out.text}`);
    }
    // a Node client in this process, through the generated client
    const ch = await open(addrs[0]);
    const gen = new GenClient(ch);
    const call = ch.start(SVC, 'Ask', Kind.UNARY, encode({ n: 1, text: 'a' }), { metadata: { who: 'b' } });
    assert.deepStrictEqual(decode(await call.response()), { n: 2, text: 'ab', items: [1, 1] });
    assert.deepStrictEqual((await call.finish()).trailers, [['served-by', 'node']]);
    call.free();
    // what is no valid Fix never reaches the typed handler: INVALID_ARGUMENT
    await assert.rejects(ch.unary(SVC, 'Ask', Buffer.from([0x0a])), isCode(Code.INVALID_ARGUMENT));
    await assert.rejects(ch.unary(SVC, 'Ask', encode({ n: 1, text: 'z'.repeat(32) })), (e) => isCode(Code.INVALID_ARGUMENT)(e) && /svct\.Fix/.test(e.details));
    const sum = ch.clientStreaming(SVC, 'Sum', { timeout: SEC });
    await sum.send(encode({ n: 1 }));
    await sum.send(Buffer.from([0xff]));
    await assert.rejects(sum.response(), isCode(Code.INVALID_ARGUMENT));
    sum.free();
    // typed calls against the typed Node server
    assert.deepStrictEqual(decode(await gen.ask(fix(3, 'n'), { timeout: SEC })), { n: 4, text: 'n', items: [3, 3] });
    const s5 = gen.sum({ timeout: SEC });
    await s5.send(fix(4));
    await s5.send(fix(5));
    assert.strictEqual((await s5.response()).n, 9);
    s5.free();
    ch.close();
    // an address in use
    if (addrs.length > 1) {
      const again = new rpc.Server().setToken(TOKEN).addPort(addrs[1]).addService(SVC, {});
      assert.throws(() => again.start(), (e) => e.code === 'EBUSY');
    }
  } finally {
    await server.stop();
  }
  assert.ok(events.includes('cancelled Wait') && events.includes('cancelled Count'), events.join());
});

test('the generated services match tests/rpc/golden (SHOAL_UPDATE_GOLDEN=1 rewrites them)', () => {
  const src = process.env.SHOAL_SOURCE_DIR || path.join(__dirname, '..', '..', '..');
  for (const [file, mark, golden] of [
    ['svct_shoal.js', '// ---- services ----', 'svct_services.js.golden'],
    ['svct_shoal.d.ts', "import { rpc } from 'shoal';", 'svct_services.d.ts.golden'],
  ]) {
    const text = fs.readFileSync(path.join(GEN, file), 'utf8');
    const got = text.slice(text.indexOf(mark));
    const want = path.join(src, 'tests', 'rpc', 'golden', golden);
    if (process.env.SHOAL_UPDATE_GOLDEN) fs.writeFileSync(want, got);
    assert.strictEqual(got, fs.readFileSync(want, 'utf8'), `${want}: rerun with SHOAL_UPDATE_GOLDEN=1 if the change is intended`);
  }
});
