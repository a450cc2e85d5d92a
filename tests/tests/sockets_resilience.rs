//! Socket-level interop with pyzmq (libzmq 4.3.5) beyond the message exchange: heartbeats in both
//! directions, reconnection after the peer restarts (with messages queued meanwhile), and refusal of
//! incompatible socket types. Over tcp and ipc, with our socket binding and with pyzmq binding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Error, Msg, Options, Socket, SocketEvent, SocketEventKind, SocketType};
use zmtp_interop::sockets::{blocking, drain_events, expect_event, link, recv, send, Link, Side, SETUPS};
use zmtp_interop::{reprs, Kind, SockPeer, STEP};

/// How long a connection stays idle (apart from heartbeats) in the heartbeat tests: ten intervals.
const IDLE: Duration = Duration::from_secs(1);

fn options() -> Options {
    Options { linger: Some(Duration::ZERO), ..Options::default() }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs `f` for every setup (tcp/ipc × who binds) at once, each in its own task; re-raises the first
/// panic.
async fn for_each_setup<F, Fut>(f: F)
where
    F: Fn(Kind, Side) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = SETUPS.iter().map(|&(kind, side)| tokio::spawn(f(kind, side))).collect();
    for task in tasks {
        if let Err(e) = task.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// One echo round trip through a pyzmq ROUTER/DEALER in echo mode: our DEALER sends `body` and gets
/// it back.
async fn round_trip(l: &mut Link, body: &'static [u8]) {
    send(&l.ours, Bytes::from_static(body)).await;
    let got = recv(&l.ours).await;
    assert_eq!(got.frames(), [Bytes::from_static(body)], "{:?}/{:?}", l.kind, l.side);
}

fn count(events: &[SocketEvent], pred: impl Fn(&SocketEventKind) -> bool) -> usize {
    events.iter().filter(|e| pred(&e.kind)).count()
}

/// Checks that the connection stayed up: our monitor reported one handshake and no disconnection
/// (`events` are all its events so far), and so did pyzmq's.
fn assert_stayed_up(l: &mut Link, events: &[SocketEvent]) {
    let ctx = format!("{:?}/{:?}", l.kind, l.side);
    assert_eq!(count(events, |k| matches!(k, SocketEventKind::HandshakeSucceeded)), 1, "{ctx}: {events:#?}");
    assert_eq!(
        count(events, |k| matches!(
            k,
            SocketEventKind::Disconnected(_) | SocketEventKind::HandshakeFailed(_)
        )),
        0,
        "{ctx}: {events:#?}"
    );
    // Pick up any late pyzmq monitor lines.
    blocking(|| l.peer.lines_within("EVENT", Duration::from_millis(50)));
    assert_eq!(l.peer.count_seen("EVENT HANDSHAKE_SUCCEEDED"), 1, "{ctx}: {:?}", l.peer.seen());
    assert_eq!(l.peer.count_seen("EVENT DISCONNECTED"), 0, "{ctx}: {:?}", l.peer.seen());
}

// ---------------------------------------------------------------------------------------------------
// Heartbeats
// ---------------------------------------------------------------------------------------------------

/// Our DEALER PINGs every 100 ms (timeout 500 ms) a pyzmq ROUTER that has no heartbeat options:
/// libzmq answers every PING, so the connection outlives ten idle intervals, on neither side is it
/// dropped or re-established, and messages still flow. (That we really PING is shown by
/// `our_heartbeat_times_out_a_frozen_pyzmq_peer`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_answers_our_pings_on_an_idle_connection() {
    for_each_setup(|kind, side| async move {
        let ours = Socket::with_options(
            SocketType::Dealer,
            Options {
                heartbeat_interval: Some(Duration::from_millis(100)),
                heartbeat_timeout: Some(Duration::from_millis(500)),
                ..options()
            },
        )
        .unwrap();
        let mut l = link(kind, side, ours, None, "ROUTER", &args(&["--mode", "echo"])).await;
        round_trip(&mut l, b"before").await;
        tokio::time::sleep(IDLE).await;
        round_trip(&mut l, b"after").await;
        let events = drain_events(&mut l.monitor);
        assert_stayed_up(&mut l, &events);
        l.close().await;
    })
    .await;
}

/// A pyzmq DEALER with ZMQ_HEARTBEAT_IVL=100 ms and ZMQ_HEARTBEAT_TIMEOUT=500 ms PINGs our idle
/// DEALER (no heartbeat options): libzmq drops a connection whose peer does not answer within 500 ms
/// (see `heartbeat.rs`, `pyzmq_drops_us_when_we_do_not_answer`), so staying connected over ten
/// intervals means we answered with PONGs. Checked with pyzmq's monitor (no DISCONNECTED, one
/// handshake) and ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_answer_pyzmq_pings_on_an_idle_connection() {
    for_each_setup(|kind, side| async move {
        let ours = Socket::with_options(SocketType::Dealer, options()).unwrap();
        let py = args(&["--mode", "echo", "--heartbeat-ivl", "100", "--heartbeat-timeout", "500"]);
        let mut l = link(kind, side, ours, None, "DEALER", &py).await;
        round_trip(&mut l, b"before").await;
        tokio::time::sleep(IDLE).await;
        round_trip(&mut l, b"after").await;
        let events = drain_events(&mut l.monitor);
        assert_stayed_up(&mut l, &events);
        l.close().await;
    })
    .await;
}

/// Freezes the peer (SIGSTOP), waits for our monitor's `Disconnected` with a reason containing
/// `reason_has`, within `window` of the freeze, thaws it, and checks the connection is
/// re-established (by our reconnect, or pyzmq's when it connected) and carries messages again.
async fn freeze_until_disconnected(l: &mut Link, reason_has: &str, window: (Duration, Duration)) {
    let ctx = format!("{:?}/{:?}", l.kind, l.side);
    drain_events(&mut l.monitor);
    // Timed from before the freeze: `kill -STOP` may take a while on a loaded machine.
    let frozen = Instant::now();
    l.peer.freeze();
    let (ev, passed) = expect_event(&mut l.monitor, STEP, "Disconnected", |k| {
        matches!(k, SocketEventKind::Disconnected(_) | SocketEventKind::HandshakeFailed(_))
    })
    .await;
    let after = frozen.elapsed();
    l.peer.thaw();
    let SocketEventKind::Disconnected(reason) = &ev.kind else { panic!("{ctx}: {ev:?} after {passed:?}") };
    assert!(reason.to_string().contains(reason_has), "{ctx}: disconnected for {reason:?}");
    assert!(after >= window.0 && after < window.1, "{ctx}: disconnected {after:?} after the freeze");
    expect_event(&mut l.monitor, STEP, "HandshakeSucceeded after the thaw", |k| {
        matches!(k, SocketEventKind::HandshakeSucceeded)
    })
    .await;
    round_trip(l, b"reconnected").await;
}

/// Our DEALER PINGs every 100 ms with a 300 ms timeout; the pyzmq ROUTER is frozen, the kernel
/// still acknowledges our bytes, but no PONG comes: our monitor reports `Disconnected` for a
/// heartbeat timeout ("no traffic within 300ms of our PING") about 300–400 ms after the freeze. After the
/// thaw the connection comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_heartbeat_times_out_a_frozen_pyzmq_peer() {
    for_each_setup(|kind, side| async move {
        let ours = Socket::with_options(
            SocketType::Dealer,
            Options {
                heartbeat_interval: Some(Duration::from_millis(100)),
                heartbeat_timeout: Some(Duration::from_millis(300)),
                ..options()
            },
        )
        .unwrap();
        let mut l = link(kind, side, ours, None, "ROUTER", &args(&["--mode", "echo"])).await;
        round_trip(&mut l, b"before").await;
        // The PING that goes unanswered left at most one interval before the freeze.
        freeze_until_disconnected(
            &mut l,
            "of our PING",
            (Duration::from_millis(150), Duration::from_secs(3)),
        )
        .await;
        l.close().await;
    })
    .await;
}

/// A pyzmq DEALER PINGs with ZMQ_HEARTBEAT_TTL=500 ms; our DEALER has no heartbeat options of its
/// own. When pyzmq freezes, nothing arrives for 500 ms and we close ("the peer's PING TTL"): we
/// honour the TTL libzmq announces. After the thaw the connection comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_ping_ttl_expires_on_our_socket_when_pyzmq_freezes() {
    for_each_setup(|kind, side| async move {
        let ours = Socket::with_options(SocketType::Dealer, options()).unwrap();
        // HEARTBEAT_TIMEOUT defaults to the interval: 100 ms for our PONG is tight on a loaded machine.
        let py = args(&[
            "--mode",
            "echo",
            "--heartbeat-ivl",
            "100",
            "--heartbeat-timeout",
            "1000",
            "--heartbeat-ttl",
            "500",
        ]);
        let mut l = link(kind, side, ours, None, "DEALER", &py).await;
        round_trip(&mut l, b"before").await;
        // Let a few PINGs (with their TTL) arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The last PING arrived at most one interval before the freeze.
        freeze_until_disconnected(&mut l, "TTL", (Duration::from_millis(300), Duration::from_secs(3))).await;
        l.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------
// Reconnection
// ---------------------------------------------------------------------------------------------------

/// Kills the pyzmq peer (SIGKILL) and waits for our monitor to report the disconnection.
async fn kill_peer(l: &mut Link) {
    l.peer.kill();
    expect_event(&mut l.monitor, STEP, "Disconnected after the kill", |k| {
        matches!(k, SocketEventKind::Disconnected(_))
    })
    .await;
}

/// Starts a new pyzmq peer bound to the same endpoint as the killed one, and waits for our socket to
/// reconnect to it: a new `HandshakeSucceeded`, after at least one `ConnectRetried`.
async fn restart_peer(l: &mut Link, theirs: &str, py_args: &[&str]) {
    let mut a = args(&["--type", theirs, "--bind", &l.endpoint]);
    a.extend(args(py_args));
    l.peer = SockPeer::spawn(a);
    let endpoint = blocking(|| l.peer.ready()).to_string();
    assert_eq!(endpoint, l.endpoint, "the restarted peer must bind the same endpoint");
    let (_, passed) = expect_event(&mut l.monitor, STEP, "HandshakeSucceeded after the restart", |k| {
        matches!(k, SocketEventKind::HandshakeSucceeded)
    })
    .await;
    assert!(
        passed.iter().any(|e| matches!(e.kind, SocketEventKind::ConnectRetried(_))),
        "{:?}: {passed:#?}",
        l.kind
    );
}

/// Links our socket (connecting) to a pyzmq peer (binding), over tcp and ipc.
async fn linked_to_bound_peer(kind: Kind, ours: SocketType, theirs: &str, py_args: &[&str]) -> Link {
    let ours = Socket::with_options(ours, options()).unwrap();
    link(kind, Side::TheyBind, ours, None, theirs, &args(py_args)).await
}

/// A pyzmq REP (echo) binds, our REQ connects and asks; the REP is killed; our next request, sent
/// while it is down, waits; the REP restarts on the same endpoint, our REQ reconnects by itself, and
/// the request gets its reply (as with libzmq's REQ), then another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_reconnects_to_a_restarted_pyzmq_rep() {
    for kind in [Kind::Tcp, Kind::Ipc] {
        let mut l = linked_to_bound_peer(kind, SocketType::Req, "REP", &["--mode", "echo"]).await;
        send(&l.ours, "one").await;
        assert_eq!(recv(&l.ours).await.frames(), ["one"]);
        kill_peer(&mut l).await;
        // Sent while the REP is down: waits in the queue (libzmq's REQ does the same).
        send(&l.ours, "two").await;
        restart_peer(&mut l, "REP", &["--mode", "echo"]).await;
        assert_eq!(recv(&l.ours).await.frames(), ["two"], "{kind:?}");
        assert_eq!(blocking(|| l.peer.expect_msg(STEP)), reprs(&[b"two"]));
        send(&l.ours, "three").await;
        assert_eq!(recv(&l.ours).await.frames(), ["three"], "{kind:?}");
        l.close().await;
    }
}

/// A pyzmq PULL binds, our PUSH connects and sends; the PULL is killed; we send three messages while
/// it is down (they wait in the peer's queue, as libzmq's connecting PUSH does); the PULL restarts on
/// the same endpoint and receives them, in order, then a later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_delivers_messages_queued_while_pyzmq_pull_was_down() {
    for kind in [Kind::Tcp, Kind::Ipc] {
        let mut l = linked_to_bound_peer(kind, SocketType::Push, "PULL", &["--mode", "sink"]).await;
        send(&l.ours, "before").await;
        assert_eq!(blocking(|| l.peer.expect_msg(STEP)), reprs(&[b"before"]));
        kill_peer(&mut l).await;
        for body in ["down-0", "down-1", "down-2"] {
            send(&l.ours, body).await;
        }
        restart_peer(&mut l, "PULL", &["--mode", "sink"]).await;
        for body in ["down-0", "down-1", "down-2"] {
            assert_eq!(blocking(|| l.peer.expect_msg(STEP)), reprs(&[body]), "{kind:?}");
        }
        send(&l.ours, "after").await;
        assert_eq!(blocking(|| l.peer.expect_msg(STEP)), reprs(&[b"after"]), "{kind:?}");
        l.close().await;
    }
}

/// As `push_delivers_messages_queued_while_pyzmq_pull_was_down`, with our DEALER and a pyzmq ROUTER
/// (echo): the messages queued while it was down reach the restarted ROUTER, whose echoes come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_delivers_messages_queued_while_pyzmq_router_was_down() {
    for kind in [Kind::Tcp, Kind::Ipc] {
        let mut l = linked_to_bound_peer(kind, SocketType::Dealer, "ROUTER", &["--mode", "echo"]).await;
        round_trip(&mut l, b"before").await;
        kill_peer(&mut l).await;
        for body in ["down-0", "down-1"] {
            send(&l.ours, body).await;
        }
        restart_peer(&mut l, "ROUTER", &["--mode", "echo"]).await;
        for body in ["down-0", "down-1"] {
            assert_eq!(recv(&l.ours).await.frames(), [body], "{kind:?}");
        }
        round_trip(&mut l, b"after").await;
        l.close().await;
    }
}

// ---------------------------------------------------------------------------------------------------
// Incompatible socket types
// ---------------------------------------------------------------------------------------------------

/// Our socket of type `ours` and a pyzmq `theirs` may not talk (RFC 23): in every setup our monitor
/// reports `HandshakeFailed` with a reason naming their type, no handshake succeeds on either side,
/// and no message gets through (we send one if `ours` can; pyzmq sends one if `theirs` can).
async fn refused(ours: SocketType, theirs: &'static str, they_send: bool) {
    for_each_setup(move |kind, side| async move {
        let ctx = format!("our {ours} <-> pyzmq {theirs} over {kind:?}/{side:?}");
        let socket = Socket::with_options(ours, options()).unwrap();
        let mut py = args(&["--mode", "sink"]);
        if they_send {
            py.extend(args(&["--send", "6d7573742d6e6f742d617272697665"]));
        }
        let mut l = link(kind, side, socket, None, theirs, &py).await;
        if ours != SocketType::Pull {
            // Queued, or refused for lack of a peer: never delivered either way.
            match l.ours.try_send(Msg::from(Bytes::from_static(b"must-not-arrive"))) {
                Ok(()) | Err(zmtp::SendError { error: Error::WouldBlock, .. }) => {}
                Err(e) => panic!("{ctx}: {e}"),
            }
        }
        let (ev, passed) = expect_event(&mut l.monitor, STEP, "HandshakeFailed", |k| {
            matches!(k, SocketEventKind::HandshakeFailed(_) | SocketEventKind::HandshakeSucceeded)
        })
        .await;
        let SocketEventKind::HandshakeFailed(reason) = &ev.kind else {
            panic!("{ctx}: {ev:?} after {passed:?}")
        };
        assert!(reason.to_string().contains(theirs), "{ctx}: the reason should name {theirs}: {reason:?}");
        // Give a (wrongly) delivered message time to show up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        blocking(|| l.peer.lines_within("", Duration::from_millis(10)));
        assert!(!l.peer.has_seen("MSG"), "{ctx}: pyzmq received {:?}", l.peer.seen());
        assert!(!l.peer.has_seen("EVENT HANDSHAKE_SUCCEEDED"), "{ctx}: {:?}", l.peer.seen());
        let events = drain_events(&mut l.monitor);
        assert_eq!(
            count(&events, |k| matches!(k, SocketEventKind::HandshakeSucceeded)),
            0,
            "{ctx}: {events:#?}"
        );
        if matches!(ours, SocketType::Pair | SocketType::Pull | SocketType::Dealer) {
            assert!(matches!(l.ours.try_recv(), Err(Error::WouldBlock)), "{ctx}");
        }
        l.close().await;
    })
    .await;
}

/// Our REQ and a pyzmq PULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_our_req_pyzmq_pull() {
    refused(SocketType::Req, "PULL", false).await;
}

/// Our PUSH and a pyzmq PUSH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_our_push_pyzmq_push() {
    refused(SocketType::Push, "PUSH", true).await;
}

/// Our PAIR and a pyzmq DEALER that tries to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_our_pair_pyzmq_dealer() {
    refused(SocketType::Pair, "DEALER", true).await;
}

/// Our PULL and a pyzmq PULL (neither can send: only the handshake is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_our_pull_pyzmq_pull() {
    refused(SocketType::Pull, "PULL", false).await;
}

/// Our SUB subscribes to a pyzmq PUB that binds; the PUB is killed and restarted on the same
/// endpoint; our SUB sends its subscriptions again on the new connection and receives again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_replays_subscriptions_to_a_restarted_pyzmq_pub() {
    for kind in [Kind::Tcp, Kind::Ipc] {
        let ours = Socket::with_options(SocketType::Sub, options()).unwrap();
        ours.subscribe("wx.").unwrap();
        let mut l = link(kind, Side::TheyBind, ours, None, "PUB", &[]).await;
        for round in ["first", "after restart"] {
            let mut got = None;
            for _ in 0..250 {
                l.peer.send(&[b"sports".as_slice()]);
                l.peer.send(&[b"wx.nyc".as_slice()]);
                if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), l.ours.recv()).await {
                    got = Some(m);
                    break;
                }
            }
            let got = got.unwrap_or_else(|| panic!("{kind:?}: nothing received ({round})"));
            assert_eq!(got.frames()[0], "wx.nyc", "{kind:?} {round}");
            if round == "first" {
                kill_peer(&mut l).await;
                restart_peer(&mut l, "PUB", &[]).await;
            }
        }
        l.close().await;
    }
}
