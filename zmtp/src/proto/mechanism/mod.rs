//! Security mechanisms: the handshake that follows the greeting (RFC 23 §"Authentication and
//! Confidentiality"): NULL (RFC 23), PLAIN (RFC 24) and CURVE (RFC 25/26).
//!
//! Each mechanism's handshake is a chain of states, each a type of its own, in the style of rustls:
//! handling a command consumes the state and returns the next one, so a half-done handshake (a CURVE
//! server holding its cookie key, a client without the server's transient key) cannot be used in
//! the wrong state by construction. [`Handshake`] is the connection's handle on whichever runs.
//!
//! A server-side handshake may need a decision on the peer's credentials (ZAP, RFC 27): it then
//! reports [`HandshakeStatus::Authenticate`] and waits for [`Handshake::handle_auth_reply`].

mod curve;
mod null;
mod plain;
#[cfg(not(feature = "test-rng"))]
pub(crate) mod random;
/// Under `test-rng` (fuzzing and deterministic tests only): [`random::seed`] resets this thread's
/// generator, so that a fuzz input replays the same handshake whatever ran before it.
#[cfg(feature = "test-rng")]
pub mod random;

use std::fmt;

use bytes::Bytes;

pub(crate) use curve::CurveCipher;
pub use curve::{MESSAGE_OVERHEAD, MESSAGE_PREFIX};

use super::command::Command;
use super::error::{ConnectionError, ProtocolError};
use super::greeting::MechanismName;
use super::keys::{CurvePublicKey, CurveSecretKey};
use super::metadata::Metadata;
use super::socket_type::SocketType;

/// How libzmq 4.3's PLAIN server spells the start of ERROR (see [`Handshake::decode_command`]).
const LIBZMQ_PLAIN_ERROR: &[u8] = b"^RROR";

/// A PLAIN password: shown by `Debug` as `<redacted>`, never in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Bytes);

impl Password {
    /// A password (at most 255 octets on the wire; checked where it is configured).
    pub fn new(password: impl Into<Bytes>) -> Self {
        Password(password.into())
    }

    /// The password's octets.
    pub fn expose(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The security mechanism of a connection and the credentials of its role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// No security (RFC 23's NULL mechanism), the default.
    #[default]
    Null,
    /// PLAIN client (RFC 24): sends a user name and password, in clear text.
    PlainClient {
        /// The user name (0-255 octets).
        username: Bytes,
        /// The password (0-255 octets).
        password: Password,
    },
    /// PLAIN server (RFC 24): checks the client's user name and password with the authenticator.
    PlainServer,
    /// CURVE client (RFC 26): our long-term key pair and the server's public key.
    CurveClient {
        /// Our long-term public key.
        public: CurvePublicKey,
        /// Our long-term secret key.
        secret: CurveSecretKey,
        /// The server's long-term public key.
        server: CurvePublicKey,
    },
    /// CURVE server (RFC 26): our long-term key pair.
    CurveServer {
        /// Our long-term public key (clients must know it).
        public: CurvePublicKey,
        /// Our long-term secret key.
        secret: CurveSecretKey,
    },
}

impl Security {
    /// The mechanism name sent in the greeting.
    pub fn mechanism(&self) -> MechanismName {
        match self {
            Security::Null => MechanismName::NULL,
            Security::PlainClient { .. } | Security::PlainServer => MechanismName::PLAIN,
            Security::CurveClient { .. } | Security::CurveServer { .. } => MechanismName::CURVE,
        }
    }

    /// The as-server flag sent in the greeting.
    pub fn as_server(&self) -> bool {
        matches!(self, Security::PlainServer | Security::CurveServer { .. })
    }
}

/// The credentials a peer presented, for an authenticator to decide on.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// NULL: none.
    Null,
    /// PLAIN: user name and password.
    Plain {
        /// The user name.
        username: Bytes,
        /// The password.
        password: Password,
    },
    /// CURVE: the client's long-term public key (proved by the handshake's vouch).
    Curve {
        /// The client's long-term public key.
        public_key: CurvePublicKey,
    },
}

impl Credentials {
    /// The mechanism the credentials belong to.
    pub fn mechanism(&self) -> MechanismName {
        match self {
            Credentials::Null => MechanismName::NULL,
            Credentials::Plain { .. } => MechanismName::PLAIN,
            Credentials::Curve { .. } => MechanismName::CURVE,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Null => f.write_str("Null"),
            Credentials::Plain { username, .. } => f
                .debug_struct("Plain")
                .field("username", &super::error::Escaped(username))
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Curve { public_key } => {
                f.debug_struct("Curve").field("public_key", public_key).finish()
            }
        }
    }
}

/// A decision on a peer's credentials (RFC 27's reply: status code, user id, metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReply {
    /// 200 allows; 300 (temporary), 400 (denied) and 500 (internal error) refuse.
    pub status: u16,
    /// Why, for logs (RFC 27's status text).
    pub status_text: Bytes,
    /// The authenticated user id (libzmq's `User-Id` message property); empty for none.
    pub user_id: Bytes,
    /// Properties the authenticator attaches to the connection (RFC 27's metadata frame).
    pub metadata: Metadata,
}

impl AuthReply {
    /// Allows the peer, as `user_id`.
    pub fn allow(user_id: impl Into<Bytes>) -> Self {
        AuthReply {
            status: 200,
            status_text: Bytes::from_static(b"OK"),
            user_id: user_id.into(),
            metadata: Metadata::new(),
        }
    }

    /// Refuses the peer with `status` (400 denied, 300 temporary, 500 internal error).
    pub fn deny(status: u16, text: impl Into<Bytes>) -> Self {
        AuthReply { status, status_text: text.into(), user_id: Bytes::new(), metadata: Metadata::new() }
    }

    /// Whether the peer is allowed.
    pub fn is_allowed(&self) -> bool {
        self.status == 200
    }
}

/// What a finished handshake hands the connection.
pub(crate) struct Completion {
    /// The peer's metadata (READY or INITIATE properties).
    pub metadata: Metadata,
    /// The CURVE session that boxes every later frame, if the mechanism encrypts.
    pub cipher: Option<CurveCipher>,
    /// What the authenticator said of the peer (server side with an authenticator).
    pub auth: Option<AuthReply>,
}

/// Where a handshake stands after a step.
pub(crate) enum HandshakeStatus {
    /// More commands are needed.
    InProgress,
    /// The peer's credentials need a decision: call [`Handshake::handle_auth_reply`].
    Authenticate(Credentials),
    /// Complete.
    Complete(Box<Completion>),
}

/// The running handshake of a connection, whichever mechanism.
pub(crate) enum Handshake {
    Null(null::Null),
    PlainClient(plain::Client),
    PlainServer(plain::Server),
    CurveClient(curve::Client),
    CurveServer(curve::Server),
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // States hold keys: show only which mechanism runs.
        f.write_str(match self {
            Handshake::Null(_) => "Handshake(NULL)",
            Handshake::PlainClient(_) => "Handshake(PLAIN client)",
            Handshake::PlainServer(_) => "Handshake(PLAIN server)",
            Handshake::CurveClient(_) => "Handshake(CURVE client)",
            Handshake::CurveServer(_) => "Handshake(CURVE server)",
        })
    }
}

impl Handshake {
    /// The handshake for `security`; `authenticate` makes a server (or NULL) ask for a decision on
    /// the peer's credentials before completing.
    pub(crate) fn new(security: &Security, authenticate: bool, socket_type: SocketType) -> Handshake {
        match security {
            Security::Null => Handshake::Null(null::Null::new(authenticate)),
            Security::PlainClient { username, password } => {
                Handshake::PlainClient(plain::Client::new(username.clone(), password.clone()))
            }
            Security::PlainServer => Handshake::PlainServer(plain::Server::new(authenticate, socket_type)),
            Security::CurveClient { public, secret, server } => {
                Handshake::CurveClient(curve::Client::new(*public, secret.clone(), *server))
            }
            Security::CurveServer { public, secret } => {
                Handshake::CurveServer(curve::Server::new(*public, secret.clone(), authenticate, socket_type))
            }
        }
    }

    /// Decodes a command of the handshake. CURVE's commands reach the mechanism undecoded (its READY
    /// is a box, not metadata). A PLAIN client also reads the ERROR libzmq's PLAIN server sends: its
    /// `"\x05ERROR"` literal is C for `"^RROR"` (the hex escape takes the `E`), so a libzmq 4.3
    /// refusal arrives as `^RROR` + reason, which must still count as the server's ERROR.
    pub(crate) fn decode_command(&self, body: Bytes) -> Result<Command, ProtocolError> {
        match self {
            Handshake::CurveClient(_) | Handshake::CurveServer(_) => Command::decode_raw(body),
            Handshake::PlainClient(_) if body.starts_with(LIBZMQ_PLAIN_ERROR) => {
                let reason = body.slice(LIBZMQ_PLAIN_ERROR.len()..);
                match reason.split_first() {
                    Some((&len, rest)) if usize::from(len) == rest.len() => {
                        Ok(Command::Error { reason: reason.slice(1..) })
                    }
                    _ => {
                        Err(ProtocolError::MalformedCommand { command: "ERROR", what: "libzmq PLAIN ERROR" })
                    }
                }
            }
            _ => Command::decode(body),
        }
    }

    /// Whether this side may send ERROR to the peer. RFC 26: "A client peer SHALL NOT send ERROR to
    /// the server"; RFC 24 has only the server send it too.
    pub(crate) fn may_send_error(&self) -> bool {
        !matches!(self, Handshake::PlainClient(_) | Handshake::CurveClient(_))
    }

    /// Validates the peer's as-server flag. NULL ignores it (libzmq accepts 1, reliability.md A-G11).
    /// Under PLAIN and CURVE exactly one side is the server, but libzmq 4.3 always sends 0 and picks
    /// its role from its own options alone, so 0 from the peer must be accepted whatever our role;
    /// only a peer that claims to be a server when we are one is refused. (Two clients fail at
    /// their first command: each expects the other's reply to its HELLO.)
    pub(crate) fn check_peer_as_server(&self, ours: bool, theirs: bool) -> Result<(), ProtocolError> {
        match self {
            Handshake::Null(_) => Ok(()),
            _ if ours && theirs => Err(ProtocolError::AsServerConflict(true)),
            _ => Ok(()),
        }
    }

    /// Starts the handshake once greetings are exchanged. `local` is our metadata.
    pub(crate) fn start(&mut self, local: &Metadata, out: &mut Vec<Command>) -> Result<(), ConnectionError> {
        match self {
            Handshake::Null(m) => {
                m.start(local, out);
                Ok(())
            }
            Handshake::PlainClient(m) => {
                m.start(out);
                Ok(())
            }
            Handshake::PlainServer(_) | Handshake::CurveServer(_) => Ok(()),
            Handshake::CurveClient(m) => m.start(out),
        }
    }

    /// Handles one command of the handshake.
    pub(crate) fn handle_command(
        &mut self,
        command: Command,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        if let Command::Error { reason } = command {
            // RFC 23: "The peer SHALL treat an incoming ERROR command as fatal". Only a server may
            // send it: a client's ERROR is a protocol error all the same.
            return Err(ConnectionError::PeerError { reason });
        }
        match self {
            Handshake::Null(m) => m.handle_command(command),
            Handshake::PlainClient(m) => m.handle_command(command, local, out),
            Handshake::PlainServer(m) => m.handle_command(command, local, out),
            Handshake::CurveClient(m) => m.handle_command(command, local, out),
            Handshake::CurveServer(m) => m.handle_command(command, local, out),
        }
    }

    /// Continues a handshake that asked for a decision on the peer's credentials.
    pub(crate) fn handle_auth_reply(
        &mut self,
        reply: AuthReply,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        if !reply.is_allowed() {
            // RFC 27 via libzmq: the server sends ERROR with the status code as the reason.
            if self.may_send_error() {
                let code = reply.status.to_string();
                out.push(Command::Error { reason: Bytes::from(code.into_bytes()) });
            }
            return Err(ConnectionError::AuthenticationFailed {
                status: reply.status,
                text: reply.status_text,
            });
        }
        match self {
            Handshake::Null(m) => m.handle_auth_reply(reply),
            Handshake::PlainServer(m) => m.handle_auth_reply(reply, out),
            Handshake::CurveServer(m) => m.handle_auth_reply(reply, local, out),
            Handshake::PlainClient(_) | Handshake::CurveClient(_) => Err(unasked()),
        }
    }
}

/// `UnexpectedCommand` for `command` during `state`.
pub(crate) fn unexpected(command: &Command, state: &'static str) -> ConnectionError {
    ProtocolError::UnexpectedCommand { name: command.name_bytes(), state }.into()
}

/// An authenticator's reply that no handshake state asked for (a caller's mistake, or a mechanism
/// whose role never asks): it ends the handshake rather than being taken as a decision.
pub(crate) fn unasked() -> ConnectionError {
    ProtocolError::UnexpectedCommand { name: Bytes::from_static(b"ZAP"), state: "unasked" }.into()
}

/// `MalformedCommand` for `command`.
pub(crate) fn malformed(command: &'static str, what: &'static str) -> ConnectionError {
    ProtocolError::MalformedCommand { command, what }.into()
}
