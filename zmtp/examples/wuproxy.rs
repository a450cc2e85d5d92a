//! Weather update proxy (ZeroMQ Guide, chapter 2: "Intermediaries and Proxies", the weather
//! forwarder).
//!
//! A proxy lets subscribers on another network reach the weather server (`wuserver`) through one
//! hop: its frontend XSUB connects to the server as a subscriber, its backend XPUB is bound for
//! subscribers (`wuclient`) to connect to, and [`zmtp::proxy`] forwards both ways:
//!
//! ```text
//! wuserver PUB ──updates──► frontend XSUB ──► backend XPUB ──updates──► wuclient SUB
//!              ◄─subscribe─               ◄──              ◄─subscribe─
//! ```
//!
//! Updates flow down; subscriptions flow up: the XPUB hands each new subscription (`0x01` + topic)
//! to the proxy, which sends it on through the XSUB to the server, so the server still filters at
//! the source and only the zipcodes somebody wants cross the proxy. To the server the proxy is one
//! subscriber, to the clients it is the publisher.
//!
//! Given no upstream endpoint this runs a demonstration in one process: a weather server, the proxy,
//! and two clients behind the proxy subscribed to different zipcodes, each collecting 20 updates.
//! Given one, the proxy forwards from it for a while (the Guide's runs until interrupted).
//!
//! ```text
//! cargo run -p zmtp --example wuproxy
//! cargo run -p zmtp --example wuproxy -- UPSTREAM [BIND=tcp://127.0.0.1:*] [SECONDS=10]
//! ```

#[path = "wuclient.rs"]
pub mod wuclient;

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zmtp::{Options, Socket, SocketType};

use wuclient::wuserver::{self, BoxError};

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    endpoint: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<zmtp::Result<()>>,
}

impl Proxy {
    /// Connects the frontend to the publisher at `upstream`, binds the backend to `bind` and starts
    /// forwarding.
    pub async fn start(upstream: &str, bind: &str) -> Result<Proxy, BoxError> {
        // Nothing to flush on the way out: weather updates are perishable.
        let options = Options { linger: Some(Duration::ZERO), ..Options::default() };
        // This is where the weather server sits.
        let frontend = Socket::with_options(SocketType::XSub, options.clone())?;
        frontend.connect(upstream)?;
        // This is our public endpoint for subscribers.
        let backend = Socket::with_options(SocketType::XPub, options)?;
        let endpoint = backend.bind(bind).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Run the proxy until told to stop.
            let result = tokio::select! {
                r = zmtp::proxy(&frontend, &backend, None) => r,
                _ = stopped => Ok(()),
            };
            frontend.close().await;
            backend.close().await;
            result
        });
        Ok(Proxy { endpoint, stop, task })
    }

    /// The backend's endpoint, for subscribers to connect to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops forwarding and closes both sockets.
    pub async fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

/// The demonstration's setup.
#[derive(Debug, Clone)]
pub struct Config {
    /// One client behind the proxy for each of these zipcodes.
    pub zipcodes: Vec<u32>,
    /// Updates each client collects.
    pub updates: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { zipcodes: vec![10001, 10002], updates: 20 }
    }
}

/// What the demonstration's clients got.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration run.
    pub config: Config,
    /// Each client's report, in the order of `config.zipcodes`.
    pub clients: Vec<wuclient::Report>,
    /// The server's report.
    pub server: wuserver::Report,
}

impl Report {
    /// Whether every client got all its updates, each for its own zipcode.
    pub fn every_client_served(&self) -> bool {
        self.clients.len() == self.config.zipcodes.len()
            && self.clients.iter().zip(&self.config.zipcodes).all(|(c, &zipcode)| {
                c.zipcode == zipcode
                    && c.updates.len() == self.config.updates
                    && c.updates.iter().all(|u| u.zipcode == zipcode)
            })
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let clients = self.config.zipcodes.len();
        let outcome = if self.every_client_served() {
            format!("each got {} updates for its zipcode", self.config.updates)
        } else {
            "SOME UPDATES MISSING OR MISROUTED".to_owned()
        };
        format!("wuproxy: {clients} clients behind the proxy, {outcome}")
    }
}

/// The demonstration: a weather server, the proxy in front of it, and `config.zipcodes.len()`
/// clients connected to the proxy.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let server = wuserver::Server::bind(&wuserver::Config::default()).await?;
    let proxy = Proxy::start(server.endpoint(), "tcp://127.0.0.1:*").await?;
    println!("I: proxy forwarding from {} to {}", server.endpoint(), proxy.endpoint());
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server.publish_until(async move {
        let _ = server_stopped.await;
    }));
    let clients: Vec<_> = config
        .zipcodes
        .iter()
        .map(|&zipcode| {
            let endpoint = Some(proxy.endpoint().to_owned());
            tokio::spawn(wuclient::run(wuclient::Config { endpoint, zipcode, updates: config.updates }))
        })
        .collect();
    let mut reports = Vec::new();
    let mut failure = None;
    for client in clients {
        match client.await {
            Ok(Ok(report)) => {
                println!("{}", report.summary());
                reports.push(report);
            }
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(e.into())),
        }
    }
    proxy.stop().await?;
    let _ = stop_server.send(());
    let server = server.await??;
    match failure {
        Some(e) => Err(e),
        None => Ok(Report { config, clients: reports, server }),
    }
}

#[allow(dead_code)] // unused when the file is included as a module by the tests
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let Some(upstream) = args.next() else {
        let report = run(Config::default()).await?;
        println!("{}", report.summary());
        return Ok(());
    };
    let bind = args.next().unwrap_or_else(|| "tcp://127.0.0.1:*".to_owned());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let proxy = Proxy::start(&upstream, &bind).await?;
    println!("I: forwarding weather from {upstream} to {}", proxy.endpoint());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    proxy.stop().await?;
    println!("wuproxy: forwarded from {upstream} for {seconds} s");
    Ok(())
}
