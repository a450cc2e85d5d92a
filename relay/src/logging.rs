//! Logging: the `tracing` subscriber (text or JSON on stderr, `RUST_LOG`), how request ids are shown,
//! and rate-limited counters for drops and for peers refused at the handshake.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset: the relay's lines, and the zmtp library's warnings (among them
/// each peer refused at the handshake, with its address and the reason).
pub const DEFAULT_FILTER: &str = "relay=info,zmtp=warn";

/// The environment variable that overrides `log_format` (`text` or `json`).
pub const LOG_FORMAT_ENV: &str = "RELAY_LOG_FORMAT";

/// `format`, unless [`LOG_FORMAT_ENV`] says `text` or `json` (another value is reported and ignored).
pub fn format_from_env(format: LogFormat) -> LogFormat {
    match std::env::var(LOG_FORMAT_ENV) {
        Ok(v) if v.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
        Ok(v) if v.trim().eq_ignore_ascii_case("text") => LogFormat::Text,
        Ok(v) if !v.trim().is_empty() => {
            eprintln!("relay: ignoring {LOG_FORMAT_ENV}={v:?} (expected text or json)");
            format
        }
        _ => format,
    }
}

/// Installs the global subscriber: `RUST_LOG` (default [`DEFAULT_FILTER`]), lines on stderr, as text or
/// JSON (`format`, overridden by [`LOG_FORMAT_ENV`]). An invalid `RUST_LOG` is reported and the default
/// is used.
pub fn init(format: LogFormat) {
    let format = format_from_env(format);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("relay: ignoring RUST_LOG={spec:?} ({e}); using {DEFAULT_FILTER}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = installed {
        eprintln!("relay: logging already initialised: {e}");
    }
}

/// How often the request summary is logged at `info`.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Requests by outcome since the last summary line: the per-request lines are at `debug`, and this
/// line (`requests forwarded=… ok=… error=… timeout=… … secs=60`) is what `info` shows of the
/// traffic, every [`SUMMARY_INTERVAL`] (and at shutdown) when there was any.
#[derive(Debug)]
pub struct Summary {
    /// Requests forwarded to ingestors.
    pub forwarded: u64,
    outcomes: [u64; crate::metrics::Outcome::ALL.len()],
    since: Instant,
}

impl Default for Summary {
    fn default() -> Summary {
        Summary { forwarded: 0, outcomes: Default::default(), since: Instant::now() }
    }
}

impl Summary {
    /// Counts one reply.
    pub fn count(&mut self, outcome: crate::metrics::Outcome) {
        self.outcomes[outcome as usize] += 1;
    }

    /// Logs the counts since the last line if there are any, and starts over.
    pub fn flush(&mut self, pending: usize) {
        if self.forwarded == 0 && self.outcomes.iter().all(|n| *n == 0) {
            return;
        }
        let [ok, error, timeout, bad_request, duplicate, overloaded, unavailable, rate_limited] =
            self.outcomes;
        tracing::info!(
            target: "relay",
            forwarded = self.forwarded,
            ok,
            error,
            timeout,
            bad_request,
            duplicate,
            overloaded,
            unavailable,
            rate_limited,
            pending,
            secs = self.since.elapsed().as_secs(),
            "requests"
        );
        *self = Summary::default();
    }
}

/// Shows a request id as text when it is printable ASCII, otherwise as hex (`0x…`).
#[derive(Clone, Copy)]
pub struct Id<'a>(pub &'a [u8]);

impl fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() && self.0.iter().all(|b| (0x20..0x7f).contains(b)) {
            // Printable ASCII is valid UTF-8.
            f.write_str(std::str::from_utf8(self.0).map_err(|_| fmt::Error)?)
        } else {
            f.write_str("0x")?;
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
}

impl fmt::Debug for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a message was dropped: each kind is counted and logged at `warn` at most once a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropKind {
    /// A client message without the empty delimiter frame.
    NoDelimiter,
    /// A client message with more frames before the delimiter than allowed.
    EnvelopeTooDeep,
    /// A client message with a frame before the delimiter too long to be a routing id.
    BadEnvelope,
    /// An ingestor response for a request that is not pending.
    ResponseNotPending,
    /// An ingestor response that breaks the contract.
    MalformedResponse,
    /// A reply to a client that has disconnected.
    ClientGone,
    /// A reply to a client whose queue is full.
    ClientQueueFull,
    /// A work message to an ingestor whose queue is full (that ingestor misses the request).
    IngestorQueueFull,
    /// A market-data message to a subscriber whose queue is full.
    SubscriberQueueFull,
}

impl DropKind {
    /// The name used in log lines (`kind=`).
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::NoDelimiter => "no delimiter",
            DropKind::EnvelopeTooDeep => "envelope too deep",
            DropKind::BadEnvelope => "bad envelope",
            DropKind::ResponseNotPending => "response not pending",
            DropKind::MalformedResponse => "malformed response",
            DropKind::ClientGone => "client gone",
            DropKind::ClientQueueFull => "client queue full",
            DropKind::IngestorQueueFull => "ingestor queue full",
            DropKind::SubscriberQueueFull => "subscriber queue full",
        }
    }
}

/// A count logged at most once per [`DROP_LOG_INTERVAL`], with the count since the last line: what
/// [`Drops`] and [`Refusals`] keep per kind.
#[derive(Debug, Default)]
struct RateLimitedCount {
    total: u64,
    unlogged: u64,
    last_logged: Option<Instant>,
}

impl RateLimitedCount {
    /// Adds `n`; `Some(count since the last line)` when a line is due now.
    fn add(&mut self, n: u64) -> Option<u64> {
        let now = Instant::now();
        self.total += n;
        self.unlogged += n;
        if self.last_logged.is_none_or(|t| now.duration_since(t) >= DROP_LOG_INTERVAL) {
            self.last_logged = Some(now);
            return Some(std::mem::take(&mut self.unlogged));
        }
        None
    }

    /// `Some(count not yet logged)` if there is any (a line is then due).
    fn take_unlogged(&mut self) -> Option<u64> {
        if self.unlogged == 0 {
            return None;
        }
        self.last_logged = Some(Instant::now());
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Drop counters, logged at `warn` at most once per second per kind with the count since the last line.
#[derive(Debug, Default)]
pub struct Drops {
    kinds: HashMap<DropKind, RateLimitedCount>,
}

/// How often, at most, one kind of drop is logged.
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

impl Drops {
    /// Counts one drop of `kind`; `detail` (e.g. the request id) is logged with it when a line is due.
    pub fn count(&mut self, kind: DropKind, detail: impl fmt::Display) {
        self.count_many(kind, 1, detail);
    }

    /// Counts `n` drops of `kind` (e.g. read from a publisher's counter).
    pub fn count_many(&mut self, kind: DropKind, n: u64, detail: impl fmt::Display) {
        if n == 0 {
            return;
        }
        let c = self.kinds.entry(kind).or_default();
        if let Some(count) = c.add(n) {
            tracing::warn!(target: "relay", kind = kind.as_str(), count, total = c.total, last = %detail, "dropped");
        }
    }

    /// Logs the drops not yet logged (every [`DROP_LOG_INTERVAL`], and at shutdown).
    pub fn flush(&mut self) {
        for (kind, c) in &mut self.kinds {
            if let Some(count) = c.take_unlogged() {
                tracing::warn!(target: "relay", kind = kind.as_str(), count, total = c.total, "dropped");
            }
        }
    }

    /// Total drops of `kind` so far.
    pub fn total(&self, kind: DropKind) -> u64 {
        self.kinds.get(&kind).map_or(0, |c| c.total)
    }
}

/// The roles whose peers' authentication refusals are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerRole {
    /// Clients, on the client ROUTER.
    Clients,
    /// Ingestors, on the work XPUB and the response ROUTER.
    Ingestors,
    /// Market-data subscribers, on the market-data XPUB.
    Subscribers,
    /// The market-data source: it refused the relay (the XSUB connects), or was refused by it (the
    /// XSUB binds).
    Upstream,
}

impl PeerRole {
    /// Every role, in the order of [`RefusalCounters`].
    pub const ALL: [PeerRole; 4] =
        [PeerRole::Clients, PeerRole::Ingestors, PeerRole::Subscribers, PeerRole::Upstream];

    /// The name used in log lines (`role=`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Clients => "clients",
            PeerRole::Ingestors => "ingestors",
            PeerRole::Subscribers => "subscribers",
            PeerRole::Upstream => "upstream",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Authentication refusals counted by the sockets' monitor tasks, per role, and the last reason; the
/// request loop reads them once a second into its [`Refusals`] (as it reads the publishers' drop
/// counters).
#[derive(Debug, Default)]
pub struct RefusalCounters {
    counts: [AtomicU64; 4],
    last_reason: Mutex<[Option<String>; 4]>,
}

impl RefusalCounters {
    /// Counts one refused peer of `role`.
    pub fn count(&self, role: PeerRole, reason: impl fmt::Display) {
        let mut last = self.last_reason.lock().unwrap_or_else(|e| e.into_inner());
        last[role.index()] = Some(reason.to_string());
        self.counts[role.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refused peers of `role` so far.
    pub fn get(&self, role: PeerRole) -> u64 {
        self.counts[role.index()].load(Ordering::Relaxed)
    }

    /// The reason of the last refusal of `role`.
    pub fn last_reason(&self, role: PeerRole) -> Option<String> {
        self.last_reason.lock().unwrap_or_else(|e| e.into_inner())[role.index()].clone()
    }
}

/// Authentication refusals per role, logged at `warn` at most once per second per role with the count
/// since the last line (`auth refused role=clients count=1 total=3 last=<reason>`).
#[derive(Debug, Default)]
pub struct Refusals {
    roles: HashMap<PeerRole, RateLimitedCount>,
}

impl Refusals {
    /// Counts `n` refusals of `role`; `last` (the last reason) is logged with them when a line is due.
    pub fn count_many(&mut self, role: PeerRole, n: u64, last: impl fmt::Display) {
        if n == 0 {
            return;
        }
        let c = self.roles.entry(role).or_default();
        if let Some(count) = c.add(n) {
            tracing::warn!(target: "relay", role = role.as_str(), count, total = c.total, last = %last, "auth refused");
        }
    }

    /// Logs the refusals not yet logged (every [`DROP_LOG_INTERVAL`], and at shutdown).
    pub fn flush(&mut self) {
        for (role, c) in &mut self.roles {
            if let Some(count) = c.take_unlogged() {
                tracing::warn!(target: "relay", role = role.as_str(), count, total = c.total, "auth refused");
            }
        }
    }

    /// Total refusals of `role` so far.
    pub fn total(&self, role: PeerRole) -> u64 {
        self.roles.get(&role).map_or(0, |c| c.total)
    }
}

/// Lets through at most `per_second` events a second and counts the rest, for log lines a peer can
/// trigger at will.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl RateLimit {
    /// A limiter letting `per_second` events through per second.
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit { per_second, window_start: None, in_window: 0, suppressed: 0 }
    }

    /// `Some(suppressed since the last allowed event)` if this event may be logged, `None` if not.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.window_start.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window < self.per_second {
            self.in_window += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_show_as_text_or_hex() {
        assert_eq!(Id(b"abc-1").to_string(), "abc-1");
        assert_eq!(Id(b"a\nb").to_string(), "0x610a62");
        assert_eq!(Id(b"").to_string(), "0x");
        assert_eq!(Id(&[0xff]).to_string(), "0xff");
    }

    #[test]
    fn rate_limit_counts_what_it_suppresses() {
        let mut limit = RateLimit::new(2);
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.suppressed, 2);
    }

    #[test]
    fn refusals_are_counted_per_role() {
        let counters = RefusalCounters::default();
        counters.count(PeerRole::Clients, "authentication refused (status 400)");
        counters.count(PeerRole::Clients, "second");
        counters.count(PeerRole::Upstream, "x");
        assert_eq!(counters.get(PeerRole::Clients), 2);
        assert_eq!(counters.get(PeerRole::Ingestors), 0);
        assert_eq!(counters.last_reason(PeerRole::Clients).as_deref(), Some("second"));
        let mut refusals = Refusals::default();
        refusals.count_many(PeerRole::Clients, 2, "second");
        refusals.count_many(PeerRole::Clients, 1, "third");
        refusals.flush();
        assert_eq!(refusals.total(PeerRole::Clients), 3);
        assert_eq!(refusals.total(PeerRole::Subscribers), 0);
    }

    #[test]
    fn a_count_is_logged_at_most_once_per_interval() {
        let mut c = RateLimitedCount::default();
        assert_eq!(c.add(2), Some(2));
        assert_eq!(c.add(1), None);
        assert_eq!(c.add(4), None);
        assert_eq!(c.take_unlogged(), Some(5));
        assert_eq!(c.take_unlogged(), None);
        assert_eq!(c.total, 7);
    }

    #[test]
    fn drops_are_counted_per_kind() {
        let mut drops = Drops::default();
        drops.count(DropKind::ClientGone, "a");
        drops.count(DropKind::ClientGone, "b");
        assert_eq!(drops.total(DropKind::ClientGone), 2);
        assert_eq!(drops.total(DropKind::NoDelimiter), 0);
    }
}
