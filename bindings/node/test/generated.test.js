'use strict';
// The code `shoal gen --lang node` writes, loaded and used: layout numbers and the
// hash, proto2 defaults, accessors, validation with the C messages, and typed objects
// refusing another build of a schema.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const shoal = require('..');
const { opts, fresh } = require('./util');
const { generate } = require('./gen');

const dir = generate('generated');
const { Order, Side } = require(path.join(dir, 'orders_shoal.js'));
const { v2_Order } = require(path.join(dir, 'orders_v2_shoal.js'));
const { Everything, Scalars, Level } = require(path.join(dir, 'features_shoal.js'));
const { Defaults, Kind } = require(path.join(dir, 'features2_shoal.js'));

const invalid = (detail) => (e) => e instanceof shoal.ShoalError && e.code === 'EINVALID_DATA' && e.detail === detail;

function fnv1a(s) {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

test('layout: sizes, offsets and hash as the C code has them', () => {
  const canon = 'orders.Order{1:id:int64@0+8;2:symbol:string[8]@8+12;3:price:float64@24+8;' +
    '4:quantity:uint32@32+4;5:side:enum(orders.Side)@36+4;6:fills:uint32*4@40+20;}size=64,align=8';
  assert.strictEqual(fnv1a(canon), 0xbf38098f87e9011an);
  assert.strictEqual(Order.LAYOUT_HASH, 0xbf38098f87e9011an);
  assert.strictEqual(Order.SIZE, 64);
  assert.deepStrictEqual(shoal.typeInfo(Order), { name: 'orders.Order', size: 64, align: 8, hash: 0xbf38098f87e9011an });
  // Each accessor writes where the C struct has the field (docs/schema.md 3.2).
  const o = new Order();
  o.id = 0x0102030405060708n;
  o.symbol = 'AB';
  o.price = 1.5;
  o.quantity = 7;
  o.side = Side.SELL;
  o.fills = [9, 10];
  const dv = new DataView(o.bytes.buffer);
  assert.strictEqual(dv.getBigInt64(0, true), 0x0102030405060708n);
  assert.strictEqual(dv.getUint32(8, true), 2);
  assert.strictEqual(Buffer.from(o.bytes.subarray(12, 14)).toString(), 'AB');
  assert.strictEqual(dv.getFloat64(24, true), 1.5);
  assert.strictEqual(dv.getUint32(32, true), 7);
  assert.strictEqual(dv.getInt32(36, true), 2);
  assert.strictEqual(dv.getUint32(40, true), 2);
  assert.strictEqual(dv.getUint32(48, true), 10);
  assert.strictEqual(Everything.SIZE, Everything.shoalType.size);
  assert.strictEqual(shoal.typeInfo(Everything).size, Everything.SIZE);
});

test('proto2 defaults', () => {
  const d = new Defaults();
  assert.strictEqual(d.answer, 42);
  assert.strictEqual(d.big, -9223372036854775808n);
  assert.strictEqual(d.ubig, 18446744073709551615n);
  assert.strictEqual(d.ratio, 0.5);
  assert.strictEqual(d.top, Infinity);
  assert.ok(Number.isNaN(d.missing));
  assert.strictEqual(d.on, true);
  assert.strictEqual(d.name, 'shoal');
  assert.deepStrictEqual(Array.from(d.magic), [1, 255, 0x71]);
  assert.strictEqual(d.kind, Kind.FIRST);
  assert.strictEqual(d.second, Kind.SECOND);
  assert.strictEqual(d.has_answer, false);
  d.answer = 1;
  assert.strictEqual(d.has_answer, true);
  d.validate();
});

test('accessors and validation', () => {
  const o = new Order();
  o.symbol = 'ACME';
  assert.throws(() => (o.symbol = 'TOOLONGSYM'), invalid('orders.Order.symbol: length 10 over max_len 8'));
  assert.strictEqual(o.symbol, 'ACME');
  assert.throws(() => (o.fills = [1, 2, 3, 4, 5]), invalid('orders.Order.fills: count 5 over max_count 4'));
  o.side = 7;
  assert.throws(() => o.validate(), invalid('orders.Order.side: 7 is not a value of orders.Side'));
  o.side = Side.BUY;
  o.view.setUint32(8, 200, true);
  assert.throws(() => o.validate(), invalid('orders.Order.symbol: length 200 over max_len 8'));
  assert.strictEqual(o.symbol.length, 8, 'reads never run past the capacity');

  const s = new Scalars();
  s.view.setUint8(88, 2);
  assert.throws(() => s.validate(), invalid('feat.Scalars.f_bool: a bool holds neither 0 nor 1'));
  s.f_bool = true;
  s.f_enum = Level.TOP;
  s.f_bytes = Uint8Array.of(1, 2, 3);
  s.validate();

  const e = new Everything();
  e.validate();
  e.inner.view.setUint32(4, 4, true); // the nested message is a live view
  assert.throws(() => e.validate(), invalid('feat.Everything.Inner.tag: length 4 over max_len 3'));
  e.inner.tag = Uint8Array.of(7);
  assert.deepStrictEqual(Array.from(e.inner.tag), [7]);
  e.c_text = 'nine';
  assert.strictEqual(e.choice_case, 13);
  assert.strictEqual(e.c_text, 'nine');
  assert.strictEqual(e.c_int, undefined);
  e.choice_case = 99;
  assert.throws(() => e.validate(), invalid('feat.Everything.choice: unknown case 99'));
  e.c_int = -5n;
  assert.strictEqual(e.c_int, -5n);
  e.r_string = ['a', 'bcd'];
  assert.deepStrictEqual(e.r_string, ['a', 'bcd']);
  assert.throws(() => (e.r_string = ['abcde']), invalid('feat.Everything.r_string: length 5 over max_len 4'));
  e.maybe_text = 'hey';
  assert.strictEqual(e.has_maybe_text, true);
  e.origin.label = 'home';
  assert.strictEqual(e.origin.label, 'home');
  e.validate();
  assert.strictEqual(JSON.stringify(e.toJSON(), (k, v) => (typeof v === 'bigint' ? String(v) : v)).includes('"home"'), true);
});

test('typed objects validate and refuse another layout', async () => {
  const o = new Order();
  o.id = 7n;
  o.symbol = 'XYZ';
  const v = new shoal.Value(Order, o, fresh('gen.order'));
  assert.strictEqual(v.value.id, 7n);
  const bad = o.clone();
  bad.side = 9;
  assert.throws(() => (v.value = bad), (e) => e.code === 'EINVALID_DATA');
  assert.strictEqual(v.snapshot().symbol, 'XYZ');
  assert.throws(() => new shoal.Value(v2_Order, null, opts({ name: 'gen.order', mode: 'open' })), (e) =>
    e.code === 'ELAYOUT' &&
    e.detail.includes(`orders.Order#${Order.LAYOUT_HASH.toString(16).padStart(16, '0')}`) &&
    e.detail.includes(`orders.Order#${v2_Order.LAYOUT_HASH.toString(16).padStart(16, '0')}`));
  v.close();
  shoal.unlink('gen.order', opts());

  const q = new shoal.Queue(Everything, opts({ capacity: 4 }));
  const e = new Everything();
  e.r_int32 = [1, 2];
  await q.put(e);
  const got = await q.get(1000);
  assert.ok(got instanceof Everything);
  assert.deepStrictEqual(got.r_int32, [1, 2]);
  e.view.setUint32(Everything.shoalType.fields.find((f) => f[0] === 'r_level')[3], 3, true);
  await assert.rejects(q.put(e), invalid('feat.Everything.r_level: count 3 over max_count 2'));
  q.close();
});

test('protobuf form: toPb is what protoc reads, fromPb gives the message back', { skip: !process.env.SHOAL_PROTOC && 'SHOAL_PROTOC not set' }, () => {
  const { execFileSync } = require('child_process');
  const src = process.env.SHOAL_SOURCE_DIR || path.join(__dirname, '..', '..', '..');
  const e = new Everything();
  e.inner.tag = Uint8Array.of(7, 8);
  e.origin.x = -3;
  e.origin.label = 'home';
  e.r_int32 = [1, -2, 300];
  e.r_string = ['a', 'bcd'];
  e.c_text = 'nine';
  e.maybe_text = 'hey';
  e.default = 42;
  const pb = e.toPb();
  const text = execFileSync(process.env.SHOAL_PROTOC, [
    '--decode=feat.Everything', `-I${path.join(src, 'tests/codegen/proto')}`, `-I${path.join(src, 'schemas')}`, 'features.proto',
  ], { input: pb, cwd: path.join(src, 'tests/codegen/proto'), encoding: 'utf8' });
  for (const want of ['tag: "\\007\\010"', 'x: -3', 'label: "home"', 'r_int32: 300', 'r_int32: -2', 'r_string: "bcd"', 'c_text: "nine"', 'maybe_text: "hey"', 'default: 42'])
    assert.ok(text.includes(want), `${want} in:\n${text}`);
  assert.ok(!text.includes('maybe:'), 'an optional field not set is not sent');
  const back = Everything.fromPb(pb);
  assert.deepStrictEqual(Buffer.from(back.bytes), Buffer.from(e.bytes));
  assert.throws(() => Everything.fromPb(Uint8Array.of(0x42, 5, 1)), (x) => x.code === 'EINVALID_DATA');
  e.view.setUint32(Everything.shoalType.fields.find((f) => f[0] === 'r_level')[3], 3, true);
  assert.throws(() => e.toPb(), invalid('feat.Everything.r_level: count 3 over max_count 2'));
});
