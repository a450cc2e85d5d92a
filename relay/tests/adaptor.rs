//! Tests of the `zmq-adaptor` binary as a process, with pyzmq (libzmq) peers on real sockets.
//!
//! Every adaptor binds temp-dir ipc paths and `tcp://127.0.0.1:0` (the port is read back from its
//! `listening` log line), so these tests run in parallel with each other and with other suites; no
//! test uses the fixed default addresses. Every wait is bounded, and every process is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use zmtp_interop::{hex, reprs, SockPeer, TempDir, STEP};

/// A running `zmq-adaptor` process; killed and reaped on drop (its output is shown if the test failed).
struct Adaptor {
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

/// The lines of one of the adaptor's pipes, read by a thread, with what was read so far.
struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
    done: bool,
}

impl Lines {
    fn read(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines { rx, seen: Vec::new(), done: false }
    }

    /// The next line, or `None` at the deadline or at the end of the output.
    fn next(&mut self, deadline: Instant) -> Option<String> {
        if self.done {
            return None;
        }
        match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                None
            }
        }
    }

    /// The next line for which `matches` holds, skipping others; `None` if none comes in time.
    fn find(&mut self, timeout: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(line) = self.next(deadline) {
            if matches(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Every line until the output ends (bounded by `timeout`).
    fn rest(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while let Some(line) = self.next(deadline) {
            out.push(line);
        }
        out
    }
}

impl Adaptor {
    /// Starts the adaptor with `args` (logging at info level, whatever the environment says).
    fn spawn(args: &[&str]) -> Adaptor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zmq-adaptor"))
            .args(args)
            .env("RUST_LOG", "zmq_adaptor=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the zmq-adaptor binary starts");
        let stdout = Lines::read(child.stdout.take().expect("stdout is piped"));
        let stderr = Lines::read(child.stderr.take().expect("stderr is piped"));
        Adaptor { child, stdout, stderr }
    }

    /// Waits for the stdout line starting with `prefix`.
    fn expect_stdout(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.stdout.find(timeout, |l| l.starts_with(prefix)) {
            Some(line) => line,
            None => {
                panic!("no stdout line starting with {prefix:?} within {timeout:?}\n{}", self.transcript())
            }
        }
    }

    /// Waits for the log line saying which endpoint `option` bound, and returns that endpoint.
    fn listening(&mut self, option: &str) -> String {
        let tag = format!("option=\"{option}\"");
        let Some(line) = self.stderr.find(STEP, |l| l.contains("listening") && l.contains(&tag)) else {
            panic!("the adaptor did not log binding {option}\n{}", self.transcript());
        };
        let endpoint = line.split_whitespace().find_map(|word| word.strip_prefix("endpoint="));
        endpoint.unwrap_or_else(|| panic!("no endpoint in {line:?}")).to_owned()
    }

    /// Sends `signal` (`-INT`, `-TERM`).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(signal).arg(self.child.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {signal} {} failed", self.child.id());
    }

    /// Waits up to `timeout` for the process to exit.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                other => {
                    panic!("the adaptor did not exit within {timeout:?} ({other:?})\n{}", self.transcript())
                }
            }
        }
    }

    /// Sends `signal` and checks the adaptor exits 0 promptly (it closes with a short linger).
    fn stop(&mut self, signal: &str) {
        self.signal(signal);
        let status = self.wait(STEP);
        assert!(status.success(), "exit status after {signal}: {status}\n{}", self.transcript());
    }

    fn transcript(&self) -> String {
        format!(
            "--- zmq-adaptor stdout (read so far):\n{}\n--- stderr (read so far):\n{}",
            self.stdout.seen.join("\n"),
            self.stderr.seen.join("\n")
        )
    }
}

impl Drop for Adaptor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            self.stdout.rest(Duration::from_millis(200));
            self.stderr.rest(Duration::from_millis(200));
            eprintln!("{}", self.transcript());
        }
    }
}

/// Runs the adaptor to completion with `args`: its exit status and stderr.
fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let mut adaptor = Adaptor::spawn(args);
    let status = adaptor.wait(STEP);
    let stderr = adaptor.stderr.rest(STEP).join("\n");
    (status, stderr)
}

/// An ipc endpoint in `dir`.
fn ipc(dir: &TempDir, name: &str) -> String {
    format!("ipc://{}", dir.path().join(format!("{name}.sock")).display())
}

/// A pyzmq peer of `kind` connected to `endpoint`, with `extra` arguments.
fn pyzmq(kind: &str, endpoint: &str, extra: &[&str]) -> SockPeer {
    let mut args = vec!["--type", kind, "--connect", endpoint, "--timeout", "60"];
    args.extend_from_slice(extra);
    SockPeer::spawn(args)
}

/// A pyzmq SUB on `endpoint`, subscribed to `topic`.
fn subscriber(endpoint: &str, topic: &[u8]) -> SockPeer {
    pyzmq("SUB", endpoint, &["--subscribe", &hex(topic)])
}

/// Asserts that `peer` prints no `MSG` line for a while.
fn expect_silence(peer: &mut SockPeer, what: &str) {
    let lines = peer.lines_within("MSG", Duration::from_millis(500));
    assert!(lines.is_empty(), "{what}: unexpected {lines:?}");
}

/// An adaptor bound on a temp ipc listen path and an ephemeral tcp port, with its publish endpoint.
fn start_adaptor(dir: &TempDir, extra: &[&str]) -> (Adaptor, String, String) {
    let listen = ipc(dir, "listen");
    let mut args = vec!["-b", listen.as_str(), "-p", "tcp://127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut adaptor = Adaptor::spawn(&args);
    assert_eq!(adaptor.listening("--bind"), listen);
    let publish = adaptor.listening("--publish");
    (adaptor, listen, publish)
}

#[test]
fn forwards_matching_messages_downstream_and_subscriptions_upstream() {
    let dir = TempDir::new("adp-fwd");
    let (mut adaptor, listen, publish) = start_adaptor(&dir, &[]);
    // The gateway's side: an XPUB (a PUB that also shows the subscriptions it receives).
    let mut gateway = pyzmq("XPUB", &listen, &[]);
    let mut sub = subscriber(&publish, b"weather.");

    // SUB -> adaptor XPUB -> proxy -> adaptor XSUB -> the gateway: the subscription arrived upstream.
    assert_eq!(gateway.expect_msg(STEP), reprs(&[b"\x01weather."]));

    gateway.send(&[&b"news.rome"[..], b"n1"]);
    gateway.send(&[&b"weather.paris"[..], b"20C", b"", b"\x00\xff"]);
    assert_eq!(sub.expect_msg(STEP), reprs(&[&b"weather.paris"[..], b"20C", b"", b"\x00\xff"]));
    gateway.send(&[&b"news.oslo"[..]]);
    gateway.send(&[&b"weather.end"[..]]);
    // Messages from one publisher keep their order: had news.oslo passed, it would come first.
    assert_eq!(sub.expect_msg(STEP), reprs(&[&b"weather.end"[..]]));
    expect_silence(&mut sub, "the SUB after weather.end");
    assert_eq!(sub.count_seen("MSG"), 2, "the SUB got only the matching messages");

    adaptor.stop("-TERM");
    let printed = adaptor.stdout.rest(STEP);
    assert!(printed.is_empty(), "without --debug nothing is printed on stdout: {printed:?}");
}

#[test]
fn forwards_the_cancel_when_the_last_subscriber_of_a_topic_disconnects() {
    let dir = TempDir::new("adp-unsub");
    let (mut adaptor, listen, publish) = start_adaptor(&dir, &[]);
    let mut gateway = pyzmq("XPUB", &listen, &[]);
    let mut first = subscriber(&publish, b"weather.");
    assert_eq!(gateway.expect_msg(STEP), reprs(&[b"\x01weather."]));
    let mut second = subscriber(&publish, b"weather.");
    // The second subscription reached the adaptor once the second SUB gets data (the gateway does
    // not hear of it: the topic was already wanted). Until then, PUB-side filtering drops what is sent.
    let deadline = Instant::now() + 2 * STEP;
    while second.lines_within("MSG", Duration::from_millis(200)).is_empty() {
        assert!(Instant::now() < deadline, "the second SUB never got data");
        gateway.send(&[&b"weather.sync"[..]]);
    }

    // The first subscriber leaves: the topic is still wanted, so nothing is cancelled upstream.
    first.kill();
    expect_silence(&mut gateway, "the gateway after one of two subscribers left");
    gateway.send(&[&b"weather.rome"[..], b"18C"]);
    // (Skipping any weather.sync still on its way.)
    second.expect_line(&format!("MSG {}", reprs(&[&b"weather.rome"[..], b"18C"]).join(" ")), STEP);

    // The last one leaves: the adaptor's XPUB cancels for it and the cancel reaches the gateway.
    second.kill();
    assert_eq!(gateway.expect_msg(STEP), reprs(&[b"\x00weather."]));
    adaptor.stop("-TERM");
}

#[test]
fn debug_prints_data_and_subscription_lines() {
    let dir = TempDir::new("adp-debug");
    let (mut adaptor, listen, publish) = start_adaptor(&dir, &["--debug"]);
    let mut gateway = pyzmq("XPUB", &listen, &[]);
    let mut sub = subscriber(&publish, b"weather.");
    assert_eq!(gateway.expect_msg(STEP), reprs(&[b"\x01weather."]));
    assert_eq!(adaptor.expect_stdout("[subscribe]", STEP), "[subscribe] weather.");

    gateway.send(&[&b"weather.paris"[..], b"20C", b"", b"\x00\xff"]);
    assert_eq!(adaptor.expect_stdout("[data]", STEP), "[data] weather.paris | 20C | <empty> | 0x00ff");
    sub.expect_msg(STEP);

    sub.kill();
    assert_eq!(adaptor.expect_stdout("[unsubscribe]", STEP), "[unsubscribe] weather.");
    gateway.expect_msg(STEP);
    adaptor.stop("-INT");
}

#[test]
fn test_mode_publishes_receives_and_pulls() {
    let dir = TempDir::new("adp-test");
    let push = ipc(&dir, "push");
    let (mut adaptor, _, _) = start_adaptor(
        &dir,
        &[
            "--test",
            "--test-sub-bind",
            "tcp://127.0.0.1:0",
            "--test-push-bind",
            &push,
            "--test-interval",
            "200",
        ],
    );
    let sub_at = adaptor.listening("--test-sub-bind");
    assert_eq!(adaptor.listening("--test-push-bind"), push);

    // The test publisher's messages come back through the XSUB -> XPUB proxy to the debug SUB.
    let sent = adaptor.expect_stdout("... sending:PUB-", STEP);
    let got = adaptor.expect_stdout("> got: PUB-", STEP);
    let body = &got["> got: ".len()..];
    let shape = body.as_bytes();
    assert!(
        shape.len() == 11
            && shape.starts_with(b"PUB-")
            && shape[4].is_ascii_uppercase()
            && shape[5] == b'-'
            && shape[6..].iter().all(u8::is_ascii_digit),
        "{got:?} is not PUB-<letter>-<5 digits> (first sent: {sent:?})"
    );
    assert!(
        adaptor.stdout.seen.iter().any(|l| l.strip_prefix("... sending:") == Some(body)),
        "{body} was received before it was sent\n{}",
        adaptor.transcript()
    );

    // A publisher on the SUB->PUSH proxy's SUB: its message reaches the debug PULL. PUB drops what
    // it sends before the connection is up, so send until one arrives.
    let mut feeder = pyzmq("PUB", &sub_at, &[]);
    let deadline = Instant::now() + 4 * STEP;
    let pulled = loop {
        assert!(Instant::now() < deadline, "no `> pulled:` line\n{}", adaptor.transcript());
        feeder.send(&[&b"queue-item"[..], b"\x01\x02"]);
        if let Some(line) = adaptor.stdout.find(Duration::from_millis(300), |l| l.starts_with("> pulled:")) {
            break line;
        }
    };
    assert_eq!(pulled, "> pulled: queue-item | 0x0102");
    adaptor.stop("-INT");
}

#[test]
fn survives_garbage_from_a_peer() {
    let dir = TempDir::new("adp-junk");
    let (mut adaptor, listen, publish) = start_adaptor(&dir, &[]);
    let addr = publish.strip_prefix("tcp://").expect("a tcp publish endpoint");
    let mut junk = TcpStream::connect(addr).expect("connect to the publish port");
    junk.set_read_timeout(Some(STEP)).expect("set a read timeout");
    // Not a ZMTP greeting (no 0xFF signature): the adaptor must drop the connection, nothing more.
    junk.write_all(&[0x42; 64]).expect("write garbage");
    let mut buf = [0u8; 256];
    let closed = loop {
        match junk.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(closed, "the adaptor did not close a connection sending garbage");

    let mut gateway = pyzmq("XPUB", &listen, &[]);
    let mut sub = subscriber(&publish, b"");
    assert_eq!(gateway.expect_msg(STEP), reprs(&[b"\x01"]));
    gateway.send(&[&b"still-alive"[..]]);
    assert_eq!(sub.expect_msg(STEP), reprs(&[&b"still-alive"[..]]));
    adaptor.stop("-TERM");
}

#[test]
fn bad_endpoints_exit_2_naming_the_option() {
    let cases: [&[&str]; 4] = [
        &["-b", "nonsense"],
        &["--publish", "tcp://127.0.0.1:notaport"],
        &["--test", "--test-sub-bind", "udp://127.0.0.1:5000"],
        &["-t", "--test-push-bind", "ipc://"],
    ];
    for args in cases {
        let option = args.iter().rev().nth(1).copied().unwrap_or_default();
        let long = match option {
            "-b" => "--bind",
            other => other,
        };
        let (status, stderr) = run_to_exit(args);
        assert_eq!(status.code(), Some(2), "{args:?}: {status}\n{stderr}");
        assert!(stderr.contains(long), "{args:?}: stderr does not name {long}:\n{stderr}");
        assert!(!stderr.contains("listening"), "{args:?}: bound something:\n{stderr}");
    }
}

#[test]
fn bind_failure_exits_1_naming_the_option() {
    let dir = TempDir::new("adp-bindfail");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = taken.local_addr().expect("its address").port();
    let publish = format!("tcp://127.0.0.1:{port}");
    let (status, stderr) = run_to_exit(&["-b", &ipc(&dir, "listen"), "-p", &publish]);
    assert_eq!(status.code(), Some(1), "{status}\n{stderr}");
    assert!(stderr.contains("--publish") && stderr.contains(&publish), "{stderr}");

    let missing = format!("ipc://{}", dir.path().join("no-such-dir").join("listen.sock").display());
    let (status, stderr) = run_to_exit(&["-b", &missing, "-p", "tcp://127.0.0.1:0"]);
    assert_eq!(status.code(), Some(1), "{status}\n{stderr}");
    assert!(stderr.contains("--bind"), "{stderr}");
}

#[test]
fn help_documents_every_flag_and_exits_0() {
    let mut adaptor = Adaptor::spawn(&["--help"]);
    let status = adaptor.wait(STEP);
    let help = adaptor.stdout.rest(STEP).join("\n");
    assert!(status.success(), "{status}\n{help}");
    for needle in [
        "-b, --bind",
        "-p, --publish",
        "-d, --debug",
        "-t, --test",
        "--test-sub-bind",
        "--test-push-bind",
        "--test-interval",
        "--heartbeat-ivl",
        "--log-json",
        "-h, --help",
        "-V, --version",
        "ipc:///tmp/nginx_queue_listen",
        "tcp://0.0.0.0:6001",
        "tcp://0.0.0.0:5000",
        "ipc:///tmp/nginx_queue_push",
        "[data]",
        "[subscribe]",
        "[unsubscribe]",
        "... sending:",
        "> got:",
        "> pulled:",
        "RUST_LOG",
        "zmq_adaptor=info",
        "SIGTERM",
    ] {
        assert!(help.contains(needle), "--help does not mention {needle:?}:\n{help}");
    }
}
