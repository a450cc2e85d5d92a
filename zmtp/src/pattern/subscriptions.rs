//! [`Subscriptions`]: the publisher-side subscription table of RFC 29, as a compressed prefix trie
//! shared by every subscriber.
//!
//! "Filtering SHALL happen at the publisher": a message goes to every subscriber holding a
//! subscription that is a prefix of its first frame (the empty subscription matches everything).
//! Subscriptions are counted per peer ("two SUBSCRIBE need two CANCEL"). Matching walks the trie
//! along the topic once, whatever the number of subscribers: O(topic length + matches).
//!
//! ```text
//!  root ─"A"─┬─ [peer 1 ×1]            subscriptions: peer 1 "A", peer 2 "ABC" (×2), peer 3 ""
//!  [peer 3]  └─"BC"─ [peer 2 ×2]       topic "ABCD" matches peers 3, 1, 2; topic "AX" peers 3, 1
//! ```
//!
//! Each peer's subscriptions are capped in number and bytes (libzmq has no cap: 300 k subscriptions
//! cost it 78 MiB); a subscription over the cap is refused and reported, the peer keeps the others.

use std::collections::HashMap;

use bytes::Bytes;

use super::PeerId;

/// Per-peer caps on subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionLimits {
    /// Most distinct topics one peer may hold (default 100,000).
    pub max_topics: usize,
    /// Most topic bytes one peer may hold, all distinct topics together (default 16 MiB).
    pub max_bytes: usize,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        SubscriptionLimits { max_topics: 100_000, max_bytes: 16 * 1024 * 1024 }
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The peer already holds the most topics allowed.
    #[error("subscriber holds {max} topics already (the per-peer cap)")]
    TooManyTopics {
        /// The cap.
        max: usize,
    },
    /// The topic would take the peer over its byte cap.
    #[error("subscriber's topics would exceed {max} bytes (the per-peer cap)")]
    TooManyBytes {
        /// The cap.
        max: usize,
    },
}

/// What a subscribe or cancel changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The topic went from no subscriber to one (subscribe) or from one to none (cancel): what a
    /// non-verbose XPUB reports upstream.
    pub topic_edge: bool,
    /// The peer went from not holding the topic to holding it (subscribe), or let go of it (cancel).
    pub peer_edge: bool,
}

#[derive(Debug, Default)]
struct Node {
    /// The bytes on the edge from the parent (empty only at the root).
    label: Vec<u8>,
    /// Children, sorted by the first byte of their label (first bytes are distinct).
    children: Vec<Node>,
    /// Peers subscribed to exactly the topic ending here, with their counts.
    peers: Vec<(PeerId, u32)>,
}

impl Node {
    fn child_index(&self, byte: u8) -> Result<usize, usize> {
        self.children.binary_search_by_key(&byte, |c| c.label[0])
    }

    fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.children.is_empty()
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Per-peer totals, for the caps and for `remove_peer`.
#[derive(Debug, Default)]
struct PeerTotals {
    topics: HashMap<Bytes, u32>,
    bytes: usize,
    /// Went over a cap: holds the empty topic too (see [`Subscriptions::overflow`]).
    overflowed: bool,
}

/// The subscription table of a PUB or XPUB socket.
#[derive(Debug, Default)]
pub struct Subscriptions {
    root: Node,
    peers: HashMap<PeerId, PeerTotals>,
    limits: SubscriptionLimits,
}

impl Subscriptions {
    /// An empty table with `limits`.
    pub fn new(limits: SubscriptionLimits) -> Self {
        Subscriptions { root: Node::default(), peers: HashMap::new(), limits }
    }

    /// Adds one subscription of `peer` to `topic` (counted).
    pub fn subscribe(&mut self, peer: PeerId, topic: &Bytes) -> Result<Change, SubscribeError> {
        let totals = self.peers.entry(peer).or_default();
        let held = totals.topics.get(topic).copied().unwrap_or(0);
        if held == 0 {
            if totals.topics.len() >= self.limits.max_topics {
                return Err(SubscribeError::TooManyTopics { max: self.limits.max_topics });
            }
            if totals.bytes + topic.len() > self.limits.max_bytes {
                return Err(SubscribeError::TooManyBytes { max: self.limits.max_bytes });
            }
            totals.bytes += topic.len();
        }
        totals.topics.insert(topic.clone(), held.saturating_add(1));
        let node = Self::node_for(&mut self.root, topic);
        let topic_edge = node.peers.is_empty();
        match node.peers.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => node.peers.push((peer, 1)),
        }
        Ok(Change { topic_edge, peer_edge: held == 0 })
    }

    /// Puts `peer`, whose subscription was refused by a cap, in overflow: it is subscribed to the
    /// empty topic (exempt from the caps), so it gets every message from now on, until it cancels
    /// that or disconnects. Returns the change the first time, `None` if it was in overflow already.
    ///
    /// Refusing the subscription instead would silently withhold data the subscriber asked for, and,
    /// behind a proxy, let one hostile subscriber use up the cap the upstream publisher holds for
    /// the proxy's XSUB, so that no later subscriber's topic is honoured there (issue 15: a fresh
    /// subscriber got nothing after another sent 2 million subscriptions). Filtering at the
    /// publisher only saves bandwidth: SUB filters again, and an XPUB behind an XSUB filters per
    /// subscriber. A subscriber could have subscribed to everything itself, so this gives it nothing
    /// it could not have, at a bounded memory cost (libzmq has no cap at all).
    pub fn overflow(&mut self, peer: PeerId) -> Option<Change> {
        let totals = self.peers.entry(peer).or_default();
        if totals.overflowed {
            return None;
        }
        totals.overflowed = true;
        let held = totals.topics.get(&b""[..]).copied().unwrap_or(0);
        totals.topics.insert(Bytes::new(), held.saturating_add(1));
        // The empty topic ends at the root.
        let node = &mut self.root;
        let topic_edge = node.peers.is_empty();
        match node.peers.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => node.peers.push((peer, 1)),
        }
        Some(Change { topic_edge, peer_edge: held == 0 })
    }

    /// Whether `peer` went over a cap and gets every message ([`Subscriptions::overflow`]).
    pub fn is_overflowed(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|t| t.overflowed)
    }

    /// Removes one subscription of `peer` to `topic`; `None` if it held none (ignored, as libzmq).
    pub fn cancel(&mut self, peer: PeerId, topic: &[u8]) -> Option<Change> {
        let totals = self.peers.get_mut(&peer)?;
        let held = totals.topics.get_mut(topic)?;
        *held -= 1;
        let peer_edge = *held == 0;
        if peer_edge {
            totals.topics.remove(topic);
            totals.bytes -= topic.len();
            if topic.is_empty() {
                // No longer subscribed to everything: the caps apply again.
                totals.overflowed = false;
            }
            if totals.topics.is_empty() {
                self.peers.remove(&peer);
            }
        }
        let topic_edge = Self::remove(&mut self.root, topic, peer, peer_edge);
        Some(Change { topic_edge, peer_edge })
    }

    /// Forgets every subscription of `peer` (it disconnected). Returns the topics that now have no
    /// subscriber at all (an XPUB reports them upstream as cancels).
    pub fn remove_peer(&mut self, peer: PeerId) -> Vec<Bytes> {
        let Some(totals) = self.peers.remove(&peer) else { return Vec::new() };
        let mut orphaned = Vec::new();
        for topic in totals.topics.into_keys() {
            if Self::remove(&mut self.root, &topic, peer, true) {
                orphaned.push(topic);
            }
        }
        orphaned.sort();
        orphaned
    }

    /// Calls `f` for every (peer, count) whose subscription is a prefix of `topic`, shortest
    /// subscription first. A peer holding several matching subscriptions is reported once per
    /// subscription.
    pub fn for_each_match(&self, topic: &[u8], mut f: impl FnMut(PeerId)) {
        let mut node = &self.root;
        let mut rest = topic;
        loop {
            for &(peer, _) in &node.peers {
                f(peer);
            }
            let Some(&first) = rest.first() else { return };
            let Ok(i) = node.child_index(first) else { return };
            let child = &node.children[i];
            if !rest.starts_with(&child.label) {
                return;
            }
            rest = &rest[child.label.len()..];
            node = child;
        }
    }

    /// The distinct peers a message with first frame `topic` goes to, in ascending order.
    pub fn matching_peers(&self, topic: &[u8]) -> Vec<PeerId> {
        let mut peers = Vec::new();
        self.matching_peers_into(topic, &mut peers);
        peers
    }

    /// [`Subscriptions::matching_peers`] into `peers` (cleared first), reusing its allocation.
    pub fn matching_peers_into(&self, topic: &[u8], peers: &mut Vec<PeerId>) {
        peers.clear();
        self.for_each_match(topic, |p| peers.push(p));
        peers.sort_unstable();
        peers.dedup();
    }

    /// Whether any peer holds a subscription that is a prefix of `topic` (O(topic length)).
    pub fn has_match(&self, topic: &[u8]) -> bool {
        let mut any = false;
        self.for_each_match(topic, |_| any = true);
        any
    }

    /// How many distinct peers hold a subscription that is a prefix of `topic`.
    pub fn match_count(&self, topic: &[u8]) -> usize {
        self.matching_peers(topic).len()
    }

    /// Every topic with at least one subscriber, with the number of peers holding it, sorted.
    pub fn topics(&self) -> Vec<(Bytes, usize)> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        Self::collect(&self.root, &mut path, &mut out);
        out
    }

    /// The topics `peer` holds, with its counts, sorted.
    pub fn topics_of(&self, peer: PeerId) -> Vec<(Bytes, u32)> {
        let mut out: Vec<_> = self
            .peers
            .get(&peer)
            .map(|t| t.topics.iter().map(|(k, &v)| (k.clone(), v)).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Whether there is no subscription at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    fn collect(node: &Node, path: &mut Vec<u8>, out: &mut Vec<(Bytes, usize)>) {
        path.extend_from_slice(&node.label);
        if !node.peers.is_empty() {
            out.push((Bytes::copy_from_slice(path), node.peers.len()));
        }
        for child in &node.children {
            Self::collect(child, path, out);
        }
        path.truncate(path.len() - node.label.len());
    }

    /// The node for exactly `topic`, created (splitting an edge if needed).
    fn node_for<'a>(root: &'a mut Node, topic: &[u8]) -> &'a mut Node {
        let mut node = root;
        let mut rest = topic;
        loop {
            let Some(&first) = rest.first() else { return node };
            match node.child_index(first) {
                Err(at) => {
                    node.children.insert(at, Node { label: rest.to_vec(), ..Node::default() });
                    return &mut node.children[at];
                }
                Ok(i) => {
                    let common = common_prefix(&node.children[i].label, rest);
                    if common < node.children[i].label.len() {
                        // Split the edge: the child keeps the tail of its label under a new node.
                        let child = &mut node.children[i];
                        let tail = child.label.split_off(common);
                        let mut lower = Node { label: tail, ..Node::default() };
                        std::mem::swap(&mut lower.children, &mut child.children);
                        std::mem::swap(&mut lower.peers, &mut child.peers);
                        child.children.push(lower);
                    }
                    rest = &rest[common..];
                    node = &mut node.children[i];
                }
            }
        }
    }

    /// Removes one count (or all of them, when `all`) of `peer` at `topic`, pruning and merging
    /// nodes. Returns whether the topic has no subscriber left.
    fn remove(node: &mut Node, rest: &[u8], peer: PeerId, all: bool) -> bool {
        let Some(&first) = rest.first() else {
            if let Some(i) = node.peers.iter().position(|(p, _)| *p == peer) {
                if all || node.peers[i].1 <= 1 {
                    node.peers.swap_remove(i);
                } else {
                    node.peers[i].1 -= 1;
                }
            }
            return node.peers.is_empty();
        };
        let Ok(i) = node.child_index(first) else { return true };
        let label_len = node.children[i].label.len();
        if !rest.starts_with(&node.children[i].label) {
            return true;
        }
        let orphaned = Self::remove(&mut node.children[i], &rest[label_len..], peer, all);
        let child = &mut node.children[i];
        if child.is_empty() {
            node.children.remove(i);
        } else if child.peers.is_empty() && child.children.len() == 1 {
            // Merge a pass-through node with its only child.
            let mut only = child.children.pop().unwrap_or_default();
            let mut label = std::mem::take(&mut child.label);
            label.extend_from_slice(&only.label);
            only.label = label;
            *child = only;
        }
        orphaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn prefix_matching_and_empty_subscription() {
        let mut subs = Subscriptions::default();
        subs.subscribe(1, &b("A")).unwrap();
        subs.subscribe(2, &b("ABC")).unwrap();
        subs.subscribe(3, &b("")).unwrap();
        subs.subscribe(4, &b("B")).unwrap();
        assert_eq!(subs.matching_peers(b"ABCD"), [1, 2, 3]);
        assert_eq!(subs.matching_peers(b"AX"), [1, 3]);
        assert_eq!(subs.matching_peers(b"AB"), [1, 3]);
        assert_eq!(subs.matching_peers(b""), [3]);
        assert_eq!(subs.matching_peers(b"BZ"), [3, 4]);
        assert!(subs.has_match(b"Q"));
        assert_eq!(subs.match_count(b"ABC"), 3);
    }

    #[test]
    fn subscriptions_are_counted() {
        let mut subs = Subscriptions::default();
        assert_eq!(subs.subscribe(1, &b("X")).unwrap(), Change { topic_edge: true, peer_edge: true });
        assert_eq!(subs.subscribe(1, &b("X")).unwrap(), Change { topic_edge: false, peer_edge: false });
        assert_eq!(subs.subscribe(2, &b("X")).unwrap(), Change { topic_edge: false, peer_edge: true });
        assert_eq!(subs.cancel(1, b"X"), Some(Change { topic_edge: false, peer_edge: false }));
        assert_eq!(subs.matching_peers(b"X1"), [1, 2]);
        assert_eq!(subs.cancel(1, b"X"), Some(Change { topic_edge: false, peer_edge: true }));
        assert_eq!(subs.cancel(1, b"X"), None, "cancelling what is not held is ignored");
        assert_eq!(subs.cancel(2, b"X"), Some(Change { topic_edge: true, peer_edge: true }));
        assert!(subs.is_empty());
    }

    #[test]
    fn remove_peer_reports_orphaned_topics() {
        let mut subs = Subscriptions::default();
        subs.subscribe(1, &b("A")).unwrap();
        subs.subscribe(1, &b("AB")).unwrap();
        subs.subscribe(2, &b("AB")).unwrap();
        assert_eq!(subs.remove_peer(1), [b("A")]);
        assert_eq!(subs.topics(), [(b("AB"), 1)]);
        assert_eq!(subs.matching_peers(b"ABC"), [2]);
    }

    #[test]
    fn caps_refuse_only_the_subscription_over_them() {
        let mut subs = Subscriptions::new(SubscriptionLimits { max_topics: 2, max_bytes: 5 });
        subs.subscribe(1, &b("ab")).unwrap();
        subs.subscribe(1, &b("ab")).unwrap(); // the same topic again costs nothing
        subs.subscribe(1, &b("cd")).unwrap();
        assert_eq!(subs.subscribe(1, &b("e")), Err(SubscribeError::TooManyTopics { max: 2 }));
        subs.cancel(1, b"cd").unwrap();
        assert_eq!(subs.subscribe(1, &b("efgh")), Err(SubscribeError::TooManyBytes { max: 5 }));
        assert_eq!(subs.topics_of(1), [(b("ab"), 2)]);
        subs.subscribe(2, &b("efgh")).unwrap();
    }

    #[test]
    fn a_peer_over_its_cap_overflows_to_every_message() {
        let mut s = Subscriptions::new(SubscriptionLimits { max_topics: 2, max_bytes: 1024 });
        s.subscribe(1, &b("a")).unwrap();
        s.subscribe(1, &b("b")).unwrap();
        s.subscribe(2, &b("c")).unwrap();
        assert!(s.subscribe(1, &b("d")).is_err());
        assert!(!s.is_overflowed(1));
        let change = s.overflow(1).unwrap();
        assert!(change.topic_edge && change.peer_edge);
        assert!(s.overflow(1).is_none(), "once");
        assert!(s.is_overflowed(1));
        assert_eq!(s.matching_peers(b"d"), [1]);
        assert_eq!(s.matching_peers(b"c"), [1, 2]);
        assert!(!s.is_overflowed(2));
        // Cancelling the empty topic ends it; leaving frees everything.
        s.cancel(1, b"");
        assert_eq!(s.matching_peers(b"d"), Vec::<PeerId>::new());
        s.overflow(1);
        assert_eq!(s.remove_peer(1), [b(""), b("a"), b("b")]);
        assert!(!s.is_overflowed(1));
    }

    #[test]
    fn introspection_lists_topics() {
        let mut subs = Subscriptions::default();
        for (p, t) in [(1, "nyse."), (2, "nyse.IBM"), (3, "nyse."), (1, "lse.")] {
            subs.subscribe(p, &b(t)).unwrap();
        }
        assert_eq!(subs.topics(), [(b("lse."), 1), (b("nyse."), 2), (b("nyse.IBM"), 1)]);
        assert_eq!(subs.topics_of(1), [(b("lse."), 1), (b("nyse."), 1)]);
        assert!(!subs.has_match(b"tse.7203"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Sub(PeerId, Vec<u8>),
        Cancel(PeerId, Vec<u8>),
        Remove(PeerId),
    }

    fn op() -> impl Strategy<Value = Op> {
        let topic = proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..5);
        prop_oneof![
            4 => (0u64..4, topic.clone()).prop_map(|(p, t)| Op::Sub(p, t)),
            3 => (0u64..4, topic).prop_map(|(p, t)| Op::Cancel(p, t)),
            1 => (0u64..4).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The trie agrees with a naive per-peer multiset after any sequence of operations.
        #[test]
        fn agrees_with_a_naive_model(ops in proptest::collection::vec(op(), 0..60),
                                     probes in proptest::collection::vec(
                                         proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..6), 1..10)) {
            let mut subs = Subscriptions::default();
            let mut model: HashMap<(PeerId, Vec<u8>), u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Sub(p, t) => {
                        subs.subscribe(p, &Bytes::from(t.clone())).unwrap();
                        *model.entry((p, t)).or_default() += 1;
                    }
                    Op::Cancel(p, t) => {
                        let held = model.get(&(p, t.clone())).copied().unwrap_or(0);
                        prop_assert_eq!(subs.cancel(p, &t).is_some(), held > 0);
                        if held > 1 { model.insert((p, t), held - 1); } else { model.remove(&(p, t)); }
                    }
                    Op::Remove(p) => {
                        subs.remove_peer(p);
                        model.retain(|(q, _), _| *q != p);
                    }
                }
            }
            for probe in probes {
                let mut expected: Vec<PeerId> =
                    model.keys().filter(|(_, t)| probe.starts_with(t)).map(|(p, _)| *p).collect();
                expected.sort_unstable();
                expected.dedup();
                prop_assert_eq!(subs.matching_peers(&probe), expected);
            }
            let mut topics: HashMap<Vec<u8>, usize> = HashMap::new();
            for (_, t) in model.keys() { *topics.entry(t.clone()).or_default() += 1; }
            let mut topics: Vec<(Bytes, usize)> = topics.into_iter().map(|(t, n)| (Bytes::from(t), n)).collect();
            topics.sort();
            prop_assert_eq!(subs.topics(), topics);
            prop_assert_eq!(subs.is_empty(), model.is_empty());
        }
    }
}
