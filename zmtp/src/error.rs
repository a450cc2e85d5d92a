//! [`Error`]: what socket operations report, and [`SendError`], which hands an unsent message back.

use std::io;

use crate::message::Msg;
use crate::proto::SocketType;
use crate::runtime::endpoint::EndpointError;

/// An error from a socket operation. The libzmq errno each variant corresponds to is given in brackets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint string is malformed or names an unknown transport (libzmq: `EINVAL`, `EPROTONOSUPPORT`).
    #[error(transparent)]
    InvalidEndpoint(Box<EndpointError>),
    /// Binding failed (address in use, permission, no such interface…) (libzmq: `EADDRINUSE`, …).
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint as given.
        endpoint: String,
        /// Why.
        source: io::Error,
    },
    /// The operation cannot complete now: a non-blocking call found no room or no message, or its
    /// timeout (`SNDTIMEO`/`RCVTIMEO`) expired (libzmq: `EAGAIN`).
    #[error("operation would block (no peer with room, no message, or the timeout expired)")]
    WouldBlock,
    /// The operation is not valid in the socket's current state: a REQ sending twice without a
    /// reply, or receiving before sending; a REP replying before it received (libzmq: `EFSM`).
    #[error("{0}")]
    InvalidState(&'static str),
    /// A ROUTER with `router_mandatory` was asked to send to an identity that is not connected, or
    /// whose queue is full (libzmq: `EHOSTUNREACH`).
    #[error("no connected peer with routing id {0:?}")]
    HostUnreachable(bytes::Bytes),
    /// The message has no frames, or is not valid for this socket type (a ROUTER message without
    /// an identity frame).
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// The socket type does not support the operation (sending on PULL, receiving on PUSH)
    /// (libzmq: `ENOTSUP`).
    #[error("{socket_type} sockets cannot {operation}")]
    NotSupported {
        /// The socket's type.
        socket_type: SocketType,
        /// What was attempted.
        operation: &'static str,
    },
    /// The socket was closed (libzmq: `ETERM`/`ENOTSOCK`).
    #[error("the socket is closed")]
    Closed,
    /// An option value is invalid; the message names the option.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// libzmq's name of the option (e.g. `ZMQ_ROUTING_ID`).
        name: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// `bind`/`connect` was called outside a tokio runtime (use [`crate::blocking`] instead).
    #[error("no tokio runtime: call this from within a tokio runtime, or use zmtp::blocking")]
    NoRuntime,
    /// The blocking facade could not start its background runtime.
    #[error("cannot start the background tokio runtime: {0}")]
    Runtime(io::Error),
    /// `unbind`/`disconnect` named an endpoint the socket is not bound or connected to (libzmq: `ENOENT`).
    #[error("not bound or connected to {0}")]
    UnknownEndpoint(String),
}

impl From<EndpointError> for Error {
    fn from(e: EndpointError) -> Self {
        // Boxed: an endpoint error holds two strings, and every `Result<_, Error>` (and every
        // `SendError`, which also carries a message) would otherwise be that large.
        Error::InvalidEndpoint(Box::new(e))
    }
}

/// A message that could not be sent, handed back with the reason (tokio's `mpsc::error::SendError`
/// shape). Converts into [`Error`] with `?`, dropping the message.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SendError {
    /// Why the message was not sent.
    #[source]
    pub error: Error,
    /// The message, unsent.
    pub msg: Msg,
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        e.error
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
