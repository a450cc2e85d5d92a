//! Requests in flight upstream ("flights"), and request coalescing.
//!
//! A flight is one work message sent to the ingestors, answered by one response (or by nobody), with
//! one or more waiters: the client requests (each a pending request in the [`crate::PendingTable`],
//! with its own envelope and deadline) that get the response under their own `request_id`.
//!
//! Without coalescing a flight has one waiter and its upstream id is that request's own `request_id`
//! (the work message is what it always was). With coalescing (`coalesce_requests`) the relay names
//! each flight itself, `relay-<16 hex digits>` (a random start per process, then counting: a late
//! response meant for a previous run of the relay matches nothing), and a request whose (ticker,
//! params) is already in flight joins that flight instead of sending work of its own. The flight
//! belongs to no client, so a waiter that times out or whose client leaves strands nobody: the
//! flight lives until its response comes or its last waiter has timed out, and `DUPLICATE` keeps its
//! meaning (client request ids only). Waiters are pending requests, so `max_pending_requests` bounds
//! them, and the flights with them.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;

use super::cache::Key;

/// One upstream request and who waits for its response.
#[derive(Debug)]
pub struct Flight {
    /// The exchange prefix (for the breaker).
    pub prefix: Bytes,
    /// What was asked (kept when coalescing or caching needs it).
    pub key: Option<Key>,
    /// The waiting client requests' ids, in arrival order.
    pub waiters: Vec<Bytes>,
    /// Whether this is a half-open breaker's probe.
    pub probe: bool,
    /// Whether the breaker was already told of a failure (a waiter timed out).
    pub failed: bool,
    /// Whether a `PARTIAL` chunk came: the final response is not the whole (not cached).
    pub streamed: bool,
}

/// What a waiter's timeout left of its flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The flight's exchange prefix.
    pub prefix: Bytes,
    /// Whether the flight was the breaker's probe.
    pub probe: bool,
    /// Whether this is the flight's first timeout (the breaker counts one failure per flight).
    pub first_failure: bool,
}

/// The flights in progress.
#[derive(Debug)]
pub struct Flights {
    coalesce: bool,
    /// Upstream id → flight.
    flights: HashMap<Bytes, Flight>,
    /// (ticker, params) → upstream id of the coalescing flight that asks for it.
    by_key: HashMap<Key, Bytes>,
    /// Waiter (client `request_id`) → upstream id, for waiters of coalescing flights (a flight
    /// without coalescing is named by its one waiter's id: no entry needed).
    waiting: HashMap<Bytes, Bytes>,
    next_id: u64,
    /// Requests that joined a flight instead of sending work.
    coalesced: u64,
}

impl Flights {
    /// No flights; `coalesce`: whether identical requests share one.
    pub fn new(coalesce: bool) -> Flights {
        // A random start, so ids do not repeat across restarts of the relay.
        let next_id = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Flights {
            coalesce,
            flights: HashMap::new(),
            by_key: HashMap::new(),
            waiting: HashMap::new(),
            next_id,
            coalesced: 0,
        }
    }

    /// Whether identical requests share a flight.
    pub fn coalesces(&self) -> bool {
        self.coalesce
    }

    /// Turns coalescing on or off (a reload). Flights in progress go on; after turning it off no
    /// request joins them.
    pub fn reconfigure(&mut self, coalesce: bool) {
        self.coalesce = coalesce;
        if !coalesce {
            self.by_key.clear();
        }
    }

    /// Adds `waiter` to the flight already asking for (`ticker`, `params`), if coalescing and there
    /// is one: its upstream id.
    pub fn join(&mut self, waiter: &Bytes, ticker: &Bytes, params: &Bytes) -> Option<Bytes> {
        if !self.coalesce || self.by_key.is_empty() {
            return None;
        }
        let key = Key { ticker: ticker.clone(), params: params.clone() };
        let upstream = self.by_key.get(&key)?.clone();
        let flight = self.flights.get_mut(&upstream)?;
        let waiter = Bytes::copy_from_slice(waiter);
        flight.waiters.push(waiter.clone());
        self.waiting.insert(waiter, upstream.clone());
        self.coalesced += 1;
        Some(upstream)
    }

    /// Starts a flight for `waiter`: its upstream id (the waiter's own id without coalescing, a
    /// relay-made one with it).
    pub fn start(&mut self, waiter: &Bytes, prefix: &Bytes, key: Option<Key>, probe: bool) -> Bytes {
        let waiter = Bytes::copy_from_slice(waiter);
        let upstream = if self.coalesce {
            loop {
                let id = Bytes::from(format!("relay-{:016x}", self.next_id));
                self.next_id = self.next_id.wrapping_add(1);
                if !self.flights.contains_key(&id) {
                    break id;
                }
            }
        } else {
            waiter.clone()
        };
        if self.coalesce {
            if let Some(key) = &key {
                self.by_key.insert(key.clone(), upstream.clone());
            }
        }
        if self.coalesce {
            self.waiting.insert(waiter.clone(), upstream.clone());
        }
        let flight = Flight {
            prefix: Bytes::copy_from_slice(prefix),
            key,
            waiters: vec![waiter],
            probe,
            failed: false,
            streamed: false,
        };
        self.flights.insert(upstream.clone(), flight);
        upstream
    }

    /// Whether `upstream` is a flight in progress.
    pub fn contains(&self, upstream: &[u8]) -> bool {
        !self.flights.is_empty() && self.flights.contains_key(upstream)
    }

    /// The waiters of flight `upstream` (for a response that does not end it: a streamed chunk).
    pub fn waiters(&self, upstream: &[u8]) -> &[Bytes] {
        self.flights.get(upstream).map(|f| f.waiters.as_slice()).unwrap_or_default()
    }

    /// A `PARTIAL` chunk of flight `upstream` came: marks it streamed (its final is not cached) and
    /// returns its waiters (a copy of the list: the caller delivers to each).
    pub fn chunk(&mut self, upstream: &[u8]) -> Vec<Bytes> {
        match self.flights.get_mut(upstream) {
            Some(f) => {
                f.streamed = true;
                f.waiters.clone()
            }
            None => Vec::new(),
        }
    }

    /// Ends flight `upstream` (its response came): the flight, its waiters forgotten here.
    pub fn finish(&mut self, upstream: &[u8]) -> Option<Flight> {
        let flight = self.flights.remove(upstream)?;
        self.forget_key(&flight, upstream);
        if !self.waiting.is_empty() {
            for w in &flight.waiters {
                self.waiting.remove(w);
            }
        }
        Some(flight)
    }

    /// Removes `waiter` (timed out) from its flight; the flight ends with its last waiter.
    pub fn leave(&mut self, waiter: &[u8]) -> Option<Left> {
        let upstream = match self.waiting.remove(waiter) {
            Some(upstream) => upstream,
            // A flight without coalescing is named by its waiter.
            None if self.flights.contains_key(waiter) => Bytes::copy_from_slice(waiter),
            None => return None,
        };
        let flight = self.flights.get_mut(&upstream)?;
        flight.waiters.retain(|w| w != waiter);
        let left = Left { prefix: flight.prefix.clone(), probe: flight.probe, first_failure: !flight.failed };
        flight.failed = true;
        if flight.waiters.is_empty() {
            if let Some(flight) = self.flights.remove(&upstream) {
                self.forget_key(&flight, &upstream);
            }
        }
        Some(left)
    }

    fn forget_key(&mut self, flight: &Flight, upstream: &[u8]) {
        if let Some(key) = &flight.key {
            if self.by_key.get(key).is_some_and(|u| u == upstream) {
                self.by_key.remove(key);
            }
        }
    }

    /// Forgets every flight (shutdown: the pending requests were answered already).
    pub fn clear(&mut self) {
        self.flights.clear();
        self.by_key.clear();
        self.waiting.clear();
    }

    /// Flights in progress.
    pub fn len(&self) -> usize {
        self.flights.len()
    }

    /// Whether no flight is in progress.
    pub fn is_empty(&self) -> bool {
        self.flights.is_empty()
    }

    /// Waiters in all flights (O(flights): for tests and occasional reads).
    pub fn waiter_count(&self) -> usize {
        self.flights.values().map(|f| f.waiters.len()).sum()
    }

    /// Requests that joined a flight instead of sending work, since start.
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn key() -> Key {
        Key::copied(b"A:B", b"{}")
    }

    #[test]
    fn identical_requests_share_one_flight_until_it_is_answered() {
        let mut f = Flights::new(true);
        assert_eq!(f.join(&b("r1"), &b("A:B"), &b("{}")), None);
        let up = f.start(&b("r1"), &b("A:"), Some(key()), false);
        assert!(up.starts_with(b"relay-") && up.len() == 22, "{up:?}");
        assert_eq!(f.join(&b("r2"), &b("A:B"), &b("{}")), Some(up.clone()));
        assert_eq!(f.join(&b("r3"), &b("A:B"), &b("{}")), Some(up.clone()));
        assert_eq!(f.join(&b("r4"), &b("A:B"), &b("{ }")), None, "other params");
        assert_eq!(f.waiters(&up), [b("r1"), b("r2"), b("r3")]);
        let flight = f.finish(&up).unwrap();
        assert_eq!(flight.waiters.len(), 3);
        assert!(f.is_empty() && f.waiter_count() == 0);
        assert_eq!(f.join(&b("r5"), &b("A:B"), &b("{}")), None, "answered: a new flight next");
        assert_eq!(f.coalesced(), 2);
    }

    #[test]
    fn a_leader_that_times_out_strands_nobody() {
        let mut f = Flights::new(true);
        let up = f.start(&b("leader"), &b("A:"), Some(key()), false);
        f.join(&b("j1"), &b("A:B"), &b("{}"));
        let left = f.leave(b"leader").unwrap();
        assert!(left.first_failure);
        assert!(f.contains(&up), "the joiner still waits");
        assert_eq!(f.join(&b("j2"), &b("A:B"), &b("{}")), Some(up.clone()), "still joinable");
        assert!(!f.leave(b"j1").unwrap().first_failure, "one failure per flight");
        assert_eq!(f.finish(&up).unwrap().waiters, [b("j2")]);
        // The last waiter leaving ends the flight.
        let up = f.start(&b("x"), &b("A:"), Some(key()), false);
        f.leave(b"x");
        assert!(!f.contains(&up));
        assert_eq!(f.join(&b("y"), &b("A:B"), &b("{}")), None);
        assert!(f.is_empty() && f.waiter_count() == 0);
    }

    #[test]
    fn without_coalescing_each_request_is_its_own_flight_under_its_own_id() {
        let mut f = Flights::new(false);
        let up = f.start(&b("r1"), &b("A:"), None, true);
        assert_eq!(up, b("r1"));
        assert_eq!(f.join(&b("r2"), &b("A:B"), &b("{}")), None);
        let flight = f.finish(b"r1").unwrap();
        assert!(flight.probe);
        assert_eq!(f.leave(b"r1"), None);
    }

    /// Prints what a flight costs (start + finish, the tracked path's overhead per request); no
    /// timed assertion. `cargo test --release -p relay --lib flights_cost -- --nocapture`.
    #[test]
    fn flights_cost_o1_each() {
        for coalesce in [false, true] {
            let mut f = Flights::new(coalesce);
            let ids: Vec<Bytes> = (0..100_000).map(|i| Bytes::from(format!("req-{i:032}"))).collect();
            let started = std::time::Instant::now();
            for (i, id) in ids.iter().enumerate() {
                let key = coalesce.then(|| Key::copied(format!("A:{}", i % 100).as_bytes(), b"{}"));
                let up = f.join(id, &b("A:x"), &b("{}")).unwrap_or_else(|| f.start(id, &b("A:"), key, false));
                if i % 2 == 1 {
                    f.finish(&up);
                }
            }
            f.clear();
            println!("coalesce={coalesce}: 100,000 flights in {:?}", started.elapsed());
        }
    }

    #[test]
    fn relay_ids_are_unique() {
        let mut f = Flights::new(true);
        let mut ids = std::collections::HashSet::new();
        for i in 0..1000 {
            let k = Key::copied(format!("A:{i}").as_bytes(), b"");
            assert!(ids.insert(f.start(&b(&i.to_string()), &b("A:"), Some(k), false)));
        }
        assert_eq!(f.len(), 1000);
    }
}
