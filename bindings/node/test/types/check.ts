// Type-checked (never run) by typescript.test.js against lib/index.d.ts and the .d.ts
// files `shoal gen --lang node` writes: the declarations must describe the API.
import * as shoal from 'shoal';
import { Order, Side } from './orders_shoal';
import { Everything } from './features_shoal';
import { Defaults, Kind } from './features2_shoal';
import { Enc, Fix, GenClient, addGenService } from './svct_shoal';
import { Note, Note_TagsEntry, Meta } from './encoded_note_shoal';

async function use(): Promise<void> {
  const o = new Order();
  o.id = 5n;
  o.symbol = 'ACME';
  o.price = 1.5;
  o.side = Side.BUY;
  o.fills = [1, 2];
  o.validate();
  const size: 64 = Order.SIZE;
  const hash: bigint = Order.LAYOUT_HASH;

  const e = new Everything(new Uint8Array(Everything.SIZE));
  e.inner.tag = Uint8Array.of(1);
  e.r_string = ['a'];
  e.origin.label = 'x';
  const n: bigint | undefined = e.c_int;
  const d = new Defaults();
  const k: number = d.kind === Kind.FIRST ? 1 : 0;

  const q = new shoal.Queue<Order>(Order, { name: 'orders', capacity: 16 });
  await q.put(o, 1000);
  const got: Order = await q.get();
  for await (const m of q) m.validate();
  const v = new shoal.Value<bigint>('q', 0n, { name: 'hits' });
  v.add(1);
  const lock = v.getLock();
  if (lock && (await lock.acquire(100))) lock.release();
  const bytes = new shoal.Queue(null, { maxMsg: 64 });
  const b: Uint8Array = await bytes.get();
  const [a, z] = shoal.Pipe.pair({ maxMsg: 8 });
  await a.send('hi');
  const r: Uint8Array = await z.recv();
  const m = new shoal.SharedMemory({ size: 16 });
  const ab: ArrayBuffer = m.buffer;
  try {
    new shoal.Event().set();
  } catch (err) {
    if (err instanceof shoal.ShoalError && err.code === 'ELAYOUT') console.log(err.detail);
  }
  void [size, hash, n, k, got, b, r, ab];
}

async function useManager(): Promise<void> {
  const m = shoal.Manager.connect('shm://mgr', { connectTimeout: 500 });
  const d = m.dict({ a: 1 }, { name: 'scores' });
  d.set('t', shoal.Tuple.of<shoal.ManagerValue>(1, 'x'));
  const t: shoal.Tuple<number> = shoal.Tuple.of(1, 2);
  d.set('m', new Map<shoal.ManagerValue, shoal.ManagerValue>([[1, new shoal.Double(2)]]));
  const hits: number | bigint = d.increment('hits');
  const ok: boolean = d.compareAndSet('a', 1, 2);
  d.listAt('l').append(Uint8Array.of(1));
  for (const [key, value] of d) void [key, value];
  const q = m.Queue(10);
  await q.put({ job: 1 }, 100);
  const item: unknown = q.getSync(100);
  const l = m.Lock();
  if (await l.acquire(100)) l.release();
  const ev = m.Event();
  const set: boolean = await ev.wait(10);
  const idx: number = m.Barrier(1).waitSync();
  const p = m.pipeline();
  p.call(d, 'set', 'k', 1);
  const results: any[] = p.collect();
  const st: { view: boolean; hits: number; misses: number } = m.viewStats();
  const proxy: shoal.manager.BaseProxy = m.open('scores');
  m.close();
  const own: shoal.Manager = await shoal.Manager.start({ domain: 'd', readyTimeout: 5000 });
  const pid: number | null = own.brokerPid;
  await own.shutdown();
  void [t, hits, ok, item, set, idx, results, st, proxy, pid];
}
void useManager;
void use;

async function useRpc(): Promise<void> {
  const ch = await shoal.rpc.Channel.open('tcp://127.0.0.1:9', { token: 'secret-token', connectTimeout: 100 });
  const client = new GenClient(ch);
  const svc: 'svct.Gen' = GenClient.SERVICE;
  const req = new Fix();
  req.n = 1;
  const resp: Enc = await client.ask(req, { timeout: 10, metadata: { who: 'ts' } });
  const items: number[] = resp.items;
  const text: string = resp.text;
  for await (const m of client.count(resp)) void m.n;
  const sum = client.sum({ deadline: new Date() });
  await sum.send(req);
  const one: Fix = await sum.response();
  const pb: Uint8Array = one.toPb();
  const back: Fix = Fix.fromPb(pb);
  const chat = client.chat();
  await chat.send(resp);
  const echoed: Enc | null = await chat.recv();
  const st = await chat.finish();
  const code: number = st.code === shoal.rpc.Code.OK ? 0 : shoal.rpc.Code.CANCELLED;
  try {
    await ch.unary(svc, 'Ask', pb);
    const typed: Fix = await ch.unary(svc, 'Wait', back, {}, { request: Fix, response: Fix });
    void typed;
  } catch (err) {
    if (err instanceof shoal.rpc.RpcError) console.log(err.codeName, err.details, err.trailers);
  }
  ch.close();
  void [code, echoed, items, text];
  const server = new shoal.rpc.Server({ root: '/tmp' }).addPort('shm://svc').setToken('secret-token');
  addGenService(server, {
    ask: async (req, call) => {
      call.addTrailer('k', 'v');
      if (call.isCancelled() || call.timeRemaining() < 1) throw new shoal.rpc.RpcError(shoal.rpc.Code.ABORTED, 'late', [], [['k', 'v']]);
      return new Enc({ n: req.n, text: 'x', items: [1] });
    },
    sum: async (call) => {
      let total = 0;
      for await (const m of call) total += m.n;
      const out = new Fix();
      out.n = total;
      return out;
    },
  });
  server.addService('raw.Svc', { Echo: { kind: 0, fn: async (b: Uint8Array) => b } });
  server.start();
  await server.stop();
}
void useRpc;

async function useEncoded(): Promise<void> {
  const n = new Note({ seq: 1, text: 'a', values: [1n], tags: [new Note_TagsEntry({ key: 'k', value: 2 })] });
  n.meta = new Meta({ blob: new Uint8Array(2) });
  n.why = 'because';
  const c: number = n.extra_case;
  const code: bigint | undefined = n.code;
  const bytes: Uint8Array = n.toPb();
  const back: Note = Note.fromPb(bytes);
  back.validate();
  const q = new shoal.Queue(Note, { capacity: 4 });
  await q.put(n);
  const got: Note = await q.get();
  const [p0] = shoal.Pipe.pair();
  await p0.send(got);
  void [c, code];
}
void useEncoded;
declare const console: { log(...a: unknown[]): void };
