//! CURVE and PLAIN on the relay's ports (`docs/relay-protocol.md` §6): the key, certificate and
//! password files that the configuration names, read and checked once at start, and turned into socket
//! [`Options`].
//!
//! Each bound role (clients, ingestors, market-data subscribers) is NULL, a CURVE server (the relay's
//! secret certificate, and an allow list of client certificates or any client key), or a PLAIN server
//! (a password file). The upstream XSUB may be a CURVE client (the relay's secret certificate and the
//! source's public key). Nothing here is read again after start.

use std::fmt;
use std::path::Path;

use zmtp::auth::{AuthPolicy, SharedAuthenticator};
use zmtp::cert::{self, Certificate};
use zmtp::{CurvePublicKey, CurveSecretKey, Options};

use crate::config::{Config, ConfigError, PortSecurityConfig};

/// Which input of a security setting a [`LoadError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The secret certificate file.
    SecretKeyFile,
    /// The directory of allowed client certificates.
    AllowedCertsDir,
    /// The PLAIN password file.
    PasswordFile,
    /// The server's public certificate file (a CURVE client's).
    ServerCertFile,
}

/// A security file that cannot be used: which input, and why (the reason names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The input concerned.
    pub input: Input,
    /// Why.
    pub reason: String,
}

impl LoadError {
    fn new(input: Input, reason: impl fmt::Display) -> LoadError {
        LoadError { input, reason: reason.to_string() }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Which client keys a CURVE server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedClients {
    /// Those of the certificates in the allow-list directory (this many keys).
    Listed(usize),
    /// Any key that completes the handshake: encryption without client authentication.
    Any,
}

/// The mechanism of one bound role's sockets, with what it needs.
#[derive(Debug, Clone)]
pub enum PortSecurity {
    /// No security (the default): every ZMTP peer is accepted.
    Null,
    /// A CURVE server.
    Curve {
        /// The relay's secret key for this role (never shown by `Debug`).
        secret: CurveSecretKey,
        /// Its public key: what the clients set as their server key.
        public: CurvePublicKey,
        /// Which client keys are accepted.
        allowed: AllowedClients,
        /// The policy deciding on each client key (shared by the role's sockets).
        authenticator: SharedAuthenticator,
        /// The same policy, to extend with [`PortSecurity::allow_curve_key`].
        policy: Box<AuthPolicy>,
    },
    /// A PLAIN server (user names and passwords travel in clear text).
    Plain {
        /// Users in the password file.
        users: usize,
        /// The policy checking each user and password.
        authenticator: SharedAuthenticator,
    },
}

impl PortSecurity {
    /// `"NULL"`, `"CURVE"` or `"PLAIN"`.
    pub fn mechanism(&self) -> &'static str {
        match self {
            PortSecurity::Null => "NULL",
            PortSecurity::Curve { .. } => "CURVE",
            PortSecurity::Plain { .. } => "PLAIN",
        }
    }

    /// Whether the port requires CURVE or PLAIN.
    pub fn is_secured(&self) -> bool {
        !matches!(self, PortSecurity::Null)
    }

    /// `options` with this mechanism set.
    pub fn apply(&self, options: Options) -> Options {
        match self {
            PortSecurity::Null => options,
            PortSecurity::Curve { secret, public, authenticator, .. } => Options {
                curve_server: true,
                curve_secret_key: Some(secret.clone()),
                curve_public_key: Some(*public),
                authenticator: Some(authenticator.clone()),
                ..options
            },
            PortSecurity::Plain { authenticator, .. } => {
                Options { plain_server: true, authenticator: Some(authenticator.clone()), ..options }
            }
        }
    }

    /// A CURVE server with the secret certificate at `secret_file`, accepting the client keys of the
    /// certificates (`*.key`) in `allowed_dir`, or any client key when it is `None`.
    ///
    /// # Errors
    /// A secret file that is missing, unreadable, not a secret certificate, or readable or writable by
    /// group or others; a directory that cannot be read, holds a certificate that does not load, or
    /// holds none.
    pub fn curve_server(secret_file: &Path, allowed_dir: Option<&Path>) -> Result<PortSecurity, LoadError> {
        let (secret, public) = load_secret(secret_file)?;
        let (allowed, policy) = match allowed_dir {
            None => (AllowedClients::Any, AuthPolicy::new().allow_any_curve_key()),
            Some(dir) => {
                let keys =
                    cert::load_public_keys(dir).map_err(|e| LoadError::new(Input::AllowedCertsDir, e))?;
                if keys.is_empty() {
                    return Err(LoadError::new(
                        Input::AllowedCertsDir,
                        format!(
                            "{} holds no public certificate (NAME.key): no client could connect",
                            dir.display()
                        ),
                    ));
                }
                let n = keys.len();
                let policy = keys.into_iter().fold(AuthPolicy::new(), AuthPolicy::allow_curve_key);
                (AllowedClients::Listed(n), policy)
            }
        };
        Ok(PortSecurity::Curve {
            secret,
            public,
            allowed,
            authenticator: policy.clone().into_shared(),
            policy: Box::new(policy),
        })
    }

    /// A CURVE server that also accepts `key` (the adaptor's self-test subscriber); other mechanisms
    /// are returned unchanged.
    pub fn allow_curve_key(self, key: CurvePublicKey) -> PortSecurity {
        match self {
            PortSecurity::Curve { secret, public, allowed, policy, .. } => {
                let policy = (*policy).allow_curve_key(key);
                PortSecurity::Curve {
                    secret,
                    public,
                    allowed,
                    authenticator: policy.clone().into_shared(),
                    policy: Box::new(policy),
                }
            }
            other => other,
        }
    }

    /// A PLAIN server checking users against the password file at `path` (`user=password` lines,
    /// blank lines and `#` comments skipped).
    ///
    /// # Errors
    /// A file that is missing, unreadable, readable or writable by group or others, has a malformed
    /// line, or names no user.
    pub fn plain_server(path: &Path) -> Result<PortSecurity, LoadError> {
        let bad = |reason: String| LoadError::new(Input::PasswordFile, reason);
        let metadata =
            std::fs::metadata(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        if !metadata.is_file() {
            return Err(bad(format!("{} is not a regular file", path.display())));
        }
        check_private(path, &metadata).map_err(bad)?;
        let policy = AuthPolicy::new().plain_password_file(path).map_err(|e| bad(e.to_string()))?;
        // The policy read it; count its users by the same rule.
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let users = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count();
        if users == 0 {
            return Err(bad(format!(
                "{} names no user (user=password lines): no client could connect",
                path.display()
            )));
        }
        Ok(PortSecurity::Plain { users, authenticator: policy.into_shared() })
    }
}

/// The upstream XSUB as a CURVE client.
#[derive(Debug, Clone)]
pub struct UpstreamCurve {
    /// The relay's secret key (never shown by `Debug`).
    pub secret: CurveSecretKey,
    /// The source's public key.
    pub server: CurvePublicKey,
}

impl UpstreamCurve {
    /// `options` with the CURVE client set.
    pub fn apply(&self, options: Options) -> Options {
        Options {
            curve_secret_key: Some(self.secret.clone()),
            curve_public_key: Some(self.secret.public_key()),
            curve_server_key: Some(self.server),
            ..options
        }
    }
}

/// Every port's security, loaded: what [`crate::Relay::bind_secured`] needs.
#[derive(Debug, Clone)]
pub struct Security {
    /// The client ROUTER.
    pub clients: PortSecurity,
    /// The ingestor work XPUB and response ROUTER.
    pub ingestors: PortSecurity,
    /// The market-data XPUB.
    pub subscribers: PortSecurity,
    /// The upstream XSUB, when it is a CURVE client.
    pub upstream: Option<UpstreamCurve>,
}

impl Default for Security {
    /// NULL everywhere.
    fn default() -> Security {
        Security {
            clients: PortSecurity::Null,
            ingestors: PortSecurity::Null,
            subscribers: PortSecurity::Null,
            upstream: None,
        }
    }
}

impl Security {
    /// Reads and checks the files `config` names (see [`Config::security`]).
    pub fn load(config: &Config) -> Result<Security, ConfigError> {
        let up = &config.upstream_security;
        let upstream = match &up.curve_secret_key_file {
            None => None,
            Some(file) => {
                let key = "flink_market_data_curve_secret_key_file";
                let (secret, _) = load_secret(file).map_err(|e| ConfigError::key(key, e.reason))?;
                let server = match (&up.curve_server_key, &up.curve_server_cert_file) {
                    (Some(server), _) => *server,
                    (None, Some(file)) => load_server_cert(file).map_err(|e| {
                        ConfigError::key("flink_market_data_curve_server_cert_file", e.reason)
                    })?,
                    // Refused by `Config::validate`.
                    (None, None) => {
                        return Err(ConfigError::key("flink_market_data_curve_server_key", "required"))
                    }
                };
                Some(UpstreamCurve { secret, server })
            }
        };
        Ok(Security {
            clients: load_port("client", &config.client_security)?,
            ingestors: load_port("ingestor", &config.ingestor_security)?,
            subscribers: load_port("market_data_pub", &config.market_data_pub_security)?,
            upstream,
        })
    }
}

/// One role's files; errors name the role's key.
fn load_port(prefix: &str, s: &PortSecurityConfig) -> Result<PortSecurity, ConfigError> {
    let loaded = match (&s.curve_secret_key_file, &s.plain_password_file) {
        (Some(secret), _) => PortSecurity::curve_server(secret, s.curve_allowed_certs_dir.as_deref()),
        (None, Some(passwords)) => PortSecurity::plain_server(passwords),
        (None, None) => Ok(PortSecurity::Null),
    };
    loaded.map_err(|e| {
        let setting = match e.input {
            Input::SecretKeyFile => "curve_secret_key_file",
            Input::AllowedCertsDir => "curve_allowed_certs_dir",
            Input::PasswordFile => "plain_password_file",
            Input::ServerCertFile => "curve_server_cert_file",
        };
        ConfigError::key(&format!("{prefix}_{setting}"), e.reason)
    })
}

/// A secret certificate: its secret and public keys. Refused if group or others may read or write it.
pub fn load_secret(path: &Path) -> Result<(CurveSecretKey, CurvePublicKey), LoadError> {
    let cert = cert::load_secret(path).map_err(|e| LoadError::new(Input::SecretKeyFile, e))?;
    match cert.secret {
        Some(secret) => Ok((secret, cert.public)),
        None => Err(LoadError::new(
            Input::SecretKeyFile,
            format!("{}: no secret key (is it a public certificate?)", path.display()),
        )),
    }
}

/// A server's public key from its public (or secret) certificate file.
pub fn load_server_cert(path: &Path) -> Result<CurvePublicKey, LoadError> {
    let public = Certificate::load(path).map_err(|e| LoadError::new(Input::ServerCertFile, e))?.public;
    if public.is_weak() {
        return Err(LoadError::new(
            Input::ServerCertFile,
            format!("{}: not a usable CURVE public key (weak or not on the curve)", path.display()),
        ));
    }
    Ok(public)
}

/// Refuses a file that group or others may read or write (as ssh, and as secret certificates).
#[cfg(unix)]
fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:04o}: a password file must be neither readable nor writable by group or \
             others (chmod 600 it)",
            path.display()
        ));
    }
    Ok(())
}

/// No Unix permissions to check.
#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}
