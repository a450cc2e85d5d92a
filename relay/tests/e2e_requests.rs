//! End-to-end tests of the relay's request path (docs/relay-protocol.md §1, §5 "Requests"): the `relay`
//! binary with real pyzmq clients and ingestors (tests/peers/relay_peer.py).

mod common;

use std::time::{Duration, Instant};

use common::*;

fn setup(set: &[(&str, &str)]) -> (Relay, Py) {
    let relay = Relay::with(set);
    let py = Py::new();
    (relay, py)
}

fn bytes_pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// OK and ERROR from the ingestor reach the client unchanged (several frames, a 0-byte frame, a
/// large frame, no data frame at all), for a DEALER and a REQ client; the work message has the
/// documented frames; the per-request log lines of §5 appear (at `debug` since version 1.1).
#[test]
fn ok_and_error_pass_data_through_unchanged() {
    let mut relay = Relay::start(Opts::default().rust_log(Some("relay=debug")));
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);
    let mark = relay.mark();

    // DEALER, OK with several frames, among them an empty one and a large one.
    let params = br#"{"period":"1m","start":1700000000}"#;
    py.send("cli", &dealer_req(b"ok-1", b"BINANCE:BTC/USDT", params));
    expect_work(&mut py, "ing", "BINANCE:", b"ok-1", "BINANCE:BTC/USDT", params);
    let big = bytes_pattern(200_000, 7);
    let data: Vec<&[u8]> = vec![b"row-1", b"", b"\x00\xff\x08binary", &big, b"last"];
    py.send("ing_r", &response(b"ok-1", "OK", &data));
    let r = parse_reply(&py.msg("cli"), true);
    assert!(r.envelope.is_empty(), "{r:?}");
    assert_eq!(r.id, b"ok-1");
    assert_eq!(r.status, "OK");
    assert_eq!(r.data, zmtp_interop::reprs(&data), "data frames must pass through unchanged");

    // OK with no data frame at all.
    py.send("cli", &dealer_req(b"ok-2", b"BINANCE:ETH/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"ok-2", "BINANCE:ETH/USDT", b"");
    py.send("ing_r", &response(b"ok-2", "OK", &[]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.id.as_slice(), r.status.as_str(), r.data.len()), (&b"ok-2"[..], "OK", 0), "{r:?}");

    // OK with exactly one 0-byte frame.
    py.send("cli", &dealer_req(b"ok-3", b"BINANCE:ETH/USDT", b"p"));
    expect_work(&mut py, "ing", "BINANCE:", b"ok-3", "BINANCE:ETH/USDT", b"p");
    py.send("ing_r", &response(b"ok-3", "OK", &[b""]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", vec!["0:".to_owned()]), "{r:?}");

    // ERROR with its frames.
    py.send("cli", &dealer_req(b"err-1", b"BINANCE:XRP/USDT", b"{}"));
    expect_work(&mut py, "ing", "BINANCE:", b"err-1", "BINANCE:XRP/USDT", b"{}");
    py.send("ing_r", &response(b"err-1", "ERROR", &[b"exchange said no", b"\x01\x02"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!(r.status, "ERROR");
    assert_eq!(r.id, b"err-1");
    assert_eq!(r.data, zmtp_interop::reprs(&[&b"exchange said no"[..], b"\x01\x02"]));

    // REQ client: same, the REQ socket strips the delimiter.
    py.send("req", &body(b"req-1", b"BINANCE:BTC/USDT", b"q"));
    expect_work(&mut py, "ing", "BINANCE:", b"req-1", "BINANCE:BTC/USDT", b"q");
    py.send("ing_r", &response(b"req-1", "OK", &[b"a", b"b", b"c"]));
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"req-1"[..], "OK"));
    assert_eq!(r.data, zmtp_interop::reprs(&[b"a", b"b", b"c"]));
    // ... and a second request on the same REQ socket.
    py.send("req", &body(b"req-2", b"BINANCE:BTC/USDT", b"q"));
    expect_work(&mut py, "ing", "BINANCE:", b"req-2", "BINANCE:BTC/USDT", b"q");
    py.send("ing_r", &response(b"req-2", "ERROR", &[b"x"]));
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"req-2"[..], "ERROR"));

    // No extra replies anywhere.
    py.no_msg("cli", QUIET, "one reply per request");
    py.no_msg("req", Duration::ZERO, "one reply per request");

    // §5 logging: forwarded, received, sent.
    relay.wait_log(mark, &["DEBUG", "request forwarded", "prefix=BINANCE:", "request_id=ok-1"], STEP);
    relay.wait_log(mark, &["DEBUG", "response received", "request_id=ok-1", "status=OK"], STEP);
    relay.wait_log(mark, &["DEBUG", "response sent", "request_id=ok-1"], STEP);
    relay.wait_log(mark, &["response received", "request_id=err-1", "status=ERROR"], STEP);
}

/// TIMEOUT: not before `request_timeout_secs`, at most ~0.5 s after it (with slack for a loaded
/// machine); the reason frame; the `request timed out` warn line; a late response is dropped.
#[test]
fn timeout_not_early_not_late() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "1")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();

    let t0 = Instant::now();
    py.send("cli", &dealer_req(b"to-1", b"BINANCE:BTC/USDT", b""));
    py.send("req", &body(b"to-2", b"BINANCE:BTC/USDT", b""));
    // (two clients: the relay may see them in either order)
    let mut works = vec![py.msg("ing_w"), py.msg("ing_w")];
    works.sort();
    assert_eq!(
        works,
        [b"to-1", b"to-2"].map(|id| zmtp_interop::reprs(&[
            &b"BINANCE:"[..],
            &[1],
            id,
            b"BINANCE:BTC/USDT",
            b""
        ]))
    );
    let r1 = parse_reply(&py.msg("cli"), true);
    let e1 = t0.elapsed();
    let r2 = parse_reply(&py.msg("req"), false);
    let e2 = t0.elapsed();
    r1.assert_status("TIMEOUT");
    r2.assert_status("TIMEOUT");
    assert_eq!(r1.id, b"to-1");
    assert_eq!(r2.id, b"to-2");
    assert!(r1.reason().starts_with("no response within"), "reason {:?}", r1.reason());
    // The relay starts its timer after our send: the reply can never come before 1 s after t0.
    assert!(e1 >= Duration::from_millis(1000), "TIMEOUT after {e1:?}, before the 1 s timeout");
    assert!(e2 >= Duration::from_millis(1000), "TIMEOUT after {e2:?}, before the 1 s timeout");
    // Contract: at most 0.5 s after the timeout; + 1.5 s slack for a loaded CI machine.
    assert!(e1 <= Duration::from_millis(3000), "TIMEOUT after {e1:?}: too late");
    assert!(e2 <= Duration::from_millis(3000), "TIMEOUT after {e2:?}: too late");
    relay.wait_log(mark, &["WARN", "request timed out", "request_id=to-1"], STEP);
    relay.wait_log(mark, &["WARN", "request timed out", "request_id=to-2"], STEP);

    // A response after the timeout is dropped and counted, never delivered.
    py.send("ing_r", &response(b"to-1", "OK", &[b"late"]));
    py.no_msg("cli", QUIET, "a late response must be dropped");
    relay.wait_log(mark, &["dropped", "kind=response not pending"], STEP);

    // The id can be used again.
    py.send("cli", &dealer_req(b"to-1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"to-1", "BINANCE:BTC/USDT", b"");
    py.send("ing_r", &response(b"to-1", "OK", &[b"fresh"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", zmtp_interop::reprs(&[b"fresh"])));
}

/// A fractional timeout (0.5 s) also works.
#[test]
fn timeout_fractional() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "0.5")]);
    add_ingestor(&mut py, &mut relay, "ing", &["KRAKEN:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let t0 = Instant::now();
    let r = dealer_roundtrip(&mut py, "cli", b"half", "KRAKEN:XBT/USD", b"");
    let e = t0.elapsed();
    r.assert_status("TIMEOUT");
    assert!(e >= Duration::from_millis(500), "TIMEOUT after {e:?}, before 0.5 s");
    assert!(e <= Duration::from_millis(2500), "TIMEOUT after {e:?}: too late");
}

fn expect_unavailable(py: &mut Py, id: &[u8], ticker: &str, prefix: &str) {
    let t0 = Instant::now();
    let r = dealer_roundtrip(py, "cli", id, ticker, b"");
    let e = t0.elapsed();
    r.assert_status("UNAVAILABLE");
    assert_eq!(r.id, id);
    assert_eq!(r.reason(), format!("no ingestor serves {prefix}"));
    // "answered at once, not after the timeout" (the timeout is 10 s here).
    assert!(e < Duration::from_secs(3), "UNAVAILABLE took {e:?}");
}

/// UNAVAILABLE at once when nobody serves the exchange; the served-prefix rules of §1 (`BIN` and `""`
/// serve `BINANCE:`, `BINANCE:BTC` and `KRAKENFUTURES:` do not serve `BINANCE:`/`KRAKEN:`); the prefix
/// vanishes when the only ingestor disconnects or unsubscribes.
#[test]
fn unavailable_and_served_prefix_rules() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "10")]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();

    // Nobody at all.
    expect_unavailable(&mut py, b"u-1", "BINANCE:BTC/USDT", "BINANCE:");
    expect_unavailable(&mut py, b"u-2", "KRAKEN:XBT/USD", "KRAKEN:");

    // Subscriptions that do not serve the exchange prefix.
    add_ingestor(&mut py, &mut relay, "nope", &["BINANCE:BTC", "KRAKENFUTURES:"]);
    expect_unavailable(&mut py, b"u-3", "BINANCE:BTC/USDT", "BINANCE:");
    expect_unavailable(&mut py, b"u-4", "KRAKEN:XBT/USD", "KRAKEN:");

    // `BIN` serves BINANCE: (and receives the work message, topic BINANCE:).
    add_ingestor(&mut py, &mut relay, "bin", &["BIN"]);
    py.send("cli", &dealer_req(b"u-5", b"BINANCE:BTC/USDT", b"x"));
    expect_work(&mut py, "bin", "BINANCE:", b"u-5", "BINANCE:BTC/USDT", b"x");
    py.send("bin_r", &response(b"u-5", "OK", &[b"d"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!(r.status, "OK");
    py.no_msg("nope_w", Duration::ZERO, "BINANCE:BTC does not match the topic BINANCE:");
    // Still not KRAKEN:.
    expect_unavailable(&mut py, b"u-6", "KRAKEN:XBT/USD", "KRAKEN:");

    // The only ingestor serving BINANCE: disconnects: unavailable again.
    let mark = relay.mark();
    py.close("bin_w");
    py.close("bin_r");
    if !relay.log_within(mark, &["ingestor unsubscribed", "prefix=BIN"], Duration::from_secs(5)) {
        eprintln!("note: no `ingestor unsubscribed prefix=BIN` line after the ingestor disconnected");
    }
    expect_unavailable(&mut py, b"u-7", "BINANCE:BTC/USDT", "BINANCE:");

    // `""` serves everything; cancelling it ends that.
    add_ingestor(&mut py, &mut relay, "all", &[""]);
    py.send("cli", &dealer_req(b"u-8", b"KRAKEN:XBT/USD", b""));
    expect_work(&mut py, "all", "KRAKEN:", b"u-8", "KRAKEN:XBT/USD", b"");
    py.send("all_r", &response(b"u-8", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "OK");
    let mark = relay.mark();
    py.cmd("UNSUB all_w");
    relay.wait_log(mark, &["ingestor unsubscribed"], STEP);
    expect_unavailable(&mut py, b"u-9", "KRAKEN:XBT/USD", "KRAKEN:");
    expect_unavailable(&mut py, b"u-10", "BINANCE:BTC/USDT", "BINANCE:");
}

struct BadCase {
    what: &'static str,
    body: Vec<Vec<u8>>,
    /// Frame 1 of the reply.
    id: Vec<u8>,
    /// Acceptable reasons.
    reasons: Vec<String>,
}

fn bad(what: &'static str, body: Vec<Vec<u8>>, id: &[u8], reasons: &[&str]) -> BadCase {
    BadCase { what, body, id: id.to_vec(), reasons: reasons.iter().map(|s| (*s).to_owned()).collect() }
}

fn bad_cases() -> Vec<BadCase> {
    let t = b"BINANCE:BTC/USDT".to_vec();
    let id = b"bad-id".to_vec();
    let p = b"{}".to_vec();
    let long_ticker = {
        let mut v = b"BINANCE:".to_vec();
        v.resize(257, b'X');
        v
    };
    let id64 = vec![b'i'; 64];
    vec![
        bad("no body frames", vec![], b"", &["expected 4 body frames, got 0", "message type must be 0x07"]),
        bad(
            "type 0x08",
            vec![vec![0x08], id.clone(), t.clone(), p.clone()],
            &id,
            &["message type must be 0x07"],
        ),
        bad(
            "type 0x0700",
            vec![vec![0x07, 0x00], id.clone(), t.clone(), p.clone()],
            &id,
            &["message type must be 0x07"],
        ),
        bad(
            "empty type frame",
            vec![vec![], id.clone(), t.clone(), p.clone()],
            &id,
            &["message type must be 0x07"],
        ),
        bad("1 body frame", vec![vec![0x07]], b"", &["expected 4 body frames, got 1"]),
        bad("2 body frames", vec![vec![0x07], id.clone()], &id, &["expected 4 body frames, got 2"]),
        bad(
            "3 body frames",
            vec![vec![0x07], id.clone(), t.clone()],
            &id,
            &["expected 4 body frames, got 3"],
        ),
        bad(
            "5 body frames",
            vec![vec![0x07], id.clone(), t.clone(), p.clone(), b"extra".to_vec()],
            &id,
            &["expected 4 body frames, got 5"],
        ),
        bad(
            "request_id 0 bytes",
            vec![vec![0x07], vec![], t.clone(), p.clone()],
            b"",
            &["request_id must be 1 to 64 bytes"],
        ),
        bad(
            "request_id 65 bytes",
            vec![vec![0x07], vec![b'i'; 65], t.clone(), p.clone()],
            b"",
            &["request_id must be 1 to 64 bytes"],
        ),
        bad(
            "ticker without ':'",
            vec![vec![0x07], id.clone(), b"BTCUSDT".to_vec(), p.clone()],
            &id,
            &["ticker must be EXCHANGE:SYMBOL"],
        ),
        bad(
            "ticker ':BTC'",
            vec![vec![0x07], id.clone(), b":BTC".to_vec(), p.clone()],
            &id,
            &["ticker must be EXCHANGE:SYMBOL"],
        ),
        bad(
            "ticker 'BINANCE:'",
            vec![vec![0x07], id.clone(), b"BINANCE:".to_vec(), p.clone()],
            &id,
            &["ticker must be EXCHANGE:SYMBOL"],
        ),
        bad(
            "empty ticker",
            vec![vec![0x07], id.clone(), vec![], p.clone()],
            &id,
            &["ticker must be EXCHANGE:SYMBOL"],
        ),
        bad(
            "ticker 257 bytes",
            vec![vec![0x07], id64.clone(), long_ticker, p.clone()],
            &id64,
            &["ticker longer than 256 bytes"],
        ),
        bad(
            "ticker not UTF-8",
            vec![vec![0x07], id.clone(), b"BINANCE:\xff\xfeBTC".to_vec(), p.clone()],
            &id,
            &["ticker is not UTF-8"],
        ),
        bad(
            "params 65537 bytes",
            vec![vec![0x07], id.clone(), t.clone(), vec![b'p'; 65537]],
            &id,
            &["params longer than 65536 bytes"],
        ),
    ]
}

/// BAD_REQUEST for every case of A-Q1 (one reply each, frame 1 empty when the request_id is
/// unreadable, the reason of §5); nothing is forwarded and the pending table is unchanged (with
/// `max_pending_requests = 1`, good requests, boundary sizes among them, still go through).
#[test]
fn bad_request_every_case() {
    let (mut relay, mut py) = setup(&[("max_pending_requests", "1"), ("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    // The ingestor answers every work message at once with OK.
    py.cmd("AUTO ing_w ing_r 4f4b 6461746131");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);
    py.sync();

    let mut failures = Vec::new();
    for (i, case) in bad_cases().into_iter().enumerate() {
        // Alternate DEALER and REQ clients.
        let dealer = i % 2 == 0;
        let client = if dealer { "cli" } else { "req" };
        if dealer {
            py.send(client, &with_delim(&case.body));
        } else if case.body.is_empty() {
            // A REQ cannot send a message with no body frames; the DEALER covers it.
            py.send("cli", &with_delim(&case.body));
        } else {
            py.send(client, &case.body);
        }
        let client = if !dealer && case.body.is_empty() { "cli" } else { client };
        let Some(frames) = py.try_msg(client, STEP) else {
            failures.push(format!("{}: no reply", case.what));
            continue;
        };
        let r = parse_reply(&frames, client == "cli");
        if r.status != "BAD_REQUEST" {
            failures.push(format!("{}: status {:?}, want BAD_REQUEST ({r:?})", case.what, r.status));
            continue;
        }
        if r.id != case.id {
            failures.push(format!("{}: frame 1 {:?}, want {:?}", case.what, hex(&r.id), hex(&case.id)));
        }
        if r.data.len() != 1 {
            failures.push(format!("{}: {} frames after the status, want 1 reason", case.what, r.data.len()));
            continue;
        }
        let reason = r.reason();
        if !case.reasons.contains(&reason) {
            failures.push(format!("{}: reason {reason:?}, want one of {:?}", case.what, case.reasons));
        }
    }
    py.no_msg("cli", QUIET, "exactly one reply per bad request");
    py.no_msg("req", Duration::ZERO, "exactly one reply per bad request");
    if py.try_msg("ing_w", Duration::ZERO).is_some() {
        failures.push("a bad request was forwarded to the ingestor".to_owned());
    }
    assert!(failures.is_empty(), "BAD_REQUEST deviations:\n{}", failures.join("\n"));

    // Boundary sizes are accepted: a 64-byte request_id, a 256-byte ticker, 65,536 bytes of params.
    let mut t256 = b"BINANCE:".to_vec();
    t256.resize(256, b'Y');
    let t256 = String::from_utf8(t256).unwrap_or_default();
    let id64 = vec![b'k'; 64];
    for (id, ticker, params) in [
        (id64.clone(), "BINANCE:BTC/USDT".to_owned(), Vec::new()),
        (b"b-256".to_vec(), t256.clone(), Vec::new()),
        (b"b-64k".to_vec(), "BINANCE:BTC/USDT".to_owned(), vec![b'p'; 65536]),
        (b"b-utf8".to_vec(), "BINANCE:\u{20bf}/\u{00e9}".to_owned(), b"\x00\xff".to_vec()),
    ] {
        let r = dealer_roundtrip(&mut py, "cli", &id, &ticker, &params);
        assert_eq!(
            (r.status.as_str(), r.id.clone()),
            ("OK", id.clone()),
            "boundary request {ticker:?}: {r:?}"
        );
        let work = py.msg("ing_w");
        assert_eq!(work, zmtp_interop::reprs(&[&b"BINANCE:"[..], &[0x01], &id, ticker.as_bytes(), &params]));
    }
    // The pending table (one slot) is free: a last good request from the REQ client is forwarded.
    py.send("req", &body(b"after-bad", b"BINANCE:BTC/USDT", b""));
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.status.as_str(), r.id.as_slice()), ("OK", &b"after-bad"[..]), "{r:?}");
}

/// DUPLICATE while pending (from another client and from the same client); the first request is
/// unaffected and gets the one answer; the id is reusable once answered.
#[test]
fn duplicate_then_reuse() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:", "KRAKEN:"]);
    py.sock("a", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("b", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("c", "REQ", "connect", &relay.client_ep(), &[]);
    py.sync();

    py.send("a", &dealer_req(b"dup-1", b"BINANCE:BTC/USDT", b"first"));
    expect_work(&mut py, "ing", "BINANCE:", b"dup-1", "BINANCE:BTC/USDT", b"first");

    let r = dealer_roundtrip(&mut py, "b", b"dup-1", "KRAKEN:XBT/USD", b"second");
    r.assert_status("DUPLICATE");
    assert_eq!(r.id, b"dup-1");
    assert_eq!(r.reason(), "request_id already pending");
    py.send("c", &body(b"dup-1", b"BINANCE:BTC/USDT", b"third"));
    let r = parse_reply(&py.msg("c"), false);
    r.assert_status("DUPLICATE");
    let r = dealer_roundtrip(&mut py, "a", b"dup-1", "BINANCE:BTC/USDT", b"again");
    r.assert_status("DUPLICATE");
    py.no_msg("ing_w", Duration::from_millis(300), "a DUPLICATE is not forwarded");

    py.send("ing_r", &response(b"dup-1", "OK", &[b"for-a"]));
    let r = parse_reply(&py.msg("a"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", zmtp_interop::reprs(&[b"for-a"])), "{r:?}");
    py.no_msg("b", QUIET, "the duplicate's client gets nothing more");
    py.no_msg("a", Duration::ZERO, "one answer only");

    // Reusable now.
    py.send("b", &dealer_req(b"dup-1", b"KRAKEN:XBT/USD", b"reuse"));
    expect_work(&mut py, "ing", "KRAKEN:", b"dup-1", "KRAKEN:XBT/USD", b"reuse");
    py.send("ing_r", &response(b"dup-1", "ERROR", &[b"for-b"]));
    let r = parse_reply(&py.msg("b"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("ERROR", zmtp_interop::reprs(&[b"for-b"])), "{r:?}");
    py.no_msg("a", Duration::from_millis(200), "the reused id's answer goes to its new client only");
}

/// OVERLOADED with `max_pending_requests = 2`, and the check order BAD_REQUEST, DUPLICATE,
/// OVERLOADED, UNAVAILABLE.
#[test]
fn overloaded_and_check_order() {
    let (mut relay, mut py) = setup(&[("max_pending_requests", "2"), ("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();

    py.send("cli", &dealer_req(b"p1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"p1", "BINANCE:BTC/USDT", b"");
    py.send("cli", &dealer_req(b"p2", b"BINANCE:ETH/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"p2", "BINANCE:ETH/USDT", b"");

    let t0 = Instant::now();
    let r = dealer_roundtrip(&mut py, "cli", b"p3", "BINANCE:BTC/USDT", b"");
    r.assert_status("OVERLOADED");
    assert_eq!(r.id, b"p3");
    assert_eq!(r.reason(), "too many pending requests");
    assert!(t0.elapsed() < Duration::from_secs(3), "OVERLOADED is answered at once");

    // BAD_REQUEST before DUPLICATE and OVERLOADED.
    py.send("cli", &with_delim(&[vec![0x09], b"p1".to_vec(), b"BINANCE:BTC/USDT".to_vec(), vec![]]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.id.as_slice()), ("BAD_REQUEST", &b"p1"[..]), "{r:?}");
    // BAD_REQUEST before UNAVAILABLE.
    py.send("cli", &with_delim(&[vec![0x07], b"p9".to_vec(), b"NOBODY".to_vec(), vec![]]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "BAD_REQUEST");
    // DUPLICATE before OVERLOADED.
    let r = dealer_roundtrip(&mut py, "cli", b"p1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "DUPLICATE", "{r:?}");
    // DUPLICATE before UNAVAILABLE (and before OVERLOADED).
    let r = dealer_roundtrip(&mut py, "cli", b"p2", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "DUPLICATE", "{r:?}");
    // OVERLOADED before UNAVAILABLE.
    let r = dealer_roundtrip(&mut py, "cli", b"p4", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "OVERLOADED", "{r:?}");

    // The two pending requests were not disturbed.
    py.send("ing_r", &response(b"p1", "OK", &[b"one"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"p1"[..], "OK"));
    // A slot is free: UNAVAILABLE is reachable again, then a forwarded request fills the table.
    let r = dealer_roundtrip(&mut py, "cli", b"p5", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "UNAVAILABLE", "{r:?}");
    py.send("cli", &dealer_req(b"p6", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"p6", "BINANCE:BTC/USDT", b"");
    let r = dealer_roundtrip(&mut py, "cli", b"p7", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OVERLOADED", "{r:?}");
    py.send("ing_r", &response(b"p2", "OK", &[]));
    py.send("ing_r", &response(b"p6", "ERROR", &[]));
    let mut got: Vec<(Vec<u8>, String)> = (0..2)
        .map(|_| {
            let r = parse_reply(&py.msg("cli"), true);
            (r.id, r.status)
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(b"p2".to_vec(), "OK".to_owned()), (b"p6".to_vec(), "ERROR".to_owned())]);
    py.no_msg("cli", QUIET, "one reply per request");
}

/// Envelopes through a pyzmq ROUTER–DEALER broker: REQ and DEALER clients behind it get their own
/// replies; the relay keeps the whole envelope.
#[test]
fn envelopes_through_a_router_dealer_hop() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 6f6b2d64617461:");
    let front = py.sock("front", "ROUTER", "bind", "tcp://127.0.0.1:0", &[]);
    py.sock("back", "DEALER", "connect", &relay.client_ep(), &[]);
    py.cmd("PROXY front back");
    py.sock("r1", "REQ", "connect", &front, &[]);
    py.sock("r2", "REQ", "connect", &front, &[]);
    py.sock("d1", "DEALER", "connect", &front, &[]);
    py.sync();

    for round in 0..3 {
        let id1 = format!("hop-r1-{round}");
        let id2 = format!("hop-r2-{round}");
        let id3 = format!("hop-d1-{round}");
        py.send("r1", &body(id1.as_bytes(), b"BINANCE:BTC/USDT", b""));
        py.send("r2", &body(id2.as_bytes(), b"BINANCE:ETH/USDT", b""));
        py.send("d1", &dealer_req(id3.as_bytes(), b"BINANCE:SOL/USDT", b""));
        let a = parse_reply(&py.msg("r1"), false);
        let b = parse_reply(&py.msg("r2"), false);
        let c = parse_reply(&py.msg("d1"), true);
        assert_eq!((a.id, a.status.as_str()), (id1.into_bytes(), "OK"));
        assert_eq!((b.id, b.status.as_str()), (id2.into_bytes(), "OK"));
        assert!(c.envelope.is_empty(), "the broker's hop is stripped on the way back: {c:?}");
        assert_eq!((c.id, c.status.as_str()), (id3.into_bytes(), "OK"));
        assert_eq!(a.data, vec!["7:6f6b2d64617461".to_owned(), "0:".to_owned()]);
    }
    // Relay statuses also find their way back.
    py.send("r1", &body(b"hop-u", b"KRAKEN:XBT/USD", b""));
    assert_eq!(parse_reply(&py.msg("r1"), false).status, "UNAVAILABLE");
    py.send("d1", &with_delim(&[vec![0x07], b"hop-bad".to_vec()]));
    let r = parse_reply(&py.msg("d1"), true);
    assert_eq!((r.status.as_str(), r.id.as_slice()), ("BAD_REQUEST", &b"hop-bad"[..]));
    py.no_msg("r2", QUIET, "nothing for the idle client");
}

/// Several ingestors race: each gets the work message; the first response wins (OK or ERROR); later
/// ones are dropped (`response not pending`); the client gets exactly one reply.
#[test]
fn ingestors_race_first_response_wins() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "10")]);
    for name in ["i1", "i2", "i3"] {
        add_ingestor(&mut py, &mut relay, name, &["BINANCE:"]);
    }
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();

    py.send("cli", &dealer_req(b"race-1", b"BINANCE:BTC/USDT", b"{}"));
    for name in ["i1", "i2", "i3"] {
        expect_work(&mut py, name, "BINANCE:", b"race-1", "BINANCE:BTC/USDT", b"{}");
    }
    py.send("i2_r", &response(b"race-1", "OK", &[b"from-i2"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", zmtp_interop::reprs(&[b"from-i2"])));
    py.send("i1_r", &response(b"race-1", "OK", &[b"from-i1"]));
    py.send("i3_r", &response(b"race-1", "ERROR", &[b"from-i3"]));
    py.no_msg("cli", Duration::from_millis(1000), "the later responses must be dropped");
    relay.wait_log(mark, &["dropped", "kind=response not pending"], STEP);

    // ERROR wins as well when it is first.
    py.send("cli", &dealer_req(b"race-2", b"BINANCE:ETH/USDT", b""));
    for name in ["i1", "i2", "i3"] {
        expect_work(&mut py, name, "BINANCE:", b"race-2", "BINANCE:ETH/USDT", b"");
    }
    py.send("i3_r", &response(b"race-2", "ERROR", &[b"e3"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("ERROR", zmtp_interop::reprs(&[b"e3"])));
    // (sent only now: two ingestor connections are not ordered with each other)
    py.send("i1_r", &response(b"race-2", "OK", &[b"o1"]));
    py.no_msg("cli", QUIET, "exactly one reply");

    // A response for an id nobody asked for is dropped.
    py.send("i2_r", &response(b"never-asked", "OK", &[b"x"]));
    py.no_msg("cli", QUIET, "an unknown id is never delivered");
}

/// Malformed ingestor responses (type byte, fewer than 3 frames, status MAYBE / lower case) are
/// dropped (`malformed response`); the request keeps waiting and gets TIMEOUT.
#[test]
fn malformed_responses_dropped_then_timeout() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "1.5")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    let t0 = Instant::now();
    py.send("cli", &dealer_req(b"mal-1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"mal-1", "BINANCE:BTC/USDT", b"");
    let id = b"mal-1".to_vec();
    let malformed: Vec<Vec<Vec<u8>>> = vec![
        vec![vec![0x03], id.clone(), b"OK".to_vec(), b"wrong type".to_vec()],
        vec![vec![0x02, 0x00], id.clone(), b"OK".to_vec()],
        vec![vec![], id.clone(), b"OK".to_vec()],
        vec![vec![0x02], id.clone()],
        vec![vec![0x02]],
        vec![vec![0x02], id.clone(), b"MAYBE".to_vec(), b"x".to_vec()],
        vec![vec![0x02], id.clone(), b"ok".to_vec()],
        vec![vec![0x02], id.clone(), b"OK ".to_vec()],
        vec![vec![0x02], id.clone(), Vec::new()],
    ];
    for m in &malformed {
        py.send("ing_r", m);
    }
    let r = parse_reply(&py.msg("cli"), true);
    let e = t0.elapsed();
    assert_eq!(r.status, "TIMEOUT", "malformed responses must be dropped: {r:?}");
    assert!(e >= Duration::from_millis(1500), "TIMEOUT after {e:?}");
    relay.wait_log(mark, &["dropped", "kind=malformed response"], STEP);
    py.no_msg("cli", QUIET, "exactly one reply");
}

/// A client that disconnects while its request is pending loses the response (`client gone`); the
/// pending entry is removed (the id is free again) and other clients are served.
#[test]
fn client_disconnects_mid_request() {
    let mut relay =
        Relay::start(Opts::default().rust_log(Some("relay=debug")).set("request_timeout_secs", "10"));
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("gone", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("gone2", "REQ", "connect", &relay.client_ep(), &[]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    py.send("gone", &dealer_req(b"gone-1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"gone-1", "BINANCE:BTC/USDT", b"");
    py.send("gone2", &body(b"gone-2", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"gone-2", "BINANCE:BTC/USDT", b"");
    py.close("gone");
    py.close("gone2");
    // Let the relay see the disconnections (FIN) before the responses arrive.
    std::thread::sleep(Duration::from_millis(500));
    py.send("ing_r", &response(b"gone-1", "OK", &[b"nobody"]));
    py.send("ing_r", &response(b"gone-2", "OK", &[b"nobody"]));
    relay.wait_log(mark, &["response received", "request_id=gone-1"], STEP);
    relay.wait_log(mark, &["dropped", "kind=client gone"], STEP);

    // The relay is fine, and the ids are free again.
    let r = dealer_roundtrip(&mut py, "cli", b"u-gone", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "UNAVAILABLE");
    py.send("cli", &dealer_req(b"gone-1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"gone-1", "BINANCE:BTC/USDT", b"");
    py.send("ing_r", &response(b"gone-1", "OK", &[b"somebody"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", zmtp_interop::reprs(&[b"somebody"])));
}

/// A-Q2: a DEALER without the empty delimiter gets no reply (dropped, `no delimiter`), nothing is
/// forwarded, and the same connection keeps working. A-Q3: an envelope of 40 frames is dropped
/// (`envelope too deep`); 32 frames (the routing id + 31) are accepted and carried back whole; an
/// envelope past the 64-frame message limit costs the client its connection (pyzmq reconnects).
#[test]
fn no_delimiter_and_envelope_depth() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 64");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();

    // A-Q2.
    // (params non-empty: an empty params frame would itself be the first empty frame, the delimiter)
    py.send("cli", &body(b"nodelim", b"BINANCE:BTC/USDT", b"p"));
    py.no_msg("cli", QUIET, "a message with no delimiter gets no reply");
    relay.wait_log(mark, &["WARN", "dropped", "kind=no delimiter"], STEP);
    py.no_msg("ing_w", Duration::ZERO, "nothing is forwarded");
    let r = dealer_roundtrip(&mut py, "cli", b"after-nodelim", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    assert_eq!(py.msg("ing_w")[2], frame_repr(b"after-nodelim"));

    // A-Q3: 40 frames before the delimiter (routing id + 39).
    let mut deep: Vec<Vec<u8>> = (0..39).map(|i| format!("hop{i}").into_bytes()).collect();
    deep.extend(dealer_req(b"deep-40", b"BINANCE:BTC/USDT", b""));
    py.send("cli", &deep);
    py.no_msg("cli", QUIET, "a too deep envelope gets no reply");
    relay.wait_log(mark, &["WARN", "dropped", "kind=envelope too deep"], STEP);
    py.no_msg("ing_w", Duration::ZERO, "nothing is forwarded");

    // 33 frames before the delimiter: one too many.
    let mut deep33: Vec<Vec<u8>> = (0..32).map(|i| format!("h{i}").into_bytes()).collect();
    deep33.extend(dealer_req(b"deep-33", b"BINANCE:BTC/USDT", b""));
    py.send("cli", &deep33);
    py.no_msg("cli", QUIET, "33 envelope frames get no reply");

    // Exactly 32 (routing id + 31): accepted, the envelope comes back whole.
    let hops: Vec<Vec<u8>> = (0..31).map(|i| format!("e{i}").into_bytes()).collect();
    let mut ok32 = hops.clone();
    ok32.extend(dealer_req(b"deep-32", b"BINANCE:BTC/USDT", b""));
    py.send("cli", &ok32);
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.id.as_slice()), ("OK", &b"deep-32"[..]), "{r:?}");
    assert_eq!(r.envelope, zmtp_interop::reprs(&hops), "the envelope is carried back unchanged");
    py.msg("ing_w");

    // 100 envelope frames: more than 64 frames in one message, a protocol error on port 5559.
    let mut huge: Vec<Vec<u8>> = (0..100).map(|_| b"x".to_vec()).collect();
    huge.extend(dealer_req(b"deep-100", b"BINANCE:BTC/USDT", b""));
    let mark2 = relay.mark();
    py.send("cli", &huge);
    relay.wait_log(mark2, &["WARN", "peer disconnected"], STEP);
    py.no_msg("cli", Duration::from_millis(300), "no reply to a message over the limits");
    // pyzmq reconnects; the client is served again.
    let r = dealer_roundtrip(&mut py, "cli", b"after-huge", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
}

/// B-3: an ingestor killed (-9) with requests pending: they get TIMEOUT, not a duplicate reply; a
/// restarted ingestor resubscribes and new requests flow.
#[test]
fn ingestor_killed_then_restarted() {
    let mut relay = Relay::with(&[("request_timeout_secs", "1")]);
    let mut clients = Py::new();
    clients.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let mut ing = Py::new();
    add_ingestor(&mut ing, &mut relay, "ing", &["BINANCE:"]);
    clients.sync();
    clients.send("cli", &dealer_req(b"k-1", b"BINANCE:BTC/USDT", b""));
    clients.send("cli", &dealer_req(b"k-2", b"BINANCE:BTC/USDT", b""));
    ing.msg("ing_w");
    ing.msg("ing_w");
    ing.kill();
    let mut got: Vec<(Vec<u8>, String)> = (0..2)
        .map(|_| {
            let r = parse_reply(&clients.msg("cli"), true);
            (r.id, r.status)
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(b"k-1".to_vec(), "TIMEOUT".to_owned()), (b"k-2".to_vec(), "TIMEOUT".to_owned())]);

    let mut ing2 = Py::new();
    add_ingestor(&mut ing2, &mut relay, "ing", &["BINANCE:"]);
    ing2.cmd("AUTO ing_w ing_r 4f4b 6e6577");
    let r = dealer_roundtrip(&mut clients, "cli", b"k-3", "BINANCE:BTC/USDT", b"");
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", vec!["3:6e6577".to_owned()]));
    clients.no_msg("cli", QUIET, "no duplicate replies");
}

/// Reads the relay's greeting and READY on a raw connection that announced `socket_type`.
fn raw_handshake(port: u16, socket_type: &str) -> (std::net::TcpStream, RawReader) {
    let mut s = raw_connect(port);
    write_lossy(&mut s, &greeting(3, 0, b"NULL", false));
    write_lossy(&mut s, &ready(socket_type));
    let mut rd = RawReader::new();
    rd.greeting(&mut s, STEP).expect("greeting");
    let f = rd.frame(&mut s, STEP).expect("READY");
    assert!(f.command, "{f:?}");
    (s, rd)
}

/// B-8: a client that never reads its replies: its queue fills (`high_water_mark` = 2), further replies
/// to it are dropped (`client queue full`), and other clients are served meanwhile.
#[test]
fn slow_client_queue_full() {
    let (mut relay, mut py) = setup(&[("high_water_mark", "2"), ("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    // 1 MiB of data per reply.
    py.cmd("AUTO ing_w ing_r 4f4b z1048576");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    let (mut slow, _rd) = raw_handshake(relay.client_port, "DEALER");
    let mut wire = Vec::new();
    for i in 0..40 {
        wire.extend(frames_wire(&dealer_req(format!("slow-{i}").as_bytes(), b"BINANCE:BTC/USDT", b"")));
    }
    write_lossy(&mut slow, &wire);
    relay.wait_log(mark, &["WARN", "dropped", "kind=client queue full"], STEP);
    // Others are not slowed down.
    let t0 = Instant::now();
    let r = dealer_roundtrip(&mut py, "cli", b"fast-1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    assert!(t0.elapsed() < Duration::from_secs(3), "a fast client waited {:?}", t0.elapsed());
    drop(slow);
    let r = dealer_roundtrip(&mut py, "cli", b"fast-2", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "UNAVAILABLE");
}

/// B-9: an ingestor that never reads its work messages does not slow the relay down: another ingestor
/// answers every request (the stalled one's work messages are dropped for it alone).
#[test]
fn slow_ingestor_does_not_block() {
    let (mut relay, mut py) = setup(&[("high_water_mark", "5"), ("request_timeout_secs", "10")]);
    let mark = relay.mark();
    let (mut stalled, _rd) = raw_handshake(relay.work_port, "SUB");
    write_lossy(&mut stalled, &frames_wire(&[b"\x01BINANCE:".to_vec()]));
    relay.wait_log(mark, &["ingestor subscribed", "prefix=BINANCE:"], STEP);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 6f6b");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let n = 200;
    let t0 = Instant::now();
    // In batches of 4, so the reading ingestor's queue (5) never overflows, while the stalled one's does.
    for batch in 0..n / 4 {
        for i in batch * 4..batch * 4 + 4 {
            // 64 KiB of params each: ~13 MB of work messages for the ingestor that does not read.
            py.cmd(&format!(
                "SEND cli :07:{}:{}:z65536",
                hex(format!("si-{i}").as_bytes()),
                hex(b"BINANCE:BTC/USDT")
            ));
        }
        for _ in 0..4 {
            let r = parse_reply(&py.msg("cli"), true);
            assert_eq!(r.status, "OK", "{r:?}");
        }
    }
    eprintln!("B-9: {n} requests answered in {:?} with a stalled ingestor", t0.elapsed());
    // The stalled ingestor's drops are counted and logged (read from the work publisher once a second).
    relay.wait_log(mark, &["WARN", "dropped", "ingestor queue full"], STEP);
    drop(stalled);
}

/// A request message over 1 MiB (several frames, none over the limit alone) is a protocol error on
/// the client port: no reply, `peer disconnected`; the (reconnected) client is served afterwards.
#[test]
fn request_over_1mib_disconnects_the_client() {
    let (mut relay, mut py) = setup(&[("request_timeout_secs", "10")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 6f6b");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    // An envelope hop of 600 KiB and params of 600 KiB: 1.2 MiB in all.
    py.cmd(&format!("SEND cli z614400::07:{}:{}:z614400", hex(b"big-1"), hex(b"BINANCE:BTC/USDT")));
    relay.wait_log(mark, &["WARN", "peer disconnected", "role=clients", " peer=127.0.0.1:"], STEP);
    py.no_msg("cli", Duration::from_millis(300), "no reply to a message over 1 MiB");
    let r = dealer_roundtrip(&mut py, "cli", b"after-big", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    // Just under the limit (900 KiB of params): read and answered, BAD_REQUEST for its params, and the
    // connection is kept.
    py.cmd(&format!("SEND cli :07:{}:{}:z921600", hex(b"big-ok"), hex(b"BINANCE:BTC/USDT")));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.id.as_slice()), ("BAD_REQUEST", &b"big-ok"[..]), "{r:?}");
    // An envelope frame over 255 bytes is not a routing id: dropped, counted, never answered (§5).
    let mark = relay.mark();
    py.cmd(&format!("SEND cli z256::07:{}:{}:", hex(b"long-hop"), hex(b"BINANCE:BTC/USDT")));
    relay.wait_log(mark, &["WARN", "dropped", "bad envelope"], STEP);
    py.no_msg("cli", Duration::from_millis(300), "no reply to a bad envelope");
    // A 255-byte hop is carried back whole.
    py.cmd(&format!("SEND cli z255::07:{}:{}:", hex(b"hop-ok"), hex(b"BINANCE:BTC/USDT")));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.status.as_str(), r.id.as_slice()), ("OK", &b"hop-ok"[..]), "{r:?}");
    assert_eq!(r.envelope, vec![frame_repr(&[0u8; 255])]);
}

/// A response over `max_message_bytes` (several frames) costs the ingestor its connection; the request
/// times out; the ingestor (pyzmq reconnects and resubscribes) is served afterwards.
#[test]
fn oversize_ingestor_response_disconnects_the_ingestor() {
    let (mut relay, mut py) = setup(&[("max_message_bytes", "65536"), ("request_timeout_secs", "1")]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    py.send("cli", &dealer_req(b"ovr-1", b"BINANCE:BTC/USDT", b""));
    expect_work(&mut py, "ing", "BINANCE:", b"ovr-1", "BINANCE:BTC/USDT", b"");
    py.cmd(&format!("SEND ing_r 02:{}:{}:z30000:z30000:z30000", hex(b"ovr-1"), hex(b"OK")));
    relay.wait_log(mark, &["WARN", "peer disconnected", "role=ingestor responses", " peer=127.0.0.1:"], STEP);
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!(r.status, "TIMEOUT", "{r:?}");
    // A response that fits goes through (after pyzmq reconnected).
    py.cmd("AUTO ing_w ing_r 4f4b z60000");
    let r = dealer_roundtrip(&mut py, "cli", b"ovr-2", "BINANCE:BTC/USDT", b"");
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", vec![frame_repr(&vec![0u8; 60_000])]));
}

/// The `dropped` warn line is rate-limited (at most one line per second per kind) and carries the
/// count since the last line: 30 unknown responses in a burst, then (over a second later) one more,
/// give at most a few lines whose counts add up to 31. (The relay reports suppressed drops with the
/// next drop of that kind, so the last one is needed to flush the count.)
#[test]
fn drop_log_is_rate_limited_with_counts() {
    let (mut relay, mut py) = setup(&[]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sync();
    let mark = relay.mark();
    let t0 = Instant::now();
    for i in 0..30 {
        py.send("ing_r", &response(format!("unknown-{i}").as_bytes(), "OK", &[b"x"]));
    }
    py.sync();
    std::thread::sleep(Duration::from_millis(1200));
    py.send("ing_r", &response(b"unknown-last", "OK", &[b"x"]));
    py.sync();
    let sum = |relay: &mut Relay| -> (usize, u64) {
        relay.mark();
        let lines: Vec<&String> = relay.log[mark..]
            .iter()
            .filter(|l| line_matches(l, &["dropped", "kind=response not pending"]))
            .collect();
        let total = lines
            .iter()
            .map(|l| {
                let v = l.split_whitespace().find_map(|w| w.strip_prefix("count=")).unwrap_or("0");
                v.trim_matches('"').parse::<u64>().unwrap_or(0)
            })
            .sum();
        (lines.len(), total)
    };
    let deadline = Instant::now() + STEP;
    loop {
        let (n, total) = sum(&mut relay);
        if total >= 31 {
            let secs = t0.elapsed().as_secs() as usize;
            assert!(
                n <= secs + 2,
                "{n} `dropped` lines in {:?}: not rate-limited\n{}",
                t0.elapsed(),
                relay.log_text()
            );
            assert_eq!(total, 31, "counts add up to the drops\n{}", relay.log_text());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drop counts add up to {total} of 31 within {STEP:?}\n{}",
            relay.log_text()
        );
        relay.pump(Duration::from_millis(100));
    }
}
