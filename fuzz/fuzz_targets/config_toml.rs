//! The relay's configuration parser on arbitrary text, read as TOML and as YAML (the same keys).
//!
//! Invariants: never panics; an accepted configuration has four distinct non-zero ports, positive
//! timeouts and a high-water mark of 1 to 10,000,000; a refusal names a key or says why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::{Config, FileFormat};

fuzz_target!(|text: &str| {
    check(Config::parse(text, FileFormat::Toml));
    check(Config::parse(text, FileFormat::Yaml));
});

fn check(parsed: Result<Config, relay::ConfigError>) {
    match parsed {
        Ok(config) => {
            let ports = config.ports();
            for (i, (_, port)) in ports.iter().enumerate() {
                assert_ne!(*port, 0);
                assert!(ports[..i].iter().all(|(_, p)| p != port));
            }
            assert!(!config.request_timeout.is_zero() && !config.handshake_timeout.is_zero());
            assert!((1..=10_000_000).contains(&config.high_water_mark));
            assert!(config.max_pending_requests >= 1);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
