'use strict';
// What the tests share: a private root directory for their objects, and child
// processes (test/child.js) doing one role each.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { fork } = require('child_process');

const root = process.env.SHOAL_TEST_ROOT || path.join(os.tmpdir(), 'shoal-node-tests');
fs.mkdirSync(root, { recursive: true });
const opts = (more = {}) => ({ root, domain: 'node', ...more });

/** Options to create `name`, removing what an interrupted earlier run left behind. */
function fresh(name, more = {}) {
  try {
    require('..').unlink(name, opts());
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  return opts({ name, mode: 'create', ...more });
}

/** Runs test/child.js ROLE ARG...; resolves with {code, signal, stdout}. */
function child(role, ...args) {
  return new Promise((resolve, reject) => {
    const p = fork(path.join(__dirname, 'child.js'), [role, ...args.map(String)], {
      env: { ...process.env, SHOAL_TEST_ROOT: root },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ code, signal, stdout }));
  });
}

module.exports = { root, opts, fresh, child };
