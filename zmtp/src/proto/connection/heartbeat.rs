//! Heartbeats (RFC 37): our PINGs and their timeout, the peer's TTL, and the handshake timeout.

use std::time::Instant;

use bytes::Bytes;

use super::{deadline, Connection, State};
use crate::proto::command::Command;
use crate::proto::error::ConnectionError;

impl Connection {
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
        if self.pong_waiting.is_some() && self.transmit.sent_offset() >= self.pong_end {
            if let Some(context) = self.pong_waiting.take() {
                self.queue_pong(context);
            }
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

    /// Queues a PONG (at a message boundary: whole messages are queued) and notes where it ends.
    pub(super) fn queue_pong(&mut self, context: Bytes) {
        self.queue_command(&Command::Pong { context });
        self.pong_end = self.transmit.end_offset();
        self.stats.pongs_sent += 1;
    }

    pub(super) fn send_ping(&mut self, now: Instant) {
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
