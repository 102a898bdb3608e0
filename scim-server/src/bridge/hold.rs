//! `scim-server bridge hold list|approve|reject`: an operator's side of the mass-change guard
//! (`scim_graph_bridge::guard`). Approving queues the user again (the running worker, `serve`'s
//! or `bridge run`'s, applies its leaver plan, computed afresh); rejecting records the decision
//! and, when the tenant has an outcome callback, reports `provisioning.rejected` to the jobs
//! waiting on that user.

use super::cli::{HoldCommand, HoldDecision};
use crate::inbound::callback::Callbacks;
use scim_graph_bridge::clock::Clock;
use scim_graph_bridge::guard::{Decision, Hold};
use scim_graph_bridge::notify::{Settled, SettledOutcome};
use scim_graph_bridge::store::BridgeStore;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

pub(super) async fn run(
    command: HoldCommand,
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
            decide(
                d,
                Decision::Approve,
                store,
                callbacks.as_deref(),
                clock,
                out,
            )
            .await
        }
        HoldCommand::Reject(d) => {
            decide(d, Decision::Reject, store, callbacks.as_deref(), clock, out).await
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

async fn decide(
    d: HoldDecision,
    decision: Decision,
    store: &BridgeStore,
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
