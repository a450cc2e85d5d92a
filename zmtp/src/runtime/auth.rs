//! Authentication (ZAP, RFC 27, as a Rust interface): an [`Authenticator`] decides, per connection,
//! whether a peer's credentials are accepted, and with which user id.
//!
//! Set one in [`crate::Options::authenticator`]. It is asked by servers of PLAIN and CURVE, and for
//! NULL connections when [`crate::Options::zap_domain`] is set, as libzmq asks its ZAP handler.
//! Without one, a ZAP handler bound at `inproc://zeromq.zap.01` in this process is asked over RFC
//! 27 (a REP or ROUTER written the libzmq way works unchanged). With neither, libzmq's rules apply:
//! a CURVE server accepts any client that completes the handshake (encryption without client
//! authentication), a PLAIN server refuses every client, NULL accepts; and
//! [`crate::Options::zap_enforce_domain`] makes every one of them refuse.
//!
//! ```no_run
//! # async fn demo() -> zmtp::Result<()> {
//! use zmtp::auth::{AuthPolicy, Authenticator};
//! use zmtp::{curve_keypair, Options, Socket, SocketType};
//!
//! let server_keys = curve_keypair().expect("randomness");
//! let client_keys = curve_keypair().expect("randomness");
//! let policy = AuthPolicy::new().allow_curve_key(client_keys.public);
//! let server = Socket::with_options(SocketType::Rep, Options {
//!     curve_server: true,
//!     curve_secret_key: Some(server_keys.secret.clone()),
//!     authenticator: Some(policy.into_shared()),
//!     ..Options::default()
//! })?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::proto::{AuthReply, Credentials, CurvePublicKey, MechanismName, Password};

/// One authentication request: RFC 27's ZAP request, minus its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The socket's ZAP domain (`Options::zap_domain`; empty if none).
    pub domain: String,
    /// The peer's address (`IP` for tcp, as libzmq sends it; the endpoint for ipc and inproc).
    pub address: String,
    /// Our socket's routing id (libzmq sends the server socket's own `ZMQ_ROUTING_ID`).
    pub routing_id: Bytes,
    /// What the peer presented.
    pub credentials: Credentials,
}

impl AuthRequest {
    /// The mechanism the credentials belong to.
    pub fn mechanism(&self) -> MechanismName {
        self.credentials.mechanism()
    }

    /// The peer's IP address, when it came over tcp.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// The future an [`Authenticator`] returns.
pub type AuthFuture = Pin<Box<dyn Future<Output = AuthReply> + Send + 'static>>;

/// Decides on peers' credentials. Implemented for closures `Fn(AuthRequest) -> impl Future<Output =
/// AuthReply>`. A decision that never comes is ended by the handshake timeout (fail closed).
pub trait Authenticator: Send + Sync + 'static {
    /// Allows or refuses the peer of `request`.
    fn authenticate(&self, request: AuthRequest) -> AuthFuture;
}

impl<F, Fut> Authenticator for F
where
    F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AuthReply> + Send + 'static,
{
    fn authenticate(&self, request: AuthRequest) -> AuthFuture {
        Box::pin(self(request))
    }
}

/// An [`Authenticator`] shared by the sockets that use it (compared by identity).
#[derive(Clone)]
pub struct SharedAuthenticator(pub Arc<dyn Authenticator>);

impl SharedAuthenticator {
    /// Shares `authenticator`.
    pub fn new(authenticator: impl Authenticator) -> Self {
        SharedAuthenticator(Arc::new(authenticator))
    }
}

impl fmt::Debug for SharedAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedAuthenticator(..)")
    }
}

impl PartialEq for SharedAuthenticator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedAuthenticator {}

/// A ready-made policy, as pyzmq's `zmq.auth` Authenticator: addresses first (a deny list, or an
/// allow list), then credentials by mechanism: NULL is allowed once the address passes, PLAIN needs
/// a user and password from the password table, CURVE a client key from the allowed set (or any key,
/// with [`AuthPolicy::allow_any_curve_key`]).
#[derive(Clone, Default)]
pub struct AuthPolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    passwords: HashMap<Bytes, Password>,
    curve_keys: HashSet<CurvePublicKey>,
    curve_any: bool,
}

impl fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthPolicy")
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .field("users", &self.passwords.len())
            .field("curve_keys", &self.curve_keys.len())
            .field("curve_any", &self.curve_any)
            .finish()
    }
}

/// An address range (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            // An IPv4 peer on a dual-stack listener arrives as ::ffff:a.b.c.d.
            (IpAddr::V4(_), IpAddr::V6(ip)) => {
                ip.to_ipv4_mapped().is_some_and(|v4| self.contains(IpAddr::V4(v4)))
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr =
            addr.trim().parse().map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("bad prefix length in {s:?}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// Why a policy file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A line of a password file is not `user=password`.
    #[error("{path}:{line}: expected user=password (user and password 0-255 octets)")]
    BadPasswordLine {
        /// The file.
        path: String,
        /// The line number (from 1).
        line: usize,
    },
    /// A certificate directory could not be loaded.
    #[error(transparent)]
    Cert(#[from] crate::cert::CertError),
}

impl AuthPolicy {
    /// A policy that allows NULL from any address and nothing else.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows only these addresses (once any is given, every other address is refused).
    pub fn allow(mut self, net: IpNet) -> Self {
        self.allow.push(net);
        self
    }

    /// Refuses these addresses (ignored once an allow list is set, as pyzmq).
    pub fn deny(mut self, net: IpNet) -> Self {
        self.deny.push(net);
        self
    }

    /// Allows PLAIN user `user` with `password`.
    pub fn plain_user(mut self, user: impl Into<Bytes>, password: impl Into<Bytes>) -> Self {
        self.passwords.insert(user.into(), Password::new(password));
        self
    }

    /// Adds the users of a password file: one `user=password` per line; blank lines and lines
    /// starting with `#` are skipped.
    ///
    /// # Errors
    /// [`PolicyError`] if the file cannot be read or a line is malformed.
    pub fn plain_password_file(mut self, path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Io { path: shown.clone(), source })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = || PolicyError::BadPasswordLine { path: shown.clone(), line: i + 1 };
            let (user, password) = line.split_once('=').ok_or_else(bad)?;
            if user.len() > 255 || password.len() > 255 {
                return Err(bad());
            }
            self.passwords
                .insert(Bytes::copy_from_slice(user.as_bytes()), Password::new(password.as_bytes().to_vec()));
        }
        Ok(self)
    }

    /// Allows CURVE clients with this public key.
    pub fn allow_curve_key(mut self, key: CurvePublicKey) -> Self {
        self.curve_keys.insert(key);
        self
    }

    /// Allows CURVE clients whose certificates (`*.key`, pyzmq's format) are in `dir`.
    ///
    /// # Errors
    /// [`PolicyError::Cert`] if the directory or a certificate cannot be read.
    pub fn curve_certificates(mut self, dir: impl AsRef<Path>) -> Result<Self, PolicyError> {
        self.curve_keys.extend(crate::cert::load_public_keys(dir.as_ref())?);
        Ok(self)
    }

    /// Allows any CURVE client that completes the handshake (encryption without client
    /// authentication: pyzmq's `CURVE_ALLOW_ANY`).
    pub fn allow_any_curve_key(mut self) -> Self {
        self.curve_any = true;
        self
    }

    /// The decision on `request`.
    pub fn decide(&self, request: &AuthRequest) -> AuthReply {
        if let Some(ip) = request.ip() {
            if !self.allow.is_empty() {
                if !self.allow.iter().any(|n| n.contains(ip)) {
                    return AuthReply::deny(400, "Address not allowed");
                }
            } else if self.deny.iter().any(|n| n.contains(ip)) {
                return AuthReply::deny(400, "Address denied");
            }
        } else if !self.allow.is_empty() {
            // An allow list admits only tcp peers whose address it names.
            return AuthReply::deny(400, "Address not allowed");
        }
        match &request.credentials {
            Credentials::Null => AuthReply::allow(Bytes::new()),
            Credentials::Plain { username, password } => match self.passwords.get(username) {
                Some(p) if crate::proto::keys::ct_eq(p.expose(), password.expose()) => {
                    AuthReply::allow(username.clone())
                }
                _ => AuthReply::deny(400, "Invalid username or password"),
            },
            Credentials::Curve { public_key } => {
                if self.curve_any || self.curve_keys.contains(public_key) {
                    AuthReply::allow(Bytes::from(public_key.to_z85().into_bytes()))
                } else {
                    AuthReply::deny(400, "Unknown key")
                }
            }
            #[allow(unreachable_patterns)]
            _ => AuthReply::deny(400, "Unsupported mechanism"),
        }
    }

    /// This policy as a socket's authenticator.
    pub fn into_shared(self) -> SharedAuthenticator {
        SharedAuthenticator::new(self)
    }
}

impl Authenticator for AuthPolicy {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture {
        let reply = self.decide(&request);
        Box::pin(async move { reply })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(address: &str, credentials: Credentials) -> AuthRequest {
        AuthRequest { domain: String::new(), address: address.into(), routing_id: Bytes::new(), credentials }
    }

    #[test]
    fn cidr_ranges_match_v4_v6_and_mapped_addresses() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.9.9".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
    }

    #[test]
    fn policy_checks_addresses_then_credentials() {
        let key = crate::proto::CurveSecretKey::from_bytes([3; 32]).public_key();
        let policy = AuthPolicy::new()
            .deny("192.168.0.0/16".parse().unwrap())
            .plain_user("admin", "secret")
            .allow_curve_key(key);
        assert!(policy.decide(&request("127.0.0.1", Credentials::Null)).is_allowed());
        assert!(!policy.decide(&request("192.168.1.1", Credentials::Null)).is_allowed());
        let plain = |u: &'static str, p: &'static str| Credentials::Plain {
            username: Bytes::from_static(u.as_bytes()),
            password: Password::new(Bytes::from_static(p.as_bytes())),
        };
        let ok = policy.decide(&request("127.0.0.1", plain("admin", "secret")));
        assert_eq!((ok.status, &ok.user_id[..]), (200, &b"admin"[..]));
        assert_eq!(policy.decide(&request("127.0.0.1", plain("admin", "wrong"))).status, 400);
        assert_eq!(policy.decide(&request("127.0.0.1", plain("", ""))).status, 400);
        assert!(policy.decide(&request("127.0.0.1", Credentials::Curve { public_key: key })).is_allowed());
        let other = crate::proto::CurveSecretKey::from_bytes([4; 32]).public_key();
        assert_eq!(
            policy.decide(&request("127.0.0.1", Credentials::Curve { public_key: other })).status,
            400
        );
        let allow = AuthPolicy::new().allow("127.0.0.1".parse().unwrap());
        assert!(allow.decide(&request("127.0.0.1", Credentials::Null)).is_allowed());
        assert!(!allow.decide(&request("127.0.0.2", Credentials::Null)).is_allowed());
        assert!(!allow.decide(&request("/tmp/x.sock", Credentials::Null)).is_allowed());
    }
}
