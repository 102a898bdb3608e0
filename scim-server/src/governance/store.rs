//! The governance tables (`migrations/*/0060_governance.sql`) on a pool of their own on the
//! server's database: `gov_schedule`, `gov_events`, `gov_reviews`, `gov_review_items`,
//! `gov_exceptions`.
//!
//! Both databases run the same statements (`$N` placeholders, integers for times and flags,
//! JSON as text). Every writing transaction starts with a write, so on SQLite it holds the write
//! lock before the change-log append needs it (a transaction that read first could not take it
//! once another writer committed). Every change of state and the event that records it commit together: each
//! writing method takes the [`Event`]s to insert in its transaction.

use crate::store::side_pool::{SidePool, open_side_pool};
use crate::store::{Result, StoreError};
use scim_core::change_log::AuditEvent;
use scim_graph_bridge::clock::{from_millis, to_millis};
use serde::Serialize;
use time::OffsetDateTime;

/// The governance tables' database.
#[derive(Clone, Debug)]
pub enum GovStore {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

/// Runs the same body against either pool kind.
macro_rules! on_pool {
    ($self:expr, |$pool:ident| $body:expr) => {
        match $self {
            GovStore::Sqlite($pool) => $body,
            GovStore::Postgres($pool) => $body,
        }
    };
}

/// Inserts `$events` on the transaction `$tx`, each also appended to the tenant's change-log
/// hash chain as an audit event (last, as the chain asks: writers serialise on its head), so
/// `audit verify` covers every governance decision.
macro_rules! insert_events {
    ($tx:expr, $events:expr) => {
        for e in $events {
            let ctx = crate::service::write::Writer::acting_for(
                e.tenant.clone(),
                format!("governance:{}", e.actor),
                None,
            )
            .context(e.at);
            crate::store::change_log::append_event_in(&mut *$tx, &ctx, &e.audit()?).await?;
            sqlx::query(
                "INSERT INTO gov_events (tenant_id, id, at_ms, kind, subject_id, actor, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.tenant)
            .bind(&e.id)
            .bind(to_millis(e.at))
            .bind(&e.kind)
            .bind(&e.subject)
            .bind(&e.actor)
            .bind(e.detail.to_string())
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// Opens the governance pool on `database_url` (whose migrations created the tables).
pub async fn open(database_url: &str) -> anyhow::Result<GovStore> {
    Ok(match open_side_pool(database_url, "governance").await? {
        SidePool::Postgres(pool) => GovStore::Postgres(pool),
        SidePool::Sqlite(pool) => GovStore::Sqlite(pool),
    })
}

/// A governance event: what happened to what, by whom, with details (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Tenant.
    #[serde(skip)]
    pub tenant: String,
    /// Event id.
    pub id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// e.g. `review.created`, `review.item.decided`, `exception.removed`.
    pub kind: String,
    /// The review, item or exception id it concerns.
    pub subject: String,
    /// Who: a credential id, `cli`, `schedule`, or `default` (a campaign's default decision).
    pub actor: String,
    /// Details.
    pub detail: serde_json::Value,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(
        tenant: &str,
        at: OffsetDateTime,
        kind: &str,
        subject: &str,
        actor: &str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            id: uuid::Uuid::new_v4().to_string(),
            at,
            kind: kind.into(),
            subject: subject.into(),
            actor: actor.into(),
            detail,
        }
    }
}

impl Event {
    /// The change-log record of this event: kind `governance.<kind>`, subject `AccessReview` or
    /// `ReviewException` by id, the actor and details. A detail too large for the chain is
    /// recorded as its size (the governance table keeps it whole).
    pub fn audit(&self) -> Result<AuditEvent> {
        let subject_type = match self.kind.split('.').next() {
            Some("review") => "AccessReview",
            Some("exception") => "ReviewException",
            _ => "Governance",
        };
        let kind = format!("governance.{}", self.kind);
        let mut detail = self.detail.clone();
        if let Some(o) = detail.as_object_mut() {
            o.insert("actor".into(), self.actor.clone().into());
            o.insert("eventId".into(), self.id.clone().into());
        }
        AuditEvent::new(&kind, subject_type, &self.subject, detail)
            .or_else(|_| {
                AuditEvent::new(
                    &kind,
                    subject_type,
                    &self.subject,
                    serde_json::json!({"actor": self.actor, "eventId": self.id,
                        "detailBytes": self.detail.to_string().len()}),
                )
            })
            .map_err(|e| StoreError::Corrupt(format!("governance event {}: {e}", self.id)))
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    tenant_id: String,
    id: String,
    at_ms: i64,
    kind: String,
    subject_id: String,
    actor: String,
    detail: String,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Self {
            tenant: r.tenant_id,
            id: r.id,
            at: from_millis(r.at_ms),
            kind: r.kind,
            subject: r.subject_id,
            actor: r.actor,
            detail: serde_json::from_str(&r.detail).unwrap_or_default(),
        }
    }
}

/// An entry of the durable schedule.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Task {
    /// Entry id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// What to do, e.g. `review.start`, `review.remind`, `review.due`.
    pub kind: String,
    /// What it concerns (a review id).
    pub subject_id: String,
    /// When it is due (ms since the epoch).
    pub run_at_ms: i64,
    /// Attempts so far.
    pub attempts: i64,
}

impl Task {
    /// A new entry due at `run_at`.
    pub fn new(tenant: &str, kind: &str, subject: &str, run_at: OffsetDateTime) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.into(),
            kind: kind.into(),
            subject_id: subject.into(),
            run_at_ms: to_millis(run_at),
            attempts: 0,
        }
    }
}

/// Inserts `$tasks` on the transaction `$tx`.
macro_rules! insert_tasks {
    ($tx:expr, $tasks:expr) => {
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
            .await?;
        }
    };
}

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
    // ----- schedule -------------------------------------------------------------------------

    /// Adds schedule entries (outside any other change).
    pub async fn schedule(&self, tasks: &[Task]) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_tasks!(tx, tasks);
            crate::store::commit(tx).await
        })
    }

    /// Claims up to `limit` due entries for `owner` until `lease_until`: each is taken by a
    /// compare-and-swap on its lease, so two workers never run the same entry at once, and one
    /// whose worker died is taken again once its lease has passed.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Task>> {
        let now_ms = to_millis(now);
        on_pool!(self, |pool| {
            let due: Vec<Task> = sqlx::query_as(
                "SELECT id, tenant_id, kind, subject_id, run_at_ms, attempts FROM gov_schedule \
                 WHERE done_at_ms IS NULL AND run_at_ms <= $1 \
                 AND (lease_until_ms IS NULL OR lease_until_ms <= $1) \
                 ORDER BY run_at_ms, id LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut claimed = Vec::new();
            for t in due {
                let r = sqlx::query(
                    "UPDATE gov_schedule SET lease_owner = $1, lease_until_ms = $2, \
                     attempts = attempts + 1 WHERE id = $3 AND done_at_ms IS NULL \
                     AND (lease_until_ms IS NULL OR lease_until_ms <= $4)",
                )
                .bind(owner)
                .bind(to_millis(lease_until))
                .bind(&t.id)
                .bind(now_ms)
                .execute(pool)
                .await?;
                if r.rows_affected() == 1 {
                    claimed.push(Task {
                        attempts: t.attempts + 1,
                        ..t
                    });
                }
            }
            Ok(claimed)
        })
    }

    /// Marks an entry done.
    pub async fn finish_task(&self, id: &str, now: OffsetDateTime) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE gov_schedule SET done_at_ms = $1, lease_owner = NULL, lease_until_ms = NULL WHERE id = $2")
                .bind(to_millis(now))
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Releases an entry after a failure, due again at `retry_at`.
    pub async fn retry_task(&self, id: &str, error: &str, retry_at: OffsetDateTime) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE gov_schedule SET run_at_ms = $1, last_error = $2, lease_owner = NULL, \
                 lease_until_ms = NULL WHERE id = $3",
            )
            .bind(to_millis(retry_at))
            .bind(error)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Pending (not done) entries of a subject, soonest first.
    pub async fn pending_tasks(&self, tenant: &str, subject: &str) -> Result<Vec<Task>> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, tenant_id, kind, subject_id, run_at_ms, attempts FROM gov_schedule \
                 WHERE tenant_id = $1 AND subject_id = $2 AND done_at_ms IS NULL \
                 ORDER BY run_at_ms, id",
            )
            .bind(tenant)
            .bind(subject)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Entries not done yet, all tenants (for `governance status`).
    pub async fn pending_count(&self) -> Result<i64> {
        on_pool!(self, |pool| {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM gov_schedule WHERE done_at_ms IS NULL")
                    .fetch_one(pool)
                    .await?;
            Ok(n)
        })
    }

    // ----- events ---------------------------------------------------------------------------

    /// Records events on their own.
    pub async fn record(&self, events: &[Event]) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_events!(tx, events);
            crate::store::commit(tx).await
        })
    }

    /// The events of a subject (or of the tenant), oldest first, at most `limit`.
    pub async fn events(
        &self,
        tenant: &str,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>> {
        on_pool!(self, |pool| {
            let rows: Vec<EventRow> = sqlx::query_as(
                "SELECT tenant_id, id, at_ms, kind, subject_id, actor, detail FROM gov_events \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR subject_id = $2) \
                 ORDER BY at_ms, id LIMIT $3",
            )
            .bind(tenant)
            .bind(subject)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(Event::from).collect())
        })
    }

    // ----- reviews --------------------------------------------------------------------------

    /// Stores a new review with its schedule entries and events.
    pub async fn insert_review(
        &self,
        r: &ReviewRow,
        tasks: &[Task],
        events: &[Event],
    ) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await
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
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await?;
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
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await?;
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
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await?;
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
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await
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
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await
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
            let mut tx = pool.begin().await?;
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
            crate::store::commit(tx).await?;
            Ok(Some(row))
        })
    }
}
