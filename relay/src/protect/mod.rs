//! Protection of the relay and its ingestors (docs/relay-protocol.md §8, version 1.1): rate limiting
//! per client, a circuit breaker per exchange prefix, request coalescing and a response cache. Every
//! part is off by default, and with all of them off a request takes exactly the path it always took.
//!
//! [`Protect`] holds the four parts and answers the request loop's questions; the loop's hooks
//! (`Server::forward_tracked`, `Server::answer_flight`, `Server::flight_timed_out`, below) send what
//! it decides. Checks run in this order, the first that applies answering: `BAD_REQUEST`,
//! `RATE_LIMITED`, `DUPLICATE`, a cache hit (`OK`), `OVERLOADED`, `UNAVAILABLE` (no ingestor), then
//! `UNAVAILABLE` (circuit open); then the request joins a flight in progress or is forwarded.
//!
//! Every setting can be replaced while running ([`Protect::reconfigure`]): all eight keys are live.

pub mod breaker;
pub mod cache;
pub mod coalesce;
pub mod rate_limit;

use bytes::Bytes;
use tokio::time::Instant;
use zmtp::Socket;

use crate::config::Config;
use crate::logging::Id;
use crate::requests::{Status, TYPE_WORK};
pub use breaker::{Admission, BreakerSettings, BreakerState, Breakers, Transition};
pub use cache::{CacheCounters, CacheSettings, Key, ResponseCache};
pub use coalesce::Flights;
pub use rate_limit::{ClientKey, RateLimiter, RateSettings};

/// The settings of every protection, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProtectSettings {
    /// `rate_limit_per_s`, `rate_limit_burst`.
    pub rate: RateSettings,
    /// `breaker_failures`, `breaker_window_secs`, `breaker_open_secs`.
    pub breaker: BreakerSettings,
    /// `coalesce_requests`.
    pub coalesce: bool,
    /// `cache_ttl_secs`, `cache_max_bytes`.
    pub cache: CacheSettings,
}

impl ProtectSettings {
    /// The settings `config` names.
    pub fn from_config(config: &Config) -> ProtectSettings {
        ProtectSettings {
            rate: RateSettings::new(config.rate_limit_per_s, config.rate_limit_burst),
            breaker: BreakerSettings {
                failures: config.breaker_failures,
                window: config.breaker_window,
                open: config.breaker_open,
            },
            coalesce: config.coalesce_requests,
            cache: CacheSettings { ttl: config.cache_ttl, max_bytes: config.cache_max_bytes },
        }
    }
}

/// Counters for the metrics (totals since start, and what is held now).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProtectCounters {
    /// Requests answered `RATE_LIMITED`.
    pub rate_limited: u64,
    /// Requests answered `UNAVAILABLE` because a circuit was open.
    pub circuit_refused: u64,
    /// Requests that joined a flight in progress instead of sending work.
    pub coalesced: u64,
    /// Work messages sent for tracked flights (with any protection on).
    pub upstream_requests: u64,
    /// Cache hits, misses, bytes and entries.
    pub cache: CacheCounters,
    /// Client buckets held.
    pub rate_buckets: u64,
    /// Flights in progress.
    pub flights: u64,
}

/// Called with each breaker state change (prefix, new state): the metrics' gauge.
pub type BreakerObserver = Box<dyn FnMut(&[u8], BreakerState) + Send>;

/// The four protections.
pub struct Protect {
    settings: ProtectSettings,
    limiter: RateLimiter,
    breakers: Breakers,
    flights: Flights,
    cache: ResponseCache,
    /// Set by [`Protect::circuit_open`] when it admitted a half-open probe, taken by the forward that
    /// follows it.
    probe_admitted: bool,
    observer: Option<BreakerObserver>,
    /// State changes not yet read by [`Protect::take_breaker_changes`].
    changes: Vec<(Bytes, BreakerState)>,
    circuit_refused: u64,
    upstream_requests: u64,
}

impl std::fmt::Debug for Protect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protect").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Protect {
    /// The protections with these settings.
    pub fn new(settings: &ProtectSettings) -> Protect {
        Protect {
            settings: *settings,
            limiter: RateLimiter::new(settings.rate),
            breakers: Breakers::new(settings.breaker),
            flights: Flights::new(settings.coalesce),
            cache: ResponseCache::new(settings.cache),
            probe_admitted: false,
            observer: None,
            changes: Vec::new(),
            circuit_refused: 0,
            upstream_requests: 0,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProtectSettings {
        &self.settings
    }

    /// Replaces every setting while running (a reload): rate buckets keep their tokens (capped to
    /// the new burst), open breakers their deadline, flights in progress go on, cached entries their
    /// expiry; a part turned off forgets its state.
    pub fn reconfigure(&mut self, settings: &ProtectSettings) {
        if *settings == self.settings {
            return;
        }
        tracing::info!(
            rate_limit_per_s = settings.rate.per_second,
            rate_limit_burst = settings.rate.burst,
            breaker_failures = settings.breaker.failures,
            coalesce_requests = settings.coalesce,
            cache_ttl_secs = settings.cache.ttl.as_secs_f64(),
            "protection settings changed"
        );
        self.settings = *settings;
        self.limiter.reconfigure(settings.rate);
        for t in self.breakers.reconfigure(settings.breaker) {
            self.note(&t);
        }
        self.flights.reconfigure(settings.coalesce);
        self.cache.reconfigure(settings.cache);
    }

    /// Breaker state changes since the last call, oldest first (at most [`MAX_PENDING_CHANGES`]
    /// kept: the metrics read them once a second).
    pub fn take_breaker_changes(&mut self) -> Vec<(Bytes, BreakerState)> {
        std::mem::take(&mut self.changes)
    }

    /// Calls `observer` with every breaker state change from now on (the metrics' gauge).
    pub fn on_breaker_change(&mut self, observer: impl FnMut(&[u8], BreakerState) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Whether requests go through flights: any of breaker, coalescing or cache is on (they need to
    /// know, at the response, what was asked).
    pub fn is_tracking(&self) -> bool {
        self.settings.breaker.is_on() || self.settings.coalesce || self.cache.is_on()
    }

    /// `RATE_LIMITED`'s reason if the client of `envelope` (its first frame: the ROUTER's routing id)
    /// is over its limit, else `None` (a token was taken).
    pub fn rate_limit(&mut self, envelope: &[Bytes], clients: &Socket, now: Instant) -> Option<String> {
        if !self.settings.rate.is_on() {
            return None;
        }
        let routing_id = envelope.first().map(|f| f.as_ref()).unwrap_or_default();
        // Only generated ids (0x00 first) are looked up: the address is used for those alone.
        let address = if routing_id.first() == Some(&0) { clients.peer_address(routing_id) } else { None };
        let client = ClientKey::new(routing_id, address.as_deref());
        if self.limiter.allow(&client, now) {
            return None;
        }
        let rate = self.settings.rate.per_second;
        tracing::debug!(client = %client, "rate limited");
        Some(format!("rate limit {rate}/s exceeded"))
    }

    /// A cached `OK` response's data frames for (`ticker`, `params`), if the cache is on and holds a
    /// live one.
    pub fn cached(&mut self, ticker: &Bytes, params: &Bytes, now: Instant) -> Option<Vec<Bytes>> {
        self.cache.get(ticker, params, now)
    }

    /// `UNAVAILABLE`'s reason if the circuit of `prefix` is open (or half-open with its probe in
    /// flight), else `None`. When this request is admitted as the half-open probe, the forward that
    /// follows marks its flight so.
    pub fn circuit_open(&mut self, prefix: &Bytes, now: Instant) -> Option<String> {
        let (admission, transition) = self.breakers.admit(prefix, now);
        if let Some(t) = transition {
            self.note(&t);
        }
        match admission {
            Admission::Pass => None,
            Admission::Probe => {
                self.probe_admitted = true;
                None
            }
            Admission::Refuse => {
                self.circuit_refused += 1;
                Some(format!("circuit open for {}", String::from_utf8_lossy(prefix)))
            }
        }
    }

    /// Whether `upstream` (a response's `request_id`) names a flight in progress.
    pub fn is_flight(&self, upstream: &[u8]) -> bool {
        self.flights.contains(upstream)
    }

    /// Logs a breaker state change and tells the observer.
    fn note(&mut self, t: &Transition) {
        let prefix = String::from_utf8_lossy(&t.prefix);
        match t.state {
            BreakerState::Open => tracing::warn!(
                prefix = %prefix,
                failures = self.settings.breaker.failures,
                open_secs = self.settings.breaker.open.as_secs_f64(),
                "circuit opened"
            ),
            BreakerState::HalfOpen => tracing::info!(prefix = %prefix, "circuit half-open"),
            BreakerState::Closed => tracing::info!(prefix = %prefix, "circuit closed"),
        }
        if let Some(observer) = &mut self.observer {
            observer(&t.prefix, t.state);
        }
        if self.changes.len() < MAX_PENDING_CHANGES {
            self.changes.push((t.prefix.clone(), t.state));
        }
    }

    /// Records a flight's outcome with its breaker.
    fn record(&mut self, prefix: &[u8], ok: bool, probe: bool, now: Instant) {
        if let Some(t) = self.breakers.record(prefix, ok, probe, now) {
            self.note(&t);
        }
    }

    /// Periodic upkeep (the loop's 1 s tick): drops expired cache entries.
    pub fn tick(&mut self, now: Instant) {
        self.cache.expire(now);
    }

    /// Forgets every flight (shutdown, after the pending requests were answered).
    pub fn clear_flights(&mut self) {
        self.flights.clear();
    }

    /// Every breaker that is not closed, with its state (prefixes sorted).
    pub fn breaker_states(&self) -> Vec<(Bytes, BreakerState)> {
        self.breakers.states()
    }

    /// The state of the breaker of `prefix`.
    pub fn breaker_state(&self, prefix: &[u8]) -> BreakerState {
        self.breakers.state(prefix)
    }

    /// Counters for the metrics.
    pub fn counters(&self) -> ProtectCounters {
        ProtectCounters {
            rate_limited: self.limiter.limited(),
            circuit_refused: self.circuit_refused,
            coalesced: self.flights.coalesced(),
            upstream_requests: self.upstream_requests,
            cache: self.cache.counters(),
            rate_buckets: self.limiter.len() as u64,
            flights: self.flights.len() as u64,
        }
    }
}

/// Breaker state changes kept between two reads by the metrics (a second's worth; beyond it the
/// gauge catches up at the next change of that prefix).
pub const MAX_PENDING_CHANGES: usize = 10_000;

/// The request loop's hooks (in this module so that `lib.rs` only calls them).
impl crate::Server {
    /// Brings the protection metrics up to date (once a second): breaker states and the cache's
    /// counters. (Rate-limited requests are counted as they are refused.)
    pub(crate) fn sync_protect_metrics(&mut self) {
        for (prefix, state) in self.protect.take_breaker_changes() {
            let slot = self.metrics.slot(&prefix);
            let state = match state {
                BreakerState::Closed => crate::metrics::BreakerState::Closed,
                BreakerState::Open => crate::metrics::BreakerState::Open,
                BreakerState::HalfOpen => crate::metrics::BreakerState::HalfOpen,
            };
            self.metrics.breaker_state(slot, state);
        }
        let cache = self.protect.counters().cache;
        self.metrics.cache_totals(cache.hits, cache.misses, cache.bytes);
    }

    /// Answers a request from the cache: `OK` with the cached data frames, under its own
    /// `request_id` and envelope.
    pub(crate) fn answer_from_cache(
        &mut self,
        envelope: Vec<Bytes>,
        request_id: Bytes,
        slot: crate::metrics::Slot,
        data: &[Bytes],
    ) {
        tracing::debug!(request_id = %Id(&request_id), "answered from cache");
        self.metrics.request_outcome(slot, crate::metrics::Outcome::Ok);
        self.summary.count(crate::metrics::Outcome::Ok);
        self.send_reply(envelope, request_id, "OK", data);
    }

    /// Forwards a request through a flight (some protection is on): joins the flight already asking
    /// for the same thing (coalescing), or sends a work message for a new one. Either way the
    /// request becomes pending under its own `request_id`, with its own timeout.
    pub(crate) fn forward_tracked(
        &mut self,
        envelope: Vec<Bytes>,
        request_id: Bytes,
        slot: crate::metrics::Slot,
        prefix: Bytes,
        ticker: Bytes,
        params: Bytes,
    ) {
        let probe = std::mem::take(&mut self.protect.probe_admitted);
        let joined = if probe { None } else { self.protect.flights.join(&request_id, &ticker, &params) };
        match joined {
            Some(upstream) => {
                tracing::debug!(
                    prefix = %String::from_utf8_lossy(&prefix),
                    request_id = %Id(&request_id),
                    upstream = %Id(&upstream),
                    "request coalesced"
                );
            }
            None => {
                let key = (self.protect.flights.coalesces() || self.protect.cache.is_on())
                    .then(|| Key::copied(&ticker, &params));
                let upstream = self.protect.flights.start(&request_id, &prefix, key, probe);
                let work =
                    vec![prefix.clone(), Bytes::from_static(&[TYPE_WORK]), upstream.clone(), ticker, params];
                // PUB semantics, as for an untracked request (B-9).
                if let Err(zmtp::SendError { error, .. }) = self.work.try_send(work) {
                    tracing::warn!(request_id = %Id(&upstream), "work message not sent: {error}");
                }
                self.protect.upstream_requests += 1;
                tracing::debug!(
                    prefix = %String::from_utf8_lossy(&prefix),
                    request_id = %Id(&request_id),
                    upstream = %Id(&upstream),
                    probe,
                    "request forwarded"
                );
            }
        }
        self.pending.insert(request_id, envelope, self.config.request_timeout, slot);
        self.stats.forwarded += 1;
        self.summary.forwarded += 1;
        self.metrics.pending(self.pending.len());
    }

    /// Delivers an ingestor's response to every waiter of its flight (each under its own
    /// `request_id` and envelope): a `PARTIAL` chunk to each (restarting each one's timeout), a final
    /// `OK`/`ERROR` to each, which ends the flight, tells the breaker and caches an `OK` (unless the
    /// response was streamed: its final alone is not the whole). `frames` is the response as
    /// received (`[routing id] 0x02 upstream_id status data…`).
    pub(crate) fn answer_flight(&mut self, frames: &[Bytes], status: Status) {
        let Some(upstream) = frames.get(2) else { return };
        let data = frames.get(4..).unwrap_or_default();
        if status == Status::Partial {
            let waiters = self.protect.flights.chunk(upstream);
            for waiter in waiters {
                let Some(envelope) = self.pending.touch(&waiter, self.config.request_timeout) else {
                    continue;
                };
                let envelope = envelope.to_vec();
                self.deliver_chunk(envelope, &waiter, data);
            }
            return;
        }
        let Some(flight) = self.protect.flights.finish(upstream) else { return };
        let now = Instant::now();
        let ok = status == Status::Ok;
        let status = status.as_str();
        if !flight.failed {
            self.protect.record(&flight.prefix, ok, flight.probe, now);
        }
        if ok && !flight.streamed {
            if let Some(key) = flight.key {
                self.protect.cache.insert(key, data, now);
            }
        }
        tracing::debug!(request_id = %Id(upstream), status = %status, waiters = flight.waiters.len(), "response received");
        for waiter in flight.waiters {
            // Every waiter is pending (a waiter leaves its flight when it times out).
            if let Some((envelope, tag)) = self.pending.take(&waiter) {
                let outcome = if ok { crate::metrics::Outcome::Ok } else { crate::metrics::Outcome::Error };
                self.stats.answered += 1;
                self.metrics.answered(tag.slot, outcome, tag.forwarded.elapsed());
                self.summary.count(outcome);
                self.deliver_final(envelope, waiter, status, data);
            }
        }
        self.metrics.pending(self.pending.len());
    }

    /// A pending request timed out: it leaves its flight, and the flight's first timeout counts as
    /// one failure for its breaker.
    pub(crate) fn flight_timed_out(&mut self, request_id: &[u8]) {
        if self.protect.flights.is_empty() {
            return;
        }
        if let Some(left) = self.protect.flights.leave(request_id) {
            if left.first_failure {
                self.protect.record(&left.prefix, false, left.probe, Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn off_by_default_and_reconfigured_live_with_the_observer_told() {
        let off = ProtectSettings::from_config(&Config::default());
        let mut p = Protect::new(&off);
        assert!(!p.is_tracking());
        let prefix = Bytes::from_static(b"BINANCE:");
        assert_eq!(p.circuit_open(&prefix, Instant::now()), None);
        assert_eq!(p.cached(&Bytes::from_static(b"A:B"), &Bytes::new(), Instant::now()), None);
        assert_eq!(p.counters(), ProtectCounters::default());

        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        p.on_breaker_change(move |prefix, state| log.lock().unwrap().push((prefix.to_vec(), state)));
        let config =
            Config { breaker_failures: 1, breaker_open: Duration::from_secs(5), ..Config::default() };
        p.reconfigure(&ProtectSettings::from_config(&config));
        assert!(p.is_tracking());
        p.record(&prefix, false, false, Instant::now());
        assert_eq!(p.breaker_state(&prefix), BreakerState::Open);
        assert_eq!(p.circuit_open(&prefix, Instant::now()).as_deref(), Some("circuit open for BINANCE:"));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(p.circuit_open(&prefix, Instant::now()), None, "the probe");
        assert!(std::mem::take(&mut p.probe_admitted));
        p.record(&prefix, true, true, Instant::now());
        // Turning breakers off while one is open closes it, and the observer hears of it.
        p.record(&prefix, false, false, Instant::now());
        p.reconfigure(&off);
        assert!(!p.is_tracking());
        let states: Vec<BreakerState> = seen.lock().unwrap().iter().map(|(_, s)| *s).collect();
        use BreakerState::*;
        assert_eq!(states, [Open, HalfOpen, Closed, Open, Closed]);
        assert_eq!(p.counters().circuit_refused, 1);
    }
}
