//! Asynchronous client/server (ZeroMQ Guide, chapter 3: "The Asynchronous Client/Server Pattern").
//!
//! Clients are DEALER sockets with routing ids: they send requests without waiting for replies and
//! take replies as they come. The server has a frontend ROUTER for the clients and a backend DEALER
//! for its workers (DEALER sockets on inproc), and proxies between the two:
//!
//! ```text
//! client DEALER ──► frontend ROUTER  [client id][request][wanted]
//!                       proxy
//! backend DEALER ──► worker DEALER   [client id][request][wanted]   (round-robin over workers)
//! worker DEALER ──► backend DEALER   [client id][request]["reply i of n"]
//!                       proxy
//! frontend ROUTER ──► client DEALER  [request]["reply i of n"]       (routed by the client id)
//! ```
//!
//! A worker may send any number of replies to one request, zero included, each after a random delay;
//! because every reply carries the client's id, the ROUTER gets each to the right client.
//!
//! In the Guide, workers pick the number of replies at random and the program runs for five seconds.
//! Here each client picks, from a seeded generator, how many replies it wants (0 to 4) and says so in
//! its request, so that it knows when it has them all and the run can end on its own; replies still
//! come at random moments, interleaved across requests and workers.
//!
//! ```text
//! cargo run -p zmtp --example asyncsrv -- [CLIENTS=3] [REQUESTS=5] [WORKERS=5]
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use zmtp::{Msg, Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;

use common::{arg, BoxError, Rng};

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of DEALER clients.
    pub clients: usize,
    /// Requests each client sends.
    pub requests: usize,
    /// Number of server workers.
    pub workers: usize,
    /// Most replies a request asks for.
    pub max_replies: u64,
    /// A client sends a request this often, taking replies in between.
    pub interval: Duration,
    /// A worker waits a random time up to this before each reply.
    pub max_delay: Duration,
    /// A client gives up if no reply comes for this long while it expects one.
    pub patience: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clients: 3,
            requests: 5,
            workers: 5,
            max_replies: 4,
            interval: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
            patience: Duration::from_secs(10),
        }
    }
}

/// What one client saw.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    /// The client's routing id.
    pub name: String,
    /// Requests sent.
    pub requests: usize,
    /// Replies asked for, over all requests.
    pub expected: usize,
    /// Replies received that answer this client's requests.
    pub received: usize,
    /// Replies received that answer some other client's request (none, if routing works).
    pub misrouted: usize,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration run.
    pub config: Config,
    /// One entry per client.
    pub clients: Vec<ClientReport>,
    /// Replies each worker sent.
    pub worker_replies: Vec<usize>,
}

impl Report {
    /// Whether every client got exactly the replies it asked for, and nobody else's.
    pub fn all_replies_routed_back(&self) -> bool {
        self.clients.iter().all(|c| c.received == c.expected && c.misrouted == 0)
            && self.worker_replies.iter().sum::<usize>() == self.clients.iter().map(|c| c.expected).sum()
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let requests: usize = self.clients.iter().map(|c| c.requests).sum();
        let replies: usize = self.clients.iter().map(|c| c.received).sum();
        let outcome = if self.all_replies_routed_back() {
            "all routed back to their sender".to_owned()
        } else {
            let short: Vec<&str> =
                self.clients.iter().filter(|c| c.received != c.expected).map(|c| c.name.as_str()).collect();
            format!("SOME MISSING OR MISROUTED (clients {})", short.join(", "))
        };
        let clients = self.config.clients;
        format!("asyncsrv: {clients} clients, {requests} requests, {replies} replies, {outcome}")
    }
}

/// A fresh inproc endpoint, so that concurrent runs in one process do not collide.
fn unique_inproc(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("inproc://{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn text(frame: &Bytes) -> String {
    String::from_utf8_lossy(frame).into_owned()
}

/// A client: sends a request every `interval`, taking whatever replies arrive in between, then waits
/// for the replies still due.
async fn client(endpoint: String, index: usize, config: Config) -> Result<ClientReport, BoxError> {
    let name = format!("client-{index}");
    let options = Options { routing_id: Some(Bytes::from(name.clone())), ..Options::default() };
    let socket = Socket::with_options(SocketType::Dealer, options)?;
    socket.connect(&endpoint)?;
    let mut rng = Rng::seeded(index as u64 + 1);
    let mut report = ClientReport { name: name.clone(), ..ClientReport::default() };

    let take = |msg: Msg, report: &mut ClientReport| {
        // A reply is [request][reply i of n]; the request names the client that sent it.
        let request = msg.frames().first().map(text).unwrap_or_default();
        let reply = msg.frames().get(1).map(text).unwrap_or_default();
        println!("{name}: {reply} to \"{request}\"");
        if request.starts_with(&format!("{name} ")) {
            report.received += 1;
        } else {
            report.misrouted += 1;
        }
    };

    for request_nbr in 1..=config.requests {
        let wanted = rng.below(config.max_replies + 1);
        let request = format!("{name} request #{request_nbr}");
        socket.send(Msg::from(vec![Bytes::from(request), Bytes::from(wanted.to_string())])).await?;
        report.requests += 1;
        report.expected += wanted as usize;
        // Take replies until it is time for the next request (recv is cancel-safe: a reply that
        // arrives as the deadline passes is kept for the next call).
        let next_tick = Instant::now() + config.interval;
        while let Ok(msg) = tokio::time::timeout_at(next_tick, socket.recv()).await {
            take(msg?, &mut report);
        }
    }
    while report.received + report.misrouted < report.expected {
        match tokio::time::timeout(config.patience, socket.recv()).await {
            Ok(msg) => take(msg?, &mut report),
            Err(_) => return Err(format!("{name}: no reply for {:?}", config.patience).into()),
        }
    }
    socket.close().await;
    Ok(report)
}

/// A worker: for each request, sends as many replies as asked for, each after a random delay.
/// Returns the number of replies sent.
async fn worker(
    endpoint: String,
    config: Config,
    mut stop: watch::Receiver<bool>,
) -> Result<usize, BoxError> {
    let socket = Socket::new(SocketType::Dealer)?;
    socket.connect(&endpoint)?;
    let mut rng = Rng::random();
    let mut sent = 0;
    loop {
        let msg = tokio::select! {
            msg = socket.recv() => msg?,
            _ = stop.changed() => break,
        };
        let [client, request, wanted] = msg.frames() else {
            return Err(format!("malformed request {msg:?}").into());
        };
        let wanted: u64 = text(wanted).parse()?;
        for i in 1..=wanted {
            tokio::time::sleep(rng.delay(config.max_delay)).await;
            let reply = Bytes::from(format!("reply {i} of {wanted}"));
            socket.send(Msg::from(vec![client.clone(), request.clone(), reply])).await?;
            sent += 1;
        }
    }
    socket.close().await;
    Ok(sent)
}

/// The server's proxy: frontend to backend and back, until told to stop.
async fn proxy(frontend: Socket, backend: Socket, mut stop: watch::Receiver<bool>) -> Result<(), BoxError> {
    loop {
        tokio::select! {
            msg = frontend.recv() => backend.send(msg?).await?,
            msg = backend.recv() => frontend.send(msg?).await?,
            _ = stop.changed() => break,
        }
    }
    frontend.close().await;
    backend.close().await;
    Ok(())
}

/// Runs the server and `config.clients` clients until every client has the replies it asked for.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    // The server: frontend for clients, backend for workers, and a proxy between them.
    let frontend = Socket::new(SocketType::Router)?;
    let endpoint = frontend.bind("tcp://127.0.0.1:*").await?;
    let backend = Socket::new(SocketType::Dealer)?;
    let backend_endpoint = backend.bind(&unique_inproc("asyncsrv-backend")).await?;
    let (stop, stopped) = watch::channel(false);
    let workers: Vec<_> = (0..config.workers)
        .map(|_| tokio::spawn(worker(backend_endpoint.clone(), config.clone(), stopped.clone())))
        .collect();
    let server = tokio::spawn(proxy(frontend, backend, stopped));

    let clients: Vec<_> =
        (0..config.clients).map(|i| tokio::spawn(client(endpoint.clone(), i, config.clone()))).collect();
    let mut client_reports = Vec::with_capacity(clients.len());
    for handle in clients {
        client_reports.push(handle.await??);
    }

    stop.send_replace(true);
    server.await??;
    let mut worker_replies = Vec::with_capacity(workers.len());
    for handle in workers {
        worker_replies.push(handle.await??);
    }
    Ok(Report { config, clients: client_reports, worker_replies })
}

#[allow(dead_code)] // unused when the file is included as a module by tests/guide.rs
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let defaults = Config::default();
    let config = Config {
        clients: arg(1, defaults.clients)?,
        requests: arg(2, defaults.requests)?,
        workers: arg(3, defaults.workers)?,
        ..defaults
    };
    let report = run(config).await?;
    println!("{}", report.summary());
    Ok(())
}
