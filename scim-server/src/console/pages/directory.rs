//! People and groups: search (a plain box or a SCIM filter), sorting, paging, and a page per
//! person or group with its attributes, memberships and timeline.
//!
//! The search form works as a plain GET form; with htmx loaded, typing in the plain box
//! refreshes the results region in place (`hx-get` on the same URL, `hx-select` of the region),
//! and the address bar keeps the search so it can be bookmarked and shared.

use super::dashboard::changes_table;
use super::queues as queues_page;
use crate::console::queues;
use crate::console::roles::{Action, authorize};
use crate::console::service::{self, FieldError, Kind, Listing, PAGE_SIZE, Search};
use crate::console::session::Session;
use crate::console::views::{Nav, dash, page};
use crate::console::{Console, ConsoleError};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

fn section(kind: Kind) -> (&'static str, &'static str, Nav) {
    match kind {
        Kind::User => ("people", "People", Nav::People),
        Kind::Group => ("groups", "Groups", Nav::Groups),
    }
}

fn search_href(kind: Kind, s: &Search, start: u64, key: Option<(&str, &str)>) -> String {
    let (path, _, _) = section(kind);
    let start = start.to_string();
    let mut pairs = vec![
        ("q", s.q.as_str()),
        ("filter", s.filter.as_str()),
        ("sort", s.sort.as_str()),
        ("order", s.order.as_str()),
        ("start", start.as_str()),
    ];
    if let Some(pair) = key {
        pairs.push(pair);
    }
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    format!("/console/{path}?{query}")
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str()
}

/// The primary (else first) value of a multi-valued attribute such as `emails`.
fn primary<'a>(v: &'a Value, attr: &str) -> Option<&'a str> {
    let values = v.get(attr)?.as_array()?;
    values
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| values.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
}

fn field_error(error: &Option<FieldError>, field: &str) -> Markup {
    html! {
        @if let Some(e) = error.as_ref().filter(|e| e.field == field) {
            p.error id=(format!("{field}-error")) role="alert" { (e.message) }
        }
    }
}

fn described_by(error: &Option<FieldError>, field: &str) -> Option<String> {
    error
        .as_ref()
        .filter(|e| e.field == field)
        .map(|_| format!("{field}-error"))
}

fn search_form(kind: Kind, s: &Search, error: &Option<FieldError>) -> Markup {
    let (path, _, _) = section(kind);
    let action = format!("/console/{path}");
    let plain_label = match kind {
        Kind::User => "Search people (user name starts with)",
        Kind::Group => "Search groups (display name starts with)",
    };
    html! {
        form.search method="get" action=(action) role="search" {
            div.field {
                label for="q" { (plain_label) }
                input #q type="search" name="q" value=(s.q) autocomplete="off"
                    aria-describedby=[described_by(error, "q")]
                    hx-get=(action) hx-trigger="input changed delay:300ms, search"
                    hx-target="#results" hx-select="#results" hx-swap="outerHTML"
                    hx-push-url="true" hx-include="closest form";
                (field_error(error, "q"))
            }
            div.field {
                label for="filter" { "or a SCIM filter" }
                input #filter type="text" name="filter" value=(s.filter) autocomplete="off"
                    placeholder="userName eq \"ada@example.com\""
                    aria-describedby=[described_by(error, "filter")];
                (field_error(error, "filter"))
            }
            div.field.inline {
                label for="sort" { "Sort by" }
                select #sort name="sort" {
                    @for (key, label) in kind.sort_keys() {
                        option value=(key) selected[s.sort == *key] { (label) }
                    }
                }
                (field_error(error, "sort"))
            }
            div.field.inline {
                label for="order" { "Order" }
                select #order name="order" {
                    option value="ascending" selected[s.order != "descending"] { "ascending" }
                    option value="descending" selected[s.order == "descending"] { "descending" }
                }
            }
            button type="submit" { "Search" }
        }
    }
}

fn results(kind: Kind, s: &Search, listing: &Option<Listing>) -> Markup {
    let (path, _, _) = section(kind);
    html! {
        div #results aria-live="polite" {
            @if let Some(l) = listing {
                @let last = (l.start + l.rows.len() as u64).saturating_sub(1);
                p {
                    @if l.total == 0 { "Nothing matches." }
                    @else { "Showing " (l.start) "–" (last) " of " (l.total) "." }
                }
                @if !l.rows.is_empty() {
                    div.table-wrap { table {
                        thead { tr {
                            @match kind {
                                Kind::User => {
                                    th scope="col" { "User name" } th scope="col" { "Name" }
                                    th.optional scope="col" { "E-mail" } th scope="col" { "Active" }
                                }
                                Kind::Group => {
                                    th scope="col" { "Display name" } th.optional scope="col" { "External id" }
                                }
                            }
                        } }
                        tbody { @for row in &l.rows {
                            @let id = text(row, &["id"]).unwrap_or("");
                            @let href = format!("/console/{path}/{id}");
                            tr {
                                @match kind {
                                    Kind::User => {
                                        td { a href=(href) { (text(row, &["userName"]).unwrap_or(id)) } }
                                        td { (text(row, &["displayName"]).or(text(row, &["name", "formatted"])).unwrap_or("")) }
                                        td.optional { (primary(row, "emails").unwrap_or("")) }
                                        td { @match row.get("active").and_then(Value::as_bool) {
                                            Some(true) => "yes", Some(false) => "no", None => (dash()),
                                        } }
                                    }
                                    Kind::Group => {
                                        td { a href=(href) { (text(row, &["displayName"]).unwrap_or(id)) } }
                                        td.optional { (text(row, &["externalId"]).unwrap_or("")) }
                                    }
                                }
                            }
                        } }
                    } }
                    @let back = l.start.saturating_sub(PAGE_SIZE).max(1);
                    nav.pager aria-label="Pages" {
                        @if let Some(key) = &l.previous {
                            a href=(search_href(kind, s, back, Some(("before", key)))) { "Previous page" }
                        } @else if l.start > 1 && !s.filter.trim().is_empty() {
                            a href=(search_href(kind, s, back, None)) { "Previous page" }
                        }
                        @if let Some(key) = &l.next {
                            a href=(search_href(kind, s, last + 1, Some(("after", key)))) { "Next page" }
                        } @else if last < l.total && !s.filter.trim().is_empty() {
                            a href=(search_href(kind, s, last + 1, None)) { "Next page" }
                        }
                    }
                }
            }
        }
    }
}

async fn list_page(
    console: Console,
    session: Session,
    kind: Kind,
    s: Search,
) -> Result<Response, ConsoleError> {
    let (_, title, nav) = section(kind);
    let (listing, error) = match service::list(&console, &session.operator, kind, &s).await? {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(e)),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = page(
        &session,
        nav,
        title,
        html! {
            @if kind == Kind::User && authorize(&session.operator, Action::Hire).is_ok() {
                p { a.button href="/console/people/new" { "New hire" } }
            }
            (search_form(kind, &s, &error))
            (results(kind, &s, &listing))
        },
    );
    Ok((status, body).into_response())
}

/// `GET /console/people`.
pub async fn people(
    State(console): State<Console>,
    session: Session,
    Query(s): Query<Search>,
) -> Result<Response, ConsoleError> {
    list_page(console, session, Kind::User, s).await
}

/// `GET /console/groups`.
pub async fn groups(
    State(console): State<Console>,
    session: Session,
    Query(s): Query<Search>,
) -> Result<Response, ConsoleError> {
    list_page(console, session, Kind::Group, s).await
}

/// `?before=` of a timeline (older records); `?after=` of a group's member list.
#[derive(Debug, Default, Deserialize)]
pub struct TimelineQuery {
    before: Option<u64>,
    #[serde(default)]
    after: String,
}

/// A value for the attribute list: strings as they are, everything else as compact JSON.
fn show_value(v: &Value) -> Markup {
    match v {
        Value::String(s) => html! { (s) },
        Value::Bool(b) => html! { @if *b { "yes" } @else { "no" } },
        Value::Number(n) => html! { (n.to_string()) },
        Value::Array(items) => html! {
            ul { @for item in items { li {
                @match item {
                    Value::Object(o) => {
                        (o.iter().map(|(k, v)| format!("{k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect::<Vec<_>>().join(" · "))
                    }
                    other => (show_value(other)),
                }
            } } }
        },
        Value::Object(o) => html! {
            dl.attrs { @for (k, v) in o { dt { (k) } dd { (show_value(v)) } } }
        },
        Value::Null => dash(),
    }
}

async fn detail_page(
    console: Console,
    session: Session,
    kind: Kind,
    id: String,
    q: TimelineQuery,
) -> Result<Markup, ConsoleError> {
    let d = service::detail(&console, &session.operator, kind, &id, q.before).await?;
    let may_act = authorize(&session.operator, Action::Update).is_ok();
    let plans = match kind {
        Kind::User => queues::plans(&console, &session.operator, &id).await?,
        Kind::Group => Vec::new(),
    };
    let members = match kind {
        Kind::Group => Some(service::members(&console, &session.operator, &id, &q.after).await?),
        Kind::User => None,
    };
    let r = &d.resource;
    let (path, _, nav) = section(kind);
    let title = match kind {
        Kind::User => text(r, &["userName"]),
        Kind::Group => text(r, &["displayName"]),
    }
    .unwrap_or(&id)
    .to_string();
    let hidden = ["schemas", "meta", "groups", "id"];
    let older = d
        .timeline
        .last()
        .filter(|_| d.timeline.len() as i64 == service::TIMELINE_LENGTH)
        .map(|c| format!("/console/{path}/{id}?before={}", c.seq));
    Ok(page(
        &session,
        nav,
        &title,
        html! {
            p { "Id " code { (id) } }
            @if kind == Kind::User && may_act {
                nav.actions aria-label="Actions" {
                    a.button href=(format!("/console/people/{id}/update")) { "Update" }
                    @if r.get("active").and_then(Value::as_bool) == Some(false) {
                        a.button href=(format!("/console/people/{id}/rehire")) { "Rehire" }
                    }
                    // Also for an inactive person: a pre-hire (inactive until the start date)
                    // can be terminated before starting.
                    a.button.danger href=(format!("/console/people/{id}/terminate")) { "Terminate" }
                }
            }
            section aria-labelledby="attributes" {
                h2 #attributes { "Attributes" }
                dl.attrs {
                    @if let Value::Object(o) = r {
                        @for (k, v) in o.iter().filter(|(k, _)| !hidden.contains(&k.as_str())) {
                            dt { (k) } dd { (show_value(v)) }
                        }
                    }
                    @if let Some(meta) = r.get("meta") {
                        dt { "created" } dd { (text(meta, &["created"]).unwrap_or("")) }
                        dt { "lastModified" } dd { (text(meta, &["lastModified"]).unwrap_or("")) }
                        dt { "version" } dd { (text(meta, &["version"]).unwrap_or("")) }
                    }
                }
            }
            @if kind == Kind::User {
                section aria-labelledby="memberships" {
                    h2 #memberships { "Groups" }
                    @match r.get("groups").and_then(Value::as_array).filter(|g| !g.is_empty()) {
                        Some(groups) => ul { @for g in groups {
                            @let gid = text(g, &["value"]).unwrap_or("");
                            li { a href=(format!("/console/groups/{gid}")) { (text(g, &["display"]).unwrap_or(gid)) } }
                        } },
                        None => p { "Not a member of any group." },
                    }
                }
            } @else {
                @if let Some(m) = &members {
                    section aria-labelledby="members" {
                        h2 #members { "Members" }
                        @if m.total == 0 {
                            p { "No members." }
                        } @else {
                            p { (m.total) " in all, by id, " (service::MEMBERS_PAGE) " a page." }
                            ul.members { @for row in &m.rows {
                                @let section = if row.member_type == "Group" { "groups" } else { "people" };
                                li { a href=(format!("/console/{section}/{}", row.member_id)) { (row.display.as_deref().unwrap_or(&row.member_id)) } }
                            } }
                            nav.pager aria-label="Member pages" {
                                @if !q.after.is_empty() { a href=(format!("/console/groups/{id}")) { "First members" } }
                                @if let Some(next) = &m.next {
                                    a href=(format!("/console/groups/{id}?{}", serde_urlencoded::to_string([("after", next.as_str())]).unwrap_or_default())) { "More members" }
                                }
                            }
                        }
                    }
                }
            }
            @if kind == Kind::User { (queues_page::plans_section(&plans, console.bridge_configured())) }
            section aria-labelledby="timeline" {
                h2 #timeline { "Timeline" }
                p { "Every change to this record, newest first, with the credential that made it." }
                (changes_table(&d.timeline, "Change records of this resource", false))
                @if let Some(href) = older { p { a href=(href) { "Older changes" } } }
            }
        },
    ))
}

/// `GET /console/people/{id}`.
pub async fn person(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Markup, ConsoleError> {
    detail_page(console, session, Kind::User, id, q).await
}

/// `GET /console/groups/{id}`.
pub async fn group(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Markup, ConsoleError> {
    detail_page(console, session, Kind::Group, id, q).await
}
