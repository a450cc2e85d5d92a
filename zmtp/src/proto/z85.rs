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

/// The Z85 alphabet: the character for each digit 0..85.
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Marks an ASCII character outside the alphabet in [`DECODE`].
const INVALID: u8 = 0xFF;

/// The digit of each ASCII character, or [`INVALID`].
const DECODE: [u8; 128] = {
    let mut table = [INVALID; 128];
    let mut digit = 0;
    while digit < ALPHABET.len() {
        table[ALPHABET[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// The digit of a character, if it is in the alphabet.
fn digit(c: char) -> Option<u8> {
    let code = usize::try_from(u32::from(c)).ok()?;
    DECODE.get(code).copied().filter(|&d| d != INVALID)
}

/// Encodes `data` (a multiple of 4 octets) as Z85.
///
/// # Errors
/// [`Z85Error::BadLength`] when `data.len()` is not a multiple of 4.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::BadLength { len: data.len(), multiple: 4 });
    }
    let mut text = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let mut group = [0u8; 5];
        for slot in group.iter_mut().rev() {
            // `value % 85` is below 85, the alphabet's length.
            *slot = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        text.extend(group.iter().map(|&b| char::from(b)));
    }
    Ok(text)
}

/// Decodes Z85 text (a multiple of 5 characters).
///
/// # Errors
/// [`Z85Error`] for a bad length, a character outside the alphabet, or a group over 32 bits.
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    // Characters first, so that non-ASCII text is reported as such whatever its length in octets.
    // Everything before the first bad character is ASCII, so its byte offset is also its index.
    if let Some((position, character)) = text.char_indices().find(|&(_, c)| digit(c).is_none()) {
        return Err(Z85Error::BadCharacter { position, character });
    }
    // All ASCII from here: one octet per character.
    let bytes = text.as_bytes();
    if bytes.len() % 5 != 0 {
        return Err(Z85Error::BadLength { len: bytes.len(), multiple: 5 });
    }
    let mut data = Vec::with_capacity(bytes.len() / 5 * 4);
    for (index, group) in bytes.chunks_exact(5).enumerate() {
        let value = group
            .iter()
            .fold(0u64, |acc, &b| acc * 85 + u64::from(DECODE.get(usize::from(b)).copied().unwrap_or(0)));
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow { position: index * 5 })?;
        data.extend_from_slice(&value.to_be_bytes());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::keys::CurveSecretKey;

    /// RFC 32's test vector.
    const HELLO: [u8; 8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];

    #[test]
    fn rfc32_test_vector() {
        assert_eq!(encode(&HELLO).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), HELLO);
    }

    #[test]
    fn empty_input() {
        assert_eq!(encode(&[]).unwrap(), "");
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn extremes() {
        assert_eq!(encode(&[0; 4]).unwrap(), "00000");
        assert_eq!(encode(&[0xFF; 4]).unwrap(), "%nSc0");
        assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
        assert_eq!(decode("00000").unwrap(), [0; 4]);
    }

    #[test]
    fn alphabet_is_85_distinct_printable_characters() {
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert!(c.is_ascii_graphic());
            assert_eq!(usize::from(DECODE[usize::from(c)]), i);
        }
        let valid = DECODE.iter().filter(|&&d| d != INVALID).count();
        assert_eq!(valid, 85);
    }

    #[test]
    fn encode_refuses_a_length_not_a_multiple_of_4() {
        for len in [1, 2, 3, 5, 31, 33] {
            assert_eq!(encode(&vec![0; len]), Err(Z85Error::BadLength { len, multiple: 4 }));
        }
    }

    #[test]
    fn decode_refuses_a_length_not_a_multiple_of_5() {
        for text in ["H", "Hell", "HelloW", "HelloWorl"] {
            assert_eq!(decode(text), Err(Z85Error::BadLength { len: text.len(), multiple: 5 }));
        }
    }

    #[test]
    fn decode_refuses_characters_outside_the_alphabet() {
        for (text, position, character) in [
            ("Hello World", 5, ' '),
            ("Hel\"oWorld", 3, '"'),
            ("HelloWorl\\", 9, '\\'),
            ("~", 0, '~'),
            ("Hello,", 5, ','),
            ("\0\0\0\0\0", 0, '\0'),
            ("\u{7f}0000", 0, '\u{7f}'),
        ] {
            assert_eq!(decode(text), Err(Z85Error::BadCharacter { position, character }), "{text:?}");
        }
    }

    #[test]
    fn decode_refuses_non_ascii_whatever_the_length() {
        // 'é' is two octets: "Hell" + 'é' is 6 octets but 5 characters; "Hellé" + "llo" is 8.
        assert_eq!(decode("Hellé"), Err(Z85Error::BadCharacter { position: 4, character: 'é' }));
        assert_eq!(decode("éééé"), Err(Z85Error::BadCharacter { position: 0, character: 'é' }));
        assert_eq!(decode("Hello€orld"), Err(Z85Error::BadCharacter { position: 5, character: '€' }));
        assert_eq!(decode("0000🦀"), Err(Z85Error::BadCharacter { position: 4, character: '🦀' }));
    }

    #[test]
    fn decode_refuses_groups_over_32_bits() {
        // "%nSc0" is u32::MAX; "%nSc1" is one more; "#####" is 85^5 - 1.
        assert_eq!(decode("%nSc1"), Err(Z85Error::Overflow { position: 0 }));
        assert_eq!(decode("#####"), Err(Z85Error::Overflow { position: 0 }));
        assert_eq!(decode("HelloWorld%nSd0"), Err(Z85Error::Overflow { position: 10 }));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let shown = decode("Hello World").unwrap_err().to_string();
        assert!(shown.contains("' '") && shown.contains('5'), "{shown}");
        let shown = decode("HelloWorld%nSd0").unwrap_err().to_string();
        assert!(shown.contains("10"), "{shown}");
        let shown = encode(&[1, 2, 3]).unwrap_err().to_string();
        assert!(shown.contains('3') && shown.contains('4'), "{shown}");
    }

    /// The key pairs of ../shared/bench/README.md (libzmq's own `zmq_curve_public`).
    #[test]
    fn known_curve_key_pairs() {
        for (secret, public) in [
            ("CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP", "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo"),
            (")FimV5Q9q[a+.pe7>!fHPlt[<Bvw{.y?1J@=+2mh", "ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS"),
        ] {
            let key = CurveSecretKey::from_z85(secret).unwrap();
            assert_eq!(key.to_z85(), secret);
            assert_eq!(key.public_key().to_z85(), public);
            assert_eq!(encode(&decode(public).unwrap()).unwrap(), public);
        }
    }

    proptest! {
        #[test]
        fn binary_round_trips(words in proptest::collection::vec(any::<[u8; 4]>(), 0..64)) {
            let data: Vec<u8> = words.concat();
            let text = encode(&data).unwrap();
            prop_assert_eq!(text.len(), data.len() / 4 * 5);
            prop_assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
            prop_assert_eq!(decode(&text).unwrap(), data);
        }

        #[test]
        fn valid_text_round_trips(groups in proptest::collection::vec(0u32..=u32::MAX, 0..16)) {
            let data: Vec<u8> = groups.iter().flat_map(|g| g.to_be_bytes()).collect();
            let text = encode(&data).unwrap();
            prop_assert_eq!(encode(&decode(&text).unwrap()).unwrap(), text);
        }

        #[test]
        fn decode_never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
        }

        #[test]
        fn decode_never_panics_on_near_alphabet_text(text in "[0-9a-zA-Z.:+=^!/*?&<>()\\[\\]{}@%$#~ é-]{0,40}") {
            if let Ok(data) = decode(&text) {
                prop_assert_eq!(encode(&data).unwrap(), text);
            }
        }
    }
}
