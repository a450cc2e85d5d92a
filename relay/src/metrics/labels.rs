//! The label values of the relay's metrics: small fixed sets (outcomes, ports, handshake failure
//! reasons, drop kinds, breaker states), so that no label varies per request.

use zmtp::proto::{ConnectionError, ProtocolError};
use zmtp::{DisconnectReason, HandshakeFailure};

use crate::logging::DropKind;

/// What a client got for its request: the reply's status (`outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `OK` from an ingestor.
    Ok,
    /// `ERROR` from an ingestor.
    Error,
    /// `TIMEOUT`.
    Timeout,
    /// `BAD_REQUEST`.
    BadRequest,
    /// `DUPLICATE`.
    Duplicate,
    /// `OVERLOADED`.
    Overloaded,
    /// `UNAVAILABLE` (no ingestor, shutdown, or an open circuit breaker).
    Unavailable,
    /// `RATE_LIMITED` (version 1.1, the rate limiter).
    RateLimited,
}

impl Outcome {
    /// Every outcome, in label-slot order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::BadRequest,
        Outcome::Duplicate,
        Outcome::Overloaded,
        Outcome::Unavailable,
        Outcome::RateLimited,
    ];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::BadRequest => "bad_request",
            Outcome::Duplicate => "duplicate",
            Outcome::Overloaded => "overloaded",
            Outcome::Unavailable => "unavailable",
            Outcome::RateLimited => "rate_limited",
        }
    }

    /// The reply status of this outcome (`"OK"`, `"TIMEOUT"`…).
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Error => "ERROR",
            Outcome::Timeout => "TIMEOUT",
            Outcome::BadRequest => "BAD_REQUEST",
            Outcome::Duplicate => "DUPLICATE",
            Outcome::Overloaded => "OVERLOADED",
            Outcome::Unavailable => "UNAVAILABLE",
            Outcome::RateLimited => "RATE_LIMITED",
        }
    }

    /// The outcome of a reply status (`"OK"`, `"TIMEOUT"`…); `None` for a status that ends nothing.
    pub fn from_status(status: &str) -> Option<Outcome> {
        Some(match status {
            "OK" => Outcome::Ok,
            "ERROR" => Outcome::Error,
            "TIMEOUT" => Outcome::Timeout,
            "BAD_REQUEST" => Outcome::BadRequest,
            "DUPLICATE" => Outcome::Duplicate,
            "OVERLOADED" => Outcome::Overloaded,
            "UNAVAILABLE" => Outcome::Unavailable,
            "RATE_LIMITED" => Outcome::RateLimited,
            _ => return None,
        })
    }
}

/// A circuit breaker's state (`relay_breaker_state`: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through (0).
    Closed,
    /// Requests are refused at once (1).
    Open,
    /// One probe request goes through (2).
    HalfOpen,
}

/// The relay's ports and the upstream, as the `port` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// The client ROUTER (`client_request_port`).
    Clients,
    /// The ingestor work XPUB (`ingestor_work_port`).
    IngestorWork,
    /// The ingestor response ROUTER (`ingestor_response_port`).
    IngestorResponses,
    /// The market-data XPUB (`market_data_pub_port`).
    MarketDataOut,
    /// The upstream XSUB (`flink_market_data_endpoint`).
    MarketDataIn,
}

impl Port {
    /// Every port, in slot order.
    pub const ALL: [Port; 5] =
        [Port::Clients, Port::IngestorWork, Port::IngestorResponses, Port::MarketDataOut, Port::MarketDataIn];

    /// The `port` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Port::Clients => "clients",
            Port::IngestorWork => "ingestor_work",
            Port::IngestorResponses => "ingestor_responses",
            Port::MarketDataOut => "market_data_out",
            Port::MarketDataIn => "market_data_in",
        }
    }

    /// The configuration key of the port (what `/readyz` names).
    pub fn key(self) -> &'static str {
        match self {
            Port::Clients => "client_request_port",
            Port::IngestorWork => "ingestor_work_port",
            Port::IngestorResponses => "ingestor_response_port",
            Port::MarketDataOut => "market_data_pub_port",
            Port::MarketDataIn => "flink_market_data_endpoint",
        }
    }

    /// The port of a configuration key.
    pub fn of_key(key: &str) -> Option<Port> {
        Port::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// Why a handshake failed (`reason` label): a small fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeReason {
    /// Credentials refused (ZAP status), by us or by the peer.
    Auth,
    /// A CURVE box that does not open, or a weak key: the wrong key.
    Cryptographic,
    /// Another security mechanism than the port's.
    MechanismMismatch,
    /// A socket type this port does not talk to.
    SocketTypeMismatch,
    /// A ZMTP 1.0/2.0 peer, or no ZMTP at all.
    Version,
    /// Another protocol error.
    Protocol,
    /// The handshake did not finish in `handshake_timeout_secs`.
    Timeout,
    /// The peer closed (or reset) before finishing (a port probe, a health check).
    Closed,
    /// An ERROR from the peer, or a transport error.
    Other,
}

impl HandshakeReason {
    /// Every reason, in slot order.
    pub const ALL: [HandshakeReason; 9] = [
        HandshakeReason::Auth,
        HandshakeReason::Cryptographic,
        HandshakeReason::MechanismMismatch,
        HandshakeReason::SocketTypeMismatch,
        HandshakeReason::Version,
        HandshakeReason::Protocol,
        HandshakeReason::Timeout,
        HandshakeReason::Closed,
        HandshakeReason::Other,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeReason::Auth => "auth",
            HandshakeReason::Cryptographic => "cryptographic",
            HandshakeReason::MechanismMismatch => "mechanism_mismatch",
            HandshakeReason::SocketTypeMismatch => "socket_type_mismatch",
            HandshakeReason::Version => "version",
            HandshakeReason::Protocol => "protocol",
            HandshakeReason::Timeout => "timeout",
            HandshakeReason::Closed => "closed",
            HandshakeReason::Other => "other",
        }
    }

    /// The class of a handshake failure.
    pub fn of(failure: &HandshakeFailure) -> HandshakeReason {
        match failure {
            HandshakeFailure::Auth { .. } => HandshakeReason::Auth,
            HandshakeFailure::Protocol(e) => match e {
                ProtocolError::Cryptographic { .. } | ProtocolError::WeakKey { .. } => {
                    HandshakeReason::Cryptographic
                }
                ProtocolError::MechanismMismatch { .. } | ProtocolError::AsServerConflict(_) => {
                    HandshakeReason::MechanismMismatch
                }
                ProtocolError::IncompatibleSocketType { .. } => HandshakeReason::SocketTypeMismatch,
                ProtocolError::LegacyPeer { .. } | ProtocolError::UnsupportedVersion { .. } => {
                    HandshakeReason::Version
                }
                _ => HandshakeReason::Protocol,
            },
            HandshakeFailure::NoDetail(DisconnectReason::Connection(ConnectionError::HandshakeTimeout(
                _,
            ))) => HandshakeReason::Timeout,
            HandshakeFailure::NoDetail(reason) if reason.is_ordinary() => HandshakeReason::Closed,
            // A probe that closes with our greeting unread resets the connection: still a close.
            HandshakeFailure::NoDetail(DisconnectReason::Io {
                kind:
                    std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof,
                ..
            }) => HandshakeReason::Closed,
            _ => HandshakeReason::Other,
        }
    }
}

pub(super) fn drop_kind_label(kind: DropKind) -> &'static str {
    match kind {
        DropKind::NoDelimiter => "no_delimiter",
        DropKind::EnvelopeTooDeep => "envelope_too_deep",
        DropKind::BadEnvelope => "bad_envelope",
        DropKind::ResponseNotPending => "response_not_pending",
        DropKind::MalformedResponse => "malformed_response",
        DropKind::ClientGone => "client_gone",
        DropKind::ClientQueueFull => "client_queue_full",
        DropKind::IngestorQueueFull => "ingestor_queue_full",
        DropKind::SubscriberQueueFull => "subscriber_queue_full",
    }
}

/// Every drop kind, in slot order.
pub(super) const DROP_KINDS: [DropKind; 9] = [
    DropKind::NoDelimiter,
    DropKind::EnvelopeTooDeep,
    DropKind::BadEnvelope,
    DropKind::ResponseNotPending,
    DropKind::MalformedResponse,
    DropKind::ClientGone,
    DropKind::ClientQueueFull,
    DropKind::IngestorQueueFull,
    DropKind::SubscriberQueueFull,
];
