//! `requests` mode: N clients (closed loop, or open loop at `--rate`) and M answering ingestors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Socket, SocketType};

use crate::histogram::us;
use crate::shared::*;
use crate::{Common, Prefixes, RequestsArgs};

/// Runs `requests` mode; returns the exit code (2 if replies were missing after the drain).
pub(crate) async fn requests(common: Common, a: RequestsArgs) -> i32 {
    if a.clients == 0 || a.ingestors == 0 || a.window == 0 {
        eprintln!("error: --clients, --ingestors and --window must be positive");
        return 1;
    }
    let (warmup, duration, drain) = (
        seconds("warmup", a.warmup, true),
        seconds("duration", a.duration, false),
        seconds("drain", a.drain, true),
    );
    if a.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        eprintln!("error: --rate must be a positive number");
        return 1;
    }
    let exchanges: Vec<String> = match a.ingestor_prefixes {
        Prefixes::Distinct => (0..a.ingestors).map(|i| format!("EX{i}")).collect(),
        Prefixes::Shared => vec!["BINANCE".into()],
    };
    let payload = Bytes::from(vec![b'd'; a.payload_size]);
    let mut ingestors = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..a.ingestors {
        let prefix = format!("{}:", exchanges[i % exchanges.len()]);
        let (stats, task) = start_ingestor(&common, &prefix, true, payload.clone());
        ingestors.push(stats);
        tasks.push(task);
    }
    let reqs = Requests::new(&exchanges, a.params_size);
    if !wait_ready(&common, &reqs, &ingestors).await {
        return 1;
    }
    let clients: Vec<Socket> = (0..a.clients)
        .map(|_| {
            let s = socket(SocketType::Dealer, 1_000_000);
            connect(&s, &common.endpoint(common.client_port));
            s
        })
        .collect();

    let start = reqs.now_ns() + warmup.as_nanos() as u64;
    let end = start + duration.as_nanos() as u64;
    let drain_end = end + drain.as_nanos() as u64;
    let window = Window { start, end, drain_end };

    let t0 = reqs.t0;
    let pid = common.relay_pid;
    let cpu_task = tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + Duration::from_nanos(start))).await;
        let meter = CpuMeter::start(pid);
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + Duration::from_nanos(end))).await;
        meter.finish()
    });
    let mut total = ClientStats::new();
    let mut skipped = 0;
    match a.rate {
        None => {
            let handles: Vec<_> = clients
                .iter()
                .enumerate()
                .map(|(i, s)| tokio::spawn(closed_loop(s.clone(), i, a.window, reqs.clone(), window)))
                .collect();
            for h in handles {
                if let Ok(s) = h.await {
                    total.merge(&s);
                }
            }
        }
        Some(rate) => {
            let counters: Arc<Vec<Counters>> =
                Arc::new((0..a.clients).map(|_| Counters::default()).collect());
            let done = Arc::new(AtomicBool::new(false));
            let handles: Vec<_> = clients
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    tokio::spawn(open_loop_receiver(
                        s.clone(),
                        i,
                        reqs.clone(),
                        window,
                        counters.clone(),
                        done.clone(),
                    ))
                })
                .collect();
            let sent;
            (sent, skipped) = pace(&clients, rate, a.max_outstanding, &reqs, window, &counters).await;
            done.store(true, Ordering::Release);
            for h in handles {
                if let Ok(s) = h.await {
                    total.merge(&s);
                }
            }
            total.sent = sent;
        }
    }
    for t in &tasks {
        t.abort();
    }
    let (cpu_kv, cpu_line) = cpu_report(cpu_task.await.unwrap_or((None, None)));
    let (mem_kv, mem_line) = memory_report(common.relay_pid);
    let secs = a.duration;
    let rps = total.ok_in_window as f64 / secs;
    let missing = total.sent.saturating_sub(total.received);
    let work: u64 = ingestors.iter().map(|i| i.work.load(Ordering::Relaxed)).sum();
    let answered: u64 = ingestors.iter().map(|i| i.answered.load(Ordering::Relaxed)).sum();
    let h = &total.hist;
    let mode = match a.rate {
        Some(r) => format!("fixed rate {r:.0} req/s (open loop)"),
        None => format!("closed loop, window {}", a.window),
    };
    println!(
        "relay_load requests: {} clients, {} ingestors ({} prefixes), {mode}",
        a.clients,
        a.ingestors,
        a.ingestor_prefixes.as_str()
    );
    println!("measured:         {secs:.1} s after {:.1} s warm-up", a.warmup);
    println!("throughput:       {rps:.0} OK replies/s ({} replies in the interval)", total.in_window);
    println!(
        "latency (us):     p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}  (n={})",
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max),
        us(h.mean()),
        h.total
    );
    println!(
        "requests:         sent {}  replies {}  missing {missing}  not OK {} ({})  malformed {}  skipped {skipped}",
        total.sent,
        total.received,
        total.not_ok.total(),
        total.not_ok.describe(),
        total.malformed
    );
    println!("ingestors:        {work} work messages, {answered} responses");
    println!("{cpu_line} (measured interval)");
    println!("{mem_line}");
    println!(
        "RESULT tool=relay_load mode=requests impl={} clients={} ingestors={} prefixes={} window={} rate={} duration_s={secs} rps={rps:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} samples={} sent={} replies={} missing={missing} not_ok={} malformed={} skipped={skipped} {cpu_kv} {mem_kv}",
        common.label,
        a.clients,
        a.ingestors,
        a.ingestor_prefixes.as_str(),
        a.window,
        a.rate.map_or("max".into(), |r| format!("{r:.0}")),
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max),
        h.total,
        total.sent,
        total.received,
        total.not_ok.total(),
        total.malformed,
    );
    for c in clients {
        drop(c);
    }
    if missing > 0 {
        2
    } else {
        0
    }
}

/// The measured interval and the end of the drain, in ns after `t0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) drain_end: u64,
}

/// A closed-loop client: `window` requests outstanding until the measured interval ends, then waits
/// (until the drain deadline) for the replies still due.
pub(crate) async fn closed_loop(
    sock: Socket,
    client: usize,
    window: usize,
    reqs: Arc<Requests>,
    w: Window,
) -> ClientStats {
    let mut st = ClientStats::new();
    let mut seq = 0u64;
    let n_tickers = reqs.tickers.len();
    // Each client starts at its own ticker so distinct prefixes are loaded evenly.
    let mut ticker = client % n_tickers;
    // The client's next request, advancing its sequence number and ticker.
    let mut next_request = || {
        let (msg, _) = reqs.request(client, seq, ticker);
        seq += 1;
        ticker = (ticker + 1) % n_tickers;
        msg
    };
    for _ in 0..window {
        if sock.send(next_request()).await.is_err() {
            return st;
        }
        st.sent += 1;
    }
    let deadline = tokio::time::Instant::from_std(reqs.t0 + Duration::from_nanos(w.drain_end));
    while st.received < st.sent {
        let Ok(Ok(first)) = tokio::time::timeout_at(deadline, sock.recv()).await else { break };
        let mut next = Some(first);
        while let Some(msg) = next {
            let now = reqs.now_ns();
            st.on_reply(&msg, now, w.start, w.end);
            if now < w.end {
                if sock.send(next_request()).await.is_err() {
                    return st;
                }
                st.sent += 1;
            }
            next = sock.try_recv().ok();
        }
    }
    st
}

/// Per-client counts the pacer and the receiver share (open loop).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
}

/// The pacer's shortest sleep.
const PACER_MIN_SLEEP: Duration = Duration::from_micros(250);

/// Open loop: sends requests at `rate` in total, round robin over the clients, from now until the
/// end of the measured interval. The pacer is a thread of its own that sleeps until each request's
/// scheduled instant (sending every request due when it wakes, waking at most every 250 µs), so arrivals
/// are evenly spaced to within a quarter millisecond and independent of how busy the tool's runtime is: tokio's
/// 1 ms timer and a shared runtime made bursts of tens of requests, which measured the bursts'
/// queueing rather than the relay. Returns (sent, skipped because a client had `max_outstanding`
/// unanswered or its queue was full).
pub(crate) async fn pace(
    clients: &[Socket],
    rate: f64,
    max_outstanding: u64,
    reqs: &Arc<Requests>,
    w: Window,
    counters: &Arc<Vec<Counters>>,
) -> (u64, u64) {
    let clients = clients.to_vec();
    let (reqs, counters) = (reqs.clone(), counters.clone());
    let paced = tokio::task::spawn_blocking(move || {
        let begin = Instant::now();
        let end = reqs.t0 + Duration::from_nanos(w.end);
        let gap = Duration::from_secs_f64(1.0 / rate);
        let mut sent = 0u64;
        let mut skipped = 0u64;
        let mut seqs = vec![0u64; clients.len()];
        let n_tickers = reqs.tickers.len();
        let mut n = 0u64;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            let due = begin + gap.mul_f64(n as f64);
            if due > now {
                // At least 250 µs: waking for every request would cost the tool a core at high rates
                // (the relay and the tool share two); what is due by then goes out together.
                std::thread::sleep((due - now).max(PACER_MIN_SLEEP));
                continue;
            }
            let c = (n as usize) % clients.len();
            n += 1;
            let cnt = &counters[c];
            if cnt.sent.load(Ordering::Relaxed) - cnt.received.load(Ordering::Relaxed) >= max_outstanding {
                skipped += 1;
                continue;
            }
            let (msg, _) = reqs.request(c, seqs[c], (n as usize) % n_tickers);
            seqs[c] += 1;
            cnt.sent.fetch_add(1, Ordering::Relaxed);
            if clients[c].try_send(msg).is_err() {
                cnt.sent.fetch_sub(1, Ordering::Relaxed);
                skipped += 1;
                continue;
            }
            sent += 1;
        }
        (sent, skipped)
    });
    paced.await.unwrap_or((0, 0))
}

/// Open loop: receives one client's replies until the pacer is done and every request it sent on
/// this client is answered, or the drain deadline passes.
pub(crate) async fn open_loop_receiver(
    sock: Socket,
    client: usize,
    reqs: Arc<Requests>,
    w: Window,
    counters: Arc<Vec<Counters>>,
    done: Arc<AtomicBool>,
) -> ClientStats {
    let mut st = ClientStats::new();
    let deadline = reqs.t0 + Duration::from_nanos(w.drain_end);
    let cnt = &counters[client];
    loop {
        if done.load(Ordering::Acquire)
            && cnt.received.load(Ordering::Relaxed) >= cnt.sent.load(Ordering::Relaxed)
        {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wake = tokio::time::Instant::from_std((now + Duration::from_millis(50)).min(deadline));
        let Ok(first) = tokio::time::timeout_at(wake, sock.recv()).await else { continue };
        let Ok(first) = first else { break };
        let mut next = Some(first);
        while let Some(msg) = next {
            st.on_reply(&msg, reqs.now_ns(), w.start, w.end);
            cnt.received.fetch_add(1, Ordering::Relaxed);
            next = sock.try_recv().ok();
        }
    }
    st
}
