//! The relay's request and response parsers on arbitrary multipart messages.
//!
//! Invariants:
//! - `parse_request` never panics; a `Good` request obeys every rule of `docs/relay-protocol.md` §1
//!   (envelope of 0 to 32 non-empty frames then the delimiter, type 0x07, request_id 1 to 64 bytes, a UTF-8
//!   ticker of at most 256 bytes whose prefix ends at its first `:` with something on both sides, params at
//!   most 64 KiB); a `Bad` one echoes a request_id of at most 64 bytes, and a reason;
//! - `parse_response` accepts exactly the messages with type 0x02 and status `OK`, `ERROR` or `PARTIAL`
//!   (protocol 1.1), byte for byte.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use relay::requests::{
    parse_request, parse_response, Request, MAX_ENVELOPE, MAX_ENVELOPE_FRAME, MAX_PARAMS, MAX_REQUEST_ID,
    MAX_TICKER,
};

fuzz_target!(|parts: Vec<Vec<u8>>| {
    let frames: Vec<Bytes> = parts.into_iter().map(Bytes::from).collect();
    match parse_request(&frames) {
        Request::NoDelimiter => assert!(frames.iter().all(|f| !f.is_empty())),
        Request::EnvelopeTooDeep => {
            let at = frames.iter().position(|f| f.is_empty()).expect("a delimiter");
            assert!(at > MAX_ENVELOPE);
        }
        Request::EnvelopeFrameTooLong => {
            let at = frames.iter().position(|f| f.is_empty()).expect("a delimiter");
            assert!(at <= MAX_ENVELOPE && frames[..at].iter().any(|f| f.len() > MAX_ENVELOPE_FRAME));
        }
        Request::Bad { envelope, request_id, reason } => {
            assert!(envelope <= MAX_ENVELOPE && frames[envelope].is_empty());
            assert!(request_id.len() <= MAX_REQUEST_ID);
            assert!(!reason.is_empty());
        }
        Request::Good { envelope, request_id, prefix, ticker, params } => {
            assert!(envelope <= MAX_ENVELOPE && frames[envelope].is_empty());
            assert!(frames[..envelope].iter().all(|f| !f.is_empty() && f.len() <= MAX_ENVELOPE_FRAME));
            let body = &frames[envelope + 1..];
            assert_eq!(body.len(), 4);
            assert_eq!(&body[0][..], &[0x07]);
            assert!(!request_id.is_empty() && request_id.len() <= MAX_REQUEST_ID);
            assert!(ticker.len() <= MAX_TICKER && std::str::from_utf8(&ticker).is_ok());
            assert!(params.len() <= MAX_PARAMS);
            assert!(prefix.len() >= 2 && prefix.ends_with(b":") && ticker.starts_with(&prefix));
            assert!(!prefix[..prefix.len() - 1].contains(&b':'));
            assert!(ticker.len() > prefix.len());
        }
    }
    let valid = frames.len() >= 4
        && frames[1][..] == [0x02]
        && (frames[3][..] == *b"OK" || frames[3][..] == *b"ERROR" || frames[3][..] == *b"PARTIAL");
    assert_eq!(parse_response(&frames).is_some(), valid);
});
