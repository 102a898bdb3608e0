//! The mass-change guard: accidental-deletion prevention for leaver plans.
//!
//! Microsoft Entra's provisioning refuses to go on when one cycle would disable or delete more
//! accounts than a threshold (500 by default) and waits for an administrator to allow or reject
//! the deletions. A bad HR export, a wrong mapping or a scoping mistake upstream looks, to the
//! bridge, exactly like a wave of real leavers; the guard keeps such a wave from disabling a
//! tenant's workforce in Graph before a person has looked at it.
//!
//! What it counts: *leaver actions*, plans that disable an account ([`Step::DisableAccount`]) or
//! delete it ([`Step::DeleteUser`]), per tenant, in a sliding window
//! ([`crate::config::GuardConfig`]), whatever wrote the SCIM change (an IdP's SCIM push, the HR
//! intake, a CSV import): the guard sits where the bridge is about to apply, after planning.
//! A leaver plan that only revokes what an already disabled account still holds is not counted.
//!
//! What it does past the limit: the plan is *held* (recorded in `bridge_holds`, the work item
//! completed) instead of applied, and so is every further leaver plan of the tenant while any
//! hold is pending. The first hold of a wave raises an alert ([`GuardAlert`], handed to the
//! worker's [`crate::notify::BridgeEvents`] and logged). The SCIM writes themselves have
//! landed; only the destruction in Graph waits.
//!
//! What an operator does (`scim-server bridge hold list|approve|reject`): approving queues the
//! user again and the next plan of that user is let through (recomputed, so a user re-hired
//! meanwhile is simply not disabled); rejecting drops the hold and records who did it. When no
//! hold of the tenant is pending any more, the count starts afresh from that decision.
//!
//! Invariants:
//! - a held plan makes no Graph write; holds live in the database, so they survive restarts;
//! - the count and the decision happen in one transaction under the tenant's guard row, so
//!   concurrent workers cannot all slip under the limit;
//! - a user's leaver action is counted once per window, however often its plan is retried.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::GuardConfig;
use crate::plan::{Plan, Step};

/// Whether applying `plan` is a leaver action the guard counts: it disables or deletes the
/// account in Graph.
pub fn is_leaver_action(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(s, Step::DisableAccount | Step::DeleteUser))
}

/// How many leaver actions a tenant may take in the window: `max_leavers`, or fewer when a
/// share is configured and `active_users` is known. The share is taken of the users who were
/// active when the window began: those active now plus those `counted` as leavers in it (their
/// SCIM records already say inactive).
pub fn limit(cfg: &GuardConfig, active_users: Option<u64>, counted: u64) -> u64 {
    let by_count = u64::from(cfg.max_leavers);
    match (cfg.max_leaver_share, active_users) {
        (Some(share), Some(active)) => {
            let base = active.saturating_add(counted) as f64;
            by_count.min((share * base).floor() as u64)
        }
        _ => by_count,
    }
}

/// The guard's answer for one plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Apply the plan (not a leaver action, within the limit, counted before, or approved).
    Apply,
    /// Do not apply: the plan is held as `hold_id`.
    Hold {
        /// The hold (`bridge hold approve ID`).
        hold_id: String,
        /// This plan is the one that crossed the limit (raise the alert once per wave).
        tripped: bool,
        /// Why, in words an operator can act on.
        reason: String,
    },
}

/// The state of a hold.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Waiting for an operator.
    Held,
    /// Approved: the user is queued and its next plan is let through.
    Approved,
    /// Approved and applied.
    Applied,
    /// Rejected by an operator: never applied.
    Rejected,
    /// The user's plan stopped being a leaver action (re-hired, say) before it was applied.
    Superseded,
}

impl HoldStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Held => "held",
            HoldStatus::Approved => "approved",
            HoldStatus::Applied => "applied",
            HoldStatus::Rejected => "rejected",
            HoldStatus::Superseded => "superseded",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "held" => HoldStatus::Held,
            "approved" => HoldStatus::Approved,
            "applied" => HoldStatus::Applied,
            "rejected" => HoldStatus::Rejected,
            "superseded" => HoldStatus::Superseded,
            _ => return None,
        })
    }
}

/// A held leaver plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Hold {
    /// Id for `approve` / `reject`.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// SCIM user id.
    pub user_id: String,
    /// Where it stands.
    pub status: HoldStatus,
    /// Why it was held.
    pub reason: String,
    /// The plan as last computed (the one applied after approval is computed afresh).
    pub plan: Plan,
    /// When first held.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When last held again or decided.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When an operator decided.
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided (as given to the command).
    pub decided_by: Option<String>,
}

/// An operator's decision on a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let the plan through.
    Approve,
    /// Drop it.
    Reject,
}

/// The alert raised when a tenant's leaver actions cross the limit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GuardAlert {
    /// Tenant.
    pub tenant_id: String,
    /// The first held plan's hold.
    pub hold_id: String,
    /// Its user.
    pub user_id: String,
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_of_count_and_share_applies() {
        let cfg = |max_leavers, share| GuardConfig {
            max_leavers,
            max_leaver_share: share,
            ..GuardConfig::default()
        };
        // (config, active users now, counted in the window, limit)
        let cases = [
            (cfg(500, None), Some(100), 0, 500),
            (cfg(500, None), None, 0, 500),
            (cfg(500, Some(0.1)), Some(1_000), 0, 100),
            // ten have left already: the share is of the 1,000 active before them
            (cfg(500, Some(0.1)), Some(990), 10, 100),
            (cfg(50, Some(0.1)), Some(100_000), 0, 50),
            (cfg(500, Some(0.1)), Some(5), 0, 0),
            (cfg(500, Some(0.1)), None, 0, 500),
            (cfg(0, None), Some(10), 0, 0),
        ];
        for (c, active, counted, want) in cases {
            assert_eq!(
                limit(&c, active, counted),
                want,
                "{c:?} {active:?} {counted}"
            );
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            HoldStatus::Held,
            HoldStatus::Approved,
            HoldStatus::Applied,
            HoldStatus::Rejected,
            HoldStatus::Superseded,
        ] {
            assert_eq!(HoldStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(HoldStatus::parse("pending"), None);
    }
}
