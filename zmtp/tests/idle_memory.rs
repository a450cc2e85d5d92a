//! Memory an idle connection keeps (issue 7: RSS per idle, handshaked connection ≤ 8 KiB). A
//! connection in handshake reads into a block of a few hundred octets rather than 8 KiB, and an
//! idle one (`Connection::handle_idle`, called once a read would block) gives back its empty read
//! and transmit buffers, unless a decoded message still points into the read block. The counting
//! allocator (this test binary only) tracks the current thread's heap bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::{BufMut, Bytes};
use zmtp::proto::{Connection, ConnectionConfig, Event, FrameHeader, SocketType, Version};
use zmtp::Msg;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Feeds `bytes` as the runtime does: one read into `read_buffer` per call, then `handle_read`,
/// then every event.
fn read(c: &mut Connection, now: Instant, bytes: &[u8]) -> Vec<Event> {
    let mut rest = bytes;
    let mut events = Vec::new();
    while !rest.is_empty() {
        let buf = c.read_buffer();
        let n = (buf.capacity() - buf.len()).min(rest.len());
        assert!(n > 0, "read_buffer offered no room");
        buf.put_slice(&rest[..n]);
        c.handle_read(now, n);
        rest = &rest[n..];
        events.extend(std::iter::from_fn(|| c.poll_event()));
    }
    events
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader::data(body.len(), false).encode(&mut out);
    out.extend_from_slice(body);
    out
}

/// A ROUTER that completed its handshake with a DEALER through the read path, its output drained.
fn handshaked(now: Instant) -> Connection {
    let mut c = Connection::new(ConnectionConfig::new(SocketType::Router), now);
    let events =
        read(&mut c, now, &zmtp::proto::loopback::null_peer_opening(SocketType::Dealer, Version::V3_1));
    assert!(matches!(events.as_slice(), [Event::HandshakeComplete(_)]), "{events:?}");
    c.take_transmit();
    c
}

#[test]
fn a_handshake_takes_a_few_hundred_octets_not_an_8_kib_read_block() {
    let now = Instant::now();
    let peak = counting_alloc::peak_growth(
        || (),
        |()| {
            let c = handshaked(now);
            assert!(c.is_ready());
        },
    );
    // Before: an 8 KiB read block and a 4 KiB transmit block.
    assert!(peak < 2048, "peak {peak} octets for a handshake");
}

#[test]
fn an_idle_connection_gives_its_buffers_back() {
    let now = Instant::now();
    let mut c = handshaked(now);
    c.handle_idle();
    let before = counting_alloc::live_bytes();
    // A request in, a reply out: an 8 KiB read block and a transmit block.
    let events = read(&mut c, now, &message(b"request"));
    assert_eq!(events, vec![Event::Message(Msg::from(Bytes::from_static(b"request")))]);
    drop(events);
    c.send_message(Msg::from(Bytes::from_static(b"reply"))).unwrap();
    let out = c.take_transmit();
    assert_eq!(out, message(b"reply"));
    drop(out);
    let busy = counting_alloc::live_bytes() - before;
    assert!(busy >= 8 * 1024, "the read block is taken while busy ({busy} octets)");
    c.handle_idle();
    let idle = counting_alloc::live_bytes() - before;
    assert!(idle <= 0, "{idle} octets kept by an idle connection");
    // And it goes on working.
    let events = read(&mut c, now, &message(b"again"));
    assert_eq!(events, vec![Event::Message(Msg::from(Bytes::from_static(b"again")))]);
}

#[test]
fn a_block_a_queued_message_points_into_is_kept_for_the_next_read() {
    // A peer trickling small messages that wait in a queue must not pin a block each: while a
    // decoded message still points into the read block, going idle keeps it and the next message
    // is read into its spare room.
    let now = Instant::now();
    let mut c = handshaked(now);
    let first = read(&mut c, now, &message(b"one"));
    let Some(Event::Message(first)) = first.into_iter().next() else { panic!("no message") };
    c.handle_idle();
    let second = read(&mut c, now, &message(b"two"));
    let Some(Event::Message(second)) = second.into_iter().next() else { panic!("no message") };
    let (a, b) = (first.frames()[0].as_ptr() as usize, second.frames()[0].as_ptr() as usize);
    assert!(b > a && b - a < 64, "the second message is in a new block ({a:#x}, {b:#x})");
}

#[test]
fn a_part_received_message_keeps_its_buffer() {
    let now = Instant::now();
    let mut c = handshaked(now);
    let whole = message(&[7; 100]);
    assert_eq!(read(&mut c, now, &whole[..50]), vec![]);
    c.handle_idle();
    assert_eq!(c.buffered_input(), 50);
    assert_eq!(read(&mut c, now, &whole[50..]), vec![Event::Message(Msg::from(Bytes::from(vec![7; 100])))]);
}
