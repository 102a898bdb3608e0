//! Hygiene reports: what is wrong with access right now, read from SCIM, the bridge's state and
//! Microsoft Graph (reads only; nothing is changed).
//!
//! - **stale**: active in SCIM, enabled in Graph, and no sign-in for `stale_days` days
//!   (`signInActivity.lastSignInDateTime`; Graph returns it only to tenants with an Entra ID P1
//!   licence, so a user without a value is *unknown*, counted apart, never called stale);
//! - **orphaned**: Graph users holding catalog grants whom no SCIM user accounts for (neither
//!   by the bridge's link nor by the rules' match attribute), and users terminated in SCIM
//!   (`active: false`) whose Graph account is still enabled;
//! - **drift**: users whose Graph state differs from what the rules (and governance overrides)
//!   want, although the bridge has no pending work for them and their SCIM record has not changed
//!   for `convergence_minutes`: the bridge had its chance and the difference stayed;
//! - **privileged**: every holder of a catalog role, and how they got it: `rule` (the rules
//!   grant it), `jit` (an active time-bound grant), both, or `outside` (neither: granted in Entra
//!   by hand, or an orphan).
//!
//! [`build`] is the decision, from plain facts and without I/O; [`collect`] gathers the facts
//! (SCIM users through the bridge's `UserDirectory`, links and pending work from the bridge's
//! store, Graph through the bridge's client) and calls it.

use crate::governance::jit::{JitGrant, JitStore, grant_text};
use scim_core::Error;
use scim_graph_bridge::directory::UserDirectory;
use scim_graph_bridge::graph::GraphRequest;
use scim_graph_bridge::holders::{GrantTarget, holders};
use scim_graph_bridge::overrides::{Grant, GrantKind};
use scim_graph_bridge::reconcile::Bridge;
use scim_graph_bridge::store::BridgeStore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

type Result<T, E = Error> = std::result::Result<T, E>;

/// What a report looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", default)]
pub struct HygieneOptions {
    /// Days without a sign-in after which an active account is stale (default 90).
    pub stale_days: u32,
    /// Minutes the bridge gets to converge a changed user before a difference is drift
    /// (default 60).
    pub convergence_minutes: u32,
}

impl Default for HygieneOptions {
    fn default() -> Self {
        Self {
            stale_days: 90,
            convergence_minutes: 60,
        }
    }
}

/// A SCIM user as the report sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScimFacts {
    /// SCIM id.
    pub id: String,
    /// `userName`.
    pub user_name: Option<String>,
    /// `active`.
    pub active: bool,
    /// The rules' match value (how the bridge finds the Graph user).
    pub match_value: Option<String>,
    /// The Graph user the bridge linked it to.
    pub graph_id: Option<String>,
    /// Catalog roles the rules grant the user (without overrides).
    pub rule_roles: BTreeSet<String>,
}

/// A Graph user as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphFacts {
    /// Object id.
    pub id: String,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// `accountEnabled`.
    pub enabled: bool,
    /// `signInActivity.lastSignInDateTime`.
    pub last_sign_in: Option<OffsetDateTime>,
}

/// A holder of a catalog grant in Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderFacts {
    /// The grant.
    pub grant: Grant,
    /// Graph user id.
    pub graph_user_id: String,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// The value of the rules' `match.graph` property.
    pub match_value: Option<String>,
}

/// A user whose plan is not empty although the bridge should have converged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftedUser {
    /// SCIM id.
    pub user_id: String,
    /// `userName`.
    pub user_name: Option<String>,
    /// The Graph user.
    pub graph_user_id: Option<String>,
    /// What the bridge would do, one `label target` per step (`add_group eng`).
    pub steps: Vec<String>,
}

/// An active account without a recent sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaleAccount {
    /// SCIM id.
    pub user_id: String,
    /// `userName`.
    pub user_name: Option<String>,
    /// The Graph user.
    pub graph_user_id: String,
    /// The last sign-in Graph reports.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_sign_in: OffsetDateTime,
    /// Whole days since.
    pub days_since_sign_in: i64,
}

/// Why an account is orphaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanReason {
    /// Holds catalog grants; no SCIM user accounts for it.
    NoScimUser,
    /// Terminated in SCIM (`active: false`) but enabled in Graph.
    TerminatedButEnabled,
}

/// An orphaned Graph account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrphanedAccount {
    /// The Graph user.
    pub graph_user_id: String,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// `no_scim_user` or `terminated_but_enabled`.
    #[schema(value_type = String)]
    pub reason: OrphanReason,
    /// The SCIM user, when there is one.
    pub user_id: Option<String>,
    /// Catalog grants it holds (`kind:name`), for `no_scim_user`.
    pub grants: Vec<String>,
}

/// How a role holder got the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// The rules grant it.
    Rule,
    /// An active time-bound grant.
    Jit,
    /// Both.
    RuleAndJit,
    /// Neither (granted outside this system).
    Outside,
}

impl RoleSource {
    /// As shown and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleSource::Rule => "rule",
            RoleSource::Jit => "jit",
            RoleSource::RuleAndJit => "rule_and_jit",
            RoleSource::Outside => "outside",
        }
    }
}

/// A holder of a catalog role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivilegedHolder {
    /// The catalog role.
    pub role: String,
    /// The Graph user.
    pub graph_user_id: String,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// The SCIM user, when there is one.
    pub user_id: Option<String>,
    /// `rule`, `jit`, `rule_and_jit` or `outside`.
    #[schema(value_type = String)]
    pub source: RoleSource,
    /// The time-bound grant, with `jit`.
    pub jit_grant: Option<String>,
    /// When it ends, with `jit`.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub jit_expires_at: Option<OffsetDateTime>,
}

/// A hygiene report of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HygieneReport {
    /// The tenant.
    pub tenant: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: OffsetDateTime,
    /// Days without a sign-in that make an account stale.
    pub stale_days: u32,
    /// The convergence window, minutes.
    pub convergence_minutes: u32,
    /// SCIM users read.
    pub users_checked: usize,
    /// Active linked users Graph reports no sign-in for (no P1 licence, or never signed in).
    pub sign_in_unknown: usize,
    /// Stale accounts.
    pub stale: Vec<StaleAccount>,
    /// Orphaned accounts.
    pub orphaned: Vec<OrphanedAccount>,
    /// Drift.
    pub drift: Vec<DriftedUser>,
    /// Holders of catalog roles.
    pub privileged: Vec<PrivilegedHolder>,
}

/// Everything [`build`] decides from.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// SCIM users.
    pub scim: Vec<ScimFacts>,
    /// Graph users the linked SCIM users map to, by id.
    pub graph: BTreeMap<String, GraphFacts>,
    /// Holders of catalog grants.
    pub holders: Vec<HolderFacts>,
    /// Drifted users (already decided by planning).
    pub drift: Vec<DriftedUser>,
    /// Active time-bound grants, by SCIM user.
    pub jit: BTreeMap<String, Vec<JitGrant>>,
}

/// The report from `facts` at `now`.
pub fn build(
    tenant: &str,
    facts: &Facts,
    options: HygieneOptions,
    now: OffsetDateTime,
) -> HygieneReport {
    let by_graph: BTreeMap<&str, &ScimFacts> = facts
        .scim
        .iter()
        .filter_map(|u| u.graph_id.as_deref().map(|g| (g, u)))
        .collect();
    let by_match: BTreeMap<String, &ScimFacts> = facts
        .scim
        .iter()
        .filter_map(|u| u.match_value.as_ref().map(|m| (m.to_lowercase(), u)))
        .collect();
    let scim_of = |graph_id: &str, match_value: Option<&String>| -> Option<&ScimFacts> {
        by_graph
            .get(graph_id)
            .copied()
            .or_else(|| match_value.and_then(|m| by_match.get(&m.to_lowercase()).copied()))
    };
    let stale_before = now - time::Duration::days(i64::from(options.stale_days));
    let mut stale = Vec::new();
    let mut unknown = 0;
    let mut orphaned = Vec::new();
    for u in &facts.scim {
        let Some(g) = u.graph_id.as_ref().and_then(|id| facts.graph.get(id)) else {
            continue;
        };
        if u.active && g.enabled {
            match g.last_sign_in {
                None => unknown += 1,
                Some(at) if at < stale_before => stale.push(StaleAccount {
                    user_id: u.id.clone(),
                    user_name: u.user_name.clone(),
                    graph_user_id: g.id.clone(),
                    last_sign_in: at,
                    days_since_sign_in: (now - at).whole_days(),
                }),
                Some(_) => {}
            }
        }
        if !u.active && g.enabled {
            orphaned.push(OrphanedAccount {
                graph_user_id: g.id.clone(),
                user_principal_name: g.user_principal_name.clone(),
                reason: OrphanReason::TerminatedButEnabled,
                user_id: Some(u.id.clone()),
                grants: Vec::new(),
            });
        }
    }
    let mut unaccounted: BTreeMap<&str, (Option<String>, BTreeSet<String>)> = BTreeMap::new();
    for h in &facts.holders {
        if scim_of(&h.graph_user_id, h.match_value.as_ref()).is_none() {
            let entry = unaccounted
                .entry(h.graph_user_id.as_str())
                .or_insert_with(|| (h.user_principal_name.clone(), BTreeSet::new()));
            entry.1.insert(grant_text(&h.grant));
        }
    }
    for (id, (upn, grants)) in unaccounted {
        orphaned.push(OrphanedAccount {
            graph_user_id: id.to_string(),
            user_principal_name: upn,
            reason: OrphanReason::NoScimUser,
            user_id: None,
            grants: grants.into_iter().collect(),
        });
    }
    let mut privileged = Vec::new();
    for h in facts
        .holders
        .iter()
        .filter(|h| h.grant.kind == GrantKind::Role)
    {
        let scim = scim_of(&h.graph_user_id, h.match_value.as_ref());
        let rule = scim.is_some_and(|u| u.active && u.rule_roles.contains(&h.grant.name));
        let jit = scim.and_then(|u| {
            facts.jit.get(&u.id).and_then(|gs| {
                gs.iter()
                    .filter(|g| g.is_held(now) && g.grant == grant_text(&h.grant))
                    .max_by_key(|g| g.expires_at)
            })
        });
        let source = match (rule, jit.is_some()) {
            (true, true) => RoleSource::RuleAndJit,
            (true, false) => RoleSource::Rule,
            (false, true) => RoleSource::Jit,
            (false, false) => RoleSource::Outside,
        };
        privileged.push(PrivilegedHolder {
            role: h.grant.name.clone(),
            graph_user_id: h.graph_user_id.clone(),
            user_principal_name: h.user_principal_name.clone(),
            user_id: scim.map(|u| u.id.clone()),
            source,
            jit_grant: jit.map(|g| g.id.clone()),
            jit_expires_at: jit.and_then(|g| g.expires_at),
        });
    }
    stale.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    orphaned.sort_by(|a, b| (a.reason, &a.graph_user_id).cmp(&(b.reason, &b.graph_user_id)));
    privileged.sort_by(|a, b| (&a.role, &a.graph_user_id).cmp(&(&b.role, &b.graph_user_id)));
    let mut drift = facts.drift.clone();
    drift.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    HygieneReport {
        tenant: tenant.to_string(),
        generated_at: now,
        stale_days: options.stale_days,
        convergence_minutes: options.convergence_minutes,
        users_checked: facts.scim.len(),
        sign_in_unknown: unknown,
        stale,
        orphaned,
        drift,
        privileged,
    }
}

/// What [`collect`] reads from.
pub struct Sources<'a> {
    /// The bridge (rules, Graph client, overrides).
    pub bridge: &'a Bridge,
    /// The bridge's tables (links, pending work).
    pub bridge_store: &'a BridgeStore,
    /// The SCIM users.
    pub directory: &'a dyn UserDirectory,
    /// Time-bound grants.
    pub jit: &'a JitStore,
    /// The change log's newest write of a user (is a change still unseen by the bridge?).
    pub changes: &'a crate::governance::evidence::EvidenceStore,
}

fn graph_error(e: impl std::fmt::Display) -> Error {
    Error::new(
        502,
        None,
        format!("reading Microsoft Graph for the report failed: {e}"),
    )
}

fn scim_time(v: &serde_json::Value) -> Option<OffsetDateTime> {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
}

/// Reads the facts of `tenant` and builds its report. Needs the bridge in apply mode (the report
/// reads Graph); in plan mode the answer is 409 saying so.
pub async fn collect(
    src: &Sources<'_>,
    tenant: &str,
    options: HygieneOptions,
    now: OffsetDateTime,
) -> Result<HygieneReport> {
    let bridge = src.bridge;
    let Some(client) = bridge.client() else {
        return Err(Error::conflict(
            "hygiene reports read Microsoft Graph, and the bridge is in plan mode (configure \
             `[graph]` credentials and `mode = \"apply\"`)",
        ));
    };
    let rules = bridge.rules();
    let links = src
        .bridge_store
        .links(tenant)
        .await
        .map_err(|e| Error::new(503, None, format!("reading the bridge's links: {e}")))?;
    let pending = src
        .bridge_store
        .pending_users(tenant)
        .await
        .map_err(|e| Error::new(503, None, format!("reading the bridge's queue: {e}")))?;
    // a user's newest change past the bridge's cursor is work the bridge has not even queued
    let cursor = src
        .bridge_store
        .cursors()
        .await
        .map_err(|e| Error::new(503, None, format!("reading the bridge's cursor: {e}")))?
        .into_iter()
        .find(|c| c.tenant == tenant)
        .map_or(0, |c| i64::try_from(c.seq).unwrap_or(i64::MAX));
    // grants held only through time-bound grants are no rule's, whatever the rules say
    let only_jit: BTreeSet<String> = src.jit.only_jit().await?.into_iter().collect();
    let mut facts = Facts::default();
    let settled_before = now - time::Duration::minutes(i64::from(options.convergence_minutes));
    let mut after: Option<String> = None;
    let mut users = Vec::new();
    loop {
        let ids = src
            .directory
            .list_user_ids(tenant, after.as_deref(), 500)
            .await
            .map_err(|e| Error::new(503, None, format!("reading SCIM users: {e}")))?;
        for id in &ids {
            if let Some(json) = src
                .directory
                .get_user(tenant, id)
                .await
                .map_err(|e| Error::new(503, None, format!("reading SCIM user {id}: {e}")))?
            {
                users.push((id.clone(), json));
            }
        }
        if ids.len() < 500 {
            break;
        }
        after = ids.last().cloned();
    }
    for (id, json) in &users {
        let desired = rules.evaluate(Some(json));
        facts.scim.push(ScimFacts {
            id: id.clone(),
            user_name: desired.user_name.clone(),
            active: desired.account_enabled,
            match_value: desired.match_value.clone(),
            graph_id: links.get(id).and_then(|l| l.graph_id.clone()),
            rule_roles: desired
                .roles
                .iter()
                .filter(|r| !only_jit.contains(&format!("role:{r}")))
                .cloned()
                .collect(),
        });
        let grants = src.jit.active_of(tenant, id).await?;
        if !grants.is_empty() {
            facts.jit.insert(id.clone(), grants);
        }
    }
    // the linked Graph users: enabled, last sign-in
    let linked: Vec<String> = facts
        .scim
        .iter()
        .filter_map(|u| u.graph_id.clone())
        .collect();
    let reads: Vec<GraphRequest> = linked
        .iter()
        .map(|id| {
            GraphRequest::get(format!(
                "/users/{id}?$select=id,userPrincipalName,accountEnabled,signInActivity"
            ))
        })
        .collect();
    let answers = client.batch(&reads).await.map_err(graph_error)?;
    for (id, r) in linked.iter().zip(answers) {
        if r.is_success() {
            facts.graph.insert(
                id.clone(),
                GraphFacts {
                    id: id.clone(),
                    user_principal_name: r.body["userPrincipalName"].as_str().map(str::to_owned),
                    enabled: r.body["accountEnabled"].as_bool().unwrap_or(true),
                    last_sign_in: scim_time(&r.body["signInActivity"]["lastSignInDateTime"]),
                },
            );
        } else if r.status != 404 {
            return Err(graph_error(r.to_error()));
        }
    }
    // holders of every catalog grant
    let catalog = &rules.catalog;
    let grants = catalog
        .groups
        .keys()
        .map(|n| Grant::new(GrantKind::Group, n.clone()))
        .chain(
            catalog
                .roles
                .keys()
                .map(|n| Grant::new(GrantKind::Role, n.clone())),
        )
        .chain(
            catalog
                .licenses
                .keys()
                .map(|n| Grant::new(GrantKind::License, n.clone())),
        );
    for grant in grants {
        let target = GrantTarget::Catalog {
            grant: grant.clone(),
        };
        for h in holders(client, rules, &target).await.map_err(graph_error)? {
            facts.holders.push(HolderFacts {
                grant: grant.clone(),
                graph_user_id: h.graph_user_id,
                user_principal_name: h.user_principal_name,
                match_value: h.match_value,
            });
        }
    }
    // drift: settled users whose plan is not empty
    for (id, json) in &users {
        let settled = scim_time(&json["meta"]["lastModified"]).is_some_and(|t| t < settled_before);
        if !settled || pending.contains(id) {
            continue;
        }
        let unseen = src
            .changes
            .leaver_change(tenant, id, now)
            .await?
            .is_some_and(|c| c.seq > cursor);
        if unseen {
            continue;
        }
        let link = links.get(id).cloned().unwrap_or_default();
        let plan = bridge
            .plan_user(src.directory, tenant, id, &link)
            .await
            .map_err(graph_error)?;
        if !plan.is_noop() {
            facts.drift.push(DriftedUser {
                user_id: id.clone(),
                user_name: plan.desired.user_name.clone(),
                graph_user_id: plan.graph_user_id.clone(),
                steps: plan.steps.iter().map(step_text).collect(),
            });
        }
    }
    let report = build(tenant, &facts, options, now);
    record_gauges(&report);
    Ok(report)
}

/// When the schedule worker makes its next hygiene report: at the first pass, then every
/// `hygiene_interval_minutes`. A pass in which some tenant's report failed (Graph unreachable or
/// throttled, a token not yet granted) is tried again sooner, after the worker's poll interval,
/// doubling with each failure up to the interval: waiting a whole interval would leave the
/// gauges empty for an hour after a start that met a passing Graph error.
#[derive(Debug, Default)]
pub struct HygieneSchedule {
    next: Option<OffsetDateTime>,
    failures: u32,
}

impl HygieneSchedule {
    fn is_due(&self, now: OffsetDateTime) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    fn passed(&mut self, now: OffsetDateTime, interval: time::Duration) {
        self.failures = 0;
        self.next = Some(now + interval);
    }

    fn failed(&mut self, now: OffsetDateTime, poll: time::Duration, interval: time::Duration) {
        let backoff = poll * 2_i32.saturating_pow(self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        self.next = Some(now + backoff.min(interval));
    }
}

/// For the schedule worker: when `schedule` says a report is due, a report of every tenant with
/// the default thresholds, which publishes the gauges; nothing without the bridge in apply
/// mode. Failures are logged and tried again with backoff ([`HygieneSchedule`]).
pub async fn periodic(gov: &crate::governance::Governance, schedule: &mut HygieneSchedule) {
    let minutes = gov.config.hygiene_interval_minutes;
    let now = gov.clock.now();
    if minutes == 0
        || !schedule.is_due(now)
        || gov
            .bridge
            .as_ref()
            .is_none_or(|b| b.bridge.client().is_none())
    {
        return;
    }
    let interval = time::Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60));
    let poll = time::Duration::seconds(
        i64::try_from(gov.config.poll_interval_seconds.max(1)).unwrap_or(i64::MAX / 2),
    );
    let pass = async {
        let tenants = match gov.scim.list_tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "listing tenants for the hygiene report failed");
                return false;
            }
        };
        let mut all_passed = true;
        for tenant in tenants {
            if let Err(e) = report(gov, &tenant.id, HygieneOptions::default()).await {
                tracing::warn!(tenant = %tenant.id, error = %e.detail(), "hygiene report failed");
                all_passed = false;
            }
        }
        all_passed
    };
    // Bounded, like the worker's other steps: the reports run inside the schedule worker, so one
    // that never ends would stop every schedule entry (time-bound grants' expiries included)
    // without a word. A report may take as long as its interval (a large tenant read through
    // Graph's `$batch`es takes minutes): past that its gauges are stale anyway.
    let bound = super::schedule::STEP_TIMEOUT
        .max(std::time::Duration::from_secs(minutes.saturating_mul(60)));
    let all_passed = match tokio::time::timeout(bound, pass).await {
        Ok(all_passed) => all_passed,
        Err(_) => {
            super::schedule::step_timed_out("hygiene", bound);
            false
        }
    };
    if all_passed {
        schedule.passed(now, interval);
    } else {
        schedule.failed(now, poll, interval);
    }
}

/// The report of `tenant` now, from `gov`'s bridge (409 without one, as in plan mode).
pub async fn report(
    gov: &crate::governance::Governance,
    tenant: &str,
    options: HygieneOptions,
) -> Result<HygieneReport> {
    let b = gov.bridge.as_ref().ok_or_else(|| {
        Error::new(
            409,
            None,
            "hygiene reports read Microsoft Graph: configure the Graph bridge (`[graph]`) on \
             this server",
        )
    })?;
    let jit = JitStore::new(gov.store.clone());
    let changes = crate::governance::evidence::EvidenceStore::new(gov.store.clone());
    let src = Sources {
        bridge: &b.bridge,
        bridge_store: &b.store,
        directory: b.directory.as_ref(),
        jit: &jit,
        changes: &changes,
    };
    collect(&src, tenant, options, gov.clock.now()).await
}

fn step_text(step: &scim_graph_bridge::plan::Step) -> String {
    let v = serde_json::to_value(step).unwrap_or_default();
    let target = ["group", "role", "manager_id"]
        .iter()
        .find_map(|k| v[*k].as_str().map(str::to_owned))
        .or_else(|| {
            v["attributes"]
                .as_object()
                .map(|a| a.keys().cloned().collect::<Vec<_>>().join(","))
        })
        .unwrap_or_default();
    if target.is_empty() {
        step.label().to_string()
    } else {
        format!("{} {target}", step.label())
    }
}

/// Publishes a report's counts on `/metrics`.
pub fn record_gauges(report: &HygieneReport) {
    let t = report.tenant.clone();
    metrics::gauge!(crate::metrics::GOV_STALE, "tenant" => t.clone())
        .set(report.stale.len() as f64);
    metrics::gauge!(crate::metrics::GOV_ORPHANED, "tenant" => t.clone())
        .set(report.orphaned.len() as f64);
    metrics::gauge!(crate::metrics::GOV_DRIFT, "tenant" => t.clone())
        .set(report.drift.len() as f64);
    for source in [
        RoleSource::Rule,
        RoleSource::Jit,
        RoleSource::RuleAndJit,
        RoleSource::Outside,
    ] {
        let n = report
            .privileged
            .iter()
            .filter(|h| h.source == source)
            .count();
        metrics::gauge!(crate::metrics::GOV_PRIVILEGED, "tenant" => t.clone(), "source" => source.as_str())
            .set(n as f64);
    }
}

/// One CSV field (RFC 4180: quoted when it holds a comma, quote or line break).
pub fn csv_field(s: &str) -> String {
    // a leading = + - @ would be a formula to a spreadsheet (CSV injection): prefix a quote
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A CSV line from fields.
pub fn csv_line(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The report as CSV: one row per finding, `category` first.
pub fn to_csv(report: &HygieneReport) -> String {
    let mut out = csv_line(&[
        "category",
        "user_id",
        "user_name",
        "graph_user_id",
        "user_principal_name",
        "detail",
        "since",
    ]);
    let o = |s: &Option<String>| s.clone().unwrap_or_default();
    for s in &report.stale {
        out.push_str(&csv_line(&[
            "stale",
            &s.user_id,
            &o(&s.user_name),
            &s.graph_user_id,
            "",
            &format!("no sign-in for {} days", s.days_since_sign_in),
            &crate::governance::evidence::rfc3339(s.last_sign_in),
        ]));
    }
    for x in &report.orphaned {
        let detail = match x.reason {
            OrphanReason::NoScimUser => format!("no SCIM user; holds {}", x.grants.join(" ")),
            OrphanReason::TerminatedButEnabled => "terminated in SCIM, enabled in Graph".into(),
        };
        out.push_str(&csv_line(&[
            "orphaned",
            &o(&x.user_id),
            "",
            &x.graph_user_id,
            &o(&x.user_principal_name),
            &detail,
            "",
        ]));
    }
    for d in &report.drift {
        out.push_str(&csv_line(&[
            "drift",
            &d.user_id,
            &o(&d.user_name),
            &o(&d.graph_user_id),
            "",
            &d.steps.join("; "),
            "",
        ]));
    }
    for p in &report.privileged {
        out.push_str(&csv_line(&[
            "privileged",
            &o(&p.user_id),
            "",
            &p.graph_user_id,
            &o(&p.user_principal_name),
            &format!("role {} via {}", p.role, p.source.as_str()),
            &p.jit_expires_at
                .map(crate::governance::evidence::rfc3339)
                .unwrap_or_default(),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::jit::GrantStatus;
    use time::macros::datetime;

    #[test]
    fn a_failed_hygiene_pass_is_retried_with_backoff_up_to_the_interval() {
        let start = datetime!(2026-12-01 00:00 UTC);
        let poll = time::Duration::seconds(30);
        let hour = time::Duration::hours(1);
        let mut s = HygieneSchedule::default();
        assert!(s.is_due(start), "the first pass makes a report");
        let mut now = start;
        let mut waits = Vec::new();
        for _ in 0..9 {
            s.failed(now, poll, hour);
            let next = s.next.unwrap();
            assert!(!s.is_due(next - time::Duration::seconds(1)));
            assert!(s.is_due(next));
            waits.push((next - now).whole_seconds());
            now = next;
        }
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        s.passed(now, hour);
        assert_eq!(s.next, Some(now + hour));
        s.failed(now + hour, poll, hour);
        assert_eq!(
            s.next,
            Some(now + hour + poll),
            "a success resets the backoff"
        );
    }

    fn user(id: &str, active: bool, graph: Option<&str>, roles: &[&str]) -> ScimFacts {
        ScimFacts {
            id: id.into(),
            user_name: Some(format!("{id}@contoso.example")),
            active,
            match_value: Some(format!("{id}@contoso.example")),
            graph_id: graph.map(str::to_owned),
            rule_roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn graph(id: &str, enabled: bool, sign_in: Option<OffsetDateTime>) -> (String, GraphFacts) {
        (
            id.into(),
            GraphFacts {
                id: id.into(),
                user_principal_name: Some(format!("{id}@contoso.example")),
                enabled,
                last_sign_in: sign_in,
            },
        )
    }

    fn holder(kind: GrantKind, name: &str, graph_id: &str, upn: &str) -> HolderFacts {
        HolderFacts {
            grant: Grant::new(kind, name),
            graph_user_id: graph_id.into(),
            user_principal_name: Some(upn.into()),
            match_value: Some(upn.into()),
        }
    }

    #[test]
    fn finds_the_planted_cases_and_nothing_else() {
        let now = datetime!(2026-06-01 00:00 UTC);
        let jit = JitGrant {
            id: "j1".into(),
            user: "carol".into(),
            grant: "role:helpdesk".into(),
            duration: "PT4H".into(),
            justification: "incident".into(),
            requested_by: "carol".into(),
            requested_at: now - time::Duration::hours(1),
            status: GrantStatus::Active,
            decided_by: Some("mgr".into()),
            decided_at: Some(now - time::Duration::hours(1)),
            note: None,
            starts_at: Some(now - time::Duration::hours(1)),
            expires_at: Some(now + time::Duration::hours(3)),
            extends: None,
        };
        let facts = Facts {
            scim: vec![
                user("alice", true, Some("g-alice"), &[]),
                user("bob", true, Some("g-bob"), &["helpdesk"]),
                user("carol", true, Some("g-carol"), &[]),
                user("dave", false, Some("g-dave"), &[]),
                user("erin", false, Some("g-erin"), &[]),
                user("frank", true, Some("g-frank"), &[]),
            ],
            graph: [
                graph("g-alice", true, Some(now - time::Duration::days(120))),
                graph("g-bob", true, Some(now - time::Duration::days(3))),
                graph("g-carol", true, Some(now - time::Duration::days(89))),
                graph("g-dave", true, Some(now - time::Duration::days(200))),
                graph("g-erin", false, None),
                graph("g-frank", true, None),
            ]
            .into_iter()
            .collect(),
            holders: vec![
                holder(GrantKind::Group, "eng", "g-alice", "alice@contoso.example"),
                holder(GrantKind::Group, "eng", "g-ghost", "ghost@contoso.example"),
                holder(
                    GrantKind::Role,
                    "helpdesk",
                    "g-ghost",
                    "ghost@contoso.example",
                ),
                holder(GrantKind::Role, "helpdesk", "g-bob", "bob@contoso.example"),
                holder(
                    GrantKind::Role,
                    "helpdesk",
                    "g-carol",
                    "carol@contoso.example",
                ),
                // matched by UPN although not linked
                holder(
                    GrantKind::Role,
                    "helpdesk",
                    "g-frank2",
                    "frank@contoso.example",
                ),
            ],
            drift: vec![],
            jit: [("carol".to_string(), vec![jit])].into_iter().collect(),
        };
        let r = build("default", &facts, HygieneOptions::default(), now);
        let stale: Vec<&str> = r.stale.iter().map(|s| s.user_id.as_str()).collect();
        assert_eq!(stale, ["alice"]);
        assert_eq!(r.stale[0].days_since_sign_in, 120);
        assert_eq!(r.sign_in_unknown, 1, "frank");
        let orphaned: Vec<(&str, OrphanReason)> = r
            .orphaned
            .iter()
            .map(|o| (o.graph_user_id.as_str(), o.reason))
            .collect();
        assert_eq!(
            orphaned,
            [
                ("g-ghost", OrphanReason::NoScimUser),
                ("g-dave", OrphanReason::TerminatedButEnabled)
            ]
        );
        assert_eq!(r.orphaned[0].grants, ["group:eng", "role:helpdesk"]);
        let roles: Vec<(&str, RoleSource)> = r
            .privileged
            .iter()
            .map(|p| (p.graph_user_id.as_str(), p.source))
            .collect();
        assert_eq!(
            roles,
            [
                ("g-bob", RoleSource::Rule),
                ("g-carol", RoleSource::Jit),
                ("g-frank2", RoleSource::Outside),
                ("g-ghost", RoleSource::Outside),
            ]
        );
        assert_eq!(r.privileged[1].jit_grant.as_deref(), Some("j1"));
        let csv = to_csv(&r);
        assert!(csv.starts_with("category,user_id,"), "{csv}");
        assert_eq!(csv.lines().count(), 1 + 1 + 2 + 4, "{csv}");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("plain"), "plain");
    }
}
