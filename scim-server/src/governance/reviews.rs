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

/// Schedule kind: start a review.
pub const TASK_START: &str = "review.start";
/// Schedule kind: remind reviewers of undecided items.
pub const TASK_REMIND: &str = "review.remind";
/// Schedule kind: the due date (close, and apply when the campaign says so).
pub const TASK_DUE: &str = "review.due";

/// Most entries in a scope, reminders, or decisions in one request.
pub const MAX_SCOPE: usize = 50;
/// Most decisions in one bulk request.
pub const MAX_DECISIONS: usize = 1000;
const MAX_TEXT: usize = 1000;

/// One reviewed grant, as a campaign names it: `{"group": "eng"}`, `{"role": "helpdesk"}`,
/// `{"license": "e5"}` (catalog names), or `{"graphGroup": "<object id>"}` (outside the rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ScopeEntry {
    /// A catalog group.
    Group(String),
    /// A catalog directory role.
    Role(String),
    /// A catalog license.
    License(String),
    /// A Graph group outside the rules' catalog, by object id.
    GraphGroup(String),
}

impl ScopeEntry {
    fn target(&self) -> GrantTarget {
        let catalog = |kind, name: &String| GrantTarget::Catalog {
            grant: Grant::new(kind, name.clone()),
        };
        match self {
            ScopeEntry::Group(n) => catalog(GrantKind::Group, n),
            ScopeEntry::Role(n) => catalog(GrantKind::Role, n),
            ScopeEntry::License(n) => catalog(GrantKind::License, n),
            ScopeEntry::GraphGroup(id) => GrantTarget::GraphGroup {
                group_id: id.clone(),
            },
        }
    }
}

fn label(target: &GrantTarget) -> String {
    match target {
        GrantTarget::Catalog { grant } => grant.to_string(),
        GrantTarget::GraphGroup { group_id } => format!("Graph group {group_id}"),
    }
}

/// Who reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "camelCase", deny_unknown_fields)]
pub enum Reviewers {
    /// Each user's manager (SCIM enterprise `manager`); `fallback` when there is none, it is
    /// not a SCIM user, or it is the user.
    Manager {
        /// The fallback reviewer (a SCIM userName or an e-mail address).
        fallback: String,
    },
    /// One named reviewer for every item.
    Named {
        /// The reviewer (a SCIM userName or an e-mail address).
        reviewer: String,
    },
}

/// What undecided items become at the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum DefaultDecision {
    /// Keep the access.
    Keep,
    /// Revoke it.
    Revoke,
    /// Follow each item's recommendation.
    Recommendation,
}

impl DefaultDecision {
    fn as_str(self) -> &'static str {
        match self {
            DefaultDecision::Keep => "keep",
            DefaultDecision::Revoke => "revoke",
            DefaultDecision::Recommendation => "recommendation",
        }
    }
}

/// A campaign as created (`POST /governance/v1/reviews`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewSpec {
    /// A name reviewers recognise, e.g. "Q3 privileged groups".
    pub name: String,
    /// The grants under review.
    pub scope: Vec<ScopeEntry>,
    /// Who decides.
    pub reviewers: Reviewers,
    /// When it starts (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<OffsetDateTime>,
    /// When it is due.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub due_at: OffsetDateTime,
    /// Reminders of undecided items, in hours before the due date (e.g. `[72, 24]`).
    #[serde(default)]
    pub reminders_before_due_hours: Vec<u32>,
    /// What undecided items become at the due date.
    pub default_decision: DefaultDecision,
    /// Apply the results at the due date (otherwise an operator applies them).
    #[serde(default = "yes")]
    pub auto_apply: bool,
    /// Days without a sign-in after which revoking is recommended (default: `[governance]
    /// inactivity_days`).
    #[serde(default)]
    pub inactivity_days: Option<u32>,
}

fn yes() -> bool {
    true
}

/// A decision on an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    /// The item (in bulk requests; the path names it otherwise).
    #[serde(default)]
    pub item_id: Option<String>,
    /// `keep` or `revoke`.
    pub decision: String,
    /// Why (required).
    pub justification: String,
}

/// Item counts of a review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Items.
    pub items: u64,
    /// Not decided yet.
    pub undecided: u64,
    /// Decided keep.
    pub keep: u64,
    /// Decided revoke.
    pub revoke: u64,
    /// Applied (kept or revoked in Graph).
    pub applied: u64,
    /// Whose application failed (apply again to retry).
    pub failed: u64,
}

/// A review as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    /// Id.
    pub id: String,
    /// `scheduled`, `active`, `completed` or `applied`.
    pub status: String,
    /// The campaign's settings.
    pub spec: ReviewSpec,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// By which credential (or `cli`).
    pub created_by: String,
    /// Started.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    /// Closed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<OffsetDateTime>,
    /// Applied.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub applied_at: Option<OffsetDateTime>,
    /// Items by state.
    pub counts: Counts,
}

/// An item as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    /// Id.
    pub id: String,
    /// The grant, e.g. `group "eng"`.
    pub grant: String,
    /// The grant as a structure.
    #[schema(value_type = Object)]
    pub target: Value,
    /// The holder's Graph id.
    pub graph_user_id: String,
    /// Its UPN.
    pub user_principal_name: Option<String>,
    /// Its display name.
    pub display_name: Option<String>,
    /// The SCIM user it matches.
    pub scim_user_id: Option<String>,
    /// Who decides.
    pub reviewer: String,
    /// Last sign-in Graph reported.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sign_in: Option<OffsetDateTime>,
    /// Whether the rules derive the grant for the user.
    pub rule_derived: bool,
    /// `keep` or `revoke`.
    pub recommendation: String,
    /// Why.
    pub recommendation_reason: String,
    /// `keep`, `revoke`, or null.
    pub decision: Option<String>,
    /// The justification.
    pub justification: Option<String>,
    /// Who decided (`default`: the campaign's default).
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
    /// `kept`, `revoked` or `failed` once applied.
    pub outcome: Option<String>,
    /// Details (Graph's answer).
    pub outcome_detail: Option<String>,
}

impl From<ItemRow> for ItemView {
    fn from(i: ItemRow) -> Self {
        Self {
            grant: i.target_label,
            target: serde_json::from_str(&i.target).unwrap_or_default(),
            graph_user_id: i.graph_user_id,
            user_principal_name: i.user_principal_name,
            display_name: i.display_name,
            scim_user_id: i.scim_user_id,
            reviewer: i.reviewer,
            last_sign_in: i.last_sign_in_ms.map(from_millis),
            rule_derived: i.rule_derived != 0,
            recommendation: i.recommendation,
            recommendation_reason: i.recommendation_reason,
            decision: i.decision,
            justification: i.justification,
            decided_by: i.decided_by,
            decided_at: i.decided_at_ms.map(from_millis),
            outcome: i.outcome,
            outcome_detail: i.outcome_detail,
            id: i.id,
        }
    }
}

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

/// The SCIM user whose match attribute (the rules' `match.scim`) equals `value`: id and JSON.
async fn scim_user_by_match(
    gov: &Governance,
    tenant: &str,
    value: &str,
) -> scim_core::Result<Option<(String, Value)>> {
    let bridge = gov.bridge()?;
    let rt = gov
        .registry
        .resource_type("User")
        .ok_or_else(Error::internal)?;
    let literal = serde_json::to_string(value).unwrap_or_default();
    let params = QueryParams {
        filter: Some(format!(
            "{} eq {literal}",
            bridge.bridge.rules().match_spec.scim
        )),
        count: Some("2".into()),
        ..QueryParams::default()
    };
    let query = ListQuery::from_params(
        &gov.registry,
        rt,
        &params,
        QueryLimits {
            default_page_size: 2,
            max_page_size: 2,
        },
    )?;
    let page = gov.scim.list(tenant, rt, &query, Load::default()).await?;
    Ok(page
        .resources
        .into_iter()
        .next()
        .map(|r| (r.id.clone(), r.to_json(&gov.registry, None))))
}

/// A reviewer's name and e-mail from a SCIM user: its `userName`, and its primary (or first)
/// e-mail, else the `userName` when that is an address.
fn person(user: &Value) -> (String, Option<String>) {
    let name = user["userName"].as_str().unwrap_or_default().to_string();
    let emails = user["emails"].as_array().cloned().unwrap_or_default();
    let email = emails
        .iter()
        .find(|e| e["primary"].as_bool() == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e["value"].as_str().map(str::to_owned))
        .or_else(|| name.contains('@').then(|| name.clone()));
    (name, email)
}

fn named(reviewer: &str) -> (String, Option<String>) {
    (
        reviewer.to_string(),
        super::notify::plausible_address(reviewer).then(|| reviewer.to_string()),
    )
}

/// Who reviews `user`'s item: the manager when the campaign says so and there is one who is
/// not the user, else the fallback.
async fn reviewer_for(
    gov: &Governance,
    tenant: &str,
    reviewers: &Reviewers,
    user: Option<&(String, Value)>,
) -> scim_core::Result<(String, Option<String>)> {
    let fallback = match reviewers {
        Reviewers::Named { reviewer } => return Ok(named(reviewer)),
        Reviewers::Manager { fallback } => fallback,
    };
    let manager_id = user.and_then(|(_, u)| {
        u[scim_core::schema::ENTERPRISE_USER_URN]["manager"]["value"]
            .as_str()
            .map(str::to_owned)
    });
    let Some((user_id, _)) = user else {
        return Ok(named(fallback));
    };
    match manager_id {
        Some(m) if m != *user_id => {
            let dir = &gov.bridge()?.directory;
            match dir.get_user(tenant, &m).await {
                Ok(Some(manager)) => Ok(person(&manager)),
                Ok(None) => Ok(named(fallback)),
                Err(e) => Err(Error::new(503, None, format!("reading the manager: {e}"))),
            }
        }
        _ => Ok(named(fallback)),
    }
}

/// Starts a scheduled review: reads every holder from Graph, makes the items, notifies the
/// reviewers. `false` when it was not `scheduled` (already started: a repeated run is a no-op).
pub async fn start(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<bool> {
    let row = load(gov, tenant, id).await?;
    if row.status != "scheduled" {
        return Ok(false);
    }
    let spec = spec_of(&row)?;
    let bridge = gov.bridge()?;
    let client = bridge.bridge.client().ok_or_else(|| {
        Error::new(
            503,
            None,
            "the Graph bridge is in plan mode (no credentials): a review needs to read Graph",
        )
    })?;
    let rules = bridge.bridge.rules();
    let now = gov.clock.now();
    let inactivity = time::Duration::days(i64::from(
        spec.inactivity_days.unwrap_or(gov.config.inactivity_days),
    ));
    let mut items = Vec::new();
    for entry in &spec.scope {
        let target = entry.target();
        let found: Vec<Holder> = holders(client, rules, &target).await.map_err(|e| {
            Error::new(
                502,
                None,
                format!("reading {} in Graph: {e}", label(&target)),
            )
        })?;
        for h in found {
            let scim = match &h.match_value {
                Some(v) => scim_user_by_match(gov, tenant, v).await?,
                None => None,
            };
            let (reviewer, reviewer_email) =
                reviewer_for(gov, tenant, &spec.reviewers, scim.as_ref()).await?;
            let rule_derived = match (&target, &scim) {
                (GrantTarget::Catalog { grant }, Some((_, user))) => {
                    grant.held_by(&rules.evaluate(Some(user)))
                }
                _ => false,
            };
            let (recommendation, reason) =
                recommend(&target, &h, scim.is_some(), rule_derived, now, inactivity);
            items.push(ItemRow {
                tenant_id: tenant.into(),
                review_id: id.into(),
                id: format!(
                    "{:04}-{}",
                    items.len() + 1,
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
                target: serde_json::to_string(&target).unwrap_or_default(),
                target_label: label(&target),
                graph_user_id: h.graph_user_id.clone(),
                user_principal_name: h.user_principal_name.clone(),
                display_name: h.display_name.clone(),
                scim_user_id: scim.as_ref().map(|(id, _)| id.clone()),
                assignment_id: h.assignment_id.clone(),
                reviewer,
                reviewer_email,
                last_sign_in_ms: h.last_sign_in.map(to_millis),
                rule_derived: i64::from(rule_derived),
                recommendation: recommendation.into(),
                recommendation_reason: reason,
                decision: None,
                justification: None,
                decided_by: None,
                decided_at_ms: None,
                outcome: None,
                outcome_detail: None,
                applied_at_ms: None,
            });
        }
    }
    let event = Event::new(
        tenant,
        now,
        "review.started",
        id,
        "schedule",
        json!({"items": items.len()}),
    );
    if !gov
        .store
        .start_review(tenant, id, &items, &[], &[event], now)
        .await?
    {
        return Ok(false);
    }
    notify_reviewers(gov, &row, &spec, "review.assigned").await?;
    Ok(true)
}

fn recommend(
    target: &GrantTarget,
    h: &Holder,
    has_scim_user: bool,
    rule_derived: bool,
    now: OffsetDateTime,
    inactivity: time::Duration,
) -> (&'static str, String) {
    if let Some(last) = h.last_sign_in
        && now - last > inactivity
    {
        return (
            "revoke",
            format!(
                "no sign-in for {} days (last {})",
                (now - last).whole_days(),
                last.date()
            ),
        );
    }
    match target {
        GrantTarget::Catalog { .. } if !has_scim_user => {
            ("revoke", "no SCIM user matches this Graph user".into())
        }
        GrantTarget::Catalog { .. } if !rule_derived => {
            ("revoke", "the rules no longer grant it".into())
        }
        GrantTarget::Catalog { .. } => ("keep", "the rules grant it and the user signs in".into()),
        GrantTarget::GraphGroup { .. } => (
            "keep",
            match h.last_sign_in {
                Some(_) => "the user signs in".into(),
                None => "no sign-in data (not called inactive)".into(),
            },
        ),
    }
}

/// Notifies each reviewer with undecided items (`review.assigned` at start, `review.reminder`
/// later) and records the deliveries.
async fn notify_reviewers(
    gov: &Governance,
    row: &ReviewRow,
    spec: &ReviewSpec,
    kind: &str,
) -> scim_core::Result<usize> {
    let pending = gov.store.items(&row.tenant_id, &row.id, None, true).await?;
    let mut by_reviewer: BTreeMap<String, (Option<String>, usize)> = BTreeMap::new();
    for i in pending {
        let e = by_reviewer
            .entry(i.reviewer)
            .or_insert((i.reviewer_email, 0));
        e.1 += 1;
    }
    let now = gov.clock.now();
    let mut events = Vec::new();
    for (reviewer, (email, count)) in &by_reviewer {
        let n = Notification {
            kind: kind.into(),
            tenant: row.tenant_id.clone(),
            recipient: reviewer.clone(),
            email: email.clone(),
            review_id: row.id.clone(),
            review_name: spec.name.clone(),
            pending_items: *count,
            due_at: spec.due_at,
            review_url: gov.config.review_url.clone(),
        };
        let deliveries = gov.notifier.send(&n, now).await;
        events.push(Event::new(
            &row.tenant_id,
            now,
            "review.notified",
            &row.id,
            "schedule",
            json!({"type": kind, "reviewer": reviewer, "pendingItems": count,
                   "deliveries": deliveries_json(&deliveries)}),
        ));
    }
    gov.store.record(&events).await?;
    Ok(by_reviewer.len())
}

/// The reminder entry: reviewers with undecided items of an active review are told again.
pub async fn remind(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<usize> {
    let row = load(gov, tenant, id).await?;
    if row.status != "active" {
        return Ok(0);
    }
    let spec = spec_of(&row)?;
    notify_reviewers(gov, &row, &spec, "review.reminder").await
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

/// The due-date entry: closes an active review and, when the campaign says so, applies it.
pub async fn due(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<()> {
    let row = load(gov, tenant, id).await?;
    let spec = spec_of(&row)?;
    close(gov, &row, &spec, "schedule").await?;
    if spec.auto_apply {
        apply(gov, tenant, id, "schedule").await?;
    }
    Ok(())
}

async fn close(
    gov: &Governance,
    row: &ReviewRow,
    spec: &ReviewSpec,
    actor: &str,
) -> scim_core::Result<()> {
    if row.status != "active" {
        return Ok(());
    }
    let now = gov.clock.now();
    let event = Event::new(
        &row.tenant_id,
        now,
        "review.completed",
        &row.id,
        actor,
        json!({"defaultDecision": spec.default_decision.as_str()}),
    );
    gov.store
        .complete_review(
            &row.tenant_id,
            &row.id,
            spec.default_decision.as_str(),
            &[event],
            now,
        )
        .await?;
    Ok(())
}

/// Closes the review (undecided items take the default) if still active, then carries out its
/// decisions: each revocation is a Graph removal by the bridge, and revoking a grant the rules
/// derive records an exception. Items already applied are skipped, failed ones retried, so
/// applying again converges.
pub async fn apply(
    gov: &Governance,
    tenant: &str,
    id: &str,
    actor: &str,
) -> scim_core::Result<ReviewView> {
    let row = load(gov, tenant, id).await?;
    let spec = spec_of(&row)?;
    match row.status.as_str() {
        "scheduled" => {
            return Err(Error::conflict(
                "the review has not started: there is nothing to apply yet",
            ));
        }
        "applied" => return view(gov, row).await,
        "active" => close(gov, &row, &spec, actor).await?,
        _ => {}
    }
    let bridge = gov.bridge()?;
    let rules = bridge.bridge.rules();
    let mut failures = 0;
    for item in gov.store.items(tenant, id, None, false).await? {
        if matches!(item.outcome.as_deref(), Some("kept" | "revoked")) {
            continue;
        }
        let now = gov.clock.now();
        if item.decision.as_deref() != Some("revoke") {
            let e = Event::new(
                tenant,
                now,
                "review.item.applied",
                id,
                actor,
                json!({"item": item.id, "outcome": "kept"}),
            );
            gov.store
                .record_outcome(&item, "kept", "no change", None, &[e], now)
                .await?;
            continue;
        }
        let target: GrantTarget =
            serde_json::from_str(&item.target).map_err(|_| Error::internal())?;
        let step = removal_step(rules, &target, &item);
        let exception = match (&target, &item.scim_user_id) {
            (GrantTarget::Catalog { grant }, Some(user)) => {
                let derived = match bridge.directory.get_user(tenant, user).await {
                    Ok(u) => grant.held_by(&rules.evaluate(u.as_ref())),
                    Err(_) => item.rule_derived != 0,
                };
                derived.then(|| ExceptionRow {
                    tenant_id: tenant.into(),
                    id: uuid::Uuid::new_v4().to_string(),
                    scim_user_id: user.clone(),
                    grant_kind: grant.kind.as_str().into(),
                    grant_name: grant.name.clone(),
                    reason: format!("revoked in access review {id} ({})", spec.name),
                    review_id: Some(id.into()),
                    item_id: Some(item.id.clone()),
                    created_at_ms: to_millis(now),
                    created_by: actor.into(),
                    removed_at_ms: None,
                    removed_by: None,
                })
            }
            _ => None,
        };
        let (outcome, detail) = match step {
            None => (
                "failed",
                "the grant is no longer in the rules' catalog".to_string(),
            ),
            Some(step) => match bridge
                .bridge
                .apply_steps(&item.graph_user_id, vec![step])
                .await
            {
                None => ("failed", "the Graph bridge is in plan mode".to_string()),
                Some(report) if report.is_complete() => (
                    "revoked",
                    serde_json::to_string(&report.steps).unwrap_or_default(),
                ),
                Some(report) => ("failed", serde_json::to_string(&report).unwrap_or_default()),
            },
        };
        if outcome == "failed" {
            failures += 1;
        }
        let mut events = vec![Event::new(
            tenant,
            now,
            "review.item.applied",
            id,
            actor,
            json!({"item": item.id, "outcome": outcome, "graphUserId": item.graph_user_id,
                   "grant": item.target_label, "detail": detail}),
        )];
        if let Some(x) = &exception {
            events.push(Event::new(
                tenant,
                now,
                "exception.created",
                &x.id,
                actor,
                json!({"user": x.scim_user_id, "grantKind": x.grant_kind, "grantName": x.grant_name,
                       "review": id, "item": item.id}),
            ));
        }
        gov.store
            .record_outcome(&item, outcome, &detail, exception.as_ref(), &events, now)
            .await?;
    }
    if failures == 0 {
        let now = gov.clock.now();
        let e = Event::new(tenant, now, "review.applied", id, actor, json!({}));
        gov.store.mark_applied(tenant, id, &[e], now).await?;
    }
    get(gov, tenant, id).await
}

fn removal_step(
    rules: &scim_graph_bridge::rules::Rules,
    target: &GrantTarget,
    item: &ItemRow,
) -> Option<Step> {
    Some(match target {
        GrantTarget::GraphGroup { group_id } => Step::RemoveGroup {
            group: item.target_label.clone(),
            group_id: group_id.clone(),
        },
        GrantTarget::Catalog { grant } => match grant.kind {
            GrantKind::Group => Step::RemoveGroup {
                group: grant.name.clone(),
                group_id: rules.catalog.groups.get(&grant.name)?.clone(),
            },
            GrantKind::Role => Step::RemoveRole {
                role: grant.name.clone(),
                assignment_id: item.assignment_id.clone()?,
            },
            GrantKind::License => Step::AssignLicenses {
                add: Vec::new(),
                remove: vec![LicenseRemove {
                    name: grant.name.clone(),
                    sku_id: rules.catalog.licenses.get(&grant.name)?.sku_id.clone(),
                }],
            },
        },
    })
}

/// Exceptions of the tenant (active ones unless `all`), optionally one user's.
pub async fn exceptions(
    gov: &Governance,
    tenant: &str,
    user: Option<&str>,
    all: bool,
) -> scim_core::Result<Vec<ExceptionRow>> {
    Ok(gov.store.exceptions(tenant, user, all).await?)
}

/// Removes an exception (recorded) and queues its user for reconciliation, so the rules decide
/// again whether the grant comes back.
pub async fn remove_exception(
    gov: &Governance,
    tenant: &str,
    id: &str,
    actor: &str,
) -> scim_core::Result<ExceptionRow> {
    let now = gov.clock.now();
    let event = Event::new(tenant, now, "exception.removed", id, actor, json!({}));
    let removed = gov
        .store
        .remove_exception(tenant, id, actor, &[event], now)
        .await?
        .ok_or_else(|| Error::not_found_detail(format!("no active exception {id}")))?;
    if let Some(bridge) = &gov.bridge {
        bridge
            .store
            .enqueue(tenant, &removed.scim_user_id, now)
            .await
            .map_err(|e| Error::new(503, None, format!("queueing the user for the bridge: {e}")))?;
    }
    Ok(removed)
}
