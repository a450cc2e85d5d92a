//! [`proxy`] and [`proxy_steerable`]: forward messages between two sockets, as libzmq's
//! `zmq_proxy` and `zmq_proxy_steerable`.
//!
//! Each direction a pair of socket types allows runs on its own (XSUB↔XPUB and ROUTER↔DEALER both
//! ways, PULL→PUSH one way), so a slow peer on one side never stalls the other direction. Every
//! forwarded message is also sent to the optional `capture` socket (for PUB, PUSH, DEALER… captures),
//! dropped there rather than waited for when the capture socket has no room.
//!
//! ```no_run
//! # async fn demo() -> zmtp::Result<()> {
//! use zmtp::{proxy, Socket, SocketType};
//! let frontend = Socket::new(SocketType::XSub)?;
//! frontend.bind("tcp://*:5556").await?;
//! let backend = Socket::new(SocketType::XPub)?;
//! backend.bind("tcp://*:5557").await?;
//! proxy(&frontend, &backend, None).await?; // until a socket is closed
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use super::socket::Socket;
use crate::error::{Error, Result};
use crate::message::Msg;
use crate::proto::SocketType;

fn can_receive(t: SocketType) -> bool {
    t.receives_messages()
}

fn can_send(t: SocketType) -> bool {
    !matches!(t, SocketType::Pull | SocketType::Sub)
}

/// Message and byte counts of a proxy, as `zmq_proxy_steerable`'s STATISTICS reply.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProxyStatistics {
    /// Messages received on the frontend.
    pub frontend_messages_in: u64,
    /// Bytes received on the frontend.
    pub frontend_bytes_in: u64,
    /// Messages sent on the frontend.
    pub frontend_messages_out: u64,
    /// Bytes sent on the frontend.
    pub frontend_bytes_out: u64,
    /// Messages received on the backend.
    pub backend_messages_in: u64,
    /// Bytes received on the backend.
    pub backend_bytes_in: u64,
    /// Messages sent on the backend.
    pub backend_messages_out: u64,
    /// Bytes sent on the backend.
    pub backend_bytes_out: u64,
}

#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Counters {
    fn add(&self, msg: &Msg) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(msg.byte_len() as u64, Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64) {
        (self.messages.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// State shared by a proxy's directions and its control loop.
#[derive(Debug, Default)]
struct Steering {
    paused: AtomicBool,
    resumed: Notify,
    /// Frontend received (= backend sent) and backend received (= frontend sent).
    front_to_back: Counters,
    back_to_front: Counters,
}

/// Forwards between `frontend` and `backend` until either socket is closed (then returns
/// [`Error::Closed`], as `zmq_proxy` returns on context termination) or a send fails otherwise.
pub async fn proxy(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result<()> {
    let steering = Steering::default();
    run(frontend, backend, capture, &steering).await
}

/// [`proxy`], steered by messages on `control` (a REP, PAIR or SUB socket, as libzmq allows):
/// `PAUSE` stops forwarding (messages wait in the queues), `RESUME` restarts it, `TERMINATE` ends
/// the proxy (returns `Ok`), `STATISTICS` is answered (on REP or PAIR) with eight frames of
/// little-endian `u64`: frontend messages in, bytes in, messages out, bytes out, then the same for
/// the backend. Commands are answered on REP with an empty frame.
pub async fn proxy_steerable(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: &Socket,
) -> Result<()> {
    let steering = Arc::new(Steering::default());
    tokio::select! {
        r = run(frontend, backend, capture, &steering) => r,
        r = control_loop(control, &steering) => r,
    }
}

async fn control_loop(control: &Socket, steering: &Steering) -> Result<()> {
    let replies = matches!(control.socket_type(), SocketType::Rep | SocketType::Pair);
    loop {
        let msg = control.recv().await?;
        let command = msg.frames().first().cloned().unwrap_or_default();
        let reply = match &command[..] {
            b"PAUSE" => {
                steering.paused.store(true, Ordering::SeqCst);
                None
            }
            b"RESUME" => {
                steering.paused.store(false, Ordering::SeqCst);
                steering.resumed.notify_waiters();
                None
            }
            b"TERMINATE" => {
                if control.socket_type() == SocketType::Rep {
                    let _ = control.send(Bytes::new()).await;
                }
                return Ok(());
            }
            b"STATISTICS" => {
                let s = statistics(steering);
                let values = [
                    s.frontend_messages_in,
                    s.frontend_bytes_in,
                    s.frontend_messages_out,
                    s.frontend_bytes_out,
                    s.backend_messages_in,
                    s.backend_bytes_in,
                    s.backend_messages_out,
                    s.backend_bytes_out,
                ];
                Some(Msg::from(
                    values.iter().map(|v| Bytes::copy_from_slice(&v.to_le_bytes())).collect::<Vec<_>>(),
                ))
            }
            other => {
                tracing::warn!("proxy: unknown control command {:?}", crate::proto::Escaped(other));
                None
            }
        };
        if replies {
            let msg = reply.unwrap_or_else(|| Msg::from(Bytes::new()));
            if control.socket_type() == SocketType::Rep || msg.len() > 1 {
                control.send(msg).await?;
            }
        }
    }
}

fn statistics(steering: &Steering) -> ProxyStatistics {
    let (f_in, f_in_b) = steering.front_to_back.get();
    let (b_in, b_in_b) = steering.back_to_front.get();
    ProxyStatistics {
        frontend_messages_in: f_in,
        frontend_bytes_in: f_in_b,
        frontend_messages_out: b_in,
        frontend_bytes_out: b_in_b,
        backend_messages_in: b_in,
        backend_bytes_in: b_in_b,
        backend_messages_out: f_in,
        backend_bytes_out: f_in_b,
    }
}

async fn run(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    steering: &Steering,
) -> Result<()> {
    let forward_ok = can_receive(frontend.socket_type()) && can_send(backend.socket_type());
    let backward_ok = can_receive(backend.socket_type()) && can_send(frontend.socket_type());
    if !forward_ok && !backward_ok {
        return Err(Error::InvalidState("proxy: neither direction can forward between these socket types"));
    }
    let forward = async {
        if forward_ok {
            pump(frontend, backend, capture, steering, &steering.front_to_back).await
        } else {
            std::future::pending().await
        }
    };
    let backward = async {
        if backward_ok {
            pump(backend, frontend, capture, steering, &steering.back_to_front).await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        r = forward => r,
        r = backward => r,
    }
}

async fn pump(
    from: &Socket,
    to: &Socket,
    capture: Option<&Socket>,
    steering: &Steering,
    counters: &Counters,
) -> Result<()> {
    let mut batch = std::collections::VecDeque::with_capacity(BATCH);
    loop {
        while steering.paused.load(Ordering::SeqCst) {
            let resumed = steering.resumed.notified();
            if !steering.paused.load(Ordering::SeqCst) {
                break;
            }
            resumed.await;
        }
        // A batch per wake-up: one lock of each socket for up to BATCH messages.
        from.recv_many(&mut batch, BATCH).await?;
        for msg in &batch {
            counters.add(msg);
            if let Some(capture) = capture {
                let _ = capture.try_send(msg.clone());
            }
        }
        to.send_many(&mut batch).await?;
    }
}

/// Messages a proxy direction forwards per wake-up.
const BATCH: usize = 256;
