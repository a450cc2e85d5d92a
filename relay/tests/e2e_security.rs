//! End-to-end tests of CURVE and PLAIN on the relay's ports and the adaptor's XPUB
//! (docs/relay-protocol.md §6), with the built binaries and pyzmq (libzmq) peers driven through
//! `tests/peers/secure_relay_peer.py` (relay_peer.py plus security keys on `NEW`).
//!
//! Keys are made as an operator would, with `zmtp-keygen --out DIR NAME`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::*;

/// Long enough for a refused peer's request to have come back if it were ever going to.
const REFUSED_QUIET: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------

/// Certificates made with `zmtp-keygen --out`: pairs in `secrets/`, public certificates copied into
/// the allow lists `clients/` (alice), `ingestors/` (ingestor), `subscribers/` (sub); `mallory` is in
/// no list. `passwords` (mode 0600) holds `alice=secret`.
struct Keys {
    dir: TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = TempDir::new("sec");
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).expect("mkdir secrets");
        for name in ["relay", "source", "alice", "mallory", "ingestor", "sub"] {
            let out = Command::new(env!("CARGO_BIN_EXE_zmtp-keygen"))
                .arg("--out")
                .arg(&secrets)
                .arg(name)
                .output()
                .expect("run zmtp-keygen");
            assert!(out.status.success(), "zmtp-keygen --out: {out:?}");
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(printed.contains(&format!("{name}.key_secret")), "{printed}");
        }
        for (list, name) in [("clients", "alice"), ("ingestors", "ingestor"), ("subscribers", "sub")] {
            let list = dir.path().join(list);
            std::fs::create_dir(&list).expect("mkdir allow list");
            std::fs::copy(secrets.join(format!("{name}.key")), list.join(format!("{name}.key")))
                .expect("copy certificate");
        }
        let passwords = dir.path().join("passwords");
        std::fs::write(&passwords, "# PLAIN users\nalice=secret\n").expect("write passwords");
        std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Keys { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The secret certificate of `name`.
    fn secret(&self, name: &str) -> String {
        self.path(&format!("secrets/{name}.key_secret")).display().to_string()
    }

    /// The public certificate of `name`.
    fn public(&self, name: &str) -> String {
        self.path(&format!("secrets/{name}.key")).display().to_string()
    }

    /// The public key of `name` in Z85.
    fn z85(&self, name: &str) -> String {
        zmtp::cert::Certificate::load(self.public(name)).expect("load certificate").public.to_z85()
    }

    /// `secure_relay_peer.py` options of a CURVE client `name` of a server with `server`'s key.
    fn client(&self, name: &str, server: &str) -> [String; 2] {
        [format!("curve_secret={}", self.secret(name)), format!("curve_serverkey={}", self.public(server))]
    }
}

/// A TOML string literal of a path.
fn q(path: impl AsRef<Path>) -> String {
    format!("\"{}\"", path.as_ref().display())
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Whether `line` is the zmtp library's warning about a peer refused at authentication on `port`,
/// with the peer's address.
fn library_refusal_line(line: &str, port: u16) -> bool {
    line.contains("WARN")
        && line.contains("authentication refused")
        && line.contains(&format!("127.0.0.1:{port}"))
        && (line.contains("peer=\"127.0.0.1:") || line.contains("peer=127.0.0.1:"))
}

/// The value of the integer field `key` in `line`.
fn field_u64(line: &str, key: &str) -> u64 {
    let pat = format!("{key}=");
    let at = line.find(&pat).unwrap_or_else(|| panic!("no {key} in {line}")) + pat.len();
    line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("a number")
}

/// Stops the relay with SIGTERM and returns its `stopped` line.
fn stop(relay: &mut Relay) -> String {
    let mark = relay.mark();
    relay.signal("TERM");
    let status = relay.wait_exit(Duration::from_secs(6)).expect("exit within 6 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", relay.log_text());
    relay.drain(Duration::from_millis(200));
    relay.wait_log(mark, &["stopped"], STEP)
}

/// A DEALER client's request: `[""] 07 id ticker params`.
fn request(py: &mut Py, client: &str, id: &[u8]) {
    py.send(client, &dealer_req(id, b"BINANCE:BTC/USDT", b""));
}

// ---------------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------------

/// Each bad security setting is refused at start: exit status 2, stderr names the key, nothing is
/// bound.
#[test]
fn security_config_errors_exit_2_naming_the_key() {
    let keys = Keys::new();
    let loose = keys.path("loose.key_secret");
    std::fs::copy(keys.secret("relay"), &loose).expect("copy");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let loose_passwords = keys.path("loose-passwords");
    std::fs::write(&loose_passwords, "alice=secret\n").expect("write");
    std::fs::set_permissions(&loose_passwords, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    std::fs::create_dir(keys.path("broken")).expect("mkdir");
    std::fs::write(keys.path("broken/eve.key"), "curve\n    public-key = \"not a key\"\n").expect("write");

    let ports = free_ports(5);
    let base = format!(
        "bind_address = \"tcp://127.0.0.1\"\nclient_request_port = {}\ningestor_work_port = {}\n\
         ingestor_response_port = {}\nmarket_data_pub_port = {}\nflink_market_data_endpoint = \"{}\"\n\
         admin_address = \"\"\n",
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        ep(ports[4])
    );
    let relay_secret = q(keys.secret("relay"));
    let source = format!("\"{}\"", keys.z85("source"));
    /// What is wrong, the keys set, the key stderr must name.
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing secret key file",
            vec![
                ("client_curve_secret_key_file", q(keys.path("nowhere.key_secret"))),
                ("client_curve_allow_any_key", "true".into()),
            ],
            "client_curve_secret_key_file",
        ),
        (
            "secret key file is a directory",
            vec![
                ("ingestor_curve_secret_key_file", q(keys.path("secrets"))),
                ("ingestor_curve_allow_any_key", "true".into()),
            ],
            "ingestor_curve_secret_key_file",
        ),
        (
            "secret key file readable by group and others",
            vec![
                ("market_data_pub_curve_secret_key_file", q(&loose)),
                ("market_data_pub_curve_allow_any_key", "true".into()),
            ],
            "market_data_pub_curve_secret_key_file",
        ),
        (
            "certificate directory missing",
            vec![
                ("client_curve_secret_key_file", relay_secret.clone()),
                ("client_curve_allowed_certs_dir", q(keys.path("no-such-dir"))),
            ],
            "client_curve_allowed_certs_dir",
        ),
        (
            "certificate directory with a broken certificate",
            vec![
                ("client_curve_secret_key_file", relay_secret.clone()),
                ("client_curve_allowed_certs_dir", q(keys.path("broken"))),
            ],
            "client_curve_allowed_certs_dir",
        ),
        (
            "CURVE without an allow list or allow_any_key",
            vec![("ingestor_curve_secret_key_file", relay_secret.clone())],
            "ingestor_curve_allowed_certs_dir",
        ),
        (
            "CURVE and PLAIN on one port",
            vec![
                ("client_curve_secret_key_file", relay_secret.clone()),
                ("client_curve_allow_any_key", "true".into()),
                ("client_plain_password_file", q(keys.path("passwords"))),
            ],
            "client_plain_password_file",
        ),
        (
            "password file readable by group",
            vec![("ingestor_plain_password_file", q(&loose_passwords))],
            "ingestor_plain_password_file",
        ),
        (
            "server public key too short",
            vec![
                ("flink_market_data_curve_secret_key_file", relay_secret.clone()),
                ("flink_market_data_curve_server_key", "\"rq:rM>}U?@Lns47E1%kR\"".into()),
            ],
            "flink_market_data_curve_server_key",
        ),
        (
            "server public key of 40 characters that are not Z85",
            vec![
                ("flink_market_data_curve_secret_key_file", relay_secret.clone()),
                ("flink_market_data_curve_server_key", format!("\"{}\"", "~".repeat(40))),
            ],
            "flink_market_data_curve_server_key",
        ),
        (
            "upstream secret key file readable by others",
            vec![
                ("flink_market_data_curve_secret_key_file", q(&loose)),
                ("flink_market_data_curve_server_key", source.clone()),
            ],
            "flink_market_data_curve_secret_key_file",
        ),
    ];
    let mut failures = Vec::new();
    for (what, set, key) in &cases {
        let config = set.iter().fold(base.clone(), |text, (k, v)| format!("{text}{k} = {v}\n"));
        let (status, stderr) = run_once(Some(&config), &[], STEP);
        let mut problems = Vec::new();
        if status.and_then(|s| s.code()) != Some(2) {
            problems.push(format!("exit status {status:?}, want 2"));
        }
        if !stderr.contains(key) {
            problems.push(format!("stderr does not name `{key}`"));
        }
        if stderr.contains("listening") {
            problems.push("a `listening` line was printed".to_owned());
        }
        for p in &ports[..4] {
            if !port_is_free(Ipv4Addr::LOCALHOST, *p) {
                problems.push(format!("port {p} is not free afterwards"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{what}: {}\n  config:\n{config}  stderr: {}",
                problems.join("; "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------------
// CURVE and PLAIN on the request ports
// ---------------------------------------------------------------------------------------------------

/// CURVE on the client and ingestor ports: a client with an allowed key gets its reply through CURVE
/// ingestors; a client and an ingestor with unknown keys get nothing, are logged at warn (the library's
/// line with the peer's address, once) and are counted per role, in the periodic `auth refused` lines
/// and in the `stopped` summary; a NULL client gets nothing.
#[test]
fn curve_clients_and_ingestors() {
    let keys = Keys::new();
    let mut relay = Relay::start(
        Opts::default()
            .rust_log(None)
            .set("client_curve_secret_key_file", q(keys.secret("relay")))
            .set("client_curve_allowed_certs_dir", q(keys.path("clients")))
            .set("ingestor_curve_secret_key_file", q(keys.secret("relay")))
            .set("ingestor_curve_allowed_certs_dir", q(keys.path("ingestors"))),
    );
    for role in ["clients", "ingestor work", "ingestor responses"] {
        let role = format!("role={role}");
        assert!(relay.has_log(0, &["listening", &role, "mechanism=CURVE"]), "{}", relay.log_text());
    }
    assert!(
        relay.has_log(0, &["listening", "role=market data out", "mechanism=NULL"]),
        "{}",
        relay.log_text()
    );

    let mut py = Py::with_script("secure_relay_peer");
    // A CURVE ingestor.
    let ingestor = keys.client("ingestor", "relay");
    let marker = "~sync-curve-ing";
    py.sock("ing_r", "DEALER", "connect", &relay.response_ep(), &strs(&ingestor));
    let mut opts = ingestor.to_vec();
    opts.push(format!("sub={}", hex(b"BINANCE:")));
    opts.push(format!("sub={}", hex(marker.as_bytes())));
    py.sock("ing_w", "SUB", "connect", &relay.work_ep(), &strs(&opts));
    relay.wait_log(0, &["ingestor subscribed", &format!("prefix={marker}")], STEP);
    py.cmd("AUTO ing_w ing_r 4f4b 63757276652d64617461");

    // A CURVE client with an allowed key: its reply comes through.
    py.sock("alice", "DEALER", "connect", &relay.client_ep(), &strs(&keys.client("alice", "relay")));
    let r = dealer_roundtrip(&mut py, "alice", b"curve-1", "BINANCE:BTC/USDT", b"");
    r.assert_status("OK");
    assert_eq!(r.data, vec!["10:63757276652d64617461".to_owned()], "{r:?}");

    // A client with an unknown key gets nothing, and is logged with its address.
    let mark = relay.mark();
    let mut mallory = keys.client("mallory", "relay").to_vec();
    mallory.push("reconnect_ivl=10000".into());
    py.sock("mallory", "DEALER", "connect", &relay.client_ep(), &strs(&mallory));
    request(&mut py, "mallory", b"curve-2");
    let port = relay.client_port;
    relay.wait_log_by(mark, STEP, "the library's refusal line", |l| library_refusal_line(l, port));
    relay.wait_log(mark, &["WARN", "auth refused", "role=clients"], STEP);
    py.no_msg("mallory", REFUSED_QUIET, "a client with an unknown key");

    // A NULL client on the CURVE port gets nothing either (libzmq sees the mechanism mismatch and
    // hangs up, usually before the relay does: then the relay sees only a peer closing during the
    // handshake, which it cannot tell from a port probe and does not count).
    py.sock("null", "DEALER", "connect", &relay.client_ep(), &["reconnect_ivl=10000", "monitor=1"]);
    request(&mut py, "null", b"curve-3");
    py.expect("EVENT null HANDSHAKE_FAILED_PROTOCOL", STEP);
    py.no_msg("null", QUIET, "a NULL client on a CURVE port");

    // An ingestor with an unknown key.
    let mark = relay.mark();
    let mut intruder = keys.client("mallory", "relay").to_vec();
    intruder.extend([format!("sub={}", hex(b"KRAKEN:")), "reconnect_ivl=10000".into()]);
    py.sock("intruder", "SUB", "connect", &relay.work_ep(), &strs(&intruder));
    let work_port = relay.work_port;
    relay.wait_log_by(mark, STEP, "the library's refusal line (work port)", |l| {
        library_refusal_line(l, work_port)
    });
    relay.wait_log(mark, &["WARN", "auth refused", "role=ingestors"], STEP);
    assert!(
        !relay.log_within(mark, &["ingestor subscribed", "prefix=KRAKEN:"], QUIET),
        "{}",
        relay.log_text()
    );

    // The allowed client is unaffected.
    let r = dealer_roundtrip(&mut py, "alice", b"curve-4", "BINANCE:BTC/USDT", b"");
    r.assert_status("OK");

    let stopped = stop(&mut relay);
    assert!(field_u64(&stopped, "auth_refused_clients") >= 1, "{stopped}");
    assert!(field_u64(&stopped, "auth_refused_ingestors") >= 1, "{stopped}");
    assert_eq!(field_u64(&stopped, "auth_refused_subscribers"), 0, "{stopped}");
    assert_eq!(field_u64(&stopped, "auth_refused_upstream"), 0, "{stopped}");
    // Logged once, by the library: the relay's peer watcher does not repeat authentication refusals.
    let text = relay.log_text();
    let repeated: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("peer disconnected") && l.contains("authentication refused"))
        .collect();
    assert!(repeated.is_empty(), "refusals logged twice:\n{}", repeated.join("\n"));
}

/// PLAIN on the client port: the right password gets a reply, a wrong one gets nothing and is logged
/// and counted.
#[test]
fn plain_clients_right_and_wrong_password() {
    let keys = Keys::new();
    let mut relay = Relay::start(
        Opts::default().rust_log(None).set("client_plain_password_file", q(keys.path("passwords"))),
    );
    assert!(relay.has_log(0, &["listening", "role=clients", "mechanism=PLAIN"]), "{}", relay.log_text());
    let mut py = Py::with_script("secure_relay_peer");
    py.sock(
        "good",
        "DEALER",
        "connect",
        &relay.client_ep(),
        &["plain_username=alice", "plain_password=secret"],
    );
    // No ingestor: UNAVAILABLE, which proves the request reached the relay.
    let r = dealer_roundtrip(&mut py, "good", b"plain-1", "BINANCE:BTC/USDT", b"");
    r.assert_status("UNAVAILABLE");

    let mark = relay.mark();
    let wrong = ["plain_username=alice", "plain_password=wrong", "reconnect_ivl=10000", "monitor=1"];
    py.sock("wrong", "DEALER", "connect", &relay.client_ep(), &wrong);
    request(&mut py, "wrong", b"plain-2");
    let port = relay.client_port;
    relay.wait_log_by(mark, STEP, "the library's refusal line", |l| library_refusal_line(l, port));
    relay.wait_log(mark, &["WARN", "auth refused", "role=clients"], STEP);
    // What the refused client sees: its handshake fails with the server's status.
    py.expect("EVENT wrong HANDSHAKE_FAILED_", STEP);
    py.no_msg("wrong", REFUSED_QUIET, "a client with a wrong password");

    let stopped = stop(&mut relay);
    assert!(field_u64(&stopped, "auth_refused_clients") >= 1, "{stopped}");
}

// ---------------------------------------------------------------------------------------------------
// Market data
// ---------------------------------------------------------------------------------------------------

/// Starts `zmq-adaptor` with its XSUB on `listen` and a CURVE XPUB on loopback (extra arguments:
/// the CURVE options); returns it, its XPUB endpoint and port.
fn curve_adaptor(listen: &str, curve: &[&str]) -> (Adaptor, String, u16) {
    let mut args = vec!["--bind", listen, "--publish", "tcp://127.0.0.1:0"];
    args.extend_from_slice(curve);
    let mut adaptor = Adaptor::spawn(&args);
    let line = adaptor.wait("listening on --publish", |l| l.contains("listening") && l.contains("--publish"));
    assert!(has_field(&line, "mechanism", "CURVE"), "{line}");
    let publish = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("endpoint="))
        .unwrap_or_else(|| panic!("no endpoint in {line}"))
        .trim_matches('"')
        .to_owned();
    let port: u16 = publish.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    (adaptor, publish, port)
}

/// The relay's market-data port with CURVE, fed by a CURVE source: pyzmq PUB -> zmq-adaptor (CURVE
/// XPUB, any client key) -> the relay's XSUB (a CURVE client; the source's key given in Z85) -> the
/// relay's XPUB (CURVE, allow list) -> a pyzmq CURVE SUB. Subscriptions travel the other way. A
/// subscriber with an unknown key gets nothing, and is logged and counted.
#[test]
fn market_data_from_a_curve_source_to_a_curve_subscriber() {
    let keys = Keys::new();
    let listen = format!("ipc://{}", keys.path("md-in.sock").display());
    let source_secret = keys.secret("source");
    let (_source, source_ep, _) =
        curve_adaptor(&listen, &["--curve-secret-key-file", &source_secret, "--curve-allow-any-key"]);
    let mut relay = Relay::start(
        Opts::default()
            .rust_log(None)
            .set("flink_market_data_endpoint", format!("\"{source_ep}\""))
            .set("flink_market_data_curve_secret_key_file", q(keys.secret("relay")))
            .set("flink_market_data_curve_server_key", format!("\"{}\"", keys.z85("source")))
            .set("market_data_pub_curve_secret_key_file", q(keys.secret("relay")))
            .set("market_data_pub_curve_allowed_certs_dir", q(keys.path("subscribers"))),
    );
    relay.wait_log(0, &["upstream connected"], STEP);
    assert!(relay.has_log(0, &["upstream connecting", "mechanism=CURVE"]), "{}", relay.log_text());
    assert!(
        relay.has_log(0, &["listening", "role=market data out", "mechanism=CURVE"]),
        "{}",
        relay.log_text()
    );

    let mut py = Py::with_script("secure_relay_peer");
    py.sock("src", "PUB", "connect", &listen, &[]);
    let topic = b"BINANCE:BTC/USDT|tick";
    let mut sub = keys.client("sub", "relay").to_vec();
    sub.push(format!("sub={}", hex(topic)));
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &strs(&sub));
    let mark = relay.mark();
    let mut intruder = keys.client("mallory", "relay").to_vec();
    intruder.extend([format!("sub={}", hex(topic)), "reconnect_ivl=10000".into()]);
    py.sock("intruder", "SUB", "connect", &relay.md_ep(), &strs(&intruder));
    py.cmd(&format!("REPEAT src 100 {}:{}", hex(topic), hex(b"42000.5")));
    let got = py.msg("sub");
    assert_eq!(got, zmtp_interop::reprs(&[topic.as_slice(), b"42000.5"]));
    let port = relay.md_port;
    relay.wait_log_by(mark, STEP, "the library's refusal line", |l| library_refusal_line(l, port));
    relay.wait_log(mark, &["WARN", "auth refused", "role=subscribers"], STEP);
    py.no_msg("intruder", REFUSED_QUIET, "a subscriber with an unknown key");
    py.cmd("STOP src");

    let stopped = stop(&mut relay);
    assert!(field_u64(&stopped, "auth_refused_subscribers") >= 1, "{stopped}");
    assert_eq!(field_u64(&stopped, "auth_refused_upstream"), 0, "{stopped}");
}

/// A source that refuses the relay's key (an ERROR with status 400, after which ZeroMQ clients stop
/// reconnecting) is logged and counted as an upstream refusal, and the relay connects again on its
/// own: once a source that accepts the key listens there, market data flows.
#[test]
fn upstream_refusal_is_counted_and_retried() {
    let keys = Keys::new();
    let listen = format!("ipc://{}", keys.path("up-in.sock").display());
    let (source_secret, clients) = (keys.secret("source"), keys.path("clients").display().to_string());
    // The relay's key is not in `clients/`.
    let (mut refusing, source_ep, port) = curve_adaptor(
        &listen,
        &["--curve-secret-key-file", &source_secret, "--curve-allowed-certs-dir", &clients],
    );
    let mut relay = Relay::start(
        Opts::default()
            .rust_log(None)
            .set("flink_market_data_endpoint", format!("\"{source_ep}\""))
            .set("flink_market_data_curve_secret_key_file", q(keys.secret("relay")))
            .set("flink_market_data_curve_server_cert_file", q(keys.public("source"))),
    );
    relay.wait_log(0, &["WARN", "auth refused", "role=upstream"], STEP);
    relay.wait_log_by(0, STEP, "the library's warning", |l| {
        l.contains("WARN") && l.contains("authentication refused") && l.contains(&format!(":{port}"))
    });
    refusing.wait("its own refusal line", |l| l.contains("authentication refused"));
    drop(refusing);
    let mark = relay.mark();
    let publish = format!("tcp://127.0.0.1:{port}");
    let mut args = vec!["--bind", &listen, "--publish", &publish];
    args.extend(["--curve-secret-key-file", &source_secret, "--curve-allow-any-key"]);
    let mut accepting = Adaptor::spawn(&args);
    accepting.wait("listening on --publish", |l| l.contains("listening") && l.contains("--publish"));
    relay.wait_log(mark, &["upstream connected"], Duration::from_secs(15));

    let mut py = Py::with_script("secure_relay_peer");
    py.sock("src", "PUB", "connect", &listen, &[]);
    let topic = b"KRAKEN:XBT/USD|tick";
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(topic))]);
    py.cmd(&format!("REPEAT src 100 {}:{}", hex(topic), hex(b"7")));
    assert_eq!(py.msg("sub"), zmtp_interop::reprs(&[topic.as_slice(), b"7"]));
    py.cmd("STOP src");
    let stopped = stop(&mut relay);
    assert!(field_u64(&stopped, "auth_refused_upstream") >= 1, "{stopped}");
}

/// The relay's XSUB as a CURVE client of a libzmq (pyzmq) CURVE source. libzmq writes as-server=0
/// in every greeting, its CURVE server's included: zmtp's client accepts that.
#[test]
fn market_data_from_a_libzmq_curve_source() {
    let keys = Keys::new();
    let mut py = Py::with_script("secure_relay_peer");
    let source_opts = [format!("curve_secret={}", keys.secret("source")), "curve_server=1".to_owned()];
    let source_ep = py.sock("src", "PUB", "bind", "tcp://127.0.0.1:0", &strs(&source_opts));
    let mut relay = Relay::start(
        Opts::default()
            .rust_log(None)
            .set("flink_market_data_endpoint", format!("\"{source_ep}\""))
            .set("flink_market_data_curve_secret_key_file", q(keys.secret("relay")))
            .set("flink_market_data_curve_server_cert_file", q(keys.public("source"))),
    );
    relay.wait_log(0, &["upstream connected"], STEP);
    let topic = b"BINANCE:BTC/USDT|tick";
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(topic))]);
    py.cmd(&format!("REPEAT src 100 {}:{}", hex(topic), hex(b"1")));
    assert_eq!(py.msg("sub"), zmtp_interop::reprs(&[topic.as_slice(), b"1"]));
}

// ---------------------------------------------------------------------------------------------------
// The adaptor
// ---------------------------------------------------------------------------------------------------

/// A `zmq-adaptor` process, killed on drop; its stderr lines are read by a thread.
struct Adaptor {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Adaptor {
    fn spawn(args: &[&str]) -> Adaptor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zmq-adaptor"))
            .args(args)
            .env("RUST_LOG", "zmq_adaptor=info,zmtp=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zmq-adaptor");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(strip_ansi(&line)).is_err() {
                    return;
                }
            }
        });
        Adaptor { child, lines, log: Vec::new() }
    }

    /// Waits for a stderr line for which `pred` holds.
    fn wait(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.log.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + STEP;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.log.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
        panic!("no adaptor line {what} within {STEP:?}:\n{}", self.log.join("\n"));
    }
}

impl Drop for Adaptor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                self.log.push(line);
            }
            eprintln!("--- zmq-adaptor log:\n{}", self.log.join("\n"));
        }
    }
}

/// `zmq-adaptor` with CURVE on its XPUB: an allowed pyzmq CURVE SUB gets the data, an unknown key gets
/// nothing and the refusal is logged at warn with its address; a secret key file that group or others
/// may read is refused (exit status 2, the option named).
#[test]
fn adaptor_curve_xpub_delivers_to_a_curve_subscriber() {
    let keys = Keys::new();
    let listen = format!("ipc://{}", keys.path("in.sock").display());
    let (secret, allowed) = (keys.secret("relay"), keys.path("subscribers").display().to_string());
    let (mut adaptor, publish, port) =
        curve_adaptor(&listen, &["--curve-secret-key-file", &secret, "--curve-allowed-certs-dir", &allowed]);

    let mut py = Py::with_script("secure_relay_peer");
    py.sock("pub", "PUB", "connect", &listen, &[]);
    let topic = b"track|1";
    let mut sub = keys.client("sub", "relay").to_vec();
    sub.push(format!("sub={}", hex(topic)));
    py.sock("sub", "SUB", "connect", &publish, &strs(&sub));
    let mut intruder = keys.client("mallory", "relay").to_vec();
    intruder.extend([format!("sub={}", hex(topic)), "reconnect_ivl=10000".into()]);
    py.sock("intruder", "SUB", "connect", &publish, &strs(&intruder));
    py.cmd(&format!("REPEAT pub 100 {}:{}", hex(topic), hex(b"payload")));
    assert_eq!(py.msg("sub"), zmtp_interop::reprs(&[topic.as_slice(), b"payload"]));
    adaptor.wait("refusing the unknown key", |l| library_refusal_line(l, port));
    py.no_msg("intruder", REFUSED_QUIET, "a subscriber with an unknown key");
    py.cmd("STOP pub");

    // A secret certificate readable by others is refused before anything is bound.
    let loose = keys.path("loose.key_secret");
    std::fs::copy(&secret, &loose).expect("copy");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_zmq-adaptor"))
        .args(["--bind", &listen, "--publish", "tcp://127.0.0.1:0", "--curve-allow-any-key"])
        .arg("--curve-secret-key-file")
        .arg(&loose)
        .output()
        .expect("run zmq-adaptor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--curve-secret-key-file") && stderr.contains("0644"), "{stderr}");
}
