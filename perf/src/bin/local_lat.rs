//! `local_lat <bind-endpoint> <msg-size> <roundtrip-count>`
//!
//! REP socket binds and echoes roundtrip-count requests of msg-size bytes back, then closes
//! (flushing the last reply) and exits (bench/README.md; as bench/libzmq/local_lat.c). The first
//! request is awaited at most 30 s, a 10 s gap ends the run (exit 2).
//!
//! `BENCH_CURVE=1`: CURVE server (it binds) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

use std::time::Duration;

use zmtp::{Options, SocketType};
use zmtp_perf::{Args, Flavor, Role, Watchdog};

fn main() {
    let a = zmtp_perf::args("local_lat <bind-endpoint> <msg-size> <roundtrip-count>", "roundtrip-count");
    zmtp_perf::run(Flavor::Current, echo(a))
}

async fn echo(a: Args) -> i32 {
    let Args { endpoint, size, count } = a;
    let wd = Watchdog::start(zmtp_perf::FIRST_MSG_TIMEOUT, zmtp_perf::IDLE_TIMEOUT, move |n, _| {
        eprintln!("error: recv {n}/{count}: timed out");
        2
    });
    let sock = zmtp_perf::socket(
        SocketType::Rep,
        zmtp_perf::secure(Options { linger: Some(zmtp_perf::LINGER), ..Options::default() }, Role::Bind),
    );
    if let Err(e) = sock.bind(&endpoint).await {
        eprintln!("error: bind {endpoint}: {e}");
        return 1;
    }
    let mut rc = 0;
    for i in 0..count as u64 {
        let msg = match sock.recv().await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: recv {i}/{count}: {e}");
                rc = 2;
                break;
            }
        };
        if msg.len() != 1 || msg.frames()[0].len() != size {
            eprintln!(
                "error: bad request ({} frames, {} B; want 1 frame of {size} B)",
                msg.len(),
                msg.byte_len()
            );
            rc = 3;
            break;
        }
        if let Err(e) = sock.send(msg).await {
            eprintln!("error: send {i}/{count}: {e}");
            rc = 2;
            break;
        }
        wd.progress(i + 1);
    }
    wd.stop();
    // The last reply is only queued: closing flushes it (linger 30 s).
    zmtp_perf::close(sock, zmtp_perf::LINGER + Duration::from_secs(1)).await;
    rc
}
