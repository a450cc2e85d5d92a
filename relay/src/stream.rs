//! Streamed responses (protocol 1.1, `docs/relay-protocol.md` §7): an ingestor answers a request with
//! any number of `PARTIAL` chunks, then a final `OK` or `ERROR`.
//!
//! Each waiter (a pending request's client) takes the stream one of two ways, decided at its first
//! chunk ([`Delivery`]):
//!
//! - **Forward** (a DEALER or ROUTER client connected directly): each chunk goes out at once as its
//!   own `PARTIAL` reply, then the final. Nothing is held: memory is bounded by the client's queue
//!   (its HWM and byte cap), whatever the response's size. A chunk that cannot be queued ends the
//!   stream for that client (`"client too slow"`): a stream with a hole in it would be wrong data.
//! - **Assemble** (a REQ client, which takes exactly one reply; or anything the relay cannot see is a
//!   DEALER: a client behind a proxy, a peer that announced no `Socket-Type`): the chunks are held,
//!   copied, and sent with the final's frames as one reply. Capped per request
//!   (`max_message_bytes`, what one ingestor message may carry) and across all requests
//!   (`max_assembly_bytes`); beyond a cap that client gets `ERROR` with the reason at once.
//!
//! A stream that ended early stays pending (so its `request_id` is still a `DUPLICATE`) until the
//! final or the timeout; its later chunks and its final are dropped and counted
//! (`dropped kind="stream ended"`).
//!
//! [`Streams`] is the pure per-waiter state, keyed by the client's `request_id` (unique among pending
//! requests); the `Server` hooks at the bottom (`Server::deliver_chunk`, `Server::deliver_final`)
//! act for one waiter each, so a request several clients wait on calls them once per waiter.

use std::collections::HashMap;

use bytes::Bytes;
use zmtp::{Socket, SocketType};

use crate::logging::{DropKind, Id};
use crate::Server;

/// What each held frame is charged beyond its length: the `Bytes` handle and its allocation, so a
/// response of many empty frames cannot hold memory the caps do not see.
pub const FRAME_OVERHEAD: u64 = 64;

/// How a waiter takes a streamed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Each chunk as its own `PARTIAL` reply (DEALER, ROUTER).
    Forward,
    /// One assembled reply (REQ, or a client type the relay cannot see).
    Assemble,
}

impl Delivery {
    /// How the client whose reply envelope is `envelope` takes a stream: forwarded only to a DEALER or
    /// ROUTER connected directly (an envelope of one routing id); a REQ, a peer that announced no
    /// `Socket-Type`, a client that has left, and any client behind a proxy (whose own type the relay
    /// cannot see) get one assembled reply, which every requester can take.
    pub fn for_client(clients: &Socket, envelope: &[Bytes]) -> Delivery {
        match envelope {
            [routing_id] => match clients.peer_socket_type(routing_id) {
                Some(SocketType::Dealer | SocketType::Router) => Delivery::Forward,
                _ => Delivery::Assemble,
            },
            _ => Delivery::Assemble,
        }
    }
}

/// Streamed-response counters since start (for metrics and the `streams` line at shutdown).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounters {
    /// `PARTIAL` chunks received for a pending request.
    pub chunks_received: u64,
    /// Chunks forwarded to DEALER clients as `PARTIAL` replies.
    pub chunks_forwarded: u64,
    /// Chunks held for assembly (REQ clients).
    pub chunks_assembled: u64,
    /// Chunks not delivered: for a request not pending, for a stream that had ended for its client,
    /// the chunk that did not fit a cap, and the chunk a client's full queue refused.
    pub chunks_dropped: u64,
    /// Assembled replies sent (or attempted) to REQ clients.
    pub assembled_replies: u64,
    /// Streams ended early for their client: too large to assemble, assembly memory full, client too
    /// slow.
    pub streams_ended: u64,
}

/// One waiter's stream.
#[derive(Debug)]
enum Waiter {
    Forwarding,
    Assembling { frames: Vec<Bytes>, bytes: u64 },
    Ended { reason: String, told: bool },
}

/// What to do with a chunk for one waiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Send it to the client now as a `PARTIAL` reply.
    Forward,
    /// Held for the assembled reply; nothing to send.
    Held,
    /// The stream had already ended for this client: drop it (counted here).
    Dropped,
    /// The stream ends now for this client (a cap): answer `ERROR` with this reason.
    End(String),
}

/// What to send a waiter for the final response.
#[derive(Debug, PartialEq, Eq)]
pub enum Final {
    /// No chunk came (not streamed), or the chunks were forwarded: the final goes out as it is.
    AsIs,
    /// The assembled reply's data frames: every chunk's, then the final's.
    Assembled(Vec<Bytes>),
    /// With the final's frames the reply is over the cap: answer `ERROR` with this reason.
    TooLarge(String),
    /// The stream had ended for the client (the final is dropped); `Some(reason)`: the client was
    /// not told yet (its queue was full), so try `ERROR` with the reason again now.
    Ended(Option<String>),
}

/// Streams in progress, keyed by the client's `request_id`. Holds state only for pending requests
/// that have had a chunk; every way a pending request leaves must call [`Streams::finish`] or
/// [`Streams::abandon`] (both O(1), and free when no stream is in progress).
#[derive(Debug)]
pub struct Streams {
    waiters: HashMap<Bytes, Waiter>,
    /// Bytes held across every assembling waiter (frames charged [`FRAME_OVERHEAD`] each).
    assembling: u64,
    max_response: u64,
    max_total: u64,
    counters: StreamCounters,
}

impl Streams {
    /// No streams; assembled responses capped at `max_response` bytes each (`max_message_bytes`) and
    /// `max_total` bytes in all (`max_assembly_bytes`).
    pub fn new(max_response: u64, max_total: u64) -> Streams {
        Streams {
            waiters: HashMap::new(),
            assembling: 0,
            max_response,
            max_total,
            counters: StreamCounters::default(),
        }
    }

    /// The counters since start.
    pub fn counters(&self) -> StreamCounters {
        self.counters
    }

    /// Bytes held for assembly now (a gauge).
    pub fn assembling_bytes(&self) -> u64 {
        self.assembling
    }

    /// Streams in progress (ended ones included until their request leaves).
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether no stream is in progress.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Whether the waiter `request_id` has had a chunk (its final is then not the whole response: a
    /// response cache must not store it as one). O(1); free when no stream is in progress.
    pub fn is_streaming(&self, request_id: &[u8]) -> bool {
        !self.waiters.is_empty() && self.waiters.contains_key(request_id)
    }

    /// Counts a chunk for a request that is not pending (the caller counts the drop kind).
    pub fn not_pending(&mut self) {
        self.counters.chunks_dropped += 1;
    }

    /// A chunk (`data`: its data frames) for the waiter `request_id`, whose delivery `delivery` gives
    /// (asked only at its first chunk).
    pub fn chunk(&mut self, request_id: &[u8], delivery: impl FnOnce() -> Delivery, data: &[Bytes]) -> Chunk {
        self.counters.chunks_received += 1;
        let waiter = match self.waiters.get_mut(request_id) {
            Some(w) => w,
            None => {
                let waiter = match delivery() {
                    Delivery::Forward => Waiter::Forwarding,
                    Delivery::Assemble => Waiter::Assembling { frames: Vec::new(), bytes: 0 },
                };
                // A copy: the id as received is a slice of the connection's read buffer, which may
                // be a whole chunk.
                self.waiters.entry(Bytes::copy_from_slice(request_id)).or_insert(waiter)
            }
        };
        match waiter {
            Waiter::Forwarding => Chunk::Forward,
            Waiter::Ended { .. } => {
                self.counters.chunks_dropped += 1;
                Chunk::Dropped
            }
            Waiter::Assembling { frames, bytes } => {
                let size = cost(data);
                let reason = if *bytes + size > self.max_response {
                    Some(format!("response larger than {} bytes", self.max_response))
                } else if self.assembling + size > self.max_total {
                    Some(format!("relay assembly memory full ({} bytes)", self.max_total))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    self.counters.chunks_dropped += 1;
                    self.end(request_id, reason.clone());
                    return Chunk::End(reason);
                }
                // Copies, so a held frame keeps only its own bytes alive, not the read buffer it
                // arrived in (what the caps count is then what is held).
                frames.extend(data.iter().map(|f| Bytes::copy_from_slice(f)));
                *bytes += size;
                self.assembling += size;
                self.counters.chunks_assembled += 1;
                Chunk::Held
            }
        }
    }

    /// Counts a chunk that was (`true`) or could not be (`false`) queued to its client.
    pub fn forwarded(&mut self, sent: bool) {
        if sent {
            self.counters.chunks_forwarded += 1;
        } else {
            self.counters.chunks_dropped += 1;
        }
    }

    /// Ends the waiter's stream early (its held frames are freed): later chunks and the final are
    /// dropped. Then [`Streams::told`] once the client has its `ERROR`.
    pub fn end(&mut self, request_id: &[u8], reason: String) {
        let Some(waiter) = self.waiters.get_mut(request_id) else { return };
        if let Waiter::Assembling { bytes, .. } = waiter {
            self.assembling -= *bytes;
        }
        if !matches!(waiter, Waiter::Ended { .. }) {
            self.counters.streams_ended += 1;
        }
        *waiter = Waiter::Ended { reason, told: false };
    }

    /// The client of an ended stream has been sent its `ERROR`.
    pub fn told(&mut self, request_id: &[u8]) {
        if let Some(Waiter::Ended { told, .. }) = self.waiters.get_mut(request_id) {
            *told = true;
        }
    }

    /// The final response (`data`: its data frames) for the waiter `request_id`; its stream state is
    /// gone afterwards.
    pub fn finish(&mut self, request_id: &[u8], data: &[Bytes]) -> Final {
        if self.waiters.is_empty() {
            return Final::AsIs;
        }
        match self.waiters.remove(request_id) {
            None | Some(Waiter::Forwarding) => Final::AsIs,
            Some(Waiter::Ended { reason, told }) => Final::Ended((!told).then_some(reason)),
            Some(Waiter::Assembling { mut frames, bytes }) => {
                self.assembling -= bytes;
                self.counters.assembled_replies += 1;
                if bytes + cost(data) > self.max_response {
                    self.counters.streams_ended += 1;
                    return Final::TooLarge(format!("response larger than {} bytes", self.max_response));
                }
                frames.extend_from_slice(data);
                Final::Assembled(frames)
            }
        }
    }

    /// The waiter's request leaves without a final (timeout, shutdown); its stream state is gone
    /// afterwards. `None`: reply as usual (`TIMEOUT`, `UNAVAILABLE`); `Some(None)`: the stream had
    /// ended and the client has its `ERROR`, send nothing; `Some(Some(reason))`: it had ended but
    /// the client was not told, send `ERROR` with the reason.
    pub fn abandon(&mut self, request_id: &[u8]) -> Option<Option<String>> {
        if self.waiters.is_empty() {
            return None;
        }
        match self.waiters.remove(request_id)? {
            Waiter::Forwarding => None,
            Waiter::Assembling { bytes, .. } => {
                self.assembling -= bytes;
                None
            }
            Waiter::Ended { reason, told } => Some((!told).then_some(reason)),
        }
    }
}

/// What `data` is charged when held.
fn cost(data: &[Bytes]) -> u64 {
    data.iter().map(|f| f.len() as u64 + FRAME_OVERHEAD).sum()
}

// The request loop's hooks. Each acts for one waiter (`envelope`, `request_id`): a response shared by
// several waiters is delivered by calling them once per waiter.
impl Server {
    /// A `PARTIAL` chunk arrived for `request_id`: restarts its timeout and delivers the chunk.
    pub(crate) fn handle_chunk(&mut self, request_id: &Bytes, data: &[Bytes]) {
        let Some(envelope) = self.pending.touch(request_id, self.config.request_timeout) else {
            self.streams.not_pending();
            return self.drop_message(DropKind::ResponseNotPending, Id(request_id));
        };
        let envelope = envelope.to_vec();
        self.deliver_chunk(envelope, request_id, data);
    }

    /// Delivers one chunk to one waiter: forwarded, held, or dropped.
    pub(crate) fn deliver_chunk(&mut self, envelope: Vec<Bytes>, request_id: &Bytes, data: &[Bytes]) {
        let clients = &self.clients;
        let delivery = || Delivery::for_client(clients, &envelope);
        match self.streams.chunk(request_id, delivery, data) {
            Chunk::Forward => {
                let sent = self.send_reply(envelope.clone(), request_id.clone(), "PARTIAL", data);
                self.streams.forwarded(sent);
                if !sent {
                    // The client's queue is full (or it left): the rest of the stream cannot reach
                    // it intact.
                    self.end_stream(envelope, request_id, "client too slow".into());
                }
            }
            Chunk::Held => {}
            Chunk::Dropped => self.drop_message(DropKind::StreamEnded, Id(request_id)),
            Chunk::End(reason) => self.end_stream(envelope, request_id, reason),
        }
    }

    /// Ends a waiter's stream early and tries to tell its client `ERROR` with `reason` (tried again
    /// at the final or the timeout if its queue is full now).
    fn end_stream(&mut self, envelope: Vec<Bytes>, request_id: &Bytes, reason: String) {
        tracing::warn!(request_id = %Id(request_id), reason = %reason, "stream ended");
        self.streams.end(request_id, reason.clone());
        if self.send_reply(envelope, request_id.clone(), "ERROR", &[Bytes::from(reason)]) {
            self.streams.told(request_id);
        }
    }

    /// Delivers the final response (`status`, `data`) to one waiter, whose pending entry has been
    /// taken: as is, assembled with its chunks, or not at all if its stream had ended.
    pub(crate) fn deliver_final(
        &mut self,
        envelope: Vec<Bytes>,
        request_id: Bytes,
        status: &'static str,
        data: &[Bytes],
    ) {
        match self.streams.finish(&request_id, data) {
            Final::AsIs => {
                self.send_reply(envelope, request_id, status, data);
            }
            Final::Assembled(frames) => {
                self.send_reply(envelope, request_id, status, &frames);
            }
            Final::TooLarge(reason) => {
                tracing::warn!(request_id = %Id(&request_id), reason = %reason, "stream ended");
                self.send_reply(envelope, request_id, "ERROR", &[Bytes::from(reason)]);
            }
            Final::Ended(untold) => {
                self.drop_message(DropKind::StreamEnded, Id(&request_id));
                if let Some(reason) = untold {
                    self.send_reply(envelope, request_id, "ERROR", &[Bytes::from(reason)]);
                }
            }
        }
    }

    /// A pending request left without a final (timeout, shutdown): frees its stream, and gives the
    /// envelope back if the caller should still send its usual reply. A stream that had ended sends
    /// its `ERROR` instead if the client was not told yet, else nothing (it has its one reply).
    pub(crate) fn abandon_stream(&mut self, request_id: &Bytes, envelope: Vec<Bytes>) -> Option<Vec<Bytes>> {
        match self.streams.abandon(request_id) {
            None => Some(envelope),
            Some(None) => None,
            Some(Some(reason)) => {
                self.send_reply(envelope, request_id.clone(), "ERROR", &[Bytes::from(reason)]);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn data(n: usize, len: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(vec![i as u8; len])).collect()
    }

    #[test]
    fn forwards_every_chunk_and_the_final_as_is() {
        let mut s = Streams::new(1000, 1000);
        let mut asked = 0;
        for _ in 0..3 {
            let delivery = || {
                asked += 1;
                Delivery::Forward
            };
            assert_eq!(s.chunk(b"id", delivery, &data(1, 500)), Chunk::Forward);
            s.forwarded(true);
        }
        assert_eq!(asked, 1, "the client type is asked once per stream");
        assert!(s.is_streaming(b"id") && !s.is_streaming(b"other"));
        assert_eq!(s.assembling_bytes(), 0, "nothing held");
        assert_eq!(s.finish(b"id", &data(1, 10)), Final::AsIs);
        assert!(s.is_empty());
        assert!(!s.is_streaming(b"id"));
        let c = s.counters();
        assert_eq!((c.chunks_received, c.chunks_forwarded, c.chunks_dropped), (3, 3, 0));
    }

    #[test]
    fn assembles_chunks_then_the_final_in_order() {
        let mut s = Streams::new(1000, 1000);
        let chunks = [vec![b("a"), b("b")], vec![], vec![b("c")]];
        for chunk in &chunks {
            assert_eq!(s.chunk(b"id", || Delivery::Assemble, chunk), Chunk::Held);
        }
        assert_eq!(s.assembling_bytes(), 3 * (1 + FRAME_OVERHEAD));
        assert_eq!(s.finish(b"id", &[b("d")]), Final::Assembled(vec![b("a"), b("b"), b("c"), b("d")]));
        assert_eq!(s.assembling_bytes(), 0);
        assert!(s.is_empty());
        assert_eq!(s.counters().chunks_assembled, 3);
        assert_eq!(s.counters().assembled_replies, 1);
    }

    #[test]
    fn a_response_over_the_cap_ends_the_stream_once() {
        let per_frame = 100 + FRAME_OVERHEAD;
        let mut s = Streams::new(3 * per_frame, 1 << 20);
        for _ in 0..3 {
            assert_eq!(s.chunk(b"id", || Delivery::Assemble, &data(1, 100)), Chunk::Held);
        }
        let Chunk::End(reason) = s.chunk(b"id", || Delivery::Assemble, &data(1, 100)) else { panic!() };
        assert_eq!(reason, format!("response larger than {} bytes", 3 * per_frame));
        assert_eq!(s.assembling_bytes(), 0, "freed at once");
        s.told(b"id");
        assert_eq!(s.chunk(b"id", || Delivery::Assemble, &data(1, 1)), Chunk::Dropped);
        assert_eq!(s.finish(b"id", &[]), Final::Ended(None), "told already: nothing more to send");
        let c = s.counters();
        assert_eq!((c.chunks_assembled, c.chunks_dropped, c.streams_ended), (3, 2, 1));
        // Under the cap with the chunks, over it with the final's frames.
        assert_eq!(s.chunk(b"id2", || Delivery::Assemble, &data(1, 100)), Chunk::Held);
        assert!(matches!(s.finish(b"id2", &data(3, 100)), Final::TooLarge(_)));
        assert_eq!(s.assembling_bytes(), 0);
    }

    #[test]
    fn the_total_cap_is_shared_by_every_assembly() {
        let per_frame = 100 + FRAME_OVERHEAD;
        let mut s = Streams::new(10 * per_frame, 3 * per_frame);
        assert_eq!(s.chunk(b"a", || Delivery::Assemble, &data(2, 100)), Chunk::Held);
        assert_eq!(s.chunk(b"b", || Delivery::Assemble, &data(1, 100)), Chunk::Held);
        let Chunk::End(reason) = s.chunk(b"b", || Delivery::Assemble, &data(1, 100)) else { panic!() };
        assert!(reason.contains("assembly memory full"), "{reason}");
        assert_eq!(s.assembling_bytes(), 2 * per_frame, "b's share freed, a's kept");
        // Forwarded streams hold nothing, so they are never refused for memory.
        assert_eq!(s.chunk(b"c", || Delivery::Forward, &data(5, 100)), Chunk::Forward);
        assert_eq!(s.finish(b"a", &[]), Final::Assembled(data(2, 100)));
        assert_eq!(s.assembling_bytes(), 0);
    }

    #[test]
    fn an_untold_client_is_told_at_the_final_or_the_timeout() {
        let mut s = Streams::new(1000, 1000);
        assert_eq!(s.chunk(b"a", || Delivery::Forward, &[]), Chunk::Forward);
        s.forwarded(false);
        s.end(b"a", "client too slow".into());
        assert_eq!(s.finish(b"a", &[]), Final::Ended(Some("client too slow".into())));
        assert_eq!(s.chunk(b"b", || Delivery::Forward, &[]), Chunk::Forward);
        s.end(b"b", "client too slow".into());
        assert_eq!(s.abandon(b"b"), Some(Some("client too slow".into())));
        assert!(s.is_empty());
    }

    #[test]
    fn abandoning_frees_what_was_held() {
        let mut s = Streams::new(1000, 1000);
        assert_eq!(s.abandon(b"nothing"), None);
        assert_eq!(s.chunk(b"a", || Delivery::Assemble, &data(2, 10)), Chunk::Held);
        assert_eq!(s.chunk(b"f", || Delivery::Forward, &data(2, 10)), Chunk::Forward);
        assert_eq!(s.abandon(b"a"), None, "the usual TIMEOUT goes out");
        assert_eq!(s.abandon(b"f"), None);
        assert_eq!(s.assembling_bytes(), 0);
        assert!(s.is_empty());
        // A stream that was never seen finishes as is.
        assert_eq!(s.finish(b"x", &[b("d")]), Final::AsIs);
    }

    /// Random sequences of chunks, ends, finals and abandons on a few waiters, against a model: the
    /// bytes held always equal what the assembling waiters hold and never pass either cap, and every
    /// assembled reply is exactly the chunks' frames then the final's.
    #[test]
    fn random_streams_match_a_model_and_stay_under_the_caps() {
        #[derive(Clone)]
        enum M {
            Fwd,
            Asm(Vec<Bytes>, u64),
            Ended(bool),
        }
        let (max_response, max_total) = (2_000, 3_000);
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut s = Streams::new(max_response, max_total);
        let mut model: HashMap<Vec<u8>, M> = HashMap::new();
        for step in 0..20_000 {
            let id = vec![b'a' + next(4) as u8];
            let frames: Vec<Bytes> =
                (0..next(3)).map(|_| Bytes::from(vec![step as u8; next(400) as usize])).collect();
            match next(10) {
                0..=5 => {
                    let forward = next(2) == 0;
                    let delivery = || if forward { Delivery::Forward } else { Delivery::Assemble };
                    let got = s.chunk(&id, delivery, &frames);
                    let held: u64 = model.values().map(|m| if let M::Asm(_, b) = m { *b } else { 0 }).sum();
                    let entry = model.entry(id.clone()).or_insert_with(|| {
                        if forward {
                            M::Fwd
                        } else {
                            M::Asm(Vec::new(), 0)
                        }
                    });
                    match entry {
                        M::Fwd => assert_eq!(got, Chunk::Forward),
                        M::Ended(_) => assert_eq!(got, Chunk::Dropped),
                        M::Asm(held_frames, bytes) => {
                            let size = cost(&frames);
                            if *bytes + size > max_response || held + size > max_total {
                                assert!(matches!(got, Chunk::End(_)), "{got:?}");
                                *entry = M::Ended(false);
                            } else {
                                assert_eq!(got, Chunk::Held);
                                held_frames.extend(frames.iter().cloned());
                                *bytes += size;
                            }
                        }
                    }
                    if let (Chunk::Forward, 0) = (&got, next(4)) {
                        s.end(&id, "client too slow".into());
                        model.insert(id.clone(), M::Ended(false));
                    }
                }
                6 => {
                    if let Some(M::Ended(told)) = model.get_mut(&id) {
                        s.told(&id);
                        *told = true;
                    }
                }
                7 | 8 => {
                    let got = s.finish(&id, &frames);
                    match model.remove(&id) {
                        None | Some(M::Fwd) => assert_eq!(got, Final::AsIs),
                        Some(M::Ended(told)) => {
                            assert_eq!(got, Final::Ended((!told).then(|| "x".into())).map_reason(&got))
                        }
                        Some(M::Asm(mut held, bytes)) => {
                            if bytes + cost(&frames) > max_response {
                                assert!(matches!(got, Final::TooLarge(_)), "{got:?}");
                            } else {
                                held.extend(frames.iter().cloned());
                                assert_eq!(got, Final::Assembled(held));
                            }
                        }
                    }
                }
                _ => {
                    let got = s.abandon(&id);
                    match model.remove(&id) {
                        Some(M::Ended(told)) => assert_eq!(got.map(|r| r.is_some()), Some(!told)),
                        _ => assert_eq!(got, None),
                    }
                }
            }
            let held: u64 = model.values().map(|m| if let M::Asm(_, b) = m { *b } else { 0 }).sum();
            assert_eq!(s.assembling_bytes(), held, "step {step}");
            assert!(held <= max_total);
            assert_eq!(s.len(), model.len());
        }
        let c = s.counters();
        assert!(c.chunks_assembled > 100 && c.streams_ended > 100, "the caps were reached: {c:?}");
    }

    impl Final {
        /// `self` with the reason of `other` when both are `Ended(Some(_))` (reasons vary by cap).
        fn map_reason(self, other: &Final) -> Final {
            match (self, other) {
                (Final::Ended(Some(_)), Final::Ended(Some(r))) => Final::Ended(Some(r.clone())),
                (this, _) => this,
            }
        }
    }

    #[test]
    fn held_frames_are_copies() {
        let mut s = Streams::new(1 << 20, 1 << 20);
        let buffer = Bytes::from(vec![7u8; 4096]);
        let frame = buffer.slice(0..10);
        assert_eq!(s.chunk(b"id", || Delivery::Assemble, std::slice::from_ref(&frame)), Chunk::Held);
        let Final::Assembled(frames) = s.finish(b"id", &[]) else { panic!() };
        assert_eq!(frames[0], frame);
        assert_ne!(frames[0].as_ptr(), frame.as_ptr(), "the read buffer is not kept alive");
    }
}
