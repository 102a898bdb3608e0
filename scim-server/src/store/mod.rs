//! Storage behind one [`Store`] trait, with SQLite (embedded default) and PostgreSQL
//! implementations that pass one shared test suite.
//!
//! Invariants every implementation keeps:
//! - every write commits in one transaction with its change record (the outbox, hash-chained per
//!   tenant), so a write without its record, or a record without its write, cannot exist;
//! - a change record is readable only once sealed (numbered and chained), each exactly once, with
//!   numbers given in sealing order, so a reader never sees a gap a later read fills: SQLite
//!   seals in the write's transaction (the database serialises writers), PostgreSQL after
//!   commit, one sealer at a time ([`seal`]), so no lock is held across a PostgreSQL write
//!   transaction for the chain's sake;
//! - every row is keyed by tenant, and no method reads or writes across tenants;
//! - `userName` (User) and `displayName` (Group) are unique per tenant, case-insensitively,
//!   enforced by a database constraint (concurrent creates of one name: exactly one succeeds);
//! - updates are compare-and-swap on the version the caller read ([`StoreError::VersionMismatch`]);
//! - group membership lives in its own table: adding or removing a member costs the same whatever
//!   the group's size, and reading a group without members never touches it.
//!
//! Tables (`migrations/sqlite` and `migrations/postgres`, numbered alike):
//! - `resources`: one row per resource, its attributes as JSON (`TEXT` on SQLite, `jsonb` on
//!   PostgreSQL) plus columns derived on every write: `unique_key` (lower-cased `userName` or
//!   Group `displayName`, `UNIQUE (tenant_id, resource_type, unique_key)`), `external_id`,
//!   `manager_id`, `display`, `created_ns`/`last_modified_ns`; SQLite also keeps
//!   `attributes_ci`, the attributes with every string case-folded (its `lower()` is ASCII-only);
//! - `resource_values`: lower-cased values of `emails`, `phoneNumbers`, … for index lookups;
//! - `memberships`: `(tenant_id, group_id, member_id)`, deleted with either end (`ON DELETE
//!   CASCADE`);
//! - `scim_changes` (the outbox, sealed records; other crates read it through [`change_log`]),
//!   `scim_changes_pending` (PostgreSQL: committed records awaiting the sealer) and `tenant_chain`
//!   (each tenant's chain head: last sequence number and hash; SQLite writers and PostgreSQL
//!   sealers update it);
//! - `tenants`, `tokens`.
//!
//! Modules: [`sqlite`] and [`postgres`] (the two stores, one implementation expanded for each
//! driver from `imp`), [`sql`] (filter, sort and paging compilation), [`row`] (the columns a
//! resource's row derives from it), [`chain`] (the change log's hash chain) and [`seal`]
//! (sealing it after commit on PostgreSQL). Open a store with
//! [`open_store`].

pub mod chain;
pub mod change_log;
mod imp;
mod inline_reads;
mod pg_clients;
pub mod postgres;
mod read_pool;
mod refusal;
pub mod row;
pub mod seal;
pub mod side_pool;
pub mod sql;
pub mod sqlite;
pub mod write_gate;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use scim_core::change::Change;
use scim_core::patch::MembershipDelta;
use scim_core::query::ListQuery;
use scim_core::resource::Resource;
use scim_core::schema::ResourceType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// Storage result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in storage.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such resource in this tenant.
    #[error("{resource_type} {id:?} not found")]
    NotFound {
        /// The resource type.
        resource_type: String,
        /// The id looked up.
        id: String,
    },
    /// A uniqueness constraint refused the write (`userName`, `displayName`, a tenant id, …).
    #[error("{detail}")]
    Uniqueness {
        /// A detail naming the attribute and value, safe to show the client.
        detail: String,
    },
    /// The stored version is not the one the write expected (compare-and-swap failed).
    #[error("version mismatch: stored version is {current}")]
    VersionMismatch {
        /// The version now stored.
        current: u64,
    },
    /// A database failure. Never shown to clients (logged with the request id).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A write's remembered chain head was stale (SQLite: another writer of the file moved
    /// it); nothing was written. The store retries the write itself; callers never see this.
    #[error("the change log's head moved; the write was not applied")]
    ChainHeadMoved,
    /// A compare-and-swap checked at commit (SQLite's group commit) matched no row: the
    /// resource changed or went away; nothing was written. The store turns it into
    /// [`StoreError::VersionMismatch`] or [`StoreError::NotFound`]; callers never see this.
    #[error("the resource changed while the write was being committed; the write was not applied")]
    CompareAndSwapLost,
    /// Stored data that does not decode (corruption or a bug).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The connection failed while the transaction was committing: the write may or may not
    /// have been stored. Only a re-read can tell.
    #[error("commit outcome unknown: {0}")]
    OutcomeUnknown(sqlx::Error),
}

/// How a database failure looks from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database cannot be reached or refuses connections for now (503, retry later).
    Unavailable,
    /// The database has no space left (507: an operator must act).
    StorageFull,
    /// Anything else (500).
    Internal,
}

impl StoreError {
    /// The client-side view of a [`StoreError::Database`] failure.
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Database(e) | StoreError::OutcomeUnknown(e) => classify(e),
            _ => Fault::Internal,
        }
    }
}

/// Classifies a driver error: connection-level failures (I/O, pool exhaustion or closure,
/// PostgreSQL SQLSTATE class 08 and the shutdown codes 57P01–57P03, 53300 too many connections,
/// SQLite `BUSY`/`LOCKED`/`IOERR`) are [`Fault::Unavailable`]; PostgreSQL 53100, SQLite `FULL`
/// and `IOERR_WRITE` are [`Fault::StorageFull`].
pub fn classify(err: &sqlx::Error) -> Fault {
    match err {
        sqlx::Error::Io(e) if e.raw_os_error() == Some(28) => Fault::StorageFull,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Fault::Unavailable,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            // SQLite reports its (extended) result code as a number; the primary code is the
            // low byte.
            if let Ok(n) = code.parse::<i32>() {
                return match n & 0xff {
                    // FULL, and IOERR_WRITE: what a write past a full disk or a file-size
                    // limit gives once the file can take nothing more.
                    _ if n == 13 || n == 778 => Fault::StorageFull,
                    5 | 6 | 10 => Fault::Unavailable,
                    _ => Fault::Internal,
                };
            }
            if code == "53100" {
                Fault::StorageFull
            } else if code.starts_with("08")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "53300")
            {
                Fault::Unavailable
            } else {
                Fault::Internal
            }
        }
        _ => Fault::Internal,
    }
}

/// Commits a write transaction. A failure is [`StoreError::OutcomeUnknown`] when the connection
/// failed (the server may have committed before the answer was lost), otherwise the database
/// refused the commit and nothing was stored.
///
/// SQLite's answer is always authoritative (the database is a local file): a failed commit there
/// stored nothing.
pub(crate) async fn commit<DB: sqlx::Database>(tx: sqlx::Transaction<'static, DB>) -> Result<()> {
    tx.commit().await.map_err(|e| match classify(&e) {
        Fault::Unavailable if DB::NAME == "PostgreSQL" => StoreError::OutcomeUnknown(e),
        _ => StoreError::Database(e),
    })
}

impl From<StoreError> for scim_core::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { resource_type, id } => {
                scim_core::Error::not_found(&resource_type, &id)
            }
            StoreError::Uniqueness { detail } => scim_core::Error::uniqueness(detail),
            StoreError::VersionMismatch { current } => scim_core::Error::precondition_failed(
                format!("the resource changed since it was read (current version W/\"{current}\")"),
            ),
            StoreError::Database(err) => match classify(&err) {
                Fault::Unavailable => {
                    crate::fault::record(format!("database unavailable: {err}"));
                    scim_core::Error::new(
                        503,
                        None,
                        "the database is unavailable; nothing was changed; retry later",
                    )
                }
                Fault::StorageFull => {
                    crate::fault::record(format!("database out of space: {err}"));
                    scim_core::Error::new(
                        507,
                        None,
                        "the database cannot write to its storage (no space left); nothing was \
                         changed",
                    )
                }
                Fault::Internal => {
                    crate::fault::record(format!("database error: {err}"));
                    scim_core::Error::internal()
                }
            },
            StoreError::OutcomeUnknown(err) => {
                crate::fault::record(format!("commit outcome unknown: {err}"));
                scim_core::Error::new(503, None, OUTCOME_UNKNOWN_DETAIL)
            }
            StoreError::Corrupt(detail) => {
                crate::fault::record(format!("corrupt stored data: {detail}"));
                scim_core::Error::internal()
            }
            // The store classifies this itself; if it ever surfaced, the client's retry (after
            // reading the resource again) is the right answer.
            StoreError::CompareAndSwapLost => scim_core::Error::new(
                412,
                None,
                "the resource changed while this write was being applied; nothing was changed; \
                 read it again and retry",
            ),
            // Twice in a row another writer moved the change log's head: nothing was written.
            StoreError::ChainHeadMoved => scim_core::Error::new(
                503,
                None,
                "another writer was appending to the change log at the same time; nothing was \
                 changed; retry",
            ),
        }
    }
}

/// The detail of a 503 for a write whose commit outcome is unknown.
pub const OUTCOME_UNKNOWN_DETAIL: &str = "the database connection failed while the write was \
     committing, so it may or may not have been stored; retry it (a create retried with the same \
     X-Request-Id header returns the resource if the first attempt was stored), or read the \
     resource first";

/// One write among several of one resource stored together
/// ([`Resources::update_successive`]): who made it and its change record.
#[derive(Debug, Clone, Copy)]
pub struct WriteStep<'a> {
    /// The write's context (its tenant is the resource's).
    pub ctx: &'a WriteContext,
    /// Its change record.
    pub change: &'a Change,
}

/// Who performs a write, and when: recorded in the change log.
///
/// Only the service's write capability makes one (`service::write::Writer::context`), so a
/// store write cannot be reached without passing authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    /// The tenant written to.
    pub(crate) tenant: String,
    /// The authenticated principal (token id, JWT subject, OAuth client id).
    pub(crate) principal: String,
    /// The request id, when the write comes from an HTTP request.
    pub(crate) request_id: Option<String>,
    /// The time of the write (from the server's clock).
    pub(crate) now: OffsetDateTime,
}

impl WriteContext {
    /// The tenant written to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The time of the write.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }
}

/// What to load with a resource beyond its own row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// A Group's `members` (from the membership table).
    pub members: bool,
    /// A User's `groups` (RFC 7643 §4.1.2, readOnly, derived from the membership table).
    pub groups: bool,
}

/// One page of a list query.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The number of matches in total (not the page size).
    pub total: u64,
    /// The resources of the page, in order.
    pub resources: Vec<Resource>,
}

/// A tenant and its per-tenant options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Stable id (used in every key).
    pub id: String,
    /// Display name.
    pub name: String,
    /// HR upsert: a Bulk `POST /Users` whose `externalId` exists updates that user.
    pub bulk_upsert_by_external_id: bool,
    /// When the tenant was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// A stored static bearer token (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id (shown in `token list`, recorded as the principal).
    pub id: String,
    /// The tenant the token belongs to.
    pub tenant: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// A label given at creation.
    pub label: String,
    /// Read-only tokens may not write.
    pub read_only: bool,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Optional expiry (OAuth access tokens issued by `/oauth/token` expire; static ones need not).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    /// When revoked, if revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked: Option<OffsetDateTime>,
}

/// A change-log record as stored (the outbox row): a resource write, or an audit event
/// ([`ChangeRecord::event`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The tenant.
    pub tenant: String,
    /// 1, 2, 3… per tenant, gap-free, in commit order.
    pub seq: u64,
    /// The resource type.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// The resource's version after the change.
    pub version: u64,
    /// `create`, `replace`, `patch` or `delete`; `event` for an audit event (whose subject is
    /// in `resource_type`/`resource_id`, with version 0).
    pub operation: String,
    /// The change description as stored JSON text (hashed byte for byte).
    pub change_json: String,
    /// The principal that made the change.
    pub principal: String,
    /// The request id, if any.
    pub request_id: Option<String>,
    /// When (RFC 3339).
    pub occurred_at: String,
    /// The predecessor's hash (64 zeros for the first record of a tenant).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl ChangeRecord {
    /// Whether the record is an audit event rather than a resource write.
    pub fn is_event(&self) -> bool {
        self.operation == scim_core::change_log::EVENT_OPERATION
    }

    /// The audit event the record holds; `None` for a resource write (or an event record whose
    /// JSON does not decode, which `audit verify` reports as altered if it was).
    pub fn event(&self) -> Option<scim_core::change_log::AuditEvent> {
        if self.is_event() {
            serde_json::from_str(&self.change_json).ok()
        } else {
            None
        }
    }
}

/// The result of checking a tenant's change-log hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The tenant checked.
    pub tenant: String,
    /// Records checked.
    pub records: u64,
    /// Problems found (an altered record, a missing sequence number, a broken link); empty when
    /// the chain is intact.
    pub problems: Vec<String>,
}

/// Connection-pool figures, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// Connections open (idle or in use).
    pub size: u32,
    /// Connections idle.
    pub idle: u32,
    /// PostgreSQL: the hot reads' shared connections open (`store/pg_clients.rs`), apart
    /// from `size`; `None` on SQLite.
    pub reads: Option<u32>,
    /// PostgreSQL: the one-statement writes' shared connections open (`store/pg_clients.rs`),
    /// apart from `size`; `None` on SQLite.
    pub writes: Option<u32>,
}

/// How the store's connection pool is sized (`[database]` in the configuration); `None` takes
/// the database's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolSettings {
    /// Most connections: default [`SQLITE_MAX_CONNECTIONS`] or [`POSTGRES_MAX_CONNECTIONS`].
    /// An in-memory SQLite database lives in one connection and ignores this.
    pub max_connections: Option<u32>,
    /// How long a statement waits for a free connection: default 30 s on SQLite, 10 s on
    /// PostgreSQL.
    pub acquire_timeout: Option<std::time::Duration>,
    /// SQLite: how many SQLite instructions a hot read may run on the request's own thread
    /// before sqlx's threads take it over (default [`sqlite::INLINE_READ_STEPS`]; zero: always
    /// on sqlx's threads). See `store/inline_reads.rs`. PostgreSQL ignores it.
    pub sqlite_inline_read_steps: Option<u64>,
}

/// The SQLite pool's default size. Writers take turns on one lock whatever the pool's size,
/// and the machine's cores, not connections, bound the readers: measured in
/// `docs/benchmarks.md` ("Pool sizes").
pub const SQLITE_MAX_CONNECTIONS: u32 = 8;

/// The PostgreSQL pool's default size, per replica (see `docs/benchmarks.md`, "Pool sizes").
pub const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Opens the store a database URL names, creating (SQLite) and migrating it:
/// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite:…` or a plain file path is SQLite.
pub async fn open_store(database_url: &str) -> Result<Arc<dyn Store>> {
    open_store_with(database_url, PoolSettings::default()).await
}

/// [`open_store`] with a configured pool.
pub async fn open_store_with(database_url: &str, pool: PoolSettings) -> Result<Arc<dyn Store>> {
    let lower = database_url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect_with(database_url, pool).await?,
        ))
    } else {
        Ok(Arc::new(SqliteStore::open_with(database_url, pool).await?))
    }
}

/// If `err` is a unique-constraint violation, the violated constraint's name (PostgreSQL) or the
/// database's message naming its columns (SQLite).
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => Some(
            db.constraint()
                .map(str::to_string)
                .unwrap_or_else(|| db.message().to_string()),
        ),
        _ => None,
    }
}

/// Storage for SCIM resources, tenants, credentials and the change log: the three capabilities
/// ([`Resources`], [`Tenants`], [`ChangeLogStore`]) plus administration. Both databases implement it
/// with one shared implementation (`imp.rs`).
///
/// A component that needs one capability takes that trait (the service's write pipeline takes
/// [`Resources`]), so a test double or a wrapper implements a handful of methods, not all of
/// them.
#[async_trait]
pub trait Store: Resources + Tenants + ChangeLogStore + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
    /// Connection-pool figures, when the store has a pool.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
    /// Gives the query planner statistics where they are missing or stale, and names the tables
    /// it analysed (see `postgres.rs`; SQLite's planner needs none, so its store does nothing).
    async fn refresh_statistics(&self) -> Result<Vec<&'static str>> {
        Ok(Vec::new())
    }
}

/// Tenants and their credentials.
#[async_trait]
pub trait Tenants: Send + Sync {
    /// Creates a tenant (`Uniqueness` if the id exists).
    async fn create_tenant(&self, tenant: &Tenant) -> Result<()>;
    /// A tenant by id.
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>>;
    /// All tenants.
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Stores a token record.
    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// A token by the hash of its secret.
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>>;
    /// Tokens, optionally of one tenant.
    async fn list_tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>>;
    /// Revokes a token by id; false if there was none.
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<bool>;
    /// Whether any tenant has a token whose id starts with `prefix` and that is not revoked
    /// (`bas_`: is any HTTP Basic credential live?). The default lists every token; the SQL
    /// stores ask the database.
    async fn has_live_token_with_prefix(&self, prefix: &str) -> Result<bool> {
        Ok(self
            .list_tokens(None)
            .await?
            .iter()
            .any(|t| t.id.starts_with(prefix) && t.revoked.is_none()))
    }

    /// Deletes tokens whose expiry is before `before` (issued OAuth access tokens), and assertion
    /// `jti`s that expired by then; returns how many tokens went.
    async fn purge_expired(&self, before: OffsetDateTime) -> Result<u64>;

    /// Records that the assertion `jti` of `issuer`, valid until `expires`, has been used: true
    /// the first time, false for a replay (RFC 7523 §3 item 7).
    async fn claim_assertion_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires: OffsetDateTime,
    ) -> Result<bool>;
}

/// The store's side of the change log (the outbox): audit events appended, records read in
/// order, the hash chain verified. Its consumer, the Graph bridge, reads through its own
/// narrower trait, `scim_graph_bridge::outbox::OutboxReader` (typed entries and heads,
/// implemented by [`change_log::StoreChangeLog`]).
#[async_trait]
pub trait ChangeLogStore: Send + Sync {
    /// Appends `event` (a console action, a governance decision, …: no resource changed) to
    /// `ctx`'s tenant chain in a transaction of its own, and returns its sequence number. Inside
    /// a transaction of the caller's, use [`change_log::append_event_in`] instead.
    async fn append_event(
        &self,
        ctx: &WriteContext,
        event: &scim_core::change_log::AuditEvent,
    ) -> Result<u64>;

    /// Change records of a tenant with `seq > after`, in order, at most `limit`.
    async fn changes_after(
        &self,
        tenant: &str,
        after: u64,
        limit: u64,
    ) -> Result<Vec<ChangeRecord>>;

    /// Recomputes the tenant's hash chain and reports altered or missing records.
    async fn verify_chain(&self, tenant: &str) -> Result<ChainReport>;

    /// Every tenant id that has change records or a chain head, whether or not the tenant
    /// exists (so `audit verify` misses no record).
    async fn tenants_with_changes(&self) -> Result<Vec<String>>;

    /// The sweep: seals change records that committed without being sealed (a crash between a
    /// write's commit and its sealing, an event appended in a caller's own transaction) and
    /// returns how many. PostgreSQL only (see [`seal`]; its sweep also closes the shared
    /// connections unused for 10 minutes); SQLite seals in the write's transaction.
    async fn seal(&self) -> Result<u64> {
        Ok(0)
    }
}

/// SCIM resources: reads, and writes that each commit with their change record.
///
/// Callers (the service's write pipeline) decide everything protocol-related with `scim-core`
/// and hand the store complete resources: the store persists them atomically with their change
/// record. A write needs a [`WriteContext`], which only the service's write capability
/// (`service::Writer`, obtained from an authorised request) makes.
#[async_trait]
pub trait Resources: Send + Sync {
    /// Inserts a new resource (version 1) with, for a Group, its initial `members` taken from
    /// the resource's `members` attribute (stored in the membership table, not in the row), and
    /// appends `change`.
    async fn create(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        resource: &Resource,
        change: &Change,
    ) -> Result<()>;

    /// A resource by id.
    async fn get(
        &self,
        tenant: &str,
        rt: &ResourceType,
        id: &str,
        load: Load,
    ) -> Result<Option<Resource>>;

    /// The id of the resource of type `rt` that `principal` created in a request with id
    /// `request_id`, if that resource still exists: how a create retried after an unknown
    /// outcome is recognised. Stores that keep no change log (test doubles) recognise none.
    async fn created_by_request(
        &self,
        tenant: &str,
        rt: &ResourceType,
        principal: &str,
        request_id: &str,
    ) -> Result<Option<String>> {
        let _ = (tenant, rt, principal, request_id);
        Ok(None)
    }

    /// Replaces a resource's attributes if its stored version is `expected_version`, storing
    /// `resource` (whose `meta.version` is the new version). For a Group, `members` handling:
    /// `members: Some(delta)` applies the delta to the membership table; `None` leaves
    /// membership untouched (and any `members` in `resource.attributes` is not stored in the row).
    /// Appends `change`.
    async fn update(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        resource: &Resource,
        expected_version: u64,
        members: Option<&MembershipDelta>,
        change: &Change,
    ) -> Result<()> {
        self.update_successive(
            rt,
            resource,
            expected_version,
            members,
            &[WriteStep { ctx, change }],
        )
        .await
    }

    /// Several successive writes of one resource stored as one write: `resource` is the last
    /// version (its `meta.version` is `expected_version` + the number of steps), `members` the
    /// net membership delta of all of them
    /// ([`MembershipDelta::followed_by`](scim_core::patch::MembershipDelta::followed_by)), and
    /// each step's change record is appended in order, with its own context (principal,
    /// request id). Either everything is stored or nothing. [`update`](Self::update) is the
    /// one-step case.
    async fn update_successive(
        &self,
        rt: &ResourceType,
        resource: &Resource,
        expected_version: u64,
        members: Option<&MembershipDelta>,
        steps: &[WriteStep<'_>],
    ) -> Result<()>;

    /// Deletes a resource if its stored version is `expected_version` (any version when `None`),
    /// with every membership row naming it (as group or as member). Appends `change`. Each group
    /// the resource was a member of gets a new version and a change record of its own
    /// ([`Change::member_removed`]), in the same transaction, so its ETag moves and change
    /// readers see the removal.
    async fn delete(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        id: &str,
        expected_version: Option<u64>,
        change: &Change,
    ) -> Result<()>;

    /// Runs a list query: the filter compiled to parameterised SQL, sorted and paged in SQL with a
    /// stable order (ties by id), `total` the full match count.
    async fn list(
        &self,
        tenant: &str,
        rt: &ResourceType,
        query: &ListQuery,
        load: Load,
    ) -> Result<Page>;

    /// Finds a User by `externalId` (case-exact), for HR-style Bulk upserts.
    async fn find_by_external_id(
        &self,
        tenant: &str,
        rt: &ResourceType,
        external_id: &str,
    ) -> Result<Option<Resource>>;

    /// Which of `ids` exist as resources of type `rt` in the tenant (group PATCH skips unknown
    /// member ids).
    async fn existing_ids(
        &self,
        tenant: &str,
        rt: &ResourceType,
        ids: &[String],
    ) -> Result<Vec<String>>;
}
