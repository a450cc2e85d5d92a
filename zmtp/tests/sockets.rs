//! Socket semantics over real loopback transports, our sockets on both ends.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Error, Msg, Options, Socket, SocketType};

fn msg(frames: &[&'static str]) -> Msg {
    Msg::from(frames.iter().map(|f| Bytes::from_static(f.as_bytes())).collect::<Vec<_>>())
}

fn strings(m: &Msg) -> Vec<String> {
    m.frames().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
}

async fn recv_timeout(s: &Socket) -> Msg {
    tokio::time::timeout(Duration::from_secs(10), s.recv()).await.expect("timed out").expect("recv")
}

#[tokio::test]
async fn req_rep_over_tcp() {
    let rep = Socket::new(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::new(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    for i in 0..10 {
        req.send(format!("hello {i}").into_bytes()).await.unwrap();
        let got = recv_timeout(&rep).await;
        assert_eq!(strings(&got), [format!("hello {i}")]);
        rep.send(msg(&["world"])).await.unwrap();
        assert_eq!(strings(&recv_timeout(&req).await), ["world"]);
    }
    assert!(matches!(req.try_recv(), Err(Error::InvalidState(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_many_messages() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    let n = 100_000u32;
    let sender = tokio::spawn(async move {
        for i in 0..n {
            push.send(Bytes::from(i.to_be_bytes().to_vec())).await.unwrap();
        }
        push
    });
    for i in 0..n {
        let m = recv_timeout(&pull).await;
        assert_eq!(m.frames()[0][..], i.to_be_bytes());
    }
    sender.await.unwrap();
}

#[tokio::test]
async fn dealer_router_identities() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let named = Socket::with_options(
        SocketType::Dealer,
        Options { routing_id: Some(Bytes::from_static(b"named")), ..Options::default() },
    )
    .unwrap();
    named.connect(&ep).unwrap();
    named.send(msg(&["a", "b"])).await.unwrap();
    let got = recv_timeout(&router).await;
    assert_eq!(strings(&got), ["named", "a", "b"]);
    router.send(msg(&["named", "reply"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&named).await), ["reply"]);

    let anon = Socket::new(SocketType::Dealer).unwrap();
    anon.connect(&ep).unwrap();
    anon.send(msg(&["x"])).await.unwrap();
    let got = recv_timeout(&router).await;
    assert_eq!(got.frames()[0].len(), 5);
    assert_eq!(got.frames()[0][0], 0);
}

#[tokio::test]
async fn router_tells_each_peers_socket_type_by_routing_id() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    let req = Socket::new(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    dealer.send(msg(&["", "from dealer"])).await.unwrap();
    req.send(msg(&["from req"])).await.unwrap();
    for _ in 0..2 {
        let got = recv_timeout(&router).await;
        let want = if got.frames()[2] == "from req" { SocketType::Req } else { SocketType::Dealer };
        assert_eq!(router.peer_socket_type(&got.frames()[0]), Some(want), "{:?}", strings(&got));
    }
    assert_eq!(router.peer_socket_type(b"nobody"), None);
    assert_eq!(dealer.peer_socket_type(b""), None, "not a ROUTER");
}

async fn pair_over(kind: (SocketType, SocketType), endpoint: &str) -> (Socket, Socket) {
    let server = Socket::new(kind.0).unwrap();
    let ep = server.bind(endpoint).await.unwrap();
    let client = Socket::new(kind.1).unwrap();
    client.connect(&ep).unwrap();
    (server, client)
}

fn opts(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options::default();
    f(&mut o);
    o
}

#[tokio::test]
async fn inproc_connect_before_bind() {
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect("inproc://connect-before-bind").unwrap();
    push.send(msg(&["early"])).await.unwrap();
    let pull = Socket::new(SocketType::Pull).unwrap();
    pull.bind("inproc://connect-before-bind").await.unwrap();
    assert_eq!(strings(&recv_timeout(&pull).await), ["early"]);
}

#[tokio::test]
async fn ipc_pair_exchanges_multipart() {
    let dir = std::env::temp_dir().join(format!("zmtp-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ep = format!("ipc://{}/pair.sock", dir.display());
    let (a, b) = pair_over((SocketType::Pair, SocketType::Pair), &ep).await;
    b.send(msg(&["one", "", "three"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&a).await), ["one", "", "three"]);
    a.send(msg(&[""])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&b).await), [""]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn dealer_round_robins_and_fair_queues() {
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    let ep = dealer.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut peers = Vec::new();
    for _ in 0..2 {
        let p = Socket::new(SocketType::Dealer).unwrap();
        p.connect(&ep).unwrap();
        let mut mon = p.monitor();
        while let Some(ev) = mon.recv().await {
            if ev.kind == zmtp::SocketEventKind::HandshakeSucceeded {
                break;
            }
        }
        peers.push(p);
    }
    // Wait until the binder has both peers attached: it handshakes at about the same time.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..4 {
        dealer.send(format!("{i}")).await.unwrap();
    }
    let a: Vec<_> =
        [recv_timeout(&peers[0]).await, recv_timeout(&peers[0]).await].iter().map(strings).collect();
    let b: Vec<_> =
        [recv_timeout(&peers[1]).await, recv_timeout(&peers[1]).await].iter().map(strings).collect();
    let mut all = [a.clone(), b.clone()].concat();
    all.sort();
    assert_eq!(all, [["0"], ["1"], ["2"], ["3"]]);
    assert_ne!(a, b);
    // Fair queuing: both peers queue 5 messages before we read; we read them alternately.
    for p in &peers {
        for j in 0..5 {
            p.send(format!("{j}")).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got: Vec<String> = futures_collect(&dealer, 10).await;
    for pair in got.chunks(2) {
        assert_eq!(pair[0], pair[1], "alternating peers deliver the same sequence numbers: {got:?}");
    }
}

async fn futures_collect(s: &Socket, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(strings(&recv_timeout(s).await).concat());
    }
    out
}

#[tokio::test]
async fn req_accepts_reply_only_from_peer_asked_and_enforces_alternation() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::new(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    assert!(matches!(req.recv().await, Err(Error::InvalidState(_))));
    req.send(msg(&["q"])).await.unwrap();
    assert!(matches!(req.send(msg(&["again"])).await, Err(e) if matches!(e.error, Error::InvalidState(_))));
    let got = recv_timeout(&router).await;
    assert_eq!(got.frames()[1], "", "REQ adds the empty delimiter");
    let id = got.frames()[0].clone();
    // A reply without the delimiter is dropped; then a good one is accepted.
    router.send(Msg::from(vec![id.clone(), Bytes::from("bad")])).await.unwrap();
    router.send(Msg::from(vec![id, Bytes::new(), Bytes::from("good")])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&req).await), ["good"]);
}

#[tokio::test]
async fn rep_restores_envelope_for_router_client() {
    let rep = Socket::new(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    dealer.send(msg(&["hop1", "hop2", "", "body"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&rep).await), ["body"]);
    assert!(matches!(rep.recv().await, Err(Error::InvalidState(_))));
    rep.send(msg(&["reply"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&dealer).await), ["hop1", "hop2", "", "reply"]);
}

#[tokio::test]
async fn router_drops_unroutable_or_fails_when_mandatory() {
    let router = Socket::new(SocketType::Router).unwrap();
    router.send(msg(&["nobody", "x"])).await.unwrap();
    let mandatory = Socket::with_options(SocketType::Router, opts(|o| o.router_mandatory = true)).unwrap();
    let err = mandatory.send(msg(&["nobody", "x"])).await.unwrap_err();
    assert!(matches!(err.error, Error::HostUnreachable(_)));
    assert_eq!(err.msg.frames().len(), 2, "the message is handed back");
}

#[tokio::test]
async fn router_handover_moves_identity_to_new_connection() {
    let router = Socket::with_options(SocketType::Router, opts(|o| o.router_handover = true)).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let id_opts = || opts(|o| o.routing_id = Some(Bytes::from_static(b"same")));
    let first = Socket::with_options(SocketType::Dealer, id_opts()).unwrap();
    first.connect(&ep).unwrap();
    first.send(msg(&["from first"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&router).await), ["same", "from first"]);
    let second = Socket::with_options(SocketType::Dealer, id_opts()).unwrap();
    second.connect(&ep).unwrap();
    second.send(msg(&["from second"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&router).await), ["same", "from second"]);
    router.send(msg(&["same", "to newest"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&second).await), ["to newest"]);
}

#[tokio::test]
async fn router_tells_the_peer_address_of_a_routing_id() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    dealer.send(msg(&["hi"])).await.unwrap();
    let got = recv_timeout(&router).await;
    let id = got.frames()[0].clone();
    assert_eq!(id[0], 0, "a generated id");
    let address = router.peer_address(&id).expect("the peer's address");
    let address: std::net::SocketAddr = address.parse().unwrap();
    assert_eq!(address.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(address.port(), 0);
    assert_eq!(router.peer_address(b"nobody"), None);
    assert_eq!(dealer.peer_address(b"x"), None, "not a ROUTER");
    dealer.close().await;
    // Gone with its connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while router.peer_address(&id).is_some() {
        assert!(std::time::Instant::now() < deadline, "the address outlived the connection");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn router_without_handover_refuses_duplicate_identity() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let id_opts = || opts(|o| o.routing_id = Some(Bytes::from_static(b"dup")));
    let first = Socket::with_options(SocketType::Dealer, id_opts()).unwrap();
    first.connect(&ep).unwrap();
    first.send(msg(&["1"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&router).await), ["dup", "1"]);
    let second = Socket::with_options(SocketType::Dealer, id_opts()).unwrap();
    second.connect(&ep).unwrap();
    second.send(msg(&["2"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    router.send(msg(&["dup", "to first"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&first).await), ["to first"]);
    assert!(router.try_recv().is_err(), "the duplicate's message never arrives");
}

#[tokio::test]
async fn pair_refuses_second_peer() {
    let (a, b) = pair_over((SocketType::Pair, SocketType::Pair), "tcp://127.0.0.1:*").await;
    b.send(msg(&["first"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&a).await), ["first"]);
    let ep = a.bind("tcp://127.0.0.1:*").await.unwrap();
    let c = Socket::new(SocketType::Pair).unwrap();
    c.connect(&ep).unwrap();
    c.send(msg(&["intruder"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.send(msg(&["back"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&b).await), ["back"]);
    assert!(a.try_recv().is_err());
}

#[tokio::test]
async fn send_hwm_blocks_and_times_out() {
    let o = opts(|o| {
        o.send_hwm = 5;
        o.send_timeout = Some(Duration::from_millis(50));
    });
    let push = Socket::with_options(SocketType::Push, o).unwrap();
    // Nobody listens here: the connecting peer's queue takes exactly HWM messages (RFC 30).
    push.connect("tcp://127.0.0.1:1").unwrap();
    for i in 0..5 {
        push.try_send(format!("{i}")).unwrap();
    }
    let err = push.try_send(msg(&["full"])).unwrap_err();
    assert!(matches!(err.error, Error::WouldBlock));
    let err = push.send(msg(&["full"])).await.unwrap_err();
    assert!(matches!(err.error, Error::WouldBlock));
    assert_eq!(strings(&err.msg), ["full"]);
}

#[tokio::test]
async fn immediate_does_not_queue_to_connecting_peers() {
    let push = Socket::with_options(SocketType::Push, opts(|o| o.immediate = true)).unwrap();
    push.connect("tcp://127.0.0.1:1").unwrap();
    assert!(matches!(push.try_send(msg(&["x"])).unwrap_err().error, Error::WouldBlock));
}

#[tokio::test]
async fn recv_timeout_and_cancelled_recv_loses_nothing() {
    let (pull, push) = pair_over((SocketType::Pull, SocketType::Push), "tcp://127.0.0.1:*").await;
    // A cancelled recv (timeout) must not lose the message that arrives later.
    assert!(tokio::time::timeout(Duration::from_millis(20), pull.recv()).await.is_err());
    push.send(msg(&["kept"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&pull).await), ["kept"]);
    let timed =
        Socket::with_options(SocketType::Pull, opts(|o| o.recv_timeout = Some(Duration::from_millis(30))))
            .unwrap();
    assert!(matches!(timed.recv().await, Err(Error::WouldBlock)));
}

#[tokio::test]
async fn close_flushes_queued_messages() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push =
        Socket::with_options(SocketType::Push, opts(|o| o.linger = Some(Duration::from_secs(5)))).unwrap();
    push.connect(&ep).unwrap();
    for i in 0..100 {
        push.send(format!("{i}")).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), push.close()).await.unwrap();
    for i in 0..100 {
        assert_eq!(strings(&recv_timeout(&pull).await), [format!("{i}")]);
    }
}

#[tokio::test]
async fn reconnects_after_peer_restarts() {
    let first = Socket::new(SocketType::Pull).unwrap();
    let ep = first.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    let mut mon = push.monitor();
    push.connect(&ep).unwrap();
    push.send(msg(&["before"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&first).await), ["before"]);
    first.close().await;
    // Messages written to a connection the peer has already closed are lost (as with libzmq); once
    // the disconnection is seen, they wait in the queue for the next connection.
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
        if matches!(ev.kind, zmtp::SocketEventKind::Disconnected(_)) {
            break;
        }
    }
    push.send(msg(&["while down"])).await.unwrap();
    let second = Socket::new(SocketType::Pull).unwrap();
    let mut bound = None;
    for _ in 0..50 {
        match second.bind(&ep).await {
            Ok(e) => {
                bound = Some(e);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(bound.is_some(), "could not re-bind {ep}");
    push.send(msg(&["after"])).await.unwrap();
    let got = [strings(&recv_timeout(&second).await), strings(&recv_timeout(&second).await)];
    assert_eq!(got, [["while down"], ["after"]]);
}

#[tokio::test]
async fn monitor_reports_connection_lifecycle() {
    let rep = Socket::new(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::new(SocketType::Req).unwrap();
    let mut mon = req.monitor();
    req.connect(&ep).unwrap();
    let mut kinds = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await {
        assert_eq!(ev.endpoint, ep);
        let done = ev.kind == zmtp::SocketEventKind::HandshakeSucceeded;
        kinds.push(ev.kind);
        if done {
            break;
        }
    }
    assert_eq!(kinds, [zmtp::SocketEventKind::Connected, zmtp::SocketEventKind::HandshakeSucceeded]);
    rep.close().await;
    let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
    assert!(matches!(ev.kind, zmtp::SocketEventKind::Disconnected(_)), "{ev:?}");
}

#[tokio::test]
async fn incompatible_socket_type_is_refused() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::new(SocketType::Req).unwrap();
    let mut mon = req.monitor();
    req.connect(&ep).unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
        if let zmtp::SocketEventKind::HandshakeFailed(reason) = ev.kind {
            assert!(
                matches!(
                    &reason,
                    zmtp::HandshakeFailure::Protocol(
                        zmtp::proto::ProtocolError::IncompatibleSocketType { .. }
                    ) | zmtp::HandshakeFailure::PeerError(_)
                ),
                "{reason}"
            );
            break;
        }
    }
}

#[tokio::test]
async fn probe_router_sends_empty_message_on_connect() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let dealer = Socket::with_options(SocketType::Dealer, opts(|o| o.probe_router = true)).unwrap();
    dealer.connect(&ep).unwrap();
    let got = recv_timeout(&router).await;
    assert_eq!(got.frames().len(), 2);
    assert!(got.frames()[1].is_empty());
}

#[tokio::test]
async fn unbind_and_disconnect() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    assert!(matches!(pull.unbind("tcp://127.0.0.1:1"), Err(Error::UnknownEndpoint(_))));
    pull.unbind(&ep).unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    push.disconnect(&ep).unwrap();
    assert!(push.disconnect(&ep).is_err());
}

#[test]
fn blocking_facade_round_trip() {
    let rep = zmtp::blocking::Socket::new(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").unwrap();
    let req = zmtp::blocking::Socket::new(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    req.send("ping").unwrap();
    assert_eq!(strings(&rep.recv().unwrap()), ["ping"]);
    rep.send("pong").unwrap();
    assert_eq!(strings(&req.recv().unwrap()), ["pong"]);
    req.close();
}

#[tokio::test]
async fn monitor_reports_listener_events() {
    let router = Socket::new(SocketType::Router).unwrap();
    let mut mon = router.monitor();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let taken = Socket::new(SocketType::Router).unwrap();
    let mut taken_mon = taken.monitor();
    assert!(matches!(taken.bind(&ep).await, Err(Error::Bind { .. })));
    assert!(matches!(taken_mon.try_recv().map(|e| e.kind), Some(zmtp::SocketEventKind::BindFailed(_))));
    let dealer = Socket::new(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
        kinds.push(std::mem::discriminant(&ev.kind));
    }
    let expected = [
        zmtp::SocketEventKind::Listening,
        zmtp::SocketEventKind::Accepted(String::new()),
        zmtp::SocketEventKind::HandshakeSucceeded,
    ]
    .map(|k| std::mem::discriminant(&k));
    assert_eq!(kinds, expected);
    router.unbind(&ep).unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
        if ev.kind == zmtp::SocketEventKind::Closed {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_hwm_of_one_still_delivers_everything() {
    let pull = Socket::with_options(SocketType::Pull, opts(|o| o.recv_hwm = 1)).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::with_options(SocketType::Push, opts(|o| o.send_hwm = 1)).unwrap();
    push.connect(&ep).unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..2000u32 {
            push.send(Bytes::from(i.to_be_bytes().to_vec())).await.unwrap();
        }
        push
    });
    for i in 0..2000u32 {
        assert_eq!(recv_timeout(&pull).await.frames()[0][..], i.to_be_bytes());
    }
    sender.await.unwrap();
}

#[tokio::test]
async fn close_interrupts_reconnecting_and_lingers_only_with_queued_messages() {
    // Nothing queued: close returns at once although the peer is unreachable.
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect("tcp://127.0.0.1:1").unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    tokio::time::timeout(Duration::from_millis(60), push.close()).await.expect("close without delay");
    // Queued messages and a linger: close waits for the linger, then gives up.
    let o = opts(|o| o.linger = Some(Duration::from_millis(200)));
    let push = Socket::with_options(SocketType::Push, o).unwrap();
    push.connect("tcp://127.0.0.1:1").unwrap();
    push.send(msg(&["never delivered"])).await.unwrap();
    let start = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(2), push.close()).await.expect("close after the linger");
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
}

#[tokio::test]
async fn req_relaxed_and_correlate_discard_the_stale_reply() {
    let rep = Socket::new(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::with_options(
        SocketType::Req,
        opts(|o| {
            o.req_relaxed = true;
            o.req_correlate = true;
        }),
    )
    .unwrap();
    req.connect(&ep).unwrap();
    req.send(msg(&["A"])).await.unwrap();
    req.send(msg(&["B"])).await.unwrap(); // relaxed: no reply needed first
    assert_eq!(strings(&recv_timeout(&rep).await), ["A"]);
    rep.send(msg(&["reply to A"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&rep).await), ["B"]);
    rep.send(msg(&["reply to B"])).await.unwrap();
    // The reply to A carries A's request id and is discarded.
    assert_eq!(strings(&recv_timeout(&req).await), ["reply to B"]);
}

#[tokio::test]
async fn max_msg_size_disconnects_the_sender_of_a_larger_message() {
    let pull = Socket::with_options(SocketType::Pull, opts(|o| o.max_msg_size = Some(100))).unwrap();
    let mut mon = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    push.send(Bytes::from(vec![7u8; 100])).await.unwrap();
    assert_eq!(recv_timeout(&pull).await.frames()[0].len(), 100, "exactly the maximum is accepted");
    push.send(Msg::from(vec![Bytes::from(vec![1u8; 60]), Bytes::from(vec![2u8; 60])])).await.unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
        if let zmtp::SocketEventKind::Disconnected(reason) = ev.kind {
            assert!(reason.to_string().contains("exceeds"), "{reason}");
            break;
        }
    }
    assert!(pull.try_recv().is_err(), "nothing of the oversized message is delivered");
}

#[tokio::test]
async fn reconnect_interval_backs_off_to_its_maximum() {
    let o = opts(|o| {
        o.reconnect_interval = Some(Duration::from_millis(10));
        o.reconnect_interval_max = Some(Duration::from_millis(40));
    });
    let dealer = Socket::with_options(SocketType::Dealer, o).unwrap();
    let mut mon = dealer.monitor();
    dealer.connect("tcp://127.0.0.1:1").unwrap();
    let mut waits = Vec::new();
    while waits.len() < 5 {
        let ev = tokio::time::timeout(Duration::from_secs(5), mon.recv()).await.unwrap().unwrap();
        if let zmtp::SocketEventKind::ConnectRetried(wait) = ev.kind {
            waits.push(wait);
        }
    }
    let base = [10, 20, 40, 40, 40].map(Duration::from_millis);
    for (wait, base) in waits.iter().zip(base) {
        assert!(*wait >= base && *wait <= base + base / 10, "{waits:?}");
    }
}

/// Receives until a message arrives or `limit` passes, re-sending `publish` from `publisher` every
/// 20 ms (subscriptions reach a publisher asynchronously: the slow-joiner of the Guide).
async fn publish_until_received(publisher: &Socket, subscriber: &Socket, publish: &Msg) -> Msg {
    for _ in 0..250 {
        publisher.send(publish.clone()).await.unwrap();
        while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), subscriber.recv()).await {
            // Earlier publications may still be arriving: wait for this one.
            if m.frames()[0] == publish.frames()[0] {
                return m;
            }
        }
    }
    panic!("nothing received");
}

#[tokio::test]
async fn pub_sub_filters_by_prefix_at_the_publisher() {
    let publisher = Socket::new(SocketType::Pub).unwrap();
    let ep = publisher.bind("tcp://127.0.0.1:*").await.unwrap();
    let weather = Socket::new(SocketType::Sub).unwrap();
    weather.connect(&ep).unwrap();
    weather.subscribe("weather.").unwrap();
    let all = Socket::new(SocketType::Sub).unwrap();
    all.connect(&ep).unwrap();
    all.subscribe("").unwrap();
    let got = publish_until_received(&publisher, &weather, &msg(&["weather.nyc", "21C"])).await;
    assert_eq!(strings(&got), ["weather.nyc", "21C"]);
    let got = publish_until_received(&publisher, &all, &msg(&["sports", "1-0"])).await;
    assert_eq!(strings(&got)[0], "sports");
    // Drain what the retries left, then check the filter: "sports" never reaches `weather`.
    tokio::time::sleep(Duration::from_millis(50)).await;
    while weather.try_recv().is_ok() {}
    publisher.send(msg(&["sports", "2-0"])).await.unwrap();
    publisher.send(msg(&["weather.sf", "15C"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&weather).await), ["weather.sf", "15C"]);
    assert!(publisher.recv().await.is_err(), "PUB cannot receive");
    assert!(weather.send(msg(&["x"])).await.is_err(), "SUB cannot send");
    // Unsubscribing stops delivery.
    weather.unsubscribe("weather.").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    publisher.send(msg(&["weather.la", "30C"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(weather.try_recv().is_err());
}

#[tokio::test]
async fn subscriptions_are_replayed_when_the_publisher_restarts() {
    let first = Socket::new(SocketType::Pub).unwrap();
    let ep = first.bind("tcp://127.0.0.1:*").await.unwrap();
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&ep).unwrap();
    sub.subscribe("A").unwrap();
    publish_until_received(&first, &sub, &msg(&["A1"])).await;
    first.close().await;
    let second = Socket::new(SocketType::Pub).unwrap();
    let mut bound = false;
    for _ in 0..50 {
        if second.bind(&ep).await.is_ok() {
            bound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bound);
    let got = publish_until_received(&second, &sub, &msg(&["A2"])).await;
    assert_eq!(strings(&got), ["A2"]);
}

#[tokio::test]
async fn xpub_delivers_subscriptions_and_cancels_for_departed_subscribers() {
    let xpub = Socket::new(SocketType::XPub).unwrap();
    let ep = xpub.bind("tcp://127.0.0.1:*").await.unwrap();
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&ep).unwrap();
    sub.subscribe("A").unwrap();
    sub.subscribe("B").unwrap();
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01A");
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01B");
    sub.unsubscribe("A").unwrap();
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x00A");
    xpub.send(msg(&["B1"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&sub).await), ["B1"]);
    sub.close().await;
    let cancel = tokio::time::timeout(Duration::from_secs(2), xpub.recv()).await.expect("woken").unwrap();
    assert_eq!(cancel.frames()[0], "\x00B", "the departed subscriber's cancel");
}

#[tokio::test]
async fn xsub_xpub_forwarder_between_pub_and_sub() {
    let publisher = Socket::new(SocketType::Pub).unwrap();
    let pub_ep = publisher.bind("tcp://127.0.0.1:*").await.unwrap();
    let xsub = Socket::new(SocketType::XSub).unwrap();
    xsub.connect(&pub_ep).unwrap();
    let xpub = Socket::new(SocketType::XPub).unwrap();
    let sub_ep = xpub.bind("tcp://127.0.0.1:*").await.unwrap();
    // A hand-written proxy: subscriptions flow up, messages flow down.
    let (up_from, up_to) = (xpub.clone(), xsub.clone());
    let up = tokio::spawn(async move {
        while let Ok(m) = up_from.recv().await {
            if up_to.send(m).await.is_err() {
                break;
            }
        }
    });
    let (down_from, down_to) = (xsub.clone(), xpub.clone());
    let down = tokio::spawn(async move {
        while let Ok(m) = down_from.recv().await {
            if down_to.send(m).await.is_err() {
                break;
            }
        }
    });
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&sub_ep).unwrap();
    sub.subscribe("quote.").unwrap();
    let got = publish_until_received(&publisher, &sub, &msg(&["quote.IBM", "140"])).await;
    assert_eq!(strings(&got), ["quote.IBM", "140"]);
    publisher.send(msg(&["news", "x"])).await.unwrap();
    publisher.send(msg(&["quote.MSFT", "400"])).await.unwrap();
    loop {
        let m = recv_timeout(&sub).await;
        assert_ne!(m.frames()[0], "news");
        if m.frames()[0] == "quote.MSFT" {
            break;
        }
    }
    up.abort();
    down.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steerable_proxy_forwards_reports_statistics_and_terminates() {
    let frontend = Socket::new(SocketType::XSub).unwrap();
    let pub_ep = frontend.bind("tcp://127.0.0.1:*").await.unwrap();
    let backend = Socket::new(SocketType::XPub).unwrap();
    let sub_ep = backend.bind("tcp://127.0.0.1:*").await.unwrap();
    let control = Socket::new(SocketType::Rep).unwrap();
    let control_ep = control.bind("inproc://proxy-control-test").await.unwrap();
    let proxy = tokio::spawn(async move { zmtp::proxy_steerable(&frontend, &backend, None, &control).await });
    let publisher = Socket::new(SocketType::Pub).unwrap();
    publisher.connect(&pub_ep).unwrap();
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&sub_ep).unwrap();
    sub.subscribe("t").unwrap();
    let got = publish_until_received(&publisher, &sub, &msg(&["t1", "x"])).await;
    assert_eq!(strings(&got), ["t1", "x"]);
    let steer = Socket::new(SocketType::Req).unwrap();
    steer.connect(&control_ep).unwrap();
    steer.send(msg(&["STATISTICS"])).await.unwrap();
    let stats = recv_timeout(&steer).await;
    assert_eq!(stats.frames().len(), 8);
    let frontend_in = u64::from_le_bytes(stats.frames()[0][..].try_into().unwrap());
    let backend_in = u64::from_le_bytes(stats.frames()[4][..].try_into().unwrap());
    assert!(frontend_in >= 1, "messages forwarded downstream: {frontend_in}");
    assert!(backend_in >= 1, "the subscription forwarded upstream: {backend_in}");
    steer.send(msg(&["TERMINATE"])).await.unwrap();
    recv_timeout(&steer).await;
    let result = tokio::time::timeout(Duration::from_secs(5), proxy).await.unwrap().unwrap();
    assert!(result.is_ok());
}

#[tokio::test]
async fn proxy_forwards_pull_to_push_one_way() {
    let frontend = Socket::new(SocketType::Pull).unwrap();
    let in_ep = frontend.bind("tcp://127.0.0.1:*").await.unwrap();
    let backend = Socket::new(SocketType::Push).unwrap();
    let out_ep = backend.bind("tcp://127.0.0.1:*").await.unwrap();
    let proxy = tokio::spawn(async move { zmtp::proxy(&frontend, &backend, None).await });
    let producer = Socket::new(SocketType::Push).unwrap();
    producer.connect(&in_ep).unwrap();
    let consumer = Socket::new(SocketType::Pull).unwrap();
    consumer.connect(&out_ep).unwrap();
    for i in 0..10 {
        producer.send(format!("job {i}")).await.unwrap();
    }
    for i in 0..10 {
        assert_eq!(strings(&recv_timeout(&consumer).await), [format!("job {i}")]);
    }
    proxy.abort();
}

/// Waits until `publisher` sees `n` subscribers for `topic` (subscriptions arrive asynchronously).
async fn wait_subscribers(publisher: &Socket, topic: &[u8], n: usize) {
    for _ in 0..500 {
        if publisher.subscriber_count(topic) == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {n} subscribers for {topic:?}: {:?}", publisher.subscriptions());
}

#[tokio::test]
async fn publisher_introspection_answers_who_is_subscribed() {
    let publisher = Socket::new(SocketType::Pub).unwrap();
    let ep = publisher.bind("tcp://127.0.0.1:*").await.unwrap();
    assert_eq!(publisher.has_subscriber(b"nyse.IBM"), Some(false));
    let a = Socket::new(SocketType::Sub).unwrap();
    a.connect(&ep).unwrap();
    a.subscribe("nyse.").unwrap();
    let b = Socket::new(SocketType::Sub).unwrap();
    b.connect(&ep).unwrap();
    b.subscribe("nyse.IBM").unwrap();
    b.subscribe("lse.").unwrap();
    wait_subscribers(&publisher, b"nyse.IBM", 2).await;
    assert_eq!(publisher.has_subscriber(b"nyse.MSFT"), Some(true));
    assert_eq!(publisher.subscriber_count(b"nyse.MSFT"), Some(1));
    assert_eq!(publisher.has_subscriber(b"tse.7203"), Some(false));
    let topics = publisher.subscriptions().unwrap();
    assert_eq!(topics, [(Bytes::from("lse."), 1), (Bytes::from("nyse."), 1), (Bytes::from("nyse.IBM"), 1)]);
    b.close().await;
    wait_subscribers(&publisher, b"nyse.IBM", 1).await;
    assert_eq!(publisher.has_subscriber(b"lse.VOD"), Some(false), "a departed subscriber's topics are gone");
    assert_eq!(Socket::new(SocketType::Sub).unwrap().has_subscriber(b"x"), None);
}

#[tokio::test]
async fn subscription_cap_overflows_to_every_message() {
    // Over its cap, a subscriber gets every message rather than losing the topic it asked for
    // (issue 15: behind a proxy, refusing let one subscriber use up the upstream's cap for all).
    let o = opts(|o| {
        o.subscription_limits =
            zmtp::pattern::subscriptions::SubscriptionLimits { max_topics: 2, max_bytes: 1024 }
    });
    let publisher = Socket::with_options(SocketType::Pub, o).unwrap();
    let ep = publisher.bind("tcp://127.0.0.1:*").await.unwrap();
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&ep).unwrap();
    for t in ["a", "b", "c"] {
        sub.subscribe(t).unwrap();
    }
    wait_subscribers(&publisher, b"", 1).await;
    let topics: Vec<_> = publisher.subscriptions().unwrap().into_iter().map(|(t, _)| t).collect();
    assert_eq!(topics, ["", "a", "b"], "the third topic overflowed the peer to everything");
    assert_eq!(publisher.has_subscriber(b"z"), Some(true));
    publisher.send(msg(&["z1"])).await.unwrap();
    publisher.send(msg(&["c1"])).await.unwrap();
    // The SUB filters again: "z1" is not delivered, "c1" is.
    assert_eq!(strings(&recv_timeout(&sub).await), ["c1"]);
}

#[tokio::test]
async fn invert_matching_and_welcome_message() {
    let o = opts(|o| {
        o.invert_matching = true;
        o.xpub_welcome_msg = Some(Bytes::from_static(b"WELCOME"));
    });
    let xpub = Socket::with_options(SocketType::XPub, o).unwrap();
    let ep = xpub.bind("tcp://127.0.0.1:*").await.unwrap();
    let sub = Socket::with_options(SocketType::Sub, opts(|o| o.invert_matching = true)).unwrap();
    sub.subscribe("WELCOME").unwrap(); // inverted: everything *except* WELCOME…
    sub.subscribe("skip").unwrap();
    sub.connect(&ep).unwrap();
    // …but the welcome message is queued to the subscriber on connect and filtered by its SUB.
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01WELCOME");
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01skip");
    xpub.send(msg(&["skip.this"])).await.unwrap();
    xpub.send(msg(&["keep.this"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&sub).await), ["keep.this"]);
}

#[tokio::test]
async fn conflate_keeps_only_the_newest_message() {
    let pull = Socket::with_options(SocketType::Pull, opts(|o| o.conflate = true)).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    for i in 0..100 {
        push.send(format!("{i}")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(strings(&recv_timeout(&pull).await), ["99"]);
    assert!(pull.try_recv().is_err());
}

#[tokio::test]
async fn xpub_nodrop_waits_instead_of_dropping() {
    let o = opts(|o| {
        o.xpub_nodrop = true;
        o.send_hwm = 2;
        o.send_timeout = Some(Duration::from_millis(100));
    });
    let xpub = Socket::with_options(SocketType::XPub, o).unwrap();
    let ep = xpub.bind("tcp://127.0.0.1:*").await.unwrap();
    let sub = Socket::with_options(SocketType::Sub, opts(|o| o.recv_hwm = 1)).unwrap();
    sub.connect(&ep).unwrap();
    sub.subscribe("").unwrap();
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01");
    // The subscriber never reads: eventually every queue on the way is full and send reports it.
    let big = Bytes::from(vec![0u8; 1 << 20]);
    let mut blocked = false;
    for _ in 0..200 {
        if let Err(e) = xpub.send(big.clone()).await {
            assert!(matches!(e.error, Error::WouldBlock));
            blocked = true;
            break;
        }
    }
    assert!(blocked, "XPUB_NODROP must push back instead of dropping");
}

#[tokio::test]
async fn xpub_manual_lets_the_application_decide_subscriptions() {
    let xpub = Socket::with_options(SocketType::XPub, opts(|o| o.xpub_manual = true)).unwrap();
    let ep = xpub.bind("tcp://127.0.0.1:*").await.unwrap();
    assert!(xpub.subscribe("x").is_err(), "no subscription received yet");
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&ep).unwrap();
    sub.subscribe("asked").unwrap();
    sub.subscribe("granted").unwrap();
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01asked");
    assert_eq!(recv_timeout(&xpub).await.frames()[0], "\x01granted");
    // Nothing is applied by itself: the application grants one of the two.
    assert_eq!(xpub.has_subscriber(b"asked"), Some(false));
    xpub.subscribe("granted").unwrap();
    assert_eq!(xpub.has_subscriber(b"granted.1"), Some(true));
    xpub.send(msg(&["asked.1"])).await.unwrap();
    xpub.send(msg(&["granted.1"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&sub).await), ["granted.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_between_router_and_dealer_routes_replies_back() {
    let frontend = Socket::new(SocketType::Router).unwrap();
    let front_ep = frontend.bind("tcp://127.0.0.1:*").await.unwrap();
    let backend = Socket::new(SocketType::Dealer).unwrap();
    let back_ep = backend.bind("tcp://127.0.0.1:*").await.unwrap();
    let proxy = tokio::spawn(async move { zmtp::proxy(&frontend, &backend, None).await });
    let worker = Socket::new(SocketType::Rep).unwrap();
    worker.connect(&back_ep).unwrap();
    let workers = tokio::spawn(async move {
        for _ in 0..6 {
            let req = worker.recv().await.unwrap();
            let mut reply = String::from_utf8_lossy(&req.frames()[0]).into_owned();
            reply.push_str(" done");
            worker.send(reply).await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for c in 0..3 {
        let client = Socket::new(SocketType::Req).unwrap();
        client.connect(&front_ep).unwrap();
        clients.push(tokio::spawn(async move {
            for i in 0..2 {
                client.send(format!("c{c} r{i}")).await.unwrap();
                let reply =
                    tokio::time::timeout(Duration::from_secs(10), client.recv()).await.unwrap().unwrap();
                assert_eq!(strings(&reply), [format!("c{c} r{i} done")]);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    workers.await.unwrap();
    proxy.abort();
}

/// A tight loop of sends that never wait (PUB) must still let the connection tasks run: before
/// `send` took from tokio's cooperative budget, only the first SNDHWM messages ever left.
#[tokio::test(flavor = "current_thread")]
async fn tight_publish_loop_does_not_starve_the_connection() {
    let sub = Socket::new(SocketType::Sub).unwrap();
    let ep = sub.bind("tcp://127.0.0.1:*").await.unwrap();
    sub.subscribe("").unwrap();
    let publisher = Socket::new(SocketType::Pub).unwrap();
    publisher.connect(&ep).unwrap();
    while publisher.subscriber_count(b"") != Some(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counter = tokio::spawn(async move {
        let mut n = 0;
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), sub.recv()).await {
            n += 1;
        }
        n
    });
    for i in 0..20_000u32 {
        publisher.send(Bytes::from(i.to_be_bytes().to_vec())).await.unwrap();
    }
    let received = counter.await.unwrap();
    assert!(received > 5_000, "only {received} of 20000 left the publisher");
}

/// `send_many` and `recv_many` move batches in order, one- and multi-frame messages alike, and
/// `recv_many` never takes more than asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_keep_order_and_bounds() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    let n = 10_000;
    let mut queue: std::collections::VecDeque<Msg> = (0..n)
        .map(|i| if i % 3 == 0 { msg(&["multi", "part"]) } else { Msg::from(format!("m{i}")) })
        .collect();
    let sender = tokio::spawn({
        let push = push.clone();
        async move {
            push.send_many(&mut queue).await.unwrap();
            assert!(queue.is_empty());
        }
    });
    let mut got = std::collections::VecDeque::new();
    while got.len() < n {
        let before = got.len();
        let taken = tokio::time::timeout(Duration::from_secs(10), pull.recv_many(&mut got, 100))
            .await
            .expect("timed out")
            .unwrap();
        assert!((1..=100).contains(&taken) && got.len() == before + taken);
    }
    sender.await.unwrap();
    for (i, m) in got.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(strings(m), ["multi", "part"]);
        } else {
            assert_eq!(strings(m), [format!("m{i}")]);
        }
    }
    assert!(matches!(pull.try_recv_many(&mut got, 10), Err(Error::WouldBlock)));
    // An unbounded `max` takes what is there and returns.
    push.send("last").await.unwrap();
    got.clear();
    let taken = tokio::time::timeout(Duration::from_secs(10), pull.recv_many(&mut got, usize::MAX))
        .await
        .expect("timed out")
        .unwrap();
    assert_eq!((taken, strings(&got[0])), (1, vec!["last".to_owned()]));
}

/// `try_send_many` stops at the high-water mark and leaves the rest queued; a message the socket
/// refuses stays at the front with its error, after those before it were sent.
#[tokio::test]
async fn try_send_many_stops_at_the_first_message_that_cannot_go() {
    let push = Socket::with_options(SocketType::Push, Options { send_hwm: 5, ..Options::default() }).unwrap();
    push.connect("tcp://127.0.0.1:9").unwrap(); // nobody there: messages wait in the peer's queue
    let mut queue: std::collections::VecDeque<Msg> = (0..8).map(|i| Msg::from(format!("{i}"))).collect();
    assert_eq!(push.try_send_many(&mut queue).unwrap(), 5);
    assert_eq!(queue.len(), 3);
    assert_eq!(strings(&queue[0]), ["5"]);

    let router =
        Socket::with_options(SocketType::Router, Options { router_mandatory: true, ..Options::default() })
            .unwrap();
    let mut queue: std::collections::VecDeque<Msg> = [msg(&["nobody", "x"]), msg(&["nobody", "y"])].into();
    assert!(matches!(router.try_send_many(&mut queue), Err(Error::HostUnreachable(_))));
    assert_eq!(queue.len(), 2, "the refused message stays at the front");
}
