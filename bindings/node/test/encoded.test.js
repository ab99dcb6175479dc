'use strict';
// Encoded messages in Node: the generated classes of plain properties of messages that
// have no fixed layout, their protobuf codec (lib/pb.js), and their crossing to C.
//
// interop.Note (tests/interop/encoded_note.proto: unbounded string, sint64 list, map,
// open enum, oneof, nested message) goes through a queue of encoded messages between
// this process and the C helper of tests/interop (encoded_helper, $SHOAL_ENCODED_HELPER),
// both ways, every field compared; feat.Journal carries the schema's bounds (max_len,
// max_count) checked on encode and decode. Corrupt bytes (truncated, a wrong wire type,
// a length past the end, an overlong varint, a string that is not UTF-8, random
// mutations) throw EINVALID_DATA and nothing else.
const test = require('node:test');
const assert = require('node:assert');
const { execFile } = require('child_process');
const path = require('path');
const { Queue, Pipe, unlink } = require('..');
const { opts } = require('./util');
const { generate } = require('./gen');

const GEN = generate('encoded');
const { Note, Note_TagsEntry, Meta, Kind } = require(path.join(GEN, 'encoded_note_shoal.js'));
const { Journal, Tiny, Level } = require(path.join(GEN, 'features_shoal.js'));
const { Tree, Color } = require(path.join(GEN, 'encoded2_shoal.js'));
const HELPER = process.env.SHOAL_ENCODED_HELPER;
const SEC = 60000;

/** Note i, as make_note() in encoded_helper.c builds it. */
function note(i) {
  const n = new Note({
    seq: i,
    text: `note ${i} \u00e9`,
    values: [BigInt(-i), BigInt(i) * 1000000000000n],
    tags: [new Note_TagsEntry({ key: 'n', value: i }), new Note_TagsEntry({ key: 'neg', value: -i | 0 })],
    kind: i % 4, // 3: a number the open enum Kind does not name, kept
    meta: new Meta({ blob: Uint8Array.from([0, 0xff, i & 0xff]) }),
  });
  if (i % 2) n.why = `odd ${i}`;
  else n.code = BigInt(i * 7);
  return n;
}

/** A note as a plain object, its map entries in key order. */
function plain(n) {
  const o = n.toJSON();
  o.tags = [...o.tags].sort((a, b) => (a.key < b.key ? -1 : 1));
  o.meta = { blob: Array.from(n.meta.blob) };
  return o;
}

const isInvalid = (e) => e.code === 'EINVALID_DATA';

test('round trip, defaults and the oneof', () => {
  for (let i = 0; i < 20; i++) assert.deepStrictEqual(plain(Note.fromPb(note(i).toPb())), plain(note(i)));
  const n = new Note();
  assert.strictEqual(n.toPb().length, 0, 'proto3 defaults are not written');
  assert.deepStrictEqual([n.seq, n.text, n.values, n.tags, n.kind, n.meta, n.extra_case], [0, '', [], [], Kind.KIND_NONE, null, 0]);
  n.why = 'w';
  assert.strictEqual(n.extra_case, 6);
  n.code = 5n;
  assert.deepStrictEqual([n.extra_case, n.why, n.code], [7, undefined, 5n]);
  assert.deepStrictEqual(Array.from(new Tiny({ v: 150 }).toPb()), [0x08, 0x96, 0x01]);
  // int32 -1 takes ten bytes; sint64 packed zigzag
  const b = new Note({ seq: -1, values: [-1n, 1n] }).toPb();
  assert.deepStrictEqual(Array.from(b), [0x08, ...Array(9).fill(0xff), 0x01, 0x1a, 0x02, 0x01, 0x02]);
  // unpacked elements of a packed field, and an unknown field, are accepted
  assert.deepStrictEqual(Note.fromPb(Buffer.from([0x18, 0x04, 0x18, 0x03, 0xf8, 0x01, 0x05])).values, [2n, -2n]);
  // a singular nested message seen twice merges
  assert.deepStrictEqual(Array.from(Note.fromPb(Buffer.from([0x42, 0x03, 0x0a, 0x01, 0x07, 0x42, 0x00])).meta.blob), [7]);
});

test('bounds and types are checked both ways', () => {
  const j = new Journal({ text: 'any length'.repeat(100), tags: ['12345678'], ids: [1n, 2n, 3n, 4n], level: Level.HIGH });
  const bytes = j.toPb();
  assert.deepStrictEqual(Journal.fromPb(bytes).tags, ['12345678']);
  j.tags.push('123456789');
  assert.throws(() => j.toPb(), (e) => isInvalid(e) && /feat\.Journal\.tags: length 9 over max_len 8/.test(e.detail));
  j.tags.pop();
  j.ids.push(5n);
  assert.throws(() => j.toPb(), (e) => isInvalid(e) && /feat\.Journal\.ids: count 5 over max_count 4/.test(e.detail));
  assert.throws(() => Journal.fromPb(Buffer.concat([bytes, Buffer.from([0x30, 0x05])])), (e) => isInvalid(e) && /count 5 over max_count 4/.test(e.detail));
  for (const bad of [{ seq: 1.5 }, { seq: 2 ** 31 }, { text: 7 }, { values: [1.5] }, { tags: [new Meta()] }, { meta: new Note() }, { kind: 'x' }])
    assert.throws(() => new Note(bad).toPb(), isInvalid, JSON.stringify(Object.keys(bad)));
});

test('corrupt bytes are EINVALID_DATA, never anything else', () => {
  const good = note(5).toPb();
  for (let n = 0; n < good.length; n++) {
    try {
      Note.fromPb(good.subarray(0, n));
    } catch (e) {
      assert.ok(isInvalid(e), e.stack);
    }
  }
  const refused = (b, what) => assert.throws(() => Note.fromPb(Buffer.from(b)), (e) => isInvalid(e) && /interop\./.test(e.detail), what);
  refused(good.subarray(0, good.length - 1), 'truncated');
  refused([0x0a, 0x00], 'seq sent length-delimited');
  refused([0x15, 0, 0, 0, 0], 'text sent as 32 bits');
  refused([0x12, 0x10, 0x61, 0x62], 'length past the end');
  refused([0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 'huge length');
  refused([0x08, ...Array(10).fill(0xff), 0x01], '11-byte varint');
  refused([0x12, 0x02, 0xc3, 0x28], 'not UTF-8');
  refused([0x03], 'a group');
  refused([0x00, 0x00], 'field number 0');
  refused([0x1a, 0x03, 0x01, 0x80, 0x80], 'a packed element past its field');
  refused([0x42, 0x02, 0x0a, 0x05], "a nested message's length past its field");
  let seed = 0x2545f491;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  let ok = 0;
  let err = 0;
  for (let k = 0; k < 5000; k++) {
    const b = Array.from(good);
    for (let m = 0; m < 1 + (rnd() % 4); m++) {
      const at = rnd() % b.length;
      const op = rnd() % 3;
      if (op === 0) b[at] = rnd() & 0xff;
      else if (op === 1) b.length = Math.max(at, 1);
      else b.splice(at, 0, rnd() & 0xff);
    }
    try {
      Note.fromPb(Buffer.from(b)).toPb();
      ok++;
    } catch (e) {
      assert.ok(isInvalid(e), e.stack);
      err++;
    }
  }
  assert.ok(ok > 0 && err > 0, `${ok} decoded, ${err} refused`);
});

/** The bytes of a Tree with id 1 nested `depth` levels down through `next`. */
function deepTree(depth) {
  let b = Buffer.from([0x08, 0x01]);
  for (let i = 0; i < depth; i++) {
    const len = [];
    for (let n = b.length; ; n >>>= 7) {
      if (n < 0x80) {
        len.push(n);
        break;
      }
      len.push((n & 0x7f) | 0x80);
    }
    b = Buffer.concat([Buffer.from([0x08, 0x01, 0x2a, ...len]), b]);
  }
  return b;
}

test('proto2: required fields, a closed enum, nesting depth', () => {
  const t = new Tree({ id: 7, label: 'root', color: Color.GREEN, children: [new Tree({ id: 8 })], next: new Tree() });
  const back = Tree.fromPb(t.toPb());
  assert.deepStrictEqual([back.id, back.label, back.color, back.children[0].id, back.next.id], [7, 'root', 2, 8, 0]);
  assert.strictEqual(new Tree().color, null, 'an absent optional is null');
  assert.deepStrictEqual(Array.from(new Tree().toPb()), [0x08, 0x00], 'a required field is written even at zero');
  const fails = (b, re) => assert.throws(() => Tree.fromPb(Buffer.from(b)), (e) => isInvalid(e) && re.test(e.detail));
  fails([0x12, 0x01, 0x61], /enc2\.Tree\.id: required field missing/);
  fails([0x08, 0x01, 0x2a, 0x00], /enc2\.Tree\.id: required field missing/);
  fails([0x08, 0x01, 0x18, 0x07], /enc2\.Tree\.color: 7 is not a value of enc2\.Color/);
  assert.throws(() => new Tree({ color: 9 }).toPb(), isInvalid);
  Tree.fromPb(deepTree(100));
  assert.throws(() => Tree.fromPb(deepTree(101)), (e) => isInvalid(e) && /nested more than 100 deep/.test(e.detail));
  assert.throws(() => Tree.fromPb(deepTree(1000)), isInvalid);
});

test('queues and pipes carry encoded messages', async () => {
  const q = new Queue(Note, opts({ capacity: 8 }));
  await q.put(note(3));
  assert.ok((await q.get(SEC)) instanceof Note);
  await assert.rejects(q.put(new Meta()), (e) => e.code === 'EINVAL');
  const raw = new Queue(null, opts({ name: q.name, mode: 'open' }));
  await raw.put(Buffer.from([0x12, 0x10]));
  await assert.rejects(q.get(SEC), isInvalid);
  raw.close();
  q.close();
  const [a, b] = Pipe.pair(opts());
  await a.send(note(4));
  assert.deepStrictEqual(plain(Note.fromPb(await b.recv(SEC))), plain(note(4)));
  await assert.rejects(a.send(new Journal({ ids: [0n, 0n, 0n, 0n, 0n] })), isInvalid);
  assert.strictEqual(await b.poll(0), false, 'an invalid message is not sent');
  a.close();
  b.close();
});

const helper = (...args) =>
  new Promise((resolve) => {
    execFile(HELPER, args.map(String), { env: { ...process.env, SHOAL_ROOT: opts().root, SHOAL_DOMAIN: opts().domain } },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stderr }));
  });

test('notes between Node and C', { skip: !HELPER && 'SHOAL_ENCODED_HELPER not set' }, async () => {
  const N = 200;
  const name = `node-enc-${process.pid}`;
  const q = new Queue(Note, opts({ name, mode: 'create', capacity: 16 }));
  try {
    // Node puts, C gets and checks every field
    const consumer = helper('consume', name, N);
    for (let i = 1; i <= N; i++) await q.put(note(i), SEC);
    const c = await consumer;
    assert.strictEqual(c.code, 0, `C consumer: ${c.stderr}`);
    // C puts, Node gets
    const producer = helper('produce', name, N);
    for (let i = 1; i <= N; i++) assert.deepStrictEqual(plain(await q.get(SEC)), plain(note(i)), `note ${i}`);
    const p = await producer;
    assert.strictEqual(p.code, 0, `C producer: ${p.stderr}`);
  } finally {
    q.close();
    unlink(name, opts());
  }
});
