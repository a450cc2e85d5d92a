//! DEALER/ROUTER and REQ/REP against libzmq, both directions, over TCP and IPC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use zmtp::proto::{ConnectionConfig, SocketType, Version};
use zmtp::Msg;
use zmtp_interop::{msg_arg, msg_line, Driver, Kind, Listener, Peer, TempDir, STEP};

/// A 3-frame message: text, an empty frame, and a 300-byte frame (long frame header).
fn three_frames() -> Vec<Bytes> {
    let big: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    vec![Bytes::from_static(b"first"), Bytes::new(), Bytes::from(big)]
}

/// Our DEALER connects to a bound pyzmq ROUTER that echoes.
fn dealer_to_router(kind: Kind) {
    let dir = TempDir::new("d2r");
    let mut peer = Peer::echo(["--type", "ROUTER", "--echo", "--bind", &kind.bind_endpoint(&dir, "rtr")]);
    let endpoint = peer.ready();
    assert_eq!(endpoint.kind(), kind);
    let mut d = Driver::new(endpoint.connect().unwrap(), ConnectionConfig::new(SocketType::Dealer));

    let info = d.handshake(STEP).unwrap();
    assert_eq!(info.socket_type, Some(SocketType::Router));
    assert_eq!(info.announced_version, Version::V3_1);
    assert_eq!(info.version, Version::V3_1);
    // libzmq's ROUTER announces an empty Identity (golden vector ready_router).
    assert_eq!(info.identity().map(|b| &b[..]), Some(&b""[..]));
    peer.expect_line("EVENT HANDSHAKE_SUCCEEDED", STEP);

    let frames = three_frames();
    d.send(Msg::from(frames.clone())).unwrap();
    let reply = d.recv(STEP).unwrap();
    assert_eq!(reply.frames(), &frames[..]);

    // The ROUTER application saw [generated id, ...our frames]: libzmq generates 5-byte ids 00xxxxxxxx.
    let line = peer.expect_line("MSG ", STEP);
    let (id, rest) = line["MSG ".len()..].split_once(' ').unwrap();
    assert!(id.starts_with("5:00"), "generated routing id {id:?} in {line:?}");
    assert_eq!(format!("MSG {rest}"), msg_line(&frames));

    // A second round trip on the same connection, single frame.
    d.send(Msg::from("again")).unwrap();
    assert_eq!(d.recv(STEP).unwrap().frames(), &[Bytes::from_static(b"again")][..]);
    assert_eq!(d.stats().messages_received, 2);
    assert!(d.closed().is_none());
}

#[test]
fn our_dealer_to_pyzmq_router_tcp() {
    dealer_to_router(Kind::Tcp);
}

#[test]
fn our_dealer_to_pyzmq_router_ipc() {
    dealer_to_router(Kind::Ipc);
}

/// A pyzmq DEALER connects to us; we accept and act as ROUTER.
fn pyzmq_dealer_to_our_router(kind: Kind) {
    let dir = TempDir::new("r-accept");
    let listener = Listener::bind(kind, &dir, "us").unwrap();
    let endpoint = listener.endpoint().unwrap();
    let hello: [&[u8]; 1] = [b"hello"];
    let envelope: [&[u8]; 3] = [b"", b"world", &[0u8; 300]];
    let mut peer = Peer::echo([
        "--type",
        "DEALER",
        "--connect",
        &endpoint.to_string(),
        "--routing-id",
        "cli1",
        "--send",
        &msg_arg(&hello),
        "--send",
        &msg_arg(&envelope),
    ]);
    peer.ready();
    let stream = listener.accept(STEP).unwrap();
    let mut d = Driver::new(stream, ConnectionConfig::new(SocketType::Router).as_server(true));

    let info = d.handshake(STEP).unwrap();
    assert_eq!(info.socket_type, Some(SocketType::Dealer));
    assert_eq!(info.routing_id().map(|b| &b[..]), Some(&b"cli1"[..]));

    // The connection delivers the frames as sent; prefixing the routing id is the ROUTER socket's job.
    let m1 = d.recv(STEP).unwrap();
    assert_eq!(m1.frames(), &hello.map(Bytes::from_static)[..]);
    let m2 = d.recv(STEP).unwrap();
    assert_eq!(m2.frames(), &envelope.map(Bytes::copy_from_slice)[..]);

    let reply: [&'static [u8]; 2] = [b"", b"reply"];
    d.send(Msg::from(reply.to_vec())).unwrap();
    assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&reply));
}

#[test]
fn pyzmq_dealer_to_our_router_tcp() {
    pyzmq_dealer_to_our_router(Kind::Tcp);
}

#[test]
fn pyzmq_dealer_to_our_router_ipc() {
    pyzmq_dealer_to_our_router(Kind::Ipc);
}

/// Our REQ (no REQ socket yet: we add the empty delimiter ourselves) to a pyzmq REP.
fn req_to_rep(kind: Kind) {
    let dir = TempDir::new("req");
    let mut peer = Peer::echo(["--type", "REP", "--echo", "--bind", &kind.bind_endpoint(&dir, "rep")]);
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Req));
    let info = d.handshake(STEP).unwrap();
    assert_eq!(info.socket_type, Some(SocketType::Rep));

    for round in 0..3 {
        let body = format!("hello {round}");
        let request = vec![Bytes::new(), Bytes::from(body.clone())];
        d.send(Msg::from(request.clone())).unwrap();
        let reply = d.recv(STEP).unwrap();
        assert_eq!(reply.frames(), &request[..], "round {round}");
        // The REP application sees the request without the envelope.
        assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&[body.as_bytes()]));
    }
}

#[test]
fn our_req_to_pyzmq_rep_tcp() {
    req_to_rep(Kind::Tcp);
}

#[test]
fn our_req_to_pyzmq_rep_ipc() {
    req_to_rep(Kind::Ipc);
}

/// Our DEALER announces an identity; libzmq's ROUTER routes by it.
#[test]
fn pyzmq_router_uses_our_identity() {
    let dir = TempDir::new("ident");
    let mut peer =
        Peer::echo(["--type", "ROUTER", "--echo", "--bind", &Kind::Tcp.bind_endpoint(&dir, "rtr")]);
    let config = ConnectionConfig::new(SocketType::Dealer).identity(Bytes::from_static(b"us1")).unwrap();
    let mut d = Driver::new(peer.ready().connect().unwrap(), config);
    d.handshake(STEP).unwrap();
    d.send(Msg::from("ping")).unwrap();
    assert_eq!(d.recv(STEP).unwrap().frames(), &[Bytes::from_static(b"ping")][..]);
    assert_eq!(peer.expect_line("MSG ", STEP), msg_line(&[&b"us1"[..], b"ping"]));
}
