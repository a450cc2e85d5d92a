//! Allocation stays within a small bound of the bytes consumed, whatever the input claims
//! (reliability.md §0 rule 1, §7d). A counting allocator (this test binary only) tracks the live and
//! peak bytes allocated by the current thread, so tests running in parallel do not disturb each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use proptest::prelude::*;
use zmtp::proto::{Connection, ConnectionConfig, FrameHeader, Limits, SocketType, Version};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Runs `f` and returns the peak growth of this thread's live heap bytes during it.
fn peak_growth(f: impl FnOnce()) -> usize {
    counting_alloc::peak_growth(|| (), |()| f()) as usize
}

fn handshake_bytes() -> Vec<u8> {
    zmtp::proto::loopback::null_peer_opening(SocketType::Dealer, Version::V3_1)
}

/// Feeds `input` in `chunk`-sized reads, dropping every event at once (the application's share of
/// memory is not the protocol's), and returns the peak heap growth.
fn feed(local: SocketType, input: &[u8], chunk: usize, limits: Limits) -> usize {
    let now = Instant::now();
    let config = ConnectionConfig::new(local).limits(limits);
    peak_growth(|| {
        let mut conn = Connection::new(config, now);
        for piece in input.chunks(chunk.max(1)) {
            conn.handle_input(now, piece);
            while conn.poll_event().is_some() {}
            conn.take_transmit();
        }
        conn.handle_eof();
        while conn.poll_event().is_some() {}
    })
}

/// A connection's own baseline: config, buffers, our greeting and READY.
const BASELINE: usize = 16 * 1024;

#[test]
fn a_header_claiming_exabytes_allocates_nothing_for_it() {
    let mut input = handshake_bytes();
    input.extend_from_slice(&[0x02, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let peak = feed(SocketType::Router, &input, 4096, Limits::default());
    assert!(peak < BASELINE + 2 * input.len(), "peak {peak}");
}

#[test]
fn a_large_frame_grows_memory_with_its_bytes_not_its_header() {
    // Header claims 32 MiB (under the 64 MiB limit); only 100 KiB arrive.
    let mut input = handshake_bytes();
    FrameHeader::data(32 << 20, false).encode(&mut input);
    input.extend(std::iter::repeat_n(0xab, 100 * 1024));
    let peak = feed(SocketType::Router, &input, 8192, Limits::default());
    assert!(peak < BASELINE + 3 * input.len(), "peak {peak} for {} bytes", input.len());
}

#[test]
fn endless_multipart_stops_at_the_message_limit() {
    // A-F10: MORE frames forever; with a 1 MiB message limit the connection closes and memory stays
    // under the limit plus a little, however much the peer sends.
    let limits = Limits { max_message_size: 1 << 20, ..Limits::default() };
    let mut input = handshake_bytes();
    for _ in 0..(8 << 20) / 4096 {
        FrameHeader::data(4096, true).encode(&mut input);
        input.extend(std::iter::repeat_n(0x33, 4096));
    }
    let peak = feed(SocketType::Pull, &input, 65536, limits);
    assert!(peak < (1 << 20) + (1 << 20), "peak {peak}");
}

#[test]
fn a_million_empty_more_frames_stop_at_the_frame_count_limit() {
    // A-F11.
    let mut input = handshake_bytes();
    for _ in 0..1_000_000 {
        input.extend_from_slice(&[0x01, 0x00]);
    }
    let peak = feed(SocketType::Pull, &input, 65536, Limits::default());
    // 4096 frames of empty `Bytes` (32 bytes each, doubling Vec) plus the read buffer.
    assert!(peak < 512 * 1024, "peak {peak}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For arbitrary input after a valid handshake, allocation ≤ a constant + 3 × bytes consumed.
    #[test]
    fn allocation_is_bounded_by_bytes_consumed(
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..600,
        local in 0usize..11,
    ) {
        let mut input = handshake_bytes();
        input.extend(tail);
        let local = SocketType::ALL[local];
        let peak = feed(local, &input, chunk, Limits::default());
        prop_assert!(peak <= BASELINE + 3 * input.len(), "peak {} for {} bytes", peak, input.len());
    }

    /// The same from the very first octet (greeting garbage included).
    #[test]
    fn allocation_is_bounded_from_the_first_octet(
        input in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..100,
    ) {
        let peak = feed(SocketType::Dealer, &input, chunk, Limits::default());
        prop_assert!(peak <= BASELINE + 3 * input.len(), "peak {} for {} bytes", peak, input.len());
    }
}

#[test]
fn read_buffer_reserves_by_bytes_arrived_not_by_the_announced_length() {
    // Found by the connection_full fuzzer: a header announcing a large frame made `read_buffer()`
    // reserve 256 KiB at once. The reservation now follows what has arrived.
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(SocketType::Router), now);
    let mut input = handshake_bytes();
    FrameHeader::data(32 << 20, false).encode(&mut input);
    conn.handle_input(now, &input);
    while conn.poll_event().is_some() {}
    let before = conn.read_buffer().capacity();
    assert!(before <= 16 * 1024, "reserved {before} bytes for a 9-byte header");
    // As the body arrives the buffer grows geometrically, bounded by what arrived.
    let mut received = 0usize;
    while received < 4 << 20 {
        let buf = conn.read_buffer();
        let n = buf.capacity() - buf.len();
        assert!(
            buf.capacity() <= 2 * (received + 9) + 300 * 1024,
            "capacity {} at {received}",
            buf.capacity()
        );
        buf.extend(std::iter::repeat_n(0u8, n));
        conn.handle_read(now, n);
        received += n;
        assert_eq!(conn.poll_event(), None);
    }
}

#[test]
fn a_large_frame_buffer_runs_at_most_64_kib_ahead_of_its_bytes() {
    // A frame of 16 KiB or more is read into a buffer of its own size once `arrived × 2 + 64 KiB`
    // covers it: a header alone may make us allocate up to 64 KiB, never more.
    for (len, arrived, most) in [
        (64 * 1024, 0, 64 * 1024),
        (64 * 1024 + 1, 0, 0),
        (1 << 20, 0, 0),
        (1 << 20, 200 * 1024, 0),
        (1 << 20, 480 * 1024, 1 << 20),
    ] {
        let mut input = handshake_bytes();
        FrameHeader::data(len, false).encode(&mut input);
        input.extend(std::iter::repeat_n(7u8, arrived));
        let peak = feed(SocketType::Pull, &input, 1 << 20, Limits::default());
        assert!(peak <= BASELINE + most + 2 * input.len(), "frame of {len}, {arrived} arrived: peak {peak}");
    }
}
