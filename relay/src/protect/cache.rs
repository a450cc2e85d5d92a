//! The response cache: `OK` responses by (ticker, params), with a TTL and a byte cap.
//!
//! On the `lru` crate (an exact LRU list over a hash map, O(1) per operation) with our own weigher
//! and clock, rather than `moka`: the relay's request loop is one task on a current-thread runtime,
//! so moka's concurrent machinery (locks, atomics, a frequency sketch, deferred maintenance) would be
//! paid for and unused, its TinyLFU admission may turn away a new entry, and its clock is not
//! tokio's, so TTLs could not be tested with paused time.
//!
//! Every entry has the same TTL; an expired entry is removed when it is next looked up, or when it
//! reaches the least recently used end. What is held (keys, data and a fixed overhead per frame) never
//! exceeds `max_bytes`: inserting evicts least recently used entries first, and a response larger
//! than the cap is not cached.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lru::LruCache;
use tokio::time::Instant;

/// Bytes counted per entry and per data frame besides their contents (the list node, the `Bytes`
/// handles, the vector).
const ENTRY_OVERHEAD: usize = 128;
const FRAME_OVERHEAD: usize = 32;

/// A cache key: the request's ticker and params, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The ticker frame.
    pub ticker: Bytes,
    /// The params frame.
    pub params: Bytes,
}

impl Key {
    /// A key holding its own copy of the two frames (received frames are slices of a connection's
    /// read buffer: holding them would keep the whole buffer alive).
    pub fn copied(ticker: &[u8], params: &[u8]) -> Key {
        let mut both = BytesMut::with_capacity(ticker.len() + params.len());
        both.extend_from_slice(ticker);
        both.extend_from_slice(params);
        let mut both = both.freeze();
        let ticker = both.split_to(ticker.len());
        Key { ticker, params: both }
    }

    fn len(&self) -> usize {
        self.ticker.len() + self.params.len()
    }
}

/// The cache's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long an entry is served; zero turns the cache off.
    pub ttl: Duration,
    /// Most bytes held.
    pub max_bytes: u64,
}

impl CacheSettings {
    /// Whether the cache is on.
    pub fn is_on(&self) -> bool {
        !self.ttl.is_zero() && self.max_bytes > 0
    }
}

#[derive(Debug)]
struct Entry {
    data: Vec<Bytes>,
    expires: Instant,
    weight: usize,
}

/// Counters for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheCounters {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests looked up and not found (or found expired).
    pub misses: u64,
    /// Bytes held now.
    pub bytes: u64,
    /// Entries held now.
    pub entries: u64,
}

/// The response cache.
#[derive(Debug)]
pub struct ResponseCache {
    settings: CacheSettings,
    entries: LruCache<Key, Entry>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl ResponseCache {
    /// A cache with these settings.
    pub fn new(settings: CacheSettings) -> ResponseCache {
        ResponseCache { settings, entries: LruCache::unbounded(), bytes: 0, hits: 0, misses: 0 }
    }

    /// The settings in force.
    pub fn settings(&self) -> CacheSettings {
        self.settings
    }

    /// Replaces the settings (a reload): a smaller cap evicts at once, turning the cache off empties
    /// it. Entries keep the expiry they were given.
    pub fn reconfigure(&mut self, settings: CacheSettings) {
        self.settings = settings;
        if !settings.is_on() {
            self.entries.clear();
            self.bytes = 0;
        }
        self.evict_to(self.cap());
    }

    /// Whether the cache is on.
    pub fn is_on(&self) -> bool {
        self.settings.is_on()
    }

    fn cap(&self) -> usize {
        usize::try_from(self.settings.max_bytes).unwrap_or(usize::MAX)
    }

    /// The data frames of a live entry for (`ticker`, `params`), counted as a hit or a miss. `None`
    /// when the cache is off (not counted).
    pub fn get(&mut self, ticker: &Bytes, params: &Bytes, now: Instant) -> Option<Vec<Bytes>> {
        if !self.is_on() {
            return None;
        }
        let key = Key { ticker: ticker.clone(), params: params.clone() };
        let data = match self.entries.get(&key) {
            Some(e) if e.expires > now => Some(e.data.clone()),
            Some(_) => {
                if let Some(e) = self.entries.pop(&key) {
                    self.bytes -= e.weight;
                }
                None
            }
            None => None,
        };
        match data {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        data
    }

    /// Caches `data` (an `OK` response's frames, copied into one allocation) under `key` until
    /// `now + ttl`, evicting least recently used entries to stay under the cap. Nothing when off or
    /// when the entry alone exceeds the cap.
    pub fn insert(&mut self, key: Key, data: &[Bytes], now: Instant) {
        if !self.is_on() {
            return;
        }
        let payload: usize = data.iter().map(Bytes::len).sum();
        let weight = ENTRY_OVERHEAD + key.len() + payload + FRAME_OVERHEAD * data.len();
        if weight > self.cap() {
            return;
        }
        if let Some(old) = self.entries.pop(&key) {
            self.bytes -= old.weight;
        }
        self.evict_to(self.cap() - weight);
        let mut all = BytesMut::with_capacity(payload);
        for frame in data {
            all.extend_from_slice(frame);
        }
        let mut all = all.freeze();
        let data = data.iter().map(|f| all.split_to(f.len())).collect();
        self.entries.push(key, Entry { data, expires: now + self.settings.ttl, weight });
        self.bytes += weight;
    }

    /// Drops expired entries from the least recently used end, then least recently used ones until
    /// at most `target` bytes are held.
    fn evict_to(&mut self, target: usize) {
        while self.bytes > target {
            match self.entries.pop_lru() {
                Some((_, e)) => self.bytes -= e.weight,
                None => {
                    self.bytes = 0;
                    return;
                }
            }
        }
    }

    /// Removes expired entries from the least recently used end (a few per call: the periodic tick).
    pub fn expire(&mut self, now: Instant) {
        for _ in 0..64 {
            match self.entries.peek_lru() {
                Some((_, e)) if e.expires <= now => {
                    if let Some((_, e)) = self.entries.pop_lru() {
                        self.bytes -= e.weight;
                    }
                }
                _ => return,
            }
        }
    }

    /// Hits, misses, bytes and entries.
    pub fn counters(&self) -> CacheCounters {
        CacheCounters {
            hits: self.hits,
            misses: self.misses,
            bytes: self.bytes as u64,
            entries: self.entries.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn cache(ttl: u64, max: u64) -> ResponseCache {
        ResponseCache::new(CacheSettings { ttl: Duration::from_secs(ttl), max_bytes: max })
    }

    #[tokio::test(start_paused = true)]
    async fn hits_until_the_ttl_then_misses() {
        let mut c = cache(10, 1 << 20);
        let (t, p) = (b("BINANCE:BTC/USDT"), b("{}"));
        assert_eq!(c.get(&t, &p, Instant::now()), None);
        c.insert(Key::copied(&t, &p), &[b("row1"), b(""), b("row2")], Instant::now());
        assert_eq!(c.get(&t, &p, Instant::now()), Some(vec![b("row1"), b(""), b("row2")]));
        assert_eq!(c.get(&t, &b("{ }"), Instant::now()), None, "params are part of the key");
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(c.get(&t, &p, Instant::now()).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(c.get(&t, &p, Instant::now()), None);
        let n = c.counters();
        assert_eq!((n.hits, n.misses, n.bytes, n.entries), (2, 3, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_cap_evicts_least_recently_used() {
        let per = (ENTRY_OVERHEAD + 3 + 1000 + FRAME_OVERHEAD) as u64;
        let mut c = cache(60, per * 3);
        let big = Bytes::from(vec![7u8; 1000]);
        for k in ["A:1", "A:2", "A:3"] {
            c.insert(Key::copied(k.as_bytes(), b""), std::slice::from_ref(&big), Instant::now());
        }
        assert_eq!(c.counters().bytes, per * 3);
        assert!(c.get(&b("A:1"), &b(""), Instant::now()).is_some()); // A:2 is now the LRU
        c.insert(Key::copied(b"A:4", b""), std::slice::from_ref(&big), Instant::now());
        assert!(c.get(&b("A:2"), &b(""), Instant::now()).is_none());
        assert!(c.get(&b("A:1"), &b(""), Instant::now()).is_some());
        assert!(c.counters().bytes <= per * 3);
        // Larger than the cap: not cached.
        c.insert(Key::copied(b"A:5", b""), &[Bytes::from(vec![0u8; 5000])], Instant::now());
        assert!(c.get(&b("A:5"), &b(""), Instant::now()).is_none());
        // A smaller cap evicts at once; off empties.
        c.reconfigure(CacheSettings { ttl: Duration::from_secs(60), max_bytes: per });
        assert_eq!(c.counters().entries, 1);
        c.reconfigure(CacheSettings { ttl: Duration::ZERO, max_bytes: per });
        assert_eq!(c.counters().bytes, 0);
        assert_eq!(c.get(&b("A:1"), &b(""), Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn expire_sweeps_from_the_lru_end() {
        let mut c = cache(1, 1 << 20);
        for i in 0..10 {
            c.insert(Key::copied(format!("A:{i}").as_bytes(), b""), &[b("x")], Instant::now());
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        c.expire(Instant::now());
        assert_eq!(c.counters(), CacheCounters { hits: 0, misses: 0, bytes: 0, entries: 0 });
    }

    #[test]
    fn a_copied_key_equals_the_borrowed_one() {
        let k = Key::copied(b"A:B", b"{}");
        assert_eq!(k, Key { ticker: b("A:B"), params: b("{}") });
    }
}
