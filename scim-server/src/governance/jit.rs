//! Time-bound ("just-in-time") grants: a catalog group, role or license for a limited time.
//!
//! A request names a user, a catalog grant (`role:helpdesk`, `group:eng`, `license:e5`), a
//! duration (ISO 8601, e.g. `PT4H`) and a justification. The grant's policy
//! (`[[governance.jit.policies]]`) bounds the duration and says who approves: the user's manager
//! (SCIM enterprise `manager`), a named approver, or nobody (auto-approved). An approved grant is
//! *active* from its approval until its expiry; while it is, the bridge's planner adds it to the
//! user's desired state (an `OverrideAction::Add` with its `until`, from [`overrides`]). The
//! approval commits with two `gov_schedule` entries, `jit.activate` (queue the user for the
//! bridge now) and `jit.expire` (at the end: mark the grant expired and queue the user, whose
//! plan then removes the grant), so the removal happens at expiry even after a restart or a
//! `kill -9`: the schedule is rows in the database, not a timer in a process.
//! Extending is a new request (with `extends`) approved like the first; it starts when the
//! grant it extends ends.
//!
//! A policy with `only_jit = true` makes the grant a standing-access-free one: the rules may
//! name it, but the planner suppresses it for every user without an active grant (Microsoft's
//! PIM makes the same distinction between *eligible* and *active* assignments).
//!
//! Every decision and every expiry is recorded in the tenant's change log
//! (`governance.jit.*` events), so `audit verify` covers them.

mod service;
mod store;

pub use service::*;
pub use store::{ChainEvent, GrantFilter, JitStore};

use crate::store::StoreError;
use scim_core::Error;
use scim_graph_bridge::overrides::{Grant, GrantKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest time-bound grant any policy may allow: a week. Longer is standing access by another
/// name, which the rules (and access reviews) are for.
pub const MAX_POLICY_DURATION_SECONDS: i64 = 7 * 24 * 3600;

/// Longest justification kept, in bytes.
pub const MAX_JUSTIFICATION_BYTES: usize = 2000;

/// `[governance.jit]`: which catalog grants may be requested for a time, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JitConfig {
    /// One policy per requestable grant.
    pub policies: Vec<JitPolicy>,
}

/// Who approves a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// The user's manager (SCIM enterprise `manager`), or one of `approvers`.
    #[default]
    Manager,
    /// One of `approvers` only.
    Approvers,
    /// Approved on request (still recorded, still bounded by `max_duration`).
    Auto,
}

/// `[[governance.jit.policies]]`: one requestable catalog grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitPolicy {
    /// The catalog grant, `kind:name` as the rules' catalog names it (`role:helpdesk`).
    pub grant: String,
    /// Longest duration one approval gives, ISO 8601 (`PT8H`).
    pub max_duration: String,
    /// Who approves.
    #[serde(default)]
    pub approval: Approval,
    /// SCIM user ids or userNames who may approve (besides the manager, with `manager`).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// The grant is held only through this policy: the rules' grant of it is suppressed for
    /// users without an active time-bound grant.
    #[serde(default)]
    pub only_jit: bool,
}

impl JitConfig {
    /// Checks every policy; errors name the key. `catalog`, when the bridge is configured, tells
    /// whether a grant exists.
    pub fn validate(
        &self,
        catalog: Option<&dyn Fn(&Grant) -> bool>,
    ) -> std::result::Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.policies.iter().enumerate() {
            let key = format!("governance.jit.policies[{i}]");
            let grant = parse_grant(&p.grant).map_err(|e| format!("`{key}.grant`: {e}"))?;
            if !seen.insert(grant.clone()) {
                return Err(format!(
                    "`{key}.grant`: {} has a policy already",
                    grant_text(&grant)
                ));
            }
            if let Some(exists) = catalog
                && !exists(&grant)
            {
                return Err(format!(
                    "`{key}.grant`: {} is not in the Graph rules' catalog",
                    grant_text(&grant)
                ));
            }
            let max = parse_duration(&p.max_duration)
                .map_err(|e| format!("`{key}.max_duration`: {e}"))?;
            if max > MAX_POLICY_DURATION_SECONDS {
                return Err(format!(
                    "`{key}.max_duration`: at most P7D ({MAX_POLICY_DURATION_SECONDS} seconds)"
                ));
            }
            if p.approval == Approval::Approvers && p.approvers.is_empty() {
                return Err(format!(
                    "`{key}.approvers`: `approval = \"approvers\"` needs at least one approver"
                ));
            }
        }
        Ok(())
    }

    /// The policy of `grant`.
    pub fn policy(&self, grant: &Grant) -> Option<&JitPolicy> {
        self.policies
            .iter()
            .find(|p| parse_grant(&p.grant).is_ok_and(|g| &g == grant))
    }

    /// The grants only ever held through a time-bound grant.
    pub fn only_jit(&self) -> impl Iterator<Item = Grant> + '_ {
        self.policies
            .iter()
            .filter(|p| p.only_jit)
            .filter_map(|p| parse_grant(&p.grant).ok())
    }
}

/// Parses a catalog grant written `kind:name` (`role:helpdesk`, `group:eng`, `license:e5`).
pub fn parse_grant(text: &str) -> std::result::Result<Grant, String> {
    let (kind, name) = text.split_once(':').ok_or_else(|| {
        format!("{text:?} is not `kind:name` (e.g. `role:helpdesk`, `group:eng`)")
    })?;
    let kind = GrantKind::parse(kind)
        .ok_or_else(|| format!("unknown grant kind {kind:?}: use `group`, `role` or `license`"))?;
    if name.is_empty() {
        return Err(format!("{text:?} names no catalog entry"));
    }
    Ok(Grant::new(kind, name))
}

/// A catalog grant written `kind:name`, as requests and policies name it.
pub fn grant_text(grant: &Grant) -> String {
    format!("{}:{}", grant.kind, grant.name)
}

/// Parses an ISO 8601 duration of days, hours, minutes and seconds (`P1D`, `PT4H`, `PT1H30M`),
/// as Microsoft Graph writes PIM durations; returns seconds (at least 60).
pub fn parse_duration(text: &str) -> std::result::Result<i64, String> {
    let bad = || format!("{text:?} is not an ISO 8601 duration such as PT4H, PT30M or P1D");
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut seconds: i64 = 0;
    let mut take = |part: &str, units: &[(char, i64)]| -> std::result::Result<(), String> {
        let mut number = String::new();
        let mut last_unit = 0usize;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let pos = units.iter().position(|(u, _)| *u == c).ok_or_else(bad)?;
            if number.is_empty() || pos < last_unit {
                return Err(bad());
            }
            last_unit = pos + 1;
            let n: i64 = number.parse().map_err(|_| bad())?;
            seconds = seconds
                .checked_add(n.checked_mul(units[pos].1).ok_or_else(bad)?)
                .ok_or_else(bad)?;
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    if days.is_empty() && time.is_empty() {
        return Err(bad());
    }
    take(days, &[('D', 86_400)])?;
    if rest.contains('T') && time.is_empty() {
        return Err(bad());
    }
    take(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    if seconds < 60 {
        return Err(format!("{text:?} is shorter than a minute"));
    }
    Ok(seconds)
}

/// Formats seconds as an ISO 8601 duration (`PT4H`, `P1DT2H`).
pub fn format_duration(seconds: i64) -> String {
    let (d, rest) = (seconds / 86_400, seconds % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h > 0 || m > 0 || s > 0 {
        out.push('T');
        for (n, u) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if n > 0 {
                out.push_str(&format!("{n}{u}"));
            }
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    /// Waiting for an approver.
    Pending,
    /// Approved; held from `startsAt` to `expiresAt`.
    Active,
    /// Refused by an approver.
    Denied,
    /// Ended at `expiresAt`.
    Expired,
    /// Ended early by a revocation.
    Revoked,
}

impl GrantStatus {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Denied => "denied",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        }
    }

    /// The inverse of [`GrantStatus::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => GrantStatus::Pending,
            "active" => GrantStatus::Active,
            "denied" => GrantStatus::Denied,
            "expired" => GrantStatus::Expired,
            "revoked" => GrantStatus::Revoked,
            other => {
                return Err(StoreError::Corrupt(format!("JIT grant status {other:?}")).into());
            }
        })
    }
}

/// A time-bound grant and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JitGrant {
    /// Id.
    pub id: String,
    /// The SCIM user it is for.
    pub user: String,
    /// `kind:name`.
    pub grant: String,
    /// The duration asked for (ISO 8601).
    pub duration: String,
    /// Why.
    pub justification: String,
    /// Who asked (a SCIM user id, or the credential when the user asked for themself).
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: OffsetDateTime,
    /// `pending`, `active`, `denied`, `expired` or `revoked`.
    #[schema(value_type = String)]
    pub status: GrantStatus,
    /// Who approved or denied (SCIM user id), or `policy` for an auto-approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
    /// The approver's or revoker's note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the grant starts (approval time, or the end of the grant it extends).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<OffsetDateTime>,
    /// When it ends.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// The grant this one extends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

impl JitGrant {
    /// Whether the grant is held at `now`.
    pub fn is_held(&self, now: OffsetDateTime) -> bool {
        self.status == GrantStatus::Active
            && self.starts_at.is_some_and(|s| s <= now)
            && self.expires_at.is_some_and(|e| now < e)
    }
}

/// The body of `POST /governance/v1/grants`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    /// The SCIM user id the grant is for.
    pub user: String,
    /// `kind:name` of a catalog grant with a policy (`role:helpdesk`).
    pub grant: String,
    /// ISO 8601 duration, at most the policy's `max_duration` (`PT4H`).
    pub duration: String,
    /// Why the access is needed (required).
    pub justification: String,
    /// Who asks (a SCIM user id; default: the user).
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// The body of an approval or a denial.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    /// The approver: a SCIM user id or userName the policy allows.
    pub approver: String,
    /// A note recorded with the decision.
    #[serde(default)]
    pub note: Option<String>,
}

/// The body of an extension request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendRequest {
    /// How much longer (ISO 8601, at most the policy's `max_duration`).
    pub duration: String,
    /// Why.
    pub justification: String,
}

/// A revocation (ends an active grant now).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revocation {
    /// Who ends it (recorded).
    #[serde(default)]
    pub by: Option<String>,
    /// Why.
    #[serde(default)]
    pub note: Option<String>,
}

/// The checked content of a request, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRequest {
    /// The grant.
    pub grant: Grant,
    /// Seconds asked for.
    pub seconds: i64,
    /// Trimmed justification.
    pub justification: String,
}

/// Checks a request against the policies (no I/O): the grant has a policy, the duration parses
/// and is within the policy's maximum, a justification is given.
pub fn check_request(
    config: &JitConfig,
    grant: &str,
    duration: &str,
    justification: &str,
) -> Result<(CheckedRequest, JitPolicy)> {
    let parsed = parse_grant(grant).map_err(|e| Error::invalid_value(format!("grant: {e}")))?;
    let policy = config.policy(&parsed).ok_or_else(|| {
        let known: Vec<&str> = config.policies.iter().map(|p| p.grant.as_str()).collect();
        Error::invalid_value(format!(
            "grant: {} cannot be requested for a time (no `[[governance.jit.policies]]` \
             names it; requestable: {})",
            grant_text(&parsed),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let seconds =
        parse_duration(duration).map_err(|e| Error::invalid_value(format!("duration: {e}")))?;
    let max = parse_duration(&policy.max_duration).unwrap_or(0);
    if seconds > max {
        return Err(Error::invalid_value(format!(
            "duration: {duration} is longer than the policy allows for {} ({})",
            grant_text(&parsed),
            policy.max_duration
        )));
    }
    let justification = justification.trim();
    if justification.is_empty() {
        return Err(Error::invalid_value(
            "justification: required (say why the access is needed)",
        ));
    }
    if justification.len() > MAX_JUSTIFICATION_BYTES {
        return Err(Error::invalid_value(format!(
            "justification: at most {MAX_JUSTIFICATION_BYTES} bytes"
        )));
    }
    Ok((
        CheckedRequest {
            grant: parsed,
            seconds,
            justification: justification.to_string(),
        },
        policy.clone(),
    ))
}

/// Who may approve `user`'s request under `policy`: `approver` (a SCIM id or userName, resolved
/// to `approver_id` / `approver_user_name` by the caller) must be the user's manager (with
/// `approval = "manager"`) or a named approver, and never the user.
pub fn may_approve(
    policy: &JitPolicy,
    user_id: &str,
    manager_id: Option<&str>,
    approver_id: &str,
    approver_user_name: Option<&str>,
) -> std::result::Result<(), String> {
    if approver_id == user_id {
        return Err("a user cannot approve their own time-bound grant".into());
    }
    let named = policy
        .approvers
        .iter()
        .any(|a| a == approver_id || approver_user_name.is_some_and(|n| a.eq_ignore_ascii_case(n)));
    match policy.approval {
        Approval::Auto => Ok(()),
        Approval::Approvers if named => Ok(()),
        Approval::Manager if named || manager_id == Some(approver_id) => Ok(()),
        Approval::Approvers => Err(format!(
            "only the policy's approvers may approve {} ({})",
            policy.grant,
            policy.approvers.join(", ")
        )),
        Approval::Manager => Err(match manager_id {
            Some(_) => format!(
                "only the user's manager or the policy's approvers may approve {}",
                policy.grant
            ),
            None => format!(
                "the user has no manager in SCIM; only the policy's approvers may approve {}{}",
                policy.grant,
                if policy.approvers.is_empty() {
                    " (the policy names none: add `approvers`)".to_string()
                } else {
                    format!(" ({})", policy.approvers.join(", "))
                }
            ),
        }),
    }
}

/// The window of an approved grant: from `now`, or from the end of the grant it extends when
/// that is still ahead, for `seconds`.
pub fn window(
    now: OffsetDateTime,
    extends_until: Option<OffsetDateTime>,
    seconds: i64,
) -> (OffsetDateTime, OffsetDateTime) {
    let start = extends_until.filter(|u| *u > now).unwrap_or(now);
    (start, start + time::Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, secs) in [
            ("PT4H", 4 * 3600),
            ("PT30M", 1800),
            ("P1D", 86_400),
            ("P1DT2H", 93_600),
            ("PT1H30M", 5400),
            ("PT90S", 90),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
            assert_eq!(parse_duration(&format_duration(secs)), Ok(secs), "{text}");
        }
        for bad in [
            "", "P", "PT", "4h", "PT4", "PTH", "PT4M4H", "PT30S", "P1H", "PT-1H",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(4 * 3600), "PT4H");
    }

    fn config() -> JitConfig {
        JitConfig {
            policies: vec![
                JitPolicy {
                    grant: "role:helpdesk".into(),
                    max_duration: "PT8H".into(),
                    approval: Approval::Manager,
                    approvers: vec!["secops@contoso.example".into()],
                    only_jit: true,
                },
                JitPolicy {
                    grant: "group:eng".into(),
                    max_duration: "P1D".into(),
                    approval: Approval::Auto,
                    approvers: vec![],
                    only_jit: false,
                },
            ],
        }
    }

    #[test]
    fn requests_are_checked_against_the_policy() {
        let c = config();
        let (ok, policy) = check_request(&c, "role:helpdesk", "PT4H", " on call ").unwrap();
        assert_eq!(ok.seconds, 4 * 3600);
        assert_eq!(ok.justification, "on call");
        assert!(policy.only_jit);
        for (grant, duration, why, expect) in [
            (
                "role:helpdesk",
                "PT9H",
                "x",
                "longer than the policy allows",
            ),
            ("role:helpdesk", "PT4H", "  ", "justification: required"),
            (
                "role:global",
                "PT1H",
                "x",
                "requestable: role:helpdesk, group:eng",
            ),
            ("helpdesk", "PT1H", "x", "not `kind:name`"),
            ("role:helpdesk", "4 hours", "x", "not an ISO 8601 duration"),
        ] {
            let e = check_request(&c, grant, duration, why).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(
                e.detail().contains(expect),
                "{grant} {duration}: {}",
                e.detail()
            );
        }
    }

    #[test]
    fn approvers() {
        let c = config();
        let p = &c.policies[0];
        assert!(may_approve(p, "u1", Some("m1"), "m1", None).is_ok());
        assert!(may_approve(p, "u1", None, "x", Some("SecOps@contoso.example")).is_ok());
        assert!(may_approve(p, "u1", Some("m1"), "u1", None).is_err());
        let e = may_approve(p, "u1", None, "x", Some("x")).unwrap_err();
        assert!(e.contains("no manager"), "{e}");
        let mut only = p.clone();
        only.approval = Approval::Approvers;
        assert!(may_approve(&only, "u1", Some("m1"), "m1", Some("m1")).is_err());
    }

    #[test]
    fn config_validation_names_the_key() {
        let mut c = config();
        assert_eq!(c.validate(None), Ok(()));
        let exists = |g: &Grant| g.name != "eng";
        let e = c.validate(Some(&exists)).unwrap_err();
        assert!(
            e.contains("policies[1].grant") && e.contains("catalog"),
            "{e}"
        );
        c.policies[0].max_duration = "P8D".into();
        assert!(
            c.validate(None)
                .unwrap_err()
                .contains("policies[0].max_duration")
        );
        c.policies[0].max_duration = "PT1H".into();
        c.policies[1].grant = "role:helpdesk".into();
        assert!(
            c.validate(None)
                .unwrap_err()
                .contains("has a policy already")
        );
    }

    #[test]
    fn an_extension_starts_when_the_grant_ends() {
        let now = time::macros::datetime!(2026-01-01 08:00 UTC);
        let until = now + time::Duration::hours(1);
        assert_eq!(
            window(now, Some(until), 3600),
            (until, until + time::Duration::hours(1))
        );
        assert_eq!(
            window(now, Some(now - time::Duration::hours(1)), 60),
            (now, now + time::Duration::minutes(1))
        );
    }
}
