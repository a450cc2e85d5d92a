//! SIGHUP reloads the configuration (issue 16, "Configure and deploy"): the live keys change at once
//! without dropping a connection, keys that take a restart are named in a `warn`, and a file that no
//! longer loads changes nothing. Also: YAML configuration files, and a `CONFIG_PATH` that names no
//! file (exit 2) against the default path that may be absent.

mod common;

use std::time::Duration;

use common::*;

/// `max_pending_requests` and `request_timeout_secs` change live on SIGHUP: the same client and
/// ingestor connections (never reconnected) see OVERLOADED before and a forwarded request after;
/// a changed `high_water_mark` is named as needing a restart; a broken file is refused and the
/// running settings stay.
#[test]
fn sighup_changes_live_keys_without_dropping_connections() {
    let mut relay = Relay::with(&[("max_pending_requests", "1"), ("request_timeout_secs", "30")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    py.send("cli", &dealer_req(b"r1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"r1", "BINANCE:BTC/USDT", b"");
    let r = dealer_roundtrip(&mut py, "cli", b"r2", "BINANCE:BTC/USDT", b"");
    r.assert_status("OVERLOADED");

    let mark = relay.mark();
    relay.rewrite_config(&[
        ("max_pending_requests", "10"),
        ("request_timeout_secs", "0.5"),
        ("high_water_mark", "500"),
    ]);
    relay.signal("HUP");
    let line = relay.wait_log(mark, &["configuration keys changed that take a restart"], STEP);
    assert!(line.contains("high_water_mark") && !line.contains("max_pending_requests"), "{line}");
    let line = relay.wait_log(mark, &["configuration reloaded"], STEP);
    assert!(line.contains("max_pending_requests") && line.contains("request_timeout_secs"), "{line}");

    // Live: a second request is forwarded now, and times out after the new 0.5 s.
    py.send("cli", &dealer_req(b"r3", b"BINANCE:ETH/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"r3", "BINANCE:ETH/USDT", b"");
    let r = parse_reply(&py.msg_within("cli", Duration::from_secs(5)), true);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"r3"[..], "TIMEOUT"), "{r:?}");
    // The first request, pending since before the reload, is answered on the same connections.
    py.send("ing_r", &response(b"r1", "OK", &[b"data"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"r1"[..], "OK"), "{r:?}");
    assert!(
        !relay.has_log(0, &["peer disconnected"]),
        "a reload dropped a connection:\n{}",
        relay.log_text()
    );

    // A file that no longer loads: refused, logged, nothing changes (still 10 pending allowed).
    let mark = relay.mark();
    relay.rewrite_config(&[("max_pending_requests", "0")]);
    relay.signal("HUP");
    let line = relay.wait_log(mark, &["configuration not reloaded"], STEP);
    assert!(line.contains("max_pending_requests"), "{line}");
    py.send("cli", &dealer_req(b"r4", b"BINANCE:ETH/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"r4", "BINANCE:ETH/USDT", b"");
    relay.signal("TERM");
    assert_eq!(relay.wait_exit(STEP).and_then(|s| s.code()), Some(0));
}

/// `log_level` in the file wins over `RUST_LOG` and changes live: per-request `debug` lines appear
/// after a SIGHUP that turns `relay=debug` on, and the file's filter is in force from the start.
#[test]
fn sighup_changes_the_log_filter() {
    let mut relay = Relay::start(
        Opts::default().set("log_level", "\"relay=warn\"").rust_log(Some("relay=debug")).listening(0),
    );
    assert!(
        !relay.has_log(0, &["listening"]),
        "the file's relay=warn hides info lines:\n{}",
        relay.log_text()
    );
    let mark = relay.mark();
    relay.rewrite_config(&[("log_level", "\"relay=info\"")]);
    relay.signal("HUP");
    let line = relay.wait_log(mark, &["configuration reloaded"], STEP);
    assert!(line.contains("log_level"), "{line}");
    relay.signal("TERM");
    relay.wait_log(mark, &["shutting down"], STEP);
    assert_eq!(relay.wait_exit(STEP).and_then(|s| s.code()), Some(0));
}

/// The same keys in YAML, chosen by the `.yaml` extension: the relay runs on the ports it names
/// and answers a request.
#[test]
fn yaml_configuration_runs() {
    let ports = free_ports(5);
    let dir = zmtp_interop::TempDir::new("relay-yaml");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "# the seed's format\nbind_address: \"tcp://127.0.0.1\"\nclient_request_port: {}\n\
             ingestor_work_port: {}\ningestor_response_port: {}\nmarket_data_pub_port: {}\n\
             flink_market_data_endpoint: \"{}\"\nrequest_timeout_secs: 0.5\n",
            ports[0],
            ports[1],
            ports[2],
            ports[3],
            ep(ports[4])
        ),
    )
    .unwrap();
    let (status, stderr) = run_at(&path, &[], Duration::from_secs(3));
    assert_eq!(status, None, "the relay keeps running on a YAML file:\n{stderr}");
    for p in &ports[..4] {
        assert!(stderr.contains(&format!("127.0.0.1:{p}")), "port {p} not bound:\n{stderr}");
    }
    // A YAML error names the key.
    std::fs::write(&path, "client_request_port: 0\n").unwrap();
    let (status, stderr) = run_at(&path, &[], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(stderr.contains("client_request_port"), "{stderr}");
}

/// `CONFIG_PATH` that names no file is an error (exit 2, nothing bound): a typo must not run the
/// defaults on every interface.
#[test]
fn a_named_missing_config_file_is_an_error() {
    let dir = zmtp_interop::TempDir::new("relay-missing");
    let missing = dir.path().join("typo.toml");
    let (status, stderr) = run_at(&missing, &[], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()) && stderr.contains("no file"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}
