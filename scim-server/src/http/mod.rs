//! The HTTP layer: one route list feeds both the axum router and the OpenAPI document
//! (utoipa-axum), thin handlers over [`crate::service`], SCIM error bodies for every failure, and
//! the tower-http layers (request id, trace with matched route and tenant, panics, compression,
//! concurrency, timeout, body limit).

pub mod discovery;
pub mod docs;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod ops;
pub mod protocol;
pub mod resources;
pub mod response;

use crate::config::LimitsConfig;
use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::response::IntoResponse;
use axum::routing::get;
use http::Request;
use std::sync::Arc;
use std::time::Duration;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The SCIM endpoints, relative to the base path.
fn scim_routes(limits: &LimitsConfig) -> OpenApiRouter<AppState> {
    let bulk = OpenApiRouter::new()
        .routes(routes!(protocol::bulk))
        .layer(DefaultBodyLimit::max(limits.max_bulk_payload_bytes));
    OpenApiRouter::new()
        .routes(routes!(resources::list_users, resources::create_user))
        .routes(routes!(resources::search_users))
        .routes(routes!(
            resources::get_user,
            resources::replace_user,
            resources::patch_user,
            resources::delete_user
        ))
        .routes(routes!(resources::list_groups, resources::create_group))
        .routes(routes!(resources::search_groups))
        .routes(routes!(
            resources::get_group,
            resources::replace_group,
            resources::patch_group,
            resources::delete_group
        ))
        .routes(routes!(protocol::root_search))
        .routes(routes!(protocol::me))
        .routes(routes!(discovery::service_provider_config))
        .routes(routes!(discovery::resource_types))
        .routes(routes!(discovery::resource_type))
        .routes(routes!(discovery::schemas))
        .routes(routes!(discovery::schema))
        .merge(bulk)
}

/// The unauthenticated operational endpoints.
fn ops_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

fn assemble(
    base_path: &str,
    scim: OpenApiRouter<AppState>,
    ops: OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let root = OpenApiRouter::with_openapi(docs::ApiDoc::openapi());
    let root = if base_path == "/" || base_path.is_empty() {
        root.merge(scim)
    } else {
        root.nest(base_path, scim)
    };
    root.merge(ops)
}

/// The OpenAPI document for a base path (what `/openapi.json` serves).
pub fn openapi(base_path: &str) -> utoipa::openapi::OpenApi {
    assemble(
        base_path,
        scim_routes(&LimitsConfig::default()),
        ops_routes(),
    )
    .into_openapi()
}

/// The complete application: SCIM endpoints under the configured base path (authenticated,
/// rate limited per tenant), `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let limits = settings.limits;
    let scim = scim_routes(&limits).route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::authenticate,
    ));
    let (router, api) = assemble(&settings.base_path, scim, ops_routes()).split_for_parts();
    let api_json: Arc<str> = api.to_pretty_json().unwrap_or_else(|_| "{}".into()).into();
    let router = router
        .route(
            "/openapi.json",
            get(move || {
                let json = api_json.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/docs", get(ops::docs_page))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state);
    let timeout = Duration::from_secs(limits.request_timeout_seconds);
    router
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            middleware::timeout,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            error::ApiError::from(scim_core::Error::internal()).into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|m| m.as_str())
                        .unwrap_or("unmatched");
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route,
                        request_id,
                        tenant = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(
                    |res: &http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = res.status().as_u16(),
                            latency_ms = latency.as_secs_f64() * 1000.0,
                            "request finished"
                        );
                    },
                )
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
