//! Shared harness of the relay's end-to-end tests: runs the `relay` binary with a config file in a
//! temp dir, reads its log lines (stderr) in a thread, and drives pyzmq peers through
//! `tests/peers/relay_peer.py` (one process, many named sockets, commanded on stdin).
//!
//! Every wait is bounded; every child process is killed on drop.

#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use zmtp_interop::{frame_repr, hex, msg_arg, Peer, TempDir};

/// The longest a single step may take (a peer line, a log line, a reply).
pub const STEP: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(700);

/// Message types of the protocol.
pub const OHLC_REQUEST: u8 = 0x07;
/// Relay → ingestors.
pub const DATA_REQUEST: u8 = 0x01;
/// Ingestor → relay.
pub const DATA_RESPONSE: u8 = 0x02;
/// Relay → client.
pub const RESPONSE: u8 = 0x08;

// ---------------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------------

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static SET: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

/// `n` distinct loopback ports that were free a moment ago and were never handed out before in this
/// process (the listeners are held together, then dropped).
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut set = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        assert!(tries < 1000, "cannot find {n} free ports");
        let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else { continue };
        let Ok(addr) = l.local_addr() else { continue };
        if set.insert(addr.port()) {
            ports.push(addr.port());
        }
        held.push(l);
    }
    ports
}

/// One free port (see [`free_ports`]).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Whether `port` can be bound on `ip` right now.
pub fn port_is_free(ip: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind((ip, port)).is_ok()
}

/// `tcp://127.0.0.1:<port>`.
pub fn ep(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------------
// The relay process
// ---------------------------------------------------------------------------------------------------

/// How to run the relay.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Config keys set in addition to (or instead of) the defaults this harness writes: the four ports,
    /// `bind_address` and `flink_market_data_endpoint`. The value is a TOML literal (`"1"`, `"\"json\""`).
    pub set: Vec<(String, String)>,
    /// `RUST_LOG` (`None`: unset).
    pub rust_log: Option<String>,
    /// How many `listening` lines mean "started".
    pub listening: usize,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { set: Vec::new(), rust_log: Some("relay=info".to_owned()), listening: 4, env: Vec::new() }
    }
}

impl Opts {
    /// Sets a config key (a TOML literal value).
    pub fn set(mut self, key: &str, value: impl ToString) -> Opts {
        self.set.retain(|(k, _)| k != key);
        self.set.push((key.to_owned(), value.to_string()));
        self
    }

    /// Sets `RUST_LOG`.
    pub fn rust_log(mut self, filter: Option<&str>) -> Opts {
        self.rust_log = filter.map(str::to_owned);
        self
    }

    /// Sets an environment variable of the relay process.
    pub fn env(mut self, key: &str, value: &str) -> Opts {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Expects this many `listening` lines at start.
    pub fn listening(mut self, n: usize) -> Opts {
        self.listening = n;
        self
    }
}

/// The path of the binary under test.
pub fn relay_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_relay"))
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Whether a log line carries `key=value` (or `key="value"`) as a field.
pub fn has_field(line: &str, key: &str, value: &str) -> bool {
    let plain = format!("{key}={value}");
    let quoted = format!("{key}=\"{value}\"");
    let json = format!("\"{key}\":\"{value}\"");
    for pat in [&plain, &quoted, &json] {
        let mut from = 0;
        while let Some(i) = line[from..].find(pat.as_str()) {
            let start = from + i;
            let end = start + pat.len();
            let before_ok = start == 0
                || !line.as_bytes()[start - 1].is_ascii_alphanumeric() && line.as_bytes()[start - 1] != b'_';
            let after_ok = end == line.len() || matches!(line.as_bytes()[end], b' ' | b',' | b'}' | b'\t');
            if before_ok && after_ok {
                return true;
            }
            from = start + 1;
        }
    }
    false
}

/// A running relay: killed (SIGKILL) and reaped on drop; its log is printed if the test panics.
pub struct Relay {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line so far (ANSI escapes removed).
    pub log: Vec<String>,
    stderr_done: bool,
    /// Holds the config file.
    pub dir: TempDir,
    /// The config file.
    pub config_path: PathBuf,
    /// Port 5559's stand-in.
    pub client_port: u16,
    /// Port 5555's stand-in.
    pub work_port: u16,
    /// Port 5556's stand-in.
    pub response_port: u16,
    /// Port 5558's stand-in.
    pub md_port: u16,
    /// The upstream port (5557's stand-in) if the upstream endpoint is the harness's default.
    pub upstream_port: u16,
    /// The admin endpoint's port (9559's stand-in; `admin_address` is on a free loopback port
    /// unless the test set it).
    pub admin_port: u16,
    /// When the process was started.
    pub started: Instant,
    exited: Option<ExitStatus>,
}

fn spawn_reader<R: Read + Send + 'static>(r: R) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(r);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = strip_ansi(text.trim_end_matches(['\n', '\r']));
                    if tx.send(text).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

impl Relay {
    /// Starts the relay with the harness's config plus `opts`, waits for `opts.listening` `listening`
    /// lines. Retries with other ports if one turned out to be taken (exit status 1).
    pub fn start(opts: Opts) -> Relay {
        let mut last = String::new();
        for _ in 0..4 {
            match Relay::try_start(&opts) {
                Ok(r) => return r,
                Err(log) => last = log,
            }
        }
        panic!("the relay did not start (4 attempts); last log:\n{last}");
    }

    /// Starts with defaults and these extra keys.
    pub fn with(set: &[(&str, &str)]) -> Relay {
        let mut opts = Opts::default();
        for (k, v) in set {
            opts = opts.set(k, v);
        }
        Relay::start(opts)
    }

    fn try_start(opts: &Opts) -> Result<Relay, String> {
        let ports = free_ports(6);
        let dir = TempDir::new("relay");
        let config_path = dir.path().join("config.toml");
        let mut keys: Vec<(String, String)> = vec![
            ("bind_address".into(), "\"tcp://127.0.0.1\"".into()),
            ("client_request_port".into(), ports[0].to_string()),
            ("ingestor_work_port".into(), ports[1].to_string()),
            ("ingestor_response_port".into(), ports[2].to_string()),
            ("market_data_pub_port".into(), ports[3].to_string()),
            ("flink_market_data_endpoint".into(), format!("\"{}\"", ep(ports[4]))),
            // Never the default 9559: tests run in parallel.
            ("admin_address".into(), format!("\"127.0.0.1:{}\"", ports[5])),
        ];
        for (k, v) in &opts.set {
            keys.retain(|(kk, _)| kk != k);
            keys.push((k.clone(), v.clone()));
        }
        let text: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        std::fs::write(&config_path, &text).map_err(|e| format!("write config: {e}"))?;
        let port_of = |key: &str, dflt: u16| -> u16 {
            keys.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok()).unwrap_or(dflt)
        };
        let mut cmd = Command::new(relay_bin());
        cmd.env("CONFIG_PATH", &config_path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &opts.rust_log {
            Some(f) => cmd.env("RUST_LOG", f),
            None => cmd.env_remove("RUST_LOG"),
        };
        cmd.env_remove("RELAY_LOG_FORMAT");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start the relay: {e}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        // stdout is not part of the contract; drain it so the relay never blocks on it.
        thread::spawn(move || {
            let mut s = stdout;
            let mut buf = [0u8; 4096];
            while let Ok(1..) = s.read(&mut buf) {}
        });
        let lines = spawn_reader(stderr);
        let mut relay = Relay {
            child,
            lines,
            log: Vec::new(),
            stderr_done: false,
            config_path,
            client_port: port_of("client_request_port", ports[0]),
            work_port: port_of("ingestor_work_port", ports[1]),
            response_port: port_of("ingestor_response_port", ports[2]),
            md_port: port_of("market_data_pub_port", ports[3]),
            upstream_port: ports[4],
            admin_port: keys
                .iter()
                .find(|(k, _)| k == "admin_address")
                .and_then(|(_, v)| v.trim_matches('"').rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                .unwrap_or(0),
            dir,
            started: Instant::now(),
            exited: None,
        };
        let deadline = Instant::now() + STEP;
        loop {
            let n = relay.log.iter().filter(|l| l.contains("listening")).count();
            if opts.listening > 0 && n >= opts.listening {
                return Ok(relay);
            }
            if opts.listening == 0 && relay.accepts_connections() {
                return Ok(relay);
            }
            if let Some(status) = relay.try_wait() {
                relay.drain(Duration::from_millis(300));
                let log = format!("exit {status}\nconfig:\n{text}\nlog:\n{}", relay.log.join("\n"));
                if status.code() == Some(1) {
                    return Err(log);
                }
                panic!("the relay exited at start: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "the relay printed {n} of {} `listening` lines within {STEP:?}; config:\n{text}\nlog:\n{}",
                opts.listening,
                relay.log.join("\n")
            );
            relay.pump(Duration::from_millis(50));
        }
    }

    /// Whether all four ports accept TCP connections (for runs whose log filter hides `listening`).
    fn accepts_connections(&self) -> bool {
        [self.client_port, self.work_port, self.response_port, self.md_port].iter().all(|p| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *p));
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
        })
    }

    /// Rewrites `key = value` lines of the relay's config file (adding those it lacks), for a
    /// SIGHUP to read.
    pub fn rewrite_config(&self, set: &[(&str, &str)]) {
        let text = std::fs::read_to_string(&self.config_path).expect("read config");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !set.iter().any(|(k, _)| l.split('=').next().is_some_and(|kk| kk.trim() == *k)))
            .map(str::to_owned)
            .collect();
        lines.extend(set.iter().map(|(k, v)| format!("{k} = {v}")));
        std::fs::write(&self.config_path, lines.join("\n") + "\n").expect("write config");
    }

    /// `tcp://127.0.0.1:<client port>`.
    pub fn client_ep(&self) -> String {
        ep(self.client_port)
    }
    /// The ingestor work endpoint.
    pub fn work_ep(&self) -> String {
        ep(self.work_port)
    }
    /// The ingestor response endpoint.
    pub fn response_ep(&self) -> String {
        ep(self.response_port)
    }
    /// The market-data endpoint for subscribers.
    pub fn md_ep(&self) -> String {
        ep(self.md_port)
    }
    /// `GET http://127.0.0.1:<admin port><path>` (see [`http_get`]).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin_port, path).unwrap_or_else(|e| panic!("GET {path} on the admin port: {e}"))
    }

    /// The value of one sample of the relay's `/metrics` (`name{labels}` exactly as exported, e.g.
    /// `relay_requests_total{prefix="BINANCE:",outcome="ok"}`); 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let (status, body) = self.admin_get("/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        metric_value(&body, sample)
    }

    /// The default upstream endpoint.
    pub fn upstream_ep(&self) -> String {
        ep(self.upstream_port)
    }

    /// Reads log lines for at most `timeout` (returns after the first batch).
    pub fn pump(&mut self, timeout: Duration) {
        if self.stderr_done {
            thread::sleep(timeout.min(Duration::from_millis(20)));
            return;
        }
        match self.lines.recv_timeout(timeout) {
            Ok(l) => {
                self.log.push(l);
                while let Ok(l) = self.lines.try_recv() {
                    self.log.push(l);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.stderr_done = true,
        }
    }

    /// Reads log lines for `duration`.
    pub fn drain(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            self.pump(deadline.saturating_duration_since(Instant::now()));
            if self.stderr_done {
                return;
            }
        }
    }

    /// The number of log lines so far (a mark for [`Relay::wait_log`]).
    pub fn mark(&mut self) -> usize {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        self.log.len()
    }

    /// Waits (at most `timeout`) for a log line at index `from` or later that `pred` accepts; returns
    /// its index and text.
    pub fn wait_log_by(
        &mut self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        let deadline = Instant::now() + timeout;
        let mut checked = from;
        loop {
            while checked < self.log.len() {
                if pred(&self.log[checked]) {
                    return (checked, self.log[checked].clone());
                }
                checked += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (self.stderr_done && checked >= self.log.len()) {
                panic!(
                    "no relay log line {what} within {timeout:?}{}\n--- relay log:\n{}",
                    if self.stderr_done { " (stderr closed)" } else { "" },
                    self.log.join("\n")
                );
            }
            self.pump(left.min(Duration::from_millis(100)));
        }
    }

    /// Waits for a log line at `from` or later that contains every one of `parts` (a part `k=v` is
    /// matched as a field, see [`has_field`]).
    pub fn wait_log(&mut self, from: usize, parts: &[&str], timeout: Duration) -> String {
        let what = format!("with {parts:?}");
        self.wait_log_by(from, timeout, &what, |l| line_matches(l, parts)).1
    }

    /// Whether a log line from line `from` on contains every part within `timeout` (no panic).
    pub fn log_within(&mut self, from: usize, parts: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.has_log(from, parts) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.pump(Duration::from_millis(50));
        }
    }

    /// Whether some log line at `from` or later contains every one of `parts`.
    pub fn has_log(&mut self, from: usize, parts: &[&str]) -> bool {
        self.mark();
        self.log[from.min(self.log.len())..].iter().any(|l| line_matches(l, parts))
    }

    /// How many log lines at `from` or later contain every one of `parts`.
    pub fn count_log(&mut self, from: usize, parts: &[&str]) -> usize {
        self.mark();
        self.log[from.min(self.log.len())..].iter().filter(|l| line_matches(l, parts)).count()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with `kill(1)`.
    pub fn signal(&mut self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{sig} failed");
    }

    /// The exit status if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits at most `timeout` for the process to exit (reading the log meanwhile).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.pump(Duration::from_millis(10));
        }
    }

    /// The whole log so far, for messages.
    pub fn log_text(&mut self) -> String {
        self.mark();
        self.log.join("\n")
    }

    /// The pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A minimal HTTP/1.1 GET on loopback (the tests need no HTTP client crate): the status and body.
///
/// # Errors
///
/// Connection or read errors, or a response that is not HTTP.
pub fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, STEP)?;
    stream.set_read_timeout(Some(STEP))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not HTTP: {head:?}")))?;
    // Chunked bodies (axum streams none of ours, but be safe): join the chunks.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The value of the sample `sample` (name and labels as exported) in a Prometheus text body; 0 when
/// absent.
pub fn metric_value(body: &str, sample: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Whether `line` contains every part (`k=v` parts as fields).
pub fn line_matches(line: &str, parts: &[&str]) -> bool {
    parts.iter().all(|p| match p.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(' ') => has_field(line, k, v),
        _ => line.contains(p),
    })
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() || std::env::var_os("E2E_DUMP_LOG").is_some() {
            self.drain(Duration::from_millis(200));
            eprintln!("--- relay log ({}):\n{}", self.config_path.display(), self.log.join("\n"));
        }
    }
}

/// A relay with these keys, logging at `debug`: for tests that follow the per-request lines
/// (`response sent`, `request coalesced`, `answered from cache`), `debug` lines since protocol 1.1.
pub fn debug_relay(set: &[(&str, &str)]) -> Relay {
    let mut opts = Opts::default().rust_log(Some("relay=debug,zmtp=warn"));
    for (k, v) in set {
        opts = opts.set(k, v);
    }
    Relay::start(opts)
}

/// Runs the relay once with `config` (file contents; `None`: `CONFIG_PATH` names a missing file) and
/// `args`, waits at most `timeout` for it to exit (killing it otherwise). Returns the exit status
/// (`None`: it had to be killed) and stderr.
pub fn run_once(config: Option<&str>, args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
    let dir = TempDir::new("cfg");
    let path = dir.path().join("config.toml");
    if let Some(text) = config {
        std::fs::write(&path, text).expect("write config");
    }
    run_at(&path, args, timeout)
}

/// [`run_once`] with `CONFIG_PATH` naming `path` (which may be YAML, or missing).
pub fn run_at(path: &Path, args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
    let mut child = Command::new(relay_bin())
        .args(args)
        .env("CONFIG_PATH", path)
        .env("RUST_LOG", "relay=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start relay");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out_rx = spawn_reader(stdout);
    let err_rx = spawn_reader(stderr);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    let end = Instant::now() + Duration::from_secs(2);
    for rx in [&err_rx, &out_rx] {
        while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    (status, text)
}

// ---------------------------------------------------------------------------------------------------
// pyzmq peers: tests/peers/relay_peer.py
// ---------------------------------------------------------------------------------------------------

/// A `relay_peer.py` process holding named pyzmq sockets.
pub struct Py {
    stdin: Option<ChildStdin>,
    peer: Peer,
    buf: VecDeque<String>,
    sync: usize,
}

impl Py {
    /// Starts a peer process.
    pub fn new() -> Py {
        Py::with_script("relay_peer")
    }

    /// Starts a peer process running `script`, a `tests/peers/` script that speaks relay_peer.py's
    /// commands (`secure_relay_peer`: with CURVE and PLAIN keys on `NEW`).
    pub fn with_script(script: &str) -> Py {
        let (peer, stdin) = Peer::spawn_with_stdin(script, ["--timeout", "90"]);
        Py { stdin: Some(stdin), peer, buf: VecDeque::new(), sync: 0 }
    }

    /// Writes one command line.
    pub fn cmd(&mut self, line: &str) {
        let result = match self.stdin.as_mut() {
            Some(s) => s.write_all(format!("{line}\n").as_bytes()).and_then(|()| s.flush()),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
        };
        if let Err(e) = result {
            let shown: String = line.chars().take(100).collect();
            panic!("cannot write {shown:?} to relay_peer.py: {e}\n{}", self.peer.transcript());
        }
        // Commands that change how later messages are handled take effect before the test goes on.
        if ["AUTO ", "PROXY ", "STOP ", "SUB ", "UNSUB "].iter().any(|p| line.starts_with(p)) {
            self.sync();
        }
    }

    /// Creates a socket and waits for READY; returns the endpoint printed.
    pub fn sock(&mut self, name: &str, kind: &str, how: &str, endpoint: &str, opts: &[&str]) -> String {
        let mut line = format!("NEW {name} {kind} {how} {endpoint}");
        for o in opts {
            line.push(' ');
            line.push_str(o);
        }
        self.cmd(&line);
        let got =
            self.expect_any(&[&format!("READY {name} "), &format!("BIND_FAILED {name} "), "BAD "], STEP);
        assert!(got.starts_with("READY "), "NEW {name}: {got}\n{}", self.peer.transcript());
        got.split(' ').nth(2).unwrap_or_default().to_owned()
    }

    /// Tries to bind a socket; `false` if the bind failed (the socket then does not exist).
    pub fn try_bind(&mut self, name: &str, kind: &str, endpoint: &str) -> bool {
        self.cmd(&format!("NEW {name} {kind} bind {endpoint}"));
        let got = self.expect_any(&[&format!("READY {name} "), &format!("BIND_FAILED {name} ")], STEP);
        got.starts_with("READY ")
    }

    /// Sends a message.
    pub fn send<F: AsRef<[u8]>>(&mut self, name: &str, frames: &[F]) {
        self.cmd(&format!("SEND {name} {}", msg_arg(frames)));
    }

    /// Waits until every earlier command has been processed.
    pub fn sync(&mut self) {
        self.sync += 1;
        let token = format!("ECHO sync-{}", self.sync);
        self.cmd(&token);
        self.expect(&token, STEP);
    }

    /// Takes the first line (buffered or new, within `timeout`) starting with one of `prefixes`.
    pub fn expect_any(&mut self, prefixes: &[&str], timeout: Duration) -> String {
        match self.try_expect_any(prefixes, timeout) {
            Some(l) => l,
            None => panic!(
                "relay_peer.py: no line starting with {prefixes:?} within {timeout:?}\nunconsumed: {:?}\n{}",
                self.buf,
                self.peer.transcript()
            ),
        }
    }

    /// As [`Py::expect_any`], `None` on timeout.
    pub fn try_expect_any(&mut self, prefixes: &[&str], timeout: Duration) -> Option<String> {
        if let Some(i) = self.buf.iter().position(|l| prefixes.iter().any(|p| l.starts_with(p))) {
            return self.buf.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.peer.line(left)?;
            if line.starts_with("BAD ") {
                panic!("relay_peer.py did not understand a command: {line}\n{}", self.peer.transcript());
            }
            if prefixes.iter().any(|p| line.starts_with(p)) {
                return Some(line);
            }
            self.buf.push_back(line);
            if left.is_zero() {
                return None;
            }
        }
    }

    /// Takes the first line starting with `prefix`.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        self.expect_any(&[prefix], timeout)
    }

    /// Takes the next message received on socket `name`, as frame reprs.
    pub fn msg(&mut self, name: &str) -> Vec<String> {
        self.msg_within(name, STEP)
    }

    /// As [`Py::msg`] with a timeout.
    pub fn msg_within(&mut self, name: &str, timeout: Duration) -> Vec<String> {
        let line = self.expect(&format!("MSG {name} "), timeout);
        line.split(' ').skip(2).map(str::to_owned).collect()
    }

    /// The next message on `name` if one arrives within `timeout`.
    pub fn try_msg(&mut self, name: &str, timeout: Duration) -> Option<Vec<String>> {
        self.try_expect_any(&[&format!("MSG {name} ")], timeout)
            .map(|line| line.split(' ').skip(2).map(str::to_owned).collect())
    }

    /// Asserts that no message arrives on `name` within `d`.
    pub fn no_msg(&mut self, name: &str, d: Duration, why: &str) {
        if let Some(m) = self.try_msg(name, d) {
            panic!("{why}: unexpected message on {name}: {m:?}");
        }
    }

    /// Closes a socket (waits for CLOSED).
    pub fn close(&mut self, name: &str) {
        self.cmd(&format!("CLOSE {name}"));
        self.expect(&format!("CLOSED {name}"), STEP);
    }

    /// Kills the process (SIGKILL).
    pub fn kill(&mut self) {
        self.peer.kill();
    }

    /// The transcript for messages.
    pub fn transcript(&self) -> String {
        self.peer.transcript()
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        self.stdin = None;
    }
}

// ---------------------------------------------------------------------------------------------------
// Protocol helpers
// ---------------------------------------------------------------------------------------------------

/// The four body frames of a request.
pub fn body(id: &[u8], ticker: &[u8], params: &[u8]) -> Vec<Vec<u8>> {
    vec![vec![OHLC_REQUEST], id.to_vec(), ticker.to_vec(), params.to_vec()]
}

/// `[""]` + body: what a DEALER client sends.
pub fn dealer_req(id: &[u8], ticker: &[u8], params: &[u8]) -> Vec<Vec<u8>> {
    let mut v = vec![Vec::new()];
    v.extend(body(id, ticker, params));
    v
}

/// `[""]` + `frames`.
pub fn with_delim(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v = vec![Vec::new()];
    v.extend(frames.iter().cloned());
    v
}

/// An ingestor's response `[02, id, status, data…]`.
pub fn response(id: &[u8], status: &str, data: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut v = vec![vec![DATA_RESPONSE], id.to_vec(), status.as_bytes().to_vec()];
    v.extend(data.iter().map(|d| d.to_vec()));
    v
}

/// The bytes of a short frame repr (`<len>:<hex>`); `None` for a CRC repr.
pub fn repr_bytes(repr: &str) -> Option<Vec<u8>> {
    let (_, hexpart) = repr.split_once(':')?;
    if hexpart.starts_with("crc32=") {
        return None;
    }
    (0..hexpart.len()).step_by(2).map(|i| u8::from_str_radix(hexpart.get(i..i + 2)?, 16).ok()).collect()
}

/// A reply as the client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Frame reprs before the delimiter (a DEALER's extra envelope), empty for REQ.
    pub envelope: Vec<String>,
    /// Frame 1.
    pub id: Vec<u8>,
    /// Frame 2, as text.
    pub status: String,
    /// Frames 3… as reprs.
    pub data: Vec<String>,
    /// All frames as received.
    pub raw: Vec<String>,
}

impl Reply {
    /// The reason frame (for relay statuses) as text.
    pub fn reason(&self) -> String {
        assert_eq!(self.data.len(), 1, "a relay status carries exactly one reason frame: {self:?}");
        String::from_utf8(repr_bytes(&self.data[0]).unwrap_or_default()).unwrap_or_default()
    }

    /// Asserts the status and (for relay statuses) that the reason is non-empty.
    pub fn assert_status(&self, status: &str) {
        assert_eq!(self.status, status, "reply: {self:?}");
        if !matches!(status, "OK" | "ERROR") {
            assert!(!self.reason().is_empty(), "empty reason: {self:?}");
        }
    }
}

/// Parses a reply's frames. `dealer`: the frames start with the envelope and the empty delimiter.
pub fn parse_reply(frames: &[String], dealer: bool) -> Reply {
    let (envelope, rest) = if dealer {
        let i = frames
            .iter()
            .position(|f| f == "0:")
            .unwrap_or_else(|| panic!("no delimiter in reply {frames:?}"));
        (frames[..i].to_vec(), &frames[i + 1..])
    } else {
        (Vec::new(), frames)
    };
    assert!(rest.len() >= 3, "a reply has at least 3 body frames: {frames:?}");
    assert_eq!(rest[0], "1:08", "reply type byte: {frames:?}");
    Reply {
        envelope,
        id: repr_bytes(&rest[1]).unwrap_or_else(|| panic!("request_id repr {frames:?}")),
        status: String::from_utf8(repr_bytes(&rest[2]).unwrap_or_default()).unwrap_or_default(),
        data: rest[3..].to_vec(),
        raw: frames.to_vec(),
    }
}

/// A relay with one ingestor (`ing_w` SUB + `ing_r` DEALER) subscribed to `prefixes`, and the log
/// lines proving the subscriptions arrived.
///
/// The relay logs `ingestor subscribed` when a prefix becomes served, not for a second ingestor of a
/// prefix; so the ingestor also subscribes to a unique marker prefix (`~sync-<name>-<n>`) last, and
/// the marker's line proves that the earlier subscriptions of that connection were processed.
pub fn add_ingestor(py: &mut Py, relay: &mut Relay, name: &str, prefixes: &[&str]) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let marker = format!("~sync-{name}-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mark = relay.mark();
    let mut subs: Vec<String> = prefixes.iter().map(|p| format!("sub={}", hex(p.as_bytes()))).collect();
    subs.push(format!("sub={}", hex(marker.as_bytes())));
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    py.sock(&format!("{name}_r"), "DEALER", "connect", &relay.response_ep(), &[]);
    py.sock(&format!("{name}_w"), "SUB", "connect", &relay.work_ep(), &subs);
    let field = format!("prefix={marker}");
    relay.wait_log(mark, &["ingestor subscribed", &field], STEP);
}

/// Sends the request from DEALER `client` and returns its reply.
pub fn dealer_roundtrip(py: &mut Py, client: &str, id: &[u8], ticker: &str, params: &[u8]) -> Reply {
    py.send(client, &dealer_req(id, ticker.as_bytes(), params));
    parse_reply(&py.msg(client), true)
}

/// Waits for the work message of `id` on ingestor `name`; checks its frames.
pub fn expect_work(py: &mut Py, name: &str, prefix: &str, id: &[u8], ticker: &str, params: &[u8]) {
    let got = py.msg(&format!("{name}_w"));
    let want = zmtp_interop::reprs(&[prefix.as_bytes(), &[DATA_REQUEST], id, ticker.as_bytes(), params]);
    assert_eq!(got, want, "work message on {name}");
}

// ---------------------------------------------------------------------------------------------------
// Raw ZMTP bytes (hostile and control clients)
// ---------------------------------------------------------------------------------------------------

/// A 64-byte ZMTP 3.x greeting.
pub fn greeting(major: u8, minor: u8, mechanism: &[u8], as_server: bool) -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, major, minor];
    let mut mech = [0u8; 20];
    mech[..mechanism.len()].copy_from_slice(mechanism);
    g.extend_from_slice(&mech);
    g.push(u8::from(as_server));
    g.extend_from_slice(&[0u8; 31]);
    g
}

/// A READY command frame with `Socket-Type`.
pub fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut f = vec![0x04, body.len() as u8];
    f.extend(body);
    f
}

/// Message frames on the wire (short or long headers, MORE on all but the last).
pub fn frames_wire(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let more = if i + 1 < frames.len() { 0x01 } else { 0 };
        if f.len() < 256 {
            out.push(more);
            out.push(f.len() as u8);
        } else {
            out.push(more | 0x02);
            out.extend_from_slice(&(f.len() as u64).to_be_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

/// Connects a raw TCP stream to loopback `port`.
pub fn raw_connect(port: u16) -> TcpStream {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = TcpStream::connect_timeout(&addr, STEP).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(STEP));
    s
}

/// Writes, ignoring errors (the relay may have closed already).
pub fn write_lossy(s: &mut TcpStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}

/// Reads (and discards) until the relay closes the connection; returns how long that took from
/// `since`. Panics if it is still open after `within`.
pub fn expect_closed(s: &mut TcpStream, since: Instant, within: Duration, what: &str) -> Duration {
    let deadline = since + within;
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("{what}: the relay did not close the connection within {within:?}");
        }
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match s.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return since.elapsed()
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: read error {e}"),
        }
    }
}

/// A minimal blocking reader of ZMTP frames after the greeting.
pub struct RawReader {
    buf: Vec<u8>,
}

/// One received frame.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// A command frame.
    pub command: bool,
    /// MORE set.
    pub more: bool,
    /// The body.
    pub body: Vec<u8>,
}

impl RawReader {
    /// A reader with nothing buffered.
    pub fn new() -> RawReader {
        RawReader { buf: Vec::new() }
    }

    fn fill(&mut self, s: &mut TcpStream, n: usize, deadline: Instant) -> io::Result<()> {
        let mut tmp = [0u8; 65536];
        while self.buf.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "raw read timed out"));
            }
            s.set_read_timeout(Some(left))?;
            match s.read(&mut tmp) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
                Ok(k) => self.buf.extend_from_slice(&tmp[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the 64-byte greeting.
    pub fn greeting(&mut self, s: &mut TcpStream, timeout: Duration) -> io::Result<Vec<u8>> {
        self.fill(s, 64, Instant::now() + timeout)?;
        Ok(self.buf.drain(..64).collect())
    }

    /// Reads one frame.
    pub fn frame(&mut self, s: &mut TcpStream, timeout: Duration) -> io::Result<RawFrame> {
        let deadline = Instant::now() + timeout;
        self.fill(s, 2, deadline)?;
        let flags = self.buf[0];
        let (hlen, len) = if flags & 0x02 != 0 {
            self.fill(s, 9, deadline)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.buf[1..9]);
            (9, u64::from_be_bytes(b) as usize)
        } else {
            (2, self.buf[1] as usize)
        };
        self.fill(s, hlen + len, deadline)?;
        let body = self.buf[hlen..hlen + len].to_vec();
        self.buf.drain(..hlen + len);
        Ok(RawFrame { command: flags & 0x04 != 0, more: flags & 0x01 != 0, body })
    }

    /// Reads the next message (skipping commands such as READY and PING).
    pub fn message(&mut self, s: &mut TcpStream, timeout: Duration) -> io::Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut msg = Vec::new();
        loop {
            let f = self.frame(s, deadline.saturating_duration_since(Instant::now()))?;
            if f.command {
                continue;
            }
            let more = f.more;
            msg.push(f.body);
            if !more {
                return Ok(msg);
            }
        }
    }
}
