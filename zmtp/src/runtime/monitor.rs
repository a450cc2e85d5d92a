//! Socket monitoring: [`SocketEvent`]s as a stream, like libzmq's `zmq_socket_monitor`.
//!
//! ```no_run
//! # async fn demo() -> zmtp::Result<()> {
//! use zmtp::{Socket, SocketType};
//! let socket = Socket::new(SocketType::Dealer)?;
//! let mut monitor = socket.monitor();
//! socket.connect("tcp://127.0.0.1:5555")?;
//! while let Some(event) = monitor.recv().await {
//!     println!("{} {:?}", event.endpoint, event.kind);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::proto::{ConnectionError, Escaped, ProtocolError};

/// Events buffered per monitor; when a monitor falls this far behind, further events are dropped and
/// counted (a monitor must never grow memory without bound).
const MONITOR_CAPACITY: usize = 4096;

/// What happened (libzmq's `ZMQ_EVENT_*` names in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketEventKind {
    /// A connection attempt succeeded at the transport level (`CONNECTED`).
    Connected,
    /// A connection attempt could not complete at once and goes on in the background
    /// (`CONNECT_DELAYED`); also reported when an attempt failed, with the reason.
    ConnectDelayed(String),
    /// A reconnection is scheduled after this interval (`CONNECT_RETRIED`).
    ConnectRetried(Duration),
    /// The socket is listening (`LISTENING`).
    Listening,
    /// Binding failed (`BIND_FAILED`).
    BindFailed(String),
    /// A connection was accepted (`ACCEPTED`); the peer's address.
    Accepted(String),
    /// Accepting a connection failed (`ACCEPT_FAILED`).
    AcceptFailed(String),
    /// A listener was closed (`CLOSED`).
    Closed,
    /// A connection ended (`DISCONNECTED`), with the reason.
    Disconnected(DisconnectReason),
    /// The ZMTP handshake completed (`HANDSHAKE_SUCCEEDED`).
    HandshakeSucceeded,
    /// The handshake failed (`HANDSHAKE_FAILED_NO_DETAIL`, `_PROTOCOL` or `_AUTH`): see
    /// [`HandshakeFailure`].
    HandshakeFailed(HandshakeFailure),
    /// The monitor is stopping: the socket closed (`MONITOR_STOPPED`).
    MonitorStopped,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The protocol engine ended it: a protocol error, a timeout, an ERROR from the peer, the peer
    /// closing, an authentication refusal.
    Connection(ConnectionError),
    /// The transport failed.
    Io {
        /// The error's kind.
        kind: std::io::ErrorKind,
        /// The error as text.
        message: String,
    },
    /// Our socket refused the peer after its handshake (a duplicate routing id, PAIR already
    /// taken).
    Refused(&'static str),
    /// Our socket closed it (close, unbind, disconnect, or a policy such as ROUTER handover).
    Local,
}

impl DisconnectReason {
    /// Whether this is an ordinary end rather than a fault: the peer closed (after or before its
    /// handshake; a port probe does the latter), or we closed.
    pub fn is_ordinary(&self) -> bool {
        matches!(
            self,
            DisconnectReason::Local
                | DisconnectReason::Connection(
                    ConnectionError::PeerClosed { mid_message: false }
                        | ConnectionError::PeerClosedDuringHandshake
                        | ConnectionError::LocallyClosed
                )
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Connection(e) => e.fmt(f),
            DisconnectReason::Io { message, .. } => write!(f, "i/o error: {message}"),
            DisconnectReason::Refused(why) => write!(f, "refused: {why}"),
            DisconnectReason::Local => f.write_str("closed locally"),
        }
    }
}

/// Why a handshake failed, in libzmq's three classes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// `HANDSHAKE_FAILED_NO_DETAIL`: the handshake did not finish (timeout, peer closed, transport
    /// error), with the reason.
    NoDetail(DisconnectReason),
    /// `HANDSHAKE_FAILED_PROTOCOL`: the peer broke the protocol (including a mechanism mismatch, an
    /// incompatible socket type and a CURVE box that does not open: a wrong key).
    Protocol(ProtocolError),
    /// `HANDSHAKE_FAILED_AUTH`: credentials were refused, by our authenticator or by the peer's
    /// (an ERROR with a ZAP status code), with the status code (300, 400 or 500).
    Auth {
        /// The ZAP status code.
        status: u16,
    },
    /// The peer sent an ERROR that is not a status code.
    PeerError(bytes::Bytes),
}

impl HandshakeFailure {
    /// The class of failure `reason` is, for a handshake that did not complete.
    pub fn from_reason(reason: &DisconnectReason) -> Self {
        match reason {
            DisconnectReason::Connection(ConnectionError::Protocol(e)) => {
                HandshakeFailure::Protocol(e.clone())
            }
            DisconnectReason::Connection(ConnectionError::AuthenticationFailed { status, .. }) => {
                HandshakeFailure::Auth { status: *status }
            }
            // libzmq reads an ERROR whose reason is a 3-digit status code as the server's ZAP verdict.
            DisconnectReason::Connection(ConnectionError::PeerError { reason }) => match zap_status(reason) {
                Some(status) => HandshakeFailure::Auth { status },
                None => HandshakeFailure::PeerError(reason.clone()),
            },
            other => HandshakeFailure::NoDetail(other.clone()),
        }
    }
}

/// A ZAP status code (300, 400, 500 and the like) in an ERROR reason.
fn zap_status(reason: &[u8]) -> Option<u16> {
    match reason {
        [a @ b'3'..=b'5', b'0', b'0'] => Some(u16::from(a - b'0') * 100),
        _ => None,
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeFailure::NoDetail(reason) => reason.fmt(f),
            HandshakeFailure::Protocol(e) => write!(f, "protocol error: {e}"),
            HandshakeFailure::Auth { status } => write!(f, "authentication refused (status {status})"),
            HandshakeFailure::PeerError(reason) => write!(f, "peer sent ERROR: {}", Escaped(reason)),
        }
    }
}

/// One monitor event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEvent {
    /// What happened.
    pub kind: SocketEventKind,
    /// The endpoint concerned (as bound or connected; for accepted connections, the listener's).
    pub endpoint: String,
    /// The peer's address (`ip:port` for tcp) for the events of one connection that has one
    /// (`Disconnected`, `HandshakeFailed`); `None` otherwise. Lets an application name the peer in
    /// its own logs, as libzmq's monitor does not.
    pub peer: Option<String>,
}

/// A stream of a socket's events, from [`crate::Socket::monitor`]. Dropping it stops monitoring.
#[derive(Debug)]
pub struct Monitor {
    rx: mpsc::Receiver<SocketEvent>,
}

impl Monitor {
    /// The next event; `None` once the socket is closed and every event was read.
    pub async fn recv(&mut self) -> Option<SocketEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<SocketEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures::Stream for Monitor {
    type Item = SocketEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<SocketEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// The monitors attached to a socket.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    senders: Mutex<Vec<mpsc::Sender<SocketEvent>>>,
}

impl Monitors {
    /// A new monitor.
    pub(crate) fn subscribe(&self) -> Monitor {
        let (tx, rx) = mpsc::channel(MONITOR_CAPACITY);
        self.lock().push(tx);
        Monitor { rx }
    }

    /// Reports an event to every monitor (dropped for a monitor that is full or gone).
    pub(crate) fn emit(&self, endpoint: &str, kind: SocketEventKind) {
        self.emit_from(endpoint, None, kind);
    }

    /// [`Monitors::emit`] for an event of the connection with the peer at `peer`.
    pub(crate) fn emit_from(&self, endpoint: &str, peer: Option<&str>, kind: SocketEventKind) {
        let mut senders = self.lock();
        if senders.is_empty() {
            return;
        }
        senders.retain(|tx| !tx.is_closed());
        for tx in senders.iter() {
            let event = SocketEvent {
                kind: kind.clone(),
                endpoint: endpoint.to_owned(),
                peer: peer.map(str::to_owned),
            };
            let _ = tx.try_send(event);
        }
    }

    /// Reports [`SocketEventKind::MonitorStopped`] and ends every monitor's stream.
    pub(crate) fn stop(&self) {
        let senders = std::mem::take(&mut *self.lock());
        for tx in senders {
            let _ = tx.try_send(SocketEvent {
                kind: SocketEventKind::MonitorStopped,
                endpoint: String::new(),
                peer: None,
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<SocketEvent>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent: keep using it.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }
}
