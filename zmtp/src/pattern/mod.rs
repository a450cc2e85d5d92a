//! Routing policies, one file per RFC group: which peer a message goes to, and what a received message
//! becomes. Pure and synchronous: no tasks, no I/O, no locks. The runtime owns the queues and asks.
//!
//! - [`lb`]: round-robin to peers with room (DEALER, PUSH, REQ).
//! - [`reqrep`]: REQ, REP, DEALER, ROUTER (RFC 28).
//! - [`pipeline`]: PUSH, PULL (RFC 30).
//! - [`pair`]: PAIR (RFC 31).
//! - [`pubsub`]: PUB, SUB, XPUB, XSUB (RFC 29).
//! - [`subscriptions`]: the publisher-side subscription trie (RFC 29), for PUB and XPUB.
//!
//! Fair queuing of received messages is done by the runtime's per-peer queues (one message per ready
//! peer in turn); a policy only sees each message as it is taken, in [`Pattern::accept`].

use std::fmt;

use bytes::Bytes;

use crate::error::Error;
use crate::message::Msg;
use crate::proto::{PeerInfo, SocketType};

pub mod lb;
pub mod pair;
pub mod pipeline;
pub mod pubsub;
pub mod reqrep;
pub mod subscriptions;

/// A peer of one socket: a connection, or a connecting endpoint's queue. Never reused.
pub type PeerId = u64;

/// A hasher for [`PeerId`] keys: ids are sequential and never come from a peer, so no DoS-resistant
/// hash is needed.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by [`PeerId`].
pub(crate) type IdMap<V> = std::collections::HashMap<PeerId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// What a policy may ask about the socket's peers.
pub trait PeerView {
    /// Whether `peer` is attached and its send queue has room for one more message.
    fn has_room(&self, peer: PeerId) -> bool;
}

/// Where a message goes.
#[derive(Debug)]
pub enum Route {
    /// Queue it to this peer (the policy has checked the peer has room).
    To(PeerId, Msg),
    /// Drop it silently (ROUTER without a route, REP whose requester left).
    Drop,
    /// Drop it, counted: its peer's queue is full (ROUTER without `ROUTER_MANDATORY`, RFC 28:
    /// "SHALL drop the message" when the queue is full; reliability.md B-8 asks for the count).
    DropFull,
    /// No peer can take it now: wait for room or a new peer, then ask again.
    Block(Msg),
    /// Queue a copy to each of these peers that has room; silently skip the others (PUB: "SHALL
    /// silently drop the message if the queue for a subscriber is full"). Copies share the frames'
    /// buffers.
    Fanout(Vec<PeerId>, Msg),
    /// Refuse it.
    Fail(Error, Msg),
}

/// What attaching a peer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Attach {
    /// The peer is routable.
    Accepted,
    /// The peer is routable and took over an identity from `old`, which must be closed (ROUTER
    /// handover).
    Replaced(PeerId),
    /// The peer must be disconnected (PAIR's second peer, a duplicate ROUTER identity).
    Refused(&'static str),
}

/// What is known about a peer when it is attached.
#[derive(Debug, Default, Clone, Copy)]
pub struct PeerDetails<'a> {
    /// The handshake's result; `None` for a connecting peer attached before its handshake.
    pub info: Option<&'a PeerInfo>,
    /// The routing id given with `connect` (`ZMQ_CONNECT_ROUTING_ID`).
    pub connect_routing_id: Option<&'a Bytes>,
}

/// A socket type's routing policy.
pub trait Pattern: Send + fmt::Debug {
    /// Whether a connecting endpoint's peer gets its queue at `connect`, before any handshake (RFC 28,
    /// 30, 31: messages wait while the peer connects). ROUTER, REP and PULL attach at the handshake.
    fn attaches_before_handshake(&self) -> bool {
        false
    }
    /// A peer joins routing.
    fn attach(&mut self, peer: PeerId, details: PeerDetails<'_>) -> Attach;
    /// A peer leaves routing: nothing more is sent to it. Messages it sent may still be in its
    /// receive queue and reach [`Pattern::accept`] until [`Pattern::forget`].
    fn detach(&mut self, peer: PeerId);
    /// The last message received from a detached peer has been taken: forget it entirely.
    fn forget(&mut self, _peer: PeerId) {}
    /// The attached peer that holds `routing_id` (ROUTER); `None` for other types.
    fn peer_of_routing_id(&self, _routing_id: &[u8]) -> Option<PeerId> {
        None
    }
    /// Decides where `msg` goes. Called only after [`Pattern::check_send`] passed.
    fn route(&mut self, msg: Msg, peers: &dyn PeerView) -> Route;
    /// Hands back the (now used) peer list of a [`Route::Fanout`], so the next fan-out can reuse its
    /// allocation instead of building a new list per message.
    fn recycle_fanout(&mut self, _peers: Vec<PeerId>) {}
    /// A message taken from `peer`'s receive queue: what the application receives, or `None` to drop
    /// it. Called only after [`Pattern::check_recv`] passed.
    fn accept(&mut self, peer: PeerId, msg: Msg) -> Option<Msg>;
    /// A peer subscribed (`subscribe`) to `topic` or cancelled it. Only PUB-side policies care; XPUB
    /// returns the message its application receives for it (`0x01`/`0x00` + topic), if any.
    fn handle_subscription(&mut self, _peer: PeerId, _topic: Bytes, _subscribe: bool) -> Option<Msg> {
        None
    }
    /// A message the application receives that no peer sent (XPUB: the cancels of a subscriber that
    /// left), taken before any queued message.
    fn poll_notice(&mut self) -> Option<Msg> {
        None
    }
    /// Whether `msg`, sent by the application, is a subscription to pass upstream instead of a
    /// message (XSUB: `0x01`+topic subscribes, `0x00`+topic cancels).
    fn subscription_message(&self, _msg: &Msg) -> Option<(bool, Bytes)> {
        None
    }
    /// The application subscribed or unsubscribed (SUB). Returns whether the change must be sent to
    /// the peers (the topic's first subscription or last cancel), or an error for socket types
    /// without subscriptions.
    fn local_subscription(&mut self, _topic: &Bytes, _subscribe: bool) -> Result<bool, Error> {
        Err(Error::InvalidState("only SUB sockets subscribe"))
    }
    /// The subscriptions to send to a newly attached peer (SUB: every topic held).
    fn local_topics(&self) -> Vec<Bytes> {
        Vec::new()
    }
    /// The subscription table (PUB, XPUB), for introspection.
    fn subscriptions(&self) -> Option<&subscriptions::Subscriptions> {
        None
    }
    /// A message to queue to every newly attached peer (`ZMQ_XPUB_WELCOME_MSG`).
    fn welcome(&self) -> Option<Msg> {
        None
    }
    /// Whether sending is allowed now.
    fn check_send(&self) -> Result<(), Error>;
    /// Whether receiving is allowed now.
    fn check_recv(&self) -> Result<(), Error>;
    /// Whether received messages reach the application exactly as they were queued: receiving is
    /// always allowed, [`Pattern::accept`] returns its message unchanged and there are never notices
    /// (PULL, DEALER, PAIR). The runtime then hands over runs of queued messages in bulk.
    fn passes_through(&self) -> bool {
        false
    }
    /// The frame put in front of every message received from `peer`, when that is all
    /// [`Pattern::accept`] does with them, receiving is always allowed and there are never notices
    /// (ROUTER: the peer's routing id). The runtime then hands over runs of that peer's messages in bulk.
    fn prefix_for(&self, _peer: PeerId) -> Option<Bytes> {
        None
    }
    /// The one peer every message goes to for as long as it has room, if the policy is a load
    /// balancer with a single peer (PUSH, DEALER): the runtime then queues runs of messages to it in
    /// bulk, exactly as routing them one by one would.
    fn sole_route(&self) -> Option<PeerId> {
        None
    }
    /// The `Socket-Type` the attached peer with this routing id announced in its handshake
    /// (ROUTER), `None` if there is no such peer, it announced none, or the policy has no routing ids.
    fn peer_socket_type(&self, _routing_id: &[u8]) -> Option<SocketType> {
        None
    }
}

/// The policy for `socket_type`. `seed` feeds the generated identities and request ids.
pub fn for_socket_type(socket_type: SocketType, options: &crate::Options, seed: u32) -> Box<dyn Pattern> {
    match socket_type {
        SocketType::Req => Box::new(reqrep::Req::new(options.req_correlate, options.req_relaxed, seed)),
        SocketType::Rep => Box::new(reqrep::Rep::default()),
        SocketType::Dealer => Box::new(reqrep::Dealer::default()),
        SocketType::Router => {
            Box::new(reqrep::Router::new(options.router_mandatory, options.router_handover, seed))
        }
        SocketType::Push => Box::new(pipeline::Push::default()),
        SocketType::Pull => Box::new(pipeline::Pull),
        SocketType::Pair => Box::new(pair::Pair::default()),
        SocketType::Pub => Box::new(pubsub::Pub::new(&publisher_options(options))),
        SocketType::Sub => Box::new(pubsub::Sub::new(options.invert_matching)),
        SocketType::XPub => Box::new(pubsub::XPub::new(&publisher_options(options))),
        SocketType::XSub => Box::new(pubsub::XSub::default()),
    }
}

fn publisher_options(options: &crate::Options) -> pubsub::PublisherOptions {
    pubsub::PublisherOptions {
        limits: options.subscription_limits,
        invert: options.invert_matching,
        verbose: options.xpub_verbose,
        verboser: options.xpub_verboser,
        welcome: options.xpub_welcome_msg.clone(),
        manual: options.xpub_manual,
    }
}

/// The error for an operation a socket type does not have.
pub(crate) fn not_supported(socket_type: SocketType, operation: &'static str) -> Error {
    Error::NotSupported { socket_type, operation }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::collections::HashSet;

    /// Peers with room: every id in `room`.
    #[derive(Default)]
    pub struct Room(pub HashSet<PeerId>);

    impl PeerView for Room {
        fn has_room(&self, peer: PeerId) -> bool {
            self.0.contains(&peer)
        }
    }

    pub fn room(ids: &[PeerId]) -> Room {
        Room(ids.iter().copied().collect())
    }

    pub fn msg(frames: &[&'static str]) -> Msg {
        Msg::from(frames.iter().map(|f| Bytes::from_static(f.as_bytes())).collect::<Vec<_>>())
    }

    pub fn to(route: Route) -> (PeerId, Vec<Bytes>) {
        match route {
            Route::To(p, m) => (p, m.into_frames()),
            other => panic!("expected To, got {other:?}"),
        }
    }
}
