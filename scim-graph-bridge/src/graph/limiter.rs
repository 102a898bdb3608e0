//! The client-side write rate limit: `governor`'s GCRA limiter, driven by the bridge's [`Clock`]
//! so tests advance virtual time instead of sleeping.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use time::OffsetDateTime;

use crate::clock::Clock;

/// `governor`'s view of a [`Clock`]: nanoseconds since the Unix epoch. Times before the epoch
/// (never produced by a real or test clock) read as the epoch.
#[derive(Debug, Clone)]
struct ClockAdapter(Arc<dyn Clock>);

impl governor::clock::Clock for ClockAdapter {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = (self.0.now() - OffsetDateTime::UNIX_EPOCH).whole_nanoseconds();
        Nanos::from(u64::try_from(nanos).unwrap_or(0))
    }
}

/// Grants at most `burst + rate × t` writes in any window of length `t`.
pub struct RateLimiter {
    rate: f64,
    burst: u32,
    clock: Arc<dyn Clock>,
    gcra: Gcra<NotKeyed, InMemoryState, ClockAdapter, NoOpMiddleware<Nanos>>,
    /// Writers queue here, so they are served in arrival order.
    queue: tokio::sync::Mutex<()>,
    grants: Mutex<VecDeque<OffsetDateTime>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish()
    }
}

const GRANT_LOG: usize = 10_000;

impl RateLimiter {
    /// `rate` writes per second (at least one per 1000 s) with bursts of `burst`.
    pub fn new(rate: f64, burst: u32, clock: Arc<dyn Clock>) -> Self {
        let rate = if rate.is_finite() {
            rate.max(0.001)
        } else {
            0.001
        };
        let burst = burst.max(1);
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("the period is at least one nanosecond")
            .allow_burst(NonZeroU32::new(burst).expect("burst is at least 1"));
        Self {
            rate,
            burst,
            gcra: Gcra::direct_with_clock(quota, ClockAdapter(clock.clone())),
            clock,
            queue: tokio::sync::Mutex::new(()),
            grants: Mutex::new(VecDeque::new()),
        }
    }

    /// Configured rate (writes per second).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Configured burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Waits until one write may be sent. Callers queue fairly behind the lock.
    pub async fn acquire(&self) {
        let _turn = self.queue.lock().await;
        // Bounded: each pass either grants or sleeps exactly until a write is due.
        for _ in 0..8 {
            match self.gcra.check() {
                Ok(()) => {
                    self.record_grant();
                    return;
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.gcra_clock_now());
                    self.clock.sleep(wait.max(Duration::from_nanos(1))).await;
                }
            }
        }
        // The clock did not advance as asked; grant anyway rather than spin.
        self.record_grant();
    }

    fn gcra_clock_now(&self) -> Nanos {
        ClockAdapter(self.clock.clone()).now()
    }

    fn record_grant(&self) {
        let mut g = self.grants.lock().expect("grant log");
        if g.len() == GRANT_LOG {
            g.pop_front();
        }
        g.push_back(self.clock.now());
    }

    /// Times at which writes were granted (the most recent 10 000).
    pub fn grant_log(&self) -> Vec<OffsetDateTime> {
        self.grants
            .lock()
            .expect("grant log")
            .iter()
            .copied()
            .collect()
    }

    /// The most writes granted in any window of `window` (from the grant log).
    pub fn max_in_window(&self, window: Duration) -> usize {
        let g = self.grant_log();
        let mut best = 0;
        let mut j = 0;
        for i in 0..g.len() {
            while g[i] - g[j] >= window {
                j += 1;
            }
            best = best.max(i - j + 1);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn never_exceeds_rate_plus_burst() {
        let clock = Arc::new(ManualClock::fixed());
        let l = RateLimiter::new(5.0, 3, clock.clone());
        for _ in 0..50 {
            l.acquire().await;
        }
        assert!(l.max_in_window(Duration::from_secs(1)) <= 3 + 5);
        assert!(l.max_in_window(Duration::from_secs(10)) <= 3 + 50);
        // 50 writes at 5/s after a burst of 3 take about 9.4 s of (virtual) time
        let slept = clock.slept().as_secs_f64();
        assert!((9.0..10.0).contains(&slept), "{slept}");
    }
}
