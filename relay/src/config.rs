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

mod file;

pub(crate) use file::ConfigFile;
pub use file::FileFormat;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// Bytes of streamed (`PARTIAL`) responses the relay may hold at once, across all requests,
    /// while it assembles them for REQ clients (protocol 1.1).
    pub max_assembly_bytes: u64,
    /// How long a peer may take to complete the ZMTP handshake.
    pub handshake_timeout: Duration,
    /// How often the relay PINGs each peer; `None` turns heartbeats off.
    pub heartbeat_interval: Option<Duration>,
    /// How long a peer may stay silent before its connection is closed (with heartbeats on).
    pub heartbeat_timeout: Duration,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// The log filter (`RUST_LOG` syntax, e.g. `relay=debug,zmtp=warn`); `None` leaves it to
    /// `RUST_LOG` or the default. Changes live on SIGHUP.
    pub log_level: Option<String>,
    /// Security of the client ROUTER (`client_*` keys).
    pub client_security: PortSecurityConfig,
    /// Security of the two ingestor ports, work and responses (`ingestor_*` keys).
    pub ingestor_security: PortSecurityConfig,
    /// Security of the market-data XPUB (`market_data_pub_*` keys).
    pub market_data_pub_security: PortSecurityConfig,
    /// CURVE client settings of the upstream XSUB (`flink_market_data_curve_*` keys).
    pub upstream_security: UpstreamSecurityConfig,
    /// Requests per second per client (`rate_limit_per_s`); 0 turns rate limiting off.
    pub rate_limit_per_s: f64,
    /// Requests a client may send at once (`rate_limit_burst`); 0 means one second's worth.
    pub rate_limit_burst: u32,
    /// Consecutive TIMEOUT/ERROR outcomes that open an exchange's circuit (`breaker_failures`); 0
    /// turns breakers off.
    pub breaker_failures: u32,
    /// The window those failures must fall in (`breaker_window_secs`).
    pub breaker_window: Duration,
    /// How long an open circuit refuses before its probe (`breaker_open_secs`).
    pub breaker_open: Duration,
    /// Whether identical requests in flight share one upstream request (`coalesce_requests`).
    pub coalesce_requests: bool,
    /// How long an `OK` response is served from the cache (`cache_ttl_secs`); zero turns it off.
    pub cache_ttl: Duration,
    /// Most bytes the response cache holds (`cache_max_bytes`).
    pub cache_max_bytes: u64,
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
            max_assembly_bytes: 256 << 20,
            handshake_timeout: Duration::from_secs(30),
            heartbeat_interval: Some(Duration::from_secs(10)),
            heartbeat_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            log_level: None,
            client_security: PortSecurityConfig::default(),
            ingestor_security: PortSecurityConfig::default(),
            market_data_pub_security: PortSecurityConfig::default(),
            upstream_security: UpstreamSecurityConfig::default(),
            rate_limit_per_s: 0.0,
            rate_limit_burst: 0,
            breaker_failures: 0,
            breaker_window: Duration::from_secs(60),
            breaker_open: Duration::from_secs(30),
            coalesce_requests: false,
            cache_ttl: Duration::ZERO,
            cache_max_bytes: 64 << 20,
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

impl Config {
    /// Reads the file at `path`, TOML or YAML by its extension ([`FileFormat::of`]). A file that does
    /// not exist gives the defaults ([`ConfigSource::Defaults`]) only when `may_be_absent` (the
    /// default path); a path the operator named must exist.
    ///
    /// # Errors
    /// A missing file that was named, an unreadable file, a syntax error, an unknown key, a wrong
    /// type or a bad value: a [`ConfigError`] naming the key where there is one.
    pub fn load(path: &Path, may_be_absent: bool) -> Result<(Config, ConfigSource), ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Config::parse(&text, FileFormat::of(path))?, ConfigSource::File)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_be_absent => {
                Ok((Config::default(), ConfigSource::Defaults))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError {
                key: None,
                reason: format!(
                    "no file at {} (CONFIG_PATH names it; unset CONFIG_PATH to run on defaults)",
                    path.display()
                ),
            }),
            Err(e) => Err(ConfigError { key: None, reason: format!("cannot read {}: {e}", path.display()) }),
        }
    }

    /// Every key a configuration file may set.
    pub fn keys() -> Vec<String> {
        ConfigFile::keys()
    }

    /// Reads the key and certificate files the security keys name, and checks them: a file that is
    /// missing or unreadable, a secret file readable or writable by group or others, a certificate
    /// directory that does not load or holds no certificate, a password file with a bad line or no
    /// user are errors naming the key. Called at start, before anything is bound.
    ///
    /// # Errors
    /// The first file that cannot be used, naming its key.
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

    /// Parses and validates a TOML configuration file's text.
    ///
    /// # Errors
    /// As [`Config::parse`].
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, FileFormat::Toml)
    }

    /// Parses and validates a configuration file's text (TOML, or YAML with the same keys).
    ///
    /// # Errors
    /// A syntax error (no key), an unknown key, a wrong type, a value out of range or keys that
    /// contradict each other: a [`ConfigError`] naming the key.
    pub fn parse(text: &str, format: FileFormat) -> Result<Config, ConfigError> {
        let mut config = Config::from_file(ConfigFile::parse(text, format)?)?;
        // An `admin_address` that spells out the default is the default (`*` and `0.0.0.0` alike), so
        // that the example file, which writes every key, is the defaults.
        if let Some(explicit) = config.admin_address.take() {
            if explicit.is_empty() || config.admin_address() != Some(explicit.replace("*:", "0.0.0.0:")) {
                config.admin_address = Some(explicit);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// The checked settings of a file's keys (each value on its own; [`Config::validate`] checks
    /// them against each other).
    fn from_file(f: ConfigFile) -> Result<Config, ConfigError> {
        let port = |key: &str, n: i64| integer(key, n, 1, 65535).map(|n| n as u16);
        let count = |key: &str, n: i64, min: i64, max: i64| integer(key, n, min, max).map(|n| n as usize);
        let heartbeat_interval = seconds("heartbeat_interval_secs", f.heartbeat_interval_secs, true)?;
        let server_key_text = f.flink_market_data_curve_server_key.as_str();
        Ok(Config {
            bind_address: f.bind_address,
            client_request_port: port("client_request_port", f.client_request_port)?,
            market_data_pub_port: port("market_data_pub_port", f.market_data_pub_port)?,
            ingestor_work_port: port("ingestor_work_port", f.ingestor_work_port)?,
            ingestor_response_port: port("ingestor_response_port", f.ingestor_response_port)?,
            flink_market_data_endpoint: f.flink_market_data_endpoint,
            flink_market_data_bind: f.flink_market_data_bind,
            request_timeout: seconds("request_timeout_secs", f.request_timeout_secs, false)?,
            high_water_mark: count("high_water_mark", f.high_water_mark, 1, 10_000_000)?,
            max_pending_requests: count("max_pending_requests", f.max_pending_requests, 1, u32::MAX.into())?,
            max_subscriptions_per_subscriber: count(
                "max_subscriptions_per_subscriber",
                f.max_subscriptions_per_subscriber,
                1,
                10_000_000,
            )?,
            max_message_bytes: integer("max_message_bytes", f.max_message_bytes, 1024, i64::MAX)? as u64,
            max_assembly_bytes: integer("max_assembly_bytes", f.max_assembly_bytes, 0, i64::MAX)? as u64,
            handshake_timeout: seconds("handshake_timeout_secs", f.handshake_timeout_secs, false)?,
            heartbeat_interval: (!heartbeat_interval.is_zero()).then_some(heartbeat_interval),
            heartbeat_timeout: seconds("heartbeat_timeout_secs", f.heartbeat_timeout_secs, false)?,
            log_format: f.log_format,
            log_level: log_level(f.log_level)?,
            client_security: PortSecurityConfig {
                curve_secret_key_file: path(f.client_curve_secret_key_file),
                curve_allowed_certs_dir: path(f.client_curve_allowed_certs_dir),
                curve_allow_any_key: f.client_curve_allow_any_key,
                plain_password_file: path(f.client_plain_password_file),
            },
            ingestor_security: PortSecurityConfig {
                curve_secret_key_file: path(f.ingestor_curve_secret_key_file),
                curve_allowed_certs_dir: path(f.ingestor_curve_allowed_certs_dir),
                curve_allow_any_key: f.ingestor_curve_allow_any_key,
                plain_password_file: path(f.ingestor_plain_password_file),
            },
            market_data_pub_security: PortSecurityConfig {
                curve_secret_key_file: path(f.market_data_pub_curve_secret_key_file),
                curve_allowed_certs_dir: path(f.market_data_pub_curve_allowed_certs_dir),
                curve_allow_any_key: f.market_data_pub_curve_allow_any_key,
                plain_password_file: path(f.market_data_pub_plain_password_file),
            },
            upstream_security: UpstreamSecurityConfig {
                curve_secret_key_file: path(f.flink_market_data_curve_secret_key_file),
                curve_server_key: if server_key_text.is_empty() {
                    None
                } else {
                    Some(server_key("flink_market_data_curve_server_key", server_key_text)?)
                },
                curve_server_cert_file: path(f.flink_market_data_curve_server_cert_file),
            },
            rate_limit_per_s: rate("rate_limit_per_s", f.rate_limit_per_s)?,
            rate_limit_burst: integer("rate_limit_burst", f.rate_limit_burst, 0, 1_000_000_000)? as u32,
            breaker_failures: integer("breaker_failures", f.breaker_failures, 0, 1_000_000)? as u32,
            breaker_window: seconds("breaker_window_secs", f.breaker_window_secs, false)?,
            breaker_open: seconds("breaker_open_secs", f.breaker_open_secs, false)?,
            coalesce_requests: f.coalesce_requests,
            cache_ttl: seconds("cache_ttl_secs", f.cache_ttl_secs, true)?,
            cache_max_bytes: integer("cache_max_bytes", f.cache_max_bytes, 0, i64::MAX)? as u64,
            admin_address: f.admin_address,
            upstream_optional: f.upstream_optional,
        })
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
fn path(text: String) -> Option<PathBuf> {
    (!text.is_empty()).then(|| PathBuf::from(text))
}

/// A `tracing` filter (`RUST_LOG` syntax); the empty string is unset.
fn log_level(text: String) -> Result<Option<String>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    tracing_subscriber::EnvFilter::try_new(&text)
        .map_err(|e| ConfigError::key("log_level", format!("not a log filter ({e}): {text:?}")))?;
    Ok(Some(text))
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

fn integer(key: &str, n: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
    if n < min || n > max {
        return Err(ConfigError::key(key, format!("{n} is outside {min} to {max}")));
    }
    Ok(n)
}

/// A rate per second (an integer or a float in the file): 0 to 1e9.
fn rate(key: &str, rate: f64) -> Result<f64, ConfigError> {
    if !rate.is_finite() || !(0.0..=1e9).contains(&rate) {
        return Err(ConfigError::key(key, format!("{rate} is not a rate from 0 to 1e9 per second")));
    }
    Ok(rate)
}

/// Seconds (an integer or a float in the file): > 0, or >= 0 when `zero_allowed`; at most a year.
fn seconds(key: &str, secs: f64, zero_allowed: bool) -> Result<Duration, ConfigError> {
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
            max_assembly_bytes = 0
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
            ("max_assembly_bytes = -1", "max_assembly_bytes"),
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
        let text: String = Config::keys()
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
        for key in Config::keys() {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} is not in config.example.toml"
            );
        }
    }

    /// The seed's YAML configuration (same keys) loads, chosen by extension, with the same checks
    /// and errors naming the key.
    #[test]
    fn yaml_files_have_the_same_keys_and_checks() {
        let yaml = "client_request_port: 6000\nrequest_timeout_secs: 0.5\nlog_format: json\n\
                    flink_market_data_endpoint: \"tcp://localhost:6557\"\n";
        let c = Config::parse(yaml, FileFormat::Yaml).unwrap();
        assert_eq!(c.client_request_port, 6000);
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(Config::parse("", FileFormat::Yaml).unwrap(), Config::default());
        assert_eq!(Config::parse("# nothing\n", FileFormat::Yaml).unwrap(), Config::default());
        for (text, key) in [
            ("nope: 1", "nope"),
            ("client_request_port: 0", "client_request_port"),
            ("client_request_port: \"x\"", "client_request_port"),
            ("request_timeout_secs: [1]", "request_timeout_secs"),
            ("log_format: xml", "log_format"),
        ] {
            let e = Config::parse(text, FileFormat::Yaml).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
        }
        let e = Config::parse("client_request_port: 'unterminated", FileFormat::Yaml).unwrap_err();
        // YAML is read as a stream of events, so a syntax error is reported at the key being read.
        assert!(e.to_string().contains("while scanning a quoted scalar"), "{e}");
        // The example file, as YAML, is the defaults too.
        let example: toml::Table = include_str!("../../config.example.toml").parse().unwrap();
        let as_yaml = serde_yaml_ng::to_string(&example).unwrap();
        assert_eq!(Config::parse(&as_yaml, FileFormat::Yaml).unwrap(), Config::default());
        assert_eq!(FileFormat::of(Path::new("/config/config.yml")), FileFormat::Yaml);
        assert_eq!(FileFormat::of(Path::new("relay.YAML")), FileFormat::Yaml);
        assert_eq!(FileFormat::of(Path::new("/config/config.toml")), FileFormat::Toml);
    }

    /// Only the default path may be absent: a path the operator named must exist.
    #[test]
    fn a_named_file_must_exist() {
        let missing = Path::new("/nonexistent/relay/config.toml");
        assert_eq!(Config::load(missing, true).unwrap(), (Config::default(), ConfigSource::Defaults));
        let e = Config::load(missing, false).unwrap_err();
        assert!(e.to_string().contains("no file at /nonexistent/relay/config.toml"), "{e}");
    }

    #[test]
    fn a_bad_log_level_is_refused() {
        let e = err("log_level = \"relay=loud\"");
        assert_eq!(e.key.as_deref(), Some("log_level"), "{e}");
        assert_eq!(
            Config::from_toml("log_level = \"relay=debug\"").unwrap().log_level.as_deref(),
            Some("relay=debug")
        );
    }

    #[test]
    fn protection_keys_parse_and_errors_name_them() {
        let c = Config::default();
        assert_eq!((c.rate_limit_per_s, c.breaker_failures, c.coalesce_requests), (0.0, 0, false));
        assert!(c.cache_ttl.is_zero());
        let c = Config::from_toml(
            "rate_limit_per_s = 2.5\nrate_limit_burst = 10\nbreaker_failures = 3\n\
             breaker_window_secs = 5\nbreaker_open_secs = 0.5\ncoalesce_requests = true\n\
             cache_ttl_secs = 1.5\ncache_max_bytes = 4096\n",
        )
        .unwrap();
        assert_eq!((c.rate_limit_per_s, c.rate_limit_burst, c.breaker_failures), (2.5, 10, 3));
        assert_eq!((c.breaker_window, c.breaker_open), (Duration::from_secs(5), Duration::from_millis(500)));
        assert!(c.coalesce_requests);
        assert_eq!((c.cache_ttl, c.cache_max_bytes), (Duration::from_millis(1500), 4096));
        assert_eq!(Config::from_toml("rate_limit_per_s = 7").unwrap().rate_limit_per_s, 7.0);
        for (text, key) in [
            ("rate_limit_per_s = -1", "rate_limit_per_s"),
            ("rate_limit_per_s = \"5\"", "rate_limit_per_s"),
            ("rate_limit_per_s = nan", "rate_limit_per_s"),
            ("rate_limit_burst = -1", "rate_limit_burst"),
            ("rate_limit_burst = 1.5", "rate_limit_burst"),
            ("breaker_failures = -1", "breaker_failures"),
            ("breaker_window_secs = 0", "breaker_window_secs"),
            ("breaker_open_secs = -3", "breaker_open_secs"),
            ("coalesce_requests = 1", "coalesce_requests"),
            ("cache_ttl_secs = -1", "cache_ttl_secs"),
            ("cache_max_bytes = -1", "cache_max_bytes"),
        ] {
            let e = err(text);
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
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
