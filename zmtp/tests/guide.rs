//! The ZeroMQ Guide's advanced request-reply examples (`zmtp/examples/`), run as tests: each example
//! file is included as a module and its `run` function checked.

// Each example is a standalone program that includes `examples/common/mod.rs` itself; this test crate
// includes several examples, hence several copies of that module.
#![allow(clippy::duplicate_mod)]

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Options, Socket, SocketType};

#[path = "../examples/asyncsrv.rs"]
mod asyncsrv;
#[path = "../examples/identity.rs"]
mod identity;
#[path = "../examples/lbbroker.rs"]
mod lbbroker;
#[path = "../examples/lpclient.rs"]
mod lpclient;
#[path = "../examples/rtdealer.rs"]
mod rtdealer;
#[path = "../examples/rtreq.rs"]
mod rtreq;
#[path = "../examples/rtrouter.rs"]
mod rtrouter;

use lpclient::lpserver::{self, Fault, Faults, Server, ServerConfig};

/// Runs `fut`, failing the test if it takes longer than `secs` (a hung example must not hang CI).
async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut).await.expect("the example timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_router_sees_generated_and_set_ids() {
    let report = within(10, identity::run()).await.unwrap();
    assert_eq!(report.generated_id.len(), 5);
    assert_eq!(report.generated_id[0], 0);
    assert_eq!(report.set_id, "PEER2");
    let [first, second] = &report.messages[..] else { panic!("{:?}", report.messages) };
    assert_eq!(first.frames()[1..], [Bytes::new(), Bytes::from("ROUTER uses a generated 5 byte identity")]);
    assert_eq!(
        second.frames(),
        [Bytes::from("PEER2"), Bytes::new(), Bytes::from("ROUTER uses REQ's socket identity")]
    );
    assert_eq!(report.summary(), "identity: generated id 5 bytes starting 0x00; set id PEER2");
}

#[test]
fn identity_dump_prints_text_or_hex_like_the_guide() {
    let msg =
        Msg::from(vec![Bytes::from_static(&[0, 0x6B, 0x8B, 0x45, 0x67]), Bytes::new(), Bytes::from("Hi")]);
    let expected = "----------------------------------------\n[005] 006B8B4567\n[000]\n[002] Hi\n";
    assert_eq!(identity::dump(&msg), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtreq_spreads_tasks_over_all_req_workers() {
    let report = within(30, rtreq::run(rtreq::Config::default())).await.unwrap();
    assert_eq!(report.completed.len(), 10);
    assert_eq!(report.completed.values().sum::<usize>(), 100, "{:?}", report.completed);
    assert_eq!(report.completed, report.dispatched, "workers and broker disagree");
    assert!(report.every_worker_got_some(), "{:?}", report.completed);
    assert_eq!(report.summary(), "rtreq: 10 workers, 100 tasks, every worker got some");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtdealer_spreads_tasks_over_all_dealer_workers() {
    let report = within(30, rtdealer::run(rtdealer::Config::default())).await.unwrap();
    assert_eq!(report.completed.len(), 10);
    assert_eq!(report.completed.values().sum::<usize>(), 100, "{:?}", report.completed);
    assert_eq!(report.completed, report.dispatched, "workers and broker disagree");
    assert!(report.every_worker_got_some(), "{:?}", report.completed);
    assert_eq!(report.summary(), "rtdealer: 10 workers, 100 tasks, every worker got some");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtreq_with_instant_work_still_serves_every_worker() {
    // No work time at all: the broker's hold-until-everyone-reported keeps the run fair.
    let config = rtreq::Config { workers: 5, tasks: 20, max_work: Duration::ZERO };
    let report = within(30, rtreq::run(config)).await.unwrap();
    assert!(report.every_worker_got_some(), "{:?}", report.completed);
    assert_eq!(report.completed.values().sum::<usize>(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lbbroker_every_client_gets_a_reply() {
    let report = within(30, lbbroker::run(lbbroker::Config::default())).await.unwrap();
    assert!(report.every_client_got_a_reply(), "{:?}", report.replies);
    assert_eq!(report.replies.len(), 10);
    // Every request went to exactly one worker, and the workers agree with the broker.
    assert_eq!(report.routed_to.len(), 10);
    assert_eq!(report.handled.values().sum::<usize>(), 10, "{:?}", report.handled);
    for (worker, &n) in &report.handled {
        assert_eq!(report.routed_to.values().filter(|w| *w == worker).count(), n, "{worker}");
    }
    assert_eq!(report.summary(), "lbbroker: 10 clients each got a reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lbbroker_with_more_workers_than_clients() {
    let config = lbbroker::Config { clients: 2, workers: 5 };
    let report = within(30, lbbroker::run(config)).await.unwrap();
    assert!(report.every_client_got_a_reply(), "{:?}", report.replies);
    assert_eq!(report.handled.len(), 5);
    assert_eq!(report.handled.values().sum::<usize>(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asyncsrv_replies_route_back_to_their_clients() {
    let report = within(30, asyncsrv::run(asyncsrv::Config::default())).await.unwrap();
    assert_eq!(report.clients.len(), 3);
    assert_eq!(report.worker_replies.len(), report.config.workers);
    for (i, client) in report.clients.iter().enumerate() {
        assert_eq!(client.name, format!("client-{i}"));
        assert_eq!(client.requests, 5, "{client:?}");
        assert_eq!(client.received, client.expected, "{client:?}");
        assert_eq!(client.misrouted, 0, "{client:?}");
    }
    let sent: usize = report.worker_replies.iter().sum();
    assert_eq!(sent, report.clients.iter().map(|c| c.expected).sum::<usize>());
    assert!(sent > 0, "the seeded request mix asks for some replies");
    assert!(report.all_replies_routed_back());
    // The seeded generator makes the mix of replies asked for, and so the summary, the same every run.
    let again = within(30, asyncsrv::run(asyncsrv::Config::default())).await.unwrap();
    assert_eq!(report.summary(), again.summary());
    assert!(report.summary().starts_with("asyncsrv: 3 clients, 15 requests, "), "{}", report.summary());
    assert!(report.summary().ends_with(" replies, all routed back to their sender"), "{}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtrouter_routers_address_each_other_by_name() {
    let report = within(30, rtrouter::run(rtrouter::Config::default())).await.unwrap();
    let names = |map: &std::collections::BTreeMap<(String, String), usize>| {
        map.keys().map(|(a, b)| format!("{a}/{b}")).collect::<Vec<_>>()
    };
    // The clients know the servers by the names they connected with, the servers know the clients
    // by the routing ids the clients set.
    assert_eq!(
        names(&report.pongs),
        ["client-0/server-0", "client-0/server-1", "client-1/server-0", "client-1/server-1"]
    );
    assert_eq!(
        names(&report.pings),
        ["server-0/client-0", "server-0/client-1", "server-1/client-0", "server-1/client-1"]
    );
    assert!(report.all_exchanged(), "{report:?}");
    assert_eq!(report.summary(), "rtrouter: 2 clients x 2 servers, 3 round trips each, all routed by name");
}

/// What `rtrouter` first did: each server closes right after its last reply. The reply reaches the
/// client's ROUTER and is still received, with the server's identity, after that connection ended
/// (as libzmq delivers it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtrouter_reply_survives_the_server_closing() {
    let server = Socket::new(SocketType::Router).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:*").await.unwrap();
    let options =
        Options { routing_id: Some(Bytes::from("client")), router_mandatory: true, ..Options::default() };
    let client = Socket::with_options(SocketType::Router, options).unwrap();
    client.connect_with_routing_id(&endpoint, Bytes::from("server")).unwrap();
    let ping = Msg::from(vec![Bytes::from("server"), Bytes::from("ping")]);
    while let Err(e) = client.send(ping.clone()).await {
        assert!(matches!(e.error, zmtp::Error::HostUnreachable(_)), "{e}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = within(10, server.recv()).await.unwrap();
    assert_eq!(got.frames(), [Bytes::from("client"), Bytes::from("ping")]);
    server.send(Msg::from(vec![Bytes::from("client"), Bytes::from("pong")])).await.unwrap();
    server.close().await; // linger is infinite: the pong is flushed first
                          // Give the client time to see the connection end (the pong arrived before that).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = tokio::time::timeout(Duration::from_secs(2), client.recv()).await;
    let reply = reply.expect("the pong was lost").unwrap();
    assert_eq!(reply.frames(), [Bytes::from("server"), Bytes::from("pong")]);
}

/// The Lazy Pirate test setup: quick timeouts.
fn pirate_server_config() -> ServerConfig {
    ServerConfig {
        work: Duration::from_millis(5),
        // Longer than the client's timeout, shorter than two of them (so that the first resend gets
        // through).
        overload: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
    }
}

fn pirate_client_config(endpoint: &str, requests: usize) -> lpclient::ClientConfig {
    lpclient::ClientConfig {
        endpoint: endpoint.to_owned(),
        requests,
        timeout: Duration::from_millis(250),
        retries: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_pirate_survives_overload_and_crash() {
    use Fault::{Crash, Overload};
    let server = Server::bind("tcp://127.0.0.1:*", pirate_server_config()).await.unwrap();
    let config = pirate_client_config(server.endpoint(), 10);
    // Requests 1-2 fine; 3 meets an overload (its resend is answered); 4 fine; 5 kills the server,
    // which is restarted 100 ms later (the resend reaches the new one); the rest fine.
    let faults = Faults::script([Fault::None, Fault::None, Overload, Fault::None, Fault::None, Crash]);
    let supervisor = tokio::spawn(lpserver::supervise(server, faults, Duration::from_millis(100), 5));
    let client = within(30, lpclient::run_client(&config)).await.unwrap();
    let server = within(30, supervisor).await.unwrap().unwrap();
    assert_eq!(client, lpclient::ClientReport { ok: 10, resent: 2, abandoned: false });
    assert_eq!((server.overloads, server.crashes, server.restarts), (1, 1, 1));
    // 10 answered, plus the overloaded request's late reply that nobody took.
    assert_eq!(server.replied, 11);
    assert_eq!(
        client.summary(Some(server.restarts)),
        "lpclient: 10 requests ok, server restarts survived: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_pirate_demo_runs_as_scripted() {
    let (client, server) = within(30, lpclient::demo(lpclient::scripted_faults(), 10)).await.unwrap();
    assert_eq!(
        client.summary(Some(server.restarts)),
        "lpclient: 10 requests ok, server restarts survived: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_pirate_abandons_a_dead_server_within_its_retry_budget() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = pirate_client_config(&format!("tcp://127.0.0.1:{port}"), 10);
    let start = std::time::Instant::now();
    let client = within(30, lpclient::run_client(&config)).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(client, lpclient::ClientReport { ok: 0, resent: 2, abandoned: true });
    // Three attempts of 250 ms each, and not much more.
    assert!(elapsed >= Duration::from_millis(750), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
    assert_eq!(client.summary(None), "lpclient: 0 requests ok, then abandoned: server seems to be offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_pirate_abandons_when_the_server_dies_for_good() {
    let server = Server::bind("tcp://127.0.0.1:*", pirate_server_config()).await.unwrap();
    let config = pirate_client_config(server.endpoint(), 10);
    // Two good requests, then a crash and nobody restarts the server.
    let faults = Faults::script([Fault::None, Fault::None, Fault::Crash]);
    let supervisor = tokio::spawn(lpserver::supervise(server, faults, Duration::ZERO, 0));
    let start = std::time::Instant::now();
    let client = within(30, lpclient::run_client(&config)).await.unwrap();
    let elapsed = start.elapsed();
    let server = within(30, supervisor).await.unwrap().unwrap();
    assert_eq!(client, lpclient::ClientReport { ok: 2, resent: 2, abandoned: true });
    assert_eq!((server.replied, server.crashes, server.restarts), (2, 1, 0));
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[test]
fn lpserver_guide_faults_are_seeded_and_spare_the_first_three_cycles() {
    let draw = |seed| {
        let mut faults = Faults::guide(seed);
        (0..200).map(|_| faults.next_fault()).collect::<Vec<_>>()
    };
    for seed in 0..20 {
        let faults = draw(seed);
        assert_eq!(faults[..3], [Fault::None; 3], "seed {seed}");
        assert_eq!(faults, draw(seed), "seed {seed}");
    }
    // Roughly the Guide's rates: a crash 1 time in 3, an overload 2 times in 9.
    let all: Vec<Fault> = (0..20).flat_map(|seed| draw(seed).into_iter().skip(3)).collect();
    let crashes = all.iter().filter(|&&f| f == Fault::Crash).count() as f64 / all.len() as f64;
    let overloads = all.iter().filter(|&&f| f == Fault::Overload).count() as f64 / all.len() as f64;
    assert!((0.28..0.39).contains(&crashes), "{crashes}");
    assert!((0.17..0.28).contains(&overloads), "{overloads}");
}
