//! `scim-server bridge hold list|approve|reject`: an operator's side of the mass-change guard
//! (`scim_graph_bridge::guard`). Approving queues the user again (the running worker, `serve`'s
//! or `bridge run`'s, applies its leaver plan, computed afresh); rejecting drops the plan and,
//! when the tenant has an outcome callback, reports `provisioning.rejected` to the jobs waiting
//! on that user. Every decision is recorded with the hold and, as an audit event
//! (`bridge.hold_decided`, principal `operator:<by>`), in the tenant's hash-chained change log.

use super::cli::{HoldCommand, HoldDecision};
use crate::inbound::callback::Callbacks;
use crate::service::write::Writer;
use crate::store::Store;
use scim_core::change_log::AuditEvent;
use scim_graph_bridge::clock::Clock;
use scim_graph_bridge::guard::{Decision, Hold};
use scim_graph_bridge::notify::{Settled, SettledOutcome};
use scim_graph_bridge::store::BridgeStore;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

pub(super) async fn run(
    command: HoldCommand,
    server: &dyn Store,
    store: &BridgeStore,
    callbacks: Option<Arc<Callbacks>>,
    clock: &dyn Clock,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    match command {
        HoldCommand::List { tenant, all, json } => {
            let holds = store.holds(tenant.as_deref(), !all).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&holds)?)?;
            } else {
                list(&holds, out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        HoldCommand::Approve(d) => {
            let on = Stores { server, store };
            decide(d, Decision::Approve, on, callbacks.as_deref(), clock, out).await
        }
        HoldCommand::Reject(d) => {
            let on = Stores { server, store };
            decide(d, Decision::Reject, on, callbacks.as_deref(), clock, out).await
        }
    }
}

fn list(holds: &[Hold], out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<36} {:<16} {:<36} {:<10} {:<20} steps",
        "id", "tenant", "user", "status", "held since"
    )?;
    for h in holds {
        let steps: Vec<&str> = h.plan.steps.iter().map(|s| s.label()).collect();
        writeln!(
            out,
            "{:<36} {:<16} {:<36} {:<10} {:<20} {}",
            h.id,
            h.tenant_id,
            h.user_id,
            h.status.as_str(),
            scim_core::resource::format_datetime(h.created_at),
            steps.join(",")
        )?;
    }
    if let Some(first) = holds.first() {
        writeln!(out, "why: {}", first.reason)?;
    }
    Ok(())
}

/// The server's store (for the audit event) and the bridge's (for the hold).
#[derive(Clone, Copy)]
struct Stores<'a> {
    server: &'a dyn Store,
    store: &'a BridgeStore,
}

async fn decide(
    d: HoldDecision,
    decision: Decision,
    Stores { server, store }: Stores<'_>,
    callbacks: Option<&Callbacks>,
    clock: &dyn Clock,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let by =
        d.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "cli".into());
    let ids: Vec<String> = if d.all {
        store
            .holds(d.tenant.as_deref(), true)
            .await?
            .into_iter()
            .map(|h| h.id)
            .collect()
    } else {
        d.ids
    };
    let verb = match decision {
        Decision::Approve => "approved: its user is queued for the worker",
        Decision::Reject => "rejected: it will not be applied",
    };
    let mut missing = false;
    for id in ids {
        let now = clock.now();
        let Some(hold) = store.decide_hold(&id, decision, &by, now).await? else {
            eprintln!("no pending hold {id}");
            missing = true;
            continue;
        };
        tracing::info!(hold = %hold.id, tenant = %hold.tenant_id, user = %hold.user_id, by = %by, ?decision, "mass-change guard hold decided");
        let steps: Vec<&str> = hold.plan.steps.iter().map(|s| s.label()).collect();
        let event = AuditEvent::new(
            "bridge.hold_decided",
            "User",
            &hold.user_id,
            serde_json::json!({
                "hold": hold.id,
                "decision": hold.status.as_str(),
                "steps": steps,
            }),
        )?;
        let writer = Writer::acting_for(&hold.tenant_id, format!("operator:{by}"), None);
        server
            .append_event(&writer.context(now), &event)
            .await
            .map_err(|e| anyhow::anyhow!("recording the decision in the change log: {e}"))?;
        writeln!(out, "hold {id} {verb}")?;
        if let (Decision::Reject, Some(callbacks)) = (decision, callbacks) {
            let settled = Settled {
                tenant_id: hold.tenant_id.clone(),
                user_id: hold.user_id.clone(),
                scim_version: None,
                outcome: SettledOutcome::Rejected,
                kind: Some(hold.plan.kind),
                steps: hold.plan.steps.len(),
                detail: Some(format!("rejected by {by}")),
                at: now,
            };
            callbacks.bridge_settled(&settled).await?;
        }
    }
    Ok(if missing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
