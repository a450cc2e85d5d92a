//! [`Socket`]: a ZeroMQ socket on tokio.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> zmtp::Result<()> {
//! use zmtp::{Socket, SocketType};
//!
//! let server = Socket::new(SocketType::Rep)?;
//! let endpoint = server.bind("tcp://127.0.0.1:*").await?;
//! let client = Socket::new(SocketType::Req)?;
//! client.connect(&endpoint)?;
//!
//! client.send("hello").await?;
//! let request = server.recv().await?;
//! assert_eq!(request.frames()[0], "hello");
//! server.send("world").await?;
//! assert_eq!(client.recv().await?.frames()[0], "world");
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::core::{SendOutcome, Shared};
use super::driver::{drive, Evicted, HandshakeGuard, HandshakeSlots, PeerSlot};
use super::endpoint::Endpoint;
use super::monitor::{HandshakeFailure, Monitor, SocketEventKind};
use super::options::Options;
use super::transport::{self, Listener};
use crate::error::{Error, Result, SendError};
use crate::message::Msg;
use crate::pattern::{self, Attach, PeerDetails};
use crate::proto::{Connection, ProtocolError, SocketType};

/// A ZeroMQ socket. Cheap to clone: clones are handles to the same socket and may be used from
/// different tasks at once. The socket closes when the last handle is dropped (queued messages are
/// still sent, for up to `linger`, in the background) or when [`Socket::close`] is awaited.
#[derive(Debug, Clone)]
pub struct Socket {
    handle: Arc<Handle>,
}

/// Closes the socket when the last [`Socket`] clone is dropped.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    /// Bound and connected endpoints, with the token that ends each.
    endpoints: Mutex<Vec<(String, CancellationToken)>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close(linger_deadline(&self.shared.options));
        self.shared.tasks.close();
        self.shared.monitors.stop();
    }
}

fn linger_deadline(options: &Options) -> Option<Instant> {
    options.linger.and_then(|d| tokio::time::Instant::now().into_std().checked_add(d))
}

/// A random 32-bit seed (std's hasher keys are random per process and per call).
pub(crate) fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() as u32
}

impl Socket {
    /// A socket of `socket_type` with default options.
    pub fn new(socket_type: SocketType) -> Result<Socket> {
        Socket::with_options(socket_type, Options::default())
    }

    /// A socket of `socket_type` with `options`. Fails if an option is invalid (naming it).
    pub fn with_options(socket_type: SocketType, options: Options) -> Result<Socket> {
        let pattern = pattern::for_socket_type(socket_type, &options, random_u32());
        let shared = Arc::new(Shared::new(socket_type, options, pattern)?);
        Ok(Socket { handle: Arc::new(Handle { shared, endpoints: Mutex::new(Vec::new()) }) })
    }

    /// The socket's type.
    pub fn socket_type(&self) -> SocketType {
        self.handle.shared.socket_type
    }

    /// The socket's options.
    pub fn options(&self) -> &Options {
        &self.handle.shared.options
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    fn add_endpoint(&self, endpoint: String) -> CancellationToken {
        let token = CancellationToken::new();
        self.handle.endpoints.lock().unwrap_or_else(|e| e.into_inner()).push((endpoint, token.clone()));
        token
    }

    /// A stream of this socket's events (connections, handshakes, disconnections).
    pub fn monitor(&self) -> Monitor {
        self.shared().monitors.subscribe()
    }

    /// Binds to `endpoint` and returns the endpoint actually bound (`tcp://127.0.0.1:*` comes back
    /// with its port), as libzmq's `ZMQ_LAST_ENDPOINT`.
    pub async fn bind(&self, endpoint: &str) -> Result<String> {
        let parsed: Endpoint = endpoint.parse()?;
        let shared = self.shared().clone();
        if shared.is_closing() {
            return Err(Error::Closed);
        }
        let (listener, bound) = match Listener::bind(&parsed, &shared.options.transport_options()).await {
            Ok(ok) => ok,
            Err(source) => {
                shared.monitors.emit(endpoint, SocketEventKind::BindFailed(source.to_string()));
                return Err(Error::Bind { endpoint: endpoint.to_owned(), source });
            }
        };
        let bound = bound.to_string();
        let token = self.add_endpoint(bound.clone());
        shared.monitors.emit(&bound, SocketEventKind::Listening);
        let task_shared = shared.clone();
        let name = bound.clone();
        shared.tasks.spawn(accept_loop(task_shared, listener, name, token));
        Ok(bound)
    }

    /// Connects to `endpoint` in the background and returns at once (RFC: connections are
    /// asynchronous and reconnect after failures). Messages sent meanwhile wait in the peer's queue,
    /// except for ROUTER and with `immediate`. Must be called within a tokio runtime.
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.connect_inner(endpoint, None)
    }

    /// Connects as [`Socket::connect`], naming the peer `routing_id` in this ROUTER's routing
    /// (`ZMQ_CONNECT_ROUTING_ID`).
    pub fn connect_with_routing_id(&self, endpoint: &str, routing_id: impl Into<Bytes>) -> Result<()> {
        let id = routing_id.into();
        if id.is_empty() || id.len() > 255 {
            return Err(Error::InvalidOption {
                name: "ZMQ_CONNECT_ROUTING_ID",
                reason: format!("must be 1 to 255 octets, not {}", id.len()),
            });
        }
        self.connect_inner(endpoint, Some(id))
    }

    fn connect_inner(&self, endpoint: &str, routing_id: Option<Bytes>) -> Result<()> {
        let parsed: Endpoint = endpoint.parse()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = self.shared().clone();
        if shared.is_closing() {
            return Err(Error::Closed);
        }
        let token = self.add_endpoint(endpoint.to_owned());
        // Load-balancing types get the peer's queue now, as libzmq creates the pipe in zmq_connect:
        // messages sent from here on wait in it while the connection is made (RFC 28/30/31).
        let mut session_peer = None;
        if shared.pattern_attaches_before_handshake() && !shared.options.immediate {
            let id = shared.add_peer();
            let details = PeerDetails { info: None, connect_routing_id: routing_id.as_ref() };
            match shared.attach(id, details) {
                Attach::Refused(_) => shared.remove_peer(id),
                _ => session_peer = Some(id),
            }
        }
        let _guard = runtime.enter();
        let name = endpoint.to_owned();
        shared.tasks.spawn(session(shared.clone(), parsed, name, routing_id, session_peer, token));
        Ok(())
    }

    /// Stops listening on an endpoint `bind` returned, and closes the connections accepted on it.
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        self.end_endpoint(endpoint)
    }

    /// Disconnects from an endpoint given to `connect`; its queued messages are dropped.
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        self.end_endpoint(endpoint)
    }

    fn end_endpoint(&self, endpoint: &str) -> Result<()> {
        let mut endpoints = self.handle.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let i = endpoints
            .iter()
            .position(|(e, _)| e == endpoint)
            .ok_or_else(|| Error::UnknownEndpoint(endpoint.to_owned()))?;
        let (_, token) = endpoints.remove(i);
        token.cancel();
        Ok(())
    }

    /// Subscribes a SUB (or XSUB) socket to messages whose first frame starts with `topic` (empty:
    /// all). Subscriptions are counted, sent to every publisher, and sent again on every
    /// reconnection. On an XPUB with `xpub_manual`, subscribes the peer whose subscription was
    /// received last.
    pub fn subscribe(&self, topic: impl Into<Bytes>) -> Result<()> {
        self.subscription(topic.into(), true)
    }

    /// Cancels one `subscribe` of `topic`.
    pub fn unsubscribe(&self, topic: impl Into<Bytes>) -> Result<()> {
        self.subscription(topic.into(), false)
    }

    fn subscription(&self, topic: Bytes, subscribe: bool) -> Result<()> {
        let socket_type = self.socket_type();
        if !matches!(socket_type, SocketType::Sub | SocketType::XSub | SocketType::XPub) {
            return Err(Error::NotSupported { socket_type, operation: "subscribe" });
        }
        self.shared().local_subscription(topic, subscribe)
    }

    /// Whether any connected subscriber holds a subscription that is a prefix of `topic` (PUB and
    /// XPUB; O(topic length), whatever the number of subscribers). `None` for other socket types.
    /// A gateway can answer "is anyone serving this?" without sending anything.
    pub fn has_subscriber(&self, topic: &[u8]) -> Option<bool> {
        self.shared().with_subscriptions(|s| s.has_match(topic))
    }

    /// How many connected subscribers hold a subscription that is a prefix of `topic` (PUB, XPUB).
    pub fn subscriber_count(&self, topic: &[u8]) -> Option<usize> {
        self.shared().with_subscriptions(|s| s.match_count(topic))
    }

    /// Every topic some connected subscriber holds, with the number of subscribers holding it,
    /// sorted (PUB, XPUB).
    pub fn subscriptions(&self) -> Option<Vec<(Bytes, usize)>> {
        self.shared().with_subscriptions(|s| s.topics())
    }

    /// The remote address of the connection whose peer holds `routing_id` (ROUTER; `None` for other
    /// types, or when no connected peer holds that id): `ip:port` for a tcp connection it accepted,
    /// `"ipc"` or `"inproc"` for those transports, the endpoint for one it connected. With
    /// generated routing ids (a peer that sets none: REQ, most DEALERs) each connection gets a
    /// fresh id, so an application that must recognise a peer across reconnections (a rate limit)
    /// keys it by this address instead. One lock of the socket's state per call.
    pub fn peer_address(&self, routing_id: &[u8]) -> Option<Arc<str>> {
        self.shared().peer_address(routing_id)
    }

    /// The `Socket-Type` that the connected peer with this routing id announced in its handshake
    /// (ROUTER): a server can tell a REQ, which takes exactly one reply per request, from a DEALER.
    /// `None` if no peer has that routing id now, the peer announced no type, or this is not a
    /// ROUTER. One lock and one hash lookup.
    pub fn peer_socket_type(&self, routing_id: &[u8]) -> Option<SocketType> {
        self.shared().peer_socket_type(routing_id)
    }

    /// How many messages were dropped because their peer's queue was full: copies a PUB or XPUB
    /// did not queue to a subscriber (RFC 29: dropped, never blocking the publisher), and messages
    /// a ROUTER without `router_mandatory` did not queue to a peer (RFC 28). Always 0 for other
    /// types.
    pub fn dropped_messages(&self) -> u64 {
        self.shared().dropped()
    }

    /// How many messages peers sent to a socket type that has no receive side (PUB, PUSH): each is
    /// discarded as it arrives (RFC 29: a PUB "SHALL silently discard any messages received from
    /// subscribers"), and the connection keeps being read, so its later subscriptions and PINGs are
    /// still seen and memory stays flat. Always 0 for other types.
    pub fn discarded_messages(&self) -> u64 {
        self.shared().discarded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a message, waiting for room as the socket type prescribes (up to `send_timeout`). If
    /// the future is dropped before it completes, the message is dropped (it was not sent).
    pub async fn send(&self, msg: impl Into<Msg>) -> Result<(), SendError> {
        // A send that never has to wait (PUB, a DEALER with room) must still let the connection
        // tasks on this thread run: take from tokio's cooperative budget, as its own resources do.
        tokio::task::coop::consume_budget().await;
        let shared = self.shared();
        let mut msg = Some(msg.into());
        let timeout = shared.options.send_timeout;
        let attempt = poll_fn(|cx| {
            let Some(m) = msg.take() else { return Poll::Ready(Ok(())) };
            match shared.send(m, Some(cx.waker())) {
                SendOutcome::Done => Poll::Ready(Ok(())),
                SendOutcome::Blocked(m) => {
                    msg = Some(m);
                    Poll::Pending
                }
                SendOutcome::Failed(error, m) => Poll::Ready(Err(SendError { error, msg: m })),
            }
        });
        let result = match timeout {
            None => attempt.await,
            Some(t) if t.is_zero() => return self.try_send(msg.take().unwrap_or_default()),
            Some(t) => match tokio::time::timeout(t, attempt).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            },
        };
        match (result, msg) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(m)) => Err(SendError { error: Error::WouldBlock, msg: m }),
            (Ok(()), None) => Ok(()),
        }
    }

    /// Sends a message if it can be queued now; [`Error::WouldBlock`] otherwise.
    pub fn try_send(&self, msg: impl Into<Msg>) -> Result<(), SendError> {
        match self.shared().send(msg.into(), None) {
            SendOutcome::Done => Ok(()),
            SendOutcome::Blocked(msg) => Err(SendError { error: Error::WouldBlock, msg }),
            SendOutcome::Failed(error, msg) => Err(SendError { error, msg }),
        }
    }

    /// Sends, in order, the messages at the front of `queue` that can be queued now, taking the socket's
    /// lock once for all of them (the batch form of [`Socket::try_send`]): how many were sent. It
    /// stops at a message that would have to wait, which stays at the front of `queue`. A message the
    /// socket refuses also stays at the front, and its error is returned (those before it were sent).
    pub fn try_send_many(&self, queue: &mut VecDeque<Msg>) -> Result<usize> {
        self.shared().send_batch(queue, None)
    }

    /// Sends every message of `queue` in order, waiting for room as [`Socket::send`] does, taking the
    /// socket's lock once per batch rather than once per message. Cancel-safe: what was not sent stays
    /// in `queue`. With `send_timeout` set, a wait longer than it ends with [`Error::WouldBlock`] and
    /// the unsent messages in `queue`; a refused message stays at the front and its error is returned.
    pub async fn send_many(&self, queue: &mut VecDeque<Msg>) -> Result<()> {
        // As many units of tokio's cooperative budget as one `send` per message would take (in
        // steps): a publisher sending batches that never wait must still yield to its connection
        // tasks before their queues overflow, or PUB drops nearly everything it sends.
        consume_budget_for(queue.len()).await;
        let shared = self.shared();
        let attempt = poll_fn(|cx| match shared.send_batch(queue, Some(cx.waker())) {
            Ok(_) if queue.is_empty() => Poll::Ready(Ok(())),
            Ok(_) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        });
        match shared.options.send_timeout {
            None => attempt.await,
            Some(t) if t.is_zero() => {
                drop(attempt);
                self.try_send_many(queue)?;
                if queue.is_empty() {
                    Ok(())
                } else {
                    Err(Error::WouldBlock)
                }
            }
            Some(t) => tokio::time::timeout(t, attempt).await.unwrap_or(Err(Error::WouldBlock)),
        }
    }

    /// Receives up to `max` messages, appending them to `out`, waiting up to `recv_timeout` for the
    /// first: how many. The batch form of [`Socket::recv`]: the socket's lock is taken once for all of
    /// them. Cancel-safe.
    pub async fn recv_many(&self, out: &mut VecDeque<Msg>, max: usize) -> Result<usize> {
        consume_budget_for(max).await;
        if max == 0 {
            return Ok(0);
        }
        let shared = self.shared();
        let attempt = poll_fn(|cx| match shared.recv_batch(out, max, Some(cx.waker())) {
            Ok(0) => Poll::Pending,
            other => Poll::Ready(other),
        });
        match shared.options.recv_timeout {
            None => attempt.await,
            Some(t) if t.is_zero() => {
                drop(attempt);
                self.try_recv_many(out, max)
            }
            Some(t) => tokio::time::timeout(t, attempt).await.unwrap_or(Err(Error::WouldBlock)),
        }
    }

    /// Takes up to `max` messages that are queued now, appending them to `out`: how many;
    /// [`Error::WouldBlock`] if there are none.
    pub fn try_recv_many(&self, out: &mut VecDeque<Msg>, max: usize) -> Result<usize> {
        match self.shared().recv_batch(out, max, None)? {
            0 if max > 0 => Err(Error::WouldBlock),
            n => Ok(n),
        }
    }

    /// Receives the next message (all its frames), waiting up to `recv_timeout`. Cancel-safe: if the
    /// future is dropped, no message is lost.
    pub async fn recv(&self) -> Result<Msg> {
        tokio::task::coop::consume_budget().await;
        let shared = self.shared();
        let attempt = poll_fn(|cx| match shared.recv(Some(cx.waker())) {
            Ok(Some(msg)) => Poll::Ready(Ok(msg)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        });
        match shared.options.recv_timeout {
            None => attempt.await,
            Some(t) if t.is_zero() => self.try_recv(),
            Some(t) => tokio::time::timeout(t, attempt).await.unwrap_or(Err(Error::WouldBlock)),
        }
    }

    /// The next message if one is queued; [`Error::WouldBlock`] otherwise.
    pub fn try_recv(&self) -> Result<Msg> {
        self.shared().recv(None)?.ok_or(Error::WouldBlock)
    }

    /// Closes the socket (every handle): stops listening and connecting, sends what is queued for up
    /// to `linger`, then returns once every connection is closed.
    pub async fn close(self) {
        let shared = self.shared().clone();
        shared.close(linger_deadline(&shared.options));
        shared.tasks.close();
        shared.tasks.wait().await;
        shared.monitors.stop();
    }
}

/// Accepts connections until the socket closes or the endpoint is unbound.
async fn accept_loop(
    shared: Arc<Shared>,
    mut listener: Listener,
    endpoint: String,
    token: CancellationToken,
) {
    let slots = Arc::new(Mutex::new(HandshakeSlots::default()));
    let mut evicted_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer_address)) => {
                shared.monitors.emit(&endpoint, SocketEventKind::Accepted(peer_address.clone()));
                let connection_token = token.child_token();
                let ip = peer_address.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
                let caps = (shared.options.max_handshakes, shared.options.max_handshakes_per_ip);
                let (guard, evicted) = HandshakeGuard::admit(&slots, caps, ip, connection_token.clone());
                if evicted != Evicted::Nobody {
                    let now = Instant::now();
                    if evicted_logged.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
                        if evicted == Evicted::SameAddress {
                            tracing::warn!(
                                endpoint,
                                peer_address,
                                "{} handshakes in progress from this address: closing its oldest",
                                caps.1
                            );
                        } else {
                            tracing::warn!(
                                endpoint,
                                peer_address,
                                "{} handshakes in progress: closing the oldest to admit new connections",
                                caps.0
                            );
                        }
                        evicted_logged = Some(now);
                    }
                }
                let shared2 = shared.clone();
                let endpoint2 = endpoint.clone();
                let token2 = connection_token;
                shared.tasks.spawn(async move {
                    let now = tokio::time::Instant::now().into_std();
                    let conn = Connection::new(shared2.config.clone(), now);
                    let slot = PeerSlot::AtHandshake { connect_routing_id: None };
                    let outcome =
                        drive(&shared2, stream, conn, &endpoint2, slot, Some(guard), (token2, &peer_address))
                            .await;
                    report_end(&shared2, &endpoint2, &outcome, &peer_address);
                });
            }
            Err(e) => {
                shared.monitors.emit(&endpoint, SocketEventKind::AcceptFailed(e.to_string()));
                tracing::warn!(endpoint, "accept failed: {e}");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    shared.monitors.emit(&endpoint, SocketEventKind::Closed);
}

fn report_end(shared: &Shared, endpoint: &str, outcome: &super::driver::Outcome, peer: &str) {
    let reason = outcome.end.reason();
    if outcome.handshaken {
        tracing::debug!(endpoint, peer, "disconnected: {reason}");
        shared.monitors.emit_from(endpoint, Some(peer), SocketEventKind::Disconnected(reason));
    } else {
        let failure = HandshakeFailure::from_reason(&reason);
        match failure {
            // A refused peer is worth a warning (issue 14: address and reason, logged).
            HandshakeFailure::Auth { .. }
            | HandshakeFailure::Protocol(ProtocolError::Cryptographic { .. }) => {
                tracing::warn!(endpoint, peer, "handshake failed: {failure}")
            }
            _ => tracing::info!(endpoint, peer, "handshake failed: {failure}"),
        }
        shared.monitors.emit_from(endpoint, Some(peer), SocketEventKind::HandshakeFailed(failure));
        shared.monitors.emit_from(endpoint, Some(peer), SocketEventKind::Disconnected(reason));
    }
}

/// Connects, runs the connection, and reconnects with back-off until the socket closes, the
/// endpoint is disconnected, or the peer ends it fatally (an ERROR command).
async fn session(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    name: String,
    routing_id: Option<Bytes>,
    session_peer: Option<crate::pattern::PeerId>,
    token: CancellationToken,
) {
    let transport_options = shared.options.transport_options();
    let base = shared.options.reconnect_interval;
    let mut interval = base;
    loop {
        let stop = || {
            token.is_cancelled()
                || shared.linger_expired()
                || (shared.is_closing() && !session_peer.is_some_and(|p| shared.has_queued(p)))
        };
        if stop() {
            break;
        }
        let connected = tokio::select! {
            _ = token.cancelled() => break,
            _ = closed_and_flushed(&shared, session_peer) => break,
            c = transport::connect(&endpoint, &transport_options) => c,
        };
        match connected {
            Ok(stream) => {
                shared.monitors.emit(&name, SocketEventKind::Connected);
                let now = tokio::time::Instant::now().into_std();
                let conn = Connection::new(shared.config.clone(), now);
                let slot = match session_peer {
                    Some(id) => PeerSlot::Session(id),
                    None => PeerSlot::AtHandshake { connect_routing_id: routing_id.clone() },
                };
                let outcome = drive(&shared, stream, conn, &name, slot, None, (token.clone(), &name)).await;
                report_end(&shared, &name, &outcome, &name);
                if outcome.handshaken {
                    interval = base;
                }
                if !outcome.end.may_reconnect() {
                    if !matches!(outcome.end, super::driver::End::Local) {
                        tracing::warn!(endpoint = name, "not reconnecting: {}", outcome.end.reason());
                    }
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(endpoint = name, "connect failed: {e}");
                shared.monitors.emit(&name, SocketEventKind::ConnectDelayed(e.to_string()));
            }
        }
        let Some(wait) = interval else { break };
        if stop() {
            break;
        }
        let wait = with_jitter(wait);
        shared.monitors.emit(&name, SocketEventKind::ConnectRetried(wait));
        tokio::select! {
            _ = token.cancelled() => break,
            _ = closed_and_flushed(&shared, session_peer) => break,
            _ = tokio::time::sleep(wait) => {}
        }
        if let (Some(current), Some(max)) = (interval, shared.options.reconnect_interval_max) {
            if max > current {
                interval = Some((current * 2).min(max));
            }
        }
    }
    if let Some(id) = session_peer {
        shared.remove_peer(id);
    }
}

/// Completes once the socket is closing and a connecting peer has nothing left to deliver: its
/// queue is empty, or the linger deadline has passed. A session with queued messages goes on
/// connecting while the socket lingers (libzmq does too).
async fn closed_and_flushed(shared: &Shared, session_peer: Option<crate::pattern::PeerId>) {
    shared.shutdown.cancelled().await;
    loop {
        if !session_peer.is_some_and(|p| shared.has_queued(p)) || shared.linger_expired() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `wait` plus up to 10% random jitter, so peers restarted together do not reconnect in lockstep.
fn with_jitter(wait: Duration) -> Duration {
    let jitter = wait / 10;
    if jitter.is_zero() {
        return wait;
    }
    let nanos = u64::from(random_u32()) % (jitter.as_nanos().min(u128::from(u64::MAX)) as u64).max(1);
    wait + Duration::from_nanos(nanos)
}

/// Messages per unit of tokio's cooperative budget taken by the batch calls: a task moving batches
/// yields every 128 × this many messages, well under the default high-water mark of 1,000.
const MSGS_PER_BUDGET_UNIT: usize = 4;

/// Most budget units one batch call takes: tokio's whole per-task budget (128), so a call yields at
/// most once whatever the batch size.
const MAX_BUDGET_UNITS: usize = 128;

/// Takes one unit of tokio's cooperative budget per [`MSGS_PER_BUDGET_UNIT`] of `messages` (at least
/// one, at most [`MAX_BUDGET_UNITS`]), yielding to the scheduler when the task's budget runs out, as a
/// `send` or `recv` per message would.
async fn consume_budget_for(messages: usize) {
    for _ in 0..messages.div_ceil(MSGS_PER_BUDGET_UNIT).clamp(1, MAX_BUDGET_UNITS) {
        tokio::task::coop::consume_budget().await;
    }
}
