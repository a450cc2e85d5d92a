//! End-to-end tests of the relay's protections (docs/relay-protocol.md §8, version 1.1): the `relay`
//! binary with pyzmq clients and ingestors (tests/peers/relay_peer.py). Rate limiting per client,
//! the circuit breaker per exchange prefix, request coalescing, the response cache.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;

const TICKER: &str = "BINANCE:BTC/USDT";

/// Takes `n` replies on DEALER `client`.
fn replies(py: &mut Py, client: &str, n: usize) -> Vec<Reply> {
    (0..n).map(|_| parse_reply(&py.msg(client), true)).collect()
}

/// How many replies have each status.
fn by_status(replies: &[Reply]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in replies {
        *m.entry(r.status.clone()).or_insert(0) += 1;
    }
    m
}

/// The `request_id` frame of a work message (as frame reprs).
fn work_id(work: &[String]) -> Vec<u8> {
    repr_bytes(&work[2]).unwrap_or_else(|| panic!("work message {work:?}"))
}

/// A burst of 50 requests from one client with `rate_limit_per_s = 0.5`, `rate_limit_burst = 10`:
/// exactly 10 are forwarded, 40 are answered `RATE_LIMITED` with a reason; another client is
/// unaffected. (0.5/s rather than 5/s: a token every 2 s, so "exactly 10" holds however slowly a
/// loaded machine delivers the burst.) Clients without a routing id of their own are keyed by
/// address, so two of them on one host share a bucket, and reconnecting does not refill it.
#[test]
fn rate_limit_holds_a_burst_to_the_bucket_and_spares_other_clients() {
    let mut relay = debug_relay(&[("rate_limit_per_s", "0.5"), ("rate_limit_burst", "10")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 64617461"); // OK "data"
    py.sock("alice", "DEALER", "connect", &relay.client_ep(), &[&format!("routing_id={}", hex(b"alice"))]);
    py.sock("bob", "DEALER", "connect", &relay.client_ep(), &[&format!("routing_id={}", hex(b"bob"))]);
    py.sync();
    let mark = relay.mark();

    for i in 0..50 {
        py.send("alice", &dealer_req(format!("a-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
    }
    let got = replies(&mut py, "alice", 50);
    let counts = by_status(&got);
    assert_eq!(counts.get("OK"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("RATE_LIMITED"), Some(&40), "{counts:?}");
    let limited = got.iter().find(|r| r.status == "RATE_LIMITED").unwrap();
    limited.assert_status("RATE_LIMITED");
    assert_eq!(limited.reason(), "rate limit 0.5/s exceeded");
    // Every request got exactly one reply, under its own id.
    let mut ids: Vec<_> = got.iter().map(|r| String::from_utf8_lossy(&r.id).into_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    // Only the 10 reached the ingestor.
    for _ in 0..10 {
        py.msg("ing_w");
    }
    py.no_msg("ing_w", QUIET, "rate-limited requests must not be forwarded");
    relay.wait_log(mark, &["request refused", "status=RATE_LIMITED"], STEP);

    // Another client has its own bucket.
    for i in 0..10 {
        py.send("bob", &dealer_req(format!("b-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
    }
    let counts = by_status(&replies(&mut py, "bob", 10));
    assert_eq!(counts.get("OK"), Some(&10), "bob: {counts:?}");

    // The bucket refills at the rate: alice gets through again (a token within 2 s).
    let deadline = Instant::now() + STEP;
    let mut n = 0;
    loop {
        n += 1;
        let r = dealer_roundtrip(&mut py, "alice", format!("again-{n}").as_bytes(), TICKER, b"{}");
        if r.status == "OK" {
            break;
        }
        r.assert_status("RATE_LIMITED");
        assert!(Instant::now() < deadline, "alice's bucket never refilled");
        std::thread::sleep(Duration::from_millis(250));
    }

    // Clients with generated routing ids are keyed by address: two anonymous DEALERs on this host
    // share one bucket of 10, and a new connection from here does not get a fresh one.
    py.sock("anon1", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("anon2", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let started = Instant::now();
    let mut ok = 0;
    for (client, n) in [("anon1", 6), ("anon2", 6)] {
        for i in 0..n {
            py.send(client, &dealer_req(format!("{client}-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
        }
        ok += by_status(&replies(&mut py, client, n)).get("OK").copied().unwrap_or(0);
    }
    py.close("anon1");
    py.sock("anon3", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    for i in 0..5 {
        py.send("anon3", &dealer_req(format!("anon3-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
    }
    ok += by_status(&replies(&mut py, "anon3", 5)).get("OK").copied().unwrap_or(0);
    // One bucket: the burst of 10 plus a token per 2 s since. Separate buckets would pass 17 (as
    // long as the three bursts took less than 14 s).
    let refilled = (started.elapsed().as_secs_f64() / 2.0).floor() as usize;
    assert!((10..=10 + refilled).contains(&ok), "{ok} of 17 passed ({refilled} tokens refilled)");
    assert!(refilled < 7, "too slow to tell one bucket from three");
}

/// The breaker opens after `breaker_failures` consecutive failures (ERROR and TIMEOUT), answers
/// `UNAVAILABLE` "circuit open for BINANCE:" at once without forwarding, leaves other prefixes
/// alone; after `breaker_open_secs` one probe goes through while the rest are refused; a failed
/// probe reopens it, an OK probe closes it.
#[test]
fn breaker_opens_after_failures_and_a_probe_closes_it() {
    let mut relay = debug_relay(&[
        ("breaker_failures", "3"),
        ("breaker_window_secs", "60"),
        ("breaker_open_secs", "1"),
        ("request_timeout_secs", "1"),
    ]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:", "KRAKEN:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();

    // Two ERRORs and a TIMEOUT.
    for id in [&b"f-1"[..], b"f-2"] {
        py.send("cli", &dealer_req(id, TICKER.as_bytes(), b""));
        expect_work(&mut py, "ing", "BINANCE:", id, TICKER, b"");
        py.send("ing_r", &response(id, "ERROR", &[b"exchange down"]));
        assert_eq!(parse_reply(&py.msg("cli"), true).status, "ERROR");
    }
    assert!(!relay.has_log(mark, &["circuit opened"]), "two failures of three");
    py.send("cli", &dealer_req(b"f-3", TICKER.as_bytes(), b""));
    expect_work(&mut py, "ing", "BINANCE:", b"f-3", TICKER, b"");
    parse_reply(&py.msg("cli"), true).assert_status("TIMEOUT");
    relay.wait_log(mark, &["WARN", "circuit opened", "prefix=BINANCE:"], STEP);

    // Open: refused at once, nothing forwarded.
    let t0 = Instant::now();
    let r = dealer_roundtrip(&mut py, "cli", b"o-1", TICKER, b"");
    r.assert_status("UNAVAILABLE");
    assert_eq!(r.reason(), "circuit open for BINANCE:");
    assert!(t0.elapsed() < Duration::from_secs(1), "answered at once, not after the timeout");
    py.no_msg("ing_w", QUIET, "an open circuit forwards nothing");
    // Exported (read once a second): 1 = open.
    wait_metric(&relay, "relay_breaker_state{prefix=\"BINANCE:\"}", 1.0);
    // Another prefix is unaffected.
    py.send("cli", &dealer_req(b"k-1", b"KRAKEN:XBT/USD", b""));
    expect_work(&mut py, "ing", "KRAKEN:", b"k-1", "KRAKEN:XBT/USD", b"");
    py.send("ing_r", &response(b"k-1", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "OK");

    // After breaker_open_secs: one probe goes through; meanwhile others are refused.
    let probe = wait_for_probe(&mut py, "probe-a");
    let r = dealer_roundtrip(&mut py, "cli", b"during-probe", TICKER, b"");
    r.assert_status("UNAVAILABLE");
    assert_eq!(r.reason(), "circuit open for BINANCE:");
    relay.wait_log(mark, &["circuit half-open", "prefix=BINANCE:"], STEP);
    // The probe fails: open again.
    let m = relay.mark();
    py.send("ing_r", &response(&probe, "ERROR", &[b"still down"]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "ERROR");
    relay.wait_log(m, &["WARN", "circuit opened", "prefix=BINANCE:"], STEP);
    dealer_roundtrip(&mut py, "cli", b"o-2", TICKER, b"").assert_status("UNAVAILABLE");

    // The next probe succeeds: closed, and requests flow again.
    let probe = wait_for_probe(&mut py, "probe-b");
    py.send("ing_r", &response(&probe, "OK", &[b"rows"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (probe.as_slice(), "OK"));
    relay.wait_log(m, &["INFO", "circuit closed", "prefix=BINANCE:"], STEP);
    wait_metric(&relay, "relay_breaker_state{prefix=\"BINANCE:\"}", 0.0);
    py.send("cli", &dealer_req(b"after", TICKER.as_bytes(), b""));
    expect_work(&mut py, "ing", "BINANCE:", b"after", TICKER, b"");
    py.send("ing_r", &response(b"after", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "OK");
}

/// Waits (the protection metrics are brought up to date once a second) until `/metrics` shows
/// `sample` at `want`.
fn wait_metric(relay: &Relay, sample: &str, want: f64) {
    let deadline = Instant::now() + STEP;
    loop {
        let (_, body) = relay.admin_get("/metrics");
        let got = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.trim().parse::<f64>().ok()));
        if got == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{sample} is {got:?}, want {want}:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends requests (`<stem>-<n>`) every 100 ms until one is forwarded (the half-open probe); the
/// others must be refused "circuit open". Returns the probe's id.
fn wait_for_probe(py: &mut Py, stem: &str) -> Vec<u8> {
    let deadline = Instant::now() + STEP;
    for n in 0.. {
        assert!(Instant::now() < deadline, "no probe went through within {STEP:?}");
        let id = format!("{stem}-{n}").into_bytes();
        py.send("cli", &dealer_req(&id, TICKER.as_bytes(), b""));
        // Either the work message (the probe) or an immediate UNAVAILABLE.
        let line = py.expect_any(&["MSG ing_w ", "MSG cli "], STEP);
        let frames: Vec<String> = line.split(' ').skip(2).map(str::to_owned).collect();
        if line.starts_with("MSG ing_w ") {
            assert_eq!(work_id(&frames), id);
            return id;
        }
        let r = parse_reply(&frames, true);
        r.assert_status("UNAVAILABLE");
        assert_eq!(r.reason(), "circuit open for BINANCE:");
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!()
}

/// 100 clients (99 DEALERs and a REQ) ask for the same (ticker, params) at once: the ingestor
/// receives ONE work message (under a relay-made id), and each client gets the response under its
/// own request_id and envelope. A request id already pending is still DUPLICATE.
#[test]
fn coalescing_turns_100_identical_requests_into_one_upstream_request() {
    let mut relay = debug_relay(&[("coalesce_requests", "true"), ("request_timeout_secs", "60")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    for c in 0..99 {
        py.sock(&format!("c{c}"), "DEALER", "connect", &relay.client_ep(), &[]);
    }
    py.sock("c99", "REQ", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    let params = br#"{"period":"1m"}"#;
    py.send("c0", &dealer_req(b"req-0", TICKER.as_bytes(), params));
    let work = py.msg("ing_w");
    let upstream = work_id(&work);
    assert!(upstream.starts_with(b"relay-"), "a relay-made upstream id: {work:?}");
    assert_eq!(&work[3..], &zmtp_interop::reprs(&[TICKER.as_bytes(), params])[..]);
    for c in 1..99 {
        py.send(&format!("c{c}"), &dealer_req(format!("req-{c}").as_bytes(), TICKER.as_bytes(), params));
    }
    py.send("c99", &body(b"req-99", TICKER.as_bytes(), params));
    // Every one has reached the relay (and joined) before the answer.
    let deadline = Instant::now() + STEP;
    while relay.count_log(mark, &["request coalesced"]) < 99 {
        assert!(Instant::now() < deadline, "not every request was coalesced:\n{}", relay.log_text());
        relay.pump(Duration::from_millis(50));
    }
    // The same request_id again: DUPLICATE, as ever.
    let r = dealer_roundtrip(&mut py, "c5", b"req-0", TICKER, params);
    r.assert_status("DUPLICATE");
    py.no_msg("ing_w", QUIET, "coalesced requests send no work of their own");

    py.send("ing_r", &response(&upstream, "OK", &[b"row-1", b"row-2"]));
    for c in 0..100 {
        let r = parse_reply(&py.msg(&format!("c{c}")), c < 99);
        assert_eq!(r.id, format!("req-{c}").into_bytes(), "{r:?}");
        assert_eq!(r.status, "OK");
        assert_eq!(r.data, zmtp_interop::reprs(&[&b"row-1"[..], b"row-2"]));
    }
    py.no_msg("ing_w", Duration::ZERO, "one upstream request in all");
    for c in 0..100 {
        py.no_msg(&format!("c{c}"), Duration::ZERO, "one reply per request");
    }
    // Answered: the next identical request is a new upstream request.
    py.send("c1", &dealer_req(b"next", TICKER.as_bytes(), params));
    let work = py.msg("ing_w");
    assert_ne!(work_id(&work), upstream);
}

/// The leader of a coalesced request times out on its own clock; the joiner, which came later, is
/// not stranded: it gets the response when it comes (and its own TIMEOUT no earlier than its own
/// request_timeout otherwise).
#[test]
fn a_leader_that_times_out_does_not_strand_the_joiners() {
    let mut relay = debug_relay(&[("coalesce_requests", "true"), ("request_timeout_secs", "2")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("lead", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("join", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    let t0 = Instant::now();
    py.send("lead", &dealer_req(b"L", TICKER.as_bytes(), b"p"));
    let upstream = work_id(&py.msg("ing_w"));
    std::thread::sleep(Duration::from_millis(1000));
    let t1 = Instant::now();
    py.send("join", &dealer_req(b"J", TICKER.as_bytes(), b"p"));
    relay.wait_log(mark, &["request coalesced", "request_id=J"], STEP);
    let r = parse_reply(&py.msg("lead"), true);
    r.assert_status("TIMEOUT");
    assert!(t0.elapsed() >= Duration::from_secs(2));
    // The joiner still waits (its own deadline is ~1 s later): the response reaches it.
    py.send("ing_r", &response(&upstream, "OK", &[b"late but fine"]));
    let r = parse_reply(&py.msg("join"), true);
    if t1.elapsed() < Duration::from_secs(2) {
        assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"J"[..], "OK"), "{r:?}");
    } else {
        // A very slow machine: the joiner timed out on its own clock, never before it.
        r.assert_status("TIMEOUT");
    }
    py.no_msg("ing_w", Duration::ZERO, "the joiner sent no work");
}

/// A cached OK answers an identical request at once without reaching the ingestor, under the new
/// request_id; after the TTL the next one goes upstream again. ERROR is never cached.
#[test]
fn cache_answers_identical_requests_until_the_ttl() {
    let mut relay = debug_relay(&[("cache_ttl_secs", "1.5")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();

    py.send("cli", &dealer_req(b"c-1", TICKER.as_bytes(), b"{}"));
    expect_work(&mut py, "ing", "BINANCE:", b"c-1", TICKER, b"{}");
    let cached_at = Instant::now();
    py.send("ing_r", &response(b"c-1", "OK", &[b"row-1", b"", b"row-2"]));
    let first = parse_reply(&py.msg("cli"), true);
    assert_eq!(first.status, "OK");

    let r = dealer_roundtrip(&mut py, "cli", b"c-2", TICKER, b"{}");
    assert!(cached_at.elapsed() < Duration::from_millis(1500), "the machine is too slow to test a hit");
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"c-2"[..], "OK"));
    assert_eq!(r.data, first.data, "the cached data frames");
    py.no_msg("ing_w", QUIET, "a cache hit must not reach the ingestor");
    relay.wait_log(mark, &["answered from cache", "request_id=c-2"], STEP);
    wait_metric(&relay, "relay_cache_hits_total", 1.0);
    // Other params: a miss.
    py.send("cli", &dealer_req(b"c-3", TICKER.as_bytes(), b"{ }"));
    expect_work(&mut py, "ing", "BINANCE:", b"c-3", TICKER, b"{ }");
    py.send("ing_r", &response(b"c-3", "ERROR", &[b"nope"]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "ERROR");
    // ERROR is not cached.
    py.send("cli", &dealer_req(b"c-4", TICKER.as_bytes(), b"{ }"));
    expect_work(&mut py, "ing", "BINANCE:", b"c-4", TICKER, b"{ }");
    py.send("ing_r", &response(b"c-4", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "OK");

    // After the TTL: upstream again.
    let left = Duration::from_millis(1600).saturating_sub(cached_at.elapsed());
    std::thread::sleep(left);
    py.send("cli", &dealer_req(b"c-5", TICKER.as_bytes(), b"{}"));
    expect_work(&mut py, "ing", "BINANCE:", b"c-5", TICKER, b"{}");
    py.send("ing_r", &response(b"c-5", "OK", &[b"fresh"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!(r.data, zmtp_interop::reprs(&[b"fresh"]));
}

/// Every protection key is live: a SIGHUP turns rate limiting and the cache on for the running
/// relay, on the same connections, and another turns them off again.
#[test]
fn sighup_turns_protections_on_and_off_live() {
    let mut relay = debug_relay(&[]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 64617461"); // OK "data"
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[&format!("routing_id={}", hex(b"cli"))]);
    py.sync();
    for i in 0..5 {
        py.send("cli", &dealer_req(format!("before-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
    }
    assert_eq!(by_status(&replies(&mut py, "cli", 5)).get("OK"), Some(&5), "no limit by default");

    let mark = relay.mark();
    relay.rewrite_config(&[("rate_limit_per_s", "0.1"), ("rate_limit_burst", "2"), ("cache_ttl_secs", "60")]);
    relay.signal("HUP");
    let line = relay.wait_log(mark, &["configuration reloaded"], STEP);
    assert!(line.contains("rate_limit_per_s") && line.contains("cache_ttl_secs"), "{line}");
    relay.wait_log(mark, &["protection settings changed"], STEP);
    // Two tokens: the first request is forwarded (and its OK cached), the second answered from the
    // cache, the next three refused.
    dealer_roundtrip(&mut py, "cli", b"after-0", TICKER, b"{}").assert_status("OK");
    let r = dealer_roundtrip(&mut py, "cli", b"after-1", TICKER, b"{}");
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", zmtp_interop::reprs(&[b"data"])), "{r:?}");
    relay.wait_log(mark, &["answered from cache", "request_id=after-1"], STEP);
    for i in 2..5 {
        py.send("cli", &dealer_req(format!("after-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
    }
    assert_eq!(by_status(&replies(&mut py, "cli", 3)).get("RATE_LIMITED"), Some(&3));

    let mark = relay.mark();
    relay.rewrite_config(&[("rate_limit_per_s", "0"), ("cache_ttl_secs", "0")]);
    relay.signal("HUP");
    relay.wait_log(mark, &["protection settings changed"], STEP);
    for i in 0..5 {
        py.send("cli", &dealer_req(format!("off-{i}").as_bytes(), TICKER.as_bytes(), b"{}"));
    }
    assert_eq!(by_status(&replies(&mut py, "cli", 5)).get("OK"), Some(&5), "off again");
    assert!(!relay.has_log(mark, &["answered from cache"]), "the cache is off again");
    assert!(!relay.has_log(0, &["peer disconnected"]), "a reload dropped a connection");
}

/// A streamed response (several `PARTIAL` then `OK`) of a coalesced flight reaches every waiter:
/// each DEALER gets every chunk then the final under its own id, the REQ one assembled reply; a
/// streamed response is not cached (the next identical request goes upstream).
#[test]
fn coalesced_waiters_each_get_a_streamed_response_which_is_not_cached() {
    let mut relay = debug_relay(&[("coalesce_requests", "true"), ("cache_ttl_secs", "60")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("d1", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("d2", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);
    py.sync();
    let mark = relay.mark();
    py.send("d1", &dealer_req(b"s-1", TICKER.as_bytes(), b"{}"));
    let upstream = work_id(&py.msg("ing_w"));
    py.send("d2", &dealer_req(b"s-2", TICKER.as_bytes(), b"{}"));
    py.send("req", &body(b"s-3", TICKER.as_bytes(), b"{}"));
    let deadline = Instant::now() + STEP;
    while relay.count_log(mark, &["request coalesced"]) < 2 {
        assert!(Instant::now() < deadline, "not coalesced:\n{}", relay.log_text());
        relay.pump(Duration::from_millis(50));
    }
    for i in 0..3u8 {
        py.send("ing_r", &response(&upstream, "PARTIAL", &[format!("chunk-{i}").as_bytes()]));
        for (client, id) in [("d1", b"s-1"), ("d2", b"s-2")] {
            let r = parse_reply(&py.msg(client), true);
            assert_eq!((r.id.as_slice(), r.status.as_str()), (&id[..], "PARTIAL"), "{r:?}");
            assert_eq!(r.data, zmtp_interop::reprs(&[format!("chunk-{i}").as_bytes()]));
        }
    }
    py.send("ing_r", &response(&upstream, "OK", &[b"last"]));
    for (client, id) in [("d1", b"s-1"), ("d2", b"s-2")] {
        let r = parse_reply(&py.msg(client), true);
        assert_eq!((r.id.as_slice(), r.status.as_str()), (&id[..], "OK"), "{r:?}");
        assert_eq!(r.data, zmtp_interop::reprs(&[b"last"]));
    }
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"s-3"[..], "OK"), "{r:?}");
    assert_eq!(r.data, zmtp_interop::reprs(&[&b"chunk-0"[..], b"chunk-1", b"chunk-2", b"last"]));
    // Not cached: upstream again.
    py.send("d1", &dealer_req(b"s-4", TICKER.as_bytes(), b"{}"));
    let again = work_id(&py.msg("ing_w"));
    assert_ne!(again, upstream);
    assert!(!relay.has_log(mark, &["answered from cache"]));
}
