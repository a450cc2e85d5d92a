//! The configuration file as written: every key with the type a TOML or YAML file gives it, read by
//! serde (`deny_unknown_fields`, every key optional). [`super::Config`] turns it into checked settings;
//! the ranges and cross-key rules are there, so that every message names the key it is about.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, LogFormat};

/// One configuration file's keys, before validation. A key the file leaves out keeps the value of
/// [`Config::default`]; `""` is "unset" for the path and key settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConfigFile {
    pub bind_address: String,
    // Integers are read as i64 and range-checked by `Config`, so that an out-of-range value is
    // reported as "70000 is outside 1 to 65535" with the key, rather than as serde's u16 overflow.
    pub client_request_port: i64,
    pub market_data_pub_port: i64,
    pub ingestor_work_port: i64,
    pub ingestor_response_port: i64,
    pub flink_market_data_endpoint: String,
    pub flink_market_data_bind: bool,
    pub request_timeout_secs: f64,
    pub high_water_mark: i64,
    pub max_pending_requests: i64,
    pub max_subscriptions_per_subscriber: i64,
    pub max_message_bytes: i64,
    pub max_assembly_bytes: i64,
    pub handshake_timeout_secs: f64,
    pub heartbeat_interval_secs: f64,
    pub heartbeat_timeout_secs: f64,
    pub log_format: LogFormat,
    pub log_level: String,
    pub client_curve_secret_key_file: String,
    pub client_curve_allowed_certs_dir: String,
    pub client_curve_allow_any_key: bool,
    pub client_plain_password_file: String,
    pub ingestor_curve_secret_key_file: String,
    pub ingestor_curve_allowed_certs_dir: String,
    pub ingestor_curve_allow_any_key: bool,
    pub ingestor_plain_password_file: String,
    pub market_data_pub_curve_secret_key_file: String,
    pub market_data_pub_curve_allowed_certs_dir: String,
    pub market_data_pub_curve_allow_any_key: bool,
    pub market_data_pub_plain_password_file: String,
    pub flink_market_data_curve_secret_key_file: String,
    pub flink_market_data_curve_server_key: String,
    pub flink_market_data_curve_server_cert_file: String,
    pub rate_limit_per_s: f64,
    pub rate_limit_burst: i64,
    pub breaker_failures: i64,
    pub breaker_window_secs: f64,
    pub breaker_open_secs: f64,
    pub coalesce_requests: bool,
    pub cache_ttl_secs: f64,
    pub cache_max_bytes: i64,
    /// Unset (`None`) follows `bind_address`'s host, so it cannot have a fixed default here.
    pub admin_address: Option<String>,
    pub upstream_optional: bool,
}

impl Default for ConfigFile {
    fn default() -> ConfigFile {
        ConfigFile::from(&Config::default())
    }
}

/// How a file is read: chosen by its extension (`.yaml`/`.yml` is YAML, anything else TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// TOML (`config.toml`).
    Toml,
    /// YAML (`config.yaml`, `config.yml`), with the same keys.
    Yaml,
}

impl FileFormat {
    /// The format of a file named `path`.
    pub fn of(path: &std::path::Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("yaml" | "yml") => FileFormat::Yaml,
            _ => FileFormat::Toml,
        }
    }
}

impl ConfigFile {
    /// Parses a file's text. A syntax error has no key; a wrong type or an unknown key names it
    /// (the path serde was at when it failed).
    pub(crate) fn parse(text: &str, format: FileFormat) -> Result<ConfigFile, ConfigError> {
        let (parsed, syntax) = match format {
            FileFormat::Toml => {
                let parsed = serde_path_to_error::deserialize(toml::Deserializer::new(text));
                (parsed.map_err(|e| (e.path().to_string(), e.into_inner().message().to_owned())), "TOML")
            }
            FileFormat::Yaml => {
                // An empty YAML document is no mapping at all: read it as "no keys", like TOML.
                if text.trim().is_empty() {
                    return Ok(ConfigFile::default());
                }
                let parsed = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text));
                (parsed.map_err(|e| (e.path().to_string(), e.into_inner().to_string())), "YAML")
            }
        };
        parsed.map_err(|(path, reason)| {
            if path.is_empty() || path == "." {
                // Not about one key: a syntax error, or a document that is not a table/mapping.
                let shown = match format {
                    // toml's Display adds the line and a caret, which names the key on that line.
                    FileFormat::Toml => match toml::from_str::<toml::Table>(text) {
                        Err(e) => e.to_string(),
                        Ok(_) => reason,
                    },
                    FileFormat::Yaml => reason,
                };
                ConfigError { key: None, reason: format!("{syntax} syntax error: {}", shown.trim_end()) }
            } else {
                ConfigError::key(&path, reason)
            }
        })
    }

    /// Every key a file may set, in the order of the struct (from its own serialisation, so the list
    /// cannot drift from the fields).
    pub(crate) fn keys() -> Vec<String> {
        // Keys whose default is "unset" (`None`) are not written: give them a value to list them.
        let all = ConfigFile { admin_address: Some(String::new()), ..ConfigFile::default() };
        match toml::Value::try_from(all) {
            Ok(toml::Value::Table(table)) => table.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

impl From<&Config> for ConfigFile {
    fn from(c: &Config) -> ConfigFile {
        let path =
            |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let (cl, ing, md, up) =
            (&c.client_security, &c.ingestor_security, &c.market_data_pub_security, &c.upstream_security);
        ConfigFile {
            bind_address: c.bind_address.clone(),
            client_request_port: c.client_request_port.into(),
            market_data_pub_port: c.market_data_pub_port.into(),
            ingestor_work_port: c.ingestor_work_port.into(),
            ingestor_response_port: c.ingestor_response_port.into(),
            flink_market_data_endpoint: c.flink_market_data_endpoint.clone(),
            flink_market_data_bind: c.flink_market_data_bind,
            request_timeout_secs: c.request_timeout.as_secs_f64(),
            high_water_mark: saturating(c.high_water_mark as u64),
            max_pending_requests: saturating(c.max_pending_requests as u64),
            max_subscriptions_per_subscriber: saturating(c.max_subscriptions_per_subscriber as u64),
            max_message_bytes: saturating(c.max_message_bytes),
            max_assembly_bytes: saturating(c.max_assembly_bytes),
            handshake_timeout_secs: c.handshake_timeout.as_secs_f64(),
            heartbeat_interval_secs: c.heartbeat_interval.map_or(0.0, |d| d.as_secs_f64()),
            heartbeat_timeout_secs: c.heartbeat_timeout.as_secs_f64(),
            log_format: c.log_format,
            log_level: c.log_level.clone().unwrap_or_default(),
            client_curve_secret_key_file: path(&cl.curve_secret_key_file),
            client_curve_allowed_certs_dir: path(&cl.curve_allowed_certs_dir),
            client_curve_allow_any_key: cl.curve_allow_any_key,
            client_plain_password_file: path(&cl.plain_password_file),
            ingestor_curve_secret_key_file: path(&ing.curve_secret_key_file),
            ingestor_curve_allowed_certs_dir: path(&ing.curve_allowed_certs_dir),
            ingestor_curve_allow_any_key: ing.curve_allow_any_key,
            ingestor_plain_password_file: path(&ing.plain_password_file),
            market_data_pub_curve_secret_key_file: path(&md.curve_secret_key_file),
            market_data_pub_curve_allowed_certs_dir: path(&md.curve_allowed_certs_dir),
            market_data_pub_curve_allow_any_key: md.curve_allow_any_key,
            market_data_pub_plain_password_file: path(&md.plain_password_file),
            flink_market_data_curve_secret_key_file: path(&up.curve_secret_key_file),
            flink_market_data_curve_server_key: up.curve_server_key.map(|k| k.to_z85()).unwrap_or_default(),
            flink_market_data_curve_server_cert_file: path(&up.curve_server_cert_file),
            rate_limit_per_s: c.rate_limit_per_s,
            rate_limit_burst: c.rate_limit_burst.into(),
            breaker_failures: c.breaker_failures.into(),
            breaker_window_secs: c.breaker_window.as_secs_f64(),
            breaker_open_secs: c.breaker_open.as_secs_f64(),
            coalesce_requests: c.coalesce_requests,
            cache_ttl_secs: c.cache_ttl.as_secs_f64(),
            cache_max_bytes: saturating(c.cache_max_bytes),
            admin_address: c.admin_address.clone(),
            upstream_optional: c.upstream_optional,
        }
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
