//! The bridge's durable state in the server's database (SQLite or PostgreSQL).
//!
//! Tables (see `migrations/{sqlite,postgres}/`): `bridge_cursor` (outbox
//! position per tenant), `bridge_work` (one coalesced row per user, doubling as
//! its lease row), `bridge_links` (Graph id and leave time per user),
//! `bridge_dead_letters` and `bridge_plans` (every plan with its step outcomes); the
//! mass-change guard's `bridge_guard_tenants`, `bridge_guard_actions` and `bridge_holds`
//! (`holds.rs`, policy in [`crate::guard`]).
//! Migrations are sqlx's (`migrations/{sqlite,postgres}`, numbered alike, versions
//! from [`FIRST_MIGRATION_VERSION`]), recorded in the `_sqlx_migrations` table the server's
//! migrations use too. Statements use `$n` placeholders on both databases (sqlx's SQLite
//! driver accepts them).

mod holds;
mod queue;

use crate::write_gate::SideWrites;
use std::collections::BTreeMap;

use scim_core::change_log::ChangeCursor;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;

pub use queue::{FailOutcome, WorkItem};

use crate::Result;
use crate::clock::{from_millis, to_millis};
use crate::on_pool;
use crate::outbox::OutboxReader;
use crate::plan::Plan;
use crate::reconcile::{ApplyReport, UserLink};

/// A database holding the bridge's tables.
#[derive(Clone, Debug)]
pub enum BridgeStore {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}
crate::impl_on_pool!(BridgeStore);

/// The bridge's migrations per dialect (`migrations/{sqlite,postgres}`, numbered alike).
///
/// They share sqlx's `_sqlx_migrations` table with the server's migrations on the same
/// database, in their own version range (10001 and up; the server's stay below 10000), so each
/// migrator ignores the other's applied versions (`ignore_missing`) instead of refusing them as
/// unknown. The server's migrators do the same.
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

/// The first version of the bridge's migration range.
pub const FIRST_MIGRATION_VERSION: i64 = 10_001;

/// Applies the SQLite migrations.
pub async fn migrate_sqlite(pool: &sqlx::SqlitePool) -> Result<()> {
    BridgeStore::Sqlite(pool.clone()).migrate().await
}

/// Applies the PostgreSQL migrations.
pub async fn migrate_postgres(pool: &sqlx::PgPool) -> Result<()> {
    BridgeStore::Postgres(pool.clone()).migrate().await
}

/// A dead-lettered work item.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    /// Id for `retry`.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// SCIM user id.
    pub user_id: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why it was given up.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A recorded plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlanRecord {
    /// Record id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// SCIM user id.
    pub user_id: String,
    /// When it was computed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// `plan` or `apply`.
    pub mode: String,
    /// `planned`, `noop`, `applied`, `partial`, `failed`, or `held` (by the mass-change guard).
    pub status: String,
    /// The plan.
    pub plan: Plan,
    /// Step outcomes, when applied.
    pub report: Option<ApplyReport>,
}

/// Outbox position of a tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CursorStatus {
    /// Tenant.
    pub tenant_id: String,
    /// Last change turned into work.
    pub last_seq: i64,
    /// Newest change in the outbox.
    pub head_seq: i64,
}

/// What `bridge status` shows.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// Users with pending work.
    pub pending: i64,
    /// Of which currently leased by a worker.
    pub leased: i64,
    /// Of which retrying after a failure.
    pub retrying: i64,
    /// Dead letters.
    pub dead_letters: i64,
    /// Recorded plans.
    pub plans: i64,
    /// Leaver plans held by the mass-change guard, waiting for an operator.
    #[serde(default)]
    pub held: i64,
    /// Outbox positions.
    pub cursors: Vec<CursorStatus>,
}

impl BridgeStore {
    /// Creates or upgrades the bridge tables (idempotent; PostgreSQL migrators serialise on
    /// sqlx's advisory lock). On SQLite in a turn, like every write beside the store's.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            BridgeStore::Sqlite(pool) => {
                let _turn = pool.write_turn().await;
                SQLITE_MIGRATOR.run(pool).await
            }
            BridgeStore::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await,
        }
        .map_err(|e| crate::Error::Database(e.into()))
    }

    /// The remembered link of a user.
    pub async fn get_link(&self, tenant: &str, user: &str) -> Result<UserLink> {
        on_pool!(self, |pool, pg| {
            let row = sqlx::query("SELECT graph_id, left_at_ms FROM bridge_links WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                None => UserLink::default(),
                Some(r) => UserLink {
                    graph_id: r.try_get("graph_id")?,
                    left_at: r.try_get::<Option<i64>, _>("left_at_ms")?.map(from_millis),
                },
            })
        })
    }

    /// Stores the link of a user.
    pub async fn put_link(
        &self,
        tenant: &str,
        user: &str,
        link: &UserLink,
        now: OffsetDateTime,
    ) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query("INSERT INTO bridge_links (tenant_id, user_id, graph_id, left_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET graph_id = $3, left_at_ms = $4, updated_at_ms = $5")
            .bind(tenant)
            .bind(user)
            .bind(link.graph_id.clone())
            .bind(link.left_at.map(to_millis))
            .bind(to_millis(now))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Every remembered link of a tenant's users, by SCIM user id (for reports).
    pub async fn links(&self, tenant: &str) -> Result<BTreeMap<String, UserLink>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(
                "SELECT user_id, graph_id, left_at_ms FROM bridge_links WHERE tenant_id = $1",
            )
            .bind(tenant)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("user_id")?,
                        UserLink {
                            graph_id: r.try_get("graph_id")?,
                            left_at: r.try_get::<Option<i64>, _>("left_at_ms")?.map(from_millis),
                        },
                    ))
                })
                .collect()
        })
    }

    /// The users of a tenant with work queued or in progress, due now or later (a scheduled
    /// expiry or hard delete counts: the bridge will come back to them).
    pub async fn pending_users(&self, tenant: &str) -> Result<std::collections::BTreeSet<String>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query("SELECT user_id FROM bridge_work WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|r| Ok(r.try_get("user_id")?)).collect()
        })
    }

    /// When the user's work row is next due, if the user has one.
    pub async fn work_due_at(&self, tenant: &str, user: &str) -> Result<Option<OffsetDateTime>> {
        on_pool!(self, |pool, pg| {
            let row = sqlx::query(
                "SELECT due_at_ms FROM bridge_work WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant)
            .bind(user)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(r) => Some(from_millis(r.try_get("due_at_ms")?)),
                None => None,
            })
        })
    }

    /// Applied leaver plans recorded in `[from, to)` of a tenant (every tenant with `None`),
    /// oldest first, at most `limit`: what leaver evidence is built from. A plan the mass-change
    /// guard holds is recorded in apply mode too, but has made no Graph call: it is left out
    /// until approved (the approved plan is recorded anew).
    pub async fn leaver_plans(
        &self,
        tenant: Option<&str>,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<PlanRecord>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query("SELECT id, tenant_id, user_id, created_at_ms, mode, status, plan_json, report_json FROM bridge_plans
                 WHERE tenant_id = COALESCE($1, tenant_id) AND kind = 'leaver' AND mode = 'apply' AND status <> 'held'
                 AND created_at_ms >= $2 AND created_at_ms < $3 ORDER BY created_at_ms, id LIMIT $4")
            .bind(tenant)
            .bind(to_millis(from))
            .bind(to_millis(to))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(plan_record).collect()
        })
    }

    /// Records a plan and its outcome; returns the record id.
    pub async fn record_plan(
        &self,
        tenant: &str,
        user: &str,
        mode: &str,
        plan: &Plan,
        report: Option<&ApplyReport>,
        now: OffsetDateTime,
    ) -> Result<String> {
        let status = match report {
            _ if plan.is_noop() => "noop",
            None => "planned",
            Some(r) if r.is_complete() => "applied",
            Some(r) if r.steps.iter().any(|s| s.outcome.is_success()) => "partial",
            Some(_) => "failed",
        };
        self.insert_plan(tenant, user, mode, status, plan, report, now)
            .await
    }

    /// Records a plan the mass-change guard held (mode `apply`, status `held`, no steps run).
    pub async fn record_held_plan(
        &self,
        tenant: &str,
        user: &str,
        plan: &Plan,
        now: OffsetDateTime,
    ) -> Result<String> {
        self.insert_plan(tenant, user, "apply", "held", plan, None, now)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_plan(
        &self,
        tenant: &str,
        user: &str,
        mode: &str,
        status: &str,
        plan: &Plan,
        report: Option<&ApplyReport>,
        now: OffsetDateTime,
    ) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let kind = serde_json::to_value(plan.kind)?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let plan_json = serde_json::to_string(plan)?;
        let report_json = report.map(serde_json::to_string).transpose()?;
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query("INSERT INTO bridge_plans (id, tenant_id, user_id, created_at_ms, mode, kind, status, plan_json, report_json)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&id)
            .bind(tenant)
            .bind(user)
            .bind(to_millis(now))
            .bind(mode)
            .bind(&kind)
            .bind(status)
            .bind(&plan_json)
            .bind(report_json.clone())
            .execute(pool)
            .await?;
            Ok::<_, crate::Error>(())
        })?;
        Ok(id)
    }

    /// Recorded plans of a user, newest first.
    pub async fn plans_for_user(
        &self,
        tenant: &str,
        user: &str,
        limit: i64,
    ) -> Result<Vec<PlanRecord>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query("SELECT id, tenant_id, user_id, created_at_ms, mode, status, plan_json, report_json FROM bridge_plans
                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at_ms DESC, id LIMIT $3")
            .bind(tenant)
            .bind(user)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(plan_record).collect()
        })
    }

    /// Dead letters, oldest first, optionally of one tenant.
    pub async fn dead_letters(&self, tenant: Option<&str>) -> Result<Vec<DeadLetter>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query("SELECT id, tenant_id, user_id, attempts, reason, created_at_ms FROM bridge_dead_letters
                 WHERE tenant_id = COALESCE($1, tenant_id) ORDER BY created_at_ms, id")
            .bind(tenant)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(DeadLetter {
                        id: r.try_get("id")?,
                        tenant_id: r.try_get("tenant_id")?,
                        user_id: r.try_get("user_id")?,
                        attempts: r.try_get("attempts")?,
                        reason: r.try_get("reason")?,
                        created_at: from_millis(r.try_get("created_at_ms")?),
                    })
                })
                .collect()
        })
    }

    /// Puts a dead letter back on the queue (due now); `false` if no such id.
    pub async fn retry_dead_letter(&self, id: &str, now: OffsetDateTime) -> Result<bool> {
        on_pool!(self, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(
                "DELETE FROM bridge_dead_letters WHERE id = $1 RETURNING tenant_id, user_id",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(false) };
            let (tenant, user): (String, String) =
                (row.try_get("tenant_id")?, row.try_get("user_id")?);
            queue::upsert_work!(&mut *tx, pg, &tenant, &user, to_millis(now));
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Every tenant's cursor: the last change-log sequence number turned into work.
    pub async fn cursors(&self) -> Result<Vec<ChangeCursor>> {
        on_pool!(self, |pool, _pg| {
            let rows =
                sqlx::query("SELECT tenant_id, last_seq FROM bridge_cursor ORDER BY tenant_id")
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|r| {
                    Ok(ChangeCursor {
                        tenant: r.try_get("tenant_id")?,
                        seq: seq_from_db(r.try_get("last_seq")?)?,
                    })
                })
                .collect()
        })
    }

    /// Counters for `bridge status`; the outbox heads come from `log`.
    pub async fn status(&self, log: &dyn OutboxReader) -> Result<Status> {
        let n = on_pool!(self, |pool, _pg| {
            let mut n = Vec::new();
            for q in [
                "SELECT COUNT(*) FROM bridge_work",
                "SELECT COUNT(*) FROM bridge_work WHERE lease_owner IS NOT NULL",
                "SELECT COUNT(*) FROM bridge_work WHERE last_error IS NOT NULL",
                "SELECT COUNT(*) FROM bridge_dead_letters",
                "SELECT COUNT(*) FROM bridge_plans",
                "SELECT COUNT(*) FROM bridge_holds WHERE status = 'held'",
            ] {
                n.push(sqlx::query(q).fetch_one(pool).await?.try_get::<i64, _>(0)?);
            }
            Ok::<_, crate::Error>(n)
        })?;
        let consumed: BTreeMap<String, u64> = self
            .cursors()
            .await?
            .into_iter()
            .map(|c| (c.tenant, c.seq))
            .collect();
        let mut heads = log.heads().await?;
        heads.sort();
        let cursors = heads
            .into_iter()
            .map(|h| {
                Ok(CursorStatus {
                    last_seq: seq_to_db(consumed.get(&h.tenant).copied().unwrap_or(0))?,
                    head_seq: seq_to_db(h.seq)?,
                    tenant_id: h.tenant,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Status {
            pending: n[0],
            leased: n[1],
            retrying: n[2],
            dead_letters: n[3],
            plans: n[4],
            held: n[5],
            cursors,
        })
    }
}

/// A `bridge_plans` row.
fn plan_record<R: Row>(r: &R) -> Result<PlanRecord>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let report: Option<String> = r.try_get("report_json")?;
    Ok(PlanRecord {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        user_id: r.try_get("user_id")?,
        created_at: from_millis(r.try_get("created_at_ms")?),
        mode: r.try_get("mode")?,
        status: r.try_get("status")?,
        plan: serde_json::from_str(&r.try_get::<String, _>("plan_json")?)?,
        report: report.map(|s| serde_json::from_str(&s)).transpose()?,
    })
}

/// A sequence number as the databases store it (a signed 64-bit integer).
pub(crate) fn seq_to_db(seq: u64) -> Result<i64> {
    i64::try_from(seq)
        .map_err(|_| crate::Error::Internal(format!("sequence number {seq} out of range")))
}

/// A stored sequence number (never negative).
pub(crate) fn seq_from_db(seq: i64) -> Result<u64> {
    u64::try_from(seq)
        .map_err(|_| crate::Error::Internal(format!("negative stored sequence number {seq}")))
}
