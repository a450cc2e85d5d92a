//! PUB/SUB against pyzmq (libzmq 4.3.5): our PUB filters for a pyzmq SUB, our SUB subscribes to a
//! pyzmq PUB, over tcp and ipc, with us binding and with pyzmq binding. Subscriptions reach a
//! publisher asynchronously (the Guide's slow joiner), so publishers repeat until the first match
//! arrives, then the filter is checked exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Socket, SocketType};
use zmtp_interop::sockets::{blocking, link, within, SETUPS};
use zmtp_interop::{hex, reprs, STEP};

fn frames(parts: &[&str]) -> Msg {
    Msg::from(parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pub_filters_for_pyzmq_sub() {
    for (kind, side) in SETUPS {
        let ours = Socket::new(SocketType::Pub).unwrap();
        let args = vec!["--subscribe".to_owned(), hex(b"wx.")];
        let mut link = link(kind, side, ours, None, "SUB", &args).await;
        // Until the subscription has arrived, publish both a matching and a non-matching message.
        let mut first = None;
        for _ in 0..250 {
            within("send", link.ours.send(frames(&["sports", "x"]))).await.unwrap();
            within("send", link.ours.send(frames(&["wx.nyc", "21C"]))).await.unwrap();
            let lines = blocking(|| link.peer.lines_within("MSG ", Duration::from_millis(20)));
            if let Some(line) = lines.into_iter().next() {
                first = Some(line);
                break;
            }
        }
        let first = first.unwrap_or_else(|| panic!("{kind:?} {side:?}: pyzmq SUB received nothing"));
        assert!(first.contains(&reprs(&[b"wx.nyc"])[0]), "{kind:?} {side:?}: {first}");
        within("send", link.ours.send(frames(&["sports", "y"]))).await.unwrap();
        within("send", link.ours.send(frames(&["wx.sf", "15C"]))).await.unwrap();
        // Every later message pyzmq prints is a weather one, ending with wx.sf.
        loop {
            let got = blocking(|| link.peer.expect_msg(STEP));
            assert_ne!(got[0], reprs(&[b"sports"])[0], "{kind:?} {side:?}: filter let sports through");
            if got == reprs(&[b"wx.sf".as_slice(), b"15C"]) {
                break;
            }
        }
        link.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_receives_from_pyzmq_pub() {
    for (kind, side) in SETUPS {
        let ours = Socket::new(SocketType::Sub).unwrap();
        ours.subscribe("wx.").unwrap();
        let mut link = link(kind, side, ours, None, "PUB", &[]).await;
        let mut got = None;
        for _ in 0..250 {
            link.peer.send(&[b"sports".as_slice(), b"x"]);
            link.peer.send(&[b"wx.nyc".as_slice(), b"21C"]);
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), link.ours.recv()).await {
                got = Some(m);
                break;
            }
        }
        let got = got.unwrap_or_else(|| panic!("{kind:?} {side:?}: our SUB received nothing"));
        assert_eq!(got.frames()[0], "wx.nyc", "{kind:?} {side:?}");
        // Everything that follows passes the filter.
        while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), link.ours.recv()).await {
            assert_eq!(m.frames()[0], "wx.nyc", "{kind:?} {side:?}");
        }
        link.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_xpub_sees_pyzmq_subscriptions() {
    for (kind, side) in SETUPS {
        let ours = Socket::new(SocketType::XPub).unwrap();
        let args = vec!["--subscribe".to_owned(), hex(b"wx.")];
        let mut link = link(kind, side, ours, None, "SUB", &args).await;
        let sub = within("subscription", link.ours.recv()).await.unwrap();
        assert_eq!(sub.frames()[0], "\x01wx.", "{kind:?} {side:?}");
        within("send", link.ours.send(frames(&["sports"]))).await.unwrap();
        within("send", link.ours.send(frames(&["wx.sf", "15C"]))).await.unwrap();
        let got = blocking(|| link.peer.expect_msg(STEP));
        assert_eq!(got, reprs(&[b"wx.sf".as_slice(), b"15C"]), "{kind:?} {side:?}");
        link.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_xsub_subscribes_to_pyzmq_pub() {
    for (kind, side) in SETUPS {
        let ours = Socket::new(SocketType::XSub).unwrap();
        within("subscribe", ours.send(Bytes::from_static(b"\x01wx."))).await.unwrap();
        let mut link = link(kind, side, ours, None, "PUB", &[]).await;
        let mut got = None;
        for _ in 0..250 {
            link.peer.send(&[b"sports".as_slice()]);
            link.peer.send(&[b"wx.nyc".as_slice(), b"21C"]);
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), link.ours.recv()).await {
                got = Some(m);
                break;
            }
        }
        let got = got.unwrap_or_else(|| panic!("{kind:?} {side:?}: our XSUB received nothing"));
        assert_eq!(got.frames()[0], "wx.nyc", "{kind:?} {side:?}: pyzmq filtered for us");
        link.close().await;
    }
}

/// Our proxy (XSUB/XPUB) between a pyzmq publisher and a pyzmq subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_proxy_between_pyzmq_publisher_and_subscriber() {
    let frontend = Socket::new(SocketType::XSub).unwrap();
    let xsub_ep = frontend.bind("tcp://127.0.0.1:*").await.unwrap();
    let backend = Socket::new(SocketType::XPub).unwrap();
    let xpub_ep = backend.bind("tcp://127.0.0.1:*").await.unwrap();
    let proxy = tokio::spawn(async move { zmtp::proxy(&frontend, &backend, None).await });
    let mut sub =
        zmtp_interop::SockPeer::spawn(["--type", "SUB", "--connect", &xpub_ep, "--subscribe", &hex(b"wx.")]);
    blocking(|| sub.ready());
    let mut publisher = zmtp_interop::SockPeer::spawn(["--type", "PUB", "--connect", &xsub_ep]);
    blocking(|| publisher.ready());
    let mut received = None;
    for _ in 0..250 {
        publisher.send(&[b"sports".as_slice()]);
        publisher.send(&[b"wx.nyc".as_slice(), b"21C"]);
        let lines = blocking(|| sub.lines_within("MSG ", Duration::from_millis(20)));
        if let Some(line) = lines.into_iter().next() {
            received = Some(line);
            break;
        }
    }
    let line = received.expect("the pyzmq subscriber received nothing through our proxy");
    assert!(line.contains(&reprs(&[b"wx.nyc"])[0]), "{line}");
    proxy.abort();
}

/// pyzmq's proxy between our publisher and our subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_proxy_between_our_publisher_and_subscriber() {
    let (mut proxy, _stdin) =
        zmtp_interop::Peer::spawn_with_stdin("sock_proxy", ["tcp://127.0.0.1:0", "tcp://127.0.0.1:0"]);
    let line = blocking(|| proxy.expect_line("READY ", zmtp_interop::PEER_START));
    let mut words = line.split_whitespace().skip(1);
    let (xsub_ep, xpub_ep) = (words.next().unwrap().to_owned(), words.next().unwrap().to_owned());
    let publisher = Socket::new(SocketType::Pub).unwrap();
    publisher.connect(&xsub_ep).unwrap();
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.connect(&xpub_ep).unwrap();
    sub.subscribe("wx.").unwrap();
    let mut got = None;
    for _ in 0..250 {
        publisher.send(frames(&["sports"])).await.unwrap();
        publisher.send(frames(&["wx.nyc", "21C"])).await.unwrap();
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(20), sub.recv()).await {
            got = Some(m);
            break;
        }
    }
    let got = got.expect("our subscriber received nothing through pyzmq's proxy");
    assert_eq!(got.frames()[0], "wx.nyc");
}

/// A ZMTP 3.0 subscriber (sans-IO driver over a raw TcpStream) subscribes to our PUB with the 3.0
/// message form (`0x01`+topic as a data frame) and our PUB filters by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmtp_3_0_subscriber_gets_filtered_messages_from_our_pub() {
    use zmtp::proto::{ConnectionConfig, SocketType as Wire, Version};
    let publisher = Socket::new(SocketType::Pub).unwrap();
    let ep = publisher.bind("tcp://127.0.0.1:*").await.unwrap();
    let addr = ep.trim_start_matches("tcp://").to_owned();
    let mut d = blocking(|| {
        let stream = std::net::TcpStream::connect(&addr).unwrap();
        let mut d =
            zmtp_interop::Driver::new(stream, ConnectionConfig::new(Wire::Sub).version(Version::V3_0))
                .capture();
        let info = d.handshake(STEP).unwrap();
        assert_eq!(info.version, Version::V3_0);
        d.subscribe(Bytes::from_static(b"A")).unwrap();
        d.flush().unwrap();
        d
    });
    // The subscription went out as a data frame: flags 0, size 2, 0x01 'A'.
    assert!(
        d.sent_bytes().windows(4).any(|w| w == [0x00, 0x02, 0x01, b'A']),
        "3.0 message form: {:02x?}",
        d.sent_bytes()
    );
    let mut got = None;
    for _ in 0..250 {
        publisher.send(frames(&["B1"])).await.unwrap();
        publisher.send(frames(&["A1"])).await.unwrap();
        if let Ok(m) = blocking(|| d.recv(Duration::from_millis(20))) {
            got = Some(m);
            break;
        }
    }
    assert_eq!(got.expect("nothing received").frames()[0], "A1", "B1 is filtered at our publisher");
}

/// Our SUB talking to a ZMTP 3.0 publisher sends its subscription in the 3.0 message form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_uses_the_message_form_with_a_zmtp_3_0_publisher() {
    use zmtp::proto::{ConnectionConfig, Event, SocketType as Wire, Version};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let sub = Socket::new(SocketType::Sub).unwrap();
    sub.subscribe("A").unwrap();
    sub.connect(&ep).unwrap();
    let mut d = blocking(|| {
        let (stream, _) = listener.accept().unwrap();
        let config = ConnectionConfig::new(Wire::Pub).as_server(false).version(Version::V3_0);
        let mut d = zmtp_interop::Driver::new(stream, config).capture();
        d.handshake(STEP).unwrap();
        d
    });
    let event = blocking(|| d.next_event(STEP)).unwrap();
    assert_eq!(event, Event::Subscribe(Bytes::from_static(b"A")));
    assert!(d.received_bytes().windows(4).any(|w| w == [0x00, 0x02, 0x01, b'A']), "3.0 message form");
    blocking(|| {
        d.send(frames(&["A1"])).unwrap();
        d.flush().unwrap();
    });
    let got = within("recv", sub.recv()).await.unwrap();
    assert_eq!(got.frames()[0], "A1");
}
