//! Publish-subscribe (RFC 29): [`Pub`] filters at the publisher with the shared subscription trie and
//! fans each message out to the matching subscribers; [`Sub`] keeps its subscriptions, sends them to
//! every publisher (and again on every new connection), and filters locally too.

use bytes::Bytes;

use super::subscriptions::{SubscriptionLimits, Subscriptions};
use super::{not_supported, Attach, Pattern, PeerDetails, PeerId, PeerView, Route};
use crate::error::Error;
use crate::message::Msg;
use crate::proto::SocketType;

/// PUB: a copy of each message to every subscriber with a matching subscription and room.
#[derive(Debug, Default)]
pub struct Pub {
    subscriptions: Subscriptions,
}

impl Pub {
    /// The subscription table (for introspection).
    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }
}

impl Pattern for Pub {
    fn attach(&mut self, _: PeerId, _: PeerDetails<'_>) -> Attach {
        Attach::Accepted
    }

    fn detach(&mut self, peer: PeerId) {
        self.subscriptions.remove_peer(peer);
    }

    fn route(&mut self, msg: Msg, _: &dyn PeerView) -> Route {
        let topic = msg.frames().first().cloned().unwrap_or_default();
        let peers = self.subscriptions.matching_peers(&topic);
        if peers.is_empty() {
            Route::Drop
        } else {
            Route::Fanout(peers, msg)
        }
    }

    /// RFC 29: PUB "SHALL silently discard any messages received from subscribers".
    fn accept(&mut self, _: PeerId, _: Msg) -> Option<Msg> {
        None
    }

    fn handle_subscription(&mut self, peer: PeerId, topic: Bytes, subscribe: bool) {
        if subscribe {
            if let Err(e) = self.subscriptions.subscribe(peer, &topic) {
                tracing::warn!(peer, "subscription refused: {e}");
            }
        } else {
            self.subscriptions.cancel(peer, &topic);
        }
    }

    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        Err(not_supported(SocketType::Pub, "receive"))
    }
}

/// SUB: fair-queued receive of the messages matching its subscriptions.
#[derive(Debug)]
pub struct Sub {
    /// The application's subscriptions, as one pseudo-peer's counted topics.
    filter: Subscriptions,
}

impl Default for Sub {
    fn default() -> Self {
        // The application's own subscriptions are not capped.
        Sub {
            filter: Subscriptions::new(SubscriptionLimits { max_topics: usize::MAX, max_bytes: usize::MAX }),
        }
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
        self.filter.has_match(topic).then_some(msg)
    }

    fn local_subscription(&mut self, topic: &Bytes, subscribe: bool) -> Result<bool, Error> {
        Ok(if subscribe {
            self.filter.subscribe(0, topic).map(|c| c.topic_edge).unwrap_or(false)
        } else {
            self.filter.cancel(0, topic).is_some_and(|c| c.topic_edge)
        })
    }

    fn local_topics(&self) -> Vec<Bytes> {
        self.filter.topics().into_iter().map(|(t, _)| t).collect()
    }

    fn check_send(&self) -> Result<(), Error> {
        Err(not_supported(SocketType::Sub, "send"))
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
        let mut p = Pub::default();
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
