//! Live reconfiguration (SIGHUP): the keys that can change without dropping a connection are handed
//! to the running relay; the others are named in a `warn`, since they take a restart.
//!
//! A key is live when the relay reads it per request (timeouts, limits, the log filter); a key that
//! shaped a socket or a port when it was bound (addresses, HWMs, message sizes, heartbeats, security
//! files) is not: zmtp's sockets take their options at creation, and re-binding would drop every
//! peer on that port.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigFile};

/// The keys a reload applies to the running relay. Every other key needs a restart.
pub const LIVE_KEYS: &[&str] = &[
    "request_timeout_secs",
    "max_pending_requests",
    "log_level",
    "rate_limit_per_s",
    "rate_limit_burst",
    "breaker_failures",
    "breaker_window_secs",
    "breaker_open_secs",
    "coalesce_requests",
    "cache_ttl_secs",
    "cache_max_bytes",
];

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Live keys whose value changed: in force from the next request on.
    pub applied: Vec<String>,
    /// Keys whose value changed but that only a restart applies: ignored until then.
    pub need_restart: Vec<String>,
}

/// Hands new settings to a running [`crate::Relay`] (from [`crate::Relay::reloader`]); cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    live: Arc<watch::Sender<Arc<Config>>>,
}

impl Reloader {
    pub(crate) fn new(config: &Config) -> (Reloader, watch::Receiver<Arc<Config>>) {
        let (tx, rx) = watch::channel(Arc::new(config.clone()));
        (Reloader { live: Arc::new(tx) }, rx)
    }

    /// Applies the live keys of `new` (a configuration already parsed and validated) and reports
    /// which keys changed, live or not. Nothing is applied when no live key changed.
    pub fn apply(&self, new: &Config) -> ReloadOutcome {
        let current = self.live.borrow().clone();
        let changed = changed_keys(&current, new);
        let (applied, need_restart): (Vec<String>, Vec<String>) =
            changed.into_iter().partition(|k| LIVE_KEYS.contains(&k.as_str()));
        if !applied.is_empty() {
            let merged = current.with_live_settings_of(new);
            if let Some(filter) = &merged.log_level {
                crate::logging::set_filter(filter);
            } else if applied.iter().any(|k| k == "log_level") {
                crate::logging::set_filter(&crate::logging::startup_filter());
            }
            self.live.send_replace(Arc::new(merged));
        }
        ReloadOutcome { applied, need_restart }
    }

    /// The settings in force now.
    pub fn current(&self) -> Arc<Config> {
        self.live.borrow().clone()
    }
}

impl Config {
    /// This configuration with the live keys ([`LIVE_KEYS`]) taken from `new`.
    pub(crate) fn with_live_settings_of(&self, new: &Config) -> Config {
        Config {
            request_timeout: new.request_timeout,
            max_pending_requests: new.max_pending_requests,
            log_level: new.log_level.clone(),
            rate_limit_per_s: new.rate_limit_per_s,
            rate_limit_burst: new.rate_limit_burst,
            breaker_failures: new.breaker_failures,
            breaker_window: new.breaker_window,
            breaker_open: new.breaker_open,
            coalesce_requests: new.coalesce_requests,
            cache_ttl: new.cache_ttl,
            cache_max_bytes: new.cache_max_bytes,
            ..self.clone()
        }
    }
}

/// The keys whose values differ, compared as a file would write them.
fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(toml::Value::Table(old)), Ok(toml::Value::Table(new))) =
        (toml::Value::try_from(ConfigFile::from(old)), toml::Value::try_from(ConfigFile::from(new)))
    else {
        return Vec::new();
    };
    // Both sides' keys: an unset key (`None`) is absent from its table.
    let mut keys: Vec<String> = old.keys().chain(new.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| old.get(k) != new.get(k)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn live_keys_are_applied_and_the_others_named() {
        let start = Config::default();
        let (reloader, rx) = Reloader::new(&start);
        let new = Config::from_toml(
            "request_timeout_secs = 5\nmax_pending_requests = 10\nhigh_water_mark = 5\nclient_request_port = 7000",
        )
        .unwrap();
        let outcome = reloader.apply(&new);
        assert_eq!(outcome.applied, ["max_pending_requests", "request_timeout_secs"]);
        assert_eq!(outcome.need_restart, ["client_request_port", "high_water_mark"]);
        let now = rx.borrow().clone();
        assert_eq!(now.request_timeout, std::time::Duration::from_secs(5));
        assert_eq!(now.max_pending_requests, 10);
        // Restart-only keys keep the values the sockets were made with.
        assert_eq!(now.high_water_mark, start.high_water_mark);
        assert_eq!(now.client_request_port, start.client_request_port);
        // The same file again changes nothing live, and still names what waits for a restart.
        let again = reloader.apply(&new);
        assert!(again.applied.is_empty());
        assert_eq!(again.need_restart, ["client_request_port", "high_water_mark"]);
    }

    #[test]
    fn every_live_key_is_a_file_key() {
        let keys = Config::keys();
        for k in LIVE_KEYS {
            assert!(keys.iter().any(|key| key == k), "{k}");
        }
    }
}
