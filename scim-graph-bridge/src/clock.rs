//! Time as a parameter: expiry, backoff, leases and rate limits read a [`Clock`].

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time that can also wait.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Waits for `d` (a test clock may just advance its time).
    async fn sleep(&self, d: Duration);
}

/// The wall clock, waiting with `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// A virtual clock for tests: `sleep` advances the time instantly and is recorded.
#[derive(Debug)]
pub struct ManualClock {
    inner: Mutex<(OffsetDateTime, Duration)>,
}

impl ManualClock {
    /// A clock starting at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            inner: Mutex::new((start, Duration::ZERO)),
        }
    }
    /// A clock starting at 2026-01-01T00:00:00Z.
    pub fn fixed() -> Self {
        Self::new(time::macros::datetime!(2026-01-01 00:00 UTC))
    }
    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        let mut g = self.inner.lock().expect("clock lock");
        g.0 += d;
    }
    /// Total time spent in `sleep` so far.
    pub fn slept(&self) -> Duration {
        self.inner.lock().expect("clock lock").1
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.inner.lock().expect("clock lock").0
    }
    async fn sleep(&self, d: Duration) {
        {
            let mut g = self.inner.lock().expect("clock lock");
            g.0 += d;
            g.1 += d;
        }
        tokio::task::yield_now().await;
    }
}

/// Milliseconds since the Unix epoch, as stored in the bridge tables.
pub fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`to_millis`].
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
