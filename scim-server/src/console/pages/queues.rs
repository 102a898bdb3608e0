//! The HR intake's jobs and dead letters, the Graph bridge's queue, dead letters and plans:
//! inspect, and retry a dead letter after a confirmation page. [`crate::console::queues`]
//! reads, authorises and retries.

use super::CsrfForm;
use crate::console::queues::{self, JOB_LIST_LENGTH};
use crate::console::session::Session;
use crate::console::views::{Nav, csrf_field, dash, page, when};
use crate::console::{Console, ConsoleError};
use crate::inbound::queue::{JobSummary, status};
use axum::extract::{Path, State};
use maud::{Markup, html};
use scim_graph_bridge::graph::classify::Outcome;
use scim_graph_bridge::plan::Step;
use scim_graph_bridge::store::PlanRecord;
use std::collections::HashMap;

fn jobs_table(jobs: &[JobSummary], caption: &str) -> Markup {
    html! {
        @if jobs.is_empty() {
            p { "None." }
        } @else {
            div.table-wrap { table {
                caption.vh { (caption) }
                thead { tr {
                    th scope="col" { "Job" } th scope="col" { "Status" } th scope="col" { "Attempts" }
                    th.optional scope="col" { "Accepted" } th scope="col" { "Last error" }
                } }
                tbody { @for j in jobs { tr {
                    td { a href=(format!("/console/intake/{}", j.id)) { code { (j.id) } } }
                    td { (j.status) }
                    td { (j.attempts) }
                    td.optional { (when(j.created)) }
                    td { @match &j.last_error { Some(e) => (e), None => (dash()) } }
                } } }
            } }
            @if jobs.len() as u32 == JOB_LIST_LENGTH { p { "The oldest " (JOB_LIST_LENGTH) " are shown." } }
        }
    }
}

/// `GET /console/intake`.
pub async fn intake(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let overview = queues::intake_overview(&console, &session.operator).await?;
    Ok(page(
        &session,
        Nav::Intake,
        "HR intake",
        html! {
            @match overview {
                None => p.notice { "The HR intake is not enabled on this server ([inbound] enabled, and a database file or PostgreSQL)." },
                Some(o) => {
                    section aria-labelledby="queue" {
                        h2 #queue { "Queue (all tenants)" }
                        div.cards {
                            div.card { div.figure { (o.status.queued) } div.label { "waiting" } }
                            div.card { div.figure { (o.status.scheduled) } div.label { "scheduled for a later date" } }
                            div.card { div.figure { (o.status.running) } div.label { "running" } }
                            div.card { div.figure { (o.status.dead) } div.label { "dead letters" } }
                        }
                        p { "The oldest waiting job has been due for " (format!("{:.0}", o.status.oldest_age_seconds)) " s." }
                    }
                    section aria-labelledby="dead" {
                        h2 #dead { "Dead letters" }
                        p { "Jobs given up after the configured attempts. Open one to see why, and retry it." }
                        (jobs_table(&o.dead, "Dead letters of this tenant"))
                    }
                    section aria-labelledby="waiting" {
                        h2 #waiting { "Waiting and scheduled" }
                        (jobs_table(&o.queued, "Jobs waiting in this tenant"))
                    }
                    section aria-labelledby="running" {
                        h2 #running { "Running" }
                        (jobs_table(&o.running, "Jobs running in this tenant"))
                    }
                    section aria-labelledby="errors" {
                        h2 #errors { "Finished with refused records" }
                        (jobs_table(&o.with_errors, "Jobs of this tenant with refused records"))
                    }
                }
            }
        },
    ))
}

/// `GET /console/intake/{id}`.
pub async fn intake_job(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let job = queues::intake_job(&console, &session.operator, &id).await?;
    Ok(page(
        &session,
        Nav::Intake,
        &format!("Intake job {}", job.id),
        html! {
            dl.attrs {
                dt { "source" } dd { (job.source) }
                dt { "status" } dd { (job.status) }
                dt { "attempts" } dd { (job.attempts) }
                dt { "accepted" } dd { (when(job.created)) }
                dt { "finished" } dd { @match job.finished { Some(t) => (when(t)), None => (dash()) } }
                dt { "last error" } dd { @match &job.last_error { Some(e) => (e), None => (dash()) } }
                dt { "records" } dd {
                    (job.counts.total) " (" (job.counts.created) " created, " (job.counts.updated) " updated, "
                    (job.counts.unchanged) " unchanged, " (job.counts.failed) " failed, " (job.counts.pending) " pending)"
                }
            }
            @if job.status == status::DEAD {
                p { a.button href=(format!("/console/intake/{}/retry", job.id)) { "Retry this job" } }
            }
            h2 { "Records" }
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Employee id" } th scope="col" { "Outcome" }
                    th scope="col" { "Person" } th scope="col" { "Error" }
                } }
                tbody { @for (i, op) in job.operations.iter().enumerate() { tr {
                    td { (i + 1) }
                    td { @match &op.external_id { Some(e) => code { (e) }, None => (dash()) } }
                    td { (op.outcome) }
                    td { @match &op.id { Some(id) => a href=(format!("/console/people/{id}")) { code { (id) } }, None => (dash()) } }
                    td { @match op.error.as_ref().and_then(|e| e.get("detail")).and_then(|d| d.as_str()) { Some(d) => (d), None => (dash()) } }
                } } }
            } }
        },
    ))
}

/// `GET /console/intake/{id}/retry`: the confirmation.
pub async fn confirm_intake_retry(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let job = queues::intake_job(&console, &session.operator, &id).await?;
    Ok(page(
        &session,
        Nav::Intake,
        "Retry an intake job",
        html! {
            p { "Queue job " code { (job.id) } " (" (job.source) ", " (job.counts.total) " records) again, with a fresh count of attempts? Records already applied are not applied twice; the rest run again." }
            @if let Some(e) = &job.last_error { p { "It was given up because: " (e) } }
            form method="post" action=(format!("/console/intake/{}/retry", job.id)) {
                (csrf_field(&session))
                button type="submit" { "Retry job" }
                " " a href=(format!("/console/intake/{}", job.id)) { "Cancel" }
            }
        },
    ))
}

/// `POST /console/intake/{id}/retry`.
pub async fn retry_intake(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<HashMap<String, String>>,
) -> Result<Markup, ConsoleError> {
    let session = posted.session;
    let job = queues::retry_intake_job(
        &console,
        &session.operator,
        &id,
        session.request_id.as_deref(),
    )
    .await?;
    Ok(page(
        &session,
        Nav::Intake,
        "Job queued again",
        html! {
            p.notice.ok role="status" { "Intake job " code { (job.id) } " is queued again; the worker takes it within seconds." }
            p { a href=(format!("/console/intake/{}", job.id)) { "Follow the job" } }
        },
    ))
}

/// `GET /console/bridge`.
pub async fn bridge(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let overview = queues::bridge_overview(&console, &session.operator).await?;
    Ok(page(
        &session,
        Nav::Bridge,
        "Graph bridge",
        html! {
            @match overview {
                None => p.notice { "The Graph bridge is not configured on this server (no [graph] section)." },
                Some(o) => {
                    div.cards {
                        div.card { div.figure { (o.lag) } div.label { "changes not yet taken (lag)" } }
                        div.card { div.figure { (o.status.pending) } div.label { "people with work pending" } }
                        div.card { div.figure { (o.status.retrying) } div.label { "retrying" } }
                        div.card { div.figure { (o.dead_letters.len()) } div.label { "dead letters" } }
                    }
                    p { "Plans recorded (all tenants): " (o.status.plans) ". A person's current plan is on their page." }
                    h2 { "Dead letters" }
                    @if o.dead_letters.is_empty() {
                        p { "None." }
                    } @else {
                        div.table-wrap { table {
                            thead { tr {
                                th scope="col" { "Person" } th scope="col" { "Attempts" } th.optional scope="col" { "Since" }
                                th scope="col" { "Reason" } th scope="col" { span.vh { "Actions" } }
                            } }
                            tbody { @for d in &o.dead_letters { tr {
                                td { a href=(format!("/console/people/{}", d.user_id)) { code { (d.user_id) } } }
                                td { (d.attempts) }
                                td.optional { (when(d.created_at)) }
                                td { (d.reason) }
                                td { a href=(format!("/console/bridge/dead-letters/{}/retry", d.id)) aria-label=(format!("Retry {}", d.user_id)) { "Retry" } }
                            } } }
                        } }
                    }
                }
            }
        },
    ))
}

/// `GET /console/bridge/dead-letters/{id}/retry`: the confirmation.
pub async fn confirm_bridge_retry(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let d = queues::bridge_dead_letter(&console, &session.operator, &id).await?;
    Ok(page(
        &session,
        Nav::Bridge,
        "Retry Graph bridge work",
        html! {
            p { "Put person " code { (d.user_id) } " back on the Graph bridge's queue, due now? The bridge plans again from the person's current state. It was given up after " (d.attempts) " attempts: " (d.reason) }
            form method="post" action=(format!("/console/bridge/dead-letters/{}/retry", d.id)) {
                (csrf_field(&session))
                button type="submit" { "Retry bridge work" }
                " " a href="/console/bridge" { "Cancel" }
            }
        },
    ))
}

/// `POST /console/bridge/dead-letters/{id}/retry`.
pub async fn retry_bridge(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<HashMap<String, String>>,
) -> Result<Markup, ConsoleError> {
    let session = posted.session;
    let d = queues::retry_bridge_dead_letter(
        &console,
        &session.operator,
        &id,
        session.request_id.as_deref(),
    )
    .await?;
    Ok(page(
        &session,
        Nav::Bridge,
        "Bridge work queued again",
        html! {
            p.notice.ok role="status" { "Person " code { (d.user_id) } " is back on the Graph bridge's queue." }
            p { a href="/console/bridge" { "Back to the bridge" } }
        },
    ))
}

/// What a step concerns, in a few words.
fn step_target(step: &Step) -> String {
    match step {
        Step::CreateUser {
            user_principal_name,
            ..
        } => user_principal_name.clone(),
        Step::UpdateUser { attributes } => {
            attributes.keys().cloned().collect::<Vec<_>>().join(", ")
        }
        Step::SetManager { manager_id } => manager_id.clone(),
        Step::RemoveRole { role, .. } | Step::AddRole { role, .. } => role.clone(),
        Step::AddGroup { group, .. } | Step::RemoveGroup { group, .. } => group.clone(),
        Step::AssignLicenses { add, remove } => add
            .iter()
            .map(|l| format!("+{}", l.name))
            .chain(remove.iter().map(|l| format!("-{}", l.name)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done => "done".into(),
        Outcome::AlreadyDone { reason } => format!("already done ({reason})"),
        Outcome::Failed {
            http_status,
            code,
            message,
            permanent,
        } => format!(
            "failed{}: {http_status} {code} {message}",
            if *permanent { " for good" } else { "" }
        ),
    }
}

/// A person's bridge plans, the newest (current) first, each with its steps and their outcomes.
pub fn plans_section(plans: &[PlanRecord], bridge_configured: bool) -> Markup {
    html! {
        section aria-labelledby="plans" {
            h2 #plans { "Microsoft Graph plan" }
            @if !bridge_configured {
                p { "The Graph bridge is not configured on this server." }
            } @else if plans.is_empty() {
                p { "No plan yet: the bridge plans within seconds of a change." }
            } @else {
                @for (i, p) in plans.iter().enumerate() {
                    @let kind = serde_json::to_value(p.plan.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                    article.plan aria-label=(if i == 0 { "Current plan".to_string() } else { format!("Earlier plan {i}") }) {
                        h3 { @if i == 0 { "Current plan: " } @else { "Earlier: " } (kind) " · " (p.status) " · " (p.mode) " · " (when(p.created_at)) }
                        @if p.plan.steps.is_empty() {
                            p { "Nothing to do: Microsoft Graph matches the rules." }
                        } @else {
                            ol.steps { @for (n, step) in p.plan.steps.iter().enumerate() {
                                @let record = p.report.as_ref().and_then(|r| r.steps.iter().find(|s| s.index == n));
                                li {
                                    code { (step.label()) } " " (step_target(step))
                                    @if let Some(r) = record { " — " (outcome_text(&r.outcome)) }
                                }
                            } }
                        }
                        @for note in &p.plan.notes { p.hint { (note) } }
                    }
                }
            }
        }
    }
}
