//! A smoke run of `conn_capacity` (reliability.md §7c L-5, L-8; §7b B-12, B-13), so the capacity
//! tool behind `scripts/capacity.sh` does not rot: a zmtp ROUTER (`conn_capacity serve`), 100 idle
//! connections, then a 2 s storm of 20 clients, with `CAPACITY_QUICK=1` (short settle periods).
//! Checks that the tool runs and reports, and B-12's liveness bar (the server's descriptors and
//! CLOSE_WAIT sockets back to baseline after the storm); no figure is compared (benchmarks measure).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_conn_capacity");

/// The server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// Runs the client with `args` (60 s at most) and returns its RESULT line.
fn client(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env("CAPACITY_QUICK", "1")
        .env("STORM_ROUNDS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let (tx, rx) = mpsc::channel();
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut o = String::new();
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut o);
        let _ = std::io::Read::read_to_string(&mut err, &mut e);
        let _ = tx.send((o, e));
    });
    let Ok((out, err)) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("conn_capacity {args:?} still running after 60 s");
    };
    let status = child.wait().expect("wait");
    assert!(status.success(), "conn_capacity {args:?}: {status}\n{out}\n{err}");
    out.lines()
        .find(|l| l.starts_with("RESULT conn_capacity"))
        .unwrap_or_else(|| panic!("no RESULT line:\n{out}\n{err}"))
        .to_owned()
}

/// L-5/B-13 and L-8/B-12 in miniature against a zmtp ROUTER: every connection handshakes, the storm
/// completes cycles without failures, and the server is back to its baseline descriptors afterwards.
#[test]
fn conn_capacity_smoke_against_zmtp() {
    let mut child = Command::new(BIN)
        .arg("serve")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read ENDPOINT");
    let endpoint =
        line.strip_prefix("ENDPOINT ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).trim();
    let pid = server.0.id().to_string();

    let idle = client(&["idle", endpoint, &pid, "100", "zmtp"]);
    eprintln!("{idle}");
    assert_eq!(field(&idle, "n"), "100");
    assert!(field(&idle, "per_conn_kib").parse::<f64>().is_ok(), "{idle}");

    let storm = client(&["storm", endpoint, &pid, "20", "100", "2", "zmtp"]);
    eprintln!("{storm}");
    assert!(field(&storm, "reconnects").parse::<u64>().expect("reconnects") > 0, "{storm}");
    assert_eq!(field(&storm, "errors"), "0", "{storm}");
    assert_ne!(
        field(&storm, "back_to_baseline_ms"),
        "-",
        "descriptors or CLOSE_WAIT not back to baseline: {storm}"
    );
}
