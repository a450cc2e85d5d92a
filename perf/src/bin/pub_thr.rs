//! `pub_thr <connect-endpoint> <msg-size> <msg-count> [warmup-ms]`
//!
//! PUB socket connects (to a proxy's XSUB side), waits warmup-ms (default 1000; C's `atol`, so
//! anything not a positive number means none) for the subscriptions to arrive, publishes
//! msg-count data messages of msg-size bytes (first byte `D`; clones of one shared `Bytes`) as
//! fast as it can, then an end marker (first byte `E`) every 5 ms for 0.5 s so subscribers can
//! stop early; prints one `RESULT` line with the send rate, closes (linger 2 s) and exits 0
//! (bench/README.md; as bench/libzmq/pub_thr.c). A PUB drops what a subscriber has no room for,
//! so sends do not block (each `send` takes from tokio's cooperative budget, so the connection task
//! still runs); exit 2 if one fails or stalls for 30 s.
//!
//! `BENCH_CURVE=1`: CURVE client (it connects) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Msg, Options, SocketType};
use zmtp_perf::{Flavor, Watchdog};

const USAGE: &str = "pub_thr <connect-endpoint> <msg-size> <msg-count> [warmup-ms]";

fn main() {
    let a = zmtp_perf::positional(USAGE, 3, 4);
    let size = zmtp_perf::parse_pos(&a[1], "msg-size");
    let count = zmtp_perf::parse_pos(&a[2], "msg-count");
    let warmup = a.get(3).map_or(1000, |s| zmtp_perf::atol(s)).max(0) as u64;
    zmtp_perf::run(Flavor::Current, run(a[0].clone(), size, count, Duration::from_millis(warmup)))
}

async fn run(endpoint: String, size: usize, count: usize, warmup: Duration) -> i32 {
    let sock = zmtp_perf::socket(
        SocketType::Pub,
        zmtp_perf::secure(
            Options { linger: Some(Duration::from_secs(2)), ..Options::default() },
            zmtp_perf::Role::Connect,
        ),
    );
    if let Err(e) = sock.connect(&endpoint) {
        eprintln!("error: connect {endpoint}: {e}");
        return 1;
    }
    tokio::time::sleep(warmup).await;
    let mut body = vec![b'x'; size];
    body[0] = b'D';
    let data = Bytes::from(body.clone());
    body[0] = b'E';
    let marker = Bytes::from(body);
    let wd = Watchdog::start(zmtp_perf::SEND_TIMEOUT, zmtp_perf::SEND_TIMEOUT, move |n, _| {
        eprintln!("error: send {n}/{count}: timed out");
        2
    });
    let start = Instant::now();
    // Batches of up to BATCH messages per lock of the socket (`send_many`), clones of one `Bytes`.
    let mut batch = std::collections::VecDeque::with_capacity(zmtp_perf::BATCH);
    let mut queued: u64 = 0;
    while queued < count as u64 {
        let n = zmtp_perf::BATCH.min((count as u64 - queued) as usize);
        batch.extend((0..n).map(|_| Msg::from(data.clone())));
        if let Err(e) = sock.send_many(&mut batch).await {
            eprintln!("error: send {}/{count}: {e}", queued + (n - batch.len()) as u64);
            return 2;
        }
        queued += n as u64;
        wd.progress(queued);
    }
    let elapsed = start.elapsed();
    wd.stop();
    for _ in 0..100 {
        let _ = sock.try_send(Msg::from(marker.clone()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = elapsed.as_secs_f64();
    println!(
        "RESULT tool=pub_thr impl={} size={size} count={count} elapsed_s={secs:.6} send_msgs_per_s={:.0}",
        zmtp_perf::IMPL,
        if secs > 0.0 { count as f64 / secs } else { 0.0 }
    );
    zmtp_perf::close(sock, Duration::from_secs(5)).await;
    0
}
