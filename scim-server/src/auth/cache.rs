//! Credentials this process verified recently, so that a request does not pay a database read
//! (static tokens, issued access tokens, Basic credentials) or an RSA signature check (Entra
//! JWTs) when the same credential came a moment ago.
//!
//! Entries are keyed by the SHA-256 digest of the presented credential, never by the credential
//! itself, and hold only what verification concluded. Each entry is trusted until the earlier of
//! its read time plus the cache lifetime and a deadline the credential itself sets (a JWT's
//! `exp` plus leeway), so the cache never accepts a credential that verification would refuse
//! for its age. What the lifetime trades is how long a change made elsewhere (a revocation by
//! another replica or the CLI, a key removed from the JWKS) takes to reach this process; a
//! revocation made through this process applies at once ([`VerifiedCache::forget`]).
//!
//! Only successful verifications are kept, so failed attempts cannot fill the cache; it holds at
//! most `capacity` entries, and past that it drops the expired ones and, if that is not enough,
//! starts again empty: a flood of distinct valid credentials costs verifications, never memory.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// The default bound on cached credentials per cache.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Verified credentials by digest, each with the instant it stops being trusted.
pub struct VerifiedCache<V> {
    lifetime: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], (V, OffsetDateTime)>>,
}

impl<V: Clone> VerifiedCache<V> {
    /// A cache trusting entries for `lifetime` (zero or less: nothing is kept) and holding at
    /// most `capacity` of them.
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        Self {
            lifetime,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the cache keeps anything at all.
    pub fn enabled(&self) -> bool {
        self.lifetime > Duration::ZERO && self.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (V, OffsetDateTime)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value verified for `digest`, if still trusted at `now`.
    pub fn get(&self, digest: &[u8; 32], now: OffsetDateTime) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let entries = self.lock();
        let (value, until) = entries.get(digest)?;
        (now < *until).then(|| value.clone())
    }

    /// Keeps `value` for `digest`, verified at `now`, trusted until `now` plus the lifetime or
    /// `deadline`, whichever comes first.
    pub fn keep(
        &self,
        digest: [u8; 32],
        value: V,
        now: OffsetDateTime,
        deadline: Option<OffsetDateTime>,
    ) {
        if !self.enabled() {
            return;
        }
        let mut until = now + self.lifetime;
        if let Some(deadline) = deadline {
            until = until.min(deadline);
        }
        if until <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, (value, until));
    }

    /// Drops every entry `revoked` picks (a credential revoked through this process).
    pub fn forget(&self, revoked: impl Fn(&V) -> bool) {
        self.lock().retain(|_, (value, _)| !revoked(value));
    }

    /// How many entries the cache holds (trusted or not yet dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn d(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn entries_live_until_the_lifetime_or_their_deadline() {
        let cache = VerifiedCache::new(Duration::seconds(5), 10);
        cache.keep(d(1), "a", T0, None);
        cache.keep(d(2), "b", T0, Some(T0 + Duration::seconds(2)));
        assert_eq!(cache.get(&d(1), T0 + Duration::seconds(4)), Some("a"));
        assert_eq!(cache.get(&d(1), T0 + Duration::seconds(5)), None);
        assert_eq!(cache.get(&d(2), T0 + Duration::seconds(1)), Some("b"));
        assert_eq!(cache.get(&d(2), T0 + Duration::seconds(2)), None);
        // A deadline already past keeps nothing.
        cache.keep(d(3), "c", T0, Some(T0));
        assert_eq!(cache.get(&d(3), T0), None);
    }

    #[test]
    fn a_zero_lifetime_keeps_nothing() {
        let cache = VerifiedCache::new(Duration::ZERO, 10);
        cache.keep(d(1), "a", T0, None);
        assert_eq!(cache.get(&d(1), T0), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_on_request() {
        let cache = VerifiedCache::new(Duration::seconds(5), 3);
        for n in 0..3 {
            cache.keep(d(n), n, T0, None);
        }
        assert_eq!(cache.len(), 3);
        // Full of trusted entries: starts again empty.
        cache.keep(d(9), 9, T0, None);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&d(0), T0), None);
        assert_eq!(cache.get(&d(9), T0), Some(9));
        // Full with expired entries: only those go.
        cache.keep(d(10), 10, T0 + Duration::seconds(4), None);
        cache.keep(d(11), 11, T0 + Duration::seconds(4), None);
        cache.keep(d(12), 12, T0 + Duration::seconds(6), None);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&d(10), T0 + Duration::seconds(6)), Some(10));
        cache.forget(|v| *v == 10);
        assert_eq!(cache.get(&d(10), T0 + Duration::seconds(6)), None);
        assert_eq!(cache.len(), 2);
    }
}
