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

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;
#[path = "common/rtbroker.rs"]
mod rtbroker;

use common::{arg, BoxError, Rng};
pub use rtbroker::{Config, Report};

/// A worker: asks for work, does it, asks again, until fired. Returns the tasks it completed.
async fn worker(endpoint: String, name: String, max_work: Duration) -> Result<usize, BoxError> {
    let options = Options { routing_id: Some(Bytes::from(name.clone())), ..Options::default() };
    let socket = Socket::with_options(SocketType::Dealer, options)?;
    socket.connect(&endpoint)?;
    let mut rng = Rng::keyed(name.as_bytes());
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

/// Runs the broker with `config.workers` workers until all tasks are done and every worker is fired.
pub async fn run(config: Config) -> Result<Report, BoxError> {
    rtbroker::run("rtdealer", config, worker).await
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
