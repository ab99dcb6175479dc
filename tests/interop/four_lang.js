'use strict';
// The Node side of the four-language test (see four_lang.c for the protocol).
//
//   node four_lang.js GEN_DIR writer LANG N
//   node four_lang.js GEN_DIR reader N
//   node four_lang.js GEN_DIR mismatch     open the queue with orders_v2's Order: must
//                                          be refused; prints the error's detail
//
// GEN_DIR holds the modules `shoal gen --lang node` made of orders.proto, tally.proto
// and orders_v2.proto (with node_modules/shoal reaching the package).
const path = require('path');

const [genDir, role, a, b] = process.argv.slice(2);
const shoal = require(path.join(genDir, 'node_modules', 'shoal'));
const { Order, Side } = require(path.join(genDir, 'orders_shoal.js'));
const { Tally } = require(path.join(genDir, 'tally_shoal.js'));
const { v2_Order } = require(path.join(genDir, 'orders_v2_shoal.js'));

const LANGS = ['c', 'python', 'rust', 'node'];
const TIMEOUT = 60000;

function openBoth() {
  const q = new shoal.Queue(Order, { name: 'four.orders', capacity: 256 });
  const v = new shoal.Value(Tally, null, { name: 'four.tally' });
  return [q, v];
}

async function writer(lang, n) {
  const [q, v] = openBoth();
  const lock = v.getLock();
  for (let i = 0; i < n; i++) {
    const o = new Order();
    o.id = BigInt(lang * 1000000 + i);
    o.symbol = LANGS[lang - 1];
    o.price = i * 0.5;
    o.quantity = i;
    o.side = i % 2 === 0 ? Side.BUY : Side.SELL;
    o.fills = [lang];
    await q.put(o, TIMEOUT);
    if (!(await lock.acquire(TIMEOUT))) throw new Error('tally lock: timed out');
    try {
      const t = v.value;
      t.total += o.id;
      t.adds += 1;
      const by = t.by_lang.length ? t.by_lang : [0, 0, 0, 0];
      by[lang - 1] += 1;
      t.by_lang = by;
      t.last = 'node';
      v.value = t;
    } finally {
      lock.release();
    }
  }
}

async function reader(n) {
  const [q, v] = openBoth();
  const seen = new Set();
  for await (const o of q) {
    const id = Number(o.id);
    const lang = Math.floor(id / 1000000);
    const i = id % 1000000;
    if (lang < 1 || lang > 4 || i >= n) throw new Error(`unexpected order id ${id}`);
    if (o.symbol !== LANGS[lang - 1] || o.quantity !== i || o.price !== i * 0.5 ||
        o.fills.length !== 1 || o.fills[0] !== lang || o.side !== (i % 2 === 0 ? Side.BUY : Side.SELL))
      throw new Error(`order ${id} garbled`);
    if (seen.has(id)) throw new Error(`order ${id} arrived twice`);
    seen.add(id);
  }
  if (seen.size !== 4 * n) throw new Error(`${seen.size} orders arrived, expected ${4 * n}`);
  const t = v.snapshot();
  let expect = 0n;
  for (let lang = 1n; lang <= 4n; lang++) expect += lang * 1000000n * BigInt(n) + BigInt((n * (n - 1)) / 2);
  if (t.total !== expect || t.adds !== 4 * n || t.by_lang.some((x) => x !== n))
    throw new Error(`tally total ${t.total} adds ${t.adds} by ${t.by_lang}, expected ${expect}`);
  console.log(`node reader: ${seen.size} orders exactly once, total ${t.total}`);
}

function mismatch() {
  try {
    new shoal.Queue(v2_Order, { name: 'four.orders', mode: 'open' });
  } catch (e) {
    if (e.code !== 'ELAYOUT') throw e;
    console.log(e.detail);
    return;
  }
  throw new Error('a queue of another Order layout opened');
}

const run = role === 'writer' ? writer(Number(a), Number(b)) : role === 'reader' ? reader(Number(a)) : mismatch();
Promise.resolve(run).then(
  () => process.exit(0),
  (e) => {
    console.error(`four_lang (node): ${e.stack || e}`);
    process.exit(1);
  },
);
