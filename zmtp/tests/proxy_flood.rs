//! Issue 15, defect 3: whatever one subscriber does to an XSUB↔XPUB proxy (the relay's market-data
//! port is exactly this), a subscriber that arrives afterwards gets its first message within a
//! second, the proxy's memory stays within its configured caps, and what was dropped is counted.
//!
//! Before the fix a fresh subscriber got nothing for more than 3 s after another had flooded small
//! messages without reading, sent 32 MiB of data, churned SUBSCRIBE/CANCEL, sent 2 million unique
//! subscriptions, or an endless multipart: one peer's data and subscriptions queued up ahead of
//! everyone else's on the way upstream. (libzmq 4.3.4's `zmq_proxy` crashes on a single 1 MiB
//! SUBSCRIBE.)
//!
//! Own test binary; the attacks run one at a time (a lock) so that the counting allocator's
//! process-wide count is this attack's: the proxy and the fresh subscriber on a two-worker runtime
//! (as the relay runs them), the upstream PUB on a runtime of its own (as another process would be),
//! the hostile subscriber on a plain thread. On a current-thread runtime a peer that keeps the one
//! thread busy delays everyone else's I/O by the runtime's event interval (61 task polls), which is
//! why each connection's poll is kept short (`POLL_EVENT_BUDGET` in the driver).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/counting_alloc.rs"]
#[allow(dead_code)]
mod counting_alloc;
#[path = "support/hostile_sub.rs"]
mod hostile_sub;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile_sub::{hostile, Attack};
use zmtp::{Socket, SocketType};

/// An upstream PUB publishing "T<n>" every millisecond, a proxy in front of it, the hostile
/// subscriber on the proxy's XPUB; once the attack is under way, a fresh SUB subscribes to "T" and
/// must get its first message within a second. Returns (time to first message, peak heap growth of
/// the process while the attack ran, messages dropped or discarded on the way).
async fn fresh_subscriber_during(attack: Attack) -> (Duration, i64, u64) {
    // The upstream publisher runs on a thread of its own, as another process would.
    let stop = Arc::new(AtomicBool::new(false));
    let (ep_tx, ep_rx) = std::sync::mpsc::channel();
    let upstream_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            // (Current-thread: one publisher, as a small upstream process would run it.)
            rt.block_on(async move {
                let upstream = Socket::new(SocketType::Pub).unwrap();
                ep_tx.send(upstream.bind("tcp://127.0.0.1:*").await.unwrap()).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = upstream.try_send(format!("T{n}"));
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                upstream.discarded_messages()
            })
        })
    };
    let upstream_ep = ep_rx.recv().unwrap();
    let base = counting_alloc::process_live_bytes();
    let xsub = Socket::with_options(SocketType::XSub, proxy_options()).unwrap();
    xsub.connect(&upstream_ep).unwrap();
    let xpub = Socket::with_options(SocketType::XPub, proxy_options()).unwrap();
    let xpub_ep = xpub.bind("tcp://127.0.0.1:*").await.unwrap();
    let proxy = {
        let (xsub, xpub) = (xsub.clone(), xpub.clone());
        tokio::spawn(async move { zmtp::proxy(&xsub, &xpub, None).await })
    };

    let written = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, written, ep) = (stop.clone(), written.clone(), xpub_ep.clone());
        std::thread::spawn(move || hostile(ep, attack, stop, written))
    };
    // Let the attack get under way: 1 s, or 32 MiB written, whichever comes later (at most 20 s).
    let start = Instant::now();
    let mut peak = 0i64;
    while start.elapsed() < Duration::from_secs(1)
        || (written.load(Ordering::Relaxed) < 32 << 20 && start.elapsed() < Duration::from_secs(20))
    {
        peak = peak.max(counting_alloc::process_live_bytes() - base);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let fresh = Socket::new(SocketType::Sub).unwrap();
    let t0 = Instant::now();
    fresh.connect(&xpub_ep).unwrap();
    fresh.subscribe("T").unwrap();
    let first = loop {
        peak = peak.max(counting_alloc::process_live_bytes() - base);
        if std::env::var("PF_DEBUG").is_ok() {
            eprintln!(
                "{:?} xpub T {:?} all {:?} xsub-drop {}",
                t0.elapsed(),
                xpub.subscriber_count(b"T"),
                xpub.subscriber_count(b""),
                xsub.dropped_messages()
            );
        }
        match tokio::time::timeout(Duration::from_millis(10), fresh.recv()).await {
            Ok(msg) => {
                assert!(msg.unwrap().frames()[0].starts_with(b"T"));
                break t0.elapsed();
            }
            Err(_) if t0.elapsed() > Duration::from_secs(10) => break t0.elapsed(),
            Err(_) => {}
        }
    };
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    proxy.abort();
    let discarded_upstream = upstream_thread.join().unwrap();
    let dropped = xpub.dropped_messages() + xsub.dropped_messages() + discarded_upstream;
    eprintln!(
        "{attack:?}: first message after {first:?}, peak heap growth {} MiB, attacker wrote {} MiB, \
         dropped/discarded {dropped}",
        peak >> 20,
        written.load(Ordering::Relaxed) >> 20
    );
    (first, peak, dropped)
}

/// The proxy's caps, smaller than the defaults so that the bound below is tight and quick to reach:
/// each peer queue at most 16 MiB, each subscriber at most 20,000 topics and 1 MiB of topic bytes.
fn proxy_options() -> zmtp::Options {
    zmtp::Options {
        queue_bytes_max: QUEUE_BYTES,
        subscription_limits: zmtp::pattern::subscriptions::SubscriptionLimits {
            max_topics: MAX_TOPICS,
            max_bytes: 1 << 20,
        },
        ..zmtp::Options::default()
    }
}

const QUEUE_BYTES: usize = 16 << 20;
const MAX_TOPICS: usize = 20_000;

/// What the caps allow one hostile subscriber to hold in the proxy: its XPUB receive queue and
/// the XSUB's queue upstream (a queue bound each), its subscriptions in the XPUB's table, the
/// XSUB's held set and the commands on their way upstream (measured about 530 B per topic over
/// all of them, so 1 KiB each), plus the process-wide read-buffer pool (8 MiB).
const HEAP_BOUND: i64 = (2 * QUEUE_BYTES + MAX_TOPICS * 1024 + (8 << 20)) as i64;

/// One attack at a time: the measurement is process-wide.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn check(attack: Attack) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (first, peak, _) = fresh_subscriber_during(attack).await;
    assert!(first < Duration::from_secs(1), "{attack:?}: first message after {first:?}");
    assert!(peak < HEAP_BOUND, "{attack:?}: heap grew by {} MiB", peak >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_without_reading() {
    check(Attack::FloodWithoutReading).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_data() {
    check(Attack::BigData).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_cancel_churn() {
    check(Attack::Churn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_million_unique_subscriptions() {
    check(Attack::UniqueSubscriptions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_multipart() {
    check(Attack::EndlessMultipart).await;
}
