//! The mass-change guard's tables (`bridge_guard_tenants`, `bridge_guard_actions`,
//! `bridge_holds`): admission under the tenant's row lock, holds, operators' decisions. The
//! policy is [`crate::guard`]'s.

use crate::write_gate::SideWrites;
use sqlx::Row;
use time::OffsetDateTime;

use super::BridgeStore;
use super::queue::upsert_work;
use crate::Result;
use crate::clock::{from_millis, to_millis};
use crate::config::GuardConfig;
use crate::guard::{Admission, Decision, Hold, HoldStatus, limit};
use crate::on_pool;
use crate::plan::Plan;

const HOLD_COLUMNS: &str = "id, tenant_id, user_id, status, reason, plan_json, created_at_ms, \
     updated_at_ms, decided_at_ms, decided_by";

fn hold_from_row(r: &impl HoldRow) -> Result<Hold> {
    r.hold()
}

/// Reads a hold from either database's row type.
trait HoldRow {
    fn hold(&self) -> Result<Hold>;
}

macro_rules! impl_hold_row {
    ($row:ty) => {
        impl HoldRow for $row {
            fn hold(&self) -> Result<Hold> {
                let status: String = self.try_get("status")?;
                Ok(Hold {
                    id: self.try_get("id")?,
                    tenant_id: self.try_get("tenant_id")?,
                    user_id: self.try_get("user_id")?,
                    status: HoldStatus::parse(&status).ok_or_else(|| {
                        crate::Error::Internal(format!("unknown hold status {status:?}"))
                    })?,
                    reason: self.try_get("reason")?,
                    plan: serde_json::from_str(&self.try_get::<String, _>("plan_json")?)?,
                    created_at: from_millis(self.try_get("created_at_ms")?),
                    updated_at: from_millis(self.try_get("updated_at_ms")?),
                    decided_at: self
                        .try_get::<Option<i64>, _>("decided_at_ms")?
                        .map(from_millis),
                    decided_by: self.try_get("decided_by")?,
                })
            }
        }
    };
}
impl_hold_row!(sqlx::sqlite::SqliteRow);
impl_hold_row!(sqlx::postgres::PgRow);

impl BridgeStore {
    /// Decides whether a leaver action of `user` may be applied now (see [`crate::guard`]), in
    /// one transaction holding the tenant's guard row: an approved hold lets it through; a user
    /// counted in the window already is let through again (a retry); a tripped tenant holds it;
    /// otherwise it is counted if under the limit, else the tenant trips and it is held.
    /// `active_users` feeds the share limit.
    pub async fn guard_admit(
        &self,
        cfg: &GuardConfig,
        tenant: &str,
        user: &str,
        plan: &Plan,
        active_users: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<Admission> {
        let now_ms = to_millis(now);
        let window_start = to_millis(now - cfg.window());
        let plan_json = serde_json::to_string(plan)?;
        on_pool!(self, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            // a write first: SQLite takes its write lock here, PostgreSQL locks the row below
            sqlx::query("INSERT INTO bridge_guard_tenants (tenant_id, counted_from_ms) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING")
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            let lock = if pg { " FOR UPDATE" } else { "" };
            let row = sqlx::query(&format!(
                "SELECT counted_from_ms, tripped_at_ms FROM bridge_guard_tenants WHERE tenant_id = $1{lock}"
            ))
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
            let counted_from: i64 = row.try_get("counted_from_ms")?;
            let tripped: Option<i64> = row.try_get("tripped_at_ms")?;
            let from = counted_from.max(window_start);
            let approved = sqlx::query("SELECT id FROM bridge_holds WHERE tenant_id = $1 AND user_id = $2 AND status = 'approved'")
                .bind(tenant)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
            let counted_before = sqlx::query("SELECT 1 FROM bridge_guard_actions WHERE tenant_id = $1 AND user_id = $2 AND at_ms > $3 LIMIT 1")
                .bind(tenant)
                .bind(user)
                .bind(from)
                .fetch_optional(&mut *tx)
                .await?;
            if approved.is_some() || counted_before.is_some() {
                tx.commit().await?;
                return Ok(Admission::Apply);
            }
            let reason;
            let mut trips = false;
            if tripped.is_some() {
                reason = "the tenant's leaver actions are held until an operator decides \
                          (`scim-server bridge hold list`)"
                    .to_string();
            } else {
                sqlx::query(
                    "DELETE FROM bridge_guard_actions WHERE tenant_id = $1 AND at_ms <= $2",
                )
                .bind(tenant)
                .bind(window_start)
                .execute(&mut *tx)
                .await?;
                let counted: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM bridge_guard_actions WHERE tenant_id = $1 AND at_ms > $2",
                )
                .bind(tenant)
                .bind(from)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                let counted = u64::try_from(counted).unwrap_or(0);
                let allowed = limit(cfg, active_users, counted);
                if counted < allowed {
                    sqlx::query("INSERT INTO bridge_guard_actions (tenant_id, user_id, at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                        .bind(tenant)
                        .bind(user)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(Admission::Apply);
                }
                sqlx::query(
                    "UPDATE bridge_guard_tenants SET tripped_at_ms = $2 WHERE tenant_id = $1",
                )
                .bind(tenant)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                trips = true;
                reason = format!(
                    "{counted} accounts were disabled or deleted in Graph within {} minutes, the \
                     limit is {allowed} ([graph.guard]); further leaver actions wait for an \
                     operator (`scim-server bridge hold approve|reject`)",
                    cfg.window_minutes
                );
            }
            let again = sqlx::query("UPDATE bridge_holds SET plan_json = $3, updated_at_ms = $4 WHERE tenant_id = $1 AND user_id = $2 AND status = 'held' RETURNING id")
                .bind(tenant)
                .bind(user)
                .bind(&plan_json)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let hold_id = match again {
                Some(r) => r.try_get("id")?,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    sqlx::query("INSERT INTO bridge_holds (id, tenant_id, user_id, status, reason, plan_json, created_at_ms, updated_at_ms)
                         VALUES ($1, $2, $3, 'held', $4, $5, $6, $6)")
                        .bind(&id)
                        .bind(tenant)
                        .bind(user)
                        .bind(&reason)
                        .bind(&plan_json)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
            };
            tx.commit().await?;
            Ok(Admission::Hold {
                hold_id,
                tripped: trips,
                reason,
            })
        })
    }

    /// After a user's plan was applied without being held: an approved hold becomes `applied`
    /// when that plan was the leaver action (`leaver_action`), else `superseded`, like a pending
    /// one (the plan no longer disables or deletes). Returns how many holds were closed.
    pub async fn close_holds(
        &self,
        tenant: &str,
        user: &str,
        leaver_action: bool,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let approved_becomes = if leaver_action {
            HoldStatus::Applied
        } else {
            HoldStatus::Superseded
        };
        let closed = on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            let r = sqlx::query("UPDATE bridge_holds SET status = CASE WHEN status = 'approved' THEN $4 ELSE 'superseded' END, updated_at_ms = $3
                 WHERE tenant_id = $1 AND user_id = $2 AND status IN ('held', 'approved')")
                .bind(tenant)
                .bind(user)
                .bind(to_millis(now))
                .bind(approved_becomes.as_str())
                .execute(pool)
                .await?;
            Ok::<_, crate::Error>(r.rows_affected())
        })?;
        if closed > 0 {
            self.untrip_if_decided(tenant, now).await?;
        }
        Ok(closed)
    }

    /// Holds, oldest first: of one tenant or all, pending only (`held`) or every state.
    pub async fn holds(&self, tenant: Option<&str>, pending_only: bool) -> Result<Vec<Hold>> {
        let status = if pending_only { Some("held") } else { None };
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query(&format!(
                "SELECT {HOLD_COLUMNS} FROM bridge_holds WHERE tenant_id = COALESCE($1, tenant_id)
                 AND status = COALESCE($2, status) ORDER BY created_at_ms, id"
            ))
            .bind(tenant)
            .bind(status)
            .fetch_all(pool)
            .await?;
            rows.iter().map(hold_from_row).collect()
        })
    }

    /// Pending holds per tenant (for `/metrics`).
    pub async fn held_per_tenant(&self) -> Result<Vec<(String, i64)>> {
        on_pool!(self, |pool, pg| {
            let rows = sqlx::query("SELECT tenant_id, COUNT(*) AS n FROM bridge_holds WHERE status = 'held' GROUP BY tenant_id ORDER BY tenant_id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("n")?)))
                .collect()
        })
    }

    /// An operator's decision on a pending hold: approving queues the user (due now) in the same
    /// transaction, so the next plan of that user is let through; rejecting only records it.
    /// `None` when `id` is not a pending hold. When the tenant has no pending hold left, its
    /// count starts afresh.
    pub async fn decide_hold(
        &self,
        id: &str,
        decision: Decision,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Hold>> {
        let now_ms = to_millis(now);
        let status = match decision {
            Decision::Approve => HoldStatus::Approved,
            Decision::Reject => HoldStatus::Rejected,
        };
        let hold = on_pool!(self, |pool, pg| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(&format!(
                "UPDATE bridge_holds SET status = $2, decided_at_ms = $3, updated_at_ms = $3, decided_by = $4
                 WHERE id = $1 AND status = 'held' RETURNING {HOLD_COLUMNS}"
            ))
            .bind(id)
            .bind(status.as_str())
            .bind(now_ms)
            .bind(by)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let hold = hold_from_row(&row)?;
            if decision == Decision::Approve {
                upsert_work!(&mut *tx, pg, &hold.tenant_id, &hold.user_id, now_ms);
            }
            tx.commit().await?;
            Ok::<_, crate::Error>(Some(hold))
        })?;
        if let Some(h) = &hold {
            self.untrip_if_decided(&h.tenant_id, now).await?;
        }
        Ok(hold)
    }

    /// Ends a tenant's trip once no hold of it is pending: leaver actions are counted again
    /// from `now`.
    async fn untrip_if_decided(&self, tenant: &str, now: OffsetDateTime) -> Result<()> {
        on_pool!(self, |pool, pg| {
            let _turn = pool.write_turn().await;
            sqlx::query("UPDATE bridge_guard_tenants SET tripped_at_ms = NULL, counted_from_ms = $2
                 WHERE tenant_id = $1 AND tripped_at_ms IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM bridge_holds WHERE tenant_id = $1 AND status = 'held')")
                .bind(tenant)
                .bind(to_millis(now))
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
