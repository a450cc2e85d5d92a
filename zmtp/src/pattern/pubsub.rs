//! Publish-subscribe (RFC 29): [`Pub`] filters at the publisher with the shared subscription trie and
//! fans each message out to the matching subscribers; [`Sub`] keeps its subscriptions, sends them to
//! every publisher (and again on every new connection), and filters locally too.

use bytes::Bytes;

use super::subscriptions::{Change, SubscriptionLimits, Subscriptions};
use super::{not_supported, Attach, Pattern, PeerDetails, PeerId, PeerView, Route};
use crate::error::Error;
use crate::message::Msg;
use crate::proto::SocketType;

/// What PUB and XPUB share: the subscription trie and the fan-out.
#[derive(Debug, Default)]
struct Publisher {
    subscriptions: Subscriptions,
    /// Attached peers, for `invert_matching`.
    peers: Vec<PeerId>,
    /// `ZMQ_INVERT_MATCHING`: send to the peers whose subscriptions do *not* match.
    invert: bool,
    /// The last fan-out's peer list, handed back by the runtime for reuse (one allocation, not one
    /// per message).
    spare: Vec<PeerId>,
}

impl Publisher {
    fn new(options: &PublisherOptions) -> Self {
        Publisher {
            subscriptions: Subscriptions::new(options.limits),
            peers: Vec::new(),
            invert: options.invert,
            spare: Vec::new(),
        }
    }

    fn route(&mut self, msg: Msg) -> Route {
        let mut peers = std::mem::take(&mut self.spare);
        let topic = msg.frames().first().map_or(&[][..], |t| &t[..]);
        self.subscriptions.matching_peers_into(topic, &mut peers);
        if self.invert {
            let matching = peers;
            peers = self.peers.iter().copied().filter(|p| matching.binary_search(p).is_err()).collect();
        }
        if peers.is_empty() {
            Route::Drop
        } else {
            Route::Fanout(peers, msg)
        }
    }

    /// Applies a (un)subscription; returns what changed and the topic it changed (the empty topic
    /// when the subscriber went over a cap and now gets every message).
    fn subscription(&mut self, peer: PeerId, topic: &Bytes, subscribe: bool) -> Option<(Change, Bytes)> {
        if !subscribe {
            return self.subscriptions.cancel(peer, topic).map(|c| (c, topic.clone()));
        }
        if self.subscriptions.is_overflowed(peer) {
            // It gets every message already; recording more topics would only cost the time a
            // flood of them is meant to take (2 million SUBSCRIBEs, issue 15).
            return None;
        }
        match self.subscriptions.subscribe(peer, topic) {
            Ok(change) => Some((change, topic.clone())),
            Err(e) => {
                if self.invert {
                    // Inverted matching: a subscription excludes topics, so refusing one sends the
                    // subscriber more, never less, and its SUB (inverted too) filters it.
                    tracing::debug!(peer, "subscription over the cap refused: {e}");
                    return None;
                }
                // Once per subscriber, not once per refused topic: a flood of 2 million
                // subscriptions must not become 2 million log lines.
                let change = self.subscriptions.overflow(peer)?;
                tracing::warn!(
                    peer,
                    "subscriber over its subscription cap ({e}): it now gets every message \
                     (publisher-side filtering is off for it)"
                );
                Some((change, Bytes::new()))
            }
        }
    }
}

/// Options of PUB and XPUB policies.
#[derive(Debug, Clone, Default)]
pub struct PublisherOptions {
    /// Per-subscriber caps.
    pub limits: SubscriptionLimits,
    /// `ZMQ_INVERT_MATCHING`.
    pub invert: bool,
    /// `ZMQ_XPUB_VERBOSE`.
    pub verbose: bool,
    /// `ZMQ_XPUB_VERBOSER`.
    pub verboser: bool,
    /// `ZMQ_XPUB_WELCOME_MSG`: sent to each new subscriber.
    pub welcome: Option<Bytes>,
    /// `ZMQ_XPUB_MANUAL`: subscriptions are only passed to the application, which decides what the
    /// last subscribing peer gets with `subscribe`/`unsubscribe` on the XPUB.
    pub manual: bool,
}

/// PUB: a copy of each message to every subscriber with a matching subscription and room.
#[derive(Debug, Default)]
pub struct Pub {
    publisher: Publisher,
}

impl Pub {
    /// A PUB policy.
    pub fn new(options: &PublisherOptions) -> Self {
        Pub { publisher: Publisher::new(options) }
    }
}

impl Pattern for Pub {
    fn attach(&mut self, peer: PeerId, _: PeerDetails<'_>) -> Attach {
        self.publisher.peers.push(peer);
        Attach::Accepted
    }

    fn detach(&mut self, peer: PeerId) {
        self.publisher.peers.retain(|&p| p != peer);
        self.publisher.subscriptions.remove_peer(peer);
    }

    fn route(&mut self, msg: Msg, _: &dyn PeerView) -> Route {
        self.publisher.route(msg)
    }

    fn recycle_fanout(&mut self, peers: Vec<PeerId>) {
        self.publisher.spare = peers;
    }

    /// RFC 29: PUB "SHALL silently discard any messages received from subscribers".
    fn accept(&mut self, _: PeerId, _: Msg) -> Option<Msg> {
        None
    }

    fn handle_subscription(&mut self, peer: PeerId, topic: Bytes, subscribe: bool) -> Option<Msg> {
        self.publisher.subscription(peer, &topic, subscribe);
        None
    }

    fn subscriptions(&self) -> Option<&Subscriptions> {
        Some(&self.publisher.subscriptions)
    }

    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        Err(not_supported(SocketType::Pub, "receive"))
    }
}

/// The application's own subscriptions on a SUB or XSUB (uncapped, counted): what to send upstream
/// and to replay on every new connection.
#[derive(Debug)]
struct Held(Subscriptions);

impl Default for Held {
    fn default() -> Self {
        Held(Subscriptions::new(SubscriptionLimits { max_topics: usize::MAX, max_bytes: usize::MAX }))
    }
}

impl Held {
    /// Applies one subscribe or cancel; whether it must be sent upstream (a topic's first
    /// subscription or last cancel).
    fn change(&mut self, topic: &Bytes, subscribe: bool) -> bool {
        if subscribe {
            self.0.subscribe(0, topic).is_ok_and(|c| c.topic_edge)
        } else {
            self.0.cancel(0, topic).is_some_and(|c| c.topic_edge)
        }
    }

    /// Every topic held, once.
    fn topics(&self) -> Vec<Bytes> {
        self.0.topics().into_iter().map(|(t, _)| t).collect()
    }
}

/// SUB: fair-queued receive of the messages matching its subscriptions.
#[derive(Debug, Default)]
pub struct Sub {
    /// The application's subscriptions.
    filter: Held,
    /// `ZMQ_INVERT_MATCHING`: deliver the messages that match no subscription.
    invert: bool,
}

impl Sub {
    /// A SUB policy (`ZMQ_INVERT_MATCHING`).
    pub fn new(invert: bool) -> Self {
        Sub { invert, ..Sub::default() }
    }
}

impl Pattern for Sub {
    fn attach(&mut self, _: PeerId, _: PeerDetails<'_>) -> Attach {
        Attach::Accepted
    }

    fn detach(&mut self, _: PeerId) {}

    fn route(&mut self, msg: Msg, _: &dyn PeerView) -> Route {
        Route::Fail(not_supported(SocketType::Sub, "send"), msg)
    }

    fn accept(&mut self, _: PeerId, msg: Msg) -> Option<Msg> {
        let topic = msg.frames().first()?;
        (self.filter.0.has_match(topic) != self.invert).then_some(msg)
    }

    fn local_subscription(&mut self, topic: &Bytes, subscribe: bool) -> Result<bool, Error> {
        Ok(self.filter.change(topic, subscribe))
    }

    fn local_topics(&self) -> Vec<Bytes> {
        self.filter.topics()
    }

    fn check_send(&self) -> Result<(), Error> {
        Err(not_supported(SocketType::Sub, "send"))
    }

    fn check_recv(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// `0x01`+topic (subscribe) or `0x00`+topic (cancel), as XPUB delivers and XSUB takes them.
fn subscription_msg(subscribe: bool, topic: &[u8]) -> Msg {
    let mut body = Vec::with_capacity(topic.len() + 1);
    body.push(u8::from(subscribe));
    body.extend_from_slice(topic);
    Msg::from(Bytes::from(body))
}

/// XPUB: a PUB whose application also receives the subscriptions (`0x01`+topic) and cancels
/// (`0x00`+topic): by default a topic's first subscription and last cancel; with `verbose` every
/// subscription; with `verboser` every subscription and cancel. A subscriber that leaves cancels
/// what it held. Other messages from subscribers are delivered as they are (libzmq does too).
#[derive(Debug, Default)]
pub struct XPub {
    publisher: Publisher,
    verbose: bool,
    verboser: bool,
    welcome: Option<Bytes>,
    notices: std::collections::VecDeque<Msg>,
    manual: bool,
    /// The peer whose (un)subscription the application received last (XPUB_MANUAL).
    last_peer: Option<PeerId>,
}

impl XPub {
    /// An XPUB policy.
    pub fn new(options: &PublisherOptions) -> Self {
        XPub {
            publisher: Publisher::new(options),
            verbose: options.verbose || options.verboser,
            verboser: options.verboser,
            welcome: options.welcome.clone(),
            notices: Default::default(),
            manual: options.manual,
            last_peer: None,
        }
    }
}

impl Pattern for XPub {
    fn attach(&mut self, peer: PeerId, _: PeerDetails<'_>) -> Attach {
        self.publisher.peers.push(peer);
        Attach::Accepted
    }

    fn detach(&mut self, peer: PeerId) {
        self.publisher.peers.retain(|&p| p != peer);
        if self.last_peer == Some(peer) {
            self.last_peer = None;
        }
        // RFC 29: XPUB "SHALL generate an unsubscribe for a subscriber that disconnects".
        for topic in self.publisher.subscriptions.remove_peer(peer) {
            self.notices.push_back(subscription_msg(false, &topic));
        }
    }

    fn route(&mut self, msg: Msg, _: &dyn PeerView) -> Route {
        self.publisher.route(msg)
    }

    fn recycle_fanout(&mut self, peers: Vec<PeerId>) {
        self.publisher.spare = peers;
    }

    fn accept(&mut self, _: PeerId, msg: Msg) -> Option<Msg> {
        Some(msg)
    }

    fn handle_subscription(&mut self, peer: PeerId, topic: Bytes, subscribe: bool) -> Option<Msg> {
        if self.manual {
            // libzmq: every (un)subscription goes to the application, which applies it (or not).
            self.last_peer = Some(peer);
            return Some(subscription_msg(subscribe, &topic));
        }
        let (change, topic) = self.publisher.subscription(peer, &topic, subscribe)?;
        let report =
            if subscribe { self.verbose || change.topic_edge } else { self.verboser || change.topic_edge };
        report.then(|| subscription_msg(subscribe, &topic))
    }

    fn poll_notice(&mut self) -> Option<Msg> {
        self.notices.pop_front()
    }

    /// With `manual`: `subscribe`/`unsubscribe` on the XPUB apply to the peer whose subscription
    /// was received last. Nothing is sent to peers.
    fn local_subscription(&mut self, topic: &Bytes, subscribe: bool) -> Result<bool, Error> {
        if !self.manual {
            return Err(Error::InvalidState("subscribe on an XPUB needs xpub_manual"));
        }
        let peer = self.last_peer.ok_or(Error::InvalidState("no subscription received yet"))?;
        if self.publisher.peers.contains(&peer) {
            self.publisher.subscription(peer, topic, subscribe);
        }
        Ok(false)
    }

    fn welcome(&self) -> Option<Msg> {
        self.welcome.clone().map(Msg::from)
    }

    fn subscriptions(&self) -> Option<&Subscriptions> {
        Some(&self.publisher.subscriptions)
    }

    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// XSUB: receives every message from its publishers (no filter); the application subscribes by
/// sending `0x01`+topic and cancels with `0x00`+topic, and other messages go to every publisher.
#[derive(Debug, Default)]
pub struct XSub {
    /// The subscriptions held, to send again on every new connection.
    held: Held,
    peers: Vec<PeerId>,
}

impl Pattern for XSub {
    fn attach(&mut self, peer: PeerId, _: PeerDetails<'_>) -> Attach {
        self.peers.push(peer);
        Attach::Accepted
    }

    fn detach(&mut self, peer: PeerId) {
        self.peers.retain(|&p| p != peer);
    }

    /// RFC 29: XSUB "SHALL send all messages from the application to its publishers".
    fn route(&mut self, msg: Msg, _: &dyn PeerView) -> Route {
        if self.peers.is_empty() {
            Route::Drop
        } else {
            Route::Fanout(self.peers.clone(), msg)
        }
    }

    fn accept(&mut self, _: PeerId, msg: Msg) -> Option<Msg> {
        Some(msg)
    }

    fn subscription_message(&self, msg: &Msg) -> Option<(bool, Bytes)> {
        match msg.frames() {
            [only] => match only.first() {
                Some(1) => Some((true, only.slice(1..))),
                Some(0) => Some((false, only.slice(1..))),
                _ => None,
            },
            _ => None,
        }
    }

    fn local_subscription(&mut self, topic: &Bytes, subscribe: bool) -> Result<bool, Error> {
        Ok(self.held.change(topic, subscribe))
    }

    fn local_topics(&self) -> Vec<Bytes> {
        self.held.topics()
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
    use crate::pattern::testing::{msg, room};

    #[test]
    fn pub_fans_out_to_matching_subscribers_only() {
        let mut p = Pub::new(&PublisherOptions::default());
        p.handle_subscription(1, Bytes::from("A"), true);
        p.handle_subscription(2, Bytes::from(""), true);
        p.handle_subscription(3, Bytes::from("B"), true);
        match p.route(msg(&["AX", "body"]), &room(&[1, 2, 3])) {
            Route::Fanout(peers, m) => {
                assert_eq!(peers, [1, 2]);
                assert_eq!(m.frames().len(), 2);
            }
            other => panic!("{other:?}"),
        }
        p.detach(2);
        p.handle_subscription(1, Bytes::from("A"), false);
        assert!(matches!(p.route(msg(&["AX"]), &room(&[1, 3])), Route::Drop));
        assert!(p.accept(1, msg(&["x"])).is_none());
    }

    #[test]
    fn sub_filters_and_reports_topic_edges() {
        let mut s = Sub::default();
        assert!(s.accept(1, msg(&["A1"])).is_none(), "no subscription: nothing passes");
        assert!(s.local_subscription(&Bytes::from("A"), true).unwrap());
        assert!(!s.local_subscription(&Bytes::from("A"), true).unwrap(), "second: not sent again");
        assert!(s.accept(1, msg(&["A1"])).is_some());
        assert!(s.accept(1, msg(&["B1"])).is_none());
        assert_eq!(s.local_topics(), [Bytes::from("A")]);
        assert!(!s.local_subscription(&Bytes::from("A"), false).unwrap());
        assert!(s.local_subscription(&Bytes::from("A"), false).unwrap(), "last cancel is sent");
        assert!(s.check_send().is_err());
    }
}

#[cfg(test)]
mod x_tests {
    use super::*;
    use crate::pattern::testing::{msg, room};

    #[test]
    fn xpub_reports_first_subscribe_and_last_cancel_by_default() {
        let mut x = XPub::new(&PublisherOptions::default());
        assert_eq!(x.handle_subscription(1, Bytes::from("A"), true).unwrap().frames()[0], "\x01A");
        assert!(x.handle_subscription(2, Bytes::from("A"), true).is_none());
        assert!(x.handle_subscription(1, Bytes::from("A"), false).is_none());
        assert_eq!(x.handle_subscription(2, Bytes::from("A"), false).unwrap().frames()[0], "\x00A");
        assert!(x.handle_subscription(2, Bytes::from("A"), false).is_none(), "not held: ignored");
    }

    #[test]
    fn xpub_verbose_and_verboser() {
        let mut v = XPub::new(&PublisherOptions { verbose: true, ..Default::default() });
        assert!(v.handle_subscription(1, Bytes::from("A"), true).is_some());
        assert!(v.handle_subscription(2, Bytes::from("A"), true).is_some());
        assert!(v.handle_subscription(1, Bytes::from("A"), false).is_none());
        let mut vv = XPub::new(&PublisherOptions { verboser: true, ..Default::default() });
        vv.handle_subscription(1, Bytes::from("A"), true);
        vv.handle_subscription(2, Bytes::from("A"), true);
        assert!(vv.handle_subscription(1, Bytes::from("A"), false).is_some());
    }

    #[test]
    fn xpub_cancels_for_a_subscriber_that_leaves() {
        let mut x = XPub::new(&PublisherOptions::default());
        x.handle_subscription(1, Bytes::from("A"), true);
        x.handle_subscription(1, Bytes::from("B"), true);
        x.handle_subscription(2, Bytes::from("B"), true);
        x.detach(1);
        assert_eq!(x.poll_notice().unwrap().frames()[0], "\x00A");
        assert!(x.poll_notice().is_none());
        match x.route(msg(&["B1"]), &room(&[2])) {
            Route::Fanout(peers, _) => assert_eq!(peers, [2]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn xsub_recognises_subscription_messages() {
        let x = XSub::default();
        assert_eq!(x.subscription_message(&msg(&["\x01top"])), Some((true, Bytes::from("top"))));
        assert_eq!(x.subscription_message(&msg(&["\x00top"])), Some((false, Bytes::from("top"))));
        assert_eq!(x.subscription_message(&msg(&["data"])), None);
        assert_eq!(x.subscription_message(&msg(&["\x01a", "b"])), None, "multipart is data");
    }
}
