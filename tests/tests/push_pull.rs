//! Our PUSH to a pyzmq PULL: empty, 1 MiB and 16 MiB messages arrive intact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::{ConnectionConfig, SocketType};
use zmtp::Msg;
use zmtp_interop::{msg_line, pattern, Driver, Kind, Peer, TempDir, STEP};

fn push_to_pull(kind: Kind) {
    let dir = TempDir::new("push");
    let mut peer = Peer::echo(["--type", "PULL", "--bind", &kind.bind_endpoint(&dir, "pull")]);
    let mut d = Driver::new(peer.ready().connect().unwrap(), ConnectionConfig::new(SocketType::Push));
    let info = d.handshake(STEP).unwrap();
    assert_eq!(info.socket_type, Some(SocketType::Pull));

    let messages: Vec<Vec<Bytes>> = vec![
        vec![Bytes::new()],
        vec![pattern(1 << 20, 1)],
        vec![pattern(16 << 20, 2)],
        // Multipart around the short/long header boundary, then a tiny message after the big ones.
        vec![pattern(255, 3), pattern(256, 4), Bytes::new(), pattern(70_000, 5)],
        vec![Bytes::from_static(b"end")],
    ];
    for (i, frames) in messages.iter().enumerate() {
        let started = Instant::now();
        d.send(Msg::from(frames.clone())).unwrap();
        let line = peer.expect_line("MSG ", STEP + Duration::from_secs(5));
        assert_eq!(line, msg_line(frames), "message {i}");
        eprintln!(
            "message {i} ({} bytes) delivered in {:?}",
            Msg::from(frames.clone()).byte_len(),
            started.elapsed()
        );
    }
    // Nothing came back and the connection is still up.
    assert!(d.drive_for(Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn our_push_to_pyzmq_pull_tcp() {
    push_to_pull(Kind::Tcp);
}

#[test]
fn our_push_to_pyzmq_pull_ipc() {
    push_to_pull(Kind::Ipc);
}
