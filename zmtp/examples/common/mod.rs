//! Pieces the examples share: their error type, a small seeded random generator and argument
//! parsing. Each example includes this file with `#[path = "common/mod.rs"] mod common;` (it is not
//! an example itself: Cargo only builds `examples/*.rs` and `examples/*/main.rs`).

#![allow(dead_code)] // each example uses only some of these

use std::time::Duration;

/// Any error, for the examples.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A small pseudo-random generator (splitmix64): enough to simulate uneven work and faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed (the same numbers every run).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from `seed` and the process's random hasher keys (different every run,
    /// different per seed within a run).
    pub fn keyed(seed: &[u8]) -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(seed);
        Rng(h.finish())
    }

    /// A generator seeded from the process's random hasher keys.
    pub fn random() -> Rng {
        Rng::keyed(&[])
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }

    /// A random duration from 1 ms up to `max` (zero if `max` is under 1 ms).
    pub fn work(&mut self, max: Duration) -> Duration {
        let max_ms = max.as_millis() as u64;
        if max_ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(1 + self.below(max_ms))
        }
    }

    /// A random duration from 0 up to `max`, in microseconds.
    pub fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }
}

/// The `n`th command-line argument, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(n: usize, default: T) -> Result<T, BoxError> {
    match std::env::args().nth(n) {
        Some(s) => s.parse().map_err(|_| format!("cannot parse argument {n} ({s:?})").into()),
        None => Ok(default),
    }
}
