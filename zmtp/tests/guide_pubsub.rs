//! The ZeroMQ Guide's publish-subscribe examples (`zmtp/examples/`), run as tests: the weather
//! server and client (`wuserver`, `wuclient`), the weather proxy (`wuproxy`) and the brokers' state
//! flow (`peering1`). Each example file is included as a module and its functions checked.

// Each example is a standalone program that includes `examples/common/mod.rs` itself; this test crate
// includes several examples, hence several copies of that module.
#![allow(clippy::duplicate_mod)]

use std::collections::BTreeMap;
use std::time::Duration;

use zmtp::{Socket, SocketType};

// `wuproxy` includes `wuclient`, which includes `wuserver`: one copy of each.
#[path = "../examples/peering1.rs"]
mod peering1;
#[path = "../examples/wuproxy.rs"]
mod wuproxy;

use wuproxy::wuclient::{self, wuserver};
use wuserver::{Update, Weather};

/// Runs `fut`, failing the test if it takes longer than `secs` (a hung example must not hang CI).
async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut).await.expect("timed out")
}

/// Checks that `got` is a subsequence of the first `published` updates the server generated for
/// `zipcodes` with `seed` (those for `zipcode` only, when given): every update received is one the
/// server published, and in the order it was published.
fn assert_published_in_order(
    got: &[Update],
    seed: u64,
    zipcodes: std::ops::Range<u32>,
    published: u64,
    zipcode: Option<u32>,
) {
    let mut stream = Weather::new(seed, zipcodes)
        .take(published as usize)
        .filter(|u| zipcode.is_none_or(|z| u.zipcode == z));
    for (i, update) in got.iter().enumerate() {
        assert!(
            stream.any(|u| u == *update),
            "update {i} {update:?} was not published, or not in this order"
        );
    }
}

fn assert_plausible(update: &Update) {
    assert!((-80..=134).contains(&update.temperature), "{update:?}");
    assert!((10..=59).contains(&update.humidity), "{update:?}");
}

#[test]
fn wuserver_updates_read_back_and_zipcode_topics_do_not_overlap() {
    let update = Update { zipcode: 1001, temperature: -7, humidity: 42 };
    assert_eq!(update.to_text(), "01001 -7 42");
    assert_eq!(Update::parse(b"01001 -7 42"), Some(update));
    assert_eq!(Update::parse(b"01001 -7"), None);
    assert_eq!(Update::parse(b"01001 -7 42 9"), None);
    assert_eq!(Update::parse(b"hello"), None);
    // A zipcode's topic is its five digits and a space: 10001's updates never match 1000's topic.
    assert_eq!(wuserver::topic(10001), "10001 ");
    assert!(!"10001 20 30".starts_with(&wuserver::topic(1000)));
    assert!(!"100010 20 30".starts_with(&wuserver::topic(10001)));
    // The seeded stream is reproducible, covers the range and stays in it.
    let zipcodes = 10000..10010;
    let a: Vec<Update> = Weather::new(7, zipcodes.clone()).take(1000).collect();
    assert_eq!(a, Weather::new(7, zipcodes.clone()).take(1000).collect::<Vec<_>>());
    assert_ne!(a, Weather::new(8, zipcodes.clone()).take(1000).collect::<Vec<_>>());
    let seen: std::collections::BTreeSet<u32> = a.iter().map(|u| u.zipcode).collect();
    assert_eq!(seen, zipcodes.collect());
    a.iter().for_each(assert_plausible);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wuserver_publishes_the_guides_updates_to_a_subscriber() {
    let config = wuserver::Config::default();
    let server = within(10, wuserver::Server::bind(&config)).await.unwrap();
    let subscriber = Socket::new(SocketType::Sub).unwrap();
    subscriber.connect(server.endpoint()).unwrap();
    subscriber.subscribe("").unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.publish_until(async move {
        let _ = stopped.await;
    }));
    let mut got = Vec::new();
    while got.len() < 500 {
        let msg = within(10, subscriber.recv()).await.unwrap();
        let [text] = msg.frames() else { panic!("{msg:?}") };
        got.push(Update::parse(text).unwrap_or_else(|| panic!("not an update: {msg:?}")));
    }
    stop.send(()).unwrap();
    let report = within(10, server).await.unwrap().unwrap();
    assert!(report.published >= 500, "{report:?}");
    for update in &got {
        assert!(config.zipcodes.contains(&update.zipcode), "{update:?}");
        assert_plausible(update);
    }
    assert_published_in_order(&got, config.seed, config.zipcodes, report.published, None);
    assert_eq!(
        report.summary(Duration::from_secs(5)),
        "wuserver: published weather for zipcodes 10000-10099 for 5s"
    );
    within(10, subscriber.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wuserver_run_stops_by_itself() {
    let config = wuserver::Config { duration: Duration::from_millis(200), ..wuserver::Config::default() };
    let start = std::time::Instant::now();
    let report = within(10, wuserver::run(config)).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(report.published > 0);
    assert!(report.endpoint.starts_with("tcp://127.0.0.1:"), "{}", report.endpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wuclient_standalone_averages_its_zipcode_from_an_in_process_server() {
    let report = within(30, wuclient::run(wuclient::Config::default())).await.unwrap();
    assert_eq!(report.zipcode, 10001);
    assert_eq!(report.updates.len(), 20);
    for update in &report.updates {
        assert_eq!(update.zipcode, 10001, "{update:?}");
        assert_plausible(update);
    }
    let total: i64 = report.updates.iter().map(|u| i64::from(u.temperature)).sum();
    let average = total / 20;
    assert_eq!(report.average_temperature(), Some(average));
    assert_eq!(
        report.summary(),
        format!("wuclient: 20 updates for zipcode 10001, average temperature {average}F")
    );
    let server = report.server.as_ref().expect("the client started a server");
    assert_eq!(server.zipcodes, 10000..10100);
    assert_published_in_order(&report.updates, 1, 10000..10100, server.published, Some(10001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wuclient_in_process_server_covers_any_zipcode() {
    let config = wuclient::Config { zipcode: 42, updates: 5, ..wuclient::Config::default() };
    let report = within(30, wuclient::run(config)).await.unwrap();
    assert!(report.updates.iter().all(|u| u.zipcode == 42), "{report:?}");
    assert_eq!(report.server.as_ref().map(|s| s.zipcodes.clone()), Some(0..100));
    assert!(report.summary().starts_with("wuclient: 5 updates for zipcode 00042, average temperature "));
}

#[test]
fn wuclient_average_truncates_like_the_guides_integer_division() {
    let at = |temperature| Update { zipcode: 10001, temperature, humidity: 50 };
    let report = |temperatures: &[i32]| wuclient::Report {
        zipcode: 10001,
        updates: temperatures.iter().map(|&t| at(t)).collect(),
        server: None,
    };
    assert_eq!(report(&[10, 11]).average_temperature(), Some(10));
    assert_eq!(report(&[-10, -11]).average_temperature(), Some(-10));
    assert_eq!(
        report(&[-80, 134, 3]).summary(),
        "wuclient: 3 updates for zipcode 10001, average temperature 19F"
    );
    assert_eq!(report(&[]).summary(), "wuclient: 0 updates for zipcode 10001, average temperature unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wuproxy_forwards_from_server_through_proxy_to_client() {
    let config = wuserver::Config::default();
    let server = within(10, wuserver::Server::bind(&config)).await.unwrap();
    let proxy = within(10, wuproxy::Proxy::start(server.endpoint(), "tcp://127.0.0.1:*")).await.unwrap();
    assert_ne!(proxy.endpoint(), server.endpoint());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.publish_until(async move {
        let _ = stopped.await;
    }));
    let client =
        wuclient::Config { endpoint: Some(proxy.endpoint().to_owned()), ..wuclient::Config::default() };
    let report = within(30, wuclient::run(client)).await.unwrap();
    within(10, proxy.stop()).await.unwrap();
    stop.send(()).unwrap();
    let server = within(10, server).await.unwrap().unwrap();
    assert!(report.server.is_none(), "the client used the proxy, not a server of its own");
    assert_eq!(report.updates.len(), 20);
    assert!(report.updates.iter().all(|u| u.zipcode == 10001), "{report:?}");
    assert_published_in_order(&report.updates, config.seed, config.zipcodes, server.published, Some(10001));
    assert!(report.summary().starts_with("wuclient: 20 updates for zipcode 10001, average temperature "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wuproxy_over_inproc() {
    let name = format!("wuproxy-test-{}", std::process::id());
    let config =
        wuserver::Config { endpoint: format!("inproc://{name}-server"), ..wuserver::Config::default() };
    let server = within(10, wuserver::Server::bind(&config)).await.unwrap();
    let backend = format!("inproc://{name}-proxy");
    let proxy = within(10, wuproxy::Proxy::start(server.endpoint(), &backend)).await.unwrap();
    assert_eq!(proxy.endpoint(), backend);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.publish_until(async move {
        let _ = stopped.await;
    }));
    let client = wuclient::Config { endpoint: Some(backend), zipcode: 10099, updates: 10 };
    let report = within(30, wuclient::run(client)).await.unwrap();
    within(10, proxy.stop()).await.unwrap();
    stop.send(()).unwrap();
    let server = within(10, server).await.unwrap().unwrap();
    assert_eq!(report.updates.len(), 10);
    assert_published_in_order(&report.updates, config.seed, config.zipcodes, server.published, Some(10099));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wuproxy_demo_serves_each_client_its_own_zipcode() {
    let report = within(30, wuproxy::run(wuproxy::Config::default())).await.unwrap();
    assert!(report.every_client_served(), "{report:?}");
    let zipcodes: Vec<u32> = report.clients.iter().map(|c| c.zipcode).collect();
    assert_eq!(zipcodes, [10001, 10002]);
    for client in &report.clients {
        let seed = wuserver::Config::default().seed;
        let published = report.server.published;
        assert_published_in_order(&client.updates, seed, 10000..10100, published, Some(client.zipcode));
    }
    assert_eq!(report.summary(), "wuproxy: 2 clients behind the proxy, each got 20 updates for its zipcode");
}

fn check_peering(report: &peering1::Report) {
    let names = &report.config.names;
    assert_eq!(report.heard.keys().collect::<Vec<_>>(), names.iter().collect::<Vec<_>>());
    for (broker, heard) in &report.heard {
        let peers: Vec<&String> = names.iter().filter(|n| *n != broker).collect();
        assert_eq!(heard.keys().collect::<Vec<_>>(), peers, "{broker}");
        for (peer, states) in heard {
            assert!(states.len() >= report.config.updates, "{broker} heard {peer} only {states:?}");
            assert!(states.iter().all(|&s| s < 10), "{broker} heard {peer}: {states:?}");
        }
    }
    assert!(report.everyone_heard_everyone());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peering1_three_brokers_each_hear_both_peers() {
    let start = std::time::Instant::now();
    let report = within(30, peering1::run(peering1::Config::default())).await.unwrap();
    check_peering(&report);
    assert_eq!(report.summary(), "peering1: 3 brokers, each heard from both peers");
    // Done once everyone has heard three heartbeats from everyone, long before the deadline.
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peering1_over_inproc_with_five_brokers() {
    let config = peering1::Config {
        names: (1..=5).map(|i| format!("DC{i}")).collect(),
        heartbeat: Duration::from_millis(50),
        transport: peering1::Transport::Inproc,
        ..peering1::Config::default()
    };
    let report = within(30, peering1::run(config)).await.unwrap();
    check_peering(&report);
    assert_eq!(report.summary(), "peering1: 5 brokers, each heard from all 4 peers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peering1_two_runs_at_once_keep_to_themselves() {
    // Same broker names, same process: the inproc names must not collide.
    let config = peering1::Config { transport: peering1::Transport::Inproc, ..peering1::Config::default() };
    let (a, b) =
        within(30, async { tokio::join!(peering1::run(config.clone()), peering1::run(config.clone())) })
            .await;
    check_peering(&a.unwrap());
    check_peering(&b.unwrap());
}

#[test]
fn peering1_summary_names_who_never_heard_whom() {
    let config = peering1::Config::default();
    let heard = |peers: &[(&str, &[u32])]| -> peering1::Heard {
        peers.iter().map(|(p, s)| (p.to_string(), s.to_vec())).collect()
    };
    let mut all = BTreeMap::new();
    all.insert("DC1".to_owned(), heard(&[("DC2", &[1]), ("DC3", &[2])]));
    all.insert("DC2".to_owned(), heard(&[("DC1", &[3]), ("DC3", &[])]));
    all.insert("DC3".to_owned(), heard(&[("DC1", &[4]), ("DC2", &[5])]));
    let report = peering1::Report { config: config.clone(), heard: all };
    assert!(!report.everyone_heard_everyone());
    assert_eq!(report.unheard("DC2"), ["DC3"]);
    assert_eq!(report.summary(), "peering1: 3 brokers, DC2 never heard from DC3");
    let two = peering1::Config { names: vec!["A".into(), "B".into()], ..config };
    let mut pair = BTreeMap::new();
    pair.insert("A".to_owned(), heard(&[("B", &[1])]));
    pair.insert("B".to_owned(), heard(&[("A", &[9])]));
    assert_eq!(
        peering1::Report { config: two, heard: pair }.summary(),
        "peering1: 2 brokers, each heard from its peer"
    );
}

#[tokio::test]
async fn peering1_refuses_duplicate_names() {
    let config = peering1::Config { names: vec!["DC1".into(), "DC1".into()], ..peering1::Config::default() };
    assert!(within(10, peering1::run(config)).await.is_err());
}
