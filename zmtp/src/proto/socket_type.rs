//! [`SocketType`]: the ZeroMQ socket types and the RFC 23 compatibility table.

use std::fmt;

/// A ZeroMQ socket type, as announced in the `Socket-Type` property of READY.
///
/// The wire spelling (`"DEALER"`, `"XPUB"`…) comes from [`SocketType::as_str`]; the RFC compares it
/// case-sensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// REQ: strict send/receive alternation, round-robin (RFC 28).
    Req,
    /// REP: fair-queued requests, replies routed back by envelope (RFC 28).
    Rep,
    /// DEALER: round-robin out, fair-queue in (RFC 28).
    Dealer,
    /// ROUTER: identity-addressed routing (RFC 28).
    Router,
    /// PUB: filtered fan-out (RFC 29).
    Pub,
    /// SUB: subscribing receiver (RFC 29).
    Sub,
    /// XPUB: PUB that surfaces subscriptions to the application (RFC 29).
    XPub,
    /// XSUB: SUB whose subscriptions are application messages (RFC 29).
    XSub,
    /// PUSH: round-robin pipeline sender (RFC 30).
    Push,
    /// PULL: fair-queued pipeline receiver (RFC 30).
    Pull,
    /// PAIR: exclusive pair (RFC 31).
    Pair,
}

impl SocketType {
    /// Every socket type, in RFC order.
    pub const ALL: [SocketType; 11] = [
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::XPub,
        SocketType::XSub,
        SocketType::Push,
        SocketType::Pull,
        SocketType::Pair,
    ];

    /// The wire spelling used in the `Socket-Type` property.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
            SocketType::Push => "PUSH",
            SocketType::Pull => "PULL",
            SocketType::Pair => "PAIR",
        }
    }

    /// Parses a `Socket-Type` value. Case-sensitive, as libzmq and the RFC's table spell them.
    pub fn from_wire(value: &[u8]) -> Option<SocketType> {
        SocketType::ALL.into_iter().find(|t| t.as_str().as_bytes() == value)
    }

    /// Whether a socket of this type may talk to a peer of type `peer` (RFC 23 §"The Socket-Type
    /// Property", RFC 28-31).
    pub fn is_compatible_with(self, peer: SocketType) -> bool {
        use SocketType::*;
        matches!(
            (self, peer),
            (Req, Rep | Router)
                | (Rep, Req | Dealer)
                | (Dealer, Rep | Dealer | Router)
                | (Router, Req | Dealer | Router)
                | (Pub | XPub, Sub | XSub)
                | (Sub | XSub, Pub | XPub)
                | (Push, Pull)
                | (Pull, Push)
                | (Pair, Pair)
        )
    }

    /// Whether libzmq announces an `Identity` property for this type in READY (REQ, DEALER, ROUTER),
    /// which we mirror so our READY is byte-identical to libzmq's.
    pub fn sends_identity(self) -> bool {
        matches!(self, SocketType::Req | SocketType::Dealer | SocketType::Router)
    }

    /// Whether the application can receive messages on this type: not on PUB (RFC 29: it "SHALL
    /// silently discard any messages received from subscribers") nor PUSH (RFC 30 gives it no
    /// receive side). Data a peer sends to those is discarded on arrival.
    pub fn receives_messages(self) -> bool {
        !matches!(self, SocketType::Pub | SocketType::Push)
    }

    /// Whether this socket receives subscriptions from its peers (PUB, XPUB).
    pub fn accepts_subscriptions(self) -> bool {
        matches!(self, SocketType::Pub | SocketType::XPub)
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_table_is_symmetric() {
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(a.is_compatible_with(b), b.is_compatible_with(a), "{a} / {b}");
            }
        }
    }

    #[test]
    fn wire_names_round_trip_and_are_case_sensitive() {
        for t in SocketType::ALL {
            assert_eq!(SocketType::from_wire(t.as_str().as_bytes()), Some(t));
        }
        assert_eq!(SocketType::from_wire(b"dealer"), None);
        assert_eq!(SocketType::from_wire(b""), None);
        assert_eq!(SocketType::from_wire(b"FOO"), None);
    }

    #[test]
    fn rejects_incompatible_pairs_from_rfc_table() {
        use SocketType::*;
        for (a, b) in [(Pub, Router), (Sub, Sub), (Pair, Dealer), (Push, Push), (Req, Req), (Rep, Router)] {
            assert!(!a.is_compatible_with(b), "{a} / {b}");
        }
    }
}
