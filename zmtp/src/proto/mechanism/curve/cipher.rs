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
use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::aead::AeadInPlace;

use super::{nonce, short_nonce, BoxKey, MESSAGE_C_PREFIX, MESSAGE_S_PREFIX, TAG_LEN};
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

/// One direction's nonces and the session key shared by both.
pub(crate) struct CurveCipher {
    key: BoxKey,
    send_prefix: &'static [u8; 16],
    recv_prefix: &'static [u8; 16],
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
    /// The session of a completed handshake. `as_server` picks the nonce prefixes.
    pub(crate) fn new(key: BoxKey, as_server: bool, send_nonce: u64, recv_nonce: u64) -> Self {
        let (send_prefix, recv_prefix) = if as_server {
            (MESSAGE_S_PREFIX, MESSAGE_C_PREFIX)
        } else {
            (MESSAGE_C_PREFIX, MESSAGE_S_PREFIX)
        };
        CurveCipher { key, send_prefix, recv_prefix, send_nonce, recv_nonce }
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
        let nonce = nonce(self.send_prefix, &n.to_be_bytes());
        match self.key.encrypt_in_place_detached(&nonce, b"", &mut out[plain_at..]) {
            Ok(tag) => out[tag_at..plain_at].copy_from_slice(&tag),
            // XSalsa20-Poly1305 refuses only plaintexts past 2^38 octets, far beyond any frame we
            // accept to send. Should it ever happen, the frame goes out unauthenticable (zero tag,
            // no plain text): the peer closes the connection, nothing leaks.
            Err(_) => out[tag_at..].fill(0),
        }
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
        let tag = GenericArray::from_slice(&head[16..]);
        self.key
            .decrypt_in_place_detached(&nonce(self.recv_prefix, &n.to_be_bytes()), b"", boxed, tag)
            .map_err(|_| ProtocolError::Cryptographic { what: "MESSAGE box" })?;
        // Only an authentic MESSAGE moves the window.
        self.recv_nonce = n;
        let flags = boxed[0];
        if flags & !(BOX_MORE | BOX_COMMAND) != 0 {
            return Err(ProtocolError::ReservedFlags { flags });
        }
        Ok((flags & BOX_MORE != 0, flags & BOX_COMMAND != 0))
    }
}
