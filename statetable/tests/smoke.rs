//! The library end to end in one process: a producer, a server and a consumer table over tcp.

use std::time::Duration;

use statetable::{
    Client, ClientOptions, ConsumerOptions, ConsumerStateTable, Op, ProducerStateTable, Server, ServerOptions,
};

#[tokio::test]
async fn set_and_del_arrive_in_order() {
    let server = Server::new("tcp://127.0.0.1:*", ServerOptions { lazy_bind: true, ..Default::default() })
        .await
        .unwrap();
    let table = ConsumerStateTable::new(&server, "APPL_DB", "T", ConsumerOptions::default());
    let endpoint = server.bind().await.unwrap();
    let client = Client::connect(&endpoint, ClientOptions::default()).unwrap();
    let producer = ProducerStateTable::new(&client, "APPL_DB", "T");
    producer.set(b"k1", &[("f1", "v1"), ("f2", "v2")]).await.unwrap();
    producer.del(b"k2").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(tokio::time::timeout(Duration::from_secs(5), table.next_batch()).await.unwrap());
    }
    assert_eq!(got[0].key, "k1");
    assert_eq!(got[0].op, Op::Set);
    assert_eq!(got[0].fields.len(), 2);
    assert_eq!(got[1].key, "k2");
    assert_eq!(got[1].op, Op::Del);
    assert_eq!(server.stats().operations, 2);
}
