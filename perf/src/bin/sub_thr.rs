//! `sub_thr <connect-endpoint> <msg-size> <msg-count> [max-s]`
//!
//! SUB socket connects (to a proxy's XPUB side), subscribes to everything and counts data
//! messages (one frame of msg-size bytes starting with `D`) until msg-count arrived, an end marker
//! (first byte `E`, or empty) arrived, no message came for 5 s, or max-s seconds (default 10)
//! passed since the first message. Prints one `RESULT` line: received, lost = msg-count -
//! received, and the rate (received - 1) / (last - first), the clock being read at the first
//! message and every 64th (bench/README.md; as bench/libzmq/sub_thr.c). End markers before the
//! first data message (an earlier run's) are ignored. The first message is awaited at most 30 s
//! (then exit 2, `end=no-data`); exit 3 on a message of the wrong shape.
//!
//! `BENCH_CURVE=1`: CURVE client (it connects) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zmtp::{Options, SocketType};
use zmtp_perf::{Flavor, Watchdog};

/// A gap this long ends a run that has started.
const SUB_IDLE: Duration = Duration::from_secs(5);

const USAGE: &str = "sub_thr <connect-endpoint> <msg-size> <msg-count> [max-s]";

fn main() {
    let a = zmtp_perf::positional(USAGE, 3, 4);
    let size = zmtp_perf::parse_pos(&a[1], "msg-size");
    let count = zmtp_perf::parse_pos(&a[2], "msg-count");
    let max_s = a.get(3).map_or(10, |s| zmtp_perf::parse_pos(s, "max-s"));
    zmtp_perf::run(Flavor::Current, run(a[0].clone(), size, count, Duration::from_secs(max_s as u64)))
}

fn report(size: usize, count: usize, received: u64, elapsed: Duration, end: &str) {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 && received > 1 { (received - 1) as f64 / secs } else { 0.0 };
    println!(
        "RESULT tool=sub_thr impl={} size={size} count={count} received={received} lost={} elapsed_s={secs:.6} msgs_per_s={rate:.0} mbps={:.3} end={end}",
        zmtp_perf::IMPL,
        count as i64 - received as i64,
        rate * size as f64 * 8.0 / 1e6
    );
}

async fn run(endpoint: String, size: usize, count: usize, max: Duration) -> i32 {
    // The last clock sample, in ns after the first message (shared with the watchdog's report).
    let last = Arc::new(AtomicU64::new(0));
    let last_wd = last.clone();
    let wd = Watchdog::start(zmtp_perf::FIRST_MSG_TIMEOUT, SUB_IDLE, move |n, _| {
        if n == 0 {
            report(size, count, 0, Duration::ZERO, "no-data");
            2
        } else {
            report(size, count, n, Duration::from_nanos(last_wd.load(Ordering::Relaxed)), "idle-timeout");
            0
        }
    });
    let sock = zmtp_perf::socket(
        SocketType::Sub,
        zmtp_perf::secure(
            Options { linger: Some(Duration::ZERO), ..Options::default() },
            zmtp_perf::Role::Connect,
        ),
    );
    if let Err(e) = sock.subscribe("") {
        eprintln!("error: subscribe: {e}");
        return 1;
    }
    if let Err(e) = sock.connect(&endpoint) {
        eprintln!("error: connect {endpoint}: {e}");
        return 1;
    }
    let mut received: u64 = 0;
    let mut start = Instant::now();
    let mut stop = Duration::ZERO;
    let mut end = "count";
    let mut rc = 0;
    // Batches of up to BATCH messages per lock of the socket (`recv_many`).
    let mut batch = std::collections::VecDeque::with_capacity(zmtp_perf::BATCH);
    'receiving: while received < count as u64 {
        batch.clear();
        let want = zmtp_perf::BATCH.min((count as u64 - received) as usize);
        if let Err(e) = sock.recv_many(&mut batch, want).await {
            eprintln!("error: recv {received}/{count}: {e}");
            end = "error";
            rc = 2;
            break;
        }
        for msg in &batch {
            let f = msg.frames();
            if f.first().is_none_or(|b| b.first().is_none_or(|&c| c == b'E')) {
                if received > 0 {
                    stop = start.elapsed();
                    end = "end-marker";
                    break 'receiving;
                }
                continue; // an earlier run's marker
            }
            if f.len() != 1 || f[0].len() != size || f[0][0] != b'D' {
                eprintln!(
                    "error: bad message ({} frames, first of {} B; want 1 frame of {size} B starting with 'D')",
                    f.len(),
                    f[0].len()
                );
                end = "bad-message";
                rc = 3;
                break 'receiving;
            }
            if received == 0 {
                start = Instant::now();
            } else if received % 64 == 0 {
                stop = start.elapsed();
                last.store(stop.as_nanos() as u64, Ordering::Relaxed);
                if stop >= max {
                    received += 1;
                    wd.progress(received);
                    end = "time-limit";
                    break 'receiving;
                }
            }
            received += 1;
        }
        wd.progress(received);
    }
    wd.stop();
    if received > 0 && end == "count" {
        stop = start.elapsed();
    }
    report(size, count, received, stop, end);
    zmtp_perf::close(sock, Duration::from_secs(5)).await;
    rc
}
