//! Security interop: our `zmtp::Socket`s with CURVE (RFC 26) and PLAIN (RFC 24) against real pyzmq
//! (libzmq 4.3.5) sockets run by `tests/peers/secure_peer.py`, over tcp and ipc, with our socket
//! binding and with pyzmq binding, and with either side as the mechanism's server.
//!
//! * Traffic over CURVE for REQ/REP, DEALER/ROUTER, PUSH/PULL and PUB/SUB (subscriptions cross the
//!   encrypted link), multipart messages around the frame-size boundaries of the encrypted boxes,
//!   16 MiB messages, heartbeats on an idle encrypted link, and our proxy (XSUB/XPUB) between a
//!   pyzmq publisher and a pyzmq subscriber with both hops encrypted.
//! * PLAIN for REQ/REP and DEALER/ROUTER.
//! * pyzmq's `zmq.auth` authenticators (thread and asyncio) allowing and refusing our clients, and
//!   our authenticators (`AuthPolicy`, a closure) allowing and refusing pyzmq clients.
//! * Failures: a wrong CURVE server key, a wrong password, a mechanism mismatch: nothing is
//!   delivered and our monitor reports the failed handshake.
//!
//! Tests are split by which side is the mechanism's server (`we_serve` / `they_serve`): libzmq
//! 4.3.5 sends as-server = 0 in every greeting, its servers' included, so our clients must not
//! insist on 1. libzmq quirks met on the way are noted where they shape a test (a PLAIN server
//! needs a ZAP handler; its ERROR command is misspelled `\x5eRROR`; a REQ authenticating with a
//! User-Id drops its connection at the first reply).
//!
//! Fixed keys are the shared bench's (its README, "CURVE (encrypted) runs"); the authentication
//! tests use fresh ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::future::Future;
use std::io::Write;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;
use zmtp::auth::{AuthPolicy, AuthRequest, SharedAuthenticator};
use zmtp::proto::{AuthReply, ConnectionError, Credentials, Password, ProtocolError};
use zmtp::{
    curve_keypair, CurveKeyPair, CurvePublicKey, CurveSecretKey, DisconnectReason, HandshakeFailure, Monitor,
    Msg, Options, Socket, SocketEventKind, SocketType,
};
use zmtp_interop::sockets::{
    blocking, drain_events, expect_event, our_bind_endpoint, recv, send, within, Side, SETUPS,
};
use zmtp_interop::{frame_repr, hex, line_reprs, msg_arg, reprs, Kind, Peer, TempDir, STEP};

// ---------------------------------------------------------------------------------------------------
// Keys, credentials, monitor events
// ---------------------------------------------------------------------------------------------------

/// The bench's fixed CURVE keys (Z85).
const SERVER_PUBLIC: &str = "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo";
const SERVER_SECRET: &str = "CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP";
const CLIENT_PUBLIC: &str = "ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS";
const CLIENT_SECRET: &str = ")FimV5Q9q[a+.pe7>!fHPlt[<Bvw{.y?1J@=+2mh";

const USER: &str = "admin";
const PASSWORD: &str = "secret";

/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`: a CURVE box did not open.
const ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: u32 = 0x1100_0001;

fn server_public() -> CurvePublicKey {
    CurvePublicKey::from_z85(SERVER_PUBLIC).unwrap()
}

fn server_secret() -> CurveSecretKey {
    CurveSecretKey::from_z85(SERVER_SECRET).unwrap()
}

fn client_secret() -> CurveSecretKey {
    CurveSecretKey::from_z85(CLIENT_SECRET).unwrap()
}

/// The bench's keys are two pairs.
#[test]
fn bench_keys_are_pairs() {
    assert_eq!(server_secret().public_key().to_z85(), SERVER_PUBLIC);
    assert_eq!(client_secret().public_key().to_z85(), CLIENT_PUBLIC);
}

fn fresh_keys() -> CurveKeyPair {
    curve_keypair().expect("randomness")
}

// The monitor events the tests look for: the only functions that know the events' shape.

/// A handshake that failed, for any reason.
fn is_handshake_failure(ev: &SocketEventKind) -> bool {
    matches!(ev, SocketEventKind::HandshakeFailed(_))
}

/// A handshake whose credentials the server's authenticator refused (ZAP status 400), reported by
/// either side: our server's refusal, or our client reading the server's ERROR "400".
fn is_auth_failure(ev: &SocketEventKind) -> bool {
    matches!(ev, SocketEventKind::HandshakeFailed(HandshakeFailure::Auth { status: 400 }))
}

/// A handshake that failed because a CURVE box did not open (a wrong key).
fn is_crypto_failure(ev: &SocketEventKind) -> bool {
    matches!(
        ev,
        SocketEventKind::HandshakeFailed(HandshakeFailure::Protocol(ProtocolError::Cryptographic { .. }))
    )
}

/// A connection that ended (after its handshake, or during it).
fn is_disconnect(ev: &SocketEventKind) -> bool {
    matches!(ev, SocketEventKind::Disconnected(_))
}

/// A connection our heartbeat ended: nothing arrived within the timeout after a PING.
fn is_heartbeat_timeout(ev: &SocketEventKind) -> bool {
    matches!(
        ev,
        SocketEventKind::Disconnected(DisconnectReason::Connection(ConnectionError::HeartbeatTimeout(_)))
    )
}

/// A completed handshake.
fn is_handshake_success(ev: &SocketEventKind) -> bool {
    matches!(ev, SocketEventKind::HandshakeSucceeded)
}

/// The mechanism of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mech {
    /// CURVE with the bench's fixed keys.
    Curve,
    /// PLAIN, user `admin`, password `secret`.
    Plain,
}

/// `--name=value`: keys in Z85 may start with `-`, which argparse would take for an option.
fn opt(name: &str, value: &str) -> String {
    format!("{name}={value}")
}

/// Our options (linger 0) and the `secure_peer.py` arguments for `mech`, with our side the
/// mechanism's server if `we_serve`. Our PLAIN server checks the password with an [`AuthPolicy`],
/// pyzmq's with a thread authenticator (libzmq 4.3.5 refuses every PLAIN client without a ZAP
/// handler); the CURVE servers run none (both sides then accept any client key).
fn security(mech: Mech, we_serve: bool) -> (Options, Vec<String>) {
    let base = Options { linger: Some(Duration::ZERO), ..Options::default() };
    match (mech, we_serve) {
        (Mech::Curve, true) => (
            Options { curve_server: true, curve_secret_key: Some(server_secret()), ..base },
            vec![opt("--curve-serverkey", SERVER_PUBLIC), opt("--curve-secret", CLIENT_SECRET)],
        ),
        (Mech::Curve, false) => (
            Options {
                curve_server_key: Some(server_public()),
                curve_secret_key: Some(client_secret()),
                ..base
            },
            vec!["--curve-server".to_owned(), opt("--curve-secret", SERVER_SECRET)],
        ),
        (Mech::Plain, true) => (
            Options {
                plain_server: true,
                authenticator: Some(AuthPolicy::new().plain_user(USER, PASSWORD).into_shared()),
                ..base
            },
            py_plain_client(USER, PASSWORD),
        ),
        (Mech::Plain, false) => (
            plain_client(USER, PASSWORD),
            vec![
                "--plain-server".to_owned(),
                opt("--auth", "thread"),
                opt("--auth-plain", &format!("{USER}={PASSWORD}")),
            ],
        ),
    }
}

/// Options of our CURVE client with `keys`, for a server whose public key is `server`.
fn curve_client(keys: &CurveKeyPair, server: CurvePublicKey) -> Options {
    Options {
        linger: Some(Duration::ZERO),
        curve_server_key: Some(server),
        curve_secret_key: Some(keys.secret.clone()),
        ..Options::default()
    }
}

/// Options of our CURVE server with `keys` and `authenticator`.
fn curve_server(keys: &CurveKeyPair, authenticator: Option<SharedAuthenticator>) -> Options {
    Options {
        linger: Some(Duration::ZERO),
        curve_server: true,
        curve_secret_key: Some(keys.secret.clone()),
        authenticator,
        ..Options::default()
    }
}

/// Options of our PLAIN client.
fn plain_client(user: &str, password: &str) -> Options {
    Options {
        linger: Some(Duration::ZERO),
        plain_username: Some(Bytes::copy_from_slice(user.as_bytes())),
        plain_password: Some(Password::new(Bytes::copy_from_slice(password.as_bytes()))),
        ..Options::default()
    }
}

/// The arguments of a pyzmq CURVE client with `secret`, for a server whose public key is `server`.
fn py_curve_client(secret: &CurveSecretKey, server: CurvePublicKey) -> Vec<String> {
    vec![opt("--curve-serverkey", &server.to_z85()), opt("--curve-secret", &secret.to_z85())]
}

/// The arguments of a pyzmq CURVE server with `secret`.
fn py_curve_server(secret: &CurveSecretKey) -> Vec<String> {
    vec!["--curve-server".to_owned(), opt("--curve-secret", &secret.to_z85())]
}

/// The arguments of a pyzmq PLAIN client.
fn py_plain_client(user: &str, password: &str) -> Vec<String> {
    vec![opt("--plain-username", user), opt("--plain-password", password)]
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn socket(t: SocketType, options: Options) -> Socket {
    Socket::with_options(t, options).unwrap()
}

fn frames(parts: &[&str]) -> Msg {
    Msg::from(parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect::<Vec<_>>())
}

// ---------------------------------------------------------------------------------------------------
// The pyzmq peer: tests/peers/secure_peer.py
// ---------------------------------------------------------------------------------------------------

/// A `tests/peers/secure_peer.py` process (`sock_peer.py`'s lines and commands, plus security and
/// authenticator options). Derefs to [`Peer`].
struct SecPeer {
    // Dropped first: closing stdin ends the script; the Peer's drop then kills and reaps it.
    stdin: Option<ChildStdin>,
    peer: Peer,
}

impl SecPeer {
    fn spawn<I, S>(args: I) -> SecPeer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (peer, stdin) = Peer::spawn_with_stdin("secure_peer", args);
        SecPeer { stdin: Some(stdin), peer }
    }

    /// Spawns the peer and waits for its `READY` line; returns it and the endpoint it printed.
    fn start(args: Vec<String>) -> (SecPeer, String) {
        let mut peer = SecPeer::spawn(args);
        let endpoint = blocking(|| peer.ready()).to_string();
        (peer, endpoint)
    }

    fn command(&mut self, line: &str) {
        let result = match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()),
            None => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed")),
        };
        if let Err(e) = result {
            let shown: String = line.chars().take(80).collect();
            panic!("cannot write {shown:?} to the peer: {e}\n{}", self.peer.transcript());
        }
    }

    fn send<F: AsRef<[u8]>>(&mut self, frames: &[F]) {
        self.command(&format!("SEND {}", msg_arg(frames)));
    }

    fn expect_msg(&mut self, timeout: Duration) -> Vec<String> {
        line_reprs(&blocking(|| self.peer.expect_line("MSG ", timeout)))
    }

    fn expect_sent(&mut self, timeout: Duration) -> Vec<String> {
        line_reprs(&blocking(|| self.peer.expect_line("SENT", timeout)))
    }

    /// The next line starting with `prefix`, within [`STEP`].
    fn expect(&mut self, prefix: &str) -> String {
        blocking(|| self.peer.expect_line(prefix, STEP))
    }

    /// The first line starting with `prefix` the peer printed: one already read (and passed over by
    /// an earlier `expect…`), or the next one, within [`STEP`].
    fn expect_seen(&mut self, prefix: &str) -> String {
        match self.peer.seen().iter().find(|l| l.starts_with(prefix)) {
            Some(line) => line.clone(),
            None => self.expect(prefix),
        }
    }

    /// Reads (and remembers) whatever the peer prints within `window`.
    fn pump(&mut self, window: Duration) {
        blocking(|| self.peer.lines_within("", window));
    }

    fn has_seen(&self, prefix: &str) -> bool {
        self.peer.seen().iter().any(|l| l.starts_with(prefix))
    }

    fn count_seen(&self, prefix: &str) -> usize {
        self.peer.seen().iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Fails if the peer printed, or prints within `window`, a line starting with `prefix`.
    fn assert_no_line(&mut self, prefix: &str, window: Duration, what: &str) {
        self.pump(window);
        assert!(!self.has_seen(prefix), "{what}: the peer printed {prefix:?}\n{}", self.peer.transcript());
    }
}

impl std::ops::Deref for SecPeer {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl std::ops::DerefMut for SecPeer {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

/// One of our sockets linked to one `secure_peer.py`.
struct Link {
    ours: Socket,
    monitor: Monitor,
    peer: SecPeer,
    _dir: TempDir,
}

/// Links `ours` to a new `secure_peer.py --type <theirs> <py_args…>` over `kind`, binding on `side`.
/// Returns once the peer printed `READY` and our bind or connect returned.
async fn link(kind: Kind, side: Side, ours: Socket, theirs: &str, py_args: &[String]) -> Link {
    let dir = TempDir::new("sec");
    let monitor = ours.monitor();
    let peer = match side {
        Side::WeBind => {
            let ep = our_bind_endpoint(kind, &dir, "us");
            let endpoint = within("bind", ours.bind(&ep)).await.unwrap_or_else(|e| panic!("bind {ep}: {e}"));
            let mut a = args(&["--type", theirs, "--connect", &endpoint]);
            a.extend(py_args.iter().cloned());
            SecPeer::start(a).0
        }
        Side::TheyBind => {
            let mut a = args(&["--type", theirs, "--bind", &kind.bind_endpoint(&dir, "py")]);
            a.extend(py_args.iter().cloned());
            let (peer, endpoint) = SecPeer::start(a);
            ours.connect(&endpoint).unwrap_or_else(|e| panic!("connect {endpoint}: {e}"));
            peer
        }
    };
    Link { ours, monitor, peer, _dir: dir }
}

impl Link {
    async fn close(self) {
        let Link { ours, peer, .. } = self;
        within("close our socket", ours.close()).await;
        drop(peer);
    }
}

/// Waits (at most [`STEP`]) for a monitor event `pred` accepts.
async fn expect_monitor(monitor: &mut Monitor, what: &str, pred: impl FnMut(&SocketEventKind) -> bool) {
    expect_event(monitor, STEP, what, pred).await;
}

/// Fails if a message arrives on `socket` within `window`.
async fn assert_nothing_received(socket: &Socket, window: Duration, what: &str) {
    if let Ok(Ok(got)) = tokio::time::timeout(window, socket.recv()).await {
        panic!("{what}: received {got:?}");
    }
}

/// Runs `f(item)` for every item as a task of its own, all at once (each setup of a test has its
/// own sockets, endpoints and peer process; waiting for them one after the other is most of a
/// test's time), and returns the outputs in order. A panicking task fails the test with its panic.
async fn each<T, O, Fut>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> Fut) -> Vec<O>
where
    Fut: Future<Output = O> + Send + 'static,
    O: Send + 'static,
{
    let tasks: Vec<_> = items.into_iter().map(|item| tokio::spawn(f(item))).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(output) => outputs.push(output),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a setup's task failed: {e}"),
        }
    }
    outputs
}

/// Sends `msg` in the background: a socket whose only peer is refused may never take it. Abort the
/// handle at the end of the test.
fn send_in_background(socket: &Socket, msg: Msg) -> JoinHandle<()> {
    let socket = socket.clone();
    tokio::spawn(async move {
        let _ = socket.send(msg).await;
    })
}

// ---------------------------------------------------------------------------------------------------
// Message traffic over CURVE and PLAIN
// ---------------------------------------------------------------------------------------------------

/// This file's message bodies (see `zmtp_interop::pattern`).
fn pattern(len: usize) -> Bytes {
    zmtp_interop::pattern(len, 2)
}

/// Message bodies: single and multipart, empty frames, and frames around the boundaries where the
/// CURVE MESSAGE box (33 octets more than the frame: name, nonce, MAC, flags) and the plain frame
/// switch from short to long headers.
fn bodies() -> Vec<Vec<Bytes>> {
    let b = Bytes::from_static;
    vec![
        vec![b(b"hello")],
        vec![b(b"a"), b(b"bb"), b(b"ccc"), b(b"dddd")],
        vec![Bytes::new()],
        vec![b(b"x"), Bytes::new(), b(b"y")],
        vec![Bytes::new(), b(b"tail")],
        vec![pattern(221), pattern(222), pattern(223)],
        vec![pattern(255), pattern(256), pattern(257)],
        vec![pattern(1000), Bytes::new(), pattern(65_536)],
    ]
}

/// Who sends first and what each side sees.
#[derive(Debug, Clone, Copy)]
enum Flow {
    /// We send the body; pyzmq (echoing) sees it (after a generated routing id if `py_sees_id`);
    /// we get it back.
    WeAsk { py_sees_id: bool },
    /// pyzmq sends the body (after an empty delimiter if `py_delim`); we see it (after a generated
    /// routing id if `we_get_id`) and echo it; pyzmq gets it back (after the delimiter if
    /// `py_delim`).
    TheyAsk { we_get_id: bool, py_delim: bool },
    /// We send the body, pyzmq receives it.
    WePush,
    /// pyzmq sends the body, we receive it.
    TheyPush,
}

/// A routing id a ROUTER generated, as printed: 5 bytes, the first 0x00.
fn is_generated_id(repr: &str) -> bool {
    repr.len() == 2 + 10 && repr.starts_with("5:00") && repr[2..].bytes().all(|c| c.is_ascii_hexdigit())
}

/// Checks frames (as printed) against the body, after a generated routing id if `id`.
fn check(what: &str, got: &[String], id: bool, body: &[String]) {
    let skip = usize::from(id);
    let ok = got.len() == skip + body.len() && (!id || is_generated_id(&got[0])) && got[skip..] == *body;
    assert!(ok, "{what}: got {got:?}, expected {}{body:?}", if id { "[generated id] ++ " } else { "" });
}

/// Runs `bodies()` through our `ours` and pyzmq's `theirs` with `mech`, over tcp and ipc, both
/// sides binding, our side the mechanism's server if `we_serve`.
async fn run_traffic(mech: Mech, we_serve: bool, ours: SocketType, theirs: &'static str, flow: Flow) {
    each(SETUPS, move |(kind, side)| async move {
        let started = Instant::now();
        let (options, mut py_args) = security(mech, we_serve);
        let mode = if matches!(flow, Flow::WeAsk { .. }) { "echo" } else { "sink" };
        py_args.extend(args(&["--mode", mode]));
        let mut l = link(kind, side, socket(ours, options), theirs, &py_args).await;
        let ctx =
            format!("{mech:?}: our {ours} <-> pyzmq {theirs} over {kind:?}, {side:?}, we serve: {we_serve}");
        for body in bodies() {
            let body_reprs = reprs(&body);
            let what = format!("{ctx}, body of {} frames", body.len());
            match flow {
                Flow::WeAsk { py_sees_id } => {
                    send(&l.ours, Msg::from(body.clone())).await;
                    let seen = l.peer.expect_msg(STEP);
                    check(&format!("{what}: pyzmq received"), &seen, py_sees_id, &body_reprs);
                    let got = recv(&l.ours).await;
                    assert_eq!(got.frames(), &body[..], "{what}: pyzmq's echo");
                }
                Flow::TheyAsk { we_get_id, py_delim } => {
                    let envelope = if py_delim { vec![Bytes::new()] } else { Vec::new() };
                    let sent = [envelope.clone(), body.clone()].concat();
                    l.peer.send(&sent);
                    let got = recv(&l.ours).await;
                    check(&format!("{what}: we received"), &reprs(got.frames()), we_get_id, &body_reprs);
                    assert_eq!(got.frames()[usize::from(we_get_id)..], body[..], "{what}: content");
                    send(&l.ours, got).await;
                    let seen = l.peer.expect_msg(STEP);
                    check(&format!("{what}: pyzmq received our echo"), &seen, false, &reprs(&sent));
                }
                Flow::WePush => {
                    send(&l.ours, Msg::from(body.clone())).await;
                    let seen = l.peer.expect_msg(STEP);
                    check(&format!("{what}: pyzmq received"), &seen, false, &body_reprs);
                }
                Flow::TheyPush => {
                    l.peer.send(&body);
                    let got = recv(&l.ours).await;
                    assert_eq!(got.frames(), &body[..], "{what}: we received");
                }
            }
        }
        l.peer.pump(Duration::ZERO);
        assert!(!l.peer.has_seen("SEND_FAILED"), "{ctx}\n{}", l.peer.transcript());
        assert!(!l.peer.has_seen("EVENT HANDSHAKE_FAILED"), "{ctx}\n{}", l.peer.transcript());
        let events = drain_events(&mut l.monitor);
        assert!(!events.iter().any(|e| is_handshake_failure(&e.kind)), "{ctx}: {events:#?}");
        l.close().await;
        eprintln!("{ctx}: {:?}", started.elapsed());
    })
    .await;
}

macro_rules! traffic_tests {
    ($($(#[$attr:meta])* $name:ident => ($mech:expr, $we_serve:expr, $ours:expr, $theirs:literal, $flow:expr);)*) => {$(
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_traffic($mech, $we_serve, $ours, $theirs, $flow).await;
        }
    )*};
}

use SocketType::{Dealer, Pull, Push, Rep, Req, Router};

traffic_tests! {
    /// Our REQ asks a pyzmq REP; we are the CURVE server.
    curve_req_rep_we_serve => (Mech::Curve, true, Req, "REP", Flow::WeAsk { py_sees_id: false });
    /// Our REQ asks a pyzmq REP; pyzmq is the CURVE server.
    curve_req_rep_they_serve => (Mech::Curve, false, Req, "REP", Flow::WeAsk { py_sees_id: false });
    /// A pyzmq REQ asks our REP; we are the CURVE server.
    curve_rep_req_we_serve => (Mech::Curve, true, Rep, "REQ", Flow::TheyAsk { we_get_id: false, py_delim: false });
    /// A pyzmq REQ asks our REP; pyzmq is the CURVE server.
    curve_rep_req_they_serve => (Mech::Curve, false, Rep, "REQ", Flow::TheyAsk { we_get_id: false, py_delim: false });
    /// Our DEALER and a pyzmq ROUTER (echo); we are the CURVE server.
    curve_dealer_router_we_serve => (Mech::Curve, true, Dealer, "ROUTER", Flow::WeAsk { py_sees_id: true });
    /// Our DEALER and a pyzmq ROUTER (echo); pyzmq is the CURVE server.
    curve_dealer_router_they_serve => (Mech::Curve, false, Dealer, "ROUTER", Flow::WeAsk { py_sees_id: true });
    /// A pyzmq DEALER and our ROUTER (we echo); we are the CURVE server.
    curve_router_dealer_we_serve => (Mech::Curve, true, Router, "DEALER", Flow::TheyAsk { we_get_id: true, py_delim: false });
    /// A pyzmq DEALER and our ROUTER (we echo); pyzmq is the CURVE server.
    curve_router_dealer_they_serve => (Mech::Curve, false, Router, "DEALER", Flow::TheyAsk { we_get_id: true, py_delim: false });
    /// Our PUSH to a pyzmq PULL; we are the CURVE server.
    curve_push_pull_we_serve => (Mech::Curve, true, Push, "PULL", Flow::WePush);
    /// Our PUSH to a pyzmq PULL; pyzmq is the CURVE server.
    curve_push_pull_they_serve => (Mech::Curve, false, Push, "PULL", Flow::WePush);
    /// A pyzmq PUSH to our PULL; we are the CURVE server.
    curve_pull_push_we_serve => (Mech::Curve, true, Pull, "PUSH", Flow::TheyPush);
    /// A pyzmq PUSH to our PULL; pyzmq is the CURVE server.
    curve_pull_push_they_serve => (Mech::Curve, false, Pull, "PUSH", Flow::TheyPush);
    /// Our REQ asks a pyzmq REP; we are the PLAIN server.
    plain_req_rep_we_serve => (Mech::Plain, true, Req, "REP", Flow::WeAsk { py_sees_id: false });
    /// Our REQ asks a pyzmq REP; pyzmq is the PLAIN server.
    plain_req_rep_they_serve => (Mech::Plain, false, Req, "REP", Flow::WeAsk { py_sees_id: false });
    /// A pyzmq REQ asks our REP; we are the PLAIN server.
    plain_rep_req_we_serve => (Mech::Plain, true, Rep, "REQ", Flow::TheyAsk { we_get_id: false, py_delim: false });
    // A pyzmq REQ cannot be the PLAIN server of our REP: libzmq 4.3.5 needs a ZAP handler for PLAIN,
    // and a libzmq REQ whose ZAP handler returns a User-Id drops the connection at the first reply
    // (its req_session_t refuses the credential message the engine pushes first: EFAULT), with a
    // libzmq REP as much as with ours. A pyzmq DEALER plays the REQ part instead.
    /// A pyzmq DEALER asks our REP with an explicit delimiter; pyzmq is the PLAIN server.
    plain_rep_dealer_they_serve => (Mech::Plain, false, Rep, "DEALER", Flow::TheyAsk { we_get_id: false, py_delim: true });
    /// Our DEALER and a pyzmq ROUTER (echo); we are the PLAIN server.
    plain_dealer_router_we_serve => (Mech::Plain, true, Dealer, "ROUTER", Flow::WeAsk { py_sees_id: true });
    /// Our DEALER and a pyzmq ROUTER (echo); pyzmq is the PLAIN server.
    plain_dealer_router_they_serve => (Mech::Plain, false, Dealer, "ROUTER", Flow::WeAsk { py_sees_id: true });
    /// A pyzmq DEALER and our ROUTER (we echo); we are the PLAIN server.
    plain_router_dealer_we_serve => (Mech::Plain, true, Router, "DEALER", Flow::TheyAsk { we_get_id: true, py_delim: false });
    /// A pyzmq DEALER and our ROUTER (we echo); pyzmq is the PLAIN server.
    plain_router_dealer_they_serve => (Mech::Plain, false, Router, "DEALER", Flow::TheyAsk { we_get_id: true, py_delim: false });
}

/// 16 MiB.
const BIG: usize = 16 << 20;

/// How long one 16 MiB CURVE message may take (a few seconds in a test build on a busy machine).
const BIG_STEP: Duration = Duration::from_secs(30);

/// A 16 MiB message over CURVE: from our PUSH to a pyzmq PULL (`ours` is `Push`), or from a pyzmq
/// PUSH (random bytes, checked by CRC-32) to our PULL (`ours` is `Pull`).
async fn run_16_mib(ours: SocketType, we_serve: bool, kind: Kind, side: Side) {
    let started = Instant::now();
    let ctx = format!("16 MiB over CURVE, our {ours}, {kind:?}, {side:?}, we serve: {we_serve}");
    let (options, py_args) = security(Mech::Curve, we_serve);
    if ours == Push {
        let big = pattern(BIG);
        let mut l = link(kind, side, socket(Push, options), "PULL", &py_args).await;
        send(&l.ours, Msg::from(vec![Bytes::from_static(b"head"), big.clone()])).await;
        assert_eq!(l.peer.expect_msg(BIG_STEP), [frame_repr(b"head"), frame_repr(&big)], "{ctx}");
        l.close().await;
    } else {
        let mut l = link(kind, side, socket(Pull, options), "PUSH", &py_args).await;
        l.peer.command(&format!("SEND {}:r{BIG}", hex(b"head")));
        let sent = l.peer.expect_sent(STEP);
        let got = match tokio::time::timeout(BIG_STEP, l.ours.recv()).await {
            Ok(got) => got.unwrap(),
            Err(_) => panic!("{ctx}: nothing within {BIG_STEP:?}"),
        };
        assert_eq!(reprs(got.frames()), sent, "{ctx}");
        l.close().await;
    }
    eprintln!("{ctx}: {:?}", started.elapsed());
}

/// 16 MiB from our PUSH (the CURVE server, binding, tcp) to a pyzmq PULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_16_mib_to_pyzmq() {
    run_16_mib(Push, true, Kind::Tcp, Side::WeBind).await;
}

/// 16 MiB from a pyzmq PUSH (the CURVE server, binding, ipc) to our PULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_16_mib_from_pyzmq() {
    run_16_mib(Pull, false, Kind::Ipc, Side::TheyBind).await;
}

/// PUB/SUB over CURVE in every setup: the pyzmq SUB's subscription crosses the encrypted link to our
/// PUB, which filters for it; our SUB's subscription reaches a pyzmq PUB, which filters for us; our
/// XPUB sees the pyzmq SUB's subscription message itself.
async fn run_pub_sub(we_serve: bool) {
    each(SETUPS, move |(kind, side)| {
        async move {
            let ctx = format!("CURVE PUB/SUB over {kind:?}, {side:?}, we serve: {we_serve}");

            // Our PUB, a pyzmq SUB subscribed to "wx.".
            let (options, mut py_args) = security(Mech::Curve, we_serve);
            py_args.push(opt("--subscribe", &hex(b"wx.")));
            let mut l = link(kind, side, socket(SocketType::Pub, options), "SUB", &py_args).await;
            let mut first = None;
            for _ in 0..250 {
                send(&l.ours, frames(&["sports", "x"])).await;
                send(&l.ours, frames(&["wx.nyc", "21C"])).await;
                let lines = blocking(|| l.peer.lines_within("MSG ", Duration::from_millis(20)));
                if let Some(line) = lines.into_iter().next() {
                    first = Some(line);
                    break;
                }
            }
            let first = first.unwrap_or_else(|| panic!("{ctx}: the pyzmq SUB received nothing"));
            assert_eq!(line_reprs(&first), reprs(&[b"wx.nyc".as_slice(), b"21C"]), "{ctx}");
            send(&l.ours, frames(&["sports", "y"])).await;
            send(&l.ours, frames(&["wx.sf", "15C"])).await;
            loop {
                let got = l.peer.expect_msg(STEP);
                assert_ne!(got[0], frame_repr(b"sports"), "{ctx}: our PUB let sports through");
                if got == reprs(&[b"wx.sf".as_slice(), b"15C"]) {
                    break;
                }
            }
            l.close().await;

            // A pyzmq PUB, our SUB subscribed to "wx.".
            let (options, py_args) = security(Mech::Curve, we_serve);
            let ours = socket(SocketType::Sub, options);
            ours.subscribe("wx.").unwrap();
            let mut l = link(kind, side, ours, "PUB", &py_args).await;
            let mut got = None;
            for _ in 0..250 {
                l.peer.send(&[b"sports".as_slice(), b"x"]);
                l.peer.send(&[b"wx.nyc".as_slice(), b"21C"]);
                if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), l.ours.recv()).await {
                    got = Some(m);
                    break;
                }
            }
            let got = got.unwrap_or_else(|| panic!("{ctx}: our SUB received nothing"));
            assert_eq!(got.frames(), [&b"wx.nyc"[..], b"21C"], "{ctx}");
            while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), l.ours.recv()).await {
                assert_eq!(m.frames()[0], "wx.nyc", "{ctx}: the pyzmq PUB filtered for us");
            }
            l.close().await;

            // Our XPUB sees the subscription itself.
            let (options, mut py_args) = security(Mech::Curve, we_serve);
            py_args.push(opt("--subscribe", &hex(b"wx.")));
            let mut l = link(kind, side, socket(SocketType::XPub, options), "SUB", &py_args).await;
            let sub = recv(&l.ours).await;
            assert_eq!(sub.frames(), [&b"\x01wx."[..]], "{ctx}: the subscription our XPUB received");
            send(&l.ours, frames(&["sports"])).await;
            send(&l.ours, frames(&["wx.sf", "15C"])).await;
            assert_eq!(l.peer.expect_msg(STEP), reprs(&[b"wx.sf".as_slice(), b"15C"]), "{ctx}");
            l.close().await;
        }
    })
    .await;
}

/// PUB/SUB over CURVE, we are the CURVE server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_pub_sub_we_serve() {
    run_pub_sub(true).await;
}

/// PUB/SUB over CURVE, pyzmq is the CURVE server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_pub_sub_they_serve() {
    run_pub_sub(false).await;
}

/// Heartbeats over CURVE (PING and PONG travel as commands in MESSAGE boxes), one side pinging at
/// a time so that only the other side's PONGs can keep the link up: the pinging side pings every
/// 100 ms and gives up after 400 ms without traffic, the link stays idle for 1 s (10 intervals) and
/// must still carry messages, with no disconnection or new handshake on either side. When we ping,
/// the pyzmq process is then frozen and our heartbeat must notice. Our DEALER and a pyzmq ROUTER
/// (echo), over tcp and ipc.
async fn run_heartbeats(we_serve: bool, setups: [(Kind, Side); 2]) {
    each(setups, move |(kind, side)| async move {
        for we_ping in [true, false] {
            let ctx =
                format!("CURVE heartbeats over {kind:?}, {side:?}, we serve: {we_serve}, we ping: {we_ping}");
            let (mut options, mut py_args) = security(Mech::Curve, we_serve);
            py_args.extend(args(&["--mode", "echo"]));
            if we_ping {
                options = Options {
                    heartbeat_interval: Some(Duration::from_millis(100)),
                    heartbeat_timeout: Some(Duration::from_millis(400)),
                    heartbeat_ttl: Some(Duration::from_millis(2000)),
                    ..options
                };
            } else {
                py_args.extend([
                    opt("--heartbeat-ivl", "100"),
                    opt("--heartbeat-timeout", "400"),
                    opt("--heartbeat-ttl", "2000"),
                ]);
            }
            let mut l = link(kind, side, socket(Dealer, options), "ROUTER", &py_args).await;
            send(&l.ours, frames(&["before"])).await;
            assert_eq!(recv(&l.ours).await.frames(), [&b"before"[..]], "{ctx}");
            tokio::time::sleep(Duration::from_millis(1000)).await;
            send(&l.ours, frames(&["after"])).await;
            assert_eq!(recv(&l.ours).await.frames(), [&b"after"[..]], "{ctx}");
            let events = drain_events(&mut l.monitor);
            assert!(
                !events.iter().any(|e| is_disconnect(&e.kind)),
                "{ctx}: disconnected while idle: {events:#?}"
            );
            assert_eq!(
                events.iter().filter(|e| is_handshake_success(&e.kind)).count(),
                1,
                "{ctx}: {events:#?}"
            );
            l.peer.pump(Duration::from_millis(20));
            assert_eq!(l.peer.count_seen("EVENT HANDSHAKE_SUCCEEDED"), 1, "{ctx}\n{}", l.peer.transcript());
            assert!(
                !l.peer.has_seen("EVENT DISCONNECTED"),
                "{ctx}: pyzmq disconnected\n{}",
                l.peer.transcript()
            );

            if we_ping {
                l.peer.freeze();
                let frozen = Instant::now();
                expect_event(
                    &mut l.monitor,
                    Duration::from_secs(3),
                    "a heartbeat timeout",
                    is_heartbeat_timeout,
                )
                .await;
                let noticed = frozen.elapsed();
                assert!(noticed < Duration::from_secs(2), "{ctx}: the timeout took {noticed:?}");
                l.peer.thaw();
            }
            l.close().await;
        }
    })
    .await;
}

/// Heartbeats over CURVE, we are the CURVE server (binding over tcp, connecting over ipc).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_heartbeats_we_serve() {
    run_heartbeats(true, [(Kind::Tcp, Side::WeBind), (Kind::Ipc, Side::TheyBind)]).await;
}

/// Heartbeats over CURVE, pyzmq is the CURVE server (binding over tcp, connecting over ipc).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_heartbeats_they_serve() {
    run_heartbeats(false, [(Kind::Tcp, Side::TheyBind), (Kind::Ipc, Side::WeBind)]).await;
}

/// Our proxy (XSUB frontend, XPUB backend, both CURVE) between a pyzmq PUB and a pyzmq SUB, every
/// hop encrypted: the subscription travels SUB → our XPUB → proxy → our XSUB → PUB, the messages
/// back. Over tcp and ipc. With `we_bind`, our proxy's sockets bind and are the CURVE servers of both
/// hops; otherwise pyzmq's bind as the servers and our proxy connects as their client.
async fn run_proxy(we_bind: bool) {
    each([Kind::Tcp, Kind::Ipc], move |kind| async move {
        let ctx = format!("CURVE proxy over {kind:?}, proxy binds: {we_bind}");
        let dir = TempDir::new("proxy");
        let (options, py_args) = security(Mech::Curve, we_bind);
        let frontend = socket(SocketType::XSub, options.clone());
        let backend = socket(SocketType::XPub, options);
        let mut front_mon = frontend.monitor();
        let mut back_mon = backend.monitor();
        let peer_args = |kind: &str, where_: &str, ep: &str| {
            let mut a = args(&["--type", kind, where_, ep]);
            if kind == "SUB" {
                a.push(opt("--subscribe", &hex(b"wx.")));
            }
            a.extend(py_args.iter().cloned());
            a
        };
        let (mut sub, mut publisher) = if we_bind {
            let xsub_ep =
                within("bind", frontend.bind(&our_bind_endpoint(kind, &dir, "xsub"))).await.unwrap();
            let xpub_ep = within("bind", backend.bind(&our_bind_endpoint(kind, &dir, "xpub"))).await.unwrap();
            let (sub, _) = SecPeer::start(peer_args("SUB", "--connect", &xpub_ep));
            let (publisher, _) = SecPeer::start(peer_args("PUB", "--connect", &xsub_ep));
            (sub, publisher)
        } else {
            let (sub, sub_ep) = SecPeer::start(peer_args("SUB", "--bind", &kind.bind_endpoint(&dir, "sub")));
            let (publisher, pub_ep) =
                SecPeer::start(peer_args("PUB", "--bind", &kind.bind_endpoint(&dir, "pub")));
            backend.connect(&sub_ep).unwrap();
            frontend.connect(&pub_ep).unwrap();
            (sub, publisher)
        };
        let proxy = tokio::spawn(async move { zmtp::proxy(&frontend, &backend, None).await });
        let mut received = None;
        for _ in 0..250 {
            publisher.send(&[b"sports".as_slice()]);
            publisher.send(&[b"wx.nyc".as_slice(), b"21C"]);
            let lines = blocking(|| sub.lines_within("MSG ", Duration::from_millis(20)));
            if let Some(line) = lines.into_iter().next() {
                received = Some(line);
                break;
            }
        }
        let line = received.unwrap_or_else(|| panic!("{ctx}: the pyzmq SUB received nothing"));
        assert_eq!(line_reprs(&line), reprs(&[b"wx.nyc".as_slice(), b"21C"]), "{ctx}");
        publisher.send(&[b"sports".as_slice()]);
        publisher.send(&[b"wx.sf".as_slice(), b"15C"]);
        loop {
            let got = sub.expect_msg(STEP);
            assert_ne!(got[0], frame_repr(b"sports"), "{ctx}: the filter let sports through");
            if got == reprs(&[b"wx.sf".as_slice(), b"15C"]) {
                break;
            }
        }
        for (name, mon) in [("frontend", &mut front_mon), ("backend", &mut back_mon)] {
            let events = drain_events(mon);
            assert!(events.iter().any(|e| is_handshake_success(&e.kind)), "{ctx}: {name}: {events:#?}");
            assert!(!events.iter().any(|e| is_handshake_failure(&e.kind)), "{ctx}: {name}: {events:#?}");
        }
        proxy.abort();
        let _ = proxy.await;
    })
    .await;
}

/// Our CURVE proxy binds (the CURVE server of both hops); pyzmq's PUB and SUB connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_curve_proxy_binds_between_pyzmq_pub_and_sub() {
    run_proxy(true).await;
}

/// pyzmq's PUB and SUB bind (CURVE servers); our CURVE proxy connects to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_curve_proxy_connects_between_pyzmq_pub_and_sub() {
    run_proxy(false).await;
}

// ---------------------------------------------------------------------------------------------------
// pyzmq's authenticators (zmq.auth) deciding on our clients
// ---------------------------------------------------------------------------------------------------

/// The authenticator flavours of `secure_peer.py --auth`.
const FLAVOURS: [&str; 2] = ["thread", "asyncio"];

/// Two of our REQ clients (`good`, `bad` options) and one pyzmq REP server (echo, with
/// `server_args`: its mechanism and authenticator). The good client's request is answered; the bad
/// one's never reaches pyzmq, our monitor reports the refusal (ZAP status 400) and so does pyzmq
/// (`HANDSHAKE_FAILED_AUTH 400`). Over tcp and ipc, with pyzmq binding (both our clients connect to
/// it) and with us binding (each client binds, pyzmq connects to both). Returns the `PROPS` lines
/// pyzmq printed for the good client's request (one per setup).
async fn pyzmq_server_decides(
    ctx: &str,
    good: &Options,
    bad: &Options,
    server_args: &[String],
) -> Vec<String> {
    let (ctx, good, bad, server_args) = (ctx.to_owned(), good.clone(), bad.clone(), server_args.to_vec());
    each(SETUPS, move |(kind, side)| {
        let (ctx, good, bad, server_args) = (ctx.clone(), good.clone(), bad.clone(), server_args.clone());
        async move {
            let ctx = format!("{ctx} over {kind:?}, {side:?}");
            let dir = TempDir::new("auth");
            let good_sock = socket(Req, good.clone());
            let bad_sock = socket(Req, bad.clone());
            let mut good_mon = good_sock.monitor();
            let mut bad_mon = bad_sock.monitor();
            let mut a = args(&["--type", "REP", "--mode", "echo", "--print-props"]);
            a.extend(server_args.iter().cloned());
            let mut peer = match side {
                Side::TheyBind => {
                    a.push(opt("--bind", &kind.bind_endpoint(&dir, "py")));
                    let (peer, ep) = SecPeer::start(a);
                    bad_sock.connect(&ep).unwrap();
                    good_sock.connect(&ep).unwrap();
                    peer
                }
                Side::WeBind => {
                    let good_ep =
                        within("bind", good_sock.bind(&our_bind_endpoint(kind, &dir, "good"))).await.unwrap();
                    let bad_ep =
                        within("bind", bad_sock.bind(&our_bind_endpoint(kind, &dir, "bad"))).await.unwrap();
                    a.extend([opt("--connect", &bad_ep), opt("--connect", &good_ep)]);
                    SecPeer::start(a).0
                }
            };
            let bad_send = send_in_background(&bad_sock, frames(&["from the bad one"]));
            send(&good_sock, frames(&["from the good one"])).await;
            assert_eq!(
                recv(&good_sock).await.frames(),
                [&b"from the good one"[..]],
                "{ctx}: the good one's reply"
            );
            assert_eq!(peer.expect_msg(STEP), reprs(&[b"from the good one"]), "{ctx}");
            let props = peer.expect("PROPS ");
            expect_monitor(&mut bad_mon, &format!("{ctx}: the bad client's refusal"), is_auth_failure).await;
            assert_eq!(
                peer.expect_seen("EVENT HANDSHAKE_FAILED_AUTH"),
                "EVENT HANDSHAKE_FAILED_AUTH 400",
                "{ctx}"
            );
            assert_nothing_received(&bad_sock, Duration::from_millis(100), &format!("{ctx}: the bad client"))
                .await;
            peer.pump(Duration::from_millis(20));
            assert_eq!(peer.count_seen("MSG "), 1, "{ctx}: pyzmq received more\n{}", peer.transcript());
            let events = drain_events(&mut good_mon);
            assert!(
                !events.iter().any(|e| is_handshake_failure(&e.kind)),
                "{ctx}: the good client: {events:#?}"
            );
            bad_send.abort();
            within("close", good_sock.close()).await;
            within("close", bad_sock.close()).await;
            props
        }
    })
    .await
}

/// pyzmq's authenticators (thread and asyncio) allow our CURVE client whose key they list and refuse
/// another of our clients; pyzmq's User-Id for the allowed one is its public key in Z85.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_authenticator_curve_allow_list() {
    let server = fresh_keys();
    let good_keys = fresh_keys();
    let good = curve_client(&good_keys, server.public);
    let bad = curve_client(&fresh_keys(), server.public);
    for flavour in FLAVOURS {
        let mut server_args = py_curve_server(&server.secret);
        server_args.extend([opt("--auth", flavour), opt("--auth-allow-key", &good_keys.public.to_z85())]);
        let ctx = format!("{flavour} authenticator, CURVE key list");
        for p in pyzmq_server_decides(&ctx, &good, &bad, &server_args).await {
            assert_eq!(p, format!("PROPS User-Id={} Socket-Type=REQ", good_keys.public.to_z85()), "{ctx}");
        }
    }
}

/// pyzmq's authenticators read the allowed keys from a certificate directory we wrote with
/// `zmtp::cert`, and refuse a key not in it (its secret certificate alone is in the directory:
/// pyzmq reads only public `*.key` files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_authenticator_curve_certificate_dir() {
    let server = fresh_keys();
    let good_keys = fresh_keys();
    let bad_keys = fresh_keys();
    let certs = TempDir::new("certs");
    zmtp::cert::Certificate::from_public(good_keys.public)
        .save_public(certs.path().join("good.key"))
        .unwrap();
    zmtp::cert::Certificate::new(bad_keys.secret.clone())
        .save_secret(certs.path().join("bad.key_secret"))
        .unwrap();
    let good = curve_client(&good_keys, server.public);
    let bad = curve_client(&bad_keys, server.public);
    let dir = certs.path().to_str().unwrap();
    for flavour in FLAVOURS {
        let mut server_args = py_curve_server(&server.secret);
        server_args.extend([opt("--auth", flavour), opt("--auth-cert-dir", dir)]);
        pyzmq_server_decides(&format!("{flavour} authenticator, certificate dir"), &good, &bad, &server_args)
            .await;
    }
}

/// pyzmq's authenticators check our PLAIN clients' passwords: the right one is allowed (the user
/// name becomes pyzmq's User-Id), a wrong password is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_authenticator_plain_passwords() {
    let good = plain_client(USER, PASSWORD);
    let bad = plain_client(USER, "wrong");
    for flavour in FLAVOURS {
        let server_args =
            vec!["--plain-server".to_owned(), opt("--auth", flavour), opt("--auth-plain", "admin=secret")];
        let ctx = format!("{flavour} authenticator, PLAIN");
        for p in pyzmq_server_decides(&ctx, &good, &bad, &server_args).await {
            assert_eq!(p, format!("PROPS User-Id={USER} Socket-Type=REQ"), "{ctx}");
        }
    }
}

/// pyzmq's authenticators with `CURVE_ALLOW_ANY` accept any of our CURVE clients; refusing our
/// address (tcp) refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_authenticator_curve_allow_any_and_address_deny() {
    let server = fresh_keys();
    for flavour in FLAVOURS {
        for deny in [false, true] {
            let ctx = format!("{flavour} authenticator, CURVE_ALLOW_ANY, 127.0.0.1 denied: {deny}");
            let mut a = args(&["--type", "REP", "--mode", "echo", "--bind", "tcp://127.0.0.1:0"]);
            a.extend(py_curve_server(&server.secret));
            a.extend([opt("--auth", flavour), "--auth-curve-any".to_owned()]);
            if deny {
                a.push(opt("--auth-deny-ip", "127.0.0.1"));
            }
            let (mut peer, ep) = SecPeer::start(a);
            let ours = socket(Req, curve_client(&fresh_keys(), server.public));
            let mut mon = ours.monitor();
            ours.connect(&ep).unwrap();
            if deny {
                let sending = send_in_background(&ours, frames(&["hi"]));
                expect_monitor(&mut mon, &ctx, is_auth_failure).await;
                assert_eq!(
                    peer.expect_seen("EVENT HANDSHAKE_FAILED_AUTH"),
                    "EVENT HANDSHAKE_FAILED_AUTH 400",
                    "{ctx}"
                );
                assert_nothing_received(&ours, Duration::from_millis(100), &ctx).await;
                peer.assert_no_line("MSG ", Duration::ZERO, &ctx);
                sending.abort();
            } else {
                send(&ours, frames(&["hi"])).await;
                assert_eq!(recv(&ours).await.frames(), [&b"hi"[..]], "{ctx}");
            }
            within("close", ours.close()).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Our authenticators deciding on pyzmq clients
// ---------------------------------------------------------------------------------------------------

/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND`.
const ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND: u32 = 0x1000_0001;

/// What pyzmq prints when our server refuses its credentials.
#[derive(Debug, Clone, Copy)]
enum PyRefusal {
    /// `HANDSHAKE_FAILED_AUTH 400`: libzmq read our ERROR "400" as the ZAP verdict (CURVE).
    Auth400,
    /// `HANDSHAKE_FAILED_PROTOCOL` (unexpected command): libzmq 4.3.5's PLAIN client recognises
    /// only its own misspelled ERROR (`\x5eRROR`: in the C literal `"\x05ERROR"` the hex escape
    /// swallows the `E`), not RFC 23's, which we send (docs/differences.md, "PLAIN ERROR spelling").
    /// It is refused all the same.
    UnexpectedCommand,
}

/// Our REP server (`server` options) and two pyzmq REQ clients (`good_args`, `bad_args`: their
/// mechanism options). The good client's request reaches us and our reply reaches it; the bad
/// client's never reaches us, our monitor reports the refusal (ZAP status 400), and pyzmq reports a
/// failed handshake (`refusal`). Over tcp and ipc, with us binding (both clients connect) and with
/// pyzmq binding (our REP connects to both).
async fn we_decide(
    ctx: &str,
    server: &Options,
    good_args: &[String],
    bad_args: &[String],
    refusal: PyRefusal,
) {
    let (ctx, server, good_args, bad_args) =
        (ctx.to_owned(), server.clone(), good_args.to_vec(), bad_args.to_vec());
    each(SETUPS, move |(kind, side)| {
        let (ctx, server, good_args, bad_args) =
            (ctx.clone(), server.clone(), good_args.clone(), bad_args.clone());
        async move {
            let ctx = format!("{ctx} over {kind:?}, {side:?}");
            let dir = TempDir::new("ours");
            let ours = socket(Rep, server.clone());
            let mut mon = ours.monitor();
            let client = |extra: &[String], where_: &str, ep: &str| {
                let mut a = args(&["--type", "REQ", where_, ep]);
                a.extend(extra.iter().cloned());
                a
            };
            let (mut good, mut bad) = match side {
                Side::WeBind => {
                    let ep = within("bind", ours.bind(&our_bind_endpoint(kind, &dir, "us"))).await.unwrap();
                    let good = SecPeer::start(client(&good_args, "--connect", &ep)).0;
                    let bad = SecPeer::start(client(&bad_args, "--connect", &ep)).0;
                    (good, bad)
                }
                Side::TheyBind => {
                    let (good, good_ep) =
                        SecPeer::start(client(&good_args, "--bind", &kind.bind_endpoint(&dir, "good")));
                    let (bad, bad_ep) =
                        SecPeer::start(client(&bad_args, "--bind", &kind.bind_endpoint(&dir, "bad")));
                    ours.connect(&bad_ep).unwrap();
                    ours.connect(&good_ep).unwrap();
                    (good, bad)
                }
            };
            bad.send(&[b"from the bad one"]);
            good.send(&[b"from the good one"]);
            let got = recv(&ours).await;
            assert_eq!(got.frames(), [&b"from the good one"[..]], "{ctx}");
            send(&ours, frames(&["reply"])).await;
            assert_eq!(good.expect_msg(STEP), reprs(&[b"reply"]), "{ctx}");
            expect_monitor(&mut mon, &format!("{ctx}: our refusal"), is_auth_failure).await;
            let expected = match refusal {
                PyRefusal::Auth400 => "EVENT HANDSHAKE_FAILED_AUTH 400".to_owned(),
                PyRefusal::UnexpectedCommand => {
                    format!("EVENT HANDSHAKE_FAILED_PROTOCOL {ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND}")
                }
            };
            assert_eq!(bad.expect_seen("EVENT HANDSHAKE_FAILED"), expected, "{ctx}");
            assert_nothing_received(&ours, Duration::from_millis(100), &format!("{ctx}: the bad client"))
                .await;
            bad.assert_no_line("EVENT HANDSHAKE_SUCCEEDED", Duration::ZERO, &ctx);
            bad.assert_no_line("MSG ", Duration::ZERO, &ctx);
            assert!(!good.has_seen("EVENT HANDSHAKE_FAILED"), "{ctx}\n{}", good.transcript());
            within("close", ours.close()).await;
        }
    })
    .await;
}

/// Our `AuthPolicy` allows the pyzmq CURVE client whose key it lists and refuses another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_policy_curve_allow_list() {
    let server = fresh_keys();
    let good = fresh_keys();
    let policy = AuthPolicy::new().allow_curve_key(good.public).into_shared();
    we_decide(
        "our AuthPolicy, CURVE key list",
        &curve_server(&server, Some(policy)),
        &py_curve_client(&good.secret, server.public),
        &py_curve_client(&fresh_keys().secret, server.public),
        PyRefusal::Auth400,
    )
    .await;
}

/// Our `AuthPolicy` allows the pyzmq CURVE clients whose certificates (written by pyzmq's
/// `zmq.auth.create_certificates`) are in a directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_policy_curve_certificates_from_pyzmq() {
    let server = fresh_keys();
    let certs = TempDir::new("pycerts");
    let out = std::process::Command::new(zmtp_interop::python())
        .arg("-c")
        .arg("import sys, zmq.auth; zmq.auth.create_certificates(sys.argv[1], 'client')")
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // pyzmq writes its secret certificates with the umask's mode (0644 here), which
    // `cert::load_secret` rightly refuses: read it as a plain certificate.
    let good = zmtp::cert::Certificate::load(certs.path().join("client.key_secret")).unwrap();
    let good_secret = good.secret.clone().unwrap();
    // Only the public certificate is an allowed key: move the secret one out of the directory.
    let secret_dir = TempDir::new("pysecret");
    std::fs::rename(certs.path().join("client.key_secret"), secret_dir.path().join("client.key_secret"))
        .unwrap();
    let policy = AuthPolicy::new().curve_certificates(certs.path()).unwrap().into_shared();
    we_decide(
        "our AuthPolicy, pyzmq's certificates",
        &curve_server(&server, Some(policy)),
        &py_curve_client(&good_secret, server.public),
        &py_curve_client(&fresh_keys().secret, server.public),
        PyRefusal::Auth400,
    )
    .await;
}

/// Our `AuthPolicy` checks pyzmq PLAIN clients' passwords (the refused client reports an unexpected
/// command: see [`PyRefusal::UnexpectedCommand`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_policy_plain_passwords() {
    let (options, good) = security(Mech::Plain, true);
    we_decide(
        "our AuthPolicy, PLAIN",
        &options,
        &good,
        &py_plain_client(USER, "wrong"),
        PyRefusal::UnexpectedCommand,
    )
    .await;
}

/// Our `AuthPolicy` by address (tcp): with 127.0.0.1 allowed the pyzmq client gets in; with
/// 127.0.0.0/8 denied it is refused (any key allowed in both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_policy_curve_addresses() {
    let server = fresh_keys();
    let client = fresh_keys();
    for deny in [false, true] {
        let ctx = format!("our AuthPolicy, any key, 127.0.0.0/8 denied: {deny}");
        let policy = if deny {
            AuthPolicy::new().deny("127.0.0.0/8".parse().unwrap())
        } else {
            AuthPolicy::new().allow("127.0.0.1".parse().unwrap())
        };
        let ours = socket(Rep, curve_server(&server, Some(policy.allow_any_curve_key().into_shared())));
        let mut mon = ours.monitor();
        let ep = within("bind", ours.bind("tcp://127.0.0.1:*")).await.unwrap();
        let mut a = args(&["--type", "REQ", "--connect", &ep, "--send", &hex(b"hi")]);
        a.extend(py_curve_client(&client.secret, server.public));
        let (mut peer, _) = SecPeer::start(a);
        if deny {
            assert_eq!(
                peer.expect_seen("EVENT HANDSHAKE_FAILED_AUTH"),
                "EVENT HANDSHAKE_FAILED_AUTH 400",
                "{ctx}"
            );
            expect_monitor(&mut mon, &ctx, is_auth_failure).await;
            assert_nothing_received(&ours, Duration::from_millis(100), &ctx).await;
        } else {
            assert_eq!(recv(&ours).await.frames(), [&b"hi"[..]], "{ctx}");
            send(&ours, frames(&["ho"])).await;
            assert_eq!(peer.expect_msg(STEP), reprs(&[b"ho"]), "{ctx}");
        }
        within("close", ours.close()).await;
    }
}

/// A closure as our authenticator: it is asked with what the pyzmq clients presented (their CURVE
/// keys, their address, our ZAP domain), and its verdicts hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_closure_authenticator_sees_pyzmq_credentials() {
    let server = fresh_keys();
    let good = fresh_keys();
    let bad = fresh_keys();
    let (tx, mut requests) = tokio::sync::mpsc::unbounded_channel::<AuthRequest>();
    let good_public = good.public;
    let authenticator = SharedAuthenticator::new(move |req: AuthRequest| {
        let tx = tx.clone();
        async move {
            let allowed =
                matches!(&req.credentials, Credentials::Curve { public_key } if *public_key == good_public);
            let _ = tx.send(req);
            if allowed {
                AuthReply::allow("good")
            } else {
                AuthReply::deny(400, "not on the list")
            }
        }
    });
    let options =
        Options { zap_domain: "test-domain".to_owned(), ..curve_server(&server, Some(authenticator)) };
    we_decide(
        "our closure authenticator",
        &options,
        &py_curve_client(&good.secret, server.public),
        &py_curve_client(&bad.secret, server.public),
        PyRefusal::Auth400,
    )
    .await;
    let mut seen = Vec::new();
    while let Ok(req) = requests.try_recv() {
        seen.push(req);
    }
    for req in &seen {
        assert_eq!(req.domain, "test-domain", "{req:?}");
        let Credentials::Curve { public_key } = &req.credentials else { panic!("not CURVE: {req:?}") };
        assert!(*public_key == good.public || *public_key == bad.public, "{req:?}");
    }
    for key in [good.public, bad.public] {
        assert!(
            seen.iter()
                .any(|r| matches!(&r.credentials, Credentials::Curve { public_key } if *public_key == key)),
            "{key:?} never asked about: {seen:?}"
        );
    }
    assert!(seen.iter().any(|r| r.address == "127.0.0.1"), "tcp requests carry the peer's IP: {seen:?}");
}

// ---------------------------------------------------------------------------------------------------
// Wrong keys, wrong passwords, wrong mechanisms
// ---------------------------------------------------------------------------------------------------

/// Our CURVE client with the wrong server key (not the pyzmq server's): the server cannot open our
/// HELLO (libzmq reports `HANDSHAKE_FAILED_PROTOCOL` with `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`),
/// nothing is delivered, and our monitor reports a failed handshake. Over tcp and ipc, both sides
/// binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_with_a_wrong_server_key() {
    let wrong = fresh_keys().public;
    each(SETUPS, move |(kind, side)| async move {
        let ctx = format!("our client, wrong server key, over {kind:?}, {side:?}");
        let mut py_args = args(&["--mode", "echo"]);
        py_args.extend(py_curve_server(&server_secret()));
        let mut l = link(kind, side, socket(Req, curve_client(&fresh_keys(), wrong)), "REP", &py_args).await;
        let sending = send_in_background(&l.ours, frames(&["hello?"]));
        expect_monitor(&mut l.monitor, &ctx, is_handshake_failure).await;
        let expected = format!("EVENT HANDSHAKE_FAILED_PROTOCOL {ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC}");
        assert_eq!(l.peer.expect_seen("EVENT HANDSHAKE_FAILED"), expected, "{ctx}");
        assert_nothing_received(&l.ours, Duration::from_millis(100), &ctx).await;
        l.peer.assert_no_line("MSG ", Duration::ZERO, &ctx);
        l.peer.assert_no_line("EVENT HANDSHAKE_SUCCEEDED", Duration::ZERO, &ctx);
        sending.abort();
        l.close().await;
    })
    .await;
}

/// A pyzmq CURVE client with the wrong server key (not ours): we cannot open its HELLO (our monitor
/// reports a cryptographic failure), nothing is delivered. Over tcp and ipc, both sides binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_client_with_a_wrong_server_key() {
    let wrong = fresh_keys().public;
    each(SETUPS, move |(kind, side)| async move {
        let ctx = format!("pyzmq client, wrong server key, over {kind:?}, {side:?}");
        let (options, _) = security(Mech::Curve, true);
        let mut py_args = py_curve_client(&fresh_keys().secret, wrong);
        py_args.push(opt("--send", &hex(b"hello?")));
        let mut l = link(kind, side, socket(Rep, options), "REQ", &py_args).await;
        expect_monitor(&mut l.monitor, &ctx, is_crypto_failure).await;
        assert_nothing_received(&l.ours, Duration::from_millis(100), &ctx).await;
        l.peer.assert_no_line("EVENT HANDSHAKE_SUCCEEDED", Duration::ZERO, &ctx);
        let events = drain_events(&mut l.monitor);
        assert!(!events.iter().any(|e| is_handshake_success(&e.kind)), "{ctx}: {events:#?}");
        l.close().await;
    })
    .await;
}

/// Our PLAIN client with a wrong password, a pyzmq PLAIN server with an authenticator: nothing is
/// delivered, our monitor reports the refusal. (The authenticator tests above do the same with a
/// good client alongside.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_plain_client_with_a_wrong_password() {
    each(SETUPS, move |(kind, side)| async move {
        let ctx = format!("our PLAIN client, wrong password, over {kind:?}, {side:?}");
        let py_args = vec![
            "--mode".to_owned(),
            "echo".to_owned(),
            "--plain-server".to_owned(),
            opt("--auth", "thread"),
            opt("--auth-plain", "admin=secret"),
        ];
        let mut l = link(kind, side, socket(Req, plain_client(USER, "guess")), "REP", &py_args).await;
        let sending = send_in_background(&l.ours, frames(&["let me in"]));
        expect_monitor(&mut l.monitor, &ctx, is_auth_failure).await;
        assert_eq!(l.peer.expect_seen("EVENT HANDSHAKE_FAILED"), "EVENT HANDSHAKE_FAILED_AUTH 400", "{ctx}");
        assert_nothing_received(&l.ours, Duration::from_millis(100), &ctx).await;
        l.peer.assert_no_line("MSG ", Duration::ZERO, &ctx);
        sending.abort();
        l.close().await;
    })
    .await;
}

/// A pyzmq PLAIN client with a wrong password, our PLAIN server with an `AuthPolicy`: nothing is
/// delivered, our monitor reports the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_plain_client_with_a_wrong_password() {
    each(SETUPS, move |(kind, side)| async move {
        let ctx = format!("pyzmq PLAIN client, wrong password, over {kind:?}, {side:?}");
        let (options, _) = security(Mech::Plain, true);
        let mut py_args = py_plain_client(USER, "guess");
        py_args.push(opt("--send", &hex(b"let me in")));
        let mut l = link(kind, side, socket(Rep, options), "REQ", &py_args).await;
        expect_monitor(&mut l.monitor, &ctx, is_auth_failure).await;
        let expected =
            format!("EVENT HANDSHAKE_FAILED_PROTOCOL {ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND}");
        assert_eq!(
            l.peer.expect_seen("EVENT HANDSHAKE_FAILED"),
            expected,
            "{ctx}: see PyRefusal::UnexpectedCommand"
        );
        assert_nothing_received(&l.ours, Duration::from_millis(100), &ctx).await;
        l.peer.assert_no_line("EVENT HANDSHAKE_SUCCEEDED", Duration::ZERO, &ctx);
        l.close().await;
    })
    .await;
}

/// Mechanism mismatches fail the handshake on both sides and deliver nothing: our CURVE client and a
/// pyzmq NULL server, our NULL client and a pyzmq CURVE server, our CURVE server and a pyzmq PLAIN
/// client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mechanism_mismatch_delivers_nothing() {
    let (curve_client_opts, _) = security(Mech::Curve, false);
    let (curve_server_opts, _) = security(Mech::Curve, true);
    let null = Options { linger: Some(Duration::ZERO), ..Options::default() };
    let mut py_curve = args(&["--mode", "echo"]);
    py_curve.extend(py_curve_server(&server_secret()));
    let mut py_plain = py_plain_client(USER, PASSWORD);
    py_plain.push(opt("--send", &hex(b"hi")));
    let cases = [
        ("our CURVE client, pyzmq NULL server", Req, curve_client_opts, "REP", args(&["--mode", "echo"])),
        ("our NULL client, pyzmq CURVE server", Req, null, "REP", py_curve),
        ("our CURVE server, pyzmq PLAIN client", Rep, curve_server_opts, "REQ", py_plain),
    ];
    let runs = cases.into_iter().flat_map(|case| {
        [(Kind::Tcp, Side::TheyBind), (Kind::Ipc, Side::WeBind)]
            .map(|(kind, side)| (case.clone(), kind, side))
    });
    each(runs, |((what, ours, options, theirs, py_args), kind, side)| async move {
        let ctx = format!("{what} over {kind:?}, {side:?}");
        let mut l = link(kind, side, socket(ours, options), theirs, &py_args).await;
        let sending = (ours == Req).then(|| send_in_background(&l.ours, frames(&["hi"])));
        expect_monitor(&mut l.monitor, &ctx, is_handshake_failure).await;
        l.peer.expect_seen("EVENT HANDSHAKE_FAILED");
        assert_nothing_received(&l.ours, Duration::from_millis(100), &ctx).await;
        l.peer.assert_no_line("MSG ", Duration::ZERO, &ctx);
        l.peer.assert_no_line("EVENT HANDSHAKE_SUCCEEDED", Duration::ZERO, &ctx);
        if let Some(s) = sending {
            s.abort();
        }
        l.close().await;
    })
    .await;
}
