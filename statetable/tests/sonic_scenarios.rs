//! The scenarios of SONiC's own `tests/zmq_state_ut.cpp`, against a real Redis: many producers with
//! single and batch operations, with the write-through on the consumer side, on the producer side
//! and off; an oversize batch; a producer dropped right after a send; synchronous mode with its
//! errors; lazy bind; pop batch sizes; SET replace against merge; a full send queue.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::RedisServer;
use statetable::{
    Client, ClientOptions, ConsumerOptions, ConsumerStateTable, Error, Op, Operation, ProducerStateTable,
    Server, ServerOptions, WriteMode, WriteThrough, WriteThroughOptions,
};

const DB: &str = "APPL_DB";
const TABLE: &str = "ZMQ_PROD_CONS_UT";
const PRODUCERS: usize = 5;
const OPS: usize = 100;
const FIELDS: usize = 10;
const KEYS: usize = 10;

fn fields() -> Vec<(String, String)> {
    // SONiC's value(0) is empty.
    (0..FIELDS)
        .map(|j| (format!("field {j}"), if j == 0 { String::new() } else { format!("value {j}") }))
        .collect()
}

fn expected_fields() -> std::collections::BTreeMap<String, String> {
    fields().into_iter().collect()
}

#[derive(Default, Debug, PartialEq)]
struct Counts {
    set: usize,
    del: usize,
    batch_set: usize,
    batch_del: usize,
}

impl Counts {
    fn add(&mut self, op: &Operation) {
        let key = std::str::from_utf8(&op.key).unwrap();
        if key.starts_with("batch_set_key_") {
            assert_eq!((op.op, op.fields.len()), (Op::Set, FIELDS));
            self.batch_set += 1;
        } else if key.starts_with("set_key_") {
            assert_eq!((op.op, op.fields.len()), (Op::Set, FIELDS));
            self.set += 1;
        } else if key.starts_with("batch_del_key_") {
            assert_eq!(op.op, Op::Del);
            self.batch_del += 1;
        } else if key.starts_with("del_key_") {
            assert_eq!(op.op, Op::Del);
            self.batch_del += 0;
            self.del += 1;
        } else {
            panic!("unexpected key {key}");
        }
    }

    fn all() -> Counts {
        Counts {
            set: PRODUCERS * OPS,
            del: PRODUCERS * OPS,
            batch_set: PRODUCERS * OPS * KEYS,
            batch_del: PRODUCERS * OPS * KEYS,
        }
    }

    fn done(&self) -> bool {
        self.set + self.del + self.batch_set + self.batch_del >= PRODUCERS * OPS * (2 + 2 * KEYS)
    }
}

/// SONiC's `producerWorker`: 100 sets, 100 dels, 100 batch sets of 10 keys, 100 batch dels of 10.
/// It hands the table back: the client's LINGER is 0 (SONiC's), so a producer dropped before the
/// consumer has everything loses what is still queued; SONiC's test keeps its producers too.
async fn producer_worker(p: ProducerStateTable) -> ProducerStateTable {
    let f = fields();
    for i in 0..OPS {
        p.set(format!("set_key_{i}").as_bytes(), &f).await.unwrap();
    }
    for i in 0..OPS {
        p.del(format!("del_key_{i}").as_bytes()).await.unwrap();
    }
    for i in 0..OPS {
        let ops: Vec<Operation> =
            (0..KEYS).map(|j| Operation::set(format!("batch_set_key_{i}_{j}"), f.clone())).collect();
        p.set_batch(&ops).await.unwrap();
    }
    for i in 0..OPS {
        let keys: Vec<String> = (0..KEYS).map(|j| format!("batch_del_key_{i}_{j}")).collect();
        p.del_batch(&keys).await.unwrap();
    }
    p
}

/// SONiC's `producerBatchWorker`: everything in one message.
async fn producer_batch_worker(p: ProducerStateTable) -> ProducerStateTable {
    let f = fields();
    let mut ops = Vec::new();
    ops.extend((0..OPS).map(|i| Operation::set(format!("set_key_{i}"), f.clone())));
    ops.extend((0..OPS).map(|i| Operation::del(format!("del_key_{i}"))));
    for i in 0..OPS {
        ops.extend((0..KEYS).map(|j| Operation::set(format!("batch_set_key_{i}_{j}"), f.clone())));
    }
    for i in 0..OPS {
        ops.extend((0..KEYS).map(|j| Operation::del(format!("batch_del_key_{i}_{j}"))));
    }
    p.set_batch(&ops).await.unwrap();
    p
}

#[derive(Clone, Copy, PartialEq)]
enum Persist {
    Off,
    Consumer,
    Producer,
}

async fn run_many(persist: Persist, batch: bool) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let redis = RedisServer::start();
    let wt_options = WriteThroughOptions { mode: WriteMode::Replace, ..Default::default() };
    let consumer_wt = match persist {
        Persist::Consumer => Some(WriteThrough::connect(&redis.url(0), wt_options.clone()).await.unwrap()),
        _ => None,
    };
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
        .await
        .unwrap();
    let table = ConsumerStateTable::new(
        &server,
        DB,
        TABLE,
        ConsumerOptions { pop_batch_size: 128, write_through: consumer_wt.clone(), ..Default::default() },
    );
    let endpoint = server.bind().await.unwrap();

    let mut producers = Vec::new();
    let mut producer_wts = Vec::new();
    for _ in 0..PRODUCERS {
        let client = Client::connect(&endpoint, ClientOptions::default()).unwrap();
        let mut p = ProducerStateTable::new(&client, DB, TABLE);
        if persist == Persist::Producer {
            let wt = WriteThrough::connect(&redis.url(0), wt_options.clone()).await.unwrap();
            producer_wts.push(wt.clone());
            p = p.with_write_through(wt);
        }
        producers.push(tokio::spawn(if batch {
            producer_batch_worker(p).boxed()
        } else {
            producer_worker(p).boxed()
        }));
    }

    let mut counts = Counts::default();
    while !counts.done() {
        let ops = match tokio::time::timeout(Duration::from_secs(30), table.next_batch()).await {
            Ok(ops) => ops,
            Err(_) => {
                for p in producers {
                    if p.is_finished() {
                        p.await.unwrap();
                    }
                }
                panic!("operations stopped at {counts:?}, server {:?}", server.stats());
            }
        };
        assert!(ops.len() <= 128);
        for op in &ops {
            counts.add(op);
        }
    }
    assert_eq!(counts, Counts::all());
    for p in producers {
        p.await.unwrap();
    }
    for wt in consumer_wt.iter().chain(&producer_wts) {
        wt.shutdown().await;
        assert_eq!(wt.stats().failed, 0);
    }

    let keys = redis.keys(0, &format!("{TABLE}:*"));
    let set = keys.iter().filter(|k| k.starts_with(&format!("{TABLE}:set_key_"))).count();
    let batch_set = keys.iter().filter(|k| k.starts_with(&format!("{TABLE}:batch_set_key_"))).count();
    if persist == Persist::Off {
        assert!(keys.is_empty(), "nothing is written without a write-through");
    } else {
        assert_eq!((set, batch_set, keys.len()), (OPS, OPS * KEYS, OPS + OPS * KEYS));
        assert_eq!(redis.hgetall(0, &format!("{TABLE}:set_key_7")), expected_fields());
        assert_eq!(redis.hgetall(0, &format!("{TABLE}:batch_set_key_99_9")), expected_fields());
    }
    assert_eq!(server.stats().malformed, 0);
}

use futures::FutureExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_state_table_with_consumer_write_through() {
    run_many(Persist::Consumer, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_state_table_with_producer_write_through() {
    run_many(Persist::Producer, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_state_table_batch_with_consumer_write_through() {
    run_many(Persist::Consumer, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_state_table_batch_with_producer_write_through() {
    run_many(Persist::Producer, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_producers_without_write_through() {
    run_many(Persist::Off, false).await;
}

/// SONiC's `ZmqConsumerStateTableBatchBufferOverflow`: a batch of 16 MiB or more is refused with an
/// error, and nothing is sent.
#[tokio::test]
async fn oversize_batch_is_refused() {
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
        .await
        .unwrap();
    let table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    let endpoint = server.bind().await.unwrap();
    let client = Client::connect(&endpoint, ClientOptions::default()).unwrap();
    let p = ProducerStateTable::new(&client, DB, TABLE);
    // 600,000 DELs of a 16-byte key: 33 bytes each on the wire, 19.8 MB in all.
    let keys = vec![&b"key-0123456789ab"[..]; 600_000];
    match p.del_batch(&keys).await {
        Err(Error::Encode(statetable::wire::EncodeError::TooLarge { max, .. })) => assert_eq!(max, 16 << 20),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let ops = vec![Operation::del("key-0123456789ab"); 600_000];
    assert!(matches!(p.set_batch(&ops).await, Err(Error::Encode(_))));
    // The producer still works, and the refused batches never went out.
    p.del(b"after").await.unwrap();
    let ops = tokio::time::timeout(Duration::from_secs(10), table.next_batch()).await.unwrap();
    assert_eq!(ops, vec![Operation::del("after")]);
    assert_eq!(server.stats().messages, 1);
}

/// SONiC's `ZmqProducerStateTableDeleteAfterSend`: a producer dropped right after a send still
/// gets its write-through into Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_after_send_still_persisted() {
    let redis = RedisServer::start();
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions::default()).await.unwrap();
    let _table = ConsumerStateTable::new(&server, DB, "ZMQ_PROD_DELETE_UT", ConsumerOptions::default());
    let client = Client::connect(&server.bound_endpoint().unwrap(), ClientOptions::default()).unwrap();
    {
        let wt = WriteThrough::connect(&redis.url(0), WriteThroughOptions::default()).await.unwrap();
        let p = ProducerStateTable::new(&client, DB, "ZMQ_PROD_DELETE_UT").with_write_through(wt);
        p.set(b"testKey", &[("test", "test")]).await.unwrap();
    }
    let r = &redis;
    tokio::task::spawn_blocking({
        let url = r.url(0);
        move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            loop {
                let keys: Vec<String> = redis::cmd("KEYS").arg("ZMQ_PROD_DELETE_UT:*").query(&mut c).unwrap();
                if keys == ["ZMQ_PROD_DELETE_UT:testKey"] {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "not persisted: {keys:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(redis.hgetall(0, "ZMQ_PROD_DELETE_UT:testKey").get("test").map(String::as_str), Some("test"));
}

fn kfv() -> Vec<Operation> {
    vec![Operation::set("k", [("f", "v")])]
}

/// SONiC's `ZmqOneToOneSync`: each message waits for the consumer's reply, whose content is the
/// application's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_sync() {
    let server = Arc::new(
        Server::new("tcp://127.0.0.1:*", ServerOptions { sync: true, lazy_bind: true, ..Default::default() })
            .await
            .unwrap(),
    );
    let table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    let endpoint = server.bind().await.unwrap();
    let replier = server.replier();
    let consumer = tokio::spawn(async move {
        for _ in 0..3 {
            let ops = table.next_batch().await;
            assert_eq!(ops, kfv());
            replier.reply(DB.as_bytes(), TABLE.as_bytes(), &kfv()).unwrap();
        }
    });
    let client = Client::connect(
        &endpoint,
        ClientOptions { sync_timeout: Some(Duration::from_secs(10)), ..Default::default() },
    )
    .unwrap();
    let p = ProducerStateTable::new(&client, DB, TABLE);
    for _ in 0..3 {
        p.set_batch(&kfv()).await.unwrap();
        let reply = p.wait().await.unwrap().expect("a reply");
        assert_eq!((reply.db.as_ref(), reply.table.as_ref()), (DB.as_bytes(), TABLE.as_bytes()));
        assert_eq!(reply.ops, kfv());
    }
    consumer.await.unwrap();
}

/// SONiC's `ZmqOneToOneSyncClientError`: without a server, the wait times out; a second send
/// before a reply is an error. Unlike SONiC's, whose socket then stays stuck, ours can send again
/// after the timeout.
#[tokio::test]
async fn one_to_one_sync_client_errors() {
    let port = common::free_port();
    let client = Client::connect(
        &format!("tcp://127.0.0.1:{port}"),
        ClientOptions { sync_timeout: Some(Duration::from_millis(300)), ..Default::default() },
    )
    .unwrap();
    let p = ProducerStateTable::new(&client, DB, TABLE);
    p.set_batch(&kfv()).await.unwrap();
    assert!(matches!(p.set_batch(&kfv()).await, Err(Error::AwaitingReply)));
    assert!(p.wait().await.unwrap().is_none(), "no server: the wait times out");
    // The lazy-pirate reset: the next send goes, and this time a server answers it.
    let server = Server::new(
        &format!("tcp://127.0.0.1:{port}"),
        ServerOptions { sync: true, lazy_bind: true, ..Default::default() },
    )
    .await
    .unwrap();
    let table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    server.bind().await.unwrap();
    p.set_batch(&kfv()).await.unwrap();
    let ops = tokio::time::timeout(Duration::from_secs(10), table.next_batch()).await.unwrap();
    assert_eq!(ops, kfv());
    server.reply(DB.as_bytes(), TABLE.as_bytes(), &[]).unwrap();
    let reply = p.wait().await.unwrap().expect("the fresh socket's request is answered");
    assert!(reply.ops.is_empty());
    // A PUSH-mode client has no wait.
    let push = Client::connect(&format!("tcp://127.0.0.1:{port}"), ClientOptions::default()).unwrap();
    assert!(matches!(push.wait().await, Err(Error::NotSynchronous(_))));
}

/// SONiC's `ZmqOneToOneSyncServerError`: a reply with no request is an error.
#[tokio::test]
async fn one_to_one_sync_server_error() {
    let server =
        Server::new("tcp://127.0.0.1:*", ServerOptions { sync: true, ..Default::default() }).await.unwrap();
    let _table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    assert!(matches!(server.reply(DB.as_bytes(), TABLE.as_bytes(), &kfv()), Err(Error::NoRequest)));
    let push = Server::new("tcp://127.0.0.1:*", ServerOptions::default()).await.unwrap();
    assert!(matches!(push.reply(b"db", b"table", &[]), Err(Error::NotSynchronous(_))));
}

/// SONiC's `ZmqClientCleanupDuringSync`: the client goes away before the reply; replying does not
/// hang or fail the server, and the server goes on serving a new client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cleanup_during_sync() {
    let server =
        Server::new("tcp://127.0.0.1:*", ServerOptions { sync: true, lazy_bind: true, ..Default::default() })
            .await
            .unwrap();
    let table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    let endpoint = server.bind().await.unwrap();
    let options = ClientOptions { sync_timeout: Some(Duration::from_secs(10)), ..Default::default() };
    {
        let client = Client::connect(&endpoint, options.clone()).unwrap();
        ProducerStateTable::new(&client, DB, TABLE).set_batch(&kfv()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), table.next_batch()).await.unwrap();
        client.close().await;
    }
    let mut ok = 0;
    for _ in 0..=200 {
        match server.reply(DB.as_bytes(), TABLE.as_bytes(), &kfv()) {
            Ok(()) => ok += 1,
            Err(Error::NoRequest) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1, "one request, one reply");
    let client = Client::connect(&endpoint, options).unwrap();
    let p = ProducerStateTable::new(&client, DB, TABLE);
    p.set_batch(&kfv()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), table.next_batch()).await.unwrap();
    server.reply(DB.as_bytes(), TABLE.as_bytes(), &[]).unwrap();
    assert!(p.wait().await.unwrap().unwrap().ops.is_empty());
}

/// SONiC's `ZmqServerLazzyBind`: a message sent before the server binds is received once it does.
#[tokio::test]
async fn lazy_bind_receives_early_messages() {
    let port = common::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let client = Client::connect(&endpoint, ClientOptions::default()).unwrap();
    let p = ProducerStateTable::new(&client, DB, TABLE);
    p.set_batch(&[Operation::set("testkey", Vec::<(Bytes, Bytes)>::new())]).await.unwrap();
    let server =
        Server::new(&endpoint, ServerOptions { lazy_bind: true, ..Default::default() }).await.unwrap();
    let table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    server.bind().await.unwrap();
    let ops = tokio::time::timeout(Duration::from_secs(20), table.next_batch()).await.unwrap();
    // A SET without fields goes out as a DEL, as in SONiC.
    assert_eq!(ops, vec![Operation::del("testkey")]);
    assert!(matches!(server.bind().await, Err(Error::AlreadyBound(_))));
}

/// SONiC's `ZmqConsumerStateTablePopSize`: 150 operations with a batch size of 40 pop as 40, 40,
/// 40, 30; 384 with the default (a non-positive size in SONiC) as 128 × 3.
#[tokio::test]
async fn pop_batch_sizes() {
    for (batch, n, expected) in [(40usize, 150usize, vec![40, 40, 40, 30]), (0, 384, vec![128, 128, 128])] {
        let server =
            Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
                .await
                .unwrap();
        let table = ConsumerStateTable::new(
            &server,
            DB,
            "ZMQ_BATCH_SIZE_UT",
            ConsumerOptions { pop_batch_size: batch, ..Default::default() },
        );
        let endpoint = server.bind().await.unwrap();
        let client = Client::connect(&endpoint, ClientOptions::default()).unwrap();
        let ops: Vec<Operation> =
            (0..n).map(|i| Operation::set(format!("key_{i}"), [("field", "value")])).collect();
        ProducerStateTable::new(&client, DB, "ZMQ_BATCH_SIZE_UT").set_batch(&ops).await.unwrap();
        // One message: wait until all of it is queued, then pop.
        tokio::time::timeout(Duration::from_secs(10), table.readable()).await.unwrap();
        let mut sizes = Vec::new();
        loop {
            let got = table.pops();
            if got.is_empty() {
                break;
            }
            sizes.push(got.len());
        }
        assert_eq!(sizes, expected);
    }
}

/// SONiC's `AsyncDBUpdater` tests: SET replaces the hash; merge (SONiC's HSET) leaves the fields it
/// does not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_replaces_and_merge_merges() {
    let redis = RedisServer::start();
    for (mode, expected) in
        [(WriteMode::Replace, vec![("a", "9")]), (WriteMode::Merge, vec![("a", "9"), ("b", "2")])]
    {
        redis.hset(0, "ASYNC_DB_UPDATER_UT:key", &[("a", "1"), ("b", "2")]);
        let wt = WriteThrough::connect(&redis.url(0), WriteThroughOptions { mode, ..Default::default() })
            .await
            .unwrap();
        wt.update(&Bytes::from_static(b"ASYNC_DB_UPDATER_UT"), [Operation::set("key", [("a", "9")])]);
        wt.shutdown().await;
        let got = redis.hgetall(0, "ASYNC_DB_UPDATER_UT:key");
        let expected: std::collections::BTreeMap<String, String> =
            expected.into_iter().map(|(f, v)| (f.to_owned(), v.to_owned())).collect();
        assert_eq!(got, expected, "{mode:?}");
        let wt = WriteThrough::connect(&redis.url(0), WriteThroughOptions { mode, ..Default::default() })
            .await
            .unwrap();
        wt.update(&Bytes::from_static(b"ASYNC_DB_UPDATER_UT"), [Operation::del("key")]);
        wt.flush().await;
        assert!(redis.keys(0, "ASYNC_DB_UPDATER_UT:*").is_empty());
    }
}

/// SONiC's `TriggerEAGAINOnFullBuffer` on the producer side: with nobody to take them, sends fill
/// the queue, then back off and fail with the error SONiC throws after its retries.
#[tokio::test]
async fn full_queue_fails_after_retries() {
    let port = common::free_port();
    let client = Client::connect(
        &format!("tcp://127.0.0.1:{port}"),
        ClientOptions {
            send_hwm: 100,
            retries: 3,
            retry_base: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let p = ProducerStateTable::new(&client, DB, TABLE);
    let mut sent = 0;
    let error = loop {
        match p.del(b"k").await {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent <= 10_000, "the queue never filled");
    };
    match error {
        Error::QueueFull { attempts, waited, connected, .. } => {
            assert_eq!(attempts, 4);
            // Each pause waits for room for up to 2ⁿ ms: 2 + 4 + 8 in all, at least.
            assert!(waited >= Duration::from_millis(2 + 4 + 8), "{waited:?}");
            assert!(!connected);
        }
        other => panic!("expected QueueFull, got {other}"),
    }
    assert!(sent <= 101, "at most the HWM is queued: {sent}");
}

/// Synchronous mode, better than SONiC: a request the server cannot hand to anyone (for a table
/// without a handler, or malformed) is answered at once with an empty batch, so the producer's wait
/// ends and the next request goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_server_answers_what_it_cannot_hand_over() {
    let server =
        Server::new("tcp://127.0.0.1:*", ServerOptions { sync: true, lazy_bind: true, ..Default::default() })
            .await
            .unwrap();
    let table = ConsumerStateTable::new(&server, DB, TABLE, ConsumerOptions::default());
    let endpoint = server.bind().await.unwrap();
    let client = Client::connect(
        &endpoint,
        ClientOptions { sync_timeout: Some(Duration::from_secs(10)), ..Default::default() },
    )
    .unwrap();
    client.send(DB.as_bytes(), b"NOBODY", &kfv()).await.unwrap();
    let reply = client.wait().await.unwrap().expect("answered");
    assert_eq!((reply.table.as_ref(), reply.ops.len()), (&b"NOBODY"[..], 0));
    client.send_raw(Bytes::from_static(b"\x05\x00\x00\x00\x00\x00\x00\x00garbage")).await.unwrap();
    let reply = client.wait().await.unwrap().expect("answered");
    assert!(reply.db.is_empty() && reply.table.is_empty() && reply.ops.is_empty());
    client.send(DB.as_bytes(), TABLE.as_bytes(), &kfv()).await.unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), table.next_batch()).await.unwrap(), kfv());
    server.reply(DB.as_bytes(), TABLE.as_bytes(), &kfv()).unwrap();
    assert_eq!(client.wait().await.unwrap().unwrap().ops, kfv());
    let stats = server.stats();
    assert_eq!((stats.messages, stats.unknown_table, stats.malformed, stats.operations), (3, 1, 1, 1));
}
