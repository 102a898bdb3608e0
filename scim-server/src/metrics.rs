//! Prometheus metrics: HTTP requests and latencies by matched route, store operation latencies,
//! and database readiness. Rendered at `/metrics` from the process-wide recorder.

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
/// Group PATCH retries after a concurrent write (compare-and-swap lost).
pub const PATCH_RETRIES: &str = "scim_patch_retries_total";

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
