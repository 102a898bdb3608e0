//! The page frame and shared pieces, as maud templates (checked by the compiler, escaped by
//! default). Landmarks (`header`, `nav`, `main`), a skip link, labelled controls and visible
//! focus make every page usable from the keyboard and with a screen reader.

use super::assets;
use super::session::Session;
use http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::OffsetDateTime;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The dashboard.
    Dashboard,
    /// People.
    People,
    /// Groups.
    Groups,
    /// The HR intake's jobs.
    Intake,
    /// The Graph bridge.
    Bridge,
    /// Tokens.
    Tokens,
    /// CSV upload.
    Upload,
    /// Admin: tenants, rules, configuration.
    Admin,
    /// The console's action log.
    Activity,
    /// Access reviews: one's inbox, campaigns.
    Reviews,
    /// Time-bound (JIT) grants.
    Grants,
    /// Hygiene reports.
    Hygiene,
    /// Leaver evidence.
    Evidence,
    /// None (sign-in, errors).
    None,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Dashboard, "/console", "Dashboard"),
    (Nav::People, "/console/people", "People"),
    (Nav::Groups, "/console/groups", "Groups"),
    (Nav::Intake, "/console/intake", "Intake"),
    (Nav::Bridge, "/console/bridge", "Bridge"),
    (Nav::Upload, "/console/upload", "Upload"),
    (Nav::Tokens, "/console/admin/tokens", "Tokens"),
    (Nav::Admin, "/console/admin", "Admin"),
    (Nav::Activity, "/console/activity", "Activity"),
    (Nav::Reviews, "/console/reviews", "Reviews"),
    (Nav::Grants, "/console/jit", "JIT access"),
    (Nav::Hygiene, "/console/hygiene", "Hygiene"),
    (Nav::Evidence, "/console/evidence", "Evidence"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // htmx must not inject its indicator <style> (the CSP forbids inline style) nor
            // evaluate attribute code.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
            title { (title) " · SCIM console" }
            link rel="stylesheet" href=(assets::url("console.css"));
            script src=(assets::url("htmx.min.js")) defer {}
        }
    }
}

/// A hidden CSRF field for a form of this session.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

/// A full page for a signed-in person.
pub fn page(session: &Session, nav: Nav, title: &str, body: Markup) -> Markup {
    let op = &session.operator;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "SCIM console" }
                    nav.main aria-label="Main" {
                        ul {
                            @for (entry, href, label) in NAV {
                                li {
                                    @if *entry == nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (op.display_name) " · " (op.role) " · tenant " (op.tenant) }
                        form method="post" action="/console/signout" {
                            (csrf_field(session))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #content tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page with no session (sign-in, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#content" { "Skip to content" }
                header.top { a.brand href="/console" { "SCIM console" } }
                main #content tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An error page.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Cannot do that",
        StatusCode::UNAUTHORIZED => "Sign-in failed",
        StatusCode::PAYLOAD_TOO_LARGE => "Too large",
        _ => "Something went wrong",
    };
    bare_page(
        title,
        html! {
            p.notice.warn role="alert" { (message) }
            p { a href="/console" { "Back to the dashboard" } }
        },
    )
}

/// A timestamp as `2026-01-02 03:04:05 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A Unix-seconds timestamp, formatted by [`when`].
pub fn when_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs).map_or_else(|_| secs.to_string(), when)
}

/// An RFC 3339 timestamp as stored, formatted by [`when`] when it parses.
pub fn when_text(s: &str) -> String {
    scim_core::resource::parse_datetime(s).map_or_else(|| s.to_string(), when)
}

/// A non-breaking placeholder for an empty cell.
pub fn dash() -> Markup {
    PreEscaped("&mdash;".to_string())
}
