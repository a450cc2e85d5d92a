//! What the three modes share: sockets, request ids and messages, reply parsing and counting, the
//! answering ingestor, the readiness probe, and the relay's memory and CPU readings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{Msg, Options, Socket, SocketType};

use crate::histogram::Histogram;
use crate::{Common, READY_TIMEOUT};

/// Creates a socket or exits 1 (the tool's own setup).
pub(crate) fn socket(socket_type: SocketType, hwm: usize) -> Socket {
    zmtp_perf::socket(
        socket_type,
        Options {
            send_hwm: hwm,
            recv_hwm: hwm,
            linger: Some(Duration::ZERO),
            reconnect_interval_max: Some(Duration::from_secs(1)),
            ..Options::default()
        },
    )
}

/// Connects `sock` to `endpoint` or exits 1.
pub(crate) fn connect(sock: &Socket, endpoint: &str) {
    if let Err(e) = sock.connect(endpoint) {
        eprintln!("error: connect {endpoint}: {e}");
        std::process::exit(1);
    }
}

/// Subscribes `sock` to `topic` or exits 1.
pub(crate) fn subscribe(sock: &Socket, topic: &str) {
    if let Err(e) = sock.subscribe(Bytes::copy_from_slice(topic.as_bytes())) {
        eprintln!("error: subscribe {topic}: {e}");
        std::process::exit(1);
    }
}

/// `v` as seconds, or exits 1 naming `--name` when it is negative, not finite, or (unless
/// `zero_ok`) zero.
pub(crate) fn seconds(name: &str, v: f64, zero_ok: bool) -> Duration {
    if !v.is_finite() || v < 0.0 || (v == 0.0 && !zero_ok) || v > 1e9 {
        eprintln!(
            "error: --{name} must be a {} number of seconds, got {v}",
            if zero_ok { "non-negative" } else { "positive" }
        );
        std::process::exit(1);
    }
    Duration::from_secs_f64(v)
}

/// An id for this run, so two runs against one relay never reuse a request_id.
pub(crate) fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    std::process::id().wrapping_mul(2_654_435_761) ^ nanos
}

/// The request ids and request messages of one run.
#[derive(Debug)]
pub(crate) struct Requests {
    pub(crate) run: u32,
    pub(crate) t0: Instant,
    pub(crate) tickers: Vec<Bytes>,
    pub(crate) params: Bytes,
}

impl Requests {
    pub(crate) fn new(exchanges: &[String], params_size: usize) -> Arc<Requests> {
        Arc::new(Requests {
            run: run_id(),
            t0: Instant::now(),
            tickers: exchanges.iter().map(|e| Bytes::from(format!("{e}:BTC/USDT"))).collect(),
            params: Bytes::from(vec![b'p'; params_size]),
        })
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Request `seq` of `client`, to ticker `ticker`, stamped now; returns the message and the stamp.
    pub(crate) fn request(&self, client: usize, seq: u64, ticker: usize) -> (Msg, u64) {
        let sent = self.now_ns();
        let id = format!("{:08x}-{client}-{seq}-{sent}", self.run);
        let msg = Msg::from(vec![
            Bytes::new(),
            Bytes::from_static(&[0x07]),
            Bytes::from(id),
            self.tickers[ticker % self.tickers.len()].clone(),
            self.params.clone(),
        ]);
        (msg, sent)
    }
}

/// The send stamp (ns after `t0`) at the end of a request id: its trailing decimal digits.
pub(crate) fn sent_ns(id: &[u8]) -> Option<u64> {
    let digits = id.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || digits == id.len() {
        return None;
    }
    id[id.len() - digits..].iter().try_fold(0u64, |v, &d| v.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Replies that were not `OK`, by status.
#[derive(Debug, Default, Clone)]
pub(crate) struct Statuses(Vec<(Bytes, u64)>);

impl Statuses {
    pub(crate) fn add(&mut self, status: &Bytes, n: u64) {
        match self.0.iter_mut().find(|(s, _)| s == status) {
            Some((_, c)) => *c += n,
            None => self.0.push((status.clone(), n)),
        }
    }

    pub(crate) fn merge(&mut self, other: &Statuses) {
        for (s, n) in &other.0 {
            self.add(s, *n);
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    pub(crate) fn describe(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|(s, n)| format!("{}={n}", String::from_utf8_lossy(s)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What a client learnt from one reply.
pub(crate) enum Reply {
    /// `OK` for the request sent at this stamp.
    Ok(u64),
    /// Another status (TIMEOUT, UNAVAILABLE…).
    Other(Bytes),
    /// Not a relay reply (`["", 0x08, id, status, …]`).
    Malformed,
}

/// Reads a reply on a client DEALER: `["", 0x08, request_id, status, …]`.
pub(crate) fn parse_reply(msg: &Msg) -> Reply {
    let f = msg.frames();
    if f.len() < 4 || !f[0].is_empty() || f[1].as_ref() != [0x08] {
        return Reply::Malformed;
    }
    match (f[3].as_ref(), sent_ns(&f[2])) {
        (b"OK", Some(s)) => Reply::Ok(s),
        (b"OK", None) => Reply::Malformed,
        _ => Reply::Other(f[3].clone()),
    }
}

/// Per-client counts, merged at the end.
#[derive(Debug, Clone)]
pub(crate) struct ClientStats {
    pub(crate) hist: Histogram,
    /// Replies received inside the measured interval (any status).
    pub(crate) in_window: u64,
    /// OK replies received inside the measured interval.
    pub(crate) ok_in_window: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) not_ok: Statuses,
    pub(crate) malformed: u64,
}

impl ClientStats {
    pub(crate) fn new() -> Self {
        ClientStats {
            hist: Histogram::new(),
            in_window: 0,
            ok_in_window: 0,
            sent: 0,
            received: 0,
            not_ok: Statuses::default(),
            malformed: 0,
        }
    }

    pub(crate) fn merge(&mut self, o: &ClientStats) {
        self.hist.merge(&o.hist);
        self.in_window += o.in_window;
        self.ok_in_window += o.ok_in_window;
        self.sent += o.sent;
        self.received += o.received;
        self.not_ok.merge(&o.not_ok);
        self.malformed += o.malformed;
    }

    /// Accounts for one reply received at `now` (ns), measuring if it falls in `[start, end)`.
    pub(crate) fn on_reply(&mut self, msg: &Msg, now: u64, start: u64, end: u64) {
        self.received += 1;
        let in_window = now >= start && now < end;
        match parse_reply(msg) {
            Reply::Ok(sent) => {
                if in_window {
                    self.in_window += 1;
                    self.ok_in_window += 1;
                    if sent >= start {
                        self.hist.record(now.saturating_sub(sent));
                    }
                }
            }
            Reply::Other(status) => {
                if in_window {
                    self.in_window += 1;
                }
                self.not_ok.add(&status, 1);
            }
            Reply::Malformed => self.malformed += 1,
        }
    }
}

/// Reads `VmRSS` and `VmHWM` (KiB) of `pid`.
pub(crate) fn relay_memory(pid: Option<u32>) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time (user + system, all threads) of process `pid` (`None`: this process), in seconds, from
/// `/proc/PID/stat` (fields 14 and 15, in USER_HZ = 100 ticks per second on Linux).
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: the fields we want follow its closing ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU use of the relay and of this tool over an interval, in % of one core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMeter {
    pub(crate) at: Instant,
    pub(crate) relay: Option<f64>,
    pub(crate) tool: Option<f64>,
    pub(crate) pid: Option<u32>,
}

impl CpuMeter {
    pub(crate) fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            at: Instant::now(),
            relay: cpu_seconds(pid).filter(|_| pid.is_some()),
            tool: cpu_seconds(None),
            pid,
        }
    }

    /// `(relay %, tool %)` since [`CpuMeter::start`].
    pub(crate) fn finish(&self) -> (Option<f64>, Option<f64>) {
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |before: Option<f64>, pid: Option<u32>| Some((cpu_seconds(pid)? - before?) * 100.0 / secs);
        (if self.pid.is_some() { pct(self.relay, self.pid) } else { None }, pct(self.tool, None))
    }
}

/// `relay_cpu_pct=… tool_cpu_pct=…` and a human line.
pub(crate) fn cpu_report(cpu: (Option<f64>, Option<f64>)) -> (String, String) {
    let f = |v: Option<f64>| v.map_or("NA".to_string(), |v| format!("{v:.0}"));
    (
        format!("relay_cpu_pct={} tool_cpu_pct={}", f(cpu.0), f(cpu.1)),
        format!("cpu (% of a core): relay {}, this tool {}", f(cpu.0), f(cpu.1)),
    )
}

/// KiB as MiB.
pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `rss_kb=… hwm_kb=…` for the RESULT line, and a human line.
pub(crate) fn memory_report(pid: Option<u32>) -> (String, String) {
    match relay_memory(pid) {
        Some((rss, hwm)) => (
            format!("rss_kb={rss} hwm_kb={hwm}"),
            format!("relay memory:     VmRSS {:.1} MiB, peak VmHWM {:.1} MiB", mib(rss), mib(hwm)),
        ),
        None if pid.is_some() => ("rss_kb=NA hwm_kb=NA".into(), "relay memory:     unreadable".into()),
        None => ("rss_kb=NA hwm_kb=NA".into(), "relay memory:     (no --relay-pid)".into()),
    }
}

/// One ingestor's counters.
#[derive(Debug, Default)]
pub(crate) struct IngestorStats {
    /// Work messages received.
    pub(crate) work: AtomicU64,
    /// Responses sent.
    pub(crate) answered: AtomicU64,
    /// Work messages not of the shape `[topic, 0x01, id, ticker, params]`.
    pub(crate) malformed: AtomicU64,
}

/// Starts an ingestor serving `prefix`: a SUB on the work port and, if `answer`, a DEALER on the
/// response port that answers every work message at once with `[0x02, id, "OK", payload]`.
pub(crate) fn start_ingestor(
    common: &Common,
    prefix: &str,
    answer: bool,
    payload: Bytes,
) -> (Arc<IngestorStats>, tokio::task::JoinHandle<()>) {
    let sub = socket(SocketType::Sub, 1_000_000);
    subscribe(&sub, prefix);
    connect(&sub, &common.endpoint(common.work_port));
    let dealer = if answer {
        let d = socket(SocketType::Dealer, 1_000_000);
        connect(&d, &common.endpoint(common.response_port));
        Some(d)
    } else {
        None
    };
    let stats = Arc::new(IngestorStats::default());
    let st = stats.clone();
    let task = tokio::spawn(async move {
        let ok = Bytes::from_static(b"OK");
        let kind = Bytes::from_static(&[0x02]);
        loop {
            let Ok(first) = sub.recv().await else { return };
            let mut next = Some(first);
            while let Some(msg) = next {
                st.work.fetch_add(1, Ordering::Relaxed);
                let f = msg.frames();
                if f.len() != 5 || f[1].as_ref() != [0x01] {
                    st.malformed.fetch_add(1, Ordering::Relaxed);
                } else if let Some(d) = &dealer {
                    let reply = Msg::from(vec![kind.clone(), f[2].clone(), ok.clone(), payload.clone()]);
                    if d.send(reply).await.is_err() {
                        return;
                    }
                    st.answered.fetch_add(1, Ordering::Relaxed);
                }
                next = sub.try_recv().ok();
            }
        }
    });
    (stats, task)
}

/// Sends probe requests for every ticker of `reqs` until each is answered `OK` and every ingestor in
/// `ingestors` has received work (so all their subscriptions have reached the relay). `false` if
/// that did not happen within [`READY_TIMEOUT`].
pub(crate) async fn wait_ready(common: &Common, reqs: &Requests, ingestors: &[Arc<IngestorStats>]) -> bool {
    let probe = socket(SocketType::Dealer, 10_000);
    connect(&probe, &common.endpoint(common.client_port));
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut seq = 0u64;
    let mut ok = vec![false; reqs.tickers.len()];
    let mut last_status = String::from("no reply");
    while Instant::now() < deadline {
        // The probes of this round, by request id, so each OK is credited to its ticker.
        let mut outstanding: Vec<(Bytes, usize)> = Vec::new();
        for (t, done) in ok.iter().enumerate() {
            if !done {
                let (msg, _) = reqs.request(usize::MAX, seq, t);
                seq += 1;
                outstanding.push((msg.frames()[2].clone(), t));
                if probe.send(msg).await.is_err() {
                    return false;
                }
            }
        }
        let round = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Ok(msg)) = tokio::time::timeout_at(round, probe.recv()).await {
            let f = msg.frames();
            if f.len() >= 4 {
                last_status = String::from_utf8_lossy(&f[3]).into_owned();
                if f[3].as_ref() == b"OK" {
                    if let Some((_, t)) = outstanding.iter().find(|(id, _)| *id == f[2]) {
                        ok[*t] = true;
                    }
                }
            }
        }
        if ok.iter().all(|&d| d) && ingestors.iter().all(|i| i.work.load(Ordering::Relaxed) > 0) {
            zmtp_perf::close(probe, Duration::from_secs(1)).await;
            return true;
        }
    }
    eprintln!(
        "error: the relay did not serve the ingestors within {READY_TIMEOUT:?} (last status: {last_status})"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_carry_their_stamp() {
        let reqs = Requests::new(&["EX0".into()], 4);
        let (msg, sent) = reqs.request(12, 34, 0);
        let id = &msg.frames()[2];
        assert!(id.len() <= 64);
        assert_eq!(sent_ns(id), Some(sent));
        assert_eq!(sent_ns(b"123"), None);
        assert_eq!(sent_ns(b"abc-"), None);
    }
}
