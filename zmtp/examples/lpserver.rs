//! Lazy Pirate server (ZeroMQ Guide, chapter 4: "Client-Side Reliability (Lazy Pirate Pattern)").
//!
//! A plain REP echo server that misbehaves on purpose, to exercise the Lazy Pirate client
//! (`lpclient`): after a few good cycles it may *crash* (close its socket without replying, as if
//! the process died) or be *overloaded* (answer only after a delay longer than the client waits). The
//! client can only notice either by a timeout; see `lpclient` for how it copes.
//!
//! As in the Guide, a crash ends the server; [`supervise`] plays the part of whoever restarts it,
//! binding a fresh socket to the same endpoint. Faults are either the Guide's (random after three good
//! cycles: a crash one time in three, otherwise an overload one time in three) or scripted, for tests.
//! Unlike the Guide's, the server also exits after some idle time without requests, so that it ends
//! on its own.
//!
//! ```text
//! cargo run -p zmtp --example lpserver -- [ENDPOINT=tcp://127.0.0.1:*] [IDLE_SECS=2] [SEED]
//! cargo run -p zmtp --example lpclient -- tcp://127.0.0.1:5555     # with this, in another terminal:
//! cargo run -p zmtp --example lpserver -- tcp://127.0.0.1:5555 60
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use zmtp::{Error, Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;

pub use common::BoxError;
use common::Rng;

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Work, then reply.
    None,
    /// Stall for [`ServerConfig::overload`], then work and reply.
    Overload,
    /// Close the socket without replying.
    Crash,
}

/// Where the faults come from.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Faults for the next requests, in order; then `random`, or no faults.
    script: VecDeque<Fault>,
    /// The Guide's random faults, after the script.
    random: Option<Rng>,
    /// Requests seen so far (the Guide's `cycles`).
    cycles: u64,
}

impl Faults {
    /// The Guide's faults: three good cycles, then a crash one time in three, else an overload one
    /// time in three. The same `seed` gives the same sequence.
    pub fn guide(seed: u64) -> Faults {
        Faults { script: VecDeque::new(), random: Some(Rng::seeded(seed)), cycles: 0 }
    }

    /// These faults for the first requests, then none.
    pub fn script(faults: impl IntoIterator<Item = Fault>) -> Faults {
        Faults { script: faults.into_iter().collect(), random: None, cycles: 0 }
    }

    /// The fault for the next request.
    pub fn next_fault(&mut self) -> Fault {
        self.cycles += 1;
        if let Some(fault) = self.script.pop_front() {
            return fault;
        }
        let Some(rng) = self.random.as_mut().filter(|_| self.cycles > 3) else { return Fault::None };
        if rng.below(3) == 0 {
            Fault::Crash
        } else if rng.below(3) == 0 {
            Fault::Overload
        } else {
            Fault::None
        }
    }
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Time to handle a normal request (the Guide: 1 s).
    pub work: Duration,
    /// Extra time an overload adds (the Guide: 2 s); make it longer than the client's timeout.
    pub overload: Duration,
    /// The server exits after this long without a request.
    pub idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            work: Duration::from_millis(10),
            overload: Duration::from_millis(400),
            idle_timeout: Duration::from_secs(2),
        }
    }
}

/// How a server's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It simulated a crash.
    Crashed,
    /// No request came for [`ServerConfig::idle_timeout`].
    Idle,
}

/// A bound REP server.
#[derive(Debug)]
pub struct Server {
    socket: Socket,
    endpoint: String,
    config: ServerConfig,
}

/// What a server did, over one life or several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// Requests replied to (an overloaded reply counts, even if nobody was left to take it).
    pub replied: usize,
    /// Overloads simulated.
    pub overloads: usize,
    /// Crashes simulated.
    pub crashes: usize,
    /// Restarts after a crash (by [`supervise`]).
    pub restarts: usize,
}

impl Server {
    /// A REP socket bound to `endpoint` (`tcp://127.0.0.1:*` picks a port).
    pub async fn bind(endpoint: &str, config: ServerConfig) -> Result<Server, BoxError> {
        let options = Options {
            recv_timeout: Some(config.idle_timeout),
            linger: Some(Duration::ZERO),
            ..Options::default()
        };
        let socket = Socket::with_options(SocketType::Rep, options)?;
        let endpoint = socket.bind(endpoint).await?;
        Ok(Server { socket, endpoint, config })
    }

    /// The endpoint bound, with the port chosen.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Echoes requests, with `faults`, until a crash or the idle timeout.
    pub async fn run(self, faults: &mut Faults, report: &mut ServerReport) -> Result<Exit, BoxError> {
        let exit = loop {
            let request = match self.socket.recv().await {
                Ok(request) => request,
                Err(Error::WouldBlock) => {
                    println!("I: no request for {:?}, exiting", self.config.idle_timeout);
                    break Exit::Idle;
                }
                Err(e) => return Err(e.into()),
            };
            let text = request.frames().first().map(|f| String::from_utf8_lossy(f).into_owned());
            match faults.next_fault() {
                Fault::Crash => {
                    println!("I: simulating a crash");
                    report.crashes += 1;
                    break Exit::Crashed;
                }
                Fault::Overload => {
                    println!("I: simulating CPU overload");
                    report.overloads += 1;
                    tokio::time::sleep(self.config.overload).await;
                }
                Fault::None => {}
            }
            println!("I: normal request ({})", text.unwrap_or_default());
            tokio::time::sleep(self.config.work).await; // Do some heavy work
            self.socket.send(request).await?;
            report.replied += 1;
        };
        self.socket.close().await;
        Ok(exit)
    }
}

/// Runs `server`, and after each crash waits `restart_delay` and starts a new one on the same
/// endpoint, at most `max_restarts` times. Ends when a server goes idle or crashes for good.
pub async fn supervise(
    mut server: Server,
    mut faults: Faults,
    restart_delay: Duration,
    max_restarts: usize,
) -> Result<ServerReport, BoxError> {
    let mut report = ServerReport::default();
    let endpoint = server.endpoint.clone();
    let config = server.config.clone();
    while server.run(&mut faults, &mut report).await? == Exit::Crashed && report.restarts < max_restarts {
        tokio::time::sleep(restart_delay).await;
        report.restarts += 1;
        println!("I: restarting the server on {endpoint}");
        server = Server::bind(&endpoint, config.clone()).await?;
    }
    Ok(report)
}

#[allow(dead_code)] // unused when the file is included as a module (tests/guide.rs, lpclient)
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or_else(|| "tcp://127.0.0.1:*".to_owned());
    let idle_secs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    // The Guide's timings: a second of work, two more when overloaded.
    let config = ServerConfig {
        work: Duration::from_secs(1),
        overload: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(idle_secs),
    };
    let server = Server::bind(&endpoint, config).await?;
    println!("I: listening on {}", server.endpoint());
    let mut report = ServerReport::default();
    let exit = server.run(&mut Faults::guide(seed), &mut report).await?;
    let how = match exit {
        Exit::Crashed => "then crashed".to_owned(),
        Exit::Idle => format!("then went idle for {idle_secs} s"),
    };
    println!("lpserver: replied to {} requests, {how}", report.replied);
    Ok(())
}
