//! The monitor's events of one connection carry the peer's address (issue 16: the relay's
//! `peer disconnected` warnings name the peer), for a handshake that fails and for a disconnection.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use zmtp::{Socket, SocketEventKind, SocketType};

#[tokio::test]
async fn disconnect_and_handshake_failure_events_name_the_peer() {
    let router = Socket::new(SocketType::Router).unwrap();
    let mut monitor = router.monitor();
    let endpoint = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    // A raw peer that sends garbage instead of a greeting: its handshake fails.
    let local = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let local = s.local_addr().unwrap().to_string();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        local
    })
    .await
    .unwrap();
    let (mut failed, mut disconnected) = (None, None);
    while failed.is_none() || disconnected.is_none() {
        let ev = tokio::time::timeout(Duration::from_secs(10), monitor.recv()).await.unwrap().unwrap();
        match ev.kind {
            SocketEventKind::HandshakeFailed(_) => failed = Some(ev.peer),
            SocketEventKind::Disconnected(_) => disconnected = Some(ev.peer),
            _ => assert_eq!(ev.peer, None, "{:?} has no peer", ev.kind),
        }
    }
    assert_eq!(failed, Some(Some(local.clone())));
    assert_eq!(disconnected, Some(Some(local)));
}
