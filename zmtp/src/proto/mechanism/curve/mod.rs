//! CURVE (RFC 25 CurveZMQ, RFC 26 its ZMTP mapping): a handshake that proves both long-term keys
//! and agrees on short-term ones, then every frame boxed as a MESSAGE.
//!
//! ```text
//! C: HELLO    C', Box[64 zeros](C'->S)                          200 octets
//! S: WELCOME  Box[S' + cookie](S->C')                           168 octets
//!             cookie = Box[C' + s'](K), K a key of this connection alone
//! C: INITIATE cookie, Box[C + vouch + metadata](C'->S')         257+ octets
//!             vouch = Box[C' + S](C->S')
//! S: READY    Box[metadata](S'->C')                             30+ octets
//! both: MESSAGE Box[flags + body](C'<->S'), short nonces strictly increasing per direction
//! ```
//!
//! The primitives are RustCrypto's and dalek's (`crypto_box`'s X25519 + XSalsa20-Poly1305,
//! `crypto_secretbox` for the cookie), never our own.

mod cipher;
mod client;
mod server;

pub(crate) use cipher::CurveCipher;
pub use cipher::{MESSAGE_OVERHEAD, MESSAGE_PREFIX};
pub(crate) use client::Client;
pub(crate) use server::Server;

use crypto_secretbox::aead::consts::U10;
use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::aead::AeadInPlace;
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};
use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::Zeroizing;

use crate::proto::error::{ConnectionError, ProtocolError};
use crate::proto::keys::CurvePublicKey;

/// A CURVE nonce: 24 octets, a 16-octet prefix and an 8-octet short nonce, or an 8-octet prefix and
/// a 16-octet long nonce.
pub(crate) type Nonce = GenericArray<u8, crypto_secretbox::aead::consts::U24>;

/// A precomputed box key between one public key and one secret key (NaCl's `crypto_box_beforenm`):
/// XSalsa20-Poly1305 under it is `crypto_box`. Zeroized on drop.
pub(crate) type BoxKey = XSalsa20Poly1305;

/// A secret key (transient or long-term) held for the handshake: zeroized on drop.
pub(crate) type Secret = Zeroizing<[u8; 32]>;

/// Poly1305 authenticator length, the overhead of every box.
pub(crate) const TAG_LEN: usize = 16;

pub(crate) const HELLO_PREFIX: &[u8; 16] = b"CurveZMQHELLO---";
pub(crate) const WELCOME_PREFIX: &[u8; 8] = b"WELCOME-";
pub(crate) const COOKIE_PREFIX: &[u8; 8] = b"COOKIE--";
pub(crate) const INITIATE_PREFIX: &[u8; 16] = b"CurveZMQINITIATE";
pub(crate) const VOUCH_PREFIX: &[u8; 8] = b"VOUCH---";
pub(crate) const READY_PREFIX: &[u8; 16] = b"CurveZMQREADY---";
pub(crate) const MESSAGE_C_PREFIX: &[u8; 16] = b"CurveZMQMESSAGEC";
pub(crate) const MESSAGE_S_PREFIX: &[u8; 16] = b"CurveZMQMESSAGES";

/// HELLO's body, name included: RFC 26 "exactly 200 octets".
pub(crate) const HELLO_LEN: usize = 200;
/// WELCOME's body, name included.
pub(crate) const WELCOME_LEN: usize = 168;
/// INITIATE's smallest body, name included (no metadata).
pub(crate) const INITIATE_MIN_LEN: usize = 257;
/// READY's smallest body, name included (no metadata).
pub(crate) const READY_MIN_LEN: usize = 30;
/// A cookie: a 16-octet long nonce and an 80-octet box.
pub(crate) const COOKIE_LEN: usize = 96;
/// A vouch: a 16-octet long nonce and an 80-octet box.
pub(crate) const VOUCH_LEN: usize = 96;

/// A nonce from a prefix and the short or long nonce that completes it to 24 octets.
pub(crate) fn nonce(prefix: &[u8], tail: &[u8]) -> Nonce {
    let mut n = Nonce::default();
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(tail);
    n
}

/// `Box[plaintext]`: the 16-octet authenticator, then the ciphertext (NaCl's `crypto_box` layout).
pub(crate) fn seal(key: &BoxKey, nonce: &Nonce, plaintext: &[u8]) -> Result<Vec<u8>, ConnectionError> {
    let mut out = vec![0u8; TAG_LEN + plaintext.len()];
    out[TAG_LEN..].copy_from_slice(plaintext);
    let tag = key
        .encrypt_in_place_detached(nonce, b"", &mut out[TAG_LEN..])
        .map_err(|_| ConnectionError::Protocol(ProtocolError::Cryptographic { what: "encryption failed" }))?;
    out[..TAG_LEN].copy_from_slice(&tag);
    Ok(out)
}

/// Opens `Box[...]` (authenticator first). `what` names the box in the error.
pub(crate) fn open(
    key: &BoxKey,
    nonce: &Nonce,
    boxed: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, ConnectionError> {
    let bad = || ConnectionError::Protocol(ProtocolError::Cryptographic { what });
    if boxed.len() < TAG_LEN {
        return Err(bad());
    }
    let (tag, ciphertext) = boxed.split_at(TAG_LEN);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    key.decrypt_in_place_detached(nonce, b"", &mut plain, GenericArray::from_slice(tag))
        .map_err(|_| bad())?;
    Ok(plain)
}

/// The box key between a peer's public key and our secret: X25519, then HSalsa20 of the shared
/// point with a zero nonce, then XSalsa20-Poly1305 under that key, which is NaCl's `crypto_box`
/// (and exactly what `crypto_box::SalsaBox::new` does: `box_keys_match_crypto_box` checks it). It is
/// composed here from dalek's X25519 and RustCrypto's HSalsa20 and secretbox so that every secret on
/// the way is zeroized: crypto_box 0.9.1's `SecretKey` zeroizes its scalar on drop but not the copy
/// of its bytes. An all-zero shared point (a small-order public key) is refused, as libsodium's
/// `crypto_box_beforenm` does.
pub(crate) fn box_key(public: &[u8; 32], secret: &Secret) -> Result<BoxKey, ConnectionError> {
    box_key_bytes(public, secret).map(|key| as_box(&key))
}

/// The box under key octets from [`box_key_bytes`].
pub(crate) fn as_box(key: &Secret) -> BoxKey {
    XSalsa20Poly1305::new(GenericArray::from_slice(&key[..]))
}

/// The octets of [`box_key`]'s key (the session's MESSAGE cipher derives from them).
pub(crate) fn box_key_bytes(public: &[u8; 32], secret: &Secret) -> Result<Secret, ConnectionError> {
    let shared = Zeroizing::new(MontgomeryPoint(*public).mul_clamped(**secret).to_bytes());
    if shared.iter().all(|&b| b == 0) {
        return Err(ConnectionError::Protocol(ProtocolError::WeakKey { what: "shared secret" }));
    }
    let key = Zeroizing::new(salsa20::hsalsa::<U10>(
        GenericArray::from_slice(&shared[..]),
        &GenericArray::default(),
    ));
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&key);
    Ok(out)
}

/// A new transient (short-term) key pair: the secret, and its public key.
pub(crate) fn transient_keypair() -> Result<(Secret, [u8; 32]), ConnectionError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    super::random::fill(&mut secret[..])?;
    let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
    Ok((secret, public))
}

/// A peer's public key, refused if a Diffie-Hellman with it would be unsafe.
pub(crate) fn peer_key(bytes: &[u8], what: &'static str) -> Result<[u8; 32], ConnectionError> {
    let key: [u8; 32] =
        bytes.try_into().map_err(|_| ConnectionError::Protocol(ProtocolError::WeakKey { what }))?;
    if CurvePublicKey::from_bytes(key).is_weak() {
        return Err(ConnectionError::Protocol(ProtocolError::WeakKey { what }));
    }
    Ok(key)
}

pub(crate) use crate::proto::keys::ct_eq;

/// The 8-octet short nonce at the front of `bytes`.
pub(crate) fn short_nonce(bytes: &[u8]) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(n)
}

#[cfg(test)]
mod tests;
