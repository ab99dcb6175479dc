'use strict';
// The private broker of Manager.start(), as Python's `with shoal.Manager() as m:` starts
// one: the `shoal` command (opts.cli, else $SHOAL_CLI when set and not empty, else
// `shoal` found on the PATH: Python's rule) run by child_process as `shoal broker
// --listen shm://manager-PID-RANDOM --stop-at-stdin-eof` (plus --root, --domain,
// --data-dir when given). Its stdin is a pipe only this process holds the write end of
// (close-on-exec), so the broker stops cleanly when this process ends, however
// (SIGKILL too). Ready once it prints `shoal broker: ready` on stdout; until then its
// stderr is kept for the error of a broker that exits or is not ready in time, and
// forwarded to this process's stderr afterwards. The child and its pipes are then
// unref'd: they do not keep the event loop alive. stop() sends SIGTERM and waits for
// the exit (SIGKILL after 10 s, as Python): a clean stop removes the broker's segments.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawn } = require('child_process');
const { error } = require('./native');

/** Python's `os.environ.get("SHOAL_CLI") or shutil.which("shoal")`. */
function findCli() {
  if (process.env.SHOAL_CLI) return process.env.SHOAL_CLI;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir || '.', 'shoal');
    try {
      if (fs.statSync(p).isFile()) {
        fs.accessSync(p, fs.constants.X_OK);
        return p;
      }
    } catch {
      // not there, or not executable: the next directory
    }
  }
  throw error('ENOENT', 'Manager.start: the `shoal` command (which runs the broker) is not on the PATH; set SHOAL_CLI to it');
}

class BrokerProcess {
  constructor(child, address) {
    this.child = child;
    this.address = address;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit status ${code}`));
    });
  }

  /** The broker's process id. */
  get pid() {
    return this.child.pid;
  }

  /** Starts the broker and resolves with it once ready; rejects with ENOENT (no
   * `shoal` command), ESYS (it cannot be run, or it exited: the detail has its exit
   * status and stderr), ETIMEDOUT (not ready within opts.readyTimeout ms, default
   * 10000: it is killed). */
  static start(opts = {}) {
    let cli;
    try {
      cli = opts.cli || findCli();
    } catch (e) {
      return Promise.reject(e);
    }
    const address = `shm://manager-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
    const args = ['broker', '--listen', address, '--stop-at-stdin-eof'];
    for (const [flag, v] of [['--root', opts.root], ['--domain', opts.domain], ['--data-dir', opts.dataDir]]) {
      if (v != null) args.push(flag, v);
    }
    const child = spawn(cli, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const b = new BrokerProcess(child, address);
    const timeout = opts.readyTimeout ?? 10000;
    let out = '';
    let err = '';
    const closed = new Promise((r) => child.on('close', r)); // exited, stdio read to the end
    return new Promise((resolve, reject) => {
      const fail = async (code, what) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        const status = await b.exited;
        await closed;
        reject(error(code, `Manager.start: the broker (${cli} broker --listen ${address}) ${what} (${status}): ${err.trimEnd()}`));
      };
      const timer = setTimeout(() => fail('ETIMEDOUT', `was not ready within ${timeout} ms`), timeout);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(error('ESYS', `Manager.start: cannot run ${cli}: ${e.message}`));
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.stdout.on('data', (d) => {
        out += d;
        if (!out.split('\n').slice(0, -1).some((l) => l.trim() === 'shoal broker: ready')) return;
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.resume(); // drained, so that it never blocks writing
        child.stderr.removeAllListeners('data');
        process.stderr.write(err);
        child.stderr.pipe(process.stderr, { end: false });
        for (const h of [child, child.stdin, child.stdout, child.stderr]) h.unref();
        resolve(b);
      });
      child.stdout.on('end', () => {
        if (!out.includes('shoal broker: ready')) fail('ESYS', 'exited before it was ready');
      });
    });
  }

  /** SIGTERM, and resolves once it exited (SIGKILL after 10 s) with its status. */
  async stop() {
    const { child } = this;
    if (child.exitCode === null && child.signalCode === null) {
      child.ref();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(timer);
    }
    child.stdin.destroy();
    return this.exited;
  }
}

module.exports = { BrokerProcess };
