//! [`LoadBalancer`]: round-robin over attached peers, skipping those whose queue is full (RFC 28/30:
//! "route outgoing messages to available peers using a round-robin strategy").

use super::{PeerId, PeerView};

/// Round-robin over peers in attach order.
#[derive(Debug, Default)]
pub struct LoadBalancer {
    peers: Vec<PeerId>,
    /// Index of the peer to try first next time.
    next: usize,
}

impl LoadBalancer {
    /// Adds a peer at the end of the rotation.
    pub fn attach(&mut self, peer: PeerId) {
        if !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
    }

    /// Removes a peer.
    pub fn detach(&mut self, peer: PeerId) {
        if let Some(i) = self.peers.iter().position(|&p| p == peer) {
            self.peers.remove(i);
            if i < self.next {
                self.next -= 1;
            }
            if self.next >= self.peers.len() {
                self.next = 0;
            }
        }
    }

    /// The next peer with room, advancing the rotation past it; `None` if every peer is full or there
    /// is none.
    pub fn pick(&mut self, view: &dyn PeerView) -> Option<PeerId> {
        let n = self.peers.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let peer = self.peers[i];
            if view.has_room(peer) {
                self.next = (i + 1) % n;
                return Some(peer);
            }
        }
        None
    }

    /// Routes `msg` to the next peer with room, or blocks (DEALER, PUSH: never discard).
    pub fn route(&mut self, msg: crate::message::Msg, view: &dyn PeerView) -> super::Route {
        match self.pick(view) {
            Some(peer) => super::Route::To(peer, msg),
            None => super::Route::Block(msg),
        }
    }

    /// The only peer, when exactly one is attached.
    pub fn sole_peer(&self) -> Option<PeerId> {
        match self.peers[..] {
            [peer] => Some(peer),
            _ => None,
        }
    }

    /// Whether no peer is attached.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::testing::room;

    #[test]
    fn rotates_over_peers_with_room() {
        let mut lb = LoadBalancer::default();
        for p in [1, 2, 3] {
            lb.attach(p);
        }
        let all = room(&[1, 2, 3]);
        let picks: Vec<_> = (0..6).map(|_| lb.pick(&all)).collect();
        assert_eq!(picks, [Some(1), Some(2), Some(3), Some(1), Some(2), Some(3)]);
        let some = room(&[1, 3]);
        let picks: Vec<_> = (0..4).map(|_| lb.pick(&some)).collect();
        assert_eq!(picks, [Some(1), Some(3), Some(1), Some(3)]);
        assert_eq!(lb.pick(&room(&[])), None);
    }

    #[test]
    fn detach_keeps_rotation_position() {
        let mut lb = LoadBalancer::default();
        for p in [1, 2, 3] {
            lb.attach(p);
        }
        let all = room(&[1, 2, 3]);
        assert_eq!(lb.pick(&all), Some(1));
        lb.detach(1);
        assert_eq!(lb.pick(&all), Some(2));
        lb.detach(3);
        assert_eq!(lb.pick(&all), Some(2));
        lb.detach(2);
        assert!(lb.is_empty());
        assert_eq!(lb.pick(&all), None);
    }
}
