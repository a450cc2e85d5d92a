//! A PLAIN (RFC 24) `Connection`, server or client, fed the fuzz input as its peer's whole byte
//! stream (frame by frame as libzmq's fuzzers split it, or in random chunks), with a fake clock,
//! sends of our own, an authenticator that allows or denies, and EOF at the end.
//!
//! Input layout: octet 0 configures our side (bits 0-3: socket type, index into `SocketType::ALL`
//! mod 11; bit 4: server (else client); bit 5: `.authenticate(true)`; bit 6: the authenticator
//! allows (else denies); bit 7: libzmq's split rather than random chunks), octet 1 seeds the
//! chunking, the clock, limits, heartbeats, the client's credentials and the deny status; the rest is
//! the peer's stream.
//!
//! Invariants (`zmtp_fuzz::secure`): no panic; `Closed` exactly once and nothing after it; the server
//! asks about exactly the user name and password of a HELLO in the input, only when asked to, once;
//! WELCOME only after a HELLO, READY only after an INITIATE; after a deny,
//! `Closed(AuthenticationFailed)`, an ERROR and no `HandshakeComplete`; the client sends its HELLO
//! with its credentials, INITIATE only after a WELCOME, never an ERROR; timers fire only at their
//! deadlines; peak heap within 4 x (input length) + 256 KiB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zmtp_fuzz::alloc::Counting;
use zmtp_fuzz::secure::{run, Control};

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (role, control) = Control::plain(data[0]);
    run(role, control, data[1], &data[2..]);
});
