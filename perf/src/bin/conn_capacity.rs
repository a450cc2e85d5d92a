//! `conn_capacity`: connection capacity and reconnect storms against any ZMTP ROUTER (reliability.md
//! §7c L-5, L-8; §7b B-12, B-13). The client is raw sockets (tokio TCP, not zmtp), so the same client
//! measures zmtp and libzmq; the server is another process, watched from outside through
//! `/proc/<pid>` (RSS, open descriptors, CPU) and `/proc/net/tcp` (CLOSE_WAIT).
//!
//! ```text
//! conn_capacity serve                                  zmtp ROUTER echo server (prints ENDPOINT ...)
//! conn_capacity idle  <endpoint> <server-pid> <n> [label]
//! conn_capacity storm <endpoint> <server-pid> <clients> <period-ms> <secs> [label] [samples.tsv]
//! ```
//!
//! - `serve` binds a zmtp ROUTER on `tcp://127.0.0.1:*` (NULL mechanism), prints `ENDPOINT <ep>`,
//!   and echoes every message back to its sender until killed. `scripts/capacity_server.py` is the
//!   same server in pyzmq (libzmq 4.3.5).
//! - Every client connection sends a ZMTP 3.1 NULL greeting and a READY (`Socket-Type` DEALER) and
//!   reads and checks the server's greeting and READY (`Socket-Type` ROUTER).
//! - `idle`: 16 warm-up connections, then the baseline (server RSS and descriptors after 1 s), a
//!   latency probe on one active connection, then `n` more connections (64 handshakes in flight),
//!   timed; after 2 s idle: RSS per connection, the server's CPU over 5 s of idleness, and the probe
//!   again (the n+1st, active client's latency); then all are closed and the server watched for 5 s.
//! - `storm`: a legitimate client makes a round trip every 10 ms for 5 s (before), then `clients`
//!   tasks each connect, handshake and close every `period-ms` for `secs` s (during), then 10 s
//!   after. The server's RSS, descriptors and CLOSE_WAIT sockets are sampled every 250 ms.
//!
//! `STORM_ROUNDS=N` runs N storms in a row (each with its watch after): RSS that grows round after
//! round is a leak, RSS that stays put is the allocator keeping its pages.
//! `CAPACITY_QUICK=1` cuts every settle and watch period to a fraction of a second (CI smoke run).
//!
//! Output: `RESULT conn_capacity mode=... key=value ...` lines on stdout (one per mode), progress
//! on stderr. Exit codes: 0 ok, 1 usage or setup error, 2 a handshake failed in `idle` or the
//! run timed out.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zmtp::{Options, SocketType};

const USAGE: &str = "usage: conn_capacity serve\n       conn_capacity idle <endpoint> <server-pid> <n> [label]\n       conn_capacity storm <endpoint> <server-pid> <clients> <period-ms> <secs> [label] [samples.tsv]";

/// Connections made before the baseline is read.
const WARMUP: usize = 16;
/// Handshakes the `idle` client keeps in flight: under both servers' listen backlog (100, libzmq's
/// `ZMQ_BACKLOG`), else SYNs are dropped and retried after 1 s and that, not the server, sets the rate.
const WINDOW: usize = 64;
/// Longest one connection's connect + handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Round trips of the latency probe in `idle`.
fn probe_rounds() -> usize {
    if quick() {
        200
    } else {
        2000
    }
}

/// `CAPACITY_QUICK=1`: every settle and watch period of `idle` and `storm` is cut to a fraction of a
/// second (the CI smoke run, perf/tests/conn_capacity_smoke.rs); figures are then rough.
fn quick() -> bool {
    std::env::var_os("CAPACITY_QUICK").is_some_and(|v| v == "1")
}

/// `d`, or `q` under [`quick`].
fn wait(d: Duration, q: Duration) -> Duration {
    if quick() {
        q
    } else {
        d
    }
}
/// The legitimate client's pace in `storm`.
const LEGIT_EVERY: Duration = Duration::from_millis(10);
/// How often `storm` samples the server.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Phases of `storm` around the storm itself: before, and the longest watch after (at least
/// [`WATCH`] is watched).
const BEFORE: Duration = Duration::from_secs(5);
const AFTER: Duration = Duration::from_secs(10);
/// How long the server is watched after the connections close (B-12: back to baseline within 5 s).
const WATCH: Duration = Duration::from_secs(5);
/// The payload of a probe round trip.
const PROBE: &[u8] = b"probe-0123456789-0123456789-0123456789-0123456789-0123456789-012";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    zmtp_perf::raise_nofile();
    let code = match args.first().map(String::as_str) {
        Some("serve") if args.len() == 1 => zmtp_perf::run(zmtp_perf::Flavor::Current, serve()),
        Some("idle") if (4..=5).contains(&args.len()) => {
            let n = zmtp_perf::parse_pos(&args[3], "n");
            let pid = zmtp_perf::parse_pos(&args[2], "server-pid") as u32;
            let label = args.get(4).cloned().unwrap_or_else(|| "server".to_owned());
            client_rt().block_on(idle(args[1].clone(), pid, n, label))
        }
        Some("storm") if (6..=8).contains(&args.len()) => {
            let pid = zmtp_perf::parse_pos(&args[2], "server-pid") as u32;
            let storm = Storm {
                rounds: std::env::var("STORM_ROUNDS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(1),
                endpoint: args[1].clone(),
                pid,
                clients: zmtp_perf::parse_pos(&args[3], "clients"),
                period: Duration::from_millis(zmtp_perf::parse_pos(&args[4], "period-ms") as u64),
                secs: zmtp_perf::parse_pos(&args[5], "secs") as u64,
                label: args.get(6).cloned().unwrap_or_else(|| "server".to_owned()),
                samples: args.get(7).cloned(),
            };
            client_rt().block_on(storm.run())
        }
        _ => {
            eprintln!("{USAGE}");
            1
        }
    };
    std::process::exit(code)
}

/// The client's runtime: one thread, so the client takes at most one of the machine's cores.
fn client_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("error: tokio runtime: {e}");
        std::process::exit(1);
    })
}

// ----- the zmtp server -----

async fn serve() -> i32 {
    let socket = zmtp_perf::socket(SocketType::Router, Options::default());
    let endpoint = match socket.bind("tcp://127.0.0.1:*").await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: bind: {e}");
            return 1;
        }
    };
    println!("ENDPOINT {endpoint}");
    let _ = std::io::stdout().flush();
    while let Ok(msg) = socket.recv().await {
        if socket.send(msg).await.is_err() {
            break;
        }
    }
    0
}

// ----- the server, seen from outside -----

/// What `/proc` says about the server process.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    rss_kib: u64,
    fds: u64,
    /// utime + stime in clock ticks.
    cpu_ticks: u64,
}

fn probe(pid: u32) -> Probe {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state = field 3.
    let cpu_ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15, i.e. indices 11 and 12 after the state.
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            get(11) + get(12)
        })
        .unwrap_or(0);
    Probe { rss_kib, fds, cpu_ticks }
}

#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Sockets on the server's port, on its side: (CLOSE_WAIT, ESTABLISHED). Asks the kernel through
/// netlink `sock_diag` for those two states only (as `ss` does), because `/proc/net/tcp` lists every
/// TIME_WAIT socket a storm leaves behind (hundreds of thousands: seconds of CPU per read);
/// falls back to `/proc/net/tcp` if netlink fails.
fn tcp_states(port: u16) -> (u64, u64) {
    diag_states(port).unwrap_or_else(|| proc_tcp_states(port))
}

const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE_WAIT: u8 = 8;

#[allow(unsafe_code)]
fn diag_states(port: u16) -> Option<(u64, u64)> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    // nlmsghdr (16 bytes) + inet_diag_req_v2 (56 bytes).
    let mut req = [0u8; 72];
    req[0..4].copy_from_slice(&72u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = libc::AF_INET as u8;
    req[17] = libc::IPPROTO_TCP as u8;
    let states: u32 = (1 << TCP_ESTABLISHED) | (1 << TCP_CLOSE_WAIT);
    req[20..24].copy_from_slice(&states.to_ne_bytes());
    // SAFETY: a netlink socket owned by this function, closed before it returns; send and recv are
    // given the length of the buffers they get.
    unsafe {
        let fd =
            libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG);
        if fd < 0 {
            return None;
        }
        let result = (|| {
            if libc::send(fd, req.as_ptr().cast(), req.len(), 0) != req.len() as isize {
                return None;
            }
            let (mut close_wait, mut established) = (0, 0);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                if n <= 0 {
                    return None;
                }
                let mut msg = &buf[..n as usize];
                while msg.len() >= 16 {
                    let len = u32::from_ne_bytes(msg[0..4].try_into().ok()?) as usize;
                    let kind = u16::from_ne_bytes(msg[4..6].try_into().ok()?);
                    if kind == libc::NLMSG_DONE as u16 {
                        return Some((close_wait, established));
                    }
                    if kind == libc::NLMSG_ERROR as u16 || len < 16 || len > msg.len() {
                        return None;
                    }
                    // inet_diag_msg: family, state, timer, retrans, then the socket id (sport first,
                    // big-endian).
                    let body = &msg[16..len];
                    if body.len() >= 6 && u16::from_be_bytes([body[4], body[5]]) == port {
                        match body[1] {
                            TCP_CLOSE_WAIT => close_wait += 1,
                            TCP_ESTABLISHED => established += 1,
                            _ => {}
                        }
                    }
                    msg = &msg[((len + 3) & !3).min(msg.len())..];
                }
            }
        })();
        libc::close(fd);
        result
    }
}

/// [`tcp_states`] from `/proc/net/tcp`.
fn proc_tcp_states(port: u16) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else { return (0, 0) };
    let want = format!(":{port:04X}");
    let (mut close_wait, mut established) = (0, 0);
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_), Some(local), Some(_), Some(state)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        if !local.ends_with(&want) {
            continue;
        }
        match state {
            "08" => close_wait += 1,
            "01" => established += 1,
            _ => {}
        }
    }
    (close_wait, established)
}

/// `TcpExt: ListenOverflows` of `/proc/net/netstat`: SYNs or handshakes dropped because a listen
/// backlog was full, for the whole network namespace (other processes' listeners count too).
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(keys), Some(values)) = (lines.next(), lines.next()) else { return 0 };
    keys.split_whitespace()
        .zip(values.split_whitespace())
        .find(|(k, _)| *k == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn port_of(endpoint: &str) -> Option<u16> {
    endpoint.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

// ----- the client side of a connection -----

/// ZMTP 3.1 greeting, NULL mechanism, as-server 0, and READY with `Socket-Type` DEALER.
fn hello() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    g.extend_from_slice(&[0x04, body.len() as u8]);
    g.extend_from_slice(&body);
    g
}

/// Reads one frame: (flags, body).
async fn read_frame(s: &mut TcpStream) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.map_err(|e| format!("reading a frame: {e}"))?;
    let len = if head[0] & 0x02 != 0 {
        let mut rest = [0u8; 7];
        s.read_exact(&mut rest).await.map_err(|e| format!("reading a frame: {e}"))?;
        let mut b = [0u8; 8];
        b[0] = head[1];
        b[1..].copy_from_slice(&rest);
        u64::from_be_bytes(b)
    } else {
        u64::from(head[1])
    };
    if len > 65536 {
        return Err(format!("frame of {len} bytes"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await.map_err(|e| format!("reading a frame: {e}"))?;
    Ok((head[0], body))
}

/// Connects and completes the NULL handshake as a DEALER.
async fn connect(addr: &str, hello: &[u8]) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    s.write_all(hello).await.map_err(|e| format!("sending the greeting: {e}"))?;
    let mut g = [0u8; 64];
    s.read_exact(&mut g).await.map_err(|e| format!("reading the greeting: {e}"))?;
    if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || &g[12..16] != b"NULL" {
        return Err(format!("unexpected greeting {:02x?}", &g[..16]));
    }
    let (flags, body) = read_frame(&mut s).await?;
    let router = b"\x0bSocket-Type\x00\x00\x00\x06ROUTER";
    if flags & 0x04 == 0
        || !body.starts_with(b"\x05READY")
        || !body.windows(router.len()).any(|w| w == router)
    {
        return Err(format!(
            "expected READY with Socket-Type ROUTER, got {:?}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(s)
}

async fn connect_timed(addr: &str, hello: &[u8]) -> Result<TcpStream, String> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(addr, hello))
        .await
        .unwrap_or_else(|_| Err("handshake timed out".to_owned()))
}

/// One round trip of [`PROBE`] through the echoing ROUTER.
async fn round_trip(s: &mut TcpStream) -> Result<Duration, String> {
    let mut frame = vec![0x00, PROBE.len() as u8];
    frame.extend_from_slice(PROBE);
    let t0 = Instant::now();
    s.write_all(&frame).await.map_err(|e| format!("sending: {e}"))?;
    let (flags, body) = read_frame(s).await?;
    if flags != 0 || body != PROBE {
        return Err(format!("unexpected echo: flags {flags:#04x}, {} bytes", body.len()));
    }
    Ok(t0.elapsed())
}

/// p50 and p99 in microseconds.
fn percentiles(lat: &mut [Duration]) -> (f64, f64) {
    if lat.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    lat.sort();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

fn addr_of(endpoint: &str) -> String {
    endpoint.strip_prefix("tcp://").unwrap_or(endpoint).to_owned()
}

// ----- idle -----

async fn idle(endpoint: String, pid: u32, n: usize, label: String) -> i32 {
    match idle_run(&endpoint, pid, n, &label).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {label}: {e}");
            2
        }
    }
}

async fn probe_latency(s: &mut TcpStream) -> Result<(f64, f64), String> {
    let mut lat = Vec::with_capacity(probe_rounds());
    for _ in 0..probe_rounds() {
        lat.push(round_trip(s).await?);
    }
    Ok(percentiles(&mut lat))
}

async fn idle_run(endpoint: &str, pid: u32, n: usize, label: &str) -> Result<(), String> {
    let addr = addr_of(endpoint);
    let hello = Arc::new(hello());
    let mut conns = Vec::with_capacity(n + WARMUP + 1);
    for _ in 0..WARMUP {
        conns.push(connect_timed(&addr, &hello).await?);
    }
    let mut active = connect_timed(&addr, &hello).await?;
    let (base_p50, base_p99) = probe_latency(&mut active).await?;
    tokio::time::sleep(wait(Duration::from_secs(1), Duration::from_millis(100))).await;
    let before = probe(pid);
    eprintln!("{label}: baseline rss {} KiB, {} fds; opening {n} connections", before.rss_kib, before.fds);

    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut launched = 0;
    let mut failed: Option<String> = None;
    while launched < n || !set.is_empty() {
        while launched < n && set.len() < WINDOW && failed.is_none() {
            let (addr, hello) = (addr.clone(), hello.clone());
            set.spawn(async move { connect_timed(&addr, &hello).await });
            launched += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok(s))) => conns.push(s),
            Some(Ok(Err(e))) => {
                failed.get_or_insert(format!("connection {}: {e}", conns.len()));
            }
            Some(Err(e)) => {
                failed.get_or_insert(format!("task: {e}"));
            }
            None => break,
        }
        if failed.is_some() && launched < n {
            launched = n;
        }
    }
    if let Some(e) = failed {
        return Err(format!("{e} (after {} handshakes)", conns.len() - WARMUP));
    }
    let took = started.elapsed().as_secs_f64();
    eprintln!("{label}: {n} handshakes in {took:.2} s");
    tokio::time::sleep(wait(Duration::from_secs(2), Duration::from_millis(200))).await;
    let after = probe(pid);
    let cpu0 = probe(pid).cpu_ticks;
    let t_cpu = Instant::now();
    tokio::time::sleep(wait(Duration::from_secs(5), Duration::from_millis(500))).await;
    let idle_cpu =
        (probe(pid).cpu_ticks - cpu0) as f64 / clock_ticks() / t_cpu.elapsed().as_secs_f64() * 100.0;
    let (p50, p99) = probe_latency(&mut active).await?;
    let per_conn = after.rss_kib.saturating_sub(before.rss_kib) as f64 / n as f64;
    // Closed: how long until the server's descriptors are back to the baseline.
    drop(conns);
    let closed = Instant::now();
    let mut back = None;
    let watch = wait(WATCH, Duration::from_millis(500));
    while closed.elapsed() < watch {
        if probe(pid).fds <= before.fds {
            back = Some(closed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(watch.saturating_sub(closed.elapsed())).await;
    let end = probe(pid);
    println!(
        "RESULT conn_capacity mode=idle server={label} n={n} handshake_s={took:.3} handshakes_per_s={:.0} \
         rss_before_kib={} rss_after_kib={} per_conn_kib={per_conn:.2} fds_before={} fds_after={} \
         idle_cpu_pct={idle_cpu:.2} probe_p50_us_before={base_p50:.1} probe_p99_us_before={base_p99:.1} \
         probe_p50_us_loaded={p50:.1} probe_p99_us_loaded={p99:.1} fds_back_ms={} rss_closed_5s_kib={}",
        n as f64 / took,
        before.rss_kib,
        after.rss_kib,
        before.fds,
        after.fds,
        back.map_or("-".to_owned(), |d| d.as_millis().to_string()),
        end.rss_kib,
    );
    Ok(())
}

// ----- storm -----

struct Storm {
    endpoint: String,
    pid: u32,
    clients: usize,
    period: Duration,
    secs: u64,
    label: String,
    samples: Option<String>,
    /// Storms in a row (each followed by its watch): memory that grows per round is a leak, memory
    /// that stays put is the allocator's.
    rounds: usize,
}

/// What one storm round gave.
struct Round {
    done: u64,
    errors: u64,
    secs: f64,
    last_err: Option<String>,
    at_end: Probe,
    after5: Probe,
    close_wait5: u64,
    back: Option<Duration>,
    listen_overflows: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    t: f64,
    phase: &'static str,
    probe: Probe,
    close_wait: u64,
    established: u64,
    reconnects: u64,
}

impl Storm {
    /// One storm and the watch after it.
    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        addr: &str,
        port: u16,
        hello: &Arc<Vec<u8>>,
        reconnects: &Arc<AtomicU64>,
        errors: &Arc<AtomicU64>,
        baseline: Probe,
        phase: &Arc<Mutex<&'static str>>,
    ) -> Round {
        let (done0, errors0) = (reconnects.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
        let overflows0 = listen_overflows();
        let storm_started = Instant::now();
        let storm_end = storm_started + Duration::from_secs(self.secs);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.clients {
            let (addr, hello, reconnects, errors) =
                (addr.to_owned(), hello.clone(), reconnects.clone(), errors.clone());
            let period = self.period;
            // Starts spread over one period.
            let offset = period.mul_f64(i as f64 / self.clients as f64);
            tasks.spawn(async move {
                tokio::time::sleep(offset).await;
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut last_err = None;
                while Instant::now() < storm_end {
                    tick.tick().await;
                    let r = tokio::time::timeout(Duration::from_secs(5), connect(&addr, &hello)).await;
                    match r {
                        Ok(Ok(s)) => {
                            drop(s);
                            reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            last_err = Some(e);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            last_err = Some("timed out".to_owned());
                        }
                    }
                }
                last_err
            });
        }
        let mut last_err = None;
        while let Some(r) = tasks.join_next().await {
            if let Ok(Some(e)) = r {
                last_err = Some(e);
            }
        }
        let secs = storm_started.elapsed().as_secs_f64();
        let overflows = listen_overflows().saturating_sub(overflows0);
        let at_end = probe(self.pid);
        *phase.lock().unwrap_or_else(|e| e.into_inner()) = "after";
        let ended = Instant::now();
        // After: when are descriptors and CLOSE_WAIT back to the baseline?
        let mut back = None;
        let watch = wait(WATCH, Duration::from_millis(500));
        while ended.elapsed() < AFTER {
            let p = probe(self.pid);
            let (cw, _) = tcp_states(port);
            if back.is_none() && p.fds <= baseline.fds && cw == 0 {
                back = Some(ended.elapsed());
            }
            if ended.elapsed() >= watch && back.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(watch.saturating_sub(ended.elapsed())).await;
        let after5 = probe(self.pid);
        let (close_wait5, _) = tcp_states(port);
        Round {
            done: reconnects.load(Ordering::Relaxed) - done0,
            errors: errors.load(Ordering::Relaxed) - errors0,
            secs,
            last_err,
            at_end,
            after5,
            close_wait5,
            back,
            listen_overflows: overflows,
        }
    }

    async fn run(self) -> i32 {
        match self.storm().await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {}: {e}", self.label);
                2
            }
        }
    }

    async fn storm(&self) -> Result<(), String> {
        let addr = addr_of(&self.endpoint);
        let port = port_of(&self.endpoint).ok_or("the endpoint has no port")?;
        let hello = Arc::new(hello());
        let t0 = Instant::now();
        let phase = Arc::new(Mutex::new("before"));
        let reconnects = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));

        // The sampler: a thread, so /proc reads do not delay the client's tasks.
        let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
        let sampler = {
            let (samples, phase, reconnects, stop, pid) =
                (samples.clone(), phase.clone(), reconnects.clone(), stop.clone(), self.pid);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let p = probe(pid);
                    let (close_wait, established) = tcp_states(port);
                    let s = Sample {
                        t: t0.elapsed().as_secs_f64(),
                        phase: *phase.lock().unwrap_or_else(|e| e.into_inner()),
                        probe: p,
                        close_wait,
                        established,
                        reconnects: reconnects.load(Ordering::Relaxed),
                    };
                    samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };

        // The legitimate client: a round trip every 10 ms, each tagged with its phase; on its own
        // thread and runtime, so the storm's tasks do not delay it inside this process.
        let legit = {
            let (addr, hello, phase, stop) = (addr.clone(), hello.clone(), phase.clone(), stop.clone());
            std::thread::spawn(move || {
                client_rt().block_on(async move {
                    let mut s = connect_timed(&addr, &hello).await?;
                    let mut lat: Vec<(&'static str, Duration)> = Vec::new();
                    let mut tick = tokio::time::interval(LEGIT_EVERY);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        let d = tokio::time::timeout(HANDSHAKE_TIMEOUT, round_trip(&mut s))
                            .await
                            .unwrap_or_else(|_| Err("round trip timed out".to_owned()))?;
                        lat.push((*phase.lock().unwrap_or_else(|e| e.into_inner()), d));
                    }
                    Ok::<_, String>(lat)
                })
            })
        };

        tokio::time::sleep(wait(BEFORE, Duration::from_millis(500))).await;
        let baseline = probe(self.pid);
        let mut rounds = Vec::new();
        for round in 1..=self.rounds {
            *phase.lock().unwrap_or_else(|e| e.into_inner()) = "during";
            eprintln!(
                "{}: storm {round}/{} of {} clients every {:?} for {} s (baseline rss {} KiB, {} fds)",
                self.label, self.rounds, self.clients, self.period, self.secs, baseline.rss_kib, baseline.fds
            );
            let r = self.round(&addr, port, &hello, &reconnects, &errors, baseline, &phase).await;
            eprintln!(
                "{}: {} reconnects in {:.1} s ({:.0}/s), {} errors{}; {} listen overflows; rss {} KiB 5 s after",
                self.label,
                r.done,
                r.secs,
                r.done as f64 / r.secs,
                r.errors,
                r.last_err.as_ref().map_or(String::new(), |e| format!(" (last: {e})")),
                r.listen_overflows,
                r.after5.rss_kib
            );
            rounds.push(r);
        }
        stop.store(true, Ordering::Relaxed);
        let lat = legit.join().map_err(|_| "the legitimate client panicked".to_owned())??;
        let _ = sampler.join();
        let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();

        let by_phase = |want: &str| {
            let mut v: Vec<Duration> = lat.iter().filter(|(p, _)| *p == want).map(|(_, d)| *d).collect();
            let n = v.len();
            let (p50, p99) = percentiles(&mut v);
            (n, p50, p99)
        };
        let (nb, b50, b99) = by_phase("before");
        let (nd, d50, d99) = by_phase("during");
        let during: Vec<&Sample> = samples.iter().filter(|s| s.phase == "during").collect();
        let ends = rounds.iter().map(|r| r.at_end.rss_kib).max().unwrap_or(0);
        let peak_rss = during.iter().map(|s| s.probe.rss_kib).max().unwrap_or(0).max(ends);
        let peak_fds = during.iter().map(|s| s.probe.fds).max().unwrap_or(0);
        let peak_cw = during.iter().map(|s| s.close_wait).max().unwrap_or(0);
        let done: u64 = rounds.iter().map(|r| r.done).sum();
        let errs: u64 = rounds.iter().map(|r| r.errors).sum();
        let storm_s: f64 = rounds.iter().map(|r| r.secs).sum();
        let overflows: u64 = rounds.iter().map(|r| r.listen_overflows).sum();
        let last = rounds.last().ok_or("no storm round")?;
        let back = if rounds.iter().all(|r| r.back.is_some()) {
            rounds.iter().filter_map(|r| r.back).max().map_or("-".to_owned(), |d| d.as_millis().to_string())
        } else {
            "-".to_owned()
        };
        let list =
            |f: &dyn Fn(&Round) -> u64| rounds.iter().map(|r| f(r).to_string()).collect::<Vec<_>>().join(",");
        println!(
            "RESULT conn_capacity mode=storm server={} clients={} period_ms={} secs={} rounds={} reconnects={done} \
             errors={errs} listen_overflows={overflows} reconnects_per_s={:.0} target_per_s={:.0} rss_baseline_kib={} rss_peak_kib={peak_rss} \
             rss_after5s_kib={} rss_after5s_rounds_kib={} fds_baseline={} fds_peak={peak_fds} fds_after5s={} \
             close_wait_peak={peak_cw} close_wait_after5s={} back_to_baseline_ms={back} \
             legit_n_before={nb} legit_p50_us_before={b50:.1} legit_p99_us_before={b99:.1} \
             legit_n_during={nd} legit_p50_us_during={d50:.1} legit_p99_us_during={d99:.1}",
            self.label,
            self.clients,
            self.period.as_millis(),
            self.secs,
            self.rounds,
            done as f64 / storm_s,
            self.clients as f64 / self.period.as_secs_f64(),
            baseline.rss_kib,
            last.after5.rss_kib,
            list(&|r| r.after5.rss_kib),
            baseline.fds,
            last.after5.fds,
            last.close_wait5,
        );
        if let Some(path) = &self.samples {
            let mut out =
                String::from("server\tt_s\tphase\trss_kib\tfds\tclose_wait\testablished\treconnects\n");
            for s in &samples {
                out.push_str(&format!(
                    "{}\t{:.3}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    self.label,
                    s.t,
                    s.phase,
                    s.probe.rss_kib,
                    s.probe.fds,
                    s.close_wait,
                    s.established,
                    s.reconnects
                ));
            }
            std::fs::write(path, out).map_err(|e| format!("writing {path}: {e}"))?;
        }
        Ok(())
    }
}
