//! `statetable_bench`: operations per second through the state tables of issue 17 (the `statetable`
//! crate, SONiC's `ZmqProducerStateTable` → `ZmqConsumerStateTable`), optionally written through to
//! Redis. `perf/statetable_py.py` is the same flow in pyzmq; `scripts/bench-statetable.sh` runs both.
//!
//! ```text
//! statetable_bench consume --bind EP [--redis URL] [--merge] --count N
//! statetable_bench produce --connect EP --count N --batch B [--producers P]
//! statetable_bench encode-redis --count N [--merge]
//! ```
//!
//! - `consume`: a [`Server`] (PULL) and a [`ConsumerStateTable`] on `APPL_DB`/`BENCH_TABLE`, popped
//!   with `next_batch` (SONiC's 128 at a time) until N operations arrived. With `--redis`, a
//!   [`WriteThrough`] in the table's options (replace: `DEL` + `HSET`; `--merge`: `HSET`), flushed
//!   at the end. Timed from the first batch popped (as `local_thr` times from the first message).
//!   Prints `ENDPOINT <ep>` on stderr once bound (so `tcp://127.0.0.1:*` works).
//! - `produce`: P tasks, each with its own [`Client`] (PUSH, SONiC's options) and
//!   [`ProducerStateTable`], send N/P SET operations of 10 fields (names 8 B, values 16 B) on keys
//!   of 16 B (`key:` and 12 digits, 100,000 distinct keys as `redis-benchmark -r 100000`), B per
//!   message (B = 1: `set`, B > 1: `set_batch`). Each waits (up to 10 s) until it is connected
//!   before it starts, and after its last send until the consumer hangs up (up to `--wait` s),
//!   because the client's LINGER is SONiC's 0: leaving earlier would drop what is still queued.
//!   A send that took over 5 ms is counted as a stall: the client's SONiC back-off (the queue was
//!   at SNDHWM, 20 ms sleep and more).
//! - `encode-redis` (no network): what building the write-through's Redis requests costs per
//!   operation, for N operations in batches of 512: the pipeline as `statetable::writethrough`
//!   builds it (`redis::pipe()`, `MULTI`, a `Cmd` per `DEL` and `HSET`, packed), beside the same
//!   bytes written straight into one reused buffer (RESP by hand). Checks that both are the same
//!   bytes.
//!
//! Output: one JSON line on stdout (`ops`, `seconds`, `ops_per_s`, and with Redis `redis_seconds`,
//! `redis_ops_per_s`). Runtime: current-thread unless `BENCH_RT=multi` (`BENCH_WORKERS`, default 2).
//! Exit codes: 0 ok, 1 setup error, 2 the run stalled (nothing for 30 s) or a send failed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use statetable::{
    Client, ClientOptions, ConsumerOptions, ConsumerStateTable, Operation, ProducerStateTable, Server,
    ServerOptions, WriteMode, WriteThrough, WriteThroughOptions,
};

const DB: &[u8] = b"APPL_DB";
const TABLE: &[u8] = b"BENCH_TABLE";
/// Distinct keys (as `redis-benchmark -r 100000`): Redis holds 100,000 hashes whatever N is.
const KEYSPACE: u64 = 100_000;
/// The longest wait for the next batch before the run is declared stalled.
const IDLE: Duration = Duration::from_secs(30);
/// A send that takes longer waited out at least one back-off of the client.
const STALL: Duration = Duration::from_millis(5);

/// Ten fields: names of 8 bytes, values of 16.
const FIELDS: [(&[u8], &[u8]); 10] = [
    (b"field_00", b"value-00-abcdefg"),
    (b"field_01", b"value-01-abcdefg"),
    (b"field_02", b"value-02-abcdefg"),
    (b"field_03", b"value-03-abcdefg"),
    (b"field_04", b"value-04-abcdefg"),
    (b"field_05", b"value-05-abcdefg"),
    (b"field_06", b"value-06-abcdefg"),
    (b"field_07", b"value-07-abcdefg"),
    (b"field_08", b"value-08-abcdefg"),
    (b"field_09", b"value-09-abcdefg"),
];

#[derive(Parser)]
#[command(name = "statetable_bench", about = "State-table operations/s (issue 17)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Bind a consumer and pop N operations (optionally writing them through to Redis).
    Consume {
        /// Endpoint to bind, e.g. tcp://127.0.0.1:*
        #[arg(long)]
        bind: String,
        /// Write through to this Redis (redis://127.0.0.1:PORT/0).
        #[arg(long)]
        redis: Option<String>,
        /// Write SETs as HSET only (SONiC's HSET_COMMAND) instead of DEL + HSET.
        #[arg(long)]
        merge: bool,
        /// Operations to receive.
        #[arg(long)]
        count: u64,
    },
    /// Connect producers and send N SET operations.
    Produce {
        /// Endpoint of the consumer.
        #[arg(long)]
        connect: String,
        /// Operations to send, in all.
        #[arg(long)]
        count: u64,
        /// Operations per message.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Producers (tasks, each with its own client).
        #[arg(long, default_value_t = 1)]
        producers: u64,
        /// Seconds to wait, after the last send, for the consumer to hang up.
        #[arg(long, default_value_t = 60)]
        wait: u64,
        /// The client's SNDHWM (default SONiC's 10,000): an experiment knob.
        #[arg(long, default_value_t = statetable::client::WATERMARK)]
        send_hwm: usize,
        /// The client's first back-off is twice this, in µs (default SONiC's 10 ms): an experiment
        /// knob.
        #[arg(long, default_value_t = 10_000)]
        retry_base_us: u64,
    },
    /// Time building the write-through's Redis pipelines (no network).
    EncodeRedis {
        /// Operations to encode.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// HSET only (no DEL).
        #[arg(long)]
        merge: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let flavor = zmtp_perf::flavor(zmtp_perf::Flavor::Current);
    let rt = match flavor {
        zmtp_perf::Flavor::Current => "current",
        zmtp_perf::Flavor::Multi => "multi",
    };
    match cli.mode {
        Mode::Consume { bind, redis, merge, count } => {
            zmtp_perf::run(zmtp_perf::Flavor::Current, consume(bind, redis, merge, count, rt))
        }
        Mode::Produce { connect, count, batch, producers, wait, send_hwm, retry_base_us } => {
            let options = ClientOptions {
                send_hwm,
                retry_base: Duration::from_micros(retry_base_us),
                ..ClientOptions::default()
            };
            zmtp_perf::run(
                zmtp_perf::Flavor::Current,
                produce(
                    connect,
                    count,
                    batch.max(1),
                    producers.max(1),
                    Duration::from_secs(wait),
                    options,
                    rt,
                ),
            )
        }
        Mode::EncodeRedis { count, merge } => std::process::exit(encode_redis(count, merge)),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// CPU seconds (user + system) this process has used so far: on a shared machine, how much of a core
/// the run needed, whatever the other processes left it.
#[allow(unsafe_code)]
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct passed by pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

async fn consume(bind: String, redis: Option<String>, merge: bool, count: u64, rt: &str) -> i32 {
    let server = match Server::new(&bind, ServerOptions { lazy_bind: true, ..ServerOptions::default() }).await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: server: {e}");
            return 1;
        }
    };
    let write_through = match &redis {
        Some(url) => {
            let mode = if merge { WriteMode::Merge } else { WriteMode::Replace };
            match WriteThrough::connect(url, WriteThroughOptions { mode, ..WriteThroughOptions::default() })
                .await
            {
                Ok(wt) => Some(wt),
                Err(e) => {
                    eprintln!("error: redis {url}: {e}");
                    return 1;
                }
            }
        }
        None => None,
    };
    let table = ConsumerStateTable::new(
        &server,
        DB,
        TABLE,
        ConsumerOptions { write_through: write_through.clone(), ..ConsumerOptions::default() },
    );
    match server.bind().await {
        Ok(ep) => eprintln!("ENDPOINT {ep}"),
        Err(e) => {
            eprintln!("error: bind {bind}: {e}");
            return 1;
        }
    }
    let mut got = 0u64;
    let mut fields = 0u64;
    let mut pops = 0u64;
    let mut start = None;
    let mut cpu0 = 0.0;
    while got < count {
        let Ok(ops) = tokio::time::timeout(IDLE, table.next_batch()).await else {
            eprintln!("error: nothing for {IDLE:?} after {got} of {count} operations");
            return 2;
        };
        if start.is_none() {
            start = Some(Instant::now());
            cpu0 = cpu_seconds();
        }
        pops += 1;
        got += ops.len() as u64;
        // What an application does at the least: look at every operation.
        fields += ops.iter().map(|op| op.fields.len() as u64).sum::<u64>();
    }
    let start = start.unwrap_or_else(Instant::now);
    let app = start.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let stats = server.stats();
    let mut line = format!(
        "{{\"impl\":\"statetable\",\"mode\":\"consume\",\"rt\":\"{rt}\",\"redis\":{},\"ops\":{got},\"fields\":{fields},\"messages\":{},\"pops\":{pops},\"seconds\":{:.6},\"ops_per_s\":{:.0},\"cpu_seconds\":{cpu:.3}",
        match (&redis, merge) {
            (None, _) => "null",
            (Some(_), false) => "\"replace\"",
            (Some(_), true) => "\"merge\"",
        },
        stats.messages,
        secs(app),
        got as f64 / secs(app),
    );
    if let Some(wt) = &write_through {
        if tokio::time::timeout(Duration::from_secs(300), wt.flush()).await.is_err() {
            eprintln!("error: the write-through did not finish within 300 s");
            return 2;
        }
        let total = start.elapsed();
        let cpu = cpu_seconds() - cpu0;
        let s = wt.stats();
        line.push_str(&format!(
            ",\"redis_seconds\":{:.6},\"redis_ops_per_s\":{:.0},\"redis_cpu_seconds\":{cpu:.3},\"redis_batches\":{},\"redis_failed\":{}",
            secs(total),
            got as f64 / secs(total),
            s.batches,
            s.failed
        ));
        wt.shutdown().await;
    }
    println!("{line}}}");
    drop(table);
    server.close().await;
    0
}

/// `key:` and the key number in 12 digits: 16 bytes, written without allocating.
fn key(buf: &mut [u8; 16], n: u64) {
    buf[..4].copy_from_slice(b"key:");
    let mut n = n;
    for b in buf[4..].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

struct Sent {
    ops: u64,
    messages: u64,
    stalls: u64,
    stalled: Duration,
    elapsed: Duration,
}

async fn producer(
    ep: String,
    first: u64,
    n: u64,
    batch: usize,
    wait: Duration,
    options: ClientOptions,
) -> Result<Sent, String> {
    let client = Client::connect(&ep, options).map_err(|e| format!("connect {ep}: {e}"))?;
    let table = ProducerStateTable::new(&client, DB, TABLE);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_connected() {
        if Instant::now() > deadline {
            return Err(format!("not connected to {ep} after 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fields: Vec<(Bytes, Bytes)> =
        FIELDS.iter().map(|(f, v)| (Bytes::from_static(f), Bytes::from_static(v))).collect();
    let mut buf = [0u8; 16];
    let mut sent = Sent { ops: 0, messages: 0, stalls: 0, stalled: Duration::ZERO, elapsed: Duration::ZERO };
    let mut ops: Vec<Operation> = Vec::with_capacity(batch);
    let start = Instant::now();
    let mut i = 0u64;
    while i < n {
        let t = Instant::now();
        if batch == 1 {
            key(&mut buf, (first + i) % KEYSPACE);
            table.set(&buf, &FIELDS).await.map_err(|e| format!("set: {e}"))?;
            i += 1;
        } else {
            ops.clear();
            let m = (n - i).min(batch as u64);
            for j in 0..m {
                key(&mut buf, (first + i + j) % KEYSPACE);
                ops.push(Operation {
                    key: Bytes::copy_from_slice(&buf),
                    op: statetable::Op::Set,
                    fields: fields.clone(),
                });
            }
            table.set_batch(&ops).await.map_err(|e| format!("set_batch: {e}"))?;
            i += m;
        }
        let took = t.elapsed();
        if took > STALL {
            sent.stalls += 1;
            sent.stalled += took;
        }
        sent.messages += 1;
    }
    sent.elapsed = start.elapsed();
    sent.ops = n;
    // LINGER 0 (SONiC's): what is queued is dropped with the client, so stay until the consumer,
    // having received everything, hangs up.
    let deadline = Instant::now() + wait;
    while client.is_connected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(sent)
}

async fn produce(
    ep: String,
    count: u64,
    batch: usize,
    producers: u64,
    wait: Duration,
    options: ClientOptions,
    rt: &str,
) -> i32 {
    let per = count / producers;
    let cpu0 = cpu_seconds();
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let n = if p + 1 == producers { count - per * p } else { per };
            tokio::spawn(producer(ep.clone(), p * per, n, batch, wait, options.clone()))
        })
        .collect();
    let mut total = Sent { ops: 0, messages: 0, stalls: 0, stalled: Duration::ZERO, elapsed: Duration::ZERO };
    let mut code = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => {
                total.ops += s.ops;
                total.messages += s.messages;
                total.stalls += s.stalls;
                total.stalled += s.stalled;
                total.elapsed = total.elapsed.max(s.elapsed);
            }
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                code = 2;
            }
            Err(e) => {
                eprintln!("error: producer task: {e}");
                code = 2;
            }
        }
    }
    println!(
        "{{\"impl\":\"statetable\",\"mode\":\"produce\",\"rt\":\"{rt}\",\"batch\":{batch},\"producers\":{producers},\"ops\":{},\"messages\":{},\"seconds\":{:.6},\"ops_per_s\":{:.0},\"stalls\":{},\"stalled_seconds\":{:.3},\"cpu_seconds\":{:.3}}}",
        total.ops,
        total.messages,
        secs(total.elapsed),
        total.ops as f64 / secs(total.elapsed),
        total.stalls,
        total.stalled.as_secs_f64(),
        cpu_seconds() - cpu0
    );
    code
}

/// The write-through's pipeline for `batch`, built as `statetable::writethrough::pipeline` builds it
/// (the same calls; that function is private).
fn redis_pipeline(merge: bool, batch: &[(Bytes, Operation)]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    let mut key = Vec::new();
    for (table, op) in batch {
        key.clear();
        key.extend_from_slice(table);
        key.extend_from_slice(b":");
        key.extend_from_slice(&op.key);
        if !merge {
            pipe.cmd("DEL").arg(&key[..]).ignore();
        }
        let cmd = pipe.cmd("HSET").arg(&key[..]);
        for (f, v) in &op.fields {
            cmd.arg(&f[..]).arg(&v[..]);
        }
        cmd.ignore();
    }
    pipe
}

/// `prefix`, `n` in decimal, CRLF (no `fmt` machinery: it would cost more than the rest).
fn resp_len(out: &mut Vec<u8>, prefix: u8, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push(prefix);
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

fn resp_bulk(out: &mut Vec<u8>, parts: &[&[u8]]) {
    resp_len(out, b'$', parts.iter().map(|p| p.len()).sum::<usize>());
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

/// The same request bytes, written by hand into `out` (cleared first, its capacity reused).
fn resp_pipeline(out: &mut Vec<u8>, merge: bool, batch: &[(Bytes, Operation)]) {
    out.clear();
    out.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
    for (table, op) in batch {
        if !merge {
            out.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n");
            resp_bulk(out, &[table, b":", &op.key]);
        }
        resp_len(out, b'*', 2 + 2 * op.fields.len());
        out.extend_from_slice(b"$4\r\nHSET\r\n");
        resp_bulk(out, &[table, b":", &op.key]);
        for (f, v) in &op.fields {
            resp_bulk(out, &[f]);
            resp_bulk(out, &[v]);
        }
    }
    out.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
}

fn encode_redis(count: u64, merge: bool) -> i32 {
    const BATCH: u64 = 512;
    let fields: Vec<(Bytes, Bytes)> =
        FIELDS.iter().map(|(f, v)| (Bytes::from_static(f), Bytes::from_static(v))).collect();
    let table = Bytes::from_static(TABLE);
    let mut buf = [0u8; 16];
    let batch: Vec<(Bytes, Operation)> = (0..BATCH)
        .map(|i| {
            key(&mut buf, i);
            let op = Operation {
                key: Bytes::copy_from_slice(&buf),
                op: statetable::Op::Set,
                fields: fields.clone(),
            };
            (table.clone(), op)
        })
        .collect();
    let rounds = count.div_ceil(BATCH).max(1);
    let mut bytes = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        let packed = redis_pipeline(merge, &batch).get_packed_pipeline();
        bytes += packed.len();
    }
    let crate_time = t.elapsed();
    let mut out = Vec::new();
    let t = Instant::now();
    for _ in 0..rounds {
        resp_pipeline(&mut out, merge, &batch);
        bytes = bytes.wrapping_add(out.len());
    }
    let hand_time = t.elapsed();
    let same = redis_pipeline(merge, &batch).get_packed_pipeline() == out;
    let ops = (rounds * BATCH) as f64;
    println!(
        "{{\"impl\":\"statetable\",\"mode\":\"encode-redis\",\"merge\":{merge},\"ops\":{ops},\"bytes_per_batch\":{},\"redis_rs_ns_per_op\":{:.0},\"by_hand_ns_per_op\":{:.0},\"same_bytes\":{same},\"checksum\":{bytes}}}",
        out.len(),
        crate_time.as_nanos() as f64 / ops,
        hand_time.as_nanos() as f64 / ops,
    );
    if same {
        0
    } else {
        2
    }
}
