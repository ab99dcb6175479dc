'use strict';
// Generates the Node code of the test schemas with the shoal command
// ($SHOAL_CLI, else `shoal` on the PATH) into $SHOAL_NODE_GEN_DIR/<sub> (default: a
// temporary directory; each test file its own `sub`, as they may run at once), with node_modules/shoal pointing at this package so the
// generated modules' require('shoal') finds it. Returns the directory; a temporary
// one is removed when the process exits.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

function generate(sub) {
  const src = process.env.SHOAL_SOURCE_DIR || path.join(__dirname, '..', '..', '..');
  let out = process.env.SHOAL_NODE_GEN_DIR && path.join(process.env.SHOAL_NODE_GEN_DIR, sub);
  if (!out) {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-node-gen-'));
    process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  }
  const cli = process.env.SHOAL_CLI || 'shoal';
  const runs = [
    [path.join(src, 'examples/orders'), ['orders.proto']],
    [path.join(src, 'tests/codegen/proto'), ['features.proto', 'common.proto', 'features2.proto']],
    [path.join(src, 'tests/interop'), ['orders_v2.proto', 'tally.proto', 'encoded_note.proto', 'encoded2.proto']],
    [path.join(src, 'tests/rpc/proto'), ['svct.proto']],
  ];
  for (const [dir, files] of runs)
    execFileSync(cli, ['gen', '--lang', 'node', '-I', dir, '-o', out, ...files.map((f) => path.join(dir, f))], {
      stdio: 'inherit',
    });
  fs.mkdirSync(out, { recursive: true });
  const mods = path.join(out, 'node_modules');
  fs.mkdirSync(mods, { recursive: true });
  const link = path.join(mods, 'shoal');
  fs.rmSync(link, { force: true, recursive: true });
  fs.symlinkSync(path.join(__dirname, '..'), link, 'dir');
  return out;
}

module.exports = { generate };
