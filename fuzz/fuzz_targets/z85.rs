//! Z85 (RFC 32) decoding of arbitrary text, and both round trips, against a reference decoder written
//! here from the RFC (libzmq's `test_z85_decode_fuzzer` checks only that decoding does not crash).
//!
//! The input is used three ways: as text (UTF-8, or lossily converted), as that text cut to a
//! multiple of 5 octets (libzmq's fuzzer does the same), and as binary cut to a multiple of 4.
//!
//! Invariants: no panic; `z85::decode` returns exactly what the reference returns, error included
//! (the first character outside the alphabet and its byte offset, else a length not a multiple of 5,
//! else the first group over 32 bits); when decoding succeeds, encoding gives the text back
//! (`encode(decode(s)) == s`: no two texts decode to the same octets, because overflowing groups are
//! refused); `decode(encode(b)) == b` for binary of a multiple of 4 octets, the text 5/4 as long and
//! all in the alphabet, and other lengths refused; a CURVE key parsed from Z85 prints back as its
//! (trimmed) text; error messages format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zmtp::proto::z85::{decode, encode, Z85Error};
use zmtp::proto::{CurvePublicKey, CurveSecretKey};

/// RFC 32's alphabet, spelled out again (not taken from the crate).
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

fn digit(c: char) -> Option<u64> {
    u8::try_from(c).ok().and_then(|b| ALPHABET.iter().position(|&a| a == b)).map(|d| d as u64)
}

fn reference_decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    if let Some((position, character)) = text.char_indices().find(|&(_, c)| digit(c).is_none()) {
        return Err(Z85Error::BadCharacter { position, character });
    }
    if !text.len().is_multiple_of(5) {
        return Err(Z85Error::BadLength { len: text.len(), multiple: 5 });
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    for (i, group) in chars.chunks(5).enumerate() {
        let value = group.iter().fold(0u64, |acc, &c| acc * 85 + digit(c).unwrap_or(0));
        if value > u64::from(u32::MAX) {
            return Err(Z85Error::Overflow { position: i * 5 });
        }
        out.extend_from_slice(&(value as u32).to_be_bytes());
    }
    Ok(out)
}

fn check_text(text: &str) {
    let got = decode(text);
    assert_eq!(got, reference_decode(text), "decode({text:?})");
    match got {
        Ok(data) => {
            assert_eq!(data.len(), text.len() / 5 * 4);
            assert_eq!(encode(&data).as_deref(), Ok(text), "encode(decode(s)) != s");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(key) = CurvePublicKey::from_z85(text) {
        assert_eq!(key.to_z85(), text.trim());
        assert_eq!(key.to_string(), text.trim());
    }
    if let Ok(key) = CurveSecretKey::from_z85(text) {
        assert_eq!(key.to_z85(), text.trim());
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_text(&text);
    // libzmq's fuzzer: the text cut to a multiple of 5 octets (here: at a character boundary).
    let mut cut = text.len() / 5 * 5;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    check_text(&text[..cut]);

    // Binary round trip.
    let whole = &data[..data.len() / 4 * 4];
    let encoded = encode(whole).expect("a multiple of 4 octets encodes");
    assert_eq!(encoded.len(), whole.len() / 4 * 5);
    assert!(encoded.bytes().all(|b| ALPHABET.contains(&b)), "encoded outside the alphabet: {encoded:?}");
    assert_eq!(decode(&encoded).as_deref(), Ok(whole), "decode(encode(b)) != b");
    if !data.len().is_multiple_of(4) {
        assert_eq!(encode(data), Err(Z85Error::BadLength { len: data.len(), multiple: 4 }));
    }
    // Keys from the first 32 octets, through Z85 and back.
    if let Some(bytes) = data.get(..32) {
        let bytes: [u8; 32] = bytes.try_into().expect("32 octets");
        let public = CurvePublicKey::from_bytes(bytes);
        assert_eq!(CurvePublicKey::from_z85(&public.to_z85()), Ok(public));
        let secret = CurveSecretKey::from_bytes(bytes);
        let back = CurveSecretKey::from_z85(&secret.to_z85()).expect("a key's own Z85 parses");
        assert_eq!(back, secret);
    }
});
