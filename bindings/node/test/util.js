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
  return childAt('', role, ...args);
}

/** The same, stopping itself (SIGSTOP) at libshoal's test pause point `point`; the
 * child process is in `.process` of the promise. */
function childAt(point, role, ...args) {
  let p;
  const done = new Promise((resolve, reject) => {
    p = fork(path.join(__dirname, 'child.js'), [role, ...args.map(String)], {
      env: { ...process.env, SHOAL_TEST_ROOT: root, SHOAL_TEST_PAUSE: point },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ code, signal, stdout }));
  });
  done.process = p;
  return done;
}

/** Waits until the child has stopped itself at its pause point, then SIGKILLs it. */
async function killWhenStopped(run) {
  const stat = `/proc/${run.process.pid}/stat`;
  let exited = false;
  run.then(() => (exited = true));
  for (let i = 0; i < 60000; i++) {
    let s = '';
    try {
      s = fs.readFileSync(stat, 'utf8');
    } catch (e) {
      /* not there yet, or gone */
    }
    if (s.slice(s.lastIndexOf(')') + 1).trim().startsWith('T')) {
      run.process.kill('SIGKILL');
      return run;
    }
    if (exited) throw new Error('the child ended before its pause point');
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('the child never reached its pause point');
}

module.exports = { root, opts, fresh, child, childAt, killWhenStopped };
