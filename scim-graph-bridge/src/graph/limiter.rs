//! A client-side write token bucket driven by a [`Clock`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::Clock;

/// Grants at most `burst + rate × t` writes in any window of length `t`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    clock: Arc<dyn Clock>,
    state: tokio::sync::Mutex<(f64, Option<OffsetDateTime>)>,
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
    /// `rate` writes per second with bursts of `burst`.
    pub fn new(rate: f64, burst: u32, clock: Arc<dyn Clock>) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(0.001),
            burst,
            clock,
            state: tokio::sync::Mutex::new((burst, None)),
            grants: Mutex::new(VecDeque::new()),
        }
    }

    /// Configured rate (writes per second).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Configured burst.
    pub fn burst(&self) -> u32 {
        self.burst as u32
    }

    /// Waits until one write may be sent. Callers queue fairly behind the lock.
    pub async fn acquire(&self) {
        let mut st = self.state.lock().await;
        // Bounded: each pass either grants or sleeps exactly until a token is due.
        for _ in 0..8 {
            let now = self.clock.now();
            if let Some(last) = st.1 {
                let elapsed = (now - last).as_seconds_f64().max(0.0);
                st.0 = (st.0 + elapsed * self.rate).min(self.burst);
            }
            st.1 = Some(now);
            if st.0 >= 1.0 - 1e-9 {
                st.0 -= 1.0;
                let mut g = self.grants.lock().expect("grant log");
                if g.len() == GRANT_LOG {
                    g.pop_front();
                }
                g.push_back(now);
                return;
            }
            let wait = (1.0 - st.0) / self.rate;
            self.clock.sleep(Duration::from_secs_f64(wait)).await;
        }
        // The clock did not advance as asked; grant anyway rather than spin.
        st.0 = 0.0;
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
