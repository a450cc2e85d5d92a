//! Shared pieces of the CURVE and PLAIN targets (`curve_server`, `curve_client`, `plain`) and of the
//! seed generator (`examples/make_seeds_secure.rs`): fixed keys, deterministic handshake randomness,
//! a real handshake between two connections ([`run_pair`]), and the harness ([`run`]) that feeds one
//! connection the fuzz input as its peer's byte stream and checks invariants.
//!
//! # Why the seeds replay
//!
//! The zmtp crate is built with its `test-rng` feature: CURVE randomness (transient keys, cookie key,
//! nonces) comes from a per-thread generator that [`random::seed`] resets. Every fuzz input starts
//! with [`CLIENT_RNG_SEED`] (client role) or [`SERVER_RNG_SEED`] (server role), and [`run_pair`] runs
//! each side in a thread of its own seeded the same way, so a side draws exactly the numbers it
//! draws in a target. A recorded server stream therefore holds a WELCOME and READY that a target's
//! client accepts, and a recorded client stream a HELLO and INITIATE that a target's server accepts:
//! coverage reaches MESSAGE decoding. (Two seeds, not one: with one, both transient keys would be
//! the same key, and a mix-up of the two in the library would go unnoticed.)
//!
//! # Oracles that need no decryption
//!
//! libFuzzer cannot forge a Poly1305 tag, so a handshake can only get further than the seeds allow
//! with bytes copied from the seeds. With the randomness fixed there is exactly one valid HELLO for
//! our server key (its signature box is made with the client's transient key, from
//! [`CLIENT_RNG_SEED`]), one valid WELCOME for our client, and one cookie: [`curve_reference`]
//! computes them once with a real handshake. So:
//! - a CURVE server sends WELCOME only if the input holds the valid HELLO (RFC 26: none for a bad
//!   HELLO), and READY, `Authenticate` or `HandshakeComplete` only if it also holds the cookie;
//!   `Authenticate` names one of the client keys the seeds use;
//! - a CURVE client sends INITIATE (with the reference cookie) and completes only if the input
//!   holds the valid WELCOME; its HELLO is the reference HELLO, octet for octet;
//! - after its handshake a CURVE side sends only MESSAGE frames (outer flags clear, short nonces
//!   consecutive from 2 (server) or 3 (client)), never a command in clear text;
//! - a client (CURVE or PLAIN) never sends ERROR; a PLAIN server asks about exactly the user name and
//!   password of a HELLO in the input.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::mechanism::random;
use zmtp::proto::mechanism::{MESSAGE_OVERHEAD, MESSAGE_PREFIX};
use zmtp::proto::{
    AuthReply, Command, Connection, ConnectionConfig, ConnectionError, Credentials, CurvePublicKey,
    CurveSecretKey, Event, FrameHeader, Greeting, HeartbeatConfig, Limits, MechanismName, Metadata, Password,
    Security, SendError, SocketType, Version,
};
use zmtp::Msg;

use crate::{alloc, Rng};

/// The server's long-term secret key in every CURVE target and seed.
pub const SERVER_SECRET: [u8; 32] = [0x3c; 32];
/// The client's long-term secret key in the `curve_client` target and in most seeds.
pub const CLIENT_SECRET: [u8; 32] = [0xc3; 32];
/// A second client key, for seeds whose client an authenticator would not know.
pub const OTHER_CLIENT_SECRET: [u8; 32] = [0x77; 32];
/// A server key no target uses: a HELLO made for it must be refused.
pub const WRONG_SERVER_SECRET: [u8; 32] = [0x99; 32];
/// The test generator's seed for a CURVE client, in a target and in [`run_pair`].
pub const CLIENT_RNG_SEED: u64 = 0xc11e_0000_0000_0001;
/// The test generator's seed for a CURVE server, in a target and in [`run_pair`].
pub const SERVER_RNG_SEED: u64 = 0x5e4e_0000_0000_0002;

/// The public key of a fixed secret.
pub fn public_of(secret: [u8; 32]) -> CurvePublicKey {
    CurveSecretKey::from_bytes(secret).public_key()
}

/// CURVE server credentials: [`SERVER_SECRET`].
pub fn curve_server() -> Security {
    let secret = CurveSecretKey::from_bytes(SERVER_SECRET);
    Security::CurveServer { public: secret.public_key(), secret }
}

/// CURVE client credentials: `client`'s key pair, talking to the server whose secret is `server`.
pub fn curve_client(client: [u8; 32], server: [u8; 32]) -> Security {
    let secret = CurveSecretKey::from_bytes(client);
    Security::CurveClient { public: secret.public_key(), secret, server: public_of(server) }
}

/// The PLAIN credentials a `plain` client may be given (picked by the input's chunking seed).
pub fn plain_credentials(index: usize) -> (Bytes, Bytes) {
    match index % 4 {
        0 => (Bytes::from_static(b"admin"), Bytes::from_static(b"secret")),
        1 => (Bytes::new(), Bytes::new()),
        2 => (Bytes::from(vec![b'u'; 255]), Bytes::from(vec![b'p'; 255])),
        _ => (Bytes::from_static(b"\x00\xff user"), Bytes::from_static(b"\x00")),
    }
}

/// A PLAIN HELLO command body (name included) for `username` and `password`.
pub fn plain_hello_body(username: &[u8], password: &[u8]) -> Vec<u8> {
    let mut body = b"\x05HELLO".to_vec();
    body.push(username.len() as u8);
    body.extend_from_slice(username);
    body.push(password.len() as u8);
    body.extend_from_slice(password);
    body
}

// ----- a real handshake, each side in its own thread -----

/// What one side does once its handshake is complete.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Messages to send.
    pub messages: Vec<Msg>,
    /// Subscriptions (true) and cancels (false) to send.
    pub subscriptions: Vec<(bool, Bytes)>,
    /// Fire the heartbeat timer once after the rest (the config needs a heartbeat interval).
    pub ping: bool,
    /// The answer to `Event::Authenticate` (`AuthReply::allow("")` when `None`).
    pub auth: Option<AuthReply>,
}

/// One side of [`run_pair`].
pub struct Side {
    /// Its configuration.
    pub config: ConnectionConfig,
    /// Its thread's test generator seed ([`CLIENT_RNG_SEED`] or [`SERVER_RNG_SEED`] to replay in a
    /// target).
    pub rng_seed: u64,
    /// What it sends after the handshake.
    pub script: Script,
}

/// Everything each side of [`run_pair`] sent and reported.
#[derive(Debug)]
pub struct Transcript {
    /// The client's bytes, greeting first.
    pub client_out: Vec<u8>,
    /// The server's bytes, greeting first.
    pub server_out: Vec<u8>,
    /// The client's events.
    pub client_events: Vec<Event>,
    /// The server's events.
    pub server_events: Vec<Event>,
}

fn side_worker(
    side: Side,
    now: Instant,
    input: Receiver<Vec<u8>>,
    output: Sender<Vec<u8>>,
) -> (Vec<u8>, Vec<Event>) {
    random::seed(side.rng_seed);
    let Side { config, script, .. } = side;
    let interval = config.heartbeat.interval;
    let mut conn = Connection::new(config, now);
    let mut sent = Vec::new();
    let mut events = Vec::new();
    while let Ok(bytes) = input.recv() {
        conn.handle_input(now, &bytes);
        while let Some(ev) = conn.poll_event() {
            match &ev {
                Event::Authenticate(_) => {
                    conn.handle_auth_reply(script.auth.clone().unwrap_or_else(|| AuthReply::allow("")))
                }
                Event::HandshakeComplete(_) => {
                    for m in &script.messages {
                        conn.send_message(m.clone()).expect("scripted message");
                    }
                    for (subscribe, topic) in &script.subscriptions {
                        let r = if *subscribe {
                            conn.send_subscribe(topic.clone())
                        } else {
                            conn.send_cancel(topic.clone())
                        };
                        r.expect("scripted subscription");
                    }
                    if let (true, Some(interval)) = (script.ping, interval) {
                        conn.handle_timeout(now + interval);
                    }
                }
                _ => {}
            }
            events.push(ev);
        }
        let out = conn.take_transmit();
        sent.extend_from_slice(&out);
        if output.send(out).is_err() {
            break;
        }
    }
    (sent, events)
}

/// Runs a handshake (and the scripts) between `client` and `server`, each in a thread of its own so
/// that each draws from its own test generator exactly as a target does.
pub fn run_pair(client: Side, server: Side) -> Transcript {
    let now = Instant::now();
    std::thread::scope(|s| {
        let (to_client, client_in) = channel::<Vec<u8>>();
        let (client_tx, from_client) = channel::<Vec<u8>>();
        let (to_server, server_in) = channel::<Vec<u8>>();
        let (server_tx, from_server) = channel::<Vec<u8>>();
        let c = s.spawn(move || side_worker(client, now, client_in, client_tx));
        let sv = s.spawn(move || side_worker(server, now, server_in, server_tx));
        let mut for_client = Vec::new();
        for _ in 0..64 {
            to_client.send(for_client).expect("client thread");
            let for_server = from_client.recv().expect("client thread");
            let quiet = for_server.is_empty();
            to_server.send(for_server).expect("server thread");
            for_client = from_server.recv().expect("server thread");
            if quiet && for_client.is_empty() {
                break;
            }
        }
        drop((to_client, to_server));
        let (client_out, client_events) = c.join().expect("client thread");
        let (server_out, server_events) = sv.join().expect("server thread");
        Transcript { client_out, server_out, client_events, server_events }
    })
}

/// Splits a stream after its 64-octet greeting into whole frames (header included); a partial frame
/// at the end is left out.
pub fn frames(stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stream.get(64..).unwrap_or_default();
    while let Ok(Some((h, n))) = FrameHeader::decode(rest) {
        let Some(end) = usize::try_from(h.len).ok().and_then(|l| l.checked_add(n)) else { break };
        if end > rest.len() {
            break;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// The body of a whole frame (its header stripped).
pub fn frame_body(frame: &[u8]) -> &[u8] {
    match FrameHeader::decode(frame) {
        Ok(Some((_, n))) => &frame[n..],
        _ => &[],
    }
}

/// The only valid HELLO, WELCOME and cookie there are for the fixed keys and generator seeds.
#[derive(Debug)]
pub struct CurveReference {
    /// The client's HELLO command body (name included, 200 octets).
    pub hello_body: Vec<u8>,
    /// The server's WELCOME command body (name included, 168 octets).
    pub welcome_body: Vec<u8>,
    /// The cookie at the front of INITIATE's data (96 octets).
    pub cookie: Vec<u8>,
}

/// The reference handshake, run once per process.
pub fn curve_reference() -> &'static CurveReference {
    static REFERENCE: OnceLock<CurveReference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let t = run_pair(
            Side {
                config: ConnectionConfig::new(SocketType::Req)
                    .security(curve_client(CLIENT_SECRET, SERVER_SECRET)),
                rng_seed: CLIENT_RNG_SEED,
                script: Script::default(),
            },
            Side {
                config: ConnectionConfig::new(SocketType::Rep).security(curve_server()),
                rng_seed: SERVER_RNG_SEED,
                script: Script::default(),
            },
        );
        assert!(t.client_events.iter().any(|e| matches!(e, Event::HandshakeComplete(_))), "{t:?}");
        assert!(t.server_events.iter().any(|e| matches!(e, Event::HandshakeComplete(_))), "{t:?}");
        let (c, s) = (frames(&t.client_out), frames(&t.server_out));
        let hello_body = frame_body(c[0]).to_vec();
        let initiate = frame_body(c[1]);
        let welcome_body = frame_body(s[0]).to_vec();
        assert!(hello_body.starts_with(b"\x05HELLO") && hello_body.len() == 200);
        assert!(initiate.starts_with(b"\x08INITIATE"));
        assert!(welcome_body.starts_with(b"\x07WELCOME") && welcome_body.len() == 168);
        CurveReference { hello_body, welcome_body, cookie: initiate[9..9 + 96].to_vec() }
    })
}

// ----- the harness -----

/// The connection a target runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A CURVE server with [`SERVER_SECRET`].
    CurveServer,
    /// A CURVE client with [`CLIENT_SECRET`], talking to [`SERVER_SECRET`]'s server.
    CurveClient,
    /// A PLAIN server.
    PlainServer,
    /// A PLAIN client with one of [`plain_credentials`].
    PlainClient,
}

impl Role {
    fn is_server(self) -> bool {
        matches!(self, Role::CurveServer | Role::PlainServer)
    }

    fn is_curve(self) -> bool {
        matches!(self, Role::CurveServer | Role::CurveClient)
    }

    fn mechanism(self) -> MechanismName {
        if self.is_curve() {
            MechanismName::CURVE
        } else {
            MechanismName::PLAIN
        }
    }

    /// The handshake commands this side sends, in order.
    fn handshake_commands(self) -> [&'static [u8]; 2] {
        if self.is_server() {
            [b"WELCOME", b"READY"]
        } else {
            [b"HELLO", b"INITIATE"]
        }
    }

    /// The short nonce of this side's first MESSAGE (libzmq's: the server's READY is 1, the client's
    /// HELLO 1 and INITIATE 2).
    fn first_message_nonce(self) -> u64 {
        if self.is_server() {
            2
        } else {
            3
        }
    }
}

/// The choices a target takes from its input's first octet.
#[derive(Clone, Copy, Debug, Default)]
pub struct Control {
    /// Our socket type: index into `SocketType::ALL` (mod 11).
    pub type_index: u8,
    /// `.authenticate(true)` (clients get it too: it must change nothing for them).
    pub authenticate: bool,
    /// The answer to `Event::Authenticate`: allow, or deny (status picked by the chunking seed).
    pub allow: bool,
    /// Feed libzmq's fuzzer way (greeting / handshake command / handshake command / rest) rather
    /// than in random chunks.
    pub libzmq_split: bool,
}

impl Control {
    /// `curve_server` and `curve_client`: bits 0-3 socket type, bit 4 authenticate, bit 5 allow,
    /// bit 7 libzmq's split.
    pub fn curve(octet: u8) -> Control {
        Control {
            type_index: octet & 0x0f,
            authenticate: octet & 0x10 != 0,
            allow: octet & 0x20 != 0,
            libzmq_split: octet & 0x80 != 0,
        }
    }

    /// `plain`: bits 0-3 socket type, bit 4 server (else client), bit 5 authenticate, bit 6 allow,
    /// bit 7 libzmq's split.
    pub fn plain(octet: u8) -> (Role, Control) {
        let role = if octet & 0x10 != 0 { Role::PlainServer } else { Role::PlainClient };
        let control = Control {
            type_index: octet & 0x0f,
            authenticate: octet & 0x20 != 0,
            allow: octet & 0x40 != 0,
            libzmq_split: octet & 0x80 != 0,
        };
        (role, control)
    }
}

/// Heap allowed per input octet, and on top of that (as `connection_full`).
const BYTES_PER_INPUT_BYTE: usize = 4;
const SLACK: usize = 256 * 1024;

/// Statuses a deny may carry (anything but 200 refuses).
const DENY_STATUSES: [u16; 6] = [400, 300, 500, 0, 201, u16::MAX];

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Our configuration for `role`.
pub fn config(role: Role, control: &Control, rng: &mut Rng, plain: &(Bytes, Bytes)) -> ConnectionConfig {
    let ours = SocketType::ALL[usize::from(control.type_index) % SocketType::ALL.len()];
    let security = match role {
        Role::CurveServer => curve_server(),
        Role::CurveClient => curve_client(CLIENT_SECRET, SERVER_SECRET),
        Role::PlainServer => Security::PlainServer,
        Role::PlainClient => {
            Security::PlainClient { username: plain.0.clone(), password: Password::new(plain.1.clone()) }
        }
    };
    let mut cfg = ConnectionConfig::new(ours).security(security).authenticate(control.authenticate);
    if rng.below(8) == 0 {
        cfg = cfg.limits(Limits {
            max_frame_size: 1 + rng.below(512),
            max_message_size: 1 + rng.below(2048),
            max_frames_per_message: 1 + rng.below(16) as u32,
            max_command_size: 64 + rng.below(512),
        });
    }
    if rng.below(4) == 0 {
        cfg = cfg.heartbeat(HeartbeatConfig {
            interval: Some(Duration::from_millis(1 + rng.below(5_000))),
            timeout: (rng.below(2) == 0).then(|| Duration::from_millis(1 + rng.below(10_000))),
            ttl: (rng.below(2) == 0).then(|| Duration::from_millis(rng.below(100_000))),
        });
    }
    if rng.below(8) == 0 {
        cfg = cfg.version(Version::V3_0);
    }
    if rng.below(4) == 0 {
        cfg = cfg.handshake_timeout(None);
    }
    if rng.below(4) == 0 {
        cfg = cfg.identity(Bytes::from_static(b"fuzz-id")).expect("valid identity");
    }
    cfg
}

/// libzmq's split: the greeting (64), the first handshake command (`second` octets, or the frame its
/// header announces), the next frame (or `fallback` octets if its header does not decode), the rest.
pub fn libzmq_chunks(stream: &[u8], second: Option<usize>, fallback: usize) -> Vec<&[u8]> {
    let next_frame = |rest: &[u8], otherwise: usize| match FrameHeader::decode(rest) {
        Ok(Some((h, n))) => usize::try_from(h.len).ok().and_then(|l| l.checked_add(n)).unwrap_or(usize::MAX),
        _ => otherwise,
    };
    let mut chunks = Vec::with_capacity(4);
    let mut rest = stream;
    let sizes = [Some(64), second, None];
    for size in sizes {
        if rest.is_empty() {
            break;
        }
        let n = size.unwrap_or_else(|| next_frame(rest, fallback)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
    }
    if !rest.is_empty() {
        chunks.push(rest);
    }
    chunks
}

struct Harness<'a> {
    conn: Connection,
    rng: Rng,
    role: Role,
    control: Control,
    /// The peer's whole stream, for the oracles.
    stream: &'a [u8],
    reference: Option<&'static CurveReference>,
    /// The HELLO body a PLAIN client must send.
    plain_hello: Vec<u8>,
    elapsed: Duration,
    handshake_done: bool,
    closed: bool,
    deliveries: usize,
    /// `Event::Authenticate` received and not answered: feeds to wait before answering.
    pending_auth: Option<u32>,
    asked: usize,
    /// Our answer, once given to a connection that waited for it.
    answer: Option<AuthReply>,
    /// After a deny, the status the next event (Closed) must carry.
    expect_auth_failure: Option<u16>,
    // Outbound state.
    greeting_pending: bool,
    handshake_sent: usize,
    errors_sent: usize,
    next_nonce: u64,
}

impl Harness<'_> {
    fn now(&self) -> Instant {
        epoch() + self.elapsed
    }

    fn reference(&self) -> &'static CurveReference {
        self.reference.expect("CURVE role has a reference")
    }

    /// The input can have passed CURVE's HELLO check only if it holds the one valid HELLO.
    fn assert_valid_hello_in_input(&self, what: &str) {
        assert!(
            contains(self.stream, &self.reference().hello_body),
            "{what} without the valid HELLO in the input"
        );
    }

    /// ... and INITIATE's only if it also holds the cookie.
    fn assert_valid_initiate_in_input(&self, what: &str) {
        self.assert_valid_hello_in_input(what);
        assert!(contains(self.stream, &self.reference().cookie), "{what} without the cookie in the input");
    }

    fn assert_valid_welcome_in_input(&self, what: &str) {
        assert!(
            contains(self.stream, &self.reference().welcome_body),
            "{what} without the valid WELCOME in the input"
        );
    }

    fn drain(&mut self) {
        loop {
            while let Some(ev) = self.conn.poll_event() {
                self.on_event(ev);
            }
            if self.pending_auth == Some(0) {
                self.answer_auth();
                continue;
            }
            break;
        }
        assert_eq!(self.conn.is_closed(), self.closed, "is_closed() without a Closed event");
        self.drain_transmit();
    }

    fn on_event(&mut self, ev: Event) {
        assert!(!self.closed, "event after Closed: {ev:?}");
        if let Some(status) = self.expect_auth_failure.take() {
            assert!(
                matches!(&ev, Event::Closed(ConnectionError::AuthenticationFailed { status: s, .. }) if *s == status),
                "after a deny with status {status}: {ev:?}"
            );
        }
        match ev {
            Event::Authenticate(credentials) => {
                assert!(
                    self.role.is_server() && self.control.authenticate,
                    "Authenticate not asked for: {credentials:?}"
                );
                assert!(!self.handshake_done && self.asked == 0, "Authenticate twice or after the handshake");
                assert_eq!(credentials.mechanism(), self.role.mechanism());
                self.asked += 1;
                match (self.role, &credentials) {
                    (Role::CurveServer, Credentials::Curve { public_key }) => {
                        self.assert_valid_initiate_in_input("Authenticate");
                        let known = [public_of(CLIENT_SECRET), public_of(OTHER_CLIENT_SECRET)];
                        assert!(known.contains(public_key), "a client key no seed uses: {public_key:?}");
                    }
                    (Role::PlainServer, Credentials::Plain { username, password }) => {
                        let hello = plain_hello_body(username, password.expose());
                        assert!(contains(self.stream, &hello), "credentials not in the input's HELLO");
                    }
                    (role, other) => panic!("{role:?} asked about {other:?}"),
                }
                self.pending_auth = Some(self.rng.below(3) as u32);
            }
            Event::HandshakeComplete(peer) => {
                assert!(!self.handshake_done, "second HandshakeComplete");
                assert!(self.conn.is_ready(), "HandshakeComplete but not ready");
                assert_eq!(self.conn.peer(), Some(&peer));
                self.handshake_done = true;
                if self.role.is_server() && self.control.authenticate {
                    assert_eq!(self.asked, 1, "completed without asking the authenticator");
                    let answer = self.answer.as_ref().expect("completed before the answer");
                    assert!(answer.is_allowed(), "completed after a deny");
                    assert_eq!(peer.auth.as_ref(), Some(answer));
                } else {
                    assert_eq!(peer.auth, None);
                }
                match self.role {
                    Role::CurveServer => self.assert_valid_initiate_in_input("HandshakeComplete"),
                    Role::CurveClient => self.assert_valid_welcome_in_input("HandshakeComplete"),
                    Role::PlainServer => {
                        assert!(contains(self.stream, b"\x05HELLO") && contains(self.stream, b"\x08INITIATE"))
                    }
                    Role::PlainClient => {
                        assert!(contains(self.stream, b"\x07WELCOME") && contains(self.stream, b"\x05READY"))
                    }
                }
            }
            Event::Message(m) => {
                assert!(self.handshake_done, "message before the handshake");
                assert!(!m.is_empty(), "empty message");
                self.deliveries += 1;
            }
            Event::Subscribe(_) | Event::Cancel(_) => {
                assert!(self.handshake_done, "subscription before the handshake");
                assert!(self.conn.config().socket_type().accepts_subscriptions());
                self.deliveries += 1;
            }
            Event::Closed(e) => {
                self.closed = true;
                assert!(self.conn.is_closed());
                assert!(!self.conn.is_ready());
                assert_eq!(self.conn.poll_timeout(), None);
                if let ConnectionError::AuthenticationFailed { status, .. } = e {
                    assert!(self.answer.as_ref().is_some_and(|a| a.status == status && !a.is_allowed()));
                }
            }
        }
    }

    fn answer_auth(&mut self) {
        self.pending_auth = None;
        let reply = if self.control.allow {
            let mut reply = AuthReply::allow(if self.rng.below(2) == 0 { "" } else { "fuzz-user" });
            if self.rng.below(2) == 0 {
                let mut md = Metadata::new();
                md.insert("X-Fuzz", "1");
                reply.metadata = md;
            }
            reply
        } else {
            let status = DENY_STATUSES[self.rng.below(DENY_STATUSES.len() as u64) as usize];
            AuthReply::deny(status, "denied by the fuzz target")
        };
        let waiting = !self.conn.is_closed();
        self.conn.handle_auth_reply(reply.clone());
        if waiting {
            if !reply.is_allowed() {
                self.expect_auth_failure = Some(reply.status);
            }
            self.answer = Some(reply);
        } else {
            assert_eq!(self.conn.poll_event(), None, "an answer to a closed connection did something");
        }
    }

    /// An answer nobody asked for is ignored: no state change, nothing queued.
    fn maybe_unasked_answer(&mut self) {
        if self.pending_auth.is_some() || self.rng.below(16) != 0 {
            return;
        }
        let before = (self.conn.is_ready(), self.conn.is_closed(), self.conn.transmit().len());
        let reply = if self.rng.below(2) == 0 { AuthReply::allow("x") } else { AuthReply::deny(400, "x") };
        self.conn.handle_auth_reply(reply);
        let after = (self.conn.is_ready(), self.conn.is_closed(), self.conn.transmit().len());
        assert_eq!(before, after, "an unasked authenticator answer changed the connection");
    }

    fn drain_transmit(&mut self) {
        let out = self.conn.take_transmit();
        self.check_outbound(&out);
    }

    fn check_outbound(&mut self, mut out: &[u8]) {
        if self.greeting_pending {
            assert!(out.len() >= 64, "first transmit holds less than a greeting: {} bytes", out.len());
            let g = Greeting::decode(&out[..64]).expect("our greeting decodes").expect("64 octets decode");
            assert_eq!(g.mechanism, self.role.mechanism());
            assert_eq!(g.as_server, self.role.is_server());
            out = &out[64..];
            self.greeting_pending = false;
        }
        while !out.is_empty() {
            assert_eq!(self.errors_sent, 0, "a frame was queued after our ERROR command");
            let (h, n) = FrameHeader::decode(out)
                .expect("our frame header is valid")
                .expect("take_transmit returned a partial frame header");
            let len = usize::try_from(h.len).expect("frame length fits");
            assert!(out.len() - n >= len, "take_transmit returned a partial frame body");
            assert_eq!(h.flags.is_long(), len > 255, "non-canonical frame header {h:?}");
            let body = &out[n..n + len];
            out = &out[n + len..];
            if h.flags.is_command() {
                assert!(!h.flags.has_more(), "a command with MORE");
                self.check_command(body);
            } else {
                self.check_data(h.flags.has_more(), body);
            }
        }
    }

    fn check_command(&mut self, body: &[u8]) {
        let cmd = Command::decode_raw(Bytes::copy_from_slice(body)).expect("our command decodes");
        let name = cmd.name().to_vec();
        let data = &body[1 + name.len()..];
        if name == b"ERROR" {
            assert!(self.role.is_server(), "a client sent ERROR");
            let Ok(Command::Error { reason }) = Command::decode(Bytes::copy_from_slice(body)) else {
                panic!("our ERROR does not decode");
            };
            assert!(reason.len() <= 255);
            // RFC 26 has every command after the handshake boxed: a CURVE server checks the client's
            // metadata before its READY (`seeds/curve_server/incompatible_pub_to_rep`), so an ERROR
            // never follows READY in clear text.
            if self.role.is_curve() && self.handshake_sent == 2 {
                panic!("CURVE server sent ERROR {reason:?} in clear text after its READY");
            }
            self.errors_sent += 1;
            return;
        }
        if self.handshake_sent < 2 {
            let expected = self.role.handshake_commands()[self.handshake_sent];
            assert_eq!(name, expected, "handshake command {} out of order", self.handshake_sent);
            self.handshake_sent += 1;
            match (self.role, &name[..]) {
                (Role::CurveServer, b"WELCOME") => {
                    assert_eq!(data.len(), 160, "WELCOME is 168 octets");
                    self.assert_valid_hello_in_input("WELCOME");
                }
                (Role::CurveServer, b"READY") => {
                    assert!(data.len() >= 24, "READY under 30 octets");
                    self.assert_valid_initiate_in_input("READY");
                }
                (Role::CurveClient, b"HELLO") => {
                    assert_eq!(body, &self.reference().hello_body[..], "HELLO is not the reference HELLO");
                }
                (Role::CurveClient, b"INITIATE") => {
                    self.assert_valid_welcome_in_input("INITIATE");
                    assert_eq!(&data[..96], &self.reference().cookie[..], "INITIATE carries another cookie");
                }
                (Role::PlainServer, b"WELCOME") => {
                    assert!(data.is_empty(), "PLAIN WELCOME with a body");
                    assert!(contains(self.stream, b"\x05HELLO"), "WELCOME without a HELLO in the input");
                }
                (Role::PlainServer, b"READY") => {
                    Metadata::decode(&Bytes::copy_from_slice(data)).expect("our READY metadata decodes");
                    assert!(contains(self.stream, b"\x08INITIATE"), "READY without an INITIATE in the input");
                }
                (Role::PlainClient, b"HELLO") => assert_eq!(body, &self.plain_hello[..], "HELLO credentials"),
                (Role::PlainClient, b"INITIATE") => {
                    Metadata::decode(&Bytes::copy_from_slice(data)).expect("our INITIATE metadata decodes");
                    assert!(contains(self.stream, b"\x07WELCOME"), "INITIATE without a WELCOME in the input");
                }
                other => unreachable!("{other:?}"),
            }
            return;
        }
        assert!(
            !self.role.is_curve(),
            "clear-text command {} after the CURVE handshake",
            String::from_utf8_lossy(&name)
        );
        match Command::decode(Bytes::copy_from_slice(body)).expect("our command decodes") {
            Command::Ping { .. } | Command::Subscribe(_) | Command::Cancel(_) => {}
            Command::Pong { context } => assert!(context.len() <= 16, "PONG context over 16 octets"),
            other => panic!("unexpected command after the handshake: {other:?}"),
        }
    }

    fn check_data(&mut self, more: bool, body: &[u8]) {
        assert_eq!(self.handshake_sent, 2, "a data frame before our handshake commands");
        if !self.role.is_curve() {
            return;
        }
        // RFC 26: a MESSAGE; MORE and COMMAND only inside the box.
        assert!(!more, "MORE on the outer frame of a MESSAGE");
        assert!(body.len() >= MESSAGE_OVERHEAD, "MESSAGE under {MESSAGE_OVERHEAD} octets");
        assert_eq!(&body[..8], &MESSAGE_PREFIX[..], "a data frame that is not a MESSAGE");
        let nonce = u64::from_be_bytes(body[8..16].try_into().expect("8 octets"));
        assert_eq!(nonce, self.next_nonce, "MESSAGE short nonces are not consecutive");
        self.next_nonce += 1;
    }

    fn feed(&mut self, chunk: &[u8]) {
        let now = self.now();
        if self.rng.below(2) == 0 {
            self.conn.handle_input(now, chunk);
        } else {
            self.conn.read_buffer().extend_from_slice(chunk);
            self.conn.handle_read(now, chunk.len());
        }
        if let Some(wait) = self.pending_auth {
            self.pending_auth = Some(wait.saturating_sub(1));
        }
    }

    /// Advances the fake clock (sometimes exactly to the next deadline) and fires the timers.
    fn tick(&mut self) {
        crate::tick(&mut self.conn, &mut self.rng, epoch(), &mut self.elapsed);
        self.drain();
    }

    /// Sometimes sends something of our own, checking the result against the state.
    fn maybe_send(&mut self) {
        if self.rng.below(8) != 0 {
            return;
        }
        let ready = self.conn.is_ready();
        let closed = self.conn.is_closed();
        let check = |r: Result<(), SendError<()>>| match r {
            Ok(()) => assert!(ready, "sent while not ready"),
            Err(SendError::NotReady(())) => assert!(!ready && !closed),
            Err(SendError::Closed(())) => assert!(closed),
            Err(e) => panic!("send: {e:?}"),
        };
        match self.rng.below(4) {
            0 | 1 => {
                let msg = Msg::from(vec![Bytes::from_static(b"ping"), Bytes::from_static(&[0x5a; 300])]);
                check(self.conn.send_message(msg).map_err(strip));
            }
            2 => check(self.conn.send_subscribe(Bytes::from_static(b"topic")).map_err(strip)),
            _ => check(self.conn.send_cancel(Bytes::from_static(b"topic")).map_err(strip)),
        }
        self.drain_transmit();
    }
}

/// A send error without the value it hands back.
fn strip<T>(e: SendError<T>) -> SendError<()> {
    match e {
        SendError::NotReady(_) => SendError::NotReady(()),
        SendError::Closed(_) => SendError::Closed(()),
        SendError::EmptyMessage => SendError::EmptyMessage,
        _ => panic!("unknown send error"),
    }
}

/// What a run came to (for the seed generator's check that its seeds get through the handshake).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `HandshakeComplete` was reported.
    pub handshake_complete: bool,
    /// Messages, subscriptions and cancels reported.
    pub deliveries: usize,
    /// `Authenticate` was reported.
    pub asked: bool,
}

/// Runs `role` on `stream` (the peer's bytes, greeting first), with chunking, clock, sends and
/// answers derived from `seed`, and checks every invariant (see the module documentation, and the
/// targets' own). Ends with EOF; the connection must then report `Closed`, and nothing after it.
pub fn run(role: Role, control: Control, seed: u8, stream: &[u8]) -> Outcome {
    let reference = role.is_curve().then(curve_reference);
    let mut rng = Rng::new((u64::from(seed) << 32) | stream.len() as u64);
    let plain = plain_credentials(rng.below(4) as usize);
    let cfg = config(role, &control, &mut rng, &plain);
    let chunks: Vec<&[u8]> = if control.libzmq_split {
        match role {
            // libzmq's test_bind_curve_fuzzer: 64 / 202 (HELLO) / 301 (INITIATE) / rest.
            Role::CurveServer => libzmq_chunks(stream, Some(2 + 200), 301),
            // test_connect_curve_fuzzer: 64 / 170 (WELCOME) / 72 (READY) / rest.
            Role::CurveClient => libzmq_chunks(stream, Some(2 + 168), 72),
            Role::PlainServer | Role::PlainClient => libzmq_chunks(stream, None, 64),
        }
    } else {
        let mut chunks = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rng.chunk_len(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunks
    };
    match role {
        Role::CurveServer | Role::PlainServer => random::seed(SERVER_RNG_SEED),
        Role::CurveClient | Role::PlainClient => random::seed(CLIENT_RNG_SEED),
    }
    let start = epoch();

    let baseline = alloc::start();
    let mut h = Harness {
        conn: Connection::new(cfg, start),
        rng,
        role,
        control,
        stream,
        reference,
        plain_hello: plain_hello_body(&plain.0, &plain.1),
        elapsed: Duration::ZERO,
        handshake_done: false,
        closed: false,
        deliveries: 0,
        pending_auth: None,
        asked: 0,
        answer: None,
        expect_auth_failure: None,
        greeting_pending: true,
        handshake_sent: 0,
        errors_sent: 0,
        next_nonce: role.first_message_nonce(),
    };
    h.maybe_send();
    h.drain();

    for chunk in chunks {
        h.feed(chunk);
        if h.rng.below(4) != 0 {
            h.drain();
        }
        if h.rng.below(8) == 0 {
            h.drain();
            h.tick();
        }
        h.maybe_send();
        h.maybe_unasked_answer();
    }
    h.drain();
    if h.pending_auth.is_some() {
        h.pending_auth = Some(0);
        h.drain();
    }
    if h.rng.below(2) == 0 {
        h.tick();
    }
    h.conn.handle_eof();
    h.drain();
    assert!(h.closed, "EOF given and no Closed event");
    assert_eq!(h.expect_auth_failure, None, "a deny did not close the connection");

    // Closed is final.
    let now = h.now() + Duration::from_secs(3600);
    h.conn.handle_input(now, b"\xff\x00");
    h.conn.handle_timeout(now);
    h.conn.handle_auth_reply(AuthReply::allow("late"));
    assert_eq!(h.conn.poll_event(), None, "event after Closed");
    assert_eq!(h.conn.poll_timeout(), None);
    assert!(matches!(h.conn.send_message(Msg::from("x")), Err(SendError::Closed(_))));
    h.drain_transmit();

    let peak = alloc::peak_since(baseline);
    let bound = BYTES_PER_INPUT_BYTE * (stream.len() + 2) + SLACK;
    assert!(
        peak <= bound,
        "peak heap {peak} bytes above baseline for {} input bytes (bound {bound})",
        stream.len()
    );
    Outcome { handshake_complete: h.handshake_done, deliveries: h.deliveries, asked: h.asked > 0 }
}
