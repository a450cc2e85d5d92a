//! The `statetable-consumer` binary: receives SONiC ZMQ state-table messages on `--bind` and applies
//! every operation to the Redis database of `--redis` (hash `TABLE<separator>key`), until SIGTERM or
//! SIGINT; then it stops receiving, writes what it holds and exits 0. See `--help`.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use statetable::{
    Batch, Handler, Replier, Server, ServerOptions, WriteMode, WriteThrough, WriteThroughOptions,
};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

const DEFAULT_LOG: &str = "statetable=info,statetable_consumer=info,zmtp=warn";

const AFTER_HELP: &str = "\
Every operation received, whatever its database and table name, is written to the one Redis
database named by --redis (redis://HOST:PORT/DB): a SET replaces the hash TABLE<sep>KEY (DEL then
HSET, in one MULTI/EXEC per pipelined batch; --merge does HSET only, pipelined), a DEL deletes it. Operations are
applied in the order they arrive. If Redis goes away, the consumer holds what it has, stops reading
when its queue is full (the producers' queues and retries take the backlog), reconnects by itself
and carries on; the log says so.

With --sync the socket is a REP (SONiC's one-to-one synchronous mode): each message is answered,
once its operations are in Redis, with an empty batch of the same database and table.

On SIGTERM or SIGINT it stops receiving, writes everything it holds (up to --drain-timeout-secs) and
exits 0 (1 if Redis could not take it all in time).

Logs go to stderr (RUST_LOG sets the filter; default statetable=info). --log-json logs JSON lines.";

/// Applies every state-table operation it receives to a Redis database.
#[derive(Debug, Parser)]
#[command(name = "statetable-consumer", version, after_help = AFTER_HELP)]
struct Args {
    /// ZeroMQ endpoint to bind, e.g. tcp://*:8100 (SONiC's ORCH_ZMQ_PORT) or ipc:///run/x.sock.
    #[arg(long, value_name = "ENDPOINT")]
    bind: String,
    /// Redis URL: redis://HOST:PORT/DB (the database number selects the database).
    #[arg(long, value_name = "URL")]
    redis: String,
    /// Separator between table name and key (":" in SONiC's APPL_DB, "|" in CONFIG_DB/STATE_DB).
    #[arg(long, default_value = ":")]
    separator: String,
    /// SET updates only the fields it names (HSET) instead of replacing the hash.
    #[arg(long)]
    merge: bool,
    /// One-to-one synchronous mode (REP): acknowledge each message once it is in Redis.
    #[arg(long)]
    sync: bool,
    /// Operations per pipelined request to Redis (a MULTI/EXEC in replace mode).
    #[arg(long, default_value_t = 512, value_name = "N")]
    redis_batch: usize,
    /// At shutdown, how long to keep writing what is held before giving up.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    drain_timeout_secs: u64,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

/// Synchronous mode: queue for Redis, and answer once written.
struct AckAfterWrite {
    write_through: WriteThrough,
    replier: Replier,
}

impl Handler for AckAfterWrite {
    fn handle(&self, batch: Batch) -> Result<(), Batch> {
        let (db, table) = (batch.db.clone(), batch.table.clone());
        self.write_through.handle(batch)?;
        let wt = self.write_through.clone();
        let replier = self.replier.clone();
        tokio::spawn(async move {
            wt.flush().await;
            if let Err(e) = replier.reply(&db, &table, &[]) {
                error!(error = %e, "cannot acknowledge");
            }
        });
        Ok(())
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.write_through.ready()
    }
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_json);
    if args.redis_batch == 0 {
        eprintln!("statetable-consumer: --redis-batch must be at least 1");
        return ExitCode::from(2);
    }
    let options = WriteThroughOptions {
        separator: args.separator.clone(),
        mode: if args.merge { WriteMode::Merge } else { WriteMode::Replace },
        max_batch: args.redis_batch,
        ..WriteThroughOptions::default()
    };
    let write_through = match WriteThrough::connect(&args.redis, options).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("statetable-consumer: --redis {}: {e}", args.redis);
            return ExitCode::from(2);
        }
    };
    let server_options = ServerOptions { sync: args.sync, lazy_bind: true, ..ServerOptions::default() };
    let server = match Server::new(&args.bind, server_options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("statetable-consumer: --bind {}: {e}", args.bind);
            return ExitCode::from(2);
        }
    };
    if args.sync {
        server.register_fallback(Arc::new(AckAfterWrite {
            write_through: write_through.clone(),
            replier: server.replier(),
        }));
    } else {
        server.register_fallback(Arc::new(write_through.clone()));
    }
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("statetable-consumer: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let bound = match server.bind().await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("statetable-consumer: --bind {}: {e}", args.bind);
            return ExitCode::from(2);
        }
    };
    info!(endpoint = %bound, redis = %redact(&args.redis), merge = args.merge, sync = args.sync, "consumer ready");
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                let (s, w) = (server.stats(), write_through.stats());
                info!(messages = s.messages, operations = s.operations, malformed = s.malformed,
                    written = w.written, queued = w.queued, disconnects = w.disconnects, "progress");
            }
        }
    }
    info!("stopping: no more messages; writing what is held");
    let received = server.stats();
    server.close().await;
    let drained =
        tokio::time::timeout(Duration::from_secs(args.drain_timeout_secs), write_through.shutdown()).await;
    let w = write_through.stats();
    info!(
        messages = received.messages,
        operations = received.operations,
        malformed = received.malformed,
        unknown_table = received.unknown_table,
        peers_dropped = received.peers_dropped,
        written = w.written,
        failed = w.failed,
        disconnects = w.disconnects,
        retried = w.retried,
        "stopped"
    );
    match drained {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => {
            error!(unwritten = w.queued, "Redis did not take everything in time");
            ExitCode::from(1)
        }
    }
}

/// The URL without its password (`redis://:secret@host` → `redis://:***@host`).
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => format!("{}***{}", &url[..s + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}
