//! Interop with an independent implementation of the format: `tests/peers/statetable_peer.py`
//! (pyzmq + `struct`, written from the format's description, sharing no code with this crate).
//!
//! - Python producer → the `statetable-consumer` binary → a real Redis (replace and merge), checked
//!   key by key and field by field against a model of what the operations must leave.
//! - The `statetable-producer` binary → Python consumer, every operation checked in order, one per
//!   message and 16 per message.
//! - The library in process: `ProducerStateTable` → Python consumer; Python producer → `Server` and
//!   `ConsumerStateTable`.
//! - Golden: the same batch encoded by Python and by `statetable::wire::encode` is the same bytes,
//!   and both match vectors written by hand from the description; both decoders give the same
//!   verdict on thousands of damaged messages.
//!
//! Needs pyzmq (`$ZMTP_PYTHON`, or the `.venv` of `scripts/ensure-pyzmq.sh`) and `redis-server`
//! (scripts/test-all.sh installs both).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{
    del_line, feed, python_peer, run_producer, set_line, Consumer, Exited, Proc, RedisServer, STEP,
};
use statetable::{
    Client, ClientOptions, ConsumerOptions, ConsumerStateTable, Op, Operation, ProducerStateTable, Server,
    ServerOptions,
};

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// How the JSON strings of an input become bytes (the Python peer's `--encoding`; our producer
/// binary always uses UTF-8).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Enc {
    Utf8,
    Latin1,
}

impl Enc {
    fn bytes(self, s: &str) -> Vec<u8> {
        match self {
            Enc::Utf8 => s.as_bytes().to_vec(),
            Enc::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("{c:?} is not latin-1")))
                .collect(),
        }
    }

    fn bytes_pairs(self, fields: &[(String, String)]) -> Fields {
        fields.iter().map(|(f, v)| (self.bytes(f), self.bytes(v))).collect()
    }

    fn arg(self) -> &'static str {
        match self {
            Enc::Utf8 => "utf-8",
            Enc::Latin1 => "latin-1",
        }
    }
}

/// One input operation, as text.
#[derive(Debug, Clone)]
struct In {
    key: String,
    /// `None` for a DEL.
    fields: Option<Vec<(String, String)>>,
}

fn set<K: Into<String>, F: Into<String>, V: Into<String>>(
    key: K,
    fields: impl IntoIterator<Item = (F, V)>,
) -> In {
    In { key: key.into(), fields: Some(fields.into_iter().map(|(f, v)| (f.into(), v.into())).collect()) }
}

fn del(key: impl Into<String>) -> In {
    In { key: key.into(), fields: None }
}

impl In {
    fn line(&self) -> String {
        match &self.fields {
            Some(f) => set_line(&self.key, f),
            None => del_line(&self.key),
        }
    }

    /// What arrives: a SET with no fields is a DEL on the wire.
    fn expect(&self, enc: Enc) -> Want {
        let fields = self.fields.as_ref().filter(|f| !f.is_empty());
        Want {
            key: enc.bytes(&self.key),
            fields: fields.map(|f| f.iter().map(|(f, v)| (enc.bytes(f), enc.bytes(v))).collect()),
        }
    }
}

/// One operation as it must arrive: `fields` is `None` for a DEL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    key: Vec<u8>,
    fields: Option<Fields>,
}

impl Want {
    fn of(op: &Operation) -> Want {
        Want {
            key: op.key.to_vec(),
            fields: match op.op {
                Op::Del => None,
                Op::Set => Some(op.fields.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
            },
        }
    }
}

fn lines(ops: &[In]) -> Vec<String> {
    ops.iter().map(In::line).collect()
}

/// The fields of a SET with `n` fields `f00`…, values `<key>-v00`… (sorted by name, so that the order
/// is the same whatever order a JSON object is read in).
fn fields_n(key: &str, n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("f{i:02}"), format!("{key}-v{i:02}"))).collect()
}

// ---------------------------------------------------------------------------------------------------
// A model of what the consumer must leave in Redis
// ---------------------------------------------------------------------------------------------------

type Hashes = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

struct Model {
    table: String,
    separator: String,
    merge: bool,
    hashes: Hashes,
    ops: u64,
}

impl Model {
    fn new(table: &str, separator: &str, merge: bool) -> Model {
        Model { table: table.into(), separator: separator.into(), merge, hashes: BTreeMap::new(), ops: 0 }
    }

    fn redis_key(&self, key: &[u8]) -> Vec<u8> {
        [self.table.as_bytes(), self.separator.as_bytes(), key].concat()
    }

    fn apply(&mut self, ops: &[In], enc: Enc) {
        for op in ops {
            let want = op.expect(enc);
            let k = self.redis_key(&want.key);
            self.ops += 1;
            match want.fields {
                None => {
                    self.hashes.remove(&k);
                }
                Some(fields) => {
                    let h = self.hashes.entry(k).or_default();
                    if !self.merge {
                        h.clear();
                    }
                    h.extend(fields);
                }
            }
        }
    }

    /// Checks database `db` holds exactly the model: the same keys, each hash field by field.
    fn check(&self, redis: &RedisServer, db: u8) {
        let keys = redis.keys_bytes(db, "*");
        let want: Vec<&Vec<u8>> = self.hashes.keys().collect();
        assert_eq!(
            keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>(),
            want.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>(),
            "keys of redis db {db}"
        );
        for (k, fields) in &self.hashes {
            let got = redis.hgetall_bytes(db, k);
            for (f, v) in fields {
                assert_eq!(
                    got.get(f).map(|v| String::from_utf8_lossy(v).into_owned()),
                    Some(String::from_utf8_lossy(v).into_owned()),
                    "field {:?} of {:?} (raw {f:?} = {v:?})",
                    String::from_utf8_lossy(f),
                    String::from_utf8_lossy(k)
                );
                assert_eq!(got.get(f), Some(v), "field {f:?} of {k:?}, bytes");
            }
            assert_eq!(got.len(), fields.len(), "fields of {:?}: {got:?}", String::from_utf8_lossy(k));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The Python peer
// ---------------------------------------------------------------------------------------------------

const PEER: &str = "statetable_peer";

/// Runs the Python producer with `ops` on stdin and checks it sent them all.
fn py_produce(endpoint: &str, db: &str, table: &str, batch: usize, enc: Enc, ops: &[In]) {
    let batch = batch.to_string();
    let mut p = python_peer(
        PEER,
        [
            "produce",
            "--connect",
            endpoint,
            "--db",
            db,
            "--table",
            table,
            "--batch",
            &batch,
            "--encoding",
            enc.arg(),
        ],
    );
    feed(&mut p, &lines(ops));
    let status = p.expect_exit(common::EXIT);
    assert!(status.success(), "python producer: {status}\n{}", p.transcript());
    let messages = ops.len().div_ceil(batch.parse::<usize>().expect("batch"));
    p.wait_stdout(0, &[&format!("SENT {} {messages}", ops.len())], STEP);
}

/// Starts the Python consumer for `count` operations; returns it and its endpoint.
fn py_consume(count: usize) -> (Proc, String) {
    let mut p = python_peer(
        PEER,
        ["consume", "--bind", "tcp://127.0.0.1:*", "--count", &count.to_string(), "--timeout", "60"],
    );
    let (_, ready) = p.wait_stdout(0, &["READY "], STEP);
    let endpoint = ready.trim_start_matches("READY ").trim().to_owned();
    (p, endpoint)
}

/// One operation as the Python consumer printed it.
#[derive(Debug)]
struct PyOp {
    db: Vec<u8>,
    table: Vec<u8>,
    msg: u64,
    want: Want,
}

fn latin1(v: &serde_json::Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    Enc::Latin1.bytes(s)
}

/// Waits for the Python consumer's `count` operations and its exit 0, and parses them.
fn py_collect(p: &mut Proc, count: usize) -> Vec<PyOp> {
    let status = p.expect_exit(Duration::from_secs(60));
    assert!(status.success(), "python consumer: {status}\n{}", p.transcript());
    let mut ops = Vec::new();
    for line in p.stdout().iter().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("malformed").is_none(), "python consumer refused a message: {line}");
        let fields =
            v["fields"].as_array().expect("fields").iter().map(|fv| (latin1(&fv[0]), latin1(&fv[1])));
        let op = v["op"].as_str().expect("op");
        ops.push(PyOp {
            db: latin1(&v["db"]),
            table: latin1(&v["table"]),
            msg: v["msg"].as_u64().expect("msg"),
            want: Want {
                key: latin1(&v["key"]),
                fields: match op {
                    "del" => None,
                    "set" => Some(fields.collect()),
                    other => panic!("op {other}"),
                },
            },
        });
    }
    assert_eq!(ops.len(), count, "operations the python consumer printed\n{}", p.transcript());
    ops
}

/// Checks what the Python consumer got: `want` in order, on `db`/`table`, `batch` per message.
fn check_py_ops(got: &[PyOp], db: &str, table: &str, batch: usize, want: &[Want]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.db, db.as_bytes(), "db of op {i}");
        assert_eq!(g.table, table.as_bytes(), "table of op {i}");
        assert_eq!(g.want, *w, "op {i}");
        assert_eq!(g.msg, (i / batch) as u64, "message of op {i} (batches of {batch})");
    }
}

// ---------------------------------------------------------------------------------------------------
// (a) Python producer → statetable-consumer → Redis
// ---------------------------------------------------------------------------------------------------

/// Waits for the sentinel SET `key` to be in Redis: operations are applied in order, so everything
/// the producer sent before it is applied too.
fn sentinel(n: u32) -> In {
    set(format!("__done{n}__"), [("ok", "1")])
}

fn wait_sentinel(redis: &RedisServer, db: u8, model: &Model, n: u32) {
    let key = model.redis_key(format!("__done{n}__").as_bytes());
    redis.wait_key(db, &key, STEP);
}

/// Checks the consumer's exit after SIGTERM: 0, with every operation received and nothing refused.
fn check_stopped(exited: &Exited, ops: u64) {
    assert!(
        exited.status.success(),
        "consumer exit after SIGTERM: {}\n{}",
        exited.status,
        exited.log.join("\n")
    );
    let line =
        exited.log_line(" stopped").unwrap_or_else(|| panic!("no stopped line\n{}", exited.log.join("\n")));
    assert_eq!(common::log_field(line, "operations"), Some(ops.to_string().as_str()), "{line}");
    assert_eq!(common::log_field(line, "written"), Some(ops.to_string().as_str()), "{line}");
    for zero in ["malformed", "unknown_table", "peers_dropped", "failed"] {
        assert_eq!(common::log_field(line, zero), Some("0"), "{zero} in {line}");
    }
}

#[test]
fn python_producer_to_consumer_binary_replaces() {
    let redis = RedisServer::start();
    let db = 5;
    let consumer = Consumer::spawn(&redis.url(db), &[]);
    let ep = consumer.endpoint().to_owned();
    let table = "ROUTE_TABLE";
    let mut model = Model::new(table, ":", false);

    // One operation per message, UTF-8.
    let mut run1 = vec![
        set("ten", fields_n("ten", 10)),
        set("empty-values", [("a", ""), ("b", "")]),
        set("ключ", [("名前", "値"), ("émoji", "🦀"), ("ascii", "plain")]),
        set("replace", [("a", "1"), ("b", "2"), ("c", "3")]),
        set("replace", [("a", "10"), ("d", "4")]),
        set("gone", [("x", "1")]),
        del("gone"),
        del("never-was"),
        set("10.0.0.0/24:with|separators and spaces", [("nexthop", "10.1.0.1"), ("ifname", "Ethernet0")]),
        set("", [("empty", "key")]),
    ];
    run1.push(sentinel(1));
    py_produce(&ep, "APPL_DB", table, 1, Enc::Utf8, &run1);
    model.apply(&run1, Enc::Utf8);
    wait_sentinel(&redis, db, &model, 1);

    // Bytes that are not UTF-8 (latin-1 maps each char to one byte), NUL included.
    let run2 = vec![
        set("bin\u{ff}\u{80}key", [("f\u{0}\u{1}", "\u{ff}\u{fe}\u{0}end"), ("\u{e9}", "\u{a0}")]),
        set("ten", [("f00", "\u{ff}")]),
        sentinel(2),
    ];
    py_produce(&ep, "APPL_DB", table, 1, Enc::Latin1, &run2);
    model.apply(&run2, Enc::Latin1);
    wait_sentinel(&redis, db, &model, 2);

    // 16 operations per message: SETs, DELs, and a key set twice in one message.
    let mut run3: Vec<In> =
        (0..30).map(|i| set(format!("b{i:02}"), fields_n(&format!("b{i:02}"), i % 12 + 1))).collect();
    run3.push(set("b29", [("n", "last")])); // in the same message as b29's first SET (16..31)
    run3.extend((0..10).map(|i| del(format!("b{i:02}"))));
    run3.push(sentinel(3));
    assert_eq!(run3.len(), 42); // 3 messages: 16, 16, 10
    py_produce(&ep, "APPL_DB", table, 16, Enc::Utf8, &run3);
    model.apply(&run3, Enc::Utf8);
    wait_sentinel(&redis, db, &model, 3);

    model.check(&redis, db);
    assert_eq!(
        redis.hgetall(db, "ROUTE_TABLE:replace"),
        BTreeMap::from([("a".into(), "10".into()), ("d".into(), "4".into())])
    );
    assert!(!redis.exists(db, b"ROUTE_TABLE:gone"));
    for other in [0, 1, 4, 6] {
        assert_eq!(redis.dbsize(other), 0, "redis db {other} must stay empty: {:?}", redis.keys(other, "*"));
    }

    let exited = consumer.terminate();
    check_stopped(&exited, model.ops);
    // What was written stays after the consumer is gone.
    model.check(&redis, db);
}

#[test]
fn python_producer_to_consumer_binary_merges() {
    let redis = RedisServer::start();
    let db = 3;
    let consumer = Consumer::spawn(&redis.url(db), &["--merge", "--separator", "|"]);
    let ep = consumer.endpoint().to_owned();
    let table = "PORT_TABLE";
    let mut model = Model::new(table, "|", true);

    let run1 = vec![
        set("Ethernet0", [("admin_status", "up"), ("mtu", "9100")]),
        set("Ethernet0", [("mtu", "1500"), ("speed", "100000")]),
        set("Ethernet4", [("x", "1")]),
        del("Ethernet4"),
        set("Ethernet4", [("y", "2")]),
        sentinel(1),
    ];
    py_produce(&ep, "CONFIG_DB", table, 1, Enc::Utf8, &run1);
    model.apply(&run1, Enc::Utf8);
    wait_sentinel(&redis, db, &model, 1);
    assert_eq!(
        redis.hgetall(db, "PORT_TABLE|Ethernet0"),
        BTreeMap::from([
            ("admin_status".into(), "up".into()),
            ("mtu".into(), "1500".into()),
            ("speed".into(), "100000".into())
        ])
    );

    // In messages of 16: one field at a time onto the same key, which must merge into one hash.
    let mut run2: Vec<In> =
        (0..20).map(|i| set("Ethernet8", [(format!("f{i:02}"), format!("v{i}"))])).collect();
    run2.push(set("Ethernet8", [("f00", "again")]));
    run2.push(sentinel(2));
    py_produce(&ep, "CONFIG_DB", table, 16, Enc::Utf8, &run2);
    model.apply(&run2, Enc::Utf8);
    wait_sentinel(&redis, db, &model, 2);

    model.check(&redis, db);
    assert_eq!(redis.hgetall(db, "PORT_TABLE|Ethernet8").len(), 20);
    assert_eq!(redis.dbsize(0), 0, "redis db 0 must stay empty");
    check_stopped(&consumer.terminate(), model.ops);
}

// ---------------------------------------------------------------------------------------------------
// (b) statetable-producer → Python consumer
// ---------------------------------------------------------------------------------------------------

/// A mix of every kind of operation, 50 of them.
fn mixed_ops() -> Vec<In> {
    let mut ops = vec![
        set("ten", fields_n("ten", 10)),
        set("empty-values", [("a", ""), ("b", "")]),
        set("utf8-ключ", [("ascii", "plain"), ("émoji", "🦀"), ("名前", "値")]),
        del("ten"),
        set("no-fields", Vec::<(String, String)>::new()), // a DEL on the wire
        set("", [("empty", "key")]),
        // Fields go out in the order written, not sorted.
        set("unsorted", [("zeta", "1"), ("alpha", "2"), ("mid", "3")]),
    ];
    for i in 0..44 {
        let key = format!("k{i:02}");
        ops.push(if i % 5 == 4 { del(key) } else { set(key.clone(), fields_n(&key, i % 11 + 1)) });
    }
    ops
}

fn producer_binary_to_python(batch: usize) {
    let ops = mixed_ops();
    let (mut py, ep) = py_consume(ops.len());
    let args = ["--batch".to_owned(), batch.to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exited = run_producer(&ep, "APPL_DB", "ROUTE_TABLE", &args, &lines(&ops));
    assert!(exited.status.success(), "producer: {}\n{}", exited.status, exited.log.join("\n"));
    let got = py_collect(&mut py, ops.len());
    let want: Vec<Want> = ops.iter().map(|o| o.expect(Enc::Utf8)).collect();
    check_py_ops(&got, "APPL_DB", "ROUTE_TABLE", batch, &want);
}

#[test]
fn producer_binary_to_python_consumer_one_per_message() {
    producer_binary_to_python(1);
}

#[test]
fn producer_binary_to_python_consumer_batches_of_16() {
    producer_binary_to_python(16);
}

// ---------------------------------------------------------------------------------------------------
// (c) the library in process
// ---------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_producer_to_python_consumer() {
    let ten: Vec<(String, String)> = fields_n("lib", 10);
    let bin_fields = vec![(Bytes::from_static(b"f\xff\x00"), Bytes::from_static(b"\x80\x81"))];
    let batch = vec![
        Operation::set("b1", [("x", "1")]),
        Operation::del("b2"),
        Operation::set(Bytes::from_static(b"b3\xfe"), bin_fields.clone()),
    ];
    // (operations, message) in the order sent.
    let mut want: Vec<(Want, u64)> = Vec::new();
    want.push((Want { key: b"ten".to_vec(), fields: Some(Enc::Utf8.bytes_pairs(&ten)) }, 0));
    want.push((Want { key: b"empty".to_vec(), fields: Some(vec![(b"a".to_vec(), Vec::new())]) }, 1));
    want.push((Want { key: b"gone".to_vec(), fields: None }, 2));
    for op in &batch {
        want.push((Want::of(op), 3));
    }
    want.push((Want { key: b"d1".to_vec(), fields: None }, 4));
    want.push((Want { key: b"d2".to_vec(), fields: None }, 4));
    want.push((Want { key: "ключ".as_bytes().to_vec(), fields: Some(vec![("é".into(), "🦀".into())]) }, 5));

    let (mut py, ep) = tokio::task::block_in_place(|| py_consume(want.len()));
    let client = Client::connect(&ep, ClientOptions::default()).unwrap();
    let producer = ProducerStateTable::new(&client, "APPL_DB", "ROUTE_TABLE");
    producer.set(b"ten", &ten).await.unwrap();
    producer.set(b"empty", &[("a", "")]).await.unwrap();
    producer.del(b"gone").await.unwrap();
    producer.set_batch(&batch).await.unwrap();
    producer.del_batch(&[b"d1", b"d2"]).await.unwrap();
    let fields: &[(&[u8], &[u8])] = &[("é".as_bytes(), "🦀".as_bytes())];
    producer.set_blocking("ключ".as_bytes(), fields).unwrap();

    let got = tokio::task::block_in_place(|| py_collect(&mut py, want.len()));
    for (i, (g, (w, msg))) in got.iter().zip(&want).enumerate() {
        assert_eq!((g.db.as_slice(), g.table.as_slice()), (&b"APPL_DB"[..], &b"ROUTE_TABLE"[..]), "op {i}");
        assert_eq!(g.want, *w, "op {i}");
        assert_eq!(g.msg, *msg, "message of op {i}");
    }
    client.close().await;
}

/// The Python consumer refuses malformed messages (each reported on a line of its own) and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_consumer_refuses_garbage_and_carries_on() {
    let (mut py, ep) = tokio::task::block_in_place(|| py_consume(1));
    let client = Client::connect(&ep, ClientOptions::default()).unwrap();
    let good = statetable::wire::encode(b"D", b"T", &[Operation::set("k", [("f", "v")])]).unwrap();
    let garbage = [
        Bytes::from_static(b"\xff\xff\xff\xff\xff\xff\xff\xff"),
        good.slice(..good.len() - 1),
        Bytes::from([good.to_vec(), vec![0]].concat()),
        Bytes::new(),
    ];
    for g in &garbage {
        client.send_raw(g.clone()).await.unwrap();
    }
    client.send_raw(good).await.unwrap();
    let status = tokio::task::block_in_place(|| py.expect_exit(STEP));
    assert!(status.success(), "python consumer: {status}\n{}", py.transcript());
    let out = py.stdout();
    let malformed = out.iter().filter(|l| l.contains("\"malformed\"")).count();
    assert_eq!(malformed, garbage.len(), "{out:?}");
    assert!(out.last().is_some_and(|l| l.contains("\"key\": \"k\"")), "{out:?}");
    client.close().await;
}

/// Pops from `table` until `n` operations arrived.
async fn pop_n(table: &ConsumerStateTable, n: usize) -> Vec<Operation> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(STEP, table.next_batch()).await {
            Ok(batch) => got.extend(batch),
            Err(_) => panic!("{} of {n} operations within {STEP:?}", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_producer_to_library_server() {
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
        .await
        .unwrap();
    let routes = ConsumerStateTable::new(&server, "APPL_DB", "ROUTE_TABLE", ConsumerOptions::default());
    let ports = ConsumerStateTable::new(
        &server,
        "APPL_DB",
        "PORT_TABLE",
        ConsumerOptions { pop_batch_size: 7, ..Default::default() },
    );
    let ep = server.bind().await.unwrap();

    let route_ops = mixed_ops();
    let e = ep.clone();
    let r = route_ops.clone();
    tokio::task::spawn_blocking(move || py_produce(&e, "APPL_DB", "ROUTE_TABLE", 1, Enc::Utf8, &r))
        .await
        .unwrap();
    let got = pop_n(&routes, route_ops.len()).await;
    for (i, (g, w)) in got.iter().zip(&route_ops).enumerate() {
        assert_eq!(Want::of(g), w.expect(Enc::Utf8), "route op {i}");
    }

    // Batches of 16, bytes that are not UTF-8, popped 7 at a time.
    let mut port_ops: Vec<In> =
        (0..40).map(|i| set(format!("Ethernet{i}\u{ff}"), fields_n("\u{e9}", i % 4 + 1))).collect();
    port_ops.extend((0..8).map(|i| del(format!("Ethernet{i}\u{ff}"))));
    let e = ep.clone();
    let p = port_ops.clone();
    tokio::task::spawn_blocking(move || py_produce(&e, "APPL_DB", "PORT_TABLE", 16, Enc::Latin1, &p))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < port_ops.len() {
        let batch = tokio::time::timeout(STEP, ports.next_batch()).await.expect("port operations");
        assert!(batch.len() <= 7, "pop batch size 7, got {}", batch.len());
        got.extend(batch);
    }
    assert_eq!(got.len(), port_ops.len());
    for (i, (g, w)) in got.iter().zip(&port_ops).enumerate() {
        assert_eq!(Want::of(g), w.expect(Enc::Latin1), "port op {i}");
    }

    // A table nobody registered is counted, not delivered.
    let e = ep.clone();
    tokio::task::spawn_blocking(move || {
        py_produce(&e, "APPL_DB", "NOBODY", 1, Enc::Utf8, &[set("k", [("f", "v")])])
    })
    .await
    .unwrap();
    tokio::task::block_in_place(|| {
        common::wait_for(STEP, "the unknown table to be counted", || server.stats().unknown_table == 1);
    });
    let stats = server.stats();
    assert_eq!(stats.malformed, 0);
    assert_eq!(stats.operations, (route_ops.len() + port_ops.len()) as u64);
    assert!(routes.is_empty() && ports.is_empty());
}

// ---------------------------------------------------------------------------------------------------
// (d) golden: the same bytes from both encoders, and both decoders agree
// ---------------------------------------------------------------------------------------------------

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[usize::from(x >> 4)]);
        s.push(DIGITS[usize::from(x & 15)]);
    }
    String::from_utf8(s).expect("ascii")
}

/// Python's encoding of `ops` (JSON lines) as one message.
fn py_encode(db: &str, table: &str, enc: Enc, ops: &[In]) -> String {
    let mut p = python_peer(PEER, ["encode", "--db", db, "--table", table, "--encoding", enc.arg()]);
    feed(&mut p, &lines(ops));
    let status = p.expect_exit(STEP);
    assert!(status.success(), "python encode: {status}\n{}", p.transcript());
    p.stdout().first().cloned().unwrap_or_else(|| panic!("python encode printed nothing\n{}", p.transcript()))
}

fn to_operation(op: &In, enc: Enc) -> Operation {
    match &op.fields {
        None => Operation::del(enc.bytes(&op.key)),
        Some(f) => Operation::set(enc.bytes(&op.key), enc.bytes_pairs(f)),
    }
}

/// The batch both encoders encode: every kind of operation, a two-digit field count, empty strings,
/// bytes that are not UTF-8, a SET with no fields (a DEL on the wire).
fn golden_ops() -> Vec<In> {
    vec![
        set("k1", [("f", "v")]),
        del("k2"),
        set("ten", fields_n("t", 12)),
        set("", [("", "")]),
        set("\u{ff}\u{0}bin", [("\u{80}", "\u{fe}\u{ff}")]),
        set("no-fields", Vec::<(String, String)>::new()),
        del(""),
    ]
}

/// The format written out by hand from its description: a u64 LE count of pairs, then each pair as
/// `[u64 LE len][bytes]` twice; pair 0 (db, table), then (key, decimal field count) and the fields.
#[test]
fn golden_vectors_by_hand() {
    let s = |t: &str| format!("{:016x}", (t.len() as u64).swap_bytes()) + &hex(t.as_bytes());
    // DEL "k" on T of D: 2 pairs.
    let del_k = format!("{:016x}", 2u64.swap_bytes()) + &s("D") + &s("T") + &s("k") + &s("0");
    assert_eq!(
        del_k,
        "0200000000000000\
         0100000000000000 44 0100000000000000 54\
         0100000000000000 6b 0100000000000000 30"
            .replace(' ', "")
    );
    // SET "k" {a: "1", b: ""} then DEL "x": 5 pairs.
    let set_k = format!("{:016x}", 5u64.swap_bytes())
        + &s("D")
        + &s("T")
        + &s("k")
        + &s("2")
        + &s("a")
        + &s("1")
        + &s("b")
        + &s("")
        + &s("x")
        + &s("0");

    let ops = [set("k", [("a", "1"), ("b", "")]), del("x")];
    let rust = statetable::wire::encode(
        b"D",
        b"T",
        &ops.iter().map(|o| to_operation(o, Enc::Utf8)).collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(hex(&rust), set_k, "rust");
    assert_eq!(py_encode("D", "T", Enc::Utf8, &ops), set_k, "python");
    assert_eq!(hex(&statetable::wire::encode(b"D", b"T", &[Operation::del("k")]).unwrap()), del_k, "rust");
    assert_eq!(py_encode("D", "T", Enc::Utf8, &[del("k")]), del_k, "python");
}

#[test]
fn golden_python_and_rust_encode_the_same_bytes() {
    let ops = golden_ops();
    let rust_ops: Vec<Operation> = ops.iter().map(|o| to_operation(o, Enc::Latin1)).collect();
    let rust = statetable::wire::encode(b"APPL_DB", b"ROUTE_TABLE", &rust_ops).unwrap();
    let python = py_encode("APPL_DB", "ROUTE_TABLE", Enc::Latin1, &ops);
    assert_eq!(python, hex(&rust), "python's encoding, then rust's");
    // Python's bytes decode to the operations (a SET without fields as a DEL).
    let frame = Bytes::from(rust.to_vec());
    let batch = statetable::wire::decode(&frame).unwrap();
    assert_eq!((&batch.db[..], &batch.table[..]), (&b"APPL_DB"[..], &b"ROUTE_TABLE"[..]));
    let want: Vec<Want> = ops.iter().map(|o| o.expect(Enc::Latin1)).collect();
    assert_eq!(batch.ops.iter().map(Want::of).collect::<Vec<_>>(), want);
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Both decoders on the same inputs: valid messages, every truncation, random damage, and hand-made
/// hostile ones. They must agree on refusing, and on what they accept; neither may hang.
#[test]
fn python_and_rust_decoders_agree() {
    let golden = statetable::wire::encode(
        b"APPL_DB",
        b"ROUTE_TABLE",
        &golden_ops().iter().map(|o| to_operation(o, Enc::Latin1)).collect::<Vec<_>>(),
    )
    .unwrap()
    .to_vec();
    let le = |n: u64| n.to_le_bytes().to_vec();
    let s = |t: &[u8]| [le(t.len() as u64), t.to_vec()].concat();
    let head = |count: u64| [le(count), s(b"D"), s(b"T")].concat();

    let mut inputs: Vec<Vec<u8>> = vec![golden.clone(), head(1), Vec::new()];
    // Every truncation.
    inputs.extend((0..golden.len()).map(|n| golden[..n].to_vec()));
    // Trailing bytes.
    inputs.push([golden.clone(), vec![0]].concat());
    // Hand-made: counts and lengths beyond the frame, field counts that are not numbers.
    inputs.push([le(u64::MAX), s(b"D"), s(b"T")].concat());
    inputs.push([le(0)].concat());
    inputs.push([le(1), le(u64::MAX), b"D".to_vec()].concat());
    inputs.push([le(1), s(b"D"), le(1 << 40), b"T".to_vec()].concat());
    for count in [
        &b"3abc"[..],
        b"-1",
        b"+1",
        b" 1",
        b"",
        b"1 ",
        b"99999999999999999999",
        b"00000000000000000001",
        b"01",
        b"1",
    ] {
        inputs.push([head(3), s(b"k"), s(count), s(b"f"), s(b"v")].concat());
    }
    inputs.push([head(2), s(b"k"), s(b"5")].concat());
    inputs.push([head(3), s(b"k"), s(b"0"), s(b"j"), s(b"0")].concat());
    // Random damage to the golden message: one to four bytes changed, some to values that make
    // lengths and counts large.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..3000 {
        let mut m = golden.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(m.len());
            m[at] = match rng.below(4) {
                0 => 0xff,
                1 => b'0' + rng.below(10) as u8,
                2 => m[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        inputs.push(m);
    }
    // The size limit: 16 MiB is refused by both before reading anything.
    let mut big = head(1);
    big.resize(statetable::wire::MAX_MESSAGE_BYTES, 0);
    inputs.push(big);

    let mut py = python_peer(PEER, ["decode"]);
    feed(&mut py, &inputs.iter().map(|i| hex(i)).collect::<Vec<_>>());
    let status = py.expect_exit(Duration::from_secs(60));
    assert!(status.success(), "python decode: {status}\n{}", py.transcript());
    let out = py.stdout();
    assert_eq!(out.len(), inputs.len(), "one verdict per input");

    let (mut accepted, mut refused) = (0, 0);
    for (input, line) in inputs.iter().zip(&out) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let rust = statetable::wire::decode(&Bytes::from(input.clone()));
        let shown = if input.len() > 256 { format!("{} bytes", input.len()) } else { hex(input) };
        match (&rust, v.get("error")) {
            (Err(_), Some(_)) => refused += 1,
            (Ok(batch), None) => {
                accepted += 1;
                assert_eq!(latin1(&v["db"]), batch.db.to_vec(), "{shown}");
                assert_eq!(latin1(&v["table"]), batch.table.to_vec(), "{shown}");
                let py_ops: Vec<Want> = v["ops"]
                    .as_array()
                    .expect("ops")
                    .iter()
                    .map(|o| Want {
                        key: latin1(&o["key"]),
                        fields: (o["op"] == "set").then(|| {
                            o["fields"]
                                .as_array()
                                .expect("fields")
                                .iter()
                                .map(|fv| (latin1(&fv[0]), latin1(&fv[1])))
                                .collect()
                        }),
                    })
                    .collect();
                assert_eq!(py_ops, batch.ops.iter().map(Want::of).collect::<Vec<_>>(), "{shown}");
            }
            (rust, _) => panic!("decoders disagree on {shown}: rust {rust:?}, python {line}"),
        }
    }
    eprintln!("decoders agree on {} inputs: {accepted} accepted, {refused} refused", inputs.len());
    assert!(accepted > 10 && refused > 1000, "{accepted} accepted, {refused} refused");
}

// ---------------------------------------------------------------------------------------------------
// The harness's fault tools, with the Python producer
// ---------------------------------------------------------------------------------------------------

/// `RedisServer::restart` (kill -9, same port, empty) and `Consumer::kill` / `Consumer::spawn_at`
/// (same endpoint) work as the fault tests need: after each, what the Python producer sends next is
/// in Redis.
#[test]
fn harness_restarts_redis_and_consumer_on_their_ports() {
    let mut redis = RedisServer::start();
    let (port, db) = (redis.port(), 2);
    let consumer = Consumer::spawn(&redis.url(db), &[]);
    let ep = consumer.endpoint().to_owned();
    let model = Model::new("T", ":", false);
    py_produce(&ep, "APPL_DB", "T", 1, Enc::Utf8, &[set("before", [("f", "1")]), sentinel(1)]);
    wait_sentinel(&redis, db, &model, 1);

    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.dbsize(db), 0, "a restarted redis is empty");
    // The consumer's write-through reconnects by itself.
    py_produce(&ep, "APPL_DB", "T", 1, Enc::Utf8, &[set("after-redis", [("f", "2")]), sentinel(2)]);
    wait_sentinel(&redis, db, &model, 2);
    assert_eq!(redis.hgetall(db, "T:after-redis"), BTreeMap::from([("f".into(), "2".into())]));

    consumer.kill();
    let consumer = common::Consumer::spawn_at(&ep, &redis.url(db), &[]);
    assert_eq!(consumer.endpoint(), ep);
    py_produce(&ep, "APPL_DB", "T", 1, Enc::Utf8, &[set("after-consumer", [("f", "3")]), sentinel(3)]);
    wait_sentinel(&redis, db, &model, 3);
    let exited = consumer.terminate();
    assert!(exited.status.success(), "{}", exited.log.join("\n"));
    assert_eq!(redis.keys(db, "*"), ["T:__done2__", "T:__done3__", "T:after-consumer", "T:after-redis"]);

    redis.flushall();
    assert_eq!(redis.dbsize(db), 0);
    redis.stop();
    assert!(!redis.is_running());
}
