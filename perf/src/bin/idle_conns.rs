//! `idle_conns [<n>] [tcp|ipc] [echo]` (default 5000 over tcp)
//!
//! RSS per idle, handshaked connection on a bound ROUTER (issue 7: libzmq 4.3.5 takes 23.3 KiB per
//! idle NULL connection on a ROUTER). With `echo`, each connection first makes one round trip (a
//! 5-octet message, echoed back by the ROUTER) and then goes idle: buffers taken for traffic must be
//! given back too.
//!
//! The ROUTER binds `tcp://127.0.0.1:*` (or an `ipc://` path in the temporary directory), then this
//! program re-executes itself as a client process (`idle_conns client ...`) that opens plain std
//! sockets, not zmtp ones, so none of the client's memory is in the server's RSS. Each client
//! connection sends a ZMTP 3.1 NULL greeting and a READY with `Socket-Type` DEALER, reads and checks
//! the ROUTER's greeting and READY, and then stays open and silent until the client's stdin closes.
//!
//! The server counts the handshakes on its monitor (`HandshakeSucceeded`; a failed handshake ends
//! the run with exit 2). It reads its VmRSS after binding, after a warm-up of [`WARMUP`]
//! connections (the baseline: runtime, socket and allocator caches are set up), and after `n` more
//! connections have completed their handshake and sat idle for a second, and prints
//!
//! ```text
//! RESULT idle_conns transport=tcp echo=0 n=5000 rss_bind_kib=... rss_before_kib=... rss_after_kib=... per_conn_kib=...
//! ```
//!
//! where `per_conn_kib = (rss_after - rss_before) / n`. The soft `RLIMIT_NOFILE` of both processes
//! is raised to the hard limit; each needs about n + 20 descriptors (else raise `ulimit -Hn`).
//! `LD_PRELOAD` is not passed to the client, so `heaptrack target/release/idle_conns 5000` profiles
//! the server only.
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).
//! Exit codes: 0 ok, 1 usage/bind/spawn error, 2 a handshake failed or the run timed out.

use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zmtp::{Options, SocketEventKind, SocketType};

/// Connections made before the baseline RSS is read.
const WARMUP: usize = 16;
/// Connections the client handshakes at once (well under the ROUTER's 1,024 handshakes in progress).
const CLIENT_WINDOW: usize = 128;
/// Longest the server waits for one phase's handshakes.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the connections sit idle before RSS is read.
const SETTLE: Duration = Duration::from_secs(1);

const USAGE: &str = "usage: idle_conns [<n>] [tcp|ipc] [echo]   (default: 5000 tcp)";
/// The message each connection sends in `echo` mode.
const ECHO: &[u8] = b"hello";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        std::process::exit(client(&args[1..]));
    }
    if args.len() > 3 || args.get(2).is_some_and(|a| a != "echo") {
        eprintln!("{USAGE}");
        std::process::exit(1);
    }
    let echo = args.len() == 3;
    let n = args.first().map_or(5000, |s| zmtp_perf::parse_pos(s, "n"));
    let transport = match args.get(1).map(String::as_str) {
        None | Some("tcp") => "tcp",
        Some("ipc") => "ipc",
        Some(other) => {
            eprintln!("error: transport must be tcp or ipc, got '{other}'\n{USAGE}");
            std::process::exit(1);
        }
    };
    zmtp_perf::raise_nofile();
    zmtp_perf::run(zmtp_perf::Flavor::Current, server(n, transport, echo))
}

/// The process's resident set (VmRSS) and its anonymous part (RssAnon), in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// Handshakes counted on the monitor so far, and (`echo`) messages echoed.
struct Counter {
    monitor: zmtp::Monitor,
    succeeded: usize,
    echoed: Option<Arc<AtomicUsize>>,
}

impl Counter {
    fn echoed(&self) -> usize {
        self.echoed.as_ref().map_or(usize::MAX, |e| e.load(Ordering::Relaxed))
    }

    /// Waits until `target` handshakes have succeeded in total (and, in `echo` mode, `target` messages
    /// were echoed). Fails on a failed handshake, a disconnection, a client that exited, or after
    /// [`PHASE_TIMEOUT`].
    async fn wait_for(&mut self, target: usize, child: &mut Child) -> Result<(), String> {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        while self.succeeded < target || self.echoed() < target {
            if Instant::now() > deadline {
                return Err(format!("timed out with {} of {target} handshakes", self.succeeded));
            }
            let wait = if self.succeeded < target { 500 } else { 5 };
            match tokio::time::timeout(Duration::from_millis(wait), self.monitor.recv()).await {
                Ok(Some(ev)) => match ev.kind {
                    SocketEventKind::HandshakeSucceeded => self.succeeded += 1,
                    SocketEventKind::HandshakeFailed(why) => return Err(format!("handshake failed: {why}")),
                    SocketEventKind::Disconnected(why) => return Err(format!("a peer disconnected: {why}")),
                    _ => {}
                },
                Ok(None) => return Err("monitor ended".to_owned()),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "client exited ({status}) with {} of {target} handshakes",
                            self.succeeded
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

async fn server(n: usize, transport: &'static str, echo: bool) -> i32 {
    let socket = zmtp_perf::socket(SocketType::Router, Options::default());
    let echoed = echo.then(|| Arc::new(AtomicUsize::new(0)));
    let mut counter = Counter { monitor: socket.monitor(), succeeded: 0, echoed: echoed.clone() };
    if let Some(echoed) = echoed {
        let socket = socket.clone();
        tokio::spawn(async move {
            while let Ok(msg) = socket.recv().await {
                if socket.send(msg).await.is_err() {
                    break;
                }
                echoed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let want = match transport {
        "ipc" => format!("ipc://{}/idle_conns-{}.sock", std::env::temp_dir().display(), std::process::id()),
        _ => "tcp://127.0.0.1:*".to_owned(),
    };
    let endpoint = match socket.bind(&want).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: bind {want}: {e}");
            return 1;
        }
    };
    let (rss_bind, _) = rss_kib();
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: current_exe: {e}");
            return 1;
        }
    };
    let spawned = Command::new(exe)
        .arg("client")
        .arg(&endpoint)
        .arg(if echo { "echo" } else { "idle" })
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: spawning the client: {e}");
            return 1;
        }
    };
    let result = phases(n, &endpoint, &mut counter, &mut child).await;
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    match result {
        Ok(((before, before_anon), (after, after_anon))) => {
            let per_conn = after.saturating_sub(before) as f64 / n as f64;
            let per_conn_anon = after_anon.saturating_sub(before_anon) as f64 / n as f64;
            println!(
                "RESULT idle_conns transport={transport} echo={} n={n} rss_bind_kib={rss_bind} \
                 rss_before_kib={before} rss_after_kib={after} per_conn_kib={per_conn:.2} \
                 anon_before_kib={before_anon} anon_after_kib={after_anon} \
                 per_conn_anon_kib={per_conn_anon:.2}",
                u8::from(echo)
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

type Rss = (u64, u64);

/// Warm-up, baseline, `n` connections, measurement.
async fn phases(
    n: usize,
    endpoint: &str,
    counter: &mut Counter,
    child: &mut Child,
) -> Result<(Rss, Rss), String> {
    let order = |count: usize, child: &mut Child| -> Result<(), String> {
        let stdin = child.stdin.as_mut().ok_or("client has no stdin")?;
        writeln!(stdin, "{count}").and_then(|()| stdin.flush()).map_err(|e| format!("client stdin: {e}"))
    };
    order(WARMUP, child)?;
    counter.wait_for(WARMUP, child).await?;
    tokio::time::sleep(SETTLE).await;
    let before = rss_kib();
    let started = Instant::now();
    order(n, child)?;
    counter.wait_for(WARMUP + n, child).await?;
    eprintln!("{n} handshakes with {endpoint} in {:.2} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(SETTLE).await;
    Ok((before, rss_kib()))
}

// ----- the client process -----

/// ZMTP 3.1 greeting, NULL mechanism, as-server 0.
fn greeting() -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// READY with `Socket-Type` DEALER.
fn ready() -> Vec<u8> {
    let mut body = Vec::new();
    body.push(5);
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    let mut frame = vec![0x04, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

/// A blocking byte stream of either transport.
trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

fn open(endpoint: &str) -> std::io::Result<Box<dyn Conn>> {
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        let s = std::net::TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Box::new(s))
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        let s = std::os::unix::net::UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Box::new(s))
    } else {
        Err(std::io::Error::other(format!("unsupported endpoint {endpoint}")))
    }
}

/// Reads and checks the ROUTER's greeting and READY.
fn read_handshake(s: &mut dyn Conn) -> Result<(), String> {
    let mut g = [0u8; 64];
    s.read_exact(&mut g).map_err(|e| format!("reading the greeting: {e}"))?;
    if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || &g[12..16] != b"NULL" {
        return Err(format!("unexpected greeting {:02x?}", &g[..16]));
    }
    let mut head = [0u8; 2];
    s.read_exact(&mut head).map_err(|e| format!("reading READY: {e}"))?;
    let len = if head[0] & 0x02 != 0 {
        let mut rest = [0u8; 7];
        s.read_exact(&mut rest).map_err(|e| format!("reading READY: {e}"))?;
        let mut b = [0u8; 8];
        b[0] = head[1];
        b[1..].copy_from_slice(&rest);
        u64::from_be_bytes(b)
    } else {
        u64::from(head[1])
    };
    if head[0] & 0x04 == 0 || len > 4096 {
        return Err(format!("expected a READY command, got flags {:#04x} length {len}", head[0]));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).map_err(|e| format!("reading READY: {e}"))?;
    let router = b"\x0bSocket-Type\x00\x00\x00\x06ROUTER";
    if !body.starts_with(b"\x05READY") || !body.windows(router.len()).any(|w| w == router) {
        return Err(format!(
            "expected READY with Socket-Type ROUTER, got {:?}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// Sends [`ECHO`] as a one-frame message and reads it back.
fn round_trip(s: &mut dyn Conn) -> Result<(), String> {
    let mut frame = vec![0x00, ECHO.len() as u8];
    frame.extend_from_slice(ECHO);
    s.write_all(&frame).map_err(|e| format!("sending the message: {e}"))?;
    let mut reply = vec![0u8; frame.len()];
    s.read_exact(&mut reply).map_err(|e| format!("reading the echo: {e}"))?;
    if reply != frame {
        return Err(format!("expected the echo {frame:02x?}, got {reply:02x?}"));
    }
    Ok(())
}

/// `client <endpoint> idle|echo`: for each line `<count>` on stdin, opens and handshakes that many
/// more connections (with `echo`, each then makes one round trip); keeps them all open until stdin
/// closes.
fn client(args: &[String]) -> i32 {
    let [endpoint, mode] = args else {
        eprintln!("usage: idle_conns client <endpoint> idle|echo");
        return 1;
    };
    let echo = mode == "echo";
    zmtp_perf::raise_nofile();
    let mut hello = greeting().to_vec();
    hello.extend_from_slice(&ready());
    let mut conns: Vec<Box<dyn Conn>> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(count) = line.trim().parse::<usize>() else { continue };
        let mut left = count;
        while left > 0 {
            let window = left.min(CLIENT_WINDOW);
            let start = conns.len();
            for _ in 0..window {
                match open(endpoint).and_then(|mut s| s.write_all(&hello).map(|()| s)) {
                    Ok(s) => conns.push(s),
                    Err(e) => {
                        eprintln!("client: connection {}: {e}", conns.len());
                        return 2;
                    }
                }
            }
            for (i, s) in conns[start..].iter_mut().enumerate() {
                if let Err(e) = read_handshake(s.as_mut()) {
                    eprintln!("client: connection {}: {e}", start + i);
                    return 2;
                }
            }
            for (i, s) in conns[start..].iter_mut().enumerate().filter(|_| echo) {
                if let Err(e) = round_trip(s.as_mut()) {
                    eprintln!("client: connection {}: {e}", start + i);
                    return 2;
                }
            }
            left -= window;
        }
    }
    0
}
