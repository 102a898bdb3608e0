//! Access reviews' tables: `gov_reviews`, `gov_review_items`, `gov_exceptions` (rows and the
//! statements over them), on the governance pool with the macros of the parent module.

use super::{Event, GovStore, Task};
use crate::store::write_gate::{CommitWrite, SideWrites};
use crate::store::{Result, StoreError};
use scim_graph_bridge::clock::to_millis;
use scim_graph_bridge::on_pool;
use serde::Serialize;
use time::OffsetDateTime;

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewRow {
    /// Tenant.
    pub tenant_id: String,
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The campaign's settings (JSON).
    pub spec: String,
    /// `scheduled`, `active`, `completed`, `applied`.
    pub status: String,
    /// Start.
    pub starts_at_ms: i64,
    /// Due date.
    pub due_at_ms: i64,
    /// Created.
    pub created_at_ms: i64,
    /// By whom.
    pub created_by: String,
    /// Started.
    pub started_at_ms: Option<i64>,
    /// Closed (decisions final).
    pub completed_at_ms: Option<i64>,
    /// Results applied.
    pub applied_at_ms: Option<i64>,
}

/// A review item as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemRow {
    /// Tenant.
    pub tenant_id: String,
    /// Review.
    pub review_id: String,
    /// Id.
    pub id: String,
    /// The reviewed grant (`scim_graph_bridge::holders::GrantTarget`, JSON).
    pub target: String,
    /// The grant as shown, e.g. `group "eng"`.
    pub target_label: String,
    /// The holder's Graph id.
    pub graph_user_id: String,
    /// Its UPN.
    pub user_principal_name: Option<String>,
    /// Its display name.
    pub display_name: Option<String>,
    /// The SCIM user it matches, if any.
    pub scim_user_id: Option<String>,
    /// The role assignment (roles).
    pub assignment_id: Option<String>,
    /// Who decides.
    pub reviewer: String,
    /// Where the reviewer is e-mailed.
    pub reviewer_email: Option<String>,
    /// Last sign-in Graph reported.
    pub last_sign_in_ms: Option<i64>,
    /// 1 when the rules derive the grant for the user.
    pub rule_derived: i64,
    /// `keep` or `revoke`.
    pub recommendation: String,
    /// Why.
    pub recommendation_reason: String,
    /// `keep`, `revoke`, or none yet.
    pub decision: Option<String>,
    /// The reviewer's justification.
    pub justification: Option<String>,
    /// Who decided (`default` for the campaign's default).
    pub decided_by: Option<String>,
    /// When.
    pub decided_at_ms: Option<i64>,
    /// `kept`, `revoked`, `failed`, `skipped` once applied.
    pub outcome: Option<String>,
    /// Details of the outcome (Graph's answer).
    pub outcome_detail: Option<String>,
    /// When applied.
    pub applied_at_ms: Option<i64>,
}

/// An exception (a revoked rule-derived grant the planner withholds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionRow {
    /// Tenant.
    #[serde(skip)]
    pub tenant_id: String,
    /// Id.
    pub id: String,
    /// The SCIM user.
    pub scim_user_id: String,
    /// `group`, `role` or `license`.
    pub grant_kind: String,
    /// Catalog name.
    pub grant_name: String,
    /// Why (shown in plans).
    pub reason: String,
    /// The review that made it.
    pub review_id: Option<String>,
    /// Its item.
    pub item_id: Option<String>,
    /// Created (ms).
    pub created_at_ms: i64,
    /// By whom.
    pub created_by: String,
    /// Removed (ms), if it was.
    pub removed_at_ms: Option<i64>,
    /// By whom.
    pub removed_by: Option<String>,
}

/// One decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The item.
    pub item_id: String,
    /// `keep` or `revoke`.
    pub decision: String,
    /// Why.
    pub justification: String,
    /// Who.
    pub decided_by: String,
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound {
        resource_type: "governance".into(),
        id: what,
    }
}

impl GovStore {
    // ----- reviews --------------------------------------------------------------------------

    /// Stores a new review with its schedule entries and events.
    pub async fn insert_review(
        &self,
        r: &ReviewRow,
        tasks: &[Task],
        events: &[Event],
    ) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO gov_reviews (tenant_id, id, name, spec, status, starts_at_ms, \
                 due_at_ms, created_at_ms, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&r.tenant_id)
            .bind(&r.id)
            .bind(&r.name)
            .bind(&r.spec)
            .bind(&r.status)
            .bind(r.starts_at_ms)
            .bind(r.due_at_ms)
            .bind(r.created_at_ms)
            .bind(&r.created_by)
            .execute(&mut *tx)
            .await?;
            insert_tasks!(tx, tasks);
            insert_events!(tx, events);
            tx.commit_write().await
        })
    }

    /// A review of the tenant.
    pub async fn review(&self, tenant: &str, id: &str) -> Result<Option<ReviewRow>> {
        on_pool!(self, |pool| {
            Ok(
                sqlx::query_as("SELECT * FROM gov_reviews WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// The tenant's reviews, newest first (at most `limit`).
    pub async fn reviews(&self, tenant: &str, limit: i64) -> Result<Vec<ReviewRow>> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM gov_reviews WHERE tenant_id = $1 \
                 ORDER BY created_at_ms DESC, id LIMIT $2",
            )
            .bind(tenant)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Starts a scheduled review: its items, its reminder and due entries, its events; `false`
    /// (nothing written) when it was not `scheduled` any more.
    pub async fn start_review(
        &self,
        tenant: &str,
        id: &str,
        items: &[ItemRow],
        tasks: &[Task],
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE gov_reviews SET status = 'active', started_at_ms = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status = 'scheduled'",
            )
            .bind(to_millis(now))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            for i in items {
                sqlx::query(
                    "INSERT INTO gov_review_items (tenant_id, review_id, id, target, target_label, \
                     graph_user_id, user_principal_name, display_name, scim_user_id, assignment_id, \
                     reviewer, reviewer_email, last_sign_in_ms, rule_derived, recommendation, \
                     recommendation_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                     $12, $13, $14, $15, $16)",
                )
                .bind(&i.tenant_id)
                .bind(&i.review_id)
                .bind(&i.id)
                .bind(&i.target)
                .bind(&i.target_label)
                .bind(&i.graph_user_id)
                .bind(&i.user_principal_name)
                .bind(&i.display_name)
                .bind(&i.scim_user_id)
                .bind(&i.assignment_id)
                .bind(&i.reviewer)
                .bind(&i.reviewer_email)
                .bind(i.last_sign_in_ms)
                .bind(i.rule_derived)
                .bind(&i.recommendation)
                .bind(&i.recommendation_reason)
                .execute(&mut *tx)
                .await?;
            }
            insert_tasks!(tx, tasks);
            insert_events!(tx, events);
            tx.commit_write().await?;
            Ok(true)
        })
    }

    /// The items of a review, in id order; optionally one reviewer's, or only undecided ones.
    pub async fn items(
        &self,
        tenant: &str,
        review: &str,
        reviewer: Option<&str>,
        undecided_only: bool,
    ) -> Result<Vec<ItemRow>> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM gov_review_items WHERE tenant_id = $1 AND review_id = $2 \
                 AND ($3 IS NULL OR reviewer = $3) AND ($4 = 0 OR decision IS NULL) \
                 ORDER BY id",
            )
            .bind(tenant)
            .bind(review)
            .bind(reviewer)
            .bind(i64::from(undecided_only))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Records decisions on items of an active review, all or none: an unknown item, or a
    /// review that is not active, writes nothing and is [`StoreError::NotFound`] /
    /// `Ok(false)` respectively.
    pub async fn decide(
        &self,
        tenant: &str,
        review: &str,
        decisions: &[Decision],
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // The first statement writes (SQLite takes its write lock now, before the chain
            // append needs it), and answers whether the review is active.
            let active = sqlx::query(
                "UPDATE gov_reviews SET status = status \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
            )
            .bind(tenant)
            .bind(review)
            .execute(&mut *tx)
            .await?;
            if active.rows_affected() != 1 {
                return Ok(false);
            }
            for d in decisions {
                let r = sqlx::query(
                    "UPDATE gov_review_items SET decision = $1, justification = $2, \
                     decided_by = $3, decided_at_ms = $4 \
                     WHERE tenant_id = $5 AND review_id = $6 AND id = $7",
                )
                .bind(&d.decision)
                .bind(&d.justification)
                .bind(&d.decided_by)
                .bind(to_millis(now))
                .bind(tenant)
                .bind(review)
                .bind(&d.item_id)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    return Err(not_found(format!("review item {}", d.item_id)));
                }
            }
            insert_events!(tx, events);
            tx.commit_write().await?;
            Ok(true)
        })
    }

    /// Closes an active review: undecided items take `default` (`keep`, `revoke`, or
    /// `recommendation`: each item's own recommendation), decided by `default`; `false` when it
    /// was not active.
    pub async fn complete_review(
        &self,
        tenant: &str,
        id: &str,
        default: &str,
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE gov_reviews SET status = 'completed', completed_at_ms = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status = 'active'",
            )
            .bind(to_millis(now))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE gov_review_items SET \
                 decision = CASE WHEN $1 = 'recommendation' THEN recommendation ELSE $1 END, \
                 justification = CASE WHEN $1 = 'recommendation' \
                   THEN 'default decision: the recommendation (' || recommendation_reason || ')' \
                   ELSE 'default decision of the campaign' END, \
                 decided_by = 'default', decided_at_ms = $2 \
                 WHERE tenant_id = $3 AND review_id = $4 AND decision IS NULL",
            )
            .bind(default)
            .bind(to_millis(now))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            insert_events!(tx, events);
            tx.commit_write().await?;
            Ok(true)
        })
    }

    /// Records what applying an item did, with the exception it leaves (if any) and events.
    pub async fn record_outcome(
        &self,
        item: &ItemRow,
        outcome: &str,
        detail: &str,
        exception: Option<&ExceptionRow>,
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE gov_review_items SET outcome = $1, outcome_detail = $2, applied_at_ms = $3 \
                 WHERE tenant_id = $4 AND review_id = $5 AND id = $6",
            )
            .bind(outcome)
            .bind(detail)
            .bind(to_millis(now))
            .bind(&item.tenant_id)
            .bind(&item.review_id)
            .bind(&item.id)
            .execute(&mut *tx)
            .await?;
            if let Some(x) = exception {
                sqlx::query(
                    "INSERT INTO gov_exceptions (tenant_id, id, scim_user_id, grant_kind, \
                     grant_name, reason, review_id, item_id, created_at_ms, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&x.tenant_id)
                .bind(&x.id)
                .bind(&x.scim_user_id)
                .bind(&x.grant_kind)
                .bind(&x.grant_name)
                .bind(&x.reason)
                .bind(&x.review_id)
                .bind(&x.item_id)
                .bind(x.created_at_ms)
                .bind(&x.created_by)
                .execute(&mut *tx)
                .await?;
            }
            insert_events!(tx, events);
            tx.commit_write().await
        })
    }

    /// Marks a completed review applied.
    pub async fn mark_applied(
        &self,
        tenant: &str,
        id: &str,
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE gov_reviews SET status = 'applied', applied_at_ms = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status = 'completed'",
            )
            .bind(to_millis(now))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            insert_events!(tx, events);
            tx.commit_write().await
        })
    }

    // ----- exceptions -----------------------------------------------------------------------

    /// Exceptions of the tenant, newest first: only active ones unless `all`; optionally one
    /// user's.
    pub async fn exceptions(
        &self,
        tenant: &str,
        user: Option<&str>,
        all: bool,
    ) -> Result<Vec<ExceptionRow>> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM gov_exceptions WHERE tenant_id = $1 \
                 AND ($2 IS NULL OR scim_user_id = $2) AND ($3 = 1 OR removed_at_ms IS NULL) \
                 ORDER BY created_at_ms DESC, id",
            )
            .bind(tenant)
            .bind(user)
            .bind(i64::from(all))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Removes an active exception (recorded, the row kept); `None` when there is no active
    /// exception with that id.
    pub async fn remove_exception(
        &self,
        tenant: &str,
        id: &str,
        by: &str,
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<Option<ExceptionRow>> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE gov_exceptions SET removed_at_ms = $1, removed_by = $2 \
                 WHERE tenant_id = $3 AND id = $4 AND removed_at_ms IS NULL",
            )
            .bind(to_millis(now))
            .bind(by)
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(None);
            }
            let row: ExceptionRow =
                sqlx::query_as("SELECT * FROM gov_exceptions WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            insert_events!(tx, events);
            tx.commit_write().await?;
            Ok(Some(row))
        })
    }
}
