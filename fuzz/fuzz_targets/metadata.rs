//! `Metadata::decode` on an arbitrary READY body (the octets after `05 READY`).
//!
//! Invariants, for every block that decodes:
//! - `encode()` reproduces the input byte-for-byte, and `encoded_len()` is its length;
//! - every name is 1..=255 octets, no two names are equal ignoring ASCII case, at most 256 properties;
//! - lookups are case-insensitive and find the property that was decoded;
//! - decoding the re-encoded block gives the same metadata.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zmtp::proto::metadata::MAX_PROPERTIES;
use zmtp::proto::Metadata;

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let Ok(md) = Metadata::decode(&input) else {
        return;
    };
    assert_eq!(md.encoded_len(), data.len(), "encoded_len");
    let mut out = Vec::with_capacity(data.len());
    md.encode(&mut out);
    assert_eq!(out, data, "re-encoding is not byte-identical");

    assert!(md.len() <= MAX_PROPERTIES);
    assert_eq!(md.is_empty(), data.is_empty());
    let props: Vec<_> = md.iter().collect();
    assert_eq!(props.len(), md.len());
    for (i, (name, value)) in props.iter().enumerate() {
        assert!(!name.is_empty() && name.len() <= 255);
        for (other, _) in &props[..i] {
            assert!(!other.eq_ignore_ascii_case(name), "duplicate property names survived decoding");
        }
        if let Ok(s) = std::str::from_utf8(name) {
            assert_eq!(md.get(s), Some(*value));
            assert_eq!(md.get(&s.to_ascii_uppercase()), Some(*value));
            assert_eq!(md.get(&s.to_ascii_lowercase()), Some(*value));
        }
    }
    assert_eq!(Metadata::decode(&Bytes::from(out)).as_ref(), Ok(&md));
});
