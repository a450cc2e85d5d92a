//! [`Histogram`]: a log-linear latency histogram (HDR-style), recorded per task and merged once.

/// A log-linear histogram of nanosecond values (HDR-style): exact below 128 ns, then 64 buckets per
/// power of two, so a reported quantile is at most 1/64 (1.6 %) above the true value.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    pub(crate) counts: Vec<u64>,
    pub(crate) total: u64,
    pub(crate) max: u64,
    pub(crate) sum: u128,
}

impl Histogram {
    const BUCKETS: usize = 128 + 57 * 64;

    pub(crate) fn new() -> Self {
        Histogram { counts: vec![0; Self::BUCKETS], total: 0, max: 0, sum: 0 }
    }

    pub(crate) fn index(v: u64) -> usize {
        if v < 128 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros() as u64; // >= 7
        let shift = msb - 6;
        let mantissa = v >> shift; // 64..128
        (128 + (shift - 1) * 64 + (mantissa - 64)) as usize
    }

    /// The largest value that falls in bucket `i`.
    pub(crate) fn upper(i: usize) -> u64 {
        if i < 128 {
            return i as u64;
        }
        let j = i as u64 - 128;
        let shift = j / 64 + 1;
        let mantissa = j % 64 + 64;
        (mantissa << shift) + ((1u64 << shift) - 1)
    }

    pub(crate) fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The value at quantile `q` (0..=1), in ns; 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let target = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }
}

/// Nanoseconds as microseconds.
pub(crate) fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_contiguous_and_precise() {
        let mut last = 0;
        for i in 0..Histogram::BUCKETS {
            let u = Histogram::upper(i);
            assert!(i == 0 || u > last, "bucket {i}");
            assert_eq!(Histogram::index(u), i);
            if i > 0 {
                assert_eq!(Histogram::index(last + 1), i);
            }
            last = u;
        }
        assert_eq!(Histogram::index(u64::MAX), Histogram::BUCKETS - 1);
        for v in [1u64, 127, 128, 1000, 123_456, 9_999_999_999] {
            let u = Histogram::upper(Histogram::index(v));
            assert!(u >= v && (u - v) as f64 <= v as f64 / 64.0 + 1.0, "{v} -> {u}");
        }
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((500_000..=510_000).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), 1_000_000);
    }
}
