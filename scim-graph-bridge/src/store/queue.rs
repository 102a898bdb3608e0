//! The work queue: outbox ingestion, leases, completion, backoff, dead letters.
//!
//! Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the single
//! writer serialises claims. Either way the `bridge_work` row is the lease: a
//! worker owns the user until `lease_until_ms`, and completion only counts if
//! the lease is still its own.

use crate::write_gate::SideWrites;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;

use std::collections::HashMap;

use scim_core::change_log::{ChangeCursor, contiguous};
use scim_core::schema::USER_RESOURCE;

use super::{BridgeStore, seq_to_db};
use crate::Result;
use crate::clock::{from_millis, to_millis};
use crate::on_pool;
use crate::outbox::OutboxReader;

/// A claimed unit of work: one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Tenant.
    pub tenant_id: String,
    /// SCIM user id.
    pub user_id: String,
    /// Bumped by every change coalesced into the row.
    pub generation: i64,
    /// Attempts including this one.
    pub attempts: i64,
}

/// What happened to a failed item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled again.
    Retrying {
        /// When.
        due_at: OffsetDateTime,
    },
    /// Moved to the dead-letter list.
    DeadLettered,
    /// The lease had passed to another worker; nothing was changed.
    LeaseLost,
}

/// Inserts or coalesces work for a user, due no later than `$now`.
macro_rules! upsert_work {
    ($ex:expr, $pg:expr, $tenant:expr, $user:expr, $now:expr) => {{
        let least = if $pg { "LEAST" } else { "MIN" };
        sqlx::query(&format!(
                "INSERT INTO bridge_work (tenant_id, user_id, generation, due_at_ms, attempts, enqueued_at_ms) VALUES ($1, $2, 1, $3, 0, $3)
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET generation = bridge_work.generation + 1,
                 due_at_ms = {least}(bridge_work.due_at_ms, $3)"
            ))
        .bind($tenant)
        .bind($user)
        .bind($now)
        .execute($ex)
        .await?;
    }};
}
pub(crate) use upsert_work;

/// Exponential backoff with jitter for the `attempts`-th failure.
pub fn backoff(attempts: i64, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let d = base.saturating_mul(1u32 << exp).min(max);
    let ms = d.as_millis().max(2) as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
}

impl BridgeStore {
    /// Turns new change-log entries into work (User entries only; Group entries are no input
    /// to the rules), for every tenant, at most `limit` entries per tenant. Returns the number
    /// of entries consumed.
    ///
    /// Entries are read from `log` outside the bridge's transaction; the cursor then moves in a
    /// compare-and-swap: if another worker advanced it meanwhile, this round leaves the tenant
    /// to it. Consumption stops at the first gap (a record not visible yet), to be resumed
    /// once it is.
    pub async fn ingest(
        &self,
        log: &dyn OutboxReader,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<usize> {
        let now_ms = to_millis(now);
        let cursors: HashMap<String, u64> = self
            .cursors()
            .await?
            .into_iter()
            .map(|c| (c.tenant, c.seq))
            .collect();
        let mut consumed = 0;
        for head in log.heads().await? {
            let cursor = ChangeCursor {
                seq: cursors.get(&head.tenant).copied().unwrap_or(0),
                tenant: head.tenant,
            };
            if head.seq <= cursor.seq {
                continue;
            }
            let read = log
                .read_after(&cursor, usize::try_from(limit.max(1)).unwrap_or(usize::MAX))
                .await?;
            let entries = contiguous(&cursor, &read);
            let Some(last) = entries.last() else { continue };
            let next = cursor.advanced_to(last);
            let moved = on_pool!(self, |pool, pg| {
                async {
                    let mut tx = pool.begin_write().await?;
                    // a write first, so SQLite takes the write lock before reading
                    sqlx::query("INSERT INTO bridge_cursor (tenant_id, last_seq) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING")
                        .bind(&cursor.tenant)
                        .execute(&mut *tx)
                        .await?;
                    let lock = if pg { " FOR UPDATE" } else { "" };
                    let stored: i64 = sqlx::query(&format!("SELECT last_seq FROM bridge_cursor WHERE tenant_id = $1{lock}"))
                    .bind(&cursor.tenant)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("last_seq")?;
                    if u64::try_from(stored).ok() != Some(cursor.seq) {
                        // another worker consumed these entries first
                        return Ok::<_, crate::Error>(false);
                    }
                    // Audit events (`write()` is `None`) move the cursor like any entry but
                    // queue nothing: no user changed.
                    let users = entries.iter().filter_map(|e| e.write()).filter(|w| w.resource_type == USER_RESOURCE);
                    for w in users {
                        upsert_work!(&mut *tx, pg, &cursor.tenant, &w.resource_id, now_ms);
                    }
                    sqlx::query("UPDATE bridge_cursor SET last_seq = $2 WHERE tenant_id = $1")
                    .bind(&cursor.tenant)
                    .bind(seq_to_db(next.seq)?)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                }
                .await
            })?;
            if moved {
                consumed += entries.len();
            }
        }
        Ok(consumed)
    }

    /// Queues a user (e.g. `reconcile --all`, or a retried dead letter), due now.
    pub async fn enqueue(&self, tenant: &str, user: &str, now: OffsetDateTime) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            upsert_work!(pool, pg, tenant, user, to_millis(now));
            Ok(())
        })
    }

    /// Leases up to `limit` due items to `owner` until `now + lease`.
    pub async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<WorkItem>> {
        let now_ms = to_millis(now);
        let until = to_millis(now + lease);
        on_pool!(self, |pool, pg| {
            let q = if pg {
                "UPDATE bridge_work w SET lease_owner = $1, lease_until_ms = $2, attempts = w.attempts + 1
                 FROM (SELECT tenant_id, user_id FROM bridge_work
                       WHERE due_at_ms <= $3 AND (lease_until_ms IS NULL OR lease_until_ms <= $3)
                       ORDER BY due_at_ms LIMIT $4 FOR UPDATE SKIP LOCKED) c
                 WHERE w.tenant_id = c.tenant_id AND w.user_id = c.user_id
                 RETURNING w.tenant_id, w.user_id, w.generation, w.attempts"
            } else {
                "UPDATE bridge_work SET lease_owner = ?1, lease_until_ms = ?2, attempts = attempts + 1
                 WHERE rowid IN (SELECT rowid FROM bridge_work
                       WHERE due_at_ms <= ?3 AND (lease_until_ms IS NULL OR lease_until_ms <= ?3)
                       ORDER BY due_at_ms LIMIT ?4)
                 RETURNING tenant_id, user_id, generation, attempts"
            };
            let _turn = pool.write_turn().await;
            let rows = sqlx::query(q)
                .bind(owner)
                .bind(until)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(WorkItem {
                        tenant_id: r.try_get("tenant_id")?,
                        user_id: r.try_get("user_id")?,
                        generation: r.try_get("generation")?,
                        attempts: r.try_get("attempts")?,
                    })
                })
                .collect()
        })
    }

    /// Extends a lease still held by `owner`; `false` if it was lost.
    pub async fn extend_lease(
        &self,
        item: &WorkItem,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            let r = sqlx::query("UPDATE bridge_work SET lease_until_ms = $4 WHERE tenant_id = $1 AND user_id = $2 AND lease_owner = $3")
            .bind(&item.tenant_id)
            .bind(&item.user_id)
            .bind(owner)
            .bind(to_millis(until))
            .execute(pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Finishes an item. If changes arrived meanwhile the row stays, due now;
    /// `next_due` keeps it scheduled for later (a pending hard delete).
    /// Returns `false` if the lease was lost.
    pub async fn complete(
        &self,
        item: &WorkItem,
        owner: &str,
        now: OffsetDateTime,
        next_due: Option<OffsetDateTime>,
    ) -> Result<bool> {
        let now_ms = to_millis(now);
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            if next_due.is_none() {
                let done = sqlx::query("DELETE FROM bridge_work WHERE tenant_id = $1 AND user_id = $2 AND lease_owner = $3 AND generation = $4")
                    .bind(&item.tenant_id)
                    .bind(&item.user_id)
                    .bind(owner)
                    .bind(item.generation)
                    .execute(pool)
                    .await?;
                if done.rows_affected() == 1 {
                    return Ok(true);
                }
            }
            let later = next_due.map(to_millis).unwrap_or(now_ms);
            let kept = sqlx::query("UPDATE bridge_work SET lease_owner = NULL, lease_until_ms = NULL, attempts = 0, last_error = NULL,
                 due_at_ms = CASE WHEN generation = $4 THEN $5 ELSE $6 END
                 WHERE tenant_id = $1 AND user_id = $2 AND lease_owner = $3")
            .bind(&item.tenant_id)
            .bind(&item.user_id)
            .bind(owner)
            .bind(item.generation)
            .bind(later)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(kept.rows_affected() == 1)
        })
    }

    /// Records a failure: retry with backoff, or dead-letter after `max_attempts`.
    pub async fn fail(
        &self,
        item: &WorkItem,
        owner: &str,
        now: OffsetDateTime,
        reason: &str,
        max_attempts: i64,
        base: Duration,
    ) -> Result<FailOutcome> {
        if item.attempts >= max_attempts {
            return self.dead_letter(item, owner, now, reason).await;
        }
        let due = now + backoff(item.attempts, base, Duration::from_secs(3600));
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            let r = sqlx::query("UPDATE bridge_work SET lease_owner = NULL, lease_until_ms = NULL, last_error = $4, due_at_ms = $5
                 WHERE tenant_id = $1 AND user_id = $2 AND lease_owner = $3")
            .bind(&item.tenant_id)
            .bind(&item.user_id)
            .bind(owner)
            .bind(reason)
            .bind(to_millis(due))
            .execute(pool)
            .await?;
            Ok(if r.rows_affected() == 1 {
                FailOutcome::Retrying {
                    due_at: from_millis(to_millis(due)),
                }
            } else {
                FailOutcome::LeaseLost
            })
        })
    }

    /// Moves an item to the dead-letter list now.
    pub async fn dead_letter(
        &self,
        item: &WorkItem,
        owner: &str,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<FailOutcome> {
        on_pool!(self, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            let gone = sqlx::query("DELETE FROM bridge_work WHERE tenant_id = $1 AND user_id = $2 AND lease_owner = $3")
                .bind(&item.tenant_id)
                .bind(&item.user_id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                return Ok(FailOutcome::LeaseLost);
            }
            sqlx::query("INSERT INTO bridge_dead_letters (id, tenant_id, user_id, attempts, reason, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&item.tenant_id)
            .bind(&item.user_id)
            .bind(item.attempts)
            .bind(reason)
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(FailOutcome::DeadLettered)
        })
    }
}
