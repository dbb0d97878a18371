//! A retry budget (Finagle/gRPC style): retries may be at most a share of the requests made
//! over a sliding window, plus a small floor per second so that a quiet caller can still
//! retry. A retry storm is thereby capped at roughly `1 + ratio` times the normal load.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Width of one bucket of the sliding window.
const BUCKET: Duration = Duration::from_secs(1);
/// Seconds in the window (10 s): the floor is granted per second of it.
pub const WINDOW_BUCKETS: usize = 10;
/// Buckets kept: the current, partial second and the full window before it, so that every
/// 10 s interval that ends now lies inside what is counted. No 10 s interval then ever holds
/// more retries than the budget allows, which is what the retry-load check verifies.
const RING: usize = WINDOW_BUCKETS + 1;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which second since the budget's start this bucket counts.
    second: u64,
    requests: u64,
    retries: u64,
}

/// Counts requests and retries over the last [`WINDOW_BUCKETS`] seconds (and the current one).
#[derive(Debug)]
pub struct RetryBudget {
    start: Instant,
    ratio: f64,
    floor_per_s: u64,
    buckets: Mutex<[Bucket; RING]>,
}

impl RetryBudget {
    /// Retries at most `ratio` of requests, plus `floor_per_s` per second of the window.
    pub fn new(ratio: f64, floor_per_s: u64) -> RetryBudget {
        RetryBudget {
            start: Instant::now(),
            ratio,
            floor_per_s,
            buckets: Mutex::new([Bucket::default(); RING]),
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / BUCKET.as_secs()
    }

    fn with_bucket<R>(&self, now: Instant, f: impl FnOnce(&mut [Bucket], usize) -> R) -> R {
        let second = self.second(now);
        let idx = (second % RING as u64) as usize;
        let mut guard = match self.buckets.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard[idx].second != second {
            guard[idx] = Bucket {
                second,
                requests: 0,
                retries: 0,
            };
        }
        // Buckets older than the window no longer count.
        for b in guard.iter_mut() {
            if second.saturating_sub(b.second) >= RING as u64 {
                *b = Bucket::default();
            }
        }
        f(&mut guard[..], idx)
    }

    /// Counts a first attempt.
    pub fn deposit_at(&self, now: Instant) {
        self.with_bucket(now, |b, i| b[i].requests += 1);
    }

    /// Counts a first attempt now.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// Takes one retry from the budget if there is room; false means do not retry.
    pub fn try_withdraw_at(&self, now: Instant) -> bool {
        let (ratio, floor) = (self.ratio, self.floor_per_s);
        self.with_bucket(now, |b, i| {
            let requests: u64 = b.iter().map(|x| x.requests).sum();
            let retries: u64 = b.iter().map(|x| x.retries).sum();
            let allowed = ratio * requests as f64 + (floor * WINDOW_BUCKETS as u64) as f64;
            if (retries as f64) < allowed {
                b[i].retries += 1;
                true
            } else {
                false
            }
        })
    }

    /// Takes one retry now.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves retries are capped at the floor plus 10 % of requests within the window, that the
    /// window covers every 10 s interval ending now, and that it slides: old requests and
    /// retries stop counting.
    #[test]
    fn budget_caps_retries_and_slides() {
        let b = RetryBudget::new(0.1, 1);
        let t0 = b.start;
        for _ in 0..100 {
            b.deposit_at(t0);
        }
        let granted = (0..1000).filter(|_| b.try_withdraw_at(t0)).count();
        assert_eq!(
            granted,
            10 + 10,
            "10 % of 100 plus a floor of 1/s over 10 s"
        );
        // Everything granted at 0 s still counts 10.5 s later: no 10 s interval holds more.
        let edge = t0 + Duration::from_millis(WINDOW_BUCKETS as u64 * 1000 + 500);
        assert!(
            !b.try_withdraw_at(edge),
            "the 10 s before 10.5 s hold 20 retries"
        );
        let later = t0 + Duration::from_secs(WINDOW_BUCKETS as u64 + 1);
        let granted = (0..1000).filter(|_| b.try_withdraw_at(later)).count();
        assert_eq!(granted, 10, "only the floor once the window has slid");
    }
}
