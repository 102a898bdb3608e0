//! The intake queue: `inbound_jobs` (one row per accepted job, doubling as its lease) and
//! `inbound_operations` (its HR records in request order, each with its outcome once final), plus
//! `inbound_manager_links` (reports waiting for a manager that has not arrived yet).
//!
//! Both databases run the same statements (sqlx's SQLite driver accepts `$N` placeholders); only
//! the claim differs: PostgreSQL skips rows other workers hold (`FOR UPDATE SKIP LOCKED`), SQLite
//! runs one writer at a time anyway.
//!
//! Job states: `queued` (waiting, possibly until `run_after_ns` after a transient failure) ->
//! `running` (leased until `lease_until_ns`; an expired lease is taken again) -> `completed`,
//! `completedWithErrors` (some operations failed on their own) or `dead` (given up after the
//! configured attempts; `inbound dead-letters retry` queues it again).

use crate::store::write_gate::SideWrites;
use crate::store::{Result, StoreError};
use scim_graph_bridge::on_pool;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use time::OffsetDateTime;

/// The intake tables' database (the server's own, through a pool of the intake).
#[derive(Clone, Debug)]
pub enum Queue {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}
scim_graph_bridge::impl_on_pool!(Queue);

/// Job status names as stored and shown.
pub mod status {
    /// Accepted, waiting for a worker.
    pub const QUEUED: &str = "queued";
    /// A worker holds its lease.
    pub const RUNNING: &str = "running";
    /// Every operation succeeded (created, updated or unchanged).
    pub const COMPLETED: &str = "completed";
    /// Done, some operations failed on their own.
    pub const COMPLETED_WITH_ERRORS: &str = "completedWithErrors";
    /// Given up after the configured attempts (a dead letter).
    pub const DEAD: &str = "dead";
    /// Replaced, before it ran, by a later event for the same employee.
    pub const SUPERSEDED: &str = "superseded";
}

/// A job of an HR event: when it runs, whom it concerns, and its lane (a later event supersedes
/// the pending jobs of the same employee and lane).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledJob {
    /// The job.
    pub job: NewJob,
    /// When it may run (the event's effective time, or now).
    pub run_after: OffsetDateTime,
    /// The employee's externalId.
    pub subject: String,
    /// `lifecycle` (activation, deactivation) or `update`.
    pub lane: &'static str,
}

/// Whether an event was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReceipt {
    /// Recorded with its jobs.
    Accepted,
    /// Seen before (same tenant, source and event id): nothing was queued.
    Duplicate,
}

/// What happened to one HR record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new user.
    Created,
    /// An existing user changed (one change record).
    Updated,
    /// The record matched the user already: no write, no change record.
    Unchanged,
    /// The record was refused (its SCIM error is kept); the rest of the job goes on.
    Failed,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
        }
    }
}

/// An operation to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOperation {
    /// The client's `bulkId`.
    pub bulk_id: Option<String>,
    /// The record's `externalId` (the matching key), when it has one.
    pub external_id: Option<String>,
    /// The SCIM user the record carries.
    pub data: Value,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Its id (a UUID).
    pub id: String,
    /// The tenant written to.
    pub tenant: String,
    /// The submitting principal.
    pub principal: String,
    /// The request that submitted it.
    pub request_id: Option<String>,
    /// `bulkUpload`, `csv`, …
    pub source: String,
    /// The records, in order.
    pub operations: Vec<NewOperation>,
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// Job id.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// The submitting principal.
    pub principal: String,
    /// The submitting request.
    pub request_id: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// An operation not yet final.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingOperation {
    /// Position in the job.
    pub seq: i64,
    /// The client's `bulkId`.
    pub bulk_id: Option<String>,
    /// The SCIM user.
    pub data: Value,
}

/// One operation as the job resource shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    /// The client's `bulkId`.
    pub bulk_id: Option<String>,
    /// The record's `externalId`.
    pub external_id: Option<String>,
    /// `created`, `updated`, `unchanged`, `failed`, or `pending`.
    pub outcome: String,
    /// The SCIM id of the user written or matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The SCIM error of a failed operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// A job with its operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Tenant.
    #[serde(skip)]
    pub tenant: String,
    /// Where it came from (`bulkUpload`).
    pub source: String,
    /// See [`status`].
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed (transient failures, dead letters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished: Option<OffsetDateTime>,
    /// Operations per outcome (all of them, whatever page is shown).
    pub counts: Counts,
    /// The position (1-based) of the first operation shown.
    pub start_index: u64,
    /// How many operations are shown.
    pub items_per_page: u64,
    /// The operations shown, in request order (`?startIndex=&count=` pages through them).
    pub operations: Vec<OperationView>,
}

/// Operations a job view shows unless asked otherwise (every bulkUpload job fits).
pub const OPERATIONS_PAGE: u32 = 1000;

/// Operations per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// All operations.
    pub total: u64,
    /// Not final yet.
    pub pending: u64,
    /// New users.
    pub created: u64,
    /// Changed users.
    pub updated: u64,
    /// Users already as the record says.
    pub unchanged: u64,
    /// Refused records.
    pub failed: u64,
}

/// A job in a listing (no operations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    /// Job id.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Status.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// The queue's state, for `/metrics` and `inbound status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    /// Jobs waiting for a worker (due now, or waiting out a retry backoff).
    pub queued: u64,
    /// Jobs of HR events scheduled for a later effective time (not counted as waiting).
    pub scheduled: u64,
    /// Jobs leased by a worker.
    pub running: u64,
    /// Dead letters.
    pub dead: u64,
    /// Seconds the oldest waiting or running job has been due (0 when none): since it was
    /// accepted, or since its effective time for a scheduled event job.
    pub oldest_age_seconds: f64,
}

/// What [`Queue::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    /// Finished jobs (with their operations).
    pub jobs: u64,
    /// Event ids.
    pub events: u64,
}

fn ns(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn from_ns(v: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v))
        .map_err(|e| StoreError::Corrupt(format!("inbound timestamp {v}: {e}")))
}

fn attempts(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Inserts a job and its operations on an open transaction.
macro_rules! insert_job {
    ($tx:expr, $job:expr, $now:expr, $run_after:expr, $subject:expr, $lane:expr) => {{
        let job: &NewJob = $job;
        sqlx::query(
            "INSERT INTO inbound_jobs (id, tenant_id, principal, request_id, source, status, \
             attempts, run_after_ns, created_ns, subject, lane) VALUES ($1, $2, $3, $4, $5, $6, 0, \
             $7, $8, $9, $10)",
        )
        .bind(&job.id)
        .bind(&job.tenant)
        .bind(&job.principal)
        .bind(&job.request_id)
        .bind(&job.source)
        .bind(status::QUEUED)
        .bind(ns($run_after))
        .bind(ns($now))
        .bind($subject)
        .bind($lane)
        .execute($tx)
        .await?;
        // Many rows per statement (a CSV upload's job may hold 100,000 records; one round trip
        // each would keep the request waiting): 5 parameters a row stays far below either
        // database's limit on parameters per statement.
        let mut seq = 0i64;
        for chunk in job.operations.chunks(OPERATIONS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO inbound_operations (job_id, seq, bulk_id, external_id, data) ",
            );
            insert.push_values(chunk, |mut row, op| {
                row.push_bind(&job.id)
                    .push_bind(seq)
                    .push_bind(&op.bulk_id)
                    .push_bind(&op.external_id)
                    .push_bind(op.data.to_string());
                seq += 1;
            });
            insert.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Operations inserted by one statement.
const OPERATIONS_PER_INSERT: usize = 500;

const JOB_COLUMNS: &str =
    "id, tenant_id, source, status, attempts, last_error, created_ns, finished_ns";

impl Queue {
    /// Creates a job and its operations in one transaction: once this returns, the job survives
    /// any crash.
    pub async fn enqueue(&self, job: &NewJob, now: OffsetDateTime) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            insert_job!(&mut *tx, job, now, now, None::<&str>, None::<&str>);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records an HR event and its jobs in one transaction, superseding the employee's pending
    /// jobs in the lanes the new jobs use (those scheduled for later: a job already due is the
    /// present state and still runs). A replayed event id changes nothing.
    pub async fn enqueue_event(
        &self,
        tenant: &str,
        source: &str,
        event_id: &str,
        event_type: &str,
        jobs: &[ScheduledJob],
        now: OffsetDateTime,
    ) -> Result<EventReceipt> {
        on_pool!(self, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            let fresh = sqlx::query(
                "INSERT INTO inbound_events (tenant_id, source, event_id, event_type, \
                 received_ns) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, source, \
                 event_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(source)
            .bind(event_id)
            .bind(event_type)
            .bind(ns(now))
            .execute(&mut *tx)
            .await?;
            if fresh.rows_affected() == 0 {
                return Ok(EventReceipt::Duplicate);
            }
            let mut lanes: Vec<(&str, &str)> =
                jobs.iter().map(|j| (j.subject.as_str(), j.lane)).collect();
            lanes.dedup();
            for (subject, lane) in lanes {
                sqlx::query(
                    "UPDATE inbound_jobs SET status = $1, finished_ns = $2 WHERE tenant_id = $3 \
                     AND subject = $4 AND lane = $5 AND status = $6 AND run_after_ns > $2",
                )
                .bind(status::SUPERSEDED)
                .bind(ns(now))
                .bind(tenant)
                .bind(subject)
                .bind(lane)
                .bind(status::QUEUED)
                .execute(&mut *tx)
                .await?;
            }
            for j in jobs {
                insert_job!(
                    &mut *tx,
                    &j.job,
                    now,
                    j.run_after,
                    Some(j.subject.as_str()),
                    Some(j.lane)
                );
            }
            tx.commit().await?;
            Ok(EventReceipt::Accepted)
        })
    }

    /// Takes the lease of the next due job (queued and past its backoff, or running with an
    /// expired lease), counting an attempt. A job whose lease expired after `max_attempts`
    /// attempts (a worker died on it each time) becomes a dead letter instead.
    pub async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
        max_attempts: u32,
    ) -> Result<Option<ClaimedJob>> {
        let until = ns(now + lease);
        on_pool!(self, |pool, pg| {
            // Nothing due, an idle worker's usual answer, is read without writing: an UPDATE
            // takes the database's write lock even when it changes nothing, and on SQLite a
            // poll waiting for that lock behind a long run of writes (an initial sync) failed
            // once its busy timeout ran out (`docs/benchmarks.md`, 2026-12-04).
            let due: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM inbound_jobs WHERE (status = $1 AND \
                 run_after_ns <= $2) OR (status = $3 AND lease_until_ns < $2))",
            )
            .bind(status::QUEUED)
            .bind(ns(now))
            .bind(status::RUNNING)
            .fetch_one(pool)
            .await?;
            if !due {
                return Ok(None);
            }
            let _turn = pool.write_turn().await;
            sqlx::query(
                "UPDATE inbound_jobs SET status = $1, lease_owner = NULL, lease_until_ns = NULL, \
                 finished_ns = $2, last_error = 'the worker stopped while holding the job on \
                 every attempt' WHERE status = $3 AND lease_until_ns < $2 AND attempts >= $4",
            )
            .bind(status::DEAD)
            .bind(ns(now))
            .bind(status::RUNNING)
            .bind(i64::from(max_attempts))
            .execute(pool)
            .await?;
            let sql = format!(
                "UPDATE inbound_jobs SET status = $1, lease_owner = $2, lease_until_ns = $3, \
                 attempts = attempts + 1 WHERE id = (SELECT id FROM inbound_jobs WHERE \
                 (status = $4 AND run_after_ns <= $5) OR (status = $1 AND lease_until_ns < $5) \
                 ORDER BY run_after_ns, created_ns LIMIT 1{}) \
                 RETURNING id, tenant_id, principal, request_id, attempts",
                if pg { " FOR UPDATE SKIP LOCKED" } else { "" }
            );
            let row = sqlx::query(&sql)
                .bind(status::RUNNING)
                .bind(owner)
                .bind(until)
                .bind(status::QUEUED)
                .bind(ns(now))
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(r) => Some(ClaimedJob {
                    id: r.try_get("id")?,
                    tenant: r.try_get("tenant_id")?,
                    principal: r.try_get("principal")?,
                    request_id: r.try_get("request_id")?,
                    attempts: attempts(r.try_get("attempts")?),
                }),
                None => None,
            })
        })
    }

    /// Extends a lease this owner holds; false when it was lost (expired and taken over).
    pub async fn extend_lease(
        &self,
        job_id: &str,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            let done = sqlx::query(
                "UPDATE inbound_jobs SET lease_until_ns = $3 WHERE id = $1 AND lease_owner = $2 \
                 AND status = $4",
            )
            .bind(job_id)
            .bind(owner)
            .bind(ns(until))
            .bind(status::RUNNING)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The operations of a job that are not final yet, in order: at most `limit` of them after
    /// position `after` (a CSV upload's job may hold 100,000 records; the worker reads them a
    /// page at a time).
    pub async fn pending_operations(
        &self,
        job_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PendingOperation>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(
                "SELECT seq, bulk_id, data FROM inbound_operations WHERE job_id = $1 AND \
                 outcome IS NULL AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(job_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    let data: Option<String> = r.try_get("data")?;
                    let data = serde_json::from_str(data.as_deref().unwrap_or("null"))
                        .map_err(|e| StoreError::Corrupt(format!("inbound operation data: {e}")))?;
                    Ok(PendingOperation {
                        seq: r.try_get("seq")?,
                        bulk_id: r.try_get("bulk_id")?,
                        data,
                    })
                })
                .collect()
        })
    }

    /// Records an operation's final outcome and forgets its payload.
    pub async fn record(
        &self,
        job_id: &str,
        seq: i64,
        outcome: Outcome,
        resource_id: Option<&str>,
        error: Option<&Value>,
    ) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query(
                "UPDATE inbound_operations SET outcome = $3, resource_id = $4, error = $5, \
                 data = NULL WHERE job_id = $1 AND seq = $2",
            )
            .bind(job_id)
            .bind(seq)
            .bind(outcome.as_str())
            .bind(resource_id)
            .bind(error.map(Value::to_string))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Marks a job done (`completed`, or `completedWithErrors` when an operation failed) and
    /// releases its lease.
    pub async fn finish(&self, job_id: &str, owner: &str, now: OffsetDateTime) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query(
                "UPDATE inbound_jobs SET status = CASE WHEN EXISTS (SELECT 1 FROM \
                 inbound_operations o WHERE o.job_id = $1 AND o.outcome = 'failed') THEN $3 \
                 ELSE $4 END, lease_owner = NULL, lease_until_ns = NULL, finished_ns = $5 \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(job_id)
            .bind(owner)
            .bind(status::COMPLETED_WITH_ERRORS)
            .bind(status::COMPLETED)
            .bind(ns(now))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Gives a job back after a transient failure, to run again at `run_after`.
    pub async fn retry_later(
        &self,
        job_id: &str,
        owner: &str,
        run_after: OffsetDateTime,
        error: &str,
    ) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query(
                "UPDATE inbound_jobs SET status = $3, run_after_ns = $4, last_error = $5, \
                 lease_owner = NULL, lease_until_ns = NULL WHERE id = $1 AND lease_owner = $2",
            )
            .bind(job_id)
            .bind(owner)
            .bind(status::QUEUED)
            .bind(ns(run_after))
            .bind(error)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Gives a job up: a dead letter, kept with the reason until retried.
    pub async fn bury(
        &self,
        job_id: &str,
        owner: &str,
        now: OffsetDateTime,
        error: &str,
    ) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query(
                "UPDATE inbound_jobs SET status = $3, last_error = $4, finished_ns = $5, \
                 lease_owner = NULL, lease_until_ns = NULL WHERE id = $1 AND lease_owner = $2",
            )
            .bind(job_id)
            .bind(owner)
            .bind(status::DEAD)
            .bind(error)
            .bind(ns(now))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Queues a dead letter again with a fresh attempt count; false when `job_id` is not one.
    pub async fn requeue_dead(&self, job_id: &str, now: OffsetDateTime) -> Result<bool> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            let done = sqlx::query(
                "UPDATE inbound_jobs SET status = $2, attempts = 0, run_after_ns = $3, \
                 finished_ns = NULL WHERE id = $1 AND status = $4",
            )
            .bind(job_id)
            .bind(status::QUEUED)
            .bind(ns(now))
            .bind(status::DEAD)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// A job of `tenant` with its counts and its first [`OPERATIONS_PAGE`] operations.
    pub async fn job(&self, tenant: &str, job_id: &str) -> Result<Option<JobView>> {
        self.job_page(tenant, job_id, 1, OPERATIONS_PAGE).await
    }

    /// A job of `tenant` with its counts (over all its operations) and `count` operations from
    /// position `start_index` (1-based, like a SCIM list): a CSV upload's job may hold 100,000.
    pub async fn job_page(
        &self,
        tenant: &str,
        job_id: &str,
        start_index: u64,
        count: u32,
    ) -> Result<Option<JobView>> {
        on_pool!(self, |pool, pg| {
            let row = sqlx::query(&format!(
                "SELECT {JOB_COLUMNS} FROM inbound_jobs WHERE id = $1 AND tenant_id = $2"
            ))
            .bind(job_id)
            .bind(tenant)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let mut counts = Counts::default();
            for r in sqlx::query(
                "SELECT outcome, COUNT(*) AS n FROM inbound_operations WHERE job_id = $1 \
                 GROUP BY outcome",
            )
            .bind(job_id)
            .fetch_all(pool)
            .await?
            {
                let outcome: Option<String> = r.try_get("outcome")?;
                let n = u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0);
                counts.total += n;
                match outcome.as_deref() {
                    Some("created") => counts.created += n,
                    Some("updated") => counts.updated += n,
                    Some("unchanged") => counts.unchanged += n,
                    Some("failed") => counts.failed += n,
                    _ => counts.pending += n,
                }
            }
            let offset = i64::try_from(start_index.max(1) - 1).unwrap_or(i64::MAX);
            let ops = sqlx::query(
                "SELECT bulk_id, external_id, outcome, resource_id, error FROM \
                 inbound_operations WHERE job_id = $1 ORDER BY seq LIMIT $2 OFFSET $3",
            )
            .bind(job_id)
            .bind(i64::from(count))
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let mut operations = Vec::with_capacity(ops.len());
            for r in ops {
                let outcome: Option<String> = r.try_get("outcome")?;
                let error: Option<String> = r.try_get("error")?;
                operations.push(OperationView {
                    bulk_id: r.try_get("bulk_id")?,
                    external_id: r.try_get("external_id")?,
                    outcome: outcome.unwrap_or_else(|| "pending".into()),
                    id: r.try_get("resource_id")?,
                    error: error.and_then(|e| serde_json::from_str(&e).ok()),
                });
            }
            let finished: Option<i64> = row.try_get("finished_ns")?;
            Ok(Some(JobView {
                id: row.try_get("id")?,
                tenant: row.try_get("tenant_id")?,
                source: row.try_get("source")?,
                status: row.try_get("status")?,
                attempts: attempts(row.try_get("attempts")?),
                last_error: row.try_get("last_error")?,
                created: from_ns(row.try_get("created_ns")?)?,
                finished: finished.map(from_ns).transpose()?,
                counts,
                start_index: start_index.max(1),
                items_per_page: operations.len() as u64,
                operations,
            }))
        })
    }

    /// Up to `limit` operations of `tenant`'s job `job_id` after position `after_seq` (0-based
    /// `seq`; `-1` for the first page), in order, each with its `seq`: a keyset page on the
    /// operations' primary key, so reading a 100,000-row job page by page costs each page
    /// alone (the console's report download). A job of another tenant has none.
    pub async fn operations_after(
        &self,
        tenant: &str,
        job_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, OperationView)>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(
                "SELECT o.seq, o.bulk_id, o.external_id, o.outcome, o.resource_id, o.error FROM \
                 inbound_operations o JOIN inbound_jobs j ON j.id = o.job_id WHERE o.job_id = $1 \
                 AND j.tenant_id = $2 AND o.seq > $3 ORDER BY o.seq LIMIT $4",
            )
            .bind(job_id)
            .bind(tenant)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            let mut page = Vec::with_capacity(rows.len());
            for r in rows {
                let outcome: Option<String> = r.try_get("outcome")?;
                let error: Option<String> = r.try_get("error")?;
                page.push((
                    r.try_get("seq")?,
                    OperationView {
                        bulk_id: r.try_get("bulk_id")?,
                        external_id: r.try_get("external_id")?,
                        outcome: outcome.unwrap_or_else(|| "pending".into()),
                        id: r.try_get("resource_id")?,
                        error: error.and_then(|e| serde_json::from_str(&e).ok()),
                    },
                ));
            }
            Ok(page)
        })
    }

    /// Jobs in `status` (optionally of one tenant), oldest first, at most `limit`.
    pub async fn jobs_in(
        &self,
        wanted: &str,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobSummary>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(&format!(
                "SELECT {JOB_COLUMNS} FROM inbound_jobs WHERE status = $1 AND ($2 IS NULL OR \
                 tenant_id = $2) ORDER BY created_ns, id LIMIT $3"
            ))
            .bind(wanted)
            .bind(tenant)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(JobSummary {
                        id: r.try_get("id")?,
                        tenant: r.try_get("tenant_id")?,
                        status: r.try_get("status")?,
                        attempts: attempts(r.try_get("attempts")?),
                        last_error: r.try_get("last_error")?,
                        created: from_ns(r.try_get("created_ns")?)?,
                    })
                })
                .collect()
        })
    }

    /// Counts per state and the age of the oldest unfinished job.
    pub async fn status(&self, now: OffsetDateTime) -> Result<QueueStatus> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(
                "SELECT CASE WHEN status = $1 AND lane IS NOT NULL AND run_after_ns > $4 THEN \
                 'scheduled' ELSE status END AS state, COUNT(*) AS n, MIN(CASE WHEN lane IS \
                 NULL THEN created_ns ELSE run_after_ns END) AS oldest FROM inbound_jobs WHERE \
                 status IN ($1, $2, $3) GROUP BY 1",
            )
            .bind(status::QUEUED)
            .bind(status::RUNNING)
            .bind(status::DEAD)
            .bind(ns(now))
            .fetch_all(pool)
            .await?;
            let mut s = QueueStatus::default();
            let mut oldest: Option<i64> = None;
            for r in rows {
                let name: String = r.try_get("state")?;
                let n: i64 = r.try_get("n")?;
                let n = u64::try_from(n).unwrap_or(0);
                match name.as_str() {
                    status::QUEUED => s.queued += n,
                    status::RUNNING => s.running += n,
                    status::DEAD => {
                        s.dead += n;
                        continue;
                    }
                    _ => {
                        s.scheduled += n;
                        continue;
                    }
                }
                let first: Option<i64> = r.try_get("oldest")?;
                oldest = match (oldest, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if let Some(first) = oldest {
                s.oldest_age_seconds = ((ns(now) - first) as f64 / 1e9).max(0.0);
            }
            Ok(s)
        })
    }

    /// Deletes jobs finished before `before` (completed, completed with errors, superseded)
    /// with their operations, at most `batch` jobs per transaction until none is left, and
    /// event ids received before `before`. Dead letters stay until retried; queued and running
    /// jobs are never touched. Forgetting an old event id is safe: Standard Webhooks refuses
    /// any delivery whose timestamp is more than five minutes off, so a replay of it is refused
    /// by its signature check before its id is looked at.
    pub async fn purge(&self, before: OffsetDateTime, batch: u32) -> Result<Purged> {
        let mut purged = Purged::default();
        loop {
            let n = on_pool!(self, |pool, pg| {
                let mut tx = pool.begin_write().await?;
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM inbound_jobs WHERE status IN ($1, $2, $3) AND finished_ns < \
                     $4 ORDER BY finished_ns LIMIT $5",
                )
                .bind(status::COMPLETED)
                .bind(status::COMPLETED_WITH_ERRORS)
                .bind(status::SUPERSEDED)
                .bind(ns(before))
                .bind(i64::from(batch.max(1)))
                .fetch_all(&mut *tx)
                .await?;
                for id in &ids {
                    sqlx::query("DELETE FROM inbound_operations WHERE job_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM inbound_jobs WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<u64, StoreError>(ids.len() as u64)
            })?;
            purged.jobs += n;
            if n < u64::from(batch.max(1)) {
                break;
            }
        }
        purged.events = on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query("DELETE FROM inbound_events WHERE received_ns < $1")
                .bind(ns(before))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(purged)
    }

    /// Remembers that `employee` reports to `manager`, who does not exist yet.
    pub async fn link_manager(&self, tenant: &str, employee: &str, manager: &str) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query(
                "INSERT INTO inbound_manager_links (tenant_id, employee_external_id, \
                 manager_external_id) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, \
                 employee_external_id) DO UPDATE SET manager_external_id = $3",
            )
            .bind(tenant)
            .bind(employee)
            .bind(manager)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Forgets a waiting manager link (resolved, or superseded by a newer record). Every record
    /// applied asks this, and almost none has a link: looking first spares a write transaction
    /// (and its sync to disk) per record.
    pub async fn unlink_manager(&self, tenant: &str, employee: &str) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let waiting = sqlx::query(
                "SELECT 1 FROM inbound_manager_links WHERE tenant_id = $1 AND \
                 employee_external_id = $2",
            )
            .bind(tenant)
            .bind(employee)
            .fetch_optional(pool)
            .await?;
            if waiting.is_none() {
                return Ok(());
            }
            let _turn = pool.write_turn().await;
            sqlx::query(
                "DELETE FROM inbound_manager_links WHERE tenant_id = $1 AND \
                 employee_external_id = $2",
            )
            .bind(tenant)
            .bind(employee)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The employees (by externalId) waiting for `manager`.
    pub async fn reports_waiting_for(&self, tenant: &str, manager: &str) -> Result<Vec<String>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(
                "SELECT employee_external_id FROM inbound_manager_links WHERE tenant_id = $1 \
                 AND manager_external_id = $2 ORDER BY employee_external_id",
            )
            .bind(tenant)
            .bind(manager)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| Ok(r.try_get("employee_external_id")?))
                .collect()
        })
    }
}
