'use strict';
// Child processes of the tests: `node child.js ROLE ARG...`.
const shoal = require('..');
const { opts } = require('./util');

async function main(role, arg) {
  const o = opts({ name: arg, mode: 'open' });
  switch (role) {
    case 'adder': {
      const v = new shoal.Value('q', null, o);
      for (let i = 0; i < 2000; i++) v.add(1);
      const a = new shoal.Array('i', 0, opts({ name: `${arg}.arr`, mode: 'open' }));
      for (let i = 0; i < a.length; i++) a.add(i, 1);
      break;
    }
    case 'producer': {
      const [name, id] = arg.split(',');
      const q = new shoal.Queue('q', opts({ name, mode: 'open' }));
      for (let i = 0; i < 3000; i++) await q.put(BigInt(id) * 1000000n + BigInt(i), 120000);
      break;
    }
    case 'put_one': // stops at queue.reserved and is killed there
      await new shoal.Queue('q', o).put(2n, 120000);
      break;
    case 'get_one': // stops at queue.claimed and is killed there
      await new shoal.Queue('q', o).get(120000);
      break;
    case 'echo': {
      const p = shoal.Pipe.open(arg, 1, opts({ mode: 'open', maxMsg: 256 }));
      for (;;) {
        const m = await p.recv(120000);
        if (m.toString() === 'crash') process.kill(process.pid, 'SIGKILL');
        if (m.toString() === 'bye') break;
        await p.send(m);
      }
      p.close();
      break;
    }
    case 'die_holding': {
      const l = new shoal.Lock(o);
      const ev = new shoal.Event(opts({ name: `${arg}.ev`, mode: 'open' }));
      l.acquireSync();
      ev.set();
      process.kill(process.pid, 'SIGKILL');
      break;
    }
    case 'shm': {
      const m = new shoal.SharedMemory(o);
      const b = new Uint8Array(m.buffer);
      if (Buffer.from(b.subarray(0, 5)).toString() !== 'hello') throw new Error('shm: no hello');
      b.set(Buffer.from('world'), 100);
      break;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

main(process.argv[2], process.argv[3]).then(
  () => process.exit(0),
  (e) => {
    console.error(`child ${process.argv[2]}: ${e.stack}`);
    process.exit(1);
  },
);
