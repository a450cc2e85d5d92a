//! Property tests of the protocol core: decoding is the same however the input is split, encoding
//! round-trips, and the codecs are canonical.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use zmtp::proto::{
    Command, Connection, ConnectionConfig, Event, FrameHeader, Greeting, Metadata, SocketType, Version,
};
use zmtp::Msg;

/// A valid greeting and READY from a peer of type `peer`.
fn handshake_bytes(peer: SocketType) -> Vec<u8> {
    zmtp::proto::loopback::null_peer_opening(peer, Version::V3_1)
}

/// Runs `stream` through a fresh connection in the given chunks, returning every event and every
/// byte it transmitted. The transmit queue is drained only at the end: how many PONGs are queued
/// depends on how far the writer got (at most one is pending), which is not a property of the input.
fn run(local: SocketType, stream: &[u8], cuts: &[usize], eof: bool) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(local), now);
    let mut events = Vec::new();
    let mut sent = conn.take_transmit();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    points.sort_unstable();
    points.push(stream.len());
    for end in points {
        if end < start {
            continue;
        }
        conn.handle_input(now, &stream[start..end]);
        start = end;
        while let Some(ev) = conn.poll_event() {
            events.push(ev);
        }
    }
    if eof {
        conn.handle_eof();
        while let Some(ev) = conn.poll_event() {
            events.push(ev);
        }
    }
    sent.extend(conn.take_transmit());
    (events, sent)
}

/// Pieces of a post-handshake stream: valid frames and commands, plus raw garbage now and then.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // data frames, short and long, with and without MORE
        (any::<bool>(), prop_oneof![0usize..8, 250usize..262, 1000usize..1100]).prop_map(|(more, len)| {
            let mut v = Vec::new();
            FrameHeader::data(len, more).encode(&mut v);
            v.extend((0..len).map(|i| i as u8));
            v
        }),
        // PING (possibly between the frames of a message), PONG, SUBSCRIBE, unknown commands
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(ttl, ctx)| {
            let mut v = Vec::new();
            Command::Ping { ttl_deciseconds: ttl, context: Bytes::from(ctx) }.encode(&mut v);
            v
        }),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|t| {
            let mut v = Vec::new();
            Command::Subscribe(Bytes::from(t)).encode(&mut v);
            v
        }),
        Just(b"\x04\x06\x05BOGUS".to_vec()),
        Just(b"\x04\x05\x04PONG".to_vec()),
        // a little garbage
        proptest::collection::vec(any::<u8>(), 1..6),
    ]
}

fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..24).prop_map(|pieces| {
        let mut v = handshake_bytes(SocketType::Sub);
        for p in pieces {
            v.extend(p);
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// decode(any split of S) == decode(S), for valid and invalid streams alike (A-F13).
    #[test]
    fn decoding_is_the_same_however_the_input_is_split(
        stream in stream_strategy(),
        cuts in proptest::collection::vec(0usize..4000, 0..40),
        eof in any::<bool>(),
    ) {
        let whole = run(SocketType::XPub, &stream, &[], eof);
        let split = run(SocketType::XPub, &stream, &cuts, eof);
        prop_assert_eq!(&whole, &split);
    }

    /// The same, byte by byte (A-G13).
    #[test]
    fn decoding_one_byte_at_a_time_matches(stream in stream_strategy()) {
        let whole = run(SocketType::Pub, &stream, &[], true);
        let cuts: Vec<usize> = (0..stream.len()).collect();
        let split = run(SocketType::Pub, &stream, &cuts, true);
        prop_assert_eq!(whole, split);
    }

    /// Arbitrary bytes from the very first octet: split-invariant, never a panic.
    #[test]
    fn arbitrary_input_is_split_invariant(
        stream in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(0usize..200, 0..10),
    ) {
        let whole = run(SocketType::Router, &stream, &[], true);
        let split = run(SocketType::Router, &stream, &cuts, true);
        prop_assert_eq!(whole, split);
    }

    /// encode → decode: any message sent by one connection arrives intact at the other, and every
    /// body arrives as sent.
    #[test]
    fn messages_round_trip_between_two_connections(
        frames in proptest::collection::vec(
            prop_oneof![0usize..4, 250usize..260, 60_000usize..70_000].prop_map(|n| vec![0xa5u8; n]),
            1..8,
        ),
        cuts in proptest::collection::vec(0usize..200_000, 0..8),
    ) {
        let now = Instant::now();
        let mut a = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
        let mut b = Connection::new(ConnectionConfig::new(SocketType::Router), now);
        zmtp::proto::loopback::exchange(&mut a, &mut b, now);
        prop_assert!(a.is_ready() && b.is_ready());
        let msg = Msg::from(frames.into_iter().map(Bytes::from).collect::<Vec<_>>());
        a.send_message(msg.clone()).unwrap();
        let wire = a.take_transmit();
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(wire.len())).collect();
        points.sort_unstable();
        points.push(wire.len());
        let mut start = 0;
        let mut got = Vec::new();
        for end in points {
            b.handle_input(now, &wire[start..end]);
            start = end;
            while let Some(ev) = b.poll_event() {
                got.push(ev);
            }
        }
        prop_assert_eq!(got, vec![Event::Message(msg)]);
    }

    /// Commands re-encode to the same bytes they were decoded from (canonical form), whatever the name.
    #[test]
    fn commands_round_trip(
        kind in 0u8..6,
        data in proptest::collection::vec(any::<u8>(), 0..300),
        ttl in any::<u16>(),
    ) {
        let data = Bytes::from(data);
        let cmd = match kind {
            0 => Command::Subscribe(data),
            1 => Command::Cancel(data),
            2 => Command::Ping { ttl_deciseconds: ttl, context: data.slice(..data.len().min(16)) },
            3 => Command::Pong { context: data.slice(..data.len().min(16)) },
            4 => Command::Error { reason: data.slice(..data.len().min(255)) },
            _ => Command::Other { name: Bytes::from_static(b"HELLO"), data },
        };
        let mut wire = Vec::new();
        cmd.encode(&mut wire);
        prop_assert_eq!(wire.len(), cmd.encoded_len());
        let (header, n) = FrameHeader::decode(&wire).unwrap().unwrap();
        prop_assert!(header.flags.is_command());
        prop_assert_eq!(header.flags.is_long(), wire.len() - n > 255);
        let decoded = Command::decode(Bytes::copy_from_slice(&wire[n..])).unwrap();
        prop_assert_eq!(decoded, cmd);
    }

    /// Metadata decodes only what it can re-encode byte for byte.
    #[test]
    fn metadata_is_canonical(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let bytes = Bytes::from(data);
        if let Ok(md) = Metadata::decode(&bytes) {
            let mut again = Vec::new();
            md.encode(&mut again);
            prop_assert_eq!(&again[..], &bytes[..]);
        }
    }

    /// Greetings decode only to something that re-encodes to an equal greeting.
    #[test]
    fn greetings_are_canonical(data in proptest::collection::vec(any::<u8>(), 64)) {
        let mut data = data;
        data[0] = 0xff;
        data[9] |= 1;
        data[10] = data[10].max(3);
        let g = Greeting::decode(&data).unwrap().unwrap();
        let mut again = Vec::new();
        g.encode(&mut again);
        prop_assert_eq!(Greeting::decode(&again).unwrap().unwrap(), g);
    }
}

/// Feeds `stream` the way a runtime does: each read takes what [`Connection::read_buffer`] offers
/// (its spare capacity, capped at the next of `reads`), then [`Connection::handle_read`]. Where
/// `overfill` says so, a read writes `extra` octets past the room offered, as a careless caller
/// might. Returns every event.
fn run_via_read_buffer(stream: &[u8], reads: &[usize], overfill: &[bool], extra: usize) -> Vec<Event> {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
    let mut events = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let buf = conn.read_buffer();
        let room = buf.capacity() - buf.len();
        let mut n = room.min(reads[i % reads.len()].max(1)).min(rest.len());
        if overfill[i % overfill.len()] || room == 0 {
            n = (n + extra.max(1)).min(rest.len());
        }
        buf.extend_from_slice(&rest[..n]);
        conn.handle_read(now, n);
        rest = &rest[n..];
        i += 1;
        while let Some(ev) = conn.poll_event() {
            events.push(ev);
        }
    }
    conn.handle_eof();
    while let Some(ev) = conn.poll_event() {
        events.push(ev);
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Large frames are read into buffers of their own (from 16 KiB on): through the runtime's read
    /// path, with any read sizes and with callers writing past the room offered, the events are those
    /// of feeding the whole stream at once, and every body arrives as sent.
    #[test]
    fn large_frames_decode_the_same_through_the_read_buffer(
        frames in proptest::collection::vec(
            (
                any::<bool>(),
                prop_oneof![0usize..40, 16_380usize..16_390, 65_530usize..65_545, 100_000usize..100_010],
                any::<u8>(),
            ),
            1..10,
        ),
        reads in proptest::collection::vec(1usize..140_000, 1..12),
        overfill in proptest::collection::vec(any::<bool>(), 1..5),
        extra in 0usize..70_000,
    ) {
        let mut stream = handshake_bytes(SocketType::Push);
        for (more, len, fill) in &frames {
            FrameHeader::data(*len, *more).encode(&mut stream);
            stream.extend((0..*len).map(|i| fill.wrapping_add(i as u8)));
        }
        let whole = run(SocketType::Pull, &stream, &[], true).0;
        let via = run_via_read_buffer(&stream, &reads, &overfill, extra);
        prop_assert_eq!(&whole, &via);
        // The last message is cut off only if it ends with MORE; the others all arrive.
        let complete = frames.iter().filter(|f| !f.0).count();
        let messages = whole.iter().filter(|e| matches!(e, Event::Message(_))).count();
        prop_assert_eq!(messages, complete);
    }
}
