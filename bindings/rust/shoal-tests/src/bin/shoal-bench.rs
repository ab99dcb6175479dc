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
//! `shoal-bench broker CASE DEPTH COUNT ADDRESS [CLIENTS [TOKEN]]` is the Rust side of
//! bench/broker_compare.py's C-against-Rust rows, with bench/bench_broker.c's arguments
//! and RESULT line: CLIENTS threads (default 1), each with a connection of its own
//! (shoal::manager), run COUNT operations each on one broker dict, DEPTH at a time
//! (DEPTH requests submitted in a Pipeline, then their replies collected); CASE `set`
//! sets one key to a 3-byte value, `get` reads it back (every reply checked).
//!
//! The other process is this program run again (role `--child`); the two are pinned to
//! distinct CPUs, as the C programs' are. Objects live in a private domain of
//! $SHOAL_ROOT (or the default root).
use std::env;
use std::process::{Child, Command, exit};
use std::time::{Duration, Instant};

use std::sync::Barrier;

use shoal::manager::{MValue, Manager, ManagerOptions};
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

const BROKER_KEY: &str = "key:000000000042";

/// One client of `shoal-bench broker`: its count operations, depth at a time, after
/// the start barrier; each batch's time per operation, and the client's start and end.
fn broker_client(
    m: Manager,
    case: &str,
    depth: usize,
    count: usize,
    start: &Barrier,
) -> (Vec<f64>, Instant, Instant) {
    let d = m.dict("bench-rust").unwrap();
    let (op, args): (&str, Vec<MValue>) = match case {
        "set" => ("set", vec![BROKER_KEY.into(), "xxx".into()]),
        _ => ("get", vec![BROKER_KEY.into()]),
    };
    let want = if case == "set" { MValue::None } else { MValue::from("xxx") };
    let mut lat = Vec::with_capacity(count / depth + 1);
    start.wait();
    let t0 = Instant::now();
    let mut done = 0;
    while done < count {
        let n = depth.min(count - done);
        let t = Instant::now();
        if n == 1 {
            let r = if case == "set" {
                d.set(BROKER_KEY, "xxx").map(|()| MValue::None)
            } else {
                d.get(BROKER_KEY)
            };
            if r.as_ref() != Ok(&want) {
                fail(format!("broker {case}: {r:?}"));
            }
        } else {
            let mut p = m.pipeline();
            for _ in 0..n {
                p.submit(&d, op, &args, Duration::ZERO).unwrap_or_else(|e| fail(format!("submit: {e}")));
            }
            for r in p.wait_all() {
                if r.as_ref() != Ok(&want) {
                    fail(format!("broker {case}: {r:?}"));
                }
            }
        }
        lat.push(t.elapsed().as_nanos() as f64 / n as f64);
        done += n;
    }
    (lat, t0, Instant::now())
}

fn broker(case: &str, depth: usize, count: usize, address: &str, clients: usize, token: Option<String>) {
    if case != "set" && case != "get" {
        println!("SKIP case={case} reason=unknown-case");
        return;
    }
    let depth = depth.max(1);
    let opts = ManagerOptions { token, ..Default::default() };
    let connect =
        || Manager::connect_with(address, &opts).unwrap_or_else(|e| fail(format!("{address}: {e}")));
    // The key exists before the clock starts (get reads it).
    connect().dict("bench-rust").unwrap().set(BROKER_KEY, "xxx").unwrap();
    let start = Barrier::new(clients);
    let runs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> =
            (0..clients).map(|_| s.spawn(|| broker_client(connect(), case, depth, count, &start))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let t0 = runs.iter().map(|r| r.1).min().unwrap();
    let t1 = runs.iter().map(|r| r.2).max().unwrap();
    let mean = (runs[0].2 - runs[0].1).as_nanos() as f64 / count as f64;
    let mut lat: Vec<f64> = runs.into_iter().flat_map(|r| r.0).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "RESULT case={case} depth={depth} count={count} clients={clients} ops_per_s={:.0} median_ns={:.0} \
         p99_ns={:.0} p999_ns={:.0} max_ns={:.0} mean_ns={mean:.0}",
        (count * clients) as f64 / (t1 - t0).as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0)
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
        ["broker", case, depth, count, address, rest @ ..] => {
            let clients = rest.first().and_then(|c| c.parse().ok()).unwrap_or(1);
            let token = rest.get(1).filter(|t| **t != "-").map(|t| t.to_string());
            broker(case, depth.parse().unwrap_or(1), count.parse().unwrap_or(1), address, clients, token)
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
            eprintln!(
                "usage: shoal-bench CASE SIZE COUNT | shoal-bench broker CASE DEPTH COUNT ADDRESS [CLIENTS [TOKEN]]"
            );
            exit(2)
        }
    }
}
