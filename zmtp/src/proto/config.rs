//! [`ConnectionConfig`], [`Limits`] and [`HeartbeatConfig`]: what a connection is told by its socket.

use std::time::Duration;

use bytes::Bytes;

use super::greeting::Version;
use super::mechanism::Security;
use super::metadata::Metadata;
use super::socket_type::SocketType;

/// Size limits, all checked against a frame's header before any of its body is buffered.
///
/// libzmq's `ZMQ_MAXMSGSIZE` limits each frame only (default: none); a peer sending endless MORE frames
/// grew libzmq's memory without bound (reliability.md §0 rule 2). We limit frames, whole messages and
/// frame counts, with finite defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest data frame body (default 64 MiB). A frame of exactly this size is accepted.
    pub max_frame_size: u64,
    /// Largest message, all frames together (default 64 MiB).
    pub max_message_size: u64,
    /// Most frames in one message (default 4096).
    pub max_frames_per_message: u32,
    /// Largest command body, during and after the handshake (default 64 KiB). Independent of the data
    /// limits, so a tiny `max_frame_size` never breaks handshakes (libzmq's MAXMSGSIZE=10 did).
    pub max_command_size: u64,
}

impl Limits {
    /// Default `max_frame_size` and `max_message_size`: 64 MiB.
    pub const DEFAULT_MAX_MESSAGE: u64 = 64 * 1024 * 1024;
    /// Default `max_frames_per_message`.
    pub const DEFAULT_MAX_FRAMES: u32 = 4096;
    /// Default `max_command_size`: 64 KiB.
    pub const DEFAULT_MAX_COMMAND: u64 = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: Self::DEFAULT_MAX_MESSAGE,
            max_message_size: Self::DEFAULT_MAX_MESSAGE,
            max_frames_per_message: Self::DEFAULT_MAX_FRAMES,
            max_command_size: Self::DEFAULT_MAX_COMMAND,
        }
    }
}

/// Heartbeating (RFC 37 §"Connection Heartbeating"), as libzmq's `ZMQ_HEARTBEAT_*` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatConfig {
    /// Send a PING this often once the handshake is done (`HEARTBEAT_IVL`; `None`: never).
    pub interval: Option<Duration>,
    /// Close if nothing arrives this long after a PING we sent (`HEARTBEAT_TIMEOUT`; `None`: the
    /// interval, as libzmq's default; zero: never, as libzmq's 0).
    pub timeout: Option<Duration>,
    /// The TTL we announce in our PINGs (`HEARTBEAT_TTL`; rounded down to tenths of a second, capped at
    /// 6553.5 s). libzmq peers misread TTLs of 65.6 s and more (libzmq #4226): stay below that.
    pub ttl: Option<Duration>,
}

impl HeartbeatConfig {
    /// The TTL field of our PINGs, in tenths of a second.
    pub fn ttl_deciseconds(&self) -> u16 {
        self.ttl.map_or(0, |t| u16::try_from(t.as_millis() / 100).unwrap_or(u16::MAX))
    }

    /// The interval, if heartbeats are on (`None` or zero means off, as libzmq's 0).
    pub fn active_interval(&self) -> Option<Duration> {
        self.interval.filter(|d| !d.is_zero())
    }

    /// The effective timeout after a PING: `None` means the interval (libzmq's default of -1); zero
    /// means never time out (libzmq's 0: PINGs as keep-alives only).
    pub fn effective_timeout(&self) -> Option<Duration> {
        match self.timeout {
            None => self.active_interval(),
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
        }
    }
}

/// The local identity was refused: at most 255 octets, and not starting with `0x00` (RFC 37 reserves
/// identities starting with a zero octet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid identity: {0}")]
pub struct InvalidIdentity(&'static str);

/// Everything a connection needs to know about its socket.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub(crate) socket_type: SocketType,
    pub(crate) identity: Bytes,
    pub(crate) properties: Metadata,
    pub(crate) as_server: bool,
    pub(crate) version: Version,
    /// Size limits.
    pub limits: Limits,
    /// Heartbeat settings.
    pub heartbeat: HeartbeatConfig,
    /// Close if the handshake has not completed this long after the connection started (libzmq's
    /// `HANDSHAKE_IVL`, default 30 s; `None` or zero: never).
    pub handshake_timeout: Option<Duration>,
    /// Bodies at most this long are copied next to their frame header rather than queued as their own
    /// chunk (default 0: never copy).
    pub inline_body_max: usize,
    /// The security mechanism and our credentials (default NULL).
    pub(crate) security: Security,
    /// Whether the peer's credentials need a decision ([`crate::proto::Event::Authenticate`]) before
    /// the handshake completes: servers of PLAIN and CURVE, and NULL, when an authenticator is set.
    pub(crate) authenticate: bool,
}

impl ConnectionConfig {
    /// Default handshake timeout (libzmq's `HANDSHAKE_IVL`).
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

    /// A configuration for a socket of type `socket_type` with default limits.
    pub fn new(socket_type: SocketType) -> Self {
        ConnectionConfig {
            socket_type,
            identity: Bytes::new(),
            properties: Metadata::new(),
            as_server: false,
            version: Version::V3_1,
            limits: Limits::default(),
            heartbeat: HeartbeatConfig::default(),
            handshake_timeout: Some(Self::DEFAULT_HANDSHAKE_TIMEOUT),
            inline_body_max: 0,
            security: Security::Null,
            authenticate: false,
        }
    }

    /// Sets the security mechanism and our credentials.
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The security mechanism and our credentials.
    pub fn security_config(&self) -> &Security {
        &self.security
    }

    /// Makes the handshake ask for a decision on the peer's credentials (servers, and NULL) before it
    /// completes: the connection reports [`crate::proto::Event::Authenticate`] and waits for
    /// [`crate::proto::Connection::handle_auth_reply`].
    pub fn authenticate(mut self, authenticate: bool) -> Self {
        self.authenticate = authenticate;
        self
    }

    /// Our socket type.
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// Sets the identity announced in READY (libzmq's `ROUTING_ID`).
    pub fn identity(mut self, identity: impl Into<Bytes>) -> Result<Self, InvalidIdentity> {
        let identity = identity.into();
        if identity.len() > 255 {
            return Err(InvalidIdentity("longer than 255 octets"));
        }
        if identity.first() == Some(&0) {
            return Err(InvalidIdentity("starts with a zero octet, which RFC 37 reserves"));
        }
        self.identity = identity;
        Ok(self)
    }

    /// Adds an application property to READY (libzmq's `ZMQ_METADATA`). Names must start with `X-`
    /// and be at most 255 octets; values at most 2^31-1 octets.
    pub fn property(mut self, name: &str, value: impl Into<Bytes>) -> Result<Self, InvalidProperty> {
        let value = value.into();
        if !(name.len() > 2 && name.len() <= 255 && name.as_bytes()[..2].eq_ignore_ascii_case(b"X-"))
            || value.len() > i32::MAX as usize
        {
            return Err(InvalidProperty);
        }
        self.properties.insert(Bytes::copy_from_slice(name.as_bytes()), value);
        Ok(self)
    }

    /// Marks this side as the server (the binder). Only PLAIN and CURVE use it; NULL always sends zero.
    pub fn as_server(mut self, as_server: bool) -> Self {
        self.as_server = as_server;
        self
    }

    /// Sets the ZMTP version we announce (default 3.1): 3.0 (to test how we talk to 3.0 peers) or
    /// 3.1. Any other value is taken as the nearest of the two (major 3, minor at most 1).
    pub fn version(mut self, version: Version) -> Self {
        self.version = Version { major: 3, minor: version.minor.min(1) };
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the heartbeat settings.
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The metadata we send in READY: `Socket-Type`, then `Identity` for REQ/DEALER/ROUTER (as libzmq),
    /// then the application properties.
    pub fn local_metadata(&self) -> Metadata {
        let mut md = Metadata::new();
        md.insert(super::metadata::SOCKET_TYPE, self.socket_type.as_str());
        if self.socket_type.sends_identity() {
            md.insert(super::metadata::IDENTITY, self.identity.clone());
        }
        for (name, value) in self.properties.iter() {
            md.insert(name.clone(), value.clone());
        }
        md
    }
}

/// An application property was refused: its name must start with `X-` and be at most 255 octets
/// (RFC 23 reserves other names), its value at most 2^31-1 octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "application property names must start with \"X-\" and be 3..=255 octets; values at most 2^31-1 octets"
)]
pub struct InvalidProperty;
