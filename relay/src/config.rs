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
use std::path::Path;
use std::time::Duration;

use zmtp::Endpoint;

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
}

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
            max_message_bytes: 64 << 20,
            handshake_timeout: Duration::from_secs(30),
            heartbeat_interval: Some(Duration::from_secs(10)),
            heartbeat_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
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
    fn key(key: &str, reason: impl Into<String>) -> ConfigError {
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
    "max_message_bytes",
    "handshake_timeout_secs",
    "heartbeat_interval_secs",
    "heartbeat_timeout_secs",
    "log_format",
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
        Ok(())
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
    fn ipv6_and_binding_upstream_are_accepted() {
        Config::from_toml("bind_address = \"tcp://[::1]\"").unwrap();
        Config::from_toml("flink_market_data_endpoint = \"tcp://*:6000\"\nflink_market_data_bind = true")
            .unwrap();
        Config::from_toml("flink_market_data_endpoint = \"ipc:///tmp/md\"").unwrap();
    }
}
