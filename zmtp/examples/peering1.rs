//! Prototype of the state flow between brokers (ZeroMQ Guide, chapter 3: "Prototyping the State
//! Flow", `peering1`).
//!
//! In the Guide's cluster of brokers, each broker tells the others how many workers it has free, so
//! that they know where to send overflow work. State is broadcast with publish-subscribe: each broker
//! binds a PUB socket (its *state backend*) and connects one SUB socket (its *state frontend*) to
//! every peer's state backend, subscribed to everything. A state message is two frames,
//! `[broker name][workers free]`:
//!
//! ```text
//!            ┌──────────── DC1 statebe (PUB) ────────────┐
//!            ▼                                           ▼
//!   DC2 statefe (SUB)                            DC3 statefe (SUB)      and so on for each broker
//! ```
//!
//! State is a stream of facts that are true for now; a broker that misses some (it joined late, or
//! a message was dropped) just waits for the next. That also takes care of the slow joiner: every
//! broker keeps publishing, so every peer hears it once its subscription is through.
//!
//! Here every broker is a task in one process. The Guide's broker sends its state (a random number
//! of free workers) whenever a second passes without a message in; that can starve when several
//! peers talk, so each broker here sends on a fixed heartbeat instead (100 ms). The Guide's brokers
//! run until killed; these stop once every broker has heard from every peer a few times (or after
//! a deadline), and report whom they heard.
//!
//! ```text
//! cargo run -p zmtp --example peering1 -- [NAME...]          (default: DC1 DC2 DC3)
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use zmtp::{Msg, Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;

use common::{BoxError, Rng};

/// How the brokers reach each other's state backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://127.0.0.1:*` (free ports).
    Tcp,
    /// `inproc://` names unique to the run (the Guide uses `ipc://NAME-state.ipc`).
    Inproc,
}

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The brokers' names.
    pub names: Vec<String>,
    /// How often each broker publishes its state.
    pub heartbeat: Duration,
    /// State messages each broker waits to hear from each peer before it is satisfied.
    pub updates: usize,
    /// The run ends after this long even if some broker is not satisfied.
    pub deadline: Duration,
    /// How the state backends are bound.
    pub transport: Transport,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            names: ["DC1", "DC2", "DC3"].map(String::from).to_vec(),
            heartbeat: Duration::from_millis(100),
            updates: 3,
            deadline: Duration::from_secs(5),
            transport: Transport::Tcp,
        }
    }
}

/// What one broker heard: the states each peer announced, in order, by peer name.
pub type Heard = BTreeMap<String, Vec<u32>>;

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration run.
    pub config: Config,
    /// What each broker heard, by broker name.
    pub heard: BTreeMap<String, Heard>,
}

impl Report {
    /// The peers `broker` never heard from.
    pub fn unheard(&self, broker: &str) -> Vec<&str> {
        let heard = self.heard.get(broker);
        self.config
            .names
            .iter()
            .filter(|peer| *peer != broker)
            .filter(|peer| heard.and_then(|h| h.get(*peer)).is_none_or(|states| states.is_empty()))
            .map(String::as_str)
            .collect()
    }

    /// Whether every broker heard from every peer.
    pub fn everyone_heard_everyone(&self) -> bool {
        self.config.names.iter().all(|b| self.unheard(b).is_empty())
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let n = self.config.names.len();
        let peers = match n {
            2 => "its peer".to_owned(),
            3 => "both peers".to_owned(),
            _ => format!("all {} peers", n.saturating_sub(1)),
        };
        if self.everyone_heard_everyone() {
            return format!("peering1: {n} brokers, each heard from {peers}");
        }
        let deaf: Vec<String> = self
            .config
            .names
            .iter()
            .filter_map(|b| {
                let unheard = self.unheard(b);
                (!unheard.is_empty()).then(|| format!("{b} never heard from {}", unheard.join(", ")))
            })
            .collect();
        format!("peering1: {n} brokers, {}", deaf.join("; "))
    }
}

/// Where to bind `name`'s state backend.
fn state_endpoint(transport: Transport, run: usize, name: &str) -> String {
    match transport {
        Transport::Tcp => "tcp://127.0.0.1:*".to_owned(),
        Transport::Inproc => format!("inproc://peering1-{}-{run}-{name}-state", std::process::id()),
    }
}

/// One broker: publishes its state every heartbeat and records the peers' states, until `stop`.
/// Says on `satisfied` (once) when it has heard `updates` states from each of `peers`.
async fn broker(
    name: String,
    statebe: Socket,
    statefe: Socket,
    peers: Vec<String>,
    config: Config,
    satisfied: mpsc::UnboundedSender<String>,
    mut stop: watch::Receiver<bool>,
) -> Result<Heard, BoxError> {
    let mut rng = Rng::keyed(name.as_bytes());
    let mut heard: Heard = peers.iter().map(|p| (p.clone(), Vec::new())).collect();
    let mut said = false;
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    loop {
        tokio::select! {
            msg = statefe.recv() => {
                // Handle incoming status messages.
                let msg = msg?;
                let [peer, available] = msg.frames() else {
                    return Err(format!("{name}: malformed state {msg:?}").into());
                };
                let peer = String::from_utf8_lossy(peer).into_owned();
                let available: u32 = std::str::from_utf8(available)?.parse()?;
                println!("{name}: {peer} - {available} workers free");
                heard.get_mut(&peer).ok_or_else(|| format!("{name}: state from a stranger {peer:?}"))?
                    .push(available);
                if !said && heard.values().all(|states| states.len() >= config.updates) {
                    said = true;
                    let _ = satisfied.send(name.clone());
                }
            }
            _ = heartbeat.tick() => {
                // Send a random value for worker availability.
                let available = rng.below(10);
                let state = vec![Bytes::from(name.clone()), Bytes::from(available.to_string())];
                statebe.send(Msg::from(state)).await?;
            }
            _ = stop.changed() => break,
        }
    }
    statebe.close().await;
    statefe.close().await;
    Ok(heard)
}

/// Runs the brokers until each has heard `config.updates` states from every peer, or until
/// `config.deadline`.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let mut names = config.names.clone();
    names.sort();
    names.dedup();
    if names.len() < 2 || names.len() != config.names.len() {
        return Err("peering1 needs at least two brokers, each with its own name".into());
    }
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    // State is perishable: closing need not wait to deliver it.
    let options = Options { linger: Some(Duration::ZERO), ..Options::default() };

    // Bind every state backend first, so that the frontends know where to connect.
    let mut backends = Vec::new();
    for name in &config.names {
        let statebe = Socket::with_options(SocketType::Pub, options.clone())?;
        let endpoint = statebe.bind(&state_endpoint(config.transport, run, name)).await?;
        println!("I: {name}: state backend at {endpoint}");
        backends.push((statebe, endpoint));
    }

    let (satisfied, mut satisfied_rx) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let mut brokers = Vec::new();
    for (i, (name, (statebe, _))) in config.names.iter().zip(&backends).enumerate() {
        // Connect the state frontend to all peers, subscribed to everything.
        let statefe = Socket::with_options(SocketType::Sub, options.clone())?;
        statefe.subscribe("")?;
        let mut peers = Vec::new();
        for (j, peer) in config.names.iter().enumerate().filter(|&(j, _)| j != i) {
            statefe.connect(&backends[j].1)?;
            peers.push(peer.clone());
        }
        let task = broker(
            name.clone(),
            statebe.clone(),
            statefe,
            peers,
            config.clone(),
            satisfied.clone(),
            stopped.clone(),
        );
        brokers.push((name.clone(), tokio::spawn(task)));
    }
    drop(backends);

    let all_satisfied = async {
        for _ in 0..config.names.len() {
            satisfied_rx.recv().await;
        }
    };
    if tokio::time::timeout(config.deadline, all_satisfied).await.is_err() {
        println!("W: deadline reached before every broker heard from every peer");
    }
    stop.send_replace(true);
    let mut heard = BTreeMap::new();
    for (name, task) in brokers {
        heard.insert(name, task.await??);
    }
    Ok(Report { config, heard })
}

#[allow(dead_code)] // unused when the file is included as a module by the tests
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut config = Config::default();
    let names: Vec<String> = std::env::args().skip(1).collect();
    if !names.is_empty() {
        config.names = names;
    }
    let report = run(config).await?;
    println!("{}", report.summary());
    Ok(())
}
