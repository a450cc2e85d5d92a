//! Issue 15, defect 1: data that peers send to a socket type with no receive side (PUB, PUSH) is
//! discarded on arrival and counted; the connection keeps being read.
//!
//! RFC 29: a PUB "SHALL silently discard any messages received from subscribers". Before the fix a
//! PUB queued them for an application that can never receive on a PUB: four raw subscribers sending
//! 32 × 1 MiB grew a publisher from 3 to 133 MiB, and once one connection had sent a receive HWM of
//! messages the PUB stopped reading it, so its later SUBSCRIBEs were never seen and its PINGs got no
//! PONG. libzmq's PUSH never reads its peers either and wedges; ours discards and keeps reading.
//!
//! Own test binary: the counting allocator measures the heap of the test thread, which (current-thread
//! runtime) runs every task of the socket under test; the raw peer writes from its own thread.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/counting_alloc.rs"]
#[allow(dead_code)]
mod counting_alloc;
#[path = "support/hostile_sub.rs"]
#[allow(dead_code)]
mod hostile_sub;

use hostile_sub::{command, frame};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zmtp::proto::loopback::null_peer_opening;
use zmtp::proto::{SocketType as WireType, Version};
use zmtp::{Socket, SocketType};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw peer: handshake as `as_type`, `big` data messages of 1 MiB and `small` of 16 octets,
/// then (PUB only) SUBSCRIBE "A", then a PING with context "after-flood". Reads until it has seen
/// the PONG for that PING and a message "A-data" from the socket; panics after 30 s.
fn raw_peer(endpoint: &str, as_type: WireType, big: usize, small: usize, done: Arc<AtomicBool>) {
    let mut s = TcpStream::connect(endpoint.trim_start_matches("tcp://")).unwrap();
    s.write_all(&null_peer_opening(as_type, Version::V3_1)).unwrap();
    // Read on a clone while writing, so the socket under test is never blocked writing to us.
    let mut reader = s.try_clone().unwrap();
    let seen = std::thread::spawn(move || {
        let start = Instant::now();
        reader.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let (mut pong, mut data) = (false, false);
        while !(pong && data) {
            assert!(start.elapsed() < Duration::from_secs(30), "pong {pong}, data {data}");
            match reader.read(&mut buf) {
                Ok(0) => panic!("closed by the socket under test"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("{e}"),
            }
            pong = pong || contains(&got, b"\x04PONGafter-flood");
            data = data || contains(&got, b"A-data");
            // Keep only a tail: the needles are short.
            if got.len() > 1 << 20 {
                got.drain(..got.len() - 64);
            }
        }
    });
    let big_msg = frame(&vec![0xAB; 1 << 20], false);
    for _ in 0..big {
        s.write_all(&big_msg).unwrap();
    }
    let small_msgs = frame(b"0123456789abcdef", false).repeat(small);
    s.write_all(&small_msgs).unwrap();
    if as_type == WireType::Sub {
        s.write_all(&command("SUBSCRIBE", b"A")).unwrap();
    }
    let mut ping = 0u16.to_be_bytes().to_vec();
    ping.extend_from_slice(b"after-flood");
    s.write_all(&command("PING", &ping)).unwrap();
    seen.join().unwrap();
    done.store(true, Ordering::SeqCst);
}

/// Runs the raw peer against `socket` (bound), sending "A-data" until the peer has seen it and its
/// PONG; returns the peak heap growth of the socket's thread while the peer flooded it.
async fn flood_and_check(socket: &Socket, as_type: WireType, big: usize, small: usize) -> i64 {
    let endpoint = socket.bind("tcp://127.0.0.1:*").await.unwrap();
    let base = counting_alloc::live_bytes();
    let done = Arc::new(AtomicBool::new(false));
    let peer = {
        let done = done.clone();
        std::thread::spawn(move || raw_peer(&endpoint, as_type, big, small, done))
    };
    let mut peak = 0;
    let start = Instant::now();
    while !done.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(40), "the raw peer did not finish");
        if peer.is_finished() {
            break;
        }
        let _ = socket.try_send("A-data");
        peak = peak.max(counting_alloc::live_bytes() - base);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    peer.join().unwrap();
    eprintln!("peak heap growth of the socket's thread: {} KiB", peak >> 10);
    peak
}

/// A PUB sent 64 × 1 MiB and 5,000 small messages (over its receive HWM of 1,000 and its 64 MiB
/// byte cap) by a subscriber still reads that subscriber's SUBSCRIBE and PING afterwards, answers
/// the PING, publishes to it, counts every discarded message and holds none of them.
#[tokio::test(flavor = "current_thread")]
async fn pub_discards_subscriber_data_and_keeps_reading() {
    let publisher = Socket::new(SocketType::Pub).unwrap();
    let peak = flood_and_check(&publisher, WireType::Sub, 64, 5_000).await;
    assert_eq!(publisher.discarded_messages(), 5_064);
    // Before the fix the PUB held up to 64 MiB of them; now about one read batch (measured 1.1 MiB;
    // the bound leaves room for the 8 MiB read-buffer pool).
    assert!(peak < 12 << 20, "the publisher's heap grew by {} MiB", peak >> 20);
}

/// PUSH has no receive side either (RFC 30): a PULL peer that sends data is discarded the same
/// way, still gets its PONG and its messages (libzmq's PUSH stops reading and wedges there).
#[tokio::test(flavor = "current_thread")]
async fn push_discards_puller_data_and_keeps_reading() {
    let push = Socket::new(SocketType::Push).unwrap();
    let peak = flood_and_check(&push, WireType::Pull, 64, 5_000).await;
    assert_eq!(push.discarded_messages(), 5_064);
    assert!(peak < 12 << 20, "the PUSH's heap grew by {} MiB", peak >> 20);
}
