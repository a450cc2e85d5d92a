//! [`Shared`]: the state one socket shares between its handles and its connection drivers: per-peer
//! queues (both directions), the fair-queue of peers with messages, the routing policy, and wakers.
//!
//! ```text
//!  Socket::send ──► Pattern::route ──► peer.out ──► driver ──► Connection ──► wire
//!  Socket::recv ◄── Pattern::accept ◄── ready ◄── peer.inbox ◄── driver ◄── wire
//! ```
//!
//! One mutex guards it all. Drivers take it once per batch (every message decoded from one read, every
//! message queued since the last write); `send` and `recv` take it once per message. Each peer's
//! queues are bounded (HWM in messages, plus a byte cap): a full send queue makes `send` wait or
//! skip the peer, a full receive queue stops its driver reading from the network.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::commands::PendingCommands;
use super::monitor::Monitors;
use super::options::Options;
use crate::error::Error;
use crate::message::Msg;
use crate::pattern::{Attach, Pattern, PeerDetails, PeerId, PeerView, Route};
use crate::proto::{ConnectionConfig, SocketType};

/// Bytes counted per queued message on top of its frames (the `Msg`, its frame list and queue slot),
/// so a flood of empty messages is bounded by the byte cap too.
const MSG_OVERHEAD: usize = 64;

/// The bytes a message is counted as in the queue byte caps.
fn cost(msg: &Msg) -> usize {
    msg.byte_len() + MSG_OVERHEAD + 32 * msg.len()
}

use crate::pattern::IdMap;

/// Wakers of tasks waiting for one condition; stale ones (cancelled futures) are woken spuriously once.
#[derive(Debug, Default)]
struct Wakers(Vec<Waker>);

impl Wakers {
    fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }
    fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

/// One peer's queues.
#[derive(Debug, Default)]
struct Peer {
    /// Messages routed to this peer, waiting for its driver.
    out: VecDeque<Msg>,
    out_bytes: usize,
    /// Messages received from this peer, waiting for `recv`.
    inbox: VecDeque<Msg>,
    in_bytes: usize,
    /// Whether the peer is in `Core::ready`.
    in_ready: bool,
    /// Whether the routing policy knows the peer.
    attached: bool,
    /// Whether a connection is serving this peer now (a connecting endpoint's peer exists between
    /// connections, keeping its queue).
    connected: bool,
    /// The driver must close its connection (refused, handed over, or disconnected by the app).
    kick: bool,
    /// The driver's waker, woken when messages are queued to it, room frees in its inbox, or it must
    /// close.
    driver: Option<Waker>,
    /// The peer's connection is gone: remove the slot once its inbox is drained.
    gone: bool,
    /// Subscriptions and cancels to send to this peer (SUB, XSUB), coalesced per topic.
    commands: PendingCommands,
    /// The remote address of the peer's connection (ROUTER only: [`Shared::peer_address`]).
    address: Option<Arc<str>>,
}

impl Peer {
    /// Whether a message may be queued to this peer now.
    fn has_room(&self, send_limit: usize, bytes_limit: usize) -> bool {
        self.attached && !self.gone && self.out.len() < send_limit && self.out_bytes < bytes_limit
    }

    /// Queues `msg` for the driver (replacing what is queued under `conflate`) and wakes it.
    fn queue_out(&mut self, msg: Msg, conflate: bool) {
        if conflate {
            self.out.clear();
            self.out_bytes = 0;
        }
        self.out_bytes += cost(&msg);
        self.out.push_back(msg);
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }
}

/// The socket state behind the mutex.
#[derive(Debug)]
struct Core {
    peers: IdMap<Peer>,
    next_peer: PeerId,
    /// Peers with received messages, in fair-queue order: `recv` takes one message from the front
    /// peer and moves it to the back.
    ready: VecDeque<PeerId>,
    pattern: Box<dyn Pattern>,
    recv_wakers: Wakers,
    send_wakers: Wakers,
    /// Set by `close`: the instant after which queued messages are discarded (`None`: wait forever).
    closing: Option<Option<Instant>>,
    send_limit: usize,
    recv_limit: usize,
    bytes_limit: usize,
    /// Messages dropped for a peer whose queue was full (PUB/XPUB fan-out, ROUTER).
    dropped: u64,
}

/// The peers as a routing policy sees them.
struct View<'a> {
    peers: &'a IdMap<Peer>,
    send_limit: usize,
    bytes_limit: usize,
}

impl PeerView for View<'_> {
    fn has_room(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.has_room(self.send_limit, self.bytes_limit))
    }
}

/// What `send` found.
pub(crate) enum SendOutcome {
    /// Queued (or dropped by policy, as ROUTER and REP do).
    Done,
    /// No room: the waker is registered; try again when woken.
    Blocked(Msg),
    /// Refused.
    Failed(Error, Msg),
}

/// What a driver learns from [`Shared::exchange`].
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// Received messages are left over: the inbox is full; stop reading until woken.
    pub inbox_full: bool,
    /// The driver must close the connection now.
    pub kick: bool,
    /// The socket is closing; the value is the linger deadline (`None`: wait forever).
    pub closing: Option<Option<Instant>>,
    /// Whether the peer's send queue is empty after this exchange.
    pub out_empty: bool,
}

/// State shared by a socket's handles, listeners, sessions and drivers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The socket's type.
    pub socket_type: SocketType,
    /// Its options.
    pub options: Options,
    /// The per-connection configuration (role set per connection).
    pub config: ConnectionConfig,
    /// Its monitors.
    pub monitors: Monitors,
    /// Cancelled when the socket closes: listeners stop, sessions stop reconnecting.
    pub shutdown: CancellationToken,
    /// Every task the socket spawned.
    pub tasks: TaskTracker,
    /// Messages received on a type without a receive side (PUB, PUSH) and discarded on arrival.
    pub discarded: AtomicU64,
    core: Mutex<Core>,
}

impl Shared {
    /// State for a new socket.
    pub(crate) fn new(
        socket_type: SocketType,
        options: Options,
        pattern: Box<dyn Pattern>,
    ) -> Result<Shared, Error> {
        let config = options.connection_config(socket_type)?;
        let core = Core {
            peers: IdMap::default(),
            next_peer: 1,
            ready: VecDeque::new(),
            pattern,
            recv_wakers: Wakers::default(),
            send_wakers: Wakers::default(),
            closing: None,
            send_limit: options.send_limit(),
            recv_limit: options.recv_limit(),
            bytes_limit: options.bytes_limit(),
            dropped: 0,
        };
        Ok(Shared {
            socket_type,
            options,
            config,
            monitors: Monitors::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            discarded: AtomicU64::new(0),
            core: Mutex::new(core),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // Nothing panics while the lock is held except on a bug; the queues stay consistent either
        // way, so a poisoned lock is still used.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- the application side -----

    /// Routes `msg`, or registers `waker` (if any) to be woken when it may succeed.
    pub(crate) fn send(&self, msg: Msg, waker: Option<&Waker>) -> SendOutcome {
        self.send_locked(&mut self.lock(), msg, waker)
    }

    /// Routes messages from the front of `queue` under one lock, until it is empty or one cannot be
    /// queued now (it stays at the front; `waker`, if any, is registered) or is refused (it stays at
    /// the front and its error is returned). Returns how many were routed.
    pub(crate) fn send_batch(
        &self,
        queue: &mut VecDeque<Msg>,
        waker: Option<&Waker>,
    ) -> Result<usize, Error> {
        let mut core = self.lock();
        let mut sent = self.send_run(&mut core, queue);
        while let Some(msg) = queue.pop_front() {
            match self.send_locked(&mut core, msg, waker) {
                SendOutcome::Done => sent += 1,
                SendOutcome::Blocked(msg) => {
                    queue.push_front(msg);
                    break;
                }
                SendOutcome::Failed(e, msg) => {
                    queue.push_front(msg);
                    return Err(e);
                }
            }
        }
        Ok(sent)
    }

    /// With a policy that sends everything to one peer for as long as it has room
    /// ([`Pattern::sole_route`]), queues a run of messages from the front of `queue` to it at once,
    /// waking its driver once: how many. What is left goes through [`Shared::send_locked`].
    fn send_run(&self, core: &mut Core, queue: &mut VecDeque<Msg>) -> usize {
        if self.options.conflate || core.closing.is_some() || core.pattern.check_send().is_err() {
            return 0;
        }
        let Some(id) = core.pattern.sole_route() else { return 0 };
        let (send_limit, bytes_limit) = (core.send_limit, core.bytes_limit);
        let Some(peer) = core.peers.get_mut(&id) else { return 0 };
        let mut sent = 0;
        if peer.out.is_empty() && queue.len() <= send_limit && peer.has_room(send_limit, bytes_limit) {
            let mut bytes = 0;
            if queue.iter().all(|m| {
                bytes += cost(m);
                !m.is_empty()
            }) && bytes <= bytes_limit
            {
                // All of it fits the empty queue: hand the whole batch over.
                std::mem::swap(&mut peer.out, queue);
                peer.out_bytes = bytes;
                sent = peer.out.len();
            }
        }
        while peer.has_room(send_limit, bytes_limit) && queue.front().is_some_and(|m| !m.is_empty()) {
            let Some(msg) = queue.pop_front() else { break };
            peer.out_bytes += cost(&msg);
            peer.out.push_back(msg);
            sent += 1;
        }
        if sent > 0 {
            if let Some(w) = peer.driver.take() {
                w.wake();
            }
        }
        sent
    }

    fn send_locked(&self, core: &mut Core, msg: Msg, waker: Option<&Waker>) -> SendOutcome {
        if msg.is_empty() {
            return SendOutcome::Failed(Error::InvalidMessage("a message needs at least one frame"), msg);
        }
        if core.closing.is_some() {
            return SendOutcome::Failed(Error::Closed, msg);
        }
        if let Err(e) = core.pattern.check_send() {
            return SendOutcome::Failed(e, msg);
        }
        if let Some((subscribe, topic)) = core.pattern.subscription_message(&msg) {
            return match Self::subscription_locked(core, topic, subscribe) {
                Ok(()) => SendOutcome::Done,
                Err(e) => SendOutcome::Failed(e, msg),
            };
        }
        let view = View { peers: &core.peers, send_limit: core.send_limit, bytes_limit: core.bytes_limit };
        match core.pattern.route(msg, &view) {
            Route::To(id, msg) => {
                if let Some(peer) = core.peers.get_mut(&id) {
                    peer.queue_out(msg, self.options.conflate);
                }
                SendOutcome::Done
            }
            Route::Fanout(ids, msg) => {
                let view =
                    View { peers: &core.peers, send_limit: core.send_limit, bytes_limit: core.bytes_limit };
                if self.options.xpub_nodrop && !ids.iter().all(|&id| view.has_room(id)) {
                    // XPUB_NODROP: wait until every matching subscriber has room.
                    if let Some(w) = waker {
                        core.send_wakers.register(w);
                    }
                    return SendOutcome::Blocked(msg);
                }
                for &id in &ids {
                    match core.peers.get_mut(&id) {
                        Some(peer) if peer.has_room(core.send_limit, core.bytes_limit) => {
                            peer.queue_out(msg.clone(), self.options.conflate);
                        }
                        // RFC 29: dropped for a subscriber whose queue is full; counted.
                        _ => core.dropped += 1,
                    }
                }
                core.pattern.recycle_fanout(ids);
                SendOutcome::Done
            }
            Route::Drop => SendOutcome::Done,
            Route::DropFull => {
                core.dropped += 1;
                SendOutcome::Done
            }
            Route::Block(msg) => {
                if let Some(w) = waker {
                    core.send_wakers.register(w);
                }
                SendOutcome::Blocked(msg)
            }
            Route::Fail(e, msg) => SendOutcome::Failed(e, msg),
        }
    }

    /// The next message in fair-queue order, or `Ok(None)` after registering `waker` (if any).
    pub(crate) fn recv(&self, waker: Option<&Waker>) -> Result<Option<Msg>, Error> {
        Self::recv_locked(&mut self.lock(), waker)
    }

    /// Up to `max` messages in fair-queue order under one lock, appended to `out`: how many. With none
    /// to take, `Ok(0)` after registering `waker` (if any).
    pub(crate) fn recv_batch(
        &self,
        out: &mut VecDeque<Msg>,
        max: usize,
        waker: Option<&Waker>,
    ) -> Result<usize, Error> {
        let mut core = self.lock();
        let mut taken = 0;
        if core.ready.len() == 1 {
            if core.pattern.passes_through() {
                taken += Self::take_run(&mut core, out, max, None);
            } else if let Some(prefix) = core.ready.front().and_then(|&id| core.pattern.prefix_for(id)) {
                taken += Self::take_run(&mut core, out, max, Some(prefix));
            }
        }
        while taken < max {
            // The waker is registered only if nothing at all was taken.
            match Self::recv_locked(&mut core, if taken == 0 { waker } else { None }) {
                Ok(Some(msg)) => {
                    out.push_back(msg);
                    taken += 1;
                }
                Ok(None) => break,
                Err(e) if taken == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(taken)
    }

    /// With one peer ready and a pattern that passes messages through unchanged (or only prefixes them),
    /// fair queueing has nobody to alternate with: moves up to `max` of that peer's queued messages to
    /// `out` at once (what [`Shared::recv_locked`] would hand over one by one): how many. With
    /// `prefix`, each message gets it as a first frame on the way ([`Pattern::prefix_for`]).
    fn take_run(core: &mut Core, out: &mut VecDeque<Msg>, max: usize, prefix: Option<Bytes>) -> usize {
        let Some(&id) = core.ready.front() else { return 0 };
        let Some(peer) = core.peers.get_mut(&id) else { return 0 };
        let was_full = peer.inbox.len() >= core.recv_limit || peer.in_bytes >= core.bytes_limit;
        let n = max.min(peer.inbox.len());
        if let Some(prefix) = prefix {
            let bytes: usize = peer.inbox.iter().take(n).map(cost).sum();
            out.extend(peer.inbox.drain(..n).map(|mut msg| {
                msg.push_front(prefix.clone());
                msg
            }));
            peer.in_bytes -= bytes.min(peer.in_bytes);
        } else if n == peer.inbox.len() && out.is_empty() {
            // Everything queued is wanted: hand the whole queue over.
            std::mem::swap(&mut peer.inbox, out);
            peer.in_bytes = 0;
        } else {
            let bytes: usize = peer.inbox.iter().take(n).map(cost).sum();
            out.extend(peer.inbox.drain(..n));
            peer.in_bytes -= bytes.min(peer.in_bytes);
        }
        if was_full && n > 0 {
            // Its driver stopped reading when the inbox filled: there is room again.
            if let Some(w) = peer.driver.take() {
                w.wake();
            }
        }
        if peer.inbox.is_empty() {
            peer.in_ready = false;
            core.ready.pop_front();
            if peer.gone {
                core.peers.remove(&id);
                core.pattern.forget(id);
            }
        }
        n
    }

    fn recv_locked(core: &mut Core, waker: Option<&Waker>) -> Result<Option<Msg>, Error> {
        core.pattern.check_recv()?;
        if let Some(notice) = core.pattern.poll_notice() {
            return Ok(Some(notice));
        }
        let mut forget_after = None;
        while let Some(id) = core.ready.pop_front() {
            let Some(peer) = core.peers.get_mut(&id) else { continue };
            let Some(msg) = peer.inbox.pop_front() else {
                peer.in_ready = false;
                continue;
            };
            let was_full = peer.inbox.len() + 1 >= core.recv_limit || peer.in_bytes >= core.bytes_limit;
            peer.in_bytes -= cost(&msg).min(peer.in_bytes);
            if was_full {
                // Its driver stopped reading when the inbox filled: there is room again.
                if let Some(w) = peer.driver.take() {
                    w.wake();
                }
            }
            if peer.inbox.is_empty() {
                peer.in_ready = false;
                if peer.gone {
                    core.peers.remove(&id);
                    forget_after = Some(id);
                }
            } else {
                core.ready.push_back(id);
            }
            let accepted = core.pattern.accept(id, msg);
            if let Some(gone) = forget_after.take() {
                core.pattern.forget(gone);
            }
            if let Some(msg) = accepted {
                return Ok(Some(msg));
            }
        }
        if core.closing.is_some() {
            return Err(Error::Closed);
        }
        if let Some(w) = waker {
            core.recv_wakers.register(w);
        }
        Ok(None)
    }

    /// The application subscribes (`true`) or unsubscribes from `topic` (SUB). A topic's first
    /// subscription and last cancel are sent to every attached peer.
    pub(crate) fn local_subscription(&self, topic: Bytes, subscribe: bool) -> Result<(), Error> {
        Self::subscription_locked(&mut self.lock(), topic, subscribe)
    }

    fn subscription_locked(core: &mut Core, topic: Bytes, subscribe: bool) -> Result<(), Error> {
        if core.pattern.local_subscription(&topic, subscribe)? {
            for peer in core.peers.values_mut().filter(|p| p.attached && !p.gone) {
                peer.commands.push(subscribe, topic.clone());
                if let Some(w) = peer.driver.take() {
                    w.wake();
                }
            }
        }
        Ok(())
    }

    /// A peer subscribed or cancelled (PUB, XPUB). Returns what the application receives for it
    /// (XPUB), which the driver queues like a message from that peer.
    pub(crate) fn handle_subscription(&self, peer: PeerId, topic: Bytes, subscribe: bool) -> Option<Msg> {
        let mut core = self.lock();
        if core.peers.get(&peer).is_some_and(|p| p.attached) {
            core.pattern.handle_subscription(peer, topic, subscribe)
        } else {
            None
        }
    }

    /// Starts closing: no more sends or receives; drivers flush until `deadline` (`None`: forever).
    pub(crate) fn close(&self, deadline: Option<Instant>) {
        let mut core = self.lock();
        if core.closing.is_some() {
            return;
        }
        core.closing = Some(deadline);
        core.recv_wakers.wake_all();
        core.send_wakers.wake_all();
        for peer in core.peers.values_mut() {
            if let Some(w) = peer.driver.take() {
                w.wake();
            }
        }
        drop(core);
        self.shutdown.cancel();
    }

    /// Runs `f` on the subscription table (PUB, XPUB), `None` for other types.
    pub(crate) fn with_subscriptions<T>(
        &self,
        f: impl FnOnce(&crate::pattern::subscriptions::Subscriptions) -> T,
    ) -> Option<T> {
        self.lock().pattern.subscriptions().map(f)
    }

    /// The `Socket-Type` the peer with `routing_id` announced (ROUTER): see
    /// [`Pattern::peer_socket_type`](crate::pattern::Pattern::peer_socket_type).
    pub(crate) fn peer_socket_type(&self, routing_id: &[u8]) -> Option<SocketType> {
        self.lock().pattern.peer_socket_type(routing_id)
    }

    /// Messages a PUB/XPUB or ROUTER dropped for peers whose queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Whether the routing policy gives connecting peers their queue before the handshake.
    pub(crate) fn pattern_attaches_before_handshake(&self) -> bool {
        self.lock().pattern.attaches_before_handshake()
    }

    /// Whether the socket is closing and its linger deadline has passed.
    pub(crate) fn linger_expired(&self) -> bool {
        matches!(self.lock().closing, Some(Some(d)) if d <= tokio::time::Instant::now().into_std())
    }

    /// Whether `close` was called.
    pub(crate) fn is_closing(&self) -> bool {
        self.lock().closing.is_some()
    }

    // ----- the driver side -----

    /// A new peer slot, not yet routable.
    pub(crate) fn add_peer(&self) -> PeerId {
        let mut core = self.lock();
        let id = core.next_peer;
        core.next_peer += 1;
        core.peers.insert(id, Peer::default());
        id
    }

    /// Makes `peer` routable. On `Refused` the caller closes the connection; on `Replaced(old)` the
    /// old peer's driver is told to close.
    pub(crate) fn attach(&self, peer: PeerId, details: PeerDetails<'_>) -> Attach {
        let mut core = self.lock();
        let core = &mut *core;
        if core.peers.get(&peer).is_none_or(|p| p.attached) {
            return Attach::Accepted;
        }
        let result = core.pattern.attach(peer, details);
        match result {
            Attach::Refused(_) => {}
            Attach::Accepted | Attach::Replaced(_) => {
                // A new peer is sent every subscription held (SUB), in the same step as it becomes
                // visible, so none is sent twice or missed.
                let topics = core.pattern.local_topics();
                let welcome = core.pattern.welcome();
                if let Some(p) = core.peers.get_mut(&peer) {
                    p.attached = true;
                    for topic in topics {
                        p.commands.push(true, topic);
                    }
                    if let Some(w) = welcome {
                        p.queue_out(w, false);
                    }
                }
                if let Attach::Replaced(old) = result {
                    if let Some(p) = core.peers.get_mut(&old) {
                        p.kick = true;
                        if let Some(w) = p.driver.take() {
                            w.wake();
                        }
                    }
                }
                core.send_wakers.wake_all();
            }
        }
        result
    }

    /// Marks whether a connection currently serves `peer`.
    pub(crate) fn set_connected(&self, peer: PeerId, connected: bool) {
        if let Some(p) = self.lock().peers.get_mut(&peer) {
            p.connected = connected;
            if connected {
                p.kick = false;
            }
        }
    }

    /// Removes `peer` from routing; its unsent messages are dropped, its received ones stay
    /// receivable (libzmq delivers what a pipe holds before it terminates).
    pub(crate) fn remove_peer(&self, peer: PeerId) {
        let mut core = self.lock();
        let core = &mut *core;
        let Some(p) = core.peers.get_mut(&peer) else { return };
        if p.attached {
            core.pattern.detach(peer);
        }
        p.attached = false;
        p.gone = true;
        p.out.clear();
        p.out_bytes = 0;
        if self.socket_type == SocketType::Rep && !p.inbox.is_empty() {
            // RFC 28: a REP's reply to a peer that is gone is discarded, so its unread requests
            // would only cost the application work and us memory (each small request keeps its
            // connection's read block alive: +27 MiB for 4,400 requests of a reconnect storm,
            // reliability.md B-12; libzmq #4335). libzmq hands them over anyway.
            p.inbox.clear();
            p.in_bytes = 0;
        }
        if p.inbox.is_empty() {
            core.peers.remove(&peer);
            core.pattern.forget(peer);
        }
        // Routing changed: a blocked REQ/DEALER may now pick another peer, a REP reply is dropped;
        // an XPUB may have cancels of the departed subscriber to deliver.
        core.send_wakers.wake_all();
        core.recv_wakers.wake_all();
    }

    /// Records the remote address of `peer`'s connection (set at each handshake).
    pub(crate) fn set_peer_address(&self, peer: PeerId, address: &str) {
        if let Some(p) = self.lock().peers.get_mut(&peer) {
            p.address = Some(Arc::from(address));
        }
    }

    /// The remote address of the connection whose peer holds `routing_id` (ROUTER), if attached.
    pub(crate) fn peer_address(&self, routing_id: &[u8]) -> Option<Arc<str>> {
        let core = self.lock();
        let peer = core.pattern.peer_of_routing_id(routing_id)?;
        core.peers.get(&peer).and_then(|p| p.address.clone())
    }

    /// Whether `peer` still has unsent messages queued.
    pub(crate) fn has_queued(&self, peer: PeerId) -> bool {
        self.lock().peers.get(&peer).is_some_and(|p| !p.out.is_empty())
    }

    /// One driver round: moves `incoming` into the peer's inbox (as far as room allows) and up to
    /// `out_budget` bytes of queued messages into `outgoing`, and registers the driver's waker.
    pub(crate) fn exchange(
        &self,
        peer: PeerId,
        incoming: &mut VecDeque<Msg>,
        outgoing: &mut VecDeque<Msg>,
        commands: &mut Vec<(bool, Bytes)>,
        out_budget: usize,
        waker: &Waker,
    ) -> Exchange {
        let mut core = self.lock();
        let core = &mut *core;
        let mut result = Exchange { closing: core.closing, ..Exchange::default() };
        let Some(p) = core.peers.get_mut(&peer) else {
            result.kick = true;
            return result;
        };
        if !incoming.is_empty() {
            let was_empty = p.inbox.is_empty();
            if self.options.conflate {
                // Only the newest message is kept.
                if let Some(newest) = incoming.pop_back() {
                    incoming.clear();
                    p.inbox.clear();
                    p.in_bytes = 0;
                    incoming.push_back(newest);
                }
            }
            if p.inbox.is_empty() && incoming.len() <= core.recv_limit {
                let bytes: usize = incoming.iter().map(cost).sum();
                if bytes <= core.bytes_limit {
                    // All of it fits the empty inbox: hand the whole queue over.
                    std::mem::swap(&mut p.inbox, incoming);
                    p.in_bytes = bytes;
                }
            }
            while p.inbox.len() < core.recv_limit && p.in_bytes < core.bytes_limit {
                let Some(msg) = incoming.pop_front() else { break };
                p.in_bytes += cost(&msg);
                p.inbox.push_back(msg);
            }
            if was_empty && !p.inbox.is_empty() {
                if !p.in_ready {
                    p.in_ready = true;
                    core.ready.push_back(peer);
                }
                core.recv_wakers.wake_all();
            }
            result.inbox_full = !incoming.is_empty();
        }
        if out_budget > 0 && !p.commands.is_empty() {
            p.commands.drain_into(commands);
        }
        if out_budget > 0 && !p.out.is_empty() {
            let was_full = p.out.len() >= core.send_limit || p.out_bytes >= core.bytes_limit;
            if p.out_bytes <= out_budget && outgoing.is_empty() {
                // All of it fits the budget: take the whole queue.
                std::mem::swap(&mut p.out, outgoing);
                p.out_bytes = 0;
            }
            let mut taken = 0;
            while taken < out_budget {
                let Some(msg) = p.out.pop_front() else { break };
                let c = cost(&msg);
                taken += c;
                p.out_bytes -= c.min(p.out_bytes);
                outgoing.push_back(msg);
            }
            if was_full {
                core.send_wakers.wake_all();
            }
        }
        result.out_empty = p.out.is_empty();
        result.kick = p.kick;
        match &p.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => p.driver = Some(waker.clone()),
        }
        result
    }
}
