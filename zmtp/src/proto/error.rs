//! Errors of the protocol core: small enums that never allocate (peer-supplied bytes are kept as
//! [`Bytes`] slices of the input) and say exactly what was wrong.

use std::fmt;

use bytes::Bytes;

use super::socket_type::SocketType;

/// Which side caused a connection to end (as h2's `Initiator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// We ended it: our limits, our timers, our application.
    Local,
    /// The peer ended it: it sent bad bytes, sent ERROR, or closed its side.
    Peer,
}

/// Peer bytes shown escaped and capped at 64 octets, for log lines and error messages.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CAP: usize = 64;
        let shown = &self.0[..self.0.len().min(CAP)];
        f.write_str("\"")?;
        for &b in shown {
            for c in std::ascii::escape_default(b) {
                fmt::Write::write_char(f, char::from(c))?;
            }
        }
        f.write_str("\"")?;
        if self.0.len() > CAP {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A peer broke the protocol, or crossed one of our limits. The connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first octet is not `0xFF`, or octet 10 has its low bit clear: an unversioned ZMTP 1.0 peer.
    #[error("not a ZMTP 3.x greeting: {what} (ZMTP 1.0 peers are not supported)")]
    LegacyPeer {
        /// Which signature check failed.
        what: &'static str,
    },
    /// The peer announced a major version below 3 (ZMTP 2.0, or an unknown older revision).
    #[error("peer speaks ZMTP revision {major}; only 3.x is supported")]
    UnsupportedVersion {
        /// The peer's major version octet.
        major: u8,
    },
    /// The peer's greeting names another security mechanism than ours (exact 20-octet compare).
    #[error("security mechanism mismatch: we use {ours}, peer sent {}", Escaped(theirs))]
    MechanismMismatch {
        /// Our mechanism name.
        ours: &'static str,
        /// The peer's 20 mechanism octets, trailing NULs removed.
        theirs: Bytes,
    },
    /// Both or neither side claims to be the server under a mechanism that needs exactly one.
    #[error("as-server conflict: both peers claim as-server={0}")]
    AsServerConflict(bool),
    /// A frame's flags octet has one of the reserved bits 7-3 set.
    #[error("frame flags {flags:#04x} have reserved bits set")]
    ReservedFlags {
        /// The flags octet.
        flags: u8,
    },
    /// A command frame has the MORE flag set.
    #[error("command frame has the MORE flag set")]
    CommandWithMore,
    /// A data frame is larger than `max_frame_size`.
    #[error("frame of {len} bytes exceeds max {max}")]
    FrameTooLarge {
        /// Declared size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A command frame is larger than `max_command_size`.
    #[error("command of {len} bytes exceeds max {max}")]
    CommandTooLarge {
        /// Declared size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A multipart message grew past `max_message_size` bytes in total.
    #[error("message of {len}+ bytes exceeds max {max}")]
    MessageTooLarge {
        /// Bytes the message would have with the frame just announced.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A multipart message has more than `max_frames_per_message` frames.
    #[error("message of more than {max} frames")]
    TooManyFrames {
        /// The limit.
        max: u32,
    },
    /// A command body is malformed (`command` is its name where one could be read).
    #[error("malformed {command} command: {what}")]
    MalformedCommand {
        /// The command's name (`"?"` when the name itself is unreadable).
        command: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// Metadata (READY or INITIATE properties) is malformed.
    #[error("malformed metadata: {0}")]
    MalformedMetadata(&'static str),
    /// The same property name (compared case-insensitively) appears twice.
    #[error("duplicate metadata property {}", Escaped(.0))]
    DuplicateProperty(Bytes),
    /// A command that is not allowed in the current state (e.g. PING before READY).
    #[error("unexpected {} command {state}", Escaped(name))]
    UnexpectedCommand {
        /// The command's name.
        name: Bytes,
        /// Where we were, e.g. "during the NULL handshake".
        state: &'static str,
    },
    /// A data frame arrived before the handshake completed.
    #[error("data frame before the handshake completed")]
    MessageBeforeReady,
    /// The peer's socket type may not talk to ours (RFC 23 compatibility table).
    #[error("incompatible socket type: we are {ours}, peer is {}", Escaped(theirs))]
    IncompatibleSocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's `Socket-Type` value as sent.
        theirs: Bytes,
    },
    /// A CURVE box failed to open (wrong key, altered octets), or opened to content that is not what
    /// the handshake requires (a cookie of another connection, a vouch for another server).
    #[error("CURVE: {what}")]
    Cryptographic {
        /// Which box, or what was wrong with its content.
        what: &'static str,
    },
    /// A CURVE short nonce did not increase: a replayed or reordered command (CVE-2014-7203).
    #[error("CURVE nonce {nonce} does not follow {last}")]
    InvalidSequence {
        /// The nonce received.
        nonce: u64,
        /// The last nonce accepted in that direction.
        last: u64,
    },
    /// A CURVE public key that would make the shared secret predictable (all zeros, small order,
    /// not on the curve), or one not canonically encoded (an alias of another key's octets).
    #[error("CURVE: weak {what}")]
    WeakKey {
        /// Which key.
        what: &'static str,
    },
    /// A frame after a CURVE handshake that is not a MESSAGE (plain text where boxes must be).
    #[error("CURVE: a frame after the handshake is not a MESSAGE")]
    NotAMessage,
    /// The peer's `Identity` property is longer than 255 octets.
    #[error("identity of {len} bytes exceeds 255")]
    IdentityTooLong {
        /// The identity's length.
        len: usize,
    },
}

impl ProtocolError {
    /// The reason text we put in an ERROR command when we reject a peer for this error, if we send one.
    ///
    /// RFC 23: a peer "SHOULD handle errors by returning an ERROR command, and then disconnecting".
    /// We send ERROR for handshake validation failures (socket type, identity); for framing errors the
    /// stream is no longer trustworthy and we simply close.
    pub fn error_reason(&self) -> Option<&'static str> {
        match self {
            // RFC 23: "error-reason = OCTET 0*255VCHAR": VCHAR has no space.
            ProtocolError::IncompatibleSocketType { .. } => Some("Invalid-socket-type"),
            ProtocolError::IdentityTooLong { .. } => Some("Invalid-identity"),
            ProtocolError::DuplicateProperty(_) | ProtocolError::MalformedMetadata(_) => {
                Some("Malformed-metadata")
            }
            _ => None,
        }
    }
}

/// Why a connection ended. Reported once, as [`super::Event::Closed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer broke the protocol or crossed a limit.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer sent an ERROR command. RFC 23: fatal; do not reconnect with the same credentials.
    #[error("peer sent ERROR: {}", Escaped(reason))]
    PeerError {
        /// The reason text (at most 255 octets), as sent.
        reason: Bytes,
    },
    /// The handshake did not complete within the handshake timeout.
    #[error("handshake not completed within {0:?}")]
    HandshakeTimeout(std::time::Duration),
    /// We sent a PING and received nothing within the heartbeat timeout.
    #[error("no traffic within {0:?} of our PING")]
    HeartbeatTimeout(std::time::Duration),
    /// The peer's PING asked us to disconnect if nothing arrived within its TTL, and nothing did.
    #[error("no traffic within the peer's PING TTL of {0:?}")]
    PeerTtlExpired(std::time::Duration),
    /// The peer closed its side of the connection after the handshake. `mid_message` is true when
    /// undecoded bytes (part of a frame or command) or frames of an unfinished message were dropped.
    #[error("peer closed the connection{}", if *mid_message { " in the middle of a message (partial message dropped)" } else { "" })]
    PeerClosed {
        /// Whether a partial message, frame or command was discarded.
        mid_message: bool,
    },
    /// The peer closed the connection before the handshake completed.
    #[error("peer closed the connection before the handshake completed")]
    PeerClosedDuringHandshake,
    /// The application closed the connection.
    #[error("closed locally")]
    LocallyClosed,
    /// Our authenticator refused the peer's credentials (ZAP status 300, 400 or 500).
    #[error("authentication refused: {status} {}", Escaped(text))]
    AuthenticationFailed {
        /// The status code (RFC 27).
        status: u16,
        /// The status text.
        text: Bytes,
    },
    /// The operating system had no randomness for the CURVE handshake.
    #[error("no randomness for the CURVE handshake")]
    NoRandomness,
    /// 2^64 - 1 CURVE messages were sent on this connection: a nonce is never reused.
    #[error("CURVE nonces exhausted")]
    NoncesExhausted,
}

impl ConnectionError {
    /// Which side caused the end.
    pub fn initiator(&self) -> Initiator {
        match self {
            // A size of 2^63 or more breaks the RFC itself: the peer's fault, not our limit.
            // (2^63 - 1 is `frame::MAX_LONG_SIZE`, spelled out so that errors do not depend on frames.)
            ConnectionError::Protocol(ProtocolError::FrameTooLarge { max, .. }) if *max == u64::MAX >> 1 => {
                Initiator::Peer
            }
            ConnectionError::Protocol(ProtocolError::FrameTooLarge { .. })
            | ConnectionError::Protocol(ProtocolError::CommandTooLarge { .. })
            | ConnectionError::Protocol(ProtocolError::MessageTooLarge { .. })
            | ConnectionError::Protocol(ProtocolError::TooManyFrames { .. })
            | ConnectionError::HandshakeTimeout(_)
            | ConnectionError::HeartbeatTimeout(_)
            | ConnectionError::LocallyClosed
            | ConnectionError::AuthenticationFailed { .. }
            | ConnectionError::NoRandomness
            | ConnectionError::NoncesExhausted => Initiator::Local,
            _ => Initiator::Peer,
        }
    }

    /// Whether a connecting socket may reconnect to this peer with the same credentials.
    ///
    /// RFC 23: an ERROR command is fatal, "and not re-connecting using the same security credentials";
    /// "The peer SHALL treat an unexpected connection close as a temporary error, and SHOULD reconnect."
    pub fn may_reconnect(&self) -> bool {
        !matches!(self, ConnectionError::PeerError { .. } | ConnectionError::LocallyClosed)
    }
}

/// Why a send was refused. The message is handed back where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The handshake has not completed yet; nothing may be sent before it does.
    #[error("handshake not complete")]
    NotReady(T),
    /// The connection is closed.
    #[error("connection closed")]
    Closed(T),
    /// A message must have at least one frame.
    #[error("a message needs at least one frame")]
    EmptyMessage,
}
