//! Two connections back to back in memory, no sockets: the sans-IO pair harness behind the crate's
//! examples, tests, benchmarks and fuzzers, and a quick way to try the protocol out.

use std::time::Instant;

use super::command::Command;
use super::connection::{Connection, Event};
use super::greeting::{Greeting, MechanismName, Version, PAD_1};
use super::metadata::{Metadata, SOCKET_TYPE};
use super::socket_type::SocketType;

/// More round trips than any handshake needs; a bound so a misbehaving pair cannot loop forever.
const MAX_ROUNDS: usize = 64;

/// Moves bytes both ways between `a` and `b` (copying them) until neither has anything left to send,
/// and returns the events each reported, in order. Two fresh connections of compatible types are
/// ready after one call.
pub fn exchange(a: &mut Connection, b: &mut Connection, now: Instant) -> (Vec<Event>, Vec<Event>) {
    let (mut events_a, mut events_b) = (Vec::new(), Vec::new());
    for _ in 0..MAX_ROUNDS {
        events_a.extend(std::iter::from_fn(|| a.poll_event()));
        events_b.extend(std::iter::from_fn(|| b.poll_event()));
        let to_b = a.take_transmit();
        let to_a = b.take_transmit();
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        b.handle_input(now, &to_b);
        a.handle_input(now, &to_a);
    }
    (events_a, events_b)
}

/// The first bytes a NULL peer of type `peer` speaking `version` sends: its greeting (padded as libzmq
/// pads it without an identity) and its READY carrying only `Socket-Type`.
pub fn null_peer_opening(peer: SocketType, version: Version) -> Vec<u8> {
    let mut out = Vec::new();
    Greeting { version, mechanism: MechanismName::NULL, as_server: false, padding: PAD_1 }.encode(&mut out);
    let mut md = Metadata::new();
    md.insert(SOCKET_TYPE, peer.as_str());
    Command::Ready(md).encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ConnectionConfig;

    #[test]
    fn one_exchange_completes_both_handshakes() {
        let now = Instant::now();
        let mut a = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
        let mut b = Connection::new(ConnectionConfig::new(SocketType::Router), now);
        let (ea, eb) = exchange(&mut a, &mut b, now);
        assert!(matches!(ea[..], [Event::HandshakeComplete(_)]));
        assert!(matches!(eb[..], [Event::HandshakeComplete(_)]));
        assert!(a.is_ready() && b.is_ready());
    }

    #[test]
    fn a_null_peer_opening_completes_a_handshake() {
        let now = Instant::now();
        let mut c = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
        c.handle_input(now, &null_peer_opening(SocketType::Push, Version::V3_1));
        assert!(
            matches!(c.poll_event(), Some(Event::HandshakeComplete(p)) if p.socket_type == Some(SocketType::Push))
        );
    }
}
