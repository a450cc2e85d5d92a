//! [`Connection`]: one ZMTP connection as a sans-IO state machine.
//!
//! ```text
//!   bytes in ──► handle_input / read_buffer + handle_read ──┐
//!   now ───────► handle_timeout                             │   poll_event ──► Event
//!   messages ──► send_message / send_subscribe / cancel     ├─► transmit_mut ──► bytes out (vectored)
//!                                                           │   poll_timeout ──► next deadline
//! ```
//!
//! Input is decoded lazily, in [`Connection::poll_event`]: a caller whose queue is full simply stops
//! polling (and reading), and the undecoded bytes wait in the read buffer, so back-pressure needs no
//! extra queue here. The caller must drain `poll_event` after feeding input: handshake replies, PONGs
//! and ERRORs are produced while decoding.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::body_pool;
use super::command::{Command, MAX_PING_CONTEXT};
use super::config::ConnectionConfig;
use super::error::{ConnectionError, ProtocolError, SendError};
use super::frame::{FrameFlags, FrameHeader};
use super::greeting::{mechanism_bytes, Greeting, Version};
use super::mechanism::{HandshakeStatus, Mechanism, Null};
use super::metadata::Metadata;
use super::socket_type::SocketType;
use super::transmit::TransmitQueue;
use crate::message::Msg;

/// Smallest read the runtime should offer (one read then carries many small frames).
const MIN_READ: usize = 8 * 1024;
/// Largest single reservation suggested for a read, so a large announced frame grows the buffer only
/// as its bytes arrive.
const MAX_READ: usize = 256 * 1024;
/// Frames with a body at least this long are read into a buffer of their own (see
/// [`Connection::read_buffer`]).
const OWN_BUFFER_MIN: usize = body_pool::POOLED_MIN;
/// How far a frame's own buffer may run ahead of the body octets that have arrived: it is allocated
/// only once `arrived × 2 + OWN_BUFFER_AHEAD` covers the whole body, so a header alone makes us
/// allocate at most this much (libzmq allocates the announced size, up to its maximum).
const OWN_BUFFER_AHEAD: usize = 64 * 1024;
/// The read that follows a frame read into its own buffer takes at most this much: enough for the
/// next header and a little, so that if the next frame is large too, little of it is read into the
/// ordinary buffer and copied over (a small read costs no more than the larger one it replaces).
const AFTER_OWN_BUFFER_READ: usize = 64;
/// Largest block a run of full reads grows the read block to (see [`Connection::read_buffer`]).
const BUSY_READ_MAX: usize = 64 * 1024;
/// Read block before the handshake completes: a greeting (64 octets) and a READY with a socket type
/// and a short identity fit in one. Doubles as the octets arrive when they do not.
const HANDSHAKE_READ: usize = 256;
/// Room for our greeting and READY, reserved when the connection is created (instead of the transmit
/// queue's first 4 KiB block).
const HANDSHAKE_TRANSMIT: usize = 256;

/// What the peer told us in its greeting and handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The version both sides speak (the lower of the two; a higher major is spoken to as 3.1).
    pub version: Version,
    /// The version the peer announced.
    pub announced_version: Version,
    /// The peer's socket type; `None` if it sent no `Socket-Type` (libzmq accepts that; so do we).
    pub socket_type: Option<SocketType>,
    /// The peer's metadata as sent.
    pub metadata: Metadata,
}

impl PeerInfo {
    /// The `Identity` the peer announced, if any (possibly empty).
    pub fn identity(&self) -> Option<&Bytes> {
        self.metadata.identity()
    }

    /// The identity a ROUTER should route by: `None` when the peer sent none, an empty one, or one
    /// starting with `0x00` (RFC 37 reserves those; the ROUTER then generates an id, so a peer can
    /// never collide with a generated id).
    pub fn routing_id(&self) -> Option<&Bytes> {
        self.identity().filter(|id| id.first().is_some_and(|&b| b != 0))
    }
}

/// What a connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake is complete: the connection may now be routed to. Until this event a connection
    /// must be invisible to routing, HWM accounting and subscriptions (CVE-2020-15166).
    HandshakeComplete(PeerInfo),
    /// A complete message. Never a partial one.
    Message(Msg),
    /// The peer subscribed to a topic (SUBSCRIBE command, or a 3.0 `0x01` message). Only reported to
    /// PUB and XPUB sockets; other socket types drop subscriptions.
    Subscribe(Bytes),
    /// The peer cancelled a subscription (CANCEL command, or a 3.0 `0x00` message).
    Cancel(Bytes),
    /// The connection is over. Reported exactly once; flush [`Connection::transmit_mut`] (it may hold
    /// an ERROR for the peer), then close the transport.
    Closed(ConnectionError),
}

/// Counters of things a connection dropped or ignored rather than reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Complete messages decoded.
    pub messages_received: u64,
    /// Unknown commands, and commands meaningless here (a second READY), that were ignored.
    pub commands_ignored: u64,
    /// SUBSCRIBE/CANCEL received by a socket type that takes no subscriptions (never surfaced as data).
    pub subscriptions_dropped: u64,
    /// PINGs answered.
    pub pongs_sent: u64,
    /// PINGs not answered because our previous PONG was still unsent (at most one PONG is pending).
    pub pongs_skipped: u64,
    /// PINGs we sent.
    pub pings_sent: u64,
}

/// `now + after`, or `None` (never) when there is no duration, it is zero (libzmq's "0 = off"), or
/// the sum does not fit in an `Instant`.
fn deadline(now: Instant, after: Option<Duration>) -> Option<Instant> {
    after.filter(|d| !d.is_zero()).and_then(|d| now.checked_add(d))
}

/// What one decoding step produced.
enum Step {
    /// An event to report.
    Event(Event),
    /// Progress without an event (a command handled, a frame of a multipart message buffered).
    Continue,
    /// The buffered bytes hold no complete unit.
    NeedInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's greeting.
    Greeting,
    /// Greetings exchanged; the mechanism's handshake is running.
    Handshake,
    /// Messages may flow.
    Ready,
    /// Over; `Event::Closed` has been queued.
    Closed,
}

/// A large frame being read into a buffer of its own (see [`Connection::read_buffer`]).
#[derive(Debug)]
struct OwnBufferFrame {
    flags: FrameFlags,
    /// The body's length (the header's, checked against the limits).
    len: usize,
    /// The octets of the body received so far, in a buffer with room for all of it.
    body: BytesMut,
}

/// One ZMTP 3.x connection, either role, with no I/O.
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    mechanism: Box<dyn Mechanism>,
    local_metadata: Metadata,
    state: State,
    read_buf: BytesMut,
    /// The large frame being read into a buffer of its own (while set, `read_buf` is empty).
    own: Option<OwnBufferFrame>,
    /// A frame read into its own buffer just completed and nothing was read since.
    after_own: bool,
    /// The block size the next reservation uses at least: doubles after a read that filled all the
    /// room offered (the peer has more waiting), halves after one that used under an eighth.
    read_hint: usize,
    /// The room the last `read_buffer` offered in the ordinary block (0: none, or not the block).
    read_offered: usize,
    /// Body octets still missing for the frame at the front of `read_buf` (0 when unknown).
    want: usize,
    transmit: TransmitQueue,
    events: VecDeque<Event>,
    version: Option<Version>,
    /// The version in the peer's greeting.
    announced_version: Option<Version>,
    peer: Option<PeerInfo>,
    /// Frames of the message being received.
    partial: Vec<Bytes>,
    partial_bytes: u64,
    /// The peer closed its side; report once every complete frame is decoded.
    eof: bool,
    last_input: Instant,
    /// The latest `now` any input carried.
    latest_now: Instant,
    handshake_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    ttl_deadline: Option<(Instant, Duration)>,
    /// A decoded PING's TTL, armed at the next `handle_timeout(now)` (decoding has no clock):
    /// `poll_timeout` asks for that call at once.
    ttl_to_arm: Option<Duration>,
    /// Our PING is queued behind unsent bytes: its timeout starts once it is written (libzmq starts
    /// it when the PING is encoded for the socket), so a slow but healthy peer is not timed out for
    /// traffic it has not been sent yet.
    ping_unsent: bool,
    /// Stream offset just past our last queued PONG / PING: another is queued only once it is sent.
    pong_end: u64,
    ping_end: u64,
    stats: Stats,
}

impl Connection {
    /// A connection using the NULL mechanism, started at `now`. Our greeting is queued at once (RFC 23
    /// allows waiting for the peer's first octets; sending everything up front can never deadlock).
    pub fn new(config: ConnectionConfig, now: Instant) -> Connection {
        Connection::with_mechanism(config, Box::new(Null::new()), now)
    }

    /// A connection using `mechanism`, started at `now`.
    pub fn with_mechanism(
        config: ConnectionConfig,
        mechanism: Box<dyn Mechanism>,
        now: Instant,
    ) -> Connection {
        let mut transmit = TransmitQueue::new();
        transmit.set_inline_max(config.inline_body_max);
        transmit.reserve_tail(HANDSHAKE_TRANSMIT);
        let greeting = Greeting {
            version: config.version,
            mechanism: mechanism.name(),
            as_server: mechanism.as_server(),
            // libzmq: the identity length + 1 as a 64-bit big-endian number (a ZMTP 1.0 length prefix).
            padding: (config.identity.len() as u64 + 1).to_be_bytes(),
        };
        transmit.write_with(greeting.encoded_len(), |b| greeting.encode(b));
        Connection {
            local_metadata: config.local_metadata(),
            handshake_deadline: deadline(now, config.handshake_timeout),
            config,
            mechanism,
            state: State::Greeting,
            read_buf: BytesMut::new(),
            own: None,
            after_own: false,
            read_hint: MIN_READ,
            read_offered: 0,
            want: 0,
            transmit,
            events: VecDeque::new(),
            version: None,
            announced_version: None,
            peer: None,
            partial: Vec::new(),
            partial_bytes: 0,
            eof: false,
            last_input: now,
            latest_now: now,
            next_ping: None,
            pong_deadline: None,
            ttl_deadline: None,
            ttl_to_arm: None,
            ping_unsent: false,
            pong_end: 0,
            ping_end: 0,
            stats: Stats::default(),
        }
    }

    // ----- inputs -----

    /// Feeds received bytes (copied into the read buffer). Then drain [`Connection::poll_event`].
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Closed || data.is_empty() {
            return;
        }
        match &mut self.own {
            Some(own) => own.body.extend_from_slice(data),
            None => self.read_buf.extend_from_slice(data),
        }
        self.note_traffic(now);
    }

    /// The read buffer, with room for the next read: read straight into it (no copy), then call
    /// [`Connection::handle_read`].
    ///
    /// Room is added only when little is left (under 1 KiB), or when a frame being received needs more
    /// than the (under 8 KiB) left. Each addition is the larger of 8 KiB and what has already arrived
    /// of the frame or message being received, at most 256 KiB: an announced length alone never
    /// allocates ahead of its bytes, and a large frame's buffer grows geometrically as its bytes arrive.
    /// Small frames delivered one per read share one block instead of each pinning a fresh one, and a
    /// long multipart message wastes little at block boundaries. While reads keep filling all the room
    /// offered (a busy peer), the block doubles per full read up to 64 KiB, so a stream of 4 KiB
    /// messages costs one read per 16 of them rather than per 2; reads that use under an eighth of the
    /// room halve it again. It grows only after reads that were filled: by octets that arrived.
    ///
    /// Frames are zero-copy slices of these blocks, so a retained small message keeps its whole block
    /// (up to 256 KiB) alive: a socket that bounds its queues in bytes should count that, as libzmq's
    /// shared batch buffers have the same property.
    ///
    /// A frame whose body is at least 16 KiB is instead read into a buffer of its own, exactly the
    /// body's size, once the octets that have arrived make that safe (arrived × 2 + 64 KiB covers the
    /// body): the octets already buffered are copied over once, the rest is read straight into it, and
    /// the frame is handed on without further copies. These buffers come from, and return to, a small
    /// bounded pool, so large messages do not make the allocator map and unmap pages per burst. If more
    /// than the body is put into that buffer (a caller writing past the room offered), the excess is
    /// moved back to the ordinary read buffer.
    ///
    /// Until the handshake completes the buffer is a small block instead (see
    /// [`Connection::handshake_read_buffer`]).
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.read_offered = 0;
        if self.own.is_some() {
            return match &mut self.own {
                Some(own) => &mut own.body,
                None => &mut self.read_buf,
            };
        }
        if self.after_own && self.read_buf.is_empty() {
            if self.read_buf.capacity() != AFTER_OWN_BUFFER_READ {
                self.read_buf = BytesMut::with_capacity(AFTER_OWN_BUFFER_READ);
            }
            return &mut self.read_buf;
        }
        if self.state != State::Ready {
            return self.handshake_read_buffer();
        }
        const LOW_WATER: usize = 1024;
        let spare = self.read_buf.capacity() - self.read_buf.len();
        let arrived = self.read_buf.len().max(usize::try_from(self.partial_bytes).unwrap_or(MAX_READ));
        let block = arrived.clamp(MIN_READ, MAX_READ).max(self.read_hint);
        if spare < LOW_WATER || (self.want > spare && spare < MIN_READ) {
            self.read_buf.reserve(block);
        }
        self.read_offered = self.read_buf.capacity() - self.read_buf.len();
        &mut self.read_buf
    }

    /// [`Connection::read_buffer`] before the handshake completes: room is added only when under 64
    /// octets are left, the larger of [`HANDSHAKE_READ`] and what is buffered (doubling as octets
    /// arrive; never by an announced length). Many connections in handshake then hold a few hundred
    /// octets each rather than 8 KiB, and so does the block the peer's metadata (slices of it) keeps
    /// for the connection's life. The first read after the handshake moves to an 8 KiB block.
    fn handshake_read_buffer(&mut self) -> &mut BytesMut {
        if self.read_buf.capacity() - self.read_buf.len() < 64 {
            self.read_buf.reserve(self.read_buf.len().max(HANDSHAKE_READ));
        }
        &mut self.read_buf
    }

    /// The transport has nothing to read now (a read would block) and the caller is about to wait:
    /// an idle connection gives back its buffers, so that thousands of idle connections hold none.
    ///
    /// After the handshake, the read buffer is freed when it holds no undecoded octet, no message is
    /// part-received, and no decoded frame still points into its block (freeing a shared block would
    /// free nothing, and the next read would start a new block where the spare room of this one could
    /// have served: a peer trickling small messages that wait in a queue would pin a block each). The
    /// transmit queue's header block is freed when nothing is waiting to be written.
    ///
    /// Costs one allocation at the next read (or write): call it only once a read found nothing,
    /// not after every read. A caller that can wait for readability without a buffer should do so
    /// while [`Connection::buffered_input`] is 0, then call this, and take [`Connection::read_buffer`]
    /// only once the transport is readable.
    pub fn handle_idle(&mut self) {
        if self.state != State::Ready {
            return;
        }
        if self.read_buf.is_empty() && self.partial.is_empty() && self.read_buf.capacity() > 0 {
            // Asking for one octet more than the spare room succeeds without allocating only if this
            // handle is the block's sole owner and has consumed octets from it (so it may move back
            // to the start). A block nothing was consumed from (reserved for a read that found
            // nothing) fails the test and is kept: it is rare, and kept blocks are only ever reused.
            let spare = self.read_buf.capacity();
            if self.read_buf.try_reclaim(spare + 1) {
                self.read_buf = BytesMut::new();
            }
        }
        self.transmit.release_idle();
    }

    /// Records that `n` bytes were read into [`Connection::read_buffer`] at `now`.
    pub fn handle_read(&mut self, now: Instant, n: usize) {
        if self.state == State::Closed {
            self.read_buf.clear();
            return;
        }
        if self.read_offered > 0 {
            if n >= self.read_offered {
                self.read_hint = (self.read_hint * 2).min(BUSY_READ_MAX);
            } else if n < self.read_offered / 8 {
                self.read_hint = (self.read_hint / 2).max(MIN_READ);
            }
            self.read_offered = 0;
        }
        if n > 0 {
            self.after_own = false;
            self.note_traffic(now);
        }
    }

    /// The peer closed its side (end of stream). Complete frames already received are still reported;
    /// a partial message is dropped whole (RFC 23: messages are atomic; CVE-2021-20234).
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// Closes the connection from our side: the partial message is dropped and `Closed(LocallyClosed)`
    /// is reported.
    pub fn close(&mut self) {
        self.fail(ConnectionError::LocallyClosed);
    }

    /// Fires the timers that are due at `now`: handshake timeout, heartbeat PING, heartbeat timeout and
    /// the peer's TTL. Then drain [`Connection::poll_event`] and the transmit queue.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        self.latest_now = self.latest_now.max(now);
        if let Some(ttl) = self.ttl_to_arm.take() {
            self.ttl_deadline = deadline(now, Some(ttl)).map(|d| (d, ttl));
        }
        if self.ping_unsent && self.transmit.sent_offset() >= self.ping_end {
            self.ping_unsent = false;
            self.pong_deadline = deadline(now, self.config.heartbeat.effective_timeout());
        }
        if self.handshake_deadline.is_some_and(|d| d <= now) {
            let t = self.config.handshake_timeout.unwrap_or_default();
            return self.fail(ConnectionError::HandshakeTimeout(t));
        }
        if let Some((deadline, ttl)) = self.ttl_deadline {
            if deadline <= now {
                return self.fail(ConnectionError::PeerTtlExpired(ttl));
            }
        }
        if self.pong_deadline.is_some_and(|d| d <= now) {
            let t = self.config.heartbeat.effective_timeout().unwrap_or_default();
            return self.fail(ConnectionError::HeartbeatTimeout(t));
        }
        if let (Some(due), Some(interval)) = (self.next_ping, self.config.heartbeat.active_interval()) {
            if due <= now {
                self.send_ping(now);
                self.next_ping = deadline(now, Some(interval));
            }
        }
    }

    // ----- outputs -----

    /// The next event, decoding buffered input as needed. `None` when more input (or time) is needed.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            let step = match self.state {
                State::Closed => return None,
                State::Greeting => self.step_greeting(),
                State::Handshake | State::Ready => self.step_frame(),
            };
            match step {
                Ok(Step::Event(ev)) => return Some(ev),
                Ok(Step::Continue) => {}
                Ok(Step::NeedInput) if self.eof => {
                    let error = if self.state == State::Ready {
                        let mid_message =
                            !self.partial.is_empty() || !self.read_buf.is_empty() || self.own.is_some();
                        ConnectionError::PeerClosed { mid_message }
                    } else {
                        ConnectionError::PeerClosedDuringHandshake
                    };
                    self.fail(error);
                }
                Ok(Step::NeedInput) => return None,
                Err(e) => self.fail(e),
            }
        }
    }

    /// The earliest deadline at which [`Connection::handle_timeout`] must be called. Call it again
    /// after draining events and after every write: it may return an instant that has already passed
    /// (a PING was just decoded, or our PING was just written, and its timer starts now), which means
    /// "call `handle_timeout` at once".
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let arm_now =
            self.ttl_to_arm.is_some() || (self.ping_unsent && self.transmit.sent_offset() >= self.ping_end);
        [
            arm_now.then_some(self.latest_now),
            self.handshake_deadline,
            self.ttl_deadline.map(|(d, _)| d),
            self.pong_deadline,
            self.next_ping,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The bytes waiting to be written. Write with [`Buf::chunks_vectored`] and consume with
    /// [`Buf::advance`].
    pub fn transmit_mut(&mut self) -> &mut TransmitQueue {
        &mut self.transmit
    }

    /// The bytes waiting to be written.
    pub fn transmit(&self) -> &TransmitQueue {
        &self.transmit
    }

    /// Takes every queued byte as one contiguous buffer (copies; for tests and simple callers).
    pub fn take_transmit(&mut self) -> Vec<u8> {
        self.transmit.take_all()
    }

    // ----- sending -----

    /// Queues a message. Bodies are queued as the caller's `Bytes`, never copied.
    pub fn send_message(&mut self, msg: Msg) -> Result<(), SendError<Msg>> {
        match self.state {
            State::Ready => {}
            State::Closed => return Err(SendError::Closed(msg)),
            _ => return Err(SendError::NotReady(msg)),
        }
        if msg.is_empty() {
            return Err(SendError::EmptyMessage);
        }
        let last = msg.len() - 1;
        for (i, body) in msg.into_iter().enumerate() {
            let header = FrameHeader::data(body.len(), i != last);
            self.transmit.write_with(header.encoded_len(), |b| header.encode(b));
            self.transmit.push_body(body);
        }
        Ok(())
    }

    /// Sends a subscription: a SUBSCRIBE command to a 3.1 peer, a `0x01`+topic message to a 3.0 peer
    /// (RFC 37: "A ZMTP 3.1 peer talking to a ZMTP 3.0 peer MUST use the 3.0 message form").
    pub fn send_subscribe(&mut self, topic: Bytes) -> Result<(), SendError<Bytes>> {
        self.send_subscription(topic, true)
    }

    /// Cancels a subscription (CANCEL command, or `0x00`+topic to a 3.0 peer).
    pub fn send_cancel(&mut self, topic: Bytes) -> Result<(), SendError<Bytes>> {
        self.send_subscription(topic, false)
    }

    fn send_subscription(&mut self, topic: Bytes, subscribe: bool) -> Result<(), SendError<Bytes>> {
        match self.state {
            State::Ready => {}
            State::Closed => return Err(SendError::Closed(topic)),
            _ => return Err(SendError::NotReady(topic)),
        }
        if self.version.is_some_and(Version::has_commands_3_1) {
            let cmd = if subscribe { Command::Subscribe(topic) } else { Command::Cancel(topic) };
            self.queue_command(&cmd);
        } else {
            let header = FrameHeader::data(topic.len() + 1, false);
            self.transmit.write_with(header.encoded_len() + 1, |b| {
                header.encode(b);
                b.put_u8(u8::from(subscribe));
            });
            self.transmit.push_body(topic);
        }
        Ok(())
    }

    // ----- state -----

    /// Whether the handshake is complete and the connection not closed.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the connection is over (flush the transmit queue, then close the transport).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// What the peer told us, once the handshake is complete.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// The negotiated version, once the greeting is received.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Counters of dropped and ignored input.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes received and not yet decoded.
    pub fn buffered_input(&self) -> usize {
        self.read_buf.len() + self.own.as_ref().map_or(0, |own| own.body.len())
    }

    /// The configuration.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    // ----- internals -----

    fn note_traffic(&mut self, now: Instant) {
        // RFC 37: "SHOULD treat any incoming traffic (not just a PONG reply) as a sign of life"; partial
        // frames count too (a slow large frame is still traffic).
        self.last_input = now;
        self.latest_now = self.latest_now.max(now);
        self.pong_deadline = None;
        self.ping_unsent = false;
        self.ttl_deadline = None;
        self.ttl_to_arm = None;
    }

    fn fail(&mut self, error: ConnectionError) {
        if self.state == State::Closed {
            return;
        }
        if let ConnectionError::Protocol(e) = &error {
            if let Some(reason) = e.error_reason() {
                self.queue_command(&Command::Error { reason: Bytes::from_static(reason.as_bytes()) });
            }
        }
        self.state = State::Closed;
        self.read_buf = BytesMut::new();
        self.own = None;
        self.partial = Vec::new();
        self.partial_bytes = 0;
        self.handshake_deadline = None;
        self.next_ping = None;
        self.pong_deadline = None;
        self.ping_unsent = false;
        self.ttl_deadline = None;
        self.ttl_to_arm = None;
        self.events.push_back(Event::Closed(error));
    }

    fn queue_command(&mut self, cmd: &Command) {
        self.transmit.write_with(cmd.encoded_len(), |b| cmd.encode(b));
    }

    fn step_greeting(&mut self) -> Result<Step, ConnectionError> {
        let Some(greeting) = Greeting::decode(&self.read_buf)? else {
            return Ok(Step::NeedInput);
        };
        self.read_buf.advance(greeting.encoded_len());
        // RFC 23: "If the mechanism that the peer received does not exactly match the mechanism it
        // sent, it MUST close the connection." Exact 20-octet compare (CVE-2014-7202).
        if greeting.mechanism != self.mechanism.name() {
            return Err(ProtocolError::MechanismMismatch {
                ours: self.mechanism.name().as_str(),
                theirs: mechanism_bytes(&greeting.mechanism),
            }
            .into());
        }
        self.mechanism.check_peer_as_server(greeting.as_server)?;
        self.version = Some(Version::negotiate(self.config.version, greeting.version));
        self.announced_version = Some(greeting.version);
        self.state = State::Handshake;
        let mut out = Vec::new();
        self.mechanism.start(&self.local_metadata, &mut out);
        for cmd in &out {
            self.queue_command(cmd);
        }
        Ok(Step::Continue)
    }

    /// Decodes the frame at the front of the read buffer, checking every limit against its header
    /// before any body octet is buffered.
    fn next_frame(&mut self) -> Result<Option<(FrameFlags, Bytes)>, ProtocolError> {
        if let Some(own) = &mut self.own {
            let Some(excess) = own.body.len().checked_sub(own.len) else {
                self.want = own.len - own.body.len();
                return Ok(None);
            };
            // Complete. Octets past the body (only if a caller wrote past the room offered) belong to
            // the next frames: back to the ordinary buffer, which is empty while `own` is set.
            if excess > 0 {
                self.read_buf.extend_from_slice(&own.body[own.len..]);
                own.body.truncate(own.len);
            }
            let flags = own.flags;
            let body = self.own.take().map(|own| own.body).unwrap_or_default();
            self.want = 0;
            self.after_own = true;
            return Ok(Some((flags, body_pool::freeze(body))));
        }
        let Some((header, header_len)) = FrameHeader::decode(&self.read_buf)? else {
            self.want = 0;
            return Ok(None);
        };
        let limits = &self.config.limits;
        if header.flags.is_command() {
            if header.len > limits.max_command_size {
                return Err(ProtocolError::CommandTooLarge { len: header.len, max: limits.max_command_size });
            }
        } else {
            // RFC 23: messages may flow only after the handshake (A-H1).
            if self.state != State::Ready {
                return Err(ProtocolError::MessageBeforeReady);
            }
            // libzmq compares with `>`: a frame of exactly the maximum is accepted (A-F5).
            if header.len > limits.max_frame_size {
                return Err(ProtocolError::FrameTooLarge { len: header.len, max: limits.max_frame_size });
            }
            let total = self.partial_bytes.saturating_add(header.len);
            if total > limits.max_message_size {
                return Err(ProtocolError::MessageTooLarge { len: total, max: limits.max_message_size });
            }
            if self.partial.len() >= limits.max_frames_per_message as usize {
                return Err(ProtocolError::TooManyFrames { max: limits.max_frames_per_message });
            }
        }
        // Checked above against limits that are far below usize::MAX on 64-bit targets; on smaller
        // targets a length that does not fit is simply too large.
        let Ok(body_len) = usize::try_from(header.len) else {
            return Err(ProtocolError::FrameTooLarge { len: header.len, max: usize::MAX as u64 });
        };
        let available = self.read_buf.len() - header_len;
        if available < body_len {
            self.want = body_len - available;
            if body_len >= OWN_BUFFER_MIN
                && body_len <= available.saturating_mul(2).saturating_add(OWN_BUFFER_AHEAD)
            {
                let mut body = body_pool::take(body_len);
                body.extend_from_slice(&self.read_buf[header_len..]);
                self.read_buf.clear();
                self.own = Some(OwnBufferFrame { flags: header.flags, len: body_len, body });
            }
            return Ok(None);
        }
        self.want = 0;
        self.read_buf.advance(header_len);
        let body = if body_len == 0 { Bytes::new() } else { self.read_buf.split_to(body_len).freeze() };
        Ok(Some((header.flags, body)))
    }

    fn step_frame(&mut self) -> Result<Step, ConnectionError> {
        let Some((flags, body)) = self.next_frame()? else {
            return Ok(Step::NeedInput);
        };
        // Any frame other than a PING ends the peer's TTL window (libzmq cancels it on every message).
        self.ttl_deadline = None;
        self.ttl_to_arm = None;
        if flags.is_command() {
            // A second READY is ignored without being parsed, as libzmq does (A-H14).
            if self.state == State::Ready && body.get(..6) == Some(b"\x05READY") {
                self.stats.commands_ignored += 1;
                return Ok(Step::Continue);
            }
            let command = Command::decode(body)?;
            if self.state == State::Handshake {
                return self.handle_handshake_command(command);
            }
            return self.handle_command(command);
        }
        if !flags.has_more() && self.partial.is_empty() {
            // A one-frame message, the common case: no frame list to allocate.
            self.stats.messages_received += 1;
            if self.config.socket_type.accepts_subscriptions() {
                // RFC 23 (3.0): a subscription is a message whose first octet is 1 (subscribe) or 0
                // (cancel). libzmq accepts this form from 3.1 peers too (A-S1), and so do we.
                match body.first() {
                    Some(1) => return Ok(Step::Event(Event::Subscribe(body.slice(1..)))),
                    Some(0) => return Ok(Step::Event(Event::Cancel(body.slice(1..)))),
                    _ => {}
                }
            }
            return Ok(Step::Event(Event::Message(Msg::from(body))));
        }
        self.partial_bytes += body.len() as u64;
        self.partial.push(body);
        if flags.has_more() {
            return Ok(Step::Continue);
        }
        self.partial_bytes = 0;
        let frames = std::mem::take(&mut self.partial);
        self.stats.messages_received += 1;
        Ok(Step::Event(Event::Message(Msg::from(frames))))
    }

    fn handle_handshake_command(&mut self, command: Command) -> Result<Step, ConnectionError> {
        let mut out = Vec::new();
        let status = self.mechanism.handle_command(command, &self.local_metadata, &mut out);
        for cmd in &out {
            self.queue_command(cmd);
        }
        match status? {
            HandshakeStatus::InProgress => Ok(Step::Continue),
            HandshakeStatus::Complete(metadata) => self.complete_handshake(metadata).map(Step::Event),
        }
    }

    fn complete_handshake(&mut self, metadata: Metadata) -> Result<Event, ConnectionError> {
        let ours = self.config.socket_type;
        // RFC 23: "The peer SHOULD enforce that the other peer is using a valid socket type" and
        // "SHOULD handle errors by returning an ERROR command, and then disconnecting". A missing
        // Socket-Type is accepted, as libzmq does.
        let socket_type = match metadata.socket_type() {
            Ok(Some(theirs)) if ours.is_compatible_with(theirs) => Some(theirs),
            Ok(None) => None,
            Ok(Some(theirs)) => {
                let theirs = Bytes::from_static(theirs.as_str().as_bytes());
                return Err(ProtocolError::IncompatibleSocketType { ours, theirs }.into());
            }
            Err(theirs) => return Err(ProtocolError::IncompatibleSocketType { ours, theirs }.into()),
        };
        // RFC 23: the identity "SHALL NOT be longer than 255 octets". RFC 37: only a ROUTER honours
        // it ("For all other socket types, the Identity property shall be ignored").
        if ours == SocketType::Router {
            if let Some(id) = metadata.identity() {
                if id.len() > 255 {
                    return Err(ProtocolError::IdentityTooLong { len: id.len() }.into());
                }
            }
        }
        self.state = State::Ready;
        self.handshake_deadline = None;
        // Only the handshake sends it.
        self.local_metadata = Metadata::new();
        if self.version.is_some_and(Version::has_commands_3_1) {
            self.next_ping = deadline(self.last_input, self.config.heartbeat.active_interval());
        }
        // The greeting step set both versions before the handshake could start.
        let version = self.version.unwrap_or(self.config.version);
        let peer = PeerInfo {
            version,
            announced_version: self.announced_version.unwrap_or(version),
            socket_type,
            metadata,
        };
        self.peer = Some(peer.clone());
        Ok(Event::HandshakeComplete(peer))
    }

    fn handle_command(&mut self, command: Command) -> Result<Step, ConnectionError> {
        match command {
            Command::Ping { ttl_deciseconds, context } => {
                if ttl_deciseconds > 0 {
                    // Armed by the next `handle_timeout(now)`, which `poll_timeout` asks for at once:
                    // the TTL runs from when the PING is processed, as in libzmq, not from when its
                    // bytes were read (decoding may lag behind reading under back-pressure).
                    self.ttl_to_arm = Some(Command::ttl(ttl_deciseconds));
                }
                // At most one PONG is pending: a peer that floods PINGs and never reads cannot grow our
                // transmit queue (reliability.md A-P7).
                if self.transmit.sent_offset() >= self.pong_end {
                    let context = context.slice(..context.len().min(MAX_PING_CONTEXT));
                    self.queue_command(&Command::Pong { context });
                    self.pong_end = self.transmit.end_offset();
                    self.stats.pongs_sent += 1;
                } else {
                    self.stats.pongs_skipped += 1;
                }
                Ok(Step::Continue)
            }
            Command::Pong { .. } => Ok(Step::Continue),
            Command::Subscribe(topic) | Command::Cancel(topic)
                if !self.config.socket_type.accepts_subscriptions() =>
            {
                // libzmq delivered `\tSUBSCRIBEfoo` as data to a ROUTER (A-C7); we drop it.
                let _ = topic;
                self.stats.subscriptions_dropped += 1;
                Ok(Step::Continue)
            }
            Command::Subscribe(topic) => Ok(Step::Event(Event::Subscribe(topic))),
            Command::Cancel(topic) => Ok(Step::Event(Event::Cancel(topic))),
            // RFC 23: "The peer SHALL treat an incoming ERROR command as fatal".
            Command::Error { reason } => Err(ConnectionError::PeerError { reason }),
            // A second READY, a mechanism command after the handshake, or an unknown command: ignored,
            // as libzmq does (A-H14, A-C1, A-C6).
            Command::Ready(_) | Command::Other { .. } => {
                self.stats.commands_ignored += 1;
                Ok(Step::Continue)
            }
        }
    }

    fn send_ping(&mut self, now: Instant) {
        // Only at a message boundary: we queue whole messages, so between two calls is always one.
        // A new PING only once the previous one is written.
        if self.transmit.sent_offset() < self.ping_end {
            return;
        }
        let ping =
            Command::Ping { ttl_deciseconds: self.config.heartbeat.ttl_deciseconds(), context: Bytes::new() };
        let at_front = self.transmit.is_empty();
        self.queue_command(&ping);
        self.ping_end = self.transmit.end_offset();
        self.stats.pings_sent += 1;
        if self.pong_deadline.is_none() && !self.ping_unsent {
            if at_front {
                // Nothing ahead of it: it goes out now.
                self.pong_deadline = deadline(now, self.config.heartbeat.effective_timeout());
            } else {
                // Behind unsent bytes: the timeout starts once it is written (see `poll_timeout`).
                self.ping_unsent = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::config::HeartbeatConfig;

    fn handshaked(config: ConnectionConfig, now: Instant) -> Connection {
        let mut peer = Connection::new(ConnectionConfig::new(SocketType::Router), now);
        let mut conn = Connection::new(config, now);
        crate::proto::loopback::exchange(&mut conn, &mut peer, now);
        assert!(conn.is_ready());
        conn
    }

    #[test]
    fn huge_timeouts_never_overflow_the_clock() {
        let now = Instant::now();
        let heartbeat = HeartbeatConfig {
            interval: Some(Duration::MAX),
            timeout: Some(Duration::MAX),
            ttl: Some(Duration::MAX),
        };
        let config = ConnectionConfig::new(SocketType::Dealer)
            .handshake_timeout(Some(Duration::MAX))
            .heartbeat(heartbeat);
        let mut conn = handshaked(config, now);
        assert_eq!(conn.poll_timeout(), None);
        let later = now + Duration::from_secs(1 << 30);
        conn.handle_timeout(later);
        assert!(conn.is_ready());
        // The largest TTL a peer can send is fine too. Decoding has no clock: `poll_timeout` asks for
        // `handle_timeout` at once, which arms the TTL from then.
        conn.handle_input(later, b"\x04\x07\x04PING\xff\xff");
        assert_eq!(conn.poll_event(), None);
        assert_eq!(conn.poll_timeout(), Some(later));
        conn.handle_timeout(later);
        assert_eq!(conn.poll_timeout(), Some(later + Duration::from_millis(6_553_500)));
    }

    #[test]
    fn zero_durations_mean_off_as_in_libzmq() {
        let now = Instant::now();
        let heartbeat = HeartbeatConfig { interval: Some(Duration::ZERO), timeout: None, ttl: None };
        let config = ConnectionConfig::new(SocketType::Dealer)
            .handshake_timeout(Some(Duration::ZERO))
            .heartbeat(heartbeat);
        assert_eq!(Connection::new(config.clone(), now).poll_timeout(), None);
        let conn = handshaked(config, now);
        assert_eq!(conn.poll_timeout(), None);
    }

    #[test]
    fn peer_info_appears_only_with_the_handshake() {
        let now = Instant::now();
        let mut conn = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
        let mut peer = Connection::new(ConnectionConfig::new(SocketType::Router), now);
        conn.handle_input(now, &peer.take_transmit()[..64]);
        assert_eq!(conn.poll_event(), None);
        assert_eq!(conn.version(), Some(Version::V3_1));
        assert!(conn.peer().is_none());
    }

    #[test]
    fn heartbeat_timeout_starts_when_our_ping_is_written_not_when_queued() {
        // A PUB with 10 MB queued for a slow but healthy peer: the PING sits behind it, and the peer
        // cannot answer what it has not been sent.
        let now = Instant::now();
        let second = Duration::from_secs(1);
        let heartbeat = HeartbeatConfig { interval: Some(second), timeout: None, ttl: None };
        let mut conn = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat), now);
        for _ in 0..100 {
            conn.send_message(Msg::from(Bytes::from(vec![0u8; 100_000]))).unwrap();
        }
        conn.handle_timeout(now + second);
        assert_eq!(conn.stats().pings_sent, 1);
        for s in 2..10 {
            conn.handle_timeout(now + s * second);
            assert!(!conn.is_closed(), "closed at {s} s with our PING still unsent: {:?}", conn.poll_event());
        }
        // Written at 10 s: the timeout runs from then.
        let len = conn.transmit().len();
        conn.transmit_mut().advance(len);
        let written = now + Duration::from_millis(10_500);
        assert_eq!(conn.poll_timeout(), Some(now + 9 * second), "asks to be called at once");
        conn.handle_timeout(written);
        assert!(!conn.is_closed());
        conn.handle_timeout(written + second);
        assert_eq!(conn.poll_event(), Some(Event::Closed(ConnectionError::HeartbeatTimeout(second))));
    }

    #[test]
    fn heartbeat_timeout_zero_means_pings_without_a_timeout() {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        let heartbeat = HeartbeatConfig { interval: Some(second), timeout: Some(Duration::ZERO), ttl: None };
        let mut conn = handshaked(ConnectionConfig::new(SocketType::Dealer).heartbeat(heartbeat), now);
        for s in 1..20 {
            conn.handle_timeout(now + s * second);
            conn.take_transmit();
        }
        assert!(conn.is_ready());
        assert_eq!(conn.stats().pings_sent, 19);
    }

    #[test]
    fn peer_ttl_runs_from_when_the_ping_is_processed() {
        // Read at t0, decoded 3 s later (the application was back-pressured): the 1 s TTL starts then.
        let now = Instant::now();
        let mut conn = handshaked(ConnectionConfig::new(SocketType::Dealer), now);
        conn.handle_input(now, b"\x04\x07\x04PING\x00\x0a");
        let later = now + Duration::from_secs(3);
        assert_eq!(conn.poll_event(), None);
        conn.handle_timeout(later);
        assert!(conn.is_ready());
        assert_eq!(conn.poll_timeout(), Some(later + Duration::from_secs(1)));
    }

    #[test]
    fn greeting_padding_is_libzmqs_64_bit_identity_length() {
        let now = Instant::now();
        let config =
            ConnectionConfig::new(SocketType::Dealer).identity(Bytes::from(vec![b'i'; 255])).unwrap();
        let greeting = Connection::new(config, now).take_transmit();
        assert_eq!(&greeting[..10], &[0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0x7f]);
    }

    #[test]
    fn only_a_router_checks_the_peers_identity() {
        let now = Instant::now();
        let mut md = Metadata::new();
        md.insert("Socket-Type", "DEALER");
        md.insert("Identity", Bytes::from(vec![b'i'; 300]));
        let mut ready = Vec::new();
        Command::Ready(md).encode(&mut ready);
        for (ours, closes) in
            [(SocketType::Dealer, false), (SocketType::Rep, false), (SocketType::Router, true)]
        {
            let mut peer = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
            let mut conn = Connection::new(ConnectionConfig::new(ours), now);
            conn.handle_input(now, &peer.take_transmit()[..64]);
            conn.handle_input(now, &ready);
            let ev = conn.poll_event();
            assert_eq!(matches!(ev, Some(Event::Closed(_))), closes, "{ours}: {ev:?}");
        }
    }
}
