//! The relay's configuration: a TOML file whose keys all have defaults (`docs/relay-protocol.md` §3, §5).
//!
//! Parsing is strict: an unknown key, a wrong type or a bad value is a [`ConfigError`] naming the key, and
//! nothing is half-applied. Validation happens before anything is bound.
//!
//! ```
//! let config = relay::Config::from_toml("client_request_port = 6000\nrequest_timeout_secs = 0.5").unwrap();
//! assert_eq!(config.client_request_port, 6000);
//! assert_eq!(config.ingestor_work_port, 5555);
//! let err = relay::Config::from_toml("client_request_port = 0").unwrap_err();
//! assert!(err.to_string().contains("client_request_port"));
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zmtp::{CurvePublicKey, Endpoint};

use crate::security::Security;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text, one event per line.
    Text,
    /// One JSON object per line.
    Json,
}

/// The relay's configuration, with the defaults of `docs/relay-protocol.md` §3.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `tcp://<host>` the four relay ports are bound on (`tcp://*`).
    pub bind_address: String,
    /// Clients' ROUTER port (5559).
    pub client_request_port: u16,
    /// Market-data XPUB port (5558).
    pub market_data_pub_port: u16,
    /// Ingestor work XPUB port (5555).
    pub ingestor_work_port: u16,
    /// Ingestor response ROUTER port (5556).
    pub ingestor_response_port: u16,
    /// The market-data source the XSUB connects to (or binds, with `flink_market_data_bind`).
    pub flink_market_data_endpoint: String,
    /// Whether the XSUB binds `flink_market_data_endpoint` instead of connecting to it.
    pub flink_market_data_bind: bool,
    /// How long a request may wait for an ingestor's response.
    pub request_timeout: Duration,
    /// Messages per peer queue.
    pub high_water_mark: usize,
    /// Requests that may be pending at once.
    pub max_pending_requests: usize,
    /// Distinct topics one market-data subscriber may hold; beyond it the subscriber gets every
    /// message (zmtp's overflow rule).
    pub max_subscriptions_per_subscriber: usize,
    /// Largest ingestor response or market-data message accepted, in bytes.
    pub max_message_bytes: u64,
    /// How long a peer may take to complete the ZMTP handshake.
    pub handshake_timeout: Duration,
    /// How often the relay PINGs each peer; `None` turns heartbeats off.
    pub heartbeat_interval: Option<Duration>,
    /// How long a peer may stay silent before its connection is closed (with heartbeats on).
    pub heartbeat_timeout: Duration,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Security of the client ROUTER (`client_*` keys).
    pub client_security: PortSecurityConfig,
    /// Security of the two ingestor ports, work and responses (`ingestor_*` keys).
    pub ingestor_security: PortSecurityConfig,
    /// Security of the market-data XPUB (`market_data_pub_*` keys).
    pub market_data_pub_security: PortSecurityConfig,
    /// CURVE client settings of the upstream XSUB (`flink_market_data_curve_*` keys).
    pub upstream_security: UpstreamSecurityConfig,
    /// `admin_address` as written: `None` is the default (the host of `bind_address`, port
    /// [`DEFAULT_ADMIN_PORT`]), `Some("")` turns the admin endpoint off. See [`Config::admin_address`].
    pub admin_address: Option<String>,
    /// `upstream_optional`: `/readyz` does not wait for the upstream connection.
    pub upstream_optional: bool,
}

/// The admin endpoint's port when `admin_address` is not set.
pub const DEFAULT_ADMIN_PORT: u16 = 9559;

/// The security settings of one role's bound port(s), as written in the file (paths, not yet read:
/// [`Config::security`] reads them). All unset is the NULL mechanism.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSecurityConfig {
    /// `<role>_curve_secret_key_file`: the relay's secret certificate for this role; CURVE when set.
    pub curve_secret_key_file: Option<PathBuf>,
    /// `<role>_curve_allowed_certs_dir`: the public certificates (`*.key`) of the allowed clients.
    pub curve_allowed_certs_dir: Option<PathBuf>,
    /// `<role>_curve_allow_any_key`: any client key is accepted (encryption without authentication).
    pub curve_allow_any_key: bool,
    /// `<role>_plain_password_file`: `user=password` lines; PLAIN when set.
    pub plain_password_file: Option<PathBuf>,
}

impl PortSecurityConfig {
    /// Whether any key of this role is set (CURVE or PLAIN).
    pub fn is_set(&self) -> bool {
        self.curve_secret_key_file.is_some()
            || self.curve_allowed_certs_dir.is_some()
            || self.curve_allow_any_key
            || self.plain_password_file.is_some()
    }
}

/// The upstream XSUB as a CURVE client, as written in the file. All unset is the NULL mechanism.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamSecurityConfig {
    /// `flink_market_data_curve_secret_key_file`: the relay's own secret certificate.
    pub curve_secret_key_file: Option<PathBuf>,
    /// `flink_market_data_curve_server_key`: the source's public key, 40 Z85 characters.
    pub curve_server_key: Option<CurvePublicKey>,
    /// `flink_market_data_curve_server_cert_file`: the source's public certificate file, instead.
    pub curve_server_cert_file: Option<PathBuf>,
}

impl UpstreamSecurityConfig {
    /// Whether any key is set.
    pub fn is_set(&self) -> bool {
        self.curve_secret_key_file.is_some()
            || self.curve_server_key.is_some()
            || self.curve_server_cert_file.is_some()
    }
}

/// The key prefixes of the roles whose bound ports may require CURVE or PLAIN.
pub const SECURED_ROLES: [&str; 3] = ["client", "ingestor", "market_data_pub"];

impl Default for Config {
    fn default() -> Config {
        Config {
            bind_address: "tcp://*".into(),
            client_request_port: 5559,
            market_data_pub_port: 5558,
            ingestor_work_port: 5555,
            ingestor_response_port: 5556,
            flink_market_data_endpoint: "tcp://flink-jobmanager:5557".into(),
            flink_market_data_bind: false,
            request_timeout: Duration::from_secs(30),
            high_water_mark: 10_000,
            max_pending_requests: 100_000,
            max_subscriptions_per_subscriber: 100_000,
            max_message_bytes: 64 << 20,
            handshake_timeout: Duration::from_secs(30),
            heartbeat_interval: Some(Duration::from_secs(10)),
            heartbeat_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            client_security: PortSecurityConfig::default(),
            ingestor_security: PortSecurityConfig::default(),
            market_data_pub_security: PortSecurityConfig::default(),
            upstream_security: UpstreamSecurityConfig::default(),
            admin_address: None,
            upstream_optional: false,
        }
    }
}

/// A configuration the relay refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending key, when the error is about one.
    pub key: Option<String>,
    /// Why.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn key(key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError { key: Some(key.to_owned()), reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "`{key}`: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where a configuration came from: the file, or the defaults because there was no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Read from the file.
    File,
    /// The file did not exist: the defaults.
    Defaults,
}

const KEYS: &[&str] = &[
    "bind_address",
    "client_request_port",
    "market_data_pub_port",
    "ingestor_work_port",
    "ingestor_response_port",
    "flink_market_data_endpoint",
    "flink_market_data_bind",
    "request_timeout_secs",
    "high_water_mark",
    "max_pending_requests",
    "max_subscriptions_per_subscriber",
    "max_message_bytes",
    "handshake_timeout_secs",
    "heartbeat_interval_secs",
    "heartbeat_timeout_secs",
    "log_format",
    "client_curve_secret_key_file",
    "client_curve_allowed_certs_dir",
    "client_curve_allow_any_key",
    "client_plain_password_file",
    "ingestor_curve_secret_key_file",
    "ingestor_curve_allowed_certs_dir",
    "ingestor_curve_allow_any_key",
    "ingestor_plain_password_file",
    "market_data_pub_curve_secret_key_file",
    "market_data_pub_curve_allowed_certs_dir",
    "market_data_pub_curve_allow_any_key",
    "market_data_pub_plain_password_file",
    "flink_market_data_curve_secret_key_file",
    "flink_market_data_curve_server_key",
    "flink_market_data_curve_server_cert_file",
    "admin_address",
    "upstream_optional",
];

impl Config {
    /// Reads `path`; a file that does not exist gives the defaults ([`ConfigSource::Defaults`]). A file
    /// that exists but cannot be read is an error.
    pub fn load(path: &Path) -> Result<(Config, ConfigSource), ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Config::from_toml(&text)?, ConfigSource::File)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((Config::default(), ConfigSource::Defaults))
            }
            Err(e) => Err(ConfigError { key: None, reason: format!("cannot read {}: {e}", path.display()) }),
        }
    }

    /// Every key a configuration file may set.
    pub fn keys() -> &'static [&'static str] {
        KEYS
    }

    /// Reads the key and certificate files the security keys name, and checks them: a file that is
    /// missing or unreadable, a secret file readable or writable by group or others, a certificate
    /// directory that does not load or holds no certificate, a password file with a bad line or no
    /// user are errors naming the key. Called at start, before anything is bound.
    pub fn security(&self) -> Result<Security, ConfigError> {
        Security::load(self)
    }

    /// The security settings of the role whose keys start with `prefix` (one of [`SECURED_ROLES`]).
    pub fn port_security(&self, prefix: &str) -> Option<&PortSecurityConfig> {
        match prefix {
            "client" => Some(&self.client_security),
            "ingestor" => Some(&self.ingestor_security),
            "market_data_pub" => Some(&self.market_data_pub_security),
            _ => None,
        }
    }

    /// Parses and validates a configuration file's text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            key: None,
            reason: format!("TOML syntax error: {e}"),
        })?;
        let mut config = Config::default();
        for (key, value) in &table {
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError::key(key, "unknown key"));
            }
            config.set(key, value)?;
        }
        // An `admin_address` that spells out the default is the default (`*` and `0.0.0.0` alike).
        if let Some(explicit) = config.admin_address.take() {
            if config.admin_address() != Some(explicit.replace("*:", "0.0.0.0:")) || explicit.is_empty() {
                config.admin_address = Some(explicit);
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &toml::Value) -> Result<(), ConfigError> {
        match key {
            "bind_address" => self.bind_address = string(key, value)?,
            "client_request_port" => self.client_request_port = port(key, value)?,
            "market_data_pub_port" => self.market_data_pub_port = port(key, value)?,
            "ingestor_work_port" => self.ingestor_work_port = port(key, value)?,
            "ingestor_response_port" => self.ingestor_response_port = port(key, value)?,
            "flink_market_data_endpoint" => self.flink_market_data_endpoint = string(key, value)?,
            "flink_market_data_bind" => {
                self.flink_market_data_bind =
                    value.as_bool().ok_or_else(|| ConfigError::key(key, "expected true or false"))?
            }
            "request_timeout_secs" => self.request_timeout = seconds(key, value, false)?,
            "high_water_mark" => self.high_water_mark = integer(key, value, 1, 10_000_000)? as usize,
            "max_pending_requests" => {
                self.max_pending_requests = integer(key, value, 1, u32::MAX as i64)? as usize
            }
            "max_subscriptions_per_subscriber" => {
                self.max_subscriptions_per_subscriber = integer(key, value, 1, 10_000_000)? as usize
            }
            "max_message_bytes" => self.max_message_bytes = integer(key, value, 1024, i64::MAX)? as u64,
            "handshake_timeout_secs" => self.handshake_timeout = seconds(key, value, false)?,
            "heartbeat_interval_secs" => {
                let interval = seconds(key, value, true)?;
                self.heartbeat_interval = (!interval.is_zero()).then_some(interval);
            }
            "heartbeat_timeout_secs" => self.heartbeat_timeout = seconds(key, value, false)?,
            "log_format" => {
                self.log_format = match string(key, value)?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(ConfigError::key(
                            key,
                            format!("expected \"text\" or \"json\", got {other:?}"),
                        ))
                    }
                }
            }
            "flink_market_data_curve_secret_key_file" => {
                self.upstream_security.curve_secret_key_file = path(key, value)?
            }
            "flink_market_data_curve_server_cert_file" => {
                self.upstream_security.curve_server_cert_file = path(key, value)?
            }
            "flink_market_data_curve_server_key" => {
                let text = string(key, value)?;
                self.upstream_security.curve_server_key =
                    if text.is_empty() { None } else { Some(server_key(key, &text)?) };
            }
            "admin_address" => self.admin_address = Some(string(key, value)?),
            "upstream_optional" => {
                self.upstream_optional =
                    value.as_bool().ok_or_else(|| ConfigError::key(key, "expected true or false"))?
            }
            _ => return self.set_port_security(key, value),
        }
        Ok(())
    }

    /// Sets one of the `<role>_curve_*` / `<role>_plain_*` keys.
    fn set_port_security(&mut self, key: &str, value: &toml::Value) -> Result<(), ConfigError> {
        let (security, setting) = [
            ("client_", &mut self.client_security),
            ("ingestor_", &mut self.ingestor_security),
            ("market_data_pub_", &mut self.market_data_pub_security),
        ]
        .into_iter()
        .find_map(|(prefix, security)| key.strip_prefix(prefix).map(|rest| (security, rest)))
        .ok_or_else(|| ConfigError::key(key, "unknown key"))?;
        match setting {
            "curve_secret_key_file" => security.curve_secret_key_file = path(key, value)?,
            "curve_allowed_certs_dir" => security.curve_allowed_certs_dir = path(key, value)?,
            "curve_allow_any_key" => {
                security.curve_allow_any_key =
                    value.as_bool().ok_or_else(|| ConfigError::key(key, "expected true or false"))?
            }
            "plain_password_file" => security.plain_password_file = path(key, value)?,
            _ => return Err(ConfigError::key(key, "unknown key")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let host = self.bind_address.strip_prefix("tcp://").filter(|h| !h.is_empty()).ok_or_else(|| {
            ConfigError::key("bind_address", "expected tcp://<host>, e.g. tcp://* or tcp://0.0.0.0")
        })?;
        let probe = format!("{}:1", self.bind_address);
        match probe.parse::<Endpoint>() {
            Ok(Endpoint::Tcp { host: parsed, .. }) if !parsed.contains(':') || host.starts_with('[') => {}
            Ok(_) => {
                return Err(ConfigError::key(
                    "bind_address",
                    "expected tcp://<host> without a port (IPv6 in brackets)",
                ))
            }
            Err(e) => return Err(ConfigError::key("bind_address", e.to_string())),
        }
        let ports = self.ports();
        for (i, (key, port)) in ports.iter().enumerate() {
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                return Err(ConfigError::key(key, format!("port {port} is also `{other}`")));
            }
        }
        let key = "flink_market_data_endpoint";
        let upstream: Endpoint = self
            .flink_market_data_endpoint
            .parse()
            .map_err(|e: zmtp::runtime::endpoint::EndpointError| ConfigError::key(key, e.to_string()))?;
        match &upstream {
            Endpoint::Tcp { host, port } => {
                let wildcard = host == "*" || port.is_none() || *port == Some(0);
                if wildcard && !self.flink_market_data_bind {
                    return Err(ConfigError::key(
                        key,
                        "a `*` host or port can only be bound (flink_market_data_bind)",
                    ));
                }
                if let (true, Some(port)) = (self.flink_market_data_bind, port) {
                    if let Some((other, _)) = ports.iter().find(|(_, p)| p == port) {
                        return Err(ConfigError::key(key, format!("port {port} is also `{other}`")));
                    }
                }
            }
            Endpoint::Ipc(_) => {}
            Endpoint::Inproc(_) => {
                return Err(ConfigError::key(key, "expected tcp://host:port or ipc://path"))
            }
        }
        for prefix in SECURED_ROLES {
            if let Some(security) = self.port_security(prefix) {
                validate_port_security(prefix, security)?;
            }
        }
        self.validate_admin_address()?;
        self.validate_upstream_security()
    }

    fn validate_upstream_security(&self) -> Result<(), ConfigError> {
        let up = &self.upstream_security;
        let secret_key = "flink_market_data_curve_secret_key_file";
        let server_key = "flink_market_data_curve_server_key";
        let server_cert = "flink_market_data_curve_server_cert_file";
        if up.curve_server_key.is_some() && up.curve_server_cert_file.is_some() {
            return Err(ConfigError::key(
                server_cert,
                format!("`{server_key}` and `{server_cert}` are mutually exclusive: give the key one way"),
            ));
        }
        let has_server = up.curve_server_key.is_some() || up.curve_server_cert_file.is_some();
        match (up.curve_secret_key_file.is_some(), has_server) {
            (true, false) => {
                return Err(ConfigError::key(
                    server_key,
                    format!("required with `{secret_key}`: the source's public key (or `{server_cert}`)"),
                ))
            }
            (false, true) => {
                return Err(ConfigError::key(
                    secret_key,
                    format!("required with `{server_key}`/`{server_cert}`: the relay's secret certificate"),
                ))
            }
            _ => {}
        }
        if up.is_set() && self.flink_market_data_bind {
            return Err(ConfigError::key(
                secret_key,
                "the upstream can be a CURVE client only when it connects (flink_market_data_bind = false)",
            ));
        }
        Ok(())
    }

    /// `admin_address`: `host:port` (`*` or a bracketed IPv6 address as host), or empty; its port may
    /// not be one of the relay's ports on the same host.
    fn validate_admin_address(&self) -> Result<(), ConfigError> {
        let key = "admin_address";
        let Some(address) = self.admin_address() else { return Ok(()) };
        let bad =
            || ConfigError::key(key, format!("expected \"host:port\" (or \"\" for off), got {address:?}"));
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if port == 0
            || host.is_empty()
            || (host.contains(':') && !bracketed)
            || host.contains(char::is_whitespace)
        {
            return Err(bad());
        }
        if let Some((other, _)) = self.ports().iter().find(|(_, p)| *p == port) {
            return Err(ConfigError::key(key, format!("port {port} is also `{other}`")));
        }
        Ok(())
    }

    /// Where the admin endpoint listens (`host:port`, `*` already read as `0.0.0.0`), or `None` when
    /// `admin_address = ""` turns it off. Unset, it is the host of `bind_address` with port
    /// [`DEFAULT_ADMIN_PORT`].
    pub fn admin_address(&self) -> Option<String> {
        let address = match &self.admin_address {
            Some(a) if a.trim().is_empty() => return None,
            Some(a) => a.clone(),
            None => {
                let host = self.bind_address.strip_prefix("tcp://").unwrap_or(&self.bind_address);
                format!("{host}:{DEFAULT_ADMIN_PORT}")
            }
        };
        Some(match address.strip_prefix("*:") {
            Some(port) => format!("0.0.0.0:{port}"),
            None => address,
        })
    }

    /// The four bound ports with their keys, in the order they are bound.
    pub fn ports(&self) -> [(&'static str, u16); 4] {
        [
            ("client_request_port", self.client_request_port),
            ("ingestor_work_port", self.ingestor_work_port),
            ("ingestor_response_port", self.ingestor_response_port),
            ("market_data_pub_port", self.market_data_pub_port),
        ]
    }

    /// The endpoint a relay port is bound on: `bind_address` + `:port`.
    pub fn bind_endpoint(&self, port: u16) -> String {
        format!("{}:{port}", self.bind_address)
    }
}

/// Checks one role's security keys against each other (the files are read by [`Config::security`]).
fn validate_port_security(prefix: &str, s: &PortSecurityConfig) -> Result<(), ConfigError> {
    let secret = format!("{prefix}_curve_secret_key_file");
    let dir = format!("{prefix}_curve_allowed_certs_dir");
    let any = format!("{prefix}_curve_allow_any_key");
    let plain = format!("{prefix}_plain_password_file");
    let curve =
        s.curve_secret_key_file.is_some() || s.curve_allowed_certs_dir.is_some() || s.curve_allow_any_key;
    if curve && s.plain_password_file.is_some() {
        return Err(ConfigError::key(
            &plain,
            format!("CURVE (`{prefix}_curve_*`) and PLAIN are mutually exclusive on one port: choose one"),
        ));
    }
    if !curve {
        return Ok(());
    }
    if s.curve_secret_key_file.is_none() {
        let set = if s.curve_allowed_certs_dir.is_some() { &dir } else { &any };
        return Err(ConfigError::key(set, format!("needs `{secret}`: the relay's secret certificate")));
    }
    match (s.curve_allowed_certs_dir.is_some(), s.curve_allow_any_key) {
        (true, true) => Err(ConfigError::key(
            &any,
            format!("`{any} = true` and `{dir}` are mutually exclusive: an allow list, or any key"),
        )),
        (false, false) => Err(ConfigError::key(
            &dir,
            format!(
                "required with `{secret}`: a directory of the allowed clients' certificates (or set \
                 `{any} = true` to encrypt without authenticating clients)"
            ),
        )),
        _ => Ok(()),
    }
}

/// A path; the empty string is unset.
fn path(key: &str, value: &toml::Value) -> Result<Option<PathBuf>, ConfigError> {
    let text = string(key, value)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

/// A CURVE public key in Z85 (40 characters), not a weak key.
fn server_key(key: &str, text: &str) -> Result<CurvePublicKey, ConfigError> {
    let public = CurvePublicKey::from_z85(text)
        .map_err(|e| ConfigError::key(key, format!("not a CURVE public key (40 Z85 characters): {e}")))?;
    if public.is_weak() {
        return Err(ConfigError::key(key, "is not a usable CURVE public key (weak or not on the curve)"));
    }
    Ok(public)
}

fn string(key: &str, value: &toml::Value) -> Result<String, ConfigError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ConfigError::key(key, format!("expected a string, got {}", value.type_str())))
}

fn integer(key: &str, value: &toml::Value, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n = value
        .as_integer()
        .ok_or_else(|| ConfigError::key(key, format!("expected an integer, got {}", value.type_str())))?;
    if n < min || n > max {
        return Err(ConfigError::key(key, format!("{n} is outside {min} to {max}")));
    }
    Ok(n)
}

fn port(key: &str, value: &toml::Value) -> Result<u16, ConfigError> {
    Ok(integer(key, value, 1, 65535)? as u16)
}

/// Seconds as an integer or a float: > 0, or >= 0 when `zero_allowed`; at most a year.
fn seconds(key: &str, value: &toml::Value, zero_allowed: bool) -> Result<Duration, ConfigError> {
    let secs = match value {
        toml::Value::Integer(n) => *n as f64,
        toml::Value::Float(f) => *f,
        other => {
            return Err(ConfigError::key(
                key,
                format!("expected a number of seconds, got {}", other.type_str()),
            ))
        }
    };
    let low_ok = if zero_allowed { secs >= 0.0 } else { secs > 0.0 };
    if !secs.is_finite() || !low_ok || secs > 365.0 * 86400.0 {
        let bound = if zero_allowed { ">= 0" } else { "> 0" };
        return Err(ConfigError::key(
            key,
            format!("{secs} is not a number of seconds {bound} (and at most a year)"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(text: &str) -> ConfigError {
        Config::from_toml(text).unwrap_err()
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn every_documented_key_is_accepted() {
        let text = r#"
            bind_address = "tcp://0.0.0.0"
            client_request_port = 6559
            market_data_pub_port = 6558
            ingestor_work_port = 6555
            ingestor_response_port = 6556
            flink_market_data_endpoint = "tcp://localhost:6557"
            flink_market_data_bind = false
            request_timeout_secs = 0.5
            high_water_mark = 1
            max_pending_requests = 2
            max_message_bytes = 1024
            handshake_timeout_secs = 1
            heartbeat_interval_secs = 0
            heartbeat_timeout_secs = 5
            log_format = "json"
        "#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(c.heartbeat_interval, None);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.bind_endpoint(c.client_request_port), "tcp://0.0.0.0:6559");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("nope = 1", "nope"),
            ("client_request_port = 0", "client_request_port"),
            ("market_data_pub_port = 70000", "market_data_pub_port"),
            ("ingestor_work_port = \"5555\"", "ingestor_work_port"),
            ("ingestor_response_port = 5559", "ingestor_response_port"),
            ("request_timeout_secs = 0", "request_timeout_secs"),
            ("request_timeout_secs = -1.5", "request_timeout_secs"),
            ("high_water_mark = 0", "high_water_mark"),
            ("high_water_mark = 10000001", "high_water_mark"),
            ("max_pending_requests = 0", "max_pending_requests"),
            ("flink_market_data_endpoint = \"flink:5557\"", "flink_market_data_endpoint"),
            ("flink_market_data_endpoint = \"tcp://*:5557\"", "flink_market_data_endpoint"),
            (
                "flink_market_data_endpoint = \"tcp://*:5559\"\nflink_market_data_bind = true",
                "flink_market_data_endpoint",
            ),
            ("bind_address = \"tcp://*:5559\"", "bind_address"),
            ("bind_address = \"udp://*\"", "bind_address"),
            ("log_format = \"xml\"", "log_format"),
            ("flink_market_data_bind = 1", "flink_market_data_bind"),
            ("heartbeat_timeout_secs = 0", "heartbeat_timeout_secs"),
        ];
        for (text, key) in cases {
            let e = err(text);
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn syntax_errors_are_reported() {
        let e = err("client_request_port = = 1");
        assert!(e.to_string().contains("TOML"), "{e}");
    }

    #[test]
    fn security_keys_default_to_null() {
        let c = Config::default();
        for prefix in SECURED_ROLES {
            assert!(!c.port_security(prefix).unwrap().is_set(), "{prefix}");
        }
        assert!(!c.upstream_security.is_set());
        let security = c.security().unwrap();
        for port in [&security.clients, &security.ingestors, &security.subscribers] {
            assert_eq!(port.mechanism(), "NULL");
        }
        assert!(security.upstream.is_none());
        // Empty strings are unset too (how config.example.toml shows the defaults).
        let text: String = KEYS
            .iter()
            .filter(|k| k.ends_with("_file") || k.ends_with("_dir") || k.ends_with("_server_key"))
            .map(|k| format!("{k} = \"\"\n"))
            .collect();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }

    /// A Z85 public key that is not weak.
    fn z85_key() -> String {
        zmtp::CurveSecretKey::from_bytes([7; 32]).public_key().to_z85()
    }

    #[test]
    fn security_settings_that_contradict_each_other_are_refused() {
        let key = z85_key();
        let server = format!("flink_market_data_curve_server_key = \"{key}\"");
        let mut cases: Vec<(String, String)> = Vec::new();
        for p in SECURED_ROLES {
            let secret = format!("{p}_curve_secret_key_file = \"/k/relay.key_secret\"");
            let dir = format!("{p}_curve_allowed_certs_dir = \"/k/clients\"");
            let any = format!("{p}_curve_allow_any_key = true");
            let plain = format!("{p}_plain_password_file = \"/k/passwords\"");
            cases.extend([
                (format!("{secret}\n{dir}\n{plain}"), format!("{p}_plain_password_file")),
                (format!("{any}\n{plain}"), format!("{p}_plain_password_file")),
                (dir.clone(), format!("{p}_curve_allowed_certs_dir")),
                (any.clone(), format!("{p}_curve_allow_any_key")),
                (secret.clone(), format!("{p}_curve_allowed_certs_dir")),
                (format!("{secret}\n{dir}\n{any}"), format!("{p}_curve_allow_any_key")),
                (format!("{p}_curve_allow_any_key = \"yes\""), format!("{p}_curve_allow_any_key")),
                (format!("{p}_plain_password_file = 1"), format!("{p}_plain_password_file")),
                (format!("{p}_curve_secret_key = \"x\""), format!("{p}_curve_secret_key")),
            ]);
        }
        let up_secret = "flink_market_data_curve_secret_key_file = \"/k/relay.key_secret\"";
        let up_cert = "flink_market_data_curve_server_cert_file = \"/k/source.key\"";
        cases.extend([
            (
                "flink_market_data_curve_server_key = \"abc\"".into(),
                "flink_market_data_curve_server_key".into(),
            ),
            (
                format!("flink_market_data_curve_server_key = \"{}~\"", &key[..39]),
                "flink_market_data_curve_server_key".into(),
            ),
            (
                format!("flink_market_data_curve_server_key = \"{}\"", "0".repeat(40)),
                "flink_market_data_curve_server_key".into(),
            ),
            (up_secret.into(), "flink_market_data_curve_server_key".into()),
            (server.clone(), "flink_market_data_curve_secret_key_file".into()),
            (up_cert.into(), "flink_market_data_curve_secret_key_file".into()),
            (format!("{up_secret}\n{server}\n{up_cert}"), "flink_market_data_curve_server_cert_file".into()),
            (
                format!(
                    "{up_secret}\n{server}\nflink_market_data_bind = true\n\
                     flink_market_data_endpoint = \"tcp://*:6000\""
                ),
                "flink_market_data_curve_secret_key_file".into(),
            ),
        ]);
        for (text, key) in cases {
            let e = err(&text);
            assert_eq!(e.key.as_deref(), Some(key.as_str()), "{text}: {e}");
            assert!(e.to_string().contains(&key), "{e}");
        }
    }

    #[test]
    fn good_security_settings_are_accepted() {
        let key = z85_key();
        let text = format!(
            "client_curve_secret_key_file = \"/k/relay.key_secret\"\n\
             client_curve_allowed_certs_dir = \"/k/clients\"\n\
             ingestor_curve_secret_key_file = \"/k/relay.key_secret\"\n\
             ingestor_curve_allow_any_key = true\n\
             market_data_pub_plain_password_file = \"/k/passwords\"\n\
             flink_market_data_curve_secret_key_file = \"/k/relay.key_secret\"\n\
             flink_market_data_curve_server_key = \"{key}\"\n"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.client_security.curve_allowed_certs_dir.as_deref(), Some(Path::new("/k/clients")));
        assert!(c.ingestor_security.curve_allow_any_key);
        assert_eq!(
            c.market_data_pub_security.plain_password_file.as_deref(),
            Some(Path::new("/k/passwords"))
        );
        assert_eq!(c.upstream_security.curve_server_key.map(|k| k.to_z85()), Some(key));
    }

    mod files {
        use std::os::unix::fs::PermissionsExt;

        use super::*;
        use zmtp_interop::TempDir;

        /// A directory with `relay.key_secret` (mode 0600), `clients/` holding `alice.key`, and
        /// `passwords` (mode 0600, one user).
        struct Keys {
            dir: TempDir,
        }

        impl Keys {
            fn new() -> Keys {
                let dir = TempDir::new("relay-keys");
                zmtp::cert::create_certificates(dir.path(), "relay").unwrap();
                let clients = dir.path().join("clients");
                std::fs::create_dir(&clients).unwrap();
                let (alice, alice_secret) = zmtp::cert::create_certificates(&clients, "alice").unwrap();
                std::fs::rename(alice_secret, dir.path().join("alice.key_secret")).unwrap();
                assert!(alice.exists());
                let passwords = dir.path().join("passwords");
                std::fs::write(&passwords, "# users\nalice=secret\n").unwrap();
                std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o600)).unwrap();
                Keys { dir }
            }

            fn path(&self, name: &str) -> String {
                self.dir.path().join(name).display().to_string()
            }

            /// The configuration text with these keys (`@name` is a path in the directory).
            fn config(&self, keys: &[(&str, &str)]) -> String {
                keys.iter()
                    .map(|(k, v)| match v.strip_prefix('@') {
                        Some(name) => format!("{k} = \"{}\"\n", self.path(name)),
                        None => format!("{k} = {v}\n"),
                    })
                    .collect()
            }

            fn security_err(&self, keys: &[(&str, &str)]) -> ConfigError {
                let text = self.config(keys);
                let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                match config.security() {
                    Ok(_) => panic!("accepted: {text}"),
                    Err(e) => e,
                }
            }
        }

        #[test]
        fn good_files_load_with_their_mechanisms() {
            let k = Keys::new();
            let relay_public = zmtp::cert::load_secret(k.path("relay.key_secret")).unwrap().public;
            let source = zmtp::cert::Certificate::load(k.path("clients/alice.key")).unwrap().public;
            let text = k.config(&[
                ("client_curve_secret_key_file", "@relay.key_secret"),
                ("client_curve_allowed_certs_dir", "@clients"),
                ("ingestor_curve_secret_key_file", "@relay.key_secret"),
                ("ingestor_curve_allow_any_key", "true"),
                ("market_data_pub_plain_password_file", "@passwords"),
                ("flink_market_data_curve_secret_key_file", "@relay.key_secret"),
                ("flink_market_data_curve_server_cert_file", "@clients/alice.key"),
            ]);
            let security = Config::from_toml(&text).unwrap().security().unwrap();
            match &security.clients {
                crate::PortSecurity::Curve { public, allowed, .. } => {
                    assert_eq!(*public, relay_public);
                    assert_eq!(*allowed, crate::security::AllowedClients::Listed(1));
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                security.ingestors,
                crate::PortSecurity::Curve { allowed: crate::security::AllowedClients::Any, .. }
            ));
            assert!(matches!(security.subscribers, crate::PortSecurity::Plain { users: 1, .. }));
            assert_eq!(security.upstream.as_ref().map(|u| u.server), Some(source));
            let options = security.clients.apply(zmtp::Options::default());
            assert!(options.curve_server && options.authenticator.is_some());
            let options = security.subscribers.apply(zmtp::Options::default());
            assert!(options.plain_server && options.authenticator.is_some());
            let options = security.upstream.unwrap().apply(zmtp::Options::default());
            assert_eq!(options.curve_server_key, Some(source));
            // The secret never shows.
            let shown = format!("{:?}", security.clients);
            let secret = zmtp::cert::load_secret(k.path("relay.key_secret")).unwrap().secret.unwrap();
            assert!(!shown.contains(&secret.to_z85()), "{shown}");
        }

        #[test]
        fn bad_files_are_refused_naming_the_key() {
            let k = Keys::new();
            let loose = k.path("loose.key_secret");
            std::fs::copy(k.path("relay.key_secret"), &loose).unwrap();
            std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o640)).unwrap();
            let loose_passwords = k.path("loose-passwords");
            std::fs::write(&loose_passwords, "alice=secret\n").unwrap();
            std::fs::set_permissions(&loose_passwords, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::create_dir(k.path("empty")).unwrap();
            std::fs::create_dir(k.path("broken")).unwrap();
            std::fs::write(k.path("broken/mallory.key"), "curve\n    public-key = \"short\"\n").unwrap();
            let private = |name: &str, text: &str| {
                std::fs::write(k.path(name), text).unwrap();
                std::fs::set_permissions(k.path(name), std::fs::Permissions::from_mode(0o600)).unwrap();
            };
            private("bad-line", "alice=secret\nbob\n");
            private("public-only.key", &std::fs::read_to_string(k.path("clients/alice.key")).unwrap());
            private("no-users", "# nobody\n\n");
            private("garbage.key_secret", "this is not a certificate\n");
            for p in SECURED_ROLES {
                let secret = format!("{p}_curve_secret_key_file");
                let dir = format!("{p}_curve_allowed_certs_dir");
                let plain = format!("{p}_plain_password_file");
                let any = format!("{p}_curve_allow_any_key");
                type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
                let cases: Vec<Case> = vec![
                    (vec![(&secret, "@missing.key_secret"), (&any, "true")], &secret, "missing.key_secret"),
                    (vec![(&secret, "@clients"), (&any, "true")], &secret, "clients"),
                    (vec![(&secret, "@loose.key_secret"), (&any, "true")], &secret, "0640"),
                    (vec![(&secret, "@public-only.key"), (&any, "true")], &secret, "no secret key"),
                    (vec![(&secret, "@garbage.key_secret"), (&any, "true")], &secret, "garbage.key_secret"),
                    (vec![(&secret, "@relay.key_secret"), (&dir, "@nowhere")], &dir, "nowhere"),
                    (vec![(&secret, "@relay.key_secret"), (&dir, "@empty")], &dir, "no public certificate"),
                    (vec![(&secret, "@relay.key_secret"), (&dir, "@broken")], &dir, "mallory.key"),
                    (vec![(&plain, "@missing-passwords")], &plain, "missing-passwords"),
                    (vec![(&plain, "@loose-passwords")], &plain, "0644"),
                    (vec![(&plain, "@bad-line")], &plain, "bad-line:2"),
                    (vec![(&plain, "@no-users")], &plain, "no user"),
                ];
                for (keys, key, detail) in cases {
                    let e = k.security_err(&keys);
                    assert_eq!(e.key.as_deref(), Some(key), "{keys:?}: {e}");
                    assert!(e.to_string().contains(detail), "{keys:?}: {e} (want {detail:?})");
                }
            }
            let up_secret = "flink_market_data_curve_secret_key_file";
            let up_cert = "flink_market_data_curve_server_cert_file";
            let e = k.security_err(&[(up_secret, "@loose.key_secret"), (up_cert, "@clients/alice.key")]);
            assert_eq!(e.key.as_deref(), Some(up_secret), "{e}");
            let e = k.security_err(&[(up_secret, "@relay.key_secret"), (up_cert, "@clients/nobody.key")]);
            assert_eq!(e.key.as_deref(), Some(up_cert), "{e}");
            assert!(e.to_string().contains("nobody.key"), "{e}");
        }
    }

    #[test]
    fn config_example_lists_every_key_at_its_default() {
        let text = include_str!("../../config.example.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
        for key in KEYS {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} is not in config.example.toml"
            );
        }
    }

    #[test]
    fn admin_address_defaults_to_the_bind_host_and_is_checked() {
        assert_eq!(Config::default().admin_address().as_deref(), Some("0.0.0.0:9559"));
        let local = Config::from_toml("bind_address = \"tcp://127.0.0.1\"").unwrap();
        assert_eq!(local.admin_address().as_deref(), Some("127.0.0.1:9559"));
        let off = Config::from_toml("admin_address = \"\"").unwrap();
        assert_eq!(off.admin_address(), None);
        let set = Config::from_toml("admin_address = \"[::1]:9000\"\nupstream_optional = true").unwrap();
        assert_eq!(set.admin_address().as_deref(), Some("[::1]:9000"));
        assert!(set.upstream_optional);
        for bad in ["\"9559\"", "\"host\"", "\"h:0\"", "\"h:99999\"", "\"::1:80\"", "\":80\"", "5"] {
            let e = err(&format!("admin_address = {bad}"));
            assert_eq!(e.key.as_deref(), Some("admin_address"), "{bad}: {e}");
        }
        let e = err("admin_address = \"127.0.0.1:5559\"");
        assert!(e.to_string().contains("client_request_port"), "{e}");
        assert_eq!(err("upstream_optional = 1").key.as_deref(), Some("upstream_optional"));
    }

    #[test]
    fn ipv6_and_binding_upstream_are_accepted() {
        Config::from_toml("bind_address = \"tcp://[::1]\"").unwrap();
        Config::from_toml("flink_market_data_endpoint = \"tcp://*:6000\"\nflink_market_data_bind = true")
            .unwrap();
        Config::from_toml("flink_market_data_endpoint = \"ipc:///tmp/md\"").unwrap();
    }
}
