//! Golden vectors of SONiC's state-table message format, written by hand from its description
//! (issue 17, "Wire format"; the documentation of `statetable::wire`), not by the crate's encoder:
//!
//! ```text
//! [u64 LE pair count]
//! pair 0:  [u64 LE len][database] [u64 LE len][table]
//! per op:  [u64 LE len][key]      [u64 LE len][N in decimal ASCII]   N = 0: DEL, else SET
//!          then N × ([u64 LE len][field] [u64 LE len][value])
//! ```
//!
//! For each vector, `wire::encode` must produce exactly these bytes and `wire::decode` must return
//! exactly these operations. The same bytes are kept as `tests/golden/<name>.hex` for other
//! implementations (the Python peer, a C++ check against SONiC): lines starting with `#` are
//! comments, the other lines are hex digits, whitespace ignored. The test checks the files against
//! the literals here; `STATETABLE_GOLDEN_WRITE=1 cargo test -p statetable --test golden` rewrites
//! them from the literals (after a deliberate change of a vector).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use bytes::Bytes;
use statetable::wire::{decode, encode, Encoder, Operation};

/// A length or count as SONiC writes it: a 64-bit `size_t`, little-endian.
fn le(n: u64) -> [u8; 8] {
    n.to_le_bytes()
}

/// Concatenates pieces of a message.
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

/// One golden vector: its name (file `tests/golden/<name>.hex`), what it is, the message's bytes,
/// and what they mean.
struct Vector {
    name: &'static str,
    about: &'static str,
    bytes: Vec<u8>,
    db: &'static [u8],
    table: &'static [u8],
    ops: Vec<Operation>,
}

// Laid out one length-prefixed piece per line, as the format reads; rustfmt would undo that.
#[rustfmt::skip]
fn vectors() -> Vec<Vector> {
    vec![
        // (a) The whole message as one literal, every byte spelled out.
        Vector {
            name: "set_two_fields",
            about: "SET of 2 fields: APPL_DB / ROUTE_TABLE, key 10.0.0.0/24 -> nexthop=10.1.0.1, ifname=Ethernet0 (4 pairs)",
            bytes: b"\x04\x00\x00\x00\x00\x00\x00\x00\
                     \x07\x00\x00\x00\x00\x00\x00\x00APPL_DB\
                     \x0b\x00\x00\x00\x00\x00\x00\x00ROUTE_TABLE\
                     \x0b\x00\x00\x00\x00\x00\x00\x0010.0.0.0/24\
                     \x01\x00\x00\x00\x00\x00\x00\x002\
                     \x07\x00\x00\x00\x00\x00\x00\x00nexthop\
                     \x08\x00\x00\x00\x00\x00\x00\x0010.1.0.1\
                     \x06\x00\x00\x00\x00\x00\x00\x00ifname\
                     \x09\x00\x00\x00\x00\x00\x00\x00Ethernet0"
                .to_vec(),
            db: b"APPL_DB",
            table: b"ROUTE_TABLE",
            ops: vec![Operation::set("10.0.0.0/24", [("nexthop", "10.1.0.1"), ("ifname", "Ethernet0")])],
        },
        // (b)
        Vector {
            name: "del",
            about: "DEL: APPL_DB / ROUTE_TABLE, key 10.0.1.0/24 (2 pairs; field count \"0\")",
            bytes: cat(&[
                &le(2),
                &le(7), b"APPL_DB", &le(11), b"ROUTE_TABLE",
                &le(11), b"10.0.1.0/24", &le(1), b"0",
            ]),
            db: b"APPL_DB",
            table: b"ROUTE_TABLE",
            ops: vec![Operation::del("10.0.1.0/24")],
        },
        // (c)
        Vector {
            name: "batch_set_del_set",
            about: "batch of 3 in order: SET k1 {f1=v1, f2=v2}, DEL k2, SET k3 {empty=\"\"} (an empty value) on APPL_DB / PORT_TABLE (7 pairs)",
            bytes: cat(&[
                &le(7),
                &le(7), b"APPL_DB", &le(10), b"PORT_TABLE",
                &le(2), b"k1", &le(1), b"2",
                &le(2), b"f1", &le(2), b"v1",
                &le(2), b"f2", &le(2), b"v2",
                &le(2), b"k2", &le(1), b"0",
                &le(2), b"k3", &le(1), b"1",
                &le(5), b"empty", &le(0),
            ]),
            db: b"APPL_DB",
            table: b"PORT_TABLE",
            ops: vec![
                Operation::set("k1", [("f1", "v1"), ("f2", "v2")]),
                Operation::del("k2"),
                Operation::set("k3", [("empty", "")]),
            ],
        },
        // (d)
        Vector {
            name: "set_ten_fields",
            about: "SET of 10 fields (a two-digit field count, \"10\"): APPL_DB / T, key k -> f0=v0 ... f9=v9 (12 pairs)",
            bytes: cat(&[
                &le(12),
                &le(7), b"APPL_DB", &le(1), b"T",
                &le(1), b"k", &le(2), b"10",
                &le(2), b"f0", &le(2), b"v0",
                &le(2), b"f1", &le(2), b"v1",
                &le(2), b"f2", &le(2), b"v2",
                &le(2), b"f3", &le(2), b"v3",
                &le(2), b"f4", &le(2), b"v4",
                &le(2), b"f5", &le(2), b"v5",
                &le(2), b"f6", &le(2), b"v6",
                &le(2), b"f7", &le(2), b"v7",
                &le(2), b"f8", &le(2), b"v8",
                &le(2), b"f9", &le(2), b"v9",
            ]),
            db: b"APPL_DB",
            table: b"T",
            ops: vec![Operation::set(
                "k",
                [
                    ("f0", "v0"), ("f1", "v1"), ("f2", "v2"), ("f3", "v3"), ("f4", "v4"),
                    ("f5", "v5"), ("f6", "v6"), ("f7", "v7"), ("f8", "v8"), ("f9", "v9"),
                ],
            )],
        },
        // (e)
        Vector {
            name: "empty_names",
            about: "empty database and table names, an empty key and an empty field: SET k {\"\"=v}, DEL \"\" (4 pairs)",
            bytes: cat(&[
                &le(4),
                &le(0), &le(0),
                &le(1), b"k", &le(1), b"1",
                &le(0), &le(1), b"v",
                &le(0), &le(1), b"0",
            ]),
            db: b"",
            table: b"",
            ops: vec![Operation::set("k", [("", "v")]), Operation::del("")],
        },
        // (f)
        Vector {
            name: "binary",
            about: "binary (non-UTF-8) bytes everywhere: table T\\xff, SET key 00 ff fe 80 -> field c3 28 = value 00 01 ff 80 c0 0a 0d 00, then DEL of key ff (4 pairs)",
            bytes: cat(&[
                &le(4),
                &le(7), b"APPL_DB", &le(2), b"T\xff",
                &le(4), b"\x00\xff\xfe\x80", &le(1), b"1",
                &le(2), b"\xc3\x28", &le(8), b"\x00\x01\xff\x80\xc0\x0a\x0d\x00",
                &le(1), b"\xff", &le(1), b"0",
            ]),
            db: b"APPL_DB",
            table: b"T\xff",
            ops: vec![
                Operation::set(&b"\x00\xff\xfe\x80"[..], [(&b"\xc3\x28"[..], &b"\x00\x01\xff\x80\xc0\x0a\x0d\x00"[..])]),
                Operation::del(&b"\xff"[..]),
            ],
        },
    ]
}

#[test]
fn encode_gives_the_golden_bytes() {
    for v in vectors() {
        let got = encode(v.db, v.table, &v.ops).unwrap();
        assert_eq!(hex(&got), hex(&v.bytes), "{}: encode", v.name);
        // The incremental encoder writes the same.
        let mut enc = Encoder::new(v.db, v.table);
        for op in &v.ops {
            enc.push(op);
        }
        assert_eq!(hex(&enc.finish().unwrap()), hex(&v.bytes), "{}: Encoder", v.name);
    }
}

#[test]
fn decode_gives_the_golden_operations() {
    for v in vectors() {
        let batch = decode(&Bytes::from(v.bytes.clone())).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(batch.db, v.db, "{}: db", v.name);
        assert_eq!(batch.table, v.table, "{}: table", v.name);
        assert_eq!(batch.ops, v.ops, "{}: operations", v.name);
        // Field by field, so that a difference is named.
        for (got, want) in batch.ops.iter().zip(&v.ops) {
            assert_eq!(got.key, want.key, "{}", v.name);
            assert_eq!(got.op, want.op, "{}", v.name);
            assert_eq!(got.fields, want.fields, "{}", v.name);
        }
    }
}

/// A SET without fields goes out as a DEL, byte for byte (SONiC does the same).
#[test]
fn set_without_fields_is_sent_as_del() {
    let v = &vectors()[1];
    let set = Operation::set("10.0.1.0/24", Vec::<(Bytes, Bytes)>::new());
    assert_eq!(hex(&encode(v.db, v.table, &[set]).unwrap()), hex(&v.bytes));
}

#[test]
fn hex_files_match_the_literals() {
    let dir = golden_dir();
    let write = std::env::var_os("STATETABLE_GOLDEN_WRITE").is_some();
    let mut names = Vec::new();
    for v in vectors() {
        let path = dir.join(format!("{}.hex", v.name));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, render(&v)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (STATETABLE_GOLDEN_WRITE=1 writes it from the literal)", path.display())
        });
        assert!(text.starts_with("# "), "{}: starts with a comment saying what it is", path.display());
        assert_eq!(hex(&parse(&text)), hex(&v.bytes), "{} differs from the literal", path.display());
        names.push(format!("{}.hex", v.name));
    }
    // No stale file: every .hex in the directory is a vector checked here.
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    files.sort();
    names.sort();
    assert_eq!(files, names, "tests/golden/ holds exactly the vectors of this test");
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a `.hex` file: `#` lines skipped, whitespace ignored.
fn parse(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// A `.hex` file: what it is, the format, then the message one length-prefixed piece per line
/// (the pair count, then each length with the bytes it announces), so a reader can follow it.
fn render(v: &Vector) -> String {
    let mut out = format!(
        "# {}\n# {} bytes. One ZeroMQ frame of SONiC's state-table format: u64 LE pair count, then pairs of\n\
         # [u64 LE len][bytes]; pair 0 is (db, table), then per op (key, field count N in ASCII) and N\n\
         # (field, value) pairs. Lines starting with '#' are comments; the rest is hex, whitespace ignored.\n",
        v.about,
        v.bytes.len()
    );
    let b = &v.bytes;
    out.push_str(&hex(&b[..8]));
    out.push('\n');
    let mut i = 8;
    while i < b.len() {
        let len = u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) as usize;
        out.push_str(&hex(&b[i..i + 8]));
        if len > 0 {
            out.push(' ');
            out.push_str(&hex(&b[i + 8..i + 8 + len]));
        }
        out.push('\n');
        i += 8 + len;
    }
    out
}
