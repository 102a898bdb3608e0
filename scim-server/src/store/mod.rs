//! Storage behind one [`Store`] trait, with SQLite (embedded default) and PostgreSQL
//! implementations that pass one shared test suite.
//!
//! Invariants every implementation keeps:
//! - every write commits in one transaction with its change record (the outbox, hash-chained per
//!   tenant), so a write without its record, or a record without its write, cannot exist;
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
//! - `scim_changes` (the outbox, read directly by the Graph bridge) and `tenant_chain` (each
//!   tenant's chain head: last sequence number and hash; writers of a tenant serialise on it);
//! - `tenants`, `tokens`.
//!
//! Modules: [`sqlite`] and [`postgres`] (the two stores, one implementation expanded for each
//! driver from `imp`), [`sql`] (filter, sort and paging compilation), [`row`] (the columns a
//! resource's row derives from it) and [`chain`] (the change log's hash chain). Open a store with
//! [`open_store`].

pub mod chain;
mod imp;
pub mod postgres;
pub mod row;
pub mod sql;
pub mod sqlite;

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
    /// Stored data that does not decode (corruption or a bug).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
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
            StoreError::Database(err) => {
                tracing::error!(error = %err, "database error");
                scim_core::Error::internal()
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt stored data");
                scim_core::Error::internal()
            }
        }
    }
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

/// A change-log record as stored (the outbox row).
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
    /// `create`, `replace`, `patch` or `delete`.
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
}

/// Opens the store a database URL names, creating (SQLite) and migrating it:
/// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite:…` or a plain file path is SQLite.
pub async fn open_store(database_url: &str) -> Result<Arc<dyn Store>> {
    let lower = database_url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(database_url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(database_url).await?))
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
/// ([`Resources`], [`Tenants`], [`ChangeLog`]) plus administration. Both databases implement it
/// with one shared implementation (`imp.rs`).
///
/// A component that needs one capability takes that trait (the service's write pipeline takes
/// [`Resources`]), so a test double or a wrapper implements a handful of methods, not all of
/// them.
#[async_trait]
pub trait Store: Resources + Tenants + ChangeLog + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
    /// Connection-pool figures, when the store has a pool.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
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
}

/// The change log (the outbox): read in order, and its hash chain verified.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// Change records of a tenant with `seq > after`, in order, at most `limit`.
    async fn changes_after(
        &self,
        tenant: &str,
        after: u64,
        limit: u64,
    ) -> Result<Vec<ChangeRecord>>;

    /// Recomputes the tenant's hash chain and reports altered or missing records.
    async fn verify_chain(&self, tenant: &str) -> Result<ChainReport>;
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
