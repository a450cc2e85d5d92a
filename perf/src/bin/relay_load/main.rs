//! `relay_load`: drives a running relay (any implementation of `docs/relay-protocol.md`) over tcp
//! with `zmtp` sockets and reports what it measured.
//!
//! Three modes, one subcommand each:
//!
//! - `requests`: N clients (DEALER: the empty delimiter, then `0x07, request_id, ticker, params`) and
//!   M ingestors (a SUB on the work port and a DEALER on the response port, answering each work
//!   message `[topic, 0x01, request_id, ticker, params]` at once with `[0x02, request_id, "OK",
//!   payload]`). Closed loop with `--window` requests outstanding per client (default 1), or open
//!   loop at a fixed total rate with `--rate R`. Reports requests/s over the measured interval
//!   (after `--warmup`), request→reply latency p50/p99/p99.9/max, and the replies that were not `OK`.
//! - `pending`: a silent ingestor subscribed to `SILENT:` that never answers, `--count P` requests
//!   for it (they stay pending: give the relay a large `request_timeout_secs` and
//!   `max_pending_requests` above P), the relay's RSS with P pending, then the round-trip latency of
//!   `--roundtrips` requests answered by a separate ingestor on `LIVE:` while P are pending.
//! - `fanout`: binds a PUB where the relay's XSUB connects (`flink_market_data_endpoint`), K SUBs on
//!   the relay's market-data port, publishes `BINANCE:BTC/USDT|tick` as fast as it can for
//!   `--duration` seconds (or `--count` messages) and reports messages/s delivered to the slowest
//!   and the fastest subscriber, and the loss.
//!
//! `--relay-pid PID` adds the relay's `VmRSS` at the end and its peak `VmHWM` (from
//! `/proc/PID/status`), and the relay's CPU use over the measured interval (`/proc/PID/stat`),
//! reported beside this tool's own so a run shows which side was the bottleneck. Output: a
//! human-readable summary, then one machine-readable line `RESULT tool=relay_load mode=… key=value
//! …`. Exit status: 0 ok, 1 usage or setup failure (the relay never became ready), 2 the run did
//! not complete (replies missing at the end, requests that never became pending).
//!
//! Latency is measured from the moment a request is handed to its socket to the moment its reply
//! is read, for requests sent and answered inside the measured interval. In `--rate` mode the
//! requests are sent on tokio's 1 ms timer ticks, in bursts of `rate / 1000` round robin over the
//! clients (open loop: a slow relay does not slow the sender; a client with `--max-outstanding`
//! unanswered requests skips its turn, counted as `skipped`).
//!
//! ## Ingestor prefixes: `distinct` by default
//!
//! With `--ingestor-prefixes shared` every ingestor subscribes to `BINANCE:`, so each request goes
//! to all M of them and is answered M times; the relay forwards the first answer and drops the
//! others. That measures the redundant-ingestor deployment, but the relay (and this tool's
//! ingestors) do M work messages and M responses per request, so the figure depends on M. The
//! default, `distinct`, gives ingestor i its own exchange `EXi:` and spreads the requests evenly
//! over them: one work message and one response per request, so requests/s is the relay's cost of
//! one request whatever M is, and the load generator does as little as possible.
//!
//! ## Keeping the tool out of the way
//!
//! Everything runs on one tokio current-thread runtime (the connection drivers included), so on a
//! 2-core machine the tool takes one core and the relay the other; `BENCH_RT=multi`
//! (`BENCH_WORKERS=N`) switches to a multi-thread runtime. Sockets drain every queued message after
//! each wake-up (`try_recv`) before awaiting again, request ids carry their send time (no shared
//! map), and latencies go into a log-linear histogram (HDR-style, 1/64 relative precision), merged
//! once at the end.
//!
//! Request ids are `{run}-{client}-{seq}-{sent_ns}`: unique per run (`run` comes from the process
//! id and the clock), printable ASCII, at most 64 bytes.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use zmtp_perf::Flavor;

mod fanout;
mod histogram;
mod pending;
mod requests;
mod shared;

/// How long the tool waits for the relay to serve the ingestors' prefixes before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "relay_load", about = "Load generator for the relay (docs/relay-protocol.md)")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    mode: Mode,
}

/// Where the relay is and what to report about it.
#[derive(Debug, Clone, clap::Args)]
struct Common {
    /// The relay's host.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// `client_request_port` (ROUTER, clients).
    #[arg(long, global = true, default_value_t = 5559)]
    client_port: u16,
    /// `ingestor_work_port` (XPUB, work for ingestors).
    #[arg(long, global = true, default_value_t = 5555)]
    work_port: u16,
    /// `ingestor_response_port` (ROUTER, ingestor responses).
    #[arg(long, global = true, default_value_t = 5556)]
    response_port: u16,
    /// `market_data_pub_port` (XPUB, market-data subscribers).
    #[arg(long, global = true, default_value_t = 5558)]
    md_port: u16,
    /// The endpoint the tool's PUB binds as the upstream market-data source (fanout mode); the
    /// relay's `flink_market_data_endpoint` must point there.
    #[arg(long, global = true, default_value = "tcp://127.0.0.1:5557")]
    upstream: String,
    /// The relay's process id: report its VmRSS at the end and its peak VmHWM.
    #[arg(long, global = true)]
    relay_pid: Option<u32>,
    /// A label for the `impl=` field of the RESULT line.
    #[arg(long, global = true, default_value = "relay")]
    label: String,
}

impl Common {
    fn endpoint(&self, port: u16) -> String {
        format!("tcp://{}:{port}", self.host)
    }
}

/// The three modes.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Request/response load: N clients, M answering ingestors; closed loop or `--rate`.
    Requests(RequestsArgs),
    /// P requests left pending at a silent ingestor, then RSS and the latency of answered requests.
    Pending(PendingArgs),
    /// Market-data fan-out: one upstream PUB, K subscribers on the relay's market-data port.
    Fanout(FanoutArgs),
}

/// How ingestors subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Prefixes {
    /// Ingestor i serves its own exchange `EXi:`; clients spread requests over them.
    Distinct,
    /// Every ingestor serves `BINANCE:`: each request is answered M times (the first wins).
    Shared,
}

impl Prefixes {
    fn as_str(self) -> &'static str {
        match self {
            Prefixes::Distinct => "distinct",
            Prefixes::Shared => "shared",
        }
    }
}

/// `requests` mode.
#[derive(Debug, Clone, clap::Args)]
struct RequestsArgs {
    /// Client sockets (DEALER).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Ingestors (a SUB and a DEALER each).
    #[arg(long, default_value_t = 3)]
    ingestors: usize,
    /// Requests outstanding per client in closed-loop mode.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// `distinct`: one exchange per ingestor (default); `shared`: all serve `BINANCE:`.
    #[arg(long, value_enum, default_value_t = Prefixes::Distinct)]
    ingestor_prefixes: Prefixes,
    /// Fixed total request rate (requests/s, open loop) instead of the closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: most requests outstanding per client; requests beyond it are skipped (counted).
    #[arg(long, default_value_t = 10_000)]
    max_outstanding: u64,
    /// Seconds of load before the measured interval.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Longest wait for the last replies after the measured interval, in seconds.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Bytes of `params` in each request.
    #[arg(long, default_value_t = 32)]
    params_size: usize,
    /// Bytes of the one data frame in each ingestor response.
    #[arg(long, default_value_t = 64)]
    payload_size: usize,
}

/// `pending` mode.
#[derive(Debug, Clone, clap::Args)]
struct PendingArgs {
    /// Requests left pending at the silent ingestor.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Client sockets sending them.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Round trips measured (one client, closed loop) once the P requests are pending.
    #[arg(long, default_value_t = 5_000)]
    roundtrips: u64,
    /// Longest wait for the relay to forward all P requests, in seconds.
    #[arg(long, default_value_t = 60.0)]
    fill_timeout: f64,
    /// Seconds to wait after filling before reading the RSS.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Bytes of `params` in each request.
    #[arg(long, default_value_t = 32)]
    params_size: usize,
    /// Bytes of the data frame in each live response.
    #[arg(long, default_value_t = 64)]
    payload_size: usize,
}

/// `fanout` mode.
#[derive(Debug, Clone, clap::Args)]
struct FanoutArgs {
    /// Subscribers on the market-data port.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Seconds of publishing (unless `--count` is given).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Publish exactly this many messages instead of for `--duration`.
    #[arg(long)]
    count: Option<u64>,
    /// Bytes of the payload frame (at least 9: a marker byte and a sequence number).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// The topic published (frame 0).
    #[arg(long, default_value = "BINANCE:BTC/USDT|tick")]
    topic: String,
    /// What the subscribers subscribe to.
    #[arg(long, default_value = "BINANCE:")]
    subscribe: String,
    /// Receive HWM of each subscriber socket.
    #[arg(long, default_value_t = 10_000)]
    sub_hwm: usize,
    /// Seconds a subscriber waits for more after the last message before it counts the rest lost.
    #[arg(long, default_value_t = 2.0)]
    idle: f64,
}

/// Parses the command line and runs the mode on the runtime of `zmtp_perf::run`.
fn main() {
    // Usage errors exit 1 (clap's default, 2, means "run incomplete" here); --help exits 0.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 1 } else { 0 })
    });
    zmtp_perf::run(Flavor::Current, async move {
        match cli.mode {
            Mode::Requests(a) => requests::requests(cli.common, a).await,
            Mode::Pending(a) => pending::pending(cli.common, a).await,
            Mode::Fanout(a) => fanout::fanout(cli.common, a).await,
        }
    })
}
