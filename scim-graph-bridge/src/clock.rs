//! Time as a parameter, for the whole workspace: timestamps, token expiry, backoff, leases and
//! rate limits read a [`Clock`], and every wait (retry backoff, jitter, lease renewal) goes
//! through [`Clock::sleep`], so tests move time instead of sleeping.
//!
//! This is the one clock of the workspace. It lives here because `scim-graph-bridge` is the
//! lowest crate with an async runtime (`scim-core` has none); `scim-server` re-exports it as
//! `scim_server::clock`.
//!
//! ```
//! # tokio_test_block_on(async {
//! use scim_graph_bridge::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::fixed();
//! let start = clock.now();
//! clock.sleep(Duration::from_secs(30)).await; // returns at once
//! assert_eq!(clock.now() - start, time::Duration::seconds(30));
//! assert_eq!(clock.slept(), Duration::from_secs(30));
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time that can also wait.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Waits for `d` (a test clock just advances its time).
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

/// A virtual clock for tests: stands still until moved; `sleep` advances the time at once and
/// is recorded, so a test can assert how long the code under test waited without waiting.
#[derive(Debug)]
pub struct ManualClock {
    inner: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: OffsetDateTime,
    slept: Duration,
    sleeps: u64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            inner: Mutex::new(ManualState {
                now: start,
                slept: Duration::ZERO,
                sleeps: 0,
            }),
        }
    }

    /// A clock starting at 2026-01-01T00:00:00Z.
    pub fn fixed() -> Self {
        Self::new(time::macros::datetime!(2026-01-01 00:00 UTC))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock by `by`: a `std::time::Duration`, or a `time::Duration` (which may be
    /// negative, to move it back).
    pub fn advance<D>(&self, by: D)
    where
        OffsetDateTime: std::ops::AddAssign<D>,
    {
        self.state().now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: OffsetDateTime) {
        self.state().now = to;
    }

    /// Total time spent in `sleep` so far.
    pub fn slept(&self) -> Duration {
        self.state().slept
    }

    /// How many times `sleep` was called.
    pub fn sleeps(&self) -> u64 {
        self.state().sleeps
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.state().now
    }
    async fn sleep(&self, d: Duration) {
        {
            let mut s = self.state();
            s.now += d;
            s.slept += d;
            s.sleeps += 1;
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
