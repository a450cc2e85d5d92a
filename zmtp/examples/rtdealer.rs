//! ROUTER-to-DEALER load balancing (ZeroMQ Guide, chapter 3: "ROUTER Broker and DEALER Workers").
//!
//! The same broker as `rtreq`, with DEALER workers instead of REQ. A DEALER is asynchronous and does
//! no envelope handling, so the worker does what REQ did for it: it sends an empty delimiter frame
//! before its body ("Hi Boss") and strips the delimiter from the broker's reply. The broker cannot
//! tell the difference: it still sees `[worker id][empty delimiter][body]`. A worker still sends one
//! request at a time and waits for the answer, so its request still means "I am idle, give me work".
//!
//! Unlike the Guide, which encourages workers for five seconds, this broker hands out a fixed number
//! of tasks ("Work harder") and then fires every worker ("Fired!"); each reports how many tasks it
//! completed. So that every run is fair from its first task, the broker holds the first requests
//! until all workers have reported for duty (a worker has one request outstanding at most, so the
//! first N requests come from N different workers).
//!
//! ```text
//! cargo run -p zmtp --example rtdealer -- [WORKERS=10] [TASKS=100] [MAX_WORK_MS=10]
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Options, Socket, SocketType};

/// Any error, for the examples.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of DEALER workers.
    pub workers: usize,
    /// Number of tasks the broker hands out before firing everyone.
    pub tasks: usize,
    /// Each task takes a random time from 1 ms up to this.
    pub max_work: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config { workers: 10, tasks: 100, max_work: Duration::from_millis(10) }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration run.
    pub config: Config,
    /// Tasks each worker says it completed, by worker name.
    pub completed: BTreeMap<String, usize>,
    /// Tasks the broker handed to each worker, by routing id (the same names).
    pub dispatched: BTreeMap<String, usize>,
}

impl Report {
    /// Whether every worker completed at least one task.
    pub fn every_worker_got_some(&self) -> bool {
        self.completed.len() == self.config.workers && self.completed.values().all(|&n| n > 0)
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let Config { workers, tasks, .. } = self.config;
        if self.every_worker_got_some() {
            format!("rtdealer: {workers} workers, {tasks} tasks, every worker got some")
        } else {
            let idle = self.completed.values().filter(|&&n| n == 0).count();
            format!("rtdealer: {workers} workers, {tasks} tasks, {idle} workers got none")
        }
    }
}

/// A small pseudo-random generator (splitmix64): enough to simulate uneven work.
struct Rng(u64);

impl Rng {
    /// Seeded from `seed` and the process's random hasher keys.
    fn new(seed: &[u8]) -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(seed);
        Rng(h.finish())
    }

    fn below(&mut self, n: u64) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }

    /// A random duration from 1 ms up to `max` (zero if `max` is zero).
    fn work(&mut self, max: Duration) -> Duration {
        let max_ms = max.as_millis() as u64;
        if max_ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(1 + self.below(max_ms))
        }
    }
}

/// A worker: asks for work, does it, asks again, until fired. Returns the tasks it completed.
async fn worker(endpoint: String, name: String, max_work: Duration) -> Result<usize, BoxError> {
    let options = Options { routing_id: Some(Bytes::from(name.clone())), ..Options::default() };
    let socket = Socket::with_options(SocketType::Dealer, options)?;
    socket.connect(&endpoint)?;
    let mut rng = Rng::new(name.as_bytes());
    let mut total = 0;
    loop {
        // Tell the broker we are ready for work: the empty delimiter frame, then the body.
        socket.send(Msg::from(vec![Bytes::new(), Bytes::from_static(b"Hi Boss")])).await?;
        // Get the workload from the broker: the delimiter, then the body.
        let reply = socket.recv().await?;
        let workload = match reply.frames() {
            [delimiter, body] if delimiter.is_empty() => body.clone(),
            _ => return Err(format!("{name}: malformed workload {reply:?}").into()),
        };
        if workload == "Fired!" {
            println!("{name}: Completed {total} tasks");
            break;
        }
        total += 1;
        // Do some random work.
        tokio::time::sleep(rng.work(max_work)).await;
    }
    socket.close().await;
    Ok(total)
}

/// The next worker asking for work: the ROUTER's message is `[id][][body]`.
async fn next_idle_worker(broker: &Socket) -> Result<Bytes, BoxError> {
    let msg = broker.recv().await?;
    match msg.frames() {
        [id, delimiter, _body] if delimiter.is_empty() => Ok(id.clone()),
        _ => Err(format!("malformed request {msg:?}").into()),
    }
}

/// Runs a broker and `config.workers` workers until all tasks are done and every worker is fired.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    let broker = Socket::new(SocketType::Router)?;
    let endpoint = broker.bind("tcp://127.0.0.1:*").await?;

    let workers: Vec<_> = (0..config.workers)
        .map(|i| {
            let name = format!("worker-{i:02}");
            (name.clone(), tokio::spawn(worker(endpoint.clone(), name, config.max_work)))
        })
        .collect();

    // Hold the first requests until every worker has reported for duty.
    let mut ready = VecDeque::with_capacity(config.workers);
    while ready.len() < config.workers {
        ready.push_back(next_idle_worker(&broker).await?);
    }

    let mut dispatched: BTreeMap<String, usize> = BTreeMap::new();
    let mut handed_out = 0;
    let mut fired = 0;
    while fired < config.workers {
        // The next message gives us the least recently used worker.
        let id = match ready.pop_front() {
            Some(id) => id,
            None => next_idle_worker(&broker).await?,
        };
        let count = dispatched.entry(String::from_utf8_lossy(&id).into_owned()).or_default();
        let workload = if handed_out < config.tasks {
            handed_out += 1;
            *count += 1;
            "Work harder"
        } else {
            fired += 1;
            "Fired!"
        };
        broker.send(Msg::from(vec![id, Bytes::new(), Bytes::from_static(workload.as_bytes())])).await?;
    }

    let mut completed = BTreeMap::new();
    for (name, handle) in workers {
        completed.insert(name, handle.await??);
    }
    broker.close().await;
    Ok(Report { config, completed, dispatched })
}

/// The `n`th command-line argument, parsed, or `default`.
fn arg<T: std::str::FromStr>(n: usize, default: T) -> Result<T, BoxError> {
    match std::env::args().nth(n) {
        Some(s) => s.parse().map_err(|_| format!("cannot parse argument {n} ({s:?})").into()),
        None => Ok(default),
    }
}

#[allow(dead_code)] // unused when the file is included as a module by tests/guide.rs
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let defaults = Config::default();
    let config = Config {
        workers: arg(1, defaults.workers)?,
        tasks: arg(2, defaults.tasks)?,
        max_work: Duration::from_millis(arg(3, defaults.max_work.as_millis() as u64)?),
    };
    let report = run(config).await?;
    println!("{}", report.summary());
    Ok(())
}
