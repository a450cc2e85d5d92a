//! Lazy Pirate client (ZeroMQ Guide, chapter 4: "Client-Side Reliability (Lazy Pirate Pattern)").
//!
//! A REQ socket is strictly send-then-receive: if the reply never comes (the server crashed, is
//! overloaded, or the request was lost), the socket is stuck. The Lazy Pirate client therefore:
//!
//! 1. sends a request and waits for the reply at most `timeout` (`Options::recv_timeout`, libzmq's
//!    `ZMQ_RCVTIMEO`; [`Error::WouldBlock`] when it expires);
//! 2. on a timeout, closes the socket (with `linger` zero, dropping the stuck request), opens a new
//!    one, connects it and sends the request again;
//! 3. gives up after `retries` attempts in all: the server seems to be offline.
//!
//! Requests are sequence numbers and the server echoes them, so the client can check each reply is
//! the one it is waiting for (a late reply to an earlier attempt never reaches it: that socket is
//! gone).
//!
//! Without arguments this runs a self-contained demonstration: a flaky `lpserver` (included from
//! `lpserver.rs`) is started in-process, with one overload and one crash scripted (`--random SEED`:
//! the Guide's random faults instead), and restarted after its crash, as you would restart the
//! Guide's; the client makes 10 requests with a 250 ms timeout. With the Guide's faults the client
//! gives up now and then, as the Guide's does: the server handles one request at a time, so two
//! overloads in a row (or three crashes) outlast the three attempts. Given an endpoint the client
//! talks to a server elsewhere instead, with the Guide's 2.5 s timeout.
//!
//! ```text
//! cargo run -p zmtp --example lpclient
//! cargo run -p zmtp --example lpclient -- --random 7
//! cargo run -p zmtp --example lpclient -- tcp://127.0.0.1:5555 [REQUESTS=10]
//! ```

#[path = "lpserver.rs"]
pub mod lpserver;

use std::time::Duration;

use zmtp::{Error, Options, Socket, SocketType};

use lpserver::{BoxError, Fault, Faults, Server, ServerConfig, ServerReport};

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's endpoint.
    pub endpoint: String,
    /// Requests to make.
    pub requests: usize,
    /// How long to wait for each reply (the Guide: 2.5 s).
    pub timeout: Duration,
    /// Attempts per request, the first one included, before giving up (the Guide: 3).
    pub retries: usize,
}

/// What the client achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Requests that got their reply.
    pub ok: usize,
    /// Requests sent again after a timeout (each on a new socket).
    pub resent: usize,
    /// Whether the client gave up on the server.
    pub abandoned: bool,
}

impl ClientReport {
    /// The one-line summary printed at the end; `restarts` is how many server restarts the client
    /// lived through, when known.
    pub fn summary(&self, restarts: Option<usize>) -> String {
        let mut line = if self.abandoned {
            format!("lpclient: {} requests ok, then abandoned: server seems to be offline", self.ok)
        } else {
            format!("lpclient: {} requests ok", self.ok)
        };
        if let Some(restarts) = restarts {
            line.push_str(&format!(", server restarts survived: {restarts}"));
        }
        line
    }
}

/// A new REQ socket for `config`, connected.
fn connect(config: &ClientConfig) -> Result<Socket, BoxError> {
    let options = Options {
        recv_timeout: Some(config.timeout),
        // Closing must not wait for an unanswered request.
        linger: Some(Duration::ZERO),
        ..Options::default()
    };
    let socket = Socket::with_options(SocketType::Req, options)?;
    socket.connect(&config.endpoint)?;
    Ok(socket)
}

/// Makes `config.requests` requests, retrying as the Lazy Pirate does.
pub async fn run_client(config: &ClientConfig) -> Result<ClientReport, BoxError> {
    let mut report = ClientReport::default();
    let mut client = connect(config)?;
    for sequence in 1..=config.requests {
        let request = sequence.to_string();
        client.send(request.clone()).await?;
        let mut attempts_left = config.retries;
        loop {
            match client.recv().await {
                Ok(reply) if reply.frames().first().is_some_and(|f| f == request.as_str()) => {
                    println!("I: server replied OK ({request})");
                    report.ok += 1;
                    break;
                }
                Ok(reply) => println!("E: malformed reply from server: {reply:?}"),
                Err(Error::WouldBlock) => {
                    attempts_left -= 1;
                    // The socket is confused (it awaits a reply that may never come): close it.
                    client.close().await;
                    if attempts_left == 0 {
                        println!("E: server seems to be offline, abandoning");
                        report.abandoned = true;
                        return Ok(report);
                    }
                    println!("W: no response from server, retrying…");
                    println!("I: reconnecting to server…");
                    client = connect(config)?;
                    // Send the request again, on the new socket.
                    client.send(request.clone()).await?;
                    report.resent += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    client.close().await;
    Ok(report)
}

/// The self-contained demonstration: a supervised flaky server, and the client.
pub async fn demo(faults: Faults, requests: usize) -> Result<(ClientReport, ServerReport), BoxError> {
    let timeout = Duration::from_millis(250);
    let server_config = ServerConfig {
        work: Duration::from_millis(10),
        overload: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(500),
    };
    let server = Server::bind("tcp://127.0.0.1:*", server_config).await?;
    let config = ClientConfig { endpoint: server.endpoint().to_owned(), requests, timeout, retries: 3 };
    let supervisor = tokio::spawn(lpserver::supervise(server, faults, Duration::from_millis(100), 10));
    let client = run_client(&config).await?;
    // The server exits once idle.
    let server = supervisor.await??;
    Ok((client, server))
}

/// The demonstration's default faults: one overload, later one crash.
pub fn scripted_faults() -> Faults {
    use Fault::{Crash, Overload};
    Faults::script([Fault::None, Fault::None, Fault::None, Overload, Fault::None, Fault::None, Crash])
}

#[allow(dead_code)] // unused when the file is included as a module by tests/guide.rs
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("--random") => {
            let faults = match args.get(1) {
                Some(seed) => Faults::guide(seed.parse()?),
                None => scripted_faults(),
            };
            let (client, server) = demo(faults, 10).await?;
            println!(
                "I: the server replied {} times, was overloaded {} times, crashed {} times",
                server.replied, server.overloads, server.crashes
            );
            println!("{}", client.summary(Some(server.restarts)));
        }
        Some(endpoint) => {
            let requests = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
            let config = ClientConfig {
                endpoint: endpoint.to_owned(),
                requests,
                timeout: Duration::from_millis(2500),
                retries: 3,
            };
            println!("I: connecting to server…");
            println!("{}", run_client(&config).await?.summary(None));
        }
    }
    Ok(())
}
