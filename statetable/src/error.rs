//! [`Error`]: what the state-table operations report.

use std::time::Duration;

use crate::wire::{DecodeError, EncodeError};

/// An error from a producer, consumer, server or write-through operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The batch does not fit in one message (SONiC's 16 MiB limit); nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A received message was malformed (the synchronous reply a producer waits for).
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// The send queue stayed full through every retry (SONiC: "zmq send failed" after
    /// `MQ_MAX_RETRY`): the consumer is gone or too slow. The message was not sent.
    #[error("send to {endpoint} failed: queue full after {attempts} attempts over {waited:?}{}",
        if *.connected { "" } else { " (no consumer connected)" })]
    QueueFull {
        /// The endpoint the client connects to.
        endpoint: String,
        /// Attempts made (the first and the retries).
        attempts: u32,
        /// Time spent backing off.
        waited: Duration,
        /// Whether a consumer was connected when the last attempt failed.
        connected: bool,
    },
    /// Synchronous mode: a send before the reply to the previous one was received (libzmq: `EFSM`).
    #[error("the previous message has not been acknowledged yet: wait for its reply first")]
    AwaitingReply,
    /// Synchronous mode: the server was asked to reply with no request to reply to (libzmq: `EFSM`).
    #[error("no request to reply to")]
    NoRequest,
    /// The operation is only for synchronous (REQ/REP) mode.
    #[error("{0} is only available in synchronous mode")]
    NotSynchronous(&'static str),
    /// The server is already bound.
    #[error("already bound to {0}")]
    AlreadyBound(String),
    /// The client, server or write-through was closed.
    #[error("closed")]
    Closed,
    /// A socket operation failed (bind, connect, send).
    #[error(transparent)]
    Socket(#[from] zmtp::Error),
    /// Redis refused a command or could not be reached at start.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A blocking method was called from within an async task, where it would stall the runtime;
    /// use the async method there.
    #[error("blocking call from within an async runtime; use the async method")]
    BlockingInAsync,
    /// The background runtime of the blocking methods could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
