//! The NULL mechanism (RFC 23 §"The NULL Security Mechanism"): each side sends READY with its
//! metadata and waits for the other's READY. With an authenticator (a ZAP domain is set), the
//! peer's READY is held until the authenticator allows it, as libzmq does.

use super::{unasked, unexpected, AuthReply, Completion, Credentials, HandshakeStatus};
use crate::proto::command::Command;
use crate::proto::error::ConnectionError;
use crate::proto::metadata::Metadata;

/// The NULL handshake, in either role (it is symmetric).
#[derive(Debug)]
pub(crate) struct Null {
    state: State,
    authenticate: bool,
}

#[derive(Debug)]
enum State {
    /// Greeting not yet exchanged.
    Start,
    /// Our READY is sent; waiting for the peer's.
    ExpectReady,
    /// The peer's READY is held until the authenticator decides.
    Authenticating(Metadata),
    /// Both READYs exchanged.
    Done,
}

impl Null {
    pub(crate) fn new(authenticate: bool) -> Self {
        Null { state: State::Start, authenticate }
    }

    pub(crate) fn start(&mut self, local: &Metadata, out: &mut Vec<Command>) {
        // RFC 23: "The client sends READY ... The server replies with READY"; libzmq sends READY
        // from both sides without waiting, and so do we (no ordering deadlock is possible).
        out.push(Command::Ready(local.clone()));
        self.state = State::ExpectReady;
    }

    pub(crate) fn handle_command(&mut self, command: Command) -> Result<HandshakeStatus, ConnectionError> {
        match (std::mem::replace(&mut self.state, State::Done), command) {
            (State::ExpectReady, Command::Ready(metadata)) if self.authenticate => {
                self.state = State::Authenticating(metadata);
                Ok(HandshakeStatus::Authenticate(Credentials::Null))
            }
            (State::ExpectReady, Command::Ready(metadata)) => {
                Ok(HandshakeStatus::Complete(Box::new(Completion { metadata, cipher: None, auth: None })))
            }
            (_, other) => Err(unexpected(&other, "during the NULL handshake")),
        }
    }

    pub(crate) fn handle_auth_reply(&mut self, reply: AuthReply) -> Result<HandshakeStatus, ConnectionError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Authenticating(metadata) => Ok(HandshakeStatus::Complete(Box::new(Completion {
                metadata,
                cipher: None,
                auth: Some(reply),
            }))),
            _ => Err(unasked()),
        }
    }
}
