//! Golden vectors: the exact bytes libzmq 4.3.5 (pyzmq 27.1.0) sends, captured over loopback by
//! `tests/peers/capture_golden.py` into `tests/golden/libzmq.hex`. Our encoder must produce the same
//! bytes, and our decoder must accept theirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::{
    Command, Connection, ConnectionConfig, Event, FrameHeader, Greeting, HeartbeatConfig, SocketType, Version,
};
use zmtp::Msg;

fn golden() -> HashMap<String, Vec<u8>> {
    let text = include_str!("golden/libzmq.hex");
    let mut map = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, hex) = line.split_once(' ').unwrap_or((line, ""));
        let hex = hex.trim();
        let bytes =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert!(map.insert(name.to_string(), bytes).is_none(), "duplicate vector {name}");
    }
    map
}

fn g(name: &str) -> Vec<u8> {
    golden().remove(name).unwrap_or_else(|| panic!("no golden vector {name}"))
}

fn lower(t: SocketType) -> String {
    t.as_str().to_ascii_lowercase()
}

/// A socket type that may talk to `t`.
fn compatible_peer(t: SocketType) -> SocketType {
    SocketType::ALL.into_iter().find(|p| t.is_compatible_with(*p)).unwrap()
}

/// Feeds libzmq's greeting and its READY for `peer_type` (as captured) to `conn`, expecting a
/// completed handshake. Returns what we transmitted after our greeting (our READY).
fn handshake_with_libzmq(conn: &mut Connection, now: Instant, peer_type: SocketType) -> Vec<u8> {
    let mut ours = conn.take_transmit();
    assert_eq!(ours.len(), 64, "greeting first");
    conn.handle_input(now, &g("greeting_null_bound"));
    conn.handle_input(now, &g(&format!("ready_{}", lower(peer_type))));
    match conn.poll_event() {
        Some(Event::HandshakeComplete(peer)) => {
            assert_eq!(peer.socket_type, Some(peer_type));
            assert_eq!(peer.version, Version::V3_1);
        }
        other => panic!("expected HandshakeComplete, got {other:?}"),
    }
    assert_eq!(conn.poll_event(), None);
    ours = conn.take_transmit();
    ours
}

#[test]
fn our_greeting_matches_libzmq_for_both_roles() {
    let now = Instant::now();
    let mut client = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
    assert_eq!(client.take_transmit(), g("greeting_null_connecting"));
    let mut server = Connection::new(ConnectionConfig::new(SocketType::Router).as_server(true), now);
    assert_eq!(server.take_transmit(), g("greeting_null_bound"));
    let config = ConnectionConfig::new(SocketType::Dealer).identity(&b"cli1"[..]).unwrap();
    let mut with_id = Connection::new(config, now);
    assert_eq!(with_id.take_transmit(), g("greeting_null_connecting_id_cli1"));
}

#[test]
fn decodes_every_libzmq_greeting() {
    for name in ["greeting_null_bound", "greeting_null_connecting", "greeting_null_connecting_id_cli1"] {
        let greeting = Greeting::decode(&g(name)).unwrap().unwrap();
        assert_eq!(greeting.version, Version::V3_1);
        assert_eq!(greeting.mechanism.trimmed(), b"NULL");
        assert!(!greeting.as_server);
    }
}

#[test]
fn our_ready_matches_libzmq_for_every_socket_type() {
    for t in SocketType::ALL {
        let now = Instant::now();
        let mut conn = Connection::new(ConnectionConfig::new(t), now);
        let ready = handshake_with_libzmq(&mut conn, now, compatible_peer(t));
        assert_eq!(ready, g(&format!("ready_{}", lower(t))), "READY of {t}");
    }
}

#[test]
fn our_ready_with_identity_matches_libzmq() {
    for (t, id, name) in [
        (SocketType::Dealer, "cli1", "ready_dealer_id_cli1"),
        (SocketType::Req, "cli1", "ready_req_id_cli1"),
        (SocketType::Router, "rtr1", "ready_router_id_rtr1"),
    ] {
        let now = Instant::now();
        let config = ConnectionConfig::new(t).identity(Bytes::from(id)).unwrap();
        let mut conn = Connection::new(config, now);
        let ready = handshake_with_libzmq(&mut conn, now, compatible_peer(t));
        assert_eq!(ready, g(name), "{name}");
    }
}

#[test]
fn our_ready_with_application_metadata_matches_libzmq() {
    let now = Instant::now();
    let config = ConnectionConfig::new(SocketType::Dealer).property("X-Hello", "world").unwrap();
    let mut conn = Connection::new(config, now);
    let ready = handshake_with_libzmq(&mut conn, now, SocketType::Router);
    assert_eq!(ready, g("ready_dealer_metadata"));
}

#[test]
fn decodes_libzmq_ready_with_identity_and_metadata() {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(SocketType::Router), now);
    conn.handle_input(now, &g("greeting_null_connecting_id_cli1"));
    conn.handle_input(now, &g("ready_dealer_metadata"));
    let Some(Event::HandshakeComplete(peer)) = conn.poll_event() else { panic!("no handshake") };
    assert_eq!(peer.metadata.get("x-hello").map(|v| &v[..]), Some(&b"world"[..]));
    assert_eq!(peer.identity().map(|v| v.len()), Some(0));
    assert_eq!(peer.routing_id(), None);

    let mut conn = Connection::new(ConnectionConfig::new(SocketType::Router), now);
    conn.handle_input(now, &g("greeting_null_connecting_id_cli1"));
    conn.handle_input(now, &g("ready_dealer_id_cli1"));
    let Some(Event::HandshakeComplete(peer)) = conn.poll_event() else { panic!("no handshake") };
    assert_eq!(peer.routing_id().map(|v| &v[..]), Some(&b"cli1"[..]));
}

fn ready_conn(t: SocketType, peer: SocketType) -> (Connection, Instant) {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(t), now);
    handshake_with_libzmq(&mut conn, now, peer);
    (conn, now)
}

#[test]
fn our_subscribe_and_cancel_match_libzmq() {
    let (mut sub, _) = ready_conn(SocketType::Sub, SocketType::Pub);
    let cases: [(&str, Bytes, bool); 5] = [
        ("subscribe_binance", Bytes::from_static(b"BINANCE:"), true),
        ("cancel_binance", Bytes::from_static(b"BINANCE:"), false),
        ("subscribe_empty", Bytes::new(), true),
        ("subscribe_topic_246", Bytes::from(vec![b't'; 246]), true),
        ("subscribe_topic_300", Bytes::from(vec![b't'; 300]), true),
    ];
    for (name, topic, subscribe) in cases {
        if subscribe {
            sub.send_subscribe(topic).unwrap();
        } else {
            sub.send_cancel(topic).unwrap();
        }
        assert_eq!(sub.take_transmit(), g(name), "{name}");
    }
}

#[test]
fn our_subscribe_to_a_v30_peer_uses_the_message_form_like_libzmq() {
    let now = Instant::now();
    let mut sub = Connection::new(ConnectionConfig::new(SocketType::Sub), now);
    sub.take_transmit();
    let mut greeting = g("greeting_null_bound");
    greeting[11] = 0; // the peer speaks ZMTP 3.0
    sub.handle_input(now, &greeting);
    sub.handle_input(now, &g("ready_pub"));
    assert!(matches!(sub.poll_event(), Some(Event::HandshakeComplete(p)) if p.version == Version::V3_0));
    sub.take_transmit();
    sub.send_subscribe(Bytes::from_static(b"foo")).unwrap();
    assert_eq!(sub.take_transmit(), g("subscribe_to_v30_peer"));
    sub.send_cancel(Bytes::from_static(b"foo")).unwrap();
    assert_eq!(sub.take_transmit(), g("cancel_to_v30_peer"));
}

#[test]
fn xpub_decodes_every_libzmq_subscription_form() {
    let (mut xpub, now) = ready_conn(SocketType::XPub, SocketType::Sub);
    let cases = [
        ("subscribe_binance", Event::Subscribe(Bytes::from_static(b"BINANCE:"))),
        ("cancel_binance", Event::Cancel(Bytes::from_static(b"BINANCE:"))),
        ("subscribe_empty", Event::Subscribe(Bytes::new())),
        ("subscribe_topic_246", Event::Subscribe(Bytes::from(vec![b't'; 246]))),
        ("subscribe_topic_300", Event::Subscribe(Bytes::from(vec![b't'; 300]))),
        ("xsub_subscribe_foo", Event::Subscribe(Bytes::from_static(b"foo"))),
        ("subscribe_to_v30_peer", Event::Subscribe(Bytes::from_static(b"foo"))),
        ("cancel_to_v30_peer", Event::Cancel(Bytes::from_static(b"foo"))),
    ];
    for (name, expected) in cases {
        xpub.handle_input(now, &g(name));
        assert_eq!(xpub.poll_event(), Some(expected), "{name}");
    }
}

#[test]
fn our_ping_matches_libzmq() {
    let now = Instant::now();
    let heartbeat = HeartbeatConfig {
        interval: Some(Duration::from_millis(100)),
        ttl: Some(Duration::from_millis(1500)),
        timeout: None,
    };
    let mut conn = Connection::new(ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat), now);
    handshake_with_libzmq(&mut conn, now, SocketType::Router);
    assert_eq!(
        conn.poll_timeout(),
        Some(now + Duration::from_secs(30)).min(Some(now + Duration::from_millis(100)))
    );
    conn.handle_timeout(now + Duration::from_millis(100));
    assert_eq!(conn.take_transmit(), g("ping_ttl_1500"));
}

#[test]
fn decodes_libzmq_ping_and_answers_pings_like_libzmq() {
    let (mut conn, now) = ready_conn(SocketType::Router, SocketType::Dealer);
    conn.handle_input(now, &g("ping_ttl_1500"));
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.take_transmit(), g("pong_empty"));
    // libzmq's PING asked us to hang up 1.5 s after it unless more traffic arrives; the TTL is armed
    // by the `handle_timeout` call that `poll_timeout` asks for at once.
    assert_eq!(conn.poll_timeout(), Some(now));
    conn.handle_timeout(now);
    assert_eq!(conn.poll_timeout(), Some(now + Duration::from_millis(1500)));

    for (ping, pong) in [
        (&b"\x04\x07\x04PING\x00\x00"[..], "pong_empty"),
        (b"\x04\x0a\x04PING\x00\x00LOL", "pong_ctx_lol"),
        (b"\x04\x17\x04PING\x00\x000123456789abcdef", "pong_ctx_16"),
    ] {
        conn.handle_input(now, ping);
        assert_eq!(conn.poll_event(), None);
        assert_eq!(conn.take_transmit(), g(pong));
    }
    // libzmq's PONGs decode as PONG.
    for pong in ["pong_empty", "pong_ctx_lol", "pong_ctx_16"] {
        let v = g(pong);
        assert!(matches!(Command::decode(Bytes::copy_from_slice(&v[2..])), Ok(Command::Pong { .. })));
    }
}

fn envelope() -> Msg {
    let mut body = (0..=255u8).collect::<Vec<u8>>();
    body.extend_from_slice(&[0; 44]);
    Msg::from(vec![
        Bytes::new(),
        Bytes::from_static(b"\x07"),
        Bytes::from_static(b"req-1"),
        Bytes::from_static(b"BINANCE:BTC/USDT"),
        Bytes::from(body),
    ])
}

fn golden_messages() -> Vec<(&'static str, Msg)> {
    vec![
        ("msg_abc", Msg::from("abc")),
        ("msg_empty", Msg::from(Bytes::new())),
        ("msg_multipart_envelope", envelope()),
        ("msg_frame_255", Msg::from(Bytes::from(vec![b'a'; 255]))),
        ("msg_frame_256", Msg::from(Bytes::from(vec![b'b'; 256]))),
    ]
}

#[test]
fn our_messages_match_libzmq() {
    let (mut push, _) = ready_conn(SocketType::Push, SocketType::Pull);
    for (name, msg) in golden_messages() {
        push.send_message(msg).unwrap();
        assert_eq!(push.take_transmit(), g(name), "{name}");
    }
    let mut header = Vec::new();
    FrameHeader::data(70_000, false).encode(&mut header);
    assert_eq!(header, g("msg_long_70000_header"));
}

#[test]
fn decodes_every_libzmq_message() {
    let (mut pull, now) = ready_conn(SocketType::Pull, SocketType::Push);
    for (name, msg) in golden_messages() {
        pull.handle_input(now, &g(name));
        assert_eq!(pull.poll_event(), Some(Event::Message(msg)), "{name}");
    }
    let mut long = g("msg_long_70000_header");
    long.extend(std::iter::repeat_n(0x63, 70_000));
    pull.handle_input(now, &long);
    assert_eq!(pull.poll_event(), Some(Event::Message(Msg::from(Bytes::from(vec![0x63; 70_000])))));
}

#[test]
fn decodes_all_of_libzmq_bytes_in_one_read() {
    // Greeting, READY and several messages in one segment are processed in order (A-G14).
    let now = Instant::now();
    let mut pull = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
    let mut stream = g("greeting_null_connecting");
    stream.extend(g("ready_push"));
    for (name, _) in golden_messages() {
        stream.extend(g(name));
    }
    pull.handle_input(now, &stream);
    assert!(matches!(pull.poll_event(), Some(Event::HandshakeComplete(_))));
    for (name, msg) in golden_messages() {
        assert_eq!(pull.poll_event(), Some(Event::Message(msg)), "{name}");
    }
    assert_eq!(pull.poll_event(), None);
}
