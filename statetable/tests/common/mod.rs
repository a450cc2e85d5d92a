//! What the statetable tests share: a real `redis-server` of their own ([`RedisServer`]), child
//! processes with their output read in threads ([`Proc`]), the two binaries ([`Consumer`],
//! [`Producer`]), the pyzmq interpreter ([`python`]) and polling helpers.
//!
//! Every wait is bounded and polls (no fixed sleeps); every child process is killed on drop; ports are
//! free loopback ports, never 6379. When a test fails, the output of the processes it ran is printed.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest one step may take (a process starting, a message arriving, Redis answering):
/// generous for a loaded 2-core machine, short enough that a broken test ends.
pub const STEP: Duration = Duration::from_secs(20);

/// How long a process may take to exit after SIGTERM (the consumer drains to Redis first).
pub const EXIT: Duration = Duration::from_secs(30);

/// The repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Polls `done` every 10 ms until it is true; panics with `what` after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------------
// Temp dirs and ports
// ---------------------------------------------------------------------------------------------------

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory named after `prefix`, this process and a counter.
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "statetable-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago and was not handed out before in this process (so two
/// tests running at once never get the same one).
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut seen = HANDED_OUT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else { continue };
        let Ok(addr) = l.local_addr() else { continue };
        if addr.port() != 6379 && seen.insert(addr.port()) {
            return addr.port();
        }
    }
    panic!("cannot find a free loopback port");
}

// ---------------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------------

/// The `redis-server` executable: `/usr/bin/redis-server`, else the first on `PATH`.
///
/// # Panics
/// If there is none, saying how to get it.
pub fn redis_server_bin() -> PathBuf {
    let fixed = PathBuf::from("/usr/bin/redis-server");
    if fixed.is_file() {
        return fixed;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server not found: scripts/test-all.sh installs it (apt-get install -y redis-server)"
            )
        })
}

/// A `redis-server` of the test's own on a free loopback port, with no persistence (`--save ""
/// --appendonly no`; [`RedisServer::start_with`] can turn on an fsynced append-only file), its own
/// temp dir as working directory, and its log in that dir. Killed on drop.
pub struct RedisServer {
    bin: PathBuf,
    port: u16,
    dir: TempDir,
    aof: bool,
    child: Option<Child>,
    /// Launches so far (a restart is one more), numbering the log files.
    launches: u32,
}

/// Why a launch failed: the port was taken (try another), or something else.
enum LaunchError {
    PortInUse(String),
    Other(String),
}

impl RedisServer {
    /// Starts one without persistence and waits until it answers PING.
    ///
    /// # Panics
    /// If `redis-server` is missing or does not start.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// Starts one and waits until it answers PING; with `aof`, every write is fsynced to an
    /// append-only file in its directory (`--appendonly yes --appendfsync always`), so that a kill -9
    /// and [`RedisServer::restart`] keep what Redis acknowledged.
    ///
    /// # Panics
    /// If `redis-server` is missing or does not start.
    pub fn start_with(aof: bool) -> RedisServer {
        let bin = redis_server_bin();
        let mut server =
            RedisServer { bin, port: 0, dir: TempDir::new("redis"), aof, child: None, launches: 0 };
        let mut last = String::new();
        // A free port can be taken by someone else between our check and redis binding it: try
        // another then.
        for _ in 0..5 {
            server.port = free_port();
            match server.launch(STEP) {
                Ok(()) => return server,
                Err(LaunchError::PortInUse(log)) => last = log,
                Err(LaunchError::Other(log)) => panic!("redis-server did not start:\n{log}"),
            }
        }
        panic!("redis-server did not start: every port tried was in use; last log:\n{last}");
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("redis-{}.log", self.launches))
    }

    fn launch(&mut self, timeout: Duration) -> Result<(), LaunchError> {
        self.launches += 1;
        let log = self.log_path();
        let file =
            std::fs::File::create(&log).map_err(|e| LaunchError::Other(format!("{}: {e}", log.display())))?;
        let file2 = file.try_clone().map_err(|e| LaunchError::Other(e.to_string()))?;
        let persistence: &[&str] = if self.aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no", "--dir"])
            .arg(self.dir.path())
            .args(persistence)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .map_err(|e| LaunchError::Other(format!("cannot run {}: {e}", self.bin.display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let text = format!("exited with {status}:\n{text}");
                return Err(if text.contains("Address already in use") {
                    LaunchError::PortInUse(text)
                } else {
                    LaunchError::Other(text)
                });
            }
            if self.ping() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(LaunchError::Other(format!("no PONG within {timeout:?}:\n{text}")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url(0)) else { return false };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut con).is_ok_and(|p| p == "PONG")
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Whether the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Kills it (SIGKILL) and waits for it; its data is gone (unless it has an append-only file).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it (SIGKILL: there is nothing to save).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Kills it (SIGKILL) and starts it again on the same port (empty, or with what its append-only
    /// file holds); waits until it answers.
    ///
    /// # Panics
    /// If it does not come back within a generous deadline.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Starts it again on the same port after [`RedisServer::kill`] (for tests that keep it down a
    /// while); waits until it answers.
    ///
    /// # Panics
    /// If it does not come back within a generous deadline.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again while running");
        let deadline = Instant::now() + STEP;
        loop {
            // The port is released when the process dies (redis sets SO_REUSEADDR); retry in case a
            // client's socket or another process holds it for a moment.
            match self.launch(deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)))
            {
                Ok(()) => return,
                Err(LaunchError::PortInUse(log)) if Instant::now() < deadline => {
                    let _ = log;
                    thread::sleep(Duration::from_millis(100));
                }
                Err(LaunchError::PortInUse(log) | LaunchError::Other(log)) => {
                    panic!("redis-server did not restart on port {}:\n{log}", self.port)
                }
            }
        }
    }

    /// The server's log of its current (or last) run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A new synchronous connection to database `db`, with 10 s timeouts.
    ///
    /// # Panics
    /// If it cannot connect.
    pub fn connection(&self, db: u8) -> redis::Connection {
        let client = redis::Client::open(self.url(db)).expect("redis url");
        let con = client
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url(db)));
        con.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        con.set_write_timeout(Some(Duration::from_secs(10))).expect("write timeout");
        con
    }

    /// Runs `cmd` on database `db`.
    ///
    /// # Panics
    /// If it fails.
    pub fn query<T: redis::FromRedisValue>(&self, db: u8, cmd: &redis::Cmd) -> T {
        cmd.query(&mut self.connection(db)).unwrap_or_else(|e| panic!("redis {cmd:?} on db {db}: {e}"))
    }

    /// The hash `key` of database `db` as text (panics on bytes that are not UTF-8: see
    /// [`RedisServer::hgetall_bytes`]); empty if there is none.
    pub fn hgetall(&self, db: u8, key: &str) -> BTreeMap<String, String> {
        self.query(db, redis::cmd("HGETALL").arg(key))
    }

    /// The hash `key` of database `db`, as bytes; empty if there is none.
    pub fn hgetall_bytes(&self, db: u8, key: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.query(db, redis::cmd("HGETALL").arg(key))
    }

    /// The keys of database `db` matching `pattern` (`*` for all), sorted, as text.
    pub fn keys(&self, db: u8, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.query(db, redis::cmd("KEYS").arg(pattern));
        keys.sort();
        keys
    }

    /// The keys of database `db` matching `pattern`, sorted, as bytes.
    pub fn keys_bytes(&self, db: u8, pattern: &str) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.query(db, redis::cmd("KEYS").arg(pattern));
        keys.sort();
        keys
    }

    /// Whether `key` exists in database `db`.
    pub fn exists(&self, db: u8, key: &[u8]) -> bool {
        self.query::<i64>(db, redis::cmd("EXISTS").arg(key)) == 1
    }

    /// The number of keys in database `db`.
    pub fn dbsize(&self, db: u8) -> u64 {
        self.query(db, &redis::cmd("DBSIZE"))
    }

    /// Sets `fields` of the hash `key` in database `db`.
    pub fn hset(&self, db: u8, key: &str, fields: &[(&str, &str)]) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        self.query::<i64>(db, &cmd);
    }

    /// Polls `f` until it holds.
    ///
    /// # Panics
    /// After 30 s, with `what`.
    pub fn eventually(&self, what: &str, mut f: impl FnMut(&RedisServer) -> bool) {
        wait_for(Duration::from_secs(30), what, || f(self));
    }

    /// Empties every database.
    pub fn flushall(&self) {
        self.query::<()>(0, &redis::cmd("FLUSHALL"));
    }

    /// Polls until `key` exists in database `db`.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_key(&self, db: u8, key: &[u8], timeout: Duration) {
        wait_for(timeout, &format!("key {:?} in redis db {db}", String::from_utf8_lossy(key)), || {
            self.exists(db, key)
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- redis-server on port {} (log) ----\n{}", self.port, self.log());
        }
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------

#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    done: AtomicBool,
}

impl Lines {
    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn read_from(self: Arc<Self>, pipe: impl Read + Send + 'static) {
        thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned();
                        self.lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    }
                }
            }
            self.done.store(true, Ordering::Release);
        });
    }
}

/// A child process whose stdout and stderr are read line by line in threads; stdin piped. Killed on
/// drop; if the test is failing, its output is printed.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Lines>,
    err: Arc<Lines>,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` (its stdio is replaced by pipes); `name` is for messages.
    ///
    /// # Panics
    /// If it cannot be started.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Proc {
        let name = name.into();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (out, err) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        Arc::clone(&out).read_from(child.stdout.take().expect("piped stdout"));
        Arc::clone(&err).read_from(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        Proc { name, child, stdin, out, err, exited: None }
    }

    /// Its name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.out.snapshot()
    }

    /// Its stderr lines so far (the binaries' logs).
    pub fn stderr(&self) -> Vec<String> {
        self.err.snapshot()
    }

    /// Both, for a failure message.
    pub fn transcript(&self) -> String {
        format!(
            "---- {} stdout ----\n{}\n---- {} stderr ----\n{}",
            self.name,
            self.stdout().join("\n"),
            self.name,
            self.stderr().join("\n")
        )
    }

    /// Writes `line` and a newline to its stdin.
    ///
    /// # Panics
    /// If stdin was closed or the write fails.
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap_or_else(|| panic!("{}: stdin closed", self.name));
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("{}: write to stdin: {e}", self.name));
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Takes its stdin, for a writer thread (large inputs).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    fn wait_line(&mut self, err: bool, from: usize, parts: &[&str], timeout: Duration) -> (usize, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = Arc::clone(if err { &self.err } else { &self.out });
            // `done` is read before the lines: if it was set, every line is already in.
            let done = lines.done.load(Ordering::Acquire);
            let found = lines
                .snapshot()
                .into_iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| parts.iter().all(|p| l.contains(p)));
            if let Some(hit) = found {
                return hit;
            }
            let why = if done {
                Some("its output ended")
            } else if Instant::now() >= deadline {
                Some("timed out")
            } else {
                None
            };
            if let Some(why) = why {
                let status = self.try_wait();
                panic!(
                    "{}: no {} line with {parts:?} within {timeout:?} ({why}; exit {status:?})\n{}",
                    self.name,
                    if err { "stderr" } else { "stdout" },
                    self.transcript()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first stderr line at index `from` or later containing every one of `parts`, and its index.
    ///
    /// # Panics
    /// After `timeout`, or when stderr ended without one.
    pub fn wait_stderr(&mut self, from: usize, parts: &[&str], timeout: Duration) -> (usize, String) {
        self.wait_line(true, from, parts, timeout)
    }

    /// The first stdout line at index `from` or later containing every one of `parts`, and its index.
    ///
    /// # Panics
    /// After `timeout`, or when stdout ended without one.
    pub fn wait_stdout(&mut self, from: usize, parts: &[&str], timeout: Duration) -> (usize, String) {
        self.wait_line(false, from, parts, timeout)
    }

    /// Waits until stdout has at least `n` lines (or ended), and returns them all.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_stdout_lines(&mut self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self.out.done.load(Ordering::Acquire);
            let lines = self.stdout();
            if lines.len() >= n || done {
                return lines;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: {} of {n} stdout lines within {timeout:?}\n{}",
                    self.name,
                    lines.len(),
                    self.transcript()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`, `STOP`, `CONT`) with `kill(1)`.
    ///
    /// # Panics
    /// If `kill` fails (the process is gone, say).
    pub fn signal(&mut self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{sig} {} ({}) failed", self.child.id(), self.name);
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits at most `timeout` for it to exit, then for its output to be read to the end.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.try_wait() {
                break s;
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The pipes close when the process (and any child holding them) is gone.
        let until = Instant::now() + Duration::from_secs(5);
        while !(self.out.done.load(Ordering::Acquire) && self.err.done.load(Ordering::Acquire))
            && Instant::now() < until
        {
            thread::sleep(Duration::from_millis(5));
        }
        Some(status)
    }

    /// Waits at most `timeout` for it to exit.
    ///
    /// # Panics
    /// If it does not, with its output (it is killed on drop).
    pub fn expect_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_exit(timeout)
            .unwrap_or_else(|| panic!("{} still running after {timeout:?}\n{}", self.name, self.transcript()))
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let running = self.try_wait().is_none();
        self.kill();
        if thread::panicking() {
            eprintln!("{}{}", if running { "(killed) " } else { "" }, self.transcript());
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The binaries
// ---------------------------------------------------------------------------------------------------

/// The log filter the binaries are run with (their default, set explicitly so that a `RUST_LOG` in
/// the test's environment cannot hide the lines the harness waits for).
pub const LOG: &str = "statetable=info,statetable_consumer=info,statetable_producer=info,zmtp=warn";

/// A running `statetable-consumer`.
pub struct Consumer {
    /// The process.
    pub proc: Proc,
    endpoint: String,
}

/// How a process ended: its status and its stderr (the log).
#[derive(Debug)]
pub struct Exited {
    /// The exit status.
    pub status: ExitStatus,
    /// Its stderr lines.
    pub log: Vec<String>,
    /// Its stdout lines.
    pub stdout: Vec<String>,
}

impl Exited {
    /// The last log line containing `part`.
    pub fn log_line(&self, part: &str) -> Option<&str> {
        self.log.iter().rev().find(|l| l.contains(part)).map(String::as_str)
    }
}

/// The value of `name=value` in a tracing text log line (quotes kept), if present.
pub fn log_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    line.split_whitespace().find_map(|t| t.strip_prefix(key.as_str()))
}

impl Consumer {
    /// Starts `statetable-consumer --bind tcp://127.0.0.1:* --redis <redis_url> <args>` (a port the
    /// consumer picks itself, so there is no race for it) and waits until it is ready.
    ///
    /// # Panics
    /// If it does not become ready.
    pub fn spawn(redis_url: &str, args: &[&str]) -> Consumer {
        Consumer::try_spawn_at("tcp://127.0.0.1:*", redis_url, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts it bound to `endpoint` (a given port, e.g. to restart it where producers connect) and
    /// waits until it is ready; `Err` with its output if it exits first (address in use, say).
    pub fn try_spawn_at(endpoint: &str, redis_url: &str, args: &[&str]) -> Result<Consumer, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_statetable-consumer"));
        cmd.args(["--bind", endpoint, "--redis", redis_url]).args(args).env("RUST_LOG", LOG);
        let mut proc = Proc::spawn(format!("statetable-consumer --bind {endpoint} {}", args.join(" ")), cmd);
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(line) = proc.stderr().iter().find(|l| l.contains("consumer ready")) {
                let endpoint = log_field(line, "endpoint")
                    .unwrap_or_else(|| panic!("no endpoint= in the ready line: {line}"))
                    .to_owned();
                return Ok(Consumer { proc, endpoint });
            }
            if let Some(status) = proc.try_wait() {
                proc.wait_exit(Duration::from_secs(1));
                return Err(format!(
                    "statetable-consumer exited ({status}) before it was ready\n{}",
                    proc.transcript()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("statetable-consumer not ready within {STEP:?}\n{}", proc.transcript()));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it bound to `endpoint`, retrying for up to [`STEP`] while it fails (the port not yet
    /// released, say), and waits until it is ready.
    ///
    /// # Panics
    /// If it never becomes ready.
    pub fn spawn_at(endpoint: &str, redis_url: &str, args: &[&str]) -> Consumer {
        let deadline = Instant::now() + STEP;
        loop {
            match Consumer::try_spawn_at(endpoint, redis_url, args) {
                Ok(c) => return c,
                Err(e) if Instant::now() >= deadline => panic!("{e}"),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The endpoint it bound (`tcp://127.0.0.1:<port>`), for producers.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> Vec<String> {
        self.proc.stderr()
    }

    /// Sends SIGTERM and waits (up to [`EXIT`]) for it to drain and exit.
    ///
    /// # Panics
    /// If it does not exit in time.
    pub fn terminate(mut self) -> Exited {
        self.proc.signal("TERM");
        let status = self.proc.expect_exit(EXIT);
        Exited { status, log: self.proc.stderr(), stdout: self.proc.stdout() }
    }

    /// Kills it (SIGKILL): nothing is drained.
    pub fn kill(mut self) -> Vec<String> {
        self.proc.kill();
        self.proc.wait_exit(Duration::from_secs(5));
        self.proc.stderr()
    }
}

/// A running `statetable-producer`, fed on stdin.
pub struct Producer {
    /// The process.
    pub proc: Proc,
}

impl Producer {
    /// Starts `statetable-producer --connect <endpoint> --db <db> --table <table> <args>`.
    pub fn spawn(endpoint: &str, db: &str, table: &str, args: &[&str]) -> Producer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_statetable-producer"));
        cmd.args(["--connect", endpoint, "--db", db, "--table", table]).args(args).env("RUST_LOG", LOG);
        Producer { proc: Proc::spawn(format!("statetable-producer --table {table} {}", args.join(" ")), cmd) }
    }

    /// Writes one input line.
    pub fn line(&mut self, line: &str) {
        self.proc.write_line(line);
    }

    /// Closes stdin and waits (up to [`EXIT`]) for it to exit.
    ///
    /// # Panics
    /// If it does not exit in time.
    pub fn finish(mut self) -> Exited {
        self.proc.close_stdin();
        let status = self.proc.expect_exit(EXIT);
        Exited { status, log: self.proc.stderr(), stdout: self.proc.stdout() }
    }
}

/// Runs `statetable-producer` with `lines` on stdin (written from a thread, so a large input cannot
/// dead-lock against its output) and waits for it to exit.
pub fn run_producer(endpoint: &str, db: &str, table: &str, args: &[&str], lines: &[String]) -> Exited {
    let mut p = Producer::spawn(endpoint, db, table, args);
    feed(&mut p.proc, lines);
    let status = p.proc.expect_exit(EXIT);
    Exited { status, log: p.proc.stderr(), stdout: p.proc.stdout() }
}

/// Writes `lines` to the process's stdin from a thread, then closes it.
pub fn feed(proc: &mut Proc, lines: &[String]) {
    let Some(mut stdin) = proc.take_stdin() else { panic!("{}: stdin closed", proc.name()) };
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
}

/// A producer input line: SET `key` to `fields`, in that order.
pub fn set_line<K: AsRef<str>, F: AsRef<str>, V: AsRef<str>>(key: K, fields: &[(F, V)]) -> String {
    let fields: Vec<String> =
        fields.iter().map(|(f, v)| format!("{}:{}", json_str(f.as_ref()), json_str(v.as_ref()))).collect();
    format!(r#"{{"op":"set","key":{},"fields":{{{}}}}}"#, json_str(key.as_ref()), fields.join(","))
}

/// A producer input line: DEL `key`.
pub fn del_line(key: impl AsRef<str>) -> String {
    format!(r#"{{"op":"del","key":{}}}"#, json_str(key.as_ref()))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

// ---------------------------------------------------------------------------------------------------
// pyzmq
// ---------------------------------------------------------------------------------------------------

pub use zmtp_interop::python;

/// Starts `python -u tests/peers/<script>.py <args>` in the repository root.
pub fn python_peer<I, S>(script: &str, args: I) -> Proc
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = repo_root().join("tests").join("peers").join(format!("{script}.py"));
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let name =
        format!("{script}.py {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    let mut cmd = Command::new(python());
    cmd.arg("-u").arg(&path).args(&args).current_dir(repo_root());
    Proc::spawn(name, cmd)
}
