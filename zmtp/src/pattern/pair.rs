//! Exclusive pair (RFC 31): [`Pair`] talks to exactly one peer.

use super::{Attach, Pattern, PeerDetails, PeerId, PeerView, Route};
use crate::error::Error;
use crate::message::Msg;

/// PAIR: one peer; a second is refused while the first is attached.
#[derive(Debug, Default)]
pub struct Pair {
    peer: Option<PeerId>,
}

impl Pattern for Pair {
    fn attaches_before_handshake(&self) -> bool {
        true
    }

    fn attach(&mut self, peer: PeerId, _: PeerDetails<'_>) -> Attach {
        match self.peer {
            Some(p) if p != peer => Attach::Refused("PAIR already has a peer"),
            _ => {
                self.peer = Some(peer);
                Attach::Accepted
            }
        }
    }

    fn detach(&mut self, peer: PeerId) {
        if self.peer == Some(peer) {
            self.peer = None;
        }
    }

    fn route(&mut self, msg: Msg, peers: &dyn PeerView) -> Route {
        match self.peer {
            Some(p) if peers.has_room(p) => Route::To(p, msg),
            _ => Route::Block(msg),
        }
    }

    fn accept(&mut self, peer: PeerId, msg: Msg) -> Option<Msg> {
        (self.peer == Some(peer)).then_some(msg)
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

    #[test]
    fn pair_refuses_second_peer_until_first_leaves() {
        let mut pair = Pair::default();
        assert_eq!(pair.attach(1, PeerDetails::default()), Attach::Accepted);
        assert!(matches!(pair.attach(2, PeerDetails::default()), Attach::Refused(_)));
        assert_eq!(to(pair.route(msg(&["x"]), &room(&[1]))).0, 1);
        assert!(matches!(pair.route(msg(&["x"]), &room(&[])), Route::Block(_)));
        pair.detach(1);
        assert_eq!(pair.attach(2, PeerDetails::default()), Attach::Accepted);
    }
}
