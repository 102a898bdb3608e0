//! Operational endpoints outside the SCIM base path, without authentication: liveness,
//! readiness, Prometheus metrics, the OpenAPI document and an offline page linking to it.

use crate::state::AppState;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
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
