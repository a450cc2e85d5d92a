//! Hostile input: malformed state-table messages against the decoder, and against a real `Server`
//! over tcp from a hostile peer (a plain zmtp PUSH, or raw TCP for malformed ZMTP), while a
//! well-behaved producer keeps working; and a consumer that never pops, which must hold the
//! producers back rather than grow memory.
//!
//! The tests of this file run one at a time (`serial()`): the memory checks read the process's
//! resident size, which tests running beside them would disturb.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use statetable::wire::{decode, encode, DecodeError, EncodeError, Op, Operation, MAX_MESSAGE_BYTES};
use statetable::{
    Client, ClientOptions, ConsumerOptions, ConsumerStateTable, Error, ProducerStateTable, Server,
    ServerOptions, ServerStats,
};
use zmtp::{Socket, SocketType};

// ---------------------------------------------------------------------------------------------
// Helpers

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn le(n: u64) -> [u8; 8] {
    n.to_le_bytes()
}

/// A message with the given pair count and pairs, written by hand (not by the crate's encoder), so
/// that counts and lengths can lie.
fn raw(count: u64, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut m = le(count).to_vec();
    for (k, v) in pairs {
        m.extend_from_slice(&le(k.len() as u64));
        m.extend_from_slice(k);
        m.extend_from_slice(&le(v.len() as u64));
        m.extend_from_slice(v);
    }
    m
}

/// A message whose pair count is right.
fn msg(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    raw(pairs.len() as u64, pairs)
}

/// Valid messages of several shapes (SET, DEL, a mixed batch, many fields, empty strings).
fn valid_messages() -> Vec<Vec<u8>> {
    vec![
        msg(&[
            (b"APPL_DB", b"ROUTE_TABLE"),
            (b"10.0.0.0/24", b"2"),
            (b"nexthop", b"10.1.0.1"),
            (b"ifname", b"Ethernet0"),
        ]),
        msg(&[(b"APPL_DB", b"ROUTE_TABLE"), (b"10.0.1.0/24", b"0")]),
        msg(&[(b"D", b"T"), (b"k1", b"1"), (b"f", b"v"), (b"k2", b"0"), (b"k3", b"1"), (b"e", b"")]),
        msg(&[(b"", b""), (b"", b"1"), (b"", b"")]),
        msg(&[(b"D", b"T")]),
    ]
}

/// Offsets of every length field (after the pair count) of a well-formed message, by walking it.
fn length_offsets(m: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < m.len() {
        out.push(pos);
        let len = u64::from_le_bytes(m[pos..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    assert_eq!(pos, m.len(), "walked off the end of a valid message");
    out
}

/// The bytes of a field count after (db "D", table "T"), key "k": where `FieldCount` must point.
const COUNT_AT: usize = 8 + (8 + 1 + 8 + 1) + (8 + 1) + 8;

/// A message with field count `count` for key "k", followed by one (f, v) pair.
fn with_count(count: &[u8]) -> Vec<u8> {
    msg(&[(b"D", b"T"), (b"k", count), (b"f", b"v")])
}

/// Field counts that are not plain decimal digits (SONiC's `std::stoi` takes several of them).
const BAD_COUNTS: &[&[u8]] = &[
    b"abc",
    b"-1",
    b"1a",
    b" 1",
    b"1 ",
    b"",
    b"+1",
    b"0x1",
    b"1.0",
    b"1\0",
    "\u{0661}".as_bytes(),   // ARABIC-INDIC DIGIT ONE: a digit to Unicode, not to us
    b"99999999999999999999", // 20 digits
    b"18446744073709551616", // u64::MAX + 1
    b"00000000000000000001", // 20 digits, value 1
];

/// Every kind of malformed single-frame message, named: what the server must count as malformed.
fn malformed_messages() -> Vec<(String, Vec<u8>)> {
    let good = valid_messages().swap_remove(0);
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("empty frame".into(), Vec::new()),
        ("7 bytes".into(), good[..7].to_vec()),
        ("truncated in pair 0".into(), good[..20].to_vec()),
        ("truncated in the last value".into(), good[..good.len() - 1].to_vec()),
        ("pair count 0".into(), raw(0, &[(b"D", b"T")])),
        ("pair count 0, nothing else".into(), le(0).to_vec()),
        ("pair count +1".into(), raw(3, &[(b"D", b"T"), (b"k", b"0")])),
        ("pair count u64::MAX".into(), raw(u64::MAX, &[(b"D", b"T"), (b"k", b"0")])),
        ("pair count 2^63".into(), raw(1 << 63, &[(b"D", b"T"), (b"k", b"0")])),
        ("field count beyond the pairs".into(), with_count(b"2")),
        ("field count 19 nines".into(), with_count(b"9999999999999999999")),
        ("trailing byte".into(), [&good[..], b"\0"].concat()),
        ("trailing pair".into(), [&good[..], &le(0), &le(0)].concat()),
        ("two messages in one frame".into(), [&good[..], &good[..]].concat()),
    ];
    for bad in BAD_COUNTS {
        out.push((format!("field count {:?}", String::from_utf8_lossy(bad)), with_count(bad)));
    }
    for (i, at) in length_offsets(&good).into_iter().enumerate() {
        let left = (good.len() - at - 8) as u64;
        for (what, len) in [
            ("left + 1", left + 1),
            ("u64::MAX", u64::MAX),
            ("u64::MAX - 7", u64::MAX - 7),
            ("overflows pos + len", u64::MAX - at as u64 - 7),
        ] {
            let mut m = good.clone();
            m[at..at + 8].copy_from_slice(&le(len));
            out.push((format!("length {i} = {what}"), m));
        }
    }
    out
}

/// The process's resident set size in bytes (`VmRSS` of /proc/self/status).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

const MIB: u64 = 1024 * 1024;

/// Runs an async test on its own runtime, alone (see `serial`).
fn run<F: std::future::Future>(test: F) -> F::Output {
    let _g = serial();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(test)
}

/// Polls `f` until it holds, failing after `secs` seconds with `what`.
async fn until(secs: u64, what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {}", what());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A server on a free loopback port with a consumer table for APPL_DB / T.
async fn server(options: ConsumerOptions, server: ServerOptions) -> (Server, ConsumerStateTable, String) {
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..server }).await.unwrap();
    let table = ConsumerStateTable::new(&server, "APPL_DB", "T", options);
    let endpoint = server.bind().await.unwrap();
    (server, table, endpoint)
}

/// A plain zmtp PUSH: sends whatever bytes it is given, no encoder in the way.
fn hostile_push(endpoint: &str) -> Socket {
    let s = Socket::new(SocketType::Push).unwrap();
    s.connect(endpoint).unwrap();
    s
}

/// A well-behaved producer sends a SET and a DEL; the table must receive exactly them.
async fn good_producer_gets_through(endpoint: &str, table: &ConsumerStateTable, tag: &str) {
    let client = Client::connect(endpoint, ClientOptions::default()).unwrap();
    let producer = ProducerStateTable::new(&client, "APPL_DB", "T");
    let key = format!("good-{tag}");
    producer.set(key.as_bytes(), &[("f", "v")]).await.unwrap();
    producer.del(key.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let batch = tokio::time::timeout(Duration::from_secs(20), table.next_batch())
            .await
            .expect("the well-behaved producer's operations arrive");
        got.extend(batch);
    }
    assert_eq!(got, vec![Operation::set(key.clone(), [("f", "v")]), Operation::del(key)]);
}

// ---------------------------------------------------------------------------------------------
// Decoder level

#[test]
fn every_prefix_is_refused() {
    let _g = serial();
    for m in valid_messages() {
        assert!(decode(&Bytes::from(m.clone())).is_ok());
        for n in 0..m.len() {
            match decode(&Bytes::copy_from_slice(&m[..n])) {
                Err(DecodeError::Truncated { .. } | DecodeError::PairCount { .. }) => {}
                other => panic!("prefix of {n} of {} bytes: {other:?}", m.len()),
            }
        }
    }
}

#[test]
fn pair_count_beyond_the_frame() {
    let _g = serial();
    let m = msg(&[(b"D", b"T"), (b"k", b"1"), (b"f", b"v")]);
    for count in [4, 5, 1 << 32, (1 << 63) - 1, 1 << 63, u64::MAX - 1, u64::MAX] {
        let mut bad = m.clone();
        bad[..8].copy_from_slice(&le(count));
        match decode(&Bytes::from(bad)) {
            Err(DecodeError::Truncated { .. } | DecodeError::PairCount { .. }) => {}
            other => panic!("pair count {count}: {other:?}"),
        }
    }
    // A count no frame of this size could hold is refused before any pair is read.
    let mut bad = m.clone();
    bad[..8].copy_from_slice(&le(u64::MAX));
    assert_eq!(decode(&Bytes::from(bad)), Err(DecodeError::PairCount { count: u64::MAX, len: m.len() }));
}

#[test]
fn lengths_beyond_the_frame() {
    let _g = serial();
    for m in valid_messages() {
        for at in length_offsets(&m) {
            let left = m.len() - at - 8;
            let lens = [
                left as u64 + 1,
                left as u64 + 4096,
                u32::MAX as u64,
                1 << 63,
                u64::MAX,
                u64::MAX - 7,
                u64::MAX - at as u64 - 7, // pos + len wraps to 0
                u64::MAX - at as u64,     // pos + len wraps to a small number
                u64::MAX - left as u64,   // left + len wraps
            ];
            for len in lens {
                let mut bad = m.clone();
                bad[at..at + 8].copy_from_slice(&le(len));
                assert_eq!(
                    decode(&Bytes::from(bad)),
                    Err(DecodeError::Truncated { at: at + 8, needed: len, available: left }),
                    "length at {at} set to {len}"
                );
            }
        }
    }
}

#[test]
fn field_count_not_a_number() {
    let _g = serial();
    assert!(decode(&Bytes::from(with_count(b"1"))).is_ok());
    for bad in BAD_COUNTS {
        assert_eq!(
            decode(&Bytes::from(with_count(bad))),
            Err(DecodeError::FieldCount { at: COUNT_AT }),
            "count {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// SONiC's `std::stoi` takes leading zeros, and so do we (they are digits); re-encoding writes the
/// count without them.
#[test]
fn field_count_with_leading_zeros() {
    let _g = serial();
    let b = decode(&Bytes::from(with_count(b"0001"))).unwrap();
    assert_eq!(b.ops, vec![Operation::set("k", [("f", "v")])]);
    assert_eq!(encode(&b.db, &b.table, &b.ops).unwrap(), with_count(b"1"));
    let b = decode(&Bytes::from(msg(&[(b"D", b"T"), (b"k", b"00")]))).unwrap();
    assert_eq!(b.ops, vec![Operation::del("k")]);
}

#[test]
fn field_count_beyond_the_pairs_left() {
    let _g = serial();
    assert_eq!(
        decode(&Bytes::from(with_count(b"2"))),
        Err(DecodeError::MissingFields { at: 8 + 18, fields: 2, left: 1 })
    );
    assert_eq!(
        decode(&Bytes::from(with_count(b"9999999999999999999"))),
        Err(DecodeError::MissingFields { at: 8 + 18, fields: 9_999_999_999_999_999_999, left: 1 })
    );
    // The last operation announces a field and nothing follows.
    assert_eq!(
        decode(&Bytes::from(msg(&[(b"D", b"T"), (b"k", b"1")]))),
        Err(DecodeError::MissingFields { at: 8 + 18, fields: 1, left: 0 })
    );
    // Within the count, but the fields of the first SET eat the second operation's pair.
    assert_eq!(
        decode(&Bytes::from(msg(&[(b"D", b"T"), (b"a", b"2"), (b"f", b"v"), (b"b", b"0")]))).unwrap().ops,
        vec![Operation::set("a", [("f", "v"), ("b", "0")])],
        "a count is a count of pairs, whatever they hold"
    );
}

#[test]
fn pair_count_zero() {
    let _g = serial();
    assert_eq!(decode(&Bytes::from(le(0).to_vec())), Err(DecodeError::NoTable));
    assert_eq!(decode(&Bytes::from(raw(0, &[(b"D", b"T")]))), Err(DecodeError::NoTable));
    // Count 1: a (database, table) and no operations is a valid, empty batch (the synchronous
    // server's empty reply).
    let b = decode(&Bytes::from(raw(1, &[(b"D", b"T")]))).unwrap();
    assert!(b.ops.is_empty());
}

#[test]
fn trailing_bytes() {
    let _g = serial();
    for m in valid_messages() {
        for extra in [&b"\0"[..], &[0; 16], &m] {
            assert_eq!(
                decode(&Bytes::from([&m[..], extra].concat())),
                Err(DecodeError::TrailingBytes(extra.len())),
                "{} bytes after a message of {}",
                extra.len(),
                m.len()
            );
        }
    }
}

#[test]
fn sixteen_mib_is_too_large() {
    let _g = serial();
    let max = MAX_MESSAGE_BYTES;
    assert_eq!(max, 16 * 1024 * 1024);
    for n in [max, max + 1] {
        assert_eq!(decode(&Bytes::from(vec![0u8; n])), Err(DecodeError::TooLarge(n)));
    }
    // The largest message there is: one SET whose value fills it to 16 MiB - 1 bytes. Header 8,
    // pair 0 (D, T) 18, the key pair (k, "1") 18, the field pair (f, value) 17 + value.
    let value = vec![b'x'; max - 1 - 8 - 18 - 18 - 17];
    let largest =
        encode(b"D", b"T", &[Operation::set("k", [(Bytes::from_static(b"f"), Bytes::from(value.clone()))])])
            .unwrap();
    assert_eq!(largest.len(), max - 1);
    assert_eq!(decode(&largest).unwrap().ops[0].fields[0].1.len(), value.len());
    // One byte more is refused by both sides.
    let mut more = value;
    more.push(b'x');
    assert!(matches!(
        encode(b"D", b"T", &[Operation::set("k", [(Bytes::from_static(b"f"), Bytes::from(more.clone()))])]),
        Err(EncodeError::TooLarge { .. })
    ));
    let raw_more = raw(3, &[(b"D", b"T"), (b"k", b"1"), (b"f", &more)]);
    assert_eq!(raw_more.len(), max);
    assert_eq!(decode(&Bytes::from(raw_more)), Err(DecodeError::TooLarge(max)));
}

#[test]
fn every_malformed_message_is_refused() {
    let _g = serial();
    for (what, m) in malformed_messages() {
        assert!(decode(&Bytes::from(m)).is_err(), "{what} was accepted");
    }
}

/// One pair of a generated batch.
fn bytes_up_to(n: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..n).prop_map(Bytes::from)
}

fn operation() -> impl Strategy<Value = Operation> {
    (bytes_up_to(12), any::<bool>(), prop::collection::vec((bytes_up_to(8), bytes_up_to(8)), 0..12))
        .prop_map(|(key, set, fields)| Operation { key, op: if set { Op::Set } else { Op::Del }, fields })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _g = serial();
        let _ = decode(&Bytes::from(bytes));
    }

    /// Valid messages with one length or count overwritten, or cut, or a byte changed: the hostile
    /// inputs that get past the first checks.
    #[test]
    fn decode_never_panics_on_damaged_messages(
        ops in prop::collection::vec(operation(), 0..6),
        at in any::<prop::sample::Index>(),
        value in prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(1 << 63), 0u64..300, any::<u64>()],
        how in 0u8..3,
    ) {
        let _g = serial();
        let good = encode(b"APPL_DB", b"T", &ops).unwrap().to_vec();
        let mut bad = good.clone();
        let i = at.index(bad.len());
        match how {
            0 => {
                let end = (i + 8).min(bad.len());
                bad[i..end].copy_from_slice(&value.to_le_bytes()[..end - i]);
            }
            1 => bad.truncate(i),
            _ => bad[i] ^= (value as u8) | 1,
        }
        if let Ok(batch) = decode(&Bytes::from(bad)) {
            let again = encode(&batch.db, &batch.table, &batch.ops).unwrap();
            prop_assert_eq!(decode(&again).unwrap(), batch);
        }
    }

    #[test]
    fn encode_decode_round_trip(
        db in bytes_up_to(16),
        table in bytes_up_to(16),
        ops in prop::collection::vec(operation(), 0..16),
    ) {
        let _g = serial();
        let wire = encode(&db, &table, &ops).unwrap();
        let batch = decode(&wire).unwrap();
        prop_assert_eq!(&batch.db, &db);
        prop_assert_eq!(&batch.table, &table);
        // What arrives: a SET without fields is a DEL, and a DEL carries no fields.
        let expected: Vec<Operation> = ops
            .iter()
            .map(|o| match o.as_sent() {
                Op::Set => o.clone(),
                Op::Del => Operation::del(o.key.clone()),
            })
            .collect();
        prop_assert_eq!(batch.ops, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Socket level

/// Every malformed message, a 2-frame message and a message of exactly 16 MiB from a hostile PUSH:
/// each counted as malformed; then 16 MiB + 1, which ends the hostile connection; a well-behaved
/// producer is served throughout.
#[test]
fn hostile_peer_is_counted_and_dropped_and_others_are_served() {
    run(async {
        let (server, table, endpoint) = server(ConsumerOptions::default(), ServerOptions::default()).await;
        let hostile = hostile_push(&endpoint);
        let mut expected = 0u64;
        for (_, m) in malformed_messages() {
            hostile.send(m).await.unwrap();
            expected += 1;
        }
        let good = valid_messages().swap_remove(1);
        hostile.send(vec![Bytes::from(good.clone()), Bytes::from(good)]).await.unwrap();
        expected += 1;
        let exactly_16_mib = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES]);
        hostile.send(exactly_16_mib).await.unwrap();
        expected += 1;
        until(
            60,
            || format!("{expected} malformed, stats {:?}", server.stats()),
            || server.stats().malformed == expected,
        )
        .await;
        let s = server.stats();
        assert_eq!(
            (s.messages, s.operations, s.unknown_table, s.peers_dropped),
            (expected, 0, 0, 0),
            "{s:?}"
        );
        good_producer_gets_through(&endpoint, &table, "before").await;

        // 16 MiB + 1: the socket's max_msg_size ends the connection on the frame's header.
        hostile.send(vec![0u8; MAX_MESSAGE_BYTES + 1]).await.unwrap();
        until(
            60,
            || format!("a dropped peer, stats {:?}", server.stats()),
            || server.stats().peers_dropped >= 1,
        )
        .await;
        let s = server.stats();
        assert_eq!(s.malformed, expected, "the oversize message was not received: {s:?}");
        assert_eq!(s.peers_dropped, 1, "{s:?}");
        good_producer_gets_through(&endpoint, &table, "after").await;
        // Counted once the handler has the batch, so possibly just after the table could pop it.
        until(20, || format!("4 operations, {:?}", server.stats()), || server.stats().operations == 4).await;
        hostile.close().await;
        server.close().await;
    });
}

/// Raw TCP: garbage instead of a ZMTP greeting, and after a valid handshake a frame header that
/// announces 16 MiB + 1 bytes, or 2^63 - 1: each connection is ended at once (the body is never
/// sent, so the server cannot have waited for it) and counted; the server keeps serving.
#[test]
fn malformed_zmtp_ends_that_connection() {
    run(async {
        let (server, table, endpoint) = server(ConsumerOptions::default(), ServerOptions::default()).await;
        let addr = endpoint.trim_start_matches("tcp://").to_owned();

        // The control: the same hand-made handshake and a short frame carrying a valid message get
        // through, so what ends the connections below is the frame header, not the handshake.
        let a = addr.clone();
        let tcp = tokio::task::spawn_blocking(move || {
            let mut tcp = TcpStream::connect(&a).unwrap();
            let body = msg(&[(b"APPL_DB", b"T"), (b"raw", b"0")]);
            let mut stream = [null_greeting(), ready_push(), vec![0x00, body.len() as u8]].concat();
            stream.extend_from_slice(&body);
            tcp.write_all(&stream).unwrap();
            tcp
        })
        .await
        .unwrap();
        // Kept open until the operation has arrived, then closed in order.
        let got = tokio::time::timeout(Duration::from_secs(20), table.next_batch()).await;
        drop(tcp);
        assert_eq!(got.expect("the raw handshake's message arrives"), vec![Operation::del("raw")]);
        assert_eq!(server.stats().messages, 1);

        let cases = ["garbage greeting", "frame of 16 MiB + 1", "frame of 2^63 - 1"];
        for (done, case) in cases.into_iter().enumerate() {
            let addr = addr.clone();
            let closed = tokio::task::spawn_blocking(move || {
                let mut tcp = TcpStream::connect(&addr).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                match case {
                    "garbage greeting" => tcp.write_all(&[0x55; 64]).unwrap(),
                    _ => {
                        tcp.write_all(&null_greeting()).unwrap();
                        tcp.write_all(&ready_push()).unwrap();
                        let len: u64 = if case == "frame of 16 MiB + 1" {
                            MAX_MESSAGE_BYTES as u64 + 1
                        } else {
                            i64::MAX as u64
                        };
                        let mut header = vec![0x02]; // long frame, last
                        header.extend_from_slice(&len.to_be_bytes());
                        header.extend_from_slice(&[0u8; 4096]); // a little of the body
                        tcp.write_all(&header).unwrap();
                    }
                }
                // Read until the server closes (EOF or reset): it must, within the timeout.
                let mut buf = [0u8; 4096];
                loop {
                    match tcp.read(&mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(_) => continue,
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut =>
                        {
                            return Err(format!("{case}: the server kept the connection open"));
                        }
                        Err(_) => return Ok(()),
                    }
                }
            })
            .await
            .unwrap();
            closed.unwrap();
            let dropped = done as u64 + 1;
            until(
                20,
                || format!("{dropped} dropped after {case}: {:?}", server.stats()),
                || server.stats().peers_dropped >= dropped,
            )
            .await;
        }
        let s = server.stats();
        assert_eq!(s.messages, 1, "nothing was received from the bad connections: {s:?}");
        assert_eq!(s.peers_dropped, 3, "the control's orderly close is not a drop: {s:?}");
        good_producer_gets_through(&endpoint, &table, "raw").await;
        server.close().await;
    });
}

/// ZMTP 3.0 greeting, NULL mechanism, as-client.
fn null_greeting() -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
    let mut mech = b"NULL".to_vec();
    mech.resize(20, 0);
    g.extend_from_slice(&mech);
    g.push(0); // as-server
    g.resize(64, 0);
    g
}

/// A READY command frame saying Socket-Type PUSH.
fn ready_push() -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&4u32.to_be_bytes());
    body.extend_from_slice(b"PUSH");
    let mut f = vec![0x04, body.len() as u8];
    f.extend_from_slice(&body);
    f
}

/// 200 hostile messages, 40 of them exactly 16 MiB, then 16 MiB + 1 from 5 fresh connections: the
/// server keeps none of them. The allocator may keep a few freed 16 MiB blocks for reuse (glibc
/// raises its mmap threshold after the first free of one), so the resident size rises over the first
/// messages and then stays level: the check is on the second half, where keeping the messages would
/// add 20 x 16 MiB = 320 MiB, and a generous bound on the whole.
#[test]
fn hostile_traffic_does_not_grow_memory() {
    run(async {
        let (server, table, endpoint) = server(ConsumerOptions::default(), ServerOptions::default()).await;
        let bad = malformed_messages();
        let big = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES]);
        let hostile = hostile_push(&endpoint);
        let before = rss();
        let mut half = 0;
        let mut sent = 0u64;
        for i in 0..200 {
            if i == 100 {
                half = rss();
            }
            if i % 5 == 4 {
                hostile.send(big.clone()).await.unwrap();
            } else {
                hostile.send(bad[i % bad.len()].1.clone()).await.unwrap();
            }
            sent += 1;
            // One at a time: what is measured is what the server keeps, not what waits in queues.
            until(
                60,
                || format!("{sent} malformed, {:?}", server.stats()),
                || server.stats().malformed == sent,
            )
            .await;
        }
        hostile.close().await;
        let oversize = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES + 1]);
        for n in 1..=5 {
            let h = hostile_push(&endpoint);
            h.send(oversize.clone()).await.unwrap();
            until(60, || format!("{n} dropped, {:?}", server.stats()), || server.stats().peers_dropped == n)
                .await;
            h.close().await;
        }
        drop(oversize);
        let after = rss();
        eprintln!(
        "hostile traffic (40 x 16 MiB, 160 small, 5 x (16 MiB + 1)): RSS {} MiB, after 100 messages {} MiB, \
         at the end {} MiB",
        before / MIB,
        half / MIB,
        after / MIB
    );
        let second_half = after.saturating_sub(half);
        assert!(
            second_half < 64 * MIB,
            "resident size grew by {} MiB over the second half",
            second_half / MIB
        );
        let grew = after.saturating_sub(before);
        assert!(grew < 192 * MIB, "resident size grew by {} MiB", grew / MIB);
        assert_eq!(server.stats().malformed, sent);
        good_producer_gets_through(&endpoint, &table, "after-flood").await;
        server.close().await;
    });
}

/// A table that is never popped, with room for 64 KiB: the server stops reading, the backlog waits
/// in the sockets' queues, the producer gets `QueueFull`, memory stays bounded; once the table is
/// popped, everything that was sent arrives, in order.
#[test]
fn consumer_that_never_pops_holds_producers_back() {
    run(async {
        let (server, table, endpoint) = server(
            ConsumerOptions { max_queued_bytes: 64 * 1024, ..Default::default() },
            ServerOptions::default(),
        )
        .await;
        let client = Client::connect(
            &endpoint,
            ClientOptions {
                retries: 2,
                retry_base: Duration::from_millis(1),
                send_hwm: 100,
                ..Default::default()
            },
        )
        .unwrap();
        let value = Bytes::from(vec![b'v'; 200]);
        let before = rss();
        let mut sent: Vec<String> = Vec::new();
        let mut full_in_a_row = 0;
        let mut full_total = 0;
        let mut i = 0u64;
        // Until the producer is refused 5 times in a row: a single refusal may be a moment's backlog.
        while full_in_a_row < 5 {
            assert!(
                i < 200_000,
                "200,000 messages and the producer was never held back: {:?}",
                server.stats()
            );
            let key = format!("k{i}");
            i += 1;
            let ops = [Operation::set(key.clone(), ["a", "b", "c", "d"].map(|f| (f, value.clone())))];
            match client.send(b"APPL_DB", b"T", &ops).await {
                Ok(()) => {
                    sent.push(key);
                    full_in_a_row = 0;
                }
                Err(Error::QueueFull { attempts, connected, .. }) => {
                    assert_eq!(attempts, 3);
                    assert!(connected, "the consumer is connected, only slow");
                    full_in_a_row += 1;
                    full_total += 1;
                }
                Err(e) => panic!("send: {e}"),
            }
        }
        let during = rss();
        let s: ServerStats = server.stats();
        let queued = table.len() as u64;
        eprintln!(
            "never-popped table: {} sent, {full_total} refused, table holds {queued}, server dispatched {} \
         (the rest wait in the sockets); RSS +{} KiB",
            sent.len(),
            s.messages,
            during.saturating_sub(before) / 1024
        );
        // The server stopped reading: it dispatched what the table holds plus at most the one batch it
        // is offering; the rest of what was sent waits in the sockets' queues.
        assert!(s.messages <= queued + 1, "{s:?}, table holds {queued}");
        assert!((sent.len() as u64) > queued + 1, "nothing waits in the queues: {} sent", sent.len());
        // Each operation costs the table at least 998 bytes (4 x 201 of fields and values, a key of 2
        // or more, 64 + 4 x 32 of overhead): it takes batches while under 64 KiB, so 66 at most.
        assert!(queued <= 64 * 1024 / 998 + 1, "the table holds {queued} operations, beyond its 64 KiB");
        // The backlog is in the sockets: bounded by the high-water marks (100 + 10,000 messages of about
        // 1 KB) and the kernel's buffers, far below this.
        assert!(
            during.saturating_sub(before) < 64 * MIB,
            "resident size grew by {} MiB",
            (during - before) / MIB
        );

        // Pop everything: what was sent arrives, in order, and nothing else.
        let mut got: Vec<Operation> = Vec::new();
        while got.len() < sent.len() {
            let batch = tokio::time::timeout(Duration::from_secs(30), table.next_batch())
                .await
                .unwrap_or_else(|_| panic!("{} of {} arrived; {:?}", got.len(), sent.len(), server.stats()));
            got.extend(batch);
        }
        let keys: Vec<String> = got.iter().map(|o| String::from_utf8(o.key.to_vec()).unwrap()).collect();
        assert_eq!(keys, sent);
        assert!(got.iter().all(|o| o.op == Op::Set && o.fields.len() == 4));
        // And the producer is served again.
        client.send(b"APPL_DB", b"T", &[Operation::del("last")]).await.unwrap();
        let last = tokio::time::timeout(Duration::from_secs(30), table.next_batch()).await.unwrap();
        assert_eq!(last, vec![Operation::del("last")]);
        server.close().await;
    });
}

/// A `redis-server` of our own on a free loopback port, killed on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server: {e} (scripts/test-all.sh installs it: apt-get install redis-server)")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the server: a Redis that accepts and never answers.
    fn signal(&self, sig: &str) {
        let ok =
            std::process::Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A write-through registered as the server's fallback handler (what `statetable-consumer` does)
/// with Redis stopped: a peer that sends messages with a database name of 8 MiB and one DEL each
/// must not make it hold the 8 MiB frames. (It once queued the operations, slices of their frames,
/// charged 65 bytes each: +188 MiB for 20 messages against a 1 MiB limit.)
#[test]
fn write_through_holds_commands_not_frames() {
    run(async {
        let redis = Redis::start();
        let options = statetable::WriteThroughOptions { max_queued_bytes: 1024 * 1024, ..Default::default() };
        let wt = statetable::WriteThrough::connect(&format!("redis://127.0.0.1:{}/0", redis.port), options)
            .await
            .unwrap();
        let server =
            Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
                .await
                .unwrap();
        server.register_fallback(std::sync::Arc::new(wt.clone()));
        let endpoint = server.bind().await.unwrap();
        redis.signal("-STOP");

        let hostile = hostile_push(&endpoint);
        // 40 frames of 8 MiB: 320 MiB if they were kept; the allocator's keeping a few freed 8 MiB
        // blocks (glibc raises its mmap threshold after such frees) is what a bound of 128 allows.
        let n = 40u64;
        let before = rss();
        for i in 0..n {
            // Not zeros: the name must not compress into shared pages anywhere.
            let db: Vec<u8> =
                (0..8 * MIB).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
            hostile.send(msg(&[(&db, b"T"), (format!("k{i}").as_bytes(), b"0")])).await.unwrap();
            until(
                60,
                || format!("{} handed over, {:?}", i + 1, server.stats()),
                || server.stats().operations == i + 1,
            )
            .await;
        }
        // The write-through queues the Redis commands it built from each operation, not the
        // operation: the 8 MiB frames are freed as soon as they are handed over, so holding the
        // 40 operations while Redis is stopped costs their commands' bytes, not 320 MiB.
        let grew = rss().saturating_sub(before);
        let queued = wt.stats().queued;
        eprintln!("Redis stopped: {queued} operations queued in the write-through, RSS +{} MiB", grew / MIB);
        assert_eq!(queued, n);
        assert!(grew < 128 * MIB, "the write-through's queue pins {} MiB for {n} DELs", grew / MIB);
        // Redis back: everything goes through, in order.
        redis.signal("-CONT");
        until(60, || format!("all written, {:?}", wt.stats()), || wt.stats().written == n).await;
        assert_eq!(server.stats().operations, n);
        hostile.close().await;
    });
}
