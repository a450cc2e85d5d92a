//! A CURVE client `Connection` (fixed keys, `test-rng` generator reset per input) fed the fuzz input
//! as its server's whole byte stream, as libzmq's `test_connect_curve_fuzzer` feeds it (64-octet
//! greeting, 170-octet WELCOME frame, the READY frame, the rest) or in random chunks, with a fake
//! clock, sends of our own, and EOF at the end (reliability.md A-V11).
//!
//! Input layout: octet 0 configures our side (bits 0-3: socket type, index into `SocketType::ALL`
//! mod 11; bit 4: `.authenticate(true)`, which must change nothing on a client; bits 5-6: unused;
//! bit 7: libzmq's split rather than random chunks), octet 1 seeds the chunking, the clock, limits
//! and heartbeats; the rest is the server's stream.
//!
//! Invariants (`zmtp_fuzz::secure`): no panic; `Closed` exactly once and nothing after it; our HELLO
//! is the reference HELLO octet for octet (the generator replays); no INITIATE, and no
//! `HandshakeComplete`, unless the input holds the one valid WELCOME (from a real server, by
//! `examples/make_seeds_secure.rs`); INITIATE carries the reference cookie; never an ERROR (RFC 26:
//! a client does not send one) and never `Authenticate`; after the handshake only MESSAGE frames
//! with consecutive nonces from 3; timers fire only at their deadlines; peak heap within
//! 4 x (input length) + 256 KiB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zmtp_fuzz::alloc::Counting;
use zmtp_fuzz::secure::{run, Control, Role};

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let control = Control::curve(data[0]);
    run(Role::CurveClient, control, data[1], &data[2..]);
});
