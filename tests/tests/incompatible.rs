//! Incompatible socket types are refused on both sides of a libzmq connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use zmtp::proto::{Command, ConnectionConfig, ConnectionError, Event, ProtocolError, SocketType};
use zmtp_interop::{Driver, Kind, Listener, Peer, Stream, TempDir, STEP};

/// The next event must be `Closed(Protocol(IncompatibleSocketType))` (no `HandshakeComplete` first),
/// and we must have written an ERROR command before the connection ended.
fn expect_refused(d: &mut Driver<Stream>, ours: SocketType, theirs: &'static [u8]) {
    match d.next_event(STEP) {
        Ok(Event::Closed(ConnectionError::Protocol(ProtocolError::IncompatibleSocketType {
            ours: o,
            theirs: t,
        }))) => {
            assert_eq!(o, ours);
            assert_eq!(t, Bytes::from_static(theirs));
        }
        other => panic!("expected Closed(IncompatibleSocketType), got {other:?}"),
    }
    assert!(d.connection().is_closed());
    let sent = d.sent_commands();
    eprintln!("we sent: {sent:?}; write error: {:?}", d.write_error());
    eprintln!("libzmq sent: {:?}", d.received_commands());
    assert!(matches!(sent.first(), Some(Command::Ready(_))), "{sent:?}");
    assert_eq!(
        sent.last(),
        Some(&Command::Error { reason: Bytes::from_static(b"Invalid-socket-type") }),
        "we must send ERROR before closing"
    );
    // Nothing else happens on a closed connection.
    assert!(matches!(d.next_event(Duration::from_millis(10)), Err(zmtp_interop::DriveError::Closed(_))));
}

/// libzmq 4.3.5 refuses the incompatible peer too, silently: no ERROR command and no HANDSHAKE_FAILED_*
/// monitor event, only DISCONNECTED (golden vector `error_reply_incompatible`). It never reports a
/// successful handshake, and its application never sees a message.
fn expect_libzmq_dropped(peer: &mut Peer) {
    peer.expect_line("EVENT DISCONNECTED", STEP);
    let seen = peer.seen();
    assert!(
        !seen.iter().any(|l| l.starts_with("EVENT HANDSHAKE_SUCCEEDED") || l.starts_with("MSG ")),
        "{seen:?}"
    );
}

/// Our PUB connects to a pyzmq ROUTER.
#[test]
fn our_pub_to_pyzmq_router_is_refused() {
    let dir = TempDir::new("inc-pub");
    let mut peer = Peer::echo(["--type", "ROUTER", "--bind", &Kind::Tcp.bind_endpoint(&dir, "router")]);
    let mut d =
        Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Pub)).capture();
    expect_refused(&mut d, SocketType::Pub, b"ROUTER");
    expect_libzmq_dropped(&mut peer);
}

/// A pyzmq PUB connects to our ROUTER.
#[test]
fn pyzmq_pub_to_our_router_is_refused() {
    let dir = TempDir::new("inc-rtr");
    let listener = Listener::bind(Kind::Tcp, &dir, "us").unwrap();
    let mut peer = Peer::echo([
        "--type",
        "PUB",
        "--connect",
        &listener.endpoint().unwrap().to_string(),
        "--publish",
        "6e6f",
    ]);
    peer.ready();
    let stream = listener.accept(STEP).unwrap();
    let mut d = Driver::new(stream, ConnectionConfig::new(SocketType::Router).as_server(true)).capture();
    expect_refused(&mut d, SocketType::Router, b"PUB");
    expect_libzmq_dropped(&mut peer);
}
