//! The CURVE session after the handshake: every frame, message or command, travels as a MESSAGE
//! whose box holds a flags octet and the frame's body (RFC 26 §"MESSAGE").
//!
//! ```text
//! outer frame (flags 0x00, or LONG):  \x07MESSAGE | short nonce (8) | Box[flags + body]
//! box flags: 0x01 MORE, 0x02 COMMAND (libzmq's); the other bits are reserved and refused
//! ```
//!
//! Two places where we are stricter than libzmq 4.3.5 (see docs/differences.md): MORE and COMMAND
//! are taken only from inside the box (libzmq ORs in the flags of the unauthenticated outer frame, so
//! someone on the path can join two messages or turn data into a command), and reserved bits in the
//! boxed flags close the connection.

use bytes::{BufMut, BytesMut};
use crypto_secretbox::aead::consts::U10;
use crypto_secretbox::aead::generic_array::GenericArray;
use poly1305::universal_hash::KeyInit;
use poly1305::Poly1305;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use salsa20::Salsa20;
use zeroize::Zeroizing;

use super::{ct_eq, short_nonce, Secret, MESSAGE_C_PREFIX, MESSAGE_S_PREFIX, TAG_LEN};
use crate::proto::error::{ConnectionError, ProtocolError};
use crate::proto::frame::FrameHeader;

/// The name that starts every MESSAGE body.
pub const MESSAGE_PREFIX: &[u8; 8] = b"\x07MESSAGE";
/// Octets a MESSAGE adds to a frame's body: name, short nonce, authenticator and flags.
pub const MESSAGE_OVERHEAD: usize = MESSAGE_PREFIX.len() + 8 + TAG_LEN + 1;

/// Boxed flag: more frames follow.
const BOX_MORE: u8 = 0x01;
/// Boxed flag: the frame is a command.
const BOX_COMMAND: u8 = 0x02;

/// The session after the handshake: one XSalsa20-Poly1305 stream per direction.
///
/// Every MESSAGE nonce of a direction is the same 16-octet prefix and an 8-octet counter, and
/// XSalsa20 derives its Salsa20 subkey from the key and the first 16 nonce octets alone (HSalsa20):
/// so each direction's subkey is derived once here, and each frame runs Salsa20 under it with the
/// counter as nonce. That is NaCl's `crypto_secretbox` exactly (the Poly1305 key is the keystream's
/// first 32 octets, the body is encrypted from octet 32 on, the tag authenticates the ciphertext),
/// minus one HSalsa20 per frame: measured 22-24% of the CPU per 16 B frame on both sides
/// (perf, this machine). `sealed_frames_match_crypto_secretbox` checks it byte for byte against
/// RustCrypto's `crypto_secretbox`.
pub(crate) struct CurveCipher {
    send_subkey: Secret,
    recv_subkey: Secret,
    /// The short nonce of our next MESSAGE.
    send_nonce: u64,
    /// The last short nonce the peer used: its next must be greater (CVE-2014-7203).
    recv_nonce: u64,
}

impl std::fmt::Debug for CurveCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveCipher")
            .field("send_nonce", &self.send_nonce)
            .field("recv_nonce", &self.recv_nonce)
            .finish_non_exhaustive()
    }
}

impl CurveCipher {
    /// The session of a completed handshake under the box key `key` (see
    /// [`super::box_key_bytes`]). `as_server` picks the nonce prefixes.
    pub(crate) fn new(key: &Secret, as_server: bool, send_nonce: u64, recv_nonce: u64) -> Self {
        let (send_prefix, recv_prefix) = if as_server {
            (MESSAGE_S_PREFIX, MESSAGE_C_PREFIX)
        } else {
            (MESSAGE_C_PREFIX, MESSAGE_S_PREFIX)
        };
        CurveCipher {
            send_subkey: subkey(key, send_prefix),
            recv_subkey: subkey(key, recv_prefix),
            send_nonce,
            recv_nonce,
        }
    }

    /// The whole frame that carries `body` (header included).
    pub(crate) fn sealed_len(body_len: usize) -> usize {
        let outer = MESSAGE_OVERHEAD + body_len;
        FrameHeader::data(outer, false).encoded_len() + outer
    }

    /// Whether `n` more frames may be sent.
    pub(crate) fn has_nonces(&self, n: usize) -> bool {
        u64::MAX - self.send_nonce >= n as u64
    }

    /// Takes the short nonce of our next MESSAGE.
    ///
    /// # Errors
    /// [`ConnectionError::NoncesExhausted`] after 2^64 - 2 frames: a nonce is never reused.
    pub(crate) fn next_nonce(&mut self) -> Result<u64, ConnectionError> {
        let n = self.send_nonce;
        self.send_nonce = n.checked_add(1).ok_or(ConnectionError::NoncesExhausted)?;
        Ok(n)
    }

    /// Writes the frame carrying `body` (the concatenation of its parts, with MORE and COMMAND as
    /// given) under short nonce `n` (from [`CurveCipher::next_nonce`]) to `out`, and boxes it in
    /// place: exactly [`CurveCipher::sealed_len`] octets. The body is copied once, into the box.
    pub(crate) fn seal(&self, n: u64, more: bool, command: bool, body: &[&[u8]], out: &mut BytesMut) {
        let body_len: usize = body.iter().map(|b| b.len()).sum();
        // The outer frame's flags are 0 (libzmq's): MORE and COMMAND live inside the box.
        FrameHeader::data(MESSAGE_OVERHEAD + body_len, false).encode(out);
        out.put_slice(MESSAGE_PREFIX);
        out.put_u64(n);
        let tag_at = out.len();
        out.put_bytes(0, TAG_LEN);
        let plain_at = out.len();
        out.put_u8((u8::from(more) * BOX_MORE) | (u8::from(command) * BOX_COMMAND));
        for part in body {
            out.put_slice(part);
        }
        let (mut stream, mac) = begin(&self.send_subkey, n);
        stream.apply_keystream(&mut out[plain_at..]);
        let tag = mac.compute_unpadded(&out[plain_at..]);
        out[tag_at..plain_at].copy_from_slice(&tag);
    }

    /// Opens a MESSAGE in place: `frame` is the outer frame's whole body. On success the plaintext
    /// body is `frame[MESSAGE_OVERHEAD..]`, and the boxed MORE and COMMAND flags are returned.
    ///
    /// # Errors
    /// A frame that is not a MESSAGE, is too short, reuses or goes back on a nonce, fails to
    /// authenticate, or has reserved flags set. RFC 26: the connection closes without an ERROR.
    pub(crate) fn open(&mut self, frame: &mut [u8]) -> Result<(bool, bool), ProtocolError> {
        if frame.get(..MESSAGE_PREFIX.len()) != Some(&MESSAGE_PREFIX[..]) {
            return Err(ProtocolError::NotAMessage);
        }
        if frame.len() < MESSAGE_OVERHEAD {
            return Err(ProtocolError::MalformedCommand {
                command: "MESSAGE",
                what: "shorter than 33 octets",
            });
        }
        let n = short_nonce(&frame[8..16]);
        if n <= self.recv_nonce {
            return Err(ProtocolError::InvalidSequence { nonce: n, last: self.recv_nonce });
        }
        let (head, boxed) = frame.split_at_mut(8 + 8 + TAG_LEN);
        let (mut stream, mac) = begin(&self.recv_subkey, n);
        // Authenticate the ciphertext before decrypting any of it.
        if !ct_eq(&mac.compute_unpadded(boxed), &head[16..]) {
            return Err(ProtocolError::Cryptographic { what: "MESSAGE box" });
        }
        stream.apply_keystream(boxed);
        // Only an authentic MESSAGE moves the window.
        self.recv_nonce = n;
        let flags = boxed[0];
        if flags & !(BOX_MORE | BOX_COMMAND) != 0 {
            return Err(ProtocolError::ReservedFlags { flags });
        }
        Ok((flags & BOX_MORE != 0, flags & BOX_COMMAND != 0))
    }
}

/// XSalsa20's subkey for every nonce starting with `prefix` (HSalsa20 of the key and the prefix).
fn subkey(key: &Secret, prefix: &[u8; 16]) -> Secret {
    let derived = Zeroizing::new(salsa20::hsalsa::<U10>(
        GenericArray::from_slice(&key[..]),
        GenericArray::from_slice(prefix),
    ));
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&derived);
    out
}

/// The Salsa20 stream for the frame with short nonce `n`, past the Poly1305 key taken from its first
/// 32 octets, and the Poly1305 instance under that key.
fn begin(subkey: &Secret, n: u64) -> (Salsa20, Poly1305) {
    let mut stream = Salsa20::new(GenericArray::from_slice(&subkey[..]), &n.to_be_bytes().into());
    let mut mac_key = Zeroizing::new(poly1305::Key::default());
    stream.apply_keystream(&mut mac_key);
    (stream, Poly1305::new(&mac_key))
}
