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

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

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
    Disconnected(String),
    /// The ZMTP handshake completed (`HANDSHAKE_SUCCEEDED`).
    HandshakeSucceeded,
    /// The handshake failed with a protocol error (`HANDSHAKE_FAILED_PROTOCOL`) (including an
    /// incompatible socket type), or before a protocol step (timeout, peer closed)
    /// (`HANDSHAKE_FAILED_NO_DETAIL`); the reason as text.
    HandshakeFailed(String),
    /// The monitor is stopping: the socket closed (`MONITOR_STOPPED`).
    MonitorStopped,
}

/// One monitor event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEvent {
    /// What happened.
    pub kind: SocketEventKind,
    /// The endpoint concerned (as bound or connected; for accepted connections, the listener's).
    pub endpoint: String,
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
        let mut senders = self.lock();
        if senders.is_empty() {
            return;
        }
        senders.retain(|tx| !tx.is_closed());
        for tx in senders.iter() {
            let _ = tx.try_send(SocketEvent { kind: kind.clone(), endpoint: endpoint.to_owned() });
        }
    }

    /// Reports [`SocketEventKind::MonitorStopped`] and ends every monitor's stream.
    pub(crate) fn stop(&self) {
        let senders = std::mem::take(&mut *self.lock());
        for tx in senders {
            let _ =
                tx.try_send(SocketEvent { kind: SocketEventKind::MonitorStopped, endpoint: String::new() });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<SocketEvent>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent: keep using it.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }
}
