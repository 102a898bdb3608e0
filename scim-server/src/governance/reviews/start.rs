//! Starting a review (holders from Graph become items, each with a reviewer and a
//! recommendation) and telling reviewers (at the start and in reminders).

use super::*;

/// The SCIM user whose match attribute (the rules' `match.scim`) equals `value`: id and JSON.
async fn scim_user_by_match(
    gov: &Governance,
    tenant: &str,
    value: &str,
) -> scim_core::Result<Option<(String, Value)>> {
    let bridge = gov.bridge()?;
    let rt = gov
        .registry
        .resource_type("User")
        .ok_or_else(Error::internal)?;
    let literal = serde_json::to_string(value).unwrap_or_default();
    let params = QueryParams {
        filter: Some(format!(
            "{} eq {literal}",
            bridge.bridge.rules().match_spec.scim
        )),
        count: Some("2".into()),
        ..QueryParams::default()
    };
    let query = ListQuery::from_params(
        &gov.registry,
        rt,
        &params,
        QueryLimits {
            default_page_size: 2,
            max_page_size: 2,
        },
    )?;
    let page = gov.scim.list(tenant, rt, &query, Load::default()).await?;
    Ok(page
        .resources
        .into_iter()
        .next()
        .map(|r| (r.id.clone(), r.to_json(&gov.registry, None))))
}

/// A reviewer's name and e-mail from a SCIM user (`notify::contact`).
fn person(user: &Value) -> (String, Option<String>) {
    crate::governance::notify::contact(user)
}

fn named(reviewer: &str) -> (String, Option<String>) {
    (
        reviewer.to_string(),
        crate::governance::notify::plausible_address(reviewer).then(|| reviewer.to_string()),
    )
}

/// Who reviews `user`'s item: the manager when the campaign says so and there is one who is
/// not the user, else the fallback.
async fn reviewer_for(
    gov: &Governance,
    tenant: &str,
    reviewers: &Reviewers,
    user: Option<&(String, Value)>,
) -> scim_core::Result<(String, Option<String>)> {
    let fallback = match reviewers {
        Reviewers::Named { reviewer } => return Ok(named(reviewer)),
        Reviewers::Manager { fallback } => fallback,
    };
    let manager_id = user.and_then(|(_, u)| {
        u[scim_core::schema::ENTERPRISE_USER_URN]["manager"]["value"]
            .as_str()
            .map(str::to_owned)
    });
    let Some((user_id, _)) = user else {
        return Ok(named(fallback));
    };
    match manager_id {
        Some(m) if m != *user_id => {
            let dir = &gov.bridge()?.directory;
            match dir.get_user(tenant, &m).await {
                Ok(Some(manager)) => Ok(person(&manager)),
                Ok(None) => Ok(named(fallback)),
                Err(e) => Err(Error::new(503, None, format!("reading the manager: {e}"))),
            }
        }
        _ => Ok(named(fallback)),
    }
}

/// Starts a scheduled review: reads every holder from Graph, makes the items, notifies the
/// reviewers. `false` when it was not `scheduled` (already started: a repeated run is a no-op).
pub async fn start(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<bool> {
    let row = load(gov, tenant, id).await?;
    if row.status != "scheduled" {
        return Ok(false);
    }
    let spec = spec_of(&row)?;
    let bridge = gov.bridge()?;
    let client = bridge.bridge.client().ok_or_else(|| {
        Error::new(
            409,
            None,
            "the Graph bridge is in plan mode (no credentials): a review needs to read Graph",
        )
    })?;
    let rules = bridge.bridge.rules();
    let now = gov.clock.now();
    let inactivity = time::Duration::days(i64::from(
        spec.inactivity_days.unwrap_or(gov.config.inactivity_days),
    ));
    let mut items = Vec::new();
    for entry in &spec.scope {
        let target = entry.target();
        let found: Vec<Holder> = holders(client, rules, &target).await.map_err(|e| {
            Error::new(
                502,
                None,
                format!("reading {} in Graph: {e}", label(&target)),
            )
        })?;
        for h in found {
            let scim = match &h.match_value {
                Some(v) => scim_user_by_match(gov, tenant, v).await?,
                None => None,
            };
            let (reviewer, reviewer_email) =
                reviewer_for(gov, tenant, &spec.reviewers, scim.as_ref()).await?;
            let rule_derived = match (&target, &scim) {
                (GrantTarget::Catalog { grant }, Some((_, user))) => {
                    grant.held_by(&rules.evaluate(Some(user)))
                }
                _ => false,
            };
            let (recommendation, reason) =
                recommend(&target, &h, scim.is_some(), rule_derived, now, inactivity);
            items.push(ItemRow {
                tenant_id: tenant.into(),
                review_id: id.into(),
                id: format!(
                    "{:04}-{}",
                    items.len() + 1,
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
                target: serde_json::to_string(&target).unwrap_or_default(),
                target_label: label(&target),
                graph_user_id: h.graph_user_id.clone(),
                user_principal_name: h.user_principal_name.clone(),
                display_name: h.display_name.clone(),
                scim_user_id: scim.as_ref().map(|(id, _)| id.clone()),
                assignment_id: h.assignment_id.clone(),
                reviewer,
                reviewer_email,
                last_sign_in_ms: h.last_sign_in.map(to_millis),
                rule_derived: i64::from(rule_derived),
                recommendation: recommendation.into(),
                recommendation_reason: reason,
                decision: None,
                justification: None,
                decided_by: None,
                decided_at_ms: None,
                outcome: None,
                outcome_detail: None,
                applied_at_ms: None,
            });
        }
    }
    let event = Event::new(
        tenant,
        now,
        "review.started",
        id,
        "schedule",
        json!({"items": items.len()}),
    );
    if !gov
        .store
        .start_review(tenant, id, &items, &[], &[event], now)
        .await?
    {
        return Ok(false);
    }
    notify_reviewers(gov, &row, &spec, "review.assigned").await?;
    Ok(true)
}

fn recommend(
    target: &GrantTarget,
    h: &Holder,
    has_scim_user: bool,
    rule_derived: bool,
    now: OffsetDateTime,
    inactivity: time::Duration,
) -> (&'static str, String) {
    if let Some(last) = h.last_sign_in
        && now - last > inactivity
    {
        return (
            "revoke",
            format!(
                "no sign-in for {} days (last {})",
                (now - last).whole_days(),
                last.date()
            ),
        );
    }
    match target {
        GrantTarget::Catalog { .. } if !has_scim_user => {
            ("revoke", "no SCIM user matches this Graph user".into())
        }
        GrantTarget::Catalog { .. } if !rule_derived => {
            ("revoke", "the rules no longer grant it".into())
        }
        GrantTarget::Catalog { .. } => ("keep", "the rules grant it and the user signs in".into()),
        GrantTarget::GraphGroup { .. } => (
            "keep",
            match h.last_sign_in {
                Some(_) => "the user signs in".into(),
                None => "no sign-in data (not called inactive)".into(),
            },
        ),
    }
}

/// Notifies each reviewer with undecided items (`review.assigned` at start, `review.reminder`
/// later) and records the deliveries.
async fn notify_reviewers(
    gov: &Governance,
    row: &ReviewRow,
    spec: &ReviewSpec,
    kind: &str,
) -> scim_core::Result<usize> {
    let pending = gov.store.items(&row.tenant_id, &row.id, None, true).await?;
    let mut by_reviewer: BTreeMap<String, (Option<String>, usize)> = BTreeMap::new();
    for i in pending {
        let e = by_reviewer
            .entry(i.reviewer)
            .or_insert((i.reviewer_email, 0));
        e.1 += 1;
    }
    let now = gov.clock.now();
    let mut events = Vec::new();
    for (reviewer, (email, count)) in &by_reviewer {
        let n = Notification {
            kind: kind.into(),
            tenant: row.tenant_id.clone(),
            recipient: reviewer.clone(),
            email: email.clone(),
            review_id: row.id.clone(),
            review_name: spec.name.clone(),
            pending_items: *count,
            due_at: spec.due_at,
            review_url: gov.config.review_url.clone(),
        };
        let deliveries = gov.notifier.send(&n, now).await;
        events.push(Event::new(
            &row.tenant_id,
            now,
            "review.notified",
            &row.id,
            "schedule",
            json!({"type": kind, "reviewer": reviewer, "pendingItems": count,
                   "deliveries": deliveries_json(&deliveries)}),
        ));
    }
    gov.store.record(&events).await?;
    Ok(by_reviewer.len())
}

/// The reminder entry: reviewers with undecided items of an active review are told again.
pub async fn remind(gov: &Governance, tenant: &str, id: &str) -> scim_core::Result<usize> {
    let row = load(gov, tenant, id).await?;
    if row.status != "active" {
        return Ok(0);
    }
    let spec = spec_of(&row)?;
    notify_reviewers(gov, &row, &spec, "review.reminder").await
}
