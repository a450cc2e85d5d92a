//! Circuit breakers, one per exchange prefix.
//!
//! ```text
//!            failures ≥ N in a row, within the window
//!   Closed ───────────────────────────────────────────► Open (for open_secs: UNAVAILABLE at once)
//!     ▲                                                   │ open_secs passed; the next request
//!     │ the probe's OK                                    ▼ goes through as the probe
//!     └──────────────────────────────────────────────  HalfOpen (others: UNAVAILABLE)
//!                   the probe's TIMEOUT/ERROR: Open again ─┘
//! ```
//!
//! Only prefixes with a failure streak or not closed have an entry; the map holds at most
//! [`MAX_PREFIXES`] (closed entries whose streak is stale are forgotten first; when every entry is
//! open, a new prefix's failures are not tracked until room frees).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// Most prefixes tracked at once.
pub const MAX_PREFIXES: usize = 10_000;

/// A breaker's state, as exported (`breaker_state` gauge: 0 closed, 1 open, 2 half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through.
    Closed,
    /// Requests are answered `UNAVAILABLE` at once.
    Open,
    /// One probe request is in flight; others are answered `UNAVAILABLE`.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open`, `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// The breakers' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open a breaker; 0 turns breakers off.
    pub failures: u32,
    /// The failures must all fall within this window.
    pub window: Duration,
    /// How long a breaker stays open before its probe.
    pub open: Duration,
}

impl BreakerSettings {
    /// Whether breakers are on.
    pub fn is_on(&self) -> bool {
        self.failures > 0
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// `failures` in a row, the first at `since`.
    Closed {
        failures: u32,
        since: Instant,
    },
    Open {
        until: Instant,
    },
    HalfOpen,
}

/// What [`Breakers::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Pass,
    /// Go ahead as the half-open probe: report its outcome with `probe = true`.
    Probe,
    /// Refuse: the breaker is open (or its probe is in flight).
    Refuse,
}

/// A state change, for the log and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The exchange prefix.
    pub prefix: Bytes,
    /// The new state.
    pub state: BreakerState,
}

/// The breakers of every prefix.
#[derive(Debug)]
pub struct Breakers {
    settings: BreakerSettings,
    states: HashMap<Bytes, State>,
}

impl Breakers {
    /// Breakers with these settings.
    pub fn new(settings: BreakerSettings) -> Breakers {
        Breakers { settings, states: HashMap::new() }
    }

    /// The settings in force.
    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// Replaces the settings (a reload). Open breakers keep their deadline; turning breakers off
    /// closes them all (returned, for the metrics).
    pub fn reconfigure(&mut self, settings: BreakerSettings) -> Vec<Transition> {
        self.settings = settings;
        if settings.is_on() {
            return Vec::new();
        }
        self.states
            .drain()
            .filter(|(_, s)| !matches!(s, State::Closed { .. }))
            .map(|(prefix, _)| Transition { prefix, state: BreakerState::Closed })
            .collect()
    }

    /// Whether a request for `prefix` may go upstream at `now`. An open breaker whose time is up
    /// becomes half-open here and admits this request as its probe.
    pub fn admit(&mut self, prefix: &[u8], now: Instant) -> (Admission, Option<Transition>) {
        if !self.settings.is_on() {
            return (Admission::Pass, None);
        }
        let Some(state) = self.states.get_mut(prefix) else { return (Admission::Pass, None) };
        match *state {
            State::Closed { .. } => (Admission::Pass, None),
            State::Open { until } if now < until => (Admission::Refuse, None),
            State::Open { .. } => {
                *state = State::HalfOpen;
                let t = Transition { prefix: Bytes::copy_from_slice(prefix), state: BreakerState::HalfOpen };
                (Admission::Probe, Some(t))
            }
            State::HalfOpen => (Admission::Refuse, None),
        }
    }

    /// Records the outcome of a request admitted earlier: `ok` (an `OK` response) or a failure
    /// (`ERROR` or `TIMEOUT`); `probe` if it was admitted as the probe. Outcomes of other requests
    /// while a breaker is open or half-open change nothing (they were sent before it opened).
    pub fn record(&mut self, prefix: &[u8], ok: bool, probe: bool, now: Instant) -> Option<Transition> {
        let s = self.settings;
        if !s.is_on() {
            return None;
        }
        let changed = |state| Some(Transition { prefix: Bytes::copy_from_slice(prefix), state });
        match self.states.get_mut(prefix) {
            Some(state @ State::HalfOpen) if probe => {
                if ok {
                    self.states.remove(prefix);
                    changed(BreakerState::Closed)
                } else {
                    *state = State::Open { until: now + s.open };
                    changed(BreakerState::Open)
                }
            }
            Some(State::HalfOpen | State::Open { .. }) => None,
            Some(State::Closed { .. }) if ok => {
                self.states.remove(prefix);
                None
            }
            Some(state @ State::Closed { .. }) => {
                let State::Closed { failures, since } = *state else { return None };
                let (failures, since) = if now.saturating_duration_since(since) > s.window {
                    (1, now)
                } else {
                    (failures + 1, since)
                };
                if failures >= s.failures {
                    *state = State::Open { until: now + s.open };
                    changed(BreakerState::Open)
                } else {
                    *state = State::Closed { failures, since };
                    None
                }
            }
            None if ok => None,
            None => {
                if s.failures <= 1 {
                    self.make_room(now);
                    if self.states.len() >= MAX_PREFIXES {
                        return None;
                    }
                    self.states.insert(Bytes::copy_from_slice(prefix), State::Open { until: now + s.open });
                    return changed(BreakerState::Open);
                }
                self.make_room(now);
                if self.states.len() < MAX_PREFIXES {
                    self.states
                        .insert(Bytes::copy_from_slice(prefix), State::Closed { failures: 1, since: now });
                }
                None
            }
        }
    }

    /// At the cap, forgets closed entries whose streak is older than the window, then any closed
    /// entry (a streak forgotten restarts at the next failure).
    fn make_room(&mut self, now: Instant) {
        if self.states.len() < MAX_PREFIXES {
            return;
        }
        let window = self.settings.window;
        self.states.retain(|_, s| match s {
            State::Closed { since, .. } => now.saturating_duration_since(*since) <= window,
            _ => true,
        });
        if self.states.len() >= MAX_PREFIXES {
            self.states.retain(|_, s| !matches!(s, State::Closed { .. }));
        }
    }

    /// The state of `prefix` (closed when untracked). An open breaker whose time is up shows as
    /// open until the next request for it, which becomes the probe.
    pub fn state(&self, prefix: &[u8]) -> BreakerState {
        match self.states.get(prefix) {
            None | Some(State::Closed { .. }) => BreakerState::Closed,
            Some(State::Open { .. }) => BreakerState::Open,
            Some(State::HalfOpen) => BreakerState::HalfOpen,
        }
    }

    /// Every prefix that is not closed, with its state, sorted by prefix (for the metrics).
    pub fn states(&self) -> Vec<(Bytes, BreakerState)> {
        let mut v: Vec<_> = self
            .states
            .keys()
            .map(|p| (p.clone(), self.state(p)))
            .filter(|(_, s)| *s != BreakerState::Closed)
            .collect();
        v.sort();
        v
    }

    /// Prefixes tracked (open, half-open, or closed with a failure streak).
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no prefix is tracked.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

impl PartialOrd for BreakerState {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BreakerState {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_gauge().cmp(&other.as_gauge())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const P: &[u8] = b"BINANCE:";

    fn breakers(failures: u32) -> Breakers {
        Breakers::new(BreakerSettings {
            failures,
            window: Duration::from_secs(60),
            open: Duration::from_secs(30),
        })
    }

    fn now() -> Instant {
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_n_failures_in_a_row_and_a_probe_closes_it() {
        let mut b = breakers(3);
        assert_eq!(b.admit(P, now()).0, Admission::Pass);
        assert_eq!(b.record(P, false, false, now()), None);
        assert_eq!(b.record(P, false, false, now()), None);
        assert_eq!(b.state(P), BreakerState::Closed);
        let t = b.record(P, false, false, now()).unwrap();
        assert_eq!((t.prefix.as_ref(), t.state), (P, BreakerState::Open));
        assert_eq!(b.states(), vec![(Bytes::from_static(P), BreakerState::Open)]);
        // Open: refused at once; other prefixes unaffected.
        assert_eq!(b.admit(P, now()).0, Admission::Refuse);
        assert_eq!(b.admit(b"KRAKEN:", now()).0, Admission::Pass);
        // An OK of a request sent before it opened changes nothing.
        assert_eq!(b.record(P, true, false, now()), None);
        assert_eq!(b.state(P), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(b.admit(P, now()).0, Admission::Refuse);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Half-open: exactly one probe.
        let (a, t) = b.admit(P, now());
        assert_eq!(a, Admission::Probe);
        assert_eq!(t.unwrap().state, BreakerState::HalfOpen);
        assert_eq!(b.admit(P, now()).0, Admission::Refuse);
        assert_eq!(b.admit(P, now()).0, Admission::Refuse);
        // The probe's OK closes it.
        assert_eq!(b.record(P, true, true, now()).unwrap().state, BreakerState::Closed);
        assert_eq!(b.admit(P, now()).0, Admission::Pass);
        assert!(b.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_it() {
        let mut b = breakers(1);
        assert_eq!(b.record(P, false, false, now()).unwrap().state, BreakerState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.admit(P, now()).0, Admission::Probe);
        assert_eq!(b.record(P, false, true, now()).unwrap().state, BreakerState::Open);
        assert_eq!(b.admit(P, now()).0, Admission::Refuse);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.admit(P, now()).0, Admission::Probe);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_or_a_stale_streak_resets_the_count() {
        let mut b = breakers(3);
        b.record(P, false, false, now());
        b.record(P, false, false, now());
        b.record(P, true, false, now());
        assert!(b.is_empty());
        b.record(P, false, false, now());
        b.record(P, false, false, now());
        assert_eq!(b.record(P, false, false, now()).unwrap().state, BreakerState::Open);
        let mut b = breakers(3);
        b.record(P, false, false, now());
        b.record(P, false, false, now());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(b.record(P, false, false, now()), None, "the streak restarted");
        assert_eq!(b.record(P, false, false, now()), None);
        assert_eq!(b.record(P, false, false, now()).unwrap().state, BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn off_passes_everything_and_turning_off_closes() {
        let mut b = breakers(0);
        for _ in 0..100 {
            assert_eq!(b.record(P, false, false, now()), None);
        }
        assert_eq!(b.admit(P, now()).0, Admission::Pass);
        let mut b = breakers(1);
        b.record(P, false, false, now());
        let closed = b.reconfigure(BreakerSettings { failures: 0, ..b.settings() });
        assert_eq!(closed, vec![Transition { prefix: Bytes::from_static(P), state: BreakerState::Closed }]);
        assert_eq!(b.admit(P, now()).0, Admission::Pass);
    }

    #[tokio::test(start_paused = true)]
    async fn the_map_stays_bounded() {
        let mut b = breakers(2);
        for i in 0..(MAX_PREFIXES * 2) {
            b.record(format!("X{i}:").as_bytes(), false, false, now());
        }
        assert!(b.len() <= MAX_PREFIXES);
        let mut b = breakers(1);
        for i in 0..(MAX_PREFIXES + 10) {
            b.record(format!("X{i}:").as_bytes(), false, false, now());
        }
        assert_eq!(b.len(), MAX_PREFIXES, "open breakers are kept; new ones wait for room");
    }
}
