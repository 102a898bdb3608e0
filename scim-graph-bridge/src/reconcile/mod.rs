//! Reconciliation of one user: evaluate the rules, read Graph (restricted to
//! the catalog), plan the difference, apply it and report every step.

mod apply;
mod read;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Result;
use crate::clock::Clock;
use crate::config::{GraphConfig, Mode};
use crate::directory::UserDirectory;
use crate::graph::{GraphClient, Outcome};
use crate::overrides::{AccessOverrides, NoOverrides, apply_overrides};
use crate::plan::{ActualState, Plan, PlanContext, Step, plan};
use crate::rules::Rules;

/// The outcome of one applied step.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    /// Position in the plan.
    pub index: usize,
    /// Step label (e.g. `add_group`).
    pub step: String,
    /// Catalog object or detail the step concerns.
    pub target: String,
    /// What happened.
    pub outcome: Outcome,
    /// When Graph's answer arrived (the bridge's clock). Absent in records written before the
    /// bridge kept it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<OffsetDateTime>,
    /// Graph's `request-id` response header (the id Microsoft support asks for; "every response
    /// includes a request-id", Graph error documentation); for a `$batch` item, the item's own or
    /// else the envelope's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The result of applying a plan.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ApplyReport {
    /// Graph id of the user (set after a create).
    pub graph_user_id: Option<String>,
    /// One record per attempted step.
    pub steps: Vec<StepRecord>,
    /// Set when applying stopped on a transient failure (retry later).
    pub transient_failure: Option<String>,
    /// Number of permanent failures recorded.
    pub permanent_failures: usize,
    /// When applying started (the bridge's clock). Absent in records written before the bridge
    /// kept it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
}

impl ApplyReport {
    /// Every step succeeded.
    pub fn is_complete(&self) -> bool {
        self.transient_failure.is_none() && self.permanent_failures == 0
    }
}

/// What the bridge knows about a user between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct UserLink {
    /// The Graph user id last matched or created.
    pub graph_id: Option<String>,
    /// When the user became a leaver (for the hard-delete retention).
    pub left_at: Option<OffsetDateTime>,
}

/// The result of reconciling one user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reconciled {
    /// The plan.
    pub plan: Plan,
    /// What applying it did (`None` in plan mode).
    pub report: Option<ApplyReport>,
    /// The link to remember for next time.
    pub link: UserLink,
}

/// A plan and a SCIM user version it reflects (the user may have been read at a newer one).
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The SCIM user's `meta.version` number (`None` when the user does not exist).
    pub scim_version: Option<u64>,
}

/// The reconciler: rules plus, in apply mode, a Graph client, and the governance overrides
/// the planner honours ([`crate::overrides`]).
#[derive(Clone)]
pub struct Bridge {
    rules: Arc<Rules>,
    client: Option<Arc<GraphClient>>,
    clock: Arc<dyn Clock>,
    overrides: Arc<dyn AccessOverrides>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Builds the bridge from the `[graph]` section: loads and validates the
    /// rules file, and creates a Graph client only in apply mode.
    pub fn from_config(cfg: &GraphConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        cfg.validate()?;
        let path = cfg.rules.as_ref().ok_or_else(|| {
            crate::Error::config("graph.rules: path of the rules file is required".into())
        })?;
        let rules = Arc::new(Rules::load(path)?);
        let client = match cfg.effective_mode() {
            Mode::Plan => None,
            Mode::Apply => Some(Arc::new(cfg.client(clock.clone())?)),
        };
        Ok(Self::new(rules, client, clock))
    }

    /// A bridge; without a client it runs in plan mode and calls nothing.
    pub fn new(rules: Arc<Rules>, client: Option<Arc<GraphClient>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            rules,
            client,
            clock,
            overrides: Arc::new(NoOverrides),
        }
    }

    /// The same bridge, planning with `overrides` (review exceptions, time-bound grants).
    pub fn with_overrides(mut self, overrides: Arc<dyn AccessOverrides>) -> Self {
        self.overrides = overrides;
        self
    }

    /// Plan or apply.
    pub fn mode(&self) -> Mode {
        if self.client.is_some() {
            Mode::Apply
        } else {
            Mode::Plan
        }
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The Graph client, in apply mode.
    pub fn client(&self) -> Option<&Arc<GraphClient>> {
        self.client.as_ref()
    }

    /// Computes the plan for a user, with the version of the SCIM user it reflects at least.
    ///
    /// The version is read before planning (which reads the user again), so it is never newer
    /// than what the plan saw: a write of that version or older is reflected in the plan.
    pub async fn prepare(
        &self,
        dir: &dyn UserDirectory,
        tenant: &str,
        user_id: &str,
        link: &UserLink,
    ) -> Result<Prepared> {
        let scim_version = dir
            .get_user(tenant, user_id)
            .await?
            .as_ref()
            .and_then(crate::notify::version_number);
        Ok(Prepared {
            plan: self.plan_user(dir, tenant, user_id, link).await?,
            scim_version,
        })
    }

    /// Computes the plan for a user without writing anything (Graph is read in apply mode only).
    pub async fn plan_user(
        &self,
        dir: &dyn UserDirectory,
        tenant: &str,
        user_id: &str,
        link: &UserLink,
    ) -> Result<Plan> {
        let scim = dir.get_user(tenant, user_id).await?;
        let mut desired = self.rules.evaluate(scim.as_ref());
        let now = self.clock.now();
        let overrides = self.overrides.for_user(tenant, user_id, now).await?;
        let override_notes = apply_overrides(&mut desired, &overrides, &self.rules.catalog, now);
        let left_at = if desired.is_leaver() {
            Some(link.left_at.unwrap_or(now))
        } else {
            None
        };
        let mut ctx = PlanContext {
            left_at,
            now: Some(now),
            manager_graph_id: None,
        };
        let actual = match &self.client {
            None => ActualState::default(),
            Some(client) => {
                if let Some(mgr) = &desired.manager {
                    ctx.manager_graph_id = self.resolve_manager(client, dir, tenant, mgr).await?;
                }
                read::actual_state(client, &self.rules, &desired, link.graph_id.as_deref()).await?
            }
        };
        let mut out = plan(&self.rules, &desired, &actual, &ctx);
        out.notes.extend(override_notes);
        Ok(out)
    }

    /// Applies `steps` to the Graph user `graph_user_id` outside a reconcile (an access review's
    /// revocations: the same requests, error classification and outcome records as a plan's).
    /// `None` in plan mode: nothing is called.
    pub async fn apply_steps(&self, graph_user_id: &str, steps: Vec<Step>) -> Option<ApplyReport> {
        let client = self.client.as_ref()?;
        let plan = Plan {
            kind: crate::plan::PlanKind::Update,
            graph_user_id: Some(graph_user_id.to_owned()),
            actual_known: true,
            steps,
            notes: Vec::new(),
            desired_hash: String::new(),
            desired: Default::default(),
        };
        Some(apply::apply(client, &plan, self.clock.as_ref()).await)
    }

    async fn resolve_manager(
        &self,
        client: &GraphClient,
        dir: &dyn UserDirectory,
        tenant: &str,
        mgr: &str,
    ) -> Result<Option<String>> {
        let Some(m) = dir.get_user(tenant, mgr).await? else {
            return Ok(None);
        };
        let Some(v) = self.rules.match_value(&m) else {
            return Ok(None);
        };
        read::find_user(client, &self.rules, &v)
            .await
            .map(|u| u.and_then(|u| u["id"].as_str().map(str::to_owned)))
    }

    /// Plans and (in apply mode) applies the plan for one user.
    pub async fn reconcile_user(
        &self,
        dir: &dyn UserDirectory,
        tenant: &str,
        user_id: &str,
        link: &UserLink,
    ) -> Result<Reconciled> {
        let plan = self.plan_user(dir, tenant, user_id, link).await?;
        Ok(self.apply_plan(plan, link).await)
    }

    /// Applies a computed plan (in apply mode; in plan mode only the link is worked out).
    pub async fn apply_plan(&self, plan: Plan, link: &UserLink) -> Reconciled {
        let now = self.clock.now();
        let mut new_link = UserLink {
            graph_id: plan.graph_user_id.clone().or_else(|| link.graph_id.clone()),
            left_at: if plan.desired.is_leaver() {
                Some(link.left_at.unwrap_or(now))
            } else {
                None
            },
        };
        let report = match &self.client {
            None => None,
            Some(client) => {
                let r = apply::apply(client, &plan, self.clock.as_ref()).await;
                if r.graph_user_id.is_some() {
                    new_link.graph_id = r.graph_user_id.clone();
                }
                if plan
                    .steps
                    .iter()
                    .any(|s| matches!(s, crate::plan::Step::DeleteUser))
                    && r.steps
                        .iter()
                        .any(|s| s.step == "delete_user" && s.outcome.is_success())
                {
                    new_link.graph_id = None;
                }
                Some(r)
            }
        };
        Reconciled {
            plan,
            report,
            link: new_link,
        }
    }
}
