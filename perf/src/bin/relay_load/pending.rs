//! `pending` mode: P requests left pending at a silent ingestor, the relay's RSS with them, then
//! round trips on another prefix meanwhile.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Socket, SocketType};

use crate::histogram::us;
use crate::shared::*;
use crate::{Common, PendingArgs, READY_TIMEOUT};

/// Runs `pending` mode; returns the exit code (2 if not all P requests became pending or a
/// live round trip got no reply).
pub(crate) async fn pending(common: Common, a: PendingArgs) -> i32 {
    if a.clients == 0 || a.count == 0 || a.roundtrips == 0 {
        eprintln!("error: --clients, --count and --roundtrips must be positive");
        return 1;
    }
    let fill_timeout = seconds("fill-timeout", a.fill_timeout, false);
    let settle = seconds("settle", a.settle, true);
    let payload = Bytes::from(vec![b'd'; a.payload_size]);
    let (silent, silent_task) = start_ingestor(&common, "SILENT:", false, payload.clone());
    let (live, live_task) = start_ingestor(&common, "LIVE:", true, payload);
    // Readiness: LIVE answers OK; SILENT has received one work message (that probe stays pending).
    let live_reqs = Requests::new(&["LIVE".into()], a.params_size);
    if !wait_ready(&common, &live_reqs, std::slice::from_ref(&live)).await {
        return 1;
    }
    let silent_reqs = Requests::new(&["SILENT".into()], a.params_size);
    let probe = socket(SocketType::Dealer, 10_000);
    connect(&probe, &common.endpoint(common.client_port));
    let ready_deadline = Instant::now() + READY_TIMEOUT;
    let mut probes = 0u64;
    while silent.work.load(Ordering::Relaxed) == 0 {
        if Instant::now() >= ready_deadline {
            eprintln!("error: the relay never forwarded a SILENT: request");
            return 1;
        }
        let (msg, _) = silent_reqs.request(usize::MAX, probes, 0);
        probes += 1;
        if probe.send(msg).await.is_err() {
            return 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        while probe.try_recv().is_ok() {} // UNAVAILABLE while the subscription is on its way
    }
    let before = silent.work.load(Ordering::Relaxed);

    // Fill: P requests over the clients, as fast as the relay takes them.
    let clients: Vec<Socket> = (0..a.clients)
        .map(|_| {
            let s = socket(SocketType::Dealer, 1_000_000);
            connect(&s, &common.endpoint(common.client_port));
            s
        })
        .collect();
    let fill_start = Instant::now();
    for n in 0..a.count {
        let c = (n % a.clients as u64) as usize;
        let (msg, _) = silent_reqs.request(c, n, 0);
        if clients[c].send(msg).await.is_err() {
            eprintln!("error: send failed");
            return 1;
        }
    }
    let target = before + a.count;
    let fill_deadline = fill_start + fill_timeout;
    let mut replies = Statuses::default();
    while silent.work.load(Ordering::Relaxed) < target && Instant::now() < fill_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for c in &clients {
            while let Ok(m) = c.try_recv() {
                match m.frames().get(3) {
                    Some(s) => replies.add(s, 1),
                    None => replies.add(&Bytes::from_static(b"malformed"), 1),
                }
            }
        }
        // Refused requests never reach the ingestor: stop waiting for them.
        if silent.work.load(Ordering::Relaxed) + replies.total() >= target {
            break;
        }
    }
    let fill = fill_start.elapsed();
    let forwarded = silent.work.load(Ordering::Relaxed) - before;
    tokio::time::sleep(settle).await;
    let mem_pending = relay_memory(common.relay_pid);

    // Round trips on LIVE: while the P requests are pending.
    let mut st = ClientStats::new();
    let mut seq = 0u64;
    let lat_start = Instant::now();
    let meter = CpuMeter::start(common.relay_pid);
    let mut timed_out = false;
    while st.received < a.roundtrips {
        let (msg, _) = live_reqs.request(0, seq, 0);
        seq += 1;
        if probe.send(msg).await.is_err() {
            break;
        }
        st.sent += 1;
        match tokio::time::timeout(Duration::from_secs(10), probe.recv()).await {
            Ok(Ok(m)) => st.on_reply(&m, live_reqs.now_ns(), 0, u64::MAX),
            _ => {
                timed_out = true;
                break;
            }
        }
    }
    let lat_elapsed = lat_start.elapsed();
    let (cpu_kv, cpu_line) = cpu_report(meter.finish());
    // Anything the silent requests got meanwhile (TIMEOUT if the relay's timeout is short).
    for c in &clients {
        while let Ok(m) = c.try_recv() {
            if let Some(s) = m.frames().get(3) {
                replies.add(s, 1);
            }
        }
    }
    silent_task.abort();
    live_task.abort();
    let (mem_kv, mem_line) = memory_report(common.relay_pid);
    let h = &st.hist;
    let (rss_p, hwm_p) =
        mem_pending.map_or(("NA".to_string(), "NA".to_string()), |(r, h)| (r.to_string(), h.to_string()));
    println!(
        "relay_load pending: {} requests left pending at a silent ingestor, {} clients",
        a.count, a.clients
    );
    println!(
        "filled:           {forwarded} forwarded in {:.2} s ({:.0} req/s); replies to them: {}",
        fill.as_secs_f64(),
        forwarded as f64 / fill.as_secs_f64().max(1e-9),
        replies.describe()
    );
    if let Some((rss, hwm)) = mem_pending {
        println!(
            "relay memory with {forwarded} pending: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            mib(rss),
            mib(hwm)
        );
    }
    println!(
        "live round trips: {} in {:.2} s; latency (us) p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  not OK {} ({})",
        h.total,
        lat_elapsed.as_secs_f64(),
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max),
        st.not_ok.total(),
        st.not_ok.describe()
    );
    println!("{cpu_line} (live round trips)");
    println!("{mem_line}");
    println!(
        "RESULT tool=relay_load mode=pending impl={} count={} forwarded={forwarded} fill_s={:.3} refused={} pending_rss_kb={rss_p} pending_hwm_kb={hwm_p} roundtrips={} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} not_ok={} {cpu_kv} {mem_kv}",
        common.label,
        a.count,
        fill.as_secs_f64(),
        replies.total(),
        h.total,
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max),
        st.not_ok.total(),
    );
    if timed_out || forwarded < a.count {
        if timed_out {
            eprintln!("error: a live round trip got no reply within 10 s");
        }
        if forwarded < a.count {
            eprintln!("error: only {forwarded} of {} requests reached the silent ingestor", a.count);
        }
        2
    } else {
        0
    }
}
