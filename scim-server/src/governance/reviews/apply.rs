//! Closing a review (the default decision for what is left) and carrying out its decisions in
//! Graph through the bridge, with the exceptions revoked rule-derived grants leave.

use super::*;

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
