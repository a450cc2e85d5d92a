//! Faults with real processes: the `statetable-consumer` binary killed (-9) and restarted while
//! producers send, in PUSH and in synchronous mode, and Redis killed and restarted under load.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, RedisServer};
use statetable::{Client, ClientOptions, Error, Operation, ProducerStateTable};

/// A `statetable-consumer` process, its stderr collected.
struct Consumer {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Consumer {
    fn start(port: u16, redis_url: &str, extra: &[&str]) -> Consumer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_statetable-consumer"))
            .args(["--bind", &format!("tcp://127.0.0.1:{port}"), "--redis", redis_url])
            .args(extra)
            .env("RUST_LOG", "statetable=debug,statetable_consumer=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start statetable-consumer");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let c = Consumer { child, log };
        c.wait_log("consumer ready");
        c
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_log(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(what) {
            assert!(Instant::now() < deadline, "no {what:?} in the consumer's log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; the exit status and the whole log.
    fn terminate(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.log());
            }
            assert!(Instant::now() < deadline, "consumer did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `name=` in the consumer's final `stopped` line.
fn stopped_count(log: &str, name: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("stopped"))
        .unwrap_or_else(|| panic!("no stopped line:\n{log}"));
    let at = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

fn fields(i: usize) -> [(String, String); 2] {
    [("n".to_owned(), i.to_string()), ("pad".to_owned(), "x".repeat(16))]
}

fn check(redis: &RedisServer, db: u8, table: &str, key: &str, i: usize) -> bool {
    let got = redis.hgetall(db, &format!("{table}:{key}"));
    got.get("n").map(String::as_str) == Some(i.to_string().as_str()) && got.len() == 2
}

/// PUSH mode: while the consumer is dead the producer's sends fill the queue and fail after their
/// retries (SONiC's behaviour, with short retries here); once it is back on the same port the
/// producer reconnects by itself, and everything sent after that reaches Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_and_restarted_push() {
    let redis = RedisServer::start();
    let port = free_port();
    let url = redis.url(1);
    let mut consumer = Consumer::start(port, &url, &[]);
    let options = ClientOptions {
        send_hwm: 200,
        retries: 3,
        retry_base: Duration::from_millis(5),
        ..Default::default()
    };
    let client = Client::connect(&format!("tcp://127.0.0.1:{port}"), options).unwrap();
    let p = ProducerStateTable::new(&client, "APPL_DB", "FAULT");

    for i in 0..1000 {
        p.set(format!("before_{i}").as_bytes(), &fields(i)).await.unwrap();
    }
    let r = &redis;
    tokio::task::block_in_place(|| {
        r.eventually("phase 1 in Redis", |r| r.keys(1, "FAULT:before_*").len() == 1000)
    });

    consumer.kill9();
    let mut errors = 0;
    let mut sent_while_down = 0;
    for i in 0..100_000 {
        match p.set(format!("down_{i}").as_bytes(), &fields(i)).await {
            Ok(()) => sent_while_down += 1,
            Err(Error::QueueFull { connected, attempts, .. }) => {
                assert!(!connected);
                assert_eq!(attempts, 4);
                errors += 1;
                if errors == 3 {
                    break;
                }
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(errors, 3, "the producer saw no error while the consumer was down");
    assert!(sent_while_down <= 1000, "the queue is bounded by the HWM: {sent_while_down} sent");

    let consumer = Consumer::start(port, &url, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.is_connected() {
        assert!(Instant::now() < deadline, "the producer did not reconnect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..1000 {
        p.set(format!("after_{i}").as_bytes(), &fields(i)).await.unwrap();
    }
    tokio::task::block_in_place(|| {
        r.eventually("phase 3 in Redis", |r| r.keys(1, "FAULT:after_*").len() == 1000);
        assert!((0..1000).step_by(97).all(|i| check(r, 1, "FAULT", &format!("after_{i}"), i)));
    });
    let (code, log) = consumer.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(stopped_count(&log, "malformed"), 0);
}

/// Synchronous mode: the producer resends what was not acknowledged in time, and the consumer
/// acknowledges only once the operation is in Redis. With the consumer killed and restarted in the
/// middle, every acknowledged operation is in Redis, with its value, exactly once (one hash per
/// key, nothing missing, nothing extra).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_and_restarted_sync() {
    let redis = RedisServer::start();
    let port = free_port();
    let url = redis.url(2);
    let consumer = Arc::new(Mutex::new(Some(Consumer::start(port, &url, &["--sync"]))));
    let options = ClientOptions { sync_timeout: Some(Duration::from_millis(500)), ..Default::default() };
    let client = Client::connect(&format!("tcp://127.0.0.1:{port}"), options).unwrap();
    let p = ProducerStateTable::new(&client, "APPL_DB", "SYNC");
    const N: usize = 300;
    let mut acked = Vec::new();
    let mut timeouts = 0;
    let mut restarter = None;
    for i in 0..N {
        if i == N / 3 {
            // Kill it with requests in flight and bring it back a second later.
            let c = Arc::clone(&consumer);
            let url = url.clone();
            if let Some(mut old) = c.lock().unwrap().take() {
                old.kill9();
            }
            restarter = Some(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                *c.lock().unwrap() = Some(Consumer::start(port, &url, &["--sync"]));
            }));
        }
        let op = [Operation::set(format!("k{i}"), fields(i))];
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts <= 60, "operation {i} never acknowledged");
            p.set_batch(&op).await.unwrap();
            match p.wait().await.unwrap() {
                Some(reply) => {
                    assert!(reply.ops.is_empty());
                    break;
                }
                None => timeouts += 1,
            }
        }
        acked.push(i);
        // Every acknowledged operation is already in Redis.
        if i % 50 == 0 {
            let r = &redis;
            tokio::task::block_in_place(|| assert!(check(r, 2, "SYNC", &format!("k{i}"), i)));
        }
    }
    restarter.unwrap().join().unwrap();
    assert!(timeouts >= 1, "the kill went unnoticed");
    let r = &redis;
    tokio::task::block_in_place(|| {
        let keys = r.keys(2, "SYNC:*");
        assert_eq!(keys.len(), N, "one hash per acknowledged key, no more");
        for &i in &acked {
            assert!(check(r, 2, "SYNC", &format!("k{i}"), i), "k{i} wrong or missing");
        }
    });
    let consumer = consumer.lock().unwrap().take().unwrap();
    let (code, log) = consumer.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// Redis killed (-9) and restarted on the same port under load: the consumer's write-through holds
/// its batch, reconnects by itself, says so in its log and counts, and loses nothing (Redis keeps
/// what it acknowledged in its fsync'd append-only file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_load() {
    let mut redis = RedisServer::start_with(true);
    let port = free_port();
    let consumer = Consumer::start(port, &redis.url(3), &[]);
    let client = Client::connect(&format!("tcp://127.0.0.1:{port}"), ClientOptions::default()).unwrap();
    let p = ProducerStateTable::new(&client, "APPL_DB", "LOAD");
    const N: usize = 20_000;
    for i in 0..N {
        p.set(format!("k{i}").as_bytes(), &fields(i)).await.unwrap();
        // One key written again and again: after the restart, batches are sent again, and an
        // older one applied after a newer one would leave an older value here.
        if i % 10 == 0 {
            p.set(b"last", &fields(i)).await.unwrap();
        }
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if i == N / 4 {
            tokio::task::block_in_place(|| redis.restart());
        }
    }
    let r = &redis;
    let c = &consumer;
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while r.keys(3, "LOAD:k*").len() != N || !check(r, 3, "LOAD", "last", N - 10) {
            assert!(
                Instant::now() < deadline,
                "not every operation in Redis within 60 s: {} keys of {N}; the consumer's log:\n{}",
                r.keys(3, "LOAD:k*").len(),
                c.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for i in (0..N).step_by(101) {
            assert!(check(r, 3, "LOAD", &format!("k{i}"), i), "k{i}");
        }
    });
    let (code, log) = consumer.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("redis connection lost"), "the loss is logged:\n{log}");
    assert!(log.contains("redis reconnected"), "the reconnection is logged:\n{log}");
    assert!(stopped_count(&log, "disconnects") >= 1);
    assert_eq!(stopped_count(&log, "failed"), 0);
    // Each operation written once in the count; those of a batch held across the loss count as
    // retried too.
    assert_eq!(stopped_count(&log, "written"), (N + N / 10) as u64);
}
