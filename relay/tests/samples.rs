//! The README's quick start: the sample ingestor (examples/relay/ingestor.py) and sample client
//! (examples/relay/history_client.py) against the relay binary, as a user would run them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Opts, Relay};

fn example(name: &str) -> PathBuf {
    zmtp_interop::repo_root().join("examples").join("relay").join(name)
}

/// Kills the child on drop (the ingestor runs until told to stop).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(relay: &Relay, args: &[&str]) -> Output {
    Command::new(zmtp_interop::python())
        .arg(example("history_client.py"))
        .args(["--endpoint", &relay.client_ep(), "--timeout", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn sample_client_gets_canned_data_from_sample_ingestor() {
    let relay = Relay::start(Opts::default());
    let log_path = relay.dir.path().join("ingestor.log");
    let mut ingestor = Reaped(
        Command::new(zmtp_interop::python())
            .arg(example("ingestor.py"))
            .args(["--work", &relay.work_ep(), "--responses", &relay.response_ep(), "BINANCE:", "KRAKEN:"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log_path).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    // --wait: the ingestor's subscriptions reach the relay shortly after it starts.
    let out = client(&relay, &["--wait", "20", "BINANCE:BTC/USDT", "{\"period\": \"1h\"}"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.starts_with("status: OK\n"), "{stdout}");
    assert!(stdout.contains("frame 1 (") && stdout.contains("\"ticker\": \"BINANCE:BTC/USDT\""), "{stdout}");
    assert!(stdout.contains("\"candles\""), "{stdout}");

    // The second prefix is served too; the ERROR path exits 1 with the ingestor's frame.
    let out = client(&relay, &["--wait", "20", "KRAKEN:ERROR"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout.starts_with("status: ERROR\n") && stdout.contains("no data for KRAKEN:ERROR"), "{stdout}");

    // An exchange nobody serves: the relay's UNAVAILABLE with its reason, exit 1.
    let started = Instant::now();
    let out = client(&relay, &["COINBASE:BTC-USD"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout.starts_with("status: UNAVAILABLE\nframe 1 ("), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(15), "UNAVAILABLE is answered at once");

    // The ingestor logged each request it answered (flushed per line).
    let _ = ingestor.0.kill();
    let _ = ingestor.0.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("BINANCE:BTC/USDT {\"period\": \"1h\"} -> OK"), "{log}");
    assert!(log.contains("KRAKEN:ERROR"), "{log}");
}

#[test]
fn sample_client_exits_2_without_a_relay() {
    let port = common::free_port();
    let out = Command::new(zmtp_interop::python())
        .arg(example("history_client.py"))
        .args(["--endpoint", &common::ep(port), "--timeout", "1", "BINANCE:BTC/USDT"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reply"), "{out:?}");
}
