//! Interop harness: runs real pyzmq (libzmq) peers as processes for the tests in `tests/tests/`.
//!
//! Three pieces:
//!
//! * [`python`]: the interpreter that has pyzmq (`$ZMTP_PYTHON`, or the repository's `.venv`, created by
//!   `scripts/ensure-pyzmq.sh` on first use).
//! * [`Peer`]: a `tests/peers/<script>.py` child process whose stdout is read line by line with timeouts.
//!   The general-purpose peer is `tests/peers/echo.py` (see its docstring for the line protocol:
//!   `READY <endpoint>`, `EVENT <name> <value>`, `MSG <frame>...`).
//! * [`Driver`]: a blocking driver for a [`zmtp::proto::Connection`] over any [`Transport`] (a
//!   [`TcpStream`], a [`UnixStream`], or the [`Stream`] enum of both): it writes the transmit queue with
//!   vectored writes, reads into the connection's read buffer with read timeouts derived from the
//!   connection's timers and the caller's deadline, and fires `handle_timeout` when due.
//!
//! This is test tooling, not the product runtime: one thread, blocking I/O, every wait bounded.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use zmtp::proto::{
    Command as ZmtpCommand, Connection, ConnectionConfig, ConnectionError, Event, FrameHeader, PeerInfo,
    Stats, GREETING_LEN,
};
use zmtp::Msg;

/// How long a single step of a test (a handshake, one expected message, one expected peer line) may take
/// before the test fails. Generous for a loaded CI machine, short enough that a broken test ends quickly.
pub const STEP: Duration = Duration::from_secs(5);

/// How long a peer may take to start (Python start-up, `import zmq`, bind) and print `READY`.
pub const PEER_START: Duration = Duration::from_secs(10);

/// The write timeout every [`Driver`] sets on its stream, so a peer that stops reading fails the test
/// instead of hanging it.
pub const WRITE_TIMEOUT: Duration = STEP;

/// The repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The Python interpreter that has pyzmq: `$ZMTP_PYTHON` if set and non-empty, else the path printed by
/// `scripts/ensure-pyzmq.sh` (which creates `<repo>/.venv` with pyzmq if it is missing). Computed once
/// per process.
///
/// # Panics
///
/// If the script cannot be run or fails: the interop tests cannot run without pyzmq.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("ZMTP_PYTHON").filter(|p| !p.is_empty()) {
                return PathBuf::from(p);
            }
            let script = repo_root().join("scripts").join("ensure-pyzmq.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(output.status.success(), "{} failed: {}", script.display(), output.status);
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            assert!(!path.is_empty(), "{} printed no interpreter path", script.display());
            PathBuf::from(path)
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------------
// Peer processes
// ---------------------------------------------------------------------------------------------------

/// A peer process: `python tests/peers/<script>.py args…`, with piped stdout and stderr. Killed (and
/// reaped) on drop; if the test is panicking, its output is printed to help diagnose the failure.
pub struct Peer {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stdout_done: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Peer {
    /// Spawns `tests/peers/<script>.py` (`script` without `.py`) with `args`.
    ///
    /// # Panics
    ///
    /// If the process cannot be started.
    pub fn spawn<I, S>(script: &str, args: I) -> Peer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Peer::start(script, args, false).0
    }

    /// Starts `tests/peers/<script>.py`, with stdin piped (and returned) or closed.
    fn start<I, S>(script: &str, args: I, piped_stdin: bool) -> (Peer, Option<std::process::ChildStdin>)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let path = repo_root().join("tests").join("peers").join(format!("{script}.py"));
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let name =
            format!("{script}.py {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
        let mut child = Command::new(python())
            .arg("-u")
            .arg(&path)
            .args(&args)
            .current_dir(repo_root())
            .stdin(if piped_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start peer {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || read_lines(stdout, &tx));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                if let Ok(mut s) = sink.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        (Peer { name, child, lines, seen: Vec::new(), stdout_done: false, stderr }, stdin)
    }

    /// Spawns the general-purpose peer `tests/peers/echo.py` with `args`.
    pub fn echo<I, S>(args: I) -> Peer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Peer::spawn("echo", args)
    }

    /// The next raw stdout line, newline included; `None` on timeout or end of output.
    fn raw_line(&mut self, timeout: Duration) -> Option<String> {
        if self.stdout_done {
            return None;
        }
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.trim_end_matches(['\n', '\r']).to_owned());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.stdout_done = true;
                None
            }
        }
    }

    /// The next stdout line (without its newline), waiting at most `timeout`; `None` on timeout or when
    /// the peer's output ended.
    pub fn line(&mut self, timeout: Duration) -> Option<String> {
        self.raw_line(timeout).map(|l| l.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// The next stdout line starting with `prefix`, skipping (but remembering) other lines, waiting at
    /// most `timeout` in total.
    ///
    /// # Panics
    ///
    /// On timeout or end of output, with everything the peer printed.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line(left) {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => continue,
                None => panic!(
                    "peer {}: no line starting with {prefix:?} within {timeout:?} ({})\n{}",
                    self.name,
                    if self.stdout_done { "its output ended" } else { "timed out" },
                    self.transcript()
                ),
            }
        }
    }

    /// Every line starting with `prefix` that arrives within `window` (waits the whole window unless the
    /// output ends).
    pub fn lines_within(&mut self, prefix: &str, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.line(left) {
                Some(line) if line.starts_with(prefix) => out.push(line),
                Some(_) => {}
                None => return out,
            }
        }
    }

    /// Waits for the `READY <endpoint>` line and returns the endpoint.
    ///
    /// # Panics
    ///
    /// If no `READY` line arrives within [`PEER_START`] or the endpoint does not parse.
    pub fn ready(&mut self) -> Endpoint {
        let line = self.expect_line("READY ", PEER_START);
        let text = &line["READY ".len()..];
        Endpoint::parse(text).unwrap_or_else(|| panic!("peer {}: bad endpoint {text:?}", self.name))
    }

    /// Everything left on stdout until the peer closes it, exactly as printed (newlines included),
    /// waiting at most `timeout` in total.
    ///
    /// # Panics
    ///
    /// If the output does not end within `timeout`.
    pub fn read_to_end(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.raw_line(left) {
                Some(line) => out.push_str(&line),
                None if self.stdout_done => return out,
                None => {
                    panic!("peer {}: output did not end within {timeout:?}\n{}", self.name, self.transcript())
                }
            }
        }
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// Freezes the peer process (SIGSTOP): libzmq's I/O thread stops too, so the kernel still accepts
    /// and acknowledges our bytes but nothing is ever answered. Only heartbeats can notice.
    ///
    /// # Panics
    ///
    /// If `kill -STOP` fails.
    pub fn freeze(&mut self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen peer (SIGCONT).
    ///
    /// # Panics
    ///
    /// If `kill -CONT` fails.
    pub fn thaw(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill {signal}: {e}"));
        assert!(status.success(), "kill {signal} {} failed: {status}", self.child.id());
    }

    /// The stdout lines read so far (without newlines), including skipped ones.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// What the peer wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_default()
    }

    /// The command line, the stdout lines read so far and the stderr, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- peer: {}\n--- stdout (read so far):\n{}\n--- stderr:\n{}",
            self.name,
            self.seen.join("\n"),
            self.stderr()
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            // Pick up what is left so the transcript is complete.
            while self.raw_line(Duration::from_millis(200)).is_some() {}
            eprintln!("{}", self.transcript());
        }
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer").field("name", &self.name).field("pid", &self.child.id()).finish()
    }
}

fn read_lines(stdout: ChildStdout, tx: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The line format of tests/peers/echo.py
// ---------------------------------------------------------------------------------------------------

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A message as an `echo.py --send`/`--publish` argument: the frames in hex, separated by `:`.
pub fn msg_arg<F: AsRef<[u8]>>(frames: &[F]) -> String {
    frames.iter().map(|f| hex(f.as_ref())).collect::<Vec<_>>().join(":")
}

/// A frame as `echo.py` prints it: `<len>:<hex>` up to 64 bytes, `<len>:crc32=<8 hex>` beyond.
pub fn frame_repr(frame: &[u8]) -> String {
    if frame.len() <= 64 {
        format!("{}:{}", frame.len(), hex(frame))
    } else {
        format!("{}:crc32={:08x}", frame.len(), crc32(frame))
    }
}

/// The `MSG …` line `echo.py` prints for a message with these frames.
pub fn msg_line<F: AsRef<[u8]>>(frames: &[F]) -> String {
    let mut line = String::from("MSG");
    for f in frames {
        line.push(' ');
        line.push_str(&frame_repr(f.as_ref()));
    }
    line
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`), the checksum `echo.py` prints for long frames.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: [u32; 256] = crc32_table();
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------------------------------------------
// Endpoints, transports, listeners
// ---------------------------------------------------------------------------------------------------

/// Which transport a test runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `tcp://127.0.0.1:<port>`.
    Tcp,
    /// `ipc://<path>` (a Unix domain stream socket).
    Ipc,
}

impl Kind {
    /// An endpoint for a peer to bind: `tcp://127.0.0.1:0` (any port), or `ipc://<dir>/<name>.sock`.
    pub fn bind_endpoint(self, dir: &TempDir, name: &str) -> String {
        match self {
            Kind::Tcp => "tcp://127.0.0.1:0".to_owned(),
            Kind::Ipc => format!("ipc://{}", dir.path().join(format!("{name}.sock")).display()),
        }
    }
}

/// A ZeroMQ endpoint we can reach: `tcp://<ip>:<port>` or `ipc://<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Ipc(PathBuf),
}

impl Endpoint {
    /// Parses `tcp://ip:port` or `ipc://path` (as libzmq's `LAST_ENDPOINT` prints them).
    pub fn parse(text: &str) -> Option<Endpoint> {
        if let Some(addr) = text.strip_prefix("tcp://") {
            return addr.parse().ok().map(Endpoint::Tcp);
        }
        text.strip_prefix("ipc://").filter(|p| !p.is_empty()).map(|p| Endpoint::Ipc(PathBuf::from(p)))
    }

    /// Which transport this is.
    pub fn kind(&self) -> Kind {
        match self {
            Endpoint::Tcp(_) => Kind::Tcp,
            Endpoint::Ipc(_) => Kind::Ipc,
        }
    }

    /// Connects to the endpoint (TCP with a [`STEP`] connect timeout).
    pub fn connect(&self) -> io::Result<Stream> {
        match self {
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, STEP)?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Endpoint::Ipc(path) => UnixStream::connect(path).map(Stream::Unix),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
            Endpoint::Ipc(path) => write!(f, "ipc://{}", path.display()),
        }
    }
}

/// A byte stream a [`Driver`] can run a connection over.
pub trait Transport: Read + Write {
    /// Sets the read timeout (`None`: block).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets the write timeout (`None`: block).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

impl Transport for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }
}

/// A TCP or a Unix domain stream, so a test can run over either.
#[derive(Debug)]
pub enum Stream {
    /// `tcp://`.
    Tcp(TcpStream),
    /// `ipc://`.
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Stream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Unix(s) => s.set_read_timeout(timeout),
        }
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(timeout),
            Stream::Unix(s) => s.set_write_timeout(timeout),
        }
    }
}

/// A listening socket for tests where the pyzmq peer connects to us.
#[derive(Debug)]
pub enum Listener {
    /// Listening on `127.0.0.1:<any port>`.
    Tcp(TcpListener),
    /// Listening on a Unix domain socket path.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Listens on loopback TCP (any port) or on `<dir>/<name>.sock`.
    pub fn bind(kind: Kind, dir: &TempDir, name: &str) -> io::Result<Listener> {
        match kind {
            Kind::Tcp => TcpListener::bind("127.0.0.1:0").map(Listener::Tcp),
            Kind::Ipc => {
                let path = dir.path().join(format!("{name}.sock"));
                UnixListener::bind(&path).map(|l| Listener::Unix(l, path))
            }
        }
    }

    /// The endpoint a peer connects to (`tcp://127.0.0.1:<port>` or `ipc://<path>`).
    pub fn endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Endpoint::Tcp),
            Listener::Unix(_, path) => Ok(Endpoint::Ipc(path.clone())),
        }
    }

    /// Accepts one connection, waiting at most `timeout` (`TimedOut` otherwise). The accepted stream
    /// is blocking.
    pub fn accept(&self, timeout: Duration) -> io::Result<Stream> {
        let deadline = Instant::now() + timeout;
        self.set_nonblocking(true)?;
        let result = loop {
            let attempt = match self {
                Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            };
            match attempt {
                Ok(s) => break Ok(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Err(io::Error::new(io::ErrorKind::TimedOut, "no connection to accept"))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.set_nonblocking(false)?;
        let stream = result?;
        match &stream {
            Stream::Tcp(s) => {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
            }
            Stream::Unix(s) => s.set_nonblocking(false)?,
        }
        Ok(stream)
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(on),
            Listener::Unix(l, _) => l.set_nonblocking(on),
        }
    }
}

/// A fresh directory under the system temp dir (for `ipc://` socket files), removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/zmtp-interop-<pid>-<n>-<name>`. Keep `name` short: Unix socket paths are limited
    /// to about 100 bytes.
    ///
    /// # Panics
    ///
    /// If the directory cannot be created.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("zmtp-interop-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------------
// The blocking connection driver
// ---------------------------------------------------------------------------------------------------

/// Why a [`Driver`] call did not produce what was asked.
#[derive(Debug)]
pub enum DriveError {
    /// Nothing matching arrived in time. `events` are the events seen (and not matched) meanwhile.
    Timeout {
        /// How long was waited.
        waited: Duration,
        /// Events that arrived and were passed over.
        events: Vec<Event>,
    },
    /// The connection closed (its `Event::Closed` reason).
    Closed(ConnectionError),
    /// The connection refused a send (the `SendError`, formatted).
    Send(String),
    /// The stream failed.
    Io(io::Error),
}

impl fmt::Display for DriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::Timeout { waited, events } => {
                write!(f, "timed out after {waited:?}; events passed over: {events:?}")
            }
            DriveError::Closed(e) => write!(f, "connection closed: {e} ({e:?})"),
            DriveError::Send(e) => write!(f, "send refused: {e}"),
            DriveError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for DriveError {}

impl From<io::Error> for DriveError {
    fn from(e: io::Error) -> Self {
        DriveError::Io(e)
    }
}

/// Largest single read.
const READ_CHUNK: usize = 256 * 1024;
/// Most iovec entries per write.
const IOV_MAX: usize = 64;

/// Runs a [`Connection`] over a blocking stream: the simplest correct runtime, for tests.
///
/// Every call that waits takes a timeout; the stream's read timeout is set before every read to the
/// earlier of the caller's deadline and the connection's next timer (`poll_timeout`), and
/// `handle_timeout` is called once that timer passes. The transmit queue is written with
/// `write_vectored` over `chunks_vectored`, consumed with `advance`. Input goes straight into the
/// connection's [`Connection::read_buffer`].
///
/// A write that fails with a broken pipe or a reset, and a read that returns 0 or a reset, are the
/// peer closing: the connection is told with `handle_eof` and reports `Closed(PeerClosed)`. After
/// `Event::Closed` the transmit queue is flushed once more (it may hold our ERROR), best effort.
#[derive(Debug)]
pub struct Driver<S> {
    conn: Connection,
    stream: S,
    read_eof: bool,
    write_broken: bool,
    write_error: Option<io::Error>,
    closed: Option<ConnectionError>,
    capture: bool,
    sent: Vec<u8>,
    received: Vec<u8>,
}

impl<S: Transport> Driver<S> {
    /// A driver for a new NULL-mechanism connection with `config`, started now. Our greeting is written
    /// at the first call that drives the connection.
    pub fn new(stream: S, config: ConnectionConfig) -> Driver<S> {
        Driver::with_connection(stream, Connection::new(config, Instant::now()))
    }

    /// A driver for an existing connection.
    pub fn with_connection(stream: S, conn: Connection) -> Driver<S> {
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        Driver {
            conn,
            stream,
            read_eof: false,
            write_broken: false,
            write_error: None,
            closed: None,
            capture: false,
            sent: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Records every byte written and read from now on (see [`Driver::sent_bytes`],
    /// [`Driver::sent_commands`]). Meant for small exchanges: nothing is ever discarded.
    pub fn capture(mut self) -> Driver<S> {
        self.capture = true;
        self
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (to queue things without flushing, or to close it).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The connection's counters.
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }

    /// Why the connection closed, once it has reported `Closed`.
    pub fn closed(&self) -> Option<&ConnectionError> {
        self.closed.as_ref()
    }

    /// The write error that ended writing (a broken pipe or reset), if any.
    pub fn write_error(&self) -> Option<&io::Error> {
        self.write_error.as_ref()
    }

    /// Every byte written so far, if capturing (greeting first).
    pub fn sent_bytes(&self) -> &[u8] {
        &self.sent
    }

    /// Every byte read so far, if capturing (the peer's greeting first).
    pub fn received_bytes(&self) -> &[u8] {
        &self.received
    }

    /// The commands among the captured bytes we wrote (after the greeting), in order.
    pub fn sent_commands(&self) -> Vec<ZmtpCommand> {
        commands_in(&self.sent)
    }

    /// The commands among the captured bytes we read (after the peer's greeting), in order.
    pub fn received_commands(&self) -> Vec<ZmtpCommand> {
        commands_in(&self.received)
    }

    /// Queues `msg` and writes it (and anything else queued).
    pub fn send(&mut self, msg: impl Into<Msg>) -> Result<(), DriveError> {
        self.conn.send_message(msg.into()).map_err(|e| DriveError::Send(format!("{e:?}")))?;
        self.flush()
    }

    /// Queues a subscription to `topic` and writes it.
    pub fn subscribe(&mut self, topic: impl Into<Bytes>) -> Result<(), DriveError> {
        self.conn.send_subscribe(topic.into()).map_err(|e| DriveError::Send(format!("{e:?}")))?;
        self.flush()
    }

    /// Drives the connection until the handshake completes; returns what the peer announced.
    pub fn handshake(&mut self, timeout: Duration) -> Result<PeerInfo, DriveError> {
        self.drive_until(timeout, |ev| match ev {
            Event::HandshakeComplete(info) => Some(info),
            _ => None,
        })
    }

    /// Drives the connection until a message arrives.
    pub fn recv(&mut self, timeout: Duration) -> Result<Msg, DriveError> {
        self.drive_until(timeout, |ev| match ev {
            Event::Message(msg) => Some(msg),
            _ => None,
        })
    }

    /// Drives the connection until `f` accepts an event (returns `Some`), at most `timeout`. Events
    /// `f` passes over are dropped (and listed in [`DriveError::Timeout`]). A `Closed` event is offered
    /// to `f` too; if `f` passes it over, the result is [`DriveError::Closed`].
    pub fn drive_until<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(Event) -> Option<T>,
    ) -> Result<T, DriveError> {
        let deadline = Instant::now() + timeout;
        let mut passed = Vec::new();
        loop {
            let ev = match self.next_event_before(deadline) {
                Ok(ev) => ev,
                Err(DriveError::Timeout { .. }) => {
                    return Err(DriveError::Timeout { waited: timeout, events: passed })
                }
                Err(e) => return Err(e),
            };
            let closed = match &ev {
                Event::Closed(e) => Some(e.clone()),
                _ => None,
            };
            let keep = ev.clone();
            if let Some(t) = f(ev) {
                return Ok(t);
            }
            if let Some(e) = closed {
                return Err(DriveError::Closed(e));
            }
            passed.push(keep);
        }
    }

    /// Drives the connection for `duration` and returns every event that arrived. Stops early with
    /// [`DriveError::Closed`] if the connection closes.
    pub fn drive_for(&mut self, duration: Duration) -> Result<Vec<Event>, DriveError> {
        let deadline = Instant::now() + duration;
        let mut events = Vec::new();
        loop {
            match self.next_event_before(deadline) {
                Ok(Event::Closed(e)) => return Err(DriveError::Closed(e)),
                Ok(ev) => events.push(ev),
                Err(DriveError::Timeout { .. }) => return Ok(events),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next event, driving I/O and timers for at most `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Event, DriveError> {
        self.next_event_before(Instant::now() + timeout)
    }

    /// Writes everything queued. A broken pipe or reset is the peer closing (see the type's docs).
    pub fn flush(&mut self) -> Result<(), DriveError> {
        while !self.write_broken && self.conn.transmit().has_remaining() {
            let written = {
                let mut iov = [IoSlice::new(&[]); IOV_MAX];
                let n = self.conn.transmit().chunks_vectored(&mut iov);
                match self.stream.write_vectored(&iov[..n]) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                    Ok(written) => {
                        if self.capture {
                            let mut left = written;
                            for slice in &iov[..n] {
                                let take = left.min(slice.len());
                                self.sent.extend_from_slice(&slice[..take]);
                                left -= take;
                                if left == 0 {
                                    break;
                                }
                            }
                        }
                        written
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if is_disconnect(&e) => {
                        self.write_broken = true;
                        self.write_error = Some(e);
                        self.conn.handle_eof();
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            self.conn.transmit_mut().advance(written);
        }
        Ok(())
    }

    fn next_event_before(&mut self, deadline: Instant) -> Result<Event, DriveError> {
        let start = Instant::now();
        loop {
            if let Some(ev) = self.conn.poll_event() {
                if let Event::Closed(e) = &ev {
                    self.closed = Some(e.clone());
                    // Best effort: the peer may be gone already.
                    let _ = self.flush();
                } else {
                    self.flush()?;
                }
                return Ok(ev);
            }
            if let Some(e) = &self.closed {
                return Err(DriveError::Closed(e.clone()));
            }
            // Decoding may have queued handshake commands or a PONG.
            self.flush()?;
            let now = Instant::now();
            if let Some(t) = self.conn.poll_timeout() {
                if t <= now {
                    self.conn.handle_timeout(now);
                    continue;
                }
            }
            if now >= deadline {
                return Err(DriveError::Timeout { waited: now - start, events: Vec::new() });
            }
            let wake = self.conn.poll_timeout().map_or(deadline, |t| t.min(deadline));
            let wait = wake.saturating_duration_since(now).max(Duration::from_millis(1));
            if self.read_eof {
                // The connection has been told; it reports Closed once its input is decoded.
                thread::sleep(wait.min(Duration::from_millis(10)));
                continue;
            }
            self.read_once(wait)?;
        }
    }

    fn read_once(&mut self, wait: Duration) -> Result<(), DriveError> {
        self.stream.set_read_timeout(Some(wait))?;
        let buf = self.conn.read_buffer();
        let start = buf.len();
        let room = (buf.capacity() - start).clamp(1, READ_CHUNK);
        buf.resize(start + room, 0);
        let result = self.stream.read(&mut buf[start..]);
        let n = match result {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                buf.truncate(start);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                buf.truncate(start);
                return Ok(());
            }
            Err(e) if is_disconnect(&e) => 0,
            Err(e) => {
                buf.truncate(start);
                return Err(e.into());
            }
        };
        if self.capture {
            self.received.extend_from_slice(&buf[start..start + n]);
        }
        buf.truncate(start + n);
        if n == 0 {
            self.read_eof = true;
            self.conn.handle_eof();
        } else {
            self.conn.handle_read(Instant::now(), n);
        }
        Ok(())
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// The commands in a captured byte stream that starts with a 64-byte greeting; data frames are skipped,
/// and decoding stops at the first incomplete or undecodable frame.
pub fn commands_in(stream: &[u8]) -> Vec<ZmtpCommand> {
    let mut out = Vec::new();
    let mut rest = stream.get(GREETING_LEN..).unwrap_or_default();
    while let Ok(Some((header, n))) = FrameHeader::decode(rest) {
        let Some(end) = usize::try_from(header.len).ok().and_then(|len| n.checked_add(len)) else { break };
        let Some(body) = rest.get(n..end) else { break };
        if header.flags.is_command() {
            match ZmtpCommand::decode(Bytes::copy_from_slice(body)) {
                Ok(cmd) => out.push(cmd),
                Err(_) => break,
            }
        }
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn frame_and_message_lines_match_echo_py() {
        assert_eq!(frame_repr(b""), "0:");
        assert_eq!(frame_repr(b"\x01A"), "2:0141");
        assert_eq!(frame_repr(&[0u8; 65]), format!("65:crc32={:08x}", crc32(&[0u8; 65])));
        assert_eq!(msg_line(&[&b""[..], b"hi"]), "MSG 0: 2:6869");
        assert_eq!(msg_arg(&[&b""[..], b"hi"]), ":6869");
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:5555"),
            Some(Endpoint::Tcp("127.0.0.1:5555".parse().unwrap_or_else(|_| unreachable!())))
        );
        assert_eq!(Endpoint::parse("ipc:///tmp/x.sock"), Some(Endpoint::Ipc(PathBuf::from("/tmp/x.sock"))));
        assert_eq!(Endpoint::parse("inproc://x"), None);
        assert_eq!(Endpoint::parse("ipc://"), None);
    }

    #[test]
    fn commands_in_skips_greeting_and_data_frames() {
        let mut wire = vec![0u8; GREETING_LEN];
        let ping = ZmtpCommand::Ping { ttl_deciseconds: 0, context: Bytes::new() };
        ping.encode(&mut wire);
        wire.extend_from_slice(&[0x00, 0x02, b'h', b'i']);
        let error = ZmtpCommand::Error { reason: Bytes::from_static(b"bye") };
        error.encode(&mut wire);
        wire.push(0x04); // an incomplete frame header
        assert_eq!(commands_in(&wire), vec![ping, error]);
    }
}

// ---------------------------------------------------------------------------------------------------
// Socket-level peers: tests/peers/sock_peer.py, commanded on stdin
// ---------------------------------------------------------------------------------------------------

impl Peer {
    /// Spawns `tests/peers/<script>.py` with `args` as [`Peer::spawn`] does, but with stdin piped
    /// instead of closed; returns the peer and the writing end of its stdin.
    ///
    /// # Panics
    ///
    /// If the process cannot be started.
    pub fn spawn_with_stdin<I, S>(script: &str, args: I) -> (Peer, std::process::ChildStdin)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (peer, stdin) = Peer::start(script, args, true);
        (peer, stdin.expect("piped stdin"))
    }

    /// Kills the process now (SIGKILL) and reaps it. Dropping the peer does the same.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A `tests/peers/sock_peer.py` process: one pyzmq socket of any type with options from the command
/// line, printing what it sees (`READY`, `EVENT`, `MSG`, `SENT`, `SEND_FAILED`, `EXIT` lines, see the
/// script's docstring) and taking commands (`SEND <spec>`, `QUIT`) on stdin. It exits when stdin
/// closes, so a test that dies never leaves it behind; it is killed on drop anyway.
///
/// Derefs to [`Peer`] for the line-reading methods.
pub struct SockPeer {
    // Dropped first: closing stdin ends the script; the Peer's drop then kills and reaps it.
    stdin: Option<std::process::ChildStdin>,
    peer: Peer,
}

impl SockPeer {
    /// Spawns `sock_peer.py args…`.
    pub fn spawn<I, S>(args: I) -> SockPeer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (peer, stdin) = Peer::spawn_with_stdin("sock_peer", args);
        SockPeer { stdin: Some(stdin), peer }
    }

    /// Writes one command line (a newline is added).
    ///
    /// # Panics
    ///
    /// If the peer's stdin is closed or the write fails (the peer died).
    pub fn command(&mut self, line: &str) {
        let result = match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed")),
        };
        if let Err(e) = result {
            let shown: String = line.chars().take(80).collect();
            panic!("cannot write {shown:?} to the peer: {e}\n{}", self.peer.transcript());
        }
    }

    /// Asks the peer to send a message with these frames (`SEND <hex:hex…>`).
    pub fn send<F: AsRef<[u8]>>(&mut self, frames: &[F]) {
        self.command(&format!("SEND {}", msg_arg(frames)));
    }

    /// Closes the peer's stdin: the script exits.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next `MSG` line and returns its frames as printed ([`frame_repr`]).
    pub fn expect_msg(&mut self, timeout: Duration) -> Vec<String> {
        line_reprs(&self.peer.expect_line("MSG ", timeout))
    }

    /// Waits for the next `SENT` line and returns its frames as printed ([`frame_repr`]).
    pub fn expect_sent(&mut self, timeout: Duration) -> Vec<String> {
        line_reprs(&self.peer.expect_line("SENT", timeout))
    }

    /// Whether any line read so far starts with `prefix`.
    pub fn has_seen(&self, prefix: &str) -> bool {
        self.peer.seen().iter().any(|l| l.starts_with(prefix))
    }

    /// How many lines read so far start with `prefix`.
    pub fn count_seen(&self, prefix: &str) -> usize {
        self.peer.seen().iter().filter(|l| l.starts_with(prefix)).count()
    }
}

impl std::ops::Deref for SockPeer {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl std::ops::DerefMut for SockPeer {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

impl fmt::Debug for SockPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockPeer").field("peer", &self.peer).finish()
    }
}

/// The frames of a `MSG`/`SENT` line as printed: every word after the first.
pub fn line_reprs(line: &str) -> Vec<String> {
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

/// [`frame_repr`] of every frame.
pub fn reprs<F: AsRef<[u8]>>(frames: &[F]) -> Vec<String> {
    frames.iter().map(|f| frame_repr(f.as_ref())).collect()
}

/// Helpers for tests of [`zmtp::Socket`] (async, on tokio): every wait is bounded by [`STEP`].
pub mod sockets {
    use std::future::Future;
    use std::time::Duration;

    use bytes::Bytes;
    use zmtp::{Error, Monitor, Msg, Socket, SocketEvent, SocketEventKind};

    use super::{Kind, SockPeer, TempDir, STEP};

    /// Awaits `fut` for at most [`STEP`].
    ///
    /// # Panics
    ///
    /// On timeout, naming `what`.
    pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
        match tokio::time::timeout(STEP, fut).await {
            Ok(out) => out,
            Err(_) => panic!("timed out after {STEP:?}: {what}"),
        }
    }

    /// Receives one message within [`STEP`].
    ///
    /// # Panics
    ///
    /// On timeout or error.
    pub async fn recv(socket: &Socket) -> Msg {
        let what = format!("recv on our {}", socket.socket_type());
        within(&what, socket.recv()).await.unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Sends one message within [`STEP`].
    ///
    /// # Panics
    ///
    /// On timeout or error.
    pub async fn send(socket: &Socket, msg: impl Into<Msg>) {
        let what = format!("send on our {}", socket.socket_type());
        within(&what, socket.send(msg)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    /// Sends on a ROUTER with `router_mandatory`, retrying while the peer named is not connected
    /// yet ([`Error::HostUnreachable`]), for at most [`STEP`].
    ///
    /// # Panics
    ///
    /// On timeout or another error.
    pub async fn send_routed(socket: &Socket, msg: impl Into<Msg>) {
        let mut msg = msg.into();
        within("routable send on our ROUTER", async {
            loop {
                match socket.send(msg).await {
                    Ok(()) => return,
                    Err(e) if matches!(e.error, Error::HostUnreachable(_)) => {
                        msg = e.msg;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => panic!("send on our ROUTER: {e}"),
                }
            }
        })
        .await;
    }

    /// Waits (at most `timeout`) for a monitor event `pred` accepts; returns it and the events passed
    /// over before it.
    ///
    /// # Panics
    ///
    /// On timeout or end of the monitor, with the events passed over.
    pub async fn expect_event(
        monitor: &mut Monitor,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&SocketEventKind) -> bool,
    ) -> (SocketEvent, Vec<SocketEvent>) {
        let mut passed = Vec::new();
        let found = tokio::time::timeout(timeout, async {
            while let Some(ev) = monitor.recv().await {
                if pred(&ev.kind) {
                    return Some(ev);
                }
                passed.push(ev);
            }
            None
        })
        .await;
        match found {
            Ok(Some(ev)) => (ev, passed),
            Ok(None) => panic!("monitor ended before {what}; events: {passed:#?}"),
            Err(_) => panic!("no {what} within {timeout:?}; events: {passed:#?}"),
        }
    }

    /// Every monitor event already queued.
    pub fn drain_events(monitor: &mut Monitor) -> Vec<SocketEvent> {
        std::iter::from_fn(|| monitor.try_recv()).collect()
    }

    /// An endpoint for one of our sockets to bind: `tcp://127.0.0.1:*` or `ipc://<dir>/<name>.sock`.
    pub fn our_bind_endpoint(kind: Kind, dir: &TempDir, name: &str) -> String {
        match kind {
            Kind::Tcp => "tcp://127.0.0.1:*".to_owned(),
            Kind::Ipc => format!("ipc://{}", dir.path().join(format!("{name}.sock")).display()),
        }
    }

    /// Runs blocking harness code (a [`super::Peer`] waiting for a line) from async test code without
    /// stalling a runtime worker. Needs the multi-thread runtime.
    pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
        tokio::task::block_in_place(f)
    }

    /// Which end binds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Side {
        /// Our socket binds, the pyzmq peer connects.
        WeBind,
        /// The pyzmq peer binds, our socket connects.
        TheyBind,
    }

    /// Every transport and side: tcp and ipc, each with us binding and with pyzmq binding.
    pub const SETUPS: [(Kind, Side); 4] = [
        (Kind::Tcp, Side::WeBind),
        (Kind::Tcp, Side::TheyBind),
        (Kind::Ipc, Side::WeBind),
        (Kind::Ipc, Side::TheyBind),
    ];

    /// One of our sockets linked to one `sock_peer.py` over one transport.
    #[derive(Debug)]
    pub struct Link {
        /// Our socket.
        pub ours: Socket,
        /// Our socket's monitor, subscribed before it bound or connected.
        pub monitor: Monitor,
        /// The pyzmq peer.
        pub peer: SockPeer,
        /// The endpoint the binding side bound (as bound: with its port).
        pub endpoint: String,
        /// The transport.
        pub kind: Kind,
        /// Which end bound.
        pub side: Side,
        /// Holds the ipc socket files.
        pub dir: TempDir,
    }

    /// Links `ours` to a new `sock_peer.py --type <theirs> <py_args…>` over `kind`, binding on
    /// `side`; when we connect, with `connect_routing_id` if given. Returns once the peer printed
    /// `READY` and our bind or connect returned (the handshake may still be under way).
    ///
    /// # Panics
    ///
    /// If binding or connecting fails, or the peer does not start.
    pub async fn link(
        kind: Kind,
        side: Side,
        ours: Socket,
        connect_routing_id: Option<&[u8]>,
        theirs: &str,
        py_args: &[String],
    ) -> Link {
        let dir = TempDir::new("sk");
        let monitor = ours.monitor();
        let (peer, endpoint) = match side {
            Side::WeBind => {
                let ep = our_bind_endpoint(kind, &dir, "us");
                let endpoint =
                    within("bind", ours.bind(&ep)).await.unwrap_or_else(|e| panic!("bind {ep}: {e}"));
                let mut args =
                    vec!["--type".to_owned(), theirs.to_owned(), "--connect".to_owned(), endpoint.clone()];
                args.extend(py_args.iter().cloned());
                let mut peer = SockPeer::spawn(args);
                blocking(|| peer.ready());
                (peer, endpoint)
            }
            Side::TheyBind => {
                let mut args = vec![
                    "--type".to_owned(),
                    theirs.to_owned(),
                    "--bind".to_owned(),
                    kind.bind_endpoint(&dir, "py"),
                ];
                args.extend(py_args.iter().cloned());
                let mut peer = SockPeer::spawn(args);
                let endpoint = blocking(|| peer.ready()).to_string();
                let connected = match connect_routing_id {
                    Some(id) => ours.connect_with_routing_id(&endpoint, Bytes::copy_from_slice(id)),
                    None => ours.connect(&endpoint),
                };
                connected.unwrap_or_else(|e| panic!("connect {endpoint}: {e}"));
                (peer, endpoint)
            }
        };
        Link { ours, monitor, peer, endpoint, kind, side, dir }
    }

    impl Link {
        /// Closes our socket (at most [`STEP`]; give it a short linger) and then the peer.
        pub async fn close(self) {
            let Link { ours, peer, .. } = self;
            within("close our socket", ours.close()).await;
            drop(peer);
        }
    }
}

/// `len` bytes of a pattern that is not periodic in any power of two, so a misplaced chunk changes the
/// CRC; `seed` picks the pattern.
pub fn pattern(len: usize, seed: u32) -> bytes::Bytes {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
