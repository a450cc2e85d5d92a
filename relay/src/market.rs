//! Market-data fan-out (`docs/relay-protocol.md` §2): an XSUB connected to (or bound on) the upstream
//! source, proxied to an XPUB bound for subscribers. Subscriptions flow upstream and are re-sent by the
//! XSUB whenever the upstream connection is (re)established; reconnection backs off from 100 ms to 5 s.
//! The XPUB may require CURVE or PLAIN of subscribers; the XSUB may be a CURVE client of the source.

use std::sync::Arc;
use std::time::Duration;

use zmtp::{HandshakeFailure, Options, Socket, SocketEventKind, SocketType};

use crate::config::Config;
use crate::logging::{PeerRole, RateLimit, RefusalCounters};
use crate::metrics::{Observer, Port, PortMetrics};
use crate::security::Security;
use crate::{library_warns, Refused, RunError};

/// First reconnection interval to the upstream source.
pub const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// Longest reconnection interval to the upstream source.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// The market-data sockets.
pub struct MarketData {
    upstream: Socket,
    subscribers: Socket,
    /// The proxy's control socket (the admin endpoint asks it for the message counts).
    control: Option<Socket>,
}

impl MarketData {
    /// Binds the subscribers' XPUB, then binds or connects the upstream XSUB, with the mechanisms of
    /// `security`; authentication refusals are counted in `refusals`, peers and readiness in
    /// `observer`. `control`: the proxy's control socket, if the admin endpoint asks for its counts.
    pub async fn bind(
        config: &Config,
        base: &Options,
        security: &Security,
        refusals: &Arc<RefusalCounters>,
        observer: &Observer,
        control: Option<Socket>,
    ) -> Result<MarketData, RunError> {
        let mut xpub_options = security.subscribers.apply(base.clone());
        xpub_options.subscription_limits.max_topics = config.max_subscriptions_per_subscriber;
        let subscribers = Socket::with_options(SocketType::XPub, xpub_options).map_err(RunError::Socket)?;
        let key = "market_data_pub_port";
        let endpoint = config.bind_endpoint(config.market_data_pub_port);
        let bound =
            subscribers.bind(&endpoint).await.map_err(|error| RunError::Bind { key, endpoint, error })?;
        let mechanism = security.subscribers.mechanism();
        tracing::info!(target: "relay", role = %"market data out", endpoint = %bound, mechanism, "listening");
        let secured = security.subscribers.is_secured();
        observer.port_bound(Port::MarketDataOut);
        crate::watch_peers(
            &subscribers,
            "market data out",
            Refused::new(refusals, PeerRole::Subscribers, secured),
            observer.port(Port::MarketDataOut),
        );

        let upstream_options = Options {
            max_msg_size: Some(config.max_message_bytes),
            reconnect_interval: Some(RECONNECT_MIN),
            reconnect_interval_max: Some(RECONNECT_MAX),
            ipv6: config.flink_market_data_endpoint.contains('['),
            ..base.clone()
        };
        let upstream_options = match &security.upstream {
            Some(curve) => curve.apply(upstream_options),
            None => upstream_options,
        };
        let mechanism = if security.upstream.is_some() { "CURVE" } else { "NULL" };
        let upstream = Socket::with_options(SocketType::XSub, upstream_options).map_err(RunError::Socket)?;
        let endpoint = config.flink_market_data_endpoint.clone();
        if config.flink_market_data_bind {
            let key = "flink_market_data_endpoint";
            let bound = upstream.bind(&endpoint).await.map_err(|error| RunError::Bind {
                key,
                endpoint: endpoint.clone(),
                error,
            })?;
            tracing::info!(target: "relay", role = %"market data in", endpoint = %bound, mechanism, "listening");
            observer.port_bound(Port::MarketDataIn);
            crate::watch_peers(
                &upstream,
                "market data in",
                Refused::new(refusals, PeerRole::Upstream, false),
                observer.port(Port::MarketDataIn),
            );
        } else {
            let refused = Refused::new(refusals, PeerRole::Upstream, security.upstream.is_some());
            watch_upstream(&upstream, endpoint.clone(), refused, observer.port(Port::MarketDataIn));
            tracing::info!(target: "relay", endpoint, mechanism, "upstream connecting");
            upstream.connect(&endpoint).map_err(|error| RunError::Bind {
                key: "flink_market_data_endpoint",
                endpoint: endpoint.clone(),
                error,
            })?;
            // Connecting: readiness then waits for the connection itself (unless optional).
            observer.port_bound(Port::MarketDataIn);
        }
        Ok(MarketData { upstream, subscribers, control })
    }

    /// A handle to the subscribers' XPUB (for its drop counter).
    pub fn subscribers(&self) -> Socket {
        self.subscribers.clone()
    }

    /// Starts forwarding on its own task, until [`MarketData::close`].
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let (upstream, subscribers) = (self.upstream.clone(), self.subscribers.clone());
        let control = self.control.clone();
        tokio::spawn(async move {
            let ended = match &control {
                // The same forwarding, plus a control socket answering STATISTICS.
                Some(control) => zmtp::proxy_steerable(&upstream, &subscribers, None, control).await,
                None => zmtp::proxy(&upstream, &subscribers, None).await,
            };
            if let Err(e) = ended {
                tracing::debug!(target: "relay", "market-data proxy ended: {e}");
            }
        })
    }

    /// Closes both sockets (flushing for up to their linger), which ends the forwarding task.
    pub async fn close(self, task: tokio::task::JoinHandle<()>) {
        tokio::join!(self.upstream.close(), self.subscribers.close());
        let _ = task.await;
        if let Some(control) = self.control {
            control.close().await;
        }
    }
}

/// Logs the upstream connection's life: connected (after the handshake), disconnected, unreachable
/// (rate-limited: the reconnect back-off already spaces attempts out), and counts the source's
/// authentication refusals (`refused`).
///
/// A source that refuses the relay's credentials answers with an ERROR, after which the zmtp library
/// (as libzmq) does not reconnect: the relay connects again itself after [`RECONNECT_MAX`], so that it
/// still reconnects after any failure (`docs/relay-protocol.md` §5) and recovers once the source
/// accepts its key.
fn watch_upstream(socket: &Socket, endpoint: String, refused: Refused, port: PortMetrics) {
    let mut monitor = socket.monitor();
    let socket = socket.clone();
    tokio::spawn(async move {
        let mut unreachable = RateLimit::new(1);
        let mut failed = RateLimit::new(1);
        while let Some(event) = monitor.recv().await {
            match event.kind {
                SocketEventKind::HandshakeSucceeded => {
                    port.peer_connected();
                    tracing::info!(target: "relay", endpoint, "upstream connected")
                }
                SocketEventKind::HandshakeFailed(failure) => {
                    port.handshake_failed(&failure);
                    let counted = refused.count(&failure);
                    if counted && !library_warns(&failure) {
                        if let Some(suppressed) = failed.allow() {
                            tracing::warn!(target: "relay", endpoint, reason = %failure, suppressed, "upstream refused");
                        }
                    }
                    if matches!(failure, HandshakeFailure::Auth { .. } | HandshakeFailure::PeerError(_)) {
                        let (socket, endpoint) = (socket.clone(), endpoint.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(RECONNECT_MAX).await;
                            // The library ended that session; start another (an error: closing).
                            let _ = socket.disconnect(&endpoint);
                            if socket.connect(&endpoint).is_ok() {
                                tracing::info!(target: "relay", endpoint, "upstream connecting");
                            }
                        });
                    }
                }
                SocketEventKind::Disconnected(reason) => {
                    // After a failed handshake too: the gauge never goes below zero.
                    port.peer_disconnected();
                    tracing::info!(target: "relay", endpoint, reason = %reason, "upstream disconnected")
                }
                SocketEventKind::ConnectDelayed(reason) => {
                    if let Some(suppressed) = unreachable.allow() {
                        tracing::warn!(target: "relay", endpoint, reason, suppressed, "upstream unreachable");
                    }
                }
                SocketEventKind::MonitorStopped => break,
                _ => {}
            }
        }
    });
}
