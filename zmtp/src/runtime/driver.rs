//! [`drive`]: runs one connection: the transport stream, a [`Connection`], and the peer's queues.
//!
//! One task per connection, polled by hand rather than with `select!`, so that each wake-up does all
//! the work there is: read as much as the socket has into the connection's read buffer, decode every
//! message it holds (as far as the peer's receive queue has room) and hand them over under one lock,
//! take every queued outgoing message under the same lock, and write them all with one vectored
//! write. No syscall per message, no copy of a message body.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::core::Shared;
use super::monitor::{DisconnectReason, SocketEventKind};
use super::transport::Stream;
use crate::message::{Msg, Properties};
use crate::pattern::{Attach, PeerDetails, PeerId};
use crate::proto::{AuthReply, Connection, ConnectionError, Credentials, Event, SocketType};
use crate::runtime::auth::{AuthFuture, AuthRequest};

/// Decode at most this many messages ahead of handing them to the socket.
const DECODE_BATCH: usize = 1024;
/// Take at most this many bytes of queued messages per round (keeps the transmit queue bounded).
const OUT_BUDGET: usize = 256 << 10;
/// Take no more messages, and stop reading, while this much is waiting to be written: a peer that
/// does not read holds at most this beyond its HWM (and one that sends PINGs without reading cannot
/// grow our transmit queue).
const TRANSMIT_HIGH: usize = 512 << 10;
/// Most iovecs per write (Linux `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 256;
/// Rounds of work per poll before yielding to other tasks.
const ROUNDS_PER_POLL: usize = 16;
/// Events decoded per poll before yielding to other tasks: one decode batch. While tasks stay
/// ready, a runtime polls its timers and I/O only every so many task polls (tokio: 61), so one
/// connection's poll must stay short whatever its peer sends: with 16 rounds of 1,024 events, a
/// peer streaming SUBSCRIBEs kept a current-thread proxy from seeing another subscriber's I/O for
/// seconds (issue 15). One batch per poll keeps the per-lock batching of messages as it was.
const POLL_EVENT_BUDGET: usize = DECODE_BATCH;
/// How long a closing connection may take to flush its last bytes (an ERROR) to a peer not reading.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The protocol engine closed it.
    Connection(ConnectionError),
    /// The transport failed.
    Io(std::io::Error),
    /// Our socket refused the peer after the handshake (duplicate identity, PAIR already taken).
    Refused(&'static str),
    /// The socket was closed, or this peer disconnected by policy.
    Local,
}

impl End {
    /// The reason as the monitor reports it.
    pub(crate) fn reason(&self) -> DisconnectReason {
        match self {
            End::Connection(e) => DisconnectReason::Connection(e.clone()),
            End::Io(e) => DisconnectReason::Io { kind: e.kind(), message: e.to_string() },
            End::Refused(why) => DisconnectReason::Refused(why),
            End::Local => DisconnectReason::Local,
        }
    }

    /// Whether a connecting socket should try again (ERROR from the peer and protocol errors that
    /// libzmq treats as fatal do not reconnect).
    pub(crate) fn may_reconnect(&self) -> bool {
        match self {
            End::Connection(e) => e.may_reconnect(),
            End::Io(_) | End::Refused(_) => true,
            End::Local => false,
        }
    }
}

/// The result of a driven connection.
pub(crate) struct Outcome {
    /// How it ended.
    pub end: End,
    /// Whether the handshake completed.
    pub handshaken: bool,
}

/// The handshakes in progress on one listener, oldest first, each with the token that ends it and
/// the peer's IP address (tcp), and per IP address the ids of its handshakes, oldest first.
#[derive(Debug, Default)]
pub(crate) struct HandshakeSlots {
    next: u64,
    open: BTreeMap<u64, (CancellationToken, Option<IpAddr>)>,
    per_ip: HashMap<IpAddr, VecDeque<u64>>,
}

impl HandshakeSlots {
    /// Ends handshake `id` (its token is cancelled) and forgets it.
    fn evict(&mut self, id: u64) {
        if let Some((token, ip)) = self.open.remove(&id) {
            token.cancel();
            self.forget_ip(id, ip);
        }
    }

    fn forget_ip(&mut self, id: u64, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if let Some(ids) = self.per_ip.get_mut(&ip) {
            // At most `max_per_ip` long, and the id is usually at the front (the oldest).
            if let Some(at) = ids.iter().position(|&i| i == id) {
                ids.remove(at);
            }
            if ids.is_empty() {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Which handshake [`HandshakeGuard::admit`] ended to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evicted {
    /// None: there was room.
    Nobody,
    /// The oldest handshake of the same IP address (it was at its per-address cap).
    SameAddress,
    /// The oldest handshake of the listener (it was at its cap).
    Oldest,
}

/// Holds a connection's place among the handshakes in progress until dropped (at the handshake or
/// the end).
#[derive(Debug)]
pub(crate) struct HandshakeGuard {
    slots: Arc<Mutex<HandshakeSlots>>,
    id: u64,
}

impl HandshakeGuard {
    /// Admits a new handshake from `ip` (tcp peers), ended by `token`.
    ///
    /// When that address has `max_per_ip` in progress already, its own oldest is ended: one host's
    /// flood then only churns its own slots, and everyone else's handshakes keep theirs
    /// (reliability.md B-15 asks for a per-address cap as well as a global one). When the listener
    /// has `max` in progress, the oldest of all is ended: a flood of peers that open connections
    /// and then stall (a CURVE HELLO and no INITIATE) cannot lock legitimate clients out, who
    /// complete their handshake in a few round trips, long before they become the oldest.
    pub(crate) fn admit(
        slots: &Arc<Mutex<HandshakeSlots>>,
        (max, max_per_ip): (usize, usize),
        ip: Option<IpAddr>,
        token: CancellationToken,
    ) -> (HandshakeGuard, Evicted) {
        let mut guard = lock_slots(slots);
        let mut evicted = Evicted::Nobody;
        if let Some(ip) = ip {
            while guard.per_ip.get(&ip).is_some_and(|ids| ids.len() >= max_per_ip.max(1)) {
                let Some(oldest) = guard.per_ip.get(&ip).and_then(|ids| ids.front().copied()) else { break };
                guard.evict(oldest);
                evicted = Evicted::SameAddress;
            }
        }
        while guard.open.len() >= max.max(1) {
            let Some(&oldest) = guard.open.keys().next() else { break };
            guard.evict(oldest);
            evicted = Evicted::Oldest;
        }
        let id = guard.next;
        guard.next += 1;
        guard.open.insert(id, (token, ip));
        if let Some(ip) = ip {
            guard.per_ip.entry(ip).or_default().push_back(id);
        }
        (HandshakeGuard { slots: slots.clone(), id }, evicted)
    }
}

fn lock_slots(slots: &Mutex<HandshakeSlots>) -> std::sync::MutexGuard<'_, HandshakeSlots> {
    // Inserts and removals only: a panic elsewhere cannot leave the map inconsistent.
    slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for HandshakeGuard {
    fn drop(&mut self) {
        let mut slots = lock_slots(&self.slots);
        if let Some((_, ip)) = slots.open.remove(&self.id) {
            slots.forget_ip(self.id, ip);
        }
    }
}

/// The peer a driver serves.
pub(crate) enum PeerSlot {
    /// A connecting endpoint's peer, attached before the handshake; kept after the connection.
    Session(PeerId),
    /// Attach at the handshake (with the connect routing id, if any); removed afterwards.
    AtHandshake { connect_routing_id: Option<Bytes> },
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

struct Driver<'a> {
    shared: &'a Shared,
    stream: Stream,
    conn: Connection,
    endpoint: &'a str,
    slot: PeerSlot,
    /// The attached peer (set at once for sessions, at the handshake otherwise).
    peer: Option<PeerId>,
    incoming: VecDeque<Msg>,
    /// The socket type has no receive side (PUB, PUSH): messages are discarded as they are decoded,
    /// never queued, so a peer that sends data cannot grow our memory or stop us reading its later
    /// subscriptions and PINGs (issue 15: a PUB queued them, 3 → 133 MiB, and stopped reading).
    discard_messages: bool,
    /// Messages discarded on this connection (logged once, at the first).
    discarded: u64,
    /// Events decoded since the current poll began ([`POLL_EVENT_BUDGET`]).
    events_this_poll: usize,
    outgoing: VecDeque<Msg>,
    /// Subscriptions to send, taken from the socket.
    commands: Vec<(bool, Bytes)>,
    inbox_full: bool,
    /// The decoder reported everything it could from the octets read so far (its last `poll_event`
    /// returned nothing). Reading waits for that: otherwise a peer sending many tiny messages could
    /// fill the read buffer faster than one decode batch per round empties it, and it would grow
    /// without bound.
    decoded_all: bool,
    eof: bool,
    end: Option<End>,
    /// When ending: give up flushing at this instant.
    flush_deadline: Option<Instant>,
    handshaken: bool,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    /// Released at the handshake.
    handshake_guard: Option<HandshakeGuard>,
    /// Completes when the endpoint is unbound or disconnected.
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The peer's address, for the authenticator.
    address: &'a str,
    /// The authenticator's decision being awaited (the connection decodes nothing meanwhile).
    auth: Option<AuthFuture>,
    /// Attached to every message once the peer is authenticated (libzmq's message properties).
    properties: Option<Arc<Properties>>,
}

/// Runs a connection to its end. `connection` has its greeting queued already; `address` is the
/// peer's (for the authenticator).
///
/// Not an `async fn`: the driver is built here and moved into the future, which then holds it once.
/// An `async fn` keeps its arguments (the stream and the connection, ~700 octets) in the future next
/// to the driver built from them, for every idle connection's whole life.
pub(crate) fn drive<'a>(
    shared: &'a Arc<Shared>,
    stream: Stream,
    connection: Connection,
    endpoint: &'a str,
    slot: PeerSlot,
    handshake_guard: Option<HandshakeGuard>,
    (endpoint_token, address): (CancellationToken, &'a str),
) -> impl Future<Output = Outcome> + 'a {
    let peer = match slot {
        PeerSlot::Session(id) => Some(id),
        PeerSlot::AtHandshake { .. } => None,
    };
    let mut driver = Driver {
        shared,
        stream,
        conn: connection,
        endpoint,
        slot,
        peer,
        incoming: VecDeque::new(),
        discard_messages: !shared.socket_type.receives_messages(),
        discarded: 0,
        events_this_poll: 0,
        outgoing: VecDeque::new(),
        commands: Vec::new(),
        inbox_full: false,
        decoded_all: true,
        eof: false,
        end: None,
        flush_deadline: None,
        handshaken: false,
        timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        timer_at: None,
        handshake_guard,
        cancelled: Box::pin(endpoint_token.cancelled_owned()),
        address,
        auth: None,
        properties: None,
    };
    async move {
        let end = poll_fn(|cx| driver.poll(cx)).await;
        if let Some(peer) = driver.peer {
            match driver.slot {
                PeerSlot::Session(_) => driver.shared.set_connected(peer, false),
                PeerSlot::AtHandshake { .. } => driver.shared.remove_peer(peer),
            }
        }
        Outcome { end, handshaken: driver.handshaken }
    }
}

impl Driver<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        self.events_this_poll = 0;
        for _ in 0..ROUNDS_PER_POLL {
            match self.round(cx) {
                Poll::Ready(Some(end)) => return Poll::Ready(end),
                Poll::Ready(None) if self.events_this_poll >= POLL_EVENT_BUDGET => break,
                Poll::Ready(None) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
        // Still busy: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One round of work: `Ready(None)` if something progressed, `Pending` if nothing could.
    fn round(&mut self, cx: &mut Context<'_>) -> Poll<Option<End>> {
        let mut progress = false;
        if self.end.is_none() && self.cancelled.as_mut().poll(cx).is_ready() {
            self.conn.close();
            self.finish(End::Local);
        }

        // 0. The authenticator's decision, when one is awaited.
        if let Some(auth) = &mut self.auth {
            if let Poll::Ready(reply) = auth.as_mut().poll(cx) {
                self.auth = None;
                if !reply.is_allowed() {
                    tracing::warn!(
                        endpoint = self.endpoint,
                        peer = self.address,
                        status = reply.status,
                        "authentication refused: {}",
                        crate::proto::Escaped(&reply.status_text)
                    );
                }
                self.conn.handle_auth_reply(reply);
                progress = true;
            }
        }

        // 1. Decode what has been read, up to a batch.
        if self.end.is_none() {
            self.decoded_all = false;
            let discarded_before = self.discarded;
            // Events per round are bounded too, not only the messages queued: subscriptions and
            // discarded messages queue nothing, and a peer sending 2 million SUBSCRIBEs must not
            // hold the thread for a whole read buffer of them per round (issue 15: a proxy's other
            // connections waited behind it for over a second on a current-thread runtime).
            let mut events = 0;
            while events < DECODE_BATCH && self.incoming.len() < DECODE_BATCH && !self.inbox_full {
                let Some(event) = self.conn.poll_event() else {
                    self.decoded_all = true;
                    break;
                };
                events += 1;
                self.events_this_poll += 1;
                progress = true;
                match event {
                    Event::Message(msg) if self.discard_messages => {
                        drop(msg);
                        self.discarded += 1;
                    }
                    Event::Message(mut msg) => {
                        if let Some(properties) = &self.properties {
                            msg.set_properties(properties.clone());
                        }
                        self.incoming.push_back(msg)
                    }
                    Event::HandshakeComplete(info) => self.on_handshake(&info),
                    Event::Authenticate(credentials) => self.on_authenticate(credentials),
                    // The connection reports these only to PUB/XPUB sockets.
                    Event::Subscribe(topic) => self.on_subscription(topic, true),
                    Event::Cancel(topic) => self.on_subscription(topic, false),
                    Event::Closed(e) => {
                        self.finish(End::Connection(e));
                        break;
                    }
                }
                if self.end.is_some() {
                    break;
                }
            }
            if self.discarded != discarded_before {
                if discarded_before == 0 {
                    tracing::debug!(
                        endpoint = self.endpoint,
                        peer = self.address,
                        "discarding messages from a peer: a {} socket receives none (RFC 29/30)",
                        self.shared.socket_type
                    );
                }
                let n = self.discarded - discarded_before;
                self.shared.discarded.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }

        // 2. Exchange messages with the socket.
        let mut linger_deadline = None;
        if let Some(peer) = self.peer {
            // Nothing more is taken once the connection is ending: those messages stay queued for
            // the next connection (a session's queue outlives its connections).
            let budget =
                if self.end.is_none() && self.conn.is_ready() && self.conn.transmit().len() < TRANSMIT_HIGH {
                    OUT_BUDGET
                } else {
                    0
                };
            let before = self.incoming.len();
            let x = self.shared.exchange(
                peer,
                &mut self.incoming,
                &mut self.outgoing,
                &mut self.commands,
                budget,
                cx.waker(),
            );
            for (subscribe, topic) in self.commands.drain(..) {
                progress = true;
                // Cannot fail: commands are handed over only once the connection is ready.
                let _ =
                    if subscribe { self.conn.send_subscribe(topic) } else { self.conn.send_cancel(topic) };
            }
            if self.incoming.len() != before {
                progress = true;
            }
            self.inbox_full = x.inbox_full;
            if !self.outgoing.is_empty() {
                progress = true;
                for msg in self.outgoing.drain(..) {
                    // Cannot fail: the connection is ready (checked for the budget above).
                    let _ = self.conn.send_message(msg);
                }
            }
            if x.kick && self.end.is_none() {
                self.finish(End::Local);
            }
            if let Some(deadline) = x.closing {
                let flushed = x.out_empty && self.conn.transmit().is_empty();
                let expired = deadline.is_some_and(|d| d <= now());
                let unconnectable = !self.conn.is_ready() && !self.handshaken;
                if self.end.is_none() && (flushed || expired || unconnectable && x.out_empty) {
                    self.finish(End::Local);
                }
                linger_deadline = deadline;
            }
        } else if self.shared.is_closing() && self.end.is_none() {
            self.finish(End::Local);
        }

        // 3. Write everything queued, in as few syscalls as the kernel allows.
        while !self.conn.transmit().is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = self.conn.transmit().chunks_vectored(&mut slices);
            match Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => {
                    self.conn.transmit_mut().clear_all();
                    self.finish(End::Io(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(written)) => {
                    self.conn.transmit_mut().advance(written);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.conn.transmit_mut().clear_all();
                    if self.end.is_none() {
                        self.conn.close();
                        self.finish(End::Io(e));
                    }
                }
                Poll::Pending => break,
            }
        }

        // 4. Ending: done once everything is flushed (or the flush deadline passed).
        if let Some(end) = self.end.take() {
            let flush_expired = self.flush_deadline.is_some_and(|d| d <= now());
            if self.conn.transmit().is_empty() || flush_expired {
                let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
                return Poll::Ready(Some(end));
            }
            self.end = Some(end);
        }

        // 5. Read, unless the socket cannot take more or we cannot write what we owe.
        let can_read = self.end.is_none()
            && self.decoded_all
            && !self.eof
            && !self.inbox_full
            && self.incoming.len() < DECODE_BATCH
            && self.conn.transmit().len() < TRANSMIT_HIGH;
        // With nothing buffered, wait for readability before taking a read buffer: an idle
        // connection then gives its buffers back (`handle_idle`) and holds none while it waits.
        let idle =
            can_read && self.conn.buffered_input() == 0 && self.stream.poll_read_ready(cx).is_pending();
        if idle {
            // Only once a whole round found nothing to do: a sender that writes every round keeps
            // its header block instead of freeing and allocating it again per round.
            if !progress {
                self.conn.handle_idle();
            }
        } else if can_read {
            let buf = self.conn.read_buffer();
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, buf) {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    self.conn.handle_eof();
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    self.conn.handle_read(now(), n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.conn.close();
                    self.finish(End::Io(e));
                    progress = true;
                }
                Poll::Pending => {}
            }
        }

        // 6. Timers: the connection's (handshake, heartbeats), the linger deadline, the close flush.
        let deadline =
            [self.conn.poll_timeout(), linger_deadline, self.flush_deadline].into_iter().flatten().min();
        if let Some(at) = deadline {
            if at <= now() {
                self.conn.handle_timeout(now());
                progress = true;
            } else {
                if self.timer_at != Some(at) {
                    self.timer.as_mut().reset(tokio::time::Instant::from_std(at));
                    self.timer_at = Some(at);
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.timer_at = None;
                    self.conn.handle_timeout(now());
                    progress = true;
                }
            }
        }

        if progress {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    /// Records how the connection ends; flushing continues for at most [`CLOSE_FLUSH`].
    fn finish(&mut self, end: End) {
        if self.end.is_none() {
            self.end = Some(end);
            self.flush_deadline = now().checked_add(CLOSE_FLUSH);
        }
    }

    fn on_subscription(&mut self, topic: Bytes, subscribe: bool) {
        if let Some(peer) = self.peer {
            if let Some(msg) = self.shared.handle_subscription(peer, topic, subscribe) {
                self.incoming.push_back(msg);
            }
        }
    }

    fn on_authenticate(&mut self, credentials: Credentials) {
        let options = &self.shared.options;
        // libzmq sends the IP alone for tcp peers ("127.0.0.1"), and the endpoint otherwise.
        let address = match self.address.rsplit_once(':') {
            Some((ip, port)) if port.parse::<u16>().is_ok() => {
                ip.trim_start_matches("tcp://").trim_start_matches('[').trim_end_matches(']').to_owned()
            }
            _ => self.address.to_owned(),
        };
        let request = AuthRequest {
            domain: options.zap_domain.clone(),
            address,
            routing_id: options.routing_id.clone().unwrap_or_default(),
            credentials,
        };
        // Who decides, in order: our authenticator; a ZAP handler bound in this process (RFC 27, as
        // libzmq); otherwise libzmq's rules without a handler: ZAP_ENFORCE_DOMAIN refuses, PLAIN
        // refuses (its credentials would mean nothing), CURVE and NULL are accepted (CURVE without
        // a handler is encryption without client authentication, the "Stonehouse" pattern).
        if let Some(authenticator) = &options.authenticator {
            self.auth = Some(authenticator.0.authenticate(request));
        } else if super::zap::handler_bound() {
            self.auth = Some(super::zap::ask(request));
        } else if options.zap_enforce_domain {
            self.conn.handle_auth_reply(AuthReply::deny(500, "No ZAP handler (ZAP_ENFORCE_DOMAIN)"));
        } else if matches!(request.credentials, Credentials::Plain { .. }) {
            self.conn.handle_auth_reply(AuthReply::deny(
                500,
                "PLAIN server without an authenticator or ZAP handler",
            ));
        } else {
            self.conn.handle_auth_reply(AuthReply::allow(Bytes::new()));
        }
    }

    fn on_handshake(&mut self, info: &crate::proto::PeerInfo) {
        self.handshaken = true;
        if let Some(auth) = &info.auth {
            self.properties = Some(Arc::new(Properties {
                user_id: auth.user_id.clone(),
                auth_metadata: auth.metadata.clone(),
                peer_metadata: info.metadata.clone(),
            }));
        }
        self.handshake_guard = None;
        self.shared.monitors.emit(self.endpoint, SocketEventKind::HandshakeSucceeded);
        if info.socket_type.is_none() {
            tracing::warn!(endpoint = self.endpoint, "peer sent no Socket-Type; accepted as libzmq does");
        }
        let peer = match &self.slot {
            PeerSlot::Session(id) => *id,
            PeerSlot::AtHandshake { connect_routing_id } => {
                let id = self.shared.add_peer();
                let details =
                    PeerDetails { info: Some(info), connect_routing_id: connect_routing_id.as_ref() };
                if let Attach::Refused(why) = self.shared.attach(id, details) {
                    tracing::info!(endpoint = self.endpoint, "peer refused: {why}");
                    self.shared.remove_peer(id);
                    self.conn.close();
                    self.finish(End::Refused(why));
                    return;
                }
                self.peer = Some(id);
                id
            }
        };
        if self.shared.socket_type == SocketType::Router {
            // Once per connection, for `Socket::peer_address` (a relay keys clients by address).
            self.shared.set_peer_address(peer, self.address);
        }
        self.shared.set_connected(peer, true);
        let probes =
            matches!(self.shared.socket_type, SocketType::Router | SocketType::Dealer | SocketType::Req);
        if self.shared.options.probe_router && probes {
            let _ = self.conn.send_message(Msg::from(vec![Bytes::new()]));
        }
    }
}
