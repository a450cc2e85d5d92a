//! `proxy <xsub-bind-endpoint> <xpub-bind-endpoint> [lifetime-s]`
//!
//! Binds an XSUB (publishers connect here) and an XPUB (subscribers connect here), both with
//! linger 0, prints `proxy: XSUB <ep>  XPUB <ep>` and runs `zmtp::proxy` between them until
//! lifetime-s seconds (default 300) have passed or SIGTERM/SIGINT arrives, then closes both and
//! exits 0 (bench/README.md; as bench/libzmq/proxy.c). Exit 1 on a usage or bind error, 2 if the
//! proxy itself ends with an error.
//!
//! `BENCH_CURVE=1`: both sides bind, so both are CURVE servers with bench/README.md's fixed keys
//! ([`zmtp_perf::secure`]), as proxy.c.
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use zmtp::{Options, SocketType};
use zmtp_perf::{Flavor, Role};

const USAGE: &str = "proxy <xsub-bind-endpoint> <xpub-bind-endpoint> [lifetime-s]";

fn main() {
    let a = zmtp_perf::positional(USAGE, 2, 3);
    let lifetime = a.get(2).map_or(300, |s| zmtp_perf::parse_pos(s, "lifetime-s"));
    zmtp_perf::run(Flavor::Current, run(a[0].clone(), a[1].clone(), lifetime as u64))
}

async fn run(xsub_ep: String, xpub_ep: String, lifetime: u64) -> i32 {
    // Handlers first, so a stop signal never meets the default action (as proxy.c blocks them).
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: signal handler: {e}");
            return 1;
        }
    };
    // Both sides bind, so both are CURVE servers under BENCH_CURVE=1 (as proxy.c).
    let options =
        zmtp_perf::secure(Options { linger: Some(Duration::ZERO), ..Options::default() }, Role::Bind);
    let xsub = zmtp_perf::socket(SocketType::XSub, options.clone());
    let xpub = zmtp_perf::socket(SocketType::XPub, options);
    if let Err(e) = xsub.bind(&xsub_ep).await {
        eprintln!("error: bind xsub {xsub_ep}: {e}");
        return 1;
    }
    if let Err(e) = xpub.bind(&xpub_ep).await {
        eprintln!("error: bind xpub {xpub_ep}: {e}");
        return 1;
    }
    println!("proxy: XSUB {xsub_ep}  XPUB {xpub_ep}");
    let rc = tokio::select! {
        r = zmtp::proxy(&xsub, &xpub, None) => {
            eprintln!("proxy: stopped: {r:?}");
            i32::from(r.is_err()) * 2
        }
        _ = tokio::time::sleep(Duration::from_secs(lifetime)) => {
            eprintln!("proxy: stopping (lifetime over)");
            0
        }
        _ = term.recv() => {
            eprintln!("proxy: stopping (signal)");
            0
        }
        _ = int.recv() => {
            eprintln!("proxy: stopping (signal)");
            0
        }
    };
    zmtp_perf::close(xsub, Duration::from_secs(5)).await;
    zmtp_perf::close(xpub, Duration::from_secs(5)).await;
    rc
}
