//! Metadata: the properties carried by READY (and, later, INITIATE) (RFC 23 §"Connection Metadata").
//!
//! ```text
//! metadata = *property
//! property = name value
//! name     = OCTET 1*255name-char         ; 1-octet length, then the name
//! value    = 4OCTET *OCTET                ; 4-octet big-endian length (0..2^31-1), then the value
//! ```

use bytes::{BufMut, Bytes};
use nom::bytes::complete::take;
use nom::number::complete::{be_u32, u8 as octet};

use super::error::ProtocolError;
use super::socket_type::SocketType;

/// Most properties we accept in one metadata block. libzmq sends two or three; the cap keeps the
/// duplicate check (case-insensitive, pairwise) cheap on hostile input.
pub const MAX_PROPERTIES: usize = 256;

/// RFC 23: "value = 4OCTET *OCTET ; Size in network byte order ... 0 to 2^31-1".
const MAX_VALUE_LEN: u32 = i32::MAX as u32;

/// The name of the socket type property.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// The name of the identity property.
pub const IDENTITY: &str = "Identity";

/// A list of properties. Names are compared case-insensitively (RFC 23: "Property names SHALL be
/// case-insensitive"); values are raw octets. Decoded properties share the command's buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    properties: Vec<(Bytes, Bytes)>,
}

impl Metadata {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a property, replacing an existing one of the same (case-insensitive) name.
    ///
    /// # Panics
    /// If `name` is empty or longer than 255 octets, or `value` longer than 2^31-1 octets: a
    /// programming error, not peer input (`ConnectionConfig::property` validates user input).
    pub fn insert(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        let name = name.into();
        assert!(!name.is_empty() && name.len() <= 255, "metadata names are 1..=255 octets");
        let value = value.into();
        assert!(value.len() <= MAX_VALUE_LEN as usize, "metadata values are at most 2^31-1 octets");
        if let Some(slot) = self.properties.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            slot.1 = value;
        } else {
            self.properties.push((name, value));
        }
    }

    /// The value of property `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.properties.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// The properties in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.properties.iter().map(|(n, v)| (n, v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.properties.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    /// The `Socket-Type` value parsed, `Ok(None)` if absent, `Err(raw)` if not a known type.
    pub fn socket_type(&self) -> Result<Option<SocketType>, Bytes> {
        match self.get(SOCKET_TYPE) {
            None => Ok(None),
            Some(raw) => SocketType::from_wire(raw).map(Some).ok_or_else(|| raw.clone()),
        }
    }

    /// The `Identity` value, if present.
    pub fn identity(&self) -> Option<&Bytes> {
        self.get(IDENTITY)
    }

    /// Decodes a metadata block that fills `body` exactly.
    ///
    /// Lengths are checked against the octets present before anything is sliced, so a hostile length
    /// never causes an allocation or a read past the body. Values are zero-copy slices of `body`.
    pub fn decode(body: &Bytes) -> Result<Metadata, ProtocolError> {
        let mut properties: Vec<(Bytes, Bytes)> = Vec::new();
        let mut input: &[u8] = body;
        while !input.is_empty() {
            if properties.len() == MAX_PROPERTIES {
                return Err(ProtocolError::MalformedMetadata("more than 256 properties"));
            }
            let (rest, name_len) = octet::<_, nom::error::Error<&[u8]>>(input)
                .map_err(|_| ProtocolError::MalformedMetadata("property name length missing"))?;
            // RFC 23: "Zero-sized names are not valid". libzmq accepts them; see docs/differences.md.
            if name_len == 0 {
                return Err(ProtocolError::MalformedMetadata("zero-length property name"));
            }
            let (rest, name) = take::<_, _, nom::error::Error<&[u8]>>(name_len)(rest)
                .map_err(|_| ProtocolError::MalformedMetadata("property name runs past the end"))?;
            let (rest, value_len) = be_u32::<_, nom::error::Error<&[u8]>>(rest)
                .map_err(|_| ProtocolError::MalformedMetadata("property value length truncated"))?;
            if value_len > MAX_VALUE_LEN {
                return Err(ProtocolError::MalformedMetadata("property value length over 2^31-1"));
            }
            let (rest, value) = take::<_, _, nom::error::Error<&[u8]>>(value_len)(rest)
                .map_err(|_| ProtocolError::MalformedMetadata("property value runs past the end"))?;
            if properties.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(ProtocolError::DuplicateProperty(body.slice_ref(name)));
            }
            properties.push((body.slice_ref(name), body.slice_ref(value)));
            input = rest;
        }
        Ok(Metadata { properties })
    }

    /// Encodes every property.
    pub fn encode(&self, out: &mut impl BufMut) {
        for (name, value) in &self.properties {
            // `insert` guarantees 1..=255; values built locally are far below 2^31.
            out.put_u8(name.len() as u8);
            out.put_slice(name);
            out.put_u32(value.len() as u32);
            out.put_slice(value);
        }
    }

    /// The encoded size.
    pub fn encoded_len(&self) -> usize {
        self.properties.iter().map(|(n, v)| 1 + n.len() + 4 + v.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = vec![name.len() as u8];
        v.extend_from_slice(name);
        v.extend_from_slice(&(value.len() as u32).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn decodes_socket_type_and_identity() {
        let mut b = prop(b"Socket-Type", b"DEALER");
        b.extend(prop(b"Identity", b"cli1"));
        let md = Metadata::decode(&Bytes::from(b)).unwrap();
        assert_eq!(md.socket_type(), Ok(Some(SocketType::Dealer)));
        assert_eq!(md.identity().map(|b| &b[..]), Some(&b"cli1"[..]));
    }

    #[test]
    fn looks_up_names_case_insensitively() {
        let md = Metadata::decode(&Bytes::from(prop(b"SOCKET-TYPE", b"PUB"))).unwrap();
        assert_eq!(md.socket_type(), Ok(Some(SocketType::Pub)));
    }

    #[test]
    fn empty_block_is_valid() {
        assert!(Metadata::decode(&Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn rejects_name_length_past_the_end() {
        let b = Bytes::from_static(&[0xc8, b'a', b'b', b'c']);
        assert_eq!(
            Metadata::decode(&b),
            Err(ProtocolError::MalformedMetadata("property name runs past the end"))
        );
    }

    #[test]
    fn rejects_value_length_past_the_end_without_allocating() {
        let mut b = vec![1, b'X', 0x7f, 0xff, 0xff, 0xff];
        b.extend_from_slice(b"abcdef");
        assert_eq!(
            Metadata::decode(&Bytes::from(b)),
            Err(ProtocolError::MalformedMetadata("property value runs past the end"))
        );
        let b = Bytes::from_static(&[1, b'X', 0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(
            Metadata::decode(&b),
            Err(ProtocolError::MalformedMetadata("property value length over 2^31-1"))
        );
    }

    #[test]
    fn rejects_truncated_value_length_and_stray_byte() {
        let b = Bytes::from_static(&[1, b'X', 0, 0]);
        assert_eq!(
            Metadata::decode(&b),
            Err(ProtocolError::MalformedMetadata("property value length truncated"))
        );
        let mut b = prop(b"Socket-Type", b"DEALER");
        b.push(0x00);
        assert_eq!(
            Metadata::decode(&Bytes::from(b)),
            Err(ProtocolError::MalformedMetadata("zero-length property name"))
        );
        let mut b = prop(b"Socket-Type", b"DEALER");
        b.push(0x05);
        assert_eq!(
            Metadata::decode(&Bytes::from(b)),
            Err(ProtocolError::MalformedMetadata("property name runs past the end"))
        );
    }

    #[test]
    fn rejects_duplicate_names_case_insensitively() {
        let mut b = prop(b"Socket-Type", b"DEALER");
        b.extend(prop(b"socket-type", b"PUB"));
        assert!(matches!(Metadata::decode(&Bytes::from(b)), Err(ProtocolError::DuplicateProperty(_))));
    }

    #[test]
    fn caps_the_number_of_properties() {
        let mut b = Vec::new();
        for i in 0..=MAX_PROPERTIES {
            b.extend(prop(format!("X-{i}").as_bytes(), b""));
        }
        assert_eq!(
            Metadata::decode(&Bytes::from(b)),
            Err(ProtocolError::MalformedMetadata("more than 256 properties"))
        );
    }

    #[test]
    fn round_trips_through_encode() {
        let mut md = Metadata::new();
        md.insert(SOCKET_TYPE, "ROUTER");
        md.insert(IDENTITY, Bytes::new());
        md.insert("X-Hello", "world");
        let mut out = Vec::new();
        md.encode(&mut out);
        assert_eq!(out.len(), md.encoded_len());
        assert_eq!(Metadata::decode(&Bytes::from(out)).unwrap(), md);
    }

    #[test]
    fn insert_replaces_case_insensitively() {
        let mut md = Metadata::new();
        md.insert("X-a", "1");
        md.insert("x-A", "2");
        assert_eq!(md.len(), 1);
        assert_eq!(md.get("X-A").map(|b| &b[..]), Some(&b"2"[..]));
    }
}
