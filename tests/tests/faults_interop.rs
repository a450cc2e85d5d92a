//! Fault scenarios of reliability.md §7b against real pyzmq (libzmq 4.3.5) processes: peers killed
//! (SIGKILL) mid-message, a server that does not exist yet when messages are sent, a frozen
//! (SIGSTOP) peer without heartbeats, and a libzmq authenticator refusing our credentials. The index
//! of every scenario and the test asserting it is docs/faults.md; the reconnection tests (a pyzmq
//! peer killed and restarted on the same endpoint) are in sockets_resilience.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::loopback::null_peer_opening;
use zmtp::proto::{ConnectionError, SocketType as WireType, Version};
use zmtp::{DisconnectReason, HandshakeFailure, Options, Socket, SocketEventKind, SocketType};
use zmtp_interop::sockets::{blocking, drain_events, expect_event, link, recv, send, Side};
use zmtp_interop::{hex, reprs, Kind, Peer, SockPeer, STEP};

fn options() -> Options {
    Options { linger: Some(Duration::ZERO), ..Options::default() }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Whether `reason` is how a peer dying in the middle of a message shows: a close with a partial
/// message dropped, or a reset.
fn is_crash_mid_message(reason: &DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::Connection(ConnectionError::PeerClosed { mid_message: true })
            | DisconnectReason::Io { kind: std::io::ErrorKind::ConnectionReset, .. }
    )
}

/// reliability.md B-1 with real process crashes, our PULL binding: a raw-socket process that wrote
/// two frames (MORE set) of a three-frame message is killed (SIGKILL; the kernel resets the
/// connection), then a pyzmq PUSH that sent a whole message and two parts (SNDMORE) of another is
/// killed. Nothing partial is delivered (libzmq never puts an unfinished multipart message on the
/// wire; the raw peer's two frames are dropped), both disconnections are reported, and a pyzmq PUSH
/// connected all along is unaffected: its messages before and after arrive whole, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b1_processes_killed_mid_message_deliver_nothing_partial() {
    let pull = Socket::with_options(SocketType::Pull, options()).unwrap();
    let mut monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let port = ep.rsplit(':').next().unwrap().to_owned();
    let mut good = SockPeer::spawn(args(&["--type", "PUSH", "--connect", &ep]));
    blocking(|| good.ready());
    good.send(&[b"good-before".as_slice()]);
    assert_eq!(recv(&pull).await.frames(), ["good-before"]);
    drain_events(&mut monitor);

    // A raw process: greeting + READY as a PUSH, then "bad" and "part" with MORE, then SIGKILL.
    let opening = hex(&null_peer_opening(WireType::Push, Version::V3_1));
    let partial = hex(&[0x01, 0x03, b'b', b'a', b'd', 0x01, 0x04, b'p', b'a', b'r', b't']);
    let (mut raw, _stdin) =
        Peer::spawn_with_stdin("crash_peer", args(&["raw-partial", "127.0.0.1", &port, &opening, &partial]));
    blocking(|| raw.expect_line("SENT", STEP));
    expect_event(&mut monitor, STEP, "the raw peer's handshake", |k| {
        matches!(k, SocketEventKind::HandshakeSucceeded)
    })
    .await;
    // Let the engine read the two frames, then crash the process.
    tokio::time::sleep(Duration::from_millis(200)).await;
    raw.kill();
    let (ev, _) = expect_event(&mut monitor, STEP, "the raw peer's disconnection", |k| {
        matches!(k, SocketEventKind::Disconnected(_))
    })
    .await;
    let SocketEventKind::Disconnected(raw_reason) = ev.kind else { unreachable!() };
    assert!(is_crash_mid_message(&raw_reason), "{raw_reason:?}");

    // A pyzmq process: one whole message, then two parts with SNDMORE, then SIGKILL.
    let (mut py, _stdin2) = Peer::spawn_with_stdin("crash_peer", args(&["zmq-sndmore", &ep]));
    blocking(|| py.expect_line("SENT", STEP));
    assert_eq!(recv(&pull).await.frames(), ["whole"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    py.kill();
    let (ev, _) = expect_event(&mut monitor, STEP, "the pyzmq peer's disconnection", |k| {
        matches!(k, SocketEventKind::Disconnected(_))
    })
    .await;
    let SocketEventKind::Disconnected(py_reason) = ev.kind else { unreachable!() };

    // The good peer is unaffected, and nothing partial ever came.
    good.send(&[b"good-after".as_slice(), b"two frames".as_slice()]);
    assert_eq!(recv(&pull).await.frames(), ["good-after", "two frames"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(pull.try_recv().is_err(), "nothing else delivered");
    println!("B-1 (processes killed): raw peer: {raw_reason}; pyzmq peer: {py_reason}");
    pull.close().await;
}

/// A local TCP port nobody listens on now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// reliability.md B-10: our connecting DEALER (and PUSH) is connected to an endpoint where no
/// server runs yet, and sends 5 messages; connection attempts fail meanwhile (the monitor reports
/// the retries). Then a pyzmq ROUTER (echo) or PULL binds that endpoint: all 5 messages arrive, in
/// order (libzmq does the same: a connecting socket's queue exists before its first connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b10_messages_sent_while_the_server_is_down_arrive_in_order() {
    for (ours, theirs, mode) in [(SocketType::Dealer, "ROUTER", "echo"), (SocketType::Push, "PULL", "sink")] {
        let port = free_port();
        let ep = format!("tcp://127.0.0.1:{port}");
        let socket = Socket::with_options(ours, options()).unwrap();
        let mut monitor = socket.monitor();
        socket.connect(&ep).unwrap();
        for i in 0..5 {
            send(&socket, format!("early-{i}")).await;
        }
        expect_event(&mut monitor, STEP, "a failed connection attempt", |k| {
            matches!(k, SocketEventKind::ConnectRetried(_))
        })
        .await;
        let mut peer = SockPeer::spawn(args(&["--type", theirs, "--bind", &ep, "--mode", mode]));
        blocking(|| peer.ready());
        for i in 0..5 {
            let got = blocking(|| peer.expect_msg(STEP));
            // A ROUTER prints the routing id it gave us first.
            assert_eq!(got.last().unwrap(), &reprs(&[format!("early-{i}")])[0], "{ours}: {got:?}");
        }
        if ours == SocketType::Dealer {
            for i in 0..5 {
                assert_eq!(recv(&socket).await.frames(), [Bytes::from(format!("early-{i}"))]);
            }
        }
        println!("B-10 {ours}: 5 messages sent before pyzmq {theirs} existed arrived in order");
        socket.close().await;
    }
}

/// reliability.md B-14, SIGSTOP variant without heartbeats (libzmq's default, and ours): a pyzmq
/// ROUTER is frozen for 3 s. The kernel still acknowledges our bytes, nothing else happens: no
/// disconnection is reported (the connection lingers; documented in docs/faults.md), and after
/// SIGCONT the message sent meanwhile is echoed on the same connection. (With heartbeats the frozen
/// peer is dropped and reconnected: sockets_resilience.rs,
/// `our_heartbeat_times_out_a_frozen_pyzmq_peer`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b14_frozen_pyzmq_peer_without_heartbeats_lingers() {
    let ours = Socket::with_options(SocketType::Dealer, options()).unwrap();
    let mut l = link(Kind::Tcp, Side::TheyBind, ours, None, "ROUTER", &args(&["--mode", "echo"])).await;
    send(&l.ours, "before").await;
    assert_eq!(recv(&l.ours).await.frames(), ["before"]);
    drain_events(&mut l.monitor);
    l.peer.freeze();
    send(&l.ours, "while frozen").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = drain_events(&mut l.monitor);
    l.peer.thaw();
    assert_eq!(recv(&l.ours).await.frames(), ["while frozen"]);
    let after = drain_events(&mut l.monitor);
    println!("B-14 SIGSTOP, heartbeats off: events while frozen for 3 s: {during:?}; after: {after:?}");
    assert!(
        !during.iter().chain(&after).any(|e| matches!(
            e.kind,
            SocketEventKind::Disconnected(_) | SocketEventKind::HandshakeSucceeded
        )),
        "the connection should have lingered: {during:?} {after:?}"
    );
    l.close().await;
}

/// reliability.md B-17 against libzmq: a pyzmq PLAIN server whose authenticator (zmq.auth thread)
/// knows `admin`/`secret` refuses our DEALER's wrong password with ERROR "400". Our monitor reports
/// `HandshakeFailed(Auth { status: 400 })`, and over the next 3 s (30 reconnect intervals) pyzmq's
/// monitor sees no second connection: no reconnection with refused credentials (RFC 23; libzmq
/// itself stops reconnecting after an authentication failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b17_pyzmq_refusal_is_reported_and_not_retried() {
    let (mut peer, _stdin) = Peer::spawn_with_stdin(
        "secure_peer",
        args(&[
            "--type",
            "ROUTER",
            "--bind",
            "tcp://127.0.0.1:*",
            "--plain-server",
            "--auth",
            "thread",
            "--auth-plain",
            "admin=secret",
        ]),
    );
    let ep = blocking(|| peer.ready()).to_string();
    let dealer = Socket::with_options(
        SocketType::Dealer,
        Options {
            plain_username: Some(Bytes::from("admin")),
            plain_password: Some(zmtp::proto::Password::new("wrong")),
            reconnect_interval: Some(Duration::from_millis(100)),
            ..options()
        },
    )
    .unwrap();
    let mut monitor = dealer.monitor();
    dealer.connect(&ep).unwrap();
    let (ev, _) = expect_event(&mut monitor, STEP, "HandshakeFailed", |k| {
        matches!(k, SocketEventKind::HandshakeFailed(_))
    })
    .await;
    let SocketEventKind::HandshakeFailed(failure) = ev.kind else { unreachable!() };
    assert!(matches!(failure, HandshakeFailure::Auth { status: 400 }), "{failure:?}");
    let t = Instant::now();
    blocking(|| peer.lines_within("EVENT", Duration::from_secs(3)));
    let accepted = peer.seen().iter().filter(|l| l.starts_with("EVENT ACCEPTED")).count();
    let refused = peer.seen().iter().filter(|l| l.starts_with("EVENT HANDSHAKE_FAILED_AUTH")).count();
    let retries = drain_events(&mut monitor)
        .into_iter()
        .filter(|e| matches!(e.kind, SocketEventKind::ConnectRetried(_) | SocketEventKind::Connected))
        .count();
    println!(
        "B-17 (pyzmq): {failure:?}; over {:?}: pyzmq accepted {accepted} connection(s), refused {refused}; our retries {retries}",
        t.elapsed()
    );
    assert_eq!(accepted, 1, "a second connection with refused credentials:\n{}", peer.transcript());
    assert_eq!(refused, 1);
    assert_eq!(retries, 0);
    dealer.close().await;
}
