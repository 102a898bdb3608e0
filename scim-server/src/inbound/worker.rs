//! The intake worker: claims a due job, applies its pending records one by one (renewing the
//! lease between records), and finishes, retries later or buries the job.
//!
//! A record's own error (4xx: a taken `userName`, a bad value, no `externalId`) fails that record
//! and the job goes on. Anything else (the database unavailable, a 5xx) stops the attempt: the
//! job is retried after a backoff with jitter on the injected clock, and after `max_attempts`
//! attempts it becomes a dead letter. Records already final are skipped on the next attempt.

use super::Intake;
use super::queue::{ClaimedJob, Outcome};
use super::upsert;
use crate::auth::{CredentialKind, Principal};
use crate::service::RequestCtx;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// Jobs waiting or running (gauge).
pub const QUEUE_DEPTH: &str = "scim_inbound_queue_depth";
/// Age in seconds of the oldest job waiting or running (gauge).
pub const OLDEST_JOB_AGE: &str = "scim_inbound_oldest_job_age_seconds";
/// Dead-lettered jobs (gauge).
pub const DEAD_LETTERS: &str = "scim_inbound_dead_letters";
/// Records applied, by outcome (counter).
pub const RECORDS: &str = "scim_inbound_records_total";

/// How one claimed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Every record is final.
    Finished,
    /// A transient failure: queued again for later.
    RetryLater(String),
    /// A transient failure on the last allowed attempt: a dead letter.
    Buried(String),
    /// The lease was lost to another worker (this one was too slow): it stops.
    LeaseLost,
}

/// The intake worker of one process.
#[derive(Clone)]
pub struct Worker {
    state: AppState,
    intake: Arc<Intake>,
    owner: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker writing through `state` (its clock drives leases and backoff).
    pub fn new(state: AppState, intake: Arc<Intake>) -> Self {
        Self {
            state,
            intake,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Claims and processes one due job; `None` when none was due.
    pub async fn run_once(&self) -> anyhow::Result<Option<(String, JobEnd)>> {
        let cfg = &self.intake.config;
        let queue = &self.intake.queue;
        let now = self.state.clock.now();
        let Some(job) = queue
            .claim(&self.owner, now, cfg.lease(), cfg.max_attempts)
            .await?
        else {
            return Ok(None);
        };
        let span = tracing::info_span!("inbound_job", job_id = %job.id, tenant = %job.tenant, attempt = job.attempts);
        let end =
            tracing::Instrument::instrument(self.process(&job, now + cfg.lease()), span).await?;
        Ok(Some((job.id, end)))
    }

    /// Applies a job whose lease runs until `lease_until`.
    async fn process(
        &self,
        job: &ClaimedJob,
        mut lease_until: time::OffsetDateTime,
    ) -> anyhow::Result<JobEnd> {
        let queue = &self.intake.queue;
        let ctx = RequestCtx::new(
            Principal::new(
                job.tenant.clone(),
                job.principal.clone(),
                false,
                // Only the principal's id is recorded with writes; how it authenticated when
                // submitting the job does not matter any more.
                CredentialKind::StaticToken,
            ),
            job.request_id.clone(),
            self.state
                .settings
                .public_url
                .clone()
                .unwrap_or_else(|| self.state.settings.base_path.clone()),
        );
        let mut after = -1;
        loop {
            let page = queue.pending_operations(&job.id, after, Self::PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            if let Some(end) = self.process_page(job, &ctx, page, &mut lease_until).await? {
                return Ok(end);
            }
        }
        let end = super::callback::JobEnd::Finished;
        super::callback::job_settled(&self.state, &job.tenant, &job.id, end).await?;
        queue
            .finish(&job.id, &self.owner, self.state.clock.now())
            .await?;
        tracing::info!("job finished");
        Ok(JobEnd::Finished)
    }

    /// Records read from the queue at a time (a CSV upload's job may hold 100,000).
    const PAGE: u32 = 500;

    /// Applies one page of a job's records; `Some` when the attempt ends early.
    async fn process_page(
        &self,
        job: &ClaimedJob,
        job_ctx: &RequestCtx,
        page: Vec<super::queue::PendingOperation>,
        lease_until: &mut time::OffsetDateTime,
    ) -> anyhow::Result<Option<JobEnd>> {
        let cfg = &self.intake.config;
        let queue = &self.intake.queue;
        for op in page {
            // Each record writes under a request id of its own: a create retried after an
            // unknown outcome is recognised by it (`service::write`), and two records of one
            // job must never be taken for one another.
            let ctx = RequestCtx::new(
                job_ctx.principal().clone(),
                Some(format!(
                    "{}#{}",
                    job_ctx.request_id().unwrap_or(&job.id),
                    op.seq
                )),
                job_ctx.base_url(),
            );
            // The lease is renewed once half of it has passed (not per record: each renewal is
            // a write), so a worker that stalled past its lease finds out before writing.
            let now = self.state.clock.now();
            if now > *lease_until - cfg.lease() / 2 {
                if !queue
                    .extend_lease(&job.id, &self.owner, now + cfg.lease())
                    .await?
                {
                    tracing::warn!("lease lost to another worker; stopping this attempt");
                    return Ok(Some(JobEnd::LeaseLost));
                }
                *lease_until = now + cfg.lease();
            }
            match upsert::apply(&self.state, queue, &ctx, op.data).await {
                Ok(applied) => {
                    metrics::counter!(RECORDS, "outcome" => applied.outcome.as_str()).increment(1);
                    tracing::info!(seq = op.seq, bulk_id = ?op.bulk_id, outcome = applied.outcome.as_str(), id = %applied.id, "record applied");
                    queue
                        .record(&job.id, op.seq, applied.outcome, Some(&applied.id), None)
                        .await?;
                }
                Err(e) if e.status() < 500 => {
                    metrics::counter!(RECORDS, "outcome" => "failed").increment(1);
                    tracing::info!(seq = op.seq, bulk_id = ?op.bulk_id, status = e.status(), detail = e.detail(), "record refused");
                    let body = serde_json::to_value(e.to_body()).unwrap_or_default();
                    queue
                        .record(&job.id, op.seq, Outcome::Failed, None, Some(&body))
                        .await?;
                }
                Err(e) => {
                    let why = format!("record {}: {} {}", op.seq, e.status(), e.detail());
                    let now = self.state.clock.now();
                    if job.attempts >= cfg.max_attempts {
                        tracing::error!(error = %why, "giving the job up: dead letter");
                        let end = super::callback::JobEnd::Dead(&why);
                        super::callback::job_settled(&self.state, &job.tenant, &job.id, end)
                            .await?;
                        queue.bury(&job.id, &self.owner, now, &why).await?;
                        return Ok(Some(JobEnd::Buried(why)));
                    }
                    let delay = cfg.backoff(job.attempts, rand::random::<f64>());
                    tracing::warn!(error = %why, retry_in_s = delay.as_secs_f64(), "transient failure; retrying later");
                    queue
                        .retry_later(&job.id, &self.owner, now + delay, &why)
                        .await?;
                    return Ok(Some(JobEnd::RetryLater(why)));
                }
            }
        }
        Ok(None)
    }

    /// Processes due jobs until none is left; returns how many were processed (bounded by
    /// `max_jobs`).
    pub async fn run_until_idle(&self, max_jobs: usize) -> anyhow::Result<usize> {
        for n in 0..max_jobs {
            if self.run_once().await?.is_none() {
                return Ok(n);
            }
        }
        Ok(max_jobs)
    }

    /// Publishes the queue's state as metrics.
    pub async fn record_metrics(&self) -> anyhow::Result<()> {
        let s = self.intake.queue.status(self.state.clock.now()).await?;
        metrics::gauge!(QUEUE_DEPTH).set((s.queued + s.running) as f64);
        metrics::gauge!(OLDEST_JOB_AGE).set(s.oldest_age_seconds);
        metrics::gauge!(DEAD_LETTERS).set(s.dead as f64);
        Ok(())
    }

    /// Runs until `shutdown` resolves: processes due jobs, then sleeps until woken by an enqueue
    /// or the poll interval passes. Errors are logged and retried after the poll interval.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let poll = Duration::from_millis(self.intake.config.poll_interval_ms);
        tokio::pin!(shutdown);
        loop {
            let round = async {
                self.run_until_idle(64).await?;
                self.record_metrics().await
            };
            tokio::select! {
                () = &mut shutdown => break,
                result = round => {
                    if let Err(e) = result {
                        tracing::error!(error = format!("{e:#}"), "HR intake worker round failed");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.intake.wait(poll) => {}
            }
        }
        tracing::info!("HR intake worker stopped");
    }
}

/// The intake worker `serve` runs next to the HTTP server (nothing when the intake or its worker
/// is off).
#[derive(Debug, Default)]
pub struct Background {
    running: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Background {
    /// Starts the worker when `state` has an intake and `[inbound] worker` is on.
    pub fn start(state: &AppState) -> Self {
        let Some(intake) = state.inbound.clone() else {
            return Self::default();
        };
        if !intake.config.worker {
            tracing::info!("HR intake worker off (`inbound.worker`): another replica runs it");
            return Self::default();
        }
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let worker = Worker::new(state.clone(), intake);
        let task = tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        Self {
            running: Some((stop, task)),
        }
    }

    /// Stops the worker; a job it was applying is taken again when its lease expires (records
    /// are idempotent upserts).
    pub async fn shutdown(self, grace: Duration) {
        if let Some((stop, mut task)) = self.running {
            let _ = stop.send(true);
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}
