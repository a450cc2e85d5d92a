//! `remote_lat <connect-endpoint> <msg-size> <roundtrip-count>`
//!
//! REQ socket connects, does roundtrip-count request/reply round trips with a msg-size-byte
//! request (a clone of one shared `Bytes`) and prints the average one-way latency: total time /
//! round trips / 2 (bench/README.md; as bench/libzmq/remote_lat.c). The first reply is awaited at
//! most 30 s, a 10 s gap ends the run (exit 2, with the partial result printed).
//!
//! `BENCH_CURVE=1`: CURVE client (it connects) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Msg, Options, SocketType};
use zmtp_perf::{Args, Flavor, Role, Watchdog};

fn main() {
    let a = zmtp_perf::args("remote_lat <connect-endpoint> <msg-size> <roundtrip-count>", "roundtrip-count");
    zmtp_perf::run(Flavor::Current, ping(a))
}

async fn ping(a: Args) -> i32 {
    let Args { endpoint, size, count } = a;
    let wd = Watchdog::start(zmtp_perf::FIRST_MSG_TIMEOUT, zmtp_perf::IDLE_TIMEOUT, move |n, start| {
        eprintln!("error: recv {n}/{count}: timed out");
        zmtp_perf::print_lat(size, count, n, start.map(|s| s.elapsed()).unwrap_or_default());
        2
    });
    let sock = zmtp_perf::socket(
        SocketType::Req,
        zmtp_perf::secure(Options { linger: Some(Duration::ZERO), ..Options::default() }, Role::Connect),
    );
    if let Err(e) = sock.connect(&endpoint) {
        eprintln!("error: connect {endpoint}: {e}");
        return 1;
    }
    let payload = Bytes::from(vec![b'L'; size]);
    let mut rc = 0;
    let mut done: u64 = 0;
    let start = Instant::now();
    wd.mark_start(start);
    for i in 0..count {
        if let Err(e) = sock.send(Msg::from(payload.clone())).await {
            eprintln!("error: send {i}/{count}: {e}");
            rc = 2;
            break;
        }
        let reply = match sock.recv().await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: recv {i}/{count}: {e}");
                rc = 2;
                break;
            }
        };
        if reply.len() != 1 || reply.frames()[0].len() != size {
            eprintln!(
                "error: bad reply ({} frames, {} B; want 1 frame of {size} B)",
                reply.len(),
                reply.byte_len()
            );
            rc = 3;
            break;
        }
        done += 1;
        wd.progress(done);
    }
    let elapsed = start.elapsed();
    wd.stop();
    zmtp_perf::print_lat(size, count, done, elapsed);
    zmtp_perf::close(sock, Duration::from_secs(5)).await;
    rc
}
