//! The callbacks' tables (migration `0015_callbacks.sql`): `callback_deliveries` (the outbox),
//! `callback_awaiting_bridge` (users a job wrote, waiting for the bridge's outcome) and
//! `callback_bridge_settled` (the bridge's last outcome per user). Same statements on both
//! databases (`$n` placeholders); PostgreSQL claims with `FOR UPDATE SKIP LOCKED`.

use super::callback::{Callbacks, settled_body, settled_type};
use crate::store::write_gate::SideWrites;
use crate::store::{Result, StoreError};
use scim_graph_bridge::notify::{Settled, SettledOutcome};
use scim_graph_bridge::on_pool;
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

fn ns(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn from_ns(v: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v))
        .map_err(|e| StoreError::Corrupt(format!("callback timestamp {v}: {e}")))
}

/// A user a job wrote, waiting for the bridge's outcome of a plan from `min_version` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    /// SCIM user id.
    pub user_id: String,
    /// The job that wrote it.
    pub job_id: String,
    /// The user's version after the job.
    pub min_version: u64,
    /// The record's `externalId`.
    pub external_id: Option<String>,
    /// The HR event the job came from.
    pub event_id: Option<String>,
}

/// A message as `deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The `webhook-id`.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// The message type (`job.completed`, …).
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The body.
    pub payload: String,
}

/// A claimed message.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) payload: String,
    pub(super) attempts: u32,
}

/// Inserts a pending message unless one with its id exists.
macro_rules! insert_delivery {
    ($ex:expr, $id:expr, $tenant:expr, $kind:expr, $body:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO callback_deliveries (id, tenant_id, event_type, payload, status, attempts, \
             next_attempt_ns, created_ns) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind($id)
        .bind($tenant)
        .bind($kind)
        .bind($body)
        .bind($now)
        .execute($ex)
        .await?
    };
}

/// Takes the user's settled row (created as a placeholder if absent) under lock, so job
/// reports and bridge reports of one user serialise; returns the version the bridge last
/// settled (-1: none yet).
macro_rules! lock_settled {
    ($tx:expr, $pg:expr, $tenant:expr, $user:expr, $now:expr) => {{
        sqlx::query(
            "INSERT INTO callback_bridge_settled (tenant_id, user_id, scim_version, at_ns) \
             VALUES ($1, $2, -1, $3) ON CONFLICT (tenant_id, user_id) DO NOTHING",
        )
        .bind($tenant)
        .bind($user)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        let lock = if $pg { " FOR UPDATE" } else { "" };
        sqlx::query(&format!(
            "SELECT scim_version, outcome, detail, kind, steps, at_ns FROM callback_bridge_settled \
             WHERE tenant_id = $1 AND user_id = $2{lock}"
        ))
        .bind($tenant)
        .bind($user)
        .fetch_one(&mut *$tx)
        .await?
    }};
}

/// A `callback_bridge_settled` row as read.
struct SettledRow {
    version: i64,
    outcome: Option<String>,
    detail: Option<String>,
    kind: Option<String>,
    steps: i64,
    at: i64,
}

/// The outcome stored in a settled row (`None` while it is a placeholder).
fn stored_settled(tenant: &str, user: &str, row: SettledRow) -> Result<Option<Settled>> {
    let Some(outcome) = row.outcome else {
        return Ok(None);
    };
    Ok(Some(Settled {
        tenant_id: tenant.to_string(),
        user_id: user.to_string(),
        scim_version: u64::try_from(row.version).ok(),
        outcome: serde_json::from_value(serde_json::Value::String(outcome))
            .map_err(|e| StoreError::Corrupt(format!("settled outcome: {e}")))?,
        kind: row
            .kind
            .and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok()),
        steps: usize::try_from(row.steps).unwrap_or(0),
        detail: row.detail,
        at: from_ns(row.at)?,
    }))
}

/// Whether a settled plan answers a wait: computed from the written version or later, or an
/// end whose version is unknown (a dead letter whose planning failed, an operator's rejection):
/// nothing newer will come without another change.
fn answers(s: &Settled, min_version: u64) -> bool {
    match s.scim_version {
        Some(v) => v >= min_version,
        None => matches!(
            s.outcome,
            SettledOutcome::DeadLettered | SettledOutcome::Rejected
        ),
    }
}

fn as_str<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

impl Callbacks {
    /// Queues a message unless its id is queued already; `true` when it was new.
    pub(super) async fn enqueue(
        &self,
        tenant: &str,
        id: &str,
        kind: &str,
        body: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(&self.db, |pool, pg| {
            let _turn = pool.write_turn().await;
            let r = insert_delivery!(pool, id, tenant, kind, body, ns(now));
            Ok(r.rows_affected() == 1)
        })
    }

    /// A job's message and its users' waits (or, for a user the bridge settled already from
    /// that version on, the bridge's message at once), in one transaction.
    pub(super) async fn record_job(
        &self,
        tenant: &str,
        id: &str,
        kind: &str,
        body: &str,
        awaiting: &[Awaiting],
        now: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(&self.db, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            let new =
                insert_delivery!(&mut *tx, id, tenant, kind, body, ns(now)).rows_affected() == 1;
            for w in awaiting {
                let row = lock_settled!(tx, pg, tenant, &w.user_id, ns(now));
                let read = SettledRow {
                    version: row.try_get("scim_version")?,
                    outcome: row.try_get("outcome")?,
                    detail: row.try_get("detail")?,
                    kind: row.try_get("kind")?,
                    steps: row.try_get("steps")?,
                    at: row.try_get("at_ns")?,
                };
                let settled = stored_settled(tenant, &w.user_id, read)?;
                let min = i64::try_from(w.min_version).unwrap_or(i64::MAX);
                match settled {
                    Some(s) if answers(&s, w.min_version) => {
                        let msg = format!("msg_bridge_{}_{}", w.job_id, w.user_id);
                        insert_delivery!(
                            &mut *tx,
                            &msg,
                            tenant,
                            settled_type(s.outcome),
                            settled_body(&s, w, now),
                            ns(now)
                        );
                    }
                    _ => {
                        sqlx::query(
                            "INSERT INTO callback_awaiting_bridge (tenant_id, user_id, job_id, \
                             min_version, external_id, event_id, created_ns) VALUES ($1, $2, $3, \
                             $4, $5, $6, $7) ON CONFLICT (tenant_id, user_id, job_id) DO NOTHING",
                        )
                        .bind(tenant)
                        .bind(&w.user_id)
                        .bind(&w.job_id)
                        .bind(min)
                        .bind(&w.external_id)
                        .bind(&w.event_id)
                        .bind(ns(now))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Stores the bridge's outcome for the user and turns the waits it answers into messages,
    /// in one transaction. Returns how many messages were queued.
    pub(super) async fn record_settled(&self, s: &Settled) -> Result<usize> {
        let now = self.clock.now();
        let version = s
            .scim_version
            .map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        on_pool!(&self.db, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            let row = lock_settled!(tx, pg, &s.tenant_id, &s.user_id, ns(now));
            let stored: i64 = row.try_get("scim_version")?;
            if version >= stored || answers(s, u64::MAX) {
                sqlx::query(
                    "UPDATE callback_bridge_settled SET scim_version = $3, outcome = $4, \
                     detail = $5, kind = $6, steps = $7, at_ns = $8 WHERE tenant_id = $1 AND \
                     user_id = $2",
                )
                .bind(&s.tenant_id)
                .bind(&s.user_id)
                .bind(version.max(stored))
                .bind(as_str(&s.outcome))
                .bind(&s.detail)
                .bind(s.kind.as_ref().and_then(as_str))
                .bind(i64::try_from(s.steps).unwrap_or(i64::MAX))
                .bind(ns(s.at))
                .execute(&mut *tx)
                .await?;
            }
            let rows = sqlx::query(
                "SELECT job_id, min_version, external_id, event_id FROM callback_awaiting_bridge \
                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_ns, job_id",
            )
            .bind(&s.tenant_id)
            .bind(&s.user_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut queued = 0;
            for r in rows {
                let w = Awaiting {
                    user_id: s.user_id.clone(),
                    job_id: r.try_get("job_id")?,
                    min_version: u64::try_from(r.try_get::<i64, _>("min_version")?).unwrap_or(0),
                    external_id: r.try_get("external_id")?,
                    event_id: r.try_get("event_id")?,
                };
                if !answers(s, w.min_version) {
                    continue;
                }
                let msg = format!("msg_bridge_{}_{}", w.job_id, w.user_id);
                insert_delivery!(
                    &mut *tx,
                    &msg,
                    &s.tenant_id,
                    settled_type(s.outcome),
                    settled_body(s, &w, now),
                    ns(now)
                );
                sqlx::query(
                    "DELETE FROM callback_awaiting_bridge WHERE tenant_id = $1 AND user_id = $2 \
                     AND job_id = $3",
                )
                .bind(&s.tenant_id)
                .bind(&s.user_id)
                .bind(&w.job_id)
                .execute(&mut *tx)
                .await?;
                queued += 1;
            }
            tx.commit().await?;
            Ok(queued)
        })
    }

    /// Leases the oldest due message to `owner` until `now + lease`, counting the attempt.
    pub(super) async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<Option<Claimed>> {
        let until = ns(now + lease);
        on_pool!(&self.db, |pool, pg| {
            let skip = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
            let _turn = pool.write_turn().await;
            let row = sqlx::query(&format!(
                "UPDATE callback_deliveries SET lease_owner = $1, lease_until_ns = $2, \
                 attempts = attempts + 1 WHERE id = (SELECT id FROM callback_deliveries WHERE \
                 status = 'pending' AND next_attempt_ns <= $3 AND (lease_until_ns IS NULL OR \
                 lease_until_ns <= $3) ORDER BY next_attempt_ns, id LIMIT 1{skip}) \
                 RETURNING id, tenant_id, payload, attempts"
            ))
            .bind(owner)
            .bind(until)
            .bind(ns(now))
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(Claimed {
                    id: r.try_get("id")?,
                    tenant: r.try_get("tenant_id")?,
                    payload: r.try_get("payload")?,
                    attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                })
            })
            .transpose()
        })
    }

    /// Records an attempt's end: delivered, due again at `retry_at`, or dead (`retry_at` None
    /// with an error).
    pub(super) async fn finish_attempt(
        &self,
        id: &str,
        owner: &str,
        now: OffsetDateTime,
        error: Option<&str>,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let (status, next) = match (error, retry_at) {
            (None, _) => ("delivered", now),
            (Some(_), Some(at)) => ("pending", at),
            (Some(_), None) => ("dead", now),
        };
        on_pool!(&self.db, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query(
                "UPDATE callback_deliveries SET status = $3, next_attempt_ns = $4, last_error = \
                 $5, lease_owner = NULL, lease_until_ns = NULL, finished_ns = CASE WHEN $3 = \
                 'pending' THEN NULL ELSE $6 END WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(status)
            .bind(ns(next))
            .bind(error)
            .bind(ns(now))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Messages, oldest first, optionally of one tenant.
    pub async fn deliveries(&self, tenant: Option<&str>) -> Result<Vec<DeliveryView>> {
        on_pool!(&self.db, |pool, pg| {
            let rows = sqlx::query(
                "SELECT id, tenant_id, event_type, status, attempts, last_error, payload FROM \
                 callback_deliveries WHERE tenant_id = COALESCE($1, tenant_id) ORDER BY \
                 created_ns, id",
            )
            .bind(tenant)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(DeliveryView {
                        id: r.try_get("id")?,
                        tenant: r.try_get("tenant_id")?,
                        event_type: r.try_get("event_type")?,
                        status: r.try_get("status")?,
                        attempts: r.try_get("attempts")?,
                        last_error: r.try_get("last_error")?,
                        payload: r.try_get("payload")?,
                    })
                })
                .collect()
        })
    }

    /// Forgets delivered messages finished before `delivered_before`, and waits for the bridge
    /// older than `waiting_before` (a user deleted before the bridge saw the write); dead
    /// messages stay for an operator. Returns how many rows went.
    pub async fn purge(
        &self,
        delivered_before: OffsetDateTime,
        waiting_before: OffsetDateTime,
    ) -> Result<u64> {
        on_pool!(&self.db, |pool, pg| {
            let _turn = pool.write_turn().await;
            let a = sqlx::query(
                "DELETE FROM callback_deliveries WHERE status = 'delivered' AND finished_ns < $1",
            )
            .bind(ns(delivered_before))
            .execute(pool)
            .await?;
            let b = sqlx::query("DELETE FROM callback_awaiting_bridge WHERE created_ns < $1")
                .bind(ns(waiting_before))
                .execute(pool)
                .await?;
            Ok(a.rows_affected() + b.rows_affected())
        })
    }

    /// Messages waiting or given up, for `/metrics`: (pending, dead).
    pub async fn counts(&self) -> Result<(i64, i64)> {
        on_pool!(&self.db, |pool, pg| {
            let row = sqlx::query(
                "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS p, \
                 COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) AS d FROM \
                 callback_deliveries",
            )
            .fetch_one(pool)
            .await?;
            Ok((row.try_get("p")?, row.try_get("d")?))
        })
    }
}
