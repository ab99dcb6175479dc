//! The code `shoal gen --lang rust` writes, compiled and used: layouts (the generated
//! compile-time assertions hold the C numbers; here the hash and the descriptor), proto2
//! defaults, accessors, validation with the C messages, and typed objects refusing
//! another build of a schema.
#![cfg(not(shoal_no_gen))]
use std::env;
use std::ffi::CStr;
use std::time::Duration;

use shoal::{Element, ErrorKind, OpenMode, Options, Queue, Value};
use shoal_tests::features_shoal::{Everything, Level, Scalars};
use shoal_tests::features2_shoal::{Defaults, Kind};
use shoal_tests::orders_shoal::{Order, Order_TYPE, Side};
use shoal_tests::orders_v2_shoal::v2_Order;

fn opts() -> Options {
    let root = env::var("SHOAL_TEST_ROOT").unwrap_or_else(|_| {
        let dir = env::temp_dir().join("shoal-rust-tests");
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_string_lossy().into_owned()
    });
    Options::new().root(&root).domain("rust-gen")
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

#[test]
fn layout_hash_and_descriptor() {
    let canon = "orders.Order{1:id:int64@0+8;2:symbol:string[8]@8+12;3:price:float64@24+8;\
                 4:quantity:uint32@32+4;5:side:enum(orders.Side)@36+4;6:fills:uint32*4@40+20;}\
                 size=64,align=8";
    assert_eq!(fnv1a(canon.as_bytes()), 0xbf38098f87e9011a);
    assert_eq!(Order::LAYOUT_HASH, 0xbf38098f87e9011a);
    assert_ne!(v2_Order::LAYOUT_HASH, Order::LAYOUT_HASH);
    let t = &Order_TYPE.0;
    assert_eq!(unsafe { CStr::from_ptr(t.name) }.to_str().unwrap(), "orders.Order");
    assert_eq!((t.size, t.align, t.nfields), (64, 8, 6));
    let fields = unsafe { std::slice::from_raw_parts(t.fields, 6) };
    let fills = &fields[5];
    assert_eq!(unsafe { CStr::from_ptr(fills.name) }.to_str().unwrap(), "fills");
    assert_eq!((fills.offset, fills.size, fills.max_count, fills.kind), (40, 20, 4, 6));
    assert_eq!(shoal::type_info::<Order>(), ("orders.Order".to_string(), 64, 0xbf38098f87e9011a));
    assert_eq!(std::mem::size_of::<Everything>() as u32, unsafe { (*Everything::shoal_type()).size });
}

#[test]
fn proto2_defaults() {
    let d = Defaults::default();
    assert_eq!(d.answer, 42);
    assert_eq!(d.big, i64::MIN);
    assert_eq!(d.ubig, u64::MAX);
    assert_eq!(d.ratio, 0.5);
    assert_eq!(d.top, f64::INFINITY);
    assert_eq!(d.bottom, f64::NEG_INFINITY);
    assert!(d.missing.is_nan());
    assert!(d.on.get());
    assert_eq!(d.name_str().unwrap(), "shoal");
    assert_eq!(d.magic_bytes(), b"\x01\xffq");
    assert_eq!(d.kind, Kind::FIRST);
    assert_eq!(d.second, Kind::SECOND);
    assert!(!d.has_answer.get());
    d.validate().unwrap();
}

#[test]
fn accessors_and_validation() {
    let mut o = Order::default();
    o.set_symbol("ACME").unwrap();
    assert_eq!(o.symbol_str().unwrap(), "ACME");
    let e = o.set_symbol("TOOLONGSYM").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert_eq!(e.detail(), "orders.Order.symbol: length 10 over max_len 8");
    assert_eq!(o.symbol_str().unwrap(), "ACME", "a refused set changes nothing");
    o.set_fills(&[1, 2, 3, 4]).unwrap();
    assert_eq!(o.push_fills(5).unwrap_err().detail(), "orders.Order.fills: count 5 over max_count 4");
    assert_eq!(o.fills_items(), [1, 2, 3, 4]);
    o.side = Side::SELL;
    o.validate().unwrap();

    let mut bad = o;
    bad.side = Side(7);
    assert_eq!(bad.validate().unwrap_err().detail(), "orders.Order.side: 7 is not a value of orders.Side");
    let mut bad = o;
    bad.symbol.len = 200;
    assert_eq!(bad.validate().unwrap_err().detail(), "orders.Order.symbol: length 200 over max_len 8");
    assert_eq!(bad.symbol.as_bytes().len(), 8, "reads never run past the capacity");

    let mut s = Scalars { f_bool: shoal::schema::Bool(2), ..Default::default() };
    assert_eq!(s.validate().unwrap_err().detail(), "feat.Scalars.f_bool: a bool holds neither 0 nor 1");
    s.f_bool = true.into();
    s.f_enum = Level::TOP;
    s.validate().unwrap();

    let mut ev = Everything::default();
    ev.validate().unwrap();
    ev.inner.tag.len = 4;
    assert_eq!(ev.validate().unwrap_err().detail(), "feat.Everything.Inner.tag: length 4 over max_len 3");
    ev.inner.tag.len = 0;
    ev.choice_case = 13;
    ev.choice.c_text.len = 10;
    assert_eq!(ev.validate().unwrap_err().detail(), "feat.Everything.c_text: length 10 over max_len 9");
    ev.choice_case = 99;
    assert_eq!(ev.validate().unwrap_err().detail(), "feat.Everything.choice: unknown case 99");
    ev.choice_case = 12;
    ev.choice.c_int = -5;
    ev.set_maybe_text("hey").unwrap();
    assert!(ev.has_maybe_text.get());
    ev.validate().unwrap();
}

#[test]
fn typed_objects_validate_and_refuse_other_layouts() {
    let o = opts();
    let mut ord = Order { id: 7, ..Default::default() };
    ord.set_symbol("XYZ").unwrap();
    let _ = shoal::unlink("gen.order", &o); // left by an interrupted run
    let v: Value<Order> = Value::open(Some("gen.order"), OpenMode::Create, Some(&ord), &o).unwrap();
    assert_eq!(v.get().unwrap().id, 7);
    let mut bad = ord;
    bad.side = Side(9);
    assert_eq!(v.set(&bad).unwrap_err().kind(), ErrorKind::InvalidData);
    assert_eq!(v.snapshot().unwrap().symbol_str().unwrap(), "XYZ");

    let e = Value::<v2_Order>::open(Some("gen.order"), OpenMode::Open, None, &o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Layout);
    let want = format!("orders.Order#{:016x}", Order::LAYOUT_HASH);
    let other = format!("orders.Order#{:016x}", v2_Order::LAYOUT_HASH);
    assert!(e.detail().contains(&want) && e.detail().contains(&other), "{}", e.detail());

    let q: Queue<Everything> = Queue::open(None, OpenMode::Create, 4, false, &o).unwrap();
    let mut ev = Everything::default();
    ev.set_r_int32(&[1, 2]).unwrap();
    ev.r_string.count = 1;
    ev.r_string.items[0].set(b"abcd", "r_string").unwrap();
    q.put(&ev, Duration::from_secs(1)).unwrap();
    let got = q.get(Duration::from_secs(1)).unwrap();
    assert_eq!(got.r_int32_items(), [1, 2]);
    assert_eq!(got.r_string_items()[0].as_str().unwrap(), "abcd");
    ev.r_level.count = 3;
    let e = q.put(&ev, Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.detail(), "feat.Everything.r_level: count 3 over max_count 2");
    shoal::unlink("gen.order", &o).unwrap();
}

#[test]
fn protobuf_form_read_by_protoc_and_back() {
    // to_pb writes what protoc reads as feat.Everything; from_pb gives the message back.
    use shoal::Message;
    use shoal_tests::common_shoal::Point;
    let mut ev = Everything::default();
    ev.inner.set_tag(&[7, 8]).unwrap();
    ev.origin.x = -3;
    ev.origin.set_label("home").unwrap();
    ev.set_r_int32(&[1, -2, 300]).unwrap();
    let p = Point { y: 9, ..Default::default() };
    ev.set_r_point(&[Point::default(), p]).unwrap();
    ev.choice_case = 12;
    ev.choice.c_int = -5;
    ev.set_maybe_text("hey").unwrap();
    let pb = ev.to_pb().unwrap();
    let back = Everything::from_pb(&pb).unwrap();
    assert_eq!(back.to_pb().unwrap(), pb);
    // SAFETY: the case word says c_int is the member set.
    let c_int = unsafe { back.choice.c_int };
    assert_eq!(
        (back.origin.x, back.r_int32_items(), back.choice_case, c_int),
        (-3, &[1, -2, 300][..], 12, -5)
    );
    assert!(Everything::from_pb(&[0x42, 5, 1]).is_err()); // a length past the end
    if let Ok(protoc) = env::var("SHOAL_PROTOC") {
        let src = env::var("SHOAL_SOURCE_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../..").into());
        let mut child = std::process::Command::new(protoc)
            .args([
                "--decode=feat.Everything",
                &format!("-I{src}/tests/codegen/proto"),
                &format!("-I{src}/schemas"),
            ])
            .arg("features.proto")
            .current_dir(format!("{src}/tests/codegen/proto"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&pb).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for want in [
            "tag: \"\\007\\010\"",
            "x: -3",
            "label: \"home\"",
            "r_int32: 300",
            "y: 9",
            "c_int: -5",
            "maybe_text: \"hey\"",
        ] {
            assert!(text.contains(want), "{want} in:\n{text}");
        }
    }
    ev.r_level.count = 3;
    assert_eq!(ev.to_pb().unwrap_err().detail(), "feat.Everything.r_level: count 3 over max_count 2");
}
