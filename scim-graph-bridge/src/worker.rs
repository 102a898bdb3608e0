//! The worker: consumes the change log ([`crate::outbox`]), claims users under a lease, reconciles
//! them and records the outcome; plus the library side of the
//! `scim-server bridge plan|status|reconcile|dead-letters|hold` commands.
//!
//! In apply mode a plan that disables or deletes an account first passes the mass-change
//! [`crate::guard`]; a held plan is recorded (status `held`) and its item completed. A host
//! hears of settled plans and guard alerts through [`BridgeEvents`].

use std::sync::Arc;
use std::time::Duration;

use crate::Result;
use crate::config::{GuardConfig, Mode};
use crate::directory::UserDirectory;
use crate::graph::Outcome;
use crate::guard::{Admission, GuardAlert, is_leaver_action};
use crate::notify::{BridgeEvents, Settled, SettledOutcome};
use crate::outbox::OutboxReader;
use crate::plan::{Plan, delete_due_at};
use crate::reconcile::{Bridge, Reconciled, UserLink};
use crate::store::{BridgeStore, DeadLetter, FailOutcome, Status, WorkItem};

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// This worker's lease owner id (unique per process).
    pub owner: String,
    /// How long a claim lasts; a crashed worker's users are retaken after it.
    pub lease: Duration,
    /// Users claimed per round.
    pub batch: i64,
    /// Changes ingested per tenant per round.
    pub ingest_limit: i64,
    /// Attempts before an item is dead-lettered.
    pub max_attempts: i64,
    /// First retry delay.
    pub base_backoff: Duration,
    /// Wait between idle rounds in [`Worker::run`].
    pub poll_interval: Duration,
    /// Users reconciled in parallel.
    pub concurrency: usize,
    /// The mass-change guard (`None`: off). It only acts in apply mode.
    pub guard: Option<GuardConfig>,
}

impl WorkerConfig {
    /// Defaults with `max_attempts` from the `[graph]` section.
    pub fn from_graph_config(cfg: &crate::config::GraphConfig) -> Self {
        Self {
            max_attempts: i64::from(cfg.max_attempts),
            guard: cfg.guard.enabled.then(|| cfg.guard.clone()),
            ..Self::default()
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            owner: format!("bridge-{}", uuid::Uuid::new_v4()),
            lease: Duration::from_secs(300),
            batch: 16,
            ingest_limit: 1000,
            max_attempts: 8,
            base_backoff: Duration::from_secs(10),
            poll_interval: Duration::from_secs(2),
            concurrency: 4,
            guard: Some(GuardConfig::default()),
        }
    }
}

/// Counts of one round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Outbox changes consumed.
    pub ingested: usize,
    /// Users claimed.
    pub claimed: usize,
    /// Users finished.
    pub completed: usize,
    /// Users scheduled for retry.
    pub retried: usize,
    /// Users dead-lettered.
    pub dead_lettered: usize,
    /// Leaver plans held by the mass-change guard.
    pub held: usize,
}

/// A bridge worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    store: BridgeStore,
    log: Arc<dyn OutboxReader>,
    bridge: Bridge,
    dir: Arc<dyn UserDirectory>,
    cfg: WorkerConfig,
    events: Option<Arc<dyn BridgeEvents>>,
}

/// How one claimed item ended.
enum ItemEnd {
    Completed,
    Held,
    Failed(FailOutcome),
}

/// What reconciling a user came to.
enum Reconciling {
    Done(Box<Reconciled>, Option<u64>),
    Held {
        plan: Box<Plan>,
        hold_id: String,
        tripped: bool,
        reason: String,
    },
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("owner", &self.inner.cfg.owner)
            .field("bridge", &self.inner.bridge)
            .finish_non_exhaustive()
    }
}

fn failure_summary(report: &crate::reconcile::ApplyReport) -> String {
    report
        .steps
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Failed {
                http_status,
                code,
                message,
                ..
            } => Some(format!(
                "{} {}: {http_status} {code}: {message}",
                s.step, s.target
            )),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Worker {
    /// A worker over `store`, consuming `log` and reading users from `dir`.
    pub fn new(
        store: BridgeStore,
        log: Arc<dyn OutboxReader>,
        bridge: Bridge,
        dir: Arc<dyn UserDirectory>,
        cfg: WorkerConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                log,
                bridge,
                dir,
                cfg,
                events: None,
            }),
        }
    }

    /// The same worker, reporting settled plans and guard alerts to `events`.
    pub fn with_events(self, events: Arc<dyn BridgeEvents>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.events = Some(events);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// One round: ingest the outbox, claim due users, reconcile each.
    pub async fn run_once(&self) -> Result<RoundStats> {
        let clock = self.inner.bridge.clock().clone();
        let mut stats = RoundStats {
            ingested: self
                .inner
                .store
                .ingest(
                    self.inner.log.as_ref(),
                    clock.now(),
                    self.inner.cfg.ingest_limit,
                )
                .await?,
            ..RoundStats::default()
        };
        let items = self
            .inner
            .store
            .claim(
                &self.inner.cfg.owner,
                clock.now(),
                self.inner.cfg.lease,
                self.inner.cfg.batch,
            )
            .await?;
        stats.claimed = items.len();
        // different users in parallel (each user is leased to this worker alone)
        let mut tasks = tokio::task::JoinSet::new();
        let mut first_error = None;
        let mut items = items.into_iter();
        loop {
            while tasks.len() < self.inner.cfg.concurrency.max(1) {
                let Some(item) = items.next() else { break };
                let inner = self.inner.clone();
                tasks.spawn(async move { inner.process(&item).await });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined.map_err(|e| crate::Error::Internal(format!("worker task: {e}")))? {
                Ok(ItemEnd::Completed) => stats.completed += 1,
                Ok(ItemEnd::Held) => stats.held += 1,
                Ok(ItemEnd::Failed(FailOutcome::Retrying { .. })) => stats.retried += 1,
                Ok(ItemEnd::Failed(FailOutcome::DeadLettered)) => stats.dead_lettered += 1,
                Ok(ItemEnd::Failed(FailOutcome::LeaseLost)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "bridge work item failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// Runs rounds until `shutdown` resolves, pausing when idle.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            let idle = match self.run_once().await {
                Ok(s) => s.claimed == 0,
                Err(e) => {
                    tracing::warn!(error = %e, "bridge round failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = self.inner.bridge.clock().sleep(self.inner.cfg.poll_interval) => {}
                }
            }
        }
    }
}

impl Inner {
    /// Plans; in apply mode asks the guard about leaver actions; applies unless held.
    async fn reconcile(&self, tenant: &str, user: &str, link: &UserLink) -> Result<Reconciling> {
        let prepared = self
            .bridge
            .prepare(self.dir.as_ref(), tenant, user, link)
            .await?;
        if let Some(guard) = &self.cfg.guard
            && self.bridge.mode() == Mode::Apply
            && is_leaver_action(&prepared.plan)
        {
            let active = match guard.max_leaver_share {
                Some(_) => self.dir.count_active_users(tenant).await?,
                None => None,
            };
            let now = self.bridge.clock().now();
            let admission = self
                .store
                .guard_admit(guard, tenant, user, &prepared.plan, active, now)
                .await?;
            if let Admission::Hold {
                hold_id,
                tripped,
                reason,
            } = admission
            {
                return Ok(Reconciling::Held {
                    plan: Box::new(prepared.plan),
                    hold_id,
                    tripped,
                    reason,
                });
            }
        }
        let rec = self.bridge.apply_plan(prepared.plan, link).await;
        Ok(Reconciling::Done(Box::new(rec), prepared.scim_version))
    }

    /// Tells the host a plan settled (before the item is completed or buried, so that a failure
    /// here leaves the item to be retried), and closes the user's open holds once a plan went
    /// through (an approved hold of a dead-lettered plan stays approved for its retry).
    /// `leaver_action`: the plan disabled or deleted the account.
    async fn settle(&self, item: &WorkItem, settled: Settled, leaver_action: bool) -> Result<()> {
        if self.cfg.guard.is_some()
            && self.bridge.mode() == Mode::Apply
            && settled.outcome == SettledOutcome::Applied
        {
            self.store
                .close_holds(&item.tenant_id, &item.user_id, leaver_action, settled.at)
                .await?;
        }
        if let Some(events) = &self.events {
            events.settled(&settled).await?;
        }
        Ok(())
    }

    /// Records a failure; a last attempt is settled as dead-lettered first.
    async fn fail(
        &self,
        item: &WorkItem,
        reason: &str,
        plan: Option<&Plan>,
        scim_version: Option<u64>,
    ) -> Result<ItemEnd> {
        let now = self.bridge.clock().now();
        if item.attempts >= self.cfg.max_attempts {
            self.settle(
                item,
                dead_lettered(item, reason, plan, scim_version, now),
                false,
            )
            .await?;
        }
        let out = self
            .store
            .fail(
                item,
                &self.cfg.owner,
                now,
                reason,
                self.cfg.max_attempts,
                self.cfg.base_backoff,
            )
            .await?;
        Ok(ItemEnd::Failed(out))
    }

    async fn process(&self, item: &WorkItem) -> Result<ItemEnd> {
        let clock = self.bridge.clock().clone();
        let (owner, tenant, user) = (&self.cfg.owner, &item.tenant_id, &item.user_id);
        let link = self.store.get_link(tenant, user).await?;
        let work = self.reconcile(tenant, user, &link);
        tokio::pin!(work);
        // heartbeat on the runtime's timer: a long plan keeps its lease
        let mut beat = tokio::time::interval((self.cfg.lease / 3).max(Duration::from_millis(100)));
        beat.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = beat.tick() => {
                    if !self.store.extend_lease(item, owner, clock.now() + self.cfg.lease).await.unwrap_or(false) {
                        tracing::warn!(tenant, user, "bridge lease lost while reconciling");
                    }
                }
            }
        };
        let (rec, scim_version) = match result {
            Ok(Reconciling::Done(rec, version)) => (rec, version),
            Ok(Reconciling::Held {
                plan,
                hold_id,
                tripped,
                reason,
            }) => {
                let now = clock.now();
                self.store
                    .record_held_plan(tenant, user, &plan, now)
                    .await?;
                if tripped {
                    tracing::warn!(
                        tenant,
                        user,
                        hold = %hold_id,
                        reason = %reason,
                        "mass-change guard tripped: leaver plans are held until an operator approves or rejects them"
                    );
                    if let Some(events) = &self.events {
                        let alert = GuardAlert {
                            tenant_id: tenant.clone(),
                            hold_id: hold_id.clone(),
                            user_id: user.clone(),
                            reason,
                            at: now,
                        };
                        events.guard_tripped(&alert).await?;
                    }
                } else {
                    tracing::info!(tenant, user, hold = %hold_id, "leaver plan held by the mass-change guard");
                }
                self.store.complete(item, owner, now, None).await?;
                return Ok(ItemEnd::Held);
            }
            Err(e) => {
                tracing::info!(tenant, user, error = %e, "bridge reconcile failed");
                return self.fail(item, &e.to_string(), None, None).await;
            }
        };
        let now = clock.now();
        self.store.put_link(tenant, user, &rec.link, now).await?;
        let mode = if rec.report.is_some() {
            "apply"
        } else {
            "plan"
        };
        self.store
            .record_plan(tenant, user, mode, &rec.plan, rec.report.as_ref(), now)
            .await?;
        if let Some(report) = &rec.report {
            if let Some(t) = &report.transient_failure {
                return self.fail(item, t, Some(&rec.plan), scim_version).await;
            }
            if report.permanent_failures > 0 {
                let reason = format!("permanent: {}", failure_summary(report));
                self.settle(
                    item,
                    dead_lettered(item, &reason, Some(&rec.plan), scim_version, now),
                    false,
                )
                .await?;
                return Ok(ItemEnd::Failed(
                    self.store.dead_letter(item, owner, now, &reason).await?,
                ));
            }
        }
        self.settle(
            item,
            Settled {
                tenant_id: tenant.clone(),
                user_id: user.clone(),
                scim_version,
                outcome: if rec.report.is_some() {
                    SettledOutcome::Applied
                } else {
                    SettledOutcome::Planned
                },
                kind: Some(rec.plan.kind),
                steps: rec.plan.steps.len(),
                detail: None,
                at: now,
            },
            is_leaver_action(&rec.plan),
        )
        .await?;
        // a leaver whose Graph user still exists comes back when the hard delete is due
        let next = match (
            rec.report.is_some(),
            rec.plan.desired.is_leaver(),
            &rec.link.graph_id,
            rec.link.left_at,
        ) {
            (true, true, Some(_), Some(left)) => {
                delete_due_at(self.bridge.rules(), left).filter(|d| *d > now)
            }
            _ => None,
        };
        self.store.complete(item, owner, now, next).await?;
        Ok(ItemEnd::Completed)
    }
}

fn dead_lettered(
    item: &WorkItem,
    reason: &str,
    plan: Option<&Plan>,
    scim_version: Option<u64>,
    now: time::OffsetDateTime,
) -> Settled {
    Settled {
        tenant_id: item.tenant_id.clone(),
        user_id: item.user_id.clone(),
        scim_version,
        outcome: SettledOutcome::DeadLettered,
        kind: plan.map(|p| p.kind),
        steps: plan.map_or(0, |p| p.steps.len()),
        detail: Some(reason.to_string()),
        at: now,
    }
}

/// `bridge plan --user ID`: the plan for one user, recorded, nothing applied.
pub async fn plan_for_user(
    store: &BridgeStore,
    bridge: &Bridge,
    dir: &dyn UserDirectory,
    tenant: &str,
    user_id: &str,
) -> Result<Plan> {
    let link = store.get_link(tenant, user_id).await?;
    let plan = bridge.plan_user(dir, tenant, user_id, &link).await?;
    store
        .record_plan(tenant, user_id, "plan", &plan, None, bridge.clock().now())
        .await?;
    Ok(plan)
}

/// `bridge status`: the bridge's queue and its position in `log`.
pub async fn status(store: &BridgeStore, log: &dyn OutboxReader) -> Result<Status> {
    store.status(log).await
}

/// `bridge reconcile --all`: queues every user of the tenant; returns how many.
pub async fn reconcile_all(
    store: &BridgeStore,
    dir: &dyn UserDirectory,
    tenant: &str,
    now: time::OffsetDateTime,
) -> Result<usize> {
    let mut after: Option<String> = None;
    let mut n = 0;
    // bounded: each page advances `after`; stops on an empty or short page
    for _ in 0..1_000_000 {
        let ids = dir.list_user_ids(tenant, after.as_deref(), 500).await?;
        for id in &ids {
            store.enqueue(tenant, id, now).await?;
        }
        n += ids.len();
        if ids.len() < 500 {
            break;
        }
        after = ids.last().cloned();
    }
    Ok(n)
}

/// `bridge dead-letters list`.
pub async fn dead_letters(store: &BridgeStore, tenant: Option<&str>) -> Result<Vec<DeadLetter>> {
    store.dead_letters(tenant).await
}

/// `bridge dead-letters retry ID`: `false` if no such dead letter.
pub async fn retry_dead_letter(
    store: &BridgeStore,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<bool> {
    store.retry_dead_letter(id, now).await
}
