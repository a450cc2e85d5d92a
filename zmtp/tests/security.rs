//! Security at the socket level, our sockets on both ends: CURVE and PLAIN over tcp, ipc and
//! inproc, the authenticators (native and the RFC 27 handler at inproc://zeromq.zap.01, including
//! handlers that misbehave), typed monitor events, and handshakes in progress under a HELLO flood.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use bytes::Bytes;
use zmtp::auth::{AuthPolicy, AuthRequest, SharedAuthenticator};
use zmtp::proto::{AuthReply, Password};
use zmtp::{
    curve_keypair, CurveKeyPair, HandshakeFailure, Monitor, Msg, Options, Socket, SocketEventKind, SocketType,
};

fn keys() -> CurveKeyPair {
    curve_keypair().unwrap()
}

fn curve_server(keys: &CurveKeyPair, authenticator: Option<SharedAuthenticator>) -> Options {
    Options {
        curve_server: true,
        curve_secret_key: Some(keys.secret.clone()),
        authenticator,
        ..Options::default()
    }
}

fn curve_client(keys: &CurveKeyPair, server: &CurveKeyPair) -> Options {
    Options {
        curve_secret_key: Some(keys.secret.clone()),
        curve_server_key: Some(server.public),
        handshake_interval: Some(Duration::from_secs(5)),
        ..Options::default()
    }
}

async fn recv_within(s: &Socket, t: Duration) -> Option<Msg> {
    tokio::time::timeout(t, s.recv()).await.ok().and_then(Result::ok)
}

/// The first handshake failure on `monitor` within `t`.
async fn handshake_failure(monitor: &mut Monitor, t: Duration) -> Option<HandshakeFailure> {
    tokio::time::timeout(t, async {
        while let Some(ev) = monitor.recv().await {
            if let SocketEventKind::HandshakeFailed(f) = ev.kind {
                return Some(f);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

async fn round_trip(server_options: Options, client_options: Options, endpoint: &str) -> Option<Msg> {
    let rep = Socket::with_options(SocketType::Rep, server_options).unwrap();
    let ep = rep.bind(endpoint).await.unwrap();
    let req = Socket::with_options(SocketType::Req, client_options).unwrap();
    req.connect(&ep).unwrap();
    req.send("ping").await.unwrap();
    let got = recv_within(&rep, Duration::from_secs(3)).await?;
    rep.send(got).await.unwrap();
    recv_within(&req, Duration::from_secs(3)).await
}

#[tokio::test]
async fn curve_req_rep_over_tcp_ipc_and_inproc() {
    let dir = std::env::temp_dir().join(format!("zmtp-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ipc = format!("ipc://{}/curve.sock", dir.display());
    for endpoint in ["tcp://127.0.0.1:*", ipc.as_str(), "inproc://curve-req-rep"] {
        let (s, c) = (keys(), keys());
        let reply = round_trip(curve_server(&s, None), curve_client(&c, &s), endpoint).await;
        assert_eq!(reply.map(|m| m.frames()[0].clone()), Some(Bytes::from_static(b"ping")), "{endpoint}");
    }
}

#[tokio::test]
async fn a_wrong_server_key_gives_no_connection_and_a_typed_event() {
    let (s, c, other) = (keys(), keys(), keys());
    let rep = Socket::with_options(SocketType::Rep, curve_server(&s, None)).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut server_monitor = rep.monitor();
    let req = Socket::with_options(SocketType::Req, curve_client(&c, &other)).unwrap();
    req.connect(&ep).unwrap();
    req.send("ping").await.unwrap();
    assert!(recv_within(&rep, Duration::from_millis(500)).await.is_none());
    // The server cannot open the HELLO: a protocol failure of the cryptographic kind.
    let failure = handshake_failure(&mut server_monitor, Duration::from_secs(3)).await;
    assert!(
        matches!(failure, Some(HandshakeFailure::Protocol(zmtp::proto::ProtocolError::Cryptographic { .. }))),
        "{failure:?}"
    );
}

#[tokio::test]
async fn the_native_authenticator_allows_and_denies_by_key_with_typed_events() {
    let (s, good, bad) = (keys(), keys(), keys());
    let policy = AuthPolicy::new().allow_curve_key(good.public).into_shared();
    let rep = Socket::with_options(SocketType::Rep, curve_server(&s, Some(policy))).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();

    let denied = Socket::with_options(SocketType::Req, curve_client(&bad, &s)).unwrap();
    let mut denied_monitor = denied.monitor();
    denied.connect(&ep).unwrap();
    denied.send("let me in").await.unwrap();
    let failure = handshake_failure(&mut denied_monitor, Duration::from_secs(3)).await;
    assert_eq!(failure, Some(HandshakeFailure::Auth { status: 400 }));

    let allowed = Socket::with_options(SocketType::Req, curve_client(&good, &s)).unwrap();
    allowed.connect(&ep).unwrap();
    allowed.send("hello").await.unwrap();
    let got = recv_within(&rep, Duration::from_secs(3)).await.unwrap();
    assert_eq!(&got.frames()[0][..], b"hello", "only the allowed client's request arrives");
    // The authenticated User-Id travels with each message (libzmq's zmq_msg_gets("User-Id")):
    // AuthPolicy names a CURVE client by its key's Z85 text, as pyzmq's authenticator does.
    assert_eq!(got.user_id().map(|u| u.to_vec()), Some(good.public.to_z85().into_bytes()));
    assert_eq!(got.property("user-id"), got.user_id());
    assert_eq!(got.property("Socket-Type").map(|v| &v[..]), Some(&b"REQ"[..]));
}

fn plain_client(user: &'static str, password: &'static str) -> Options {
    Options {
        plain_username: Some(Bytes::from_static(user.as_bytes())),
        plain_password: Some(Password::new(Bytes::from_static(password.as_bytes()))),
        ..Options::default()
    }
}

#[tokio::test]
async fn plain_with_a_password_table() {
    let policy = AuthPolicy::new().plain_user("admin", "secret").into_shared();
    let server = || Options { plain_server: true, authenticator: Some(policy.clone()), ..Options::default() };
    assert!(round_trip(server(), plain_client("admin", "secret"), "tcp://127.0.0.1:*").await.is_some());
    assert!(round_trip(server(), plain_client("admin", "wrong"), "tcp://127.0.0.1:*").await.is_none());
    // libzmq: a PLAIN server without any authenticator refuses every client.
    let bare = Options { plain_server: true, ..Options::default() };
    assert!(round_trip(bare, plain_client("admin", "secret"), "tcp://127.0.0.1:*").await.is_none());
}

#[tokio::test]
async fn a_closure_authenticator_sees_the_request() {
    let (s, c) = (keys(), keys());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let auth = SharedAuthenticator::new(move |req: AuthRequest| {
        let _ = tx.send(req);
        async { AuthReply::allow("alice") }
    });
    let mut server = curve_server(&s, Some(auth));
    server.zap_domain = "global".into();
    assert!(round_trip(server, curve_client(&c, &s), "tcp://127.0.0.1:*").await.is_some());
    let req = rx.recv().await.unwrap();
    assert_eq!(req.domain, "global");
    assert_eq!(req.address, "127.0.0.1");
    assert_eq!(req.credentials, zmtp::proto::Credentials::Curve { public_key: c.public });
}

/// One valid CURVE greeting + HELLO for `server`: what a flood peer replays (a HELLO costs its
/// sender nothing to replay and the server one X25519 and a key pair each time).
fn valid_hello(server: &CurveKeyPair) -> Vec<u8> {
    use zmtp::proto::{Connection, ConnectionConfig, Security};
    let now = std::time::Instant::now();
    let c = keys();
    let mut client = Connection::new(
        ConnectionConfig::new(SocketType::Dealer).security(Security::CurveClient {
            public: c.public,
            secret: c.secret,
            server: server.public,
        }),
        now,
    );
    let mut peer = Connection::new(
        ConnectionConfig::new(SocketType::Router)
            .security(Security::CurveServer { public: server.public, secret: server.secret.clone() }),
        now,
    );
    client.handle_input(now, &peer.take_transmit());
    let _ = client.poll_event();
    client.take_transmit()
}

/// Issue 14: 2,000 raw peers each send a valid HELLO and stall (each costs the server an X25519);
/// a legitimate client is still served, because at the cap on handshakes in progress the oldest
/// stalled one is closed to admit the newcomer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legitimate_client_is_served_while_raw_peers_flood_hellos() {
    use tokio::io::AsyncWriteExt;
    let (s, c) = (keys(), keys());
    let rep = Socket::with_options(SocketType::Rep, curve_server(&s, None)).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let addr = ep.trim_start_matches("tcp://").to_owned();
    let hello = valid_hello(&s);
    let flood = tokio::spawn(async move {
        let mut raw = Vec::new();
        for _ in 0..2000 {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await {
                let _ = stream.write_all(&hello).await;
                raw.push(stream);
            }
        }
        raw
    });
    // The client starts while the flood is under way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let req = Socket::with_options(SocketType::Req, curve_client(&c, &s)).unwrap();
    req.connect(&ep).unwrap();
    req.send("still there?").await.unwrap();
    let got = recv_within(&rep, Duration::from_secs(20)).await;
    assert!(got.is_some(), "the legitimate client was not served during the flood");
    let served_after = started.elapsed();
    let raw = flood.await.unwrap();
    eprintln!("served after {served_after:?}; {} raw peers connected", raw.len());
}
