//! The durable schedule every governance feature shares (`gov_schedule`): an entry names a
//! tenant, a kind (`review.start`, `review.remind`, `review.due`, …) and a subject, and is due
//! at a time read from the [`Clock`](crate::clock::Clock).
//!
//! [`run_due`] claims due entries with a lease (compare-and-swap, so replicas never run one
//! twice at once), runs each, and marks it done; a failure releases it, due again after a
//! backoff. Entries are rows committed with the change that planned them, so a restart (or a
//! `kill -9`) loses nothing: the next worker finds them due. Handlers are idempotent (a review
//! that already started does not start again), so a run repeated after a lost lease converges.

use super::Governance;
use super::store::Task;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The longest one step of the worker's pass (running due entries, leaver-evidence upkeep) may
/// take before it is abandoned with a warning and tried again on the next pass; a hygiene
/// report gets at least this, or its interval when longer ([`super::hygiene::periodic`]).
///
/// Why 15 minutes: a normal step takes milliseconds to seconds, and the Graph client gives up on
/// one request by itself after at most about seven (six attempts of a 60-s HTTP timeout, plus
/// backoff), so a slow Graph still ends in the client's own error, not in this bound. Shorter
/// would cut off steps that are only slow; longer would let one stuck step hold up every
/// time-bound grant's expiry and every review's due date for longer. Real time, not
/// [`Governance::clock`]: a hang is in real time whatever the clock shows.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What one pass over the schedule did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    /// Entries run to completion.
    pub done: u64,
    /// Entries that failed and were released for a retry.
    pub failed: u64,
}

/// The delay before retrying an entry after `attempts` failed attempts: one minute doubled per
/// attempt, at most an hour.
pub fn retry_delay(attempts: i64) -> time::Duration {
    let exp = attempts.clamp(1, 7) - 1;
    time::Duration::minutes((1i64 << exp).min(60))
}

/// Runs one entry by its kind.
async fn run_task(gov: &Governance, task: &Task) -> anyhow::Result<()> {
    match task.kind.as_str() {
        super::reviews::TASK_START => super::reviews::start(gov, &task.tenant_id, &task.subject_id)
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{}", e.detail())),
        super::reviews::TASK_REMIND => {
            super::reviews::remind(gov, &task.tenant_id, &task.subject_id)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{}", e.detail()))
        }
        super::reviews::TASK_DUE => super::reviews::due(gov, &task.tenant_id, &task.subject_id)
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{}", e.detail())),
        super::jit::TASK_ACTIVATE => super::jit::activate(gov, &task.tenant_id, &task.subject_id)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.detail())),
        super::jit::TASK_EXPIRE => super::jit::expire(gov, &task.tenant_id, &task.subject_id)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.detail())),
        other => anyhow::bail!("unknown governance schedule entry kind {other:?}"),
    }
}

/// Runs every entry due now (as the clock tells), in passes of at most 50, until none is due;
/// at most `max_passes` passes.
pub async fn run_due(gov: &Governance, owner: &str, max_passes: usize) -> anyhow::Result<RunStats> {
    let mut stats = RunStats::default();
    for _ in 0..max_passes {
        let now = gov.clock.now();
        let lease_until = now + gov.config.lease();
        let tasks = gov.store.claim_due(owner, now, lease_until, 50).await?;
        if tasks.is_empty() {
            break;
        }
        for task in tasks {
            match run_task(gov, &task).await {
                Ok(()) => {
                    gov.store.finish_task(&task.id, gov.clock.now()).await?;
                    stats.done += 1;
                }
                Err(e) => {
                    tracing::warn!(kind = %task.kind, subject = %task.subject_id, error = %e,
                        "governance schedule entry failed; retrying later");
                    let retry_at = gov.clock.now() + retry_delay(task.attempts);
                    gov.store
                        .retry_task(&task.id, &e.to_string(), retry_at)
                        .await?;
                    stats.failed += 1;
                }
            }
        }
    }
    Ok(stats)
}

/// Logs a worker step abandoned after `bound` (see [`STEP_TIMEOUT`]).
pub(crate) fn step_timed_out(step: &'static str, bound: Duration) {
    tracing::warn!(
        step,
        seconds = bound.as_secs(),
        "governance worker step did not finish in time; abandoned, tried again on a later pass"
    );
}

/// The schedule worker `serve` runs (nothing when `[governance] worker` is off).
#[derive(Debug, Default)]
pub struct Background {
    running: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Background {
    /// Starts the worker for `gov` when its configuration asks for one.
    pub fn start(gov: Option<Arc<Governance>>) -> Self {
        let Some(gov) = gov.filter(|g| g.config.worker) else {
            return Self::default();
        };
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let owner = format!("serve-{}", uuid::Uuid::new_v4().simple());
        let task = tokio::spawn(async move {
            let poll = Duration::from_secs(gov.config.poll_interval_seconds);
            let mut hygiene = super::hygiene::HygieneSchedule::default();
            loop {
                // Each step is bounded, so a step that never ends (a peer that never answers,
                // a wait on something nobody releases) is a warning and a retry on the next
                // pass rather than a worker that silently stops running the schedule. Entries
                // an abandoned `run_due` claimed are due again when their leases end (handlers
                // are idempotent); the hygiene report bounds itself (it knows its interval and
                // reschedules itself as failed).
                match tokio::time::timeout(STEP_TIMEOUT, run_due(&gov, &owner, 100)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "governance schedule pass failed"),
                    Err(_) => step_timed_out("run_due", STEP_TIMEOUT),
                }
                if tokio::time::timeout(STEP_TIMEOUT, super::evidence::upkeep(&gov))
                    .await
                    .is_err()
                {
                    step_timed_out("evidence_upkeep", STEP_TIMEOUT);
                }
                super::hygiene::periodic(&gov, &mut hygiene).await;
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    () = gov.clock.sleep(poll) => {}
                }
            }
        });
        Self {
            running: Some((stop, task)),
        }
    }

    /// Stops the worker after its current pass, waiting up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        if let Some((stop, mut task)) = self.running {
            let _ = stop.send(true);
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_an_hour() {
        let cases = [(0, 1), (1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60)];
        for (attempts, minutes) in cases {
            assert_eq!(
                retry_delay(attempts),
                time::Duration::minutes(minutes),
                "{attempts}"
            );
        }
    }
}
