//! What the worker tells its host about: a user's plan settled, a tenant's guard tripped.
//!
//! The bridge writes only its own tables; a host that wants to act on outcomes (the server
//! queues outcome callbacks to HR systems and counts alerts on `/metrics`) implements
//! [`BridgeEvents`] and hands it to [`crate::worker::Worker::with_events`]. The worker calls it
//! before it completes the work item, and treats an error as a failure of the item (retried
//! later), so a notification is delivered at least once; hosts make them idempotent.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Result;
use crate::guard::GuardAlert;
use crate::plan::PlanKind;

/// How a user's plan ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SettledOutcome {
    /// Every step succeeded (or there was nothing to do).
    Applied,
    /// Recorded without calling Graph (plan mode).
    Planned,
    /// Given up after permanent failures or too many attempts.
    DeadLettered,
    /// Held by the mass-change guard, then rejected by an operator: never applied.
    Rejected,
}

/// A user's plan, settled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    /// Tenant.
    pub tenant_id: String,
    /// SCIM user id.
    pub user_id: String,
    /// The SCIM user's version (`meta.version`'s number) the plan reflects at least, when
    /// the user was read: a write of that version or older is reflected in this outcome.
    pub scim_version: Option<u64>,
    /// How it ended.
    pub outcome: SettledOutcome,
    /// What kind of plan (absent when planning itself failed).
    pub kind: Option<PlanKind>,
    /// Graph steps of the plan.
    pub steps: usize,
    /// Why it was dead-lettered.
    pub detail: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A host's handler of bridge outcomes.
#[async_trait::async_trait]
pub trait BridgeEvents: Send + Sync {
    /// A user's plan is settled (applied, planned, or dead-lettered); not called for held plans
    /// (their rejection is reported by whoever rejects them, with [`SettledOutcome::Rejected`]).
    async fn settled(&self, settled: &Settled) -> Result<()>;
    /// A tenant's leaver actions crossed the guard's limit: its leaver plans are being held.
    async fn guard_tripped(&self, alert: &GuardAlert) -> Result<()>;
}

/// The number in a SCIM `meta.version` (`W/"7"` or `"7"`).
pub fn version_number(user: &serde_json::Value) -> Option<u64> {
    let v = user.get("meta")?.get("version")?.as_str()?;
    v.trim_start_matches("W/").trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_are_read_from_weak_and_strong_tags() {
        let cases = [
            (json!({"meta": {"version": "W/\"7\""}}), Some(7)),
            (json!({"meta": {"version": "\"12\""}}), Some(12)),
            (json!({"meta": {"version": "W/\"abc\""}}), None),
            (json!({"meta": {}}), None),
            (json!({}), None),
        ];
        for (user, want) in cases {
            assert_eq!(version_number(&user), want, "{user}");
        }
    }
}
