//! Operational endpoints outside the SCIM base path, without authentication: liveness,
//! readiness, Prometheus metrics, the OpenAPI document and an offline page linking to it.

use crate::state::AppState;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use std::time::{Duration, Instant};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "Operations",
    responses((status = 200, description = "the process is alive", body = Object, content_type = "application/json")))]
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// The database's health as last observed, so `/readyz` answers at once from memory instead of
/// waiting on a database that does not answer. [`crate::server::serve`] refreshes it every
/// [`DbHealth::PROBE_INTERVAL`]; a reading older than [`DbHealth::MAX_AGE`] is not trusted, and
/// the probe that replaces it gives up after [`DbHealth::PROBE_TIMEOUT`].
#[derive(Debug, Default)]
pub struct DbHealth {
    last: std::sync::Mutex<Option<(Instant, bool)>>,
}

impl DbHealth {
    /// How often the server probes the database.
    pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
    /// How long one probe may take before the database counts as down.
    pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);
    /// How old a reading may be and still answer `/readyz`.
    pub const MAX_AGE: Duration = Duration::from_secs(2);

    /// Pings the store (at most [`Self::PROBE_TIMEOUT`]) and records the result.
    pub async fn probe(&self, store: &dyn crate::store::Store) -> bool {
        let up = match tokio::time::timeout(Self::PROBE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness probe: database unavailable");
                false
            }
            Err(_) => {
                tracing::warn!("readiness probe: the database did not answer in time");
                false
            }
        };
        metrics::gauge!(crate::metrics::DB_UP).set(if up { 1.0 } else { 0.0 });
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), up));
        }
        up
    }

    /// The last reading, if recent enough.
    pub fn current(&self) -> Option<bool> {
        let last = *self.last.lock().ok()?;
        last.filter(|(at, _)| at.elapsed() <= Self::MAX_AGE)
            .map(|(_, up)| up)
    }
}

// Answered from the last probe's cached reading, or by a probe bounded to under a second when
// that reading is stale; 503 carries `Retry-After`.
/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "Operations",
    responses(
        (status = 200, description = "ready to serve", body = Object, content_type = "application/json"),
        (status = 503, description = "the database does not answer", body = Object, content_type = "application/json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let up = match state.db_health.current() {
        Some(up) => up,
        None => state.db_health.probe(state.store.as_ref()).await,
    };
    if up {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "detail": "the database does not answer"})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(5u64));
        response
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    crate::metrics::record_pool(state.store.as_ref());
    let body = crate::metrics::handle().render();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A page that links to the OpenAPI document (no external assets; works offline).
pub async fn docs_page() -> Html<&'static str> {
    Html(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>scim-server API</title></head>\
         <body><h1>scim-server API</h1>\
         <p>The OpenAPI 3.1 document is at <a href=\"/openapi.json\">/openapi.json</a>. \
         Load it into any OpenAPI viewer or client generator.</p>\
         <p>Resource schemas are served by the SCIM endpoint itself at <code>/Schemas</code>.</p>\
         </body></html>",
    )
}
