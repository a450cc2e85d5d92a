//! Helpers shared by the fuzz targets: a tiny deterministic PRNG for chunking and a checker for the
//! bytes a connection transmits. The peer's side of a NULL handshake comes from
//! `zmtp::proto::loopback::null_peer_opening`. [`secure`] holds the CURVE and PLAIN harness and the
//! real handshakes their seeds come from; [`alloc`] a counting allocator for memory bounds.

pub mod alloc;
pub mod secure;

use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::proto::{Command, Connection, FrameHeader, Greeting, MechanismName};

/// xorshift64*: deterministic, allocation-free, good enough to derive split points from a seed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from fuzz-controlled bytes (never the all-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// The size of the next chunk to feed, at most `remaining` (> 0): mostly tiny chunks (so every
    /// header and length field gets split), sometimes larger ones, sometimes everything left.
    pub fn chunk_len(&mut self, remaining: usize) -> usize {
        let max = match self.below(20) {
            0..=9 => 4,
            10..=15 => 32,
            16..=18 => 512,
            _ => remaining,
        };
        (1 + self.below(max as u64) as usize).min(remaining)
    }
}

/// What a connection may transmit after its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Anything well-formed: READY, commands, our own data frames.
    Any,
    /// Only commands that are answers to the peer (PONG, ERROR): used once our READY and greeting
    /// are out and we send no messages ourselves.
    RepliesOnly,
}

/// Checks one drained `take_transmit()` buffer: the connection only ever queues whole units, so the
/// buffer is (an optional greeting, if `with_greeting`, then) a sequence of complete, well-formed
/// frames. Returns how many ERROR commands it held (the connection must send at most one, and only
/// as its last frame).
pub fn check_transmit(mut out: &[u8], with_greeting: bool, allowed: Outbound) -> usize {
    if with_greeting {
        assert!(out.len() >= 64, "first transmit holds less than a greeting: {} bytes", out.len());
        let g = Greeting::decode(&out[..64]).expect("our greeting decodes").expect("64 octets decode");
        assert_eq!(g.mechanism, MechanismName::NULL);
        out = &out[64..];
    }
    let mut errors = 0;
    while !out.is_empty() {
        assert_eq!(errors, 0, "a frame was queued after our ERROR command");
        let (h, n) = FrameHeader::decode(out)
            .expect("our frame header is valid")
            .expect("take_transmit returned a partial frame header");
        let len = usize::try_from(h.len).expect("frame length fits");
        assert!(out.len() - n >= len, "take_transmit returned a partial frame body");
        // Canonical: the long form only for bodies over 255 octets.
        assert_eq!(h.flags.is_long(), len > 255, "non-canonical frame header {:?}", h);
        let body = &out[n..n + len];
        if h.flags.is_command() {
            let cmd = Command::decode(Bytes::copy_from_slice(body)).expect("our command decodes");
            match (&cmd, allowed) {
                (Command::Pong { context }, _) => {
                    assert!(context.len() <= 16, "PONG context over 16 octets")
                }
                (Command::Error { reason }, _) => {
                    assert!(reason.len() <= 255);
                    errors += 1;
                }
                (_, Outbound::Any) => {}
                (other, Outbound::RepliesOnly) => panic!("unexpected outbound command {other:?}"),
            }
        } else {
            assert_eq!(allowed, Outbound::Any, "unexpected outbound data frame");
        }
        out = &out[n + len..];
    }
    errors
}

/// Advances a harness's fake clock (`base + elapsed`) by a random step, sometimes exactly to the
/// connection's next deadline, and fires its timers, checking that none fires early and that a due
/// deadline moves on. The caller drains the connection afterwards.
pub fn tick(conn: &mut Connection, rng: &mut Rng, base: Instant, elapsed: &mut Duration) {
    let deadline = conn.poll_timeout();
    let step = match rng.below(8) {
        0 => Duration::ZERO,
        1..=3 => Duration::from_millis(rng.below(200)),
        4 | 5 => Duration::from_millis(rng.below(5_000)),
        6 => Duration::from_secs(rng.below(120)),
        _ => match deadline {
            Some(d) => d.saturating_duration_since(base + *elapsed),
            None => Duration::from_millis(rng.below(1_000)),
        },
    };
    *elapsed += step;
    let now = base + *elapsed;
    let queued = conn.transmit().len();
    conn.handle_timeout(now);
    match deadline {
        Some(d) if d <= now => {
            if let Some(next) = conn.poll_timeout() {
                assert!(next > now, "deadline {d:?} fired at {now:?} but the next one is {next:?}");
            }
        }
        _ => {
            assert_eq!(conn.transmit().len(), queued, "a timer fired before its deadline");
            assert_eq!(conn.poll_event(), None, "a timer fired before its deadline");
        }
    }
}
