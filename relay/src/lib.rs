//! The relay: the one bind point between clients asking for historical market data, the ingestors that
//! fetch it, and the live market-data source. `docs/relay-protocol.md` is the wire contract.
//!
//! [`Relay::bind`] validates nothing (that is [`Config`]'s job) but binds every port, so a port in use is
//! reported before anything runs; [`Relay::run`] then serves until the shutdown future completes:
//!
//! ```no_run
//! # async fn demo() -> Result<(), relay::RunError> {
//! let config = relay::Config::default();
//! let relay = relay::Relay::bind(&config).await?;
//! let stats = relay.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! println!("{stats:?}");
//! # Ok(()) }
//! ```
//!
//! Requests run on one task that owns the [`PendingTable`]; the market-data proxy and the monitors that
//! log peers' protocol errors (and count the peers refused at authentication) run on their own tasks.
//!
//! Ports may require CURVE or PLAIN ([`security`]); [`Relay::bind`] reads the key files the
//! configuration names before binding anything.

pub mod admin;
mod alloc;
pub mod config;
pub mod healthcheck;
pub mod logging;
pub mod market;
pub mod metrics;
pub mod protect;
pub mod reload;
pub mod requests;
pub mod security;
pub mod stream;

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use zmtp::proto::ProtocolError;
use zmtp::{Error, HandshakeFailure, Msg, Options, SendError, Socket, SocketEventKind, SocketType};

pub use config::{Config, ConfigError, ConfigSource, FileFormat, LogFormat};
use logging::{DropKind, Drops, Id, PeerRole, RateLimit, RefusalCounters, Refusals, Summary};
use metrics::{Metrics, Observer, Outcome, Port, PortMetrics, Slot, NO_PREFIX_SLOT};
pub use reload::{ReloadOutcome, Reloader};
pub use requests::PendingTable;
use requests::{parse_request, parse_response, reply, Request, Status, TYPE_WORK};
pub use security::{PortSecurity, Security};

/// How long sockets may flush at shutdown.
pub const SHUTDOWN_LINGER: Duration = Duration::from_secs(1);
/// Largest client request message (all frames), in bytes.
pub const MAX_CLIENT_MESSAGE: u64 = 1 << 20;
/// Most frames in a client request message, envelope included.
pub const MAX_CLIENT_FRAMES: u32 = 64;
/// Messages handled per wake-up of one socket before the others get a turn.
const BATCH: usize = 256;

/// The relay could not start.
#[derive(Debug)]
pub enum RunError {
    /// A port could not be bound.
    Bind {
        /// The configuration key of the port.
        key: &'static str,
        /// The endpoint.
        endpoint: String,
        /// Why.
        error: Error,
    },
    /// A socket could not be created.
    Socket(Error),
    /// A key, certificate or password file named by the configuration cannot be used.
    Config(ConfigError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Bind { key, endpoint, error } => write!(f, "cannot bind `{key}` ({endpoint}): {error}"),
            RunError::Socket(e) => write!(f, "cannot create a socket: {e}"),
            RunError::Config(e) => write!(f, "invalid configuration: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What the relay did, returned when it stops (and logged).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Requests forwarded to ingestors.
    pub forwarded: u64,
    /// Ingestor responses delivered to clients (`OK` or `ERROR`).
    pub answered: u64,
    /// Requests answered `TIMEOUT`.
    pub timed_out: u64,
    /// Requests refused: `BAD_REQUEST`, `DUPLICATE`, `OVERLOADED`, `UNAVAILABLE` (shutdown included),
    /// `RATE_LIMITED`.
    pub refused: u64,
    /// Messages dropped, all kinds.
    pub dropped: u64,
    /// Peers refused at authentication, per role.
    pub auth_refused: AuthRefusals,
    /// Streamed (`PARTIAL`) responses.
    pub streams: stream::StreamCounters,
}

/// Peers refused at authentication (credentials refused, a CURVE handshake that fails on the keys, or
/// another mechanism than the port requires), per role.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuthRefusals {
    /// On the client port.
    pub clients: u64,
    /// On the two ingestor ports.
    pub ingestors: u64,
    /// On the market-data port.
    pub subscribers: u64,
    /// By or of the market-data source.
    pub upstream: u64,
}

/// The relay's sockets, bound and ready to run.
pub struct Relay {
    config: Config,
    clients: Socket,
    work: Socket,
    responses: Socket,
    market: market::MarketData,
    refusals: Arc<RefusalCounters>,
    reloader: Reloader,
    live: tokio::sync::watch::Receiver<Arc<Config>>,
    observer: Observer,
    admin: Option<admin::Admin>,
}

impl Relay {
    /// Reads the key files the configuration names ([`Config::security`]: an error is
    /// [`RunError::Config`], and nothing is bound), then [`Relay::bind_secured`].
    pub async fn bind(config: &Config) -> Result<Relay, RunError> {
        let security = config.security().map_err(RunError::Config)?;
        Relay::bind_secured(config, &security).await
    }

    /// Creates and binds every socket, with the mechanisms of `security` (and starts connecting
    /// upstream). A port that cannot be bound is an error naming its key; what was bound is released.
    pub async fn bind_secured(config: &Config, security: &Security) -> Result<Relay, RunError> {
        let base = base_options(config);
        let refusals = Arc::new(RefusalCounters::default());
        // In bind mode the upstream condition of readiness is "bound", checked as a port.
        let observer = Observer::new(!config.upstream_optional && !config.flink_market_data_bind);
        // The admin endpoint first: /readyz then says which port is not bound yet.
        let (proxy_control, admin) = match config.admin_address() {
            Some(address) => {
                let (control, stats) = admin::ProxyStats::pair().await?;
                (Some(control), Some(admin::Admin::start(&address, observer.clone(), stats).await?))
            }
            None => (None, None),
        };
        let clients = Socket::with_options(
            SocketType::Router,
            security.clients.apply(Options {
                router_mandatory: true,
                max_msg_size: Some(MAX_CLIENT_MESSAGE),
                max_frames_per_message: MAX_CLIENT_FRAMES,
                ..base.clone()
            }),
        )
        .map_err(RunError::Socket)?;
        let work = Socket::with_options(SocketType::XPub, security.ingestors.apply(base.clone()))
            .map_err(RunError::Socket)?;
        let responses = Socket::with_options(
            SocketType::Router,
            security
                .ingestors
                .apply(Options { max_msg_size: Some(config.max_message_bytes), ..base.clone() }),
        )
        .map_err(RunError::Socket)?;
        let out = [
            (&clients, "client_request_port", config.client_request_port, "clients", &security.clients),
            (&work, "ingestor_work_port", config.ingestor_work_port, "ingestor work", &security.ingestors),
            (
                &responses,
                "ingestor_response_port",
                config.ingestor_response_port,
                "ingestor responses",
                &security.ingestors,
            ),
        ];
        for (socket, key, port, role, port_security) in out {
            let endpoint = config.bind_endpoint(port);
            let bound =
                socket.bind(&endpoint).await.map_err(|error| RunError::Bind { key, endpoint, error })?;
            tracing::info!(role = %role, endpoint = %bound, mechanism = port_security.mechanism(), "listening");
            let counted = if key == "client_request_port" { PeerRole::Clients } else { PeerRole::Ingestors };
            let port = Port::of_key(key).unwrap_or(Port::Clients);
            observer.port_bound(port);
            let refused = Refused::new(&refusals, counted, port_security.is_secured());
            watch_peers(socket, role, refused, observer.port(port));
        }
        let market =
            market::MarketData::bind(config, &base, security, &refusals, &observer, proxy_control).await?;
        observer.watch_subscriptions(&work, &market.subscribers());
        let (reloader, live) = Reloader::new(config);
        Ok(Relay {
            config: config.clone(),
            clients,
            work,
            responses,
            market,
            refusals,
            reloader,
            live,
            observer,
            admin,
        })
    }

    /// A handle that changes the live settings of this relay while it runs (SIGHUP: see
    /// [`reload`]).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The address the admin endpoint is bound on, if `admin_address` is not empty.
    pub fn admin_address(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(|a| a.local_address)
    }

    /// The relay's metrics and readiness (what the admin endpoint serves).
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// Serves requests and market data until `shutdown` completes, then answers every pending request
    /// `UNAVAILABLE`, flushes for at most [`SHUTDOWN_LINGER`] and closes every socket.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Stats {
        let Relay { config, clients, work, responses, market, refusals, reloader, mut live, observer, admin } =
            self;
        // The request loop holds the receiver; the handle stays alive for as long as it runs.
        let _reloader = reloader;
        let market_task = market.start();
        let streams = stream::Streams::new(config.max_message_bytes, config.max_assembly_bytes);
        let protection = protect::Protect::new(&protect::ProtectSettings::from_config(&config));
        let mut server = Server {
            metrics: Metrics::new(observer.clone()),
            summary: Summary::default(),
            config,
            clients: clients.clone(),
            work: work.clone(),
            subscribers: market.subscribers(),
            published_drops: (0, 0),
            refusal_counters: refusals,
            refusals_read: [0; 4],
            pending: PendingTable::new(),
            streams,
            drops: Drops::default(),
            refusals: Refusals::default(),
            stats: Stats::default(),
            protect: protection,
        };
        tokio::pin!(shutdown);
        let mut drop_log = tokio::time::interval(logging::DROP_LOG_INTERVAL);
        drop_log.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut summary_log = tokio::time::interval(logging::SUMMARY_INTERVAL);
        summary_log.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        summary_log.tick().await; // The first tick is immediate: nothing to sum up yet.
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Ok(()) = live.changed() => {
                    let new = live.borrow_and_update().clone();
                    server.config = Config::clone(&new);
                    server.protect.reconfigure(&protect::ProtectSettings::from_config(&server.config));
                }
                _ = drop_log.tick() => {
                    server.count_publisher_drops();
                    server.drops.flush();
                    server.count_refusals();
                    server.refusals.flush();
                    server.protect.tick(tokio::time::Instant::now());
                    server.sync_protect_metrics();
                }
                _ = summary_log.tick() => server.summary.flush(server.pending.len()),
                msg = responses.recv() => match msg {
                    Ok(msg) => {
                        server.handle_response(msg);
                        for _ in 1..BATCH {
                            let Ok(msg) = responses.try_recv() else { break };
                            server.handle_response(msg);
                        }
                    }
                    Err(e) => { tracing::error!("response socket failed: {e}"); break }
                },
                msg = clients.recv() => match msg {
                    Ok(msg) => {
                        server.handle_request(msg);
                        for _ in 1..BATCH {
                            let Ok(msg) = clients.try_recv() else { break };
                            server.handle_request(msg);
                        }
                    }
                    Err(e) => { tracing::error!("client socket failed: {e}"); break }
                },
                (id, envelope, tag) = poll_fn(|cx| server.pending.poll_expired(cx)) => {
                    server.time_out(id, envelope, tag.slot);
                    for _ in 1..BATCH {
                        let waker = futures::task::noop_waker();
                        let Poll::Ready((id, envelope, tag)) =
                            server.pending.poll_expired(&mut std::task::Context::from_waker(&waker))
                        else { break };
                        server.time_out(id, envelope, tag.slot);
                    }
                },
                msg = work.recv() => match msg {
                    Ok(msg) => log_work_subscription(&msg),
                    Err(e) => { tracing::error!("work socket failed: {e}"); break }
                },
            }
        }
        tracing::info!(pending = server.pending.len(), "shutting down");
        observer.shutting_down();
        server.count_publisher_drops();
        let pending: Vec<_> = server.pending.drain().collect();
        for (id, envelope, tag) in pending {
            let Some(envelope) = server.abandon_stream(&id, envelope) else { continue };
            server.refuse(envelope, id, tag.slot, Outcome::Unavailable, "relay shutting down".into());
        }
        server.protect.clear_flights();
        server.metrics.pending(0);
        server.summary.flush(0);
        server.drops.flush();
        let close_all = async {
            tokio::join!(clients.close(), work.close(), responses.close(), market.close(market_task));
        };
        if tokio::time::timeout(SHUTDOWN_LINGER + Duration::from_secs(1), close_all).await.is_err() {
            tracing::warn!("sockets still flushing after the linger: closing anyway");
        }
        server.count_refusals();
        server.refusals.flush();
        server.stats.streams = server.streams.counters();
        if let Some(admin) = admin {
            admin.stop().await;
        }
        let stats = server.stats;
        let auth = stats.auth_refused;
        tracing::info!(
            forwarded = stats.forwarded,
            answered = stats.answered,
            timed_out = stats.timed_out,
            refused = stats.refused,
            dropped = stats.dropped,
            auth_refused_clients = auth.clients,
            auth_refused_ingestors = auth.ingestors,
            auth_refused_subscribers = auth.subscribers,
            auth_refused_upstream = auth.upstream,
            "stopped"
        );
        let streams = stats.streams;
        if streams.chunks_received + streams.chunks_dropped > 0 {
            tracing::info!(
                chunks_received = streams.chunks_received,
                chunks_forwarded = streams.chunks_forwarded,
                chunks_assembled = streams.chunks_assembled,
                chunks_dropped = streams.chunks_dropped,
                assembled_replies = streams.assembled_replies,
                streams_ended = streams.streams_ended,
                "streams"
            );
        }
        stats
    }
}

/// Options every relay socket shares.
fn base_options(config: &Config) -> Options {
    Options {
        send_hwm: config.high_water_mark,
        recv_hwm: config.high_water_mark,
        linger: Some(SHUTDOWN_LINGER),
        handshake_interval: Some(config.handshake_timeout),
        heartbeat_interval: config.heartbeat_interval,
        heartbeat_timeout: config.heartbeat_interval.map(|_| config.heartbeat_timeout),
        ipv6: config.bind_address.contains('['),
        // ZMTP 3.0 peers have no PING: the kernel finds their half-open connections instead.
        tcp_keepalive: Some(true),
        tcp_keepalive_idle: Some(Duration::from_secs(60)),
        tcp_keepalive_interval: Some(Duration::from_secs(10)),
        tcp_keepalive_count: Some(3),
        ..Options::default()
    }
}

/// The request loop's state.
struct Server {
    metrics: Metrics,
    /// Requests by outcome, logged at `info` every [`logging::SUMMARY_INTERVAL`].
    summary: Summary,
    config: Config,
    clients: Socket,
    work: Socket,
    subscribers: Socket,
    /// The work and market-data publishers' drop counters when last read.
    published_drops: (u64, u64),
    /// The monitors' authentication refusal counters, and their values when last read.
    refusal_counters: Arc<RefusalCounters>,
    refusals_read: [u64; 4],
    pending: PendingTable,
    /// Streamed responses in progress (protocol 1.1).
    streams: stream::Streams,
    drops: Drops,
    refusals: Refusals,
    stats: Stats,
    /// Rate limits, circuit breakers, coalescing and the response cache (all off by default).
    protect: protect::Protect,
}

impl Server {
    fn handle_request(&mut self, msg: Msg) {
        let mut frames = msg.into_frames();
        match parse_request(&frames) {
            Request::NoDelimiter => self.drop_message(DropKind::NoDelimiter, peer_of(&frames)),
            Request::EnvelopeTooDeep => self.drop_message(DropKind::EnvelopeTooDeep, peer_of(&frames)),
            Request::EnvelopeFrameTooLong => self.drop_message(DropKind::BadEnvelope, peer_of(&frames)),
            Request::Bad { envelope, request_id, reason } => {
                frames.truncate(envelope);
                self.refuse(frames, request_id, NO_PREFIX_SLOT, Outcome::BadRequest, reason);
            }
            Request::Good { envelope, request_id, prefix, ticker, params } => {
                frames.truncate(envelope);
                let slot = self.metrics.slot(&prefix);
                let now = tokio::time::Instant::now();
                if let Some(reason) = self.protect.rate_limit(&frames, &self.clients, now) {
                    self.metrics.rate_limited();
                    self.refuse(frames, request_id, slot, Outcome::RateLimited, reason);
                } else if self.pending.contains(&request_id) {
                    let reason = "request_id already pending".into();
                    self.refuse(frames, request_id, slot, Outcome::Duplicate, reason);
                } else if let Some(data) = self.protect.cached(&ticker, &params, now) {
                    self.answer_from_cache(frames, request_id, slot, &data);
                } else if self.pending.len() >= self.config.max_pending_requests {
                    let reason = "too many pending requests".into();
                    self.refuse(frames, request_id, slot, Outcome::Overloaded, reason);
                } else if self.work.has_subscriber(&prefix) != Some(true) {
                    let reason = format!("no ingestor serves {}", String::from_utf8_lossy(&prefix));
                    self.refuse(frames, request_id, slot, Outcome::Unavailable, reason);
                } else if let Some(reason) = self.protect.circuit_open(&prefix, now) {
                    self.refuse(frames, request_id, slot, Outcome::Unavailable, reason);
                } else if self.protect.is_tracking() {
                    self.forward_tracked(frames, request_id, slot, prefix, ticker, params);
                } else {
                    let work = vec![
                        prefix.clone(),
                        Bytes::from_static(&[TYPE_WORK]),
                        request_id.clone(),
                        ticker,
                        params,
                    ];
                    // PUB semantics: an ingestor whose queue is full misses this one (B-9); the request
                    // then times out unless another ingestor answers.
                    if let Err(SendError { error, .. }) = self.work.try_send(work) {
                        tracing::warn!(request_id = %Id(&request_id), "work message not sent: {error}");
                    }
                    tracing::debug!(prefix = %String::from_utf8_lossy(&prefix), request_id = %Id(&request_id), "request forwarded");
                    self.pending.insert(request_id, frames, self.config.request_timeout, slot);
                    self.stats.forwarded += 1;
                    self.summary.forwarded += 1;
                    self.metrics.pending(self.pending.len());
                }
            }
        }
    }

    fn handle_response(&mut self, msg: Msg) {
        let frames = msg.into_frames();
        let Some((request_id, status)) = parse_response(&frames) else {
            let last = frames.get(2).map(|id| Id(id).to_string()).unwrap_or_default();
            return self.drop_message(DropKind::MalformedResponse, last);
        };
        if self.protect.is_flight(request_id) {
            return self.answer_flight(&frames, status);
        }
        if status == Status::Partial {
            return self.handle_chunk(request_id, &frames[4..]);
        }
        let Some((envelope, tag)) = self.pending.take(request_id) else {
            return self.drop_message(DropKind::ResponseNotPending, Id(request_id));
        };
        let outcome = if status == Status::Ok { Outcome::Ok } else { Outcome::Error };
        let status = status.as_str();
        tracing::debug!(request_id = %Id(request_id), status = %status, "response received");
        self.stats.answered += 1;
        self.metrics.answered(tag.slot, outcome, tag.forwarded.elapsed());
        self.metrics.pending(self.pending.len());
        self.summary.count(outcome);
        self.deliver_final(envelope, request_id.clone(), status, &frames[4..]);
    }

    fn time_out(&mut self, request_id: Bytes, envelope: Vec<Bytes>, slot: Slot) {
        self.flight_timed_out(&request_id);
        let Some(envelope) = self.abandon_stream(&request_id, envelope) else { return };
        tracing::warn!(request_id = %Id(&request_id), "request timed out");
        self.stats.timed_out += 1;
        self.metrics.request_outcome(slot, Outcome::Timeout);
        self.metrics.pending(self.pending.len());
        self.summary.count(Outcome::Timeout);
        let reason = format!("no response within {:?}", self.config.request_timeout);
        self.send_reply(envelope, request_id, "TIMEOUT", &[Bytes::from(reason)]);
    }

    /// Answers a request at once with a refusal (`outcome`: its status), counted for `slot`'s prefix.
    fn refuse(
        &mut self,
        envelope: Vec<Bytes>,
        request_id: Bytes,
        slot: Slot,
        outcome: Outcome,
        reason: String,
    ) {
        let status = outcome.status();
        tracing::debug!(request_id = %Id(&request_id), status = %status, reason = %reason, "request refused");
        self.stats.refused += 1;
        self.metrics.request_outcome(slot, outcome);
        self.summary.count(outcome);
        self.send_reply(envelope, request_id, status, &[Bytes::from(reason)]);
    }

    /// Sends the reply `envelope… "" 0x08 request_id status rest…` without ever waiting: a full or
    /// departed client loses it (counted). Whether it was queued.
    fn send_reply(
        &mut self,
        envelope: Vec<Bytes>,
        request_id: Bytes,
        status: &'static str,
        rest: &[Bytes],
    ) -> bool {
        let frames = reply(envelope, request_id.clone(), status, rest);
        match self.clients.try_send(frames) {
            Ok(()) => {
                tracing::debug!(request_id = %Id(&request_id), status = %status, "response sent");
                return true;
            }
            Err(SendError { error: Error::HostUnreachable(_), .. }) => {
                self.drop_message(DropKind::ClientGone, Id(&request_id))
            }
            Err(SendError { error: Error::WouldBlock, .. }) => {
                self.drop_message(DropKind::ClientQueueFull, Id(&request_id))
            }
            Err(SendError { error, .. }) => {
                tracing::warn!(request_id = %Id(&request_id), "reply not sent: {error}")
            }
        }
        false
    }

    /// Counts what the two publishers dropped since the last call (a full ingestor or subscriber
    /// queue: PUB semantics, never blocking).
    fn count_publisher_drops(&mut self) {
        let now = (self.work.dropped_messages(), self.subscribers.dropped_messages());
        let (work, market) =
            (now.0 - self.published_drops.0.min(now.0), now.1 - self.published_drops.1.min(now.1));
        self.published_drops = now;
        self.stats.dropped += work + market;
        self.drops.count_many(DropKind::IngestorQueueFull, work, "work messages");
        self.drops.count_many(DropKind::SubscriberQueueFull, market, "market-data messages");
        self.metrics.dropped(DropKind::IngestorQueueFull, work);
        self.metrics.dropped(DropKind::SubscriberQueueFull, market);
    }

    /// Counts the peers the monitors saw refused at authentication since the last call (logged
    /// rate-limited, as drops).
    fn count_refusals(&mut self) {
        for (i, role) in PeerRole::ALL.into_iter().enumerate() {
            let now = self.refusal_counters.get(role);
            let new = now.saturating_sub(self.refusals_read[i]);
            self.refusals_read[i] = now;
            if new > 0 {
                let last = self.refusal_counters.last_reason(role).unwrap_or_default();
                self.refusals.count_many(role, new, last);
            }
        }
        let auth = &mut self.stats.auth_refused;
        auth.clients = self.refusals.total(PeerRole::Clients);
        auth.ingestors = self.refusals.total(PeerRole::Ingestors);
        auth.subscribers = self.refusals.total(PeerRole::Subscribers);
        auth.upstream = self.refusals.total(PeerRole::Upstream);
    }

    fn drop_message(&mut self, kind: DropKind, detail: impl std::fmt::Display) {
        self.stats.dropped += 1;
        self.metrics.dropped(kind, 1);
        self.drops.count(kind, detail);
    }
}

/// The routing id of the peer a client message came from, for log lines.
fn peer_of(frames: &[Bytes]) -> String {
    frames.first().map(|id| format!("peer {}", Id(id))).unwrap_or_default()
}

/// Logs an ingestor's (un)subscription read from the work XPUB (first subscription and last
/// cancellation of each prefix).
fn log_work_subscription(msg: &Msg) {
    let Some(frame) = msg.frames().first() else { return };
    let prefix = String::from_utf8_lossy(frame.get(1..).unwrap_or_default());
    match frame.first() {
        Some(1) => tracing::info!(prefix = %prefix, "ingestor subscribed"),
        Some(0) => tracing::info!(prefix = %prefix, "ingestor unsubscribed"),
        _ => {}
    }
}

/// Where a socket's monitor counts the peers refused at authentication.
pub(crate) struct Refused {
    counters: Arc<RefusalCounters>,
    role: PeerRole,
    /// Whether the port requires CURVE or PLAIN (then a peer offering another mechanism is refused).
    secured: bool,
}

impl Refused {
    pub(crate) fn new(counters: &Arc<RefusalCounters>, role: PeerRole, secured: bool) -> Refused {
        Refused { counters: counters.clone(), role, secured }
    }

    /// Counts `failure` if it is an authentication refusal; whether it was.
    pub(crate) fn count(&self, failure: &HandshakeFailure) -> bool {
        let refused = is_auth_refusal(failure, self.secured);
        if refused {
            self.counters.count(self.role, failure);
        }
        refused
    }
}

/// Whether a failed handshake is an authentication refusal: credentials refused (by our
/// authenticator, or by the peer's: a ZAP status), a CURVE handshake failing on the keys (a client
/// with the wrong server key), or, on a port that requires CURVE or PLAIN, a peer offering another
/// mechanism.
pub(crate) fn is_auth_refusal(failure: &HandshakeFailure, secured: bool) -> bool {
    match failure {
        HandshakeFailure::Auth { .. } => true,
        HandshakeFailure::Protocol(ProtocolError::Cryptographic { .. } | ProtocolError::WeakKey { .. }) => {
            true
        }
        HandshakeFailure::Protocol(
            ProtocolError::MechanismMismatch { .. } | ProtocolError::AsServerConflict(_),
        ) => secured,
        _ => false,
    }
}

/// Whether the zmtp library itself logs this failure at `warn`, with the peer's address (so the
/// relay does not log it again).
pub(crate) fn library_warns(failure: &HandshakeFailure) -> bool {
    matches!(
        failure,
        HandshakeFailure::Auth { .. } | HandshakeFailure::Protocol(ProtocolError::Cryptographic { .. })
    )
}

/// Logs, at `warn` and rate-limited, the peers of `socket` that lose their connection to a protocol
/// error, a failed handshake or a heartbeat timeout, and counts those refused at authentication
/// (`refused`). Ends when the socket closes. An ordinary close (the peer hung up, or a port probe that
/// connects and closes without a word: a health check, a load balancer) is logged at `debug`, and so
/// is a refusal that the zmtp library already logged at `warn` with the peer's address.
///
/// It also keeps `port`'s metrics: peers connected (a handshake done, until that connection ends) and
/// handshake failures by reason.
pub(crate) fn watch_peers(socket: &Socket, role: &'static str, refused: Refused, port: PortMetrics) {
    let mut monitor = socket.monitor();
    tokio::spawn(async move {
        let mut limit = RateLimit::new(20);
        let mut last_handshake_failure = None;
        while let Some(event) = monitor.recv().await {
            let (ordinary, reason) = match event.kind {
                SocketEventKind::HandshakeSucceeded => {
                    port.peer_connected();
                    continue;
                }
                SocketEventKind::HandshakeFailed(failure) => {
                    port.handshake_failed(&failure);
                    let counted = refused.count(&failure);
                    let ordinary = matches!(&failure, HandshakeFailure::NoDetail(r) if r.is_ordinary())
                        || (counted && library_warns(&failure));
                    let shown = failure.to_string();
                    last_handshake_failure = Some(failure);
                    (ordinary, shown)
                }
                SocketEventKind::Disconnected(reason) => {
                    if last_handshake_failure.take() == Some(HandshakeFailure::from_reason(&reason)) {
                        continue; // Already logged as the handshake failure.
                    }
                    port.peer_disconnected();
                    (reason.is_ordinary(), reason.to_string())
                }
                SocketEventKind::MonitorStopped => break,
                _ => continue,
            };
            // `peer` is the peer's address (`ip:port`), `endpoint` and `role` the relay's port.
            let endpoint = event.endpoint;
            let peer = event.peer.unwrap_or_else(|| "unknown".to_owned());
            if ordinary {
                tracing::debug!(role = %role, peer = %peer, endpoint = %endpoint, reason = %reason, "peer disconnected");
            } else if let Some(suppressed) = limit.allow() {
                tracing::warn!(
                    role = %role,
                    peer = %peer,
                    endpoint = %endpoint,
                    reason = %reason,
                    suppressed,
                    "peer disconnected"
                );
            }
        }
    });
}
