//! Network faults of reliability.md §7b in network namespaces the test creates: half-open
//! connections (B-14: every packet dropped with `iptables -j DROP`, so the peer vanishes without FIN
//! or RST), a partition (the link down for 3 s, then up), and impairments (netem, when the kernel
//! has it; a user-space delaying proxy on loopback, which needs no namespace, stands in for its
//! delay).
//!
//! Each test makes two namespaces joined by a veth pair (10.250.0.1/30 and 10.250.0.2/30, inside the
//! namespaces only; the root namespace is not touched), named after this process and the test so
//! parallel runs never collide, and removes them on drop (a failing test too). Each zmtp socket lives
//! in one namespace: it runs on a tokio runtime started on a thread that first moved into that
//! namespace (setns; the runtime's threads inherit it). Needs root; otherwise the tests print
//! SKIPPED with the reason. See docs/faults.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::future::Future;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::ConnectionError;
use zmtp::{DisconnectReason, Msg, Options, Socket, SocketEventKind, SocketType};

/// The address of our end (namespace `a`) and of the peer's (namespace `b`).
const OUR_IP: &str = "10.250.0.1";
const PEER_IP: &str = "10.250.0.2";

fn run(args: &[&str]) -> Result<(), String> {
    let out =
        Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {} {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Two network namespaces joined by a veth pair; deleted on drop.
struct Netns {
    a: String,
    b: String,
    veth_b: String,
}

impl Netns {
    /// Creates the namespaces `zf<pid><tag>a` and `…b`, or says why not.
    fn new(tag: &str) -> Result<Netns, String> {
        let id = format!("zf{}{tag}", std::process::id());
        let ns = Netns {
            a: format!("{id}a"),
            b: format!("{id}b"),
            veth_b: format!("vb{}{tag}", std::process::id()),
        };
        let veth_a = format!("va{}{tag}", std::process::id());
        run(&["ip", "netns", "add", &ns.a])?;
        run(&["ip", "netns", "add", &ns.b])?;
        run(&[
            "ip", "link", "add", &veth_a, "netns", &ns.a, "type", "veth", "peer", "name", &ns.veth_b,
            "netns", &ns.b,
        ])?;
        for (n, dev, ip) in [(&ns.a, &veth_a, OUR_IP), (&ns.b, &ns.veth_b, PEER_IP)] {
            run(&["ip", "-n", n, "addr", "add", &format!("{ip}/30"), "dev", dev])?;
            run(&["ip", "-n", n, "link", "set", dev, "up"])?;
            run(&["ip", "-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    /// Drops every packet in and out of namespace `b` (iptables), or takes its link down when
    /// iptables is missing; returns which.
    fn drop_all(&self) -> &'static str {
        if run(&["ip", "netns", "exec", &self.b, "iptables", "-A", "INPUT", "-j", "DROP"]).is_ok() {
            run(&["ip", "netns", "exec", &self.b, "iptables", "-A", "OUTPUT", "-j", "DROP"]).unwrap();
            "iptables -j DROP"
        } else {
            println!("note: iptables is not installed (scripts/test-all.sh installs it): taking the link down instead");
            self.link(false);
            "ip link set down"
        }
    }

    /// Undoes [`Netns::drop_all`].
    fn heal(&self, how: &str) {
        if how.starts_with("iptables") {
            run(&["ip", "netns", "exec", &self.b, "iptables", "-F"]).unwrap();
        } else {
            self.link(true);
        }
    }

    /// Sets namespace `b`'s end of the veth pair up or down.
    fn link(&self, up: bool) {
        run(&["ip", "-n", &self.b, "link", "set", &self.veth_b, if up { "up" } else { "down" }]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        let _ = run(&["ip", "netns", "del", &self.a]);
        let _ = run(&["ip", "netns", "del", &self.b]);
    }
}

/// Creates the namespaces, or prints SKIPPED with the reason and returns `None`.
fn netns_or_skip(test: &str, tag: &str) -> Option<Netns> {
    match Netns::new(tag) {
        Ok(ns) => Some(ns),
        Err(e) => {
            println!("SKIPPED: {test}: cannot create network namespaces (needs root and iproute2): {e}");
            None
        }
    }
}

/// Runs `f` to completion on a new tokio runtime whose threads are in namespace `ns`.
fn in_netns<F, Fut, T>(ns: &str, f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(f())
    })
}

/// A 1 MiB `Bytes` (all sharing one buffer) that counts its live copies (see faults.rs): what a
/// queue still holds. Bytes written to the kernel are no longer held.
struct Tracked(Arc<AtomicUsize>, Arc<Vec<u8>>);

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.1
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn tracked(alive: &Arc<AtomicUsize>, data: &Arc<Vec<u8>>) -> Bytes {
    alive.fetch_add(1, Ordering::SeqCst);
    Bytes::from_owner(Tracked(alive.clone(), data.clone()))
}

fn heartbeats(on: bool) -> Options {
    Options {
        heartbeat_interval: on.then_some(Duration::from_millis(200)),
        heartbeat_timeout: on.then_some(Duration::from_secs(1)),
        // A connect attempt into the partition would otherwise wait for the OS's SYN retries (minutes).
        connect_timeout: Some(Duration::from_secs(1)),
        reconnect_interval: Some(Duration::from_millis(100)),
        linger: Some(Duration::ZERO),
        ..Options::default()
    }
}

/// The first event of `monitor` that `pick` accepts, within `limit`, and when it came.
async fn wait_event<T>(
    monitor: &mut zmtp::Monitor,
    limit: Duration,
    mut pick: impl FnMut(&SocketEventKind) -> Option<T>,
) -> Option<(T, Instant)> {
    tokio::time::timeout(limit, async {
        while let Some(ev) = monitor.recv().await {
            if let Some(t) = pick(&ev.kind) {
                return Some((t, Instant::now()));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// The peer: a ROUTER in namespace `b` on port 5555 (heartbeats as `hb`) that echoes, and on
/// `"queue"` sends the sender 20 tracked 1 MiB messages 500 ms later (into the fault the test has
/// injected meanwhile: more than the kernel buffers take, so most stay queued until the connection
/// is declared dead). Returns its disconnection reasons when `stop` is set.
fn peer_router(
    ns: &Netns,
    hb: bool,
    alive: Arc<AtomicUsize>,
    stop: Arc<tokio::sync::Notify>,
) -> std::thread::JoinHandle<Vec<DisconnectReason>> {
    in_netns(&ns.b, move || async move {
        let router = Socket::with_options(SocketType::Router, heartbeats(hb)).unwrap();
        let mut monitor = router.monitor();
        router.bind(&format!("tcp://{PEER_IP}:5555")).await.unwrap();
        let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r2 = reasons.clone();
        tokio::spawn(async move {
            while let Some(ev) = monitor.recv().await {
                if let SocketEventKind::Disconnected(r) = ev.kind {
                    r2.lock().unwrap().push(r);
                }
            }
        });
        let data = Arc::new(vec![0x42u8; 1024 * 1024]);
        let serve = async {
            while let Ok(m) = router.recv().await {
                if m.frames()[1] == "queue" {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    for _ in 0..20 {
                        let msg = Msg::from(vec![m.frames()[0].clone(), tracked(&alive, &data)]);
                        let _ = router.send(msg).await;
                    }
                    continue;
                }
                let _ = router.send(m).await;
            }
        };
        tokio::select! {
            _ = stop.notified() => {}
            _ = serve => {}
        }
        router.close().await;
        let out = reasons.lock().unwrap().clone();
        out
    })
}

/// Our DEALER's echo round trip, within `limit`.
async fn round_trip(dealer: &Socket, body: &str, limit: Duration) -> bool {
    if dealer.send(body.to_owned()).await.is_err() {
        return false;
    }
    matches!(tokio::time::timeout(limit, dealer.recv()).await, Ok(Ok(m)) if m.frames()[0] == body)
}

/// reliability.md B-14 (half-open, heartbeats on: IVL 200 ms, TIMEOUT 1 s on both sides): our
/// DEALER in one namespace, a ROUTER peer in the other. Every packet of the peer's namespace is
/// dropped (`iptables -j DROP`: no FIN, no RST, the peer just vanishes). Expected: our side closes
/// the connection for a heartbeat timeout within TIMEOUT + IVL (+ a margin for a loaded machine:
/// asserted < 3 s), the peer's side too, releasing the 1 MiB messages it had queued for us in the
/// meantime; when the packets flow again, our DEALER reconnects (connect timeout 1 s) and messages
/// sent after the heal arrive. (Messages written to the dead connection before it was declared dead
/// are lost, as with libzmq: docs/differences.md.)
#[test]
fn b14_half_open_with_heartbeats_is_closed_and_reconnects() {
    let Some(ns) = netns_or_skip("b14_half_open_with_heartbeats_is_closed_and_reconnects", "h") else {
        return;
    };
    let alive = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let peer = peer_router(&ns, true, alive.clone(), stop.clone());
    let ns = Arc::new(ns);
    let ns2 = ns.clone();
    let alive2 = alive.clone();
    let ours = in_netns(&ns.a, move || async move {
        let dealer = Socket::with_options(SocketType::Dealer, heartbeats(true)).unwrap();
        let mut monitor = dealer.monitor();
        dealer.connect(&format!("tcp://{PEER_IP}:5555")).unwrap();
        assert!(round_trip(&dealer, "before", Duration::from_secs(10)).await, "no echo before the fault");
        while monitor.try_recv().is_some() {}
        // The peer will send us 20 MiB in 500 ms: into the fault.
        dealer.send("queue").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let fault = Instant::now();
        let how = ns2.drop_all();
        let held_at_fault = {
            tokio::time::sleep(Duration::from_millis(700)).await;
            alive2.load(Ordering::SeqCst)
        };
        let (reason, at) = wait_event(&mut monitor, Duration::from_secs(10), |k| match k {
            SocketEventKind::Disconnected(r) => Some(r.clone()),
            _ => None,
        })
        .await
        .expect("the half-open connection is never closed");
        let closed_after = at - fault;
        // The peer's side: its queue for us is released (its heartbeat timeout too).
        let released = {
            let t = Instant::now();
            while alive2.load(Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            alive2.load(Ordering::SeqCst) == 0
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        ns2.heal(how);
        let healed = Instant::now();
        let reconnected = wait_event(&mut monitor, Duration::from_secs(10), |k| {
            matches!(k, SocketEventKind::HandshakeSucceeded).then_some(())
        })
        .await
        .map(|(_, at)| at - healed);
        let after = round_trip(&dealer, "after", Duration::from_secs(5)).await;
        dealer.close().await;
        (how, reason, closed_after, (held_at_fault, released), reconnected, after)
    })
    .join();
    stop.notify_one();
    let peer_reasons = peer.join().unwrap();
    let (how, reason, closed_after, (held, released), reconnected, after) = ours.unwrap();
    println!(
        "B-14 heartbeats on ({how}): closed {closed_after:?} after the fault ({reason}); the peer held {held} MiB \
         queued for us, released: {released}; reconnected {reconnected:?} after the heal; echo after: {after}; \
         the peer saw: {peer_reasons:?}"
    );
    assert!(
        matches!(
            reason,
            DisconnectReason::Connection(
                ConnectionError::HeartbeatTimeout(_) | ConnectionError::PeerTtlExpired(_)
            )
        ),
        "{reason}"
    );
    assert!(closed_after >= Duration::from_millis(900), "closed too early: {closed_after:?}");
    assert!(
        closed_after < Duration::from_secs(3),
        "not closed within TIMEOUT + IVL (+ margin): {closed_after:?}"
    );
    assert!(
        released,
        "the peer still holds {} messages queued for the dead connection",
        alive.load(Ordering::SeqCst)
    );
    assert!(
        peer_reasons.iter().any(|r| matches!(
            r,
            DisconnectReason::Connection(
                ConnectionError::HeartbeatTimeout(_) | ConnectionError::PeerTtlExpired(_)
            )
        )),
        "{peer_reasons:?}"
    );
    assert!(reconnected.is_some(), "our DEALER did not reconnect after the heal");
    assert!(after, "no echo after the heal");
}

/// reliability.md B-14 (half-open, heartbeats off, libzmq's default; TCP keepalive off too): the
/// same fault for 3 s. Nothing notices: neither side reports a disconnection, the connection
/// lingers (documented in docs/faults.md: enable heartbeats or TCP keepalive to detect it). When the
/// packets flow again, TCP retransmits and the same connection carries the echo.
#[test]
fn b14_half_open_without_heartbeats_lingers() {
    let Some(ns) = netns_or_skip("b14_half_open_without_heartbeats_lingers", "n") else { return };
    let stop = Arc::new(tokio::sync::Notify::new());
    let peer = peer_router(&ns, false, Arc::new(AtomicUsize::new(0)), stop.clone());
    let ns = Arc::new(ns);
    let ns2 = ns.clone();
    let ours = in_netns(&ns.a, move || async move {
        let dealer = Socket::with_options(SocketType::Dealer, heartbeats(false)).unwrap();
        let mut monitor = dealer.monitor();
        dealer.connect(&format!("tcp://{PEER_IP}:5555")).unwrap();
        assert!(round_trip(&dealer, "before", Duration::from_secs(10)).await);
        while monitor.try_recv().is_some() {}
        let how = ns2.drop_all();
        dealer.send("into the void").await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut events = Vec::new();
        while let Some(ev) = monitor.try_recv() {
            events.push(ev.kind);
        }
        ns2.heal(how);
        // TCP's retransmission timer has backed off: give it time.
        let got = tokio::time::timeout(Duration::from_secs(20), dealer.recv()).await;
        let mut later = Vec::new();
        while let Some(ev) = monitor.try_recv() {
            later.push(ev.kind);
        }
        dealer.close().await;
        (how, events, got.map(|m| m.map(|m| m.frames()[0].clone())), later)
    })
    .join();
    stop.notify_one();
    let peer_reasons = peer.join().unwrap();
    let (how, events, got, later) = ours.unwrap();
    println!(
        "B-14 heartbeats off ({how}): our events during 3 s of silence: {events:?}; after the heal: {got:?}, \
         events {later:?}; the peer saw: {peer_reasons:?}"
    );
    assert!(
        !events.iter().any(|k| matches!(k, SocketEventKind::Disconnected(_))),
        "without heartbeats the half-open connection was noticed: {events:?}"
    );
    assert!(matches!(&got, Ok(Ok(b)) if b == "into the void"), "the same connection resumes: {got:?}");
    assert!(!later.iter().any(|k| matches!(k, SocketEventKind::HandshakeSucceeded)), "{later:?}");
}

/// reliability.md B-14 / partition: the link between the namespaces goes down for 3 s (`ip link set
/// down`), then up, heartbeats on. Our DEALER declares the connection dead, reconnects after the
/// heal, and a message sent after the heal arrives (echoed).
#[test]
fn partition_of_3s_heals_and_messages_flow_again() {
    let Some(ns) = netns_or_skip("partition_of_3s_heals_and_messages_flow_again", "p") else { return };
    let stop = Arc::new(tokio::sync::Notify::new());
    let peer = peer_router(&ns, true, Arc::new(AtomicUsize::new(0)), stop.clone());
    let ns = Arc::new(ns);
    let ns2 = ns.clone();
    let ours = in_netns(&ns.a, move || async move {
        let dealer = Socket::with_options(SocketType::Dealer, heartbeats(true)).unwrap();
        let mut monitor = dealer.monitor();
        dealer.connect(&format!("tcp://{PEER_IP}:5555")).unwrap();
        assert!(round_trip(&dealer, "before", Duration::from_secs(10)).await);
        while monitor.try_recv().is_some() {}
        ns2.link(false);
        let down = wait_event(&mut monitor, Duration::from_secs(3), |k| {
            matches!(k, SocketEventKind::Disconnected(_)).then_some(())
        })
        .await
        .is_some();
        tokio::time::sleep(Duration::from_secs(1)).await;
        ns2.link(true);
        let healed = Instant::now();
        let up = wait_event(&mut monitor, Duration::from_secs(10), |k| {
            matches!(k, SocketEventKind::HandshakeSucceeded).then_some(())
        })
        .await
        .map(|(_, at)| at - healed);
        let after = round_trip(&dealer, "after the heal", Duration::from_secs(5)).await;
        dealer.close().await;
        (down, up, after)
    })
    .join();
    stop.notify_one();
    peer.join().unwrap();
    let (down, up, after) = ours.unwrap();
    println!("partition: disconnection noticed during it: {down}; reconnected {up:?} after the heal; echo after: {after}");
    assert!(down, "the partition was not noticed within 3 s");
    assert!(up.is_some(), "no reconnection within 10 s of the heal");
    assert!(after, "a message sent after the heal did not arrive");
}

/// Network impairments (delay 50 ms, loss 5 %) with netem: a request/reply still completes (DEALER
/// to ROUTER, 20 round trips, each under a generous 5 s). This machine's kernel has no sch_netem:
/// then the test prints SKIPPED with the kernel's answer. (A user-space delaying proxy would only
/// stand in for the delay; not done: see docs/faults.md.)
#[test]
fn impairments_with_netem_delay_and_loss() {
    let Some(ns) = netns_or_skip("impairments_with_netem_delay_and_loss", "i") else { return };
    if let Err(e) = run(&[
        "tc", "-n", &ns.b, "qdisc", "add", "dev", &ns.veth_b, "root", "netem", "delay", "50ms", "loss", "5%",
    ]) {
        println!("SKIPPED: impairments_with_netem_delay_and_loss: the kernel refused netem: {e}");
        return;
    }
    let stop = Arc::new(tokio::sync::Notify::new());
    let peer = peer_router(&ns, false, Arc::new(AtomicUsize::new(0)), stop.clone());
    let ours = in_netns(&ns.a, move || async move {
        let dealer = Socket::with_options(SocketType::Dealer, heartbeats(false)).unwrap();
        dealer.connect(&format!("tcp://{PEER_IP}:5555")).unwrap();
        let t = Instant::now();
        let mut ok = 0;
        for i in 0..20 {
            if round_trip(&dealer, &format!("m{i}"), Duration::from_secs(5)).await {
                ok += 1;
            }
        }
        dealer.close().await;
        (ok, t.elapsed())
    })
    .join();
    stop.notify_one();
    peer.join().unwrap();
    let (ok, took) = ours.unwrap();
    println!("netem delay 50ms loss 5%: {ok}/20 round trips in {took:?}");
    assert_eq!(ok, 20);
}

/// Forwards every chunk read on `from` to `to` `delay` after it was read, in order (one direction
/// of [`delaying_proxy`]).
async fn forward_delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// A user-space TCP proxy on 127.0.0.1 that delays every chunk by `delay` in each direction, to
/// `target`; returns its address.
async fn delaying_proxy(target: String, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(forward_delayed(cr, sw, delay));
            tokio::spawn(forward_delayed(sr, cw, delay));
        }
    });
    addr
}

/// Impairments without netem (which this kernel lacks): a user-space proxy delays every chunk by
/// 50 ms each way (100 ms added to each round trip; it cannot lose packets: TCP under it is
/// reliable). Our DEALER, heartbeats on (IVL 200 ms, TIMEOUT 1 s), talks to an echoing ROUTER through
/// it: the handshake completes, 10 round trips each take at least the added 100 ms and all
/// complete, and over 2 s idle the heartbeats, delayed too, keep the connection up (no
/// disconnection, no second handshake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impairments_delay_by_a_user_space_proxy() {
    let router = Socket::with_options(SocketType::Router, heartbeats(true)).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    tokio::spawn({
        let router = router.clone();
        async move {
            while let Ok(m) = router.recv().await {
                let _ = router.send(m).await;
            }
        }
    });
    let proxy = delaying_proxy(ep.trim_start_matches("tcp://").to_owned(), Duration::from_millis(50)).await;
    let dealer = Socket::with_options(SocketType::Dealer, heartbeats(true)).unwrap();
    let mut monitor = dealer.monitor();
    dealer.connect(&format!("tcp://{proxy}")).unwrap();
    assert!(round_trip(&dealer, "first", Duration::from_secs(10)).await);
    let mut times = Vec::new();
    for i in 0..10 {
        let t = Instant::now();
        assert!(round_trip(&dealer, &format!("m{i}"), Duration::from_secs(5)).await, "round trip {i}");
        times.push(t.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(round_trip(&dealer, "after idle", Duration::from_secs(5)).await);
    let mut handshakes = 0;
    let mut disconnects = Vec::new();
    while let Some(ev) = monitor.try_recv() {
        match ev.kind {
            SocketEventKind::HandshakeSucceeded => handshakes += 1,
            SocketEventKind::Disconnected(r) => disconnects.push(r),
            _ => {}
        }
    }
    let min = times.iter().min().unwrap();
    println!("user-space delay 50 ms each way: round trips {times:?}; handshakes {handshakes}; disconnections {disconnects:?}");
    assert!(*min >= Duration::from_millis(100), "the proxy did not delay: {min:?}");
    assert_eq!(handshakes, 1, "{disconnects:?}");
    assert!(disconnects.is_empty(), "{disconnects:?}");
    dealer.close().await;
    router.close().await;
}
