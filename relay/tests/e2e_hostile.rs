//! Hostile inputs on every relay port (docs/relay-protocol.md, "Ports and sockets" last paragraph and
//! §5 "Sockets"): junk bytes, an HTTP request, a ZMTP 2.0 greeting, an unknown mechanism, an
//! incompatible Socket-Type, a frame over the port's limit, a stall mid-handshake. Each loses its
//! connection, while pyzmq peers already connected to the same port keep working (a full
//! request/reply and a market-data message after each case).

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const TOPIC: &[u8] = b"BINANCE:BTC/USDT|tick";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Clients,
    Work,
    Responses,
    MarketData,
}

impl Port {
    fn number(self, r: &Relay) -> u16 {
        match self {
            Port::Clients => r.client_port,
            Port::Work => r.work_port,
            Port::Responses => r.response_port,
            Port::MarketData => r.md_port,
        }
    }
    /// A socket type the port accepts.
    fn good_type(self) -> &'static str {
        match self {
            Port::Clients | Port::Responses => "DEALER",
            Port::Work | Port::MarketData => "SUB",
        }
    }
    /// A frame size over the port's limit (1 MiB on the client port, `max_message_bytes` = 65,536
    /// here on the response port; the XPUB ports: far over anything).
    fn oversize(self) -> u64 {
        match self {
            Port::Clients => 1024 * 1024 + 1,
            Port::Responses => 65_537,
            Port::Work | Port::MarketData => 1 << 40,
        }
    }
}

const PORTS: [Port; 4] = [Port::Clients, Port::Work, Port::Responses, Port::MarketData];

/// A relay with a connected client, ingestor (answering OK at once), source and subscriber.
struct Rig {
    relay: Relay,
    py: Py,
    n: usize,
}

fn rig(handshake_timeout: &str) -> Rig {
    let up = free_port();
    let mut py = Py::new();
    assert!(py.try_bind("src", "PUB", &ep(up)), "bind the source");
    let mut relay = Relay::with(&[
        ("flink_market_data_endpoint", &format!("\"{}\"", ep(up))),
        ("handshake_timeout_secs", handshake_timeout),
        ("max_message_bytes", "65536"),
        ("request_timeout_secs", "10"),
    ]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 676f6f64");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("sub", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(b"BINANCE:"))]);
    let warm = vec![TOPIC.to_vec(), b"warm".to_vec()];
    py.cmd(&format!("REPEAT src 50 {}", msg_arg(&warm)));
    py.msg("sub");
    py.cmd("STOP src");
    py.sync();
    let mut rig = Rig { relay, py, n: 0 };
    rig.all_good("start");
    rig
}

impl Rig {
    /// A full request/reply through the client, work and response ports, and a market-data message
    /// through the upstream and market-data ports, on the connections made at the start.
    fn all_good(&mut self, after: &str) {
        self.n += 1;
        let id = format!("good-{}", self.n);
        let r = dealer_roundtrip(&mut self.py, "cli", id.as_bytes(), "BINANCE:BTC/USDT", b"");
        assert_eq!(
            (r.status.as_str(), r.id.as_slice(), r.data.clone()),
            ("OK", id.as_bytes(), vec![frame_repr(b"good")]),
            "request/reply after {after}"
        );
        let data = vec![TOPIC.to_vec(), id.clone().into_bytes()];
        self.py.send("src", &data);
        let want = zmtp_interop::reprs(&data);
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.py.try_msg("sub", left) {
                Some(m) if m == want => break,
                Some(_) => {}
                None => panic!("market data stopped after {after}"),
            }
        }
    }
}

/// Connection-level hostile inputs for `port` (name, bytes).
fn cases(port: Port) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("junk bytes".into(), (0..200u32).map(|i| (i * 37 + 11) as u8 & 0x7e).collect()),
        (
            "TLS ClientHello-like junk".into(),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03junkjunkjunk".to_vec(),
        ),
        ("HTTP request".into(), b"GET / HTTP/1.1\r\nHost: relay\r\nUser-Agent: test\r\n\r\n".to_vec()),
        ("ZMTP 2.0 greeting".into(), vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0x01, 0x05, 0x00, 0x00]),
        ("ZMTP 1.0 greeting".into(), vec![0x01, 0x00, 0x01, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o']),
        ("unknown mechanism".into(), greeting(3, 0, b"FOOBAR", false)),
        ("mechanism PLAIN (not configured)".into(), greeting(3, 1, b"PLAIN", false)),
    ];
    let mut g = greeting(3, 0, b"NULL", false);
    g.extend(ready("PUSH"));
    v.push(("incompatible Socket-Type PUSH".into(), g));
    let mut g = greeting(3, 1, b"NULL", false);
    g.extend(ready("REP"));
    v.push(("incompatible Socket-Type REP".into(), g));
    let mut g = greeting(3, 0, b"NULL", false);
    g.extend(ready(port.good_type()));
    g.push(0x02);
    g.extend_from_slice(&port.oversize().to_be_bytes());
    g.extend_from_slice(&[0x55; 1024]);
    v.push((format!("frame of {} bytes", port.oversize()), g));
    let mut g = greeting(3, 0, b"NULL", false);
    g.extend_from_slice(&[0x00, 0x01, 0x41]);
    v.push(("data frame before READY".into(), g));
    v
}

fn hostile_on(port: Port) {
    let mut rig = rig("5");
    let p = port.number(&rig.relay);

    // Control: a raw client that does everything right keeps its connection and is served.
    raw_control(&mut rig, port);
    rig.all_good("the raw control client");

    let mut failures = Vec::new();
    for (what, bytes) in cases(port) {
        let mark = rig.relay.mark();
        let mut s = raw_connect(p);
        let t0 = Instant::now();
        write_lossy(&mut s, &bytes);
        // "At once": well before the 5 s handshake timeout, with slack for a loaded machine.
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            expect_closed(&mut s, t0, Duration::from_secs(3), &what)
        }));
        match closed {
            Ok(_) => {
                let logged =
                    rig.relay.log_within(mark, &["WARN", "peer disconnected"], Duration::from_secs(3));
                if !logged {
                    failures.push(format!("{port:?} {what}: closed, but no `peer disconnected` warn line"));
                }
            }
            Err(_) => failures.push(format!("{port:?} {what}: connection not closed within 3 s")),
        }
        drop(s);
        rig.all_good(&what);
    }
    assert!(failures.is_empty(), "hostile input deviations:\n{}", failures.join("\n"));
}

/// A raw ZMTP 3.0 NULL peer of the right type: it gets the relay's greeting and READY and, per port,
/// is served (client: a reply; work: its subscription is logged; responses: its response is
/// processed; market data: it receives data).
fn raw_control(rig: &mut Rig, port: Port) {
    let p = port.number(&rig.relay);
    let mark = rig.relay.mark();
    let mut s = raw_connect(p);
    write_lossy(&mut s, &greeting(3, 0, b"NULL", false));
    write_lossy(&mut s, &ready(port.good_type()));
    let mut rd = RawReader::new();
    let g = rd.greeting(&mut s, STEP).unwrap_or_else(|e| panic!("{port:?}: no greeting from the relay: {e}"));
    assert_eq!((g[0], g[9]), (0xff, 0x7f), "{port:?} greeting signature");
    assert_eq!(g[10], 3, "{port:?}: ZMTP 3");
    assert_eq!(&g[12..16], b"NULL", "{port:?}: NULL mechanism");
    let f = rd.frame(&mut s, STEP).unwrap_or_else(|e| panic!("{port:?}: no READY: {e}"));
    assert!(f.command && f.body.starts_with(b"\x05READY"), "{port:?}: {f:?}");
    let want_type: &[u8] = match port {
        Port::Clients | Port::Responses => b"ROUTER",
        Port::Work | Port::MarketData => b"XPUB",
    };
    assert!(contains(&f.body, want_type), "{port:?}: READY announces {}", String::from_utf8_lossy(want_type));
    match port {
        Port::Clients => {
            write_lossy(&mut s, &frames_wire(&dealer_req(b"raw-1", b"KRAKEN:XBT/USD", b"")));
            let m = rd.message(&mut s, STEP).unwrap_or_else(|e| panic!("raw client: no reply: {e}"));
            let reprs = zmtp_interop::reprs(&m);
            let r = parse_reply(&reprs, true);
            assert_eq!((r.status.as_str(), r.id.as_slice()), ("UNAVAILABLE", &b"raw-1"[..]));
        }
        Port::Work => {
            write_lossy(&mut s, &frames_wire(&[b"\x01ZZZ:".to_vec()]));
            rig.relay.wait_log(mark, &["ingestor subscribed", "prefix=ZZZ:"], STEP);
        }
        Port::Responses => {
            write_lossy(&mut s, &frames_wire(&response(b"raw-unknown", "OK", &[b"x"])));
            rig.relay.wait_log(mark, &["dropped", "kind=response not pending"], STEP);
        }
        Port::MarketData => {
            write_lossy(&mut s, &frames_wire(&[b"\x01BINANCE:".to_vec()]));
            let data = vec![TOPIC.to_vec(), b"raw-md".to_vec()];
            rig.py.cmd(&format!("REPEAT src 50 {}", msg_arg(&data)));
            let m = rd.message(&mut s, STEP).unwrap_or_else(|e| panic!("raw subscriber: no data: {e}"));
            rig.py.cmd("STOP src");
            rig.py.sync();
            assert_eq!(m[0], TOPIC);
        }
    }
    // The connection stays open.
    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    let mut buf = [0u8; 1024];
    if let Ok(0) = std::io::Read::read(&mut s, &mut buf) {
        panic!("{port:?}: the relay closed a well-behaved raw connection");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn hostile_client_port() {
    hostile_on(Port::Clients);
}

#[test]
fn hostile_ingestor_work_port() {
    hostile_on(Port::Work);
}

#[test]
fn hostile_ingestor_response_port() {
    hostile_on(Port::Responses);
}

#[test]
fn hostile_market_data_port() {
    hostile_on(Port::MarketData);
}

/// A peer that stalls mid-handshake (nothing sent, part of the signature, a whole greeting without
/// READY) loses its connection after `handshake_timeout_secs` = 1 (not before), on every port;
/// everyone else is served meanwhile and afterwards.
#[test]
fn stall_mid_handshake_every_port() {
    let mut rig = rig("1");
    let mut conns: Vec<(String, TcpStream, Instant)> = Vec::new();
    for port in PORTS {
        let p = port.number(&rig.relay);
        let s = raw_connect(p);
        conns.push((format!("{port:?}: silent"), s, Instant::now()));
        let t = Instant::now();
        let mut s = raw_connect(p);
        write_lossy(&mut s, &[0xff, 0, 0, 0, 0, 0, 0, 0]);
        conns.push((format!("{port:?}: 8 bytes of signature"), s, t));
        let t = Instant::now();
        let mut s = raw_connect(p);
        write_lossy(&mut s, &greeting(3, 0, b"NULL", false));
        conns.push((format!("{port:?}: greeting, no READY"), s, t));
    }
    // Others are served while the stalled handshakes hang.
    rig.all_good("opening stalled connections");
    let mut failures = Vec::new();
    for (what, mut s, t0) in conns {
        let e = expect_closed(&mut s, t0, Duration::from_secs(6), &what);
        if e < Duration::from_millis(900) {
            failures.push(format!("{what}: closed after {e:?}, before the 1 s handshake timeout"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    rig.all_good("the stalled handshakes were closed");
}

/// Many junk connections at once on the client port (a small burst): all closed, the client served.
#[test]
fn junk_burst_on_client_port() {
    let mut rig = rig("5");
    let p = rig.relay.client_port;
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut s = raw_connect(p);
            write_lossy(&mut s, format!("junk {i} GET / HTTP/1.0\r\n\r\n").as_bytes());
            s
        })
        .collect();
    rig.all_good("50 junk connections");
    for (i, s) in conns.iter_mut().enumerate() {
        expect_closed(s, t0, Duration::from_secs(5), &format!("junk connection {i}"));
    }
    rig.all_good("the junk connections were closed");
}

/// Heartbeats (§5 "Sockets", B-14): a peer that completes the handshake and then sends nothing (it
/// never answers PINGs) is closed after `heartbeat_timeout_secs`, on every port; pyzmq peers, which
/// answer PINGs, stay connected and are served.
#[test]
fn silent_peer_closed_by_heartbeat_timeout() {
    let up = free_port();
    let mut py = Py::new();
    assert!(py.try_bind("src", "PUB", &ep(up)), "bind the source");
    let mut relay = Relay::with(&[
        ("flink_market_data_endpoint", &format!("\"{}\"", ep(up))),
        ("heartbeat_interval_secs", "0.2"),
        ("heartbeat_timeout_secs", "1"),
        ("request_timeout_secs", "10"),
    ]);
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.cmd("AUTO ing_w ing_r 4f4b 676f6f64");
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let mut rig = Rig { relay, py, n: 0 };
    rig.py.sock("sub", "SUB", "connect", &rig.relay.md_ep(), &[&format!("sub={}", hex(b"BINANCE:"))]);
    let warm = vec![TOPIC.to_vec(), b"warm".to_vec()];
    rig.py.cmd(&format!("REPEAT src 50 {}", msg_arg(&warm)));
    rig.py.msg("sub");
    rig.py.cmd("STOP src");
    let mut conns = Vec::new();
    for port in PORTS {
        let t0 = Instant::now();
        let mut s = raw_connect(port.number(&rig.relay));
        // ZMTP 3.1: PING/PONG do not exist in 3.0 (a silent 3.0 peer is left to TCP keepalive, §5).
        write_lossy(&mut s, &greeting(3, 1, b"NULL", false));
        write_lossy(&mut s, &ready(port.good_type()));
        let mut rd = RawReader::new();
        rd.greeting(&mut s, STEP).expect("greeting");
        rd.frame(&mut s, STEP).expect("READY");
        conns.push((port, s, t0));
    }
    let mut failures = Vec::new();
    for (port, mut s, t0) in conns {
        // 1 s timeout + 0.2 s interval + slack for a loaded machine.
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            expect_closed(&mut s, t0, Duration::from_secs(5), &format!("{port:?}: silent peer"))
        }));
        match closed {
            Ok(e) if e < Duration::from_millis(900) => {
                failures.push(format!("{port:?}: closed after {e:?}, before the 1 s heartbeat timeout"))
            }
            Ok(_) => {}
            Err(_) => failures.push(format!("{port:?}: a silent peer is still connected after 5 s")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The pyzmq peers have been connected all along (idle for over a second) and are still served.
    std::thread::sleep(Duration::from_millis(500));
    rig.all_good("heartbeat timeouts");
}
