//! The relay soak (reliability.md §7b B-22, §7c L-11): mixed load against a real `relay` process for a
//! given duration, sampled every second, with pass criteria checked at the end.
//!
//! What runs at once (all over loopback tcp, `zmtp` sockets unless said otherwise):
//!
//! - **Requests.** `clients` long-lived DEALER clients, each sending one request at a time at
//!   `client_rate` per second (closed loop with a pace: it waits for the reply, then for its next
//!   tick). Request ids are `{run}-{client}-{seq}`: every reply is matched to its request, so a reply
//!   that never comes (within `request_timeout + 13 s`) is **lost** and a second reply to an answered
//!   request is **duplicated**. Tickers alternate between `EX0:` and `EX1:`.
//! - **Ingestors**, each a separate process (`ingestor_cmd`, e.g. `relay_soak ingestor ...`): one
//!   serving `EX0:`, two serving `EX1:` (the relay forwards the first answer and drops the other). Every
//!   `kill_every` one of them, round robin, is killed with SIGKILL and started again at once. Requests
//!   in flight at its kill legitimately get `TIMEOUT` (nobody answers within `request_timeout`) or
//!   `UNAVAILABLE` (the prefix is unserved until the new process subscribes): those are answered and
//!   counted apart, never as lost.
//! - **Market data.** A PUB bound where the relay's XSUB connects publishes `md_rate` messages per
//!   second (`EX{n%2}:BTC/USDT|tick`, payload = sequence number) to `subscribers` SUBs on the relay's
//!   market-data port; each counts what it receives and the gaps in the sequence.
//! - **Churn.** `churn_rate` short-lived peers per second on the client port, in turn: a DEALER that
//!   sends one request, waits for its reply (same lost/duplicated accounting) and closes; a DEALER that
//!   connects and closes after 20 ms; a raw TCP connect and close.
//! - **Hostile peers**, one every `hostile_every`, in turn on the four ports: garbage bytes (an HTTP
//!   request and binary junk), a bad greeting (ZMTP 2.0 revision byte, or an unknown mechanism), a
//!   valid handshake then a partial frame and an RST (SO_LINGER 0). For the first two the relay must
//!   close the connection (contract: "lose their connection at once"); not closed within 10 s is a
//!   failure.
//!
//! Every second one TSV row: the relay's VmRSS (`/proc/PID/status`), open fds (`/proc/PID/fd`), CPU
//! (`/proc/PID/stat` utime+stime, % of one core over that second), the p50/p99 latency of the OK
//! replies received that second, replies by status, the running lost/duplicated counts, churn and
//! hostile peers started, kills so far, market-data messages received, and the 1-minute load average
//! of the machine (which is shared).
//!
//! Pass criteria (see [`Criteria`]): the relay's RSS after warm-up grows by at most
//! `rss_growth_pct` % (+ `rss_slack_kib`); its fd count ends within `fd_margin` of post-warm-up;
//! zero replies lost, duplicated, unexpected or malformed; no status other than OK, TIMEOUT and
//! UNAVAILABLE; every hostile peer of the first two kinds disconnected by the relay; at least one
//! ingestor kill, and after each kill of the only `EX0:` ingestor an OK reply to an `EX0:` request
//! sent after the kill within 10 s (and before its next kill; the last kill is judged only if the run
//! left it 10 s); every subscriber received market data in the last 10 % of the run; the relay
//! alive to the end and exiting 0 on SIGTERM.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zmtp::proto::loopback::null_peer_opening;
use zmtp::proto::{SocketType as WireType, Version};
use zmtp::{Msg, Options, Socket, SocketType};

/// Everything a soak run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long the load runs (sampling included).
    pub duration: Duration,
    /// The `relay` binary.
    pub relay_bin: PathBuf,
    /// Program and leading arguments that start an ingestor; `WORK_EP RESPONSE_EP PREFIX` are
    /// appended.
    pub ingestor_cmd: Vec<OsString>,
    /// Where the per-second samples go (TSV); none: not written.
    pub tsv: Option<PathBuf>,
    /// Where the relay's stderr goes; none: discarded.
    pub relay_log: Option<PathBuf>,
    /// Where the markdown summary goes; none: not written.
    pub summary_md: Option<PathBuf>,
    /// Long-lived request clients.
    pub clients: usize,
    /// Requests per second per long-lived client.
    pub client_rate: f64,
    /// Market-data subscribers.
    pub subscribers: usize,
    /// Market-data messages per second.
    pub md_rate: f64,
    /// Short-lived peers per second.
    pub churn_rate: f64,
    /// One hostile peer every this long.
    pub hostile_every: Duration,
    /// One ingestor killed (and restarted) every this long.
    pub kill_every: Duration,
    /// The relay's `request_timeout_secs`.
    pub request_timeout: Duration,
    /// The pass criteria.
    pub criteria: Criteria,
    /// Progress lines on stderr every this many samples (0: none).
    pub progress_every: usize,
}

/// Pass criteria over the samples. Warm-up is the first `warmup_frac` of the samples; "post
/// warm-up" is the mean of the next 10 % of the samples, "end" the mean of the last 10 %.
#[derive(Debug, Clone, Copy)]
pub struct Criteria {
    /// Fraction of the run that is warm-up (0.2: the first 20 %).
    pub warmup_frac: f64,
    /// Allowed RSS growth from post-warm-up to end, in % of post-warm-up.
    pub rss_growth_pct: f64,
    /// Allowed RSS growth in KiB on top of the percentage.
    pub rss_slack_kib: f64,
    /// Allowed fd growth from post-warm-up to end: the larger of this many fds and 10 %.
    pub fd_margin: f64,
}

impl Config {
    /// The defaults of the 20-minute run, for `duration`: 50 clients at 20 req/s, 10 subscribers at
    /// 500 msg/s, 100 short-lived peers/s, a hostile peer per second, an ingestor kill every
    /// `duration / 20` (at most 60 s, at least 3 s), request timeout 2 s.
    pub fn new(duration: Duration, relay_bin: PathBuf, ingestor_cmd: Vec<OsString>) -> Config {
        Config {
            duration,
            relay_bin,
            ingestor_cmd,
            tsv: None,
            relay_log: None,
            summary_md: None,
            clients: 50,
            client_rate: 20.0,
            subscribers: 10,
            md_rate: 500.0,
            churn_rate: 100.0,
            hostile_every: Duration::from_secs(1),
            kill_every: (duration / 20).clamp(Duration::from_secs(3), Duration::from_secs(60)),
            request_timeout: Duration::from_secs(2),
            criteria: Criteria {
                warmup_frac: 0.2,
                rss_growth_pct: 10.0,
                rss_slack_kib: 0.0,
                fd_margin: 16.0,
            },
            progress_every: 60,
        }
    }
}

/// One per-second sample.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub t: f64,
    /// Relay VmRSS, KiB.
    pub rss_kib: u64,
    /// Relay open fds.
    pub fds: u64,
    /// Relay threads.
    pub threads: u64,
    /// Relay CPU over the last second, % of one core.
    pub cpu_pct: f64,
    /// OK-reply latency p50 over the last second, µs (0 when none).
    pub p50_us: u64,
    /// p99, µs.
    pub p99_us: u64,
    /// Replies over the last second, by status.
    pub ok: u64,
    /// `TIMEOUT`.
    pub timeout: u64,
    /// `UNAVAILABLE`.
    pub unavailable: u64,
    /// Any other status.
    pub other: u64,
    /// Lost replies so far.
    pub lost: u64,
    /// Duplicated (or unexpected) replies so far.
    pub dup: u64,
    /// Short-lived peers started over the last second.
    pub churn: u64,
    /// Hostile peers started over the last second.
    pub hostile: u64,
    /// Ingestor kills so far.
    pub kills: u64,
    /// Market-data messages received over the last second (all subscribers).
    pub md: u64,
    /// The machine's 1-minute load average.
    pub load1: f64,
}

impl Sample {
    /// The TSV header.
    pub const HEADER: &'static str = "t_s\trss_kib\tfds\tthreads\tcpu_pct\tp50_us\tp99_us\tok\ttimeout\tunavailable\tother\tlost\tdup\tchurn\thostile\tkills\tmd_msgs\tload1";

    fn row(&self) -> String {
        format!(
            "{:.1}\t{}\t{}\t{}\t{:.1}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.2}",
            self.t,
            self.rss_kib,
            self.fds,
            self.threads,
            self.cpu_pct,
            self.p50_us,
            self.p99_us,
            self.ok,
            self.timeout,
            self.unavailable,
            self.other,
            self.lost,
            self.dup,
            self.churn,
            self.hostile,
            self.kills,
            self.md,
            self.load1
        )
    }
}

/// Counters shared by the load tasks.
#[derive(Debug, Default)]
struct Stats {
    sent: AtomicU64,
    ok: AtomicU64,
    timeout: AtomicU64,
    unavailable: AtomicU64,
    other: AtomicU64,
    lost: AtomicU64,
    late: AtomicU64,
    dup: AtomicU64,
    unexpected: AtomicU64,
    malformed: AtomicU64,
    churn: AtomicU64,
    churn_skipped: AtomicU64,
    churn_requests: AtomicU64,
    hostile: AtomicU64,
    hostile_checked: AtomicU64,
    hostile_not_closed: AtomicU64,
    hostile_connect_failed: AtomicU64,
    md: AtomicU64,
    md_gaps: AtomicU64,
    kills: AtomicU64,
    restart_failures: AtomicU64,
    /// OK latencies (µs) since the last sample.
    lat: Mutex<Vec<u32>>,
    /// All OK latencies (µs), for the run's quantiles (a few million u32 at most).
    all_lat: Mutex<Vec<u32>>,
    /// Per subscriber: messages received, and the sample index of the last one.
    md_per_sub: Mutex<Vec<(u64, u64)>>,
    /// When the sole `EX0:` ingestor was last killed ([`mono_ms`]; 0: never).
    ex0_killed_ms: AtomicU64,
    /// The earliest OK reply to an `EX0:` request sent after that kill ([`mono_ms`]; `u64::MAX`: none yet).
    ex0_back_ms: AtomicU64,
    /// The current sample index.
    tick: AtomicU64,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The per-second samples.
    pub samples: Vec<Sample>,
    /// Failed criteria, each a sentence; empty: passed.
    pub failures: Vec<String>,
    /// The summary as markdown.
    pub markdown: String,
}

/// Runs the soak on a tokio runtime of its own; `Err` when it could not be set up at all.
pub fn run(cfg: Config) -> Result<Report, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(run_async(cfg))
}

/// `n` distinct free loopback ports (listeners held together, then dropped).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind port 0: {e}"))?;
        let p = l.local_addr().map_err(|e| e.to_string())?.port();
        if !ports.contains(&p) {
            ports.push(p);
        }
        held.push(l);
    }
    Ok(ports)
}

/// An id for this run, so two runs against one relay never share a request_id.
fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    std::process::id().wrapping_mul(2_654_435_761) ^ nanos
}

/// Sends SIGTERM to `pid`.
#[allow(unsafe_code)]
fn sigterm(pid: u32) {
    // SAFETY: kill(2) on a child process id of ours; no memory is shared.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

fn ep(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

/// The relay's ports.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    work: u16,
    response: u16,
    md: u16,
    upstream: u16,
}

/// Sets `PR_SET_PDEATHSIG` (SIGKILL) so a child dies with the process that started it.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The relay process.
struct RelayProc {
    child: Child,
    pid: u32,
    dir: PathBuf,
}

impl Drop for RelayProc {
    /// Kills a relay still running (a run that ended early), and removes its config directory.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_relay(cfg: &Config, ports: Ports) -> Result<RelayProc, String> {
    let dir = std::env::temp_dir().join(format!("relay-soak-{}-{}", std::process::id(), ports.client));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = format!(
        "bind_address = \"tcp://127.0.0.1\"\nclient_request_port = {}\ningestor_work_port = {}\n\
         ingestor_response_port = {}\nmarket_data_pub_port = {}\nflink_market_data_endpoint = \"{}\"\n\
         request_timeout_secs = {}\nhandshake_timeout_secs = 5\nadmin_address = \"\"\n",
        ports.client,
        ports.work,
        ports.response,
        ports.md,
        ep(ports.upstream),
        cfg.request_timeout.as_secs_f64()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let stderr = match &cfg.relay_log {
        Some(p) => Stdio::from(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(&cfg.relay_bin);
    cmd.env("CONFIG_PATH", &path)
        // The contract's per-request info lines would be most of the relay's work: warn only.
        .env("RUST_LOG", "relay=warn,zmtp=warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", cfg.relay_bin.display()))?;
    let pid = child.id();
    Ok(RelayProc { child, pid, dir })
}

/// An ingestor process and how to start it again.
struct IngestorProc {
    child: Option<Child>,
    args: Vec<OsString>,
}

impl IngestorProc {
    fn start(cmd: &[OsString], work: &str, response: &str, prefix: &str) -> Result<IngestorProc, String> {
        let mut args: Vec<OsString> = cmd.to_vec();
        args.extend([work.into(), response.into(), prefix.into()]);
        let mut p = IngestorProc { child: None, args };
        p.spawn()?;
        Ok(p)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let Some((prog, rest)) = self.args.split_first() else { return Err("empty ingestor command".into()) };
        let mut cmd = Command::new(prog);
        cmd.args(rest).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        die_with_parent(&mut cmd);
        self.child = Some(cmd.spawn().map_err(|e| format!("cannot start the ingestor {prog:?}: {e}"))?);
        Ok(())
    }

    /// SIGKILL, reap, start again.
    fn kill_and_restart(&mut self) -> Result<(), String> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for IngestorProc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sock(t: SocketType) -> Socket {
    crate::socket(
        t,
        Options {
            send_hwm: 100_000,
            recv_hwm: 100_000,
            linger: Some(Duration::ZERO),
            reconnect_interval_max: Some(Duration::from_secs(1)),
            ..Options::default()
        },
    )
}

/// `/proc/PID/status` VmRSS (KiB) and Threads.
fn proc_status(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

fn proc_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// utime + stime of `pid`, in clock ticks (100 per second).
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let u: u64 = f.next()?.parse().ok()?;
    let s: u64 = f.next()?.parse().ok()?;
    Some(u + s)
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn quantile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    u64::from(sorted[i.min(sorted.len() - 1)])
}

fn request(id: &str, ticker: &Bytes) -> Msg {
    Msg::from(vec![
        Bytes::new(),
        Bytes::from_static(&[0x07]),
        Bytes::copy_from_slice(id.as_bytes()),
        ticker.clone(),
        Bytes::from_static(b"{\"period\":60}"),
    ])
}

/// What one reply was.
enum Status {
    Ok,
    Timeout,
    Unavailable,
    Other,
}

/// `["", 0x08, id, status, …]` → (id, status).
fn parse_reply(msg: &Msg) -> Option<(Bytes, Status)> {
    let f = msg.frames();
    if f.len() < 4 || !f[0].is_empty() || f[1].as_ref() != [0x08] {
        return None;
    }
    let st = match f[3].as_ref() {
        b"OK" => Status::Ok,
        b"TIMEOUT" => Status::Timeout,
        b"UNAVAILABLE" => Status::Unavailable,
        _ => Status::Other,
    };
    Some((f[2].clone(), st))
}

/// Milliseconds on a monotonic clock shared by the whole process.
fn mono_ms() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Stats {
    /// Counts a reply to a request sent at `sent_ms` ([`mono_ms`]) for `ticker`, `latency` after.
    fn count(&self, st: &Status, latency: Duration, ticker: &[u8], sent_ms: u64) {
        match st {
            Status::Ok => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let killed = self.ex0_killed_ms.load(Ordering::Relaxed);
                if ticker.starts_with(b"EX0:") && killed > 0 && sent_ms >= killed {
                    self.ex0_back_ms.fetch_min(sent_ms + latency.as_millis() as u64, Ordering::Relaxed);
                }
                let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
                if let Ok(mut v) = self.lat.lock() {
                    v.push(us);
                }
            }
            Status::Timeout => {
                self.timeout.fetch_add(1, Ordering::Relaxed);
            }
            Status::Unavailable => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Status::Other => {
                self.other.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The sequence number in `{run}-{client}-{seq}`.
fn seq_of(id: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(id).ok()?;
    s.rsplit('-').next()?.parse().ok()
}

/// Sends request `id` on `s` and waits for its reply, at most `lost_after`. Replies to other ids on
/// this socket are classified: a late reply to an id given up as lost, a duplicate of one already
/// answered (`seq` below the current one), or unexpected.
async fn one_request(
    s: &Socket,
    id: &str,
    seq: u64,
    ticker: &Bytes,
    lost_after: Duration,
    lost_ids: &mut HashSet<Bytes>,
    stats: &Stats,
) -> bool {
    let start = Instant::now();
    let sent_ms = mono_ms();
    if s.send(request(id, ticker)).await.is_err() {
        return false;
    }
    stats.sent.fetch_add(1, Ordering::Relaxed);
    let deadline = tokio::time::Instant::from_std(start + lost_after);
    loop {
        let msg = match tokio::time::timeout_at(deadline, s.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(_)) => return false,
            Err(_) => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: reply to {id} lost (none within {lost_after:?})");
                lost_ids.insert(Bytes::copy_from_slice(id.as_bytes()));
                return true;
            }
        };
        let Some((rid, st)) = parse_reply(&msg) else {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if rid.as_ref() == id.as_bytes() {
            stats.count(&st, start.elapsed(), ticker, sent_ms);
            return true;
        }
        if lost_ids.remove(&rid) {
            // Given up on, then answered after all: not lost but late.
            stats.lost.fetch_sub(1, Ordering::Relaxed);
            stats.late.fetch_add(1, Ordering::Relaxed);
        } else if seq_of(&rid).is_some_and(|r| r < seq) {
            stats.dup.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: duplicated reply to {}", String::from_utf8_lossy(&rid));
        } else {
            stats.unexpected.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: unexpected reply to {}", String::from_utf8_lossy(&rid));
        }
    }
}

/// A long-lived client: one request at a time, paced at `rate` per second, until `stop`.
async fn client(
    c: usize,
    ep: String,
    run: u32,
    rate: f64,
    lost_after: Duration,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    let s = sock(SocketType::Dealer);
    if s.connect(&ep).is_err() {
        return;
    }
    let ticker = Bytes::from(format!("EX{}:BTC/USDT", c % 2));
    let period = Duration::from_secs_f64(1.0 / rate);
    // Spread the clients' ticks over the period.
    let mut next = tokio::time::Instant::now() + period.mul_f64(c as f64 / 50.0 % 1.0);
    let mut lost_ids = HashSet::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += period;
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
        let id = format!("{run:08x}-{c}-{seq}");
        if !one_request(&s, &id, seq, &ticker, lost_after, &mut lost_ids, &stats).await {
            break;
        }
        seq += 1;
    }
    // Late replies still due to ids given up on are counted if they come within a second.
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while !lost_ids.is_empty() {
        let Ok(Ok(msg)) = tokio::time::timeout_at(until, s.recv()).await else { break };
        if let Some((rid, _)) = parse_reply(&msg) {
            if lost_ids.remove(&rid) {
                stats.lost.fetch_sub(1, Ordering::Relaxed);
                stats.late.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    crate::close(s, Duration::from_secs(2)).await;
}

/// One short-lived peer on the client port (`kind` 0: one request; 1: connect, close after 20 ms;
/// 2: raw TCP connect and close).
async fn churn_one(n: u64, ports: Ports, run: u32, lost_after: Duration, stats: Arc<Stats>) {
    match n % 3 {
        0 => {
            let s = sock(SocketType::Dealer);
            if s.connect(&ep(ports.client)).is_ok() {
                let ticker = Bytes::from(format!("EX{}:BTC/USDT", n % 2));
                let id = format!("{run:08x}-churn{n}-0");
                let mut lost = HashSet::new();
                one_request(&s, &id, 0, &ticker, lost_after, &mut lost, &stats).await;
                stats.churn_requests.fetch_add(1, Ordering::Relaxed);
            }
            crate::close(s, Duration::from_secs(2)).await;
        }
        1 => {
            let s = sock(SocketType::Dealer);
            let _ = s.connect(&ep(ports.client));
            tokio::time::sleep(Duration::from_millis(20)).await;
            crate::close(s, Duration::from_secs(2)).await;
        }
        _ => {
            let _ = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, ports.client)).await;
        }
    }
}

/// A ZMTP 3.1 NULL greeting (as client).
fn greeting(mechanism: &[u8], revision: u8) -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, revision];
    let mut mech = [0u8; 20];
    mech[..mechanism.len()].copy_from_slice(mechanism);
    g.extend_from_slice(&mech);
    g.push(0);
    g.extend_from_slice(&[0u8; 31]);
    g
}

/// Some junk bytes from a small xorshift of `seed`.
fn junk(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads until EOF or error (the relay closed the connection): `true`, or `false` after `limit`.
async fn closed_by_peer(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// One hostile peer: `n % 3` picks the kind, `n / 3 % 4` the port and `n / 12 % 2` the variant of
/// the kind, so every port sees every variant of every kind.
async fn hostile_one(n: u64, ports: Ports, stats: Arc<Stats>) {
    let first_variant = n / 12 % 2 == 0;
    let (port, peer_type) = match n / 3 % 4 {
        0 => (ports.client, WireType::Dealer),
        1 => (ports.work, WireType::Sub),
        2 => (ports.response, WireType::Dealer),
        _ => (ports.md, WireType::Sub),
    };
    let Ok(mut s) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        stats.hostile_connect_failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    match n % 3 {
        0 => {
            // Garbage: an HTTP request, or binary junk.
            let bytes = if first_variant {
                b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n".to_vec()
            } else {
                let mut j = junk(n, 200);
                j[0] = 0x42;
                j
            };
            let _ = s.write_all(&bytes).await;
        }
        1 => {
            // A bad greeting: ZMTP 2.0 (revision 1 in the 11th byte), or an unknown mechanism.
            let bytes = if first_variant {
                vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 5, 0, 0]
            } else {
                greeting(b"XYZZY", 1)
            };
            let _ = s.write_all(&bytes).await;
        }
        _ => {
            // A valid handshake, a partial frame (header says 255 bytes, 10 follow), then RST.
            let bytes = null_peer_opening(peer_type, Version::V3_1);
            let _ = s.write_all(&bytes).await;
            let mut buf = [0u8; 256];
            let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
            let mut partial = vec![0x00, 0xFF];
            partial.extend_from_slice(&junk(n, 10));
            let _ = s.write_all(&partial).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
            return;
        }
    }
    stats.hostile_checked.fetch_add(1, Ordering::Relaxed);
    if !closed_by_peer(&mut s, Duration::from_secs(10)).await {
        stats.hostile_not_closed.fetch_add(1, Ordering::Relaxed);
        eprintln!("soak: hostile peer {n} (kind {}, port {port}) not disconnected within 10 s", n % 3);
    }
}

/// Waits until requests for `EX0:` and `EX1:` are answered OK (both prefixes served).
async fn wait_served(ports: Ports, run: u32, limit: Duration) -> bool {
    let s = sock(SocketType::Dealer);
    if s.connect(&ep(ports.client)).is_err() {
        return false;
    }
    let deadline = Instant::now() + limit;
    let mut ok = [false; 2];
    let mut n = 0u64;
    while Instant::now() < deadline {
        for (i, done) in ok.iter().enumerate() {
            if !done {
                let id = format!("{run:08x}-probe{i}-{n}");
                n += 1;
                let _ = s.send(request(&id, &Bytes::from(format!("EX{i}:BTC/USDT")))).await;
            }
        }
        let round = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Ok(msg)) = tokio::time::timeout_at(round, s.recv()).await {
            let f = msg.frames();
            if f.len() >= 4 && f[3].as_ref() == b"OK" {
                let id = String::from_utf8_lossy(&f[2]);
                for (i, d) in ok.iter_mut().enumerate() {
                    if id.contains(&format!("-probe{i}-")) {
                        *d = true;
                    }
                }
            }
        }
        if ok.iter().all(|d| *d) {
            crate::close(s, Duration::from_secs(1)).await;
            return true;
        }
    }
    false
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// Least-squares slope of `y` over `x`.
fn slope(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// How long the prefix of a killed sole ingestor may stay unserved (restart, connect, subscribe).
const RECOVERY_LIMIT_MS: u64 = 10_000;

/// Judges the last kill of the sole `EX0:` ingestor: recovered (an OK reply to a request sent after
/// the kill, within [`RECOVERY_LIMIT_MS`]) goes to `recoveries`, else, if `final_say`, a failure
/// goes to `unrecovered`. Resets the kill.
fn judge_recovery(stats: &Stats, recoveries: &mut Vec<u64>, unrecovered: &mut Vec<String>, final_say: bool) {
    let killed = stats.ex0_killed_ms.load(Ordering::Relaxed);
    if killed == 0 {
        return;
    }
    let back = stats.ex0_back_ms.load(Ordering::Relaxed);
    if back != u64::MAX && back - killed <= RECOVERY_LIMIT_MS {
        recoveries.push(back - killed);
    } else if final_say {
        unrecovered.push(match back {
            u64::MAX => format!(
                "EX0: was not served again within {} ms of the kill of its only ingestor",
                mono_ms().saturating_sub(killed)
            ),
            _ => {
                format!("EX0: was served again only {} ms after its only ingestor was killed", back - killed)
            }
        });
    }
    stats.ex0_killed_ms.store(0, Ordering::Relaxed);
}

/// Picks free ports, binds the market-data source (the relay's XSUB connects to it) and starts the
/// relay, until it listens on its four ports; another try with other ports when a port turned out to
/// be taken in between (the relay exits 1), four at most.
async fn start_with_free_ports(cfg: &Config) -> Result<(Ports, Socket, RelayProc), String> {
    let mut last = String::new();
    for _ in 0..4 {
        let p = free_ports(5)?;
        let ports = Ports { client: p[0], work: p[1], response: p[2], md: p[3], upstream: p[4] };
        let publisher = sock(SocketType::Pub);
        if let Err(e) = publisher.bind(&ep(ports.upstream)).await {
            last = format!("bind the publisher: {e}");
            continue;
        }
        let mut relay = start_relay(cfg, ports)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = [ports.client, ports.work, ports.response, ports.md]
                .iter()
                .all(|p| std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, *p)).is_ok());
            if all {
                return Ok((ports, publisher, relay));
            }
            if let Ok(Some(st)) = relay.child.try_wait() {
                if st.code() != Some(1) {
                    return Err(format!("the relay exited at start: {st}"));
                }
                last = format!("the relay exited at start: {st} (a port taken?)");
                break;
            }
            if Instant::now() > deadline {
                let _ = relay.child.kill();
                let _ = relay.child.wait();
                return Err("the relay did not listen on its ports within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        crate::close(publisher, Duration::from_secs(1)).await;
    }
    Err(format!("could not start the relay in 4 tries; last: {last}"))
}

async fn run_async(cfg: Config) -> Result<Report, String> {
    let (ports, publisher, mut relay) = start_with_free_ports(&cfg).await?;
    let pid = relay.pid;
    let run = run_id();
    let lost_after = cfg.request_timeout + Duration::from_secs(13);
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));

    let (work, resp) = (ep(ports.work), ep(ports.response));
    let mut ingestors = Vec::new();
    for prefix in ["EX0:", "EX1:", "EX1:"] {
        ingestors.push(IngestorProc::start(&cfg.ingestor_cmd, &work, &resp, prefix)?);
    }
    if !wait_served(ports, run, Duration::from_secs(60)).await {
        let _ = relay.child.kill();
        return Err("the ingestors' prefixes were not served within 60 s".into());
    }

    // Market data: subscribers, then the publisher's task.
    if let Ok(mut v) = stats.md_per_sub.lock() {
        *v = vec![(0, 0); cfg.subscribers];
    }
    let mut tasks = Vec::new();
    for i in 0..cfg.subscribers {
        let s = sock(SocketType::Sub);
        let _ = s.subscribe(Bytes::from_static(b"EX"));
        s.connect(&ep(ports.md)).map_err(|e| format!("subscriber connect: {e}"))?;
        let (stats, stop) = (stats.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut last: Option<u64> = None;
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), s.recv()).await else {
                    continue;
                };
                let f = m.frames();
                let seq =
                    f.get(1).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.parse::<u64>().ok());
                if let (Some(prev), Some(seq)) = (last, seq) {
                    if seq > prev + 1 {
                        stats.md_gaps.fetch_add(seq - prev - 1, Ordering::Relaxed);
                    }
                }
                if seq.is_some() {
                    last = seq;
                }
                stats.md.fetch_add(1, Ordering::Relaxed);
                let tick = stats.tick.load(Ordering::Relaxed);
                if let Ok(mut v) = stats.md_per_sub.lock() {
                    v[i].0 += 1;
                    v[i].1 = tick;
                }
            }
            crate::close(s, Duration::from_secs(1)).await;
        }));
    }
    {
        let (stop, rate) = (stop.clone(), cfg.md_rate);
        let topics = [Bytes::from_static(b"EX0:BTC/USDT|tick"), Bytes::from_static(b"EX1:ETH/USDT|tick")];
        tasks.push(tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut iv = tokio::time::interval(period);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                iv.tick().await;
                let m = Msg::from(vec![topics[(n % 2) as usize].clone(), Bytes::from(n.to_string())]);
                let _ = publisher.send(m).await;
                n += 1;
            }
            crate::close(publisher, Duration::from_secs(1)).await;
        }));
    }

    // Long-lived clients.
    for c in 0..cfg.clients {
        tasks.push(tokio::spawn(client(
            c,
            ep(ports.client),
            run,
            cfg.client_rate,
            lost_after,
            stop.clone(),
            stats.clone(),
        )));
    }

    // Churn: a spawner at churn_rate, with at most 1,000 in flight.
    let churn_inflight = Arc::new(AtomicU64::new(0));
    {
        let (stop, stats, inflight, rate) =
            (stop.clone(), stats.clone(), churn_inflight.clone(), cfg.churn_rate);
        tasks.push(tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                iv.tick().await;
                if inflight.load(Ordering::Relaxed) >= 1000 {
                    stats.churn_skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                stats.churn.fetch_add(1, Ordering::Relaxed);
                inflight.fetch_add(1, Ordering::Relaxed);
                let (stats, inflight) = (stats.clone(), inflight.clone());
                tokio::spawn(async move {
                    churn_one(n, ports, run, lost_after, stats).await;
                    inflight.fetch_sub(1, Ordering::Relaxed);
                });
                n += 1;
            }
        }));
    }

    // Hostile peers.
    let hostile_inflight = Arc::new(AtomicU64::new(0));
    {
        let (stop, stats, inflight, every) =
            (stop.clone(), stats.clone(), hostile_inflight.clone(), cfg.hostile_every);
        tasks.push(tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                iv.tick().await;
                stats.hostile.fetch_add(1, Ordering::Relaxed);
                inflight.fetch_add(1, Ordering::Relaxed);
                let (stats, inflight) = (stats.clone(), inflight.clone());
                tokio::spawn(async move {
                    hostile_one(n, ports, stats).await;
                    inflight.fetch_sub(1, Ordering::Relaxed);
                });
                n += 1;
            }
        }));
    }

    // Sampling, kills, on this task.
    let mut tsv = match &cfg.tsv {
        Some(p) => {
            let mut f = std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
            writeln!(f, "{}", Sample::HEADER).map_err(|e| e.to_string())?;
            Some(f)
        }
        None => None,
    };
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut prev_cpu = proc_cpu_ticks(pid);
    let mut prev_at = Instant::now();
    let mut prev = [0u64; 7];
    let mut next_kill = t0 + cfg.kill_every;
    let mut kill_ix = 0usize;
    // Recovery times of the sole EX0: ingestor's kills (ms), and kills not recovered from.
    let mut recoveries: Vec<u64> = Vec::new();
    let mut unrecovered: Vec<String> = Vec::new();
    let mut relay_died: Option<String> = None;
    let mut restart_errors = Vec::new();
    let mut next_sample = t0 + Duration::from_secs(1);
    while t0.elapsed() < cfg.duration {
        let wake = next_sample.min(next_kill);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        if Instant::now() >= next_kill {
            next_kill += cfg.kill_every;
            let sole = kill_ix % 3 == 0;
            if sole {
                // The previous kill of the sole EX0: ingestor must have been recovered from.
                judge_recovery(&stats, &mut recoveries, &mut unrecovered, true);
            }
            let ing = &mut ingestors[kill_ix % 3];
            kill_ix += 1;
            match ing.kill_and_restart() {
                Ok(()) => {
                    stats.kills.fetch_add(1, Ordering::Relaxed);
                    if sole {
                        stats.ex0_back_ms.store(u64::MAX, Ordering::Relaxed);
                        stats.ex0_killed_ms.store(mono_ms().max(1), Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    stats.restart_failures.fetch_add(1, Ordering::Relaxed);
                    restart_errors.push(e);
                }
            }
        }
        if Instant::now() < next_sample {
            continue;
        }
        next_sample += Duration::from_secs(1);
        if let Ok(Some(st)) = relay.child.try_wait() {
            relay_died = Some(format!(
                "the relay exited during the run ({st}) at {:.0} s",
                t0.elapsed().as_secs_f64()
            ));
            break;
        }
        let now = Instant::now();
        let cpu = proc_cpu_ticks(pid);
        let secs = now.duration_since(prev_at).as_secs_f64().max(1e-3);
        let cpu_pct = match (cpu, prev_cpu) {
            (Some(a), Some(b)) => (a.saturating_sub(b)) as f64 / secs,
            _ => 0.0,
        };
        prev_cpu = cpu;
        prev_at = now;
        let (rss, threads) = proc_status(pid).unwrap_or((0, 0));
        let mut lat = std::mem::take(&mut *stats.lat.lock().map_err(|_| "poisoned")?);
        lat.sort_unstable();
        let cur = [
            stats.ok.load(Ordering::Relaxed),
            stats.timeout.load(Ordering::Relaxed),
            stats.unavailable.load(Ordering::Relaxed),
            stats.other.load(Ordering::Relaxed),
            stats.churn.load(Ordering::Relaxed),
            stats.hostile.load(Ordering::Relaxed),
            stats.md.load(Ordering::Relaxed),
        ];
        let d: Vec<u64> = cur.iter().zip(prev.iter()).map(|(a, b)| a.saturating_sub(*b)).collect();
        prev = cur;
        let s = Sample {
            t: t0.elapsed().as_secs_f64(),
            rss_kib: rss,
            fds: proc_fds(pid).unwrap_or(0),
            threads,
            cpu_pct,
            p50_us: quantile(&lat, 0.5),
            p99_us: quantile(&lat, 0.99),
            ok: d[0],
            timeout: d[1],
            unavailable: d[2],
            other: d[3],
            lost: stats.lost.load(Ordering::Relaxed),
            dup: stats.dup.load(Ordering::Relaxed) + stats.unexpected.load(Ordering::Relaxed),
            churn: d[4],
            hostile: d[5],
            kills: stats.kills.load(Ordering::Relaxed),
            md: d[6],
            load1: load1(),
        };
        if let Ok(mut all) = stats.all_lat.lock() {
            all.extend_from_slice(&lat);
        }
        if let Some(f) = tsv.as_mut() {
            let _ = writeln!(f, "{}", s.row());
            let _ = f.flush();
        }
        if cfg.progress_every > 0 && samples.len() % cfg.progress_every == 0 {
            eprintln!(
                "soak: t={:.0}s rss={} KiB fds={} cpu={:.0}% ok/s={} p50={}us p99={}us lost={} dup={} kills={} load={:.2}",
                s.t, s.rss_kib, s.fds, s.cpu_pct, s.ok, s.p50_us, s.p99_us, s.lost, s.dup, s.kills, s.load1
            );
        }
        samples.push(s);
        stats.tick.store(samples.len() as u64, Ordering::Relaxed);
    }

    // Stop the load; the clients finish their request in flight (or give it up as lost).
    stop.store(true, Ordering::Relaxed);
    let drain_deadline = Instant::now() + lost_after + Duration::from_secs(10);
    for t in tasks {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, t).await.is_err() {
            eprintln!("soak: a load task did not finish in time");
        }
    }
    while (churn_inflight.load(Ordering::Relaxed) > 0 || hostile_inflight.load(Ordering::Relaxed) > 0)
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fds_after_drain = proc_fds(pid);
    for i in &mut ingestors {
        i.stop();
    }

    // The relay: SIGTERM, exit 0 within 5 s (contract §4).
    let mut exit_status = None;
    if relay_died.is_none() {
        sigterm(pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = relay.child.try_wait() {
                exit_status = Some(st);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if exit_status.is_none() {
            let _ = relay.child.kill();
            let _ = relay.child.wait();
        }
    }

    // ---- criteria ----
    let mut failures = Vec::new();
    let c = cfg.criteria;
    let n = samples.len();
    let tenth = (n / 10).max(1);
    let warm = ((n as f64) * c.warmup_frac).ceil() as usize;
    let enough = n >= warm + tenth + tenth;
    if !enough {
        failures.push(format!("only {n} samples: too few to judge memory and fds"));
    }
    let base = if enough { &samples[warm..warm + tenth] } else { &samples[..] };
    let end = &samples[n.saturating_sub(tenth)..];
    let rss_base = mean(base.iter().map(|s| s.rss_kib as f64));
    let rss_end = mean(end.iter().map(|s| s.rss_kib as f64));
    let rss_start = samples.first().map_or(0, |s| s.rss_kib);
    let rss_max = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let growth_pct = if rss_base > 0.0 { (rss_end - rss_base) * 100.0 / rss_base } else { 0.0 };
    let rss_allowed = rss_base * c.rss_growth_pct / 100.0 + c.rss_slack_kib;
    if enough && rss_end - rss_base > rss_allowed {
        failures.push(format!(
            "RSS grew from {rss_base:.0} KiB (post-warm-up mean) to {rss_end:.0} KiB (last 10 %): {growth_pct:+.1} %, more than the {:.0} % + {:.0} KiB allowed",
            c.rss_growth_pct, c.rss_slack_kib
        ));
    }
    let post: Vec<(f64, f64)> = samples[warm.min(n)..].iter().map(|s| (s.t, s.rss_kib as f64)).collect();
    let slope_kib_h = slope(&post) * 3600.0;
    let fd_base = mean(base.iter().map(|s| s.fds as f64));
    let fd_end = mean(end.iter().map(|s| s.fds as f64));
    let fd_allowed = c.fd_margin.max(fd_base * 0.1);
    if enough && fd_end - fd_base > fd_allowed {
        failures.push(format!(
            "open fds rose from {fd_base:.1} (post-warm-up mean) to {fd_end:.1} (last 10 %), more than {fd_allowed:.0}"
        ));
    }
    let lost = stats.lost.load(Ordering::Relaxed);
    let dup = stats.dup.load(Ordering::Relaxed);
    let unexpected = stats.unexpected.load(Ordering::Relaxed);
    let malformed = stats.malformed.load(Ordering::Relaxed);
    let other = stats.other.load(Ordering::Relaxed);
    for (v, what) in [
        (lost, "replies lost"),
        (dup, "replies duplicated"),
        (unexpected, "unexpected replies (ids never sent on that socket)"),
        (malformed, "malformed replies"),
        (other, "replies with a status other than OK, TIMEOUT, UNAVAILABLE"),
    ] {
        if v > 0 {
            failures.push(format!("{v} {what}"));
        }
    }
    let kills = stats.kills.load(Ordering::Relaxed);
    if kills == 0 {
        failures.push("no ingestor was killed (the run is shorter than --kill-every)".into());
    }
    for e in &restart_errors {
        failures.push(format!("ingestor restart failed: {e}"));
    }
    // The last kill of the sole EX0: ingestor is judged only if it left it 10 s to recover.
    let last_kill = stats.ex0_killed_ms.load(Ordering::Relaxed);
    let judge_last = last_kill > 0 && mono_ms().saturating_sub(last_kill) >= RECOVERY_LIMIT_MS;
    judge_recovery(&stats, &mut recoveries, &mut unrecovered, judge_last);
    let sole_kills = kill_ix.div_ceil(3);
    if kills > 0 && recoveries.is_empty() && unrecovered.is_empty() {
        failures.push("no kill of the EX0: ingestor could be judged (the run is too short)".into());
    }
    failures.extend(unrecovered.iter().cloned());
    let not_closed = stats.hostile_not_closed.load(Ordering::Relaxed);
    if not_closed > 0 {
        failures.push(format!("{not_closed} hostile peers (garbage, bad greeting) were not disconnected by the relay within 10 s"));
    }
    let hostile = stats.hostile.load(Ordering::Relaxed);
    if hostile == 0 {
        failures.push("no hostile peer ran".into());
    }
    let subs = stats.md_per_sub.lock().map(|v| v.clone()).unwrap_or_default();
    let end_tick = n.saturating_sub(tenth) as u64;
    let silent: Vec<usize> =
        subs.iter().enumerate().filter(|(_, (_, t))| *t < end_tick).map(|(i, _)| i).collect();
    if !silent.is_empty() && enough {
        failures.push(format!("subscribers {silent:?} received no market data in the last 10 % of the run"));
    }
    if let Some(d) = &relay_died {
        failures.push(d.clone());
    } else {
        match exit_status {
            Some(st) if st.success() => {}
            Some(st) => failures.push(format!("the relay exited {st} on SIGTERM (expected 0)")),
            None => failures.push("the relay did not exit within 10 s of SIGTERM".into()),
        }
    }

    // ---- summary ----
    let mut all = std::mem::take(&mut *stats.all_lat.lock().map_err(|_| "poisoned")?);
    all.sort_unstable();
    let total_ok = stats.ok.load(Ordering::Relaxed);
    let total_to = stats.timeout.load(Ordering::Relaxed);
    let total_un = stats.unavailable.load(Ordering::Relaxed);
    let secs = samples.last().map_or(0.0, |s| s.t);
    let cpu_mean = mean(samples.iter().map(|s| s.cpu_pct));
    let cpu_max = samples.iter().map(|s| s.cpu_pct).fold(0.0, f64::max);
    let load_mean = mean(samples.iter().map(|s| s.load1));
    let load_max = samples.iter().map(|s| s.load1).fold(0.0, f64::max);
    let fd_min = samples.iter().map(|s| s.fds).min().unwrap_or(0);
    let fd_max = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    let p99_max = samples.iter().map(|s| s.p99_us).max().unwrap_or(0);
    let mut md = String::new();
    let _ = writeln!(md, "| figure | value |\n|---|---|");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(md, "| {k} | {v} |");
    };
    row(
        "verdict",
        if failures.is_empty() { "**PASS**".into() } else { format!("**FAIL** ({})", failures.join("; ")) },
    );
    row("duration", format!("{secs:.0} s ({n} samples, one per second)"));
    row(
        "load",
        format!(
            "{} long-lived clients × {} req/s; {} subscribers ← {} msg/s; {} short-lived peers/s; a hostile peer every {:?}; an ingestor killed every {:?}; request_timeout {:?}",
            cfg.clients, cfg.client_rate, cfg.subscribers, cfg.md_rate, cfg.churn_rate, cfg.hostile_every, cfg.kill_every, cfg.request_timeout
        ),
    );
    row(
        "warm-up",
        format!("first {:.0} % ({warm} s); post-warm-up = mean of samples {warm}..{}, end = mean of the last {tenth}", c.warmup_frac * 100.0, warm + tenth),
    );
    row(
        "RSS (KiB): first sample / post-warm-up / end / max",
        format!("{rss_start} / {rss_base:.0} / {rss_end:.0} / {rss_max}"),
    );
    row(
        "RSS growth after warm-up",
        format!("{growth_pct:+.2} % (allowed {:.0} % + {:.0} KiB); least-squares slope after warm-up {:+.0} KiB/h", c.rss_growth_pct, c.rss_slack_kib, slope_kib_h),
    );
    row(
        "open fds: post-warm-up / end / min / max / after drain",
        format!(
            "{fd_base:.1} / {fd_end:.1} / {fd_min} / {fd_max} / {} (allowed rise {fd_allowed:.0})",
            fds_after_drain.map_or("?".into(), |f| f.to_string())
        ),
    );
    row("relay CPU (% of one core)", format!("mean {cpu_mean:.1}, max {cpu_max:.1}"));
    row(
        "request latency (OK replies, whole run)",
        format!(
            "p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs; worst per-second p99 {p99_max} µs",
            quantile(&all, 0.5),
            quantile(&all, 0.99),
            quantile(&all, 0.999),
            all.last().copied().unwrap_or(0)
        ),
    );
    row(
        "requests",
        format!(
            "{} sent; replies OK {total_ok}, TIMEOUT {total_to}, UNAVAILABLE {total_un}, other {other}; {:.0} OK/s",
            stats.sent.load(Ordering::Relaxed),
            total_ok as f64 / secs.max(1.0)
        ),
    );
    row(
        "lost / duplicated / unexpected / malformed",
        format!(
            "{lost} / {dup} / {unexpected} / {malformed} (late, answered after being given up on: {})",
            stats.late.load(Ordering::Relaxed)
        ),
    );
    row(
        "ingestor kills (SIGKILL + restart)",
        format!("{kills} (restart failures {})", stats.restart_failures.load(Ordering::Relaxed)),
    );
    row(
        "EX0: served again after a kill of its only ingestor",
        format!(
            "{} of {sole_kills} kills judged: first OK after {} ms at most, {:.0} ms on average",
            recoveries.len(),
            recoveries.iter().max().copied().unwrap_or(0),
            mean(recoveries.iter().map(|&r| r as f64))
        ),
    );
    row(
        "short-lived peers",
        format!(
            "{} started ({} with a request), {} skipped (1,000 in flight)",
            stats.churn.load(Ordering::Relaxed),
            stats.churn_requests.load(Ordering::Relaxed),
            stats.churn_skipped.load(Ordering::Relaxed)
        ),
    );
    row(
        "hostile peers",
        format!(
            "{hostile} ({} garbage/bad-greeting checked, {not_closed} not disconnected; {} connects refused)",
            stats.hostile_checked.load(Ordering::Relaxed),
            stats.hostile_connect_failed.load(Ordering::Relaxed)
        ),
    );
    row(
        "market data",
        format!(
            "{} messages received by {} subscribers (min per subscriber {}), {} lost in sequence gaps",
            stats.md.load(Ordering::Relaxed),
            subs.len(),
            subs.iter().map(|s| s.0).min().unwrap_or(0),
            stats.md_gaps.load(Ordering::Relaxed)
        ),
    );
    row("machine load (1-min average)", format!("mean {load_mean:.2}, max {load_max:.2} (2 cores, shared)"));
    if let Some(p) = &cfg.summary_md {
        std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(Report { samples, failures, markdown: md })
}

/// The ingestor process: `WORK_EP RESPONSE_EP PREFIX`. A SUB on the work port subscribed to PREFIX
/// and a DEALER on the response port answering every work message at once with
/// `[0x02, request_id, "OK", data]`. Runs until killed (it dies with its parent too).
#[allow(unsafe_code)]
pub fn ingestor_main(args: &[String]) -> i32 {
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let [work, response, prefix] = args else {
        eprintln!("usage: ingestor WORK_EP RESPONSE_EP PREFIX");
        return 1;
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let sub = sock(SocketType::Sub);
        let dealer = sock(SocketType::Dealer);
        if sub.subscribe(Bytes::copy_from_slice(prefix.as_bytes())).is_err()
            || sub.connect(work).is_err()
            || dealer.connect(response).is_err()
        {
            eprintln!("ingestor: cannot connect");
            return 1;
        }
        let data = Bytes::from(vec![b'd'; 256]);
        loop {
            let Ok(msg) = sub.recv().await else { return 2 };
            let f = msg.frames();
            if f.len() != 5 || f[1].as_ref() != [0x01] {
                continue;
            }
            let reply = Msg::from(vec![
                Bytes::from_static(&[0x02]),
                f[2].clone(),
                Bytes::from_static(b"OK"),
                data.clone(),
            ]);
            if dealer.send(reply).await.is_err() {
                return 2;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hostile peers' valid parts must be valid, or "partial frame then RST" would test a bad
    /// greeting instead: RFC 23 greeting (64 octets, signature, version 3.1, mechanism padded to 20)
    /// (the READY that follows it is the library's `null_peer_opening`).
    #[test]
    fn greeting_and_ready_are_well_formed() {
        let g = greeting(b"NULL", 1);
        assert_eq!(g.len(), 64);
        assert_eq!((g[0], g[9], g[10], g[11]), (0xFF, 0x7F, 3, 1));
        assert_eq!(&g[12..16], b"NULL");
        assert!(g[16..32].iter().all(|&b| b == 0));
    }

    /// Duplicate detection relies on the sequence number at the end of the request id.
    #[test]
    fn request_ids_carry_their_sequence() {
        assert_eq!(seq_of(b"0badf00d-12-345"), Some(345));
        assert_eq!(seq_of(b"0badf00d-churn7-0"), Some(0));
        assert_eq!(seq_of(b"nonsense"), None);
    }

    /// The figures of the summary.
    #[test]
    fn quantiles_and_slope() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 51);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[], 0.5), 0);
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 2.0 * f64::from(i) + 1.0)).collect();
        assert!((slope(&pts) - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 1.0)]), 0.0);
    }
}
