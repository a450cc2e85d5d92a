//! A `Connection` fed the fuzz input as the peer's whole byte stream, greeting included, with random
//! chunking, a fake clock and timer calls, sends of our own, and EOF at the end.
//!
//! Input layout: octet 0 configures our side (bits 0-3: socket type, index into `SocketType::ALL`
//! mod 11; bit 4: as-server; bit 5: small limits; bit 6: heartbeats; bit 7: we announce ZMTP 3.0),
//! octet 1 seeds the chunking and the clock, the rest is the peer's stream.
//!
//! Invariants:
//! - no panic;
//! - `poll_event` reports exactly one `Closed` (EOF is always given at the end) and nothing after it;
//!   afterwards `is_closed()`, no deadline, sends fail with `SendError::Closed`;
//! - at most one `HandshakeComplete`, before any Message/Subscribe/Cancel, and `is_ready()` then;
//!   sends before it fail with `SendError::NotReady`;
//! - timers: `handle_timeout(t)` before `poll_timeout()` does nothing; at or after it, the deadline
//!   moves past `t` (or the connection closes);
//! - what we transmit is our greeting, then complete well-formed frames, at most one ERROR, last;
//! - memory: the peak of live heap bytes while the connection runs stays within
//!   4 x (input length) + 256 KiB above the baseline taken just before the connection is created.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use libfuzzer_sys::fuzz_target;
use zmtp::proto::{
    Connection, ConnectionConfig, Event, HeartbeatConfig, Limits, SendError, SocketType, Version,
};
use zmtp::Msg;
use zmtp_fuzz::{check_transmit, Outbound, Rng};

#[global_allocator]
static ALLOC: zmtp_fuzz::alloc::Counting = zmtp_fuzz::alloc::Counting;

/// Heap allowed per input byte, and on top of that.
const BYTES_PER_INPUT_BYTE: usize = 4;
const SLACK: usize = 256 * 1024;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

struct Harness {
    conn: Connection,
    rng: Rng,
    /// The fake clock: `epoch() + elapsed`.
    elapsed: Duration,
    handshake_done: bool,
    closed: bool,
    first_transmit: bool,
    errors_sent: usize,
}

impl Harness {
    fn now(&self) -> Instant {
        epoch() + self.elapsed
    }

    fn drain(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            assert!(!self.closed, "event after Closed: {ev:?}");
            match ev {
                Event::HandshakeComplete(_) => {
                    assert!(!self.handshake_done, "second HandshakeComplete");
                    assert!(self.conn.is_ready(), "HandshakeComplete but not ready");
                    assert!(self.conn.peer().is_some());
                    self.handshake_done = true;
                }
                Event::Message(m) => {
                    assert!(self.handshake_done, "message before the handshake");
                    assert!(!m.is_empty(), "empty message");
                }
                Event::Subscribe(_) | Event::Cancel(_) => {
                    assert!(self.handshake_done, "subscription before the handshake");
                    assert!(self.conn.config().socket_type().accepts_subscriptions());
                }
                Event::Authenticate(credentials) => {
                    panic!("Authenticate without .authenticate(true): {credentials:?}")
                }
                Event::Closed(_) => {
                    self.closed = true;
                    assert!(self.conn.is_closed());
                    assert!(!self.conn.is_ready());
                    assert_eq!(self.conn.poll_timeout(), None);
                }
            }
        }
        assert_eq!(self.conn.is_closed(), self.closed, "is_closed() without a Closed event");
        self.drain_transmit();
    }

    fn drain_transmit(&mut self) {
        let out = self.conn.take_transmit();
        if self.errors_sent > 0 {
            assert!(out.is_empty(), "bytes queued after our ERROR");
        }
        let with_greeting = std::mem::take(&mut self.first_transmit);
        self.errors_sent += check_transmit(&out, with_greeting, Outbound::Any);
        assert!(self.errors_sent <= 1, "more than one ERROR sent");
    }

    fn feed(&mut self, chunk: &[u8]) {
        let now = self.now();
        if self.rng.below(2) == 0 {
            self.conn.handle_input(now, chunk);
        } else {
            self.conn.read_buffer().put_slice(chunk);
            self.conn.handle_read(now, chunk.len());
        }
    }

    /// Advances the fake clock (sometimes exactly to the next deadline) and fires the timers.
    fn tick(&mut self) {
        zmtp_fuzz::tick(&mut self.conn, &mut self.rng, epoch(), &mut self.elapsed);
        self.drain();
    }

    /// Sometimes sends something of our own, checking the result against the state.
    fn maybe_send(&mut self) {
        if self.rng.below(8) != 0 {
            return;
        }
        let ready = self.conn.is_ready();
        let closed = self.conn.is_closed();
        if self.rng.below(2) == 0 {
            let msg = Msg::from(vec![Bytes::from_static(b"ping"), Bytes::from_static(&[0x5a; 300])]);
            match self.conn.send_message(msg) {
                Ok(()) => assert!(ready),
                Err(SendError::NotReady(_)) => assert!(!ready && !closed),
                Err(SendError::Closed(_)) => assert!(closed),
                Err(e) => panic!("send_message: {e:?}"),
            }
        } else {
            match self.conn.send_subscribe(Bytes::from_static(b"topic")) {
                Ok(()) => assert!(ready),
                Err(SendError::NotReady(_)) => assert!(!ready && !closed),
                Err(SendError::Closed(_)) => assert!(closed),
                Err(e) => panic!("send_subscribe: {e:?}"),
            }
        }
        self.drain_transmit();
    }
}

fn config(bits: u8, rng: &mut Rng) -> ConnectionConfig {
    let ours = SocketType::ALL[usize::from(bits & 0x0f) % SocketType::ALL.len()];
    let mut cfg = ConnectionConfig::new(ours).as_server(bits & 0x10 != 0);
    if bits & 0x20 != 0 {
        cfg = cfg.limits(Limits {
            max_frame_size: 1 + rng.below(512),
            max_message_size: 1 + rng.below(2048),
            max_frames_per_message: 1 + rng.below(16) as u32,
            max_command_size: 64 + rng.below(512),
        });
    }
    if bits & 0x40 != 0 {
        cfg = cfg.heartbeat(HeartbeatConfig {
            interval: Some(Duration::from_millis(1 + rng.below(5_000))),
            timeout: (rng.below(2) == 0).then(|| Duration::from_millis(1 + rng.below(10_000))),
            ttl: (rng.below(2) == 0).then(|| Duration::from_millis(rng.below(100_000))),
        });
    }
    if bits & 0x80 != 0 {
        cfg = cfg.version(Version::V3_0);
    }
    if rng.below(4) == 0 {
        cfg = cfg.handshake_timeout(None);
    }
    cfg
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let stream = &data[2..];
    let mut rng = Rng::new((u64::from(data[1]) << 32) | stream.len() as u64);
    let cfg = config(data[0], &mut rng);
    let start = epoch();

    let baseline = zmtp_fuzz::alloc::start();
    let conn = Connection::new(cfg, start);
    let mut h = Harness {
        conn,
        rng,
        elapsed: Duration::ZERO,
        handshake_done: false,
        closed: false,
        first_transmit: true,
        errors_sent: 0,
    };
    h.maybe_send();
    h.drain();

    let mut rest = stream;
    while !rest.is_empty() {
        let n = h.rng.chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(n);
        h.feed(chunk);
        rest = tail;
        if h.rng.below(4) != 0 {
            h.drain();
        }
        if h.rng.below(8) == 0 {
            h.drain();
            h.tick();
        }
        h.maybe_send();
    }
    h.drain();
    if h.rng.below(2) == 0 {
        h.tick();
    }
    h.conn.handle_eof();
    h.drain();
    assert!(h.closed, "EOF given and no Closed event");

    // Closed is final.
    let now = h.now() + Duration::from_secs(3600);
    h.conn.handle_input(now, b"\xff\x00");
    h.conn.handle_timeout(now);
    assert_eq!(h.conn.poll_event(), None, "event after Closed");
    assert_eq!(h.conn.poll_timeout(), None);
    assert!(matches!(h.conn.send_message(Msg::from("x")), Err(SendError::Closed(_))));
    h.drain_transmit();

    let peak = zmtp_fuzz::alloc::peak_since(baseline);
    let bound = BYTES_PER_INPUT_BYTE * data.len() + SLACK;
    assert!(
        peak <= bound,
        "peak heap {peak} bytes above baseline for {} input bytes (bound {bound})",
        data.len()
    );
});
