//! [`Options`]: a socket's options, named after libzmq's `ZMQ_*` socket options.
//!
//! Options are fixed when the socket is created ([`crate::Socket::with_options`]); build them with
//! struct-update syntax:
//!
//! ```
//! use std::time::Duration;
//! use zmtp::Options;
//!
//! let options = Options {
//!     routing_id: Some("worker-1".into()),
//!     heartbeat_interval: Some(Duration::from_secs(1)),
//!     ..Options::default()
//! };
//! assert_eq!(options.send_hwm, 1000);
//! ```

use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;
use crate::proto::{
    ConnectionConfig, CurvePublicKey, CurveSecretKey, HeartbeatConfig, Limits, Password, Security, SocketType,
};
use crate::runtime::auth::SharedAuthenticator;
use crate::runtime::transport::TransportOptions;

/// Message bodies at most this long are copied into the write buffer rather than queued as their own
/// iovec.
const INLINE_BODY_MAX: usize = 512;

/// A socket's options. Defaults are libzmq's unless stated (see `docs/differences.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `ZMQ_SNDHWM`: messages queued per peer for sending (default 1000; 0 means unlimited, as libzmq).
    pub send_hwm: usize,
    /// `ZMQ_RCVHWM`: messages queued per peer on receipt (default 1000; 0 means unlimited). A
    /// connection whose queue is full is not read from until the application receives.
    pub recv_hwm: usize,
    /// Cap in bytes on each per-peer queue, either direction (default 64 MiB; 0 means none). libzmq
    /// has only message counts, so 1000 queued 64 MiB messages could hold 64 GiB; this bounds that.
    pub queue_bytes_max: usize,
    /// `ZMQ_LINGER`: how long closing waits to flush queued messages (`None`: forever, libzmq's
    /// default of -1; `Some(0)`: discard at once).
    pub linger: Option<Duration>,
    /// `ZMQ_ROUTING_ID`: the identity sent to peers in our READY (honoured by ROUTER peers); 1–255
    /// octets, not starting with `0x00`.
    pub routing_id: Option<Bytes>,
    /// `ZMQ_ROUTER_MANDATORY`: a ROUTER reports [`Error::HostUnreachable`] for an unroutable
    /// message instead of dropping it silently.
    pub router_mandatory: bool,
    /// `ZMQ_ROUTER_HANDOVER`: a ROUTER hands an identity that is already connected over to the new
    /// connection (the old one is closed) instead of refusing the new one.
    pub router_handover: bool,
    /// `ZMQ_PROBE_ROUTER`: send an empty message to each peer as soon as its handshake completes
    /// (ROUTER, DEALER, REQ).
    pub probe_router: bool,
    /// `ZMQ_REQ_CORRELATE`: a REQ prefixes each request with a request id and accepts only the reply
    /// carrying it.
    pub req_correlate: bool,
    /// `ZMQ_REQ_RELAXED`: a REQ may send a new request before the reply to the last one arrived (that
    /// reply is then discarded).
    pub req_relaxed: bool,
    /// `ZMQ_MAXMSGSIZE`: the largest message a peer may send, all frames together; a peer sending
    /// more is disconnected. Default 64 MiB, not libzmq's unlimited (`None` = 2^63-1 bytes).
    pub max_msg_size: Option<u64>,
    /// Most frames in one message a peer may send (default 4096; libzmq has no limit).
    pub max_frames_per_message: u32,
    /// `ZMQ_HANDSHAKE_IVL`: close a connection whose handshake is not complete after this long
    /// (default 30 s; `None` = never).
    pub handshake_interval: Option<Duration>,
    /// Most handshakes in progress per listener (default 1024; libzmq has no cap). At the cap, the
    /// oldest handshake in progress is closed to admit a new connection (logged, rate-limited): peers
    /// that connect and stall cannot lock out real ones, which finish in a few round trips.
    pub max_handshakes: usize,
    /// Most handshakes in progress per listener from one IP address (default 512; libzmq has no
    /// cap). At it, that address's own oldest handshake is closed to admit its new connection, so
    /// one host's flood of stalled handshakes churns only its own slots (reliability.md B-15).
    pub max_handshakes_per_ip: usize,
    /// `ZMQ_RECONNECT_IVL`: wait before reconnecting (default 100 ms; `None` = never reconnect, as
    /// libzmq's -1).
    pub reconnect_interval: Option<Duration>,
    /// `ZMQ_RECONNECT_IVL_MAX`: the back-off doubles the wait after each failed attempt up to this
    /// (default `None`: no back-off, as libzmq's 0). Each wait gets up to 10% random jitter.
    pub reconnect_interval_max: Option<Duration>,
    /// `ZMQ_CONNECT_TIMEOUT`: give up a tcp connect attempt after this long (default `None`: the OS
    /// default).
    pub connect_timeout: Option<Duration>,
    /// `ZMQ_SNDTIMEO`: how long `send` waits for room (`None`: forever; `Some(0)`: not at all).
    pub send_timeout: Option<Duration>,
    /// `ZMQ_RCVTIMEO`: how long `recv` waits for a message (`None`: forever; `Some(0)`: not at all).
    pub recv_timeout: Option<Duration>,
    /// `ZMQ_IMMEDIATE`: queue messages only to peers whose connection is complete (default false:
    /// a connecting peer's queue accepts messages at once, RFC 28/30/31).
    pub immediate: bool,
    /// `ZMQ_IPV6`: bind `*` to IPv6 (dual stack) and resolve names to both families.
    pub ipv6: bool,
    /// `ZMQ_TCP_KEEPALIVE`: `None` = OS default (libzmq's -1), `Some(true/false)` = on/off.
    pub tcp_keepalive: Option<bool>,
    /// `ZMQ_TCP_KEEPALIVE_IDLE`.
    pub tcp_keepalive_idle: Option<Duration>,
    /// `ZMQ_TCP_KEEPALIVE_INTVL`.
    pub tcp_keepalive_interval: Option<Duration>,
    /// `ZMQ_TCP_KEEPALIVE_CNT`.
    pub tcp_keepalive_count: Option<u32>,
    /// `ZMQ_XPUB_VERBOSE`: an XPUB passes every subscription to the application, not only a topic's
    /// first.
    pub xpub_verbose: bool,
    /// `ZMQ_XPUB_VERBOSER`: as `xpub_verbose`, and every cancel too, not only a topic's last.
    pub xpub_verboser: bool,
    /// `ZMQ_XPUB_NODROP`: a PUB/XPUB whose subscriber's queue is full makes `send` wait (or fail
    /// with `WouldBlock`) instead of dropping the message for that subscriber.
    pub xpub_nodrop: bool,
    /// `ZMQ_XPUB_MANUAL`: an XPUB passes every (un)subscription to the application and applies
    /// none itself; the application calls `subscribe`/`unsubscribe` on the XPUB to apply them to
    /// the peer whose subscription it received last.
    pub xpub_manual: bool,
    /// `ZMQ_XPUB_WELCOME_MSG`: a message sent to every new subscriber of an XPUB.
    pub xpub_welcome_msg: Option<Bytes>,
    /// `ZMQ_INVERT_MATCHING`: PUB/XPUB send to subscribers whose subscriptions do *not* match; SUB
    /// delivers the messages that match none of its subscriptions.
    pub invert_matching: bool,
    /// `ZMQ_CONFLATE`: keep only the newest message in each queue (for single-frame "latest value"
    /// streams).
    pub conflate: bool,
    /// Caps on each subscriber's subscriptions (PUB, XPUB). A subscription over a cap is not
    /// honoured (logged); the subscriber keeps the others. libzmq has none.
    pub subscription_limits: crate::pattern::subscriptions::SubscriptionLimits,
    /// `ZMQ_HEARTBEAT_IVL`: send a PING this often (default `None`: off).
    pub heartbeat_interval: Option<Duration>,
    /// `ZMQ_HEARTBEAT_TIMEOUT`: close if nothing arrives this long after a PING (default `None`: the
    /// interval; zero: never).
    pub heartbeat_timeout: Option<Duration>,
    /// `ZMQ_HEARTBEAT_TTL`: the TTL announced in our PINGs (tenths of a second; keep below 65.6 s,
    /// which libzmq peers misread).
    pub heartbeat_ttl: Option<Duration>,

    /// `ZMQ_CURVE_SERVER`: this socket is a CURVE server (needs `curve_secret_key`). It accepts any
    /// client key unless an authenticator (or a ZAP handler) decides otherwise: see [`crate::auth`].
    pub curve_server: bool,
    /// `ZMQ_CURVE_PUBLICKEY`: our long-term public key (derived from the secret key when not given).
    pub curve_public_key: Option<CurvePublicKey>,
    /// `ZMQ_CURVE_SECRETKEY`: our long-term secret key (never shown by `Debug`).
    pub curve_secret_key: Option<CurveSecretKey>,
    /// `ZMQ_CURVE_SERVERKEY`: the server's public key; setting it makes this socket a CURVE client
    /// (needs `curve_secret_key`).
    pub curve_server_key: Option<CurvePublicKey>,
    /// `ZMQ_PLAIN_SERVER`: this socket is a PLAIN server (RFC 24: user names and passwords travel in
    /// clear text).
    pub plain_server: bool,
    /// `ZMQ_PLAIN_USERNAME`: setting it (or the password) makes this socket a PLAIN client.
    pub plain_username: Option<Bytes>,
    /// `ZMQ_PLAIN_PASSWORD` (never shown by `Debug`).
    pub plain_password: Option<Password>,
    /// `ZMQ_ZAP_DOMAIN`: the domain passed to the authenticator; for NULL sockets, setting it is what
    /// makes the authenticator be asked (as libzmq).
    pub zap_domain: String,
    /// `ZMQ_ZAP_ENFORCE_DOMAIN`: with no authenticator and no ZAP handler, a socket that would ask one
    /// refuses every peer instead of accepting it (fail closed).
    pub zap_enforce_domain: bool,
    /// Decides on peers' credentials (libzmq's ZAP handler, as a Rust interface): see
    /// [`crate::auth`].
    pub authenticator: Option<SharedAuthenticator>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            send_hwm: 1000,
            recv_hwm: 1000,
            queue_bytes_max: 64 * 1024 * 1024,
            linger: None,
            routing_id: None,
            router_mandatory: false,
            router_handover: false,
            probe_router: false,
            req_correlate: false,
            req_relaxed: false,
            max_msg_size: Some(Limits::DEFAULT_MAX_MESSAGE),
            max_frames_per_message: Limits::DEFAULT_MAX_FRAMES,
            handshake_interval: Some(ConnectionConfig::DEFAULT_HANDSHAKE_TIMEOUT),
            max_handshakes: 1024,
            max_handshakes_per_ip: 512,
            reconnect_interval: Some(Duration::from_millis(100)),
            reconnect_interval_max: None,
            connect_timeout: None,
            send_timeout: None,
            recv_timeout: None,
            immediate: false,
            ipv6: false,
            tcp_keepalive: None,
            tcp_keepalive_idle: None,
            tcp_keepalive_interval: None,
            tcp_keepalive_count: None,
            xpub_verbose: false,
            xpub_verboser: false,
            xpub_nodrop: false,
            xpub_manual: false,
            xpub_welcome_msg: None,
            invert_matching: false,
            conflate: false,
            subscription_limits: Default::default(),
            heartbeat_interval: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            curve_server: false,
            curve_public_key: None,
            curve_secret_key: None,
            curve_server_key: None,
            plain_server: false,
            plain_username: None,
            plain_password: None,
            zap_domain: String::new(),
            zap_enforce_domain: false,
            authenticator: None,
        }
    }
}

impl Options {
    /// Checks the values and builds the per-connection configuration for `socket_type`.
    pub(crate) fn connection_config(&self, socket_type: SocketType) -> Result<ConnectionConfig, Error> {
        let max = self.max_msg_size.unwrap_or(i64::MAX as u64);
        let limits = Limits {
            max_frame_size: max,
            max_message_size: max,
            max_frames_per_message: self.max_frames_per_message.max(1),
            ..Limits::default()
        };
        let mut config = ConnectionConfig::new(socket_type)
            .limits(limits)
            .handshake_timeout(self.handshake_interval)
            .heartbeat(HeartbeatConfig {
                interval: self.heartbeat_interval,
                timeout: self.heartbeat_timeout,
                ttl: self.heartbeat_ttl,
            });
        // Bodies up to 512 octets are copied next to their header, so a batch of small messages is one
        // contiguous iovec: the kernel copies a long segment far faster than it walks many short ones
        // (measured, PUSH→PULL over tcp: 64 → 512 took 256 B messages from 3.3 M to 4.2–5.5 M msg/s;
        // at 16 B, 64 had already cut sender CPU by 45%). Larger bodies stay zero-copy: at 1 KiB copying
        // no longer paid (1024 measured no better than 512 for 1 KiB messages).
        config.inline_body_max = INLINE_BODY_MAX;
        if let Some(id) = &self.routing_id {
            config = config
                .identity(id.clone())
                .map_err(|e| Error::InvalidOption { name: "ZMQ_ROUTING_ID", reason: e.to_string() })?;
        }
        let security = self.security()?;
        let asks =
            !matches!(security, Security::Null | Security::PlainClient { .. } | Security::CurveClient { .. })
                || !self.zap_domain.is_empty();
        // Asked even without an authenticator: a ZAP handler may be bound later, and without either
        // the driver applies libzmq's rules (see `crate::auth`).
        config = config.security(security).authenticate(asks);
        if self.heartbeat_ttl.is_some_and(|t| t >= Duration::from_millis(65_600)) {
            tracing::warn!(
                "ZMQ_HEARTBEAT_TTL of {:?} or more is misread by libzmq peers (libzmq #4226)",
                self.heartbeat_ttl
            );
        }
        Ok(config)
    }

    /// The mechanism and credentials the options select, checked.
    fn security(&self) -> Result<Security, Error> {
        let invalid =
            |name: &'static str, reason: &str| Error::InvalidOption { name, reason: reason.to_owned() };
        let plain_client = self.plain_username.is_some() || self.plain_password.is_some();
        let curve_client = self.curve_server_key.is_some();
        let chosen =
            [self.curve_server, curve_client, self.plain_server, plain_client].iter().filter(|&&b| b).count();
        if chosen > 1 {
            return Err(invalid(
                "ZMQ_CURVE_SERVER",
                "choose one of CURVE server, CURVE client (CURVE_SERVERKEY), PLAIN server, PLAIN client",
            ));
        }
        let long_term = |role: &str| -> Result<(CurvePublicKey, CurveSecretKey), Error> {
            let secret = self.curve_secret_key.clone().ok_or_else(|| {
                invalid("ZMQ_CURVE_SECRETKEY", &format!("a CURVE {role} needs its secret key"))
            })?;
            let public = secret.public_key();
            if self.curve_public_key.is_some_and(|p| p != public) {
                return Err(invalid("ZMQ_CURVE_PUBLICKEY", "does not match ZMQ_CURVE_SECRETKEY"));
            }
            Ok((public, secret))
        };
        if self.curve_server {
            let (public, secret) = long_term("server")?;
            return Ok(Security::CurveServer { public, secret });
        }
        if let Some(server) = self.curve_server_key {
            if server.is_weak() {
                return Err(invalid(
                    "ZMQ_CURVE_SERVERKEY",
                    "is not a usable public key (weak or not on the curve)",
                ));
            }
            let (public, secret) = long_term("client")?;
            return Ok(Security::CurveClient { public, secret, server });
        }
        if self.plain_server {
            return Ok(Security::PlainServer);
        }
        if plain_client {
            let username = self.plain_username.clone().unwrap_or_default();
            let password = self.plain_password.clone().unwrap_or_else(|| Password::new(Bytes::new()));
            if username.len() > 255 {
                return Err(invalid("ZMQ_PLAIN_USERNAME", "longer than 255 octets"));
            }
            if password.expose().len() > 255 {
                return Err(invalid("ZMQ_PLAIN_PASSWORD", "longer than 255 octets"));
            }
            return Ok(Security::PlainClient { username, password });
        }
        Ok(Security::Null)
    }

    /// What the transports need.
    pub(crate) fn transport_options(&self) -> TransportOptions {
        TransportOptions {
            tcp_keepalive: self.tcp_keepalive,
            tcp_keepalive_idle: self.tcp_keepalive_idle,
            tcp_keepalive_interval: self.tcp_keepalive_interval,
            tcp_keepalive_count: self.tcp_keepalive_count,
            connect_timeout: self.connect_timeout,
            ipv6: self.ipv6,
        }
    }

    /// The effective per-peer send limit in messages (`usize::MAX` when unlimited).
    pub(crate) fn send_limit(&self) -> usize {
        if self.send_hwm == 0 {
            usize::MAX
        } else {
            self.send_hwm
        }
    }

    /// The effective per-peer receive limit in messages.
    pub(crate) fn recv_limit(&self) -> usize {
        if self.recv_hwm == 0 {
            usize::MAX
        } else {
            self.recv_hwm
        }
    }

    /// The effective per-queue byte cap.
    pub(crate) fn bytes_limit(&self) -> usize {
        if self.queue_bytes_max == 0 {
            usize::MAX
        } else {
            self.queue_bytes_max
        }
    }
}
