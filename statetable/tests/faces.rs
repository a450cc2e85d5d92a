//! The blocking face (threads, no runtime of the caller's) and the async stream face, and one
//! client shared by many threads and tasks.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use statetable::{
    Client, ClientOptions, ConsumerOptions, ConsumerStateTable, Error, Op, Operation, ProducerStateTable,
    Server, ServerOptions,
};

/// Four threads share one client (clones), each sending 250 SETs with the blocking methods; a
/// consumer thread pops with `pops_blocking`. Nothing here runs inside the caller's runtime.
#[test]
fn threads_share_one_client() {
    let server =
        Server::new_blocking("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
            .unwrap();
    let table = ConsumerStateTable::new(
        &server,
        "APPL_DB",
        "T",
        ConsumerOptions { pop_batch_size: 64, ..Default::default() },
    );
    let endpoint = server.bind_blocking().unwrap();
    let client = Client::connect_blocking(&endpoint, ClientOptions::default()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = ProducerStateTable::new(&client, "APPL_DB", "T");
            std::thread::spawn(move || {
                for i in 0..250 {
                    p.set_blocking(format!("t{t}_{i}").as_bytes(), &[("i", i.to_string())]).unwrap();
                }
                p.del_batch_blocking(&[format!("t{t}_gone")]).unwrap();
            })
        })
        .collect();
    let mut per_thread = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut total = 0;
    while total < 4 * 251 {
        assert!(Instant::now() < deadline, "only {total} arrived");
        let ops = table.pops_blocking(Duration::from_millis(200));
        assert!(ops.len() <= 64);
        for op in ops {
            let key = String::from_utf8(op.key.to_vec()).unwrap();
            let t: usize = key[1..2].parse().unwrap();
            per_thread[t].push((key, op.op));
            total += 1;
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    // Each thread's operations arrive in the order it sent them.
    for (t, ops) in per_thread.iter().enumerate() {
        let expected: Vec<(String, Op)> = (0..250)
            .map(|i| (format!("t{t}_{i}"), Op::Set))
            .chain([(format!("t{t}_gone"), Op::Del)])
            .collect();
        assert_eq!(ops, &expected);
    }
    assert!(table.pops_blocking(Duration::from_millis(50)).is_empty());
}

/// The blocking methods refuse to run inside an async task (they would stall it) with an error,
/// not a panic.
#[tokio::test]
async fn blocking_inside_async_is_an_error() {
    assert!(matches!(
        Server::new_blocking("tcp://127.0.0.1:*", ServerOptions::default()),
        Err(Error::BlockingInAsync)
    ));
    let client = Client::connect(
        "tcp://127.0.0.1:1",
        ClientOptions { sync_timeout: Some(Duration::from_millis(10)), ..Default::default() },
    )
    .unwrap();
    assert!(matches!(client.wait_blocking(), Err(Error::BlockingInAsync)));
}

/// Outside a runtime, the async constructors say so instead of panicking.
#[test]
fn async_constructor_outside_runtime_is_an_error() {
    assert!(matches!(
        Client::connect("tcp://127.0.0.1:1", ClientOptions::default()),
        Err(Error::Socket(zmtp::Error::NoRuntime))
    ));
}

/// The stream face yields batches in order, each at most `pop_batch_size`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_of_batches() {
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
        .await
        .unwrap();
    let table = ConsumerStateTable::new(
        &server,
        "APPL_DB",
        "S",
        ConsumerOptions { pop_batch_size: 7, ..Default::default() },
    );
    let endpoint = server.bind().await.unwrap();
    let client = Client::connect(&endpoint, ClientOptions::default()).unwrap();
    let p = ProducerStateTable::new(&client, "APPL_DB", "S");
    let ops: Vec<Operation> = (0..100).map(|i| Operation::set(format!("k{i}"), [("f", "v")])).collect();
    p.set_batch(&ops[..50]).await.unwrap();
    for op in &ops[50..] {
        p.set_batch(std::slice::from_ref(op)).await.unwrap();
    }
    let mut got = Vec::new();
    let mut stream = Box::pin(table.stream());
    while got.len() < 100 {
        let batch = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap();
        assert!(!batch.is_empty() && batch.len() <= 7);
        got.extend(batch);
    }
    assert_eq!(got, ops);
}
