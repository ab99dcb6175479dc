//! The safe API against the real library: every object, its errors, and several
//! processes at once. Child processes are this test binary run again with
//! SHOAL_TEST_ROLE set: `child_entry` performs the role and the process exits.
use std::env;
use std::process::{Child, Command};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use shoal::*;

// Generous: children start slowly on a loaded machine or under a sanitizer.
const SEC: Duration = Duration::from_secs(60);

fn root() -> String {
    env::var("SHOAL_TEST_ROOT").unwrap_or_else(|_| {
        let dir = env::temp_dir().join("shoal-rust-tests");
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_string_lossy().into_owned()
    })
}

fn opts() -> Options {
    Options::new().root(&root()).domain("rust")
}

/// Removes what an interrupted earlier run may have left under `names`.
fn fresh(names: &[&str]) {
    for n in names {
        let _ = unlink(n, &opts());
    }
}

/// Runs this binary again as a child doing `role` with `arg`.
fn spawn(role: &str, arg: &str) -> Child {
    spawn_paused(role, arg, "")
}

/// The same, stopping itself (SIGSTOP) at libshoal's test pause point `point`.
fn spawn_paused(role: &str, arg: &str, point: &str) -> Child {
    Command::new(env::current_exe().unwrap())
        .env("SHOAL_TEST_PAUSE", point)
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1", "-q"])
        .env("SHOAL_TEST_ROLE", role)
        .env("SHOAL_TEST_ARG", arg)
        .env("SHOAL_TEST_ROOT", root())
        .spawn()
        .expect("spawn child")
}

/// Waits until the child has stopped itself at its pause point, then SIGKILLs it.
fn kill_when_stopped(mut c: Child) {
    let stat = format!("/proc/{}/stat", c.id());
    for _ in 0..60_000 {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        // pid (comm) STATE ...: the comm may hold spaces, the state follows the last ')'
        if s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('T')).unwrap_or(false) {
            c.kill().unwrap();
            c.wait().unwrap();
            return;
        }
        assert!(c.try_wait().unwrap().is_none(), "the child ended before its pause point");
        thread::sleep(Duration::from_millis(2));
    }
    panic!("the child never reached its pause point");
}

fn wait_ok(mut c: Child) {
    let st = c.wait().unwrap();
    assert!(st.success(), "child failed: {st}");
}

#[test]
fn child_entry() {
    let Ok(role) = env::var("SHOAL_TEST_ROLE") else { return };
    let arg = env::var("SHOAL_TEST_ARG").unwrap_or_default();
    let o = opts();
    match role.as_str() {
        "adder" => {
            let v: Value<i64> = Value::open(Some(&arg), OpenMode::Open, None, &o).unwrap();
            for _ in 0..2000 {
                v.add(1).unwrap();
            }
            let a: Array<i32> =
                Array::open(Some(&format!("{arg}.arr")), OpenMode::Open, 0, None, &o).unwrap();
            for i in 0..a.len() {
                a.add(i, 1).unwrap();
            }
        }
        "producer" => {
            let (name, id) = arg.split_once(',').unwrap();
            let id: i64 = id.parse().unwrap();
            let q: Queue<i64> = Queue::open(Some(name), OpenMode::Open, 0, false, &o).unwrap();
            for i in 0..5000 {
                q.put(&(id * 1_000_000 + i), SEC).unwrap();
            }
        }
        "echo" => {
            let p = Pipe::open(&arg, 1, OpenMode::Open, 256, 0, &o).unwrap();
            loop {
                match p.recv(SEC) {
                    Ok(m) if m == b"crash" => std::process::abort(),
                    Ok(m) if m == b"bye" => break, // close (drop): the peer sees Eof
                    Ok(m) => p.send(&m, SEC).unwrap(),
                    Err(e) => panic!("echo: {e}"),
                }
            }
        }
        "die_holding" => {
            let l = Lock::open(Some(&arg), OpenMode::Open, &o).unwrap();
            let ev = Event::open(Some(&format!("{arg}.ev")), OpenMode::Open, &o).unwrap();
            let g = l.acquire(SEC).unwrap();
            ev.set();
            std::mem::forget(g);
            std::process::abort();
        }
        "put_one" => {
            let q: Queue<i64> = Queue::open(Some(&arg), OpenMode::Open, 0, false, &o).unwrap();
            q.put(&2, SEC).unwrap(); // stops at queue.reserved and is killed there
        }
        "get_one" => {
            let q: Queue<i64> = Queue::open(Some(&arg), OpenMode::Open, 0, false, &o).unwrap();
            q.get(SEC).unwrap(); // stops at queue.claimed and is killed there
        }
        "shm" => {
            let m = SharedMemory::open(Some(&arg), OpenMode::Open, 0, &o).unwrap();
            let mut b = [0u8; 5];
            m.read(0, &mut b).unwrap();
            assert_eq!(&b, b"hello");
            m.write(100, b"world").unwrap();
        }
        r => panic!("unknown role {r}"),
    }
}

#[test]
fn errors_name_the_object() {
    let o = opts();
    let e = Value::<i32>::open(Some("no-such-value"), OpenMode::Open, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert_eq!(e.code(), -3);
    assert!(e.detail().contains("no-such-value"), "{e}");

    let e = Value::<i32>::open(Some("a/b"), OpenMode::OpenOrCreate, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Name);
    let e = Value::<i32>::open(Some("nul\0byte"), OpenMode::OpenOrCreate, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Name);

    fresh(&["err.int"]);
    let _v = Value::<i32>::open(Some("err.int"), OpenMode::Create, Some(&5), &o).unwrap();
    let e = Value::<i32>::open(Some("err.int"), OpenMode::Create, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Exist);
    let e = Value::<f64>::open(Some("err.int"), OpenMode::Open, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Layout);
    assert!(e.detail().contains("int32") && e.detail().contains("float64"), "{e}");
    let e = Queue::<i32>::open(Some("err.int"), OpenMode::Open, 0, false, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Kind);
    assert!(e.to_string().contains("err.int"), "{e}");
    let f = Value::<f64>::new(1.5).unwrap();
    assert_eq!(f.get().unwrap(), 1.5);
    unlink("err.int", &o).unwrap();
    assert_eq!(unlink("err.int", &o).unwrap_err().kind(), ErrorKind::NoEnt);
}

#[test]
fn value_and_array_across_processes() {
    let o = opts();
    fresh(&["val.total", "val.total.arr"]);
    let v: Value<i64> = Value::open(Some("val.total"), OpenMode::Create, Some(&0), &o).unwrap();
    let a: Array<i32> =
        Array::open(Some("val.total.arr"), OpenMode::Create, 3, Some(&[10, 20, 30]), &o).unwrap();
    let kids: Vec<_> = (0..4).map(|_| spawn("adder", "val.total")).collect();
    kids.into_iter().for_each(wait_ok);
    assert_eq!(v.load().unwrap(), 8000);
    assert_eq!(a.to_vec().unwrap(), vec![14, 24, 34]);

    assert_eq!(v.exchange(5).unwrap(), 8000);
    assert_eq!(v.compare_exchange(5, 6).unwrap(), Ok(5));
    assert_eq!(v.compare_exchange(5, 7).unwrap(), Err(6));
    v.store(-1).unwrap();
    assert_eq!(v.get().unwrap(), -1);
    {
        let g = v.lock().unwrap().acquire(SEC).map_err(|e| e.error()).unwrap();
        v.set(&(v.get().unwrap() * 2)).unwrap(); // the lock is recursive
        drop(g);
    }
    assert_eq!(v.snapshot().unwrap(), -2);

    assert_eq!(a.get(3).unwrap_err().kind(), ErrorKind::Range);
    a.set(1, &7).unwrap();
    let mut two = [0; 2];
    a.read(1, &mut two).unwrap();
    assert_eq!(two, [7, 34]);
    assert_eq!(a.write(2, &[1, 2]).unwrap_err().kind(), ErrorKind::Range);
    let e = Array::<i32>::open(Some("val.total.arr"), OpenMode::Open, 4, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Layout);

    let f: Value<f32> =
        Value::open(None, OpenMode::Create, Some(&0.5), &o.clone().lock(LockMode::None)).unwrap();
    assert!(f.lock().is_none());
    assert_eq!(f.get().unwrap(), 0.5);
    unlink("val.total", &o).unwrap();
    unlink("val.total.arr", &o).unwrap();
}

#[test]
fn queue_delivers_each_message_once() {
    let o = opts();
    fresh(&["q.mpmc"]);
    let q: Queue<i64> = Queue::open(Some("q.mpmc"), OpenMode::Create, 64, false, &o).unwrap();
    assert_eq!(q.try_get().unwrap_err().kind(), ErrorKind::Again);
    assert_eq!(q.get(Duration::from_millis(5)).unwrap_err().kind(), ErrorKind::TimedOut);
    let kids: Vec<_> = (1..=3).map(|id| spawn("producer", &format!("q.mpmc,{id}"))).collect();
    let mut seen = vec![[false; 5000]; 3];
    for _ in 0..15000 {
        let m = q.get(SEC).unwrap();
        let (id, i) = ((m / 1_000_000) as usize, (m % 1_000_000) as usize);
        assert!(!seen[id - 1][i], "duplicate {m}");
        seen[id - 1][i] = true;
    }
    kids.into_iter().for_each(wait_ok);
    assert_eq!(q.try_get().unwrap_err().kind(), ErrorKind::Again);

    assert_eq!(q.put_batch(&[1, 2, 3], SEC).unwrap(), 3);
    q.put(&4, SEC).unwrap();
    assert_eq!(q.stats().depth, 4);
    q.shutdown();
    assert_eq!(q.put(&5, SEC).unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(q.get_batch(2, SEC).unwrap(), vec![1, 2]);
    let rest: Vec<i64> = q.iter().map(|m| m.unwrap()).collect();
    assert_eq!(rest, vec![3, 4]);
    assert_eq!(q.get(SEC).unwrap_err().kind(), ErrorKind::Eof);
    let e = Queue::<i32>::open(Some("q.mpmc"), OpenMode::Open, 0, false, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Layout);
    unlink("q.mpmc", &o).unwrap();
}

#[test]
fn killed_inside_put_or_get_loses_and_duplicates_nothing() {
    let o = opts();
    fresh(&["q.crash"]);
    let q: Queue<i64> = Queue::open(Some("q.crash"), OpenMode::Create, 16, false, &o).unwrap();
    q.put(&1, SEC).unwrap();
    // A producer killed with its message written into a reserved slot, not committed.
    kill_when_stopped(spawn_paused("put_one", "q.crash", "queue.reserved"));
    // A consumer killed after copying message 1 out, before freeing its slot.
    kill_when_stopped(spawn_paused("get_one", "q.crash", "queue.claimed"));
    q.put(&3, SEC).unwrap();
    assert_eq!(q.get(SEC).unwrap(), 1, "the dead consumer's message is delivered again");
    assert_eq!(q.get(SEC).unwrap(), 3, "the dead producer's message never appears");
    assert_eq!(q.get(Duration::from_millis(200)).unwrap_err().kind(), ErrorKind::TimedOut);
    unlink("q.crash", &o).unwrap();
}

#[test]
fn queue_between_threads() {
    let q = Arc::new(Queue::<u32>::open(None, OpenMode::Create, 8, true, &opts()).unwrap());
    let q2 = Arc::clone(&q);
    let t = thread::spawn(move || {
        for i in 0..1000 {
            q2.put(&i, SEC).unwrap();
        }
        q2.shutdown();
    });
    let got: Vec<u32> = q.iter().map(|m| m.unwrap()).collect();
    t.join().unwrap();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(q.stats().spsc, 1);
}

#[test]
fn byte_queue() {
    let q = ByteQueue::open(None, OpenMode::Create, 16, 4, false, &opts()).unwrap();
    q.put(b"hello", SEC).unwrap();
    q.try_put(b"").unwrap();
    assert_eq!(q.put(&[0; 17], SEC).unwrap_err().kind(), ErrorKind::MsgSize);
    assert_eq!(q.get(SEC).unwrap(), b"hello");
    assert_eq!(q.try_get().unwrap(), b"");
    assert_eq!(q.try_get().unwrap_err().kind(), ErrorKind::Again);
    q.put(b"last", SEC).unwrap();
    q.shutdown();
    assert_eq!(q.iter().map(|m| m.unwrap()).collect::<Vec<_>>(), vec![b"last".to_vec()]);
    assert_eq!(q.stats().max_msg, 16);
}

#[test]
fn pipe_echo_eof_and_dead_peer() {
    let o = opts();
    for (name, crash) in [("pipe.echo", false), ("pipe.crash", true)] {
        fresh(&[name]);
        let p = Pipe::open(name, 0, OpenMode::Create, 256, 16, &o).unwrap();
        let child = spawn("echo", name);
        for i in 0..100u32 {
            p.send(&i.to_le_bytes(), SEC).unwrap();
            assert_eq!(p.recv(SEC).unwrap(), i.to_le_bytes());
        }
        p.send(if crash { b"crash" } else { b"bye" }, SEC).unwrap();
        let e = p.recv(SEC).unwrap_err();
        assert_eq!(e.kind(), if crash { ErrorKind::PeerDead } else { ErrorKind::Eof }, "{e}");
        let st = { child }.wait().unwrap();
        assert_eq!(st.success(), !crash);
        unlink(name, &o).unwrap();
    }
    let (a, b) = Pipe::pair(None, 64, 0, &o).unwrap();
    assert_eq!(a.send(&[0; 65], SEC).unwrap_err().kind(), ErrorKind::MsgSize);
    a.send(b"ping", SEC).unwrap();
    assert!(b.poll(SEC).unwrap());
    assert_eq!(b.recv(SEC).unwrap(), b"ping");
    assert!(!a.poll(Duration::from_millis(1)).unwrap());
    drop(b);
    assert_eq!(a.recv(SEC).unwrap_err().kind(), ErrorKind::Eof);
}

#[test]
fn lock_owner_died_hands_over_the_guard() {
    let o = opts();
    fresh(&["lock.dead", "lock.dead.ev"]);
    let l = Lock::open(Some("lock.dead"), OpenMode::Create, &o).unwrap();
    let ev = Event::open(Some("lock.dead.ev"), OpenMode::Create, &o).unwrap();
    let child = spawn("die_holding", "lock.dead");
    ev.wait(SEC).unwrap();
    let st = { child }.wait().unwrap();
    assert!(!st.success());
    match l.acquire(SEC) {
        Err(LockError::OwnerDied(g)) => {
            assert!(l.locked());
            assert_eq!(l.try_acquire().unwrap_err().error().kind(), ErrorKind::Deadlk);
            drop(g);
        }
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    assert!(!l.locked());
    let g = l.acquire(SEC).unwrap();
    // Another thread cannot take it while we hold it.
    thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(l.acquire(Duration::from_millis(5)).unwrap_err().error().kind(), ErrorKind::TimedOut)
        });
    });
    drop(g);
    assert_eq!(l.name(), "lock.dead");
    let r = Lock::open_recursive(None, OpenMode::Create, &o).unwrap();
    let g1 = r.acquire(SEC).unwrap();
    let g2 = r.acquire(SEC).unwrap();
    drop((g2, g1));
    assert!(!r.locked());
    unlink("lock.dead", &o).unwrap();
    unlink("lock.dead.ev", &o).unwrap();
}

#[test]
fn semaphore_condition_event_barrier() {
    let o = opts();
    let s = Semaphore::open_bounded(None, OpenMode::Create, 1, &o).unwrap();
    s.acquire(SEC).unwrap();
    assert_eq!(s.try_acquire().unwrap_err().kind(), ErrorKind::Again);
    assert_eq!(s.acquire(Duration::from_millis(2)).unwrap_err().kind(), ErrorKind::TimedOut);
    s.release().unwrap();
    assert_eq!(s.release().unwrap_err().kind(), ErrorKind::Overflow);
    assert_eq!(s.value(), 1);

    let ev = Event::open(None, OpenMode::Create, &o).unwrap();
    assert_eq!(ev.wait(Duration::from_millis(2)).unwrap_err().kind(), ErrorKind::TimedOut);
    let b = Barrier::open(None, OpenMode::Create, 3, &o).unwrap();
    let l = Lock::open(None, OpenMode::Create, &o).unwrap();
    let c = Condition::open(None, OpenMode::Create, &o).unwrap();
    let flag = Value::<i32>::new(0).unwrap();
    thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                ev.wait(SEC).unwrap();
                b.wait(SEC).unwrap();
                let g = l.acquire(SEC).unwrap();
                while flag.load().unwrap() == 0 {
                    c.wait(&g, SEC).unwrap();
                }
            });
        }
        ev.set();
        assert!(ev.is_set());
        let idx = b.wait(SEC).unwrap();
        assert!(idx < 3);
        thread::sleep(Duration::from_millis(10));
        let _g = l.acquire(SEC).unwrap();
        flag.store(1).unwrap();
        c.notify_all();
    });
    assert_eq!(b.state(), (3, 0, false));
    b.abort();
    assert_eq!(b.wait(SEC).unwrap_err().kind(), ErrorKind::Broken);
    b.reset();
    assert!(!b.state().2);
}

#[test]
fn shared_memory_is_shared() {
    let o = opts();
    fresh(&["shm.block"]);
    let m = SharedMemory::open(Some("shm.block"), OpenMode::Create, 4096, &o).unwrap();
    assert_eq!(m.len(), 4096);
    m.write(0, b"hello").unwrap();
    wait_ok(spawn("shm", "shm.block"));
    let mut b = [0u8; 5];
    m.read(100, &mut b).unwrap();
    assert_eq!(&b, b"world");
    assert_eq!(m.write(4095, b"xy").unwrap_err().kind(), ErrorKind::Range);
    assert_eq!(unsafe { m.as_slice() }[1], b'e');
    unlink("shm.block", &o).unwrap();
}

#[test]
fn send_and_sync_where_true() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Value<i32>>();
    send_sync::<Array<f64>>();
    send_sync::<Queue<u8>>();
    send_sync::<ByteQueue>();
    send_sync::<Lock>();
    send_sync::<SharedMemory>();
    send_sync::<Semaphore>();
    send_sync::<Error>();
    send::<Pipe>();
}
