//! The NULL mechanism (RFC 23 §"The NULL Security Mechanism"): each side sends READY with its
//! metadata and waits for the other's READY.

use super::{HandshakeStatus, Mechanism};
use crate::proto::command::Command;
use crate::proto::error::{ConnectionError, ProtocolError};
use crate::proto::greeting::MechanismName;
use crate::proto::metadata::Metadata;

/// The NULL handshake, in either role (it is symmetric).
#[derive(Debug, Default)]
pub struct Null {
    state: NullState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum NullState {
    /// Greeting not yet exchanged.
    #[default]
    Start,
    /// Our READY is sent; waiting for the peer's.
    ExpectReady,
    /// Both READYs exchanged.
    Done,
}

impl Null {
    /// A NULL handshake about to start.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Mechanism for Null {
    fn name(&self) -> MechanismName {
        MechanismName::NULL
    }

    fn as_server(&self) -> bool {
        // RFC 23: "the as-server field MUST be zero" for NULL.
        false
    }

    fn check_peer_as_server(&self, _peer_as_server: bool) -> Result<(), ProtocolError> {
        // libzmq accepts as-server = 1 under NULL; so do we (reliability.md A-G11).
        Ok(())
    }

    fn start(&mut self, local: &Metadata, out: &mut Vec<Command>) {
        // RFC 23: "The client sends READY ... The server replies with READY"; libzmq sends READY
        // from both sides without waiting, and so do we (no ordering deadlock is possible).
        out.push(Command::Ready(local.clone()));
        self.state = NullState::ExpectReady;
    }

    fn handle_command(
        &mut self,
        command: Command,
        _local: &Metadata,
        _out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match (self.state, command) {
            (NullState::ExpectReady, Command::Ready(md)) => {
                self.state = NullState::Done;
                Ok(HandshakeStatus::Complete(md))
            }
            // RFC 23: "The peer SHALL treat an incoming ERROR command as fatal".
            (_, Command::Error { reason }) => Err(ConnectionError::PeerError { reason }),
            (_, other) => Err(ProtocolError::UnexpectedCommand {
                name: other.name_bytes(),
                state: "during the NULL handshake",
            }
            .into()),
        }
    }
}
