//! Prometheus metrics: HTTP requests and latencies by matched route, store operation latencies,
//! and database readiness. Rendered at `/metrics` from the process-wide recorder.

use crate::store::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

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
/// PostgreSQL: the hot reads' shared connections open (apart from the pool's).
pub const DB_READ_CONNECTIONS: &str = "scim_database_read_connections";
/// PostgreSQL: the one-statement writes' shared connections open (apart from the pool's).
pub const DB_WRITE_CONNECTIONS: &str = "scim_database_write_connections";
/// Changes in the outbox not yet taken up by the Graph bridge, by tenant.
pub const OUTBOX_LAG: &str = "scim_outbox_lag";
/// Users with pending Graph bridge work.
pub const BRIDGE_PENDING: &str = "scim_bridge_pending_users";
/// Dead letters of the Graph bridge.
pub const BRIDGE_DEAD_LETTERS: &str = "scim_bridge_dead_letters";
/// Active accounts without a sign-in for the report's days, by tenant (the last hygiene report).
pub const GOV_STALE: &str = "scim_governance_stale_accounts";
/// Orphaned Graph accounts, by tenant (the last hygiene report).
pub const GOV_ORPHANED: &str = "scim_governance_orphaned_accounts";
/// Users whose Graph state drifted from the rules, by tenant (the last hygiene report).
pub const GOV_DRIFT: &str = "scim_governance_drifted_users";
/// Holders of catalog roles, by tenant and how they got the role (`rule`, `jit`,
/// `rule_and_jit`, `outside`) (the last hygiene report).
pub const GOV_PRIVILEGED: &str = "scim_governance_privileged_role_holders";
/// Time-bound grants by status, every tenant.
pub const GOV_JIT_GRANTS: &str = "scim_governance_jit_grants";
/// Leaver plans the Graph bridge's mass-change guard holds for an operator.
pub const BRIDGE_HELD: &str = "scim_bridge_held_plans";
/// Times a tenant's leaver actions crossed the mass-change guard's limit, by tenant (the
/// alert: a rate above zero means plans are being held).
pub const BRIDGE_GUARD_TRIPS: &str = "scim_bridge_guard_trips_total";
/// Outcome callback deliveries waiting (pending) or given up (dead), by status.
pub const CALLBACK_DELIVERIES: &str = "scim_callback_deliveries";
/// SQLite: writes per transaction the writer task committed (group commit; 1 when writes
/// arrive one at a time).
pub const SQLITE_WRITES_PER_COMMIT: &str = "scim_sqlite_writes_per_commit";
/// SQLite: hot reads by where they ran (`store/inline_reads.rs`): `answered` on the request's
/// thread; `over_budget` interrupted there and `failed` (an error there), both then run on
/// sqlx's threads; `skipped`, sent to sqlx's threads directly (a statement remembered as over
/// budget, or such reads off after a connection could not be opened).
pub const SQLITE_INLINE_READS: &str = "scim_sqlite_inline_reads_total";
/// Write retries after a concurrent write (compare-and-swap lost), of any write of the
/// pipeline (the name is kept from when only group PATCHes retried).
pub const PATCH_RETRIES: &str = "scim_patch_retries_total";

/// Records the store's connection-pool figures (called before each scrape).
pub fn record_pool(store: &dyn Store) {
    if let Some(pool) = store.pool_status() {
        metrics::gauge!(DB_POOL_SIZE).set(f64::from(pool.size));
        metrics::gauge!(DB_POOL_IDLE).set(f64::from(pool.idle));
        if let Some(reads) = pool.reads {
            metrics::gauge!(DB_READ_CONNECTIONS).set(f64::from(reads));
        }
        if let Some(writes) = pool.writes {
            metrics::gauge!(DB_WRITE_CONNECTIONS).set(f64::from(writes));
        }
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
    metrics::gauge!(BRIDGE_HELD).set(status.held as f64);
}

/// How often the recorder's pending histogram samples are folded into their buckets.
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The handle that renders the Prometheus text format.
///
/// The `metrics` facade has one recorder per process, so the recorder is installed once and the
/// handle shared; when another recorder is already installed (an embedding application's), a
/// detached recorder is used and `/metrics` shows only what reaches it.
///
/// A recorder installed this way keeps every histogram sample (about 20 bytes with its block's
/// bookkeeping, measured by the test in `src/main.rs`; a request records two
/// or more) until something drains them: a scrape of `/metrics`, or the upkeep the exporter
/// only runs itself when it also owns the HTTP listener. A server nobody scraped grew by about
/// 40 bytes per request, for good (`docs/benchmarks.md`, "Memory that grew with requests"). So
/// the first call starts a thread of its own that runs the upkeep every [`UPKEEP_INTERVAL`]: a
/// thread, not a task, because the handle outlives any one runtime (tests, embedders).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = recorder_handle();
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = started {
                // Scrapes still drain the samples; without them memory grows as before.
                tracing::warn!(error = %e, "the metrics upkeep thread could not start");
            }
            handle
        })
        .clone()
}

/// A handle to the process's recorder (installed now if no recorder is), else to a detached one.
fn recorder_handle() -> PrometheusHandle {
    let builder = || {
        PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new())
    };
    match builder().install_recorder() {
        Ok(handle) => handle,
        Err(_) => builder().build_recorder().handle(),
    }
}

/// Runs one store call and records its latency and outcome in [`STORE_DURATION`]
/// (`operation`, `outcome` = `ok`, `rejected` (a refusal such as a lost compare-and-swap) or
/// `error`). The shared store implementation wraps every call of both databases in it, so
/// metering needs no wrapper re-spelling the store's methods.
pub(crate) async fn timed<T>(
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
