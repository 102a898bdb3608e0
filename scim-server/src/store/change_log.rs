//! The change log's SQL: appending a record to a tenant's chain ([`append_in`],
//! [`append_event_in`]), and the Graph bridge's [`OutboxReader`] over `scim_changes`.
//!
//! This file and the store's own statements are the only SQL that names `scim_changes` or
//! `tenant_chain`: consumers get typed [`ChangeLogEntry`] values (`scim_core::change_log`), so
//! the table's shape stays the store's business. Entries carry no deltas and no hashes (see
//! [`scim_core::change_log`]); an audit event comes back as [`Record::Event`], never as a
//! resource write; `audit verify` reads full records through
//! [`ChangeLogStore::changes_after`](super::ChangeLogStore::changes_after).
//!
//! Appending: a resource write appends inside the store's own write transaction; anything else
//! that must be in the tamper-evident log (a console action, a governance decision, a JIT
//! approval) appends an [`AuditEvent`] either in a transaction of its own
//! ([`super::ChangeLogStore::append_event`]) or inside the caller's transaction on the server's
//! database ([`append_event_in`]), so that, say, a decision row and its audit record commit
//! together. Either way a [`WriteContext`] is needed, which only a `service::write::Writer`
//! makes.

use super::chain::{self, RecordBody};
use super::row::{version_from_db, version_to_db};
use super::{StoreError, WriteContext};
use scim_core::change::Operation;
use scim_core::change_log::{
    AuditEvent, ChangeCursor, ChangeLogEntry, EVENT_OPERATION, Record, ResourceWrite,
};
use scim_graph_bridge::outbox::OutboxReader;
use sqlx::{PgConnection, PgPool, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A connection of the server's database with a write transaction open on it: what
/// [`append_in`] appends through. Pass `&mut *tx` for an `sqlx::Transaction` on SQLite or
/// PostgreSQL.
pub trait WriteConn: Send {
    /// The connection, by database.
    #[doc(hidden)]
    fn conn(&mut self) -> Conn<'_>;
}

/// A connection by database (see [`WriteConn`]).
#[doc(hidden)]
pub enum Conn<'c> {
    /// SQLite.
    Sqlite(&'c mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'c mut PgConnection),
}

impl WriteConn for SqliteConnection {
    fn conn(&mut self) -> Conn<'_> {
        Conn::Sqlite(self)
    }
}

impl WriteConn for PgConnection {
    fn conn(&mut self) -> Conn<'_> {
        Conn::Postgres(self)
    }
}

/// Appends `body` as the next record of `ctx`'s tenant chain, inside the transaction open on
/// `conn`, and returns its sequence number. Writers of a tenant serialise on its
/// `tenant_chain` row (PostgreSQL: `FOR UPDATE`; SQLite: the first statement is a write, which
/// takes the database's write lock), so sequence numbers are gap-free in commit order.
pub async fn append_in(
    conn: &mut (impl WriteConn + ?Sized),
    ctx: &WriteContext,
    body: RecordBody,
) -> super::Result<u64> {
    macro_rules! append {
        ($c:expr, $for_update:literal) => {{
            let c = $c;
            sqlx::query(
                "INSERT INTO tenant_chain (tenant_id, last_seq, last_hash) VALUES ($1, 0, $2) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(&ctx.tenant)
            .bind(chain::GENESIS_HASH)
            .execute(&mut *c)
            .await?;
            let (last_seq, last_hash): (i64, String) = sqlx::query_as(concat!(
                "SELECT last_seq, last_hash FROM tenant_chain WHERE tenant_id = $1",
                $for_update
            ))
            .bind(&ctx.tenant)
            .fetch_one(&mut *c)
            .await?;
            let rec = chain::next_record(ctx, body, version_from_db(last_seq)?, &last_hash);
            let seq = version_to_db(rec.seq)?;
            sqlx::query(
                "INSERT INTO scim_changes (tenant_id, tenant_seq, resource_type, resource_id, \
                 version, operation, change_json, principal, request_id, occurred_at, \
                 prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&rec.tenant)
            .bind(seq)
            .bind(&rec.resource_type)
            .bind(&rec.resource_id)
            .bind(version_to_db(rec.version)?)
            .bind(&rec.operation)
            .bind(&rec.change_json)
            .bind(&rec.principal)
            .bind(&rec.request_id)
            .bind(&rec.occurred_at)
            .bind(&rec.prev_hash)
            .bind(&rec.hash)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "UPDATE tenant_chain SET last_seq = $2, last_hash = $3 WHERE tenant_id = $1",
            )
            .bind(&ctx.tenant)
            .bind(seq)
            .bind(&rec.hash)
            .execute(&mut *c)
            .await?;
            Ok(rec.seq)
        }};
    }
    match conn.conn() {
        Conn::Sqlite(c) => append!(c, ""),
        Conn::Postgres(c) => append!(c, " FOR UPDATE"),
    }
}

/// Appends `event` to `ctx`'s tenant chain inside the caller's transaction (see the module
/// documentation); returns its sequence number. The record commits or rolls back with the
/// caller's transaction.
///
/// The append locks the tenant's chain head until that transaction ends (PostgreSQL: the
/// `tenant_chain` row; SQLite: the database's write lock), so every writer of the tenant waits
/// for it: keep the transaction short. On SQLite, make the append (or another write) the
/// transaction's first statement, or begin it with `BEGIN IMMEDIATE`: a transaction that read
/// first cannot take the write lock once another writer has committed (`SQLITE_BUSY`).
pub async fn append_event_in(
    conn: &mut (impl WriteConn + ?Sized),
    ctx: &WriteContext,
    event: &AuditEvent,
) -> super::Result<u64> {
    append_in(conn, ctx, RecordBody::event(event)?).await
}

/// The server's change log, read over a connection pool on the server's database (SQLite or
/// PostgreSQL). Reads only: records are appended by the [`Store`](super::Store)'s writes.
#[derive(Debug, Clone)]
pub struct StoreChangeLog {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A `scim_changes` row as the log's readers select it.
#[derive(Debug, sqlx::FromRow)]
struct EntryRow {
    tenant_id: String,
    tenant_seq: i64,
    resource_type: String,
    resource_id: String,
    version: i64,
    operation: String,
    occurred_at: String,
    /// An audit event's record JSON (`NULL` for a resource write, whose JSON readers need not).
    event_json: Option<String>,
}

const HEADS: &str =
    "SELECT tenant_id, last_seq FROM tenant_chain WHERE last_seq > 0 ORDER BY tenant_id";
const READ_AFTER: &str = "SELECT tenant_id, tenant_seq, resource_type, resource_id, \
     CAST(version AS BIGINT) AS version, operation, occurred_at, \
     CASE WHEN operation = 'event' THEN change_json END AS event_json FROM scim_changes \
     WHERE tenant_id = $1 AND tenant_seq > $2 ORDER BY tenant_seq LIMIT $3";

impl StoreChangeLog {
    /// The log of the SQLite database `pool` is open on.
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            pool: Pool::Sqlite(pool),
        }
    }

    /// The log of the PostgreSQL database `pool` is open on.
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            pool: Pool::Postgres(pool),
        }
    }

    async fn heads(&self) -> super::Result<Vec<ChangeCursor>> {
        let rows: Vec<(String, i64)> = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(HEADS).fetch_all(p).await?,
            Pool::Postgres(p) => sqlx::query_as(HEADS).fetch_all(p).await?,
        };
        rows.into_iter()
            .map(|(tenant, seq)| {
                Ok(ChangeCursor {
                    tenant,
                    seq: version_from_db(seq)?,
                })
            })
            .collect()
    }

    async fn read_after(
        &self,
        cursor: &ChangeCursor,
        limit: usize,
    ) -> super::Result<Vec<ChangeLogEntry>> {
        let after = i64::try_from(cursor.seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<EntryRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(READ_AFTER)
                    .bind(&cursor.tenant)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_as(READ_AFTER)
                    .bind(&cursor.tenant)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        };
        rows.into_iter().map(entry).collect()
    }
}

fn entry(r: EntryRow) -> super::Result<ChangeLogEntry> {
    let occurred_at = OffsetDateTime::parse(&r.occurred_at, &Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("change time {:?}: {e}", r.occurred_at)))?;
    let record = if r.operation == EVENT_OPERATION {
        let event: AuditEvent = serde_json::from_str(r.event_json.as_deref().unwrap_or(""))
            .map_err(|e| StoreError::Corrupt(format!("audit event record: {e}")))?;
        Record::Event(event.summary())
    } else {
        let operation: Operation =
            serde_json::from_value(r.operation.clone().into()).map_err(|_| {
                StoreError::Corrupt(format!("unknown change operation {:?}", r.operation))
            })?;
        Record::Write(ResourceWrite {
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            version: version_from_db(r.version)?,
            operation,
        })
    };
    Ok(ChangeLogEntry {
        tenant: r.tenant_id,
        seq: version_from_db(r.tenant_seq)?,
        occurred_at,
        record,
    })
}

fn log_error(e: StoreError) -> scim_graph_bridge::Error {
    scim_graph_bridge::Error::ChangeLog(e.to_string())
}

#[async_trait::async_trait]
impl OutboxReader for StoreChangeLog {
    async fn heads(&self) -> scim_graph_bridge::Result<Vec<ChangeCursor>> {
        StoreChangeLog::heads(self).await.map_err(log_error)
    }

    async fn read_after(
        &self,
        cursor: &ChangeCursor,
        limit: usize,
    ) -> scim_graph_bridge::Result<Vec<ChangeLogEntry>> {
        StoreChangeLog::read_after(self, cursor, limit)
            .await
            .map_err(log_error)
    }
}
