//! Frame headers (RFC 23 §"Framing").
//!
//! ```text
//!  short frame:  +-------+------+----------------+
//!                | flags | size | body (size)    |      size: 1 octet, 0..255
//!                +-------+------+----------------+
//!  long frame:   +-------+---------------+----------------+
//!                | flags | size (8, BE)  | body (size)    | size: 0..2^63-1
//!                +-------+---------------+----------------+
//!  flags:  bit 0 MORE, bit 1 LONG, bit 2 COMMAND, bits 7-3 reserved (MUST be zero)
//! ```

use bytes::BufMut;
use nom::number::streaming::{be_u64, u8 as octet};

use super::error::ProtocolError;

/// The flags octet of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameFlags(u8);

impl FrameFlags {
    /// More frames of the same message follow.
    pub const MORE: u8 = 0x01;
    /// The size field is 8 octets.
    pub const LONG: u8 = 0x02;
    /// The frame is a command.
    pub const COMMAND: u8 = 0x04;
    /// Bits 7-3: "reserved for future use and MUST be zero".
    pub const RESERVED: u8 = 0xf8;

    /// Flags from a raw octet (unchecked; see [`FrameHeader::decode`] for validation).
    pub const fn from_bits(bits: u8) -> FrameFlags {
        FrameFlags(bits)
    }

    /// The raw octet.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether MORE is set.
    pub const fn has_more(self) -> bool {
        self.0 & Self::MORE != 0
    }

    /// Whether LONG is set.
    pub const fn is_long(self) -> bool {
        self.0 & Self::LONG != 0
    }

    /// Whether COMMAND is set.
    pub const fn is_command(self) -> bool {
        self.0 & Self::COMMAND != 0
    }
}

/// A decoded frame header: what the body will be, before any of it is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The flags octet.
    pub flags: FrameFlags,
    /// The body length.
    pub len: u64,
}

/// Largest body a long frame may announce (RFC 23: "size ... 0 to 2^63-1").
pub const MAX_LONG_SIZE: u64 = u64::MAX >> 1;

impl FrameHeader {
    /// A data frame header.
    pub fn data(len: usize, more: bool) -> FrameHeader {
        let mut bits = if more { FrameFlags::MORE } else { 0 };
        if len > 255 {
            bits |= FrameFlags::LONG;
        }
        FrameHeader { flags: FrameFlags(bits), len: len as u64 }
    }

    /// A command frame header. RFC 37: commands use the short form for bodies of at most 255 octets and
    /// the long form otherwise (libzmq < 4.3.5 got this wrong for 246-255-octet topics, #4564).
    pub fn command(len: usize) -> FrameHeader {
        let mut bits = FrameFlags::COMMAND;
        if len > 255 {
            bits |= FrameFlags::LONG;
        }
        FrameHeader { flags: FrameFlags(bits), len: len as u64 }
    }

    /// Decodes a header from the start of `input`: `Ok(None)` when more octets are needed, else the
    /// header and the number of octets it took (2 or 9).
    ///
    /// Rejects reserved flag bits, MORE on a command, and long sizes of 2^63 or more. Size limits are
    /// the caller's (they depend on the frame kind and the message so far), and are checked before a
    /// single body octet is buffered.
    pub fn decode(input: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        match parse_header(input) {
            Ok((rest, (flags, len))) => {
                let flags = FrameFlags(flags);
                // RFC 23: "Bits 7-3: Reserved. Bits 7-3 are reserved for future use and MUST be zero."
                // libzmq ignores them; we reject (docs/differences.md): no peer sends them.
                if flags.0 & FrameFlags::RESERVED != 0 {
                    return Err(ProtocolError::ReservedFlags { flags: flags.0 });
                }
                // RFC 23: "The MORE flag SHALL be zero on command frames". libzmq ignores it; we reject
                // (docs/differences.md).
                if flags.is_command() && flags.has_more() {
                    return Err(ProtocolError::CommandWithMore);
                }
                // RFC 23: long sizes are "0 to 2^63-1".
                if len > MAX_LONG_SIZE {
                    return Err(ProtocolError::FrameTooLarge { len, max: MAX_LONG_SIZE });
                }
                Ok(Some((FrameHeader { flags, len }, input.len() - rest.len())))
            }
            Err(nom::Err::Incomplete(_)) => Ok(None),
            Err(_) => Ok(None),
        }
    }

    /// Encodes the header (2 or 9 octets). A length over 255 always uses the long form, whatever the
    /// flags say, so a hand-built header can never be written corrupt.
    pub fn encode(&self, out: &mut impl BufMut) {
        if self.is_long_on_wire() {
            out.put_u8(self.flags.0 | FrameFlags::LONG);
            out.put_u64(self.len);
        } else {
            out.put_u8(self.flags.0);
            // `is_long_on_wire` is false only for len <= 255.
            out.put_u8(self.len as u8);
        }
    }

    /// 2 for a short header, 9 for a long one.
    pub fn encoded_len(&self) -> usize {
        if self.is_long_on_wire() {
            9
        } else {
            2
        }
    }

    fn is_long_on_wire(&self) -> bool {
        self.flags.is_long() || self.len > 255
    }
}

fn parse_header(input: &[u8]) -> nom::IResult<&[u8], (u8, u64)> {
    let (input, flags) = octet(input)?;
    if flags & FrameFlags::LONG != 0 {
        let (input, len) = be_u64(input)?;
        Ok((input, (flags, len)))
    } else {
        let (input, len) = octet(input)?;
        Ok((input, (flags, u64::from(len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_short_and_long_headers() {
        assert_eq!(
            FrameHeader::decode(&[0x01, 0x03, b'a']),
            Ok(Some((FrameHeader { flags: FrameFlags(1), len: 3 }, 2)))
        );
        assert_eq!(
            FrameHeader::decode(&[0x02, 0, 0, 0, 0, 0, 0, 1, 0x2c]),
            Ok(Some((FrameHeader { flags: FrameFlags(2), len: 300 }, 9)))
        );
    }

    #[test]
    fn accepts_long_form_for_small_sizes() {
        assert_eq!(
            FrameHeader::decode(&[0x02, 0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']),
            Ok(Some((FrameHeader { flags: FrameFlags(2), len: 3 }, 9)))
        );
    }

    #[test]
    fn waits_for_every_prefix_of_a_long_header() {
        let h = [0x02, 0, 0, 0, 0, 0, 0, 1, 0x2c];
        for n in 0..9 {
            assert_eq!(FrameHeader::decode(&h[..n]), Ok(None));
        }
    }

    #[test]
    fn rejects_reserved_flag_bits() {
        for flags in [0x80u8, 0xf8, 0x08, 0x0c] {
            assert_eq!(FrameHeader::decode(&[flags, 3]), Err(ProtocolError::ReservedFlags { flags }));
        }
    }

    #[test]
    fn rejects_more_on_a_command() {
        assert_eq!(FrameHeader::decode(&[0x05, 0x05]), Err(ProtocolError::CommandWithMore));
    }

    #[test]
    fn rejects_sizes_from_two_to_the_63() {
        let h = [0x02, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(FrameHeader::decode(&h), Err(ProtocolError::FrameTooLarge { .. })));
        let h = [0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(FrameHeader::decode(&h), Err(ProtocolError::FrameTooLarge { .. })));
    }

    #[test]
    fn encodes_short_up_to_255_and_long_above() {
        let mut v = Vec::new();
        FrameHeader::data(255, true).encode(&mut v);
        assert_eq!(v, [0x01, 0xff]);
        v.clear();
        FrameHeader::data(256, false).encode(&mut v);
        assert_eq!(v, [0x02, 0, 0, 0, 0, 0, 0, 1, 0]);
        v.clear();
        FrameHeader::command(256).encode(&mut v);
        assert_eq!(v, [0x06, 0, 0, 0, 0, 0, 0, 1, 0]);
    }
}
