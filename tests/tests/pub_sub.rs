//! Our SUB against a pyzmq PUB and XPUB: subscriptions reach libzmq and it filters by them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use zmtp::proto::{ConnectionConfig, Event, SocketType, Version};
use zmtp::Msg;
use zmtp_interop::{msg_arg, msg_line, Driver, Kind, Listener, Peer, Stream, TempDir, STEP};

/// The publisher cycles through these every 10 ms.
const PUBLISHED: [&[u8]; 3] = [b"A1", b"B1", b"A2"];

fn publisher_args(socket: &str, endpoint: &str) -> Vec<String> {
    let mut args = vec!["--type".to_owned(), socket.to_owned(), "--bind".to_owned(), endpoint.to_owned()];
    for m in PUBLISHED {
        args.extend(["--publish".to_owned(), msg_arg(&[m])]);
    }
    args.extend(["--interval".to_owned(), "10".to_owned()]);
    args
}

/// Subscribes to "A" and collects messages until two arrived; every one must start with "A".
fn subscribe_and_receive(peer: &mut Peer) -> Driver<Stream> {
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Sub));
    let info = d.handshake(STEP).unwrap();
    assert!(matches!(info.socket_type, Some(SocketType::Pub | SocketType::XPub)), "{info:?}");

    // Before subscribing, libzmq's PUB sends us nothing.
    let before = d.drive_for(Duration::from_millis(100)).unwrap();
    assert!(before.is_empty(), "events before subscribing: {before:?}");

    d.subscribe(Bytes::from_static(b"A")).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let msg = d.recv(STEP).unwrap();
        assert_eq!(msg.len(), 1, "{msg:?}");
        let body = msg.frames()[0].clone();
        assert!(body.starts_with(b"A"), "libzmq sent a message we did not subscribe to: {body:?}");
        got.push(body);
    }
    // Keep receiving a little longer: still only A messages, roughly two thirds of the stream.
    let more = d.drive_for(Duration::from_millis(150)).unwrap();
    for ev in &more {
        match ev {
            Event::Message(m) => assert!(m.frames()[0].starts_with(b"A"), "unsubscribed message {m:?}"),
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(!more.is_empty(), "the publisher stopped sending");
    d
}

fn sub_to_pub(kind: Kind) {
    let dir = TempDir::new("sub");
    let mut peer = Peer::echo(publisher_args("PUB", &kind.bind_endpoint(&dir, "pub")));
    subscribe_and_receive(&mut peer);
}

#[test]
fn our_sub_to_pyzmq_pub_tcp() {
    sub_to_pub(Kind::Tcp);
}

#[test]
fn our_sub_to_pyzmq_pub_ipc() {
    sub_to_pub(Kind::Ipc);
}

/// A pyzmq XPUB hands our SUBSCRIBE command to its application as the message b"\x01A", and our CANCEL
/// as b"\x00A", after which it stops sending to us.
#[test]
fn pyzmq_xpub_receives_our_subscription_and_cancel() {
    let dir = TempDir::new("xpub");
    let mut peer = Peer::echo(publisher_args("XPUB", &Kind::Tcp.bind_endpoint(&dir, "xpub")));
    let mut d = subscribe_and_receive(&mut peer);
    assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&[b"\x01A"]));

    d.connection_mut().send_cancel(Bytes::from_static(b"A")).unwrap();
    d.flush().unwrap();
    assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&[b"\x00A"]));
    // Messages already in flight may still arrive; once libzmq has the CANCEL, nothing does.
    d.drive_for(Duration::from_millis(100)).unwrap();
    let after = d.drive_for(Duration::from_millis(200)).unwrap();
    assert!(after.is_empty(), "messages after CANCEL: {after:?}");
}

/// A SUB announcing ZMTP 3.0 sends its subscription as the data message b"\x01A" (RFC 37: a 3.1 peer
/// talking to a 3.0 peer uses the 3.0 form); libzmq accepts it and filters by it.
#[test]
fn our_zmtp30_sub_to_pyzmq_xpub() {
    let dir = TempDir::new("sub30");
    let mut peer = Peer::echo(publisher_args("XPUB", &Kind::Tcp.bind_endpoint(&dir, "xpub")));
    let config = ConnectionConfig::new(SocketType::Sub).version(Version::V3_0);
    let mut d = Driver::new(peer.ready().connect().unwrap(), config).capture();
    let info = d.handshake(STEP).unwrap();
    assert_eq!(info.announced_version, Version::V3_1);
    assert_eq!(info.version, Version::V3_0);
    d.subscribe(Bytes::from_static(b"A")).unwrap();
    for _ in 0..2 {
        let msg = d.recv(STEP).unwrap();
        assert!(msg.frames()[0].starts_with(b"A"), "{msg:?}");
    }
    assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&[b"\x01A"]));
    // We sent no SUBSCRIBE command, only READY (the subscription went as a data frame).
    let sent = d.sent_commands();
    assert_eq!(sent.len(), 1, "{sent:?}");
}

/// Subscriptions with long topics (246..=300 octets: around the short/long command frame boundary, where
/// libzmq < 4.3.5 was wrong, #4564) reach libzmq intact.
#[test]
fn long_topics_reach_pyzmq_xpub() {
    let dir = TempDir::new("longtopic");
    let mut peer =
        Peer::echo(["--type", "XPUB", "--xpub-verbose", "--bind", &Kind::Tcp.bind_endpoint(&dir, "xpub")]);
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Sub));
    d.handshake(STEP).unwrap();
    for n in [0usize, 1, 244, 245, 246, 254, 255, 256, 300, 1000] {
        let topic = Bytes::from(vec![b't'; n]);
        d.subscribe(topic.clone()).unwrap();
        let mut expected = vec![1u8];
        expected.extend_from_slice(&topic);
        assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&[expected]), "topic of {n} octets");
    }
}

/// A pyzmq SUB connects to our PUB: its SUBSCRIBE reaches us as `Event::Subscribe`, and what we publish
/// reaches its application.
#[test]
fn pyzmq_sub_to_our_pub() {
    let dir = TempDir::new("pub-accept");
    let listener = Listener::bind(Kind::Ipc, &dir, "us").unwrap();
    let mut peer = Peer::echo([
        "--type",
        "SUB",
        "--subscribe",
        &msg_arg(&[b"A"]),
        "--subscribe",
        "",
        "--connect",
        &listener.endpoint().unwrap().to_string(),
    ]);
    peer.ready();
    let mut d = Driver::new(listener.accept(STEP).unwrap(), ConnectionConfig::new(SocketType::Pub));
    let info = d.handshake(STEP).unwrap();
    assert_eq!(info.socket_type, Some(SocketType::Sub));
    let mut topics = Vec::new();
    while topics.len() < 2 {
        match d.next_event(STEP).unwrap() {
            Event::Subscribe(topic) => topics.push(topic),
            other => panic!("unexpected {other:?}"),
        }
    }
    topics.sort();
    assert_eq!(topics, [Bytes::new(), Bytes::from_static(b"A")]);

    let msg: [&'static [u8]; 2] = [b"A-topic", b"payload"];
    d.send(Msg::from(msg.to_vec())).unwrap();
    assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&msg));
}
