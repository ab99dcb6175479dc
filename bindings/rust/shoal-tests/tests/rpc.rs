//! Services in Rust (the shoal crate's rpc module and the code `shoal gen --lang rust`
//! emits for svct.Gen) between real processes: a Rust server in a child process (this test
//! binary run again with SHOAL_TEST_ROLE=server) or the C peer of tests/rpc
//! (`svcpeer`, $SHOAL_RPC_PEER), and Rust clients here; and the C peer's client against
//! the Rust server. Over shm:// always, over tcp:// (token) when libshoal has nng
//! ($SHOAL_RPC_NNG=1).
//!
//! The service is svct.Gen of tests/rpc/proto/svct.proto, as svcpeer serves it:
//! Ask(Fix) -> Enc {n + 1, text + the "who" metadata, items {n, n}}, n == -1 fails
//! FAILED_PRECONDITION; Count(Enc) -> n Fix 0..n-1 (20 ms apart when text is "slow");
//! Sum(stream Fix) -> the sum; Chat(stream Enc) -> each back with n * 2; Wait(Fix)
//! waits until the call ends; Missing has no handler. The generated stubs are typed:
//! Fix, a fixed message, is the generated #[repr(C)] struct, Enc, an encoded message,
//! the generated struct of owned fields; both travel as their protobuf form.
#![cfg(not(shoal_no_gen))]
use std::env;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal::rpc::*;
use shoal::Message;
use shoal::{ErrorKind, Options};
use shoal_tests::svct_shoal::{gen_service, Enc, Fix, GenClient, GenServer, GEN_SERVICE};

const SVC: &str = GEN_SERVICE;
const TOKEN: &str = "rpc-test-token";
const SEC: Duration = Duration::from_secs(60);

fn root() -> String {
    shoal_tests::test_root()
}

fn objects() -> Options {
    Options::new().root(&root()).domain("rust")
}

fn nng() -> bool {
    env::var("SHOAL_RPC_NNG").is_ok_and(|v| v == "1")
}

/// A fresh address of the kind: a shm:// name, or a loopback tcp:// port below Linux's
/// ephemeral ports (32768 and up), which any outgoing connection may take.
fn unique(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    match kind {
        "shm" => format!("shm://rs-rpc-{}-{n}", std::process::id()),
        _ => format!("tcp://127.0.0.1:{}", 20000 + (std::process::id() * 7 + n * 13) % 12000),
    }
}

// ---- messages ---------------------------------------------------------------------------

/// An Enc with n and text (the generated type of an encoded message).
fn enc(n: i32, text: &str) -> Enc {
    Enc { n, text: text.into(), items: vec![] }
}

/// The protobuf bytes of an Enc (or of a Fix) with n and text, for the bytes-level calls.
fn msg(n: i32, text: &str) -> Vec<u8> {
    enc(n, text).to_pb().unwrap()
}

/// The Enc of protobuf bytes.
fn parse(b: &[u8]) -> Result<Enc, Status> {
    Enc::from_pb(b).map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))
}

/// A Fix with n and text.
fn fix(n: i32, text: &str) -> Fix {
    let mut m = Fix { n, ..Default::default() };
    m.text.set(text.as_bytes(), "svct.Fix.text").unwrap();
    m
}

fn text(m: &Fix) -> &str {
    m.text.as_str().unwrap()
}

// ---- the Rust server of svct.Gen -------------------------------------------------------

/// The Rust server of svct.Gen, through the generated trait (Missing is left out:
/// its default answers UNIMPLEMENTED).
struct RustGen;

impl GenServer for RustGen {
    fn ask(&self, ctx: &mut ServerCtx, req: Fix) -> Result<Enc, Status> {
        if req.n == -1 {
            return Err(Status::new(Code::FailedPrecondition, "negative")
                .with_trailers(vec![("why".into(), "n".into())]));
        }
        let who = ctx.metadata().into_iter().find(|(k, _)| k == "who").map(|(_, v)| v);
        if let Some(w) = &who {
            ctx.add_header("who", w)?;
        }
        ctx.add_trailer("served-by", "rust")?;
        let text = format!("{}{}", text(&req), who.unwrap_or_default());
        Ok(Enc { n: req.n + 1, text, items: vec![req.n, req.n] })
    }

    fn count(&self, stream: &mut ServerStream<'_, Enc, Fix>, req: Enc) -> Result<(), Status> {
        for i in 0..req.n {
            if let Err(st) = stream.send(&fix(i, "")) {
                println!("cancelled Count");
                return Err(st);
            }
            if req.text == "slow" {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    fn sum(&self, stream: &mut ServerStream<'_, Fix, Fix>) -> Result<Fix, Status> {
        let mut sum = 0;
        while let Some(m) = stream.recv()? {
            sum += m.n;
        }
        Ok(fix(sum, ""))
    }

    fn chat(&self, stream: &mut ServerStream<'_, Enc, Enc>) -> Result<(), Status> {
        while let Some(mut m) = stream.recv()? {
            m.n *= 2;
            stream.send(&m)?;
        }
        Ok(())
    }

    fn wait(&self, ctx: &mut ServerCtx, _req: Fix) -> Result<Fix, Status> {
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("cancelled Wait");
        Err(Status::new(Code::Cancelled, "cancelled"))
    }
}

fn service() -> Service {
    gen_service(Arc::new(RustGen))
}

/// A child process serving svct.Gen: the Rust one, or the C peer.
struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn rust(addresses: &[String]) -> Peer {
        Peer::try_rust(addresses).expect("the server ended before it was ready")
    }

    /// The Rust server, or None when it ended before it was ready.
    fn try_rust(addresses: &[String]) -> Option<Peer> {
        let child = Command::new(env::current_exe().unwrap())
            .args(["--exact", "child_entry", "--nocapture", "--test-threads=1", "-q"])
            .env("SHOAL_TEST_ROLE", "server")
            .env("SHOAL_TEST_ARG", addresses.join(" "))
            .env("SHOAL_TEST_ROOT", root())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the Rust server");
        Peer::ready(child)
    }

    /// The C peer (the program $SHOAL_RPC_PEER names), or None when it ended before it
    /// was ready.
    fn try_c(exe: &str, addresses: &[String]) -> Option<Peer> {
        let child = Command::new(exe)
            .arg("server")
            .args(addresses)
            .env("SHOAL_ROOT", root())
            .env("SHOAL_DOMAIN", "rust")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn svcpeer");
        Peer::ready(child)
    }

    /// A server on fresh addresses (shm:// and, with nng, tcp://), and the addresses:
    /// a server that ends before it is ready — its tcp port taken by another process —
    /// is started again on other ones.
    fn on_fresh_addresses(start: impl Fn(&[String]) -> Option<Peer>) -> (Peer, Vec<String>) {
        for _ in 0..5 {
            let addrs = addresses();
            if let Some(p) = start(&addrs) {
                return (p, addrs);
            }
        }
        panic!("the server ended before it was ready, on 5 sets of addresses");
    }

    fn ready(mut child: Child) -> Option<Peer> {
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut p = Peer { child, out };
        // (the test harness of a Rust child prints its own lines first)
        loop {
            match p.line().as_str() {
                "ready" => return Some(p),
                "EOF" => {
                    eprintln!("the server ended before it was ready: {:?}", p.child.wait());
                    return None;
                }
                _ => {}
            }
        }
    }

    /// The next line the server printed ("EOF" at its end).
    fn line(&mut self) -> String {
        let mut s = String::new();
        if self.out.read_line(&mut s).unwrap() == 0 {
            return "EOF".into();
        }
        s.trim_end().to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn child_entry() {
    let Ok(role) = env::var("SHOAL_TEST_ROLE") else { return };
    let arg = env::var("SHOAL_TEST_ARG").unwrap_or_default();
    match role.as_str() {
        "server" => {
            let mut s = Server::new();
            s.add_service(service()).set_token(TOKEN).set_objects(objects());
            for a in arg.split(' ') {
                s.add_port(a);
            }
            s.start().expect("start the server");
            println!("ready");
            s.wait(); // until killed
        }
        r => panic!("unknown role {r}"),
    }
}

fn open(address: &str) -> Arc<Channel> {
    let opts = ChannelOptions { token: Some(TOKEN.into()), connect_timeout: Some(SEC), objects: objects() };
    Arc::new(Channel::open_with(address, &opts).unwrap_or_else(|e| panic!("open {address}: {e}")))
}

// ---- what a client checks, against any server of svct.Gen -----------------------------

/// The checks through the generated client (and, for the response headers, through
/// the call the rpc module starts).
fn check_all_kinds(ch: &Arc<Channel>, served_by: &str) {
    let client = GenClient::new(ch.clone());
    // unary, with metadata both ways
    let mut call = ch
        .start(
            SVC,
            "Ask",
            Kind::Unary,
            Some(&msg(41, "hi ")),
            &CallOptions::new().timeout(SEC).metadata("who", "rust"),
        )
        .unwrap();
    let resp = parse(&call.recv().unwrap().unwrap()).unwrap();
    assert_eq!(resp, Enc { n: 42, text: "hi rust".into(), items: vec![41, 41] });
    let st = call.finish();
    assert_eq!(st.code, Code::Ok, "{st}");
    assert_eq!(call.headers(), vec![("who".to_string(), "rust".to_string())]);
    assert!(st.trailers.contains(&("served-by".into(), served_by.into())), "{:?}", st.trailers);
    drop(call);
    // a handler's error status
    let st = client.ask(&fix(-1, ""), &CallOptions::new()).unwrap_err();
    assert_eq!((st.code, st.details.as_str()), (Code::FailedPrecondition, "negative"));
    // no such method
    let st = client.missing(&fix(1, ""), &CallOptions::new()).unwrap_err();
    assert_eq!(st.code, Code::Unimplemented, "{st}");
    // typed unary: a Fix in, an Enc (bytes) out
    let resp = client.ask(&fix(6, "typed"), &CallOptions::new().timeout(SEC)).unwrap();
    assert_eq!(resp, Enc { n: 7, text: "typed".into(), items: vec![6, 6] });
    // an invalid Fix (a length over its bound) is refused before it is sent
    let mut bad = fix(1, "");
    bad.text.len = 32;
    let st = client.ask(&bad, &CallOptions::new()).unwrap_err();
    assert_eq!(st.code, Code::InvalidArgument, "{st}");
    assert!(st.details.contains("svct.Fix.text"), "{st}");

    // server streaming, past the flow-control window
    let got: Vec<i32> =
        client.count(&enc(40, ""), &CallOptions::new().timeout(SEC)).unwrap().map(|r| r.unwrap().n).collect();
    assert_eq!(got, (0..40).collect::<Vec<_>>());

    // client streaming
    let mut call = client.sum(&CallOptions::new().timeout(SEC)).unwrap();
    for i in 0..40 {
        call.send(&fix(i, "")).unwrap();
    }
    let sum = call.close_and_recv().unwrap();
    assert_eq!((sum.n, text(&sum)), (780, ""));

    // bidirectional, one in flight at a time
    let mut call = client.chat(&CallOptions::new().timeout(SEC)).unwrap();
    for i in 0..40 {
        call.send(&Enc { n: i, text: "x".into(), items: vec![i] }).unwrap();
        let back = call.recv().unwrap().unwrap();
        assert_eq!(back, Enc { n: 2 * i, text: "x".into(), items: vec![i] });
    }
    call.close_send().unwrap();
    assert_eq!(call.recv().unwrap(), None);
    assert_eq!(call.finish().code, Code::Ok);
}

fn check_deadline_and_cancel(ch: &Arc<Channel>, peer: &mut Peer) {
    let client = GenClient::new(ch.clone());
    let t0 = Instant::now();
    let st = client.wait(&fix(1, ""), &CallOptions::new().timeout(Duration::from_millis(200))).unwrap_err();
    assert_eq!(st.code, Code::DeadlineExceeded, "{st}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(peer.line(), "cancelled Wait"); // the handler saw the deadline pass

    // a deadline already passed
    let st = client.ask(&fix(1, ""), &CallOptions::new().deadline(Instant::now())).unwrap_err();
    assert_eq!(st.code, Code::DeadlineExceeded, "{st}");

    // a cancel reaches the streaming handler
    let mut call = client.count(&enc(1000, "slow"), &CallOptions::new().timeout(SEC)).unwrap();
    assert!(call.next().unwrap().is_ok());
    call.cancel();
    let rest: Vec<_> = call.by_ref().collect();
    assert!(matches!(rest.last(), Some(Err(st)) if st.code == Code::Cancelled), "{rest:?}");
    assert_eq!(call.finish().code, Code::Cancelled);
    assert_eq!(peer.line(), "cancelled Count");

    // a cancelled unary call inside its wait
    let mut call =
        ch.start(SVC, "Wait", Kind::Unary, Some(&msg(1, "")), &CallOptions::new().timeout(SEC)).unwrap();
    assert!(!call.wait(Duration::from_millis(50)));
    call.cancel();
    assert_eq!(call.recv().unwrap_err().code, Code::Cancelled);
    assert_eq!(peer.line(), "cancelled Wait");
}

fn addresses() -> Vec<String> {
    let mut a = vec![unique("shm")];
    if nng() {
        a.push(unique("tcp"));
    }
    a
}

#[test]
fn rust_client_rust_server() {
    let (mut peer, addrs) = Peer::on_fresh_addresses(Peer::try_rust);
    for a in &addrs {
        let ch = open(a);
        check_all_kinds(&ch, "rust");
        check_deadline_and_cancel(&ch, &mut peer);
    }
}

#[test]
fn rust_client_c_server() {
    let Ok(exe) = env::var("SHOAL_RPC_PEER") else {
        eprintln!("SHOAL_RPC_PEER not set: the Rust client against the C server is skipped");
        return;
    };
    let (mut peer, addrs) = Peer::on_fresh_addresses(|a| Peer::try_c(&exe, a));
    for a in &addrs {
        let ch = open(a);
        check_all_kinds(&ch, "c");
        check_deadline_and_cancel(&ch, &mut peer);
        // the C server checks every request: bytes that are no protobuf Fix
        let st = ch.unary(SVC, "Ask", b"\xff\xff\xff", &CallOptions::new().timeout(SEC)).unwrap_err();
        assert_eq!(st.code, Code::InvalidArgument, "{st}");
    }
}

#[test]
fn c_client_rust_server() {
    let Ok(exe) = env::var("SHOAL_RPC_PEER") else {
        eprintln!("SHOAL_RPC_PEER not set: the C client against the Rust server is skipped");
        return;
    };
    let (_peer, addrs) = Peer::on_fresh_addresses(Peer::try_rust);
    for a in &addrs {
        let out = Command::new(&exe)
            .args(["client", a])
            .env("SHOAL_ROOT", root())
            .env("SHOAL_DOMAIN", "rust")
            .output()
            .expect("run svcpeer client");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "svcpeer client {a}:\n{text}");
        for check in ["ask", "ask_fails", "missing", "deadline", "count", "cancel", "sum", "chat"] {
            assert!(text.lines().any(|l| l == format!("ok {check}")), "{check} not passed:\n{text}");
        }
    }
}

#[test]
fn undecodable_request_in_rust_handler() {
    // The typed Rust handler refuses what does not decode as a valid Fix with
    // INVALID_ARGUMENT, before the handler runs: bytes that are no protobuf, and a
    // well-formed Fix whose text is over its max_len.
    let a = unique("shm");
    let _peer = Peer::rust(std::slice::from_ref(&a));
    let ch = open(&a);
    let st = ch.unary(SVC, "Ask", b"\x0a", &CallOptions::new().timeout(SEC)).unwrap_err();
    assert_eq!(st.code, Code::InvalidArgument, "{st}");
    let st = ch.unary(SVC, "Ask", &msg(1, &"x".repeat(32)), &CallOptions::new().timeout(SEC)).unwrap_err();
    assert_eq!(st.code, Code::InvalidArgument, "{st}");
    assert!(st.details.contains("svct.Fix") && st.details.contains("text"), "{st}");
    let mut call =
        ch.start(SVC, "Sum", Kind::ClientStreaming, None, &CallOptions::new().timeout(SEC)).unwrap();
    call.send(&msg(1, "")).unwrap();
    let _ = call.send(&msg(2, &"y".repeat(40)));
    assert_eq!(call.close_and_recv().unwrap_err().code, Code::InvalidArgument);
    // a wrong kind of start is refused on the client side
    let st = ch.start(SVC, "Sum", Kind::ClientStreaming, Some(b""), &CallOptions::new()).err().unwrap();
    assert_eq!(st.code, Code::InvalidArgument);
}

#[test]
fn server_errors_and_dead_server() {
    // no server there
    let e = Channel::open_with(&unique("shm"), &ChannelOptions { objects: objects(), ..Default::default() })
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NoEnt, "{e}");
    let a = unique("shm");
    let mut peer = Peer::rust(std::slice::from_ref(&a));
    // a server killed mid-stream gives UNAVAILABLE, well before the deadline
    let ch = open(&a);
    let mut call =
        ch.server_streaming(SVC, "Count", &msg(1000, "slow"), &CallOptions::new().timeout(SEC)).unwrap();
    assert!(call.next().unwrap().is_ok());
    let t0 = Instant::now();
    peer.child.kill().unwrap();
    let last = call.by_ref().last().unwrap();
    assert_eq!(last.unwrap_err().code, Code::Unavailable);
    assert!(t0.elapsed() < Duration::from_secs(20));
    // tcp:// without a token cannot start; a client without the token is refused
    if nng() {
        let mut s = Server::new();
        s.add_service(service()).add_port(&unique("tcp"));
        assert_eq!(s.start().err().unwrap().kind(), ErrorKind::Inval);
        let t = unique("tcp");
        let mut s = Server::new();
        s.add_service(service()).add_port(&t).set_token(TOKEN);
        s.start().unwrap();
        // an address in use
        let mut again = Server::new();
        again.add_service(service()).add_port(&t).set_token(TOKEN);
        assert_eq!(again.start().err().unwrap().kind(), ErrorKind::Busy);
        let e = Channel::open(&t, Some("wrong-token-here")).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Acces, "{e}");
        let ch = Channel::open(&t, Some(TOKEN)).unwrap();
        assert_eq!(parse(&ch.unary(SVC, "Ask", &msg(1, ""), &CallOptions::new()).unwrap()).unwrap().n, 2);
        s.stop();
    }
}

#[test]
fn codes_have_grpc_names_and_numbers() {
    assert_eq!(Code::from_i32(4), Code::DeadlineExceeded);
    assert_eq!(Code::DeadlineExceeded.name(), "DEADLINE_EXCEEDED");
    assert_eq!(Code::Unauthenticated as i32, 16);
    assert_eq!(Code::from_i32(99), Code::Unknown);
    assert_eq!(Code::Ok.to_string(), "OK");
}

#[test]
fn generated_services_match_golden() {
    // The services' section of the generated svct_shoal.rs, against
    // tests/rpc/golden/svct_services.rs.golden (SHOAL_UPDATE_GOLDEN=1 rewrites it).
    let text = include_str!(concat!(env!("OUT_DIR"), "/svct_shoal.rs"));
    let got = &text[text.find("// ---- services ----").expect("a services section")..];
    let src = env::var("SHOAL_SOURCE_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../..").into());
    let path = format!("{src}/tests/rpc/golden/svct_services.rs.golden");
    if env::var("SHOAL_UPDATE_GOLDEN").is_ok_and(|v| !v.is_empty()) {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        got == want,
        "{path} differs from the generated code: rerun with SHOAL_UPDATE_GOLDEN=1 if intended"
    );
}
