//! Request-reply (RFC 28): [`Req`], [`Rep`], [`Dealer`] and [`Router`].
//!
//! ```text
//!  REQ  send: [delimiter][body…]            ──►  ROUTER recv: [identity][delimiter][body…]
//!  REQ  recv: [body…]  (delimiter stripped) ◄──  ROUTER send: [identity][delimiter][body…]
//!  REP  recv: [body…]  (envelope stored)    ◄──  the request: [envelope…][delimiter][body…]
//!  REP  send: [envelope…][delimiter][body…] ──►
//! ```

use std::collections::HashMap;

use bytes::Bytes;

use super::lb::LoadBalancer;
use super::{Attach, Pattern, PeerDetails, PeerId, PeerView, Route};
use crate::error::Error;
use crate::message::Msg;
use crate::proto::SocketType;

/// REQ: one request at a time, round-robin; replies only from the peer asked.
#[derive(Debug)]
pub struct Req {
    lb: LoadBalancer,
    /// The peer and request id of the request awaiting its reply.
    awaiting: Option<(PeerId, u32)>,
    correlate: bool,
    relaxed: bool,
    next_request_id: u32,
}

impl Req {
    /// A REQ policy (`ZMQ_REQ_CORRELATE`, `ZMQ_REQ_RELAXED`); request ids start at `seed`.
    pub fn new(correlate: bool, relaxed: bool, seed: u32) -> Self {
        Req { lb: LoadBalancer::default(), awaiting: None, correlate, relaxed, next_request_id: seed }
    }
}

impl Pattern for Req {
    fn attaches_before_handshake(&self) -> bool {
        true
    }

    fn attach(&mut self, peer: PeerId, _: PeerDetails<'_>) -> Attach {
        self.lb.attach(peer);
        Attach::Accepted
    }

    fn detach(&mut self, peer: PeerId) {
        self.lb.detach(peer);
    }

    fn route(&mut self, mut msg: Msg, peers: &dyn PeerView) -> Route {
        let Some(peer) = self.lb.pick(peers) else { return Route::Block(msg) };
        let id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        msg.push_front(Bytes::new());
        if self.correlate {
            msg.push_front(Bytes::copy_from_slice(&id.to_be_bytes()));
        }
        self.awaiting = Some((peer, id));
        Route::To(peer, msg)
    }

    fn accept(&mut self, peer: PeerId, msg: Msg) -> Option<Msg> {
        // RFC 28: "SHALL accept an incoming message only from the last peer that it sent a request to"
        // and "SHALL discard silently any messages received from other peers".
        let (asked, id) = self.awaiting?;
        if peer != asked {
            return None;
        }
        let mut msg = msg;
        let properties = msg.take_properties();
        let mut frames = msg.into_frames().into_iter();
        if self.correlate && frames.next().is_none_or(|f| f[..] != id.to_be_bytes()) {
            return None;
        }
        if frames.next().is_none_or(|f| !f.is_empty()) {
            return None;
        }
        let body: Vec<Bytes> = frames.collect();
        if body.is_empty() {
            return None;
        }
        self.awaiting = None;
        Some(Msg::from(body).with_properties(properties))
    }

    fn check_send(&self) -> Result<(), Error> {
        if self.awaiting.is_some() && !self.relaxed {
            return Err(Error::InvalidState("REQ cannot send another request before receiving the reply"));
        }
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        if self.awaiting.is_none() {
            return Err(Error::InvalidState("REQ cannot receive before sending a request"));
        }
        Ok(())
    }
}

/// REP: receive a request (envelope stored), then send its reply (envelope restored).
#[derive(Debug, Default)]
pub struct Rep {
    /// The requester and envelope (up to and including the empty delimiter) of the request being
    /// answered.
    replying: Option<(PeerId, Vec<Bytes>)>,
}

impl Pattern for Rep {
    fn attach(&mut self, _: PeerId, _: PeerDetails<'_>) -> Attach {
        Attach::Accepted
    }

    fn detach(&mut self, _: PeerId) {}

    fn route(&mut self, msg: Msg, peers: &dyn PeerView) -> Route {
        let Some((peer, mut envelope)) = self.replying.take() else { return Route::Drop };
        // RFC 28: "If the original requester no longer exists, SHALL discard the reply silently."
        if !peers.has_room(peer) {
            return Route::Drop;
        }
        envelope.extend(msg.into_frames());
        Route::To(peer, Msg::from(envelope))
    }

    fn accept(&mut self, peer: PeerId, mut msg: Msg) -> Option<Msg> {
        let properties = msg.take_properties();
        let mut frames = msg.into_frames();
        // The envelope runs up to and including the first empty frame; a request without one is
        // malformed and dropped (as libzmq does).
        let delimiter = frames.iter().position(|f| f.is_empty())?;
        let body = frames.split_off(delimiter + 1);
        if body.is_empty() {
            return None;
        }
        self.replying = Some((peer, frames));
        Some(Msg::from(body).with_properties(properties))
    }

    fn check_send(&self) -> Result<(), Error> {
        if self.replying.is_none() {
            return Err(Error::InvalidState("REP cannot send before receiving a request"));
        }
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        if self.replying.is_some() {
            return Err(Error::InvalidState("REP must send the reply before receiving the next request"));
        }
        Ok(())
    }
}

/// DEALER: round-robin out, fair-queued in, no envelope handling.
#[derive(Debug, Default)]
pub struct Dealer {
    lb: LoadBalancer,
}

impl Pattern for Dealer {
    fn attaches_before_handshake(&self) -> bool {
        true
    }

    fn attach(&mut self, peer: PeerId, _: PeerDetails<'_>) -> Attach {
        self.lb.attach(peer);
        Attach::Accepted
    }

    fn detach(&mut self, peer: PeerId) {
        self.lb.detach(peer);
    }

    fn route(&mut self, msg: Msg, peers: &dyn PeerView) -> Route {
        self.lb.route(msg, peers)
    }

    fn sole_route(&self) -> Option<PeerId> {
        self.lb.sole_peer()
    }

    fn accept(&mut self, _: PeerId, msg: Msg) -> Option<Msg> {
        Some(msg)
    }

    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        Ok(())
    }

    fn passes_through(&self) -> bool {
        true
    }
}

/// ROUTER: prefixes received messages with the sender's routing id; routes sent messages by their
/// first frame.
#[derive(Debug)]
pub struct Router {
    by_id: HashMap<Bytes, PeerId>,
    by_peer: super::IdMap<Bytes>,
    /// The `Socket-Type` each peer announced, when it did (so an application can tell a REQ,
    /// which takes one reply, from a DEALER).
    socket_types: super::IdMap<SocketType>,
    mandatory: bool,
    handover: bool,
    /// The next generated id: `00` + this as 4 octets big-endian, as libzmq generates them.
    next_generated: u32,
}

impl Router {
    /// A ROUTER policy (`ZMQ_ROUTER_MANDATORY`, `ZMQ_ROUTER_HANDOVER`); generated ids start at `seed`.
    pub fn new(mandatory: bool, handover: bool, seed: u32) -> Self {
        Router {
            by_id: HashMap::new(),
            by_peer: super::IdMap::default(),
            socket_types: super::IdMap::default(),
            mandatory,
            handover,
            next_generated: seed,
        }
    }

    /// The routing id of `peer`, if attached.
    pub fn routing_id(&self, peer: PeerId) -> Option<&Bytes> {
        self.by_peer.get(&peer)
    }

    fn generate_id(&mut self) -> Bytes {
        loop {
            let n = self.next_generated;
            self.next_generated = self.next_generated.wrapping_add(1);
            let mut id = vec![0u8];
            id.extend_from_slice(&n.to_be_bytes());
            let id = Bytes::from(id);
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Pattern for Router {
    fn attach(&mut self, peer: PeerId, details: PeerDetails<'_>) -> Attach {
        // The id given with connect wins, then the peer's Identity (RFC 37: not empty, not starting
        // with 0x00), else a generated one (starting with 0x00, so it never collides with a peer's).
        let wanted = details
            .connect_routing_id
            .filter(|id| !id.is_empty())
            .or_else(|| details.info.and_then(|i| i.routing_id()))
            .cloned();
        let mut result = Attach::Accepted;
        let id = match wanted {
            Some(id) => {
                if let Some(&old) = self.by_id.get(&id) {
                    if !self.handover {
                        return Attach::Refused("routing id already in use (ZMQ_ROUTER_HANDOVER is off)");
                    }
                    result = Attach::Replaced(old);
                }
                id
            }
            None => self.generate_id(),
        };
        self.by_id.insert(id.clone(), peer);
        self.by_peer.insert(peer, id);
        if let Some(socket_type) = details.info.and_then(|i| i.socket_type) {
            self.socket_types.insert(peer, socket_type);
        }
        result
    }

    fn detach(&mut self, peer: PeerId) {
        // The identity is free at once (a reconnecting peer may take it), but messages the peer
        // sent before leaving are still received with it, as libzmq delivers them.
        if let Some(id) = self.by_peer.get(&peer) {
            if self.by_id.get(id) == Some(&peer) {
                self.by_id.remove(id);
            }
        }
    }

    fn forget(&mut self, peer: PeerId) {
        self.by_peer.remove(&peer);
        self.socket_types.remove(&peer);
    }

    fn peer_of_routing_id(&self, routing_id: &[u8]) -> Option<PeerId> {
        self.by_id.get(routing_id).copied()
    }

    fn route(&mut self, msg: Msg, peers: &dyn PeerView) -> Route {
        let mut frames = msg.into_frames();
        if frames.is_empty() {
            return Route::Drop;
        }
        let body = frames.split_off(1);
        let Some(id) = frames.pop() else { return Route::Drop };
        let peer = self.by_id.get(&id).copied();
        match peer {
            // A message that is only a routing id carries nothing to send.
            Some(_) if body.is_empty() => Route::Drop,
            Some(peer) if peers.has_room(peer) => Route::To(peer, Msg::from(body)),
            // libzmq: with ROUTER_MANDATORY a full peer makes the send wait (EAGAIN when
            // non-blocking); without it the message is dropped.
            Some(_) if self.mandatory => {
                let mut msg = Msg::from(body);
                msg.push_front(id);
                Route::Block(msg)
            }
            None if self.mandatory => {
                let mut msg = Msg::from(body);
                msg.push_front(id.clone());
                Route::Fail(Error::HostUnreachable(id), msg)
            }
            Some(_) => Route::DropFull,
            None => Route::Drop,
        }
    }

    fn accept(&mut self, peer: PeerId, mut msg: Msg) -> Option<Msg> {
        let id = self.by_peer.get(&peer)?.clone();
        msg.push_front(id);
        Some(msg)
    }

    fn prefix_for(&self, peer: PeerId) -> Option<Bytes> {
        self.by_peer.get(&peer).cloned()
    }

    fn peer_socket_type(&self, routing_id: &[u8]) -> Option<SocketType> {
        self.by_id.get(routing_id).and_then(|peer| self.socket_types.get(peer)).copied()
    }

    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::testing::{msg, room, to};
    use crate::proto::SocketType;

    fn attach_plain(p: &mut dyn Pattern, peer: PeerId) {
        assert_eq!(p.attach(peer, PeerDetails::default()), Attach::Accepted);
    }

    #[test]
    fn req_alternates_and_adds_delimiter() {
        let mut req = Req::new(false, false, 7);
        attach_plain(&mut req, 1);
        attach_plain(&mut req, 2);
        assert!(req.check_recv().is_err());
        let (peer, frames) = to(req.route(msg(&["hello"]), &room(&[1, 2])));
        assert_eq!((peer, frames), (1, vec![Bytes::new(), Bytes::from("hello")]));
        assert!(req.check_send().is_err());
        // A reply from the other peer, and a malformed one, are dropped.
        assert!(req.accept(2, msg(&["", "nope"])).is_none());
        assert!(req.accept(1, msg(&["no-delimiter"])).is_none());
        let reply = req.accept(1, msg(&["", "world"])).unwrap();
        assert_eq!(reply.frames(), [Bytes::from("world")]);
        assert!(req.check_send().is_ok());
        let (peer, _) = to(req.route(msg(&["again"]), &room(&[1, 2])));
        assert_eq!(peer, 2);
    }

    #[test]
    fn req_blocks_without_peer_with_room() {
        let mut req = Req::new(false, false, 0);
        assert!(matches!(req.route(msg(&["x"]), &room(&[])), Route::Block(_)));
        assert!(req.check_send().is_ok(), "a blocked send leaves the state unchanged");
    }

    #[test]
    fn req_correlate_matches_request_id() {
        let mut req = Req::new(true, true, 0x0102_0304);
        attach_plain(&mut req, 1);
        let (_, frames) = to(req.route(msg(&["a"]), &room(&[1])));
        assert_eq!(frames[0], Bytes::from_static(&[1, 2, 3, 4]));
        assert!(req.check_send().is_ok(), "relaxed allows a second request");
        let (_, frames) = to(req.route(msg(&["b"]), &room(&[1])));
        assert_eq!(frames[0], Bytes::from_static(&[1, 2, 3, 5]));
        // The reply to the first request is discarded, the second accepted.
        let old = Msg::from(vec![Bytes::from_static(&[1, 2, 3, 4]), Bytes::new(), Bytes::from("A")]);
        assert!(req.accept(1, old).is_none());
        let new = Msg::from(vec![Bytes::from_static(&[1, 2, 3, 5]), Bytes::new(), Bytes::from("B")]);
        assert_eq!(req.accept(1, new).unwrap().frames(), [Bytes::from("B")]);
    }

    #[test]
    fn rep_strips_and_restores_envelope() {
        let mut rep = Rep::default();
        assert!(rep.check_send().is_err());
        let body = rep.accept(3, msg(&["id1", "id2", "", "req"])).unwrap();
        assert_eq!(body.frames(), [Bytes::from("req")]);
        assert!(rep.check_recv().is_err());
        let (peer, frames) = to(rep.route(msg(&["rep"]), &room(&[3])));
        assert_eq!(peer, 3);
        assert_eq!(frames, ["id1", "id2", "", "rep"].map(Bytes::from).to_vec());
        assert!(rep.check_recv().is_ok());
    }

    #[test]
    fn rep_drops_reply_when_requester_gone_and_requests_without_delimiter() {
        let mut rep = Rep::default();
        assert!(rep.accept(3, msg(&["no", "delimiter"])).is_none());
        rep.accept(3, msg(&["", "req"])).unwrap();
        assert!(matches!(rep.route(msg(&["rep"]), &room(&[])), Route::Drop));
        assert!(rep.check_recv().is_ok());
    }

    fn info_with_identity(id: &'static str) -> crate::proto::PeerInfo {
        use crate::proto::{Metadata, Version};
        let mut metadata = Metadata::new();
        metadata.insert("Identity", Bytes::from(id));
        crate::proto::PeerInfo {
            version: Version::V3_1,
            announced_version: Version::V3_1,
            socket_type: Some(SocketType::Dealer),
            metadata,
            auth: None,
        }
    }

    #[test]
    fn router_generates_libzmq_style_ids_and_uses_peer_identity() {
        let mut router = Router::new(false, false, 0x0000_0010);
        attach_plain(&mut router, 1);
        assert_eq!(router.routing_id(1).unwrap()[..], [0, 0, 0, 0, 0x10]);
        let info = info_with_identity("alice");
        assert_eq!(
            router.attach(2, PeerDetails { info: Some(&info), ..Default::default() }),
            Attach::Accepted
        );
        let got = router.accept(2, msg(&["hi"])).unwrap();
        assert_eq!(got.frames(), [Bytes::from("alice"), Bytes::from("hi")]);
        let (peer, frames) = to(router.route(msg(&["alice", "back"]), &room(&[1, 2])));
        assert_eq!((peer, frames), (2, vec![Bytes::from("back")]));
        // alice's queue is full: dropped and counted (DropFull), not blocked.
        assert!(matches!(router.route(msg(&["alice", "more"]), &room(&[1])), Route::DropFull));
    }

    #[test]
    fn router_drops_or_fails_unroutable() {
        let mut router = Router::new(false, false, 0);
        assert!(matches!(router.route(msg(&["nobody", "x"]), &room(&[])), Route::Drop));
        let mut mandatory = Router::new(true, false, 0);
        match mandatory.route(msg(&["nobody", "x"]), &room(&[])) {
            Route::Fail(Error::HostUnreachable(id), m) => {
                assert_eq!(id, "nobody");
                assert_eq!(m.frames().len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn router_duplicate_identity_refused_or_handed_over() {
        let info = info_with_identity("bob");
        let details = PeerDetails { info: Some(&info), ..Default::default() };
        let mut router = Router::new(false, false, 0);
        assert_eq!(router.attach(1, details), Attach::Accepted);
        assert!(matches!(router.attach(2, details), Attach::Refused(_)));
        let mut handover = Router::new(false, true, 0);
        assert_eq!(handover.attach(1, details), Attach::Accepted);
        assert_eq!(handover.attach(2, details), Attach::Replaced(1));
        // The old connection's last messages still carry the identity.
        assert_eq!(handover.accept(1, msg(&["late"])).unwrap().frames()[0], "bob");
        handover.detach(1);
        handover.forget(1);
        let (peer, _) = to(handover.route(msg(&["bob", "x"]), &room(&[2])));
        assert_eq!(peer, 2);
    }

    #[test]
    fn router_knows_each_peers_announced_socket_type() {
        let mut router = Router::new(false, true, 0);
        let info = info_with_identity("alice");
        router.attach(1, PeerDetails { info: Some(&info), ..Default::default() });
        assert_eq!(router.peer_socket_type(b"alice"), Some(SocketType::Dealer));
        // A peer attached without handshake details, and an unknown id: nothing known.
        attach_plain(&mut router, 2);
        let generated = router.routing_id(2).unwrap().clone();
        assert_eq!(router.peer_socket_type(&generated), None);
        assert_eq!(router.peer_socket_type(b"nobody"), None);
        // A REQ taking over the identity (handover) is seen as a REQ; once it leaves, nothing.
        let mut req = info_with_identity("alice");
        req.socket_type = Some(SocketType::Req);
        assert_eq!(
            router.attach(3, PeerDetails { info: Some(&req), ..Default::default() }),
            Attach::Replaced(1)
        );
        assert_eq!(router.peer_socket_type(b"alice"), Some(SocketType::Req));
        router.detach(1);
        router.forget(1);
        assert_eq!(router.peer_socket_type(b"alice"), Some(SocketType::Req));
        router.detach(3);
        assert_eq!(router.peer_socket_type(b"alice"), None);
        router.forget(3);
        assert!(!router.socket_types.contains_key(&3));
    }

    #[test]
    fn router_connect_routing_id_wins() {
        let info = info_with_identity("bob");
        let id = Bytes::from("named");
        let mut router = Router::new(false, false, 0);
        router.attach(1, PeerDetails { info: Some(&info), connect_routing_id: Some(&id) });
        assert_eq!(router.routing_id(1), Some(&id));
    }
}
