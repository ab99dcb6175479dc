//! The Rust side of the four-language test (tests/interop/test_four_lang.py).
//!
//!   shoal-interop writer LANG N   put N orders numbered LANG*1000000+i on the queue
//!                                 "four.orders", adding each id to the Tally Value
//!                                 "four.tally" under its lock
//!   shoal-interop reader N        get orders until the stream ends; check that each of
//!                                 the 4*N arrived exactly once, valid, and that the
//!                                 Tally's total is exact
//!   shoal-interop mismatch        open the queue with orders_v2's Order: must be refused
//!
//! The root and domain come from $SHOAL_ROOT and $SHOAL_DOMAIN. Exit status 0 on success;
//! a failure says what on stderr.
use std::process::exit;
use std::time::Duration;

use shoal::{ErrorKind, OpenMode, Options, Queue, Value};
use shoal_tests::orders_shoal::{Order, Side};
use shoal_tests::{orders_v2_shoal, tally_shoal::Tally};

const LANGS: [&str; 4] = ["c", "python", "rust", "node"];
const TIMEOUT: Duration = Duration::from_secs(60);

fn fail(msg: String) -> ! {
    eprintln!("shoal-interop (rust): {msg}");
    exit(1)
}

fn open() -> (Queue<Order>, Value<Tally>) {
    let o = Options::default();
    let q = Queue::open(Some("four.orders"), OpenMode::OpenOrCreate, 256, false, &o)
        .unwrap_or_else(|e| fail(format!("queue: {e}")));
    let v = Value::open(Some("four.tally"), OpenMode::OpenOrCreate, None, &o)
        .unwrap_or_else(|e| fail(format!("value: {e}")));
    (q, v)
}

fn writer(lang: usize, n: i64) {
    let (q, v) = open();
    let lock = v.lock().unwrap_or_else(|| fail("the tally has no lock".into()));
    for i in 0..n {
        let mut o = Order {
            id: lang as i64 * 1_000_000 + i,
            price: i as f64 * 0.5,
            quantity: i as u32,
            side: if i % 2 == 0 { Side::BUY } else { Side::SELL },
            ..Default::default()
        };
        o.set_symbol(LANGS[lang - 1]).unwrap();
        o.push_fills(lang as u32).unwrap();
        q.put(&o, TIMEOUT).unwrap_or_else(|e| fail(format!("put: {e}")));
        let _g = lock.acquire(TIMEOUT).unwrap_or_else(|e| fail(format!("lock: {e}")));
        let mut t = v.get().unwrap_or_else(|e| fail(format!("tally: {e}")));
        t.total += o.id;
        t.adds += 1;
        if t.by_lang.count == 0 {
            t.set_by_lang(&[0; 4]).unwrap();
        }
        t.by_lang.items[lang - 1] += 1;
        t.set_last("rust").unwrap();
        v.set(&t).unwrap_or_else(|e| fail(format!("tally: {e}")));
    }
}

fn reader(n: i64) {
    let (q, v) = open();
    let mut seen = vec![vec![false; n as usize]; 4];
    let mut got = 0i64;
    for m in q.iter() {
        let o = m.unwrap_or_else(|e| fail(format!("get: {e}")));
        let (lang, i) = ((o.id / 1_000_000) as usize, o.id % 1_000_000);
        if !(1..=4).contains(&lang) || i >= n {
            fail(format!("unexpected order id {}", o.id));
        }
        let sym = o.symbol_str().unwrap_or_else(|e| fail(format!("symbol: {e}")));
        if sym != LANGS[lang - 1]
            || o.quantity != i as u32
            || o.price != i as f64 * 0.5
            || o.fills_items() != [lang as u32]
        {
            fail(format!("order {} garbled: {o:?}", o.id));
        }
        if std::mem::replace(&mut seen[lang - 1][i as usize], true) {
            fail(format!("order {} arrived twice", o.id));
        }
        got += 1;
    }
    if got != 4 * n {
        fail(format!("{got} orders arrived, expected {}", 4 * n));
    }
    let t = v.snapshot().unwrap_or_else(|e| fail(format!("tally: {e}")));
    let expect: i64 = (1..=4).map(|l| l * 1_000_000 * n + n * (n - 1) / 2).sum();
    if t.total != expect || t.adds as i64 != 4 * n || t.by_lang_items() != [n as u32; 4] {
        fail(format!("tally {t:?}, expected total {expect} from {} additions", 4 * n));
    }
    println!("rust reader: {got} orders exactly once, total {}", t.total);
}

fn mismatch() {
    let o = Options::default();
    match Queue::<orders_v2_shoal::v2_Order>::open(Some("four.orders"), OpenMode::Open, 0, false, &o) {
        Err(e) if e.kind() == ErrorKind::Layout => println!("{}", e.detail()),
        Err(e) => fail(format!("expected a layout error, got {e}")),
        Ok(_) => fail("a queue of another Order layout opened".into()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<i64>().ok());
    match (args.get(1).map(String::as_str), num(2), num(3)) {
        (Some("writer"), Some(lang @ 1..=4), Some(n)) => writer(lang as usize, n),
        (Some("reader"), Some(n), _) => reader(n),
        (Some("mismatch"), _, _) => mismatch(),
        _ => {
            eprintln!("usage: shoal-interop writer LANG(1-4) N | reader N | mismatch");
            exit(2)
        }
    }
}
