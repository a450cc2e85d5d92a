//! The relay's metrics (`docs/relay-protocol.md` §7), with the `prometheus-client` crate: one
//! [`Registry`] per relay, read by the admin endpoint ([`crate::admin`]).
//!
//! Two handles share it. [`Observer`] (shared, `Arc`) is what the sockets' monitor tasks, the
//! market-data proxy and the admin endpoint touch: peers, handshake failures, upstream, readiness.
//! [`Metrics`] is owned by the request loop: requests by exchange prefix and outcome, latency, pending,
//! drops, and the counters of the protection features (breaker, cache, rate limit).
//!
//! The request path stays cheap: each prefix's counters are resolved once, when the prefix is first
//! seen, into a [`Slot`] (a small index) kept in a map owned by the loop, so counting a request is a
//! hash lookup and an atomic add, with no allocation. Prefixes are client-chosen text: at most
//! [`MAX_PREFIX_LABELS`] get a label of their own, later ones are counted under `other`.
//!
//! ```
//! use relay::metrics::{Metrics, Observer, Outcome};
//! let observer = Observer::new(false);
//! let mut metrics = Metrics::new(observer.clone());
//! let slot = metrics.slot(b"BINANCE:");
//! metrics.request_outcome(slot, Outcome::Unavailable);
//! let text = observer.encode();
//! assert!(text.contains(r#"relay_requests_total{prefix="BINANCE:",outcome="unavailable"} 1"#));
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use zmtp::{HandshakeFailure, Socket};

use crate::logging::DropKind;

mod labels;
use labels::{drop_kind_label, DROP_KINDS};
pub use labels::{BreakerState, HandshakeReason, Outcome, Port};

/// Most exchange prefixes labelled on their own; requests for later ones count under `other`.
pub const MAX_PREFIX_LABELS: usize = 256;

/// The label of requests whose prefix is unknown (a `BAD_REQUEST` before the ticker was read).
pub const NO_PREFIX: &str = "none";
/// The label of the prefixes beyond [`MAX_PREFIX_LABELS`].
pub const OTHER_PREFIX: &str = "other";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrefixOutcome {
    prefix: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrefixLabel {
    prefix: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabel {
    port: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortReason {
    port: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// What the shared handle holds: the registry and the metrics touched outside the request loop.
#[derive(Debug)]
struct Shared {
    registry: Registry,
    requests: Family<PrefixOutcome, Counter>,
    breaker: Family<PrefixLabel, Gauge>,
    duration: Histogram,
    pending: Gauge,
    not_pending: Counter,
    drops: [Counter; DROP_KINDS.len()],
    rate_limited: Counter,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_bytes: Gauge,
    peers: [Gauge; Port::ALL.len()],
    handshake_failures: Family<PortReason, Counter>,
    upstream_connected: Gauge,
    /// Readiness: which ports are bound, whether the upstream must be connected, shutdown begun.
    bound: [AtomicBool; Port::ALL.len()],
    upstream_required: bool,
    shutting_down: AtomicBool,
    scrape: Arc<ScrapeTime>,
}

/// The relay's shared metrics and readiness state: cheap to clone, safe from any task.
#[derive(Debug, Clone)]
pub struct Observer {
    shared: Arc<Shared>,
}

impl Observer {
    /// A registry with every family registered (all at zero). `upstream_required`: whether `/readyz`
    /// waits for the upstream (see [`Observer::readiness`]).
    pub fn new(upstream_required: bool) -> Observer {
        let mut registry = Registry::default();
        let requests = Family::<PrefixOutcome, Counter>::default();
        registry.register(
            "relay_requests",
            "Client requests by exchange prefix and outcome (the status the client got)",
            requests.clone(),
        );
        // 0.5 ms to ~33 s, doubling: the relay's own hop is sub-millisecond, an exchange is seconds.
        let duration = Histogram::new(exponential_buckets(0.0005, 2.0, 17));
        registry.register_with_unit(
            "relay_request_duration",
            "Time from forwarding a request to the ingestor's OK or ERROR",
            Unit::Seconds,
            duration.clone(),
        );
        let pending = Gauge::default();
        registry.register("relay_pending_requests", "Requests waiting for an ingestor", pending.clone());
        let not_pending = Counter::default();
        registry.register(
            "relay_responses_not_pending",
            "Ingestor responses for no pending request (late, or a second ingestor's), dropped",
            not_pending.clone(),
        );
        let drop_family = Family::<KindLabel, Counter>::default();
        registry.register("relay_dropped_messages", "Messages dropped, by kind", drop_family.clone());
        let drops =
            DROP_KINDS.map(|k| drop_family.get_or_create(&KindLabel { kind: drop_kind_label(k) }).clone());
        let rate_limited = Counter::default();
        registry.register(
            "relay_rate_limited_requests",
            "Requests answered RATE_LIMITED by the per-client rate limit",
            rate_limited.clone(),
        );
        let breaker = Family::<PrefixLabel, Gauge>::default();
        registry.register(
            "relay_breaker_state",
            "Circuit breaker per exchange prefix: 0 closed, 1 open, 2 half-open",
            breaker.clone(),
        );
        let (cache_hits, cache_misses, cache_bytes) =
            (Counter::default(), Counter::default(), Gauge::default());
        registry.register(
            "relay_cache_hits",
            "Requests answered from the response cache",
            cache_hits.clone(),
        );
        registry.register("relay_cache_misses", "Cacheable requests not in the cache", cache_misses.clone());
        registry.register_with_unit(
            "relay_cache",
            "Size of the responses held in the cache",
            Unit::Bytes,
            cache_bytes.clone(),
        );
        let peer_family = Family::<PortLabel, Gauge>::default();
        registry.register("relay_peers", "Peers connected (handshake done), per port", peer_family.clone());
        let peers = Port::ALL.map(|p| peer_family.get_or_create(&PortLabel { port: p.as_str() }).clone());
        let handshake_failures = Family::<PortReason, Counter>::default();
        registry.register(
            "relay_handshake_failures",
            "Connections that failed the ZMTP handshake, per port and reason",
            handshake_failures.clone(),
        );
        let upstream_connected = Gauge::default();
        registry.register(
            "relay_upstream_connected",
            "1 while the market-data source is connected (or, when the relay binds it, a source is)",
            upstream_connected.clone(),
        );
        registry.register(
            "relay_build",
            "The relay's version",
            Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION") }),
        );
        let scrape = Arc::new(ScrapeTime::default());
        registry.register_collector(Box::new(ScrapeCollector(scrape.clone())));
        Observer {
            shared: Arc::new(Shared {
                registry,
                requests,
                breaker,
                duration,
                pending,
                not_pending,
                drops,
                rate_limited,
                cache_hits,
                cache_misses,
                cache_bytes,
                peers,
                handshake_failures,
                upstream_connected,
                bound: Default::default(),
                upstream_required,
                shutting_down: AtomicBool::new(false),
                scrape,
            }),
        }
    }

    /// The metrics in the Prometheus text format (version 0.0.4), ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.shared.registry);
        out
    }

    /// The handles of one port's monitor: peers and handshake failures.
    pub fn port(&self, port: Port) -> PortMetrics {
        PortMetrics {
            upstream: (port == Port::MarketDataIn).then(|| self.shared.upstream_connected.clone()),
            peers: self.shared.peers[port as usize].clone(),
            failures: HandshakeReason::ALL.map(|r| {
                self.shared
                    .handshake_failures
                    .get_or_create(&PortReason { port: port.as_str(), reason: r.as_str() })
                    .clone()
            }),
        }
    }

    /// Records that `port` is bound (for `/readyz`).
    pub fn port_bound(&self, port: Port) {
        self.shared.bound[port as usize].store(true, Ordering::Relaxed);
    }

    /// Sets `relay_upstream_connected`.
    pub fn upstream_connected(&self, connected: bool) {
        self.shared.upstream_connected.set(i64::from(connected));
    }

    /// Marks the relay as shutting down: `/readyz` answers 503 from now on.
    pub fn shutting_down(&self) {
        self.shared.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Gives the scrape-time collector the two XPUBs, whose subscriptions it counts at each scrape.
    pub fn watch_subscriptions(&self, work: &Socket, market: &Socket) {
        let _ = self.shared.scrape.work.set(work.clone());
        let _ = self.shared.scrape.market.set(market.clone());
    }

    /// Where the market-data proxy's counters are stored before a scrape ([`MarketCounts::store`]).
    pub fn market_counts(&self) -> &MarketCounts {
        &self.shared.scrape.market_counts
    }

    /// `Ok(())` when ready (every port bound; the upstream connected unless optional, or bound when
    /// the relay binds it; not shutting down), else what is missing, one item per line.
    ///
    /// # Errors
    ///
    /// The list of what is missing, for the 503 body.
    pub fn readiness(&self) -> Result<(), String> {
        let s = &self.shared;
        let mut missing = Vec::new();
        if s.shutting_down.load(Ordering::Relaxed) {
            missing.push("shutting down".to_owned());
        }
        for port in Port::ALL {
            if !s.bound[port as usize].load(Ordering::Relaxed) {
                missing.push(format!("not bound: {}", port.key()));
            }
        }
        if s.upstream_required && s.upstream_connected.get() == 0 {
            missing.push("upstream not connected: flink_market_data_endpoint".to_owned());
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("\n"))
        }
    }
}

/// One port's peer gauge and handshake-failure counters, for its monitor task.
#[derive(Debug, Clone)]
pub struct PortMetrics {
    peers: Gauge,
    /// For the upstream port: `relay_upstream_connected`, 1 while a peer is connected.
    upstream: Option<Gauge>,
    failures: [Counter; HandshakeReason::ALL.len()],
}

impl PortMetrics {
    /// A peer finished its handshake.
    pub fn peer_connected(&self) {
        self.peers.inc();
        self.update_upstream();
    }

    fn update_upstream(&self) {
        if let Some(upstream) = &self.upstream {
            upstream.set(i64::from(self.peers.get() > 0));
        }
    }

    /// A connected peer went away. (Monitor events may be lost under a flood: never below zero.)
    pub fn peer_disconnected(&self) {
        if self.peers.dec() <= 0 {
            self.peers.set(0);
        }
        self.update_upstream();
    }

    /// Peers connected now.
    pub fn peers(&self) -> i64 {
        self.peers.get()
    }

    /// A handshake failed.
    pub fn handshake_failed(&self, failure: &HandshakeFailure) {
        self.failures[HandshakeReason::of(failure) as usize].inc();
    }
}

/// The market-data proxy's counts, refreshed by the admin endpoint before each scrape.
#[derive(Debug, Default)]
pub struct MarketCounts {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    subscriptions_up: AtomicU64,
}

impl MarketCounts {
    /// Stores the proxy's totals: messages and bytes from the upstream, messages handed to the
    /// subscribers' XPUB, subscription messages sent upstream.
    pub fn store(&self, messages_in: u64, bytes_in: u64, messages_out: u64, subscriptions_up: u64) {
        self.messages_in.store(messages_in, Ordering::Relaxed);
        self.bytes_in.store(bytes_in, Ordering::Relaxed);
        self.messages_out.store(messages_out, Ordering::Relaxed);
        self.subscriptions_up.store(subscriptions_up, Ordering::Relaxed);
    }
}

/// What is read at scrape time rather than counted: subscriptions, the proxy's counters.
#[derive(Debug, Default)]
struct ScrapeTime {
    work: OnceLock<Socket>,
    market: OnceLock<Socket>,
    market_counts: MarketCounts,
}

#[derive(Debug)]
struct ScrapeCollector(Arc<ScrapeTime>);

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let ports = [(Port::IngestorWork, s.work.get()), (Port::MarketDataOut, s.market.get())];
        let mut topics = Vec::new();
        let mut pairs = Vec::new();
        for (port, socket) in ports {
            let subs = socket.and_then(Socket::subscriptions).unwrap_or_default();
            topics.push((port, subs.len() as i64));
            pairs.push((port, subs.iter().map(|(_, n)| *n as i64).sum::<i64>()));
        }
        for (name, help, values) in [
            (
                "relay_subscriptions",
                "Subscriptions held by connected peers (topic × peer), per XPUB port",
                pairs,
            ),
            ("relay_subscription_topics", "Distinct topics subscribed, per XPUB port", topics),
        ] {
            let mut family =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
            for (port, value) in values {
                ConstGauge::new(value).encode(family.encode_family(&PortLabel { port: port.as_str() })?)?;
            }
        }
        let m = &s.market_counts;
        for (name, help, value) in [
            (
                "relay_market_data_messages_in",
                "Market-data messages received from the upstream",
                &m.messages_in,
            ),
            ("relay_market_data_bytes_in", "Market-data bytes received from the upstream", &m.bytes_in),
            (
                "relay_market_data_messages_out",
                "Market-data messages published to subscribers (each goes to every matching subscriber)",
                &m.messages_out,
            ),
            (
                "relay_market_data_subscriptions_up",
                "Subscription messages forwarded to the upstream",
                &m.subscriptions_up,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        Ok(())
    }
}

/// A prefix's label slot, from [`Metrics::slot`]: what a pending request remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot(u16);

/// The slot of requests without a prefix ([`NO_PREFIX`]).
pub const NO_PREFIX_SLOT: Slot = Slot(0);
const OTHER_SLOT: Slot = Slot(1);

#[derive(Debug)]
struct PrefixHandles {
    label: String,
    outcomes: [Counter; Outcome::ALL.len()],
}

/// The request loop's metrics handle (one per relay, not shared).
#[derive(Debug)]
pub struct Metrics {
    observer: Observer,
    slots: HashMap<Bytes, Slot>,
    handles: Vec<PrefixHandles>,
}

impl Metrics {
    /// The request loop's handle on `observer`'s registry.
    pub fn new(observer: Observer) -> Metrics {
        let mut metrics = Metrics { observer, slots: HashMap::new(), handles: Vec::new() };
        metrics.add_handles(NO_PREFIX.to_owned());
        metrics.add_handles(OTHER_PREFIX.to_owned());
        metrics
    }

    fn add_handles(&mut self, label: String) -> Slot {
        let family = &self.observer.shared.requests;
        let outcomes = Outcome::ALL.map(|o| {
            family.get_or_create(&PrefixOutcome { prefix: label.clone(), outcome: o.as_str() }).clone()
        });
        self.handles.push(PrefixHandles { label, outcomes });
        Slot((self.handles.len() - 1) as u16)
    }

    /// The shared handle.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// The slot of an exchange prefix (`BINANCE:`): its own label for the first
    /// [`MAX_PREFIX_LABELS`] prefixes seen, `other` after. Allocates only the first time a prefix is
    /// seen.
    pub fn slot(&mut self, prefix: &[u8]) -> Slot {
        if let Some(slot) = self.slots.get(prefix) {
            return *slot;
        }
        if self.slots.len() >= MAX_PREFIX_LABELS {
            return OTHER_SLOT;
        }
        let slot = self.add_handles(label_value(prefix));
        self.slots.insert(Bytes::copy_from_slice(prefix), slot);
        slot
    }

    /// The label of a slot (`none`, `other` or the prefix, sanitised).
    pub fn label(&self, slot: Slot) -> &str {
        self.handles.get(slot.0 as usize).map_or(OTHER_PREFIX, |h| h.label.as_str())
    }

    /// Counts a request's outcome (the reply the client was sent).
    pub fn request_outcome(&self, slot: Slot, outcome: Outcome) {
        if let Some(h) = self.handles.get(slot.0 as usize) {
            h.outcomes[outcome as usize].inc();
        }
    }

    /// Counts an ingestor's answer (`Ok` or `Error`) and its latency since the request was forwarded.
    pub fn answered(&self, slot: Slot, outcome: Outcome, latency: Duration) {
        self.request_outcome(slot, outcome);
        self.observer.shared.duration.observe(latency.as_secs_f64());
    }

    /// Sets the pending-requests gauge.
    pub fn pending(&self, n: usize) {
        self.observer.shared.pending.set(n as i64);
    }

    /// Counts `n` dropped messages of `kind` (and a response not pending in its own counter too).
    pub fn dropped(&self, kind: DropKind, n: u64) {
        let s = &self.observer.shared;
        if let Some(i) = DROP_KINDS.iter().position(|k| *k == kind) {
            s.drops[i].inc_by(n);
        }
        if kind == DropKind::ResponseNotPending {
            s.not_pending.inc_by(n);
        }
    }

    /// Counts a request refused by the rate limit (`relay_rate_limited_requests_total`). Count its
    /// reply with [`Metrics::request_outcome`] too ([`Outcome::RateLimited`]), so that
    /// `relay_requests_total` stays "every reply sent".
    pub fn rate_limited(&self) {
        self.observer.shared.rate_limited.inc();
    }

    /// Sets the breaker state of the prefix of `slot` (`relay_breaker_state{prefix}`).
    pub fn breaker_state(&self, slot: Slot, state: BreakerState) {
        let prefix = self.label(slot).to_owned();
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.observer.shared.breaker.get_or_create(&PrefixLabel { prefix }).set(value);
    }

    /// Counts a request answered from the response cache.
    pub fn cache_hit(&self) {
        self.observer.shared.cache_hits.inc();
    }

    /// Counts a cacheable request that was not in the cache.
    pub fn cache_miss(&self) {
        self.observer.shared.cache_misses.inc();
    }

    /// Sets the bytes the response cache holds.
    pub fn cache_bytes(&self, bytes: u64) {
        self.observer.shared.cache_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

/// A prefix as a label value: UTF-8 (lossy), with `"`, `\` and control characters replaced by `_`
/// (prometheus-client writes label values as given).
fn label_value(prefix: &[u8]) -> String {
    String::from_utf8_lossy(prefix)
        .chars()
        .map(|c| if c == '"' || c == '\\' || c.is_control() { '_' } else { c })
        .collect()
}

/// Runs a slot-holding closure: the counters' shared state, for tests.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefixes_beyond_the_cap_count_as_other() {
        let observer = Observer::new(false);
        let mut metrics = Metrics::new(observer.clone());
        for i in 0..MAX_PREFIX_LABELS + 10 {
            let slot = metrics.slot(format!("EX{i}:").as_bytes());
            metrics.request_outcome(slot, Outcome::Ok);
        }
        let text = observer.encode();
        assert!(text.contains(r#"relay_requests_total{prefix="EX0:",outcome="ok"} 1"#), "{text}");
        assert!(text.contains(r#"relay_requests_total{prefix="other",outcome="ok"} 10"#), "{text}");
        assert!(!text.contains(&format!("EX{}:", MAX_PREFIX_LABELS + 1)));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value(b"A\"B\\C\nD:"), "A_B_C_D:");
        let observer = Observer::new(false);
        let mut metrics = Metrics::new(observer.clone());
        let slot = metrics.slot(b"X\"}\n:");
        metrics.request_outcome(slot, Outcome::Timeout);
        assert!(observer.encode().contains(r#"prefix="X_}_:",outcome="timeout"} 1"#));
    }

    #[test]
    fn every_family_is_exported_with_conventional_names() {
        let observer = Observer::new(true);
        let mut metrics = Metrics::new(observer.clone());
        let slot = metrics.slot(b"BINANCE:");
        metrics.answered(slot, Outcome::Ok, Duration::from_millis(3));
        metrics.dropped(DropKind::ResponseNotPending, 2);
        metrics.breaker_state(slot, BreakerState::HalfOpen);
        metrics.cache_bytes(10);
        let text = observer.encode();
        for needle in [
            "relay_request_duration_seconds_count 1",
            "relay_responses_not_pending_total 2",
            r#"relay_dropped_messages_total{kind="response_not_pending"} 2"#,
            r#"relay_breaker_state{prefix="BINANCE:"} 2"#,
            "relay_cache_bytes 10",
            r#"relay_build_info{version=""#,
            r#"relay_peers{port="clients"} 0"#,
            r#"relay_subscriptions{port="ingestor_work"} 0"#,
            "relay_market_data_messages_in_total 0",
            "relay_upstream_connected 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn readiness_names_what_is_missing() {
        let observer = Observer::new(true);
        let missing = observer.readiness().unwrap_err();
        assert!(missing.contains("client_request_port") && missing.contains("upstream"), "{missing}");
        for port in Port::ALL {
            observer.port_bound(port);
        }
        assert_eq!(observer.readiness().unwrap_err(), "upstream not connected: flink_market_data_endpoint");
        observer.upstream_connected(true);
        assert_eq!(observer.readiness(), Ok(()));
        observer.shutting_down();
        assert!(observer.readiness().is_err());
        let optional = Observer::new(false);
        Port::ALL.into_iter().for_each(|p| optional.port_bound(p));
        assert_eq!(optional.readiness(), Ok(()));
    }

    #[test]
    fn handshake_reasons_are_classified() {
        let closed = HandshakeFailure::NoDetail(zmtp::DisconnectReason::Local);
        assert_eq!(HandshakeReason::of(&closed), HandshakeReason::Closed);
        assert_eq!(HandshakeReason::of(&HandshakeFailure::Auth { status: 400 }), HandshakeReason::Auth);
        let observer = Observer::new(false);
        let port = observer.port(Port::Clients);
        port.handshake_failed(&HandshakeFailure::Auth { status: 400 });
        port.peer_connected();
        port.peer_disconnected();
        port.peer_disconnected();
        assert_eq!(port.peers(), 0);
        let text = observer.encode();
        assert!(text.contains(r#"relay_handshake_failures_total{port="clients",reason="auth"} 1"#), "{text}");
    }
}
