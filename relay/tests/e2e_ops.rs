//! End-to-end tests of the relay's operations surface (docs/relay-protocol.md §7): the admin endpoint
//! (`/metrics`, `/livez`, `/readyz`), metrics that agree with what pyzmq clients saw, a real Prometheus
//! scraping the relay, the Grafana dashboard's queries, and the request summary line.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Polls `/metrics` until `sample` has the value `want` (monitor events and scrape-time values may
/// lag a moment); panics with the whole body otherwise.
fn wait_metric(relay: &Relay, sample: &str, want: f64) {
    let deadline = Instant::now() + STEP;
    loop {
        let (status, body) = relay.admin_get("/metrics");
        assert_eq!(status, 200);
        let got = metric_value(&body, sample);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sample} = {got}, want {want}; /metrics:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn requests(prefix: &str, outcome: &str) -> String {
    format!("relay_requests_total{{prefix=\"{prefix}\",outcome=\"{outcome}\"}}")
}

/// A known mix of outcomes from pyzmq clients (OK, ERROR, TIMEOUT, BAD_REQUEST, DUPLICATE,
/// UNAVAILABLE, a response for nothing pending): every counter equals what the clients saw; peers,
/// subscriptions, handshake failures, market data and the upstream gauge follow the peers.
#[test]
fn metrics_agree_with_what_clients_saw() {
    let up = free_port();
    let mut src = Py::new();
    assert!(src.try_bind("src", "PUB", &ep(up)), "bind the source");
    let mut relay = Relay::start(
        Opts::default()
            .set("request_timeout_secs", "1")
            .set("flink_market_data_endpoint", format!("\"{}\"", ep(up))),
    );
    relay.wait_log(0, &["upstream connected"], STEP);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);
    py.sync();

    let mut seen: std::collections::BTreeMap<String, u32> = Default::default();
    let mut saw = |r: &Reply| *seen.entry(r.status.clone()).or_default() += 1;
    // 3 OK and 2 ERROR answered by the ingestor (DEALER and REQ clients).
    for (i, status) in ["OK", "OK", "ERROR", "OK", "ERROR"].iter().enumerate() {
        let id = format!("mix-{i}");
        py.send("cli", &dealer_req(id.as_bytes(), b"BINANCE:BTC/USDT", b""));
        expect_work(&mut py, "ing", "BINANCE:", id.as_bytes(), "BINANCE:BTC/USDT", b"");
        py.send("ing_r", &response(id.as_bytes(), status, &[b"data"]));
        saw(&parse_reply(&py.msg("cli"), true));
    }
    // 1 TIMEOUT (from the REQ client).
    py.send("req", &body(b"mix-to", b"BINANCE:ETH/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"mix-to", "BINANCE:ETH/USDT", b"");
    saw(&parse_reply(&py.msg("req"), false));
    // A response for the timed-out request: not pending, dropped.
    py.send("ing_r", &response(b"mix-to", "OK", &[]));
    // 2 BAD_REQUEST (no prefix: counted under `none`).
    saw(&dealer_roundtrip(&mut py, "cli", b"mix-bad1", "NOCOLON", b""));
    saw(&dealer_roundtrip(&mut py, "cli", b"mix-bad2", ":X", b""));
    // 1 DUPLICATE while mix-dup is pending, then mix-dup answered OK.
    py.send("cli", &dealer_req(b"mix-dup", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"mix-dup", "BINANCE:BTC/USDT", b"");
    wait_metric(&relay, "relay_pending_requests", 1.0);
    saw(&dealer_roundtrip(&mut py, "cli", b"mix-dup", "BINANCE:BTC/USDT", b""));
    py.send("ing_r", &response(b"mix-dup", "OK", &[]));
    saw(&parse_reply(&py.msg("cli"), true));
    // 2 UNAVAILABLE (no ingestor serves KRAKEN:).
    saw(&dealer_roundtrip(&mut py, "cli", b"mix-u1", "KRAKEN:XBT/USD", b""));
    saw(&dealer_roundtrip(&mut py, "cli", b"mix-u2", "KRAKEN:ETH/USD", b""));

    let want: std::collections::BTreeMap<String, u32> =
        [("OK", 4), ("ERROR", 2), ("TIMEOUT", 1), ("BAD_REQUEST", 2), ("DUPLICATE", 1), ("UNAVAILABLE", 2)]
            .into_iter()
            .map(|(s, n)| (s.to_owned(), n))
            .collect();
    assert_eq!(seen, want, "what the clients saw");

    wait_metric(&relay, "relay_responses_not_pending_total", 1.0);
    let (_, body) = relay.admin_get("/metrics");
    let m = |s: &str| metric_value(&body, s);
    assert_eq!(m(&requests("BINANCE:", "ok")), 4.0, "{body}");
    assert_eq!(m(&requests("BINANCE:", "error")), 2.0, "{body}");
    assert_eq!(m(&requests("BINANCE:", "timeout")), 1.0, "{body}");
    assert_eq!(m(&requests("BINANCE:", "duplicate")), 1.0, "{body}");
    assert_eq!(m(&requests("none", "bad_request")), 2.0, "{body}");
    assert_eq!(m(&requests("KRAKEN:", "unavailable")), 2.0, "{body}");
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("relay_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 12.0, "every reply counted once:\n{body}");
    assert_eq!(m("relay_request_duration_seconds_count"), 6.0, "OK and ERROR answers timed: {body}");
    assert_eq!(m("relay_pending_requests"), 0.0, "{body}");
    assert_eq!(m("relay_dropped_messages_total{kind=\"response_not_pending\"}"), 1.0, "{body}");
    assert!(body.contains("relay_build_info{version=\""), "{body}");
    assert!(body.contains("# TYPE relay_request_duration_seconds histogram"), "{body}");

    // Peers per port: 2 clients, 1 ingestor on each ingestor port, the upstream.
    wait_metric(&relay, "relay_peers{port=\"clients\"}", 2.0);
    wait_metric(&relay, "relay_peers{port=\"ingestor_work\"}", 1.0);
    wait_metric(&relay, "relay_peers{port=\"ingestor_responses\"}", 1.0);
    wait_metric(&relay, "relay_peers{port=\"market_data_in\"}", 1.0);
    wait_metric(&relay, "relay_upstream_connected", 1.0);
    // The ingestor's subscriptions: BINANCE: and add_ingestor's marker prefix.
    wait_metric(&relay, "relay_subscriptions{port=\"ingestor_work\"}", 2.0);
    py.close("req");
    wait_metric(&relay, "relay_peers{port=\"clients\"}", 1.0);

    // A port probe (connect, close without a word): a handshake failure, reason `closed` (whether
    // the close is a FIN or, with the relay's greeting unread, a reset).
    drop(TcpStream::connect((Ipv4Addr::LOCALHOST, relay.client_port)).expect("connect"));
    wait_metric(&relay, "relay_handshake_failures_total{port=\"clients\",reason=\"closed\"}", 1.0);

    // Market data: a subscriber, the source repeating one message; in and out count alike.
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(b"BINANCE:"))]);
    wait_metric(&relay, "relay_subscriptions{port=\"market_data_out\"}", 1.0);
    let msg = vec![b"BINANCE:BTC/USDT".to_vec(), b"tick".to_vec()];
    src.cmd(&format!("REPEAT src 20 {}", msg_arg(&msg)));
    let got = py.msg("sub");
    assert_eq!(got, zmtp_interop::reprs(&msg));
    src.cmd("STOP src");
    std::thread::sleep(Duration::from_millis(300));
    let (_, body) = relay.admin_get("/metrics");
    let md_in = metric_value(&body, "relay_market_data_messages_in_total");
    assert!(md_in >= 1.0, "{body}");
    assert_eq!(md_in, metric_value(&body, "relay_market_data_messages_out_total"), "{body}");
    assert!(metric_value(&body, "relay_market_data_bytes_in_total") >= md_in * 20.0, "{body}");
}

/// `/livez` is 200 while the process serves; `/readyz` is 503 naming the upstream until the source
/// accepts the connection, then 200 `ready`; with `upstream_optional` or a bound upstream it is
/// ready at once; unknown paths are 404.
#[test]
fn livez_and_readyz() {
    let up = free_port();
    let mut relay = Relay::with(&[("flink_market_data_endpoint", &format!("\"{}\"", ep(up)))]);
    assert_eq!(relay.admin_get("/livez").0, 200);
    let (status, body) = relay.admin_get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("upstream not connected") && body.contains("flink_market_data_endpoint"), "{body}");
    assert_eq!(relay.admin_get("/nothing").0, 404);
    let mut src = Py::new();
    assert!(src.try_bind("src", "PUB", &ep(up)));
    let deadline = Instant::now() + STEP;
    loop {
        let (status, body) = relay.admin_get("/readyz");
        if status == 200 {
            assert_eq!(body.trim(), "ready");
            break;
        }
        assert!(Instant::now() < deadline, "not ready after the source came up: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    src.kill();
    relay.wait_log(0, &["upstream disconnected"], STEP);
    let (status, body) = relay.admin_get("/readyz");
    assert_eq!(status, 503, "{body}");
    drop(relay);

    let optional = Relay::with(&[("upstream_optional", "true")]);
    assert_eq!(optional.admin_get("/readyz"), (200, "ready\n".to_owned()));
    drop(optional);
    let bound = Relay::start(
        Opts::default()
            .set("flink_market_data_bind", "true")
            .set("flink_market_data_endpoint", format!("\"tcp://127.0.0.1:{}\"", free_port()))
            .listening(5),
    );
    assert_eq!(bound.admin_get("/readyz"), (200, "ready\n".to_owned()));
}

/// `admin_address` in use: exit 1 naming the key, nothing left bound; a bad value: exit 2.
#[test]
fn admin_address_in_use_or_bad() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let ports = free_ports(5);
    let base = format!(
        "bind_address = \"tcp://127.0.0.1\"\nclient_request_port = {}\ningestor_work_port = {}\n\
         ingestor_response_port = {}\nmarket_data_pub_port = {}\nflink_market_data_endpoint = \"{}\"\n",
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        ep(ports[4])
    );
    let (status, stderr) =
        run_once(Some(&format!("{base}admin_address = \"127.0.0.1:{port}\"\n")), &[], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(stderr.contains("admin_address"), "{stderr}");
    for p in &ports[..4] {
        assert!(port_is_free(Ipv4Addr::LOCALHOST, *p), "port {p} left bound: {stderr}");
    }
    let (status, stderr) = run_once(Some(&format!("{base}admin_address = \"nowhere\"\n")), &[], STEP);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(stderr.contains("admin_address"), "{stderr}");
}

/// At shutdown the request summary (`requests ok=… unavailable=…`) is logged at `info`, the
/// per-request lines being at `debug`; `/readyz` is 503 from the signal on.
#[test]
fn summary_line_at_info() {
    let mut relay =
        Relay::start(Opts::default().rust_log(Some("relay=info")).set("upstream_optional", "true"));
    let mut py = Py::new();
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    for i in 0..3 {
        let r = dealer_roundtrip(&mut py, "cli", format!("sum-{i}").as_bytes(), "BINANCE:BTC/USDT", b"");
        assert_eq!(r.status, "UNAVAILABLE");
    }
    assert!(!relay.has_log(0, &["request refused"]), "per-request lines are at debug");
    relay.signal("TERM");
    let line = relay.wait_log(0, &["INFO", "requests", "unavailable=3"], STEP);
    assert!(has_field(&line, "ok", "0") && has_field(&line, "forwarded", "0"), "{line}");
    assert_eq!(relay.wait_exit(STEP).and_then(|s| s.code()), Some(0));
}

// ---------------------------------------------------------------------------------------------------
// The Grafana dashboard
// ---------------------------------------------------------------------------------------------------

fn dashboard_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/relay-dashboard.json")
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The metric names in a PromQL expression: identifiers not followed by `(` (functions), not inside
/// `{…}`, `[…]` or quotes, not keywords, and not the label lists of `by (…)`, `without (…)`,
/// `on (…)`, `ignoring (…)`, `group_left (…)`, `group_right (…)`.
fn metric_names(expr: &str) -> Vec<String> {
    const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    // Operators, and the aggregations (`sum by (le) (…)`: not followed by `(` directly).
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let skip_spaces = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let (mut names, mut i) = (Vec::new(), 0);
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '{' => Some('}'),
            '[' => Some(']'),
            '"' | '\'' => Some(c),
            _ => None,
        };
        if let Some(close) = close {
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let j = skip_spaces(i);
            let paren = j < chars.len() && chars[j] == '(';
            if GROUPING.contains(&word.as_str()) {
                if paren {
                    i = j;
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                }
            } else if !paren && !KEYWORDS.contains(&word.as_str()) {
                names.push(word);
            }
            continue;
        }
        i += 1;
    }
    names
}

/// Every sample name `/metrics` exports or may export: the sample lines, plus each `# TYPE` family
/// with its suffixes (`_total` for counters, `_bucket`/`_sum`/`_count` for histograms, `_info`), so a
/// labelled family with no sample yet (the breaker before any breaker exists) still counts.
fn exported_names(body: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
            names.insert(name.to_owned());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// deploy/grafana/relay-dashboard.json parses, has panels, and every metric named in every `expr` is
/// exported by a running relay's `/metrics`.
#[test]
fn dashboard_queries_name_exported_metrics() {
    let text = std::fs::read_to_string(dashboard_path()).expect("read the dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(json["panels"].as_array().is_some_and(|p| p.len() >= 8), "panels");
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let relay = Relay::with(&[("upstream_optional", "true")]);
    let (status, body) = relay.admin_get("/metrics");
    assert_eq!(status, 200);
    let exported = exported_names(&body);
    let mut unknown = Vec::new();
    for expr in &exprs {
        let names: Vec<String> = metric_names(expr).into_iter().filter(|n| n.starts_with("relay_")).collect();
        assert!(!names.is_empty(), "no relay metric in {expr:?}");
        for name in names {
            if !exported.contains(&name) {
                unknown.push(format!("{name} (in {expr})"));
            }
        }
    }
    assert!(unknown.is_empty(), "not exported:\n{}\n\nexported: {exported:?}", unknown.join("\n"));
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(relay_request_duration_seconds_bucket{job=\"relay\"}[5m])))",
    );
    assert_eq!(names, ["relay_request_duration_seconds_bucket"]);
    let names =
        metric_names("sum by (outcome) (rate(relay_requests_total[1m])) / on() relay_pending_requests");
    assert_eq!(names, ["relay_requests_total", "relay_pending_requests"]);
}

// ---------------------------------------------------------------------------------------------------
// A real Prometheus
// ---------------------------------------------------------------------------------------------------

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Installs Debian's `prometheus` when missing (as root, with apt-get); `Err(reason)` if it cannot.
fn ensure_prometheus() -> Result<(), String> {
    if std::path::Path::new(PROMETHEUS).exists() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    if !root || Command::new("apt-get").arg("--version").stdout(Stdio::null()).status().is_err() {
        return Err(format!("{PROMETHEUS} is missing and cannot be installed here (needs root and apt-get)"));
    }
    eprintln!("installing prometheus (apt-get)");
    for args in [&["update", "-qq"][..], &["install", "-y", "-qq", "prometheus"][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get {args:?} failed ({status})"));
        }
    }
    if std::path::Path::new(PROMETHEUS).exists() {
        Ok(())
    } else {
        Err(format!("apt-get installed prometheus but {PROMETHEUS} is missing"))
    }
}

/// Prometheus (Debian's package, run directly) scrapes the relay's admin endpoint every second; after
/// N requests its HTTP API reports `relay_requests_total` = N.
#[test]
fn prometheus_scrapes_the_relay() {
    if let Err(reason) = ensure_prometheus() {
        eprintln!("SKIPPED prometheus_scrapes_the_relay: {reason}");
        return;
    }
    let relay = Relay::with(&[("upstream_optional", "true")]);
    let mut py = Py::new();
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    const N: usize = 7;
    for i in 0..N {
        let r = dealer_roundtrip(&mut py, "cli", format!("prom-{i}").as_bytes(), "PROM:X", b"");
        assert_eq!(r.status, "UNAVAILABLE");
    }
    let dir = TempDir::new("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: relay\n    \
             static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            relay.admin_port
        ),
    )
    .expect("write prometheus.yml");
    let prom_port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prometheus = Kill(child);
    let query =
        "/api/v1/query?query=relay_requests_total%7Bprefix%3D%22PROM%3A%22%2Coutcome%3D%22unavailable%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    loop {
        if let Ok((200, body)) = http_get(prom_port, query) {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let value = json["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
            if value == Some(N as f64) {
                break;
            }
            last = body;
        }
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            let targets = http_get(prom_port, "/api/v1/targets").map(|r| r.1).unwrap_or_default();
            panic!("Prometheus never reported {N}; last answer: {last}\ntargets: {targets}\nprometheus log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
