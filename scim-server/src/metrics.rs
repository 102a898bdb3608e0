//! Prometheus metrics: HTTP requests and latencies by matched route, store operation latencies,
//! and database readiness. Rendered at `/metrics` from the process-wide recorder.

use crate::store::{
    ChainReport, ChangeRecord, Load, Page, Store, Tenant, TokenRecord, WriteContext,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use scim_core::change::Change;
use scim_core::patch::MembershipDelta;
use scim_core::query::ListQuery;
use scim_core::resource::Resource;
use scim_core::schema::ResourceType;
use std::sync::OnceLock;
use time::OffsetDateTime;

/// Requests answered, by method, matched route and status.
pub const HTTP_REQUESTS: &str = "scim_http_requests_total";
/// Request latency in seconds, by method and matched route.
pub const HTTP_DURATION: &str = "scim_http_request_duration_seconds";
/// Requests refused by the rate limiter, by tenant.
pub const RATE_LIMITED: &str = "scim_rate_limited_total";
/// Store call latency in seconds, by operation and outcome.
pub const STORE_DURATION: &str = "scim_store_operation_duration_seconds";
/// 1 when the last readiness probe reached the database, else 0.
pub const DB_UP: &str = "scim_database_up";
/// Database connections open (idle or in use).
pub const DB_POOL_SIZE: &str = "scim_database_pool_connections";
/// Database connections idle.
pub const DB_POOL_IDLE: &str = "scim_database_pool_idle_connections";
/// Changes in the outbox not yet taken up by the Graph bridge, by tenant.
pub const OUTBOX_LAG: &str = "scim_outbox_lag";
/// Users with pending Graph bridge work.
pub const BRIDGE_PENDING: &str = "scim_bridge_pending_users";
/// Dead letters of the Graph bridge.
pub const BRIDGE_DEAD_LETTERS: &str = "scim_bridge_dead_letters";
/// Group PATCH retries after a concurrent write (compare-and-swap lost).
pub const PATCH_RETRIES: &str = "scim_patch_retries_total";

/// Records the store's connection-pool figures (called before each scrape).
pub fn record_pool(store: &dyn Store) {
    if let Some(pool) = store.pool_status() {
        metrics::gauge!(DB_POOL_SIZE).set(f64::from(pool.size));
        metrics::gauge!(DB_POOL_IDLE).set(f64::from(pool.idle));
    }
}

/// Records the Graph bridge's outbox positions: per tenant, how many changes the bridge has not
/// yet taken up (`head_seq - last_seq`), plus its pending work and dead letters. Call it with
/// `BridgeStore::status()` before rendering, wherever the bridge runs.
pub fn record_outbox(status: &scim_graph_bridge::store::Status) {
    for cursor in &status.cursors {
        let lag = (cursor.head_seq - cursor.last_seq).max(0);
        metrics::gauge!(OUTBOX_LAG, "tenant" => cursor.tenant_id.clone()).set(lag as f64);
    }
    metrics::gauge!(BRIDGE_PENDING).set(status.pending as f64);
    metrics::gauge!(BRIDGE_DEAD_LETTERS).set(status.dead_letters as f64);
}

/// The handle that renders the Prometheus text format.
///
/// The `metrics` facade has one recorder per process, so the recorder is installed once and the
/// handle shared; when another recorder is already installed (an embedding application's), a
/// detached recorder is used and `/metrics` shows only what reaches it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets(&[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ])
                    .unwrap_or_else(|_| PrometheusBuilder::new())
            };
            match builder().install_recorder() {
                Ok(handle) => handle,
                Err(_) => builder().build_recorder().handle(),
            }
        })
        .clone()
}

/// A [`Store`] that records each call's latency and outcome in [`STORE_DURATION`]
/// (`operation`, `outcome` = `ok` or `error`), wrapping any other store.
pub struct MeteredStore(pub std::sync::Arc<dyn Store>);

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MeteredStore")
    }
}

async fn timed<T>(
    operation: &'static str,
    fut: impl std::future::Future<Output = crate::store::Result<T>>,
) -> crate::store::Result<T> {
    let start = std::time::Instant::now();
    let result = fut.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(crate::store::StoreError::Database(_) | crate::store::StoreError::Corrupt(_)) => {
            "error"
        }
        Err(_) => "rejected",
    };
    metrics::histogram!(STORE_DURATION, "operation" => operation, "outcome" => outcome)
        .record(start.elapsed().as_secs_f64());
    result
}

#[async_trait::async_trait]
impl Store for MeteredStore {
    async fn migrate(&self) -> crate::store::Result<()> {
        timed("migrate", self.0.migrate()).await
    }
    async fn ping(&self) -> crate::store::Result<()> {
        timed("ping", self.0.ping()).await
    }
    fn pool_status(&self) -> Option<crate::store::PoolStatus> {
        self.0.pool_status()
    }
    async fn tenants_with_changes(&self) -> crate::store::Result<Vec<String>> {
        timed("tenants_with_changes", self.0.tenants_with_changes()).await
    }
    async fn purge_expired(&self, before: time::OffsetDateTime) -> crate::store::Result<u64> {
        timed("purge_expired", self.0.purge_expired(before)).await
    }
    async fn created_by_request(
        &self,
        tenant: &str,
        rt: &scim_core::schema::ResourceType,
        principal: &str,
        request_id: &str,
    ) -> crate::store::Result<Option<String>> {
        timed(
            "created_by_request",
            self.0.created_by_request(tenant, rt, principal, request_id),
        )
        .await
    }
    async fn claim_assertion_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires: time::OffsetDateTime,
    ) -> crate::store::Result<bool> {
        timed(
            "claim_assertion_jti",
            self.0.claim_assertion_jti(issuer, jti, expires),
        )
        .await
    }
    async fn create_tenant(&self, tenant: &Tenant) -> crate::store::Result<()> {
        timed("create_tenant", self.0.create_tenant(tenant)).await
    }
    async fn tenant(&self, id: &str) -> crate::store::Result<Option<Tenant>> {
        timed("tenant", self.0.tenant(id)).await
    }
    async fn list_tenants(&self) -> crate::store::Result<Vec<Tenant>> {
        timed("list_tenants", self.0.list_tenants()).await
    }
    async fn insert_token(&self, token: &TokenRecord) -> crate::store::Result<()> {
        timed("insert_token", self.0.insert_token(token)).await
    }
    async fn token_by_hash(&self, secret_hash: &str) -> crate::store::Result<Option<TokenRecord>> {
        timed("token_by_hash", self.0.token_by_hash(secret_hash)).await
    }
    async fn list_tokens(&self, tenant: Option<&str>) -> crate::store::Result<Vec<TokenRecord>> {
        timed("list_tokens", self.0.list_tokens(tenant)).await
    }
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> crate::store::Result<bool> {
        timed("revoke_token", self.0.revoke_token(id, at)).await
    }
    async fn create(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        resource: &Resource,
        change: &Change,
    ) -> crate::store::Result<()> {
        timed("create", self.0.create(ctx, rt, resource, change)).await
    }
    async fn get(
        &self,
        tenant: &str,
        rt: &ResourceType,
        id: &str,
        load: Load,
    ) -> crate::store::Result<Option<Resource>> {
        timed("get", self.0.get(tenant, rt, id, load)).await
    }
    async fn update(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        resource: &Resource,
        expected_version: u64,
        members: Option<&MembershipDelta>,
        change: &Change,
    ) -> crate::store::Result<()> {
        timed(
            "update",
            self.0
                .update(ctx, rt, resource, expected_version, members, change),
        )
        .await
    }
    async fn delete(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        id: &str,
        expected_version: Option<u64>,
        change: &Change,
    ) -> crate::store::Result<()> {
        timed(
            "delete",
            self.0.delete(ctx, rt, id, expected_version, change),
        )
        .await
    }
    async fn list(
        &self,
        tenant: &str,
        rt: &ResourceType,
        query: &ListQuery,
        load: Load,
    ) -> crate::store::Result<Page> {
        timed("list", self.0.list(tenant, rt, query, load)).await
    }
    async fn find_by_external_id(
        &self,
        tenant: &str,
        rt: &ResourceType,
        external_id: &str,
    ) -> crate::store::Result<Option<Resource>> {
        timed(
            "find_by_external_id",
            self.0.find_by_external_id(tenant, rt, external_id),
        )
        .await
    }
    async fn existing_ids(
        &self,
        tenant: &str,
        rt: &ResourceType,
        ids: &[String],
    ) -> crate::store::Result<Vec<String>> {
        timed("existing_ids", self.0.existing_ids(tenant, rt, ids)).await
    }
    async fn changes_after(
        &self,
        tenant: &str,
        after: u64,
        limit: u64,
    ) -> crate::store::Result<Vec<ChangeRecord>> {
        timed("changes_after", self.0.changes_after(tenant, after, limit)).await
    }
    async fn verify_chain(&self, tenant: &str) -> crate::store::Result<ChainReport> {
        timed("verify_chain", self.0.verify_chain(tenant)).await
    }
}
