//! Weather update client (ZeroMQ Guide, chapter 1: "Getting the Message Out").
//!
//! The subscriber side of publish-subscribe: a SUB socket connects to the weather server
//! (`wuserver`), subscribes to one zipcode (the message prefix `"10001 "`), collects a number of
//! updates and prints their average temperature. The subscription travels to the publisher, which
//! from then on sends only matching updates; the SUB filters too.
//!
//! A subscriber starts receiving only once its connection is made and its subscription has reached
//! the publisher: whatever was published before is gone (the Guide's "slow joiner"). For a stream
//! of weather updates that does not matter, the client simply takes the next ones; when it does,
//! see the Guide's `syncpub`/`syncsub`.
//!
//! Given no endpoint, the client starts a weather server in-process (on a free tcp port) and stops it
//! once it has its updates, so that it runs on its own. Unlike the Guide's, which waits forever, the
//! client gives up if no update for its zipcode comes for 5 s.
//!
//! ```text
//! cargo run -p zmtp --example wuclient -- [ENDPOINT] [ZIPCODE=10001] [UPDATES=20]
//! ```

#[path = "wuserver.rs"]
pub mod wuserver;

use std::time::Duration;

use zmtp::{Error, Options, Socket, SocketType};

use wuserver::{BoxError, Update};

/// What to collect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The weather server (`None`: start one in-process).
    pub endpoint: Option<String>,
    /// The zipcode to subscribe to.
    pub zipcode: u32,
    /// How many updates to average.
    pub updates: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { endpoint: None, zipcode: 10001, updates: 20 }
    }
}

/// What the client got.
#[derive(Debug, Clone)]
pub struct Report {
    /// The zipcode subscribed to.
    pub zipcode: u32,
    /// The updates received, in order.
    pub updates: Vec<Update>,
    /// The in-process server's report, if the client started one.
    pub server: Option<wuserver::Report>,
}

impl Report {
    /// The average temperature, truncated as the Guide's integer division (`None`: no updates).
    pub fn average_temperature(&self) -> Option<i64> {
        let total: i64 = self.updates.iter().map(|u| i64::from(u.temperature)).sum();
        total.checked_div(self.updates.len() as i64)
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let average = match self.average_temperature() {
            Some(t) => format!("{t}F"),
            None => "unknown".to_owned(),
        };
        format!(
            "wuclient: {} updates for zipcode {:05}, average temperature {average}",
            self.updates.len(),
            self.zipcode
        )
    }
}

/// How long the client waits for its zipcode's next update before giving up.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The Guide's client: subscribes to `zipcode` on `endpoint` and collects `updates` updates.
pub async fn collect(endpoint: &str, zipcode: u32, updates: usize) -> Result<Vec<Update>, BoxError> {
    let options = Options { recv_timeout: Some(PATIENCE), ..Options::default() };
    let subscriber = Socket::with_options(SocketType::Sub, options)?;
    subscriber.connect(endpoint)?;
    subscriber.subscribe(wuserver::topic(zipcode))?;
    let mut got = Vec::with_capacity(updates);
    while got.len() < updates {
        let msg = match subscriber.recv().await {
            Ok(msg) => msg,
            Err(Error::WouldBlock) => {
                return Err(
                    format!("no update for zipcode {zipcode:05} from {endpoint} for {PATIENCE:?}").into()
                )
            }
            Err(e) => return Err(e.into()),
        };
        let update = match msg.frames() {
            [text] => Update::parse(text),
            _ => None,
        };
        match update {
            Some(update) if update.zipcode == zipcode => got.push(update),
            _ => return Err(format!("unexpected message {msg:?}").into()),
        }
    }
    subscriber.close().await;
    Ok(got)
}

/// Collects `config.updates` updates, from an in-process server if no endpoint is given.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let Config { endpoint, zipcode, updates } = config;
    if let Some(endpoint) = endpoint {
        let updates = collect(&endpoint, zipcode, updates).await?;
        return Ok(Report { zipcode, updates, server: None });
    }
    // The hundred zipcodes around ours (10000 to 10099 for 10001).
    let first = zipcode / 100 * 100;
    let server_config = wuserver::Config { zipcodes: first..first + 100, ..wuserver::Config::default() };
    let server = wuserver::Server::bind(&server_config).await?;
    let endpoint = server.endpoint().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.publish_until(async move {
        let _ = stopped.await;
    }));
    let collected = collect(&endpoint, zipcode, updates).await;
    let _ = stop.send(());
    let server = server.await??;
    Ok(Report { zipcode, updates: collected?, server: Some(server) })
}

#[allow(dead_code)] // unused when the file is included as a module (tests, wuproxy)
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let defaults = Config::default();
    let mut args = std::env::args().skip(1).peekable();
    let endpoint = args.next_if(|a| a.contains("://"));
    let zipcode = args.next().map(|s| s.parse()).transpose()?.unwrap_or(defaults.zipcode);
    let updates = args.next().map(|s| s.parse()).transpose()?.unwrap_or(defaults.updates);
    let report = run(Config { endpoint, zipcode, updates }).await?;
    for update in &report.updates {
        println!("{}", update.to_text());
    }
    if let Some(server) = &report.server {
        println!("I: the in-process server published {} updates", server.published);
    }
    println!("{}", report.summary());
    Ok(())
}
