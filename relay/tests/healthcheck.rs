//! `relay --healthcheck [URL]` against a tiny local HTTP server: exit 0 on 200, 1 with a one-line
//! reason otherwise (503 with the body's reason, nothing listening, no answer, not HTTP), the URL
//! derived from CONFIG_PATH's `admin_address`, and a bad argument (exit 2).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn relay() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay"));
    cmd.env_remove("CONFIG_PATH");
    cmd
}

/// A server that answers one connection with `answer` (None: reads and holds it open, answering
/// nothing, for `hold`) and reports the request's first line.
fn serve_once(answer: Option<&'static str>, hold: Duration) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&request).into_owned();
        let _ = tx.send(text.lines().next().unwrap_or_default().to_owned());
        match answer {
            Some(a) => {
                let _ = stream.write_all(a.as_bytes());
            }
            None => thread::sleep(hold),
        }
    });
    (port, rx)
}

fn run(cmd: &mut Command) -> (Output, Duration) {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    (out, start.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn healthcheck_exits_0_on_http_200() {
    let (port, rx) = serve_once(Some("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nready\n"), Duration::ZERO);
    let (out, _) = run(relay().args(["--healthcheck", &format!("http://127.0.0.1:{port}/readyz")]));
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("200"), "{out:?}");
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "GET /readyz HTTP/1.1");
}

#[test]
fn healthcheck_exits_1_with_the_reason_on_503() {
    let (port, _rx) = serve_once(
        Some("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 24\r\nconnection: close\r\n\r\nupstream: not connected\n"),
        Duration::ZERO,
    );
    let (out, _) = run(relay().args(["--healthcheck", &format!("http://127.0.0.1:{port}/readyz")]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("503") && err.contains("upstream: not connected"), "{err}");
}

#[test]
fn healthcheck_exits_1_when_nothing_listens() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (out, _) = run(relay().args(["--healthcheck", &format!("http://127.0.0.1:{port}/readyz")]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[test]
fn healthcheck_gives_up_on_a_silent_server() {
    let (port, _rx) = serve_once(None, Duration::from_secs(15));
    let (out, took) = run(relay().args(["--healthcheck", &format!("http://127.0.0.1:{port}/readyz")]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("no answer"), "{}", stderr(&out));
    // The probe's own deadline is 3 s; Docker's HEALTHCHECK timeout must stay above it.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn healthcheck_refuses_an_answer_that_is_not_http() {
    let (port, _rx) = serve_once(Some("SSH-2.0-OpenSSH_9.2\r\n"), Duration::ZERO);
    let (out, _) = run(relay().args(["--healthcheck", &format!("http://127.0.0.1:{port}/")]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("not an HTTP answer"), "{}", stderr(&out));
}

#[test]
fn healthcheck_probes_the_admin_address_of_config_path() {
    let dir = zmtp_interop::TempDir::new("relay-healthcheck");
    let (port, rx) = serve_once(Some("HTTP/1.1 200 OK\r\n\r\n"), Duration::ZERO);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("admin_address = \"0.0.0.0:{port}\"\n")).unwrap();
    let (out, _) = run(relay().arg("--healthcheck").env("CONFIG_PATH", &config));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "GET /readyz HTTP/1.1");

    std::fs::write(&config, "admin_address = \"\"\n").unwrap();
    let (out, _) = run(relay().arg("--healthcheck").env("CONFIG_PATH", &config));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("admin endpoint is off"), "{}", stderr(&out));
}

#[test]
fn healthcheck_usage_errors_exit_2_and_help_mentions_it() {
    let (out, _) = run(relay().args(["--healthcheck", "http://127.0.0.1:1/", "extra"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let (out, _) = run(relay().arg("--help"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--healthcheck"));
    let (out, _) = run(relay().arg("--version"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("relay "));
}
