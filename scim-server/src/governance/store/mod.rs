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
use crate::store::write_gate::{CommitWrite, SideWrites};
use crate::store::{Result, StoreError};
use scim_core::change_log::AuditEvent;
use scim_graph_bridge::clock::{from_millis, to_millis};
use scim_graph_bridge::on_pool;
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
scim_graph_bridge::impl_on_pool!(GovStore);

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
            // Time-ordered (UUIDv7, monotonic within the process): events are listed by
            // `(at_ms, id)`, so two recorded at the same instant (a request and its automatic
            // approval, a request and its notification) keep the order they happened in.
            id: uuid::Uuid::now_v7().to_string(),
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

// After the macros, which the submodule uses.
mod inbox;
mod reviews;

pub use inbox::{InboxFilter, MAX_REVIEWER_NAMES};
pub use reviews::{Decision, ExceptionRow, ItemRow, ReviewRow};

impl GovStore {
    // ----- schedule -------------------------------------------------------------------------

    /// Adds schedule entries (outside any other change).
    pub async fn schedule(&self, tasks: &[Task]) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            insert_tasks!(tx, tasks);
            tx.commit_write().await
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
                let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
            let mut tx = pool.begin_write().await?;
            insert_events!(tx, events);
            tx.commit_write().await
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
}
