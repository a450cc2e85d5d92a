//! Issue 15, defect 3 on the relay's market-data port (an XSUB↔XPUB proxy, docs/relay-protocol.md
//! §2): whatever one subscriber does (floods without reading, sends 32 MiB and more of data, churns
//! SUBSCRIBE/CANCEL, sends 2 million distinct subscriptions, sends an endless multipart), a
//! subscriber that arrives afterwards gets its first message within a second, and the relay's
//! memory stays within what its caps allow. The source is a pyzmq (libzmq 4.3) PUB publishing
//! every millisecond; the fresh subscriber is a pyzmq SUB.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

#[path = "../../zmtp/tests/support/hostile_sub.rs"]
mod hostile_sub;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hostile_sub::{hostile, Attack};

/// The relay's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The subscription cap this test runs with (`max_subscriptions_per_subscriber`; default 100,000):
/// the debug build that CI tests takes about 10 µs per topic through the proxy, so the default cap
/// alone would take a second to fill. The release figure with the default is in the closing note.
const MAX_TOPICS: u64 = 20_000;

/// What the relay's caps allow one hostile subscriber to hold: its receive queue on the market-data
/// XPUB and the XSUB's queue upstream (64 MiB each, `queue_bytes_max`), its subscriptions (about
/// 530 B each over the proxy's tables: 1 KiB allowed), and 32 MiB for the allocator's slack and the
/// read-buffer pool.
const RSS_BOUND_KIB: u64 = ((2 * 64) << 10) + MAX_TOPICS + (32 << 10);

fn run(attack: Attack) -> (Duration, u64) {
    let mut src = Py::new();
    let up = free_port();
    src.sock("src", "PUB", "bind", &ep(up), &[]);
    src.cmd(&format!("REPEAT src 1 {}", msg_arg(&[b"TICK|1".as_slice()])));
    let mut relay = Relay::with(&[
        ("flink_market_data_endpoint", &format!("\"{}\"", ep(up))),
        ("max_subscriptions_per_subscriber", &MAX_TOPICS.to_string()),
    ]);
    relay.wait_log(0, &["upstream connected"], STEP);
    let pid = relay.pid();
    let base = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, written, md) = (stop.clone(), written.clone(), relay.md_ep());
        std::thread::spawn(move || hostile(md, attack, stop, written))
    };
    let peak = Arc::new(AtomicU64::new(base));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // The attack under way: 1 s, and 32 MiB written where the attack writes that much (20 s at most).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1)
        || (written.load(Ordering::Relaxed) < 32 << 20 && start.elapsed() < Duration::from_secs(20))
    {
        relay.pump(Duration::from_millis(50));
    }

    let mut py = Py::new();
    py.sync();
    // From the moment the peer process is told to connect (its own start-up is not the relay's).
    let t0 = Instant::now();
    py.sock("fresh", "SUB", "connect", &relay.md_ep(), &[&format!("sub={}", hex(b"TICK"))]);
    let connected = t0.elapsed();
    let got = py.try_msg("fresh", Duration::from_secs(10));
    let first = t0.elapsed();
    eprintln!("{attack:?}: the peer answered READY after {connected:?}");
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    sampler.join().unwrap();
    src.cmd("STOP src");
    let grew = peak.load(Ordering::Relaxed).saturating_sub(base);
    eprintln!(
        "{attack:?}: first message after {first:?} ({got:?}), relay RSS {base} KiB, grew by {grew} KiB, \
         attacker wrote {} MiB",
        written.load(Ordering::Relaxed) >> 20
    );
    assert!(got.is_some(), "{attack:?}: the fresh subscriber got nothing within 10 s");
    (first, grew)
}

/// The five attacks one after another, each against a relay of its own (one at a time, so that each
/// relay's CPU and memory are its own).
#[test]
fn a_fresh_subscriber_is_served_whatever_another_does() {
    for attack in Attack::ALL {
        let (first, grew) = run(attack);
        assert!(first < Duration::from_secs(1), "{attack:?}: first message after {first:?}");
        assert!(grew < RSS_BOUND_KIB, "{attack:?}: the relay grew by {grew} KiB");
    }
}
