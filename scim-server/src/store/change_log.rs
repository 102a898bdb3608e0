//! The change log as other crates read it: the Graph bridge's [`ChangeLog`] over `scim_changes`.
//!
//! This file and the store's own statements are the only SQL that names `scim_changes` or
//! `tenant_chain`: consumers get typed [`ChangeLogEntry`] values (`scim_core::change_log`), so
//! the table's shape stays the store's business. Entries carry no snapshots and no hashes (see
//! [`scim_core::change_log`]); `audit verify` reads full records through
//! [`ChangeLog::changes_after`](super::ChangeLog::changes_after).

use super::StoreError;
use super::row::version_from_db;
use scim_core::change::Operation;
use scim_core::change_log::{ChangeCursor, ChangeLogEntry};
use scim_graph_bridge::outbox::ChangeLog;
use sqlx::{PgPool, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
}

const HEADS: &str =
    "SELECT tenant_id, last_seq FROM tenant_chain WHERE last_seq > 0 ORDER BY tenant_id";
const READ_AFTER: &str = "SELECT tenant_id, tenant_seq, resource_type, resource_id, \
     CAST(version AS BIGINT) AS version, operation, occurred_at FROM scim_changes \
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
    let operation: Operation = serde_json::from_value(r.operation.clone().into())
        .map_err(|_| StoreError::Corrupt(format!("unknown change operation {:?}", r.operation)))?;
    let occurred_at = OffsetDateTime::parse(&r.occurred_at, &Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("change time {:?}: {e}", r.occurred_at)))?;
    Ok(ChangeLogEntry {
        tenant: r.tenant_id,
        seq: version_from_db(r.tenant_seq)?,
        resource_type: r.resource_type,
        resource_id: r.resource_id,
        version: version_from_db(r.version)?,
        operation,
        occurred_at,
    })
}

fn log_error(e: StoreError) -> scim_graph_bridge::Error {
    scim_graph_bridge::Error::ChangeLog(e.to_string())
}

#[async_trait::async_trait]
impl ChangeLog for StoreChangeLog {
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
