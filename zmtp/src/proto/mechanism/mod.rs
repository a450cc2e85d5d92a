//! Security mechanisms: the handshake that follows the greeting (RFC 23 §"Authentication and
//! Confidentiality"). NULL is here; PLAIN (RFC 24) and CURVE (RFC 25/26) plug into the same trait.

mod null;

use std::fmt;

pub use null::Null;

use super::command::Command;
use super::error::{ConnectionError, ProtocolError};
use super::greeting::MechanismName;
use super::metadata::Metadata;

/// Where a mechanism's handshake stands after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// More commands are needed.
    InProgress,
    /// The handshake is complete; here is the peer's metadata (from READY or INITIATE).
    Complete(Metadata),
}

/// A security mechanism's handshake, driven by the connection.
///
/// The connection has already checked that both greetings name this mechanism (exact 20-octet
/// compare). It calls [`Mechanism::start`] once, then [`Mechanism::handle_command`] for every command
/// frame until the handshake completes; commands pushed to `out` are sent in order. Data frames before
/// completion are rejected by the connection, never shown to the mechanism.
pub trait Mechanism: fmt::Debug + Send {
    /// The name sent in our greeting.
    fn name(&self) -> MechanismName;

    /// The as-server flag sent in our greeting.
    fn as_server(&self) -> bool;

    /// Validates the peer's as-server flag (NULL ignores it; PLAIN and CURVE need exactly one server).
    fn check_peer_as_server(&self, peer_as_server: bool) -> Result<(), ProtocolError>;

    /// Starts the handshake once greetings are exchanged. `local` is our metadata (Socket-Type,
    /// Identity, application properties).
    fn start(&mut self, local: &Metadata, out: &mut Vec<Command>);

    /// Handles one command of the handshake.
    fn handle_command(
        &mut self,
        command: Command,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError>;
}
