//! The broker of `rtreq` and `rtdealer` (ZeroMQ Guide, chapter 3): a ROUTER that hands a fixed number
//! of tasks to whichever worker asks next, then fires every worker. Only the workers differ (REQ, or
//! DEALER adding the empty delimiter itself); each example includes this file.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Socket, SocketType};

use super::common::BoxError;

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of workers.
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
    /// The example's name, for the summary.
    pub example: &'static str,
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
        let example = self.example;
        if self.every_worker_got_some() {
            format!("{example}: {workers} workers, {tasks} tasks, every worker got some")
        } else {
            let idle = self.completed.values().filter(|&&n| n == 0).count();
            format!("{example}: {workers} workers, {tasks} tasks, {idle} workers got none")
        }
    }
}

/// The next worker asking for work: the ROUTER's message is `[id][][body]`.
async fn next_idle_worker(broker: &Socket) -> Result<Bytes, BoxError> {
    let msg = broker.recv().await?;
    match msg.frames() {
        [id, delimiter, _body] if delimiter.is_empty() => Ok(id.clone()),
        _ => Err(format!("malformed request {msg:?}").into()),
    }
}

/// Runs a broker and `config.workers` workers (`worker(endpoint, name, max_work)` tasks, which
/// return how many tasks they completed) until all tasks are done and every worker is fired.
pub async fn run<W, F>(example: &'static str, config: Config, worker: W) -> Result<Report, BoxError>
where
    W: Fn(String, String, Duration) -> F,
    F: Future<Output = Result<usize, BoxError>> + Send + 'static,
{
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
    Ok(Report { example, config, completed, dispatched })
}
