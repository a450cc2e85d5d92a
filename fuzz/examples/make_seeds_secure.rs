//! Writes the seed corpora of the CURVE, PLAIN and Z85 targets from real handshakes:
//!
//! ```text
//! fuzz/seeds/curve_server/  2 control octets + a real CURVE client's stream (greeting, HELLO,
//!                           INITIATE, boxed traffic)
//! fuzz/seeds/curve_client/  2 control octets + a real CURVE server's stream (greeting, WELCOME,
//!                           READY, boxed traffic), or its ERROR after a deny
//! fuzz/seeds/plain/         2 control octets + a real PLAIN client's or server's stream
//! fuzz/seeds/z85/           Z85 texts: RFC 32's vector, known key pairs, edges of the alphabet
//! fuzz/seeds/zap_reply/     ZAP replies: good ones, and each way a reply is refused
//! ```
//!
//! Usage (from the repository root; stable is enough):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds_secure
//! ```
//!
//! Each side runs in a thread of its own with the `test-rng` generator seeded as the targets seed it
//! (`zmtp_fuzz::secure::run_pair`), so the CURVE seeds stay valid for the targets' fixed keys: rerun
//! this after changing the keys, the seeds, or the wire format of the handshake. Only the five
//! directories above are replaced; `fuzz/make_seeds.py` writes the others.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use zmtp::proto::{AuthReply, ConnectionConfig, Event, HeartbeatConfig, Password, Security, SocketType};
use zmtp::Msg;
use zmtp_fuzz::secure::{
    curve_client, curve_server, frames, public_of, run, run_pair, Control, Role, Script, Side, Transcript,
    CLIENT_RNG_SEED, CLIENT_SECRET, OTHER_CLIENT_SECRET, SERVER_RNG_SEED, SERVER_SECRET, WRONG_SERVER_SECRET,
};

/// Control bits of `curve_server` / `curve_client` (octet 0 above the socket type).
const AUTH: u8 = 0x10;
const ALLOW: u8 = 0x20;
const LIBZMQ_SPLIT: u8 = 0x80;
/// Control bits of `plain`.
const PLAIN_SERVER: u8 = 0x10;
const PLAIN_AUTH: u8 = 0x20;
const PLAIN_ALLOW: u8 = 0x40;

fn index(t: SocketType) -> u8 {
    SocketType::ALL.iter().position(|&x| x == t).expect("a socket type") as u8
}

struct Writer {
    root: PathBuf,
    count: usize,
}

impl Writer {
    fn new(root: &Path, target: &str) -> Writer {
        let root = root.join(target);
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove old seeds");
        }
        std::fs::create_dir_all(&root).expect("create the seed directory");
        Writer { root, count: 0 }
    }

    fn put(&mut self, name: &str, bytes: &[u8]) {
        std::fs::write(self.root.join(name), bytes).expect("write a seed");
        self.count += 1;
    }

    /// A seed: the two control octets, then `stream`.
    fn seed(&mut self, name: &str, control: u8, chunking: u8, stream: &[u8]) {
        let mut data = vec![control, chunking];
        data.extend_from_slice(stream);
        self.put(name, &data);
    }

    fn done(&self) {
        let shown =
            self.root.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("/")));
        println!("make_seeds_secure: {:3} seeds in {}", self.count, shown.unwrap_or(&self.root).display());
    }
}

fn heartbeat() -> HeartbeatConfig {
    HeartbeatConfig {
        interval: Some(Duration::from_secs(1)),
        timeout: Some(Duration::from_secs(10)),
        ttl: Some(Duration::from_secs(5)),
    }
}

fn completed(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::HandshakeComplete(_)))
}

fn messages() -> Vec<Msg> {
    vec![
        Msg::from("hello"),
        Msg::from(vec![Bytes::from_static(b"envelope"), Bytes::new(), Bytes::from_static(b"body")]),
        Msg::from(vec![0xabu8; 300]),
    ]
}

/// A message whose MESSAGE frame is read into a buffer of its own (16 KiB and more).
fn large() -> Msg {
    Msg::from(vec![0x5au8; 20_000])
}

struct Pair {
    name: &'static str,
    client_type: SocketType,
    server_type: SocketType,
    client: Script,
    server: Script,
    client_heartbeat: bool,
    server_heartbeat: bool,
}

impl Pair {
    fn new(name: &'static str, client_type: SocketType, server_type: SocketType) -> Pair {
        Pair {
            name,
            client_type,
            server_type,
            client: Script::default(),
            server: Script::default(),
            client_heartbeat: false,
            server_heartbeat: false,
        }
    }

    fn configs(
        &self,
        client: Security,
        server: Security,
        authenticate: bool,
    ) -> (ConnectionConfig, ConnectionConfig) {
        let mut c = ConnectionConfig::new(self.client_type).security(client);
        let mut s = ConnectionConfig::new(self.server_type).security(server).authenticate(authenticate);
        if self.client_type.sends_identity() {
            c = c.identity(Bytes::from_static(b"cli1")).expect("identity");
        }
        c = c.property("X-Seed", self.name).expect("property");
        if self.client_heartbeat {
            c = c.heartbeat(heartbeat());
        }
        if self.server_heartbeat {
            s = s.heartbeat(heartbeat());
        }
        (c, s)
    }

    fn run_curve(
        &self,
        client_secret: [u8; 32],
        server_for_client: [u8; 32],
        authenticate: bool,
    ) -> Transcript {
        let (c, s) =
            self.configs(curve_client(client_secret, server_for_client), curve_server(), authenticate);
        run_pair(
            Side { config: c, rng_seed: CLIENT_RNG_SEED, script: self.client.clone() },
            Side { config: s, rng_seed: SERVER_RNG_SEED, script: self.server.clone() },
        )
    }

    fn run_plain(&self, authenticate: bool) -> Transcript {
        let client = Security::PlainClient {
            username: Bytes::from_static(b"admin"),
            password: Password::new(Bytes::from_static(b"secret")),
        };
        let (c, s) = self.configs(client, Security::PlainServer, authenticate);
        run_pair(
            Side { config: c, rng_seed: CLIENT_RNG_SEED, script: self.client.clone() },
            Side { config: s, rng_seed: SERVER_RNG_SEED, script: self.server.clone() },
        )
    }
}

fn pairs() -> Vec<Pair> {
    let mut v = Vec::new();

    let mut p = Pair::new("req_rep", SocketType::Req, SocketType::Rep);
    p.client.messages = vec![Msg::from(vec![Bytes::new(), Bytes::from_static(b"hello")])];
    p.server.messages = vec![Msg::from(vec![Bytes::new(), Bytes::from_static(b"world")])];
    v.push(p);

    let mut p = Pair::new("dealer_router", SocketType::Dealer, SocketType::Router);
    p.client.messages = messages();
    p.client.messages.push(large());
    p.client.ping = true;
    p.client_heartbeat = true;
    p.server.messages = messages();
    p.server.messages.push(large());
    p.server.ping = true;
    p.server_heartbeat = true;
    v.push(p);

    let mut p = Pair::new("sub_xpub", SocketType::Sub, SocketType::XPub);
    p.client.subscriptions =
        vec![(true, Bytes::from_static(b"a")), (true, Bytes::new()), (false, Bytes::from_static(b"a"))];
    p.server.messages = vec![Msg::from("a-topic message"), Msg::from("another")];
    v.push(p);

    let mut p = Pair::new("xsub_pub", SocketType::XSub, SocketType::Pub);
    p.client.subscriptions = vec![(true, Bytes::from_static(b"news"))];
    p.server.messages = vec![Msg::from("news: none")];
    v.push(p);

    let mut p = Pair::new("push_pull", SocketType::Push, SocketType::Pull);
    p.client.messages = (0..20u8).map(|i| Msg::from(vec![i; usize::from(i) * 13 + 1])).collect();
    v.push(p);

    let mut p = Pair::new("pull_push", SocketType::Pull, SocketType::Push);
    p.server.messages = messages();
    v.push(p);

    let mut p = Pair::new("pair_pair", SocketType::Pair, SocketType::Pair);
    p.client.ping = true;
    p.client_heartbeat = true;
    p.server.ping = true;
    p.server_heartbeat = true;
    v.push(p);

    v.push(Pair::new("handshake_only", SocketType::Dealer, SocketType::Dealer));
    v
}

fn curve_seeds(root: &Path) {
    let mut server = Writer::new(root, "curve_server");
    let mut client = Writer::new(root, "curve_client");
    for (i, p) in pairs().iter().enumerate() {
        let i = i as u8;
        let (st, ct) = (index(p.server_type), index(p.client_type));
        // Without an authenticator.
        let t = p.run_curve(CLIENT_SECRET, SERVER_SECRET, false);
        assert!(completed(&t.client_events) && completed(&t.server_events), "{}: {t:?}", p.name);
        server.seed(p.name, st, i, &t.client_out);
        server.seed(&format!("{}_libzmq_split", p.name), st | LIBZMQ_SPLIT, i, &t.client_out);
        client.seed(p.name, ct, i, &t.server_out);
        client.seed(&format!("{}_libzmq_split", p.name), ct | LIBZMQ_SPLIT, i, &t.server_out);
        // The same client, with the authenticator allowing and denying it.
        server.seed(&format!("{}_auth_allow", p.name), st | AUTH | ALLOW, i + 40, &t.client_out);
        server.seed(&format!("{}_auth_deny", p.name), st | AUTH | LIBZMQ_SPLIT, i + 80, &t.client_out);
    }

    // A server that denies: its client sees WELCOME, then ERROR "400".
    let mut p = Pair::new("denied", SocketType::Req, SocketType::Rep);
    p.server.auth = Some(AuthReply::deny(400, "no"));
    let t = p.run_curve(CLIENT_SECRET, SERVER_SECRET, true);
    assert!(!completed(&t.client_events) && !completed(&t.server_events), "{t:?}");
    client.seed("denied_by_server", index(SocketType::Req), 1, &t.server_out);

    // Another client key (an authenticator would not know it).
    let p = Pair::new("other_client", SocketType::Dealer, SocketType::Router);
    let t = p.run_curve(OTHER_CLIENT_SECRET, SERVER_SECRET, true);
    assert!(completed(&t.server_events), "{t:?}");
    assert_ne!(public_of(OTHER_CLIENT_SECRET), public_of(CLIENT_SECRET));
    server.seed("other_client_auth_allow", index(SocketType::Router) | AUTH | ALLOW, 7, &t.client_out);

    // A client that meant another server: its HELLO must be refused (and nothing else follows).
    let p = Pair::new("wrong_server", SocketType::Req, SocketType::Rep);
    let t = p.run_curve(CLIENT_SECRET, WRONG_SERVER_SECRET, false);
    assert!(!completed(&t.server_events), "{t:?}");
    server.seed("wrong_server_key", index(SocketType::Rep), 3, &t.client_out);

    // Incompatible socket types: the handshake runs to INITIATE, then the socket type is refused.
    let p = Pair::new("pub_rep", SocketType::Pub, SocketType::Rep);
    let t = p.run_curve(CLIENT_SECRET, SERVER_SECRET, false);
    server.seed("incompatible_pub_to_rep", index(SocketType::Rep), 4, &t.client_out);
    client.seed("incompatible_rep_to_pub", index(SocketType::Pub), 4, &t.server_out);

    // Truncations of a good client and server: greeting alone, greeting and first command.
    let p = Pair::new("truncated", SocketType::Req, SocketType::Rep);
    let t = p.run_curve(CLIENT_SECRET, SERVER_SECRET, false);
    let (cf, sf) = (frames(&t.client_out), frames(&t.server_out));
    server.seed("greeting_only", index(SocketType::Rep), 5, &t.client_out[..64]);
    server.seed(
        "greeting_hello",
        index(SocketType::Rep) | LIBZMQ_SPLIT,
        6,
        &t.client_out[..64 + cf[0].len()],
    );
    client.seed("greeting_only", index(SocketType::Req), 5, &t.server_out[..64]);
    client.seed(
        "greeting_welcome",
        index(SocketType::Req) | LIBZMQ_SPLIT,
        6,
        &t.server_out[..64 + sf[0].len()],
    );
    server.done();
    client.done();
}

fn plain_seeds(root: &Path) {
    let mut w = Writer::new(root, "plain");
    for (i, p) in pairs().iter().enumerate() {
        let i = i as u8;
        let (st, ct) = (index(p.server_type), index(p.client_type));
        let t = p.run_plain(false);
        assert!(completed(&t.client_events) && completed(&t.server_events), "{}: {t:?}", p.name);
        w.seed(&format!("server_{}", p.name), st | PLAIN_SERVER, i, &t.client_out);
        w.seed(&format!("server_{}_libzmq_split", p.name), st | PLAIN_SERVER | 0x80, i, &t.client_out);
        w.seed(
            &format!("server_{}_auth_allow", p.name),
            st | PLAIN_SERVER | PLAIN_AUTH | PLAIN_ALLOW,
            i,
            &t.client_out,
        );
        w.seed(
            &format!("server_{}_auth_deny", p.name),
            st | PLAIN_SERVER | PLAIN_AUTH,
            i + 40,
            &t.client_out,
        );
        w.seed(&format!("client_{}", p.name), ct, i, &t.server_out);
        w.seed(&format!("client_{}_libzmq_split", p.name), ct | 0x80, i, &t.server_out);
    }
    let mut p = Pair::new("denied", SocketType::Req, SocketType::Rep);
    p.server.auth = Some(AuthReply::deny(400, "no"));
    let t = p.run_plain(true);
    assert!(!completed(&t.client_events), "{t:?}");
    w.seed("client_denied_by_server", index(SocketType::Req), 1, &t.server_out);
    // Hand-made HELLOs at the edges of the format (after a real greeting).
    let t = Pair::new("edges", SocketType::Req, SocketType::Rep).run_plain(false);
    let greeting = &t.client_out[..64];
    for (name, body) in [
        ("hello_empty_credentials", b"\x05HELLO\x00\x00".to_vec()),
        ("hello_user_runs_past_end", b"\x05HELLO\x05ab".to_vec()),
        ("hello_trailing_octet", b"\x05HELLO\x01a\x01bc".to_vec()),
    ] {
        let mut s = greeting.to_vec();
        s.extend_from_slice(&[0x04, body.len() as u8]);
        s.extend_from_slice(&body);
        w.seed(&format!("server_{name}"), index(SocketType::Rep) | PLAIN_SERVER, 9, &s);
    }
    w.done();
}

fn z85_seeds(root: &Path) {
    let mut w = Writer::new(root, "z85");
    let mut texts: Vec<(String, String)> = vec![
        ("rfc32_vector".into(), "HelloWorld".into()),
        ("max_group".into(), "%nSc0".into()),
        ("overflow_by_one".into(), "%nSc1".into()),
        ("largest_digits".into(), "#####".into()),
        ("zeros".into(), "00000".into()),
        ("bad_character".into(), "Hello World".into()),
        ("bad_length".into(), "HelloWorl".into()),
        ("non_ascii".into(), "Hellé€🦀".into()),
        ("libzmq_secret".into(), "CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP".into()),
        ("libzmq_public".into(), "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo".into()),
        ("padded_key".into(), "  ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS\n".into()),
    ];
    for (name, secret) in [("server", SERVER_SECRET), ("client", CLIENT_SECRET)] {
        texts.push((format!("{name}_public"), public_of(secret).to_z85()));
    }
    for (name, text) in &texts {
        w.put(name, text.as_bytes());
    }
    w.put("binary_key", &SERVER_SECRET);
    w.done();
}

/// Replays every seed of a connection target through the target's harness (every invariant
/// checked) and says how many get through the handshake and deliver something: a seed that no longer
/// replays (keys, generator or handshake changed) shows up here rather than as lost coverage.
fn replay(root: &Path, target: &str, decode: impl Fn(u8) -> (Role, Control)) -> (usize, usize, usize) {
    let (mut total, mut complete, mut delivering) = (0, 0, 0);
    let mut paths: Vec<_> =
        std::fs::read_dir(root.join(target)).expect("seeds").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    for path in paths {
        let data = std::fs::read(&path).expect("read a seed");
        let (role, control) = decode(data[0]);
        // The harness resets this thread's generator itself.
        let outcome = run(role, control, data[1], &data[2..]);
        total += 1;
        complete += usize::from(outcome.handshake_complete);
        delivering += usize::from(outcome.deliveries > 0);
    }
    println!("make_seeds_secure: {target}: {total} seeds replayed, {complete} complete the handshake, {delivering} deliver messages");
    (total, complete, delivering)
}

/// `zap_reply`: a control octet, then length-prefixed chunks: the request id, then the frames.
fn zap_seeds(root: &Path) {
    let mut w = Writer::new(root, "zap_reply");
    let md: &[u8] = b"\x04Role\x00\x00\x00\x05admin";
    let cases: [(&str, u8, &[&[u8]]); 10] = [
        ("allow", 0, &[b"7", b"", b"1.0", b"7", b"200", b"OK", b"alice", b""]),
        ("deny_with_metadata", 0, &[b"7", b"", b"1.0", b"7", b"400", b"No", b"", md]),
        ("temporary", 1, &[b"", b"", b"1.0", b"42", b"300", b"later", b"", b""]),
        ("internal_error", 3, &[b"", b"x", b"2.0", b"1", b"500", b"", b"", b""]),
        ("wrong_version", 0, &[b"7", b"", b"2.0", b"7", b"200", b"", b"", b""]),
        ("wrong_request_id", 0, &[b"7", b"", b"1.0", b"8", b"200", b"", b"", b""]),
        ("status_not_a_number", 0, &[b"7", b"", b"1.0", b"7", b"abc", b"", b"", b""]),
        ("status_201", 0, &[b"7", b"", b"1.0", b"7", b"201", b"", b"", b""]),
        ("eight_frames", 0, &[b"7", b"", b"1.0", b"7", b"200", b"", b"", b"", b""]),
        ("bad_metadata", 0, &[b"7", b"", b"1.0", b"7", b"200", b"", b"", b"\x05"]),
    ];
    for (name, control, chunks) in cases {
        let mut data = vec![control];
        for c in chunks {
            data.push(c.len() as u8);
            data.extend_from_slice(c);
        }
        w.put(name, &data);
    }
    w.done();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    curve_seeds(&root);
    plain_seeds(&root);
    z85_seeds(&root);
    zap_seeds(&root);
    for (target, decode) in [
        ("curve_server", (|o| (Role::CurveServer, Control::curve(o))) as fn(u8) -> (Role, Control)),
        ("curve_client", |o| (Role::CurveClient, Control::curve(o))),
        ("plain", Control::plain),
    ] {
        let (_, complete, delivering) = replay(&root, target, decode);
        assert!(complete > 0 && delivering > 0, "{target}: no seed gets through the handshake in the target");
    }
}
