//! The `gov_jit_grants` and `gov_jit_only` tables (migration 0065) on the governance pool.
//! Every change of a grant commits, in one transaction, with its schedule entries, its
//! `gov_events` record and its change-log event.

use super::{GrantStatus, JitGrant, format_duration};
use crate::governance::store::{Event, GovStore, Task};
use crate::store::write_gate::{CommitWrite, SideWrites};
use crate::store::{StoreError, WriteContext};
use scim_core::Error;
use scim_core::change_log::AuditEvent;
use scim_graph_bridge::on_pool;
use serde::Deserialize;
use sqlx::Row;
use time::OffsetDateTime;

type Result<T, E = Error> = std::result::Result<T, E>;

fn ms(t: OffsetDateTime) -> i64 {
    scim_graph_bridge::clock::to_millis(t)
}

fn from_ms(v: i64) -> OffsetDateTime {
    scim_graph_bridge::clock::from_millis(v)
}

fn db_error(e: sqlx::Error) -> Error {
    StoreError::Database(e).into()
}

/// Inserts schedule entries and governance events on the transaction `$tx`, then appends the
/// change-log event (the chain's head is taken last, as every writer of the tenant does).
macro_rules! insert_tasks_and_events {
    ($tx:expr, $tasks:expr, $events:expr, $chain:expr) => {
        for t in $tasks {
            sqlx::query(
                "INSERT INTO gov_schedule (id, tenant_id, kind, subject_id, run_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&t.id)
            .bind(&t.tenant_id)
            .bind(&t.kind)
            .bind(&t.subject_id)
            .bind(t.run_at_ms)
            .execute(&mut *$tx)
            .await
            .map_err(db_error)?;
        }
        for e in $events {
            sqlx::query(
                "INSERT INTO gov_events (tenant_id, id, at_ms, kind, subject_id, actor, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.tenant)
            .bind(&e.id)
            .bind(ms(e.at))
            .bind(&e.kind)
            .bind(&e.subject)
            .bind(&e.actor)
            .bind(e.detail.to_string())
            .execute(&mut *$tx)
            .await
            .map_err(db_error)?;
        }
        if let Some((ctx, event)) = $chain {
            crate::store::change_log::append_event_in(&mut *$tx, ctx, event).await?;
        }
    };
}

/// A change-log event and the context it is written with.
pub type ChainEvent<'a> = Option<(&'a WriteContext, &'a AuditEvent)>;

const COLUMNS: &str = "id, user_id, grant_ref, duration_seconds, justification, requested_by, \
    requested_at_ms, status, decided_by, decided_at_ms, note, starts_at_ms, expires_at_ms, extends";

fn grant_from_row<R: Row>(r: &R) -> Result<JitGrant>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let get_s = |c: &str| r.try_get::<String, _>(c).map_err(db_error);
    let get_os = |c: &str| r.try_get::<Option<String>, _>(c).map_err(db_error);
    let get_ot = |c: &str| {
        r.try_get::<Option<i64>, _>(c)
            .map(|v| v.map(from_ms))
            .map_err(db_error)
    };
    Ok(JitGrant {
        id: get_s("id")?,
        user: get_s("user_id")?,
        grant: get_s("grant_ref")?,
        duration: format_duration(r.try_get::<i64, _>("duration_seconds").map_err(db_error)?),
        justification: get_s("justification")?,
        requested_by: get_s("requested_by")?,
        requested_at: from_ms(r.try_get::<i64, _>("requested_at_ms").map_err(db_error)?),
        status: GrantStatus::parse(&get_s("status")?)?,
        decided_by: get_os("decided_by")?,
        decided_at: get_ot("decided_at_ms")?,
        note: get_os("note")?,
        starts_at: get_ot("starts_at_ms")?,
        expires_at: get_ot("expires_at_ms")?,
        extends: get_os("extends")?,
    })
}

/// The `gov_jit_grants` and `gov_jit_policies` tables (migration 0065), on the governance
/// pool; every change commits with its schedule entries and governance events.
#[derive(Debug, Clone)]
pub struct JitStore {
    pool: GovStore,
}

/// What a list is restricted to.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct GrantFilter {
    /// Only this user's grants.
    pub user: Option<String>,
    /// Only grants in this status (`pending`, `active`, `denied`, `expired`, `revoked`).
    pub status: Option<String>,
}

impl JitStore {
    /// The grants table on `pool`.
    pub fn new(pool: GovStore) -> Self {
        Self { pool }
    }

    /// Stores a new grant (pending or, auto-approved, active) with its schedule entries and
    /// events, in one transaction.
    pub async fn insert(
        &self,
        tenant: &str,
        g: &JitGrant,
        duration_seconds: i64,
        tasks: &[Task],
        events: &[Event],
        chain: ChainEvent<'_>,
    ) -> Result<()> {
        let q = format!(
            "INSERT INTO gov_jit_grants (tenant_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        on_pool!(&self.pool, |p| {
            let mut tx = p.begin_write().await.map_err(db_error)?;
            sqlx::query(&q)
                .bind(tenant)
                .bind(&g.id)
                .bind(&g.user)
                .bind(&g.grant)
                .bind(duration_seconds)
                .bind(&g.justification)
                .bind(&g.requested_by)
                .bind(ms(g.requested_at))
                .bind(g.status.as_str())
                .bind(g.decided_by.clone())
                .bind(g.decided_at.map(ms))
                .bind(g.note.clone())
                .bind(g.starts_at.map(ms))
                .bind(g.expires_at.map(ms))
                .bind(g.extends.clone())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            insert_tasks_and_events!(tx, tasks, events, chain);
            tx.commit_write().await?;
        });
        Ok(())
    }

    /// A grant of the tenant.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<JitGrant>> {
        let q = format!("SELECT {COLUMNS} FROM gov_jit_grants WHERE tenant_id = $1 AND id = $2");
        on_pool!(&self.pool, |p| {
            sqlx::query(&q)
                .bind(tenant)
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(db_error)?
                .map(|r| grant_from_row(&r))
                .transpose()
        })
    }

    /// Grants of the tenant, newest first (at most 500).
    pub async fn list(&self, tenant: &str, filter: &GrantFilter) -> Result<Vec<JitGrant>> {
        let q = format!(
            "SELECT {COLUMNS} FROM gov_jit_grants WHERE tenant_id = $1 \
             AND user_id = COALESCE($2, user_id) AND status = COALESCE($3, status) \
             ORDER BY requested_at_ms DESC, id LIMIT 500"
        );
        on_pool!(&self.pool, |p| {
            sqlx::query(&q)
                .bind(tenant)
                .bind(filter.user.clone())
                .bind(filter.status.clone())
                .fetch_all(p)
                .await
                .map_err(db_error)?
                .iter()
                .map(grant_from_row)
                .collect()
        })
    }

    /// The active grants of a user (whether or not started or ended yet).
    pub async fn active_of(&self, tenant: &str, user: &str) -> Result<Vec<JitGrant>> {
        let q = format!(
            "SELECT {COLUMNS} FROM gov_jit_grants WHERE tenant_id = $1 AND user_id = $2 \
             AND status = 'active' ORDER BY starts_at_ms, id"
        );
        on_pool!(&self.pool, |p| {
            sqlx::query(&q)
                .bind(tenant)
                .bind(user)
                .fetch_all(p)
                .await
                .map_err(db_error)?
                .iter()
                .map(grant_from_row)
                .collect()
        })
    }

    /// Moves a grant from `from` to the state in `g` (compare-and-swap on the status), with
    /// its schedule entries and events, in one transaction; `false` (and nothing written) when
    /// it was not in `from` any more.
    pub async fn transition(
        &self,
        tenant: &str,
        from: GrantStatus,
        g: &JitGrant,
        tasks: &[Task],
        events: &[Event],
        chain: ChainEvent<'_>,
    ) -> Result<bool> {
        on_pool!(&self.pool, |p| {
            let mut tx = p.begin_write().await.map_err(db_error)?;
            let done = sqlx::query(
                "UPDATE gov_jit_grants SET status = $3, decided_by = $4, decided_at_ms = $5, \
                 note = $6, starts_at_ms = $7, expires_at_ms = $8 \
                 WHERE tenant_id = $1 AND id = $2 AND status = $9",
            )
            .bind(tenant)
            .bind(&g.id)
            .bind(g.status.as_str())
            .bind(g.decided_by.clone())
            .bind(g.decided_at.map(ms))
            .bind(g.note.clone())
            .bind(g.starts_at.map(ms))
            .bind(g.expires_at.map(ms))
            .bind(from.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            insert_tasks_and_events!(tx, tasks, events, chain);
            tx.commit_write().await?;
            Ok(true)
        })
    }

    /// Replaces the stored policies' `only_jit` list with `grants` (at start-up, from
    /// `[governance.jit]`): the bridge's planner reads it, whichever process it runs in.
    pub async fn sync_only_jit(&self, grants: &[String]) -> Result<()> {
        on_pool!(&self.pool, |p| {
            let mut tx = p.begin_write().await.map_err(db_error)?;
            sqlx::query("DELETE FROM gov_jit_only")
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            for g in grants {
                sqlx::query("INSERT INTO gov_jit_only (grant_ref) VALUES ($1)")
                    .bind(g)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            tx.commit_write().await?;
            Ok(())
        })
    }

    /// The grants held only through time-bound grants (`only_jit` policies), `kind:name`.
    pub async fn only_jit(&self) -> Result<Vec<String>> {
        on_pool!(&self.pool, |p| {
            sqlx::query("SELECT grant_ref FROM gov_jit_only ORDER BY grant_ref")
                .fetch_all(p)
                .await
                .map_err(db_error)?
                .iter()
                .map(|r| r.try_get::<String, _>("grant_ref").map_err(db_error))
                .collect()
        })
    }

    /// Counts of grants by status over every tenant (for `/metrics`).
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        on_pool!(&self.pool, |p| {
            sqlx::query("SELECT status, COUNT(*) AS n FROM gov_jit_grants GROUP BY status")
                .fetch_all(p)
                .await
                .map_err(db_error)?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String, _>("status").map_err(db_error)?,
                        r.try_get::<i64, _>("n").map_err(db_error)?,
                    ))
                })
                .collect()
        })
    }
}
