//! Time-bound (JIT) grants (list by status, request, approve or deny with the expiry shown),
//! the hygiene report (stale and orphaned accounts, a page at a time) and leaver evidence (a
//! period's records, downloads as the API offers them: JSON, CSV, printable HTML).
//! [`crate::console::governance`] reads, authorises and acts through the governance API's own
//! functions.

use super::CsrfForm;
use super::reviews::identity;
use crate::console::governance::{self, GRANT_STATUSES, GrantForm, Grants, Hygiene, PAGE, Period};
use crate::console::roles::{Action, authorize};
use crate::console::service::FieldError;
use crate::console::session::Session;
use crate::console::views::{Nav, csrf_field, dash, page, when};
use crate::console::{Console, ConsoleError};
use crate::governance::evidence;
use crate::governance::jit::{GrantStatus, JitGrant};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{Markup, html};

fn disabled(session: &Session, nav: Nav, title: &str) -> Markup {
    page(
        session,
        nav,
        title,
        html! { p.notice role="status" { (governance::DISABLED) } },
    )
}

fn error_of<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

/// A labelled text input with its hint and error.
fn input(
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
    errors: &[FieldError],
) -> Markup {
    let error = error_of(errors, name);
    let described: Vec<String> = [
        hint.map(|_| format!("{name}-hint")),
        error.map(|_| format!("{name}-error")),
    ]
    .into_iter()
    .flatten()
    .collect();
    html! {
        div.field {
            label for=(name) { (label) }
            @if let Some(h) = hint { p.hint id=(format!("{name}-hint")) { (h) } }
            input id=(name) name=(name) type="text" value=(value) autocomplete="off"
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[(!described.is_empty()).then(|| described.join(" "))];
            @if let Some(e) = error { p.error id=(format!("{name}-error")) role="alert" { (e.message) } }
        }
    }
}

// ----- time-bound grants ------------------------------------------------------------------------

fn person(g: &JitGrant, name: Option<&str>) -> Markup {
    html! { a href=(format!("/console/people/{}", g.user)) { (name.unwrap_or(&g.user)) } }
}

fn expiry(g: &JitGrant) -> Markup {
    html! {
        @match (g.status, g.expires_at) {
            (GrantStatus::Pending, _) => { (g.duration) " from approval" },
            (GrantStatus::Active, Some(end)) => { "expires " (when(end)) },
            (_, Some(end)) => { "ended " (when(end)) },
            _ => (dash()),
        }
    }
}

fn request_form(
    session: &Session,
    grants: &Grants,
    form: &GrantForm,
    errors: &[FieldError],
) -> Markup {
    let grant_error = error_of(errors, "grant");
    let just_error = error_of(errors, "justification");
    html! {
        form method="post" action="/console/jit" {
            (csrf_field(session))
            (input("user", "Person (user name)", &form.user, None, errors))
            div.field {
                label for="grant" { "Access" }
                select #grant name="grant" aria-invalid=[grant_error.map(|_| "true")]
                    aria-describedby=[grant_error.map(|_| "grant-error")] {
                    @for p in &grants.policies {
                        option value=(p.grant) selected[form.grant == p.grant] {
                            (p.grant) " (at most " (p.max_duration) ", approval: "
                            (format!("{:?}", p.approval).to_lowercase()) ")"
                        }
                    }
                }
                @if let Some(e) = grant_error { p.error #grant-error role="alert" { (e.message) } }
            }
            (input("duration", "Duration", &form.duration, Some("ISO 8601, such as PT4H (four hours) or P1D (a day); at most the access's maximum."), errors))
            div.field {
                label for="justification" { "Justification" }
                textarea #justification name="justification" required maxlength="2000"
                    aria-invalid=[just_error.map(|_| "true")]
                    aria-describedby=[just_error.map(|_| "justification-error")] { (form.justification) }
                @if let Some(e) = just_error { p.error #justification-error role="alert" { (e.message) } }
            }
            p { button type="submit" { "Request access" } }
        }
    }
}

/// The grants page's query.
#[derive(Debug, serde::Deserialize)]
#[serde(default)]
pub struct GrantsQuery {
    status: String,
    start: usize,
}

impl Default for GrantsQuery {
    fn default() -> Self {
        Self {
            status: "pending".into(),
            start: 1,
        }
    }
}

fn grants_body(
    session: &Session,
    query: &GrantsQuery,
    grants: &Grants,
    form: &GrantForm,
    errors: &[FieldError],
) -> Markup {
    let may_request = authorize(&session.operator, Action::RequestGrant).is_ok();
    let may_decide = authorize(&session.operator, Action::DecideGrant).is_ok();
    let shown_to = grants.start + grants.rows.len().saturating_sub(1);
    html! {
        nav.tabs aria-label="Status" { ul { @for (status, label) in GRANT_STATUSES {
            li { a href=(format!("/console/jit?status={status}")) aria-current=[(query.status == *status).then_some("page")] { (label) } }
        } } }
        @if grants.rows.is_empty() {
            p { "No time-bound grant here." }
        } @else {
            p { "Showing " (grants.start) "–" (shown_to) " of " (grants.total) "." }
            div.table-wrap { table {
                caption.vh { "Time-bound grants" }
                thead { tr {
                    th scope="col" { "Person" } th scope="col" { "Access" } th scope="col" { "Status" }
                    th scope="col" { "Expiry" } th.optional scope="col" { "Requested" } th.optional scope="col" { "Justification" }
                    th scope="col" { span.vh { "Open" } }
                } }
                tbody { @for (g, name) in &grants.rows { tr {
                    td { (person(g, name.as_deref())) }
                    td { (g.grant) }
                    td { (g.status.as_str()) }
                    td { (expiry(g)) }
                    td.optional { (when(g.requested_at)) }
                    td.optional { (g.justification) }
                    td { a href=(format!("/console/jit/{}", g.id))
                        aria-label=(format!("{} {} for {}", if g.status == GrantStatus::Pending && may_decide { "Approve or deny" } else { "Open" }, g.grant, name.as_deref().unwrap_or(&g.user))) {
                        @if g.status == GrantStatus::Pending && may_decide { "Approve or deny" } @else { "Open" }
                    } }
                } } }
            } }
            nav.pager aria-label="Pages" {
                @if grants.start > 1 { a href=(format!("/console/jit?status={}&start={}", query.status, grants.start.saturating_sub(PAGE).max(1))) { "Previous page" } }
                @if shown_to < grants.total { a href=(format!("/console/jit?status={}&start={}", query.status, grants.start + PAGE)) { "Next page" } }
            }
        }
        h2 { "Request time-bound access" }
        @if grants.policies.is_empty() {
            p { "No access can be requested for a time: the server has no " code { "[[governance.jit.policies]]" } "." }
        } @else if may_request {
            (request_form(session, grants, form, errors))
        } @else {
            p.notice role="status" { "Your role (" (session.operator.role) ") may not request access; an operator can." }
        }
    }
}

/// `GET /console/jit`.
pub async fn grants(
    State(console): State<Console>,
    session: Session,
    Query(query): Query<GrantsQuery>,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Grants, "Time-bound access"));
    }
    let list = governance::grants(&console, &session.operator, &query.status, query.start).await?;
    let form = GrantForm {
        duration: "PT4H".into(),
        ..GrantForm::default()
    };
    Ok(page(
        &session,
        Nav::Grants,
        "Time-bound access",
        grants_body(&session, &query, &list, &form, &[]),
    ))
}

/// `POST /console/jit`: a request.
pub async fn request(
    State(console): State<Console>,
    posted: CsrfForm<GrantForm>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let outcome = governance::request_grant(
        &console,
        &session.operator,
        &form,
        session.request_id.as_deref(),
    )
    .await?;
    match outcome {
        Ok(g) => Ok(page(
            &session,
            Nav::Grants,
            "Access requested",
            html! {
                p.notice.ok role="status" {
                    @if g.status == GrantStatus::Active {
                        (g.grant) " is granted to " (form.user.trim()) " at once (the policy approves it): " (expiry(&g)) "."
                    } @else {
                        (g.grant) " for " (form.user.trim()) " (" (g.duration) ") waits for an approver."
                    }
                }
                nav.actions aria-label="Next" {
                    a href=(format!("/console/jit/{}", g.id)) { "Open the request" }
                    a href="/console/jit" { "Back to time-bound access" }
                }
            },
        )
        .into_response()),
        Err(error) => {
            let query = GrantsQuery::default();
            let list = governance::grants(&console, &session.operator, &query.status, 1).await?;
            let body = grants_body(&session, &query, &list, &form, &[error]);
            Ok((
                StatusCode::BAD_REQUEST,
                page(&session, Nav::Grants, "Time-bound access", body),
            )
                .into_response())
        }
    }
}

fn grant_body(
    session: &Session,
    g: &JitGrant,
    name: Option<&str>,
    note: &str,
    errors: &[FieldError],
) -> Markup {
    let may_decide = authorize(&session.operator, Action::DecideGrant).is_ok();
    let decision_error = error_of(errors, "decision").or(error_of(errors, "note"));
    html! {
        @if g.status != GrantStatus::Pending {
            @if let Some(e) = decision_error { p.notice.warn role="alert" { (e.message) } }
        }
        dl.attrs {
            dt { "Person" } dd { (person(g, name)) }
            dt { "Access" } dd { (g.grant) }
            dt { "Duration" } dd { (g.duration) }
            dt { "Status" } dd { (g.status.as_str()) }
            dt { "Expiry" } dd { (expiry(g)) }
            @if let Some(s) = g.starts_at { dt { "Starts" } dd { (when(s)) } }
            dt { "Justification" } dd { (g.justification) }
            dt { "Requested" } dd { (when(g.requested_at)) " for SCIM user " code { (g.requested_by) } }
            @if let Some(by) = &g.decided_by {
                dt { "Decided" } dd { "by " code { (by) } @if let Some(t) = g.decided_at { " at " (when(t)) } }
            }
            @if let Some(n) = &g.note { dt { "Note" } dd { (n) } }
            @if let Some(e) = &g.extends { dt { "Extends" } dd { a href=(format!("/console/jit/{e}")) { code { (e) } } } }
        }
        @if g.status == GrantStatus::Pending {
            @if may_decide {
                h2 { "Approve or deny" }
                p.hint { "You approve as the SCIM user your sign-in names; the access's policy says who may (the person's manager, or its approvers)." }
                form method="post" action=(format!("/console/jit/{}/approve", g.id)) {
                    (csrf_field(session))
                    div.field {
                        label for="note" { "Note (optional)" }
                        textarea #note name="note" maxlength="2000"
                            aria-invalid=[decision_error.map(|_| "true")]
                            aria-describedby=[decision_error.map(|_| "decision-error")] { (note) }
                        @if let Some(e) = decision_error { p.error #decision-error role="alert" { (e.message) } }
                    }
                    p {
                        button type="submit" { "Approve" }
                        " "
                        button.danger type="submit" formaction=(format!("/console/jit/{}/deny", g.id)) { "Deny" }
                    }
                }
            } @else {
                p.notice role="status" { "This request waits for an approver; your role (" (session.operator.role) ") may not decide it." }
            }
        }
        p { a href="/console/jit" { "Back to time-bound access" } }
    }
}

/// `GET /console/jit/{id}`.
pub async fn grant(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Grants, "Time-bound access"));
    }
    let (g, name) = governance::grant(&console, &session.operator, &id).await?;
    let title = format!("{} for {}", g.grant, name.as_deref().unwrap_or(&g.user));
    Ok(page(
        &session,
        Nav::Grants,
        &title,
        grant_body(&session, &g, name.as_deref(), "", &[]),
    ))
}

/// The approve / deny form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct NoteForm {
    note: String,
}

async fn decide(
    console: Console,
    id: String,
    posted: CsrfForm<NoteForm>,
    approve: bool,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let identity = identity(&console, &session).await?;
    let outcome = governance::decide_grant(
        &console,
        &session.operator,
        &identity,
        &id,
        approve,
        &form.note,
        session.request_id.as_deref(),
    )
    .await?;
    let (g, name) = governance::grant(&console, &session.operator, &id).await?;
    let title = format!("{} for {}", g.grant, name.as_deref().unwrap_or(&g.user));
    match outcome {
        Ok(decided) => Ok(page(
            &session,
            Nav::Grants,
            &title,
            html! {
                p.notice.ok role="status" {
                    @if decided.status == GrantStatus::Active {
                        "Approved: " (g.grant) " is held from " (decided.starts_at.map(when).unwrap_or_default())
                        " and " (expiry(&decided)) "."
                    } @else {
                        "Denied: " (g.grant) " is not granted."
                    }
                }
                (grant_body(&session, &g, name.as_deref(), "", &[]))
            },
        )
        .into_response()),
        Err(error) => Ok((
            StatusCode::BAD_REQUEST,
            page(
                &session,
                Nav::Grants,
                &title,
                grant_body(&session, &g, name.as_deref(), &form.note, &[error]),
            ),
        )
            .into_response()),
    }
}

/// `POST /console/jit/{id}/approve`.
pub async fn approve(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<NoteForm>,
) -> Result<Response, ConsoleError> {
    decide(console, id, posted, true).await
}

/// `POST /console/jit/{id}/deny`.
pub async fn deny(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<NoteForm>,
) -> Result<Response, ConsoleError> {
    decide(console, id, posted, false).await
}

// ----- hygiene ----------------------------------------------------------------------------------

/// The hygiene page's query: where each list starts.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct HygieneQuery {
    stale: usize,
    orphaned: usize,
}

fn pager(query: &HygieneQuery, which: &str, start: usize, total: usize) -> Markup {
    let href = |n: usize| {
        let (s, o) = if which == "stale" {
            (n, query.orphaned.max(1))
        } else {
            (query.stale.max(1), n)
        };
        format!("/console/hygiene?stale={s}&orphaned={o}#{which}")
    };
    html! {
        nav.pager aria-label=(format!("Pages of {which} accounts")) {
            @if start > 1 { a href=(href(start.saturating_sub(PAGE).max(1))) { "Previous page" } }
            @if start + PAGE <= total { a href=(href(start + PAGE)) { "Next page" } }
        }
    }
}

fn hygiene_body(session: &Session, hygiene: &Hygiene, query: &HygieneQuery) -> Markup {
    html! {
        form method="post" action="/console/hygiene" {
            (csrf_field(session))
            p { button.secondary type="submit" { "Make a new report" } }
        }
        @match hygiene {
            Hygiene::Unavailable(why) => p.notice.warn role="alert" { "No report can be made: " (why) },
            Hygiene::Report(r) => {
                p { "Report made " (when(r.generated_at)) " from SCIM, the Graph bridge and Microsoft Graph: "
                    "active accounts without a sign-in for " (r.stale_days) " days are stale. "
                    "The same report: " code { "GET /governance/v1/hygiene" } "." }
                div.cards {
                    div.card { div.figure { (r.users_checked) } div.label { "people checked" } }
                    div.card { div.figure { (r.stale.len()) } div.label { a href="#stale" { "stale accounts" } } }
                    div.card { div.figure { (r.orphaned.len()) } div.label { a href="#orphaned" { "orphaned accounts" } } }
                    div.card { div.figure { (r.drift.len()) } div.label { "drifted from their plan" } }
                    div.card { div.figure { (r.privileged.len()) } div.label { "privileged role holders" } }
                    div.card { div.figure { (r.sign_in_unknown) } div.label { "without sign-in data" } }
                }
                @let s = query.stale.max(1);
                section aria-labelledby="stale" {
                    h2 #stale { "Stale accounts" }
                    @if r.stale.is_empty() { p { "None." } } @else {
                        div.table-wrap { table {
                            caption.vh { "Stale accounts" }
                            thead { tr { th scope="col" { "Person" } th scope="col" { "Last sign-in" } th scope="col" { "Days since" } } }
                            tbody { @for a in r.stale.iter().skip(s - 1).take(PAGE) { tr {
                                td { a href=(format!("/console/people/{}", a.user_id)) { (a.user_name.as_deref().unwrap_or(&a.user_id)) } }
                                td { (when(a.last_sign_in)) }
                                td { (a.days_since_sign_in) }
                            } } }
                        } }
                        (pager(query, "stale", s, r.stale.len()))
                    }
                }
                @let o = query.orphaned.max(1);
                section aria-labelledby="orphaned" {
                    h2 #orphaned { "Orphaned accounts" }
                    @if r.orphaned.is_empty() { p { "None." } } @else {
                        div.table-wrap { table {
                            caption.vh { "Orphaned accounts" }
                            thead { tr { th scope="col" { "Graph account" } th scope="col" { "Why" } th scope="col" { "SCIM person" } th.optional scope="col" { "Access held" } } }
                            tbody { @for a in r.orphaned.iter().skip(o - 1).take(PAGE) { tr {
                                td { (a.user_principal_name.as_deref().unwrap_or(&a.graph_user_id)) }
                                td { @match a.reason {
                                    crate::governance::hygiene::OrphanReason::NoScimUser => "no SCIM person accounts for it",
                                    crate::governance::hygiene::OrphanReason::TerminatedButEnabled => "terminated in SCIM, still enabled in Graph",
                                } }
                                td { @match &a.user_id { Some(id) => a href=(format!("/console/people/{id}")) { code { (id) } }, None => (dash()) } }
                                td.optional { (a.grants.join(", ")) }
                            } } }
                        } }
                        (pager(query, "orphaned", o, r.orphaned.len()))
                    }
                }
            }
        }
    }
}

/// `GET /console/hygiene`: the latest report (made now when there is none yet).
pub async fn hygiene(
    State(console): State<Console>,
    session: Session,
    Query(query): Query<HygieneQuery>,
) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Hygiene, "Hygiene"));
    }
    let report = governance::hygiene(&console, &session.operator, false).await?;
    Ok(page(
        &session,
        Nav::Hygiene,
        "Hygiene",
        hygiene_body(&session, &report, &query),
    ))
}

/// `POST /console/hygiene`: makes a new report.
pub async fn refresh_hygiene(
    State(console): State<Console>,
    posted: CsrfForm<std::collections::HashMap<String, String>>,
) -> Result<Markup, ConsoleError> {
    let session = posted.session;
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Hygiene, "Hygiene"));
    }
    let report = governance::hygiene(&console, &session.operator, true).await?;
    Ok(page(
        &session,
        Nav::Hygiene,
        "Hygiene",
        hygiene_body(&session, &report, &HygieneQuery::default()),
    ))
}

// ----- leaver evidence --------------------------------------------------------------------------

fn period_query(from: time::OffsetDateTime, to: time::OffsetDateTime) -> String {
    format!(
        "from={}&to={}",
        url::form_urlencoded::byte_serialize(evidence::rfc3339(from).as_bytes())
            .collect::<String>(),
        url::form_urlencoded::byte_serialize(evidence::rfc3339(to).as_bytes()).collect::<String>()
    )
}

fn date_text(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `GET /console/evidence`: the period's leavers with evidence, and the downloads.
pub async fn evidence_list(
    State(console): State<Console>,
    session: Session,
    Query(period): Query<Period>,
) -> Result<Response, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    if governance::governance(&console).is_none() {
        return Ok(disabled(&session, Nav::Evidence, "Leaver evidence").into_response());
    }
    let (bounds, errors) = match period.bounds(console.app().clock.now()) {
        Ok(b) => (Some(b), Vec::new()),
        Err(e) => (None, vec![e]),
    };
    let records = match bounds {
        Some((from, to)) => governance::evidence(&console, &session.operator, from, to).await?,
        None => Vec::new(),
    };
    let start = period.start.max(1);
    let (from_text, to_text) = match bounds {
        Some((f, t)) => (date_text(f), date_text(t)),
        None => (period.from.clone(), period.to.clone()),
    };
    let body = html! {
        p { "Leavers whose access was fully revoked in the period, each record as built from the HR event, the SCIM change and every Graph step (with Graph's request id), its SHA-256 anchored in the change log." }
        form.search method="get" action="/console/evidence" {
            (input("from", "From (YYYY-MM-DD)", &from_text, None, &errors))
            (input("to", "To, exclusive (YYYY-MM-DD)", &to_text, None, &errors))
            button type="submit" { "Show" }
        }
        @if let Some((from, to)) = bounds {
            nav.actions aria-label="Downloads" {
                a.button href=(format!("/console/evidence/export?{}&format=json", period_query(from, to))) { "Download JSON" }
                a.button href=(format!("/console/evidence/export?{}&format=csv", period_query(from, to))) { "Download CSV" }
                a.button href=(format!("/console/evidence/export?{}&format=html", period_query(from, to))) { "Download printable report" }
            }
            @if records.is_empty() { p { "No leaver evidence in this period." } } @else {
                p { "Showing " (start) "–" ((start + PAGE - 1).min(records.len())) " of " (records.len()) "." }
                div.table-wrap { table {
                    caption.vh { "Leaver evidence" }
                    thead { tr {
                        th scope="col" { "Person" } th scope="col" { "Fully revoked" } th scope="col" { "Seconds to revocation" }
                        th.optional scope="col" { "Graph steps" } th.optional scope="col" { "Source" } th.optional scope="col" { "Anchor" }
                    } }
                    tbody { @for r in records.iter().skip(start - 1).take(PAGE) { tr {
                        @let e = &r.evidence;
                        td { a href=(format!("/console/people/{}", e.user_id)) { (e.user_name.as_deref().unwrap_or(&e.user_id)) } }
                        td { @match e.fully_revoked_at { Some(t) => (when(t)), None => (dash()) } }
                        td { @match e.seconds_to_revocation { Some(s) => (s), None => (dash()) } }
                        td.optional { (e.steps.len()) }
                        td.optional { @if e.hr_event.is_some() { "HR event" } @else if e.scim_change.is_some() { "SCIM change" } @else { (dash()) } }
                        td.optional { @match r.chain_seq { Some(s) => { "record " (s) }, None => "pending" } }
                    } } }
                } }
                nav.pager aria-label="Pages" {
                    @if start > 1 { a href=(format!("/console/evidence?{}&start={}", period_query(from, to), start.saturating_sub(PAGE).max(1))) { "Previous page" } }
                    @if start + PAGE <= records.len() { a href=(format!("/console/evidence?{}&start={}", period_query(from, to), start + PAGE)) { "Next page" } }
                }
            }
        }
    };
    let markup = page(&session, Nav::Evidence, "Leaver evidence", body);
    Ok(if errors.is_empty() {
        markup.into_response()
    } else {
        (StatusCode::BAD_REQUEST, markup).into_response()
    })
}

/// `GET /console/evidence/export`: the period's records as a download, in the API's formats
/// (`evidence::to_csv`, `evidence::to_html`, the API's JSON document).
pub async fn evidence_export(
    State(console): State<Console>,
    session: Session,
    Query(period): Query<Period>,
) -> Result<Response, ConsoleError> {
    authorize(&session.operator, Action::ViewGovernance)?;
    let (from, to) = period
        .bounds(console.app().clock.now())
        .map_err(|e| ConsoleError::BadRequest(e.message))?;
    let (content_type, extension) = match period.format.as_str() {
        "" | "json" => ("application/json", "json"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "html" => ("text/html; charset=utf-8", "html"),
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "format: {other:?} is not one of json, csv, html"
            )));
        }
    };
    let records = governance::evidence(&console, &session.operator, from, to).await?;
    let tenant = &session.operator.tenant;
    let body = match extension {
        "csv" => evidence::to_csv(&records),
        "html" => evidence::to_html(tenant, from, to, &records),
        _ => serde_json::to_string_pretty(&serde_json::json!({
            "tenant": tenant,
            "from": evidence::rfc3339(from),
            "to": evidence::rfc3339(to),
            "records": records,
        }))
        .map_err(|e| ConsoleError::Internal(e.to_string()))?,
    };
    let name = format!(
        "leaver-evidence-{tenant}-{}-{}.{extension}",
        date_text(from),
        date_text(to)
    );
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        name.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
            "_"
        )
    ))
    .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}
