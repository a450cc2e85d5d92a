//! Sending: messages, subscriptions and commands into the transmit queue.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Connection, State};
use crate::message::Msg;
use crate::proto::command::Command;
use crate::proto::error::{ConnectionError, SendError};
use crate::proto::frame::FrameHeader;
use crate::proto::greeting::Version;
use crate::proto::mechanism::CurveCipher;

impl Connection {
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
        if self.cipher.is_some() {
            return self.send_sealed(msg);
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

    pub(super) fn send_subscription(
        &mut self,
        topic: Bytes,
        subscribe: bool,
    ) -> Result<(), SendError<Bytes>> {
        match self.state {
            State::Ready => {}
            State::Closed => return Err(SendError::Closed(topic)),
            _ => return Err(SendError::NotReady(topic)),
        }
        if self.version.is_some_and(Version::has_commands_3_1) {
            let cmd = if subscribe { Command::Subscribe(topic) } else { Command::Cancel(topic) };
            self.queue_command(&cmd);
        } else if let Some(cipher) = &mut self.cipher {
            // The 3.0 form, boxed like any message.
            let Ok(n) = cipher.next_nonce() else {
                self.fail(ConnectionError::NoncesExhausted);
                return Err(SendError::Closed(topic));
            };
            let flag = [u8::from(subscribe)];
            self.transmit.write_with(CurveCipher::sealed_len(topic.len() + 1), |b| {
                cipher.seal(n, false, false, &[&flag, &topic], b);
            });
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

    /// [`Connection::send_message`] after a CURVE handshake: each frame boxed as a MESSAGE. Small
    /// frames are boxed straight into the transmit block; a large one gets a buffer of its own (the
    /// encryption is the one copy of its body).
    fn send_sealed(&mut self, msg: Msg) -> Result<(), SendError<Msg>> {
        let Some(cipher) = &mut self.cipher else {
            return Err(SendError::Closed(msg));
        };
        if !cipher.has_nonces(msg.len()) {
            self.fail(ConnectionError::NoncesExhausted);
            return Err(SendError::Closed(msg));
        }
        let last = msg.len() - 1;
        for (i, body) in msg.into_iter().enumerate() {
            let Ok(n) = cipher.next_nonce() else { break };
            let len = CurveCipher::sealed_len(body.len());
            if len <= SEAL_INLINE_MAX {
                self.transmit.write_with(len, |b| cipher.seal(n, i != last, false, &[&body], b));
            } else {
                let mut frame = BytesMut::with_capacity(len);
                cipher.seal(n, i != last, false, &[&body], &mut frame);
                self.transmit.push_body(frame.freeze());
            }
        }
        Ok(())
    }
}

/// Boxed frames up to this size go into the transmit block; larger ones get a buffer of their own
/// (so the block stays small, and a large frame is written from where it was encrypted).
const SEAL_INLINE_MAX: usize = 16 * 1024;
