//! A `Connection` past its handshake, fed the fuzz input as the peer's byte stream.
//!
//! Input layout: octet 0 picks the socket pair (bits 0-2: ours and the peer's type, bit 3: the peer
//! announces ZMTP 3.0 instead of 3.1), octet 1 seeds the chunking, the rest is the stream.
//!
//! The connection is brought to Ready with a valid NULL greeting and READY built by the public
//! encoders. Then the stream is fed twice, to two fresh connections: in one piece, and in chunks of
//! pseudo-random sizes through both input paths (`handle_input`, and `read_buffer` + `handle_read`),
//! draining `poll_event` and `take_transmit` after every step, with `handle_eof` at the end.
//!
//! Invariants: no panic; the events (Message/Subscribe/Cancel/Closed) are identical in both runs
//! (split-invariance); exactly one `Closed` ends each run (EOF is always given) and nothing follows
//! it; no `HandshakeComplete` after the handshake; subscriptions only reach PUB/XPUB; messages are
//! never empty; what we transmit is complete, well-formed frames, only PONGs and at most one ERROR.
#![no_main]

use std::time::Instant;

use bytes::BufMut;
use libfuzzer_sys::fuzz_target;
use zmtp::proto::{Connection, ConnectionConfig, Event, SocketType, Version};
use zmtp_fuzz::{check_transmit, Outbound, Rng};

/// (our type, the peer's type).
const PAIRS: [(SocketType, SocketType); 8] = [
    (SocketType::Dealer, SocketType::Router),
    (SocketType::XPub, SocketType::Sub),
    (SocketType::Pull, SocketType::Push),
    (SocketType::Router, SocketType::Dealer),
    (SocketType::Sub, SocketType::Pub),
    (SocketType::Pub, SocketType::XSub),
    (SocketType::Pair, SocketType::Pair),
    (SocketType::Rep, SocketType::Req),
];

struct Run {
    conn: Connection,
    events: Vec<Event>,
    closed: bool,
    errors_sent: usize,
}

impl Run {
    fn new(ours: SocketType, theirs: SocketType, peer_version: Version, now: Instant) -> Run {
        let mut conn = Connection::new(ConnectionConfig::new(ours), now);
        let hello = zmtp::proto::loopback::null_peer_opening(theirs, peer_version);
        conn.handle_input(now, &hello);
        match conn.poll_event() {
            Some(Event::HandshakeComplete(peer)) => assert_eq!(peer.socket_type, Some(theirs)),
            other => panic!("handshake did not complete: {other:?}"),
        }
        assert!(conn.is_ready());
        assert_eq!(conn.poll_event(), None);
        let out = conn.take_transmit();
        assert_eq!(check_transmit(&out, true, Outbound::Any), 0);
        Run { conn, events: Vec::new(), closed: false, errors_sent: 0 }
    }

    fn drain(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            assert!(!self.closed, "event after Closed: {ev:?}");
            match &ev {
                Event::HandshakeComplete(_) => panic!("second HandshakeComplete"),
                Event::Authenticate(_) => panic!("Authenticate after the handshake: {ev:?}"),
                Event::Message(m) => assert!(!m.is_empty(), "empty message"),
                Event::Subscribe(_) | Event::Cancel(_) => {
                    assert!(self.conn.config().socket_type().accepts_subscriptions(), "{ev:?}")
                }
                Event::Closed(_) => {
                    self.closed = true;
                    assert!(self.conn.is_closed());
                    assert_eq!(self.conn.poll_timeout(), None);
                }
            }
            self.events.push(ev);
        }
        assert_eq!(self.conn.is_closed(), self.closed, "is_closed() without a Closed event");
        let out = self.conn.take_transmit();
        if self.errors_sent > 0 {
            assert!(out.is_empty(), "bytes queued after our ERROR");
        }
        self.errors_sent += check_transmit(&out, false, Outbound::RepliesOnly);
        assert!(self.errors_sent <= 1, "more than one ERROR sent");
    }

    fn finish(mut self) -> Vec<Event> {
        self.conn.handle_eof();
        self.drain();
        assert!(self.closed, "EOF given and no Closed event");
        self.events
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (ours, theirs) = PAIRS[usize::from(data[0] & 7)];
    let peer_version = if data[0] & 8 != 0 { Version::V3_0 } else { Version::V3_1 };
    let stream = &data[2..];
    let now = Instant::now();

    let mut whole = Run::new(ours, theirs, peer_version, now);
    whole.conn.handle_input(now, stream);
    whole.drain();
    let whole = whole.finish();

    let mut rng = Rng::new((u64::from(data[1]) << 32) | stream.len() as u64);
    let mut split = Run::new(ours, theirs, peer_version, now);
    let mut rest = stream;
    while !rest.is_empty() {
        let n = rng.chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(n);
        if rng.below(2) == 0 {
            split.conn.handle_input(now, chunk);
        } else {
            split.conn.read_buffer().put_slice(chunk);
            split.conn.handle_read(now, chunk.len());
        }
        rest = tail;
        // Sometimes let a few chunks pile up before decoding.
        if rng.below(4) != 0 {
            split.drain();
        }
    }
    split.drain();
    let split = split.finish();

    assert_eq!(whole, split, "events depend on how the stream was split");
});
