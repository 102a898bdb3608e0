//! What the console's governance pages read and do, with no HTTP types: each function
//! authorises the operator for its [`Action`] first, then calls the same governance functions
//! the `/governance/v1` API calls ([`reviews::decide`], [`jit::request`], [`jit::approve`],
//! [`jit::deny`], [`hygiene::report`], [`evidence::export`]), so a console decision and an API
//! call cannot disagree. Where the API passes its credential as the actor (`token:<id>`), the
//! console passes the person's principal (`console:<subject>`): the governance event record
//! and the change-log event (principal `governance:console:<subject>`) name who decided.
//!
//! **Who a reviewer is.** Access reviews name each item's reviewer by a SCIM `userName` (a
//! manager's) or by the text a campaign names (a `userName` or an e-mail address), with the
//! reviewer's e-mail address when known; time-bound grant policies name approvers by SCIM id
//! or `userName`. A signed-in person is matched by the ID token's `email` and
//! `preferred_username` (kept with the session, [`ReviewerIdentity`]): their inbox holds the
//! items whose reviewer, or reviewer's e-mail address, equals either (ASCII case-insensitively);
//! their approval of a grant is the approval of the SCIM user whose `userName` is their
//! `preferred_username` (else their `email`), checked by the grant's policy as the API checks
//! a named approver. A one-time admin link names no one, so its inbox is empty.

use super::roles::{Action, Operator, authorize};
use super::service::{FieldError, log_action, permit, record_action};
use super::{Console, ConsoleError};
use crate::governance::evidence::{self, AnchoredEvidence};
use crate::governance::hygiene::{self, HygieneOptions, HygieneReport};
use crate::governance::jit::{self, GrantFilter, GrantRequest, JitGrant, JitPolicy};
use crate::governance::reviews::{self, DecisionRequest, ItemView, ReviewView};
use crate::governance::store::{InboxFilter, MAX_REVIEWER_NAMES};
use crate::governance::{Governance, store::ReviewRow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Rows per page of the inbox, a campaign's items, the grants, and the hygiene and evidence
/// lists.
pub const PAGE: usize = 25;

/// The names a signed-in person is known by to governance (the ID token's `email` and
/// `preferred_username`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewerIdentity {
    /// `email`.
    pub email: Option<String>,
    /// `preferred_username` (with Entra ID, the user principal name, which is usually the SCIM
    /// `userName` Entra provisions).
    pub username: Option<String>,
}

impl ReviewerIdentity {
    /// The distinct, trimmed names, `preferred_username` first, lower-cased (ASCII) for
    /// comparison.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in [&self.username, &self.email].into_iter().flatten() {
            let n = n.trim().to_ascii_lowercase();
            if !n.is_empty() && !out.contains(&n) && out.len() < MAX_REVIEWER_NAMES {
                out.push(n);
            }
        }
        out
    }

    /// Whether `reviewer` (or the reviewer's e-mail address) of an item names this person.
    pub fn is_reviewer(&self, reviewer: &str, reviewer_email: Option<&str>) -> bool {
        let names = self.names();
        let is = |s: &str| names.iter().any(|n| n.eq_ignore_ascii_case(s.trim()));
        is(reviewer) || reviewer_email.is_some_and(is)
    }
}

/// Governance of the server, when enabled (`None`: the pages say so).
pub fn governance(console: &Console) -> Option<&Governance> {
    console.app().governance.as_deref()
}

fn require(console: &Console) -> Result<&Governance, ConsoleError> {
    governance(console).ok_or_else(|| ConsoleError::NotFound(DISABLED.into()))
}

/// What the pages say when the server has no governance.
pub const DISABLED: &str = "Governance is not enabled on this server: it needs `[governance] \
                            enabled` (the default) and a database file or PostgreSQL in \
                            `database_url`.";

/// An API error as a form error: 4xx details name their field first (`justification: …`,
/// `duration: …`), which picks the form field; the rest goes to `general`.
fn field_error(e: &scim_core::Error, fields: &[&'static str], general: &'static str) -> FieldError {
    let detail = e.detail();
    let field = fields
        .iter()
        .find(|f| detail.starts_with(&format!("{f}:")) || detail.contains(&format!("`{f}`")))
        .copied()
        .unwrap_or(general);
    FieldError {
        field,
        message: detail.to_string(),
    }
}

// ----- access reviews ---------------------------------------------------------------------------

/// A review as the inbox groups items under it.
#[derive(Debug, Clone)]
pub struct ReviewHead {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Due date.
    pub due_at: OffsetDateTime,
}

impl From<&ReviewRow> for ReviewHead {
    fn from(r: &ReviewRow) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            due_at: scim_graph_bridge::clock::from_millis(r.due_at_ms),
        }
    }
}

/// A page of a reviewer's inbox, grouped by review.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Items in the inbox in all (with this filter).
    pub total: u64,
    /// Undecided items (for the tab's label).
    pub undecided: u64,
    /// The page, by review.
    pub groups: Vec<(ReviewHead, Vec<ItemView>)>,
    /// The next page's `after=` key, when there is one.
    pub next: Option<String>,
}

/// A page of the items of active reviews assigned to the signed-in person.
pub async fn inbox(
    console: &Console,
    operator: &Operator,
    identity: &ReviewerIdentity,
    filter: InboxFilter,
    after: &str,
) -> Result<Inbox, ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    let gov = require(console)?;
    let names = identity.names();
    let tenant = &operator.tenant;
    let after = after.split_once('/');
    let limit = i64::try_from(PAGE).unwrap_or(25) + 1;
    let mut rows = gov
        .store
        .inbox_items(tenant, &names, filter, after, limit)
        .await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|r| format!("{}/{}", r.review_id, r.id));
    let mut groups: Vec<(ReviewHead, Vec<ItemView>)> = Vec::new();
    for row in rows {
        if groups.last().is_none_or(|(h, _)| h.id != row.review_id) {
            let Some(review) = gov.store.review(tenant, &row.review_id).await? else {
                continue;
            };
            groups.push(((&review).into(), Vec::new()));
        }
        if let Some((_, items)) = groups.last_mut() {
            items.push(ItemView::from(row));
        }
    }
    Ok(Inbox {
        total: gov.store.inbox_count(tenant, &names, filter).await?,
        undecided: gov
            .store
            .inbox_count(tenant, &names, InboxFilter::Undecided)
            .await?,
        groups,
        next,
    })
}

/// One item of a review, with its review, for the decision page; only its reviewer (or an
/// admin, who may see every campaign) may open it.
pub async fn item(
    console: &Console,
    operator: &Operator,
    identity: &ReviewerIdentity,
    review: &str,
    item: &str,
) -> Result<(ReviewView, ItemView), ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    let gov = require(console)?;
    let view = reviews::get(gov, &operator.tenant, review).await?;
    let row = gov
        .store
        .review_item(&operator.tenant, review, item)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("review {review} has no item {item}")))?;
    if !identity.is_reviewer(&row.reviewer, row.reviewer_email.as_deref()) {
        authorize(operator, Action::ViewCampaigns).map_err(|_| {
            ConsoleError::Refused(format!(
                "this item is assigned to {}, not to you: only its reviewer decides it",
                row.reviewer
            ))
        })?;
    }
    Ok((view, ItemView::from(row)))
}

/// Records one decision (`keep` or `revoke`, with a justification) for each of `items` of
/// `review`, all or none, through [`reviews::decide`] (the API's bulk decision). Every item must
/// be assigned to the signed-in person: a review's point is that its reviewer decides, so an
/// admin decides only their own items too. Bad input is a [`FieldError`] (`item`, `decision`,
/// `justification`); nothing is recorded then.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    console: &Console,
    operator: &Operator,
    identity: &ReviewerIdentity,
    review: &str,
    items: &[String],
    decision: &str,
    justification: &str,
    request_id: Option<&str>,
) -> Result<Result<ReviewView, FieldError>, ConsoleError> {
    let permit = permit(console, operator, Action::DecideReview, review, request_id).await?;
    let gov = require(console)?;
    if items.is_empty() {
        return Ok(Err(FieldError {
            field: "item",
            message: "select at least one item to decide".into(),
        }));
    }
    if items.len() > reviews::MAX_DECISIONS {
        return Ok(Err(FieldError {
            field: "item",
            message: format!("at most {} items at once", reviews::MAX_DECISIONS),
        }));
    }
    for id in items {
        let row = gov
            .store
            .review_item(&operator.tenant, review, id)
            .await?
            .ok_or_else(|| ConsoleError::NotFound(format!("review {review} has no item {id}")))?;
        if !identity.is_reviewer(&row.reviewer, row.reviewer_email.as_deref()) {
            log_action(
                console,
                operator,
                Action::DecideReview,
                review,
                "refused: not the reviewer",
                request_id,
            )
            .await?;
            return Err(ConsoleError::Refused(format!(
                "item {id} is assigned to {}, not to you: only its reviewer decides it",
                row.reviewer
            )));
        }
    }
    let decisions = items
        .iter()
        .map(|id| DecisionRequest {
            item_id: Some(id.clone()),
            decision: decision.to_string(),
            justification: justification.to_string(),
        })
        .collect();
    match reviews::decide(
        gov,
        &operator.tenant,
        review,
        &operator.principal(),
        decisions,
    )
    .await
    {
        Ok(view) => {
            record_action(console, &permit, review, request_id).await?;
            Ok(Ok(view))
        }
        Err(e) if matches!(e.status(), 400 | 409) => Ok(Err(field_error(
            &e,
            &["justification", "decision"],
            "decision",
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The tenant's campaigns, newest first (admins).
pub async fn campaigns(
    console: &Console,
    operator: &Operator,
) -> Result<Vec<ReviewView>, ConsoleError> {
    authorize(operator, Action::ViewCampaigns)?;
    Ok(reviews::list(require(console)?, &operator.tenant).await?)
}

/// A campaign with a page of its items (admins).
pub async fn campaign(
    console: &Console,
    operator: &Operator,
    id: &str,
    after: &str,
) -> Result<(ReviewView, Vec<ItemView>, Option<String>), ConsoleError> {
    authorize(operator, Action::ViewCampaigns)?;
    let gov = require(console)?;
    let view = reviews::get(gov, &operator.tenant, id).await?;
    let limit = i64::try_from(PAGE).unwrap_or(25) + 1;
    let mut rows = gov
        .store
        .review_items_page(&operator.tenant, id, Some(after), limit)
        .await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let next = rows.last().filter(|_| more).map(|r| r.id.clone());
    Ok((view, rows.into_iter().map(ItemView::from).collect(), next))
}

// ----- time-bound grants ------------------------------------------------------------------------

/// A page of time-bound grants.
#[derive(Debug, Clone)]
pub struct Grants {
    /// The grants of this page, newest first, each with its person's `userName` when known.
    pub rows: Vec<(JitGrant, Option<String>)>,
    /// Grants listed in all (the API lists at most 500).
    pub total: usize,
    /// 1-based index of the first row.
    pub start: usize,
    /// The requestable grants (`[[governance.jit.policies]]`).
    pub policies: Vec<JitPolicy>,
}

/// The statuses the grants page filters by, with their labels.
pub const GRANT_STATUSES: &[(&str, &str)] = &[
    ("pending", "Pending"),
    ("active", "Active"),
    ("expired", "Expired"),
    ("", "All"),
];

/// Time-bound grants of the tenant in `status` (all when empty), through [`jit::list`].
pub async fn grants(
    console: &Console,
    operator: &Operator,
    status: &str,
    start: usize,
) -> Result<Grants, ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    let gov = require(console)?;
    let filter = GrantFilter {
        user: None,
        status: (!status.is_empty()).then(|| status.to_string()),
    };
    let all = jit::list(gov, &operator.tenant, &filter).await?;
    let start = start.max(1);
    let mut rows = Vec::new();
    for g in all.iter().skip(start - 1).take(PAGE) {
        rows.push((
            g.clone(),
            user_name(console, &operator.tenant, &g.user).await?,
        ));
    }
    Ok(Grants {
        rows,
        total: all.len(),
        start,
        policies: gov.config.jit.policies.clone(),
    })
}

/// The `userName` of SCIM user `id`, when there is one.
async fn user_name(
    console: &Console,
    tenant: &str,
    id: &str,
) -> Result<Option<String>, ConsoleError> {
    let app = console.app();
    let Some(rt) = app.registry.resource_type("User") else {
        return Ok(None);
    };
    Ok(app
        .store
        .get(tenant, rt, id, crate::store::Load::default())
        .await?
        .and_then(|r| {
            r.to_json(&app.registry, None)["userName"]
                .as_str()
                .map(str::to_string)
        }))
}

/// One grant with its person's `userName`.
pub async fn grant(
    console: &Console,
    operator: &Operator,
    id: &str,
) -> Result<(JitGrant, Option<String>), ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    let g = jit::get(require(console)?, &operator.tenant, id).await?;
    let name = user_name(console, &operator.tenant, &g.user).await?;
    Ok((g, name))
}

/// A request as the form sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct GrantForm {
    /// The person: a SCIM `userName` (or id).
    pub user: String,
    /// `kind:name` of a requestable grant.
    pub grant: String,
    /// ISO 8601 (`PT4H`).
    pub duration: String,
    /// Why.
    pub justification: String,
}

/// Asks for a time-bound grant through [`jit::request`] (the policy decides whether it waits
/// for an approver or is granted at once). A refusal of the input is a [`FieldError`]
/// (`user`, `grant`, `duration`, `justification`).
pub async fn request_grant(
    console: &Console,
    operator: &Operator,
    form: &GrantForm,
    request_id: Option<&str>,
) -> Result<Result<JitGrant, FieldError>, ConsoleError> {
    let permit = permit(console, operator, Action::RequestGrant, "-", request_id).await?;
    let gov = require(console)?;
    let body = GrantRequest {
        user: form.user.trim().to_string(),
        grant: form.grant.trim().to_string(),
        duration: form.duration.trim().to_string(),
        justification: form.justification.clone(),
        requested_by: None,
    };
    match jit::request(gov, &operator.tenant, &operator.principal(), body).await {
        Ok(g) => {
            record_action(console, &permit, &g.id, request_id).await?;
            Ok(Ok(g))
        }
        Err(e) if matches!(e.status(), 400 | 404 | 409) => Ok(Err(field_error(
            &e,
            &["user", "grant", "duration", "justification"],
            "grant",
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Approves (or denies) a pending grant as the signed-in person, through [`jit::approve`] /
/// [`jit::deny`]: the approver is the SCIM user named by their `preferred_username`, else their
/// `email` (see the module doc); the grant's policy decides whether they may (403 otherwise).
/// A refusal of the input is a [`FieldError`] (`note`, or `decision` for a grant decided
/// meanwhile or a person no SCIM user matches).
pub async fn decide_grant(
    console: &Console,
    operator: &Operator,
    identity: &ReviewerIdentity,
    id: &str,
    approve: bool,
    note: &str,
    request_id: Option<&str>,
) -> Result<Result<JitGrant, FieldError>, ConsoleError> {
    let permit = permit(console, operator, Action::DecideGrant, id, request_id).await?;
    let gov = require(console)?;
    let names = identity.names();
    if names.is_empty() {
        return Ok(Err(FieldError {
            field: "decision",
            message: "your sign-in carries no e-mail address or user name, so no SCIM user can \
                      be named as the approver; sign in through the identity provider"
                .into(),
        }));
    }
    let mut outcome = None;
    for name in &names {
        let decision = jit::Decision {
            approver: name.clone(),
            note: (!note.trim().is_empty()).then(|| note.to_string()),
        };
        let principal = operator.principal();
        let result = if approve {
            jit::approve(gov, &operator.tenant, &principal, id, decision).await
        } else {
            jit::deny(gov, &operator.tenant, &principal, id, decision).await
        };
        match result {
            // This name is no SCIM user: try the person's other name.
            Err(e) if e.status() == 400 && e.detail().starts_with("approver: no SCIM user") => {
                outcome = Some(Err(e));
            }
            other => {
                outcome = Some(other);
                break;
            }
        }
    }
    match outcome.unwrap_or_else(|| Err(scim_core::Error::internal())) {
        Ok(g) => {
            record_action(console, &permit, id, request_id).await?;
            Ok(Ok(g))
        }
        Err(e) if e.status() == 403 => {
            log_action(
                console,
                operator,
                Action::DecideGrant,
                id,
                "refused: not an approver of the policy",
                request_id,
            )
            .await?;
            Err(ConsoleError::Refused(e.detail().to_string()))
        }
        Err(e) if matches!(e.status(), 400 | 409) => {
            Ok(Err(field_error(&e, &["note"], "decision")))
        }
        Err(e) => Err(e.into()),
    }
}

// ----- hygiene and evidence ---------------------------------------------------------------------

/// The latest hygiene report of each tenant this console made (a report reads every user from
/// SCIM and Microsoft Graph, so a page view does not make one; "Make a new report" does).
#[derive(Debug, Default)]
pub struct HygieneCache(Mutex<HashMap<String, Arc<HygieneReport>>>);

/// The hygiene page's report, or why there is none.
#[derive(Debug, Clone)]
pub enum Hygiene {
    /// The latest report.
    Report(Arc<HygieneReport>),
    /// No report could be made (no Graph bridge, Graph unreachable): the reason.
    Unavailable(String),
}

/// The latest hygiene report of the tenant, made now through [`hygiene::report`] (as `GET
/// /governance/v1/hygiene` makes it, with the default thresholds) when there is none yet or
/// `refresh` asks for a new one.
pub async fn hygiene(
    console: &Console,
    operator: &Operator,
    refresh: bool,
) -> Result<Hygiene, ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    let gov = require(console)?;
    let cache = console.hygiene_cache();
    let cached = cache
        .0
        .lock()
        .ok()
        .and_then(|m| m.get(&operator.tenant).cloned());
    if let Some(report) = cached.filter(|_| !refresh) {
        return Ok(Hygiene::Report(report));
    }
    match hygiene::report(gov, &operator.tenant, HygieneOptions::default()).await {
        Ok(report) => {
            let report = Arc::new(report);
            if let Ok(mut m) = cache.0.lock() {
                m.insert(operator.tenant.clone(), report.clone());
            }
            Ok(Hygiene::Report(report))
        }
        Err(e) if matches!(e.status(), 409 | 502 | 503) => {
            Ok(Hygiene::Unavailable(e.detail().to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A period of leaver evidence as the page's form sends it (dates, `YYYY-MM-DD` or RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Period {
    /// Start (inclusive); default 30 days ago.
    pub from: String,
    /// End (exclusive); default tomorrow.
    pub to: String,
    /// 1-based index of the first row shown.
    pub start: usize,
    /// `json`, `csv` or `html` (downloads).
    pub format: String,
}

impl Period {
    /// The period's bounds, or a [`FieldError`] naming `from` or `to`.
    pub fn bounds(
        &self,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, OffsetDateTime), FieldError> {
        let today = now.date().midnight().assume_utc();
        let parse = |field: &'static str, text: &str, default: OffsetDateTime| {
            if text.trim().is_empty() {
                return Ok(default);
            }
            crate::governance::http_access::parse_time(field, text.trim()).map_err(|e| FieldError {
                field,
                message: e.detail().to_string(),
            })
        };
        let from = parse("from", &self.from, today - time::Duration::days(30))?;
        let to = parse("to", &self.to, today + time::Duration::days(1))?;
        if to <= from {
            return Err(FieldError {
                field: "to",
                message: "to: must be after from".into(),
            });
        }
        Ok((from, to))
    }
}

/// The leaver evidence of revocations completed in the period, through [`evidence::export`]
/// (which builds what is pending first, as the API does).
pub async fn evidence(
    console: &Console,
    operator: &Operator,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<AnchoredEvidence>, ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    Ok(evidence::export(require(console)?, &operator.tenant, from, to).await?)
}

// ----- the dashboard ----------------------------------------------------------------------------

/// The dashboard's governance figures.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Review items waiting for the signed-in person's decision.
    pub awaiting_me: u64,
    /// Time-bound grants waiting for an approver (the tenant's).
    pub pending_grants: usize,
}

/// The dashboard's figures, `None` without governance.
pub async fn summary(
    console: &Console,
    operator: &Operator,
    identity: &ReviewerIdentity,
) -> Result<Option<Summary>, ConsoleError> {
    authorize(operator, Action::ViewGovernance)?;
    let Some(gov) = governance(console) else {
        return Ok(None);
    };
    let pending = GrantFilter {
        user: None,
        status: Some("pending".into()),
    };
    Ok(Some(Summary {
        awaiting_me: gov
            .store
            .inbox_count(&operator.tenant, &identity.names(), InboxFilter::Undecided)
            .await?,
        pending_grants: jit::list(gov, &operator.tenant, &pending).await?.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reviewer_is_matched_by_either_name_in_any_ascii_case() {
        let id = ReviewerIdentity {
            email: Some("Mia@Contoso.example".into()),
            username: Some("mia.k@contoso.example".into()),
        };
        assert_eq!(id.names(), ["mia.k@contoso.example", "mia@contoso.example"]);
        assert!(id.is_reviewer("MIA@contoso.example", None));
        assert!(id.is_reviewer("Mia K", Some("mia.k@CONTOSO.example")));
        assert!(!id.is_reviewer("bob@contoso.example", Some("bob@contoso.example")));
        assert!(ReviewerIdentity::default().names().is_empty());
        assert!(!ReviewerIdentity::default().is_reviewer("", Some("")));
    }

    #[test]
    fn api_errors_find_their_field() {
        let e = scim_core::Error::invalid_value("decision 0: `justification` must not be empty");
        assert_eq!(
            field_error(&e, &["justification", "decision"], "decision").field,
            "justification"
        );
        let e = scim_core::Error::invalid_value("duration: PT9H is longer than the policy allows");
        assert_eq!(
            field_error(&e, &["user", "duration"], "grant").field,
            "duration"
        );
        let e = scim_core::Error::conflict("the review is completed");
        assert_eq!(
            field_error(&e, &["justification"], "decision").field,
            "decision"
        );
    }

    #[test]
    fn a_period_defaults_to_the_last_thirty_days_and_names_a_bad_bound() {
        let now = time::macros::datetime!(2026-03-15 10:00 UTC);
        let (from, to) = Period::default().bounds(now).unwrap();
        assert_eq!(from, time::macros::datetime!(2026-02-13 00:00 UTC));
        assert_eq!(to, time::macros::datetime!(2026-03-16 00:00 UTC));
        let bad = Period {
            from: "yesterday".into(),
            ..Period::default()
        };
        assert_eq!(bad.bounds(now).unwrap_err().field, "from");
        let reversed = Period {
            from: "2026-03-10".into(),
            to: "2026-03-01".into(),
            ..Period::default()
        };
        assert_eq!(reversed.bounds(now).unwrap_err().field, "to");
    }
}
