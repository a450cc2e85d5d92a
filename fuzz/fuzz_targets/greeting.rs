//! `Greeting::decode` on arbitrary bytes.
//!
//! Invariants:
//! - never panics;
//! - split-invariance over prefixes: every prefix shorter than 64 octets is `Ok(None)` until the first
//!   prefix that errs, and from then on every longer prefix errs with the same error; no prefix
//!   shorter than 64 octets ever yields a greeting;
//! - octets past the 64th never matter;
//! - a decoded greeting re-encodes to 64 octets that decode to the same greeting, keep the fields the
//!   decoder reads (signature ends, version, mechanism, padding octet 8), and encode canonically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zmtp::proto::{Greeting, GREETING_LEN};

fuzz_target!(|data: &[u8]| {
    // Only the first 64 octets can matter; a few more check that trailing bytes are ignored.
    let data = &data[..data.len().min(GREETING_LEN + 8)];

    let mut first_err = None;
    for n in 0..=data.len().min(GREETING_LEN - 1) {
        let r = Greeting::decode(&data[..n]);
        match (&first_err, r) {
            (None, Ok(None)) => {}
            (None, Ok(Some(g))) => panic!("prefix of {n} octets decoded to a greeting: {g:?}"),
            (None, Err(e)) => first_err = Some(e),
            (Some(e), r) => assert_eq!(r.as_ref(), Err(e), "prefix {n} after an error at a shorter prefix"),
        }
    }

    let full = Greeting::decode(data);
    if data.len() >= GREETING_LEN {
        assert_eq!(full, Greeting::decode(&data[..GREETING_LEN]), "octets past 64 changed the result");
    }
    if let Some(e) = &first_err {
        assert_eq!(full.as_ref(), Err(e), "a longer input recovered from an error");
    }
    match full {
        Ok(None) => assert!(data.len() < GREETING_LEN, "64 octets and still Ok(None)"),
        Ok(Some(g)) => {
            assert!(data.len() >= GREETING_LEN);
            assert_eq!(g.encoded_len(), GREETING_LEN);
            let mut enc = Vec::with_capacity(GREETING_LEN);
            g.encode(&mut enc);
            assert_eq!(enc.len(), GREETING_LEN);
            assert_eq!(Greeting::decode(&enc), Ok(Some(g)), "re-encoded greeting decodes differently");
            // The fields the decoder reads come back as they were sent.
            assert_eq!(enc[0], 0xff);
            assert_eq!(&enc[1..9], &data[1..9], "padding (kept as sent, libzmq-style)");
            assert_eq!(enc[9] & 1, 1);
            assert_eq!(&enc[10..32], &data[10..32], "version and mechanism");
            assert_eq!(enc[32] != 0, data[32] != 0, "as-server");
            // Canonical: zero filler.
            assert!(enc[33..].iter().all(|&b| b == 0));
            assert!(enc[32] <= 1);
            let mut again = Vec::with_capacity(GREETING_LEN);
            Greeting::decode(&enc).unwrap().unwrap().encode(&mut again);
            assert_eq!(enc, again, "encoding is not a fixed point");
        }
        Err(_) => assert!(first_err.is_some() || data.len() >= GREETING_LEN),
    }
});
