//! The dashboard and the console's action log.

use crate::console::session::Session;
use crate::console::views::{Nav, dash, page, when_text, when_unix};
use crate::console::{Console, ConsoleError, service};
use crate::store::ChangeRecord;
use axum::extract::State;
use maud::{Markup, html};

/// A table of change records (the dashboard's recent changes, a person's timeline).
pub fn changes_table(changes: &[ChangeRecord], caption: &str, link_resources: bool) -> Markup {
    html! {
        @if changes.is_empty() {
            p { "No changes recorded yet." }
        } @else {
            div.table-wrap {
                table {
                    caption.vh { (caption) }
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { "When" }
                        th scope="col" { "Change" }
                        @if link_resources { th scope="col" { "Resource" } }
                        th scope="col" { "By" }
                        th.optional scope="col" { "Attributes" }
                    } }
                    tbody {
                        @for c in changes {
                            tr {
                                td { (c.seq) }
                                td { (when_text(&c.occurred_at)) }
                                td { (change_label(c)) " " (c.resource_type) }
                                @if link_resources {
                                    td {
                                        @if c.operation == "delete"
                                            || !matches!(c.resource_type.as_str(), "User" | "Group") {
                                            code { (c.resource_id) }
                                        } @else {
                                            a href=(resource_href(c)) { code { (c.resource_id) } }
                                        }
                                    }
                                }
                                td { code { (c.principal) } }
                                td.optional { (changed_paths(c)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A write's operation, or an audit event's kind (`console.action`, `governance.decision`).
fn change_label(c: &ChangeRecord) -> String {
    c.event()
        .map_or_else(|| c.operation.clone(), |e| e.kind().to_string())
}

fn resource_href(c: &ChangeRecord) -> String {
    let section = if c.resource_type == "Group" {
        "groups"
    } else {
        "people"
    };
    format!("/console/{section}/{}", c.resource_id)
}

/// The attribute paths a change touched, from its stored description.
fn changed_paths(c: &ChangeRecord) -> String {
    serde_json::from_str::<serde_json::Value>(&c.change_json)
        .ok()
        .and_then(|v| v.get("changedPaths").cloned())
        .and_then(|v| v.as_array().cloned())
        .map(|paths| {
            paths
                .iter()
                .filter_map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /console`.
pub async fn show(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let d = service::dashboard(&console, &session.operator).await?;
    let identity = super::reviews::identity(&console, &session).await?;
    let governance =
        crate::console::governance::summary(&console, &session.operator, &identity).await?;
    Ok(page(
        &session,
        Nav::Dashboard,
        "Dashboard",
        html! {
            section aria-labelledby="figures" {
                h2 #figures { "Directory" }
                div.cards {
                    div.card { div.figure { (d.users) } div.label { a href="/console/people" { "people" } } }
                    div.card { div.figure { (d.groups) } div.label { a href="/console/groups" { "groups" } } }
                    div.card {
                        div.figure { @match &d.chain_head { Some((seq, _)) => (seq), None => "0" } }
                        div.label { "change records" }
                    }
                    div.card {
                        div.figure { @if d.bridge_configured { "on" } @else { "off" } }
                        div.label { "Graph bridge " @if !d.bridge_configured { "(no [graph] section)" } }
                    }
                }
            }
            section aria-labelledby="work" {
                h2 #work { "Provisioning work" }
                div.cards {
                    @match &d.intake {
                        Some(q) => {
                            div.card { div.figure { (q.queued + q.running) } div.label { a href="/console/intake" { "intake jobs waiting" } } }
                            div.card { div.figure { (q.scheduled) } div.label { "intake jobs scheduled" } }
                            div.card { div.figure { (q.dead) } div.label { a href="/console/intake" { "intake dead letters" } } }
                        }
                        None => div.card { div.figure { "off" } div.label { "HR intake" } },
                    }
                    @if let Some(b) = &d.bridge {
                        div.card { div.figure { (b.lag) } div.label { a href="/console/bridge" { "bridge lag (changes)" } } }
                        div.card { div.figure { (b.status.pending) } div.label { "bridge plans waiting" } }
                        div.card { div.figure { (b.dead_letters.len()) } div.label { a href="/console/bridge" { "Graph dead letters" } } }
                    }
                }
            }
            section aria-labelledby="governance" {
                h2 #governance { "Governance" }
                div.cards {
                    @match governance {
                        Some(g) => {
                            div.card { div.figure { (g.awaiting_me) } div.label { a href="/console/reviews" { "review items waiting for you" } } }
                            div.card { div.figure { (g.pending_grants) } div.label { a href="/console/jit?status=pending" { "time-bound grants waiting for approval" } } }
                        }
                        None => div.card { div.figure { "off" } div.label { "governance" } },
                    }
                }
            }
            section aria-labelledby="chain" {
                h2 #chain { "Audit chain" }
                @match &d.chain_head {
                    Some((seq, hash)) => p {
                        "The change log's head is record " (seq) ", hash " code { (hash) } ". "
                        "Check the whole chain with " code { "scim-server audit verify" } "."
                    },
                    None => p { "No change has been recorded in this tenant yet." },
                }
            }
            section aria-labelledby="recent" {
                h2 #recent { "Recent changes" }
                (changes_table(&d.recent_changes, "The ten newest change records", true))
            }
            section aria-labelledby="actions" {
                h2 #actions { "Recent console actions" }
                (actions_table(&d.recent_actions))
                p { a href="/console/activity" { "All console actions" } }
            }
        },
    ))
}

fn actions_table(actions: &[crate::console::db::ActionRow]) -> Markup {
    html! {
        @if actions.is_empty() {
            p { "No console action yet." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Role" }
                    th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" }
                } }
                tbody { @for a in actions { tr {
                    td { (when_unix(a.occurred_at)) }
                    td { (a.display_name) br; code { (a.subject) } }
                    td { (a.role) }
                    td { (a.action) }
                    td { @if a.target.is_empty() { (dash()) } @else { code { (a.target) } } }
                    td { (a.outcome) }
                } } }
            } }
        }
    }
}

/// `GET /console/activity`.
pub async fn activity(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let actions = service::activity(&console, &session.operator).await?;
    Ok(page(
        &session,
        Nav::Activity,
        "Console activity",
        html! {
            p { "Every console action, allowed or refused, with the person who took it (newest 100)." }
            (actions_table(&actions))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::change_log::AuditEvent;

    fn record(
        seq: u64,
        resource_type: &str,
        id: &str,
        operation: &str,
        json: String,
    ) -> ChangeRecord {
        ChangeRecord {
            tenant: "t".into(),
            seq,
            resource_type: resource_type.into(),
            resource_id: id.into(),
            version: 1,
            operation: operation.into(),
            change_json: json,
            principal: "console:alice".into(),
            request_id: None,
            occurred_at: "2026-01-01T00:00:00Z".into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// An audit event shows its kind where a write shows its operation, and links its subject
    /// only when the subject is a person or group; a record of the snapshot format still shows
    /// its paths.
    #[test]
    fn events_and_old_records_render() {
        let event = |ty: &str, id: &str| {
            let e = AuditEvent::new("governance.decision", ty, id, serde_json::json!({})).unwrap();
            serde_json::to_string(&e).unwrap()
        };
        let old = r#"{"resourceType":"User","id":"u1","version":2,"operation":"replace","changedPaths":["title"],"before":{"title":"a"},"after":{"title":"b"}}"#;
        let html = changes_table(
            &[
                record(3, "Campaign", "c-1", "event", event("Campaign", "c-1")),
                record(2, "User", "u1", "event", event("User", "u1")),
                record(1, "User", "u1", "replace", old.into()),
            ],
            "changes",
            true,
        )
        .into_string();
        assert!(html.contains("governance.decision Campaign"), "{html}");
        assert!(!html.contains("/console/people/c-1"), "{html}");
        assert!(html.contains("/console/people/u1"), "{html}");
        assert!(
            html.contains("replace User") && html.contains("title"),
            "{html}"
        );
    }
}
