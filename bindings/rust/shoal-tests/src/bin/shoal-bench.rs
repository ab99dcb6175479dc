//! The Rust binding's benchmark cases, for bench/run.py: `shoal-bench CASE SIZE COUNT`
//! prints one `RESULT case=... size=... count=... key=value` line, as the C programs
//! of bench/ do.
//!
//!   rust_queue_struct  throughput of the generated 64-byte Order through an SPSC
//!                      Queue<Order> of 1024 slots, producer and consumer processes
//!   rust_pipe_rtt      round trip of a SIZE-byte message over a Pipe between two
//!                      processes, both polling (a spin budget of 10 s, as the C
//!                      case's; median and p99 of COUNT samples)
//!   rust_value_add     Value<i64>::add(1), one process
//!   rust_lock          Lock acquire + release (guard dropped), uncontended
//!
//! The other process is this program run again (role `--child`); the two are pinned to
//! distinct CPUs, as the C programs' are. Objects live in a private domain of
//! $SHOAL_ROOT (or the default root).
use std::env;
use std::process::{Child, Command, exit};
use std::time::{Duration, Instant};

use shoal::{FOREVER, Lock, OpenMode, Options, Pipe, Queue, Value};
use shoal_tests::orders_shoal::Order;

fn opts() -> Options {
    Options::new().domain(&format!(
        "bench-rust-{}",
        env::var("SHOAL_BENCH_PARENT").unwrap_or_else(|_| std::process::id().to_string())
    ))
}

unsafe extern "C" {
    fn sched_getaffinity(pid: i32, size: usize, mask: *mut u64) -> i32;
    fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
}

/// The CPUs this process may run on. A child started after its parent pinned itself
/// inherits that one CPU, so the parent passes the set it started with in
/// `SHOAL_BENCH_CPUS`.
fn allowed_cpus() -> Vec<usize> {
    if let Ok(list) = env::var("SHOAL_BENCH_CPUS") {
        return list.split(',').filter_map(|c| c.parse().ok()).collect();
    }
    let mut allowed = [0u64; 16];
    // SAFETY: a 1024-bit cpu_set_t, the glibc size.
    if unsafe { sched_getaffinity(0, 128, allowed.as_mut_ptr()) } != 0 {
        return Vec::new();
    }
    (0..1024).filter(|&c| allowed[c / 64] >> (c % 64) & 1 == 1).collect()
}

/// Pins this process to the `slot`-th CPU of `cpus` (modulo their number).
fn pin_slot(cpus: &[usize], slot: usize) {
    if let Some(&cpu) = cpus.get(slot % cpus.len().max(1)) {
        let mut one = [0u64; 16];
        one[cpu / 64] = 1 << (cpu % 64);
        if unsafe { sched_setaffinity(0, 128, one.as_ptr()) } != 0 {
            eprintln!("shoal-bench: warning: cannot pin to cpu {cpu}");
        }
    }
}

fn fail(msg: String) -> ! {
    eprintln!("shoal-bench: {msg}");
    exit(1)
}

fn child(args: &[&str]) -> Child {
    Command::new(env::current_exe().unwrap())
        .arg("--child")
        .args(args)
        .env("SHOAL_BENCH_PARENT", std::process::id().to_string())
        .spawn()
        .unwrap_or_else(|e| fail(format!("spawn: {e}")))
}

fn queue_struct(count: u64) {
    let q: Queue<Order> = Queue::open(Some("q"), OpenMode::Create, 1024, true, &opts())
        .unwrap_or_else(|e| fail(format!("{e}")));
    let mut kid = child(&["produce", &count.to_string()]);
    let first = q.get(Duration::from_secs(30)).unwrap_or_else(|e| fail(format!("get: {e}")));
    let t0 = Instant::now();
    let mut last = first;
    for _ in 1..count {
        last = q.get(FOREVER).unwrap_or_else(|e| fail(format!("get: {e}")));
    }
    let dt = t0.elapsed();
    if last.id != count as i64 - 1 {
        fail(format!("last order {} of {count}", last.id));
    }
    kid.wait().unwrap();
    let n = count - 1;
    println!(
        "RESULT case=rust_queue_struct size=64 count={count} msgs_per_s={:.1} elapsed_ns={}",
        n as f64 / dt.as_secs_f64(),
        dt.as_nanos()
    );
}

fn produce(count: u64) {
    let q: Queue<Order> =
        Queue::open(Some("q"), OpenMode::Open, 0, true, &opts()).unwrap_or_else(|e| fail(format!("{e}")));
    let mut o = Order::default();
    o.set_symbol("ACME").unwrap();
    for i in 0..count {
        o.id = i as i64;
        q.put(&o, FOREVER).unwrap_or_else(|e| fail(format!("put: {e}")));
    }
}

fn pipe_rtt(size: usize, count: u64) {
    shoal::set_spin_ns(10_000_000_000);
    let p = Pipe::open("p", 0, OpenMode::Create, size.max(8), 64, &opts())
        .unwrap_or_else(|e| fail(format!("{e}")));
    let mut kid = child(&["echo", &size.to_string()]);
    let msg = vec![7u8; size];
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count + 100 {
        let t0 = Instant::now();
        p.send(&msg, FOREVER).unwrap();
        p.recv(FOREVER).unwrap();
        if i >= 100 {
            samples.push(t0.elapsed().as_nanos() as f64);
        }
    }
    p.send(b"", FOREVER).unwrap();
    kid.wait().unwrap();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    println!(
        "RESULT case=rust_pipe_rtt size={size} count={count} median_ns={med:.1} p99_ns={p99:.1} mean_ns={mean:.1}"
    );
}

fn echo(size: usize) {
    shoal::set_spin_ns(10_000_000_000);
    let p =
        Pipe::open("p", 1, OpenMode::Open, size.max(8), 64, &opts()).unwrap_or_else(|e| fail(format!("{e}")));
    loop {
        let m = p.recv(FOREVER).unwrap_or_else(|e| fail(format!("recv: {e}")));
        if m.is_empty() {
            break;
        }
        p.send(&m, FOREVER).unwrap();
    }
}

fn op(case: &str, count: u64) {
    let t0;
    match case {
        "rust_value_add" => {
            let v: Value<i64> = Value::open(None, OpenMode::Create, Some(&0), &opts()).unwrap();
            t0 = Instant::now();
            for _ in 0..count {
                v.add(1).unwrap();
            }
        }
        _ => {
            let l = Lock::open(None, OpenMode::Create, &opts()).unwrap();
            t0 = Instant::now();
            for _ in 0..count {
                drop(l.acquire(FOREVER).unwrap());
            }
        }
    }
    let dt = t0.elapsed();
    println!(
        "RESULT case={case} size=8 count={count} ns_per_op={:.2} elapsed_ns={}",
        dt.as_nanos() as f64 / count as f64,
        dt.as_nanos()
    );
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let cpus = allowed_cpus();
    let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
    // SAFETY: no other thread exists yet. The children read it (see allowed_cpus).
    unsafe { env::set_var("SHOAL_BENCH_CPUS", list.join(",")) };
    match a.as_slice() {
        ["--child", "produce", n] => {
            pin_slot(&cpus, 1);
            produce(n.parse().unwrap())
        }
        ["--child", "echo", size] => {
            pin_slot(&cpus, 1);
            echo(size.parse().unwrap())
        }
        [case, size, count] => {
            pin_slot(&cpus, 0);
            let (size, count): (usize, u64) = (size.parse().unwrap_or(8), count.parse().unwrap_or(0).max(2));
            match *case {
                "rust_queue_struct" => queue_struct(count),
                "rust_pipe_rtt" => pipe_rtt(size, count),
                "rust_value_add" | "rust_lock" => op(case, count),
                _ => println!("SKIP case={case} reason=unknown-case"),
            }
            let _ = shoal::unlink("q", &opts());
            let _ = shoal::unlink("p", &opts());
        }
        _ => {
            eprintln!("usage: shoal-bench CASE SIZE COUNT");
            exit(2)
        }
    }
}
