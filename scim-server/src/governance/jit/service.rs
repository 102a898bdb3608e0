//! What the API and the CLI call: request, approve, deny, extend, revoke, list; and the
//! schedule's `jit.activate` / `jit.expire` entries.

use super::store::{GrantFilter, JitStore};
use super::{
    Approval, Decision, ExtendRequest, GrantRequest, GrantStatus, JitConfig, JitGrant, JitPolicy,
    Revocation, check_request, format_duration, grant_text, may_approve, parse_duration,
    parse_grant, window,
};
use crate::governance::Governance;
use crate::governance::store::{Event, Task};
use crate::store::{StoreError, WriteContext};
use scim_core::Error;
use scim_core::change_log::AuditEvent;
use scim_graph_bridge::overrides::{Override, OverrideAction};
use time::OffsetDateTime;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Schedule entry: the grant starts (the bridge is asked to reconcile the user).
pub const TASK_ACTIVATE: &str = "jit.activate";
/// Schedule entry: the grant ends (marked expired, the bridge reconciles the user).
pub const TASK_EXPIRE: &str = "jit.expire";

/// The overrides time-bound grants make for a user at `now`: an `Add` per held grant (until its
/// end), and a `Suppress` for every `only_jit` grant the user holds no time-bound grant of.
pub async fn overrides(
    store: &JitStore,
    tenant: &str,
    user: &str,
    now: OffsetDateTime,
) -> Result<Vec<Override>> {
    let held: Vec<JitGrant> = store
        .active_of(tenant, user)
        .await?
        .into_iter()
        .filter(|g| g.is_held(now))
        .collect();
    let mut out = Vec::new();
    for g in &held {
        let (Ok(grant), Some(until)) = (parse_grant(&g.grant), g.expires_at) else {
            continue;
        };
        out.push(Override {
            grant,
            action: OverrideAction::Add {
                until,
                reason: format!(
                    "time-bound grant {} (until {})",
                    g.id,
                    crate::governance::evidence::rfc3339(until)
                ),
            },
        });
    }
    for only in store.only_jit().await? {
        if held.iter().any(|g| g.grant == only) {
            continue;
        }
        if let Ok(grant) = parse_grant(&only) {
            out.push(Override {
                grant,
                action: OverrideAction::Suppress {
                    reason: "policy: held only through a time-bound grant (`only_jit`)".into(),
                },
            });
        }
    }
    Ok(out)
}

/// A SCIM user as JIT needs it: id, `userName`, active, manager id.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    user_name: Option<String>,
    active: bool,
    manager: Option<String>,
    email: Option<String>,
}

fn person(id: String, json: &serde_json::Value) -> Person {
    Person {
        email: crate::governance::notify::contact(json).1,
        user_name: json["userName"].as_str().map(str::to_owned),
        active: !matches!(json.get("active"), Some(serde_json::Value::Bool(false))),
        manager: json[scim_core::schema::ENTERPRISE_USER_URN]["manager"]["value"]
            .as_str()
            .map(str::to_owned),
        id,
    }
}

/// A SCIM user by id, or else by `userName`.
async fn find_person(gov: &Governance, tenant: &str, key: &str) -> Result<Option<Person>> {
    use crate::store::Load;
    use scim_core::query::{ListQuery, QueryLimits, QueryParams};
    let rt = gov
        .registry
        .resource_type("User")
        .ok_or_else(Error::internal)?;
    if let Some(r) = gov.scim.get(tenant, rt, key, Load::default()).await? {
        let json = r.to_json(&gov.registry, None);
        return Ok(Some(person(r.id, &json)));
    }
    let params = QueryParams {
        filter: Some(format!(
            "userName eq {}",
            serde_json::to_string(key).unwrap_or_default()
        )),
        count: Some("1".into()),
        ..QueryParams::default()
    };
    let query = ListQuery::from_params(
        &gov.registry,
        rt,
        &params,
        QueryLimits {
            default_page_size: 1,
            max_page_size: 1,
        },
    )?;
    let page = gov.scim.list(tenant, rt, &query, Load::default()).await?;
    Ok(page.resources.into_iter().next().map(|r| {
        let json = r.to_json(&gov.registry, None);
        person(r.id, &json)
    }))
}

fn jit_store(gov: &Governance) -> JitStore {
    JitStore::new(gov.store.clone())
}

fn event(tenant: &str, now: OffsetDateTime, kind: &str, g: &JitGrant, actor: &str) -> Event {
    Event::new(
        tenant,
        now,
        kind,
        &g.id,
        actor,
        serde_json::json!({
            "user": g.user, "grant": g.grant, "duration": g.duration, "status": g.status,
            "justification": g.justification, "decidedBy": g.decided_by, "note": g.note,
            "startsAt": g.starts_at.map(crate::governance::evidence::rfc3339),
            "expiresAt": g.expires_at.map(crate::governance::evidence::rfc3339), "extends": g.extends,
        }),
    )
}

/// The change-log record of a grant's step (`governance.jit.approved`, …), with the writer's
/// context: the principal is the actor (`token:<id>`, `cli`, `policy`, `schedule`).
fn chain_event(
    tenant: &str,
    actor: &str,
    now: OffsetDateTime,
    kind: &str,
    g: &JitGrant,
) -> Result<(WriteContext, AuditEvent)> {
    let ctx =
        crate::service::write::Writer::acting_for(tenant, format!("governance:{actor}"), None)
            .context(now);
    let event = AuditEvent::new(
        &format!("governance.{kind}"),
        "JitGrant",
        &g.id,
        serde_json::json!({
            "user": g.user, "grant": g.grant, "status": g.status, "decidedBy": g.decided_by,
            "startsAt": g.starts_at.map(crate::governance::evidence::rfc3339),
            "expiresAt": g.expires_at.map(crate::governance::evidence::rfc3339), "extends": g.extends,
        }),
    )?;
    Ok((ctx, event))
}

/// The schedule entries of a grant that became active: start and end.
fn active_tasks(tenant: &str, g: &JitGrant) -> Vec<Task> {
    let mut tasks = Vec::new();
    if let Some(start) = g.starts_at {
        tasks.push(Task::new(tenant, TASK_ACTIVATE, &g.id, start));
    }
    if let Some(end) = g.expires_at {
        tasks.push(Task::new(tenant, TASK_EXPIRE, &g.id, end));
    }
    tasks
}

/// Asks the bridge to reconcile a user now (no-op without a bridge).
async fn reconcile_user(gov: &Governance, tenant: &str, user: &str) -> Result<()> {
    if let Some(b) = &gov.bridge {
        b.store
            .enqueue(tenant, user, gov.clock.now())
            .await
            .map_err(|e| Error::new(503, None, format!("queueing the user for the bridge: {e}")))?;
    }
    Ok(())
}

fn config(gov: &Governance) -> &JitConfig {
    &gov.config.jit
}

/// `POST /grants`: a new request, pending or (auto-approval) active at once.
pub async fn request(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    body: GrantRequest,
) -> Result<JitGrant> {
    let (checked, policy) = check_request(
        config(gov),
        &body.grant,
        &body.duration,
        &body.justification,
    )?;
    let user = find_person(gov, tenant, &body.user)
        .await?
        .ok_or_else(|| Error::not_found_detail(format!("user: no SCIM user {:?}", body.user)))?;
    if !user.active {
        return Err(Error::invalid_value(format!(
            "user: {} is inactive; a leaver gets no time-bound access",
            user.user_name.as_deref().unwrap_or(&user.id)
        )));
    }
    let store = jit_store(gov);
    let grant_text = grant_text(&checked.grant);
    if let Some(open) = store
        .list(
            tenant,
            &GrantFilter {
                user: Some(user.id.clone()),
                status: None,
            },
        )
        .await?
        .into_iter()
        .find(|g| {
            g.grant == grant_text
                && matches!(g.status, GrantStatus::Pending | GrantStatus::Active)
                && g.extends.is_none()
        })
    {
        return Err(Error::conflict(format!(
            "{grant_text} for this user is {} already (grant {}); ask for an extension instead",
            open.status.as_str(),
            open.id
        )));
    }
    let requested_by = match &body.requested_by {
        Some(r) => {
            find_person(gov, tenant, r)
                .await?
                .ok_or_else(|| Error::invalid_value(format!("requestedBy: no SCIM user {r:?}")))?
                .id
        }
        None => user.id.clone(),
    };
    let now = gov.clock.now();
    let g = JitGrant {
        id: uuid::Uuid::new_v4().to_string(),
        user: user.id.clone(),
        grant: grant_text,
        duration: format_duration(checked.seconds),
        justification: checked.justification,
        requested_by,
        requested_at: now,
        status: GrantStatus::Pending,
        decided_by: None,
        decided_at: None,
        note: None,
        starts_at: None,
        expires_at: None,
        extends: None,
    };
    create(gov, tenant, actor, g, checked.seconds, &policy, None).await
}

/// Stores a new request (or extension); auto-approved policies activate it at once.
async fn create(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    mut g: JitGrant,
    seconds: i64,
    policy: &JitPolicy,
    extends_until: Option<OffsetDateTime>,
) -> Result<JitGrant> {
    let now = g.requested_at;
    let store = jit_store(gov);
    let mut events = vec![event(tenant, now, "jit.requested", &g, actor)];
    let mut tasks = Vec::new();
    if policy.approval == Approval::Auto {
        let (start, end) = window(now, extends_until, seconds);
        g.status = GrantStatus::Active;
        g.decided_by = Some("policy".into());
        g.decided_at = Some(now);
        g.starts_at = Some(start);
        g.expires_at = Some(end);
        events.push(event(tenant, now, "jit.approved", &g, "policy"));
        tasks = active_tasks(tenant, &g);
    }
    let kind = if g.status == GrantStatus::Active {
        "jit.approved"
    } else {
        "jit.requested"
    };
    let (ctx, chained) = chain_event(tenant, actor, now, kind, &g)?;
    store
        .insert(tenant, &g, seconds, &tasks, &events, Some((&ctx, &chained)))
        .await?;
    if g.status == GrantStatus::Active {
        reconcile_user(gov, tenant, &g.user).await?;
    } else if let Err(e) = notify_approvers(gov, tenant, &g, policy).await {
        // The request is stored; a failed lookup for the notification must not undo it.
        tracing::warn!(grant = %g.id, error = %e, "could not notify the approvers of a time-bound grant");
    }
    Ok(g)
}

/// Tells each person who may approve `g` (its policy's approvers and, with `approval =
/// "manager"`, the user's manager) that it waits for a decision, and records the deliveries as
/// a `jit.notified` event. Unknown or inactive approvers and the user themself are skipped: none
/// of them could approve.
async fn notify_approvers(
    gov: &Governance,
    tenant: &str,
    g: &JitGrant,
    policy: &JitPolicy,
) -> Result<usize> {
    let Some(user) = find_person(gov, tenant, &g.user).await? else {
        return Ok(0);
    };
    let mut keys: Vec<String> = Vec::new();
    if policy.approval == Approval::Manager
        && let Some(manager) = &user.manager
    {
        keys.push(manager.clone());
    }
    keys.extend(policy.approvers.iter().cloned());
    let now = gov.clock.now();
    let mut told = std::collections::BTreeSet::new();
    let mut deliveries = Vec::new();
    for key in keys {
        let Some(approver) = find_person(gov, tenant, &key).await? else {
            continue;
        };
        if !approver.active || approver.id == user.id || !told.insert(approver.id.clone()) {
            continue;
        }
        let recipient = approver.user_name.clone().unwrap_or(approver.id.clone());
        let request = crate::governance::notify::ApprovalRequest {
            kind: "jit.approval_requested".into(),
            tenant: tenant.into(),
            recipient: recipient.clone(),
            email: approver.email.clone(),
            grant_id: g.id.clone(),
            grant: g.grant.clone(),
            user: user.user_name.clone().unwrap_or(user.id.clone()),
            duration: g.duration.clone(),
            justification: g.justification.clone(),
        };
        let sent = gov.notifier.send_approval(&request, now).await;
        deliveries.push(serde_json::json!({
            "approver": recipient,
            "deliveries": crate::governance::notify::deliveries_json(&sent),
        }));
    }
    if !deliveries.is_empty() {
        let record = Event::new(
            tenant,
            now,
            "jit.notified",
            &g.id,
            "governance",
            serde_json::json!({"approvers": deliveries}),
        );
        gov.store.record(&[record]).await?;
    }
    Ok(told.len())
}

async fn load(gov: &Governance, tenant: &str, id: &str) -> Result<JitGrant> {
    jit_store(gov)
        .get(tenant, id)
        .await?
        .ok_or_else(|| Error::not_found_detail(format!("no time-bound grant {id:?}")))
}

/// `POST /grants/{id}/approve`.
pub async fn approve(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    id: &str,
    decision: Decision,
) -> Result<JitGrant> {
    decide(gov, tenant, actor, id, decision, true).await
}

/// `POST /grants/{id}/deny`.
pub async fn deny(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    id: &str,
    decision: Decision,
) -> Result<JitGrant> {
    decide(gov, tenant, actor, id, decision, false).await
}

async fn decide(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    id: &str,
    decision: Decision,
    approve: bool,
) -> Result<JitGrant> {
    let mut g = load(gov, tenant, id).await?;
    if g.status != GrantStatus::Pending {
        return Err(Error::conflict(format!(
            "grant {id} is {}, not pending",
            g.status.as_str()
        )));
    }
    let grant = parse_grant(&g.grant).map_err(|e| Error::from(StoreError::Corrupt(e)))?;
    let policy = config(gov).policy(&grant).cloned().ok_or_else(|| {
        Error::conflict(format!(
            "{} has no `[[governance.jit.policies]]` any more; the request cannot be decided",
            g.grant
        ))
    })?;
    let user = find_person(gov, tenant, &g.user)
        .await?
        .ok_or_else(|| Error::conflict(format!("the user {} no longer exists", g.user)))?;
    let approver = find_person(gov, tenant, &decision.approver)
        .await?
        .ok_or_else(|| {
            Error::invalid_value(format!("approver: no SCIM user {:?}", decision.approver))
        })?;
    if !approver.active && policy.approval != Approval::Auto {
        return Err(Error::forbidden(format!(
            "approver: {} is inactive",
            approver.user_name.as_deref().unwrap_or(&approver.id)
        )));
    }
    may_approve(
        &policy,
        &user.id,
        user.manager.as_deref(),
        &approver.id,
        approver.user_name.as_deref(),
    )
    .map_err(Error::forbidden)?;
    if approve && !user.active {
        return Err(Error::conflict(
            "the user is inactive now; a leaver gets no time-bound access",
        ));
    }
    let now = gov.clock.now();
    g.decided_by = Some(approver.id.clone());
    g.decided_at = Some(now);
    g.note = decision
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let (kind, tasks) = if approve {
        let seconds = parse_duration(&g.duration).unwrap_or(0);
        let extends_until = match &g.extends {
            Some(e) => load(gov, tenant, e).await?.expires_at,
            None => None,
        };
        let (start, end) = window(now, extends_until, seconds);
        g.status = GrantStatus::Active;
        g.starts_at = Some(start);
        g.expires_at = Some(end);
        ("jit.approved", active_tasks(tenant, &g))
    } else {
        g.status = GrantStatus::Denied;
        ("jit.denied", Vec::new())
    };
    let events = [event(tenant, now, kind, &g, actor)];
    let (ctx, chained) = chain_event(tenant, actor, now, kind, &g)?;
    if !jit_store(gov)
        .transition(
            tenant,
            GrantStatus::Pending,
            &g,
            &tasks,
            &events,
            Some((&ctx, &chained)),
        )
        .await?
    {
        return Err(Error::conflict(format!("grant {id} was decided meanwhile")));
    }
    if approve {
        reconcile_user(gov, tenant, &g.user).await?;
    }
    Ok(g)
}

/// `POST /grants/{id}/extend`: a new request continuing an active grant from its end.
pub async fn extend(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    id: &str,
    body: ExtendRequest,
) -> Result<JitGrant> {
    let base = load(gov, tenant, id).await?;
    let now = gov.clock.now();
    if !(base.status == GrantStatus::Active && base.expires_at.is_some_and(|e| e > now)) {
        return Err(Error::conflict(format!(
            "grant {id} is not active; request a new grant instead"
        )));
    }
    let (checked, policy) = check_request(
        config(gov),
        &base.grant,
        &body.duration,
        &body.justification,
    )?;
    let g = JitGrant {
        id: uuid::Uuid::new_v4().to_string(),
        user: base.user.clone(),
        grant: base.grant.clone(),
        duration: format_duration(checked.seconds),
        justification: checked.justification,
        requested_by: base.user.clone(),
        requested_at: now,
        status: GrantStatus::Pending,
        decided_by: None,
        decided_at: None,
        note: None,
        starts_at: None,
        expires_at: None,
        extends: Some(base.id.clone()),
    };
    create(
        gov,
        tenant,
        actor,
        g,
        checked.seconds,
        &policy,
        base.expires_at,
    )
    .await
}

/// `POST /grants/{id}/revoke`: ends an active grant now (or withdraws a pending request).
pub async fn revoke(
    gov: &Governance,
    tenant: &str,
    actor: &str,
    id: &str,
    body: Revocation,
) -> Result<JitGrant> {
    let mut g = load(gov, tenant, id).await?;
    let from = g.status;
    if !matches!(from, GrantStatus::Active | GrantStatus::Pending) {
        return Err(Error::conflict(format!(
            "grant {id} is {} already",
            g.status.as_str()
        )));
    }
    let now = gov.clock.now();
    g.status = GrantStatus::Revoked;
    g.note = body.note.or(g.note);
    if from == GrantStatus::Active {
        g.expires_at = Some(g.expires_at.map_or(now, |e| e.min(now)));
    }
    let by = body.by.as_deref().unwrap_or(actor);
    let events = [event(tenant, now, "jit.revoked", &g, by)];
    let (ctx, chained) = chain_event(tenant, by, now, "jit.revoked", &g)?;
    if !jit_store(gov)
        .transition(tenant, from, &g, &[], &events, Some((&ctx, &chained)))
        .await?
    {
        return Err(Error::conflict(format!("grant {id} changed meanwhile")));
    }
    if from == GrantStatus::Active {
        reconcile_user(gov, tenant, &g.user).await?;
    }
    Ok(g)
}

/// Schedule entry [`TASK_ACTIVATE`]: the bridge reconciles the user (the grant is now held).
pub async fn activate(gov: &Governance, tenant: &str, id: &str) -> Result<()> {
    let g = load(gov, tenant, id).await?;
    if g.status == GrantStatus::Active {
        reconcile_user(gov, tenant, &g.user).await?;
    }
    Ok(())
}

/// Schedule entry [`TASK_EXPIRE`]: marks the grant expired (once) and has the bridge reconcile
/// the user, which removes the grant unless something else still gives it. Idempotent.
pub async fn expire(gov: &Governance, tenant: &str, id: &str) -> Result<()> {
    let mut g = load(gov, tenant, id).await?;
    let now = gov.clock.now();
    if g.status == GrantStatus::Active && g.expires_at.is_some_and(|e| e <= now) {
        g.status = GrantStatus::Expired;
        let events = [event(tenant, now, "jit.expired", &g, "schedule")];
        let (ctx, chained) = chain_event(tenant, "schedule", now, "jit.expired", &g)?;
        jit_store(gov)
            .transition(
                tenant,
                GrantStatus::Active,
                &g,
                &[],
                &events,
                Some((&ctx, &chained)),
            )
            .await?;
    }
    if matches!(g.status, GrantStatus::Expired | GrantStatus::Revoked) {
        reconcile_user(gov, tenant, &g.user).await?;
    }
    Ok(())
}

/// `GET /grants`.
pub async fn list(gov: &Governance, tenant: &str, filter: &GrantFilter) -> Result<Vec<JitGrant>> {
    if let Some(s) = &filter.status {
        GrantStatus::parse(s).map_err(|_| {
            Error::invalid_value(format!(
                "status: {s:?} is not pending, active, denied, expired or revoked"
            ))
        })?;
    }
    jit_store(gov).list(tenant, filter).await
}

/// `GET /grants/{id}`.
pub async fn get(gov: &Governance, tenant: &str, id: &str) -> Result<JitGrant> {
    load(gov, tenant, id).await
}
