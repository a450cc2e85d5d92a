//! End-to-end tests of the relay's market-data fan-out (docs/relay-protocol.md §2; reliability.md B-4,
//! B-5, B-6): a pyzmq PUB/XPUB source at the upstream endpoint, pyzmq SUBs on the market-data port.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use common::*;

const T_BTC: &[u8] = b"BINANCE:BTC/USDT|tick";
const T_ETH: &[u8] = b"BINANCE:ETH/USDT|ohlc_1m";
const T_XBT: &[u8] = b"KRAKEN:XBT/USD|tick";

/// Binds the source socket, retrying while the port is still taken (a killed source's port).
fn bind_source(py: &mut Py, name: &str, kind: &str, port: u16) {
    let deadline = Instant::now() + STEP;
    while !py.try_bind(name, kind, &ep(port)) {
        assert!(Instant::now() < deadline, "cannot bind the source at port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn repeat(py: &mut Py, name: &str, msgs: &[Vec<Vec<u8>>]) {
    let specs: Vec<String> = msgs.iter().map(|m| msg_arg(m)).collect();
    py.cmd(&format!("REPEAT {name} 50 {}", specs.join(" ")));
}

/// Waits until subscriber `name` receives `want` (other messages are collected and returned).
fn wait_for(py: &mut Py, name: &str, want: &[String], timeout: Duration) -> Vec<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut others = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match py.try_msg(name, left) {
            Some(m) if m == want => return others,
            Some(m) => others.push(m),
            None => panic!("subscriber {name} did not receive {want:?} within {timeout:?}; got {others:?}"),
        }
    }
}

/// Data reaches every subscriber whose prefix matches, unchanged (multi-frame, binary, empty and large
/// frames), and no other; subscriptions are forwarded upstream (seen by an XPUB source).
#[test]
fn fan_out_filtered_and_unchanged() {
    let mut src = Py::new();
    let up = free_port();
    bind_source(&mut src, "src", "XPUB", up);
    let mut relay = Relay::with(&[("flink_market_data_endpoint", &format!("\"{}\"", ep(up)))]);
    relay.wait_log(0, &["upstream connected"], STEP);

    let mut py = Py::new();
    let md = relay.md_ep();
    py.sock("s_btc", "SUB", "connect", &md, &[&format!("sub={}", hex(b"BINANCE:BTC/USDT|"))]);
    py.sock("s_bin", "SUB", "connect", &md, &[&format!("sub={}", hex(b"BINANCE:"))]);
    py.sock("s_kr", "SUB", "connect", &md, &[&format!("sub={}", hex(b"KRAKEN:"))]);
    py.sock("s_all", "SUB", "connect", &md, &["sub="]);
    py.sock("s_none", "SUB", "connect", &md, &[&format!("sub={}", hex(b"COINBASE:"))]);

    // The source sees the subscriptions (first subscription of each topic).
    let mut subs = Vec::new();
    let deadline = Instant::now() + STEP;
    while subs.len() < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = src.try_msg("src", left).unwrap_or_else(|| panic!("the source saw only {subs:?}"));
        subs.push(m[0].clone());
    }
    subs.sort();
    let mut want: Vec<String> = [&b""[..], b"BINANCE:", b"BINANCE:BTC/USDT|", b"COINBASE:", b"KRAKEN:"]
        .iter()
        .map(|t| frame_repr(&[&[1u8][..], t].concat()))
        .collect();
    want.sort();
    assert_eq!(subs, want, "subscriptions forwarded upstream");

    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let m_btc = vec![T_BTC.to_vec(), b"\x00\x01\x02binary".to_vec(), Vec::new()];
    let m_eth = vec![T_ETH.to_vec(), big.clone()];
    let m_xbt = vec![T_XBT.to_vec()];
    repeat(&mut src, "src", &[m_btc.clone(), m_eth.clone(), m_xbt.clone()]);
    let r_btc = zmtp_interop::reprs(&m_btc);
    let r_eth = zmtp_interop::reprs(&m_eth);
    let r_xbt = zmtp_interop::reprs(&m_xbt);
    wait_for(&mut py, "s_btc", &r_btc, STEP);
    wait_for(&mut py, "s_bin", &r_eth, STEP);
    wait_for(&mut py, "s_kr", &r_xbt, STEP);
    wait_for(&mut py, "s_all", &r_eth, STEP);
    std::thread::sleep(Duration::from_millis(300));
    src.cmd("STOP src");
    src.sync();
    std::thread::sleep(Duration::from_millis(300));
    // Everything received is exactly one of the published messages, and matches the subscriber.
    let mut counts = std::collections::HashMap::new();
    while let Some(line) = py.try_expect_any(&["MSG "], Duration::from_millis(200)) {
        let words: Vec<String> = line.split(' ').map(str::to_owned).collect();
        let name = words[1].clone();
        let frames = words[2..].to_vec();
        let allowed: Vec<&Vec<String>> = match name.as_str() {
            "s_btc" => vec![&r_btc],
            "s_bin" => vec![&r_btc, &r_eth],
            "s_kr" => vec![&r_xbt],
            "s_all" => vec![&r_btc, &r_eth, &r_xbt],
            _ => vec![],
        };
        assert!(allowed.contains(&&frames), "{name} received {frames:?}");
        *counts.entry((name, frames[0].clone())).or_insert(0) += 1;
    }
    assert!(
        counts.get(&("s_all".to_owned(), frame_repr(T_BTC))).copied().unwrap_or(0) > 0,
        "s_all received no BTC message: {counts:?}"
    );
}

/// B-4: the source is killed (-9) and restarted on the same port: the relay reconnects, re-sends the
/// subscriptions it holds (the new source sees them), and data resumes within 10 s without the
/// subscriber re-subscribing.
#[test]
fn upstream_restart_replays_subscriptions() {
    let up = free_port();
    let mut src1 = Py::new();
    bind_source(&mut src1, "src", "PUB", up);
    let mut relay = Relay::with(&[("flink_market_data_endpoint", &format!("\"{}\"", ep(up)))]);
    relay.wait_log(0, &["upstream connected"], STEP);
    let mut py = Py::new();
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(T_BTC))]);
    py.sock("sub2", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(b"KRAKEN:"))]);
    let gen1 = vec![T_BTC.to_vec(), b"gen1".to_vec()];
    let gen1k = vec![T_XBT.to_vec(), b"gen1".to_vec()];
    repeat(&mut src1, "src", &[gen1.clone(), gen1k.clone()]);
    wait_for(&mut py, "sub", &zmtp_interop::reprs(&gen1), STEP);
    wait_for(&mut py, "sub2", &zmtp_interop::reprs(&gen1k), STEP);

    let mark = relay.mark();
    src1.kill();
    let killed = Instant::now();
    relay.wait_log(mark, &["upstream disconnected"], STEP);
    std::thread::sleep(Duration::from_millis(1000));

    let mut src2 = Py::new();
    bind_source(&mut src2, "src", "XPUB", up);
    // The new source gets both subscriptions without anyone re-subscribing.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = src2.try_msg("src", left).unwrap_or_else(|| panic!("the restarted source saw only {seen:?}"));
        seen.push(m[0].clone());
    }
    seen.sort();
    let mut want =
        vec![frame_repr(&[&[1u8][..], T_BTC].concat()), frame_repr(&[&[1u8][..], b"KRAKEN:"].concat())];
    want.sort();
    assert_eq!(seen, want, "subscriptions replayed to the restarted source");
    let gen2 = vec![T_BTC.to_vec(), b"gen2".to_vec()];
    let gen2k = vec![T_XBT.to_vec(), b"gen2".to_vec()];
    repeat(&mut src2, "src", &[gen2.clone(), gen2k.clone()]);
    wait_for(&mut py, "sub", &zmtp_interop::reprs(&gen2), Duration::from_secs(10));
    wait_for(&mut py, "sub2", &zmtp_interop::reprs(&gen2k), Duration::from_secs(10));
    eprintln!("B-4: data resumed {:?} after the source was killed (1 s of it down)", killed.elapsed());
    relay.wait_log(mark, &["upstream connected"], STEP);
}

/// B-5: no source at start: the relay still serves requests; a source that appears later receives the
/// subscriptions and its data flows.
#[test]
fn upstream_absent_at_start() {
    let mut relay = Relay::start(Opts::default());
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 78");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let r = dealer_roundtrip(&mut py, "cli", b"absent-1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(T_ETH))]);
    py.sync();
    std::thread::sleep(Duration::from_millis(1500));

    let mut src = Py::new();
    bind_source(&mut src, "src", "XPUB", relay.upstream_port);
    let m = src.msg_within("src", Duration::from_secs(10));
    assert_eq!(m, vec![frame_repr(&[&[1u8][..], T_ETH].concat())], "the late source gets the subscription");
    let data = vec![T_ETH.to_vec(), b"late".to_vec()];
    repeat(&mut src, "src", std::slice::from_ref(&data));
    wait_for(&mut py, "sub", &zmtp_interop::reprs(&data), STEP);
    let r = dealer_roundtrip(&mut py, "cli", b"absent-2", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
}

/// B-5: the upstream host does not resolve: the relay starts, serves requests and subscribers, and logs
/// `upstream unreachable`.
#[test]
fn upstream_host_unresolvable() {
    let mut relay = Relay::with(&[("flink_market_data_endpoint", "\"tcp://no-such-host.invalid:5557\"")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 78");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let t0 = Instant::now();
    let r = dealer_roundtrip(&mut py, "cli", b"dns-1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
    assert!(t0.elapsed() < Duration::from_secs(3), "resolving must not block requests");
    let r = dealer_roundtrip(&mut py, "cli", b"dns-2", "KRAKEN:XBT/USD", b"");
    assert_eq!(r.status, "UNAVAILABLE");
    relay.wait_log(0, &["WARN", "upstream unreachable"], STEP);
    // A subscriber handshakes and subscribes fine (a raw SUB: greeting + READY answered).
    let mut s = raw_connect(relay.md_port);
    write_lossy(&mut s, &greeting(3, 0, b"NULL", false));
    write_lossy(&mut s, &ready("SUB"));
    write_lossy(&mut s, &frames_wire(&[[&[1u8][..], T_BTC].concat()]));
    let mut rd = RawReader::new();
    rd.greeting(&mut s, STEP).expect("the market-data port answers the greeting");
    let f = rd.frame(&mut s, STEP).expect("READY");
    assert!(f.command && f.body.starts_with(b"\x05READY"), "{f:?}");
    let r = dealer_roundtrip(&mut py, "cli", b"dns-3", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "OK");
}

/// `flink_market_data_bind = true`: the XSUB binds (a fifth `listening` line, role `market data in`);
/// a publisher connects to it and its data flows.
#[test]
fn upstream_bind_mode() {
    let up = free_port();
    let mut relay = Relay::start(
        Opts::default()
            .set("flink_market_data_endpoint", format!("\"{}\"", ep(up)))
            .set("flink_market_data_bind", "true")
            .listening(5),
    );
    relay.wait_log(0, &["listening", "role=market data in"], STEP);
    let mut py = Py::new();
    py.sock("src", "XPUB", "connect", &ep(up), &[]);
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(b"BINANCE:"))]);
    let m = py.msg("src");
    assert_eq!(m, vec![frame_repr(b"\x01BINANCE:")], "the connected publisher gets the subscription");
    let data = vec![T_BTC.to_vec(), b"bound".to_vec()];
    repeat(&mut py, "src", std::slice::from_ref(&data));
    wait_for(&mut py, "sub", &zmtp_interop::reprs(&data), STEP);
}

/// B-6: the upstream sends garbage: the relay drops that connection and reconnects (with back-off).
#[test]
fn upstream_garbage_reconnects() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let mut relay = Relay::with(&[("flink_market_data_endpoint", &format!("\"{}\"", ep(port)))]);
    let accept = |l: &TcpListener| {
        let deadline = Instant::now() + STEP;
        loop {
            match l.accept() {
                Ok((s, _)) => return s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("the relay did not connect upstream within {STEP:?}: {e}"),
            }
        }
    };
    let mark = relay.mark();
    let mut s = accept(&listener);
    s.set_nonblocking(false).expect("blocking");
    let _ = s.write_all(
        b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not ZMTP at all......................................",
    );
    let t0 = Instant::now();
    expect_closed(&mut s, t0, STEP, "the relay closes a garbage upstream");
    // It comes back.
    let mut s2 = accept(&listener);
    s2.set_nonblocking(false).expect("blocking");
    // A valid PUB this time: the relay completes the handshake.
    let _ = s2.write_all(&greeting(3, 0, b"NULL", true));
    let _ = s2.write_all(&ready("PUB"));
    let mut rd = RawReader::new();
    let g = rd.greeting(&mut s2, STEP).expect("greeting from the relay's XSUB");
    assert_eq!(g[10], 3, "ZMTP 3");
    relay.wait_log(mark, &["upstream connected"], STEP);
    // The relay is fine meanwhile.
    let mut py = Py::new();
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let r = dealer_roundtrip(&mut py, "cli", b"g-1", "BINANCE:BTC/USDT", b"");
    assert_eq!(r.status, "UNAVAILABLE");
}

/// B-6: a market-data message over `max_message_bytes` from the source: the relay drops the upstream
/// connection and reconnects; the big message never reaches subscribers; small ones keep flowing.
#[test]
fn upstream_oversize_message_reconnects() {
    let up = free_port();
    let mut src = Py::new();
    bind_source(&mut src, "src", "PUB", up);
    let mut relay = Relay::with(&[
        ("flink_market_data_endpoint", &format!("\"{}\"", ep(up))),
        ("max_message_bytes", "65536"),
    ]);
    relay.wait_log(0, &["upstream connected"], STEP);
    let mut py = Py::new();
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(b"BINANCE:"))]);
    let small = vec![T_BTC.to_vec(), b"small".to_vec()];
    repeat(&mut src, "src", std::slice::from_ref(&small));
    wait_for(&mut py, "sub", &zmtp_interop::reprs(&small), STEP);
    src.cmd("STOP src");
    let mark = relay.mark();
    src.cmd(&format!("SEND src {}:z70000", hex(T_ETH)));
    relay.wait_log(mark, &["upstream disconnected"], STEP);
    relay.wait_log(mark, &["upstream connected"], STEP);
    let small2 = vec![T_BTC.to_vec(), b"small-again".to_vec()];
    repeat(&mut src, "src", std::slice::from_ref(&small2));
    let others = wait_for(&mut py, "sub", &zmtp_interop::reprs(&small2), STEP);
    assert!(others.iter().all(|m| m[0] == frame_repr(T_BTC)), "the oversize message leaked: {others:?}");
}

/// As libzmq's XPUB: a topic's first subscription and its last unsubscription go upstream; a subscriber
/// that disconnects cancels its subscriptions.
#[test]
fn first_subscription_and_last_unsubscription_forwarded() {
    let up = free_port();
    let mut src = Py::new();
    bind_source(&mut src, "src", "XPUB", up);
    let mut relay = Relay::with(&[("flink_market_data_endpoint", &format!("\"{}\"", ep(up)))]);
    relay.wait_log(0, &["upstream connected"], STEP);
    let mut py = Py::new();
    let sub = |t: &[u8]| format!("sub={}", hex(t));
    py.sock("a", "SUB", "connect", &relay.md_ep(), &[&sub(T_BTC)]);
    assert_eq!(src.msg("src"), vec![frame_repr(&[&[1u8][..], T_BTC].concat())]);
    py.sock("b", "SUB", "connect", &relay.md_ep(), &[&sub(T_BTC)]);
    py.sync();
    src.no_msg("src", QUIET, "a second subscription to the same topic is not forwarded");
    py.close("a");
    src.no_msg("src", QUIET, "not the last subscriber yet");
    py.cmd(&format!("UNSUB b {}", hex(T_BTC)));
    assert_eq!(src.msg("src"), vec![frame_repr(&[&[0u8][..], T_BTC].concat())], "the last unsubscription");
    py.cmd(&format!("SUB b {}", hex(T_ETH)));
    assert_eq!(src.msg("src"), vec![frame_repr(&[&[1u8][..], T_ETH].concat())]);
    py.close("b");
    assert_eq!(
        src.msg("src"),
        vec![frame_repr(&[&[0u8][..], T_ETH].concat())],
        "a disconnecting subscriber cancels its subscriptions"
    );
}
