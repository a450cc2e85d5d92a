//! Hostile input against the sans-IO protocol core: one test per case of reliability.md §7a that
//! concerns `zmtp::proto` (greeting A-G, NULL handshake A-H, framing A-F, commands A-C, PING/PONG A-P,
//! SUBSCRIBE/CANCEL A-S). Each test feeds bytes and a fake clock into a [`Connection`] and asserts the
//! exact events, the exact bytes queued for the peer and, where time matters, the next deadline.
//! PLAIN/CURVE/ZAP/routing/relay cases (A-L, A-V, A-Z, A-R, A-Q) are not here; cases that need a
//! runtime are represented by their sans-IO part.
//!
//! Where reliability.md leaves a choice, the test pins what the code does and says so in its doc
//! comment.
//!
//! # Measuring allocation ("no alloc" cases)
//!
//! A counting `#[global_allocator]` (this test binary only) keeps live and peak heap bytes per thread.
//! A test's scenario runs on that test's thread and the protocol core never hands work to another
//! thread, so tests running in parallel never disturb each other's figures. [`peak_growth`] reports how far the
//! live bytes of the calling thread rose above their starting level while a scenario ran: an untouched
//! `reserve(len)` on an untrusted length counts in full.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use zmtp::proto::{
    Command, Connection, ConnectionConfig, ConnectionError, Event, HeartbeatConfig, Initiator, Limits,
    Metadata, PeerInfo, ProtocolError, SendError, SocketType, Version,
};
use zmtp::Msg;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::peak_growth;

// ===================================================================================================
// Harness: bytes
// ===================================================================================================

/// Hex with optional `"quoted ASCII"`: `h(r#"04 05 04 "PONG""#)`. Whitespace separates octets.
fn h(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut hi: Option<u8> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            assert!(hi.is_none(), "odd hex digit before a string in {s:?}");
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                out.push(u8::try_from(c).expect("ASCII only"));
            }
        } else if c.is_whitespace() {
            assert!(hi.is_none(), "odd hex digit in {s:?}");
        } else {
            let d = u8::try_from(c.to_digit(16).expect("hex digit")).unwrap();
            match hi.take() {
                None => hi = Some(d),
                Some(x) => out.push(x << 4 | d),
            }
        }
    }
    assert!(hi.is_none(), "odd number of hex digits in {s:?}");
    out
}

/// Lower-case hex, octets separated by spaces (for readable assertion failures).
fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

/// Asserts two byte strings are equal, showing both as hex.
#[track_caller]
fn assert_bytes(actual: &[u8], expected: &[u8]) {
    assert_eq!(to_hex(actual), to_hex(expected));
}

/// The valid 64-octet NULL greeting, ZMTP 3.1, as libzmq 4.3.5 sends it with an empty identity:
/// `ff 00×7 01 7f 03 01 "NULL" 00×16 00 00×31`. It is also exactly what we send.
const G: [u8; 64] = {
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[8] = 0x01;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12] = b'N';
    g[13] = b'U';
    g[14] = b'L';
    g[15] = b'L';
    g
};

/// `G` with some octets changed.
fn g_with(f: impl FnOnce(&mut [u8; 64])) -> Vec<u8> {
    let mut g = G;
    f(&mut g);
    g.to_vec()
}

/// Concatenates byte strings.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A command frame around `body`: `04 len body`, or `06 len64 body` when the body is 256 octets or more.
fn cmd(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 9);
    if body.len() <= 255 {
        v.extend_from_slice(&[0x04, body.len() as u8]);
    } else {
        v.push(0x06);
        v.extend_from_slice(&(body.len() as u64).to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// A command body: name-length octet, name, data.
fn named(name: &[u8], data: &[u8]) -> Vec<u8> {
    cat(&[&[name.len() as u8], name, data])
}

/// One metadata property: name-length octet, name, 4-octet value length, value.
fn prop(name: &[u8], value: &[u8]) -> Vec<u8> {
    cat(&[&[name.len() as u8], name, &(value.len() as u32).to_be_bytes(), value])
}

/// A READY command with these properties, in order.
fn ready(props: &[(&[u8], &[u8])]) -> Vec<u8> {
    let md: Vec<u8> = props.iter().flat_map(|(n, v)| prop(n, v)).collect();
    cmd(&named(b"READY", &md))
}

/// READY carrying only `Socket-Type: ty`.
fn ready_of(ty: &str) -> Vec<u8> {
    ready(&[(b"Socket-Type", ty.as_bytes())])
}

/// The READY we send for our socket type (Socket-Type, plus an empty Identity for REQ/DEALER/ROUTER,
/// as libzmq).
fn our_ready(ty: SocketType) -> Vec<u8> {
    let mut props: Vec<(&[u8], &[u8])> = vec![(b"Socket-Type", ty.as_str().as_bytes())];
    if matches!(ty, SocketType::Req | SocketType::Dealer | SocketType::Router) {
        props.push((b"Identity", b""));
    }
    ready(&props)
}

/// A data frame: short form up to 255 octets, long form above.
fn frame(body: &[u8], more: bool) -> Vec<u8> {
    let more = u8::from(more);
    let mut v = Vec::with_capacity(body.len() + 9);
    if body.len() <= 255 {
        v.extend_from_slice(&[more, body.len() as u8]);
    } else {
        v.push(0x02 | more);
        v.extend_from_slice(&(body.len() as u64).to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// A whole message, MORE set on every frame but the last.
fn message(frames: &[&[u8]]) -> Vec<u8> {
    let last = frames.len() - 1;
    frames.iter().enumerate().flat_map(|(i, f)| frame(f, i != last)).collect()
}

/// `PING` with a TTL in deciseconds and a context.
fn ping(ttl: u16, context: &[u8]) -> Vec<u8> {
    cmd(&named(b"PING", &cat(&[&ttl.to_be_bytes(), context])))
}

/// `PONG` echoing a context.
fn pong(context: &[u8]) -> Vec<u8> {
    cmd(&named(b"PONG", context))
}

/// `ERROR` with a reason.
fn error_cmd(reason: &[u8]) -> Vec<u8> {
    cmd(&named(b"ERROR", &cat(&[&[reason.len() as u8], reason])))
}

/// The ERROR we send when we reject a peer's socket type: `04 1a 05 "ERROR" 13 "Invalid-socket-type"`.
fn error_invalid_socket_type() -> Vec<u8> {
    h(r#"04 1a 05 "ERROR" 13 "Invalid-socket-type""#)
}

/// The ERROR we send for malformed metadata: `04 19 05 "ERROR" 12 "Malformed-metadata"`.
fn error_malformed_metadata() -> Vec<u8> {
    h(r#"04 19 05 "ERROR" 12 "Malformed-metadata""#)
}

/// `SUBSCRIBE` (3.1 command form).
fn subscribe(topic: &[u8]) -> Vec<u8> {
    cmd(&named(b"SUBSCRIBE", topic))
}

/// `CANCEL` (3.1 command form).
fn cancel(topic: &[u8]) -> Vec<u8> {
    cmd(&named(b"CANCEL", topic))
}

// ===================================================================================================
// Harness: connections and events
// ===================================================================================================

/// `t0 + ms` milliseconds.
fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

/// A fresh connection with default settings, started at `t0`.
fn conn(ty: SocketType, t0: Instant) -> Connection {
    Connection::new(ConnectionConfig::new(ty), t0)
}

/// Every event currently available.
fn drain(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Feeds `bytes` at `now` (copy path) and returns every event that follows.
fn feed(c: &mut Connection, now: Instant, bytes: &[u8]) -> Vec<Event> {
    c.handle_input(now, bytes);
    drain(c)
}

/// Feeds `bytes` through the zero-copy read path, as a runtime does: read at most the spare capacity
/// of [`Connection::read_buffer`] per "syscall", then [`Connection::handle_read`]. Returns the events.
fn feed_via_read_buffer(c: &mut Connection, now: Instant, mut bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    while !bytes.is_empty() && !c.is_closed() {
        let buf = c.read_buffer();
        let n = (buf.capacity() - buf.len()).min(bytes.len());
        buf.extend_from_slice(&bytes[..n]);
        c.handle_read(now, n);
        bytes = &bytes[n..];
        events.extend(drain(c));
    }
    events
}

/// `[Closed(Protocol(e))]`.
fn closed(e: ProtocolError) -> Vec<Event> {
    vec![Event::Closed(ConnectionError::Protocol(e))]
}

/// A message event with these frames.
fn msg(frames: &[&[u8]]) -> Event {
    Event::Message(Msg::from(frames.iter().map(|f| Bytes::copy_from_slice(f)).collect::<Vec<_>>()))
}

/// Metadata with these properties, in order.
fn md(props: &[(&[u8], &[u8])]) -> Metadata {
    let mut m = Metadata::new();
    for (n, v) in props {
        m.insert(Bytes::copy_from_slice(n), Bytes::copy_from_slice(v));
    }
    m
}

/// What a 3.1 peer of type `ty` that sent these properties looks like once the handshake is done.
fn peer_info(ty: Option<SocketType>, props: &[(&[u8], &[u8])]) -> PeerInfo {
    PeerInfo {
        version: Version::V3_1,
        announced_version: Version::V3_1,
        socket_type: ty,
        metadata: md(props),
        auth: None,
    }
}

/// Brings a connection with `config` to Ready against a 3.1 peer of type `peer`: feeds `G` + READY,
/// checks the single `HandshakeComplete` and that we sent exactly our greeting and READY, and drains
/// the transmit queue.
fn handshaked(config: ConnectionConfig, peer: &str, t0: Instant) -> Connection {
    let ty = config.socket_type();
    let mut c = Connection::new(config, t0);
    let events = feed(&mut c, t0, &cat(&[&G, &ready_of(peer)]));
    let peer_ty = SocketType::from_wire(peer.as_bytes());
    assert_eq!(
        events,
        vec![Event::HandshakeComplete(peer_info(peer_ty, &[(b"Socket-Type", peer.as_bytes())]))]
    );
    assert!(c.is_ready());
    assert_bytes(&c.take_transmit(), &cat(&[&G, &our_ready(ty)]));
    c
}

/// [`handshaked`] with default settings.
fn ready_conn(ty: SocketType, peer: &str, t0: Instant) -> Connection {
    handshaked(ConnectionConfig::new(ty), peer, t0)
}

/// Default limits with other data limits.
fn limits(max_frame_size: u64, max_message_size: u64, max_frames_per_message: u32) -> Limits {
    Limits { max_frame_size, max_message_size, max_frames_per_message, ..Limits::default() }
}

// ===================================================================================================
// Harness: per-thread counting allocator
// ===================================================================================================

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

#[track_caller]
fn assert_growth_below(growth: u64, limit: u64) {
    assert!(growth < limit, "peak heap growth {growth} bytes, limit {limit}");
}

/// The measurement is not vacuous: an untouched 1 MiB reservation (what `reserve(len)` on an untrusted
/// length does) and 64 KiB of small allocations are both seen; doing nothing measures zero.
#[test]
fn harness_measures_heap_growth() {
    let reserved = peak_growth(
        || (),
        |()| {
            let v: Vec<u8> = Vec::with_capacity(MIB as usize);
            std::hint::black_box(&v);
        },
    );
    assert!(reserved >= MIB, "an untouched 1 MiB reservation measured as {reserved} bytes");
    let small = peak_growth(
        || (),
        |()| {
            let v: Vec<Bytes> = (0..1024).map(|_| Bytes::from(vec![1u8; 64])).collect();
            std::hint::black_box(&v);
        },
    );
    assert!(small >= 64 * KIB, "1024 × 64-octet allocations measured as {small} bytes");
    assert_eq!(peak_growth(|| vec![0u8; 4096], drop), 0, "freeing the state is not growth");
    assert_eq!(peak_growth(|| (), |()| ()), 0);
}

/// The harness's byte builders reproduce the libzmq 4.3.5 fixtures of reliability.md §1.3.
#[test]
fn harness_matches_the_libzmq_fixtures() {
    assert_bytes(
        &G,
        &h(r#"ff 00 00 00 00 00 00 00 01 7f 03 01 "NULL" 00000000000000000000000000000000 00
           00000000000000000000000000000000000000000000000000000000000000"#),
    );
    assert_bytes(
        &our_ready(SocketType::Router),
        &h(r#"04 29 05 "READY" 0b "Socket-Type" 00 00 00 06 "ROUTER" 08 "Identity" 00 00 00 00"#),
    );
    assert_bytes(&ready_of("XPUB"), &h(r#"04 1a 05 "READY" 0b "Socket-Type" 00 00 00 04 "XPUB""#));
    assert_bytes(&ping(15, b""), &h(r#"04 07 04 "PING" 00 0f"#));
    assert_bytes(&pong(b""), &h(r#"04 05 04 "PONG""#));
    assert_bytes(&subscribe(b"BINANCE:"), &h(r#"04 12 09 "SUBSCRIBE" "BINANCE:""#));
    // What a fresh connection sends first is exactly G.
    let mut c = conn(SocketType::Dealer, Instant::now());
    assert_bytes(&c.take_transmit(), &G);
}

// ===================================================================================================
// A-G: greeting
// ===================================================================================================

/// A-G1 (sans-IO part): a peer that connects and sends nothing is closed at the handshake timeout
/// (default 30 s, libzmq's HANDSHAKE_IVL), not a millisecond earlier; afterwards there is no deadline
/// left and nothing buffered. A peer that connects and leaves without a byte is a clean close.
#[test]
fn closes_at_the_handshake_timeout_when_the_peer_sends_nothing() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    assert_bytes(&c.take_transmit(), &G);
    assert_eq!(c.poll_timeout(), Some(at(t0, 30_000)));
    c.handle_timeout(at(t0, 29_999));
    assert_eq!(drain(&mut c), vec![]);
    c.handle_timeout(at(t0, 30_000));
    let timeout = ConnectionError::HandshakeTimeout(Duration::from_secs(30));
    assert_eq!(drain(&mut c), vec![Event::Closed(timeout.clone())]);
    assert_eq!(timeout.to_string(), "handshake not completed within 30s");
    assert_eq!(timeout.initiator(), Initiator::Local);
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.buffered_input(), 0);
    assert_bytes(&c.take_transmit(), b"");
    // Reported once only.
    c.handle_timeout(at(t0, 60_000));
    assert_eq!(drain(&mut c), vec![]);

    let mut c = conn(SocketType::Router, t0);
    c.handle_eof();
    assert_eq!(drain(&mut c), vec![Event::Closed(ConnectionError::PeerClosedDuringHandshake)]);
    assert_eq!(c.poll_timeout(), None);
}

/// A-G2: every proper prefix (1..=63 octets) of a valid greeting is never taken as complete: no event,
/// no READY sent. EOF after it is `PeerClosedDuringHandshake`; idling after it ends at the handshake
/// timeout.
#[test]
fn never_completes_a_truncated_greeting_and_closes_on_eof_or_timeout() {
    let t0 = Instant::now();
    for n in 1..64 {
        let mut c = conn(SocketType::Dealer, t0);
        assert_eq!(feed(&mut c, t0, &G[..n]), vec![], "prefix {n}");
        assert!(!c.is_ready());
        assert_eq!(c.buffered_input(), n);
        c.handle_eof();
        assert_eq!(drain(&mut c), vec![Event::Closed(ConnectionError::PeerClosedDuringHandshake)]);
        assert_bytes(&c.take_transmit(), &G);

        let mut c = conn(SocketType::Dealer, t0);
        assert_eq!(feed(&mut c, at(t0, 1_000), &G[..n]), vec![]);
        assert_eq!(c.poll_timeout(), Some(at(t0, 30_000)), "input does not extend the handshake");
        c.handle_timeout(at(t0, 30_000));
        assert_eq!(
            drain(&mut c),
            vec![Event::Closed(ConnectionError::HandshakeTimeout(Duration::from_secs(30)))]
        );
        assert_bytes(&c.take_transmit(), &G);
    }
}

/// A-G3: a first octet other than `0xff` (`00`, HTTP `GET `, a TLS ClientHello `16 03 01`) closes
/// after that one octet as a legacy (ZMTP 1.0) peer; nothing is sent beyond our own greeting.
#[test]
fn closes_on_a_first_octet_other_than_ff_with_only_our_greeting_sent() {
    let t0 = Instant::now();
    let legacy = ProtocolError::LegacyPeer { what: "first octet is not 0xFF" };
    for input in [h("00"), h(r#""GET ""#), h("16 03 01 00 a5 01 00 00 a1 03 03")] {
        let mut c = conn(SocketType::Router, t0);
        assert_eq!(feed(&mut c, t0, &input), closed(legacy.clone()), "{}", to_hex(&input));
        assert_bytes(&c.take_transmit(), &G);
        assert_eq!(c.buffered_input(), 0);
        // Later input is ignored.
        assert_eq!(feed(&mut c, t0, &G), vec![]);
    }
    assert_eq!(
        ConnectionError::Protocol(legacy).to_string(),
        "protocol error: not a ZMTP 3.x greeting: first octet is not 0xFF (ZMTP 1.0 peers are not supported)"
    );
}

/// A-G4: `ff`, 8 padding octets, then `7e` (low bit of octet 10 clear: libzmq's unversioned 1.0
/// path) closes as soon as that tenth octet arrives.
#[test]
fn closes_on_an_unversioned_signature_with_octet_10_bit_0_clear() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    assert_eq!(feed(&mut c, t0, &h("ff 00 00 00 00 00 00 00 01")), vec![]);
    assert_eq!(
        feed(&mut c, t0, &h("7e")),
        closed(ProtocolError::LegacyPeer { what: "signature octet 10 has its low bit clear" })
    );
    assert_bytes(&c.take_transmit(), &G);
}

/// A-G5: the padding (octets 1-8) is never validated (RFC 23 "MUST NOT validate"; libzmq puts the
/// identity length + 1 in octet 8).
#[test]
fn accepts_arbitrary_padding_octets() {
    let t0 = Instant::now();
    for padding in [[0x01u8; 8], [0, 0, 0, 0, 0, 0, 0, 0x05], [0xff; 8]] {
        let mut c = conn(SocketType::Router, t0);
        let g = g_with(|g| g[1..9].copy_from_slice(&padding));
        let events = feed(&mut c, t0, &cat(&[&g, &ready_of("DEALER")]));
        assert_eq!(
            events,
            vec![Event::HandshakeComplete(peer_info(
                Some(SocketType::Dealer),
                &[(b"Socket-Type", b"DEALER")]
            ))]
        );
    }
}

/// A-G6: major versions 0 (1.0) and 1 (2.0) close as soon as octet 11 arrives: we cannot downgrade,
/// so RFC 23 says we MUST close.
#[test]
fn closes_on_major_versions_zero_and_one() {
    let t0 = Instant::now();
    for major in [0u8, 1] {
        let mut c = conn(SocketType::Router, t0);
        let g = g_with(|g| g[10] = major);
        assert_eq!(feed(&mut c, t0, &g[..11]), closed(ProtocolError::UnsupportedVersion { major }));
        assert_bytes(&c.take_transmit(), &G);
    }
}

/// A-G7: major version 2 closes (we treat every major below 3 alike; libzmq treats 2 as 3.1: a
/// documented difference).
#[test]
fn closes_on_major_version_two() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    let g = g_with(|g| g[10] = 2);
    let e = ProtocolError::UnsupportedVersion { major: 2 };
    assert_eq!(feed(&mut c, t0, &g), closed(e.clone()));
    assert_eq!(e.to_string(), "peer speaks ZMTP revision 2; only 3.x is supported");
    assert_bytes(&c.take_transmit(), &G);
}

/// A-G8: a 3.0 peer (`03 00`) is accepted and spoken to as 3.0: our subscriptions go out as
/// `0x01 topic` / `0x00 topic` data frames, never as SUBSCRIBE/CANCEL commands, and we send it no
/// heartbeat PINGs (3.1 commands). Its own subscriptions in the 3.0 form are understood.
#[test]
fn accepts_a_zmtp_3_0_peer_and_speaks_3_0_subscriptions_to_it() {
    let t0 = Instant::now();
    let g30 = g_with(|g| g[11] = 0);
    let info30 = |ty: SocketType| PeerInfo {
        version: Version::V3_0,
        announced_version: Version::V3_0,
        socket_type: Some(ty),
        metadata: md(&[(b"Socket-Type", ty.as_str().as_bytes())]),
        auth: None,
    };

    let hb = HeartbeatConfig { interval: Some(Duration::from_secs(1)), ..HeartbeatConfig::default() };
    let mut sub = Connection::new(ConnectionConfig::new(SocketType::Sub).heartbeat(hb), t0);
    let events = feed(&mut sub, t0, &cat(&[&g30, &ready_of("PUB")]));
    assert_eq!(events, vec![Event::HandshakeComplete(info30(SocketType::Pub))]);
    assert_eq!(sub.version(), Some(Version::V3_0));
    assert_bytes(&sub.take_transmit(), &cat(&[&G, &our_ready(SocketType::Sub)]));
    sub.send_subscribe(Bytes::from_static(b"abc")).unwrap();
    sub.send_cancel(Bytes::from_static(b"abc")).unwrap();
    assert_bytes(&sub.take_transmit(), &h(r#"00 04 01 "abc" 00 04 00 "abc""#));
    assert_eq!(sub.poll_timeout(), None, "no PINGs to a 3.0 peer");
    sub.handle_timeout(at(t0, 10_000));
    assert_bytes(&sub.take_transmit(), b"");

    let mut xpub = conn(SocketType::XPub, t0);
    let events = feed(&mut xpub, t0, &cat(&[&g30, &ready_of("SUB"), &h(r#"00 04 01 "abc" 00 04 00 "abc""#)]));
    assert_eq!(
        events,
        vec![
            Event::HandshakeComplete(info30(SocketType::Sub)),
            Event::Subscribe(Bytes::from_static(b"abc")),
            Event::Cancel(Bytes::from_static(b"abc")),
        ]
    );
}

/// A-G9: higher versions (`03 ff`, `04 00`, `ff ff`) are accepted ("MUST accept higher protocol
/// versions") and spoken to as 3.1: subscriptions are SUBSCRIBE commands.
#[test]
fn accepts_higher_versions_as_3_1() {
    let t0 = Instant::now();
    for (major, minor) in [(3u8, 255u8), (4, 0), (255, 255)] {
        let mut c = conn(SocketType::Sub, t0);
        let g = g_with(|g| {
            g[10] = major;
            g[11] = minor;
        });
        let events = feed(&mut c, t0, &cat(&[&g, &ready_of("PUB")]));
        assert_eq!(
            events,
            vec![Event::HandshakeComplete(PeerInfo {
                version: Version::V3_1,
                announced_version: Version { major, minor },
                socket_type: Some(SocketType::Pub),
                metadata: md(&[(b"Socket-Type", b"PUB")]),
                auth: None,
            })]
        );
        assert_eq!(c.version(), Some(Version::V3_1));
        c.take_transmit();
        c.send_subscribe(Bytes::from_static(b"abc")).unwrap();
        assert_bytes(&c.take_transmit(), &subscribe(b"abc"));
    }
}

/// A-G10: any mechanism field other than exactly `NULL` + 16 NULs closes (exact 20-octet compare;
/// CVE-2014-7202 class): `NULX`, `null`, `NULL 00 00 58`, 20 × `A` with no NUL, all zeros, `CURVE`.
/// The peer never gets our READY.
#[test]
fn closes_on_any_mechanism_other_than_exactly_null() {
    let t0 = Instant::now();
    let cases: [(&[u8], &[u8]); 6] = [
        (b"NULX", b"NULX"),
        (b"null", b"null"),
        (b"NULL\0\0X", b"NULL\0\0X"),
        (&[b'A'; 20], &[b'A'; 20]),
        (b"", b""),
        (b"CURVE", b"CURVE"),
    ];
    for (mechanism, theirs) in cases {
        let mut c = conn(SocketType::Router, t0);
        let g = g_with(|g| {
            g[12..32].fill(0);
            g[12..12 + mechanism.len()].copy_from_slice(mechanism);
        });
        let e = ProtocolError::MechanismMismatch { ours: "NULL", theirs: Bytes::copy_from_slice(theirs) };
        assert_eq!(feed(&mut c, t0, &cat(&[&g, &ready_of("DEALER")])), closed(e));
        assert_bytes(&c.take_transmit(), &G);
    }
    let e = ProtocolError::MechanismMismatch { ours: "NULL", theirs: Bytes::from_static(b"NULL\0\0X") };
    assert_eq!(e.to_string(), r#"security mechanism mismatch: we use NULL, peer sent "NULL\x00\x00X""#);
}

/// A-G11 (NULL part): as-server = 1 under NULL is accepted and ignored, as libzmq does.
#[test]
fn accepts_as_server_set_under_null() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    let g = g_with(|g| g[32] = 1);
    let events = feed(&mut c, t0, &cat(&[&g, &ready_of("DEALER")]));
    assert_eq!(
        events,
        vec![Event::HandshakeComplete(peer_info(Some(SocketType::Dealer), &[(b"Socket-Type", b"DEALER")]))]
    );
    // Ours stays 0 under NULL.
    assert_eq!(c.take_transmit()[32], 0);
}

/// A-G12: non-zero filler octets (33-63) are ignored.
#[test]
fn ignores_non_zero_filler() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    let g = g_with(|g| g[33..].fill(0xaa));
    let events = feed(&mut c, t0, &cat(&[&g, &ready_of("DEALER")]));
    assert_eq!(
        events,
        vec![Event::HandshakeComplete(peer_info(Some(SocketType::Dealer), &[(b"Socket-Type", b"DEALER")]))]
    );
}

/// A-G13: greeting and READY delivered one octet per read, 1 ms apart: nothing happens until the last
/// octet, our READY goes out right after the peer's 64th greeting octet, and the handshake completes.
#[test]
fn completes_the_handshake_fed_one_byte_per_read() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    assert_bytes(&c.take_transmit(), &G);
    let stream = cat(&[&G, &ready_of("DEALER")]);
    for (i, b) in stream.iter().enumerate() {
        let events = feed(&mut c, at(t0, i as u64), &[*b]);
        let sent = c.take_transmit();
        if i == 63 {
            assert_bytes(&sent, &our_ready(SocketType::Router));
        } else {
            assert_bytes(&sent, b"");
        }
        if i + 1 == stream.len() {
            assert_eq!(
                events,
                vec![Event::HandshakeComplete(peer_info(
                    Some(SocketType::Dealer),
                    &[(b"Socket-Type", b"DEALER")]
                ))]
            );
        } else {
            assert_eq!(events, vec![], "after octet {i}");
        }
    }
    assert!(c.is_ready());
}

/// A-G14: greeting + READY + three messages in one read are all processed, in order.
#[test]
fn processes_greeting_ready_and_three_messages_in_one_read_in_order() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    let stream = cat(&[
        &G,
        &ready_of("DEALER"),
        &message(&[b"one"]),
        &message(&[b"", b"two", b"parts"]),
        &message(&[&[7u8; 300]]),
    ]);
    assert_eq!(
        feed(&mut c, t0, &stream),
        vec![
            Event::HandshakeComplete(peer_info(Some(SocketType::Dealer), &[(b"Socket-Type", b"DEALER")])),
            msg(&[b"one"]),
            msg(&[b"", b"two", b"parts"]),
            msg(&[&[7u8; 300]]),
        ]
    );
    assert_eq!(c.stats().messages_received, 3);
    assert_eq!(c.buffered_input(), 0);
}

/// A-G15 (sans-IO part): our whole 64-octet greeting is queued the moment the connection exists, so a
/// peer that sends 11 octets and waits for ours can never deadlock against us.
#[test]
fn queues_our_whole_greeting_before_the_peer_sends_anything() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Dealer, t0);
    assert_eq!(c.transmit().len(), 64);
    assert_eq!(feed(&mut c, t0, &G[..11]), vec![]);
    assert_bytes(&c.take_transmit(), &G);
    assert_eq!(feed(&mut c, t0, &G[11..]), vec![]);
    assert_bytes(&c.take_transmit(), &our_ready(SocketType::Dealer));
}

// ===================================================================================================
// A-H: NULL handshake and READY metadata
// ===================================================================================================

/// Feeds `G` + `after` to a fresh ROUTER and returns the events and everything it sent.
fn after_greeting(after: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    let events = feed(&mut c, t0, &cat(&[&G, after]));
    (events, c.take_transmit())
}

/// A-H1: a data frame before READY closes (libzmq: UNEXPECTED_COMMAND). No ERROR is sent for a
/// framing-level violation.
#[test]
fn closes_on_a_data_frame_before_ready() {
    let (events, sent) = after_greeting(&h(r#"00 03 "abc""#));
    assert_eq!(events, closed(ProtocolError::MessageBeforeReady));
    assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router)]));
    assert_eq!(ProtocolError::MessageBeforeReady.to_string(), "data frame before the handshake completed");
}

/// A-H2: HELLO, PING or SUBSCRIBE in place of READY closes as an unexpected command.
#[test]
fn closes_on_hello_ping_or_subscribe_before_ready() {
    for (input, name) in [
        (cmd(&named(b"HELLO", b"")), &b"HELLO"[..]),
        (ping(0, b""), &b"PING"[..]),
        (subscribe(b"x"), &b"SUBSCRIBE"[..]),
    ] {
        let (events, sent) = after_greeting(&input);
        assert_eq!(
            events,
            closed(ProtocolError::UnexpectedCommand {
                name: Bytes::copy_from_slice(name),
                state: "during the NULL handshake"
            })
        );
        assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router)]));
    }
    let e = ProtocolError::UnexpectedCommand {
        name: Bytes::from_static(b"PING"),
        state: "during the NULL handshake",
    };
    assert_eq!(e.to_string(), r#"unexpected "PING" command during the NULL handshake"#);
}

/// A-H3: READY misspelled (`05 ready`), with a non-ALPHA name (`06 READY!`), a zero name length, or a
/// name length past the body: close.
#[test]
fn closes_on_misspelled_or_malformed_ready_names() {
    let malformed = |what| ProtocolError::MalformedCommand { command: "?", what };
    let cases = [
        (
            cmd(b"\x05ready"),
            ProtocolError::UnexpectedCommand {
                name: Bytes::from_static(b"ready"),
                state: "during the NULL handshake",
            },
        ),
        (cmd(b"\x06READY!"), malformed("command name is not ALPHA")),
        (cmd(b"\x00READY"), malformed("zero-length command name")),
        (cmd(b"\x09READY"), malformed("command name runs past the end of the frame")),
    ];
    for (input, e) in cases {
        let (events, sent) = after_greeting(&input);
        assert_eq!(events, closed(e), "{}", to_hex(&input));
        assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router)]));
    }
}

/// Scenario shared by the malformed-READY cases: a ROUTER gets `G` + `ready_cmd` and must close with
/// `e` and answer with ERROR "Malformed-metadata".
fn closes_on_malformed_ready(ready_cmd: &[u8], e: ProtocolError) {
    let (events, sent) = after_greeting(ready_cmd);
    assert_eq!(events, closed(e));
    assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router), &error_malformed_metadata()]));
}

/// [`closes_on_malformed_ready`] split for measuring: the connection (its greeting already fed and
/// our greeting and READY already taken) is built first.
fn malformed_ready_case(ready_cmd: Vec<u8>, e: ProtocolError) -> (Connection, Vec<u8>, ProtocolError) {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    assert_eq!(feed(&mut c, t0, &G), vec![]);
    assert_bytes(&c.take_transmit(), &cat(&[&G, &our_ready(SocketType::Router)]));
    (c, ready_cmd, e)
}

/// The measured half of [`malformed_ready_case`].
fn check_malformed_ready((mut c, ready_cmd, e): (Connection, Vec<u8>, ProtocolError)) {
    assert_eq!(feed(&mut c, Instant::now(), &ready_cmd), closed(e));
    assert_bytes(&c.take_transmit(), &error_malformed_metadata());
}

/// A-H4: a property name length of `c8` with 3 octets left closes (MalformedMetadata), with ERROR
/// "Malformed metadata", and allocates nothing for the claimed 200 octets.
#[test]
fn closes_on_a_property_name_length_past_the_body_without_allocating() {
    let growth = peak_growth(
        || {
            malformed_ready_case(
                cmd(&named(b"READY", &cat(&[&prop(b"Socket-Type", b"DEALER"), &h(r#"c8 "abc""#)]))),
                ProtocolError::MalformedMetadata("property name runs past the end"),
            )
        },
        check_malformed_ready,
    );
    assert_growth_below(growth, 64 * KIB);
}

/// A-H5: a value length of `7f ff ff ff` with 6 octets present, and `ff ff ff ff` (over 2^31-1),
/// close without a 2 GiB allocation and without wrapping arithmetic.
#[test]
fn closes_on_huge_property_value_lengths_without_allocating() {
    let growth = peak_growth(
        || {
            let st = prop(b"Socket-Type", b"DEALER");
            (
                malformed_ready_case(
                    cmd(&named(b"READY", &cat(&[&st, &h(r#"01 "X" 7f ff ff ff "abcdef""#)]))),
                    ProtocolError::MalformedMetadata("property value runs past the end"),
                ),
                malformed_ready_case(
                    cmd(&named(b"READY", &cat(&[&st, &h(r#"01 "X" ff ff ff ff "abcdef""#)]))),
                    ProtocolError::MalformedMetadata("property value length over 2^31-1"),
                ),
            )
        },
        |(past_end, over_max)| {
            check_malformed_ready(past_end);
            check_malformed_ready(over_max);
        },
    );
    assert_growth_below(growth, 64 * KIB);
}

/// A-H6: a stray octet after the last property, inside READY, closes (`00`: a zero-length name;
/// `05`: a name that runs past the end).
#[test]
fn closes_on_a_stray_byte_after_the_ready_properties() {
    let st = prop(b"Socket-Type", b"DEALER");
    closes_on_malformed_ready(
        &cmd(&named(b"READY", &cat(&[&st, &h("00")]))),
        ProtocolError::MalformedMetadata("zero-length property name"),
    );
    closes_on_malformed_ready(
        &cmd(&named(b"READY", &cat(&[&st, &h("05")]))),
        ProtocolError::MalformedMetadata("property name runs past the end"),
    );
}

/// A-H7: a duplicate `Socket-Type` (DEALER, then PUB) closes with ERROR "Malformed-metadata"; names
/// compare case-insensitively, so `socket-type` duplicates `Socket-Type` too.
#[test]
fn closes_on_a_duplicate_socket_type_property() {
    let input = ready(&[(b"Socket-Type", b"DEALER"), (b"Socket-Type", b"PUB")]);
    let e = ProtocolError::DuplicateProperty(Bytes::from_static(b"Socket-Type"));
    assert_eq!(e.to_string(), r#"duplicate metadata property "Socket-Type""#);
    closes_on_malformed_ready(&input, e);
    closes_on_malformed_ready(
        &ready(&[(b"Socket-Type", b"DEALER"), (b"socket-type", b"DEALER")]),
        ProtocolError::DuplicateProperty(Bytes::from_static(b"socket-type")),
    );
}

/// A-H8: READY without `Socket-Type` is accepted (libzmq accepts it); the peer's type is `None`.
#[test]
fn accepts_ready_without_a_socket_type() {
    let (events, _) = after_greeting(&ready(&[]));
    assert_eq!(events, vec![Event::HandshakeComplete(peer_info(None, &[]))]);
    let (events, _) = after_greeting(&ready(&[(b"Identity", b"cli1")]));
    assert_eq!(events, vec![Event::HandshakeComplete(peer_info(None, &[(b"Identity", b"cli1")]))]);
}

/// A-H9: the `Socket-Type` value is case-sensitive (`dealer` is rejected with ERROR); the property
/// name is case-insensitive (RFC 23), so `socket-type: PUB` to a ROUTER is validated and rejected and
/// `SOCKET-TYPE: DEALER` is accepted. libzmq compares the name case-sensitively and so accepts
/// `socket-type: PUB`: a documented difference.
#[test]
fn compares_socket_type_values_case_sensitively_and_names_case_insensitively() {
    for (name, value) in [(&b"Socket-Type"[..], &b"dealer"[..]), (&b"socket-type"[..], &b"PUB"[..])] {
        let (events, sent) = after_greeting(&ready(&[(name, value)]));
        assert_eq!(
            events,
            closed(ProtocolError::IncompatibleSocketType {
                ours: SocketType::Router,
                theirs: Bytes::copy_from_slice(value)
            })
        );
        assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router), &error_invalid_socket_type()]));
    }
    let (events, _) = after_greeting(&ready(&[(b"SOCKET-TYPE", b"DEALER")]));
    assert_eq!(
        events,
        vec![Event::HandshakeComplete(peer_info(Some(SocketType::Dealer), &[(b"SOCKET-TYPE", b"DEALER")]))]
    );
}

/// A-H10: every pairing the RFC 23 table forbids (PUB→ROUTER, SUB→SUB, PAIR→DEALER, PUSH→PUSH…), an
/// unknown `FOO` and an empty value: we send `ERROR "Invalid-socket-type"` after our READY, then close;
/// the peer never becomes ready (sends are refused). Every allowed pairing completes.
#[test]
fn sends_error_and_closes_for_every_incompatible_socket_type_pair() {
    let t0 = Instant::now();
    let mut rejected = 0;
    for ours in SocketType::ALL {
        for theirs in SocketType::ALL {
            let mut c = conn(ours, t0);
            let events = feed(&mut c, t0, &cat(&[&G, &ready_of(theirs.as_str())]));
            let sent = c.take_transmit();
            if ours.is_compatible_with(theirs) {
                assert!(matches!(events.as_slice(), [Event::HandshakeComplete(_)]), "{ours}/{theirs}");
                continue;
            }
            rejected += 1;
            let e = ProtocolError::IncompatibleSocketType {
                ours,
                theirs: Bytes::from_static(theirs.as_str().as_bytes()),
            };
            assert_eq!(events, closed(e), "{ours}/{theirs}");
            assert_bytes(&sent, &cat(&[&G, &our_ready(ours), &error_invalid_socket_type()]));
            assert!(!c.is_ready());
            let m = Msg::from("x");
            assert_eq!(c.send_message(m.clone()), Err(SendError::Closed(m)));
        }
    }
    assert_eq!(rejected, 121 - 21);
    for value in [&b"FOO"[..], b""] {
        let (events, sent) = after_greeting(&ready_of(std::str::from_utf8(value).unwrap()));
        assert_eq!(
            events,
            closed(ProtocolError::IncompatibleSocketType {
                ours: SocketType::Router,
                theirs: Bytes::copy_from_slice(value)
            })
        );
        assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router), &error_invalid_socket_type()]));
    }
    let e = ProtocolError::IncompatibleSocketType {
        ours: SocketType::Router,
        theirs: Bytes::from_static(b"PUB"),
    };
    assert_eq!(e.to_string(), r#"incompatible socket type: we are ROUTER, peer is "PUB""#);
}

/// A-H11: a zero-length property name is rejected (RFC 23: "Zero-sized names are not valid"; libzmq
/// accepts it — documented difference): close with ERROR "Malformed-metadata".
#[test]
fn closes_on_a_zero_length_property_name() {
    closes_on_malformed_ready(
        &cmd(&named(b"READY", &cat(&[&prop(b"Socket-Type", b"DEALER"), &h("00 00 00 00 00")]))),
        ProtocolError::MalformedMetadata("zero-length property name"),
    );
    closes_on_malformed_ready(
        &cmd(&named(b"READY", &h("00 00 00 00 00"))),
        ProtocolError::MalformedMetadata("zero-length property name"),
    );
}

/// A-H12: READY as a 1 MiB long command (about 100 k properties, or one 1 MiB `X-` value) closes at
/// the command cap (`max_command_size`, 64 KiB) as soon as its header is read, before any of the body
/// is buffered; no ERROR is sent for a size violation. Fed whole in 16 KiB reads, the heap grows by
/// less than 64 KiB.
#[test]
fn closes_on_a_one_mebibyte_ready_at_its_header_without_buffering_it() {
    let t0 = Instant::now();
    let build = || {
        // 104 857 properties `01 X 00 00 00 04 abcd` (10 octets each) after `05 READY`: 1 MiB exactly.
        let mut many = Vec::with_capacity(MIB as usize + 9);
        many.push(0x06);
        many.extend_from_slice(&MIB.to_be_bytes());
        many.extend_from_slice(b"\x05READY");
        for _ in 0..104_857 {
            many.extend_from_slice(b"\x01X\x00\x00\x00\x04abcd");
        }
        // One `X-Large` value filling the rest of 1 MiB.
        let value_len = MIB as usize - 6 - 1 - 7 - 4;
        let mut one = Vec::with_capacity(MIB as usize + 9);
        one.push(0x06);
        one.extend_from_slice(&MIB.to_be_bytes());
        one.extend_from_slice(b"\x05READY\x07X-Large");
        one.extend_from_slice(&(value_len as u32).to_be_bytes());
        one.resize(MIB as usize + 9, b'v');
        let fresh = || {
            let mut c = conn(SocketType::Router, t0);
            assert_eq!(feed(&mut c, t0, &G), vec![]);
            assert_bytes(&c.take_transmit(), &cat(&[&G, &our_ready(SocketType::Router)]));
            c
        };
        [(fresh(), many), (fresh(), one)]
    };
    let growth = peak_growth(build, |cases| {
        for (mut c, input) in cases {
            assert_eq!(input.len(), MIB as usize + 9);
            let mut chunks = input.chunks(16 * 1024);
            let first = chunks.next().unwrap();
            assert_eq!(
                feed(&mut c, t0, first),
                closed(ProtocolError::CommandTooLarge { len: MIB, max: 64 * KIB })
            );
            for chunk in chunks {
                assert_eq!(feed(&mut c, t0, chunk), vec![]);
            }
            assert_eq!(c.buffered_input(), 0);
            assert_bytes(&c.take_transmit(), b"");
        }
    });
    assert_growth_below(growth, 64 * KIB);
    assert_eq!(
        ProtocolError::CommandTooLarge { len: MIB, max: 64 * KIB }.to_string(),
        "command of 1048576 bytes exceeds max 65536"
    );
}

/// A-H12 (under the cap): a READY under 64 KiB with 257 properties closes at the 256-property cap,
/// which keeps the case-insensitive duplicate check cheap (no O(n²) on hostile input).
#[test]
fn closes_on_ready_with_more_than_256_properties() {
    let props: Vec<Vec<u8>> = (0..257).map(|i| format!("X-{i}").into_bytes()).collect();
    let pairs: Vec<(&[u8], &[u8])> = props.iter().map(|n| (n.as_slice(), &b""[..])).collect();
    closes_on_malformed_ready(&ready(&pairs), ProtocolError::MalformedMetadata("more than 256 properties"));
    // 256 are fine.
    let (events, _) = after_greeting(&ready(&pairs[..256]));
    assert!(matches!(events.as_slice(), [Event::HandshakeComplete(p)] if p.metadata.len() == 256));
}

/// A-H13 (sans-IO part): identities of 0 and 255 octets are accepted, 256 octets closes with ERROR
/// "Invalid-identity". Chosen: an identity starting with `00` is accepted, but `routing_id()` is
/// `None` for it (as for an empty one), so the ROUTER generates an id and a peer can never take a
/// generated one. (Duplicate identities are a socket-level matter.) Our own identity may not start
/// with `00` nor exceed 255 octets.
#[test]
fn checks_identity_length_and_hides_reserved_identities_from_routing() {
    let t0 = Instant::now();
    let complete = |id: &[u8]| {
        let mut c = conn(SocketType::Router, t0);
        let events = feed(&mut c, t0, &cat(&[&G, &ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", id)])]));
        match events.as_slice() {
            [Event::HandshakeComplete(info)] => info.clone(),
            other => panic!("identity {}: {other:?}", to_hex(id)),
        }
    };
    let empty = complete(b"");
    assert_eq!(empty.identity(), Some(&Bytes::new()));
    assert_eq!(empty.routing_id(), None);
    let long = complete(&[b'i'; 255]);
    assert_eq!(long.routing_id(), Some(&Bytes::from(vec![b'i'; 255])));
    let reserved = complete(b"\x00abc");
    assert_eq!(reserved.identity(), Some(&Bytes::from_static(b"\x00abc")));
    assert_eq!(reserved.routing_id(), None);

    let mut c = conn(SocketType::Router, t0);
    let events =
        feed(&mut c, t0, &cat(&[&G, &ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", &[b'i'; 256])])]));
    assert_eq!(events, closed(ProtocolError::IdentityTooLong { len: 256 }));
    assert_bytes(
        &c.take_transmit(),
        &cat(&[&G, &our_ready(SocketType::Router), &h(r#"04 17 05 "ERROR" 10 "Invalid-identity""#)]),
    );
    assert_eq!(ProtocolError::IdentityTooLong { len: 256 }.to_string(), "identity of 256 bytes exceeds 255");

    assert!(ConnectionConfig::new(SocketType::Dealer).identity(&b"\x00abc"[..]).is_err());
    assert!(ConnectionConfig::new(SocketType::Dealer).identity(vec![b'i'; 256]).is_err());
    assert!(ConnectionConfig::new(SocketType::Dealer).identity(vec![b'i'; 255]).is_ok());
}

/// A-H14: a second, well-formed READY after the handshake is ignored (as libzmq) and counted; the
/// peer's metadata stays as first announced and traffic continues. A second READY whose metadata is
/// malformed is still decoded, so it closes like any malformed command, with ERROR "Malformed
/// metadata" (libzmq ignores it unparsed).
#[test]
fn ignores_a_second_ready_after_the_handshake() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    let input = cat(&[&ready(&[(b"Socket-Type", b"PUB"), (b"Identity", b"evil")]), &message(&[b"after"])]);
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"after"])]);
    assert_eq!(c.stats().commands_ignored, 1);
    let peer = c.peer().unwrap();
    assert_eq!(peer.socket_type, Some(SocketType::Dealer));
    assert_eq!(peer.identity(), None);
    assert_bytes(&c.take_transmit(), b"");

    // Not even parsed: a malformed second READY is ignored too, as libzmq does.
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    let input = cat(&[&ready(&[(b"X-A", b""), (b"x-a", b"")]), &message(&[b"after"])]);
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"after"])]);
    assert_eq!(c.stats().commands_ignored, 1);
    assert_bytes(&c.take_transmit(), b"");
}

/// A-H15: ERROR during the handshake closes as `PeerError` with the reason as sent; RFC 23 makes it
/// fatal, so the connect side must not reconnect with the same credentials. The reason is shown
/// escaped and capped at 64 octets in logs. A malformed ERROR (reason length `ff`, 2 octets present)
/// closes as malformed (and is an ordinary, reconnectable failure).
#[test]
fn closes_on_error_during_the_handshake_and_refuses_to_reconnect() {
    let (events, sent) = after_greeting(&error_cmd(b"nope"));
    let e = ConnectionError::PeerError { reason: Bytes::from_static(b"nope") };
    assert_eq!(events, vec![Event::Closed(e.clone())]);
    assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router)]));
    assert!(!e.may_reconnect());
    assert_eq!(e.initiator(), Initiator::Peer);
    assert_eq!(e.to_string(), r#"peer sent ERROR: "nope""#);

    let nasty = ConnectionError::PeerError { reason: Bytes::from_static(b"\x1b[31mred\x00\n") };
    assert_eq!(nasty.to_string(), r#"peer sent ERROR: "\x1b[31mred\x00\n""#);
    let long = ConnectionError::PeerError { reason: Bytes::from(vec![b'x'; 255]) };
    assert_eq!(long.to_string(), format!(r#"peer sent ERROR: "{}"... (255 bytes)"#, "x".repeat(64)));

    let (events, _) = after_greeting(&cmd(&h(r#"05 "ERROR" ff "ab""#)));
    let e = ProtocolError::MalformedCommand { command: "ERROR", what: "reason runs past the end" };
    assert_eq!(events, closed(e.clone()));
    assert!(ConnectionError::Protocol(e).may_reconnect());
}

/// A-H16 (sans-IO part): greeting, then silence: the connection is closed at the handshake timeout
/// (trickled READY bytes do not extend it) and until then it is invisible: no `HandshakeComplete`,
/// sends and subscriptions refused with `NotReady`.
#[test]
fn stays_invisible_and_closes_at_the_handshake_timeout_after_greeting_only() {
    let t0 = Instant::now();
    let config = ConnectionConfig::new(SocketType::XPub).handshake_timeout(Some(Duration::from_secs(5)));
    let mut c = Connection::new(config, t0);
    assert_eq!(feed(&mut c, t0, &G), vec![]);
    assert_bytes(&c.take_transmit(), &cat(&[&G, &our_ready(SocketType::XPub)]));
    let rd = ready_of("SUB");
    assert_eq!(feed(&mut c, at(t0, 4_000), &rd[..rd.len() - 1]), vec![]);
    assert!(!c.is_ready());
    let m = Msg::from("x");
    assert_eq!(c.send_message(m.clone()), Err(SendError::NotReady(m)));
    let topic = Bytes::from_static(b"t");
    assert_eq!(c.send_subscribe(topic.clone()), Err(SendError::NotReady(topic)));
    assert_eq!(c.poll_timeout(), Some(at(t0, 5_000)));
    c.handle_timeout(at(t0, 4_999));
    assert_eq!(drain(&mut c), vec![]);
    c.handle_timeout(at(t0, 5_000));
    assert_eq!(drain(&mut c), vec![Event::Closed(ConnectionError::HandshakeTimeout(Duration::from_secs(5)))]);
    assert_eq!(c.buffered_input(), 0);
    // The last READY octet after the close changes nothing.
    assert_eq!(feed(&mut c, at(t0, 5_001), &rd[rd.len() - 1..]), vec![]);
    assert!(!c.is_ready());
}

/// A-H16 / CVE-2020-15166: what the peer told us is not exposed before the handshake completes.
/// `Connection::peer()` is documented as "What the peer told us, once the handshake is complete", so a
/// runtime may list a connection whose `peer()` is `Some` as a routable peer.
#[test]
fn hides_peer_info_until_the_handshake_completes() {
    let t0 = Instant::now();
    let mut c = conn(SocketType::Router, t0);
    assert_eq!(feed(&mut c, t0, &G), vec![]);
    assert_eq!(c.peer(), None);
}

// ===================================================================================================
// A-F: framing after the handshake
// ===================================================================================================

/// A-F1: an empty frame, and a message of two empty parts, are delivered as empty parts.
#[test]
fn delivers_empty_frames_as_empty_parts() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    assert_eq!(feed(&mut c, t0, &h("00 00")), vec![msg(&[b""])]);
    assert_eq!(feed(&mut c, t0, &h("01 00 00 00")), vec![msg(&[b"", b""])]);
}

/// A-F2: the long size form for small frames (and commands) is accepted, as libzmq does.
#[test]
fn accepts_the_long_form_for_small_sizes() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    assert_eq!(feed(&mut c, t0, &h(r#"02 00 00 00 00 00 00 00 03 "abc""#)), vec![msg(&[b"abc"])]);
    assert_eq!(feed(&mut c, t0, &h(r#"06 00 00 00 00 00 00 00 07 04 "PING" 00 00"#)), vec![]);
    assert_bytes(&c.take_transmit(), &pong(b""));
}

/// One ready ROUTER (peer DEALER) per case, for [`check_closes`].
fn with_conns(cases: Vec<(Vec<u8>, ProtocolError)>) -> Vec<(Connection, Vec<u8>, ProtocolError)> {
    let t0 = Instant::now();
    cases.into_iter().map(|(input, e)| (ready_conn(SocketType::Router, "DEALER", t0), input, e)).collect()
}

/// Feeds each input to its connection and checks that it closes with exactly that error, discards
/// its input and sends nothing.
fn check_closes(cases: Vec<(Connection, Vec<u8>, ProtocolError)>) {
    let t0 = Instant::now();
    for (mut c, input, e) in cases {
        assert_eq!(feed(&mut c, t0, &input), closed(e), "{}", to_hex(&input));
        assert_eq!(c.buffered_input(), 0);
        assert_bytes(&c.take_transmit(), b"");
    }
}

/// Feeds each input to a fresh ready ROUTER and checks the close.
fn closes_on_headers(cases: &[(Vec<u8>, ProtocolError)]) {
    check_closes(with_conns(cases.to_vec()));
}

/// A-F3: a long size of 2^63 (not a valid ZMTP size) and of 2^63-1 (over `max_frame_size`) close on
/// the header, before allocating; the same sizes on a command frame too. The heap grows by less than
/// 64 KiB. Note the 2^63 case reports the RFC maximum (2^63-1) as `max`, not `max_frame_size`.
#[test]
fn closes_on_frame_size_two_to_the_63_before_allocating() {
    const TOO_BIG: u64 = 1 << 63;
    const RFC_MAX: u64 = TOO_BIG - 1;
    let growth = peak_growth(
        || {
            with_conns(vec![
                (
                    h("02 80 00 00 00 00 00 00 00"),
                    ProtocolError::FrameTooLarge { len: TOO_BIG, max: RFC_MAX },
                ),
                (
                    h("02 7f ff ff ff ff ff ff ff"),
                    ProtocolError::FrameTooLarge { len: RFC_MAX, max: Limits::DEFAULT_MAX_MESSAGE },
                ),
                (
                    h("06 80 00 00 00 00 00 00 00"),
                    ProtocolError::FrameTooLarge { len: TOO_BIG, max: RFC_MAX },
                ),
                (
                    h("06 7f ff ff ff ff ff ff ff"),
                    ProtocolError::CommandTooLarge { len: RFC_MAX, max: Limits::DEFAULT_MAX_COMMAND },
                ),
            ])
        },
        check_closes,
    );
    assert_growth_below(growth, 64 * KIB);
    assert_eq!(
        ProtocolError::FrameTooLarge { len: TOO_BIG, max: RFC_MAX }.to_string(),
        "frame of 9223372036854775808 bytes exceeds max 9223372036854775807"
    );
    assert_eq!(
        ProtocolError::FrameTooLarge { len: RFC_MAX, max: Limits::DEFAULT_MAX_MESSAGE }.to_string(),
        "frame of 9223372036854775807 bytes exceeds max 67108864"
    );
}

/// A-F4: sizes `ff×8`, `ff ff ff ff ff ff ff da` (libzmq #1488) and `00 00 00 01 00 00 00 05`
/// (2^32+5, which a u32 cast would truncate to 5) close on the header with checked arithmetic and no
/// allocation. With `max_frame_size` raised above 2^32+5 the same header is simply waited on: nothing
/// is allocated for it and the suggested read reservation stays at most 256 KiB.
#[test]
fn closes_on_wrapping_frame_sizes_before_allocating() {
    const RFC_MAX: u64 = (1 << 63) - 1;
    let t0 = Instant::now();
    let big = 8 << 30;
    let growth = peak_growth(
        || {
            let cases = vec![
                (
                    h("02 ff ff ff ff ff ff ff ff"),
                    ProtocolError::FrameTooLarge { len: u64::MAX, max: RFC_MAX },
                ),
                (
                    h("02 ff ff ff ff ff ff ff da"),
                    ProtocolError::FrameTooLarge { len: 0xffff_ffff_ffff_ffda, max: RFC_MAX },
                ),
                (
                    h(r#"02 00 00 00 01 00 00 00 05 "hello""#),
                    ProtocolError::FrameTooLarge { len: (1 << 32) + 5, max: Limits::DEFAULT_MAX_MESSAGE },
                ),
            ];
            let config = ConnectionConfig::new(SocketType::Router).limits(limits(big, big, 4096));
            (with_conns(cases), handshaked(config, "DEALER", t0))
        },
        |(cases, mut raised)| {
            check_closes(cases);
            assert_eq!(feed(&mut raised, t0, &h(r#"02 00 00 00 01 00 00 00 05 "hello""#)), vec![]);
            assert!(!raised.is_closed());
            assert_eq!(raised.buffered_input(), 14);
            let cap = raised.read_buffer().capacity();
            assert!(cap <= 512 * 1024, "read reservation {cap}");
        },
    );
    // The read reservation (256 KiB, for a frame still missing 4 GiB) is included.
    assert_growth_below(growth, 64 * KIB + 512 * KIB);
    assert_eq!(
        ProtocolError::FrameTooLarge { len: (1 << 32) + 5, max: Limits::DEFAULT_MAX_MESSAGE }.to_string(),
        "frame of 4294967301 bytes exceeds max 67108864"
    );
}

/// A-F5: a frame of exactly `max_frame_size` is accepted, one octet more closes (libzmq uses `>`).
#[test]
fn accepts_a_frame_of_exactly_max_frame_size_and_closes_one_above() {
    let t0 = Instant::now();
    let config =
        ConnectionConfig::new(SocketType::Router).limits(limits(1024, Limits::DEFAULT_MAX_MESSAGE, 4096));
    let mut c = handshaked(config, "DEALER", t0);
    assert_eq!(feed(&mut c, t0, &frame(&[1; 1024], false)), vec![msg(&[&[1; 1024]])]);
    let e = ProtocolError::FrameTooLarge { len: 1025, max: 1024 };
    assert_eq!(feed(&mut c, t0, &frame(&[1; 1025], false)[..9]), closed(e.clone()));
    assert_eq!(e.to_string(), "frame of 1025 bytes exceeds max 1024");
    assert_eq!(ConnectionError::Protocol(e).initiator(), Initiator::Local);
}

/// A-F6: a header announcing 256 MiB (under a raised max) followed by one octet per second: buffered
/// memory follows the octets received, never the header (read reservations stay within twice the
/// octets received plus 256 KiB), and with heartbeats on (IVL 1 s, TIMEOUT 3 s) the trickle counts
/// as traffic, so the peer is closed only once it stops: 3 s after our first unanswered PING.
#[test]
fn grows_memory_with_bytes_received_and_counts_a_trickle_as_traffic() {
    let t0 = Instant::now();
    let hb = HeartbeatConfig {
        interval: Some(Duration::from_secs(1)),
        timeout: Some(Duration::from_secs(3)),
        ttl: None,
    };
    let config =
        ConnectionConfig::new(SocketType::Router).limits(limits(512 * MIB, 512 * MIB, 4096)).heartbeat(hb);
    let mut c = handshaked(config, "DEALER", t0);
    assert_eq!(c.poll_timeout(), Some(at(t0, 1_000)));
    assert_eq!(feed_via_read_buffer(&mut c, t0, &h("02 00 00 00 00 10 00 00 00 2a")), vec![]);
    let mut received = 1u64;
    for s in 1..=10u64 {
        assert_eq!(c.poll_timeout(), Some(at(t0, s * 1_000)));
        c.handle_timeout(at(t0, s * 1_000));
        assert_eq!(drain(&mut c), vec![]);
        assert_bytes(&c.take_transmit(), &ping(0, b""));
        assert_eq!(feed_via_read_buffer(&mut c, at(t0, s * 1_000 + 500), b"*"), vec![]);
        received += 1;
        assert_eq!(c.buffered_input() as u64, 9 + received);
        let cap = c.read_buffer().capacity() as u64;
        assert!(cap <= 2 * (received + 9 + 256 * KIB), "read buffer capacity {cap}");
    }
    // The trickle stops at 10.5 s. PINGs at 11, 12 and 13 s; the first of them times out at 14 s.
    for s in 11..=13u64 {
        assert_eq!(c.poll_timeout(), Some(at(t0, s * 1_000)));
        c.handle_timeout(at(t0, s * 1_000));
        assert_eq!(drain(&mut c), vec![]);
        assert_bytes(&c.take_transmit(), &ping(0, b""));
    }
    assert_eq!(c.poll_timeout(), Some(at(t0, 14_000)));
    c.handle_timeout(at(t0, 13_999));
    assert_eq!(drain(&mut c), vec![]);
    c.handle_timeout(at(t0, 14_000));
    assert_eq!(drain(&mut c), vec![Event::Closed(ConnectionError::HeartbeatTimeout(Duration::from_secs(3)))]);
    assert_eq!(c.buffered_input(), 0);
}

/// A-F7: reserved flag bits (`80`, `f8`, `0c`) are rejected. Chosen (RFC 23: "MUST be zero"; libzmq
/// ignores them and delivers the frame — documented difference): close with `ReservedFlags`.
#[test]
fn closes_on_reserved_flag_bits() {
    closes_on_headers(&[
        (h(r#"80 03 "abc""#), ProtocolError::ReservedFlags { flags: 0x80 }),
        (h(r#"f8 03 "abc""#), ProtocolError::ReservedFlags { flags: 0xf8 }),
        (h(r#"0c 07 04 "PING" 00 00"#), ProtocolError::ReservedFlags { flags: 0x0c }),
    ]);
    assert_eq!(
        ProtocolError::ReservedFlags { flags: 0x80 }.to_string(),
        "frame flags 0x80 have reserved bits set"
    );
    assert_eq!(
        ProtocolError::ReservedFlags { flags: 0x0c }.to_string(),
        "frame flags 0x0c have reserved bits set"
    );
}

/// A-F8: a command frame with MORE set (`05 05 04 PING 00`). Chosen (RFC 23: MORE "SHALL be zero on
/// command frames"; libzmq ignores it and answers the PING — documented difference): close with
/// `CommandWithMore`, no PONG.
#[test]
fn closes_on_a_command_with_more_set() {
    closes_on_headers(&[(h(r#"05 05 04 "PING" 00"#), ProtocolError::CommandWithMore)]);
    assert_eq!(ProtocolError::CommandWithMore.to_string(), "command frame has the MORE flag set");
}

/// A-F9: a PING between two frames of a message (libzmq's heartbeat timer does this) is answered with
/// a PONG, and the message `[abc, def]` is delivered intact.
#[test]
fn answers_a_ping_between_frames_and_delivers_the_message_intact() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    let input = cat(&[&h(r#"01 03 "abc""#), &h(r#"04 07 04 "PING" 00 00"#), &h(r#"00 03 "def""#)]);
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"abc", b"def"])]);
    assert_bytes(&c.take_transmit(), &h(r#"04 05 04 "PONG""#));
    assert_eq!(c.stats().pongs_sent, 1);
}

/// A 64 KiB block of 16 frames `03 <len64 4096> <4096 octets>`: MORE set, long form.
fn more_frames_block() -> Vec<u8> {
    let mut block = Vec::with_capacity(16 * (9 + 4096));
    for _ in 0..16 {
        block.extend_from_slice(&h("03 00 00 00 00 00 00 10 00"));
        block.resize(block.len() + 4096, b'm');
    }
    block
}

/// A-F10: an endless multipart (`03 <4096>` + 4 KiB, repeated for 300 MiB) is closed at
/// `max_message_size` (here 1 MiB: the 257th frame would make 1 MiB + 4 KiB), never delivered, and the
/// heap grows by less than the limit + 1 MiB. Input after the close is ignored at no cost.
#[test]
fn closes_an_endless_multipart_at_max_message_size_with_bounded_memory() {
    let t0 = Instant::now();
    let growth = peak_growth(
        || {
            let config = ConnectionConfig::new(SocketType::Router).limits(limits(
                Limits::DEFAULT_MAX_MESSAGE,
                MIB,
                4096,
            ));
            (handshaked(config, "DEALER", t0), more_frames_block())
        },
        |(mut c, block)| {
            let mut events = Vec::new();
            for _ in 0..(300 * MIB as usize / block.len()) {
                events.extend(feed(&mut c, t0, &block));
            }
            let e = ProtocolError::MessageTooLarge { len: MIB + 4096, max: MIB };
            assert_eq!(events, closed(e));
            assert_eq!(c.buffered_input(), 0);
        },
    );
    assert_growth_below(growth, 2 * MIB);
    assert_eq!(
        ProtocolError::MessageTooLarge { len: MIB + 4096, max: MIB }.to_string(),
        "message of 1052672+ bytes exceeds max 1048576"
    );
    // The limit is inclusive: exactly max_message_size in total is delivered.
    let config =
        ConnectionConfig::new(SocketType::Router).limits(limits(Limits::DEFAULT_MAX_MESSAGE, 8192, 4096));
    let mut c = handshaked(config, "DEALER", t0);
    let input = message(&[&[1; 4096], &[2; 4096]]);
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[&[1; 4096], &[2; 4096]])]);
}

/// A-F10 through the zero-copy read path (`read_buffer` + `handle_read`), with the endless multipart
/// arriving one 4 KiB frame per read, as a peer that writes one frame at a time makes it arrive, under
/// `max_message_size` = 8 MiB: the heap must still grow by less than the limit + 1 MiB. (It once grew
/// by twice the limit: every frame pinned a fresh 8 KiB read block; `read_buffer()` now reuses the
/// block's spare room and sizes new blocks by the message being received.)
#[test]
fn bounds_memory_of_an_endless_multipart_read_one_frame_per_read() {
    let t0 = Instant::now();
    let growth = peak_growth(
        || {
            let config = ConnectionConfig::new(SocketType::Router).limits(limits(
                Limits::DEFAULT_MAX_MESSAGE,
                8 * MIB,
                4096,
            ));
            (handshaked(config, "DEALER", t0), more_frames_block())
        },
        |(mut c, block)| {
            let mut events = Vec::new();
            'outer: for _ in 0..256 {
                for f in block.chunks(9 + 4096) {
                    events.extend(feed_via_read_buffer(&mut c, t0, f));
                    if c.is_closed() {
                        break 'outer;
                    }
                }
            }
            assert_eq!(events, closed(ProtocolError::MessageTooLarge { len: 8 * MIB + 4096, max: 8 * MIB }));
        },
    );
    assert_growth_below(growth, 9 * MIB);
}

/// A-F10 with the smallest frames: a multipart of 1-octet frames (`01 01 x`), one frame per read
/// through the zero-copy read path, up to `max_frames_per_message` (4096). The peer sends 12 KiB; each
/// 1-octet frame body is a slice of the read buffer, and those slices must share blocks rather than
/// each pin its own (they once held 32 MiB for 12 KiB received).
/// reliability.md §7 "no alloc": allocation ≤ a small constant + the bytes actually received.
#[test]
fn bounds_memory_of_tiny_frames_read_one_per_read() {
    let t0 = Instant::now();
    let growth = peak_growth(
        || handshaked(ConnectionConfig::new(SocketType::Router).limits(limits(MIB, MIB, 4096)), "DEALER", t0),
        |mut c| {
            let mut events = Vec::new();
            for _ in 0..4096 {
                events.extend(feed_via_read_buffer(&mut c, t0, b"\x01\x01x"));
            }
            assert_eq!(events, vec![]);
            assert_eq!(
                feed_via_read_buffer(&mut c, t0, b"\x01\x01x"),
                closed(ProtocolError::TooManyFrames { max: 4096 })
            );
        },
    );
    assert_growth_below(growth, 2 * MIB);
}

/// A-F11: 10^6 empty frames with MORE (2 MB) close at the frame-count cap (`max_frames_per_message`,
/// default 4096) when the 4097th header arrives; everything after is ignored at no cost; the heap grows
/// by less than 512 KiB.
#[test]
fn closes_a_million_empty_more_frames_at_the_frame_count_cap() {
    let t0 = Instant::now();
    let growth = peak_growth(
        || (ready_conn(SocketType::Router, "DEALER", t0), [0x01u8, 0x00].repeat(2048)),
        |(mut c, block)| {
            let mut events = Vec::new();
            for _ in 0..(1_000_000 / 2048) {
                events.extend(feed(&mut c, t0, &block));
            }
            assert_eq!(events, closed(ProtocolError::TooManyFrames { max: 4096 }));
        },
    );
    assert_growth_below(growth, 512 * KIB);
    assert_eq!(ProtocolError::TooManyFrames { max: 4096 }.to_string(), "message of more than 4096 frames");
    // Exactly the cap is fine.
    let config = ConnectionConfig::new(SocketType::Router).limits(limits(MIB, MIB, 4));
    let mut c = handshaked(config, "DEALER", t0);
    assert_eq!(feed(&mut c, t0, &h("01 00 01 00 01 00 00 00")), vec![msg(&[b"", b"", b"", b""])]);
    assert_eq!(
        feed(&mut c, t0, &h("01 00 01 00 01 00 01 00 00 00")),
        closed(ProtocolError::TooManyFrames { max: 4 })
    );
}

/// A-F12 (sans-IO part): input is decoded only as the application polls, so an application that does
/// not read leaves received octets undecoded in the read buffer (and the runtime stops reading when
/// its queue is full); nothing is queued on its behalf.
#[test]
fn decodes_lazily_so_unpolled_input_stays_in_the_read_buffer() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    c.handle_input(t0, &[0u8; 2000]);
    assert_eq!(c.buffered_input(), 2000);
    assert_eq!(c.stats().messages_received, 0);
    assert_eq!(c.poll_event(), Some(msg(&[b""])));
    assert_eq!(c.buffered_input(), 1998);
    assert_eq!(c.stats().messages_received, 1);
    assert_eq!(drain(&mut c).len(), 999);
    assert_eq!(c.buffered_input(), 0);
}

/// A-F13: a valid stream (greeting, READY, messages short/long/multipart, PING with context, an
/// unknown command, a SUBSCRIBE to a non-publisher) gives identical events and identical output
/// however it is split: at every single octet boundary, and one octet at a time.
#[test]
fn decodes_identically_however_the_stream_is_split() {
    let t0 = Instant::now();
    let stream = cat(&[
        &G,
        &ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", b"cli1")]),
        &message(&[b"one"]),
        &message(&[b"", b"req-1", &[9; 300]]),
        &ping(15, b"ctx"),
        &cmd(&named(b"BOGUS", b"xyz")),
        &subscribe(b"t"),
        &message(&[b"last"]),
    ]);
    let run = |pieces: &[&[u8]]| {
        let mut c = conn(SocketType::Router, t0);
        let mut events = Vec::new();
        for p in pieces {
            events.extend(feed(&mut c, t0, p));
        }
        (events, c.take_transmit(), c.stats())
    };
    let whole = run(&[&stream]);
    assert_eq!(whole.0.len(), 4);
    assert_bytes(&whole.1, &cat(&[&G, &our_ready(SocketType::Router), &pong(b"ctx")]));
    for k in 0..=stream.len() {
        assert_eq!(run(&[&stream[..k], &stream[k..]]), whole, "split at {k}");
    }
    let octets: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&octets), whole);
}

/// A-F14: a partial multipart (`01 03 abc 01 03 def`), or a partial frame, then EOF: nothing is
/// delivered, the buffers are freed, and the close says a partial message was dropped. A complete
/// message before EOF is delivered and the close is clean.
#[test]
fn drops_a_partial_multipart_whole_on_eof() {
    let t0 = Instant::now();
    for input in [h(r#"01 03 "abc" 01 03 "def""#), h(r#"00 05 "ab""#), h("02 00 00")] {
        let mut c = ready_conn(SocketType::Router, "DEALER", t0);
        assert_eq!(feed(&mut c, t0, &input), vec![]);
        c.handle_eof();
        let e = ConnectionError::PeerClosed { mid_message: true };
        assert_eq!(drain(&mut c), vec![Event::Closed(e.clone())]);
        assert_eq!(c.buffered_input(), 0);
        assert_eq!(
            e.to_string(),
            "peer closed the connection in the middle of a message (partial message dropped)"
        );
        assert!(e.may_reconnect());
    }
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    c.handle_input(t0, &message(&[b"abc", b"def"]));
    c.handle_eof();
    assert_eq!(
        drain(&mut c),
        vec![msg(&[b"abc", b"def"]), Event::Closed(ConnectionError::PeerClosed { mid_message: false })]
    );
}

/// A-F15 (sans-IO part): data frames from a SUB to a PUB (or XSUB to XPUB) that are not 3.0-style
/// subscriptions are surfaced as ordinary messages (the PUB socket layer discards them; XPUB hands
/// them to the application); the connection retains nothing once they are polled: 10^6 small ones
/// plus 62 of 64 KiB grow the heap by less than 1 MiB.
#[test]
fn reports_data_from_a_sub_to_pub_and_xpub_as_messages_without_retaining_them() {
    let t0 = Instant::now();
    for (ours, peer) in [(SocketType::Pub, "SUB"), (SocketType::XPub, "XSUB")] {
        let mut c = ready_conn(ours, peer, t0);
        assert_eq!(feed(&mut c, t0, &h(r#"00 05 "hello""#)), vec![msg(&[b"hello"])]);
        assert_eq!(feed(&mut c, t0, &h(r#"01 01 01 00 01 "x""#)), vec![msg(&[b"\x01", b"x"])]);
    }
    let growth = peak_growth(
        || {
            let small = h(r#"00 05 "hello""#).repeat(8192);
            let mut large = Vec::with_capacity(9 + 65536);
            large.extend_from_slice(&h("02 00 00 00 00 00 01 00 00"));
            large.resize(9 + 65536, b'L');
            (ready_conn(SocketType::Pub, "SUB", t0), small, large)
        },
        |(mut c, small, large)| {
            let mut n = 0u64;
            for i in 0..(1_000_000 / 8192 + 1) {
                c.handle_input(t0, &small);
                while let Some(ev) = c.poll_event() {
                    assert!(matches!(ev, Event::Message(_)));
                    n += 1;
                }
                if i % 2 == 0 {
                    assert_eq!(feed(&mut c, t0, &large).len(), 1);
                    n += 1;
                }
            }
            assert_eq!(n, c.stats().messages_received);
            assert_eq!(c.buffered_input(), 0);
        },
    );
    assert_growth_below(growth, MIB);
}

// ===================================================================================================
// A-C: commands after the handshake
// ===================================================================================================

/// A-C1: an unknown command (`05 BOGUS`) is ignored and counted (mechanisms may add commands); the next
/// message is delivered.
#[test]
fn ignores_and_counts_unknown_commands() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    let input = cat(&[&cmd(&named(b"BOGUS", b"")), &cmd(&named(b"BOGUS", b"data")), &message(&[b"next"])]);
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"next"])]);
    assert_eq!(c.stats().commands_ignored, 2);
    assert_bytes(&c.take_transmit(), b"");
}

/// A-C2: a zero-length command name (`04 01 00`) and an empty command (`04 00`). Chosen (RFC 23: a
/// name is 1-255 ALPHA octets; libzmq ignores these — documented difference): close as malformed.
#[test]
fn closes_on_empty_commands_and_zero_length_names() {
    closes_on_headers(&[
        (h("04 01 00"), ProtocolError::MalformedCommand { command: "?", what: "zero-length command name" }),
        (h("04 00"), ProtocolError::MalformedCommand { command: "?", what: "empty command body" }),
    ]);
}

/// A-C3: a name length past the body (`04 04 09 PIN`) closes as malformed; it is never read as PING.
#[test]
fn closes_on_a_command_name_longer_than_its_body() {
    closes_on_headers(&[(
        h(r#"04 04 09 "PIN""#),
        ProtocolError::MalformedCommand { command: "?", what: "command name runs past the end of the frame" },
    )]);
}

/// A-C4: names with non-ALPHA octets (`05 RE 00 DY`, `03 ff ff ff`). Chosen, consistent with A-C2:
/// close as malformed.
#[test]
fn closes_on_non_alpha_command_names() {
    let e = ProtocolError::MalformedCommand { command: "?", what: "command name is not ALPHA" };
    closes_on_headers(&[(h(r#"04 06 05 "RE" 00 "DY""#), e.clone()), (h("04 04 03 ff ff ff"), e.clone())]);
    assert_eq!(e.to_string(), "malformed ? command: command name is not ALPHA");
}

/// A-C5: ERROR after the handshake closes as `PeerError`; no reconnect with the same credentials.
#[test]
fn closes_on_error_after_the_handshake_without_reconnecting() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    let input = cat(&[&message(&[b"before"]), &error_cmd(b"bye"), &message(&[b"after"])]);
    let e = ConnectionError::PeerError { reason: Bytes::from_static(b"bye") };
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"before"]), Event::Closed(e.clone())]);
    assert!(!e.may_reconnect());
    assert_eq!(c.buffered_input(), 0);
    assert_bytes(&c.take_transmit(), b"");
}

/// A-C6: HELLO, WELCOME and INITIATE after a NULL handshake. Chosen (as libzmq): ignored as unknown
/// commands and counted.
#[test]
fn ignores_curve_commands_after_a_null_handshake() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Router, "DEALER", t0);
    let input = cat(&[
        &cmd(&named(b"HELLO", &[0; 194])),
        &cmd(&named(b"WELCOME", &[0; 160])),
        &cmd(&named(b"INITIATE", &[0; 248])),
        &message(&[b"next"]),
    ]);
    assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"next"])]);
    assert_eq!(c.stats().commands_ignored, 3);
    assert_bytes(&c.take_transmit(), b"");
}

/// A-C7: SUBSCRIBE and CANCEL sent to a socket that takes no subscriptions (ROUTER, DEALER, REP, PULL,
/// PAIR, and also REQ, PUSH, SUB, XSUB) are dropped and counted, never surfaced as data (libzmq
/// delivered `\tSUBSCRIBEfoo` to a ROUTER application).
#[test]
fn drops_subscribe_and_cancel_sent_to_non_publishing_sockets() {
    let t0 = Instant::now();
    let pairs = [
        (SocketType::Router, "DEALER"),
        (SocketType::Dealer, "ROUTER"),
        (SocketType::Rep, "REQ"),
        (SocketType::Pull, "PUSH"),
        (SocketType::Pair, "PAIR"),
        (SocketType::Req, "REP"),
        (SocketType::Push, "PULL"),
        (SocketType::Sub, "PUB"),
        (SocketType::XSub, "XPUB"),
    ];
    for (ours, peer) in pairs {
        let mut c = ready_conn(ours, peer, t0);
        let input = cat(&[&subscribe(b"foo"), &cancel(b"foo"), &message(&[b"hello"])]);
        assert_eq!(feed(&mut c, t0, &input), vec![msg(&[b"hello"])], "{ours}");
        assert_eq!(c.stats().subscriptions_dropped, 2);
        assert_eq!(c.stats().commands_ignored, 0);
    }
}

// ===================================================================================================
// A-P: PING / PONG
// ===================================================================================================

/// A-P1: `04 07 04 PING 00 00` is answered with `04 05 04 PONG`; a PING with no TTL sets no deadline.
#[test]
fn answers_ping_with_pong() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    assert_eq!(feed(&mut c, t0, &h(r#"04 07 04 "PING" 00 00"#)), vec![]);
    assert_bytes(&c.take_transmit(), &h(r#"04 05 04 "PONG""#));
    assert_eq!(c.stats().pongs_sent, 1);
    assert_eq!(c.poll_timeout(), None);
}

/// A-P2: the PONG echoes a 16-octet context whole, and the first 16 octets of a 20-octet one (libzmq
/// truncates). A 1 MiB context (long command) is over the command cap (64 KiB) and closes on its
/// header; with the cap raised to 2 MiB it is echoed cut to 16 octets.
#[test]
fn echoes_at_most_16_octets_of_ping_context() {
    let t0 = Instant::now();
    let ctx: Vec<u8> = (0..20).collect();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    assert_eq!(feed(&mut c, t0, &ping(0, &ctx[..16])), vec![]);
    assert_bytes(&c.take_transmit(), &cat(&[&h(r#"04 15 04 "PONG""#), &ctx[..16]]));
    assert_eq!(feed(&mut c, t0, &ping(0, &ctx)), vec![]);
    assert_bytes(&c.take_transmit(), &cat(&[&h(r#"04 15 04 "PONG""#), &ctx[..16]]));

    let huge: Vec<u8> = (0..MIB as usize).map(|i| i as u8).collect();
    let input = ping(0, &huge);
    assert_eq!(&input[..9], &h("06 00 00 00 00 00 10 00 07")[..]);
    assert_eq!(
        feed(&mut c, t0, &input[..9]),
        closed(ProtocolError::CommandTooLarge { len: MIB + 7, max: Limits::DEFAULT_MAX_COMMAND })
    );

    let config = ConnectionConfig::new(SocketType::Dealer)
        .limits(Limits { max_command_size: 2 * MIB, ..Limits::default() });
    let mut c = handshaked(config, "ROUTER", t0);
    assert_eq!(feed(&mut c, t0, &input), vec![]);
    assert_bytes(&c.take_transmit(), &cat(&[&h(r#"04 15 04 "PONG""#), &huge[..16]]));
}

/// A-P3: a PING whose body is 5 octets (`04 05 04 PING`, no TTL) or 6 octets (`… PING 00`). Chosen:
/// close as malformed, no PONG; nothing past the body is ever read (libzmq 4.3.5 echoed 16 octets of
/// adjacent memory; rzmq panicked). Bytes after the frame are not mistaken for the TTL.
#[test]
fn closes_on_a_ping_too_short_for_its_ttl_without_reading_past_it() {
    let e = ProtocolError::MalformedCommand { command: "PING", what: "body too short for the TTL" };
    closes_on_headers(&[
        (h(r#"04 05 04 "PING""#), e.clone()),
        (h(r#"04 06 04 "PING" 00"#), e.clone()),
        (cat(&[&h(r#"04 05 04 "PING""#), &message(&[b"next"])]), e.clone()),
    ]);
    assert_eq!(e.to_string(), "malformed PING command: body too short for the TTL");
}

/// A-P4: a PING with TTL `00 0a` (1 s) then silence: we close exactly 1 s after the PING was
/// processed (`PeerTtlExpired`); any traffic before then (a frame, or part of one) cancels the TTL, as
/// libzmq. Decoding has no clock, so `poll_timeout` first asks for `handle_timeout` at once (the latest
/// time it was given), and that call arms the TTL.
#[test]
fn closes_when_the_peer_ttl_expires_and_resets_it_on_traffic() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    assert_eq!(feed(&mut c, at(t0, 100), &ping(10, b"")), vec![]);
    assert_bytes(&c.take_transmit(), &pong(b""));
    assert_eq!(c.poll_timeout(), Some(at(t0, 100)));
    c.handle_timeout(at(t0, 100));
    assert_eq!(c.poll_timeout(), Some(at(t0, 1_100)));
    c.handle_timeout(at(t0, 1_099));
    assert_eq!(drain(&mut c), vec![]);
    c.handle_timeout(at(t0, 1_100));
    let e = ConnectionError::PeerTtlExpired(Duration::from_secs(1));
    assert_eq!(drain(&mut c), vec![Event::Closed(e.clone())]);
    assert_eq!(e.to_string(), "no traffic within the peer's PING TTL of 1s");
    assert!(e.may_reconnect());
    assert_eq!(c.poll_timeout(), None);

    for traffic in [message(&[b"alive"]), h("00 05 61")] {
        let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
        assert_eq!(feed(&mut c, at(t0, 100), &ping(10, b"")), vec![]);
        c.handle_timeout(at(t0, 100));
        assert_eq!(c.poll_timeout(), Some(at(t0, 1_100)));
        feed(&mut c, at(t0, 600), &traffic);
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(at(t0, 5_000));
        assert_eq!(drain(&mut c), vec![]);
        assert!(!c.is_closed());
    }
}

/// A-P5: TTL `ff ff` is 6553.5 s, computed without overflow.
#[test]
fn computes_the_maximum_ttl_without_overflow() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    assert_eq!(feed(&mut c, t0, &ping(0xffff, b"")), vec![]);
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_millis(6_553_500)));
    assert_eq!(Command::ttl(0xffff), Duration::from_millis(6_553_500));
}

/// A-P6 (sans-IO part): our PING carries `heartbeat.ttl` in deciseconds, rounded down: 65 500 ms is
/// `02 8f` (655), 65 600 ms is `02 90` (656, which libzmq misreads, #4226: the config documents it),
/// and anything over 6553.5 s is clamped to `ff ff`.
#[test]
fn encodes_our_ttl_in_deciseconds_rounded_down_and_clamped() {
    let t0 = Instant::now();
    for (ttl_ms, field) in [(65_500u64, "02 8f"), (65_600, "02 90"), (65_649, "02 90"), (10_000_000, "ff ff")]
    {
        let hb = HeartbeatConfig {
            interval: Some(Duration::from_secs(1)),
            timeout: None,
            ttl: Some(Duration::from_millis(ttl_ms)),
        };
        let mut c = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(hb), "ROUTER", t0);
        c.handle_timeout(at(t0, 1_000));
        assert_eq!(drain(&mut c), vec![]);
        assert_bytes(&c.take_transmit(), &h(&format!(r#"04 07 04 "PING" {field}"#)));
    }
}

/// A-P7: 10^5 PINGs back to back from a peer that never reads: at most one PONG is queued and one
/// context waits. Chosen: while the first PONG is unsent, each further PING replaces the waiting
/// context (counted in `pongs_skipped`); once the first PONG is written, the newest PING is answered
/// (as libzmq answers the newest, replacing its pending context). Memory stays flat.
#[test]
fn keeps_at_most_one_pong_pending_under_a_ping_flood() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    let flood = ping(0, b"").repeat(100_000);
    assert_eq!(feed(&mut c, t0, &flood), vec![]);
    assert_eq!(c.transmit().len(), 7);
    assert_eq!(c.stats().pongs_sent, 1);
    assert_eq!(c.stats().pongs_skipped, 99_998, "one context waits");
    // Partly written: still pending; the newest PING replaces the waiting context.
    c.transmit_mut().advance(6);
    assert_eq!(feed(&mut c, t0, &ping(0, b"n")), vec![]);
    assert_eq!(c.stats().pongs_skipped, 99_999);
    assert_bytes(&c.take_transmit(), &h(r#""G""#));
    // Written: the waiting PONG (the newest PING's) is due at once.
    assert!(c.poll_timeout().is_some_and(|d| d <= t0), "{:?}", c.poll_timeout());
    c.handle_timeout(t0);
    assert_bytes(&c.take_transmit(), &pong(b"n"));
    assert_eq!(c.stats().pongs_sent, 2);
    // Nothing pending: the next PING is answered at once.
    assert_eq!(feed(&mut c, t0, &ping(0, b"x")), vec![]);
    assert_bytes(&c.take_transmit(), &pong(b"x"));
    assert_eq!(c.stats().pongs_sent, 3);
}

/// Issue 15 defect 2: PING, a message, PING arriving together: each is answered, the second once
/// the first PONG is written (libzmq answers each; a peer that waits for its latest PING's PONG
/// must get it). This failed before: the second PING was dropped while the first PONG was unsent.
#[test]
fn pings_arriving_together_get_the_newest_answered() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    let mut input = ping(0, b"first");
    input.extend_from_slice(&h(r#"00 03 "abc""#));
    input.extend_from_slice(&ping(0, b"second"));
    let events = feed(&mut c, t0, &input);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_bytes(&c.take_transmit(), &pong(b"first"));
    assert!(c.poll_timeout().is_some_and(|d| d <= t0), "the second PONG is due at once");
    c.handle_timeout(t0);
    assert_bytes(&c.take_transmit(), &pong(b"second"));
    assert_eq!((c.stats().pongs_sent, c.stats().pongs_skipped), (2, 0));
}

/// A-P8: an unsolicited PONG is ignored (no event, not counted as an unknown command) but counts as
/// traffic: it clears a pending heartbeat timeout.
#[test]
fn ignores_an_unsolicited_pong_but_counts_it_as_traffic() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::Dealer, "ROUTER", t0);
    assert_eq!(feed(&mut c, t0, &pong(b"")), vec![]);
    assert_eq!(feed(&mut c, t0, &pong(b"surprise")), vec![]);
    assert_eq!(c.stats().commands_ignored, 0);
    assert_bytes(&c.take_transmit(), b"");
    assert_eq!(c.poll_timeout(), None);

    let hb = HeartbeatConfig {
        interval: Some(Duration::from_secs(10)),
        timeout: Some(Duration::from_secs(3)),
        ttl: None,
    };
    let mut c = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(hb), "ROUTER", t0);
    c.handle_timeout(at(t0, 10_000));
    assert_bytes(&c.take_transmit(), &ping(0, b""));
    assert_eq!(c.poll_timeout(), Some(at(t0, 13_000)));
    assert_eq!(feed(&mut c, at(t0, 11_000), &pong(b"not ours")), vec![]);
    assert_eq!(c.poll_timeout(), Some(at(t0, 20_000)));
}

/// A-P9: PING before READY closes as an unexpected command (libzmq closed too).
#[test]
fn closes_on_ping_before_ready() {
    let (events, sent) = after_greeting(&ping(10, b"ctx"));
    assert_eq!(
        events,
        closed(ProtocolError::UnexpectedCommand {
            name: Bytes::from_static(b"PING"),
            state: "during the NULL handshake"
        })
    );
    assert_bytes(&sent, &cat(&[&G, &our_ready(SocketType::Router)]));
}

/// A-P10 (sans-IO part): our heartbeats, IVL 1 s, TIMEOUT 3 s, TTL 10 s, against a silent peer: PINGs
/// `04 07 04 PING 00 64` at 1, 2 and 3 s, then `HeartbeatTimeout` at 4 s (3 s after the first
/// unanswered PING). A reply (any traffic) in time keeps the connection up.
#[test]
fn closes_when_our_ping_gets_no_traffic_within_the_heartbeat_timeout() {
    let t0 = Instant::now();
    let hb = HeartbeatConfig {
        interval: Some(Duration::from_secs(1)),
        timeout: Some(Duration::from_secs(3)),
        ttl: Some(Duration::from_secs(10)),
    };
    let our_ping = h(r#"04 07 04 "PING" 00 64"#);
    let mut c = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(hb), "ROUTER", t0);
    assert_eq!(c.poll_timeout(), Some(at(t0, 1_000)));
    c.handle_timeout(at(t0, 999));
    assert_bytes(&c.take_transmit(), b"");
    for s in 1..=3u64 {
        assert_eq!(c.poll_timeout(), Some(at(t0, s * 1_000)));
        c.handle_timeout(at(t0, s * 1_000));
        assert_eq!(drain(&mut c), vec![]);
        assert_bytes(&c.take_transmit(), &our_ping);
    }
    assert_eq!(c.stats().pings_sent, 3);
    assert_eq!(c.poll_timeout(), Some(at(t0, 4_000)));
    c.handle_timeout(at(t0, 4_000));
    let e = ConnectionError::HeartbeatTimeout(Duration::from_secs(3));
    assert_eq!(drain(&mut c), vec![Event::Closed(e.clone())]);
    assert_eq!(e.to_string(), "no traffic within 3s of our PING");
    assert_eq!(e.initiator(), Initiator::Local);
    assert!(e.may_reconnect());
    assert_eq!(c.poll_timeout(), None);

    let mut c = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(hb), "ROUTER", t0);
    c.handle_timeout(at(t0, 1_000));
    assert_eq!(feed(&mut c, at(t0, 1_500), &pong(b"")), vec![]);
    assert_bytes(&c.take_transmit(), &our_ping);
    for s in 2..=10u64 {
        c.handle_timeout(at(t0, s * 1_000));
        assert_eq!(drain(&mut c), vec![]);
        assert_bytes(&c.take_transmit(), &our_ping);
        assert_eq!(feed(&mut c, at(t0, s * 1_000 + 500), &pong(b"")), vec![]);
    }
    assert!(c.is_ready());
    assert_eq!(c.stats().pings_sent, 10);
}

// ===================================================================================================
// A-S: SUBSCRIBE / CANCEL
// ===================================================================================================

/// A-S1: a 3.1 peer may send both the SUBSCRIBE/CANCEL commands and the 3.0 data-frame form
/// (`00 04 01 abc`, `00 04 00 abc`); both are subscriptions (libzmq accepts both).
#[test]
fn accepts_both_subscription_forms_from_a_3_1_peer() {
    let t0 = Instant::now();
    for (ours, peer) in [(SocketType::XPub, "SUB"), (SocketType::Pub, "XSUB")] {
        let mut c = ready_conn(ours, peer, t0);
        let input = cat(&[
            &subscribe(b"x"),
            &h(r#"00 04 01 "abc""#),
            &h(r#"00 04 00 "abc""#),
            &cancel(b"x"),
            &h("00 01 01"),
        ]);
        assert_eq!(
            feed(&mut c, t0, &input),
            vec![
                Event::Subscribe(Bytes::from_static(b"x")),
                Event::Subscribe(Bytes::from_static(b"abc")),
                Event::Cancel(Bytes::from_static(b"abc")),
                Event::Cancel(Bytes::from_static(b"x")),
                Event::Subscribe(Bytes::new()),
            ]
        );
    }
}

/// A-S2: topics of 0, 1, 245, 246, 255, 256 and 65 526 octets (SUBSCRIBE bodies of 10 + topic, the
/// last exactly the 64 KiB command cap) decode in either framing, and our encoder uses the long form
/// exactly when the body exceeds 255 octets. A 65 536-octet topic is over the command cap: close.
/// Chosen: a SUBSCRIBE whose short size was truncated (libzmq < 4.3.5, #4564) is a corrupt stream:
/// close as malformed.
#[test]
fn decodes_any_topic_length_and_encodes_long_commands_above_255_octets() {
    let t0 = Instant::now();
    for len in [0usize, 1, 245, 246, 255, 256, 65_526] {
        let topic: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let body = named(b"SUBSCRIBE", &topic);
        let mut long = h("06");
        long.extend_from_slice(&(body.len() as u64).to_be_bytes());
        long.extend_from_slice(&body);
        let mut c = ready_conn(SocketType::XPub, "SUB", t0);
        let expected = Event::Subscribe(Bytes::from(topic.clone()));
        assert_eq!(feed(&mut c, t0, &subscribe(&topic)), vec![expected.clone()], "topic {len}");
        assert_eq!(feed(&mut c, t0, &long), vec![expected], "long form, topic {len}");

        let mut s = ready_conn(SocketType::Sub, "PUB", t0);
        s.send_subscribe(Bytes::from(topic.clone())).unwrap();
        let sent = s.take_transmit();
        assert_bytes(&sent, &subscribe(&topic));
        assert_eq!(sent[0], if len + 10 > 255 { 0x06 } else { 0x04 });
    }
    let topic = vec![b't'; 65_536];
    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    assert_eq!(
        feed(&mut c, t0, &subscribe(&topic)),
        closed(ProtocolError::CommandTooLarge { len: 65_546, max: Limits::DEFAULT_MAX_COMMAND })
    );
    // Truncated short sizes: (10 + 246) as u8 = 0, (10 + 250) as u8 = 4.
    for (topic_len, e) in [
        (246usize, ProtocolError::MalformedCommand { command: "?", what: "empty command body" }),
        (
            250,
            ProtocolError::MalformedCommand {
                command: "?",
                what: "command name runs past the end of the frame",
            },
        ),
    ] {
        let body = named(b"SUBSCRIBE", &vec![b't'; topic_len]);
        let input = cat(&[&[0x04, body.len() as u8], &body]);
        let mut c = ready_conn(SocketType::XPub, "SUB", t0);
        assert_eq!(feed(&mut c, t0, &input), closed(e));
    }
}

/// A-S3 (sans-IO part): a CANCEL for a topic never subscribed is reported once, as sent; reference
/// counting (never negative, nothing forwarded upstream) belongs to the XPUB socket layer.
#[test]
fn reports_a_cancel_for_an_unknown_topic_once_and_unchanged() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    assert_eq!(feed(&mut c, t0, &cancel(b"never")), vec![Event::Cancel(Bytes::from_static(b"never"))]);
    assert_eq!(c.stats().subscriptions_dropped, 0);
}

/// A-S4 (sans-IO part): SUBSCRIBE `A` twice and CANCEL once are three events in order; subscriptions
/// are not idempotent (RFC 29/37), so the socket layer keeps `A` subscribed.
#[test]
fn reports_every_subscribe_and_cancel_non_idempotently() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    let a = Bytes::from_static(b"A");
    assert_eq!(
        feed(&mut c, t0, &cat(&[&subscribe(b"A"), &subscribe(b"A"), &cancel(b"A")])),
        vec![Event::Subscribe(a.clone()), Event::Subscribe(a.clone()), Event::Cancel(a)]
    );
}

/// Block of `n` SUBSCRIBE commands with 16-octet topics.
fn subscribe_block(n: usize) -> Vec<u8> {
    let one = subscribe(&[b'0'; 16]);
    let mut block = Vec::with_capacity(one.len() * n);
    for _ in 0..n {
        block.extend_from_slice(&one);
    }
    block
}

/// A-S5 (sans-IO part): 300 k unique 16-octet topics from one peer: the connection reports each and
/// keeps no per-topic state, so its heap growth stays under 1 MiB (the per-peer cap is the socket
/// layer's).
#[test]
fn keeps_no_per_topic_state_under_a_subscription_flood() {
    let t0 = Instant::now();
    const PER_BLOCK: usize = 2_000;
    let growth = peak_growth(
        || (ready_conn(SocketType::XPub, "SUB", t0), subscribe_block(PER_BLOCK)),
        |(mut c, mut block)| {
            let stride = block.len() / PER_BLOCK;
            let mut n = 0u64;
            for b in 0..150u64 {
                // Make every topic unique: block number and index in the last 8 topic octets.
                for i in 0..PER_BLOCK {
                    let id = b * PER_BLOCK as u64 + i as u64;
                    let end = (i + 1) * stride;
                    block[end - 8..end].copy_from_slice(&id.to_be_bytes());
                }
                c.handle_input(t0, &block);
                while let Some(ev) = c.poll_event() {
                    let Event::Subscribe(topic) = ev else { panic!("{ev:?}") };
                    assert_eq!(topic[8..], n.to_be_bytes());
                    n += 1;
                }
            }
            assert_eq!(n, 300_000);
            assert_eq!(c.buffered_input(), 0);
        },
    );
    assert_growth_below(growth, MIB);
}

/// A-S6: SUBSCRIBE with a 1 MiB and a 16 MiB topic closes at the 64 KiB command cap on the header
/// (chosen: topics are limited by `max_command_size`); the largest topic that fits (65 526 octets) is
/// subscribed and cancelled with no recursion, on a thread with a 64 KiB stack.
#[test]
fn rejects_topics_over_the_command_cap_and_decodes_without_recursion() {
    let t0 = Instant::now();
    for topic_len in [MIB, 16 * MIB] {
        let mut c = ready_conn(SocketType::XPub, "SUB", t0);
        let mut header = h("06");
        header.extend_from_slice(&(topic_len + 10).to_be_bytes());
        header.extend_from_slice(b"\x09SUBSCRIBE");
        assert_eq!(
            feed(&mut c, t0, &header),
            closed(ProtocolError::CommandTooLarge { len: topic_len + 10, max: Limits::DEFAULT_MAX_COMMAND })
        );
    }
    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    let topic = vec![b'd'; 65_526];
    let input = cat(&[&subscribe(&topic), &cancel(&topic)]);
    let events = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || feed(&mut c, t0, &input))
        .unwrap()
        .join()
        .unwrap();
    let topic = Bytes::from(topic);
    assert_eq!(events, vec![Event::Subscribe(topic.clone()), Event::Cancel(topic)]);
}

/// A-S7 (sans-IO part): the same topic subscribed and cancelled 10^6 times: the heap stays flat
/// (growth under 1 MiB).
#[test]
fn stays_flat_under_a_million_subscribe_cancel_cycles() {
    let t0 = Instant::now();
    const PER_BLOCK: usize = 2_000;
    let growth = peak_growth(
        || {
            let pair = cat(&[&subscribe(b"BINANCE:BTC"), &cancel(b"BINANCE:BTC")]);
            (ready_conn(SocketType::XPub, "SUB", t0), pair.repeat(PER_BLOCK))
        },
        |(mut c, block)| {
            let (mut subs, mut cancels) = (0u32, 0u32);
            for _ in 0..(1_000_000 / PER_BLOCK) {
                c.handle_input(t0, &block);
                while let Some(ev) = c.poll_event() {
                    match ev {
                        Event::Subscribe(t) if t == "BINANCE:BTC" => subs += 1,
                        Event::Cancel(t) if t == "BINANCE:BTC" => cancels += 1,
                        other => panic!("{other:?}"),
                    }
                }
            }
            assert_eq!((subs, cancels), (1_000_000, 1_000_000));
        },
    );
    assert_growth_below(growth, MIB);
}

/// A-S8 (sans-IO part): a subscriber that disconnects without CANCEL ends with a clean `PeerClosed`
/// after its subscriptions; removing them is the socket layer's job on that event. Nothing after the
/// close is reported.
#[test]
fn ends_a_subscriber_that_leaves_without_cancel_with_a_clean_close() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    c.handle_input(t0, &subscribe(b"A"));
    c.handle_eof();
    assert_eq!(
        drain(&mut c),
        vec![
            Event::Subscribe(Bytes::from_static(b"A")),
            Event::Closed(ConnectionError::PeerClosed { mid_message: false })
        ]
    );
    assert_eq!(feed(&mut c, t0, &subscribe(b"B")), vec![]);
}

/// A-S9: a SUBSCRIBE command between the frames of a message to an XPUB is processed (reported when
/// decoded, before the message completes) and the message stays intact.
#[test]
fn processes_a_subscribe_between_frames_and_keeps_the_message_intact() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::XPub, "XSUB", t0);
    let input = cat(&[&h(r#"01 03 "abc""#), &subscribe(b"x"), &h(r#"00 03 "def""#)]);
    assert_eq!(
        feed(&mut c, t0, &input),
        vec![Event::Subscribe(Bytes::from_static(b"x")), msg(&[b"abc", b"def"])]
    );
}

/// A-S10: a SUBSCRIBE with MORE set closes as A-F8; with the long flag and a size that disagrees with
/// its body: a size too small leaves the rest to be read as a frame header (here reserved bits: close),
/// a size too large waits for octets that never come (EOF: partial dropped), and a size over the cap
/// closes as A-F3.
#[test]
fn treats_subscribe_with_more_or_a_wrong_long_size_as_framing_errors() {
    let t0 = Instant::now();
    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    assert_eq!(feed(&mut c, t0, &h(r#"05 0d 09 "SUBSCRIBE" "abc""#)), closed(ProtocolError::CommandWithMore));

    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    assert_eq!(
        feed(&mut c, t0, &h(r#"06 00 00 00 00 00 00 00 0a 09 "SUBSCRIBE" "abc""#)),
        vec![
            Event::Subscribe(Bytes::new()),
            Event::Closed(ConnectionError::Protocol(ProtocolError::ReservedFlags { flags: b'a' }))
        ]
    );

    let mut c = ready_conn(SocketType::XPub, "SUB", t0);
    assert_eq!(feed(&mut c, t0, &h(r#"06 00 00 00 00 00 00 00 20 09 "SUBSCRIBE" "abc""#)), vec![]);
    c.handle_eof();
    assert_eq!(drain(&mut c), vec![Event::Closed(ConnectionError::PeerClosed { mid_message: true })]);

    closes_on_headers(&[
        (
            h(r#"06 80 00 00 00 00 00 00 00 09 "SUBSCRIBE""#),
            ProtocolError::FrameTooLarge { len: 1 << 63, max: (1 << 63) - 1 },
        ),
        (
            h(r#"06 00 00 00 01 00 00 00 0d 09 "SUBSCRIBE" "abc""#),
            ProtocolError::CommandTooLarge { len: (1 << 32) + 13, max: Limits::DEFAULT_MAX_COMMAND },
        ),
    ]);
}
