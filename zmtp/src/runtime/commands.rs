//! [`PendingCommands`]: the subscriptions and cancels a SUB or XSUB still has to send to one
//! publisher, coalesced per topic.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// Subscriptions (`true`) and cancels (`false`) waiting for a peer's driver, at most one per topic.
///
/// A cancel that meets its topic's unsent subscription (or the reverse) removes both: the
/// publisher's view of that topic is already what it should be. So a subscriber behind an XPUB that
/// churns SUBSCRIBE/CANCEL costs at most one entry per topic here, however long the publisher takes
/// to read, and a fresh subscriber's topic is not queued behind millions of them (issue 15: the
/// queue was a plain FIFO, unbounded while the publisher did not read). Topics are independent,
/// so their relative order does not matter; each topic's last word is what is sent.
#[derive(Debug, Default)]
pub(crate) struct PendingCommands {
    /// The unsent word per topic.
    pending: HashMap<Bytes, bool>,
    /// Topics in the order they were queued; may hold topics no longer pending (skipped when
    /// drained) and, after a topic was coalesced away and queued again, a topic twice.
    order: VecDeque<Bytes>,
}

impl PendingCommands {
    /// Queues a subscription (`true`) or cancel of `topic`.
    pub(crate) fn push(&mut self, subscribe: bool, topic: Bytes) {
        match self.pending.get(&topic) {
            Some(&queued) if queued != subscribe => {
                // The unsent opposite word: together they change nothing.
                self.pending.remove(&topic);
            }
            Some(_) => {}
            None => {
                self.pending.insert(topic.clone(), subscribe);
                self.order.push_back(topic);
            }
        }
        // Stale entries pile up only while nothing is drained: keep them within a multiple of
        // the live ones.
        if self.order.len() > 2 * self.pending.len() + 1024 {
            self.order = self.pending.keys().cloned().collect();
        }
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Moves everything waiting into `out`, in queued order.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<(bool, Bytes)>) {
        for topic in self.order.drain(..) {
            if let Some(subscribe) = self.pending.remove(&topic) {
                out.push((subscribe, topic));
            }
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(p: &mut PendingCommands) -> Vec<(bool, &'static str)> {
        let mut out = Vec::new();
        p.drain_into(&mut out);
        out.into_iter().map(|(s, t)| (s, &*String::from_utf8(t.to_vec()).unwrap().leak())).collect()
    }

    #[test]
    fn opposite_words_cancel_out_and_order_is_kept() {
        let mut p = PendingCommands::default();
        p.push(true, Bytes::from("a"));
        p.push(true, Bytes::from("b"));
        p.push(false, Bytes::from("a"));
        p.push(true, Bytes::from("c"));
        p.push(true, Bytes::from("a"));
        let mut words = drained(&mut p);
        words.sort_unstable();
        assert_eq!(words, [(true, "a"), (true, "b"), (true, "c")], "each topic once, its last word");
        assert!(p.is_empty());
        p.push(false, Bytes::from("x"));
        assert_eq!(drained(&mut p), [(false, "x")]);
    }

    #[test]
    fn churn_without_draining_stays_bounded() {
        let mut p = PendingCommands::default();
        for i in 0..1_000_000u32 {
            let topic = Bytes::from(format!("t{}", i % 10));
            p.push(true, topic.clone());
            p.push(false, topic);
        }
        assert!(p.order.len() <= 1024, "{}", p.order.len());
        p.push(true, Bytes::from("fresh"));
        assert_eq!(drained(&mut p), [(true, "fresh")]);
    }
}
