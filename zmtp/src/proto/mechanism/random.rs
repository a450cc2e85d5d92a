//! Randomness for the CURVE handshake (transient keys, long nonces, cookie keys): the operating
//! system's generator, or, under the `test-rng` feature (fuzzing and deterministic tests only), a
//! seeded generator so that a handshake replays byte for byte.

use crate::proto::error::ConnectionError;

/// Fills `buf` with random octets.
///
/// # Errors
/// [`ConnectionError::NoRandomness`] if the operating system has none to give: a handshake cannot
/// safely go on without it.
#[cfg(not(feature = "test-rng"))]
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), ConnectionError> {
    getrandom::getrandom(buf).map_err(|_| ConnectionError::NoRandomness)
}

#[cfg(feature = "test-rng")]
std::thread_local! {
    static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9e37_79b9_7f4a_7c15) };
}

/// Seeds this thread's test generator (the `test-rng` feature only).
#[cfg(feature = "test-rng")]
pub fn seed(seed: u64) {
    STATE.with(|s| s.set(seed | 1));
}

/// Fills `buf` from this thread's seeded generator (splitmix64): deterministic, NOT secure.
#[cfg(feature = "test-rng")]
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), ConnectionError> {
    STATE.with(|s| {
        for chunk in buf.chunks_mut(8) {
            let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    });
    Ok(())
}
