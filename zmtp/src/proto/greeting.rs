//! The 64-octet greeting (RFC 23 §"The Greeting", RFC 37) and version negotiation.
//!
//! ```text
//!   0     1 ......... 8    9     10      11      12 ........ 31    32          33 ....... 63
//! +----+------------------+----+-------+-------+---------------+-----------+---------------+
//! | FF |  padding (8)     | 7F | major | minor | mechanism (20)| as-server |  filler (31)  |
//! +----+------------------+----+-------+-------+---------------+-----------+---------------+
//!  \________ signature (10) ________/
//! ```

use std::fmt;

use bytes::{BufMut, Bytes};
use nom::bytes::streaming::take;
use nom::number::streaming::u8 as octet;

use super::error::ProtocolError;

/// The padding libzmq sends when it has no identity (length 0 + 1).
pub const PAD_1: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];

/// Length of a complete greeting.
pub const GREETING_LEN: usize = 64;

/// A ZMTP version as announced in the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version (3 for ZMTP 3.x).
    pub major: u8,
    /// Minor version (0 for 3.0, 1 for 3.1).
    pub minor: u8,
}

impl Version {
    /// ZMTP 3.0 (RFC 23).
    pub const V3_0: Version = Version { major: 3, minor: 0 };
    /// ZMTP 3.1 (RFC 37): what we speak.
    pub const V3_1: Version = Version { major: 3, minor: 1 };

    /// The version both sides use: RFC 23 "A peer MUST accept higher protocol versions as valid" and
    /// speaks its own version to an equal or higher peer; against a lower 3.x peer we speak theirs.
    /// A peer with a higher major version is spoken to as our own version.
    pub fn negotiate(ours: Version, theirs: Version) -> Version {
        if theirs.major > ours.major {
            ours
        } else {
            Version { major: ours.major, minor: ours.minor.min(theirs.minor) }
        }
    }

    /// Whether this version has the 3.1 commands (SUBSCRIBE, CANCEL, PING, PONG).
    pub fn has_commands_3_1(self) -> bool {
        self >= Version::V3_1
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The 20-octet, NUL-padded security mechanism name of the greeting.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MechanismName([u8; 20]);

impl MechanismName {
    /// The NULL mechanism (RFC 23).
    pub const NULL: MechanismName = MechanismName::from_static("NULL");
    /// The PLAIN mechanism (RFC 24).
    pub const PLAIN: MechanismName = MechanismName::from_static("PLAIN");
    /// The CURVE mechanism (RFC 25/26).
    pub const CURVE: MechanismName = MechanismName::from_static("CURVE");

    /// A name from a string of at most 20 octets.
    pub const fn from_static(name: &'static str) -> MechanismName {
        let src = name.as_bytes();
        assert!(src.len() <= 20, "mechanism names are at most 20 octets");
        let mut out = [0u8; 20];
        let mut i = 0;
        while i < src.len() {
            out[i] = src[i];
            i += 1;
        }
        MechanismName(out)
    }

    /// The raw 20 octets as on the wire.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The name without its NUL padding.
    pub fn trimmed(&self) -> &[u8] {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &self.0[..end]
    }

    /// The name as text, if it is one of ours.
    pub fn as_str(&self) -> &'static str {
        match *self {
            MechanismName::NULL => "NULL",
            MechanismName::PLAIN => "PLAIN",
            MechanismName::CURVE => "CURVE",
            _ => "(unknown)",
        }
    }
}

impl fmt::Debug for MechanismName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", super::error::Escaped(self.trimmed()))
    }
}

/// A decoded or to-be-encoded greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    /// The announced version.
    pub version: Version,
    /// The security mechanism.
    pub mechanism: MechanismName,
    /// The as-server flag (meaningful for PLAIN and CURVE; zero for NULL).
    pub as_server: bool,
    /// Octets 1-8, the padding. RFC 23: "A peer SHALL NOT assign any significance to the padding field
    /// and MUST NOT validate this". libzmq puts the identity length + 1 there as a 64-bit big-endian
    /// number (a ZMTP 1.0 length prefix; RFC 37 suggests zeros); we do the same so our greeting is
    /// byte-identical to libzmq's.
    pub padding: [u8; 8],
}

impl Greeting {
    /// Encodes the 64 octets.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(0xff);
        out.put_slice(&self.padding);
        out.put_u8(0x7f);
        out.put_u8(self.version.major);
        out.put_u8(self.version.minor);
        out.put_slice(self.mechanism.as_bytes());
        out.put_u8(u8::from(self.as_server));
        out.put_bytes(0, 31);
    }

    /// Always [`GREETING_LEN`].
    pub fn encoded_len(&self) -> usize {
        GREETING_LEN
    }

    /// Decodes a greeting from the start of `input`.
    ///
    /// Returns `Ok(None)` while more octets are needed. A peer that is not ZMTP 3.x is rejected as soon
    /// as the octets that prove it have arrived (RFC 23 §"Version Negotiation": the first 11 octets),
    /// without waiting for all 64.
    pub fn decode(input: &[u8]) -> Result<Option<Greeting>, ProtocolError> {
        // RFC 23: "signature = %xFF padding %x7F". RFC 23 §Backwards Interoperability: a first octet
        // other than 0xFF, or a tenth octet whose low bit is clear, means an unversioned ZMTP 1.0 peer.
        if let Some(&first) = input.first() {
            if first != 0xff {
                return Err(ProtocolError::LegacyPeer { what: "first octet is not 0xFF" });
            }
        }
        if let Some(&tenth) = input.get(9) {
            if tenth & 0x01 == 0 {
                return Err(ProtocolError::LegacyPeer { what: "signature octet 10 has its low bit clear" });
            }
        }
        // "The version-major field ... a peer that cannot downgrade MUST close the connection."
        if let Some(&major) = input.get(10) {
            if major < 3 {
                return Err(ProtocolError::UnsupportedVersion { major });
            }
        }
        match parse_greeting(input) {
            Ok((_, g)) => Ok(Some(g)),
            Err(nom::Err::Incomplete(_)) => Ok(None),
            // The parser only reads fixed-size fields, so it cannot fail otherwise; stay total anyway.
            Err(_) => Err(ProtocolError::LegacyPeer { what: "unreadable greeting" }),
        }
    }
}

fn parse_greeting(input: &[u8]) -> nom::IResult<&[u8], Greeting> {
    let (input, _signature_start) = octet(input)?;
    let (input, padding) = take(8usize)(input)?;
    let (input, _signature_end) = octet(input)?;
    let (input, major) = octet(input)?;
    let (input, minor) = octet(input)?;
    let (input, mechanism) = take(20usize)(input)?;
    let (input, as_server) = octet(input)?;
    // RFC 23: "filler = 31%x00"; we ignore its content (A-G12), as libzmq does.
    let (input, _filler) = take(31usize)(input)?;
    let mut name = [0u8; 20];
    name.copy_from_slice(mechanism);
    let mut pad = [0u8; 8];
    pad.copy_from_slice(padding);
    Ok((
        input,
        Greeting {
            version: Version { major, minor },
            mechanism: MechanismName(name),
            // RFC 23: "as-server = %x00 | %x01"; libzmq treats any non-zero octet as set.
            as_server: as_server != 0,
            padding: pad,
        },
    ))
}

/// The 20 mechanism octets as `Bytes` with trailing NULs removed (for error reports).
pub(crate) fn mechanism_bytes(name: &MechanismName) -> Bytes {
    Bytes::copy_from_slice(name.trimmed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null_greeting() -> Vec<u8> {
        let mut v = Vec::new();
        Greeting { version: Version::V3_1, mechanism: MechanismName::NULL, as_server: false, padding: PAD_1 }
            .encode(&mut v);
        v
    }

    #[test]
    fn encodes_libzmq_null_greeting() {
        let v = null_greeting();
        assert_eq!(v.len(), 64);
        assert_eq!(&v[..12], &[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1]);
        assert_eq!(&v[12..16], b"NULL");
        assert!(v[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn waits_for_every_prefix_of_a_valid_greeting() {
        let v = null_greeting();
        for n in 0..64 {
            assert_eq!(Greeting::decode(&v[..n]), Ok(None), "prefix {n}");
        }
        assert!(Greeting::decode(&v).unwrap().is_some());
    }

    #[test]
    fn rejects_legacy_first_octet_immediately() {
        for first in [0x00u8, 0x47, 0x16, 0x01] {
            assert!(matches!(Greeting::decode(&[first]), Err(ProtocolError::LegacyPeer { .. })));
        }
    }

    #[test]
    fn rejects_signature_without_version_bit() {
        let mut v = null_greeting();
        v[9] = 0x7e;
        assert!(matches!(Greeting::decode(&v[..10]), Err(ProtocolError::LegacyPeer { .. })));
    }

    #[test]
    fn rejects_majors_below_three_after_eleven_octets() {
        for major in 0..3u8 {
            let mut v = null_greeting();
            v[10] = major;
            assert_eq!(Greeting::decode(&v[..11]), Err(ProtocolError::UnsupportedVersion { major }));
        }
    }

    #[test]
    fn accepts_arbitrary_padding_and_filler() {
        let mut v = null_greeting();
        v[1..9].copy_from_slice(&[0xff; 8]);
        v[40..].fill(0xaa);
        let g = Greeting::decode(&v).unwrap().unwrap();
        assert_eq!(g.padding, [0xff; 8]);
        assert_eq!(g.mechanism, MechanismName::NULL);
    }

    #[test]
    fn negotiates_lower_minor_and_caps_higher_majors() {
        assert_eq!(Version::negotiate(Version::V3_1, Version::V3_0), Version::V3_0);
        assert_eq!(Version::negotiate(Version::V3_1, Version { major: 3, minor: 255 }), Version::V3_1);
        assert_eq!(Version::negotiate(Version::V3_1, Version { major: 4, minor: 0 }), Version::V3_1);
        assert_eq!(Version::negotiate(Version::V3_1, Version { major: 255, minor: 255 }), Version::V3_1);
    }

    #[test]
    fn mechanism_name_trims_padding() {
        assert_eq!(MechanismName::CURVE.trimmed(), b"CURVE");
        assert_eq!(MechanismName::from_static("").trimmed(), b"");
    }
}
