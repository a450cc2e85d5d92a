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

mod heartbeat;
mod recv;
mod send;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::command::Command;
use super::config::ConnectionConfig;
use super::error::{ConnectionError, ProtocolError};
use super::greeting::{mechanism_bytes, Greeting, Version};
use super::mechanism::{AuthReply, Completion, Credentials, CurveCipher, Handshake, HandshakeStatus};
use super::metadata::Metadata;
use super::socket_type::SocketType;
use super::transmit::TransmitQueue;
use crate::message::Msg;

use recv::{OwnBufferFrame, MIN_READ};

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
    /// What our authenticator said of the peer (its user id and metadata), when one was asked.
    pub auth: Option<AuthReply>,
}

impl PeerInfo {
    /// The user id our authenticator gave the peer (libzmq's `User-Id` message property), if any.
    pub fn user_id(&self) -> Option<&Bytes> {
        self.auth.as_ref().map(|a| &a.user_id).filter(|id| !id.is_empty())
    }

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
    /// The peer's credentials need a decision (the configuration asked for one): answer with
    /// [`Connection::handle_auth_reply`]. Nothing more is decoded until then.
    Authenticate(Credentials),
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
    /// PINGs not answered because a newer PING arrived while our previous PONG was still unsent: the
    /// newest PING's PONG replaces theirs (at most one PONG queued and one context waiting).
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
    /// The handshake waits for a decision on the peer's credentials.
    Authenticating,
    /// Messages may flow.
    Ready,
    /// Over; `Event::Closed` has been queued.
    Closed,
}

/// Checks the peer's metadata against our socket type: its `Socket-Type` must be one we may talk to
/// and, for a ROUTER, its `Identity` at most 255 octets. Servers of PLAIN and CURVE check this before
/// their READY, so that a refused peer never sees the handshake complete.
///
/// # Errors
/// [`ProtocolError::IncompatibleSocketType`] or [`ProtocolError::IdentityTooLong`].
pub(crate) fn check_peer_metadata(
    ours: SocketType,
    metadata: &Metadata,
) -> Result<Option<SocketType>, ProtocolError> {
    // RFC 23: "The peer SHOULD enforce that the other peer is using a valid socket type" and
    // "SHOULD handle errors by returning an ERROR command, and then disconnecting". A missing
    // Socket-Type is accepted, as libzmq does.
    let socket_type = match metadata.socket_type() {
        Ok(Some(theirs)) if ours.is_compatible_with(theirs) => Some(theirs),
        Ok(None) => None,
        Ok(Some(theirs)) => {
            let theirs = Bytes::from_static(theirs.as_str().as_bytes());
            return Err(ProtocolError::IncompatibleSocketType { ours, theirs });
        }
        Err(theirs) => return Err(ProtocolError::IncompatibleSocketType { ours, theirs }),
    };
    // RFC 23: the identity "SHALL NOT be longer than 255 octets". RFC 37: only a ROUTER honours
    // it ("For all other socket types, the Identity property shall be ignored").
    if ours == SocketType::Router {
        if let Some(id) = metadata.identity() {
            if id.len() > 255 {
                return Err(ProtocolError::IdentityTooLong { len: id.len() });
            }
        }
    }
    Ok(socket_type)
}

/// One ZMTP 3.x connection, either role, with no I/O.
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    handshake: Handshake,
    /// The CURVE session once its handshake is complete: every frame is boxed.
    cipher: Option<CurveCipher>,
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
    /// The context of the newest PING that arrived while our previous PONG was unsent: its PONG is
    /// queued once that one is written (`poll_timeout` asks for the call). A newer PING replaces it,
    /// as libzmq replaces its pending PONG context, so a peer that sends PING, data, PING gets the
    /// PONG of its latest PING and memory stays at one PONG queued plus one context waiting.
    pong_waiting: Option<Bytes>,
    ping_end: u64,
    stats: Stats,
}

impl Connection {
    /// A connection using the mechanism of `config` (NULL by default), started at `now`. Our greeting
    /// is queued at once (RFC 23 allows waiting for the peer's first octets; sending everything up
    /// front can never deadlock).
    pub fn new(config: ConnectionConfig, now: Instant) -> Connection {
        let handshake = Handshake::new(&config.security, config.authenticate, config.socket_type);
        let mut transmit = TransmitQueue::new();
        transmit.set_inline_max(config.inline_body_max);
        transmit.reserve_tail(HANDSHAKE_TRANSMIT);
        let greeting = Greeting {
            version: config.version,
            mechanism: config.security.mechanism(),
            as_server: config.security.as_server(),
            // libzmq: the identity length + 1 as a 64-bit big-endian number (a ZMTP 1.0 length prefix).
            padding: (config.identity.len() as u64 + 1).to_be_bytes(),
        };
        transmit.write_with(greeting.encoded_len(), |b| greeting.encode(b));
        Connection {
            local_metadata: config.local_metadata(),
            handshake_deadline: deadline(now, config.handshake_timeout),
            config,
            handshake,
            cipher: None,
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
            pong_waiting: None,
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

    // ----- outputs -----

    /// The next event, decoding buffered input as needed. `None` when more input (or time) is needed.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            let step = match self.state {
                State::Closed | State::Authenticating => return None,
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
        let sent = self.transmit.sent_offset();
        let arm_now = self.ttl_to_arm.is_some()
            || (self.ping_unsent && sent >= self.ping_end)
            || (self.pong_waiting.is_some() && sent >= self.pong_end);
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
        // RFC 26: no ERROR for a bad MESSAGE, and none from a client; after a CURVE handshake
        // nothing goes out in clear text.
        let may_send_error = self.cipher.is_none() && self.handshake.may_send_error();
        if let (ConnectionError::Protocol(e), true) = (&error, may_send_error) {
            if let Some(reason) = e.error_reason() {
                self.queue_command(&Command::Error { reason: Bytes::from_static(reason.as_bytes()) });
            }
        }
        self.state = State::Closed;
        self.cipher = None;
        self.read_buf = BytesMut::new();
        self.own = None;
        self.partial = Vec::new();
        self.partial_bytes = 0;
        self.handshake_deadline = None;
        self.next_ping = None;
        self.pong_deadline = None;
        self.pong_waiting = None;
        self.ping_unsent = false;
        self.ttl_deadline = None;
        self.ttl_to_arm = None;
        self.events.push_back(Event::Closed(error));
    }

    pub(crate) fn queue_command(&mut self, cmd: &Command) {
        let Some(cipher) = &mut self.cipher else {
            self.transmit.write_with(cmd.encoded_len(), |b| cmd.encode(b));
            return;
        };
        // After a CURVE handshake a command travels boxed, as a MESSAGE with COMMAND set.
        let mut frame = Vec::with_capacity(cmd.encoded_len());
        cmd.encode(&mut frame);
        let body = &frame[cmd.encoded_len() - cmd.body_len()..];
        match cipher.next_nonce() {
            Ok(nonce) => self.transmit.write_with(CurveCipher::sealed_len(body.len()), |b| {
                cipher.seal(nonce, false, true, &[body], b);
            }),
            Err(e) => self.fail(e),
        }
    }

    fn step_greeting(&mut self) -> Result<Step, ConnectionError> {
        let Some(greeting) = Greeting::decode(&self.read_buf)? else {
            return Ok(Step::NeedInput);
        };
        self.read_buf.advance(greeting.encoded_len());
        // RFC 23: "If the mechanism that the peer received does not exactly match the mechanism it
        // sent, it MUST close the connection." Exact 20-octet compare (CVE-2014-7202).
        let ours = self.config.security.mechanism();
        if greeting.mechanism != ours {
            return Err(ProtocolError::MechanismMismatch {
                ours: ours.as_str(),
                theirs: mechanism_bytes(&greeting.mechanism),
            }
            .into());
        }
        self.handshake.check_peer_as_server(self.config.security.as_server(), greeting.as_server)?;
        self.version = Some(Version::negotiate(self.config.version, greeting.version));
        self.announced_version = Some(greeting.version);
        self.state = State::Handshake;
        let mut out = Vec::new();
        let started = self.handshake.start(&self.local_metadata, &mut out);
        for cmd in &out {
            self.queue_command(cmd);
        }
        started.map(|()| Step::Continue)
    }

    fn handle_handshake_command(&mut self, command: Command) -> Result<Step, ConnectionError> {
        let mut out = Vec::new();
        let status = self.handshake.handle_command(command, &self.local_metadata, &mut out);
        for cmd in &out {
            self.queue_command(cmd);
        }
        self.handshake_status(status?).map(|ev| ev.map_or(Step::Continue, Step::Event))
    }

    /// Answers [`Event::Authenticate`]: the handshake goes on if `reply` allows the peer, and fails
    /// with [`ConnectionError::AuthenticationFailed`] (after an ERROR with the status code to the
    /// peer) if not. Ignored unless the connection is waiting for it. Then drain
    /// [`Connection::poll_event`].
    pub fn handle_auth_reply(&mut self, reply: AuthReply) {
        if self.state != State::Authenticating {
            return;
        }
        self.state = State::Handshake;
        let mut out = Vec::new();
        let status = self.handshake.handle_auth_reply(reply, &self.local_metadata, &mut out);
        for cmd in &out {
            self.queue_command(cmd);
        }
        match status.and_then(|s| self.handshake_status(s)) {
            Ok(Some(ev)) => self.events.push_back(ev),
            Ok(None) => {}
            Err(e) => self.fail(e),
        }
    }

    fn handshake_status(&mut self, status: HandshakeStatus) -> Result<Option<Event>, ConnectionError> {
        match status {
            HandshakeStatus::InProgress => Ok(None),
            HandshakeStatus::Authenticate(credentials) => {
                self.state = State::Authenticating;
                Ok(Some(Event::Authenticate(credentials)))
            }
            HandshakeStatus::Complete(completion) => self.complete_handshake(*completion).map(Some),
        }
    }

    fn complete_handshake(&mut self, completion: Completion) -> Result<Event, ConnectionError> {
        let Completion { metadata, cipher, auth } = completion;
        let socket_type = check_peer_metadata(self.config.socket_type, &metadata)?;
        self.state = State::Ready;
        self.cipher = cipher;
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
            auth,
        };
        self.peer = Some(peer.clone());
        Ok(Event::HandshakeComplete(peer))
    }
}
