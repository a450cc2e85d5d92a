//! ROUTER-to-REQ load balancing (ZeroMQ Guide, chapter 3: "ROUTER Broker and REQ Workers").
//!
//! A broker ROUTER hands out tasks to REQ workers. A REQ socket may only send its next request once it
//! has the reply to the last one, so a worker's request ("Hi Boss") means "I am idle, give me work":
//! the broker answers whichever worker asked, in the order the requests arrive, and every worker gets
//! work in proportion to how fast it is. This is least-recently-used routing with no bookkeeping at
//! all in the broker.
//!
//! Messages on the broker are `[worker id][empty delimiter][body]`: REQ adds and strips the delimiter
//! itself, the ROUTER adds and strips the worker's id, and the broker must send both back.
//!
//! Unlike the Guide, which encourages workers for five seconds, this broker hands out a fixed number
//! of tasks ("Work harder") and then fires every worker ("Fired!"); each reports how many tasks it
//! completed. So that every run is fair from its first task, the broker holds the first requests
//! until all workers have reported for duty (a REQ has one request outstanding at most, so the first
//! N requests come from N different workers).
//!
//! ```text
//! cargo run -p zmtp --example rtreq -- [WORKERS=10] [TASKS=100] [MAX_WORK_MS=10]
//! ```

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Options, Socket, SocketType};

#[path = "common/mod.rs"]
mod common;
#[path = "common/rtbroker.rs"]
mod rtbroker;

use common::{arg, BoxError, Rng};
pub use rtbroker::{Config, Report};

/// A worker: asks for work, does it, asks again, until fired. Returns the tasks it completed.
async fn worker(endpoint: String, name: String, max_work: Duration) -> Result<usize, BoxError> {
    let options = Options { routing_id: Some(Bytes::from(name.clone())), ..Options::default() };
    let socket = Socket::with_options(SocketType::Req, options)?;
    socket.connect(&endpoint)?;
    let mut rng = Rng::keyed(name.as_bytes());
    let mut total = 0;
    loop {
        // Tell the broker we are ready for work.
        socket.send("Hi Boss").await?;
        let workload = socket.recv().await?;
        if workload.frames().first().is_some_and(|f| f == "Fired!") {
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
    rtbroker::run("rtreq", config, worker).await
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
