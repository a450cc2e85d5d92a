//! Reading: the read-buffer strategy (blocks that grow with a busy peer, large frames in buffers of
//! their own, small blocks while handshaking, nothing held while idle), frame decoding with every
//! limit checked against the header, multipart assembly, and the commands of an established
//! connection.

use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::{Connection, Event, State, Step};
use crate::message::Msg;
use crate::proto::body_pool;
use crate::proto::command::{Command, MAX_PING_CONTEXT};
use crate::proto::error::{ConnectionError, ProtocolError};
use crate::proto::frame::{FrameFlags, FrameHeader};
use crate::proto::mechanism::MESSAGE_OVERHEAD;

/// Smallest read the runtime should offer (one read then carries many small frames).
pub(super) const MIN_READ: usize = 8 * 1024;
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
/// A large frame being read into a buffer of its own (see [`Connection::read_buffer`]).
#[derive(Debug)]
pub(super) struct OwnBufferFrame {
    pub(super) flags: FrameFlags,
    /// The body's length (the header's, checked against the limits).
    pub(super) len: usize,
    /// The octets of the body received so far, in a buffer with room for all of it.
    pub(super) body: BytesMut,
}

impl Connection {
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
    pub(super) fn handshake_read_buffer(&mut self) -> &mut BytesMut {
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

    /// before any body octet is buffered.
    pub(super) fn next_frame(&mut self) -> Result<Option<(FrameFlags, Bytes)>, ProtocolError> {
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
            let mut body = self.own.take().map(|own| own.body).unwrap_or_default();
            self.want = 0;
            self.after_own = true;
            if self.cipher.is_some() {
                let flags = self.open_message(&mut body)?;
                return Ok(Some((flags, body_pool::freeze(body).slice(MESSAGE_OVERHEAD..))));
            }
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
        if self.cipher.is_some() {
            let mut body = self.read_buf.split_to(body_len);
            let flags = self.open_message(&mut body)?;
            body.advance(MESSAGE_OVERHEAD);
            return Ok(Some((flags, body.freeze())));
        }
        let body = if body_len == 0 { Bytes::new() } else { self.read_buf.split_to(body_len).freeze() };
        Ok(Some((header.flags, body)))
    }

    /// Opens a CURVE MESSAGE in place (the frame's whole body): the plaintext is then
    /// `body[MESSAGE_OVERHEAD..]`, and the flags returned are the boxed ones, never the outer frame's.
    fn open_message(&mut self, body: &mut [u8]) -> Result<FrameFlags, ProtocolError> {
        let Some(cipher) = &mut self.cipher else {
            return Err(ProtocolError::NotAMessage);
        };
        let (more, command) = cipher.open(body)?;
        let len = (body.len() - MESSAGE_OVERHEAD) as u64;
        if command && len > self.config.limits.max_command_size {
            return Err(ProtocolError::CommandTooLarge { len, max: self.config.limits.max_command_size });
        }
        let bits = if more { FrameFlags::MORE } else { 0 } | if command { FrameFlags::COMMAND } else { 0 };
        Ok(FrameFlags::from_bits(bits))
    }

    pub(super) fn step_frame(&mut self) -> Result<Step, ConnectionError> {
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
            if self.state == State::Handshake {
                let command = self.handshake.decode_command(body)?;
                return self.handle_handshake_command(command);
            }
            let command = Command::decode(body)?;
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

    pub(super) fn handle_command(&mut self, command: Command) -> Result<Step, ConnectionError> {
        match command {
            Command::Ping { ttl_deciseconds, context } => {
                if ttl_deciseconds > 0 {
                    // Armed by the next `handle_timeout(now)`, which `poll_timeout` asks for at once:
                    // the TTL runs from when the PING is processed, as in libzmq, not from when its
                    // bytes were read (decoding may lag behind reading under back-pressure).
                    self.ttl_to_arm = Some(Command::ttl(ttl_deciseconds));
                }
                // At most one PONG is queued: a peer that floods PINGs and never reads cannot grow our
                // transmit queue (reliability.md A-P7). A PING that arrives while it is unsent waits
                // (newest context only) and is answered once it is written.
                let context = context.slice(..context.len().min(MAX_PING_CONTEXT));
                if self.transmit.sent_offset() >= self.pong_end {
                    // An older PING still waiting is superseded by this one.
                    if self.pong_waiting.take().is_some() {
                        self.stats.pongs_skipped += 1;
                    }
                    self.queue_pong(context);
                } else if self.pong_waiting.replace(context).is_some() {
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
}
