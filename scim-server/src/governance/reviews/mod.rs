//! Access reviews (certification campaigns), issue 11 item 1.
//!
//! A campaign names a scope (catalog groups, roles, licenses; optionally Graph groups outside the
//! rules, which are reviewable but never planned), who reviews (each user's manager from SCIM
//! `manager`, with a fallback when the manager is missing or is the user; or one named
//! reviewer), a start and a due date, reminders before the due date, a default decision for
//! items left undecided (`keep`, `revoke`, or `recommendation`), and whether results apply
//! automatically at the due date.
//!
//! Life: `scheduled` → (start: every current holder read from Graph becomes an item, each with a
//! reviewer and a recommendation; reviewers are notified) → `active` (decisions, with
//! justification) → (due date, or an operator closing it early) `completed` (undecided items
//! take the default) → (apply) `applied`: each revocation is a Graph removal carried out by the
//! bridge, and revoking a grant the rules derive leaves an *exception* the planner honours, so
//! `bridge reconcile --all` does not re-add it. Start, reminders and the due date are entries of
//! the durable [`schedule`](super::schedule).
//!
//! Recommendations (Entra's access reviews make the same two): revoke when Graph's
//! `signInActivity.lastSignInDateTime` is older than the campaign's inactivity threshold, or
//! when the rules no longer grant the access (or no SCIM user matches the Graph user); keep
//! otherwise. A holder without sign-in data is not called inactive.

use super::Governance;
use super::notify::{Notification, deliveries_json};
use super::store::{Decision, Event, ExceptionRow, ItemRow, ReviewRow, Task};
use crate::store::Load;
use scim_core::Error;
use scim_core::query::{ListQuery, QueryLimits, QueryParams};
use scim_graph_bridge::clock::{from_millis, to_millis};
use scim_graph_bridge::holders::{GrantTarget, Holder, holders};
use scim_graph_bridge::overrides::{Grant, GrantKind};
use scim_graph_bridge::plan::{LicenseRemove, Step};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;
mod apply;
mod model;
mod start;

pub use apply::{apply, due, exceptions, remove_exception};
pub use model::*;
pub use start::{remind, start};

fn spec_of(row: &ReviewRow) -> scim_core::Result<ReviewSpec> {
    serde_json::from_str(&row.spec).map_err(|e| {
        crate::fault::record(format!("review {} has an unreadable spec: {e}", row.id));
        Error::internal()
    })
}

async fn view(gov: &Governance, row: ReviewRow) -> scim_core::Result<ReviewView> {
    let items = gov
        .store
        .items(&row.tenant_id, &row.id, None, false)
        .await?;
    let mut counts = Counts {
        items: items.len() as u64,
        ..Counts::default()
    };
    for i in &items {
        match i.decision.as_deref() {
            None => counts.undecided += 1,
            Some("keep") => counts.keep += 1,
            _ => counts.revoke += 1,
        }
        match i.outcome.as_deref() {
            Some("failed") => counts.failed += 1,
            Some(_) => counts.applied += 1,
            None => {}
        }
    }
    Ok(ReviewView {
        spec: spec_of(&row)?,
        id: row.id,
        status: row.status,
        created_at: from_millis(row.created_at_ms),
        created_by: row.created_by,
        started_at: row.started_at_ms.map(from_millis),
        completed_at: row.completed_at_ms.map(from_millis),
        applied_at: row.applied_at_ms.map(from_millis),
        counts,
    })
}

fn check_text(field: &str, s: &str) -> scim_core::Result<()> {
    if s.trim().is_empty() {
        return Err(Error::invalid_value(format!("`{field}` must not be empty")));
    }
    if s.chars().count() > MAX_TEXT {
        return Err(Error::invalid_value(format!(
            "`{field}` is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// Checks a campaign against the clock and the rules' catalog; errors say what to change.
fn validate(gov: &Governance, spec: &ReviewSpec, now: OffsetDateTime) -> scim_core::Result<()> {
    check_text("name", &spec.name)?;
    if spec.scope.is_empty() || spec.scope.len() > MAX_SCOPE {
        return Err(Error::invalid_value(format!(
            "`scope` must list between 1 and {MAX_SCOPE} grants, e.g. [{{\"group\": \"eng\"}}]"
        )));
    }
    match &spec.reviewers {
        Reviewers::Manager { fallback } => check_text("reviewers.fallback", fallback)?,
        Reviewers::Named { reviewer } => check_text("reviewers.reviewer", reviewer)?,
    }
    let start = spec.starts_at.unwrap_or(now);
    if spec.due_at <= start {
        return Err(Error::invalid_value(
            "`dueAt` must be after `startsAt` (or now)",
        ));
    }
    if spec.due_at <= now {
        return Err(Error::invalid_value("`dueAt` is in the past"));
    }
    if spec.reminders_before_due_hours.len() > MAX_SCOPE {
        return Err(Error::invalid_value(format!(
            "`remindersBeforeDueHours` lists more than {MAX_SCOPE} reminders"
        )));
    }
    if let Some(d) = spec.inactivity_days
        && !(1..=3650).contains(&d)
    {
        return Err(Error::invalid_value(
            "`inactivityDays` must be between 1 and 3650",
        ));
    }
    let rules = gov.bridge()?.bridge.rules();
    for entry in &spec.scope {
        match entry.target() {
            GrantTarget::Catalog { grant } if !grant.in_catalog(&rules.catalog) => {
                return Err(Error::invalid_value(format!(
                    "`scope`: {grant} is not in the rules' catalog ([catalog.{}s])",
                    grant.kind
                )));
            }
            GrantTarget::GraphGroup { group_id } if uuid::Uuid::parse_str(&group_id).is_err() => {
                return Err(Error::invalid_value(format!(
                    "`scope`: graphGroup {group_id:?} is not a Graph object id (a GUID)"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates a campaign (starting it at once when its start is now or past). `actor` is who asks.
pub async fn create(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    spec: ReviewSpec,
) -> scim_core::Result<ReviewView> {
    let now = gov.clock.now();
    validate(gov, &spec, now)?;
    let id = uuid::Uuid::new_v4().to_string();
    let starts = spec.starts_at.unwrap_or(now);
    let row = ReviewRow {
        tenant_id: tenant.into(),
        id: id.clone(),
        name: spec.name.clone(),
        spec: serde_json::to_string(&spec).unwrap_or_default(),
        status: "scheduled".into(),
        starts_at_ms: to_millis(starts),
        due_at_ms: to_millis(spec.due_at),
        created_at_ms: to_millis(now),
        created_by: actor.into(),
        started_at_ms: None,
        completed_at_ms: None,
        applied_at_ms: None,
    };
    let mut tasks = vec![
        Task::new(tenant, TASK_START, &id, starts),
        Task::new(tenant, TASK_DUE, &id, spec.due_at),
    ];
    for h in &spec.reminders_before_due_hours {
        let at = spec.due_at - time::Duration::hours(i64::from(*h));
        if at > starts {
            tasks.push(Task::new(tenant, TASK_REMIND, &id, at));
        }
    }
    let event = Event::new(
        tenant,
        now,
        "review.created",
        &id,
        actor,
        serde_json::to_value(&spec).unwrap_or_default(),
    );
    gov.store.insert_review(&row, &tasks, &[event]).await?;
    if starts <= now {
        start(gov, tenant, &id).await?;
    }
    get(gov, tenant, &id).await
}

/// A review of the tenant.
pub async fn get(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<ReviewView> {
    let row = load(gov, tenant, id).await?;
    view(gov, row).await
}

async fn load(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<ReviewRow> {
    gov.store
        .review(tenant, id)
        .await?
        .ok_or_else(|| Error::not_found_detail(format!("no access review {id}")))
}

/// The tenant's reviews, newest first.
pub async fn list(gov: &Governance, tenant: &str) -> scim_core::Result<Vec<ReviewView>> {
    let mut out = Vec::new();
    for row in gov.store.reviews(tenant, 500).await? {
        out.push(view(gov, row).await?);
    }
    Ok(out)
}

/// A review's items, optionally one reviewer's or only undecided ones.
pub async fn items(
    gov: &Governance,
    tenant: &str,
    id: &str,
    reviewer: Option<&str>,
    undecided_only: bool,
) -> scim_core::Result<Vec<ItemView>> {
    load(gov, tenant, id).await?;
    Ok(gov
        .store
        .items(tenant, id, reviewer, undecided_only)
        .await?
        .into_iter()
        .map(ItemView::from)
        .collect())
}

/// Records decisions (one, or a bulk of up to [`MAX_DECISIONS`], all or none) on an active
/// review.
pub async fn decide(
    gov: &Governance,
    tenant: &str,
    id: &str,
    actor: &str,
    decisions: Vec<DecisionRequest>,
) -> scim_core::Result<ReviewView> {
    if decisions.is_empty() || decisions.len() > MAX_DECISIONS {
        return Err(Error::invalid_value(format!(
            "`decisions` must hold between 1 and {MAX_DECISIONS} decisions"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (n, d) in decisions.into_iter().enumerate() {
        let item = d
            .item_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid_value(format!("decision {n}: `itemId` is required")))?;
        if !matches!(d.decision.as_str(), "keep" | "revoke") {
            return Err(Error::invalid_value(format!(
                "decision {n}: `decision` must be \"keep\" or \"revoke\", not {:?}",
                d.decision
            )));
        }
        check_text("justification", &d.justification)
            .map_err(|e| Error::invalid_value(format!("decision {n}: {}", e.detail())))?;
        if !seen.insert(item.clone()) {
            return Err(Error::invalid_value(format!(
                "decision {n}: item {item} is decided twice in this request"
            )));
        }
        out.push(Decision {
            item_id: item,
            decision: d.decision,
            justification: d.justification,
            decided_by: actor.into(),
        });
    }
    let row = load(gov, tenant, id).await?;
    let now = gov.clock.now();
    let events: Vec<Event> = out
        .iter()
        .map(|d| {
            Event::new(
                tenant,
                now,
                "review.item.decided",
                id,
                actor,
                json!({"item": d.item_id, "decision": d.decision, "justification": d.justification}),
            )
        })
        .collect();
    if !gov.store.decide(tenant, id, &out, &events, now).await? {
        return Err(Error::conflict(format!(
            "the review is {}: decisions are taken only while it is active",
            row.status
        )));
    }
    get(gov, tenant, id).await
}
