//! Condition::wait always returns with the guard's lock held again, at the depth it
//! had: after a timeout too, once another thread lets the lock go.
use std::env;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use shoal::*;

const SEC: Duration = Duration::from_secs(60);
const HOLD: Duration = Duration::from_millis(800);

/// Where the test's (anonymous) objects live: the test root when CTest gives one.
fn opts() -> Options {
    match env::var("SHOAL_TEST_ROOT") {
        Ok(root) => Options::new().root(&root),
        Err(_) => Options::new(),
    }
    .domain("rust")
}

#[test]
fn timed_out_wait_holds_the_rlock_at_its_depth() {
    let o = opts();
    let r = Lock::open_recursive(None, OpenMode::Create, &o).unwrap();
    let c = Condition::open(None, OpenMode::Create, &o).unwrap();
    let waiting = AtomicBool::new(false);
    let released = AtomicBool::new(false);
    thread::scope(|sc| {
        sc.spawn(|| {
            while !waiting.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(1));
            }
            let g = r.acquire(SEC).unwrap(); // free once the waiter waits
            thread::sleep(HOLD); // well past the waiter's timeout
            released.store(true, Ordering::Release);
            drop(g);
        });
        let g1 = r.acquire(SEC).unwrap();
        let g2 = r.acquire(SEC).unwrap(); // depth 2
        waiting.store(true, Ordering::Release);
        let t0 = Instant::now();
        let e = c.wait(&g2, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(released.load(Ordering::Acquire), "returned before the lock was free");
        assert!(t0.elapsed() >= HOLD / 2);
        assert!(r.locked()); // by this thread: the other one let it go
        drop(g2);
        assert!(r.locked()); // still held once
        drop(g1);
        assert!(!r.locked());
    });
}
