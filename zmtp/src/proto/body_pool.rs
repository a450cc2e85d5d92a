//! Buffers for large frame bodies, recycled through a small process-wide pool.
//!
//! A large frame is read straight into a buffer of its own size (see
//! [`Connection::read_buffer`](super::Connection::read_buffer)) and handed to the application as
//! [`Bytes`] without a copy. When the application drops the last [`Bytes`] of such a body, its buffer
//! goes back to this pool, so the next large frame reuses memory that is already mapped and likely
//! still in cache. Without the pool, bodies that are freed in bursts let the C allocator give their
//! pages back to the kernel and fault them in again for the next burst: at 64 KiB messages that churn
//! cost about half of the receiver's throughput (measured; see `docs/bench/`).
//!
//! The pool is bounded: it keeps at most [`POOL_MAX_BYTES`] in at most [`POOL_MAX_BUFFERS`] buffers,
//! each between [`POOLED_MIN`] and [`POOLED_MAX`] octets of capacity. Anything else is freed as usual.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

/// Smallest buffer worth pooling (smaller bodies share the connection's read blocks).
pub(crate) const POOLED_MIN: usize = 16 * 1024;
/// Largest buffer kept in the pool.
pub(crate) const POOLED_MAX: usize = 1024 * 1024;
/// Most bytes the pool keeps, over all its buffers.
pub(crate) const POOL_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Most buffers the pool keeps.
pub(crate) const POOL_MAX_BUFFERS: usize = 256;

/// Free buffers (empty, with their capacity) and the sum of their capacities.
struct Pool {
    buffers: Vec<BytesMut>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { buffers: Vec::new(), bytes: 0 });

fn with_pool<T>(f: impl FnOnce(&mut Pool) -> T) -> T {
    // A panic while holding the lock cannot leave the pool inconsistent in a way that matters:
    // at worst a buffer is lost or `bytes` is off until the buffers are gone.
    let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut pool)
}

/// An empty buffer with room for at least `len` octets: a pooled one whose capacity is within an
/// eighth above `len` (the most recently returned first), or a new one of exactly `len`.
pub(crate) fn take(len: usize) -> BytesMut {
    if (POOLED_MIN..=POOLED_MAX).contains(&len) {
        let most = len + len / 8;
        let found = with_pool(|pool| {
            let i = pool.buffers.iter().rposition(|b| (len..=most).contains(&b.capacity()))?;
            let buffer = pool.buffers.swap_remove(i);
            pool.bytes -= buffer.capacity();
            Some(buffer)
        });
        if let Some(buffer) = found {
            return buffer;
        }
    }
    BytesMut::with_capacity(len)
}

/// Freezes a filled body into [`Bytes`]; a buffer of a poolable size returns to the pool once the
/// last [`Bytes`] referring to it is dropped.
pub(crate) fn freeze(body: BytesMut) -> Bytes {
    if (POOLED_MIN..=POOLED_MAX).contains(&body.capacity()) {
        Bytes::from_owner(PooledBody(body))
    } else {
        body.freeze()
    }
}

/// Gives an unused buffer back (when it fits the pool's bounds; otherwise it is freed).
fn give_back(mut buffer: BytesMut) {
    let capacity = buffer.capacity();
    if !(POOLED_MIN..=POOLED_MAX).contains(&capacity) {
        return;
    }
    buffer.clear();
    with_pool(|pool| {
        if pool.buffers.len() < POOL_MAX_BUFFERS && pool.bytes + capacity <= POOL_MAX_BYTES {
            pool.bytes += capacity;
            pool.buffers.push(buffer);
        }
    });
}

/// The owner behind a pooled body's [`Bytes`].
struct PooledBody(BytesMut);

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_body_is_reused_and_small_or_huge_ones_are_not_pooled() {
        let mut body = take(40_000);
        assert!(body.capacity() >= 40_000);
        body.resize(40_000, 7);
        let ptr = body.as_ptr();
        let frozen = freeze(body);
        let slice = frozen.slice(10..20);
        drop(frozen);
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        // Other tests may use the pool at the same time; a pooled buffer of this size is ours.
        let again = take(40_000);
        assert!(again.is_empty());
        if again.as_ptr() != ptr {
            assert_eq!(again.capacity(), 40_000, "not pooled, so exactly the size asked");
        }
        assert_eq!(freeze(BytesMut::from(&[1u8, 2, 3][..])), Bytes::from_static(&[1, 2, 3]));
        let huge = take(POOLED_MAX + 1);
        assert_eq!(huge.capacity(), POOLED_MAX + 1);
    }

    #[test]
    fn the_pool_keeps_at_most_its_byte_bound() {
        let bodies: Vec<Bytes> = (0..40)
            .map(|_| {
                let mut b = take(POOLED_MAX);
                b.resize(POOLED_MAX, 1);
                freeze(b)
            })
            .collect();
        drop(bodies);
        with_pool(|pool| {
            assert!(pool.bytes <= POOL_MAX_BYTES);
            assert_eq!(pool.bytes, pool.buffers.iter().map(BytesMut::capacity).sum::<usize>());
            assert!(pool.buffers.iter().all(BytesMut::is_empty));
        });
    }
}
