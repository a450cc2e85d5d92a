//! Weather update server (ZeroMQ Guide, chapter 1: "Getting the Message Out").
//!
//! Publish-subscribe: the server binds a PUB socket and publishes an endless stream of weather
//! updates, one message each, `"zipcode temperature humidity"` (`"10001 27 43"`), for random
//! zipcodes. It does not know or care who listens: a PUB sends each update to every subscriber whose
//! subscription (a prefix of the message) matches, and drops it when nobody's does. Subscribers that
//! join late miss what went before (see `wuclient`).
//!
//! As in the Guide, temperatures are -80 to 134 and relative humidities 10 to 59. Unlike the Guide's,
//! which draws zipcodes from 0 to 99999, the zipcodes come from a small range (10000 to 10099 by
//! default), so that a client waiting for one zipcode gets its updates in milliseconds; the
//! generator is seeded, so a run's stream of updates can be reproduced ([`Weather`]); and the server
//! stops after a while (5 s by default) instead of running until killed.
//!
//! ```text
//! cargo run -p zmtp --example wuserver -- [ENDPOINT=tcp://127.0.0.1:*] [SECONDS=5] [SEED=1]
//! cargo run -p zmtp --example wuserver -- tcp://127.0.0.1:5556 30     # and, in another terminal:
//! cargo run -p zmtp --example wuclient -- tcp://127.0.0.1:5556 10001
//! ```

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use zmtp::{Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;

pub use common::BoxError;
use common::Rng;

/// One weather update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The zipcode, published as five digits.
    pub zipcode: u32,
    /// Degrees Fahrenheit.
    pub temperature: i32,
    /// Relative humidity, percent.
    pub humidity: i32,
}

impl Update {
    /// The message text, as the Guide's `"%05d %d %d"`.
    pub fn to_text(self) -> String {
        format!("{:05} {} {}", self.zipcode, self.temperature, self.humidity)
    }

    /// Parses a message's text; `None` if it is not an update.
    pub fn parse(text: &[u8]) -> Option<Update> {
        let text = std::str::from_utf8(text).ok()?;
        let mut fields = text.split(' ');
        let update = Update {
            zipcode: fields.next()?.parse().ok()?,
            temperature: fields.next()?.parse().ok()?,
            humidity: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(update)
    }
}

/// The subscription (a message prefix) for one zipcode's updates: the five digits and the space
/// after them, so that zipcode 1000 does not also get 10001's.
pub fn topic(zipcode: u32) -> String {
    format!("{zipcode:05} ")
}

/// The server's stream of random updates: the same `seed` and `zipcodes` give the same stream.
#[derive(Debug, Clone)]
pub struct Weather {
    rng: Rng,
    zipcodes: Range<u32>,
}

impl Weather {
    /// The stream for `seed`, over `zipcodes` (which must not be empty).
    pub fn new(seed: u64, zipcodes: Range<u32>) -> Weather {
        assert!(!zipcodes.is_empty(), "no zipcodes to publish");
        Weather { rng: Rng::seeded(seed), zipcodes }
    }
}

impl Iterator for Weather {
    type Item = Update;

    fn next(&mut self) -> Option<Update> {
        let span = u64::from(self.zipcodes.end - self.zipcodes.start);
        let zipcode = self.zipcodes.start + self.rng.below(span) as u32;
        // The Guide's randof(215) - 80 and randof(50) + 10.
        let temperature = self.rng.below(215) as i32 - 80;
        let humidity = self.rng.below(50) as i32 + 10;
        Some(Update { zipcode, temperature, humidity })
    }
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to bind (`tcp://127.0.0.1:*`: a free port).
    pub endpoint: String,
    /// Zipcodes to publish updates for.
    pub zipcodes: Range<u32>,
    /// Seed of the random updates.
    pub seed: u64,
    /// How long [`run`] publishes.
    pub duration: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "tcp://127.0.0.1:*".to_owned(),
            zipcodes: 10000..10100,
            seed: 1,
            duration: Duration::from_secs(5),
        }
    }
}

/// What the server did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The endpoint it was bound to.
    pub endpoint: String,
    /// Zipcodes it published for.
    pub zipcodes: Range<u32>,
    /// Updates published: the first `published` of [`Weather::new`]`(seed, zipcodes)`.
    pub published: u64,
}

/// A bound server, not publishing yet.
#[derive(Debug)]
pub struct Server {
    socket: Socket,
    endpoint: String,
    weather: Weather,
}

/// Updates published between two yields to the runtime: a PUB never waits (it drops what a
/// subscriber has no room for), so the loop must give the other tasks a turn.
const BATCH: usize = 64;

impl Server {
    /// Binds the PUB socket.
    pub async fn bind(config: &Config) -> Result<Server, BoxError> {
        // Weather is perishable: closing need not wait to deliver what is still queued.
        let options = Options { linger: Some(Duration::ZERO), ..Options::default() };
        let socket = Socket::with_options(SocketType::Pub, options)?;
        let endpoint = socket.bind(&config.endpoint).await?;
        Ok(Server { socket, endpoint, weather: Weather::new(config.seed, config.zipcodes.clone()) })
    }

    /// The endpoint bound, for subscribers to connect to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Publishes updates as fast as it can until `stop` completes, then closes the socket.
    pub async fn publish_until(self, stop: impl Future<Output = ()>) -> Result<Report, BoxError> {
        let Server { socket, endpoint, mut weather } = self;
        let zipcodes = weather.zipcodes.clone();
        let mut stop = std::pin::pin!(stop);
        let mut published = 0;
        loop {
            for update in weather.by_ref().take(BATCH) {
                socket.send(update.to_text()).await?;
                published += 1;
            }
            tokio::select! {
                biased;
                () = &mut stop => break,
                () = tokio::task::yield_now() => {}
            }
        }
        socket.close().await;
        Ok(Report { endpoint, zipcodes, published })
    }
}

impl Report {
    /// The one-line summary printed at the end (`duration`: how long it ran).
    pub fn summary(&self, duration: Duration) -> String {
        let Range { start, end } = self.zipcodes;
        format!("wuserver: published weather for zipcodes {start:05}-{:05} for {duration:?}", end - 1)
    }
}

/// Binds a server and publishes for `config.duration`.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let server = Server::bind(&config).await?;
    println!("I: publishing weather updates on {}", server.endpoint());
    let report = server.publish_until(tokio::time::sleep(config.duration)).await?;
    println!("I: {} updates published", report.published);
    Ok(report)
}

#[allow(dead_code)] // unused when the file is included as a module (tests, wuclient)
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let defaults = Config::default();
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or(defaults.endpoint);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(defaults.seed);
    let config = Config { endpoint, seed, duration: Duration::from_secs(seconds), ..defaults };
    let duration = config.duration;
    let report = run(config).await?;
    println!("{}", report.summary(duration));
    Ok(())
}
