//! The work queues as the console shows them: the HR intake's jobs and dead letters
//! ([`crate::inbound::queue`]) and the Graph bridge's plans, queue and dead letters
//! ([`scim_graph_bridge::store::BridgeStore`]), read and retried through their own APIs (no SQL
//! of their tables here). Reading needs [`Action::ViewDirectory`]; a retry needs its own action,
//! is checked against the operator's tenant (the queues' retry functions take a bare id) and is
//! recorded.

use super::roles::{Action, Operator, authorize};
use super::service::permit;
use super::{Console, ConsoleError};
use crate::inbound::queue::{JobSummary, JobView, QueueStatus, status};
use scim_graph_bridge::store::{DeadLetter, PlanRecord, Status};

/// Rows per intake list.
pub const JOB_LIST_LENGTH: u32 = 50;
/// Plans shown on a person's page.
pub const PLANS_SHOWN: i64 = 3;

/// The intake page.
#[derive(Debug, Clone)]
pub struct IntakeOverview {
    /// Counts over the whole queue (every tenant), as `/metrics` shows them.
    pub status: QueueStatus,
    /// This tenant's dead letters, oldest first.
    pub dead: Vec<JobSummary>,
    /// This tenant's jobs waiting (due, retrying, or scheduled for a later date), oldest first.
    pub queued: Vec<JobSummary>,
    /// This tenant's jobs a worker holds.
    pub running: Vec<JobSummary>,
    /// This tenant's jobs finished with some records refused.
    pub with_errors: Vec<JobSummary>,
}

fn intake(console: &Console) -> Result<&crate::inbound::Intake, ConsoleError> {
    console.app().inbound.as_deref().ok_or_else(|| {
        ConsoleError::NotFound(
            "the HR intake is not enabled on this server ([inbound] enabled, and a database \
             file or PostgreSQL)"
                .into(),
        )
    })
}

/// The intake queue of the operator's tenant; `None` when the server runs no intake.
pub async fn intake_overview(
    console: &Console,
    operator: &Operator,
) -> Result<Option<IntakeOverview>, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let Some(intake) = console.app().inbound.as_deref() else {
        return Ok(None);
    };
    let q = &intake.queue;
    let t = Some(operator.tenant.as_str());
    Ok(Some(IntakeOverview {
        status: q.status(console.app().clock.now()).await?,
        dead: q.jobs_in(status::DEAD, t, JOB_LIST_LENGTH).await?,
        queued: q.jobs_in(status::QUEUED, t, JOB_LIST_LENGTH).await?,
        running: q.jobs_in(status::RUNNING, t, JOB_LIST_LENGTH).await?,
        with_errors: q
            .jobs_in(status::COMPLETED_WITH_ERRORS, t, JOB_LIST_LENGTH)
            .await?,
    }))
}

/// An intake job of the operator's tenant with its records' outcomes.
pub async fn intake_job(
    console: &Console,
    operator: &Operator,
    id: &str,
) -> Result<JobView, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    intake(console)?
        .queue
        .job(&operator.tenant, id)
        .await?
        .ok_or_else(|| {
            ConsoleError::NotFound(format!("there is no intake job {id} in this tenant"))
        })
}

/// Queues a dead letter of the operator's tenant again (fresh attempts) and wakes the worker.
pub async fn retry_intake_job(
    console: &Console,
    operator: &Operator,
    id: &str,
    request_id: Option<&str>,
) -> Result<JobView, ConsoleError> {
    let permit = permit(console, operator, Action::RetryIntakeJob, id, request_id).await?;
    let job = intake_job(console, operator, id).await?;
    if job.status != status::DEAD {
        return Err(ConsoleError::BadRequest(format!(
            "intake job {id} is {}, not a dead letter: only dead letters are retried",
            job.status
        )));
    }
    let intake = intake(console)?;
    intake
        .queue
        .requeue_dead(id, console.app().clock.now())
        .await?;
    intake.notify();
    super::service::record_action(console, &permit, id, request_id).await?;
    Ok(job)
}

/// The bridge page.
#[derive(Debug, Clone)]
pub struct BridgeOverview {
    /// Counts over the bridge's queue (every tenant).
    pub status: Status,
    /// Change records of this tenant not yet turned into bridge work.
    pub lag: i64,
    /// This tenant's dead letters, oldest first.
    pub dead_letters: Vec<DeadLetter>,
}

fn bridge_error(e: scim_graph_bridge::Error) -> ConsoleError {
    ConsoleError::Internal(format!("Graph bridge tables: {e}"))
}

/// The bridge's state for the operator's tenant; `None` without `[graph]`.
pub async fn bridge_overview(
    console: &Console,
    operator: &Operator,
) -> Result<Option<BridgeOverview>, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let Some(store) = console.bridge() else {
        return Ok(None);
    };
    let log = crate::bridge::change_log(store);
    let status = store.status(log.as_ref()).await.map_err(bridge_error)?;
    let lag = status
        .cursors
        .iter()
        .find(|c| c.tenant_id == operator.tenant)
        .map_or(0, |c| (c.head_seq - c.last_seq).max(0));
    let dead_letters = store
        .dead_letters(Some(&operator.tenant))
        .await
        .map_err(bridge_error)?;
    Ok(Some(BridgeOverview {
        status,
        lag,
        dead_letters,
    }))
}

/// A bridge dead letter of the operator's tenant.
pub async fn bridge_dead_letter(
    console: &Console,
    operator: &Operator,
    id: &str,
) -> Result<DeadLetter, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let store = console
        .bridge()
        .ok_or_else(|| ConsoleError::NotFound("the Graph bridge is not configured".into()))?;
    store
        .dead_letters(Some(&operator.tenant))
        .await
        .map_err(bridge_error)?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "there is no Graph bridge dead letter {id} in this tenant"
            ))
        })
}

/// Puts a bridge dead letter of the operator's tenant back on the bridge's queue, due now.
pub async fn retry_bridge_dead_letter(
    console: &Console,
    operator: &Operator,
    id: &str,
    request_id: Option<&str>,
) -> Result<DeadLetter, ConsoleError> {
    let permit = permit(console, operator, Action::RetryBridgeWork, id, request_id).await?;
    let letter = bridge_dead_letter(console, operator, id).await?;
    if let Some(store) = console.bridge() {
        store
            .retry_dead_letter(id, console.app().clock.now())
            .await
            .map_err(bridge_error)?;
    }
    super::service::record_action(console, &permit, id, request_id).await?;
    Ok(letter)
}

/// The newest bridge plans of a person (the current one first), or none without `[graph]`.
pub async fn plans(
    console: &Console,
    operator: &Operator,
    user_id: &str,
) -> Result<Vec<PlanRecord>, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let Some(store) = console.bridge() else {
        return Ok(Vec::new());
    };
    store
        .plans_for_user(&operator.tenant, user_id, PLANS_SHOWN)
        .await
        .map_err(bridge_error)
}
