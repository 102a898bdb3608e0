//! A per-tenant token bucket, in process (each replica limits on its own).
//!
//! The default is generous: Entra ID needs at least 25 requests per second per provisioning job,
//! and throttling below that puts jobs into quarantine. A refused request is answered 429 with
//! `Retry-After` (whole seconds) and a SCIM error body.

use crate::clock::Clock;
use crate::config::RateLimitConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Per-tenant token buckets.
pub struct RateLimiter {
    config: RateLimitConfig,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: OffsetDateTime,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter with the given settings, reading time from `clock`.
    pub fn new(config: RateLimitConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from the tenant's bucket. `Err(seconds)` when the bucket is empty: the
    /// whole number of seconds (at least 1) until a token is available.
    pub fn check(&self, tenant: &str) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let rate = self.config.requests_per_second;
        let burst = f64::from(self.config.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Bound memory: full buckets carry no state worth keeping.
            buckets.retain(|_, b| b.tokens < burst);
        }
        let bucket = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = (now - bucket.updated).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn bucket_refuses_past_burst_and_refills_with_time() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        let limiter = RateLimiter::new(
            RateLimitConfig {
                enabled: true,
                requests_per_second: 2.0,
                burst: 3,
            },
            clock.clone(),
        );
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        assert_eq!(limiter.check("a"), Err(1));
        // Another tenant has its own bucket.
        assert!(limiter.check("b").is_ok());
        clock.advance(time::Duration::milliseconds(500));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
    }

    #[test]
    fn disabled_limiter_always_allows() {
        let limiter = RateLimiter::new(
            RateLimitConfig {
                enabled: false,
                requests_per_second: 1.0,
                burst: 1,
            },
            Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
        );
        for _ in 0..10 {
            assert!(limiter.check("a").is_ok());
        }
    }
}
