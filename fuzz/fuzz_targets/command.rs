//! `Command::decode` on an arbitrary command body, and `Command::encode` on arbitrary commands.
//!
//! Invariants, for every body that decodes to a command `c`:
//! - `c.encode()` writes exactly `c.encoded_len()` octets: a canonical command frame header (short
//!   form up to 255 octets, long above, COMMAND flag, no MORE) and a body;
//! - that body decodes to `c` again, and is the input byte-for-byte (the decoder keeps everything:
//!   metadata in wire order, an ERROR reason of at most 255 octets, a PING context as-is);
//!
//! and for every command built from the input by `arbitrary` (a reason longer than 255, a PING context
//! longer than 16, metadata with repeated names…), encoding and decoding gives the command back, with
//! an ERROR reason cut to 255 octets.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zmtp::proto::{Command, FrameHeader, Metadata};

/// A command as `arbitrary` builds it, turned into a valid [`Command`] by [`Spec::build`].
#[derive(Debug, Arbitrary)]
enum Spec {
    Ready(Vec<(Vec<u8>, Vec<u8>)>),
    Error(Vec<u8>),
    Subscribe(Vec<u8>),
    Cancel(Vec<u8>),
    Ping(u16, Vec<u8>),
    Pong(Vec<u8>),
    Other(Vec<u8>, Vec<u8>),
}

const KNOWN: [&[u8]; 6] = [b"READY", b"ERROR", b"SUBSCRIBE", b"CANCEL", b"PING", b"PONG"];

impl Spec {
    /// The command to encode, and the command decoding must give back.
    fn build(self) -> Option<(Command, Command)> {
        Some(match self {
            Spec::Ready(props) => {
                let mut md = Metadata::new();
                for (mut name, value) in props {
                    name.truncate(255);
                    if !name.is_empty() {
                        md.insert(name, value);
                    }
                }
                (Command::Ready(md.clone()), Command::Ready(md))
            }
            Spec::Error(reason) => {
                let cut = Bytes::copy_from_slice(&reason[..reason.len().min(255)]);
                (Command::Error { reason: Bytes::from(reason) }, Command::Error { reason: cut })
            }
            Spec::Subscribe(t) => (Command::Subscribe(t.clone().into()), Command::Subscribe(t.into())),
            Spec::Cancel(t) => (Command::Cancel(t.clone().into()), Command::Cancel(t.into())),
            Spec::Ping(ttl_deciseconds, context) => {
                let c = Command::Ping { ttl_deciseconds, context: context.into() };
                (c.clone(), c)
            }
            Spec::Pong(context) => {
                let c = Command::Pong { context: context.into() };
                (c.clone(), c)
            }
            Spec::Other(name, data) => {
                // Names are 1..=255 ALPHA octets; a known name would decode as that command.
                let name: Vec<u8> = name
                    .into_iter()
                    .take(255)
                    .map(|b| if b.is_ascii_alphabetic() { b } else { b'X' })
                    .collect();
                if name.is_empty() || KNOWN.contains(&&name[..]) {
                    return None;
                }
                let c = Command::Other { name: name.into(), data: data.into() };
                (c.clone(), c)
            }
        })
    }
}

/// Encodes `c` as a frame, checks the header, and returns the body.
fn encode_frame(c: &Command) -> Vec<u8> {
    let mut frame = Vec::with_capacity(c.encoded_len());
    c.encode(&mut frame);
    assert_eq!(frame.len(), c.encoded_len(), "encoded_len disagrees with encode for {c:?}");
    let (h, n) = FrameHeader::decode(&frame).expect("valid header").expect("complete header");
    assert!(h.flags.is_command() && !h.flags.has_more(), "flags {:?}", h.flags);
    let body_len = frame.len() - n;
    assert_eq!(h.len, body_len as u64, "header length vs body");
    assert_eq!(h.flags.is_long(), body_len > 255, "non-canonical header for a {body_len}-octet body");
    assert_eq!(n, if body_len > 255 { 9 } else { 2 });
    frame.drain(..n);
    frame
}

fuzz_target!(|data: &[u8]| {
    // Decode path.
    if let Ok(c) = Command::decode(Bytes::copy_from_slice(data)) {
        let body = encode_frame(&c);
        let again = Command::decode(Bytes::from(body.clone())).expect("re-encoded command decodes");
        assert_eq!(again, c, "decode(encode(c)) != c");
        assert_eq!(body, data, "re-encoded body differs from the input");
        assert_eq!(c.name(), &data[1..1 + usize::from(data[0])]);
    }

    // Encode path.
    if let Ok(spec) = Spec::arbitrary_take_rest(Unstructured::new(data)) {
        if let Some((c, expected)) = spec.build() {
            let body = encode_frame(&c);
            let decoded = Command::decode(Bytes::from(body)).expect("an encoded command decodes");
            assert_eq!(decoded, expected);
        }
    }
});
