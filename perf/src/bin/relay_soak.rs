//! `relay_soak`: the relay soak (reliability.md §7b B-22, §7c L-11), see `zmtp_perf::soak`.
//!
//! `relay_soak run --duration SECS [--relay-bin PATH] [--tsv F] [--summary F] [--relay-log F] ...`
//! starts the relay (by default `relay` beside this binary) on free loopback ports, runs the mixed
//! load, writes one TSV row per second, prints the markdown summary, and exits 0 when every pass
//! criterion holds, 1 when one failed (each failure on stderr), 2 when the run could not be set up.
//!
//! `relay_soak ingestor WORK_EP RESPONSE_EP PREFIX` is the ingestor process that `run` starts (three
//! of them) and kills with SIGKILL every `--kill-every` seconds.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zmtp_perf::soak;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "relay_soak", about = "Soak test of the relay (reliability.md B-22)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// The two modes.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Runs the soak.
    Run(RunArgs),
    /// An answering ingestor (started by `run`).
    Ingestor {
        /// The relay's ingestor work endpoint.
        work: String,
        /// The relay's ingestor response endpoint.
        response: String,
        /// The exchange prefix served (`EX0:`).
        prefix: String,
    },
}

/// `run`'s options.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Seconds of load.
    #[arg(long, default_value_t = 1200.0)]
    duration: f64,
    /// The relay binary (default: `relay` in this binary's directory).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Per-second samples (TSV).
    #[arg(long)]
    tsv: Option<PathBuf>,
    /// The markdown summary.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// The relay's stderr (warn and above).
    #[arg(long)]
    relay_log: Option<PathBuf>,
    /// Long-lived request clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Requests per second per long-lived client.
    #[arg(long, default_value_t = 20.0)]
    client_rate: f64,
    /// Market-data subscribers.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Market-data messages per second.
    #[arg(long, default_value_t = 500.0)]
    md_rate: f64,
    /// Short-lived peers (connect/close) per second.
    #[arg(long, default_value_t = 100.0)]
    churn_rate: f64,
    /// Seconds between hostile peers.
    #[arg(long, default_value_t = 1.0)]
    hostile_every: f64,
    /// Seconds between ingestor kills (default: duration / 20, within 3..60).
    #[arg(long)]
    kill_every: Option<f64>,
    /// The relay's request_timeout_secs.
    #[arg(long, default_value_t = 2.0)]
    request_timeout: f64,
    /// Fraction of the run that is warm-up.
    #[arg(long, default_value_t = 0.2)]
    warmup_frac: f64,
    /// Allowed RSS growth after warm-up, %.
    #[arg(long, default_value_t = 10.0)]
    max_rss_growth_pct: f64,
    /// Allowed RSS growth after warm-up on top of the %, KiB.
    #[arg(long, default_value_t = 0.0)]
    rss_slack_kib: f64,
    /// Allowed rise of the fd count after warm-up (or 10 %, the larger).
    #[arg(long, default_value_t = 16.0)]
    fd_margin: f64,
    /// A progress line every this many seconds (0: none).
    #[arg(long, default_value_t = 60)]
    progress_every: usize,
}

fn secs(name: &str, v: f64) -> Duration {
    if !(v.is_finite() && v > 0.0 && v < 1e7) {
        eprintln!("error: --{name} must be a positive number of seconds");
        std::process::exit(2);
    }
    Duration::from_secs_f64(v)
}

fn main() {
    let cli = Cli::parse();
    let a = match cli.mode {
        Mode::Ingestor { work, response, prefix } => {
            std::process::exit(soak::ingestor_main(&[work, response, prefix]));
        }
        Mode::Run(a) => a,
    };
    let exe = std::env::current_exe().unwrap_or_else(|e| {
        eprintln!("error: current_exe: {e}");
        std::process::exit(2);
    });
    let relay_bin = a.relay_bin.unwrap_or_else(|| exe.with_file_name("relay"));
    let ingestor_cmd: Vec<OsString> = vec![exe.into_os_string(), "ingestor".into()];
    let mut cfg = soak::Config::new(secs("duration", a.duration), relay_bin, ingestor_cmd);
    cfg.tsv = a.tsv;
    cfg.summary_md = a.summary;
    cfg.relay_log = a.relay_log;
    cfg.clients = a.clients;
    cfg.client_rate = secs("client-rate", a.client_rate).as_secs_f64();
    cfg.subscribers = a.subscribers;
    cfg.md_rate = secs("md-rate", a.md_rate).as_secs_f64();
    cfg.churn_rate = secs("churn-rate", a.churn_rate).as_secs_f64();
    cfg.hostile_every = secs("hostile-every", a.hostile_every);
    if let Some(k) = a.kill_every {
        cfg.kill_every = secs("kill-every", k);
    }
    cfg.request_timeout = secs("request-timeout", a.request_timeout);
    cfg.criteria = soak::Criteria {
        warmup_frac: a.warmup_frac.clamp(0.0, 0.7),
        rss_growth_pct: a.max_rss_growth_pct,
        rss_slack_kib: a.rss_slack_kib,
        fd_margin: a.fd_margin,
    };
    cfg.progress_every = a.progress_every;
    match soak::run(cfg) {
        Ok(report) => {
            println!("{}", report.markdown);
            if report.failures.is_empty() {
                println!("relay_soak: PASS");
            } else {
                for f in &report.failures {
                    eprintln!("relay_soak: FAIL: {f}");
                }
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("relay_soak: error: {e}");
            std::process::exit(2);
        }
    }
}
