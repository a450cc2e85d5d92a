//! B-22 / L-11 (reliability.md §7b, §7c), the 60 s CI version of the relay soak (`scripts/soak.sh`
//! runs the 20-minute one): the debug relay under mixed load for 60 s (50 paced request clients, 10
//! market-data subscribers, 100 short-lived peers per second, a hostile peer per second, an ingestor
//! process killed with SIGKILL and restarted every 3 s), sampled every second. Expected, as §7b says:
//! memory and fds flat, no client left without its reply. Asserted by the driver
//! (`zmtp_perf::soak`): zero replies lost or duplicated (TIMEOUT/UNAVAILABLE around a kill are
//! answers, counted apart), every garbage/bad-greeting peer disconnected, the fd count after warm-up
//! within max(16, 10 %), the relay exiting 0 on SIGTERM, and RSS growth after warm-up (first 20 %)
//! at most 10 % + 1 MiB: looser than the 20-minute run's 10 %, because in 60 s the post-warm-up
//! and end windows are 6 samples each and the allocator's arenas may still be settling.
//!
//! `harness = false` (relay/Cargo.toml): this binary is also the ingestor process the soak starts
//! and kills (`soak __ingestor WORK RESPONSE PREFIX`). With a test-name filter that does not match
//! `relay_soak_60s`, or `--list`, it runs nothing. `SOAK_TSV=path` keeps the samples.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use zmtp_perf::soak;

const NAME: &str = "relay_soak_60s";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__ingestor") {
        std::process::exit(soak::ingestor_main(&args[2..]));
    }
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    // libtest's arguments, as far as they select tests: filters, `--skip PATTERN`, `--exact`.
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--skip" => skips.extend(it.next().cloned()),
            "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                it.next();
            }
            _ if a.starts_with("--skip=") => skips.push(a["--skip=".len()..].to_owned()),
            _ if a.starts_with('-') => {}
            _ => filters.push(a.clone()),
        }
    }
    let exact = args.iter().any(|a| a == "--exact");
    let matches = |p: &String| if exact { p == NAME } else { NAME.contains(p.as_str()) };
    if (!filters.is_empty() && !filters.iter().any(matches))
        || skips.iter().any(|p| NAME.contains(p.as_str()))
    {
        println!("running 0 tests (filtered out: {NAME})");
        return;
    }
    if args.iter().any(|a| a == "--ignored") {
        println!("running 0 tests ({NAME} is not ignored)");
        return;
    }
    println!("running 1 test\ntest {NAME} ... (60 s)");
    let started = Instant::now();
    let exe = std::env::current_exe().expect("current_exe");
    let mut cfg = soak::Config::new(
        Duration::from_secs(60),
        PathBuf::from(env!("CARGO_BIN_EXE_relay")),
        vec![OsString::from(exe), OsString::from("__ingestor")],
    );
    // Debug builds of the relay and of this driver, beside other tests on 2 cores: lighter load
    // than the 20-minute run's (20 req/s per client, 500 market-data msg/s).
    cfg.client_rate = 10.0;
    cfg.md_rate = 200.0;
    cfg.criteria.rss_slack_kib = 1024.0;
    cfg.progress_every = 10;
    cfg.tsv = std::env::var_os("SOAK_TSV").map(PathBuf::from);
    let report = match soak::run(cfg) {
        Ok(r) => r,
        Err(e) => {
            println!("test {NAME} ... FAILED\n{e}");
            std::process::exit(101);
        }
    };
    println!("{}", report.markdown);
    if report.failures.is_empty() {
        println!("test {NAME} ... ok ({:.0} s)", started.elapsed().as_secs_f64());
        println!("\ntest result: ok. 1 passed; 0 failed");
    } else {
        for f in &report.failures {
            println!("soak criterion failed: {f}");
        }
        println!("test {NAME} ... FAILED\n\ntest result: FAILED. 0 passed; 1 failed");
        std::process::exit(101);
    }
}
