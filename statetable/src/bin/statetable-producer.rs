//! The `statetable-producer` binary: reads operations as JSON lines on stdin and sends them to a
//! state-table consumer on `--connect`, as one table of one database; exits when stdin ends and what
//! it sent has left. See `--help`.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use serde::Deserialize;
use statetable::{Client, ClientOptions, Operation};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

const DEFAULT_LOG: &str = "statetable=info,statetable_producer=info,zmtp=warn";

const AFTER_HELP: &str = "\
INPUT (one JSON object per line; blank lines are skipped):
  {\"op\":\"set\",\"key\":\"k\",\"fields\":{\"f\":\"v\",...}}   set key k to these fields
  {\"op\":\"del\",\"key\":\"k\"}                          delete key k
A SET with no fields is sent as a DEL (as SONiC does). A line that is not one of these stops the
program with its line number (exit 2); what came before it was sent.

Each operation is one message unless --batch N groups up to N consecutive lines into one message
(SONiC's batch set/delete). When the consumer's queue is full, a send waits for room for up to 20 ms,
then 40 ms, ... for up to 10 retries (SONiC's back-off, each pause ending as soon as there is room),
then fails (exit 1). At the end of input it waits up to --linger-ms for
what is queued to leave, then exits 0.

With --sync-timeout-ms the socket is a REQ (SONiC's one-to-one synchronous mode): each message waits
for the consumer's acknowledgement; a message not acknowledged in time is sent again, up to
--sync-retries times, then the program exits 1.

Logs go to stderr (RUST_LOG sets the filter; default statetable=info).";

/// Sends state-table operations, read as JSON lines on stdin, to a consumer.
#[derive(Debug, Parser)]
#[command(name = "statetable-producer", version, after_help = AFTER_HELP)]
struct Args {
    /// The consumer's endpoint, e.g. tcp://127.0.0.1:8100.
    #[arg(long, value_name = "ENDPOINT")]
    connect: String,
    /// Database name sent with every message, e.g. APPL_DB.
    #[arg(long, value_name = "NAME")]
    db: String,
    /// Table name sent with every message, e.g. ROUTE_TABLE.
    #[arg(long, value_name = "NAME")]
    table: String,
    /// Operations per message.
    #[arg(long, default_value_t = 1, value_name = "N")]
    batch: usize,
    /// Synchronous mode: wait this long for each acknowledgement.
    #[arg(long, value_name = "MS")]
    sync_timeout_ms: Option<u64>,
    /// Synchronous mode: times an unacknowledged message is sent again.
    #[arg(long, default_value_t = 3, value_name = "N")]
    sync_retries: u32,
    /// At the end, how long to wait for queued messages to leave.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    linger_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Set {
        key: String,
        #[serde(default)]
        fields: Fields,
    },
    Del {
        key: String,
    },
}

/// A JSON object's members in the order written (a `serde_json::Map` would sort them, and merge
/// repeated names): the fields go on the wire in the order the user gave them.
#[derive(Debug, Default)]
struct Fields(Vec<(Bytes, Bytes)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some((f, v)) = map.next_entry::<String, String>()? {
                    out.push((Bytes::from(f), Bytes::from(v)));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

fn operation(line: Line) -> Operation {
    match line {
        Line::Del { key } => Operation::del(key),
        Line::Set { key, fields } => Operation::set(key, fields.0),
    }
}

struct Sender {
    client: Client,
    db: Bytes,
    table: Bytes,
    sync_retries: u32,
    sent: u64,
}

impl Sender {
    async fn send(&mut self, ops: &[Operation]) -> Result<(), statetable::Error> {
        if ops.is_empty() {
            return Ok(());
        }
        let message = statetable::wire::encode(&self.db, &self.table, ops)?;
        if !self.client.is_synchronous() {
            self.client.send_raw(message).await?;
            self.sent += ops.len() as u64;
            return Ok(());
        }
        for attempt in 0..=self.sync_retries {
            self.client.send_raw(message.clone()).await?;
            if self.client.wait().await?.is_some() {
                self.sent += ops.len() as u64;
                return Ok(());
            }
            warn!(attempt = attempt + 1, "not acknowledged in time; sending again");
        }
        Err(statetable::Error::Closed)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if args.batch == 0 {
        eprintln!("statetable-producer: --batch must be at least 1");
        return ExitCode::from(2);
    }
    let options = ClientOptions {
        sync_timeout: args.sync_timeout_ms.map(Duration::from_millis),
        linger: Duration::from_millis(args.linger_ms),
        ..ClientOptions::default()
    };
    let client = match Client::connect(&args.connect, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("statetable-producer: --connect {}: {e}", args.connect);
            return ExitCode::from(2);
        }
    };
    let mut sender = Sender {
        client: client.clone(),
        db: Bytes::from(args.db.clone()),
        table: Bytes::from(args.table.clone()),
        sync_retries: args.sync_retries,
        sent: 0,
    };
    // stdin is read on a thread (it blocks); lines come over a small channel, so a slow consumer
    // holds the reader back rather than growing memory.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, std::io::Result<String>)>(1024);
    std::thread::spawn(move || {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            if tx.blocking_send((i + 1, line)).is_err() {
                break;
            }
        }
    });
    let mut pending: Vec<Operation> = Vec::with_capacity(args.batch);
    let mut status = ExitCode::SUCCESS;
    while let Some((n, line)) = rx.recv().await {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                error!(line = n, error = %e, "cannot read stdin");
                status = ExitCode::from(1);
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let op = match serde_json::from_str::<Line>(&line).map(operation) {
            Ok(op) => op,
            Err(e) => {
                eprintln!("statetable-producer: line {n}: {e}");
                status = ExitCode::from(2);
                break;
            }
        };
        pending.push(op);
        if pending.len() >= args.batch {
            if let Err(e) = sender.send(&pending).await {
                error!(line = n, error = %e, "send failed");
                return ExitCode::from(1);
            }
            pending.clear();
        }
    }
    if let Err(e) = sender.send(&pending).await {
        error!(error = %e, "send failed");
        return ExitCode::from(1);
    }
    info!(operations = sender.sent, "input done; waiting for queued messages to leave");
    client.close().await;
    status
}
