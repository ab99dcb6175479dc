//! The private broker of [`Manager::start`](crate::manager::Manager::start), as Python's
//! `with shoal.Manager() as m:` starts one: the `shoal` command (`$SHOAL_CLI` when set
//! and not empty, else `shoal` found on the `PATH`, Python's rule) run as `shoal broker
//! --listen shm://manager-PID-RANDOM --stop-at-stdin-eof` (plus `--root`, `--domain`,
//! `--data-dir` when given), its stdin a pipe only this process holds the write end of
//! (close-on-exec), so that the broker stops cleanly when this process goes, however it
//! ends (SIGKILL too) and whichever thread started it. Ready once it prints
//! `shoal broker: ready` on stdout (one thread reads stdout, and keeps draining it after;
//! another holds stderr until then, for the error of a broker that exits or does not
//! get ready in time, and forwards it to this process's stderr afterwards). Stopped
//! by SIGTERM and a wait (SIGKILL after 10 s, as Python): a clean stop removes the
//! broker's segments.
use std::collections::hash_map::RandomState;
use std::env;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// Options of [`Manager::start_with`](crate::manager::Manager::start_with).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The `shoal` command to run (None: `$SHOAL_CLI` when set and not empty, else
    /// `shoal` on the `PATH`).
    pub cli: Option<PathBuf>,
    /// The root directory of the broker's shared memory (`--root`; None: the broker's
    /// and this client's `$SHOAL_ROOT`, else `/dev/shm/shoal`).
    pub root: Option<String>,
    /// The domain under the root (`--domain`; None: `$SHOAL_DOMAIN`, else `default`).
    pub domain: Option<String>,
    /// Keep the objects in LMDB in this directory (`--data-dir`).
    pub data_dir: Option<String>,
    /// How long the broker may take to be ready (None: 10 seconds).
    pub ready_timeout: Option<Duration>,
}

/// A broker process this process started; stopped when dropped.
pub(crate) struct BrokerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Python's `os.environ.get("SHOAL_CLI") or shutil.which("shoal")`.
fn find_cli() -> Result<PathBuf> {
    if let Some(cli) = env::var_os("SHOAL_CLI").filter(|s| !s.is_empty()) {
        return Ok(cli.into());
    }
    let executable =
        |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    env::var_os("PATH")
        .and_then(|path| env::split_paths(&path).map(|d| d.join("shoal")).find(|p| executable(p)))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NoEnt,
                "Manager::start: the `shoal` command (which runs the broker) is not on the PATH; set SHOAL_CLI to it",
            )
        })
}

/// A fresh shm:// address: this process's id and 48 random bits.
fn private_address() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    format!("shm://manager-{}-{:012x}", std::process::id(), h.finish() & 0xffff_ffff_ffff)
}

/// What stderr said: held until the broker is ready (None afterwards: forwarded).
type Held = Arc<Mutex<Option<Vec<u8>>>>;

fn hold_stderr(mut err: impl Read + Send + 'static) -> (Held, thread::JoinHandle<()>) {
    let held: Held = Arc::new(Mutex::new(Some(Vec::new())));
    let h = held.clone();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = err.read(&mut buf) {
            match h.lock().unwrap().as_mut() {
                Some(v) => v.extend_from_slice(&buf[..n]),
                None => drop(std::io::stderr().write_all(&buf[..n])),
            }
        }
    });
    (held, t)
}

/// Reads stdout until the ready line (sends true) or its end (sends false), then drains
/// it, so that the broker never blocks writing.
fn watch_stdout(out: impl Read + Send + 'static, ready: mpsc::Sender<bool>) {
    thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            if !matches!(out.read_line(&mut line), Ok(1..)) {
                let _ = ready.send(false);
                return;
            }
            if line.trim() == "shoal broker: ready" {
                break;
            }
        }
        let _ = ready.send(true);
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
}

impl BrokerProcess {
    /// Starts the broker and waits until it is ready; returns it and its address.
    /// Fails with `NoEnt` (no `shoal` command), `Sys` (it cannot be run, or exited:
    /// the detail has its exit status and stderr), `TimedOut` (not ready in time: it
    /// is killed).
    pub(crate) fn start(opts: &StartOptions) -> Result<(BrokerProcess, String)> {
        let cli = match &opts.cli {
            Some(c) => c.clone(),
            None => find_cli()?,
        };
        let address = private_address();
        let mut cmd = Command::new(&cli);
        cmd.args(["broker", "--listen", &address, "--stop-at-stdin-eof"]);
        for (flag, v) in [("--root", &opts.root), ("--domain", &opts.domain), ("--data-dir", &opts.data_dir)]
        {
            if let Some(v) = v {
                cmd.args([flag, v]);
            }
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| {
                Error::new(ErrorKind::Sys, format!("Manager::start: cannot run {}: {e}", cli.display()))
            })?;
        let (held, err_thread) = hold_stderr(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        watch_stdout(child.stdout.take().unwrap(), tx);
        let stdin = child.stdin.take();
        let mut broker = BrokerProcess { child, stdin };
        let timeout = opts.ready_timeout.unwrap_or(Duration::from_secs(10));
        match rx.recv_timeout(timeout) {
            Ok(true) => {
                let said = held.lock().unwrap().take().unwrap_or_default();
                let _ = std::io::stderr().write_all(&said);
                Ok((broker, address))
            }
            failed => {
                let what = match failed {
                    Err(_) => format!("was not ready within {timeout:?}"),
                    _ => "exited before it was ready".to_string(),
                };
                let status = broker.kill_and_wait();
                let _ = err_thread.join();
                let said = held.lock().unwrap().take().unwrap_or_default();
                let kind = if failed.is_err() { ErrorKind::TimedOut } else { ErrorKind::Sys };
                Err(Error::new(
                    kind,
                    format!(
                        "Manager::start: the broker ({} broker --listen {address}) {what} ({status}): {}",
                        cli.display(),
                        String::from_utf8_lossy(&said).trim_end()
                    ),
                ))
            }
        }
    }

    /// The broker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill_and_wait(&mut self) -> String {
        let _ = self.child.kill();
        self.child.wait().map_or_else(|e| e.to_string(), |s| s.to_string())
    }

    /// SIGTERM, then a wait of up to 10 s (SIGKILL after). Ok when it exited with 0.
    pub(crate) fn stop(&mut self) -> Result<()> {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: a plain system call on our own child, not reaped yet.
            unsafe { kill(self.child.id() as i32, 15) };
        }
        self.stdin = None;
        let t = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(2));
        }
        let status = match self.child.try_wait() {
            Ok(Some(s)) => s,
            _ => {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "Manager: the broker did not stop in 10 s after SIGTERM ({}): killed",
                        self.kill_and_wait()
                    ),
                ))
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Sys, format!("Manager: the broker stopped with {status}")))
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
