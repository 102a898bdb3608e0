//! Request rate limits, in process (each replica limits on its own), on `governor`'s GCRA.
//!
//! Three limits, each keyed separately:
//! - **per tenant**, on authenticated SCIM requests: a sustained rate with a deep burst. Entra ID
//!   needs at least 25 requests per second per provisioning job and quarantines a job that is
//!   throttled below that; validators (Microsoft's SCIM validator, `scim2-tester`, Okta's
//!   Runscope-style suites) send a few hundred requests as fast as they can. So the default burst
//!   (1000) absorbs any validator run, and the sustained rate (100/s, four Entra jobs) is what
//!   stops a runaway client;
//! - **per client address, on failed authentication**: a client that keeps presenting bad
//!   credentials is answered 429 instead of 401 once it passes the limit, so a credential-guessing
//!   loop (or a misconfigured client hammering the server) is slowed; requests that authenticate
//!   never count, so a good client behind the same address is not locked out;
//! - **per client address on `POST /oauth/token`**: token requests are rare (one per token
//!   lifetime per client), so a low limit costs nothing and bounds secret guessing.
//!
//! A refused request is answered 429 with `Retry-After` (whole seconds, RFC 9110 §10.2.3) and a
//! SCIM error body. Time comes from the server's [`Clock`], so tests freeze or advance it.

use crate::clock::Clock;
use crate::config::RateLimitConfig;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Keys tracked by one limiter before idle ones are dropped (bounds memory under a flood of
/// distinct addresses).
const MAX_KEYS: usize = 100_000;

/// `governor`'s view of a [`Clock`]: nanoseconds since the Unix epoch.
#[derive(Clone)]
struct ClockAdapter(Arc<dyn Clock>);

impl governor::clock::Clock for ClockAdapter {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = (self.0.now() - OffsetDateTime::UNIX_EPOCH).whole_nanoseconds();
        Nanos::from(u64::try_from(nanos).unwrap_or(0))
    }
}

/// One keyed limit: `per_second` sustained with bursts of `burst`.
struct KeyedLimit<K: Hash + Eq + Clone> {
    gcra: Gcra<K, DashMapStateStore<K>, ClockAdapter, NoOpMiddleware<Nanos>>,
    clock: ClockAdapter,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    fn new(per_second: f64, burst: u32, clock: ClockAdapter) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            // Validation refuses these; a limit that never refills is the safe reading.
            1e-6
        };
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("the period is at least one nanosecond")
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"));
        Self {
            gcra: Gcra::dashmap_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Takes one cell; `Err(seconds)` (at least 1) until the next one is due.
    fn check(&self, key: &K) -> Result<(), u64> {
        if self.gcra.len() > MAX_KEYS {
            self.gcra.retain_recent();
        }
        self.gcra.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

/// A keyed limit for another part of the server, on the same GCRA and [`Clock`] as the
/// request limits (the HR intake limits each event source with one).
pub struct Limit<K: Hash + Eq + Clone>(KeyedLimit<K>);

impl<K: Hash + Eq + Clone> std::fmt::Debug for Limit<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limit").finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> Limit<K> {
    /// `per_second` sustained with bursts of `burst`, on `clock`.
    pub fn new(per_second: f64, burst: u32, clock: Arc<dyn Clock>) -> Self {
        Self(KeyedLimit::new(per_second, burst, ClockAdapter(clock)))
    }

    /// Takes one cell for `key`; `Err(seconds)` (at least 1) until the next one is due.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.0.check(key)
    }
}

/// The server's rate limits (see the module documentation).
pub struct RateLimiter {
    config: RateLimitConfig,
    tenants: KeyedLimit<String>,
    failed_auth: KeyedLimit<IpAddr>,
    token_requests: KeyedLimit<IpAddr>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Limiters with the given settings, reading time from `clock`.
    pub fn new(config: RateLimitConfig, clock: Arc<dyn Clock>) -> Self {
        let clock = ClockAdapter(clock);
        Self {
            tenants: KeyedLimit::new(config.requests_per_second, config.burst, clock.clone()),
            failed_auth: KeyedLimit::new(
                f64::from(config.failed_auth_per_minute) / 60.0,
                config.failed_auth_burst,
                clock.clone(),
            ),
            token_requests: KeyedLimit::new(
                f64::from(config.token_requests_per_minute) / 60.0,
                config.token_burst,
                clock,
            ),
            config,
        }
    }

    /// Counts one authenticated request of `tenant`. `Err(seconds)` when over the limit: the
    /// whole number of seconds (at least 1) until a request will be accepted.
    pub fn check(&self, tenant: &str) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        self.tenants.check(&tenant.to_string())
    }

    /// Counts one failed authentication from `client`; `Err(seconds)` when the client is over
    /// the limit (answer 429 instead of 401).
    pub fn check_failed_auth(&self, client: IpAddr) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        self.failed_auth.check(&client)
    }

    /// Counts one `POST /oauth/token` from `client`; `Err(seconds)` when over the limit.
    pub fn check_token_request(&self, client: IpAddr) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        self.token_requests.check(&client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::net::Ipv4Addr;

    fn limiter(config: RateLimitConfig) -> (Arc<ManualClock>, RateLimiter) {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        (clock.clone(), RateLimiter::new(config, clock))
    }

    #[test]
    fn tenant_limit_refuses_past_burst_and_refills_with_time() {
        let (clock, limiter) = limiter(RateLimitConfig {
            requests_per_second: 2.0,
            burst: 3,
            ..RateLimitConfig::default()
        });
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        assert_eq!(limiter.check("a"), Err(1));
        // Another tenant has its own allowance.
        assert!(limiter.check("b").is_ok());
        clock.advance(time::Duration::milliseconds(500));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_until_the_next_request() {
        let (_, limiter) = limiter(RateLimitConfig {
            requests_per_second: 0.1,
            burst: 1,
            ..RateLimitConfig::default()
        });
        assert!(limiter.check("a").is_ok());
        assert_eq!(limiter.check("a"), Err(10));
    }

    #[test]
    fn default_burst_absorbs_a_validator_run_but_not_a_flood() {
        let (clock, limiter) = limiter(RateLimitConfig::default());
        // A validator's few hundred requests, all at one instant.
        for i in 0..300 {
            assert!(limiter.check("t").is_ok(), "request {i}");
        }
        // A runaway client keeps going at the same instant: refused once the burst is spent.
        let refused = (0..2000).filter(|_| limiter.check("t").is_err()).count();
        assert!(refused > 0);
        // A second later the sustained rate is available again.
        clock.advance(time::Duration::seconds(1));
        assert!(limiter.check("t").is_ok());
    }

    #[test]
    fn failed_auth_and_token_limits_are_per_address() {
        let (_, limiter) = limiter(RateLimitConfig::default());
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let config = RateLimitConfig::default();
        for _ in 0..config.failed_auth_burst {
            assert!(limiter.check_failed_auth(a).is_ok());
        }
        assert!(limiter.check_failed_auth(a).is_err());
        assert!(limiter.check_failed_auth(b).is_ok());
        for _ in 0..config.token_burst {
            assert!(limiter.check_token_request(a).is_ok());
        }
        assert!(limiter.check_token_request(a).is_err());
        assert!(limiter.check_token_request(b).is_ok());
    }

    #[test]
    fn disabled_limiter_always_allows() {
        let (_, limiter) = limiter(RateLimitConfig {
            enabled: false,
            requests_per_second: 1.0,
            burst: 1,
            failed_auth_burst: 1,
            token_burst: 1,
            ..RateLimitConfig::default()
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..10 {
            assert!(limiter.check("a").is_ok());
            assert!(limiter.check_failed_auth(ip).is_ok());
            assert!(limiter.check_token_request(ip).is_ok());
        }
    }
}
