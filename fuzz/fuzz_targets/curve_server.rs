//! A CURVE server `Connection` (fixed keys, `test-rng` generator reset per input) fed the fuzz input
//! as its client's whole byte stream, as libzmq's `test_bind_curve_fuzzer` feeds it (64-octet
//! greeting, 202-octet HELLO frame, the INITIATE frame, the rest) or in random chunks, with a fake
//! clock, sends of our own, an authenticator that allows or denies, and EOF at the end
//! (reliability.md A-V11).
//!
//! Input layout: octet 0 configures our side (bits 0-3: socket type, index into `SocketType::ALL`
//! mod 11; bit 4: `.authenticate(true)`; bit 5: the authenticator allows (else denies); bit 6:
//! unused; bit 7: libzmq's split rather than random chunks), octet 1 seeds the chunking, the clock,
//! limits, heartbeats and the deny status; the rest is the client's stream.
//!
//! Invariants (`zmtp_fuzz::secure`): no panic; `Closed` exactly once (EOF is always given) and nothing
//! after it; no WELCOME unless the input holds the one valid HELLO, no READY, `Authenticate` or
//! `HandshakeComplete` unless it also holds the cookie (libFuzzer cannot forge a box: only the seeds,
//! made from a real client by `examples/make_seeds_secure.rs`, get past HELLO); `Authenticate` only
//! when asked for, once, naming a seed's client key; after a deny, `Closed(AuthenticationFailed)` and
//! no `HandshakeComplete`; after the handshake only MESSAGE frames with consecutive nonces go out;
//! an authenticator answer nobody asked for changes nothing; timers fire only at their deadlines;
//! peak heap within 4 x (input length) + 256 KiB.
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
    run(Role::CurveServer, control, data[1], &data[2..]);
});
