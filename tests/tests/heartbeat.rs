//! ZMTP 3.1 heartbeats (PING/PONG) with libzmq, both directions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::{ConnectionConfig, ConnectionError, Event, HeartbeatConfig, SocketType};
use zmtp::Msg;
use zmtp_interop::{Driver, Kind, Peer, TempDir, STEP};

/// How long each test keeps the connection idle apart from heartbeats.
const IDLE: Duration = Duration::from_secs(1);

/// Proves the connection is still up in both directions: one echo round trip.
fn round_trip(d: &mut Driver<zmtp_interop::Stream>, body: &'static [u8]) {
    d.send(Msg::from(Bytes::from_static(body))).unwrap();
    assert_eq!(d.recv(STEP).unwrap().frames(), &[Bytes::from_static(body)][..]);
}

/// A pyzmq DEALER with HEARTBEAT_IVL=100 ms (and so HEARTBEAT_TIMEOUT=100 ms) PINGs us; we must answer
/// with PONGs or it drops the connection.
#[test]
fn we_answer_pyzmq_pings() {
    let dir = TempDir::new("hb-in");
    let mut peer = Peer::echo([
        "--type",
        "DEALER",
        "--echo",
        "--heartbeat-ivl",
        "100",
        "--bind",
        &Kind::Tcp.bind_endpoint(&dir, "dealer"),
    ]);
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Dealer));
    d.handshake(STEP).unwrap();

    let started = Instant::now();
    let events = d.drive_for(IDLE).unwrap();
    assert!(events.is_empty(), "{events:?}");
    let stats = d.stats();
    eprintln!("over {:?}: {stats:?}", started.elapsed());
    assert!(stats.pongs_sent >= 3, "libzmq should have PINGed about every 100 ms: {stats:?}");
    assert_eq!(stats.pongs_skipped, 0, "{stats:?}");
    assert_eq!(stats.pings_sent, 0, "{stats:?}");

    round_trip(&mut d, b"still connected");
    // libzmq never dropped the connection.
    let disconnects: Vec<_> = peer.seen().iter().filter(|l| l.starts_with("EVENT DISCONNECTED")).collect();
    assert!(disconnects.is_empty(), "{disconnects:?}");
}

/// The control for `we_answer_pyzmq_pings`: if we stop reading (so never answer), the same pyzmq DEALER
/// drops the connection within its 100 ms heartbeat timeout.
#[test]
fn pyzmq_drops_us_when_we_do_not_answer() {
    let dir = TempDir::new("hb-silent");
    let mut peer = Peer::echo([
        "--type",
        "DEALER",
        "--heartbeat-ivl",
        "100",
        "--bind",
        &Kind::Tcp.bind_endpoint(&dir, "dealer"),
    ]);
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Dealer));
    d.handshake(STEP).unwrap();
    peer.expect_line("EVENT HANDSHAKE_SUCCEEDED", STEP);
    // Not driving the connection: libzmq's PINGs sit unread in our socket buffer.
    peer.expect_line("EVENT DISCONNECTED", STEP);
    let closed = d.drive_until(STEP, |ev| match ev {
        Event::Closed(e) => Some(e),
        _ => None,
    });
    assert!(matches!(closed, Ok(ConnectionError::PeerClosed { mid_message: false })), "{closed:?}");
}

/// We PING every 100 ms (timeout = interval) a pyzmq ROUTER without heartbeat options; libzmq answers
/// every PING, so our heartbeat timeout never fires.
#[test]
fn pyzmq_answers_our_pings() {
    let dir = TempDir::new("hb-out");
    let mut peer =
        Peer::echo(["--type", "ROUTER", "--echo", "--bind", &Kind::Tcp.bind_endpoint(&dir, "router")]);
    let heartbeat = HeartbeatConfig { interval: Some(Duration::from_millis(100)), ..Default::default() };
    let config = ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat);
    let mut d = Driver::new(peer.ready().connect().unwrap(), config).capture();
    d.handshake(STEP).unwrap();

    let started = Instant::now();
    // A HeartbeatTimeout would end this with DriveError::Closed.
    let events = d.drive_for(IDLE).unwrap();
    assert!(events.is_empty(), "{events:?}");
    let stats = d.stats();
    eprintln!("over {:?}: {stats:?}", started.elapsed());
    assert!(stats.pings_sent >= 5, "we should PING about every 100 ms: {stats:?}");

    // Every PING was answered: libzmq sent a PONG for each (empty context, as we sent).
    let pongs = d.received_commands().iter().filter(|c| c.name() == b"PONG").count() as u64;
    let pings = d.sent_commands().iter().filter(|c| c.name() == b"PING").count() as u64;
    assert_eq!(pings, stats.pings_sent);
    assert!(pongs + 1 >= pings, "{pings} PINGs, {pongs} PONGs");

    round_trip(&mut d, b"still connected");
}

/// Both sides heartbeat at once, with a TTL in our PINGs: nothing times out on either side.
#[test]
fn both_sides_heartbeat_with_ttl() {
    let dir = TempDir::new("hb-both");
    let mut peer = Peer::echo([
        "--type",
        "ROUTER",
        "--echo",
        "--heartbeat-ivl",
        "100",
        "--heartbeat-ttl",
        "1000",
        "--bind",
        &Kind::Ipc.bind_endpoint(&dir, "router"),
    ]);
    let heartbeat = HeartbeatConfig {
        interval: Some(Duration::from_millis(100)),
        timeout: Some(Duration::from_millis(300)),
        ttl: Some(Duration::from_millis(500)),
    };
    let config = ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat);
    let mut d = Driver::new(peer.ready().connect().unwrap(), config);
    d.handshake(STEP).unwrap();
    let events = d.drive_for(IDLE).unwrap();
    assert!(events.is_empty(), "{events:?}");
    let stats = d.stats();
    assert!(stats.pings_sent >= 5 && stats.pongs_sent >= 3, "{stats:?}");
    round_trip(&mut d, b"still connected");
}

/// Our heartbeat detects a peer that stops answering while the TCP connection stays up (the peer
/// process is frozen: the kernel still acknowledges our bytes).
#[test]
fn our_heartbeat_times_out_a_frozen_peer() {
    let dir = TempDir::new("hb-frozen");
    let mut peer = Peer::echo(["--type", "ROUTER", "--bind", &Kind::Tcp.bind_endpoint(&dir, "router")]);
    let heartbeat = HeartbeatConfig {
        interval: Some(Duration::from_millis(100)),
        timeout: Some(Duration::from_millis(200)),
        ttl: None,
    };
    let config = ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat);
    let mut d = Driver::new(peer.ready().connect().unwrap(), config);
    d.handshake(STEP).unwrap();
    assert!(d.drive_for(Duration::from_millis(300)).unwrap().is_empty());

    peer.freeze();
    let frozen = Instant::now();
    let closed = d.drive_until(STEP, |ev| match ev {
        Event::Closed(e) => Some(e),
        _ => None,
    });
    let after = frozen.elapsed();
    peer.thaw();
    assert_eq!(closed.unwrap(), ConnectionError::HeartbeatTimeout(Duration::from_millis(200)));
    // Next PING within 100 ms of the freeze, then 200 ms without a PONG.
    assert!(after >= Duration::from_millis(200) && after < Duration::from_secs(2), "closed after {after:?}");
}

/// libzmq's PINGs carry HEARTBEAT_TTL; when the peer then goes silent we close after that TTL even
/// though we send no PINGs ourselves.
#[test]
fn peer_ttl_expires_when_pyzmq_freezes() {
    let dir = TempDir::new("hb-ttl");
    let mut peer = Peer::echo([
        "--type",
        "DEALER",
        "--heartbeat-ivl",
        "100",
        "--heartbeat-ttl",
        "500",
        "--bind",
        &Kind::Tcp.bind_endpoint(&dir, "dealer"),
    ]);
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Dealer));
    d.handshake(STEP).unwrap();
    assert!(d.drive_for(Duration::from_millis(300)).unwrap().is_empty());
    assert!(d.stats().pongs_sent > 0);

    peer.freeze();
    let frozen = Instant::now();
    let closed = d.drive_until(STEP, |ev| match ev {
        Event::Closed(e) => Some(e),
        _ => None,
    });
    let after = frozen.elapsed();
    peer.thaw();
    assert_eq!(closed.unwrap(), ConnectionError::PeerTtlExpired(Duration::from_millis(500)));
    assert!(after >= Duration::from_millis(400) && after < Duration::from_secs(2), "closed after {after:?}");
}
