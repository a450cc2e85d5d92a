//! Shared code of zmtp's perf tools (`src/bin/*`): the CLIs, timeouts and output of
//! `bench/README.md` (libzmq's perf tools), so any sender pairs with any receiver of another
//! implementation over the wire, and `bench/run.sh` parses our `RESULT ...` lines as theirs.
//!
//! - Throughput is measured at the receiver, from its first message to its last:
//!   `(received - 1) / elapsed` messages per second.
//! - Latency is measured at the REQ side: total time / round trips / 2.
//! - The proxy suite (`proxy`, `pub_thr`, `sub_thr`) measures at each subscriber, first to last
//!   message, and counts what it lost; `pub_thr` reports its own send rate.
//! - Every tool exits by itself: the first message is awaited at most 30 s, a gap of 10 s ends a
//!   run (a sender's blocked send gives up after 30 s, libzmq's `SNDTIMEO` there), senders wait at
//!   most 30 s for their receiver to hang up (monitor: `Disconnected` after `HandshakeSucceeded`)
//!   and never close before it does. `sub_thr` ends a run after a 5 s gap instead (exit 0, as
//!   libzmq's), `pub_thr` never waits for anyone, and `proxy` runs until its lifetime or SIGTERM.
//! - Exit codes: 0 ok, 1 usage/bind/connect error, 2 receive/send error or timeout, 3 a message of
//!   the wrong shape.
//!
//! Timeouts are kept by a [`Watchdog`] thread watching a progress counter, so the hot loops pay one
//! relaxed store per message instead of a timer per call.
//!
//! Security: `BENCH_CURVE=1` makes every tool speak CURVE (RFC 26) with the fixed keys of
//! `bench/README.md`, as bench/libzmq's `bench_secure`: the side that binds is the CURVE server,
//! the side that connects the client, and no authenticator runs (the server accepts any client key).
//! See [`secure`].
//!
//! Runtime: every tool has a default flavour (the faster one measured on a 2-core machine, see
//! [`Flavor`]); `BENCH_RT=current` or `BENCH_RT=multi` overrides it, `BENCH_WORKERS=N` sets the
//! multi-thread runtime's workers (default 2).

pub mod soak;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{CurvePublicKey, CurveSecretKey, Monitor, Msg, Options, Socket, SocketEventKind, SocketType};

/// How long the first message (or reply) is awaited.
pub const FIRST_MSG_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest gap between messages once a run has started.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a sender's send may block (libzmq's tools: `ZMQ_SNDTIMEO` 30 s).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a sender waits for its receiver to hang up, and closing sockets wait to flush.
pub const LINGER: Duration = Duration::from_secs(30);
/// The `impl=` of our `RESULT` lines.
pub const IMPL: &str = "zmtp";

/// Messages the throughput tools hand to (`send_many`) or take from (`recv_many`) a socket per call.
pub const BATCH: usize = 256;

/// The three positional arguments every tool takes.
#[derive(Debug, Clone)]
pub struct Args {
    /// The endpoint to bind or connect.
    pub endpoint: String,
    /// Message size in bytes.
    pub size: usize,
    /// Message count or round-trip count.
    pub count: usize,
}

/// Parses `<endpoint> <msg-size> <count>`; prints usage or the error and exits 1 on bad input.
/// `usage` is the whole usage line (`local_thr <bind-endpoint> <msg-size> <msg-count>`), `count_name`
/// names the third argument in error messages.
pub fn args(usage: &str, count_name: &str) -> Args {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 3 {
        eprintln!("usage: {usage}");
        std::process::exit(1);
    }
    Args { endpoint: a[0].clone(), size: parse_pos(&a[1], "msg-size"), count: parse_pos(&a[2], count_name) }
}

/// The positional arguments of a tool that takes `min` to `max` of them (the proxy suite's
/// optional last argument); prints `usage: {usage}` and exits 1 on another count.
pub fn positional(usage: &str, min: usize, max: usize) -> Vec<String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < min || a.len() > max {
        eprintln!("usage: {usage}");
        std::process::exit(1);
    }
    a
}

/// C's `atol`: optional blanks and sign, then the leading digits; 0 if there are none
/// (bench/libzmq's `pub_thr` takes its warm-up so).
pub fn atol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = rest
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |v, d| v.saturating_mul(10).saturating_add(i64::from(d - b'0')));
    if neg {
        -v
    } else {
        v
    }
}

/// Parses a positive integer or exits 1 (libzmq's tools: `strtol` and `v > 0`).
pub fn parse_pos(s: &str, name: &str) -> usize {
    match s.parse::<usize>() {
        Ok(v) if v > 0 => v,
        _ => {
            eprintln!("error: {name} must be a positive integer, got '{s}'");
            std::process::exit(1);
        }
    }
}

/// A tokio runtime flavour. Every tool defaults to [`Flavor::Current`]: on the 2-core machine
/// the figures are published from, each process then uses one core and the two processes of a
/// pair use both. Measured zmtp→zmtp (medians of 3-10 runs, receiver/sender flavours): PUSH→PULL
/// 16 B over tcp 3.36 M msg/s current/current against 2.27-2.44 M with either side multi (2
/// workers) and 2.35 M multi/multi; 256 B 2.46 M against 1.53-1.91 M; 64 KiB and 4 KiB no
/// difference beyond the noise; REQ↔REP latency no difference beyond the noise (±10 %, so the
/// cheaper runtime: one thread, no idle worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// One thread: the tool's code and the socket's connection drivers take turns.
    Current,
    /// A multi-thread runtime (`BENCH_WORKERS`, default 2 workers) with the tool's code spawned on
    /// it: the application and a connection driver can run in parallel.
    Multi,
}

/// The flavour to use: `BENCH_RT` (`current` or `multi`) if set, else `default`.
pub fn flavor(default: Flavor) -> Flavor {
    match std::env::var("BENCH_RT").as_deref() {
        Ok("current") => Flavor::Current,
        Ok("multi") => Flavor::Multi,
        _ => default,
    }
}

fn workers() -> usize {
    std::env::var("BENCH_WORKERS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(2)
}

/// Runs `main` to completion on a runtime of [`flavor`]`(default)` and exits the process with the
/// code it returns (without waiting for the runtime's other tasks).
pub fn run<F>(default: Flavor, main: F) -> !
where
    F: Future<Output = i32> + Send + 'static,
{
    let built = match flavor(default) {
        Flavor::Current => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Flavor::Multi => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(workers()).enable_all().build()
        }
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    // Spawned, not run by block_on itself: tokio's block_on polls its own future only between
    // batches of up to 61 task polls, and a busy connection driver re-wakes itself after every 16
    // rounds, so a block_on receiver lets the driver fill the queue up to its HWM (64 KiB messages:
    // ~60 MB RSS instead of ~10 MB). On the multi-thread runtime it also runs on a worker rather
    // than on the main thread.
    let code = rt.block_on(rt.spawn(main)).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        2
    });
    std::process::exit(code)
}

/// bench/README.md's CURVE server public key (Z85).
pub const CURVE_SERVER_PUBLIC: &str = "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo";
/// bench/README.md's CURVE server secret key (Z85).
pub const CURVE_SERVER_SECRET: &str = "CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP";
/// bench/README.md's CURVE client public key (Z85).
pub const CURVE_CLIENT_PUBLIC: &str = "ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS";
/// bench/README.md's CURVE client secret key (Z85).
pub const CURVE_CLIENT_SECRET: &str = ")FimV5Q9q[a+.pe7>!fHPlt[<Bvw{.y?1J@=+2mh";

/// How a socket reaches its peers, which decides its CURVE role under `BENCH_CURVE=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The socket binds: CURVE server.
    Bind,
    /// The socket connects: CURVE client.
    Connect,
}

/// Whether `BENCH_CURVE` is exactly `1` (as bench/libzmq's `bench_secure` checks it).
pub fn curve_enabled() -> bool {
    std::env::var_os("BENCH_CURVE").is_some_and(|v| v == "1")
}

/// `options` with bench/libzmq's `bench_secure` applied for a socket in `role`: unchanged
/// unless `BENCH_CURVE=1`; then a binding socket is a CURVE server (`curve_server` and the server
/// secret key) and a connecting one a CURVE client (the server's public key, the client's public
/// and secret keys). No authenticator is set, so the server accepts any client key.
pub fn secure(options: Options, role: Role) -> Options {
    if !curve_enabled() {
        return options;
    }
    match role {
        Role::Bind => Options {
            curve_server: true,
            curve_secret_key: Some(curve_secret(CURVE_SERVER_SECRET)),
            ..options
        },
        Role::Connect => Options {
            curve_server_key: Some(curve_public(CURVE_SERVER_PUBLIC)),
            curve_public_key: Some(curve_public(CURVE_CLIENT_PUBLIC)),
            curve_secret_key: Some(curve_secret(CURVE_CLIENT_SECRET)),
            ..options
        },
    }
}

fn curve_public(z85: &str) -> CurvePublicKey {
    CurvePublicKey::from_z85(z85).unwrap_or_else(|e| {
        eprintln!("error: CURVE public key {z85}: {e}");
        std::process::exit(1);
    })
}

fn curve_secret(z85: &str) -> CurveSecretKey {
    CurveSecretKey::from_z85(z85).unwrap_or_else(|e| {
        eprintln!("error: CURVE secret key: {e}");
        std::process::exit(1);
    })
}

/// A socket of `socket_type` with `options`, or exits 1.
pub fn socket(socket_type: SocketType, options: Options) -> Socket {
    match Socket::with_options(socket_type, options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: socket: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints the human lines and the one machine line the runner parses (as bench/libzmq's `print_thr`).
pub fn print_thr(tool: &str, size: usize, count: usize, received: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 && received > 1 { (received - 1) as f64 / secs } else { 0.0 };
    let mbps = rate * size as f64 * 8.0 / 1e6;
    println!("message size: {size} [B]");
    println!("message count: {count}");
    println!("mean throughput: {rate:.0} [msg/s]");
    println!("mean throughput: {mbps:.3} [Mb/s]");
    println!(
        "RESULT tool={tool} impl={IMPL} size={size} count={count} received={received} elapsed_s={secs:.6} msgs_per_s={rate:.0} mbps={mbps:.3}"
    );
}

/// Prints remote_lat's lines: average one-way latency = elapsed / round trips / 2.
pub fn print_lat(size: usize, count: usize, done: u64, elapsed: Duration) {
    let lat_us = if done > 0 { elapsed.as_secs_f64() * 1e6 / done as f64 / 2.0 } else { 0.0 };
    println!("message size: {size} [B]");
    println!("roundtrip count: {count}");
    println!("average latency: {lat_us:.3} [us]");
    println!(
        "RESULT tool=remote_lat impl={IMPL} size={size} count={count} received={done} elapsed_s={:.6} latency_us={lat_us:.3}",
        elapsed.as_secs_f64()
    );
}

/// A progress counter watched by a plain thread: if it does not move for `first` (before any
/// progress) or `idle` (after), the stall handler runs with the progress so far and the instant
/// given to [`Watchdog::mark_start`], and the process exits with the code it returns.
#[derive(Debug, Clone)]
pub struct Watchdog {
    inner: Arc<WatchdogInner>,
}

#[derive(Debug)]
struct WatchdogInner {
    progress: AtomicU64,
    stopped: AtomicBool,
    start: OnceLock<Instant>,
}

impl Watchdog {
    /// Starts watching.
    pub fn start<F>(first: Duration, idle: Duration, on_stall: F) -> Watchdog
    where
        F: FnOnce(u64, Option<Instant>) -> i32 + Send + 'static,
    {
        let inner = Arc::new(WatchdogInner {
            progress: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            start: OnceLock::new(),
        });
        let watched = inner.clone();
        let spawned = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
            let mut last = 0;
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(20));
                if watched.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let now = watched.progress.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                    continue;
                }
                if since.elapsed() >= if now == 0 { first } else { idle } {
                    let code = on_stall(now, watched.start.get().copied());
                    std::process::exit(code);
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("error: watchdog thread: {e}");
            std::process::exit(1);
        }
        Watchdog { inner }
    }

    /// Records the progress so far (a count that only grows).
    #[inline]
    pub fn progress(&self, n: u64) {
        self.inner.progress.store(n, Ordering::Relaxed);
    }

    /// Records when the measured run started (passed to the stall handler).
    pub fn mark_start(&self, at: Instant) {
        let _ = self.inner.start.set(at);
    }

    /// Stops watching (what follows bounds itself).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }
}

/// Waits (at most `limit`) until every peer that completed a handshake has disconnected, as
/// bench/libzmq's `wait_disconnect`: senders call it after their last send and before closing, so
/// they never close first (libzmq 4.3.4 drops the unread tail of an ipc stream when the sender
/// closes while the receiver's pipe is full). The receiver closes only once it has everything, so
/// a hang-up also proves delivery. `monitor` must be taken before connecting. Returns whether the
/// hang-up came.
pub async fn wait_peer_hangup(monitor: &mut Monitor, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut up: u64 = 0; // connections past their handshake
    let mut seen = false;
    let mut failed: u64 = 0; // failed handshakes whose Disconnected is still to come
    loop {
        if seen && up == 0 {
            return true;
        }
        match tokio::time::timeout_at(deadline, monitor.recv()).await {
            Err(_) => {
                eprintln!("warning: peer still connected after {} ms; closing anyway", limit.as_millis());
                return false;
            }
            Ok(None) => return seen, // the socket closed
            Ok(Some(event)) => match event.kind {
                SocketEventKind::HandshakeSucceeded => {
                    seen = true;
                    up += 1;
                }
                SocketEventKind::HandshakeFailed(_) => failed += 1,
                SocketEventKind::Disconnected(_) if failed > 0 => failed -= 1,
                SocketEventKind::Disconnected(_) => up = up.saturating_sub(1),
                _ => {}
            },
        }
    }
}

/// Closes `socket`, waiting at most `limit` (its linger bounds it too; this bounds what else
/// might hold it, such as a connect attempt in progress).
pub async fn close(socket: Socket, limit: Duration) {
    if tokio::time::timeout(limit, socket.close()).await.is_err() {
        eprintln!("warning: close took more than {} ms; exiting anyway", limit.as_millis());
    }
}

/// The throughput receiver (`local_thr` on PULL, `router_thr` on ROUTER): binds, receives
/// `count` messages of one `size`-byte frame (ROUTER: `[identity][payload]`), prints the rate
/// from the first message to the last. Returns the exit code.
pub async fn thr_receiver(tool: &'static str, socket_type: SocketType, a: Args) -> i32 {
    let Args { endpoint, size, count } = a;
    let frames = if socket_type == SocketType::Router { 2 } else { 1 };
    let wd = Watchdog::start(FIRST_MSG_TIMEOUT, IDLE_TIMEOUT, move |n, start| {
        eprintln!("error: recv {n}/{count}: timed out");
        print_thr(tool, size, count, n, start.map(|s| s.elapsed()).unwrap_or_default());
        2
    });
    let sock = socket(
        socket_type,
        secure(Options { linger: Some(Duration::ZERO), ..Options::default() }, Role::Bind),
    );
    if let Err(e) = sock.bind(&endpoint).await {
        eprintln!("error: bind {endpoint}: {e}");
        return 1;
    }
    let mut received: u64 = 0;
    let mut start = Instant::now();
    let mut rc = 0;
    // Batches of up to BATCH messages per lock of the socket (`recv_many`).
    let mut batch = VecDeque::with_capacity(BATCH);
    'receiving: while received < count as u64 {
        batch.clear();
        let want = BATCH.min((count as u64 - received) as usize);
        if let Err(e) = sock.recv_many(&mut batch, want).await {
            eprintln!("error: recv {received}/{count}: {e}");
            rc = 2;
            break;
        }
        for msg in &batch {
            let f = msg.frames();
            if f.len() != frames || f[frames - 1].len() != size {
                eprintln!(
                    "error: bad message ({} frames, last of {} B; want {frames} frame(s), last of {size} B)",
                    f.len(),
                    f.last().map_or(0, Bytes::len)
                );
                rc = 3;
                break 'receiving;
            }
            if received == 0 {
                start = Instant::now();
                wd.mark_start(start);
            }
            received += 1;
        }
        wd.progress(received);
    }
    let elapsed = if received == 0 { Duration::ZERO } else { start.elapsed() };
    wd.stop();
    print_thr(tool, size, count, received, elapsed);
    close(sock, Duration::from_secs(5)).await;
    rc
}

/// The throughput sender (`remote_thr` on PUSH, `dealer_thr` on DEALER): connects, sends `count`
/// single-frame messages, each a clone of one shared `size`-byte `Bytes` (zero-copy), then waits
/// for the receiver to hang up and closes. Prints timings to stderr. Returns the exit code.
pub async fn thr_sender(tool: &'static str, socket_type: SocketType, a: Args) -> i32 {
    let Args { endpoint, size, count } = a;
    let wd = Watchdog::start(SEND_TIMEOUT, SEND_TIMEOUT, move |n, _| {
        eprintln!("error: send {n}/{count}: timed out");
        2
    });
    let sock =
        socket(socket_type, secure(Options { linger: Some(LINGER), ..Options::default() }, Role::Connect));
    let mut monitor = sock.monitor();
    if let Err(e) = sock.connect(&endpoint) {
        eprintln!("error: connect {endpoint}: {e}");
        return 1;
    }
    let payload = Bytes::from(vec![b'x'; size]);
    let mut rc = 0;
    let start = Instant::now();
    // Batches of up to BATCH messages per lock of the socket (`send_many`), each a clone of one
    // `Bytes` (zero-copy).
    let mut batch = VecDeque::with_capacity(BATCH);
    let mut queued: u64 = 0;
    while queued < count as u64 {
        let n = BATCH.min((count as u64 - queued) as usize);
        batch.extend((0..n).map(|_| Msg::from(payload.clone())));
        if let Err(e) = sock.send_many(&mut batch).await {
            eprintln!("error: send {}/{count}: {e}", queued + (n - batch.len()) as u64);
            rc = 2;
            break;
        }
        queued += n as u64;
        wd.progress(queued);
    }
    let sent = start.elapsed();
    wd.stop();
    let hung_up = rc == 0 && wait_peer_hangup(&mut monitor, LINGER).await;
    let done = start.elapsed();
    drop(monitor);
    if hung_up {
        // The peer has it all: end the reconnecting session now rather than after its reconnect
        // interval (close() alone waits that out; nothing is queued to lose).
        let _ = sock.disconnect(&endpoint);
    }
    close(sock, LINGER).await;
    eprintln!(
        "{tool}: queued {count} msgs in {:.3} s, peer done after {:.3} s",
        sent.as_secs_f64(),
        done.as_secs_f64()
    );
    rc
}

/// Raises the soft limit of open files to the hard limit (best effort): the connection-capacity
/// tools hold thousands of sockets.
#[allow(unsafe_code)]
pub fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
