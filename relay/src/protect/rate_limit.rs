//! Rate limiting per client: a token bucket per client key, the buckets in a bounded LRU map.
//!
//! A bucket holds up to `burst` tokens and gains `rate` tokens a second; each request takes one, and a
//! request that finds less than one token is refused (`RATE_LIMITED`). A bucket that has refilled to
//! `burst` is the same as a new one, so it can be forgotten without changing any answer: the map
//! drops such buckets from its least recently used end as it goes, and when it still reaches
//! [`MAX_BUCKETS`] it forgets the least recently used client (the one most likely to be full
//! again). Memory is bounded whatever set of clients comes.

use std::net::IpAddr;
use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;
use tokio::time::Instant;

/// Most clients whose buckets are remembered at once (about 100 bytes each).
pub const MAX_BUCKETS: usize = 100_000;

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A routing id the client chose itself (RFC 37: it never starts with `0x00`), copied.
    Id(Bytes),
    /// The peer's IP address, for clients whose routing id the ROUTER generated (REQ, most DEALERs:
    /// a fresh id per connection, so a reconnecting client would otherwise get a fresh bucket).
    Ip(IpAddr),
}

impl ClientKey {
    /// The key of a client whose routing id is `routing_id` and whose connection's address is
    /// `address` (when known): a generated id (first byte `0x00`) is keyed by the address's IP,
    /// anything else (or an address that is not `ip:port`: ipc) by the id.
    pub fn new(routing_id: &[u8], address: Option<&str>) -> ClientKey {
        if routing_id.first() == Some(&0) {
            if let Some(ip) = address.and_then(|a| a.parse::<std::net::SocketAddr>().ok()).map(|a| a.ip()) {
                return ClientKey::Ip(ip);
            }
        }
        ClientKey::Id(Bytes::copy_from_slice(routing_id))
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Id(id) => write!(f, "id {}", crate::logging::Id(id)),
            ClientKey::Ip(ip) => write!(f, "address {ip}"),
        }
    }
}

/// The limiter's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSettings {
    /// Tokens per second; 0 turns the limiter off.
    pub per_second: f64,
    /// Bucket size, ≥ 1.
    pub burst: f64,
}

impl RateSettings {
    /// `rate_limit_per_s` and `rate_limit_burst` as configured: a burst of 0 means one second's
    /// worth (`max(1, ceil(rate))`).
    pub fn new(per_second: f64, burst: u32) -> RateSettings {
        let burst = if burst == 0 { per_second.ceil().max(1.0) } else { f64::from(burst) };
        RateSettings { per_second, burst }
    }

    /// Whether the limiter is on.
    pub fn is_on(&self) -> bool {
        self.per_second > 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// The tokens at `now`, refilled and capped.
    fn tokens_at(&self, now: Instant, s: &RateSettings) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * s.per_second).min(s.burst)
    }
}

/// Token buckets per client.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateSettings,
    buckets: LruCache<ClientKey, Bucket>,
    limited: u64,
}

impl RateLimiter {
    /// A limiter with these settings, holding at most [`MAX_BUCKETS`] buckets.
    pub fn new(settings: RateSettings) -> RateLimiter {
        RateLimiter::with_capacity(settings, MAX_BUCKETS)
    }

    /// A limiter holding at most `capacity` buckets (≥ 1).
    pub fn with_capacity(settings: RateSettings, capacity: usize) -> RateLimiter {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        RateLimiter { settings, buckets: LruCache::new(capacity), limited: 0 }
    }

    /// The settings in force.
    pub fn settings(&self) -> RateSettings {
        self.settings
    }

    /// Replaces the settings (a reload). Buckets keep their tokens, capped to the new burst; turning
    /// the limiter off forgets them.
    pub fn reconfigure(&mut self, settings: RateSettings) {
        self.settings = settings;
        if !settings.is_on() {
            self.buckets.clear();
        }
    }

    /// Takes a token for `client` at `now`: whether the request may go on. Always true when off.
    pub fn allow(&mut self, client: &ClientKey, now: Instant) -> bool {
        let s = self.settings;
        if !s.is_on() {
            return true;
        }
        self.forget_full(now);
        let allowed = match self.buckets.get_mut(client) {
            Some(bucket) => {
                let tokens = bucket.tokens_at(now, &s);
                let allowed = tokens >= 1.0;
                *bucket = Bucket { tokens: if allowed { tokens - 1.0 } else { tokens }, at: now };
                allowed
            }
            None => {
                // A new client starts with a full bucket and takes one token (burst ≥ 1).
                self.buckets.push(client.clone(), Bucket { tokens: s.burst - 1.0, at: now });
                true
            }
        };
        if !allowed {
            self.limited += 1;
        }
        allowed
    }

    /// Forgets buckets that have refilled, from the least recently used end (at most a few per
    /// call, so a request never pays for a long sweep).
    fn forget_full(&mut self, now: Instant) {
        for _ in 0..4 {
            match self.buckets.peek_lru() {
                Some((_, b)) if b.tokens_at(now, &self.settings) >= self.settings.burst => {
                    self.buckets.pop_lru();
                }
                _ => return,
            }
        }
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Requests refused since start.
    pub fn limited(&self) -> u64 {
        self.limited
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn id(s: &str) -> ClientKey {
        ClientKey::Id(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_the_rate() {
        let mut l = RateLimiter::new(RateSettings::new(5.0, 10));
        let a = id("a");
        let now = Instant::now();
        let passed = (0..50).filter(|_| l.allow(&a, now)).count();
        assert_eq!(passed, 10, "exactly the burst");
        assert_eq!(l.limited(), 40);
        // Another client is unaffected.
        assert!(l.allow(&id("b"), now));
        // 1 s later: 5 more tokens.
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        assert_eq!((0..50).filter(|_| l.allow(&a, now)).count(), 5);
        // 200 ms: one token.
        tokio::time::advance(Duration::from_millis(200)).await;
        let now = Instant::now();
        assert!(l.allow(&a, now));
        assert!(!l.allow(&a, now));
        // Refilled buckets never exceed the burst.
        tokio::time::advance(Duration::from_secs(3600)).await;
        let now = Instant::now();
        assert_eq!((0..50).filter(|_| l.allow(&a, now)).count(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn off_allows_everything_and_burst_zero_means_one_second() {
        let mut l = RateLimiter::new(RateSettings::new(0.0, 10));
        assert!((0..1000).all(|_| l.allow(&id("a"), Instant::now())));
        assert!(l.is_empty());
        assert_eq!(RateSettings::new(2.5, 0).burst, 3.0);
        assert_eq!(RateSettings::new(0.2, 0).burst, 1.0);
        // A fractional rate: one request per 5 s.
        let mut l = RateLimiter::new(RateSettings::new(0.2, 1));
        assert!(l.allow(&id("a"), Instant::now()));
        assert!(!l.allow(&id("a"), Instant::now()));
        tokio::time::advance(Duration::from_millis(4900)).await;
        assert!(!l.allow(&id("a"), Instant::now()));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(l.allow(&id("a"), Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_map_stays_bounded_and_forgets_refilled_buckets() {
        let mut l = RateLimiter::with_capacity(RateSettings::new(10.0, 2), 100);
        for i in 0..10_000 {
            l.allow(&id(&i.to_string()), Instant::now());
        }
        assert_eq!(l.len(), 100, "capped");
        // After a refill, requests of new clients sweep the full buckets away.
        tokio::time::advance(Duration::from_secs(1)).await;
        for i in 0..30 {
            l.allow(&id(&format!("new-{i}")), Instant::now());
        }
        assert!(l.len() <= 30, "{} buckets", l.len());
    }

    #[tokio::test(start_paused = true)]
    async fn reconfigure_caps_tokens_and_off_forgets() {
        let mut l = RateLimiter::new(RateSettings::new(100.0, 100));
        let a = id("a");
        assert!(l.allow(&a, Instant::now()));
        l.reconfigure(RateSettings::new(1.0, 2));
        let now = Instant::now();
        assert_eq!((0..10).filter(|_| l.allow(&a, now)).count(), 2);
        l.reconfigure(RateSettings::new(0.0, 2));
        assert!(l.is_empty());
        assert!(l.allow(&a, now));
    }

    /// Prints what a token costs; no timed assertion.
    /// `cargo test --release -p relay --lib tokens_cost -- --nocapture`.
    #[tokio::test(start_paused = true)]
    async fn tokens_cost_o1_each() {
        let mut l = RateLimiter::new(RateSettings::new(1e9, 0));
        let keys: Vec<ClientKey> =
            (0..50u8).map(|i| ClientKey::new(&[0, 0, 0, 0, i], Some("127.0.0.1:40000"))).collect();
        let started = std::time::Instant::now();
        let now = Instant::now();
        let passed = (0..1_000_000).filter(|i| l.allow(&keys[i % 50], now)).count();
        println!("1,000,000 tokens in {:?}", started.elapsed());
        assert_eq!(passed, 1_000_000);
    }

    #[test]
    fn generated_ids_are_keyed_by_ip() {
        let ip = "10.1.2.3".parse::<IpAddr>().unwrap();
        assert_eq!(ClientKey::new(&[0, 0, 0, 0, 1], Some("10.1.2.3:5000")), ClientKey::Ip(ip));
        assert_eq!(ClientKey::new(&[0, 0, 0, 0, 2], Some("10.1.2.3:5001")), ClientKey::Ip(ip));
        assert_eq!(ClientKey::new(&[0, 0, 0, 0, 2], Some("ipc")), id("\0\0\0\0\x02"));
        assert_eq!(ClientKey::new(&[0, 0, 0, 0, 2], None), id("\0\0\0\0\x02"));
        assert_eq!(ClientKey::new(b"alice", Some("10.1.2.3:5000")), id("alice"));
        let v6 = ClientKey::new(&[0, 1], Some("[::1]:80"));
        assert_eq!(v6, ClientKey::Ip("::1".parse().unwrap()));
    }
}
