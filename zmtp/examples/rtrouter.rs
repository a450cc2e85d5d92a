//! ROUTER-to-ROUTER (ZeroMQ Guide, chapter 3: "Request-Reply Combinations", ROUTER-to-ROUTER).
//!
//! ROUTER to ROUTER gives N-to-N connections where either side may address any peer, and is the
//! trickiest combination: a ROUTER silently drops a message for a peer it does not know, so each side
//! must know the other's routing id before it can speak. The Guide has no listing of its own for it
//! in chapter 3 (its Freelance pattern in chapter 4 uses it); this example shows the mechanics:
//!
//! - each client ROUTER sets its own routing id (`Options::routing_id`, `ZMQ_ROUTING_ID`), so the
//!   server ROUTERs know it by that name (`client-0`, …) and can reply to it;
//! - each client connects to every server with [`Socket::connect_with_routing_id`]
//!   (`ZMQ_CONNECT_ROUTING_ID`), naming the server in its own routing table (`server-0`, …) no
//!   matter what the server announces;
//! - a client's ROUTER only knows a server once the connection's handshake is done, so clients set
//!   `router_mandatory`: a message for a server not (yet) connected fails with
//!   [`Error::HostUnreachable`] instead of vanishing, and the client retries it shortly.
//!
//! Each client sends `ROUNDS` pings to every server, each addressed `[server name][body]`; a server
//! answers `[client name][pong]`, and the client sees `[server name][pong]`. The servers stay up until
//! every client has all its pongs. (A server that closed right after its last reply could lose it:
//! zmtp's ROUTER drops messages it has already received from a peer whose connection then closes;
//! see the ignored test `rtrouter_reply_survives_the_server_closing` in `tests/guide.rs`.)
//!
//! ```text
//! cargo run -p zmtp --example rtrouter -- [CLIENTS=2] [SERVERS=2] [ROUNDS=3]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use zmtp::{Error, Msg, Options, SendError, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;

use common::{arg, BoxError};

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of client ROUTERs (they connect).
    pub clients: usize,
    /// Number of server ROUTERs (they bind).
    pub servers: usize,
    /// Pings each client sends to each server.
    pub rounds: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { clients: 2, servers: 2, rounds: 3 }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration run.
    pub config: Config,
    /// Pongs each client got, by (client name, the server name the pong came from).
    pub pongs: BTreeMap<(String, String), usize>,
    /// Pings each server got, by (server name, the client routing id they came from).
    pub pings: BTreeMap<(String, String), usize>,
}

impl Report {
    /// Whether every client exchanged every round with every server, each side naming the other.
    pub fn all_exchanged(&self) -> bool {
        let Config { clients, servers, rounds } = self.config;
        let each = |map: &BTreeMap<(String, String), usize>| {
            map.len() == clients * servers && map.values().all(|&n| n == rounds)
        };
        each(&self.pongs) && each(&self.pings)
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let Config { clients, servers, rounds } = self.config;
        let outcome = if self.all_exchanged() { "all routed by name" } else { "SOME LOST" };
        format!("rtrouter: {clients} clients x {servers} servers, {rounds} round trips each, {outcome}")
    }
}

fn text(frame: &Bytes) -> String {
    String::from_utf8_lossy(frame).into_owned()
}

/// A server: answers pings until told to stop. Returns the pings it got by client.
async fn server(
    socket: Socket,
    name: String,
    mut stop: watch::Receiver<bool>,
) -> Result<BTreeMap<(String, String), usize>, BoxError> {
    let mut pings = BTreeMap::new();
    loop {
        let msg = tokio::select! {
            msg = socket.recv() => msg?,
            _ = stop.changed() => break,
        };
        let [client, body] = msg.frames() else {
            return Err(format!("{name}: malformed ping {msg:?}").into());
        };
        println!("{name}: \"{}\" from {}", text(body), text(client));
        *pings.entry((name.clone(), text(client))).or_default() += 1;
        let pong = Bytes::from(format!("pong from {name} to {}", text(client)));
        socket.send(Msg::from(vec![client.clone(), pong])).await?;
    }
    socket.close().await;
    Ok(pings)
}

/// Sends `msg` to the peer it names, retrying while that peer is not connected yet.
async fn send_when_connected(socket: &Socket, mut msg: Msg) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match socket.send(msg).await {
            Ok(()) => return Ok(()),
            Err(SendError { error: Error::HostUnreachable(peer), msg: unsent }) => {
                if Instant::now() >= deadline {
                    return Err(format!("{} never connected", text(&peer)).into());
                }
                msg = unsent;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A client: connects to every server under a name of its choosing, then pings each of them
/// `rounds` times. Returns the pongs it got by server.
async fn client(
    name: String,
    servers: Vec<(String, String)>,
    rounds: usize,
) -> Result<BTreeMap<(String, String), usize>, BoxError> {
    let options = Options {
        // How the servers will know us.
        routing_id: Some(Bytes::from(name.clone())),
        // Report unknown peers instead of dropping what we send them.
        router_mandatory: true,
        ..Options::default()
    };
    let socket = Socket::with_options(SocketType::Router, options)?;
    for (server_name, endpoint) in &servers {
        // How we will know each server.
        socket.connect_with_routing_id(endpoint, Bytes::from(server_name.clone()))?;
    }
    let mut pongs = BTreeMap::new();
    for round in 1..=rounds {
        for (server_name, _) in &servers {
            let ping = Bytes::from(format!("ping {round} from {name}"));
            send_when_connected(&socket, Msg::from(vec![Bytes::from(server_name.clone()), ping])).await?;
        }
        for _ in &servers {
            let msg = socket.recv().await?;
            let [server, body] = msg.frames() else {
                return Err(format!("{name}: malformed pong {msg:?}").into());
            };
            println!("{name}: \"{}\" via {}", text(body), text(server));
            *pongs.entry((name.clone(), text(server))).or_default() += 1;
        }
    }
    socket.close().await;
    Ok(pongs)
}

/// Runs `config.servers` servers and `config.clients` clients until every round trip is done.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let (stop, stopped) = watch::channel(false);
    let mut servers = Vec::new();
    let mut endpoints = Vec::new();
    for s in 0..config.servers {
        let name = format!("server-{s}");
        let socket = Socket::new(SocketType::Router)?;
        let endpoint = socket.bind("tcp://127.0.0.1:*").await?;
        endpoints.push((name.clone(), endpoint));
        servers.push(tokio::spawn(server(socket, name, stopped.clone())));
    }
    let clients: Vec<_> = (0..config.clients)
        .map(|c| tokio::spawn(client(format!("client-{c}"), endpoints.clone(), config.rounds)))
        .collect();

    let mut pongs = BTreeMap::new();
    for handle in clients {
        pongs.extend(handle.await??);
    }
    // Every client has all its pongs: the servers can go.
    stop.send_replace(true);
    let mut pings = BTreeMap::new();
    for handle in servers {
        pings.extend(handle.await??);
    }
    Ok(Report { config, pongs, pings })
}

#[allow(dead_code)] // unused when the file is included as a module by tests/guide.rs
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let defaults = Config::default();
    let config = Config {
        clients: arg(1, defaults.clients)?,
        servers: arg(2, defaults.servers)?,
        rounds: arg(3, defaults.rounds)?,
    };
    let report = run(config).await?;
    println!("{}", report.summary());
    Ok(())
}
