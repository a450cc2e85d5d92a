//! Historical-data requests: parsing client requests and ingestor responses (pure functions), and the
//! pending table with its timeouts.
//!
//! The pending table is a hash map from `request_id` to the reply envelope, plus a timer wheel
//! ([`DelayQueue`]) holding one entry per request: insert, answer and expire are O(1) amortised, and an
//! idle pending request costs nothing until its deadline.

use std::collections::HashMap;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::time::{delay_queue, DelayQueue};

/// Message type of a client request (`OHLCRequest`).
pub const TYPE_REQUEST: u8 = 0x07;
/// Message type of a work message to ingestors (`DataRequest`).
pub const TYPE_WORK: u8 = 0x01;
/// Message type of an ingestor response (`DataResponse`).
pub const TYPE_RESPONSE: u8 = 0x02;
/// Message type of a reply to a client (`Response`).
pub const TYPE_REPLY: u8 = 0x08;

/// Longest `request_id`.
pub const MAX_REQUEST_ID: usize = 64;
/// Longest ticker.
pub const MAX_TICKER: usize = 256;
/// Longest `params` frame.
pub const MAX_PARAMS: usize = 64 * 1024;
/// Most frames allowed before the empty delimiter (the client's routing id and up to 31 hops).
pub const MAX_ENVELOPE: usize = 32;
/// Longest envelope frame: a routing id is at most 255 bytes (RFC 23's Identity). With
/// [`MAX_ENVELOPE`] this bounds what a pending request holds (8 KiB of envelope at worst).
pub const MAX_ENVELOPE_FRAME: usize = 255;

/// What a client message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// No empty delimiter frame: nothing to reply to.
    NoDelimiter,
    /// More than [`MAX_ENVELOPE`] frames before the delimiter.
    EnvelopeTooDeep,
    /// A frame before the delimiter longer than [`MAX_ENVELOPE_FRAME`]: not a routing id.
    EnvelopeFrameTooLong,
    /// Malformed: answer `BAD_REQUEST`.
    Bad {
        /// Frames before the delimiter.
        envelope: usize,
        /// Frame 1 of the request if it is 1 to 64 bytes, else empty.
        request_id: Bytes,
        /// Why, for the reply's reason frame.
        reason: String,
    },
    /// A well-formed request.
    Good {
        /// Frames before the delimiter.
        envelope: usize,
        /// The client's request id.
        request_id: Bytes,
        /// The exchange prefix: the ticker up to and including its first `:`.
        prefix: Bytes,
        /// The ticker frame.
        ticker: Bytes,
        /// The params frame.
        params: Bytes,
    },
}

/// Parses a message read from the client ROUTER (`[routing id…] [""] body…`).
pub fn parse_request(frames: &[Bytes]) -> Request {
    let Some(envelope) = frames.iter().position(|f| f.is_empty()) else { return Request::NoDelimiter };
    if envelope > MAX_ENVELOPE {
        return Request::EnvelopeTooDeep;
    }
    if frames[..envelope].iter().any(|f| f.len() > MAX_ENVELOPE_FRAME) {
        return Request::EnvelopeFrameTooLong;
    }
    let body = &frames[envelope + 1..];
    let request_id = match body.get(1) {
        Some(id) if !id.is_empty() && id.len() <= MAX_REQUEST_ID => id.clone(),
        _ => Bytes::new(),
    };
    let bad = |reason: String| Request::Bad { envelope, request_id: request_id.clone(), reason };
    match body.first() {
        Some(t) if t[..] == [TYPE_REQUEST] => {}
        _ => return bad("message type must be 0x07".into()),
    }
    if body.len() != 4 {
        return bad(format!("expected 4 body frames, got {}", body.len()));
    }
    let (id, ticker, params) = (&body[1], &body[2], &body[3]);
    if id.is_empty() || id.len() > MAX_REQUEST_ID {
        return bad(format!("request_id must be 1 to {MAX_REQUEST_ID} bytes"));
    }
    if ticker.len() > MAX_TICKER {
        return bad(format!("ticker longer than {MAX_TICKER} bytes"));
    }
    if std::str::from_utf8(ticker).is_err() {
        return bad("ticker is not UTF-8".into());
    }
    let colon = match ticker.iter().position(|&b| b == b':') {
        Some(i) if i > 0 && i + 1 < ticker.len() => i,
        _ => return bad("ticker must be EXCHANGE:SYMBOL".into()),
    };
    if params.len() > MAX_PARAMS {
        return bad(format!("params longer than {MAX_PARAMS} bytes"));
    }
    Request::Good {
        envelope,
        request_id: id.clone(),
        prefix: ticker.slice(..=colon),
        ticker: ticker.clone(),
        params: params.clone(),
    }
}

/// An ingestor's response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`.
    Ok,
    /// `ERROR`.
    Error,
}

/// Parses a message read from the ingestor ROUTER (`[routing id] 0x02 request_id status data…`):
/// the request id and status, or `None` if it breaks the contract.
pub fn parse_response(frames: &[Bytes]) -> Option<(&Bytes, Status)> {
    match frames {
        [_routing_id, ty, request_id, status, ..] if ty[..] == [TYPE_RESPONSE] => {
            let status = match &status[..] {
                b"OK" => Status::Ok,
                b"ERROR" => Status::Error,
                _ => return None,
            };
            Some((request_id, status))
        }
        _ => None,
    }
}

/// The reply to a client: `envelope… "" 0x08 request_id status rest…`.
pub fn reply(
    envelope: impl IntoIterator<Item = Bytes>,
    request_id: Bytes,
    status: &'static str,
    rest: &[Bytes],
) -> Vec<Bytes> {
    let envelope = envelope.into_iter();
    let mut frames = Vec::with_capacity(envelope.size_hint().0 + 4 + rest.len());
    frames.extend(envelope);
    frames.push(Bytes::new());
    frames.push(Bytes::from_static(&[TYPE_REPLY]));
    frames.push(request_id);
    frames.push(Bytes::from_static(status.as_bytes()));
    frames.extend_from_slice(rest);
    frames
}

/// Requests forwarded to ingestors and waiting for a response, keyed by `request_id`.
#[derive(Debug, Default)]
pub struct PendingTable {
    by_id: HashMap<Bytes, Pending>,
    deadlines: DelayQueue<Bytes>,
}

#[derive(Debug)]
struct Pending {
    envelope: Vec<Bytes>,
    deadline: delay_queue::Key,
    tag: Tag,
}

/// What the metrics remember of a pending request: its prefix's label slot and when it was
/// forwarded (for the latency histogram).
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    /// The exchange prefix's metrics slot.
    pub slot: crate::metrics::Slot,
    /// When the request was forwarded.
    pub forwarded: Instant,
}

impl PendingTable {
    /// An empty table.
    pub fn new() -> PendingTable {
        PendingTable::default()
    }

    /// Requests pending.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no request is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `request_id` is pending.
    pub fn contains(&self, request_id: &[u8]) -> bool {
        self.by_id.contains_key(request_id)
    }

    /// Adds a request that expires after `timeout`. The caller has checked it is not pending.
    ///
    /// The id and the envelope are copied (at most 64 B and 8 KiB): the frames as received are slices
    /// of the connection's read buffers, and holding them for the request's lifetime would keep those
    /// whole buffers alive (measured: 520 B per pending request before, against the copies' size).
    /// `slot` is the prefix's metrics slot, handed back with the envelope.
    pub fn insert(
        &mut self,
        request_id: Bytes,
        envelope: Vec<Bytes>,
        timeout: Duration,
        slot: crate::metrics::Slot,
    ) {
        let request_id = Bytes::copy_from_slice(&request_id);
        let envelope = envelope.iter().map(|f| Bytes::copy_from_slice(f)).collect();
        let deadline = self.deadlines.insert(request_id.clone(), timeout);
        let tag = Tag { slot, forwarded: Instant::now() };
        if let Some(old) = self.by_id.insert(request_id, Pending { envelope, deadline, tag }) {
            // Not reached (callers check `contains` first); keep the wheel consistent anyway.
            self.deadlines.try_remove(&old.deadline);
        }
    }

    /// Removes a pending request (answered): its envelope and tag, or `None` if it is not pending.
    pub fn take(&mut self, request_id: &[u8]) -> Option<(Vec<Bytes>, Tag)> {
        let pending = self.by_id.remove(request_id)?;
        self.deadlines.try_remove(&pending.deadline);
        Some((pending.envelope, pending.tag))
    }

    /// The next request whose timeout has passed, removed from the table: `(request_id, envelope,
    /// tag)`. Pending (and woken later) while none has expired, including when the table is empty.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<(Bytes, Vec<Bytes>, Tag)> {
        loop {
            match self.deadlines.poll_expired(cx) {
                Poll::Ready(Some(expired)) => {
                    let id = expired.into_inner();
                    if let Some(pending) = self.by_id.remove(&id) {
                        return Poll::Ready((id, pending.envelope, pending.tag));
                    }
                }
                // Empty: an insert from this task is seen on its next poll.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Removes every pending request (shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = (Bytes, Vec<Bytes>, Tag)> + '_ {
        self.deadlines.clear();
        self.by_id.drain().map(|(id, p)| (id, p.envelope, p.tag))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frames(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    fn reason(r: Request) -> String {
        match r {
            Request::Bad { reason, .. } => reason,
            other => panic!("not bad: {other:?}"),
        }
    }

    #[test]
    fn parses_a_good_request_with_a_multi_hop_envelope() {
        let r = parse_request(&frames(&[b"hop1", b"client", b"", &[7], b"id-1", b"BINANCE:BTC/USDT", b"{}"]));
        match r {
            Request::Good { envelope, request_id, prefix, ticker, params } => {
                assert_eq!(envelope, 2);
                assert_eq!(request_id, "id-1");
                assert_eq!(prefix, "BINANCE:");
                assert_eq!(ticker, "BINANCE:BTC/USDT");
                assert_eq!(params, "{}");
            }
            other => panic!("{other:?}"),
        }
        // Empty params are fine; a ticker may hold more colons after the first.
        assert!(matches!(
            parse_request(&frames(&[b"c", b"", &[7], b"i", b"A:B:C", b""])),
            Request::Good { .. }
        ));
    }

    #[test]
    fn refuses_every_bad_request_with_a_reason() {
        let long_id = vec![b'x'; 65];
        let long_ticker = [b"BINANCE:".as_slice(), &[b'x'; 249]].concat();
        let long_params = vec![0u8; MAX_PARAMS + 1];
        let cases: Vec<(Vec<&[u8]>, &str)> = vec![
            (vec![b"c", b""], "type"),
            (vec![b"c", b"", &[8], b"i", b"A:B", b""], "type"),
            (vec![b"c", b"", &[7, 0], b"i", b"A:B", b""], "type"),
            (vec![b"c", b"", &[7], b"i"], "4 body frames, got 2"),
            (vec![b"c", b"", &[7], b"i", b"A:B", b"", b""], "got 5"),
            (vec![b"c", b"", &[7], b"", b"A:B", b""], "request_id"),
            (vec![b"c", b"", &[7], &long_id, b"A:B", b""], "request_id"),
            (vec![b"c", b"", &[7], b"i", b"BTCUSDT", b""], "EXCHANGE:SYMBOL"),
            (vec![b"c", b"", &[7], b"i", b":BTC", b""], "EXCHANGE:SYMBOL"),
            (vec![b"c", b"", &[7], b"i", b"BINANCE:", b""], "EXCHANGE:SYMBOL"),
            (vec![b"c", b"", &[7], b"i", &long_ticker, b""], "longer than 256"),
            (vec![b"c", b"", &[7], b"i", b"A:\xff", b""], "UTF-8"),
            (vec![b"c", b"", &[7], b"i", b"A:B", &long_params], "params"),
        ];
        for (parts, want) in cases {
            let r = reason(parse_request(&frames(&parts)));
            assert!(r.contains(want), "{parts:?}: {r}");
        }
    }

    #[test]
    fn bad_request_echoes_a_readable_request_id_only() {
        match parse_request(&frames(&[b"c", b"", &[9], b"id", b"x"])) {
            Request::Bad { request_id, envelope, .. } => {
                assert_eq!(request_id, "id");
                assert_eq!(envelope, 1);
            }
            other => panic!("{other:?}"),
        }
        match parse_request(&frames(&[b"c", b"", &[7], &[b'x'; 65], b"A:B", b""])) {
            Request::Bad { request_id, .. } => assert!(request_id.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_delimiter_or_deep_envelope_is_not_answered() {
        assert_eq!(parse_request(&frames(&[b"c", &[7], b"i", b"A:B", b"p"])), Request::NoDelimiter);
        let mut deep: Vec<&[u8]> = vec![b"hop"; 33];
        deep.extend_from_slice(&[b"", &[7], b"i", b"A:B", b""]);
        assert_eq!(parse_request(&frames(&deep)), Request::EnvelopeTooDeep);
        deep.remove(0);
        assert!(matches!(parse_request(&frames(&deep)), Request::Good { envelope: 32, .. }));
        let long_hop = [b'h'; 256];
        assert_eq!(
            parse_request(&frames(&[b"c", &long_hop, b"", &[7], b"i", b"A:B", b"p"])),
            Request::EnvelopeFrameTooLong
        );
        let hop = [b'h'; 255];
        assert!(matches!(
            parse_request(&frames(&[b"c", &hop, b"", &[7], b"i", b"A:B", b"p"])),
            Request::Good { .. }
        ));
    }

    #[test]
    fn parses_responses_and_refuses_malformed_ones() {
        let ok = frames(&[b"ing", &[2], b"id", b"OK", b"d1", b""]);
        assert_eq!(parse_response(&ok), Some((&Bytes::from("id"), Status::Ok)));
        let err = frames(&[b"ing", &[2], b"id", b"ERROR"]);
        assert_eq!(parse_response(&err).map(|r| r.1), Some(Status::Error));
        for bad in [
            frames(&[b"ing", &[3], b"id", b"OK"]),
            frames(&[b"ing", &[2], b"id"]),
            frames(&[b"ing", &[2], b"id", b"MAYBE"]),
            frames(&[b"ing", &[2], b"id", b"ok"]),
            frames(&[b"ing", &[2, 2], b"id", b"OK"]),
        ] {
            assert_eq!(parse_response(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reply_puts_the_envelope_back() {
        let r = reply(frames(&[b"hop", b"c"]), Bytes::from("id"), "OK", &frames(&[b"a", b""]));
        assert_eq!(r, frames(&[b"hop", b"c", b"", &[8], b"id", b"OK", b"a", b""]));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_requests_are_answered_or_expire() {
        let mut table = PendingTable::new();
        let slot = crate::metrics::NO_PREFIX_SLOT;
        table.insert(Bytes::from("a"), frames(&[b"c1"]), Duration::from_secs(1), slot);
        table.insert(Bytes::from("b"), frames(&[b"c2"]), Duration::from_secs(2), slot);
        assert!(table.contains(b"a"));
        assert_eq!(table.take(b"a").map(|(e, _)| e), Some(frames(&[b"c1"])));
        assert!(table.take(b"a").is_none());
        let start = tokio::time::Instant::now();
        let (id, envelope, _) = std::future::poll_fn(|cx| table.poll_expired(cx)).await;
        assert_eq!((id, envelope), (Bytes::from("b"), frames(&[b"c2"])));
        assert!(start.elapsed() >= Duration::from_secs(2));
        assert!(table.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hundred_thousand_pending_requests_cost_o1_each() {
        let mut table = PendingTable::new();
        for i in 0..100_000u32 {
            let (c, slot) = (vec![Bytes::from_static(b"c")], crate::metrics::NO_PREFIX_SLOT);
            table.insert(Bytes::from(i.to_string()), c, Duration::from_secs(30), slot);
        }
        assert_eq!(table.len(), 100_000);
        let started = std::time::Instant::now();
        for i in (0..100_000u32).step_by(2) {
            assert!(table.take(i.to_string().as_bytes()).is_some());
        }
        println!("50,000 answers in {:?}", started.elapsed());
        tokio::time::advance(Duration::from_secs(31)).await;
        let started = std::time::Instant::now();
        let mut expired = 0;
        while !table.is_empty() {
            std::future::poll_fn(|cx| table.poll_expired(cx)).await;
            expired += 1;
        }
        println!("50,000 expiries in {:?}", started.elapsed());
        assert_eq!(expired, 50_000);
        assert!(table.is_empty());
    }
}
