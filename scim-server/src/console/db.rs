//! The console's own tables (`migrations/*/0030_console.sql`) on a connection pool of its own,
//! opened on the server's `database_url` the way the Graph bridge opens its pool.
//!
//! The SCIM tables are read through the [`crate::store::Store`] trait, with one exception kept
//! here on purpose: a person's timeline and the dashboard's recent changes read `scim_changes`
//! newest first (by the `scim_changes_resource` index and the primary key), which the store's
//! `changes_after` (oldest first, for the bridge) cannot page. Both are bounded by `LIMIT`.
//!
//! Two more reads of the SCIM tables live here for the same reason, both bounded by `LIMIT` and
//! walking an index in the order they return (no read sorts or counts past a page in memory):
//! - [`ConsoleDb::list_keys`]: the ids of one page of people or groups, paged by key (keyset
//!   paging: "after this name", not "skip 90,000 rows"), by name or last modification;
//!   `Store::list` sorts by an expression over the JSON that no index provides, which cost
//!   352 ms a page at 100,000 users;
//! - [`ConsoleDb::group_members`]: one page of a group's members by the membership primary key
//!   (a group can have hundreds of thousands; the store loads all of them or none).
//!
//! Resources themselves are then read through the store, one page of ids at a time.

use crate::store::row::{CHANGE_COLUMNS, ChangeRow};
use crate::store::side_pool::{SidePool, open_side_pool};
use crate::store::write_gate::SideWrites;
use crate::store::{ChangeRecord, StoreError};
use scim_graph_bridge::on_pool;
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
scim_graph_bridge::impl_on_pool!(ConsoleDb);

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

/// The order a list of people or groups pages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    /// By the folded `userName` (Users) or `displayName` (Groups): the `unique_key` column.
    Name,
    /// By last modification, ties by id.
    LastModified,
}

/// A row's position in a keyset-paged list: what the next page starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListKey {
    /// The resource id.
    pub id: String,
    /// Its folded name (`unique_key`).
    pub name: Option<String>,
    /// Its last modification, in nanoseconds.
    pub last_modified_ns: i64,
}

impl ListKey {
    /// The key as a URL parameter (`after=` / `before=`).
    pub fn encode(&self, order: ListOrder) -> String {
        match order {
            ListOrder::Name => format!("n:{}", self.name.as_deref().unwrap_or("")),
            ListOrder::LastModified => format!("m:{}:{}", self.last_modified_ns, self.id),
        }
    }

    /// A key from [`ListKey::encode`]; `None` when it is not one of `order`.
    pub fn decode(text: &str, order: ListOrder) -> Option<Self> {
        match (order, text.split_once(':')?) {
            (ListOrder::Name, ("n", name)) => Some(Self {
                id: String::new(),
                name: Some(name.to_string()),
                last_modified_ns: 0,
            }),
            (ListOrder::LastModified, ("m", rest)) => {
                let (ns, id) = rest.split_once(':')?;
                Some(Self {
                    id: id.to_string(),
                    name: None,
                    last_modified_ns: ns.parse().ok()?,
                })
            }
            _ => None,
        }
    }
}

/// One page of a keyset-paged list, as [`ConsoleDb::list_keys`] asks for it.
#[derive(Debug, Clone, Copy)]
pub struct KeysetQuery<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// `User` or `Group`.
    pub resource_type: &'a str,
    /// The order.
    pub order: ListOrder,
    /// Whether it runs backwards.
    pub descending: bool,
    /// Only names starting with this (already folded).
    pub prefix: Option<&'a str>,
    /// Only rows after this key, in the query's direction.
    pub after: Option<&'a ListKey>,
    /// Rows skipped first (only for a page reached by number, without a key).
    pub offset: u64,
    /// Rows at most.
    pub limit: i64,
}

/// The end of a name prefix range: every string starting with `prefix` sorts below `prefix`
/// followed by the highest code point, in code-point order.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// The statement of [`ConsoleDb::list_keys`] (public so that a test can ask the database's
/// planner how it runs it). Placeholders: `$1` tenant, `$2` type, then the prefix range's two
/// ends, then the key (name; or time and id), then limit and offset.
pub fn keyset_sql(
    postgres: bool,
    order: ListOrder,
    descending: bool,
    prefix: bool,
    after: bool,
) -> String {
    // PostgreSQL compares text by the database's collation unless told otherwise; the index
    // `resources_unique_key_c` (migration 0031) is in code-point order, like SQLite's.
    let name = if postgres {
        "unique_key COLLATE \"C\""
    } else {
        "unique_key"
    };
    let (dir, cmp) = if descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    // By last modification, the tenant and type are matched as the expression migration 0031
    // indexes (resource type names hold no `/`, so the pair is unambiguous).
    let mut sql = String::from(match order {
        ListOrder::Name => {
            "SELECT id, unique_key, last_modified_ns FROM resources \
             WHERE tenant_id = $1 AND resource_type = $2"
        }
        ListOrder::LastModified => {
            "SELECT id, unique_key, last_modified_ns FROM resources \
             WHERE (tenant_id || '/' || resource_type) = ($1 || '/' || $2)"
        }
    });
    let mut n = 2;
    if prefix {
        sql.push_str(&format!(" AND {name} >= $3 AND {name} < $4"));
        n = 4;
    }
    if after {
        match order {
            ListOrder::Name => {
                sql.push_str(&format!(" AND {name} {cmp} ${}", n + 1));
                n += 1;
            }
            ListOrder::LastModified => {
                sql.push_str(&format!(
                    " AND (last_modified_ns, id) {cmp} (${}, ${})",
                    n + 1,
                    n + 2
                ));
                n += 2;
            }
        }
    }
    match order {
        ListOrder::Name => sql.push_str(&format!(" ORDER BY {name} {dir}")),
        ListOrder::LastModified => {
            sql.push_str(&format!(" ORDER BY last_modified_ns {dir}, id {dir}"));
        }
    }
    sql.push_str(&format!(" LIMIT ${} OFFSET ${}", n + 1, n + 2));
    sql
}

/// The statement of [`ConsoleDb::count_keys`].
fn count_sql(postgres: bool, prefix: bool) -> String {
    let name = if postgres {
        "unique_key COLLATE \"C\""
    } else {
        "unique_key"
    };
    let mut sql =
        String::from("SELECT COUNT(*) FROM resources WHERE tenant_id = $1 AND resource_type = $2");
    if prefix {
        sql.push_str(&format!(" AND {name} >= $3 AND {name} < $4"));
    }
    sql
}

/// A member of a group, for its page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    /// The member's id.
    pub member_id: String,
    /// `User` or `Group`.
    pub member_type: String,
    /// What it displays as (displayName, else userName).
    pub display: Option<String>,
}

impl ConsoleDb {
    /// Whether this is PostgreSQL.
    fn is_postgres(&self) -> bool {
        matches!(self, ConsoleDb::Postgres(_))
    }

    /// The keys of one page of a list (see [`KeysetQuery`]), in the query's direction.
    pub async fn list_keys(&self, q: &KeysetQuery<'_>) -> Result<Vec<ListKey>> {
        let sql = keyset_sql(
            self.is_postgres(),
            q.order,
            q.descending,
            q.prefix.is_some(),
            q.after.is_some(),
        );
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let rows: Vec<(String, Option<String>, i64)> = on_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql).bind(q.tenant).bind(q.resource_type);
            if let Some(p) = q.prefix {
                query = query.bind(p.to_string()).bind(prefix_end(p));
            }
            if let Some(key) = q.after {
                query = match q.order {
                    ListOrder::Name => query.bind(key.name.clone().unwrap_or_default()),
                    ListOrder::LastModified => {
                        query.bind(key.last_modified_ns).bind(key.id.clone())
                    }
                };
            }
            query.bind(q.limit).bind(offset).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, name, last_modified_ns)| ListKey {
                id,
                name,
                last_modified_ns,
            })
            .collect())
    }

    /// How many people or groups a list has (an index range count, no rows read).
    pub async fn count_keys(
        &self,
        tenant: &str,
        resource_type: &str,
        prefix: Option<&str>,
    ) -> Result<u64> {
        let sql = count_sql(self.is_postgres(), prefix.is_some());
        let (n,): (i64,) = on_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql).bind(tenant).bind(resource_type);
            if let Some(p) = prefix {
                query = query.bind(p.to_string()).bind(prefix_end(p));
            }
            query.fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One page of a group's members by id, after `after`, at most `limit`.
    pub async fn group_members(
        &self,
        tenant: &str,
        group_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<MemberRow>> {
        let sql = "SELECT m.member_id, m.member_type, r.display FROM memberships m \
                   LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
                   WHERE m.tenant_id = $1 AND m.group_id = $2 AND m.member_id > $3 \
                   ORDER BY m.member_id LIMIT $4";
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(tenant)
                .bind(group_id)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// How many members a group has (a range of the membership primary key).
    pub async fn count_members(&self, tenant: &str, group_id: &str) -> Result<u64> {
        let (n,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND group_id = $2",
            )
            .bind(tenant)
            .bind(group_id)
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
            sqlx::query("DELETE FROM console_logins WHERE created_at < $1")
                .bind(stale_before)
                .execute(pool)
                .await?;
            // Still in the turn above: a second one here would wait for this one.
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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
            let _turn = pool.write_turn().await;
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
        // A page of changes shows the writes that have answered: on PostgreSQL a write's record
        // is sealed just after its commit, without the writer waiting (`store::seal`).
        if let ConsoleDb::Postgres(pool) = self {
            crate::store::seal::seal_committed(pool).await?;
        }
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

/// The names a signed-in person is known by to governance (migration 0070), kept apart from
/// [`SessionRow`]: only the governance pages read them.
impl ConsoleDb {
    /// Stores the `email` and `preferred_username` of a session's person.
    pub async fn set_session_names(
        &self,
        id_hash: &str,
        names: &super::governance::ReviewerIdentity,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            let _turn = pool.write_turn().await;
            sqlx::query("UPDATE console_sessions SET email = $1, username = $2 WHERE id_hash = $3")
                .bind(names.email.as_deref())
                .bind(names.username.as_deref())
                .bind(id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The names stored with a session (none for a one-time admin link).
    pub async fn session_names(
        &self,
        id_hash: &str,
    ) -> Result<super::governance::ReviewerIdentity> {
        let row: Option<(Option<String>, Option<String>)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT email, username FROM console_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .fetch_optional(pool)
                .await?
        });
        let (email, username) = row.unwrap_or_default();
        Ok(super::governance::ReviewerIdentity { email, username })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A sign-in's writes run in turns with the store's (`store::write_gate`) while the server's
    /// store has the file open: two turns taken in one scope waited for each other and the
    /// sign-in hung.
    #[tokio::test]
    async fn a_sign_in_is_stored_and_taken_while_the_store_has_the_file_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim.db");
        let url = path.to_str().unwrap();
        let _store = crate::store::SqliteStore::open(url).await.unwrap();
        let db = ConsoleDb::open(url).await.unwrap();
        let login = LoginRow {
            nonce: "nonce".into(),
            code_verifier: "verifier".into(),
            created_at: 1_767_225_600,
        };
        let within = Duration::from_secs(10);
        tokio::time::timeout(within, db.insert_login("state", &login, 1_767_225_000))
            .await
            .expect("the sign-in was stored")
            .unwrap();
        let taken = tokio::time::timeout(within, db.take_login("state"))
            .await
            .expect("the sign-in was taken")
            .unwrap();
        assert_eq!(taken.map(|l| l.nonce), Some("nonce".to_string()));
    }
}
