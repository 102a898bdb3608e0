//! The worker: consumes the change log ([`crate::outbox`]), claims users under a lease, reconciles
//! them and records the outcome; plus the library side of the
//! `scim-server bridge plan|status|reconcile|dead-letters` commands.

use std::sync::Arc;
use std::time::Duration;

use crate::Result;
use crate::directory::UserDirectory;
use crate::graph::Outcome;
use crate::outbox::ChangeLog;
use crate::plan::{Plan, delete_due_at};
use crate::reconcile::Bridge;
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
}

impl WorkerConfig {
    /// Defaults with `max_attempts` from the `[graph]` section.
    pub fn from_graph_config(cfg: &crate::config::GraphConfig) -> Self {
        Self {
            max_attempts: i64::from(cfg.max_attempts),
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
}

/// A bridge worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: BridgeStore,
    log: Arc<dyn ChangeLog>,
    bridge: Bridge,
    dir: Arc<dyn UserDirectory>,
    cfg: WorkerConfig,
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
        log: Arc<dyn ChangeLog>,
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
            }),
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
                Ok(None) => stats.completed += 1,
                Ok(Some(FailOutcome::Retrying { .. })) => stats.retried += 1,
                Ok(Some(FailOutcome::DeadLettered)) => stats.dead_lettered += 1,
                Ok(Some(FailOutcome::LeaseLost)) => {}
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
    async fn process(&self, item: &WorkItem) -> Result<Option<FailOutcome>> {
        let clock = self.bridge.clock().clone();
        let (owner, tenant, user) = (&self.cfg.owner, &item.tenant_id, &item.user_id);
        let link = self.store.get_link(tenant, user).await?;
        let work = self
            .bridge
            .reconcile_user(self.dir.as_ref(), tenant, user, &link);
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
        let rec = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(tenant, user, error = %e, "bridge reconcile failed");
                let out = self
                    .store
                    .fail(
                        item,
                        owner,
                        clock.now(),
                        &e.to_string(),
                        self.cfg.max_attempts,
                        self.cfg.base_backoff,
                    )
                    .await?;
                return Ok(Some(out));
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
                let out = self
                    .store
                    .fail(
                        item,
                        owner,
                        now,
                        t,
                        self.cfg.max_attempts,
                        self.cfg.base_backoff,
                    )
                    .await?;
                return Ok(Some(out));
            }
            if report.permanent_failures > 0 {
                let reason = format!("permanent: {}", failure_summary(report));
                return Ok(Some(
                    self.store.dead_letter(item, owner, now, &reason).await?,
                ));
            }
        }
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
        Ok(None)
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
pub async fn status(store: &BridgeStore, log: &dyn ChangeLog) -> Result<Status> {
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
