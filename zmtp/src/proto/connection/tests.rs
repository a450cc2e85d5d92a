use super::*;
use crate::proto::config::HeartbeatConfig;

fn handshaked(config: ConnectionConfig, now: Instant) -> Connection {
    let mut peer = Connection::new(ConnectionConfig::new(SocketType::Router), now);
    let mut conn = Connection::new(config, now);
    crate::proto::loopback::exchange(&mut conn, &mut peer, now);
    assert!(conn.is_ready());
    conn
}

#[test]
fn huge_timeouts_never_overflow_the_clock() {
    let now = Instant::now();
    let heartbeat = HeartbeatConfig {
        interval: Some(Duration::MAX),
        timeout: Some(Duration::MAX),
        ttl: Some(Duration::MAX),
    };
    let config =
        ConnectionConfig::new(SocketType::Dealer).handshake_timeout(Some(Duration::MAX)).heartbeat(heartbeat);
    let mut conn = handshaked(config, now);
    assert_eq!(conn.poll_timeout(), None);
    let later = now + Duration::from_secs(1 << 30);
    conn.handle_timeout(later);
    assert!(conn.is_ready());
    // The largest TTL a peer can send is fine too. Decoding has no clock: `poll_timeout` asks for
    // `handle_timeout` at once, which arms the TTL from then.
    conn.handle_input(later, b"\x04\x07\x04PING\xff\xff");
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.poll_timeout(), Some(later));
    conn.handle_timeout(later);
    assert_eq!(conn.poll_timeout(), Some(later + Duration::from_millis(6_553_500)));
}

#[test]
fn zero_durations_mean_off_as_in_libzmq() {
    let now = Instant::now();
    let heartbeat = HeartbeatConfig { interval: Some(Duration::ZERO), timeout: None, ttl: None };
    let config = ConnectionConfig::new(SocketType::Dealer)
        .handshake_timeout(Some(Duration::ZERO))
        .heartbeat(heartbeat);
    assert_eq!(Connection::new(config.clone(), now).poll_timeout(), None);
    let conn = handshaked(config, now);
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn peer_info_appears_only_with_the_handshake() {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
    let mut peer = Connection::new(ConnectionConfig::new(SocketType::Router), now);
    conn.handle_input(now, &peer.take_transmit()[..64]);
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.version(), Some(Version::V3_1));
    assert!(conn.peer().is_none());
}

#[test]
fn heartbeat_timeout_starts_when_our_ping_is_written_not_when_queued() {
    // A PUB with 10 MB queued for a slow but healthy peer: the PING sits behind it, and the peer
    // cannot answer what it has not been sent.
    let now = Instant::now();
    let second = Duration::from_secs(1);
    let heartbeat = HeartbeatConfig { interval: Some(second), timeout: None, ttl: None };
    let mut conn = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat), now);
    for _ in 0..100 {
        conn.send_message(Msg::from(Bytes::from(vec![0u8; 100_000]))).unwrap();
    }
    conn.handle_timeout(now + second);
    assert_eq!(conn.stats().pings_sent, 1);
    for s in 2..10 {
        conn.handle_timeout(now + s * second);
        assert!(!conn.is_closed(), "closed at {s} s with our PING still unsent: {:?}", conn.poll_event());
    }
    // Written at 10 s: the timeout runs from then.
    let len = conn.transmit().len();
    conn.transmit_mut().advance(len);
    let written = now + Duration::from_millis(10_500);
    assert_eq!(conn.poll_timeout(), Some(now + 9 * second), "asks to be called at once");
    conn.handle_timeout(written);
    assert!(!conn.is_closed());
    conn.handle_timeout(written + second);
    assert_eq!(conn.poll_event(), Some(Event::Closed(ConnectionError::HeartbeatTimeout(second))));
}

#[test]
fn heartbeat_timeout_zero_means_pings_without_a_timeout() {
    let now = Instant::now();
    let second = Duration::from_secs(1);
    let heartbeat = HeartbeatConfig { interval: Some(second), timeout: Some(Duration::ZERO), ttl: None };
    let mut conn = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat), now);
    for s in 1..20 {
        conn.handle_timeout(now + s * second);
        conn.take_transmit();
    }
    assert!(conn.is_ready());
    assert_eq!(conn.stats().pings_sent, 19);
}

#[test]
fn peer_ttl_runs_from_when_the_ping_is_processed() {
    // Read at t0, decoded 3 s later (the application was back-pressured): the 1 s TTL starts then.
    let now = Instant::now();
    let mut conn = handshaked(ConnectionConfig::new(SocketType::Dealer), now);
    conn.handle_input(now, b"\x04\x07\x04PING\x00\x0a");
    let later = now + Duration::from_secs(3);
    assert_eq!(conn.poll_event(), None);
    conn.handle_timeout(later);
    assert!(conn.is_ready());
    assert_eq!(conn.poll_timeout(), Some(later + Duration::from_secs(1)));
}

#[test]
fn greeting_padding_is_libzmqs_64_bit_identity_length() {
    let now = Instant::now();
    let config = ConnectionConfig::new(SocketType::Dealer).identity(Bytes::from(vec![b'i'; 255])).unwrap();
    let greeting = Connection::new(config, now).take_transmit();
    assert_eq!(&greeting[..10], &[0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0x7f]);
}

#[test]
fn only_a_router_checks_the_peers_identity() {
    let now = Instant::now();
    let mut md = Metadata::new();
    md.insert("Socket-Type", "DEALER");
    md.insert("Identity", Bytes::from(vec![b'i'; 300]));
    let mut ready = Vec::new();
    Command::Ready(md).encode(&mut ready);
    for (ours, closes) in [(SocketType::Dealer, false), (SocketType::Rep, false), (SocketType::Router, true)]
    {
        let mut peer = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
        let mut conn = Connection::new(ConnectionConfig::new(ours), now);
        conn.handle_input(now, &peer.take_transmit()[..64]);
        conn.handle_input(now, &ready);
        let ev = conn.poll_event();
        assert_eq!(matches!(ev, Some(Event::Closed(_))), closes, "{ours}: {ev:?}");
    }
}
