//! Load-balancing broker (ZeroMQ Guide, chapter 3: "A Load Balancing Message Broker").
//!
//! Clients (REQ) send requests to the broker's frontend ROUTER; workers (REQ) connect to its backend
//! ROUTER. A worker starts by sending "READY" and then sends each reply as its next request, so every
//! message from a worker means "I am idle". The broker keeps those idle workers in a queue, least
//! recently used first, and:
//!
//! - always reads the backend: the worker goes to the back of the queue, and if its message is a reply
//!   (not "READY") it is routed to the client it names;
//! - reads the frontend only while some worker is idle: the request goes to the worker at the front
//!   of the queue, wrapped in the client's address. Requests that arrive while every worker is busy
//!   wait in the frontend socket.
//!
//! Envelopes (`[]` is the empty delimiter):
//!
//! ```text
//! client → frontend:  [client][][request]
//! broker → backend:   [worker][][client][][request]   the worker (REQ) sees [client][][request]
//! worker → backend:   [worker][][client][][reply]     the worker sent [client][][reply]
//! broker → frontend:  [client][][reply]               the client (REQ) sees [reply]
//! ```
//!
//! As in the Guide, the broker stops once every client has its reply; the workers are then told to
//! stop (where the Guide simply ends the process).
//!
//! ```text
//! cargo run -p zmtp --example lbbroker -- [CLIENTS=10] [WORKERS=3]
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::watch;
use zmtp::{Msg, Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;

use common::{arg, BoxError};

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of REQ clients, each sending one request.
    pub clients: usize,
    /// Number of REQ workers.
    pub workers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { clients: 10, workers: 3 }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration run.
    pub config: Config,
    /// The reply each client got, by client name.
    pub replies: BTreeMap<String, String>,
    /// Requests each worker handled, by worker name, as the workers count them.
    pub handled: BTreeMap<String, usize>,
    /// Which worker the broker gave each client's request to.
    pub routed_to: BTreeMap<String, String>,
}

impl Report {
    /// Whether every client got the reply "OK".
    pub fn every_client_got_a_reply(&self) -> bool {
        self.replies.len() == self.config.clients && self.replies.values().all(|r| r == "OK")
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let clients = self.config.clients;
        if self.every_client_got_a_reply() {
            format!("lbbroker: {clients} clients each got a reply")
        } else {
            format!("lbbroker: only {} of {clients} clients got a reply", self.replies.len())
        }
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

/// A REQ socket named `name`, connected to `endpoint`.
fn named_req(endpoint: &str, name: &str) -> Result<Socket, BoxError> {
    let options = Options { routing_id: Some(Bytes::from(name.to_owned())), ..Options::default() };
    let socket = Socket::with_options(SocketType::Req, options)?;
    socket.connect(endpoint)?;
    Ok(socket)
}

/// A client: one request, one reply.
async fn client(endpoint: String, name: String) -> Result<(String, String), BoxError> {
    let socket = named_req(&endpoint, &name)?;
    socket.send("HELLO").await?;
    let reply = socket.recv().await?;
    let reply = reply.frames().first().map(text).unwrap_or_default();
    println!("{name}: {reply}");
    socket.close().await;
    Ok((name, reply))
}

/// A worker: "READY", then request after request until told to stop. Returns how many it handled.
async fn worker(endpoint: String, name: String, mut stop: watch::Receiver<bool>) -> Result<usize, BoxError> {
    let socket = named_req(&endpoint, &name)?;
    // Tell the broker we're ready for work.
    socket.send("READY").await?;
    let mut handled = 0;
    loop {
        let request = tokio::select! {
            request = socket.recv() => request?,
            _ = stop.changed() => break,
        };
        // The request is [client][][body]; the reply goes back in the same envelope.
        let Some((client, rest)) = request.frames().split_first() else {
            return Err(format!("{name}: empty request").into());
        };
        println!("{name}: {} from {}", rest.last().map(text).unwrap_or_default(), text(client));
        socket.send(Msg::from(vec![client.clone(), Bytes::new(), Bytes::from_static(b"OK")])).await?;
        handled += 1;
    }
    socket.close().await;
    Ok(handled)
}

/// Runs the broker with `config.clients` clients and `config.workers` workers until every client has
/// its reply.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let frontend = Socket::new(SocketType::Router)?;
    let backend = Socket::new(SocketType::Router)?;
    let frontend_endpoint = frontend.bind("tcp://127.0.0.1:*").await?;
    let backend_endpoint = backend.bind(&unique_inproc("lbbroker-backend")).await?;

    let (stop, stopped) = watch::channel(false);
    let clients: Vec<_> = (0..config.clients)
        .map(|i| tokio::spawn(client(frontend_endpoint.clone(), format!("Client-{i}"))))
        .collect();
    let workers: Vec<_> = (0..config.workers)
        .map(|i| {
            let name = format!("Worker-{i}");
            (name.clone(), tokio::spawn(worker(backend_endpoint.clone(), name, stopped.clone())))
        })
        .collect();

    // The queue of idle workers, least recently used first.
    let mut idle: VecDeque<Bytes> = VecDeque::new();
    let mut routed_to = BTreeMap::new();
    let mut clients_left = config.clients;
    while clients_left > 0 {
        tokio::select! {
            // Always handle worker activity on the backend.
            msg = backend.recv() => {
                let msg = msg?;
                match msg.frames() {
                    // [worker][]["READY"]: a new worker.
                    [worker, d, ready] if d.is_empty() && ready == "READY" => idle.push_back(worker.clone()),
                    // [worker][][client][][reply]: pass the reply on to the client.
                    [worker, d1, client, d2, reply] if d1.is_empty() && d2.is_empty() => {
                        idle.push_back(worker.clone());
                        let reply = vec![client.clone(), Bytes::new(), reply.clone()];
                        frontend.send(Msg::from(reply)).await?;
                        clients_left -= 1;
                    }
                    _ => return Err(format!("malformed message from a worker: {msg:?}").into()),
                }
            }
            // Take a client request only if there is a worker to give it to.
            msg = frontend.recv(), if !idle.is_empty() => {
                let msg = msg?;
                let [client, d, request] = msg.frames() else {
                    return Err(format!("malformed request: {msg:?}").into());
                };
                if !d.is_empty() {
                    return Err(format!("request without delimiter: {msg:?}").into());
                }
                let worker = idle.pop_front().ok_or("no idle worker")?;
                routed_to.insert(text(client), text(&worker));
                let forward = vec![worker, Bytes::new(), client.clone(), Bytes::new(), request.clone()];
                backend.send(Msg::from(forward)).await?;
            }
        }
    }

    let mut replies = BTreeMap::new();
    for handle in clients {
        let (name, reply) = handle.await??;
        replies.insert(name, reply);
    }
    // Every client is served: tell the workers to stop.
    stop.send_replace(true);
    let mut handled = BTreeMap::new();
    for (name, handle) in workers {
        handled.insert(name, handle.await??);
    }
    frontend.close().await;
    backend.close().await;
    Ok(Report { config, replies, handled, routed_to })
}

#[allow(dead_code)] // unused when the file is included as a module by tests/guide.rs
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let defaults = Config::default();
    let config = Config { clients: arg(1, defaults.clients)?, workers: arg(2, defaults.workers)? };
    let report = run(config).await?;
    for (worker, n) in &report.handled {
        println!("{worker} handled {n} requests");
    }
    println!("{}", report.summary());
    Ok(())
}
