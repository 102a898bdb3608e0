//! The console's own tables (`migrations/*/0030_console.sql`) on a connection pool of its own,
//! opened on the server's `database_url` the way the Graph bridge opens its pool.
//!
//! The SCIM tables are read through the [`crate::store::Store`] trait, with one exception kept
//! here on purpose: a person's timeline and the dashboard's recent changes read `scim_changes`
//! newest first (by the `scim_changes_resource` index and the primary key), which the store's
//! `changes_after` (oldest first, for the bridge) cannot page. Both are bounded by `LIMIT`.

use crate::store::row::{CHANGE_COLUMNS, ChangeRow};
use crate::store::side_pool::{SidePool, open_side_pool};
use crate::store::{ChangeRecord, StoreError};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

/// Result of a console table access.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The console's pool, on either database.
#[derive(Debug, Clone)]
pub enum ConsoleDb {
    /// SQLite (a file: an in-memory database is private to the pool that opened it).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs one statement on whichever pool `$db` holds: the statements are written with `$n`
/// placeholders, which both drivers accept.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            ConsoleDb::Sqlite($pool) => $body,
            ConsoleDb::Postgres($pool) => $body,
        }
    };
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// SCIM tenant.
    pub tenant_id: String,
    /// The provider's subject.
    pub subject: String,
    /// Name shown and recorded.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Sign-in time (Unix seconds).
    pub created_at: i64,
    /// Last request (Unix seconds).
    pub last_seen_at: i64,
    /// Absolute expiry (Unix seconds).
    pub expires_at: i64,
}

/// A started OpenID Connect sign-in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginRow {
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier (RFC 7636).
    pub code_verifier: String,
    /// When started (Unix seconds).
    pub created_at: i64,
}

/// One recorded console action.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActionRow {
    /// When (Unix seconds).
    pub occurred_at: i64,
    /// Who (subject).
    pub subject: String,
    /// Who (name).
    pub display_name: String,
    /// Their role then.
    pub role: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// `ok` or `refused: …`.
    pub outcome: String,
    /// The request id.
    pub request_id: Option<String>,
}

/// What a console action record says.
#[derive(Debug, Clone, Copy)]
pub struct NewAction<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// When (Unix seconds).
    pub at: i64,
    /// Who (subject).
    pub subject: &'a str,
    /// Who (name).
    pub display_name: &'a str,
    /// Their role.
    pub role: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub target: &'a str,
    /// `ok` or `refused: …`.
    pub outcome: &'a str,
    /// The request id.
    pub request_id: Option<&'a str>,
}

impl ConsoleDb {
    /// Opens a small pool on `database_url` (the server's store must have migrated it).
    pub async fn open(database_url: &str) -> anyhow::Result<Self> {
        Ok(match open_side_pool(database_url, "the console").await? {
            SidePool::Postgres(pool) => Self::Postgres(pool),
            SidePool::Sqlite(pool) => Self::Sqlite(pool),
        })
    }

    /// Stores a new session.
    pub async fn insert_session(&self, id_hash: &str, s: &SessionRow) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO console_sessions (id_hash, tenant_id, subject, display_name, role, \
                 csrf_token, created_at, last_seen_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id_hash)
            .bind(&s.tenant_id)
            .bind(&s.subject)
            .bind(&s.display_name)
            .bind(&s.role)
            .bind(&s.csrf_token)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A session by the hash of its cookie secret.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        let sql = "SELECT tenant_id, subject, display_name, role, csrf_token, created_at, \
                   last_seen_at, expires_at FROM console_sessions WHERE id_hash = $1";
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(id_hash)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records activity on a session.
    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a session, and any other session whose absolute lifetime is over.
    pub async fn delete_session(&self, id_hash: &str, now: i64) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1 OR expires_at < $2")
                .bind(id_hash)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores a started sign-in, and drops sign-ins older than `stale_before`.
    pub async fn insert_login(
        &self,
        state_hash: &str,
        login: &LoginRow,
        stale_before: i64,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM console_logins WHERE created_at < $1")
                .bind(stale_before)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO console_logins (state_hash, nonce, code_verifier, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(state_hash)
            .bind(&login.nonce)
            .bind(&login.code_verifier)
            .bind(login.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes (reads and deletes) a started sign-in: a `state` is good for one callback.
    pub async fn take_login(&self, state_hash: &str) -> Result<Option<LoginRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "DELETE FROM console_logins WHERE state_hash = $1 \
                 RETURNING nonce, code_verifier, created_at",
            )
            .bind(state_hash)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Stores a one-time sign-in link.
    pub async fn insert_link(
        &self,
        secret_hash: &str,
        tenant: &str,
        now: i64,
        expires: i64,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO console_links (secret_hash, tenant_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(secret_hash)
            .bind(tenant)
            .bind(now)
            .bind(expires)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Uses a one-time link: its tenant if it exists, is unused and unexpired (it is then used).
    /// One statement, so two concurrent uses cannot both succeed.
    pub async fn use_link(&self, secret_hash: &str, now: i64) -> Result<Option<String>> {
        let row: Option<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE console_links SET used_at = $1 \
                 WHERE secret_hash = $2 AND used_at IS NULL AND expires_at >= $1 \
                 RETURNING tenant_id",
            )
            .bind(now)
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(t,)| t))
    }

    /// Records a console action.
    pub async fn record_action(&self, a: NewAction<'_>) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO console_actions (tenant_id, occurred_at, subject, display_name, \
                 role, action, target, outcome, request_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.tenant)
            .bind(a.at)
            .bind(a.subject)
            .bind(a.display_name)
            .bind(a.role)
            .bind(a.action)
            .bind(a.target)
            .bind(a.outcome)
            .bind(a.request_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The tenant's most recent console actions, newest first.
    pub async fn recent_actions(&self, tenant: &str, limit: i64) -> Result<Vec<ActionRow>> {
        let sql = "SELECT occurred_at, subject, display_name, role, action, target, outcome, \
                   request_id FROM console_actions WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2";
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(tenant)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The tenant's newest change records, newest first, at most `limit`; with `resource_id`,
    /// only that resource's (its timeline), older than sequence `before` when given.
    pub async fn recent_changes(
        &self,
        tenant: &str,
        resource_id: Option<&str>,
        before: Option<u64>,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        // Placeholders appear in numeric order: SQLite numbers `$n` by first appearance.
        let rows: Vec<ChangeRow> = match resource_id {
            Some(id) => {
                let sql = format!(
                    "SELECT {CHANGE_COLUMNS} FROM scim_changes WHERE tenant_id = $1 \
                     AND resource_id = $2 AND tenant_seq < $3 ORDER BY tenant_seq DESC LIMIT $4"
                );
                on_pool!(self, |pool| {
                    sqlx::query_as(&sql)
                        .bind(tenant)
                        .bind(id)
                        .bind(before)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                })
            }
            None => {
                let sql = format!(
                    "SELECT {CHANGE_COLUMNS} FROM scim_changes WHERE tenant_id = $1 \
                     AND tenant_seq < $2 ORDER BY tenant_seq DESC LIMIT $3"
                );
                on_pool!(self, |pool| {
                    sqlx::query_as(&sql)
                        .bind(tenant)
                        .bind(before)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                })
            }
        };
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The head of the tenant's change-log chain: last sequence number and hash.
    pub async fn chain_head(&self, tenant: &str) -> Result<Option<(i64, String)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as("SELECT last_seq, last_hash FROM tenant_chain WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(pool)
                .await?
        }))
    }
}
