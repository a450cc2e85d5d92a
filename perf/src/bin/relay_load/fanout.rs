//! `fanout` mode: one upstream PUB (bound where the relay's XSUB connects), K subscribers on the
//! relay's market-data port.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Msg, Options, SocketType};

use crate::shared::*;
use crate::{Common, FanoutArgs, READY_TIMEOUT};

/// One subscriber's counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubStats {
    pub(crate) received: u64,
    /// Receive times of the first and last data message, ns after the run's `t0`.
    pub(crate) first: u64,
    pub(crate) last: u64,
    /// Messages seen out of sequence (a later sequence number than the next expected: a gap).
    pub(crate) gaps: u64,
}

/// Runs `fanout` mode; returns the exit code.
pub(crate) async fn fanout(common: Common, a: FanoutArgs) -> i32 {
    if a.subscribers == 0 || a.size < 9 {
        eprintln!("error: --subscribers must be positive and --size at least 9");
        return 1;
    }
    let limit = seconds("duration", a.duration, false);
    let idle = seconds("idle", a.idle, false);
    // Upstream source: wait for room rather than drop, so loss is the relay's alone.
    let publisher = zmtp_perf::socket(
        SocketType::Pub,
        Options { xpub_nodrop: true, send_hwm: 10_000, linger: Some(Duration::ZERO), ..Options::default() },
    );
    if let Err(e) = publisher.bind(&common.upstream).await {
        eprintln!("error: bind {}: {e}", common.upstream);
        return 1;
    }
    let t0 = Instant::now();
    let topic = Bytes::from(a.topic.clone());
    let warm = Arc::new(Vec::from_iter((0..a.subscribers).map(|_| AtomicBool::new(false))));
    let mut handles = Vec::new();
    for i in 0..a.subscribers {
        let sub = zmtp_perf::socket(
            SocketType::Sub,
            Options { recv_hwm: a.sub_hwm, linger: Some(Duration::ZERO), ..Options::default() },
        );
        subscribe(&sub, &a.subscribe);
        connect(&sub, &common.endpoint(common.md_port));
        let warm = warm.clone();
        handles.push(tokio::spawn(async move {
            let mut st = SubStats::default();
            let mut expected = 0u64;
            loop {
                let msg = if st.received == 0 {
                    sub.recv().await.ok()
                } else {
                    tokio::time::timeout(idle, sub.recv()).await.ok().and_then(Result::ok)
                };
                let Some(first) = msg else { break };
                let mut next = Some(first);
                while let Some(msg) = next {
                    let Some(body) = msg.frames().get(1) else {
                        next = sub.try_recv().ok();
                        continue;
                    };
                    match body.first() {
                        Some(b'W') => warm[i].store(true, Ordering::Relaxed),
                        Some(b'E') if st.received > 0 => return st,
                        Some(b'D') if body.len() >= 9 => {
                            let mut n = [0u8; 8];
                            n.copy_from_slice(&body[1..9]);
                            let seq = u64::from_le_bytes(n);
                            let now = t0.elapsed().as_nanos() as u64;
                            if st.received == 0 {
                                st.first = now;
                            } else if seq != expected {
                                st.gaps += 1;
                            }
                            st.last = now;
                            st.received += 1;
                            expected = seq + 1;
                        }
                        _ => {}
                    }
                    next = sub.try_recv().ok();
                }
            }
            st
        }));
    }
    // The relay forwards the subscription upstream, then warm-up messages until every subscriber
    // has seen one (each subscriber's subscription has reached the relay).
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut warm_body = vec![b'w'; a.size];
    warm_body[0] = b'W';
    let warm_body = Bytes::from(warm_body);
    loop {
        if warm.iter().all(|w| w.load(Ordering::Relaxed)) {
            break;
        }
        if Instant::now() >= deadline {
            let n = warm.iter().filter(|w| w.load(Ordering::Relaxed)).count();
            eprintln!(
                "error: only {n} of {} subscribers got messages within {READY_TIMEOUT:?} (upstream subscribed: {:?})",
                a.subscribers,
                publisher.has_subscriber(&topic)
            );
            return 1;
        }
        if publisher.has_subscriber(&topic) == Some(true) {
            let _ = publisher.try_send(Msg::from(vec![topic.clone(), warm_body.clone()]));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Publish.
    let mut body = vec![b'x'; a.size];
    body[0] = b'D';
    let count = a.count.unwrap_or(u64::MAX);
    let meter = CpuMeter::start(common.relay_pid);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < count {
        if sent % 256 == 0 && a.count.is_none() && start.elapsed() >= limit {
            break;
        }
        body[1..9].copy_from_slice(&sent.to_le_bytes());
        let msg = Msg::from(vec![topic.clone(), Bytes::copy_from_slice(&body)]);
        if let Err(e) = publisher.send(msg).await {
            eprintln!("error: publish: {e}");
            return 1;
        }
        sent += 1;
    }
    let pub_secs = start.elapsed().as_secs_f64();
    let mut end = vec![b'e'; a.size];
    end[0] = b'E';
    let end = Bytes::from(end);
    // End markers until every subscriber has finished (or its idle timeout ends it).
    let mut results = Vec::new();
    for h in handles {
        loop {
            let _ = publisher.try_send(Msg::from(vec![topic.clone(), end.clone()]));
            if h.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Ok(st) = h.await {
            results.push(st);
        }
    }
    let (cpu_kv, cpu_line) = cpu_report(meter.finish());
    let rate = |s: &SubStats| {
        let secs = (s.last.saturating_sub(s.first)) as f64 / 1e9;
        if secs > 0.0 && s.received > 1 {
            (s.received - 1) as f64 / secs
        } else {
            0.0
        }
    };
    let rates: Vec<f64> = results.iter().map(rate).collect();
    let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let fastest = rates.iter().copied().fold(0.0, f64::max);
    let received: u64 = results.iter().map(|s| s.received).sum();
    let lost = (sent * results.len() as u64).saturating_sub(received);
    let max_lost = results.iter().map(|s| sent.saturating_sub(s.received)).max().unwrap_or(sent);
    let gaps: u64 = results.iter().map(|s| s.gaps).sum();
    let loss_pct = if sent > 0 { lost as f64 * 100.0 / (sent * results.len() as u64) as f64 } else { 0.0 };
    let pub_rate = sent as f64 / pub_secs.max(1e-9);
    let (mem_kv, mem_line) = memory_report(common.relay_pid);
    println!(
        "relay_load fanout: 1 upstream PUB ({}), {} subscribers, {} B messages",
        common.upstream, a.subscribers, a.size
    );
    println!("published:        {sent} in {pub_secs:.2} s ({pub_rate:.0} msg/s)");
    println!("delivered:        slowest subscriber {slowest:.0} msg/s, fastest {fastest:.0} msg/s");
    println!("loss:             {lost} of {} copies ({loss_pct:.3} %), worst subscriber lost {max_lost}, {gaps} gaps", sent * results.len() as u64);
    println!("{cpu_line} (publishing and delivery)");
    println!("{mem_line}");
    println!(
        "RESULT tool=relay_load mode=fanout impl={} subscribers={} size={} sent={sent} pub_msgs_per_s={pub_rate:.0} slowest_msgs_per_s={slowest:.0} fastest_msgs_per_s={fastest:.0} lost={lost} loss_pct={loss_pct:.3} worst_lost={max_lost} gaps={gaps} {cpu_kv} {mem_kv}",
        common.label, a.subscribers, a.size,
    );
    0
}
