//! Hostile peers against real sockets (reliability.md §7a/§7b cases that need a runtime): raw TCP
//! clients send bytes no ZeroMQ peer would, and the socket must drop only them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::loopback::null_peer_opening;
use zmtp::proto::{SocketType as WireType, Version};
use zmtp::{Msg, Options, Socket, SocketEventKind, SocketType};

fn addr(endpoint: &str) -> String {
    endpoint.trim_start_matches("tcp://").to_owned()
}

async fn recv_within(s: &Socket, secs: u64) -> Msg {
    tokio::time::timeout(Duration::from_secs(secs), s.recv()).await.expect("timed out").expect("recv")
}

/// Reads until the server closes the connection; how long it took (panics after `limit`).
fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        assert!(start.elapsed() < limit, "not closed within {limit:?}");
        match stream.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return start.elapsed(),
        }
    }
}

/// A raw client that completed the NULL handshake as `as_type`.
fn raw_peer(endpoint: &str, as_type: WireType) -> TcpStream {
    let mut s = TcpStream::connect(addr(endpoint)).unwrap();
    s.write_all(&null_peer_opening(as_type, Version::V3_1)).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_connection_leaves_others_untouched() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let good = Socket::with_options(
        SocketType::Dealer,
        Options { routing_id: Some(Bytes::from_static(b"good")), ..Options::default() },
    )
    .unwrap();
    good.connect(&ep).unwrap();
    good.send("hello").await.unwrap();
    assert_eq!(recv_within(&router, 5).await.frames()[1], "hello");

    let ep2 = ep.clone();
    let closed = tokio::task::spawn_blocking(move || {
        let mut times = Vec::new();
        // Not a greeting at all.
        let mut a = TcpStream::connect(addr(&ep2)).unwrap();
        a.write_all(&[0u8; 64]).unwrap();
        times.push(wait_closed(&mut a, Duration::from_secs(5)));
        // A valid handshake, then a frame header claiming 2^62 bytes.
        let mut b = raw_peer(&ep2, WireType::Dealer);
        b.write_all(&[0x02, 0x40, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        times.push(wait_closed(&mut b, Duration::from_secs(5)));
        // Reserved flag bits.
        let mut c = raw_peer(&ep2, WireType::Dealer);
        c.write_all(&[0xf0, 0x00]).unwrap();
        times.push(wait_closed(&mut c, Duration::from_secs(5)));
        times
    })
    .await
    .unwrap();
    assert_eq!(closed.len(), 3);
    // The good peer is untouched, both ways.
    good.send("still here").await.unwrap();
    let got = recv_within(&router, 5).await;
    assert_eq!(got.frames(), [Bytes::from("good"), Bytes::from("still here")]);
    router.send(Msg::from(vec![Bytes::from("good"), Bytes::from("reply")])).await.unwrap();
    assert_eq!(recv_within(&good, 5).await.frames()[0], "reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_greeting_is_closed_at_the_handshake_timeout() {
    let options = Options { handshake_interval: Some(Duration::from_millis(500)), ..Options::default() };
    let router = Socket::with_options(SocketType::Router, options).unwrap();
    let mut monitor = router.monitor();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let ep2 = ep.clone();
    let took = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr(&ep2)).unwrap();
        let opening = null_peer_opening(WireType::Dealer, Version::V3_1);
        let start = Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        // One octet every 100 ms: traffic keeps flowing, but the handshake never completes in time.
        for &b in &opening[..30] {
            if s.write_all(&[b]).is_err() {
                break;
            }
            let mut buf = [0u8; 256];
            if let Ok(0) = s.read(&mut buf) {
                return start.elapsed();
            }
        }
        start.elapsed() + wait_closed(&mut s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(took >= Duration::from_millis(400), "closed too early: {took:?}");
    assert!(took < Duration::from_millis(2500), "closed too late: {took:?}");
    let reason = wait_for_event(&mut monitor, |kind| match kind {
        SocketEventKind::HandshakeFailed(r) => Some(r),
        _ => None,
    })
    .await
    .expect("the monitor reports the handshake failure");
    assert!(
        matches!(
            reason,
            zmtp::HandshakeFailure::NoDetail(zmtp::DisconnectReason::Connection(
                zmtp::proto::ConnectionError::HandshakeTimeout(_)
            ))
        ),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_dying_mid_message_delivers_nothing_of_it() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let ep2 = ep.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = raw_peer(&ep2, WireType::Push);
        // Two complete frames of a three-frame message, then the peer vanishes.
        s.write_all(&[0x01, 0x01, b'a', 0x01, 0x01, b'b']).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
    })
    .await
    .unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    push.send(Msg::from(vec![Bytes::from("whole"), Bytes::from("message")])).await.unwrap();
    let got = recv_within(&pull, 5).await;
    assert_eq!(got.frames(), [Bytes::from("whole"), Bytes::from("message")]);
    assert!(pull.try_recv().is_err(), "no fragment of the dead peer's message");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_files_soft_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// reliability.md B-13 (at 1,000): every connection handshakes, memory per idle connection is small
/// and bounded, and an active client beside them is served normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_idle_connections_with_bounded_memory() {
    const N: usize = 1000;
    // Both ends live in this process: 2 descriptors per connection.
    if open_files_soft_limit() < (2 * N + 200) as u64 {
        panic!("raise the open-files limit to run this test (ulimit -n 4096); scripts/test-all.sh does");
    }
    let router = Socket::new(SocketType::Router).unwrap();
    let mut monitor = router.monitor();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    // Warm up allocator arenas and the runtime with a few connections first.
    let warm: Vec<TcpStream> = (0..20).map(|_| raw_peer(&ep, WireType::Dealer)).collect();
    let mut handshakes = 0;
    while handshakes < warm.len() {
        if let SocketEventKind::HandshakeSucceeded = monitor.recv().await.unwrap().kind {
            handshakes += 1;
        }
    }
    let before = rss_kib();
    let ep2 = ep.clone();
    let clients = tokio::task::spawn_blocking(move || {
        (0..N).map(|_| raw_peer(&ep2, WireType::Dealer)).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut handshakes = 0;
    while handshakes < N {
        let ev = tokio::time::timeout(Duration::from_secs(30), monitor.recv()).await.unwrap().unwrap();
        if ev.kind == SocketEventKind::HandshakeSucceeded {
            handshakes += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_kib();
    let per_conn = (after.saturating_sub(before)) as f64 / N as f64;
    println!("RSS per idle handshaked connection: {per_conn:.1} KiB ({before} KiB -> {after} KiB for {N})");
    assert!(per_conn < 48.0, "{per_conn:.1} KiB per idle connection");

    // An active client beside them gets normal service.
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    let start = Instant::now();
    dealer.send("ping").await.unwrap();
    let got = recv_within(&router, 5).await;
    router.send(Msg::from(vec![got.frames()[0].clone(), Bytes::from("pong")])).await.unwrap();
    assert_eq!(recv_within(&dealer, 5).await.frames()[0], "pong");
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(clients);
    drop(warm);
}

/// A peer that handshakes and then goes silent (never answers PINGs) is closed after the heartbeat
/// timeout; the monitor says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_closed_by_heartbeat_timeout() {
    let options = Options {
        heartbeat_interval: Some(Duration::from_millis(100)),
        heartbeat_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    };
    let router = Socket::with_options(SocketType::Router, options).unwrap();
    let mut monitor = router.monitor();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let ep2 = ep.clone();
    let took = tokio::task::spawn_blocking(move || {
        let mut s = raw_peer(&ep2, WireType::Dealer);
        wait_closed(&mut s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // The event may be published just after the peer sees its connection close: wait for it.
    let reason = wait_for_event(&mut monitor, |kind| match kind {
        SocketEventKind::Disconnected(r) => Some(r),
        _ => None,
    })
    .await
    .expect("a Disconnected event");
    assert!(
        matches!(
            reason,
            zmtp::DisconnectReason::Connection(
                zmtp::proto::ConnectionError::PeerTtlExpired(_)
                    | zmtp::proto::ConnectionError::HeartbeatTimeout(_)
            )
        ),
        "{reason}"
    );
}

/// Two of our sockets with heartbeats on both sides stay connected while idle (each answers the
/// other's PINGs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_heartbeating_peers_stay_connected() {
    let options = || Options {
        heartbeat_interval: Some(Duration::from_millis(50)),
        heartbeat_timeout: Some(Duration::from_millis(150)),
        heartbeat_ttl: Some(Duration::from_millis(500)),
        ..Options::default()
    };
    let rep = Socket::with_options(SocketType::Rep, options()).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::with_options(SocketType::Req, options()).unwrap();
    let mut monitor = req.monitor();
    req.connect(&ep).unwrap();
    req.send("first").await.unwrap();
    recv_within(&rep, 5).await;
    rep.send("ok").await.unwrap();
    recv_within(&req, 5).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while let Some(ev) = monitor.try_recv() {
        assert!(!matches!(ev.kind, SocketEventKind::Disconnected(_)), "{ev:?}");
    }
    req.send("second").await.unwrap();
    assert_eq!(recv_within(&rep, 5).await.frames()[0], "second");
}

/// The cap on handshakes in progress: at the cap, the oldest handshake in progress is closed to admit
/// a new connection, so peers that connect and stall cannot lock real peers out (they would until
/// the handshake timeout if new connections were refused instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_in_progress_are_capped_by_closing_the_oldest() {
    let options = Options {
        max_handshakes: 2,
        handshake_interval: Some(Duration::from_secs(30)),
        ..Options::default()
    };
    let router = Socket::with_options(SocketType::Router, options).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let ep2 = ep.clone();
    let stalled = tokio::task::spawn_blocking(move || {
        // Two silent connections take both slots.
        let mut silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr(&ep2)).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        // A third evicts the oldest, which is closed at once; the third and the second stay.
        let third = TcpStream::connect(addr(&ep2)).unwrap();
        assert!(wait_closed(&mut silent[0], Duration::from_secs(1)) < Duration::from_millis(500));
        (silent, third)
    })
    .await
    .unwrap();
    // A real peer is served at once, long before the stalled ones' handshake timeout.
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    dealer.send("during the flood").await.unwrap();
    assert_eq!(recv_within(&router, 5).await.frames()[1], "during the flood");
    drop(stalled);
}

/// reliability.md B-7 (scaled for CI): one stalled subscriber among fast ones. The publisher never
/// blocks, the stalled subscriber's copies are dropped at its HWM and counted, the fast ones get
/// (nearly) everything, and memory stays bounded.
/// reliability.md B-15, "capped in-progress handshakes (global and per IP)": a host at its
/// per-address cap evicts its own oldest handshake, not another host's. A stalled handshake from
/// 127.0.0.1 (the oldest of all) survives a flood of 300 stalled connections from 127.0.0.2 with a
/// per-address cap of 50 under a global cap of 100; with only the global cap it would be the first
/// evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_flooding_handshakes_evicts_only_its_own() {
    let options = Options {
        max_handshakes: 100,
        max_handshakes_per_ip: 50,
        handshake_interval: Some(Duration::from_secs(30)),
        ..Options::default()
    };
    let router = Socket::with_options(SocketType::Router, options).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let target: std::net::SocketAddr = addr(&ep).parse().unwrap();
    let mut monitor = router.monitor();
    let mut first = TcpStream::connect(target).unwrap();
    let _ = wait_for_event(&mut monitor, |k| matches!(k, SocketEventKind::Accepted(_)).then_some(())).await;
    let mut flood = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        flood.push(socket.connect(target).await.unwrap());
    }
    // Let the listener take them all: 250 of the flood are evicted, all from 127.0.0.2.
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed < 250 && Instant::now() < deadline {
        closed = 0;
        for s in &flood {
            let mut buf = [0u8; 64];
            match s.try_read(&mut buf) {
                Ok(0) => closed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed >= 250, "only {closed} of the flood were closed");
    // The first host's stalled handshake is still open.
    first.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match first.read(&mut buf) {
            Ok(n) if n > 0 => continue, // the server's greeting
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break
            }
            other => panic!("the other host's handshake was closed: {other:?}"),
        }
    }
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscriber_does_not_slow_the_others() {
    const FAST: usize = 5;
    const MESSAGES: usize = 20_000;
    let publisher = Socket::new(SocketType::Pub).unwrap();
    let ep = publisher.bind("tcp://127.0.0.1:*").await.unwrap();
    // The stalled subscriber: subscribes, then never reads.
    let stalled =
        Socket::with_options(SocketType::Sub, Options { recv_hwm: 10, ..Options::default() }).unwrap();
    stalled.connect(&ep).unwrap();
    stalled.subscribe("").unwrap();
    let mut fast = Vec::new();
    for _ in 0..FAST {
        let s = Socket::new(SocketType::Sub).unwrap();
        s.connect(&ep).unwrap();
        s.subscribe("").unwrap();
        fast.push(s);
    }
    while publisher.subscriber_count(b"x") != Some(FAST + 1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counters: Vec<_> = fast
        .into_iter()
        .map(|s| {
            tokio::spawn(async move {
                let mut n = 0usize;
                while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), s.recv()).await {
                    if m.frames()[0] == "end" {
                        break;
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let before = rss_kib();
    let payload = Bytes::from(vec![b'x'; 1024]);
    let start = Instant::now();
    let mut longest_send = Duration::ZERO;
    for i in 0..MESSAGES {
        let t = Instant::now();
        publisher.send(payload.clone()).await.unwrap();
        longest_send = longest_send.max(t.elapsed());
        if i % 100 == 99 {
            // Pace the publisher (about what the fast subscribers can take in a debug build).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let publish_time = start.elapsed();
    for _ in 0..20 {
        publisher.send("end").await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delivered = Vec::new();
    for c in counters {
        delivered.push(c.await.unwrap());
    }
    let growth = rss_kib().saturating_sub(before);
    let dropped = publisher.dropped_messages();
    println!(
        "B-7: {MESSAGES} x 1 KiB to {FAST} fast + 1 stalled subscriber in {publish_time:?}; fast delivered {delivered:?}; \
         dropped {dropped} copies; longest send {longest_send:?}; RSS growth {growth} KiB"
    );
    for n in &delivered {
        assert!(*n as f64 >= 0.95 * MESSAGES as f64, "a fast subscriber got {n} of {MESSAGES}");
    }
    assert!(dropped as usize >= MESSAGES / 2, "the stalled subscriber's copies are dropped: {dropped}");
    assert!(longest_send < Duration::from_millis(200), "the publisher never blocks: {longest_send:?}");
    // The stalled peer holds at most SNDHWM (1000) x 1 KiB in its queue plus socket buffers.
    assert!(growth < 64 * 1024, "RSS grew {growth} KiB");
}

/// The first monitor event `pick` accepts, waiting up to 5 s: a connection's events may be
/// published just after the peer has seen the connection close.
async fn wait_for_event<T>(
    monitor: &mut zmtp::Monitor,
    mut pick: impl FnMut(SocketEventKind) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = monitor.recv().await {
            if let Some(found) = pick(ev.kind) {
                return Some(found);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
