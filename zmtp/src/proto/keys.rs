//! CURVE keys (RFC 26): X25519 public and secret keys, their Z85 form (RFC 32), and key generation.
//!
//! A secret key is zeroized when dropped and never shown by `Debug`; a public key shows its Z85 text.

use std::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::z85::{self, Z85Error};

/// Octets in a CURVE key.
pub const KEY_LEN: usize = 32;
/// Characters in a CURVE key's Z85 text.
pub const Z85_KEY_LEN: usize = 40;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Z85 text of a key must be exactly 40 characters.
    #[error("a CURVE key in Z85 is 40 characters, got {0}")]
    BadZ85Length(usize),
    /// A binary key must be exactly 32 octets.
    #[error("a CURVE key is 32 octets, got {0}")]
    BadLength(usize),
    /// The text is not valid Z85.
    #[error("invalid Z85: {0}")]
    Z85(#[from] Z85Error),
    /// The public key is all zeros, of small order, not on the curve (a Diffie-Hellman with it
    /// would give a predictable shared secret), or not canonically encoded (an alias of another key).
    #[error("weak CURVE public key (all zeros, small order, not on the curve, or not canonical)")]
    WeakPublicKey,
    /// The operating system had no randomness to make a key with.
    #[error("no randomness from the operating system to make a key: {0}")]
    NoRandomness(String),
}

/// A CURVE (X25519) public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurvePublicKey([u8; KEY_LEN]);

impl CurvePublicKey {
    /// A public key from its 32 octets (not checked: see [`CurvePublicKey::is_weak`]).
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        CurvePublicKey(bytes)
    }

    /// A public key from a slice of exactly 32 octets.
    ///
    /// # Errors
    /// [`KeyError::BadLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; KEY_LEN]>::try_from(bytes).map(CurvePublicKey).map_err(|_| KeyError::BadLength(bytes.len()))
    }

    /// A public key from its 40-character Z85 text.
    ///
    /// # Errors
    /// [`KeyError`] for a wrong length or text that is not Z85.
    pub fn from_z85(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != Z85_KEY_LEN {
            return Err(KeyError::BadZ85Length(text.len()));
        }
        Self::from_slice(&z85::decode(text)?)
    }

    /// The 32 octets.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The 40-character Z85 text.
    pub fn to_z85(&self) -> String {
        // 32 octets are always a multiple of 4.
        z85::encode(&self.0).unwrap_or_default()
    }

    /// Whether a Diffie-Hellman with this key would be unsafe: the key is not a point of the curve
    /// (a twist point), or a point of small order (including all zeros), whose shared secret is
    /// predictable whatever our secret (libsodium refuses these too). Real keys never are.
    ///
    /// A non-canonical encoding (bit 255 set, or a coordinate of 2^255 - 19 or more) counts as weak
    /// too: X25519 reads it as the same point as its canonical twin (RFC 7748 §5 masks bit 255 and
    /// reduces mod p), so a peer holding one secret could present several different key octet
    /// strings, and a ZAP deny list compares octets. No honest X25519 implementation emits one; the
    /// fuzzer found the aliasing (a HELLO whose key differed in bit 255 still opened).
    pub fn is_weak(&self) -> bool {
        if !is_canonical(&self.0) {
            return true;
        }
        match MontgomeryPoint(self.0).to_edwards(0) {
            Some(point) => point.is_small_order(),
            None => true,
        }
    }
}

/// Whether `u` is the canonical little-endian encoding of a field element: below 2^255 - 19.
fn is_canonical(u: &[u8; KEY_LEN]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // 2^255 - 19 .. 2^255 - 1 are 0x7f, then thirty 0xff, then 0xed..=0xff in octet 0.
    !(u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed)
}

impl fmt::Debug for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurvePublicKey({})", self.to_z85())
    }
}

impl fmt::Display for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

impl std::str::FromStr for CurvePublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_z85(s)
    }
}

/// A CURVE (X25519) secret key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CurveSecretKey([u8; KEY_LEN]);

impl CurveSecretKey {
    /// A secret key from its 32 octets.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        CurveSecretKey(bytes)
    }

    /// A secret key from a slice of exactly 32 octets.
    ///
    /// # Errors
    /// [`KeyError::BadLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; KEY_LEN]>::try_from(bytes).map(CurveSecretKey).map_err(|_| KeyError::BadLength(bytes.len()))
    }

    /// A secret key from its 40-character Z85 text.
    ///
    /// # Errors
    /// [`KeyError`] for a wrong length or text that is not Z85.
    pub fn from_z85(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != Z85_KEY_LEN {
            return Err(KeyError::BadZ85Length(text.len()));
        }
        let mut bytes = z85::decode(text)?;
        let key = Self::from_slice(&bytes);
        bytes.zeroize();
        key
    }

    /// A new random secret key (from the operating system's generator).
    ///
    /// # Errors
    /// [`KeyError::NoRandomness`] if the operating system has no randomness to give.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::getrandom(&mut bytes).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        let key = CurveSecretKey(bytes);
        bytes.zeroize();
        Ok(key)
    }

    /// The 32 octets.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The 40-character Z85 text (handle with care: it is the secret).
    pub fn to_z85(&self) -> String {
        z85::encode(&self.0).unwrap_or_default()
    }

    /// The matching public key.
    pub fn public_key(&self) -> CurvePublicKey {
        CurvePublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }
}

impl fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveSecretKey(<redacted>)")
    }
}

impl PartialEq for CurveSecretKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time: secrets are compared only in tests and configuration checks, but cheaply so.
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for CurveSecretKey {}

/// Compares secrets (keys, passwords, authenticators) in time that does not depend on where they
/// differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A CURVE key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveKeyPair {
    /// The public key (give it to peers).
    pub public: CurvePublicKey,
    /// The secret key (keep it).
    pub secret: CurveSecretKey,
}

impl CurveKeyPair {
    /// The pair for `secret`.
    pub fn from_secret(secret: CurveSecretKey) -> Self {
        CurveKeyPair { public: secret.public_key(), secret }
    }
}

impl fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

/// A new random CURVE key pair (libzmq's `zmq_curve_keypair`).
///
/// # Errors
/// [`KeyError::NoRandomness`] if the operating system has no randomness to give.
pub fn curve_keypair() -> Result<CurveKeyPair, KeyError> {
    CurveSecretKey::generate().map(CurveKeyPair::from_secret)
}

/// The public key of a secret key (libzmq's `zmq_curve_public`).
pub fn curve_public(secret: &CurveSecretKey) -> CurvePublicKey {
    secret.public_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let pair = CurveKeyPair::from_secret(CurveSecretKey::from_bytes([7; 32]));
        let shown = format!("{pair:?} {:?}", pair.secret);
        assert!(!shown.contains(&pair.secret.to_z85()), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn weak_public_keys_are_recognised() {
        assert!(CurvePublicKey::from_bytes([0; 32]).is_weak());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(CurvePublicKey::from_bytes(one).is_weak());
        let good = CurveSecretKey::from_bytes([9; 32]).public_key();
        assert!(!good.is_weak());
    }

    #[test]
    fn non_canonical_public_keys_are_weak() {
        let good = CurveSecretKey::from_bytes([9; 32]).public_key();
        let mut alias = *good.as_bytes();
        alias[31] |= 0x80;
        assert!(CurvePublicKey::from_bytes(alias).is_weak(), "bit 255 set");
        // p + 9 aliases the base point 9; p itself aliases 0.
        let mut p_plus_9 = [0xff; 32];
        p_plus_9[31] = 0x7f;
        p_plus_9[0] = 0xed + 9;
        assert!(CurvePublicKey::from_bytes(p_plus_9).is_weak());
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[31] = 0x7f;
        p_minus_1[0] = 0xec;
        assert!(is_canonical(&p_minus_1));
    }
}
