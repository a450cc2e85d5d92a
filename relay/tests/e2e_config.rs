//! End-to-end tests of the relay's configuration, logging and shutdown (docs/relay-protocol.md §3, §4,
//! §5 "Configuration", "Logging", "Shutdown"; reliability.md B-18).

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use common::*;

fn base_config(ports: &[u16]) -> String {
    format!(
        "bind_address = \"tcp://127.0.0.1\"\nclient_request_port = {}\ningestor_work_port = {}\n\
         ingestor_response_port = {}\nmarket_data_pub_port = {}\nflink_market_data_endpoint = \"{}\"\n\
         admin_address = \"\"\n",
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        ep(ports[4])
    )
}

/// Replaces (or adds) `key = value` lines of a config text.
fn with_keys(base: &str, set: &[(&str, &str)]) -> String {
    let mut lines: Vec<String> = base
        .lines()
        .filter(|l| {
            let k = l.split('=').next().unwrap_or("").trim();
            !set.iter().any(|(key, _)| *key == k)
        })
        .map(str::to_owned)
        .collect();
    for (k, v) in set {
        lines.push(format!("{k} = {v}"));
    }
    lines.join("\n") + "\n"
}

struct Case {
    what: &'static str,
    config: String,
    /// Any of these must appear on stderr.
    keys: Vec<&'static str>,
}

/// Every kind of bad configuration is refused at start: exit status 2, stderr names the key, no
/// `listening` line, and the four ports are still free.
#[test]
fn config_errors_are_refused() {
    let ports = free_ports(5);
    let base = base_config(&ports);
    let p0 = ports[0].to_string();
    let p1 = ports[1].to_string();
    let up_eq = format!("\"tcp://127.0.0.1:{}\"", ports[2]);
    let c = |what, set: &[(&str, &str)], keys: &[&'static str]| Case {
        what,
        config: with_keys(&base, set),
        keys: keys.to_vec(),
    };
    let cases = vec![
        c("unknown key", &[("bogus_key", "1")], &["bogus_key"]),
        c("unknown key (typo)", &[("request_timeout_sec", "3")], &["request_timeout_sec"]),
        c("wrong type: port as string", &[("client_request_port", "\"5559\"")], &["client_request_port"]),
        c(
            "wrong type: timeout as string",
            &[("request_timeout_secs", "\"fast\"")],
            &["request_timeout_secs"],
        ),
        c(
            "wrong type: bind flag as string",
            &[("flink_market_data_bind", "\"yes\"")],
            &["flink_market_data_bind"],
        ),
        c("wrong type: bind_address as integer", &[("bind_address", "5")], &["bind_address"]),
        c("port 0", &[("client_request_port", "0")], &["client_request_port"]),
        c("port 70000", &[("market_data_pub_port", "70000")], &["market_data_pub_port"]),
        c("port -1", &[("ingestor_work_port", "-1")], &["ingestor_work_port"]),
        c("port 65536", &[("ingestor_response_port", "65536")], &["ingestor_response_port"]),
        c(
            "two equal ports",
            &[("ingestor_response_port", p0.as_str())],
            &["ingestor_response_port", "client_request_port"],
        ),
        c(
            "two equal ports (work, md)",
            &[("market_data_pub_port", p1.as_str())],
            &["market_data_pub_port", "ingestor_work_port"],
        ),
        c("zero timeout", &[("request_timeout_secs", "0")], &["request_timeout_secs"]),
        c("zero timeout (float)", &[("request_timeout_secs", "0.0")], &["request_timeout_secs"]),
        c("negative timeout", &[("request_timeout_secs", "-1")], &["request_timeout_secs"]),
        c("negative timeout (float)", &[("request_timeout_secs", "-0.5")], &["request_timeout_secs"]),
        c(
            "bad endpoint (no scheme)",
            &[("flink_market_data_endpoint", "\"flink-jobmanager:5557\"")],
            &["flink_market_data_endpoint"],
        ),
        c(
            "bad endpoint (no port)",
            &[("flink_market_data_endpoint", "\"tcp://flink-jobmanager\"")],
            &["flink_market_data_endpoint"],
        ),
        c(
            "bad endpoint (udp)",
            &[("flink_market_data_endpoint", "\"udp://1.2.3.4:5557\"")],
            &["flink_market_data_endpoint"],
        ),
        c(
            "bad endpoint (port 99999)",
            &[("flink_market_data_endpoint", "\"tcp://127.0.0.1:99999\"")],
            &["flink_market_data_endpoint"],
        ),
        c(
            "bad endpoint (* host when connecting)",
            &[("flink_market_data_endpoint", "\"tcp://*:5557\"")],
            &["flink_market_data_endpoint"],
        ),
        c(
            "bad endpoint ([::1)",
            &[("flink_market_data_endpoint", "\"tcp://[::1:5557\"")],
            &["flink_market_data_endpoint"],
        ),
        c(
            "bind mode on one of the relay's ports",
            &[("flink_market_data_bind", "true"), ("flink_market_data_endpoint", up_eq.as_str())],
            &["flink_market_data_endpoint", "flink_market_data_bind", "ingestor_response_port"],
        ),
        c("bind_address with a port", &[("bind_address", "\"tcp://127.0.0.1:5000\"")], &["bind_address"]),
        c("bind_address not tcp", &[("bind_address", "\"ipc:///tmp/x\"")], &["bind_address"]),
        c("bad log_format", &[("log_format", "\"xml\"")], &["log_format"]),
        c("high_water_mark 0", &[("high_water_mark", "0")], &["high_water_mark"]),
        c("high_water_mark too big", &[("high_water_mark", "10000001")], &["high_water_mark"]),
        c("max_pending_requests 0", &[("max_pending_requests", "0")], &["max_pending_requests"]),
        c("max_message_bytes 1023", &[("max_message_bytes", "1023")], &["max_message_bytes"]),
        c("handshake_timeout_secs 0", &[("handshake_timeout_secs", "0")], &["handshake_timeout_secs"]),
        c("heartbeat_timeout_secs 0", &[("heartbeat_timeout_secs", "0")], &["heartbeat_timeout_secs"]),
        c("heartbeat_interval_secs -1", &[("heartbeat_interval_secs", "-1")], &["heartbeat_interval_secs"]),
        Case {
            what: "TOML syntax error",
            config: format!("{base}request_timeout_secs = = 5\n"),
            keys: vec!["request_timeout_secs"],
        },
        Case {
            what: "TOML syntax error (unclosed string)",
            config: format!("{base}log_format = \"text\n"),
            keys: vec!["log_format"],
        },
        Case {
            what: "duplicate key",
            config: format!("{base}client_request_port = {}\n", ports[0]),
            keys: vec!["client_request_port"],
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let (status, stderr) = run_once(Some(&case.config), &[], STEP);
        let mut problems = Vec::new();
        match status {
            None => problems.push("did not exit within 10 s".to_owned()),
            Some(s) if s.code() != Some(2) => problems.push(format!("exit status {s}, want 2")),
            Some(_) => {}
        }
        if !case.keys.iter().any(|k| stderr.contains(k)) {
            problems.push(format!("stderr does not name {:?}", case.keys));
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
                "{}: {}\n  config:\n{}  stderr: {}",
                case.what,
                problems.join("; "),
                case.config,
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} config cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A good config with every documented key set runs (and stops on SIGTERM with status 0).
#[test]
fn full_config_accepted() {
    let mut relay = Relay::start(
        Opts::default()
            .set("flink_market_data_bind", "false")
            .set("request_timeout_secs", "2.5")
            .set("high_water_mark", "1000")
            .set("max_pending_requests", "10")
            .set("max_message_bytes", "1024")
            .set("handshake_timeout_secs", "2")
            .set("log_format", "\"text\"")
            .set("heartbeat_interval_secs", "0")
            .set("heartbeat_timeout_secs", "0.5"),
    );
    relay.signal("TERM");
    let status = relay.wait_exit(Duration::from_secs(6)).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", relay.log_text());
}

/// `relay --help` and `--version` succeed; any other argument is refused with status 2.
#[test]
fn command_line_arguments() {
    let (status, out) = run_once(None, &["--help"], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "--help: {out}");
    assert!(!out.trim().is_empty(), "--help prints something");
    assert!(!out.contains("listening"), "--help must not start the relay: {out}");
    let (status, out) = run_once(None, &["--version"], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "--version: {out}");
    assert!(out.contains("0.1.0"), "--version prints the version: {out}");
    for args in [&["--bogus"][..], &["serve"], &["--config", "/x.toml"]] {
        let (status, out) = run_once(None, args, STEP);
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{args:?}: {out}");
        assert!(!out.contains("listening"), "{args:?} must not start the relay: {out}");
    }
}

/// A port already in use is not a config error: status 1, the message names the key, and whatever was
/// bound is released.
#[test]
fn port_in_use_exits_1() {
    let ports = free_ports(5);
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, ports[3])).expect("hold the market-data port");
    let (status, stderr) = run_once(Some(&base_config(&ports)), &[], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("market_data_pub_port"), "stderr names the key: {stderr}");
    drop(held);
    for p in &ports[..4] {
        assert!(port_is_free(Ipv4Addr::LOCALHOST, *p), "port {p} released; stderr: {stderr}");
    }
}

/// `CONFIG_PATH` naming no file: the defaults run (ports 5555, 5556, 5558, 5559 on all interfaces) with
/// a warn line. Skipped when one of those ports is taken on this machine.
#[test]
fn missing_config_file_runs_defaults() {
    // 9559: the admin endpoint, on the bind host by default.
    let defaults = [5555u16, 5556, 5558, 5559, 9559];
    if let Some(p) = defaults
        .iter()
        .find(|p| !port_is_free(Ipv4Addr::UNSPECIFIED, **p) || !port_is_free(Ipv4Addr::LOCALHOST, **p))
    {
        eprintln!("SKIPPED missing_config_file_runs_defaults: default port {p} is in use on this machine");
        return;
    }
    let dir = TempDir::new("nocfg");
    let missing = dir.path().join("does-not-exist.toml");
    let mut child = std::process::Command::new(relay_bin())
        .env("CONFIG_PATH", &missing)
        .env("RUST_LOG", "relay=info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start relay");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().expect("stderr");
    let mut child = Kill(child);
    let rx = {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(strip_ansi(&line)).is_err() {
                    return;
                }
            }
        });
        rx
    };
    let mut log = Vec::new();
    let deadline = Instant::now() + STEP;
    while log.iter().filter(|l: &&String| l.contains("listening")).count() < 4
        || !log.iter().any(|l| l.contains("admin endpoint serving"))
    {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => log.push(l),
            Err(_) => {
                panic!("no 4 `listening` lines and `admin endpoint serving` on defaults:\n{}", log.join("\n"))
            }
        }
    }
    let warn = log.iter().find(|l| l.contains("no config file, running on defaults"));
    assert!(warn.is_some_and(|l| l.contains("WARN")), "warn line missing:\n{}", log.join("\n"));
    let missing_s = missing.display().to_string();
    assert!(
        warn.is_some_and(|l| l.contains(&missing_s)),
        "the warn line names the path:\n{}",
        log.join("\n")
    );
    for p in defaults {
        assert!(
            log.iter()
                .any(|l| (l.contains("listening") || l.contains("admin endpoint"))
                    && l.contains(&format!(":{p}"))),
            "port {p}:\n{}",
            log.join("\n")
        );
    }
    // It answers on the default client port.
    let mut py = Py::new();
    py.sock("cli", "DEALER", "connect", "tcp://127.0.0.1:5559", &[]);
    let r = dealer_roundtrip(&mut py, "cli", b"defaults", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "UNAVAILABLE");
    let status = std::process::Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status();
    assert!(status.is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        if let Ok(Some(s)) = child.0.try_wait() {
            assert_eq!(s.code(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "no exit within 6 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `RUST_LOG=relay=warn` hides the info lines (`listening`, `request forwarded`, `response sent`) but
/// keeps the warn lines (`request timed out`).
#[test]
fn log_filter_warn_hides_info() {
    let mut relay = Relay::start(
        Opts::default().rust_log(Some("relay=warn")).set("request_timeout_secs", "1").listening(0),
    );
    // Ready when the client port accepts: poll with a DEALER round trip.
    let mut py = Py::new();
    add_ingestor_quiet(&mut py, &relay, "ing", "BINANCE:");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    // Wait until the subscription is effective (no log line to tell).
    let deadline = Instant::now() + STEP;
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("w-{n}");
        py.send("cli", &dealer_req(id.as_bytes(), b"BINANCE:BTC/USDT", b""));
        let r = parse_reply(&py.msg("cli"), true);
        if r.status == "OK" || r.status == "TIMEOUT" {
            break;
        }
        assert!(Instant::now() < deadline, "the ingestor never became visible: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    py.cmd("AUTO ing_w ing_r 4f4b 78");
    let r = dealer_roundtrip(&mut py, "cli", b"warn-ok", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    py.cmd("AUTO ing_w nobody 4f4b 78");
    let r = dealer_roundtrip(&mut py, "cli", b"warn-to", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "TIMEOUT");
    relay.wait_log(0, &["WARN", "request timed out", "request_id=warn-to"], STEP);
    relay.drain(Duration::from_millis(300));
    let text = relay.log_text();
    for hidden in ["listening", "request forwarded", "response received", "response sent", " INFO "] {
        assert!(!text.contains(hidden), "RUST_LOG=relay=warn must hide {hidden:?}:\n{text}");
    }
}

fn add_ingestor_quiet(py: &mut Py, relay: &Relay, name: &str, prefix: &str) {
    py.sock(&format!("{name}_r"), "DEALER", "connect", &relay.response_ep(), &[]);
    py.sock(
        &format!("{name}_w"),
        "SUB",
        "connect",
        &relay.work_ep(),
        &[&format!("sub={}", hex(prefix.as_bytes()))],
    );
}

/// With `RUST_LOG` unset the default filter is `relay=info`: the `listening` lines, not the
/// per-request lines (at `debug` since version 1.1). With `relay=debug`, request ids are logged as
/// text when printable ASCII and as hex otherwise.
#[test]
fn log_default_filter_and_request_id_rendering() {
    let mut quiet = Relay::start(Opts::default().rust_log(None));
    let mut py = Py::new();
    add_ingestor(&mut py, &mut quiet, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 78");
    py.sock("cli", "DEALER", "connect", &quiet.client_ep(), &[]);
    assert_eq!(dealer_roundtrip(&mut py, "cli", b"quiet-1", "BINANCE:BTC/USDT", b"").status, "OK");
    quiet.drain(QUIET);
    for hidden in ["request forwarded", "response received", "response sent"] {
        assert!(
            !quiet.has_log(0, &[hidden]),
            "`{hidden}` shown by the default filter:\n{}",
            quiet.log_text()
        );
    }
    for role in ["clients", "ingestor work", "ingestor responses", "market data out"] {
        let field = format!("role={role}");
        assert!(
            quiet.has_log(0, &["listening", &field]),
            "no `listening role={role}`:\n{}",
            quiet.log_text()
        );
    }
    drop(quiet);

    let mut relay = Relay::start(Opts::default().rust_log(Some("relay=debug")));
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 78");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let mark = relay.mark();
    let r = dealer_roundtrip(&mut py, "cli", b"abc-1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    let r = dealer_roundtrip(&mut py, "cli", b"\x00\x01\xfe", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    let line = relay.wait_log(mark, &["request forwarded", "request_id=abc-1"], STEP);
    assert!(line.contains("DEBUG") && line.contains("relay"), "{line}");
    assert!(has_field(&line, "prefix", "BINANCE:"), "{line}");
    if !line.contains("request forwarded prefix=BINANCE: request_id=abc-1") {
        eprintln!("note: the line differs from the contract's example `request forwarded prefix=BINANCE: request_id=abc-1`: {line}");
    }
    let hex_id = |l: &str| has_field(l, "request_id", "0001fe") || has_field(l, "request_id", "0x0001fe");
    relay.wait_log_by(mark, STEP, "request forwarded request_id=(0x)0001fe", |l| {
        l.contains("request forwarded") && hex_id(l)
    });
    relay.wait_log_by(mark, STEP, "response sent request_id=(0x)0001fe", |l| {
        l.contains("response sent") && hex_id(l)
    });
}

/// §5: "Log lines (`tracing`, target `relay`)": every line's target is `relay` (text and JSON), so a
/// consumer filtering on the target sees them all.
#[test]
fn log_target_is_relay() {
    let up = free_port();
    let mut src = Py::new();
    assert!(src.try_bind("src", "PUB", &ep(up)));
    let mut relay = Relay::with(&[("flink_market_data_endpoint", &format!("\"{}\"", ep(up)))]);
    relay.wait_log(0, &["upstream connected"], STEP);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let r = dealer_roundtrip(&mut py, "cli", b"target-1", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "UNAVAILABLE");
    py.send("ing_r", &response(b"target-unknown", "OK", &[]));
    relay.wait_log(0, &["dropped"], STEP);
    let text = relay.log_text();
    let off_target: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !l.contains(" relay: "))
        .collect();
    assert!(off_target.is_empty(), "log lines with a target other than `relay`:\n{}", off_target.join("\n"));
}

/// `log_format = "json"`: one JSON object per line, with `timestamp`, `level`, `target` and
/// `fields.message`.
#[test]
fn log_json_format() {
    let mut relay = Relay::start(Opts::default().set("log_format", "\"json\"").rust_log(Some("relay=debug")));
    let mut py = Py::new();
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let r = dealer_roundtrip(&mut py, "cli", b"json-1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "UNAVAILABLE");
    relay.wait_log(0, &["request refused", "json-1"], STEP);
    let text = relay.log_text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 5, "{text}");
    for l in &lines {
        let l = l.trim();
        assert!(l.starts_with('{') && l.ends_with('}'), "not one JSON object per line: {l}");
        for key in ["\"timestamp\"", "\"level\"", "\"target\"", "\"fields\""] {
            assert!(l.contains(key), "no {key} in {l}");
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("\"message\":\"listening\"") && l.contains("\"target\":\"relay")),
        "no listening object: {text}"
    );
    assert!(
        lines.iter().any(
            |l| l.contains("\"message\":\"request refused\"") && l.contains("\"status\":\"UNAVAILABLE\"")
        ),
        "request refused with its status field: {text}"
    );

    // RELAY_LOG_FORMAT overrides the file's `log_format`.
    let mut relay =
        Relay::start(Opts::default().set("log_format", "\"text\"").env("RELAY_LOG_FORMAT", "json"));
    relay.drain(Duration::from_millis(200));
    let text = relay.log_text();
    assert!(text.lines().any(|l| l.contains("\"message\":\"listening\"")), "RELAY_LOG_FORMAT=json: {text}");
    assert!(text.lines().filter(|l| !l.trim().is_empty()).all(|l| l.trim().starts_with('{')), "{text}");
}

/// B-18: SIGTERM with requests pending: every pending client (REQ and DEALER, several requests) gets
/// UNAVAILABLE "relay shutting down"; the relay exits 0 within 5 s; `shutting down` and `stopped` lines.
#[test]
fn sigterm_answers_pending_and_exits_0() {
    let mut relay = Relay::with(&[("request_timeout_secs", "30")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("r1", "REQ", "connect", &relay.client_ep(), &[]);
    py.sock("d1", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("d2", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    py.send("r1", &body(b"term-r1", b"BINANCE:BTC/USDT", b""));
    py.send("d1", &dealer_req(b"term-d1a", b"BINANCE:BTC/USDT", b""));
    py.send("d1", &dealer_req(b"term-d1b", b"BINANCE:ETH/USDT", b""));
    py.send("d2", &dealer_req(b"term-d2", b"BINANCE:BTC/USDT", b""));
    for _ in 0..4 {
        py.msg("ing_w");
    }
    let mark = relay.mark();
    let t0 = Instant::now();
    relay.signal("TERM");
    let mut got = Vec::new();
    for (client, dealer) in [("r1", false), ("d1", true), ("d1", true), ("d2", true)] {
        let r = parse_reply(&py.msg(client), dealer);
        assert_eq!(r.status, "UNAVAILABLE", "{r:?}");
        assert_eq!(r.reason(), "relay shutting down");
        got.push(String::from_utf8_lossy(&r.id).into_owned());
    }
    got.sort();
    assert_eq!(got, ["term-d1a", "term-d1b", "term-d2", "term-r1"]);
    let status =
        relay.wait_exit(Duration::from_secs(7)).unwrap_or_else(|| panic!("still running 7 s after SIGTERM"));
    let e = t0.elapsed();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(e <= Duration::from_millis(5500), "exit {e:?} after SIGTERM, contract: within 5 s");
    relay.drain(Duration::from_millis(200));
    relay.wait_log(mark, &["shutting down", "pending=4"], Duration::from_secs(1));
    relay.wait_log(mark, &["stopped"], Duration::from_secs(1));
    py.no_msg("d1", Duration::from_millis(200), "one reply per request");
}

/// SIGINT behaves as SIGTERM; with nothing pending the relay exits 0 quickly.
#[test]
fn sigint_exits_0() {
    let mut relay = Relay::start(Opts::default());
    let t0 = Instant::now();
    relay.signal("INT");
    let status =
        relay.wait_exit(Duration::from_secs(7)).unwrap_or_else(|| panic!("still running 7 s after SIGINT"));
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() <= Duration::from_millis(5500), "exit after {:?}", t0.elapsed());
}
