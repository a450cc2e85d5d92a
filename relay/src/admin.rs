//! The admin HTTP endpoint (`admin_address`, `docs/relay-protocol.md` §7), on axum, served by the
//! relay's own runtime: `GET /metrics` (Prometheus text format), `/livez` (200 while the process
//! serves), `/readyz` (200 `ready`, or 503 with what is missing, one item per line).
//!
//! It is bound before the relay's ports (so a port in use is reported as `admin_address`, exit 1, and
//! `/readyz` can say which port is not bound yet) and stops when the relay stops. Scrapes are cheap:
//! the market-data proxy's counters are read once per scrape through its control socket, and the
//! XPUBs' subscriptions are counted then; nothing on the request path waits for a scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use zmtp::{Socket, SocketType};

use crate::metrics::Observer;
use crate::RunError;

/// The content type of what prometheus-client writes: the OpenMetrics text format (which Prometheus
/// reads; its `info` type and `# EOF` are not the older 0.0.4 text format).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a scrape waits for the market-data proxy's counters before answering without fresh ones.
const PROXY_STATS_WAIT: Duration = Duration::from_millis(500);

/// The running admin endpoint; dropping it stops it too (without waiting).
pub struct Admin {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The address actually bound.
    pub local_address: std::net::SocketAddr,
}

#[derive(Clone)]
struct AppState {
    observer: Observer,
    proxy: ProxyStats,
}

impl Admin {
    /// Binds `address` (`host:port`) and serves until [`Admin::stop`].
    ///
    /// # Errors
    ///
    /// [`RunError::Bind`] naming `admin_address` when the address cannot be bound.
    pub async fn start(address: &str, observer: Observer, proxy: ProxyStats) -> Result<Admin, RunError> {
        let bind_error = |e: std::io::Error| RunError::Bind {
            key: "admin_address",
            endpoint: address.to_owned(),
            error: zmtp::Error::Bind { endpoint: address.to_owned(), source: e },
        };
        let listener = tokio::net::TcpListener::bind(address).await.map_err(bind_error)?;
        let local_address = listener.local_addr().map_err(bind_error)?;
        tracing::info!(target: "relay", address = %local_address, "admin endpoint serving");
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/livez", get(|| async { "live\n" }))
            .route("/readyz", get(readyz))
            .with_state(AppState { observer, proxy });
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                tracing::warn!(target: "relay", "admin endpoint failed: {e}");
            }
        });
        Ok(Admin { stop, task: Some(task), local_address })
    }

    /// Stops serving (connections in progress are ended after at most a second).
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        // A relay that failed to bind a later port releases the admin port as well.
        self.stop.cancel();
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.proxy.refresh(&state.observer).await;
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.observer.encode()).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.observer.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(missing) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready:\n{missing}\n")).into_response(),
    }
}

/// The market-data proxy's STATISTICS, asked over an inproc PAIR control socket
/// ([`zmtp::proxy_steerable`]): the proxy counts every message anyway, so the relay adds nothing to the
/// market-data hot path to export them.
#[derive(Clone)]
pub struct ProxyStats {
    control: std::sync::Arc<tokio::sync::Mutex<Option<Socket>>>,
}

impl ProxyStats {
    /// A connected pair of control sockets: the proxy's end (for [`zmtp::proxy_steerable`]) and the
    /// scraper's.
    ///
    /// # Errors
    ///
    /// [`RunError::Socket`] if the inproc sockets cannot be made.
    pub async fn pair() -> Result<(Socket, ProxyStats), RunError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("inproc://relay-proxy-control-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let proxy_end = Socket::new(SocketType::Pair).map_err(RunError::Socket)?;
        proxy_end.bind(&name).await.map_err(RunError::Socket)?;
        let ours = Socket::new(SocketType::Pair).map_err(RunError::Socket)?;
        ours.connect(&name).map_err(RunError::Socket)?;
        Ok((proxy_end, ProxyStats { control: std::sync::Arc::new(tokio::sync::Mutex::new(Some(ours))) }))
    }

    /// No proxy to ask (tests).
    pub fn none() -> ProxyStats {
        ProxyStats { control: std::sync::Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// Asks the proxy for its counters and stores them in `observer` (one scrape at a time; a proxy
    /// that does not answer in time leaves the last values).
    pub async fn refresh(&self, observer: &Observer) {
        let control = self.control.lock().await;
        let Some(socket) = control.as_ref() else { return };
        // A reply that came after an earlier scrape gave up.
        while socket.try_recv().is_ok() {}
        let asked = async {
            socket.send(Bytes::from_static(b"STATISTICS")).await.ok()?;
            let reply = socket.recv().await.ok()?;
            let v: Vec<u64> = reply
                .frames()
                .iter()
                .map(|f| f.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes))
                .collect();
            // Frontend (the upstream XSUB): messages in, bytes in, messages out (subscriptions up);
            // backend (the subscribers' XPUB): messages out at index 6.
            (v.len() == 8).then(|| observer.market_counts().store(v[0], v[1], v[6], v[2]))
        };
        let _ = tokio::time::timeout(PROXY_STATS_WAIT, asked).await;
    }

    /// Closes the scraper's end.
    pub async fn close(&self) {
        if let Some(socket) = self.control.lock().await.take() {
            socket.close().await;
        }
    }
}
