//! Pipeline (RFC 30): [`Push`] round-robins to peers with room and never drops; [`Pull`] fair-queues.

use super::lb::LoadBalancer;
use super::{not_supported, Attach, Pattern, PeerDetails, PeerId, PeerView, Route};
use crate::error::Error;
use crate::message::Msg;
use crate::proto::SocketType;

/// PUSH: round-robin to peers with room; blocks when none has room.
#[derive(Debug, Default)]
pub struct Push {
    lb: LoadBalancer,
}

impl Pattern for Push {
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

    /// A PUSH receives nothing; anything a peer sends is dropped.
    fn accept(&mut self, _: PeerId, _: Msg) -> Option<Msg> {
        None
    }

    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }

    fn check_recv(&self) -> Result<(), Error> {
        Err(not_supported(SocketType::Push, "receive"))
    }
}

/// PULL: fair-queued receive, no send.
#[derive(Debug, Default)]
pub struct Pull;

impl Pattern for Pull {
    fn attach(&mut self, _: PeerId, _: PeerDetails<'_>) -> Attach {
        Attach::Accepted
    }

    fn detach(&mut self, _: PeerId) {}

    fn route(&mut self, msg: Msg, _: &dyn PeerView) -> Route {
        Route::Fail(not_supported(SocketType::Pull, "send"), msg)
    }

    fn accept(&mut self, _: PeerId, msg: Msg) -> Option<Msg> {
        Some(msg)
    }

    fn check_send(&self) -> Result<(), Error> {
        Err(not_supported(SocketType::Pull, "send"))
    }

    fn check_recv(&self) -> Result<(), Error> {
        Ok(())
    }

    fn passes_through(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::testing::{msg, room, to};

    #[test]
    fn push_round_robins_and_blocks_when_full() {
        let mut push = Push::default();
        push.attach(1, PeerDetails::default());
        push.attach(2, PeerDetails::default());
        assert_eq!(to(push.route(msg(&["a"]), &room(&[1, 2]))).0, 1);
        assert_eq!(to(push.route(msg(&["b"]), &room(&[1, 2]))).0, 2);
        assert!(matches!(push.route(msg(&["c"]), &room(&[])), Route::Block(_)));
        assert!(push.check_recv().is_err());
    }

    #[test]
    fn pull_cannot_send() {
        assert!(Pull.check_send().is_err());
        assert!(Pull.check_recv().is_ok());
    }
}
