//! Encoded messages in Rust: the generated structs of owned fields of messages that have
//! no fixed layout, their protobuf codec (shoal::pb), and their crossing to C.
//!
//! interop.Note (tests/interop/encoded_note.proto: unbounded string, sint64 list, map,
//! open enum, oneof, nested message) goes through a queue of encoded messages between
//! this process and the C helper of tests/interop (`encoded_helper`,
//! $SHOAL_ENCODED_HELPER), both ways, every field compared; features.Journal carries the
//! schema's bounds (max_len, max_count) checked on both encode and decode. Corrupt bytes
//! (truncated, a wrong wire type, a length past the end, an overlong varint, a string
//! that is not UTF-8, random mutations) give errors and never panic.
#![cfg(not(shoal_no_gen))]
use std::env;
use std::process::Command;
use std::time::Duration;

use shoal::{ByteQueue, ErrorKind, Message, OpenMode, Options, Pipe};
use shoal_tests::encoded_note_shoal::{Kind, Meta, Note, Note__extra, Note_TagsEntry};
use shoal_tests::encoded2_shoal::{Color, Tree};
use shoal_tests::features_shoal::{Journal, Level, Tiny};

const SEC: Duration = Duration::from_secs(60);

fn root() -> String {
    shoal_tests::test_root()
}

const DOMAIN: &str = "rust-enc";

fn opts() -> Options {
    Options::new().root(&root()).domain(DOMAIN)
}

/// Note i, as make_note() in encoded_helper.c builds it.
fn note(i: i64) -> Note {
    Note {
        seq: i as i32,
        text: format!("note {i} \u{e9}"),
        values: vec![-i, i * 1_000_000_000_000],
        tags: vec![
            Note_TagsEntry { key: "n".into(), value: i as i32 },
            Note_TagsEntry { key: "neg".into(), value: -i as i32 },
        ],
        kind: Kind((i % 4) as i32), // 3: a number the open enum does not name, kept
        extra: Some(if i % 2 == 1 {
            Note__extra::why(format!("odd {i}"))
        } else {
            Note__extra::code(i as u64 * 7)
        }),
        meta: Some(Box::new(Meta { blob: vec![0, 0xff, i as u8] })),
    }
}

/// The note with its map entries in key order (a map's order is not kept).
fn sorted(mut n: Note) -> Note {
    n.tags.sort_by(|a, b| a.key.cmp(&b.key));
    n
}

#[test]
fn note_round_trip() {
    for i in 0..20 {
        let n = note(i);
        let b = n.to_pb().unwrap();
        assert_eq!(Note::from_pb(&b).unwrap(), n);
    }
    let empty = Note::default();
    assert!(empty.to_pb().unwrap().is_empty(), "proto3 defaults are not written");
    assert_eq!(Note::from_pb(&[]).unwrap(), empty);
    assert_eq!(Kind(3).name(), None);
}

#[test]
fn wire_bytes_as_protoc_writes_them() {
    let t = Tiny { v: 150 };
    assert_eq!(t.to_pb().unwrap(), [0x08, 0x96, 0x01]);
    let n = Note { seq: -1, values: vec![-1, 1], ..Default::default() };
    // int32 -1: ten bytes; sint64 packed: zigzag 1, 2
    let want = [&[0x08u8][..], &[0xff; 9], &[0x01, 0x1a, 0x02, 0x01, 0x02]].concat();
    assert_eq!(n.to_pb().unwrap(), want);
    // unpacked elements of a packed field, and an unknown field, are accepted
    let got = Note::from_pb(&[0x18, 0x04, 0x18, 0x03, 0xf8, 0x01, 0x05]).unwrap();
    assert_eq!(got.values, vec![2, -2]);
    // a singular nested message seen twice merges
    let got = Note::from_pb(&[0x42, 0x03, 0x0a, 0x01, 0x07, 0x42, 0x00]).unwrap();
    assert_eq!(got.meta.unwrap().blob, vec![7]);
}

#[test]
fn bounds_checked_both_ways() {
    let mut j = Journal { text: "any length".repeat(100), level: Level::HIGH, ..Default::default() };
    j.tags.push("12345678".into());
    j.ids = vec![1, 2, 3, 4];
    let b = j.to_pb().unwrap();
    let back = Journal::from_pb(&b).unwrap();
    assert_eq!((&back.text, &back.tags, &back.ids, back.level), (&j.text, &j.tags, &j.ids, j.level));
    j.tags.push("123456789".into());
    let e = j.to_pb().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(e.to_string().contains("feat.Journal.tags: length 9 over max_len 8"), "{e}");
    j.tags.pop();
    j.ids.push(5);
    let e = j.to_pb().unwrap_err();
    assert!(e.to_string().contains("feat.Journal.ids: count 5 over max_count 4"), "{e}");
    // five ids in the bytes: refused on decode too
    let mut bytes = b.clone();
    bytes.extend_from_slice(&[0x30, 0x05]);
    let e = Journal::from_pb(&bytes).err().expect("five ids refused");
    assert!(e.to_string().contains("count 5 over max_count 4"), "{e}");
}

fn refused(bytes: &[u8], what: &str) {
    let e = Note::from_pb(bytes).expect_err(what);
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{what}: {e}");
    assert!(e.to_string().contains("interop."), "{what}: {e}");
}

#[test]
fn corrupt_bytes_are_errors() {
    let good = note(5).to_pb().unwrap();
    for n in 0..good.len() {
        // every prefix either decodes (it ends between fields) or is an error
        let _ = Note::from_pb(&good[..n]);
    }
    refused(&good[..good.len() - 1], "truncated");
    refused(&[0x0a, 0x00], "seq (varint) sent length-delimited");
    refused(&[0x15, 0, 0, 0, 0], "text (length-delimited) sent as 32 bits");
    refused(&[0x12, 0x10, b'a', b'b'], "length past the end");
    refused(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], "huge length");
    refused(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "11-byte varint");
    refused(&[0x12, 0x02, 0xc3, 0x28], "a string that is not UTF-8");
    refused(&[0x03], "a group");
    refused(&[0x00, 0x00], "field number 0");
    refused(&[0x1a, 0x03, 0x01, 0x80, 0x80], "a packed element past its field");
    refused(&[0x42, 0x02, 0x0a, 0x05], "a nested message's length past its field");
    // random mutations of a good encoding: no panic, whatever they decode to
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..20000 {
        let mut b = good.clone();
        for _ in 0..1 + rnd() % 4 {
            let at = (rnd() as usize) % b.len();
            match rnd() % 3 {
                0 => b[at] = rnd() as u8,
                1 => b.truncate(at.max(1)),
                _ => b.insert(at, rnd() as u8),
            }
        }
        match Note::from_pb(&b) {
            Ok(n) => {
                ok += 1;
                n.to_pb().expect("what decoded and checked encodes");
            }
            Err(e) => {
                err += 1;
                assert_eq!(e.kind(), ErrorKind::InvalidData);
            }
        }
    }
    assert!(ok > 0 && err > 0, "{ok} decoded, {err} refused");
}

/// The bytes of a Tree with id 1 nested `depth` levels down through `next`.
fn deep_tree(depth: usize) -> Vec<u8> {
    let mut b = vec![0x08, 0x01];
    for _ in 0..depth {
        let mut outer = vec![0x08, 0x01, 0x2a];
        let mut n = b.len();
        while n >= 0x80 {
            outer.push(n as u8 | 0x80);
            n >>= 7;
        }
        outer.push(n as u8);
        outer.extend_from_slice(&b);
        b = outer;
    }
    b
}

#[test]
fn proto2_required_closed_enum_and_depth() {
    let t = Tree {
        id: 7,
        label: Some("root".into()),
        color: Some(Color::GREEN),
        children: vec![Tree { id: 8, ..Default::default() }],
        next: Some(Box::new(Tree { id: 0, ..Default::default() })),
    };
    let b = t.to_pb().unwrap();
    assert_eq!(Tree::from_pb(&b).unwrap(), t);
    // a required field is written even at zero, and must be in the bytes
    assert_eq!(Tree::default().to_pb().unwrap(), [0x08, 0x00]);
    let e = Tree::from_pb(&[0x12, 0x01, b'a']).unwrap_err();
    assert!(e.to_string().contains("enc2.Tree.id: required field missing"), "{e}");
    let e = Tree::from_pb(&[0x08, 0x01, 0x2a, 0x00]).unwrap_err();
    assert!(e.to_string().contains("enc2.Tree.id: required field missing"), "nested: {e}");
    // a closed enum refuses numbers it does not name, on both sides
    let e = Tree::from_pb(&[0x08, 0x01, 0x18, 0x07]).unwrap_err();
    assert!(e.to_string().contains("enc2.Tree.color: 7 is not a value of enc2.Color"), "{e}");
    let bad = Tree { color: Some(Color(9)), ..Default::default() };
    assert_eq!(bad.to_pb().unwrap_err().kind(), ErrorKind::InvalidData);
    // nesting: 100 levels decode, more are refused (no stack overflow)
    assert!(Tree::from_pb(&deep_tree(100)).is_ok());
    let e = Tree::from_pb(&deep_tree(101)).unwrap_err();
    assert!(e.to_string().contains("nested more than 100 deep"), "{e}");
    assert!(Tree::from_pb(&deep_tree(1000)).is_err());
}

#[test]
fn queue_and_pipe_carry_encoded_messages() {
    let q = ByteQueue::open(None, OpenMode::Create, 4096, 8, false, &opts()).unwrap();
    q.put_msg(&note(3), SEC).unwrap();
    assert_eq!(q.get_msg::<Note>(SEC).unwrap(), note(3));
    q.put(&[0x12, 0x10], SEC).unwrap();
    assert_eq!(q.get_msg::<Note>(SEC).unwrap_err().kind(), ErrorKind::InvalidData);
    let (a, b) = Pipe::pair(None, 4096, 8, &opts()).unwrap();
    a.send_msg(&note(4), SEC).unwrap();
    assert_eq!(b.recv_msg::<Note>(SEC).unwrap(), note(4));
    let mut j = Journal::default();
    j.ids = vec![0; 5];
    assert_eq!(a.send_msg(&j, SEC).unwrap_err().kind(), ErrorKind::InvalidData);
    assert!(!b.poll(Duration::ZERO).unwrap(), "an invalid message is not sent");
}

fn helper(args: &[&str]) -> Option<std::process::Output> {
    let Ok(path) = env::var("SHOAL_ENCODED_HELPER") else {
        eprintln!("SHOAL_ENCODED_HELPER not set: the C side is skipped");
        return None;
    };
    let out = Command::new(path)
        .args(args)
        .env("SHOAL_ROOT", root())
        .env("SHOAL_DOMAIN", DOMAIN)
        .output()
        .expect("run encoded_helper");
    Some(out)
}

const N: i64 = 200;

#[test]
fn notes_between_rust_and_c() {
    let name = format!("rs-enc-{}", std::process::id());
    let q = ByteQueue::open(Some(&name), OpenMode::Create, 4096, 16, false, &opts()).unwrap();
    // Rust puts, C gets and checks every field
    let put = std::thread::spawn({
        let name = name.clone();
        move || {
            let q = ByteQueue::open(Some(&name), OpenMode::Open, 4096, 16, false, &opts()).unwrap();
            for i in 1..=N {
                q.put_msg(&note(i), SEC).unwrap();
            }
        }
    });
    let Some(out) = helper(&["consume", &name, &N.to_string()]) else {
        for i in 1..=N {
            assert_eq!(q.get_msg::<Note>(SEC).unwrap(), note(i));
        }
        put.join().unwrap();
        return;
    };
    put.join().unwrap();
    assert!(out.status.success(), "C consumer: {}", String::from_utf8_lossy(&out.stderr));
    // C puts, Rust gets
    let get =
        std::thread::spawn(move || (1..=N).map(|i| (i, q.get_msg::<Note>(SEC).unwrap())).collect::<Vec<_>>());
    let out = helper(&["produce", &name, &N.to_string()]).unwrap();
    assert!(out.status.success(), "C producer: {}", String::from_utf8_lossy(&out.stderr));
    for (i, got) in get.join().unwrap() {
        assert_eq!(sorted(got), sorted(note(i)), "note {i}");
    }
    shoal::unlink(&name, &opts()).ok();
}
