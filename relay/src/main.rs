//! The `relay` binary: reads the configuration named by `CONFIG_PATH` (TOML, or YAML by a `.yaml`/`.yml`
//! extension; default `/config/config.toml`, and only that default may be absent, which runs the
//! defaults), binds every port and serves until SIGTERM or SIGINT; SIGHUP reloads the live keys. See
//! `docs/relay-protocol.md`.
//!
//! Exit status: 0 after a clean shutdown, 2 for a bad configuration or argument (nothing bound; this
//! includes a key, certificate or password file that cannot be used), 1 when a port cannot be bound.

use std::path::PathBuf;
use std::process::ExitCode;

use relay::{Config, ConfigSource, Relay};

const DEFAULT_CONFIG_PATH: &str = "/config/config.toml";

const HELP: &str = "\
relay: the market-data request/response relay and fan-out (docs/relay-protocol.md)

Usage: relay [--help | --version | --healthcheck [URL]]

Configuration comes from the file named by CONFIG_PATH: TOML, or YAML (same keys) when the name ends in
.yaml or .yml. A CONFIG_PATH that names no file is an error (exit 2); with CONFIG_PATH unset the default
/config/config.toml is read, and with no file there the built-in defaults run: clients on tcp://*:5559, ingestor work on 5555, ingestor responses on
5556, market data out on 5558, market data in from tcp://flink-jobmanager:5557, all with the NULL
mechanism. Each port may require CURVE or PLAIN (the *_curve_* and *_plain_* keys; keys are made with
zmtp-keygen --out DIR NAME); see docs/relay-protocol.md, section 6.
The file's log_level, else RUST_LOG, sets the log filter (default relay=info,zmtp=warn: the zmtp
library's warnings name each peer refused at authentication; relay=debug adds a line per request);
logs go to stderr, as text or JSON (log_format, or RELAY_LOG_FORMAT=text|json). An HTTP admin
endpoint (admin_address, default port 9559 of the bind host) serves /metrics (Prometheus), /livez and
/readyz; see docs/relay-protocol.md, section 9.

SIGHUP reads the file again and applies the keys that can change live (request_timeout_secs,
max_pending_requests, log_level, the rate limit, breaker and cache keys); changed keys that take a
restart are named in a warning.

Exit status: 0 after SIGTERM/SIGINT, 2 for a bad configuration (nothing bound), 1 if a port is in use.

--healthcheck [URL] probes a running relay (the container image's HEALTHCHECK): one HTTP GET of URL
(default: /readyz of the admin endpoint named by CONFIG_PATH's admin_address, else
http://127.0.0.1:9559/readyz), 3 s at most; exit 0 on HTTP 200, else 1 with the reason on stderr.
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--help" | "-h") => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            Some("--version" | "-V") => {
                println!("relay {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            Some("--healthcheck") => return healthcheck(args.next(), args.next()),
            _ => {
                eprintln!("relay: unexpected argument {arg:?} (the configuration comes from CONFIG_PATH; see --help)");
                return ExitCode::from(2);
            }
        }
    }
    // Only the default path may be absent: a path the operator named and mistyped must not run the
    // defaults on every interface.
    let (path, may_be_absent) = match std::env::var_os("CONFIG_PATH").filter(|p| !p.is_empty()) {
        Some(named) => (PathBuf::from(named), false),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), true),
    };
    let (config, source) = match Config::load(&path, may_be_absent) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("relay: invalid configuration in {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    // The key, certificate and password files: read and checked before anything is bound.
    let security = match config.security() {
        Ok(security) => security,
        Err(e) => {
            eprintln!("relay: invalid configuration in {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    relay::logging::init(config.log_format, config.log_level.as_deref());
    if source == ConfigSource::Defaults {
        tracing::warn!(path = %path.display(), "no config file, running on defaults");
    }
    // One thread: every message of a request crosses four connections, and on a multi-thread runtime
    // each hop is a cross-thread wake-up (measured on 2 cores, 50 clients, 3 ingestors: 24.8k
    // requests/s multi-thread, 43.6k current-thread).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // Listen for signals before binding, so a signal that arrives just after the ports are
        // bound already shuts down cleanly.
        let signals = match Signals::new() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("relay: cannot listen for signals: {e}");
                return ExitCode::FAILURE;
            }
        };
        let relay = match Relay::bind_secured(&config, &security).await {
            Ok(relay) => relay,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("relay: {e}");
                return ExitCode::FAILURE;
            }
        };
        tokio::spawn(reload_on_sighup(signals.hup, relay.reloader(), path, may_be_absent));
        // As a task rather than `block_on`'s own future: the scheduler polls it in turn with the
        // connections' tasks (measured: 33.5k requests/s as block_on's future, 43.6k as a task).
        match tokio::spawn(relay.run(Signals::shutdown(signals.term, signals.int))).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("relay: the request loop failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Reads the configuration file again at each SIGHUP and applies its live keys
/// ([`relay::reload::LIVE_KEYS`]); a file that does not load changes nothing (logged at `error`),
/// and changed keys that take a restart are named in a `warn`.
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    reloader: relay::Reloader,
    path: PathBuf,
    may_be_absent: bool,
) {
    while hup.recv().await.is_some() {
        let config = match Config::load(&path, may_be_absent) {
            Ok((config, _)) => config,
            Err(e) => {
                tracing::error!(path = %path.display(), "configuration not reloaded: {e}");
                continue;
            }
        };
        let outcome = reloader.apply(&config);
        if !outcome.need_restart.is_empty() {
            tracing::warn!(
                keys = %outcome.need_restart.join(", "),
                "configuration keys changed that take a restart: not applied"
            );
        }
        tracing::info!(path = %path.display(), applied = %outcome.applied.join(", "), "configuration reloaded");
    }
}

/// `relay --healthcheck [URL]`: see [`relay::healthcheck`].
fn healthcheck(url: Option<std::ffi::OsString>, extra: Option<std::ffi::OsString>) -> ExitCode {
    if let Some(extra) = extra {
        eprintln!("relay: healthcheck: unexpected argument {extra:?} (usage: relay --healthcheck [URL])");
        return ExitCode::from(2);
    }
    let url = match url {
        Some(url) => match url.into_string() {
            Ok(url) => url,
            Err(url) => {
                eprintln!("relay: healthcheck: the URL {url:?} is not UTF-8");
                return ExitCode::from(2);
            }
        },
        None => match relay::healthcheck::default_url(&config_path()) {
            Ok(url) => url,
            Err(e) => {
                eprintln!("relay: healthcheck: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match relay::healthcheck::probe(&url, relay::healthcheck::DEFAULT_TIMEOUT) {
        Ok(status) => {
            println!("{url}: {status}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relay: healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration file's path: `CONFIG_PATH`, else the default.
fn config_path() -> PathBuf {
    std::env::var_os("CONFIG_PATH")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH), PathBuf::from)
}

/// SIGTERM and SIGINT (shutdown) and SIGHUP (reload), registered.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Completes at the first SIGTERM or SIGINT. After it, a second signal, or a shutdown that
    /// takes longer than 4.5 s, exits the process at once (status 0).
    async fn shutdown(term: tokio::signal::unix::Signal, int: tokio::signal::unix::Signal) {
        let (mut term, mut int) = (term, int);
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::warn!("second signal: exiting now"),
                _ = int.recv() => tracing::warn!("second signal: exiting now"),
                // The shutdown is bounded well below this; the watchdog keeps the contract's promise.
                _ = tokio::time::sleep(std::time::Duration::from_millis(4500)) => {
                    tracing::warn!("shutdown took too long: exiting now")
                }
            }
            std::process::exit(0);
        });
    }
}
