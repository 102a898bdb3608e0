//! Operational endpoints outside the SCIM base path, without authentication: liveness,
//! readiness and Prometheus metrics (the OpenAPI document and `/docs` are in [`super::reference`]).

use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "Operations",
    responses((status = 200, description = "the process is alive", body = Object, content_type = "application/json")))]
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "Operations",
    responses(
        (status = 200, description = "ready to serve", body = Object, content_type = "application/json"),
        (status = 503, description = "the database does not answer", body = Object, content_type = "application/json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => {
            metrics::gauge!(crate::metrics::DB_UP).set(1.0);
            axum::Json(json!({"status": "ready"})).into_response()
        }
        Err(e) => {
            metrics::gauge!(crate::metrics::DB_UP).set(0.0);
            tracing::warn!(error = %e, "readiness probe: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    json!({"status": "unavailable", "detail": "the database does not answer"}),
                ),
            )
                .into_response()
        }
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
