//! Access reviews: the signed-in reviewer's inbox (items of active reviews assigned to them,
//! grouped by review, a page at a time), deciding one item or the selected items of a review
//! with one justification, and (admins) every campaign with its items.
//! [`crate::console::governance`] reads, authorises and decides through the governance API's
//! own functions.

use super::CsrfForm;
use crate::console::governance::{self, DISABLED, Inbox, ReviewerIdentity};
use crate::console::roles::{Action, authorize};
use crate::console::service::FieldError;
use crate::console::session::Session;
use crate::console::views::{Nav, csrf_field, dash, page, when};
use crate::console::{Console, ConsoleError};
use crate::governance::reviews::{ItemView, ReviewView};
use crate::governance::store::InboxFilter;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};

/// Longest justification the form takes (the API's limit).
const MAX_JUSTIFICATION: usize = 1000;

/// The names of the signed-in person, as stored with the session.
pub(crate) async fn identity(
    console: &Console,
    session: &Session,
) -> Result<ReviewerIdentity, ConsoleError> {
    Ok(console.db().session_names(session.id_hash()).await?)
}

fn disabled(session: &Session, nav: Nav, title: &str) -> Markup {
    page(
        session,
        nav,
        title,
        html! { p.notice role="status" { (DISABLED) } },
    )
}

/// Who holds the access, as the item names them (a link to the person when SCIM knows them).
fn holder(i: &ItemView) -> Markup {
    let name = i
        .user_principal_name
        .as_deref()
        .or(i.display_name.as_deref())
        .unwrap_or(&i.graph_user_id);
    html! {
        @match &i.scim_user_id {
            Some(id) => a href=(format!("/console/people/{id}")) { (name) },
            None => (name),
        }
    }
}

fn holder_text(i: &ItemView) -> String {
    i.user_principal_name
        .clone()
        .or_else(|| i.display_name.clone())
        .unwrap_or_else(|| i.graph_user_id.clone())
}

fn last_sign_in(i: &ItemView) -> Markup {
    html! { @match i.last_sign_in { Some(t) => (when(t)), None => "unknown" } }
}

fn decision_text(d: &str) -> &'static str {
    match d {
        "keep" => "keep",
        "revoke" => "revoke",
        _ => "—",
    }
}

/// One error of a field, with the id `aria-describedby` points at.
fn field_error(errors: &[FieldError], field: &str, id: &str) -> Markup {
    html! {
        @if let Some(e) = errors.iter().find(|e| e.field == field) {
            p.error id=(id) role="alert" { (e.message) }
        }
    }
}

fn has_error(errors: &[FieldError], field: &str) -> bool {
    errors.iter().any(|e| e.field == field)
}

/// The keep / revoke choice and the justification, with their errors (`suffix` keeps ids unique
/// when a page has several forms).
fn decision_fields(
    legend: &str,
    suffix: &str,
    decision: &str,
    justification: &str,
    errors: &[FieldError],
) -> Markup {
    let d_err = format!("decision-error{suffix}");
    let j_err = format!("justification-error{suffix}");
    let j_id = format!("justification{suffix}");
    html! {
        fieldset.choices aria-describedby=[has_error(errors, "decision").then_some(&d_err)] {
            legend { (legend) }
            div.field.inline {
                input type="radio" name="decision" value="keep" id=(format!("keep{suffix}")) required checked[decision == "keep"];
                label for=(format!("keep{suffix}")) { "Keep (approve the access)" }
            }
            div.field.inline {
                input type="radio" name="decision" value="revoke" id=(format!("revoke{suffix}")) checked[decision == "revoke"];
                label for=(format!("revoke{suffix}")) { "Revoke" }
            }
        }
        (field_error(errors, "decision", &d_err))
        div.field {
            label for=(j_id) { "Justification" }
            textarea id=(j_id) name="justification" required maxlength=(MAX_JUSTIFICATION)
                aria-invalid=[has_error(errors, "justification").then_some("true")]
                aria-describedby=[has_error(errors, "justification").then_some(&j_err)] { (justification) }
            (field_error(errors, "justification", &j_err))
        }
    }
}

/// The inbox page's query.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct InboxQuery {
    /// `decided` for the items one decided already; otherwise the undecided ones.
    show: String,
    /// The page after this `review/item` key.
    after: String,
}

impl InboxQuery {
    fn filter(&self) -> InboxFilter {
        if self.show == "decided" {
            InboxFilter::Decided
        } else {
            InboxFilter::Undecided
        }
    }
}

/// A bulk form sent back with its errors.
struct Rejected<'a> {
    review: &'a str,
    selected: &'a [String],
    decision: &'a str,
    justification: &'a str,
    errors: &'a [FieldError],
}

fn inbox_body(
    session: &Session,
    identity: &ReviewerIdentity,
    inbox: &Inbox,
    query: &InboxQuery,
    rejected: Option<&Rejected<'_>>,
) -> Markup {
    let filter = query.filter();
    let may_decide = authorize(&session.operator, Action::DecideReview).is_ok();
    let is_admin = authorize(&session.operator, Action::ViewCampaigns).is_ok();
    html! {
        nav.tabs aria-label="Items" { ul {
            li { a href="/console/reviews" aria-current=[(filter == InboxFilter::Undecided).then_some("page")] {
                "Waiting for your decision (" (inbox.undecided) ")" } }
            li { a href="/console/reviews?show=decided" aria-current=[(filter == InboxFilter::Decided).then_some("page")] {
                "Decided by you" } }
            @if is_admin { li { a href="/console/reviews/campaigns" { "All campaigns" } } }
        } }
        @if identity.names().is_empty() {
            p.notice role="status" {
                "Your sign-in carries no e-mail address or user name, and access reviews name their reviewers by those, so no item can be yours. Sign in through the identity provider to review."
            }
        } @else {
            p.hint { "Items of active access reviews whose reviewer is " (identity.names().join(" or ")) "." }
        }
        @if !may_decide && filter == InboxFilter::Undecided && inbox.total > 0 {
            p.notice role="status" { "Your role (" (session.operator.role) ") may not decide; an approver or an admin can." }
        }
        @if inbox.groups.is_empty() {
            p { @if filter == InboxFilter::Undecided { "Nothing waits for your decision." } @else { "You have decided nothing in an active review." } }
        }
        @for (review, items) in &inbox.groups {
            @let rej = rejected.filter(|r| r.review == review.id);
            @let errors = rej.map(|r| r.errors).unwrap_or(&[]);
            @let heading = format!("review-{}", review.id);
            section aria-labelledby=(heading) {
                h2 id=(heading) { (review.name) }
                p.hint { "Due " (when(review.due_at)) ". Undecided items take the campaign's default decision then." }
                form method="post" action=(format!("/console/reviews/{}/decisions", review.id)) {
                    (csrf_field(session))
                    div.table-wrap { table {
                        caption.vh { "Items of " (review.name) }
                        thead { tr {
                            @if may_decide { th scope="col" { span.vh { "Select" } } }
                            th scope="col" { "Person" } th scope="col" { "Access" }
                            th.optional scope="col" { "Last sign-in" } th scope="col" { "Recommendation" }
                            @if filter == InboxFilter::Decided { th scope="col" { "Decision" } }
                            th scope="col" { span.vh { "Open" } }
                        } }
                        tbody { @for i in items { tr {
                            @if may_decide { td {
                                input type="checkbox" name="item" value=(i.id) id=(format!("select-{}", i.id))
                                    checked[rej.is_some_and(|r| r.selected.contains(&i.id))]
                                    aria-label=(format!("Select {} – {}", holder_text(i), i.grant));
                            } }
                            td { (holder(i)) }
                            td { (i.grant) }
                            td.optional { (last_sign_in(i)) }
                            td { (i.recommendation) ": " (i.recommendation_reason) }
                            @if filter == InboxFilter::Decided { td {
                                (decision_text(i.decision.as_deref().unwrap_or(""))) ": " (i.justification.as_deref().unwrap_or(""))
                            } }
                            td { a href=(format!("/console/reviews/{}/items/{}", review.id, i.id))
                                aria-label=(format!("Decide {} – {}", holder_text(i), i.grant)) { @if i.decision.is_some() { "Change" } @else { "Decide" } } }
                        } } }
                    } }
                    @if may_decide {
                        (field_error(errors, "item", &format!("item-error-{}", review.id)))
                        (decision_fields("Decision for the selected items", &format!("-{}", review.id),
                            rej.map_or("", |r| r.decision), rej.map_or("", |r| r.justification), errors))
                        p { button type="submit" { "Decide the selected items" } }
                    }
                }
            }
        }
        @if let Some(next) = &inbox.next {
            nav.pager aria-label="Pages" {
                a href=(format!("/console/reviews?show={}&after={}", query.show, urlencoding(next))) { "Next page" }
            }
        }
    }
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /console/reviews`: the signed-in person's inbox.
pub async fn inbox(
    State(console): State<Console>,
    session: Session,
    Query(query): Query<InboxQuery>,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Reviews, "Access reviews"));
    }
    let identity = identity(&console, &session).await?;
    let inbox = governance::inbox(
        &console,
        &session.operator,
        &identity,
        query.filter(),
        &query.after,
    )
    .await?;
    Ok(page(
        &session,
        Nav::Reviews,
        "Access reviews",
        inbox_body(&session, &identity, &inbox, &query, None),
    ))
}

fn decided_page(session: &Session, review: &ReviewView, decided: &[ItemView]) -> Response {
    page(
        session,
        Nav::Reviews,
        "Decision recorded",
        html! {
            p.notice.ok role="status" {
                @if decided.len() == 1 { "Your decision is recorded" } @else { (decided.len()) " decisions are recorded" }
                " in " (review.spec.name) " (and in the change log, as yours)."
            }
            div.table-wrap { table {
                caption.vh { "Decisions recorded" }
                thead { tr { th scope="col" { "Person" } th scope="col" { "Access" } th scope="col" { "Decision" } th scope="col" { "Justification" } } }
                tbody { @for i in decided { tr {
                    td { (holder(i)) } td { (i.grant) }
                    td { (decision_text(i.decision.as_deref().unwrap_or(""))) }
                    td { (i.justification.as_deref().unwrap_or("")) }
                } } }
            } }
            p { (review.counts.undecided) " of " (review.counts.items) " items of this review are still undecided." }
            nav.actions aria-label="Next" {
                a href="/console/reviews" { "Back to your inbox" }
                a href="/console/reviews?show=decided" { "Your decided items" }
            }
        },
    )
    .into_response()
}

/// After a decision: the decided items as now stored.
async fn decided_items(
    console: &Console,
    session: &Session,
    review: &str,
    ids: &[String],
) -> Result<Vec<ItemView>, ConsoleError> {
    let gov =
        governance::governance(console).ok_or_else(|| ConsoleError::NotFound(DISABLED.into()))?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(row) = gov
            .store
            .review_item(&session.operator.tenant, review, id)
            .await?
        {
            out.push(ItemView::from(row));
        }
    }
    Ok(out)
}

/// `POST /console/reviews/{review}/decisions`: the selected items (`item`, repeated), one
/// decision and one justification for all; all or none.
pub async fn decide_selected(
    State(console): State<Console>,
    Path(review): Path<String>,
    posted: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let value = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let items: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "item")
        .map(|(_, v)| v.clone())
        .collect();
    let (decision, justification) = (value("decision"), value("justification"));
    let identity = identity(&console, &session).await?;
    let outcome = governance::decide(
        &console,
        &session.operator,
        &identity,
        &review,
        &items,
        &decision,
        &justification,
        session.request_id.as_deref(),
    )
    .await?;
    match outcome {
        Ok(view) => {
            let decided = decided_items(&console, &session, &review, &items).await?;
            Ok(decided_page(&session, &view, &decided))
        }
        Err(error) => {
            let errors = [error];
            let query = InboxQuery::default();
            let inbox = governance::inbox(
                &console,
                &session.operator,
                &identity,
                InboxFilter::Undecided,
                "",
            )
            .await?;
            let rejected = Rejected {
                review: &review,
                selected: &items,
                decision: &decision,
                justification: &justification,
                errors: &errors,
            };
            let body = inbox_body(&session, &identity, &inbox, &query, Some(&rejected));
            Ok((
                StatusCode::BAD_REQUEST,
                page(&session, Nav::Reviews, "Access reviews", body),
            )
                .into_response())
        }
    }
}

fn item_page(
    session: &Session,
    review: &ReviewView,
    item: &ItemView,
    decision: &str,
    justification: &str,
    errors: &[FieldError],
) -> Markup {
    let may_decide = authorize(&session.operator, Action::DecideReview).is_ok();
    html! {
        dl.attrs {
            dt { "Review" } dd { (review.spec.name) " (" (review.status) ", due " (when(review.spec.due_at)) ")" }
            dt { "Person" } dd { (holder(item)) }
            dt { "Access" } dd { (item.grant) }
            dt { "Granted by the rules" } dd { @if item.rule_derived { "yes: revoking it leaves an exception the bridge honours" } @else { "no" } }
            dt { "Last sign-in" } dd { (last_sign_in(item)) }
            dt { "Recommendation" } dd { (item.recommendation) ": " (item.recommendation_reason) }
            dt { "Reviewer" } dd { (item.reviewer) }
            dt { "Decision" } dd {
                @match &item.decision {
                    Some(d) => { (decision_text(d)) ", by " code { (item.decided_by.as_deref().unwrap_or("")) }
                        @if let Some(t) = item.decided_at { " at " (when(t)) } ": " (item.justification.as_deref().unwrap_or("")) },
                    None => "none yet",
                }
            }
            @if let Some(o) = &item.outcome { dt { "Outcome" } dd { (o) @if let Some(d) = &item.outcome_detail { ": " (d) } } }
        }
        @if review.status != "active" {
            p.notice role="status" { "This review is " (review.status) ": decisions are taken only while it is active." }
        } @else if !may_decide {
            p.notice role="status" { "Your role (" (session.operator.role) ") may not decide; an approver or an admin can." }
        } @else {
            h2 { @if item.decision.is_some() { "Change the decision" } @else { "Decide" } }
            form method="post" action=(format!("/console/reviews/{}/items/{}", review.id, item.id)) {
                (csrf_field(session))
                (decision_fields("Decision", "", decision, justification, errors))
                p { button type="submit" { "Record decision" } }
            }
        }
        p { a href="/console/reviews" { "Back to your inbox" } }
    }
}

/// `GET /console/reviews/{review}/items/{item}`: an item and its decision form.
pub async fn item(
    State(console): State<Console>,
    session: Session,
    Path((review, item)): Path<(String, String)>,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Reviews, "Access review item"));
    }
    let identity = identity(&console, &session).await?;
    let (view, item) =
        governance::item(&console, &session.operator, &identity, &review, &item).await?;
    let title = format!("{} – {}", holder_text(&item), item.grant);
    let body = item_page(
        &session,
        &view,
        &item,
        item.decision.as_deref().unwrap_or(""),
        "",
        &[],
    );
    Ok(page(&session, Nav::Reviews, &title, body))
}

/// The single decision form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct DecisionForm {
    decision: String,
    justification: String,
}

/// `POST /console/reviews/{review}/items/{item}`.
pub async fn decide_item(
    State(console): State<Console>,
    Path((review, item)): Path<(String, String)>,
    posted: CsrfForm<DecisionForm>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let identity = identity(&console, &session).await?;
    let items = [item.clone()];
    let outcome = governance::decide(
        &console,
        &session.operator,
        &identity,
        &review,
        &items,
        &form.decision,
        &form.justification,
        session.request_id.as_deref(),
    )
    .await?;
    match outcome {
        Ok(view) => {
            let decided = decided_items(&console, &session, &review, &items).await?;
            Ok(decided_page(&session, &view, &decided))
        }
        Err(error) => {
            let (view, shown) =
                governance::item(&console, &session.operator, &identity, &review, &item).await?;
            let title = format!("{} – {}", holder_text(&shown), shown.grant);
            let body = item_page(
                &session,
                &view,
                &shown,
                &form.decision,
                &form.justification,
                &[error],
            );
            Ok((
                StatusCode::BAD_REQUEST,
                page(&session, Nav::Reviews, &title, body),
            )
                .into_response())
        }
    }
}

fn counts(r: &ReviewView) -> Markup {
    html! {
        (r.counts.items) " items: " (r.counts.undecided) " undecided, " (r.counts.keep) " keep, "
        (r.counts.revoke) " revoke" @if r.counts.applied + r.counts.failed > 0 { "; " (r.counts.applied) " applied, " (r.counts.failed) " failed" }
    }
}

/// `GET /console/reviews/campaigns` (admins): every campaign.
pub async fn campaigns(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewCampaigns)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Reviews, "Review campaigns"));
    }
    let list = governance::campaigns(&console, &session.operator).await?;
    Ok(page(
        &session,
        Nav::Reviews,
        "Review campaigns",
        html! {
            p { "Access reviews of tenant " code { (session.operator.tenant) } ", newest first. Campaigns are created through the API (" code { "POST /governance/v1/reviews" } ") or " code { "scim-server governance review create" } "." }
            @if list.is_empty() { p { "No campaign yet." } } @else {
                div.table-wrap { table {
                    caption.vh { "Review campaigns" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Due" } th scope="col" { "Items" } } }
                    tbody { @for r in &list { tr {
                        td { a href=(format!("/console/reviews/campaigns/{}", r.id)) { (r.spec.name) } }
                        td { (r.status) }
                        td { (when(r.spec.due_at)) }
                        td { (counts(r)) }
                    } } }
                } }
            }
            p { a href="/console/reviews" { "Your inbox" } }
        },
    ))
}

/// The campaign page's query.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct CampaignQuery {
    after: String,
}

/// `GET /console/reviews/campaigns/{id}` (admins): a campaign and its items, a page at a time.
pub async fn campaign(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<CampaignQuery>,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewCampaigns)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Reviews, "Review campaign"));
    }
    let (r, items, next) =
        governance::campaign(&console, &session.operator, &id, &query.after).await?;
    Ok(page(
        &session,
        Nav::Reviews,
        &r.spec.name.clone(),
        html! {
            dl.attrs {
                dt { "Status" } dd { (r.status) }
                dt { "Created" } dd { (when(r.created_at)) " by " code { (r.created_by) } }
                dt { "Due" } dd { (when(r.spec.due_at)) }
                dt { "Default decision" } dd { (r.spec.default_decision.as_str()) @if r.spec.auto_apply { ", applied at the due date" } }
                dt { "Items" } dd { (counts(&r)) }
            }
            h2 { "Items" }
            div.table-wrap { table {
                caption.vh { "Items of " (r.spec.name) }
                thead { tr {
                    th scope="col" { "Person" } th scope="col" { "Access" } th scope="col" { "Reviewer" }
                    th.optional scope="col" { "Recommendation" } th scope="col" { "Decision" } th.optional scope="col" { "Outcome" }
                } }
                tbody { @for i in &items { tr {
                    td { (holder(i)) } td { (i.grant) } td { (i.reviewer) }
                    td.optional { (i.recommendation) }
                    td { @match &i.decision { Some(d) => { (decision_text(d)) " by " code { (i.decided_by.as_deref().unwrap_or("")) } }, None => (dash()) } }
                    td.optional { @match &i.outcome { Some(o) => (o), None => (dash()) } }
                } } }
            } }
            nav.pager aria-label="Pages" {
                @if !query.after.is_empty() { a href=(format!("/console/reviews/campaigns/{}", r.id)) { "First page" } }
                @if let Some(n) = next { a href=(format!("/console/reviews/campaigns/{}?after={}", r.id, urlencoding(&n))) { "Next page" } }
            }
            p { a href="/console/reviews/campaigns" { "All campaigns" } }
        },
    ))
}
