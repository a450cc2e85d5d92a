//! Z85 (RFC 32): the printable encoding of binary keys used by ZeroMQ (40 characters per 32-octet
//! CURVE key).

/// Why Z85 input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Z85Error {
    /// Binary input to encode must be a multiple of 4 octets; text to decode a multiple of 5 characters.
    #[error("Z85 length {len} is not a multiple of {multiple}")]
    BadLength {
        /// The length given.
        len: usize,
        /// 4 to encode, 5 to decode.
        multiple: usize,
    },
    /// A character outside the Z85 alphabet.
    #[error("character {character:?} at position {position} is not in the Z85 alphabet")]
    BadCharacter {
        /// Offset of the character in the text.
        position: usize,
        /// The character.
        character: char,
    },
    /// A group of 5 characters whose value does not fit in 32 bits.
    #[error("the group of 5 characters at position {position} overflows 32 bits")]
    Overflow {
        /// Offset of the group's first character.
        position: usize,
    },
}

/// Encodes `data` (a multiple of 4 octets) as Z85.
///
/// # Errors
/// [`Z85Error::BadLength`] when `data.len()` is not a multiple of 4.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    let _ = data;
    todo!("helper writes this")
}

/// Decodes Z85 text (a multiple of 5 characters).
///
/// # Errors
/// [`Z85Error`] for a bad length, a character outside the alphabet, or a group over 32 bits.
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let _ = text;
    todo!("helper writes this")
}
