//! Commands (RFC 23 §"Commands", RFC 37): READY, ERROR, SUBSCRIBE, CANCEL, PING, PONG, and any other
//! command kept as its name and body for mechanisms that add their own (HELLO, WELCOME, INITIATE…).
//!
//! ```text
//! command      = command-size command-name command-data
//! command-name = OCTET 1*255command-name-char        ; 1-octet length, then ALPHA octets
//! ready        = %d5 "READY" metadata
//! error        = %d5 "ERROR" error-reason            ; error-reason = OCTET 0*255VCHAR
//! subscribe    = %d9 "SUBSCRIBE" topic                ; 3.1
//! cancel       = %d6 "CANCEL" topic                   ; 3.1
//! ping         = %d4 "PING" ping-ttl ping-context     ; ttl: 2 octets, tenths of a second; context 0..16
//! pong         = %d4 "PONG" ping-context
//! ```

use std::time::Duration;

use bytes::{BufMut, Bytes};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, u8 as octet};

use super::error::ProtocolError;
use super::frame::FrameHeader;
use super::metadata::Metadata;

/// RFC 37: the PING context "MUST not exceed 16 octets"; a longer one is echoed cut to 16, as libzmq does.
pub const MAX_PING_CONTEXT: usize = 16;

/// A decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// READY with the sender's metadata (NULL mechanism; PLAIN/CURVE server).
    Ready(Metadata),
    /// ERROR with a reason of at most 255 octets.
    Error {
        /// The reason text.
        reason: Bytes,
    },
    /// SUBSCRIBE (3.1) with a topic prefix.
    Subscribe(Bytes),
    /// CANCEL (3.1) with a topic prefix.
    Cancel(Bytes),
    /// PING (3.1): TTL in tenths of a second and an opaque context.
    Ping {
        /// "a strong hint to the other peer to disconnect if no further traffic is received after that time".
        ttl_deciseconds: u16,
        /// Echoed in the PONG (at most the first 16 octets).
        context: Bytes,
    },
    /// PONG (3.1) echoing a PING's context.
    Pong {
        /// The echoed context.
        context: Bytes,
    },
    /// Any other command: its name (1-255 ALPHA octets; a longer name is cut to 255 when encoding) and
    /// data.
    Other {
        /// The command name.
        name: Bytes,
        /// Everything after the name.
        data: Bytes,
    },
}

impl Command {
    /// The command name as on the wire.
    pub fn name(&self) -> &[u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error { .. } => b"ERROR",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Ping { .. } => b"PING",
            Command::Pong { .. } => b"PONG",
            Command::Other { name, .. } => name,
        }
    }

    /// The command name as [`Bytes`] (static for the known commands; no allocation).
    pub fn name_bytes(&self) -> Bytes {
        match self {
            Command::Other { name, .. } => name.clone(),
            known => Bytes::from_static(match known {
                Command::Ready(_) => b"READY",
                Command::Error { .. } => b"ERROR",
                Command::Subscribe(_) => b"SUBSCRIBE",
                Command::Cancel(_) => b"CANCEL",
                Command::Ping { .. } => b"PING",
                _ => b"PONG",
            }),
        }
    }

    /// The PING TTL as a duration (tenths of a second; the maximum, 0xFFFF, is 6553.5 s).
    pub fn ttl(ttl_deciseconds: u16) -> Duration {
        Duration::from_millis(u64::from(ttl_deciseconds) * 100)
    }

    /// Decodes a command from the complete body of a command frame. Never reads past `body`.
    pub fn decode(body: Bytes) -> Result<Command, ProtocolError> {
        let malformed = |what| ProtocolError::MalformedCommand { command: "?", what };
        let (rest, name_len) =
            octet::<_, nom::error::Error<&[u8]>>(&body[..]).map_err(|_| malformed("empty command body"))?;
        if name_len == 0 {
            return Err(malformed("zero-length command name"));
        }
        let (data, name) = take::<_, _, nom::error::Error<&[u8]>>(name_len)(rest)
            .map_err(|_| malformed("command name runs past the end of the frame"))?;
        // RFC 23: "command-name-char = ALPHA".
        if !name.iter().all(u8::is_ascii_alphabetic) {
            return Err(malformed("command name is not ALPHA"));
        }
        let data_bytes = body.slice_ref(data);
        Ok(match name {
            b"READY" => Command::Ready(Metadata::decode(&data_bytes)?),
            b"ERROR" => {
                let m = |what| ProtocolError::MalformedCommand { command: "ERROR", what };
                let (rest, len) =
                    octet::<_, nom::error::Error<&[u8]>>(data).map_err(|_| m("reason length missing"))?;
                let (rest, reason) = take::<_, _, nom::error::Error<&[u8]>>(len)(rest)
                    .map_err(|_| m("reason runs past the end"))?;
                if !rest.is_empty() {
                    return Err(m("bytes after the reason"));
                }
                Command::Error { reason: body.slice_ref(reason) }
            }
            b"SUBSCRIBE" => Command::Subscribe(data_bytes),
            b"CANCEL" => Command::Cancel(data_bytes),
            b"PING" => {
                // A PING too short for its TTL is malformed. libzmq 4.3.5 answers it with 16 octets of
                // adjacent memory; rzmq panicked (reliability.md A-P3). We read nothing past the body.
                let (context, ttl) = be_u16::<_, nom::error::Error<&[u8]>>(data).map_err(|_| {
                    ProtocolError::MalformedCommand { command: "PING", what: "body too short for the TTL" }
                })?;
                Command::Ping { ttl_deciseconds: ttl, context: body.slice_ref(context) }
            }
            b"PONG" => Command::Pong { context: data_bytes },
            _ => Command::Other { name: body.slice_ref(name), data: data_bytes },
        })
    }

    /// Decodes a command of a mechanism's handshake that carries boxes rather than metadata (CURVE):
    /// ERROR is parsed, every other command is kept as its name and data ([`Command::Other`]), READY
    /// included.
    ///
    /// # Errors
    /// As [`Command::decode`] for the name and for ERROR.
    pub fn decode_raw(body: Bytes) -> Result<Command, ProtocolError> {
        if body.get(..6) == Some(&b"\x05ERROR"[..]) {
            return Command::decode(body);
        }
        let malformed = |what| ProtocolError::MalformedCommand { command: "?", what };
        let name_len = usize::from(*body.first().ok_or_else(|| malformed("empty command body"))?);
        if name_len == 0 {
            return Err(malformed("zero-length command name"));
        }
        let name = body
            .get(1..1 + name_len)
            .ok_or_else(|| malformed("command name runs past the end of the frame"))?;
        if !name.iter().all(u8::is_ascii_alphabetic) {
            return Err(malformed("command name is not ALPHA"));
        }
        Ok(Command::Other { name: body.slice(1..1 + name_len), data: body.slice(1 + name_len..) })
    }

    /// The command body length (name size octet, name, data).
    pub fn body_len(&self) -> usize {
        let data = match self {
            Command::Ready(md) => md.encoded_len(),
            Command::Error { reason } => 1 + reason.len().min(255),
            Command::Subscribe(t) | Command::Cancel(t) => t.len(),
            Command::Ping { context, .. } => 2 + context.len(),
            Command::Pong { context } => context.len(),
            Command::Other { data, .. } => data.len(),
        };
        1 + self.name().len().min(255) + data
    }

    /// Total encoded size: frame header plus body.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        FrameHeader::command(body).encoded_len() + body
    }

    /// Encodes the whole command frame (header and body). An ERROR reason is cut to 255 octets.
    pub fn encode(&self, out: &mut impl BufMut) {
        let body = self.body_len();
        FrameHeader::command(body).encode(out);
        let name = &self.name()[..self.name().len().min(255)];
        out.put_u8(name.len() as u8);
        out.put_slice(name);
        match self {
            Command::Ready(md) => md.encode(out),
            Command::Error { reason } => {
                let reason = &reason[..reason.len().min(255)];
                out.put_u8(reason.len() as u8);
                out.put_slice(reason);
            }
            Command::Subscribe(t) | Command::Cancel(t) => out.put_slice(t),
            Command::Ping { ttl_deciseconds, context } => {
                out.put_u16(*ttl_deciseconds);
                out.put_slice(context);
            }
            Command::Pong { context } => out.put_slice(context),
            Command::Other { data, .. } => out.put_slice(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(c: &Command) -> Vec<u8> {
        let mut v = Vec::new();
        c.encode(&mut v);
        assert_eq!(v.len(), c.encoded_len());
        v
    }

    fn dec(frame: &[u8]) -> Result<Command, ProtocolError> {
        // Skip a short header.
        Command::decode(Bytes::copy_from_slice(&frame[2..]))
    }

    #[test]
    fn encodes_ping_and_pong_like_libzmq() {
        let ping = Command::Ping { ttl_deciseconds: 15, context: Bytes::new() };
        assert_eq!(enc(&ping), b"\x04\x07\x04PING\x00\x0f");
        assert_eq!(enc(&Command::Pong { context: Bytes::new() }), b"\x04\x05\x04PONG");
        assert_eq!(enc(&Command::Pong { context: Bytes::from_static(b"LOL") }), b"\x04\x08\x04PONGLOL");
    }

    #[test]
    fn encodes_subscribe_short_and_long() {
        let s = Command::Subscribe(Bytes::from_static(b"BINANCE:"));
        assert_eq!(enc(&s), b"\x04\x12\x09SUBSCRIBEBINANCE:");
        let long = Command::Subscribe(Bytes::from(vec![b't'; 246]));
        let v = enc(&long);
        assert_eq!(&v[..9], &[0x06, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(dec_long(&v), Ok(long));
    }

    fn dec_long(frame: &[u8]) -> Result<Command, ProtocolError> {
        Command::decode(Bytes::copy_from_slice(&frame[9..]))
    }

    #[test]
    fn decodes_ping_with_context() {
        assert_eq!(
            dec(b"\x04\x0a\x04PING\x00\x00LOL"),
            Ok(Command::Ping { ttl_deciseconds: 0, context: Bytes::from_static(b"LOL") })
        );
    }

    #[test]
    fn rejects_ping_without_ttl_never_reading_past_the_body() {
        for frame in [&b"\x04\x05\x04PING"[..], b"\x04\x06\x04PING\x00"] {
            assert_eq!(
                dec(frame),
                Err(ProtocolError::MalformedCommand { command: "PING", what: "body too short for the TTL" })
            );
        }
    }

    #[test]
    fn rejects_name_longer_than_body() {
        assert!(matches!(dec(b"\x04\x04\x09PIN"), Err(ProtocolError::MalformedCommand { .. })));
    }

    #[test]
    fn rejects_empty_and_zero_length_names() {
        assert!(matches!(dec(b"\x04\x00"), Err(ProtocolError::MalformedCommand { .. })));
        assert!(matches!(dec(b"\x04\x01\x00"), Err(ProtocolError::MalformedCommand { .. })));
    }

    #[test]
    fn rejects_non_alpha_names() {
        assert!(matches!(dec(b"\x04\x06\x05RE\x00DY"), Err(ProtocolError::MalformedCommand { .. })));
        assert!(matches!(dec(b"\x04\x04\x03\xff\xff\xff"), Err(ProtocolError::MalformedCommand { .. })));
    }

    #[test]
    fn keeps_unknown_commands_by_name() {
        assert_eq!(
            dec(b"\x04\x06\x05BOGUS"),
            Ok(Command::Other { name: Bytes::from_static(b"BOGUS"), data: Bytes::new() })
        );
    }

    #[test]
    fn decodes_error_and_rejects_bad_reason_lengths() {
        assert_eq!(
            dec(b"\x04\x0b\x05ERROR\x04nope"),
            Ok(Command::Error { reason: Bytes::from_static(b"nope") })
        );
        assert!(matches!(dec(b"\x04\x09\x05ERROR\xffab"), Err(ProtocolError::MalformedCommand { .. })));
        assert!(matches!(dec(b"\x04\x06\x05ERROR"), Err(ProtocolError::MalformedCommand { .. })));
    }

    #[test]
    fn ttl_is_computed_without_overflow() {
        assert_eq!(Command::ttl(0xffff), Duration::from_millis(6_553_500));
    }

    #[test]
    fn error_reason_is_capped_at_255_on_encode() {
        let e = Command::Error { reason: Bytes::from(vec![b'x'; 300]) };
        let v = enc(&e);
        assert_eq!(dec_long_or_short(&v), Ok(Command::Error { reason: Bytes::from(vec![b'x'; 255]) }));
    }

    fn dec_long_or_short(frame: &[u8]) -> Result<Command, ProtocolError> {
        if frame[0] & 0x02 != 0 {
            dec_long(frame)
        } else {
            dec(frame)
        }
    }
}
