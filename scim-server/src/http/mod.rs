//! The HTTP layer: one route list feeds both the axum router and the OpenAPI document
//! (utoipa-axum), thin handlers over [`crate::service`], SCIM error bodies for every failure, and
//! the tower-http layers (request id, trace with matched route and tenant, panics, compression,
//! concurrency, timeout, body limit).

pub mod discovery;
pub mod docs;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod oauth;
pub mod ops;
pub mod protocol;
pub mod reference;
pub mod request_docs;
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
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::RequestBodyTimeoutLayer;
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

/// The endpoints outside the base path that need no bearer token: the operational endpoints and
/// `POST /oauth/token` (which has its own client-address rate limit).
fn ops_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(oauth::token))
}

fn assemble(
    base_path: &str,
    scim: OpenApiRouter<AppState>,
    inbound: OpenApiRouter<AppState>,
    governance: OpenApiRouter<AppState>,
    ops: OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let root = OpenApiRouter::with_openapi(docs::ApiDoc::openapi());
    let root = if base_path == "/" || base_path.is_empty() {
        root.merge(scim)
    } else {
        root.nest(base_path, scim)
    };
    root.merge(inbound).merge(governance).merge(ops)
}

/// The OpenAPI document for a base path (what `/openapi.json` serves).
pub fn openapi(base_path: &str) -> utoipa::openapi::OpenApi {
    let mut api = assemble(
        base_path,
        scim_routes(&LimitsConfig::default()),
        crate::inbound::http::routes().merge(crate::inbound::http::signed_routes()),
        crate::governance::http::routes(),
        ops_routes(),
    )
    .into_openapi();
    docs::document_common_responses(&mut api);
    api
}

/// The complete application: SCIM endpoints under the configured base path (authenticated,
/// rate limited per tenant), `POST /oauth/token`, `/healthz`, `/readyz`, `/metrics`,
/// `/openapi.json` and `/docs`.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes of the embedding application (served behind the same layers,
/// without bearer authentication).
pub fn router_with(state: AppState, extra: Router) -> Router {
    // Install the metrics recorder before the first request records anything.
    let _ = crate::metrics::handle();
    let limits = state.settings.limits;
    with_layers(routes(state).merge(extra), &limits)
}

/// Every route the binary serves, from the one route list, plus the OpenAPI document and the
/// `/docs` page generated from it.
fn routes(state: AppState) -> Router {
    let scim = scim_routes(&state.settings.limits).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), middleware::authenticate),
    );
    // The HR intake (`/inbound/v1/…`): the same credentials as SCIM; HR events are
    // authenticated by their signature instead.
    let inbound = crate::inbound::http::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        .merge(crate::inbound::http::signed_routes());
    // Governance (`/governance/v1/…`): the same credentials as SCIM.
    let governance = crate::governance::http::routes().route_layer(
        axum::middleware::from_fn_with_state(state.clone(), middleware::authenticate),
    );
    let (router, mut api) = assemble(
        &state.settings.base_path,
        scim,
        inbound,
        governance,
        ops_routes(),
    )
    .split_for_parts();
    docs::document_common_responses(&mut api);
    let api_json: Arc<str> = api.to_pretty_json().unwrap_or_else(|_| "{}".into()).into();
    router
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
        .merge(reference::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}

/// The tower layers around every route: body limit, timeout, global concurrency, metrics,
/// compression, panics as SCIM errors, request ids and the trace span (innermost first).
fn with_layers(router: Router, limits: &LimitsConfig) -> Router {
    let timeout = Duration::from_secs(limits.request_timeout_seconds);
    router
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        // A client that stops sending its body mid-way frees its worker after this pause
        // (`ScimJson` answers 408), not after the whole request timeout.
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            limits.body_read_timeout_seconds,
        )))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            middleware::timeout,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(
            |panic: Box<dyn std::any::Any + Send>| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                crate::fault::record(format!("panic: {message}"));
                error::ApiError::from(scim_core::Error::internal()).into_response()
            },
        ))
        .layer(axum::middleware::from_fn(error::log_failures))
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
        .layer(SetRequestIdLayer::x_request_id(TimeOrderedRequestId))
}

/// Gives a request without an `X-Request-Id` a time-ordered one (UUIDv7): the change log
/// indexes its records by request id, and a random id put each write's entry on a random page
/// of that index, one more page written per write (docs/benchmarks.md, "Ids in creation
/// order").
#[derive(Clone, Copy)]
struct TimeOrderedRequestId;

impl MakeRequestId for TimeOrderedRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    //! Routing, layers and rejections, over an empty in-memory SQLite store (the full behaviour
    //! is covered by `tests/it/http.rs`). A real store, not a hand-written double: a double
    //! spelling out every `Store` method has to change with each new capability.

    use super::*;
    use crate::config::{Config, SecretString};
    use crate::store::*;
    use axum::body::Body;
    use http::{Method, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use time::OffsetDateTime;
    use tower::ServiceExt;

    const TOKEN: &str = "unit-test-token-0123456789";

    async fn app(mut config: Config) -> Router {
        config.token = Some(SecretString::new(TOKEN));
        let store = open_store("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let clock: Arc<dyn crate::clock::Clock> =
            Arc::new(crate::clock::ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        let auth = crate::auth::AuthService::from_config(
            &crate::auth::AuthConfig::default(),
            crate::auth::token_store(store.clone()),
            clock.clone(),
        )
        .unwrap()
        .with_env_token("default", TOKEN);
        router(AppState::with_clock(&config, store, Arc::new(auth), clock))
    }

    async fn send(
        app: &Router,
        method: Method,
        uri: &str,
        token: bool,
        body: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if token {
            b = b.header("authorization", format!("Bearer {TOKEN}"));
        }
        let req = match body {
            Some(text) => b
                .header("content-type", "application/scim+json")
                .body(Body::from(text.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, body)
    }

    fn assert_scim_error(status: StatusCode, headers: &http::HeaderMap, body: &Value, want: u16) {
        assert_eq!(status.as_u16(), want, "{body}");
        assert_eq!(headers["content-type"], "application/scim+json", "{body}");
        assert_eq!(body["schemas"], json!([scim_core::error::ERROR_URN]));
        assert_eq!(body["status"], json!(want.to_string()));
    }

    #[tokio::test]
    async fn every_failure_is_a_scim_error() {
        let mut config = Config::default();
        config.limits.max_body_bytes = 64;
        let app = app(config).await;
        // (method, uri, with token, body, status)
        let cases: &[(Method, &str, bool, Option<&str>, u16)] = &[
            (Method::GET, "/scim/v2/Users", false, None, 401),
            (Method::GET, "/scim/v2/Nope", true, None, 404),
            (Method::GET, "/scim/v2/Users/x", true, None, 404),
            (Method::DELETE, "/scim/v2/Users", true, None, 405),
            (Method::POST, "/scim/v2/Users", true, Some("{"), 400),
            (
                Method::POST,
                "/scim/v2/Users",
                true,
                Some(&"x".repeat(100)),
                413,
            ),
            (Method::GET, "/scim/v2/Me", true, None, 501),
            (Method::GET, "/scim/v2/Schemas/urn:nope", true, None, 404),
        ];
        for (method, uri, token, body, want) in cases {
            let (status, headers, json) = send(&app, method.clone(), uri, *token, *body).await;
            assert_scim_error(status, &headers, &json, *want);
            if *want == 401 {
                assert!(
                    headers["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .starts_with("Bearer")
                );
            }
        }
    }

    #[tokio::test]
    async fn rate_limit_is_per_tenant_with_retry_after() {
        let mut config = Config::default();
        config.rate_limit.requests_per_second = 1.0;
        config.rate_limit.burst = 1;
        let app = app(config).await;
        let (status, _, _) = send(
            &app,
            Method::GET,
            "/scim/v2/ServiceProviderConfig",
            true,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, headers, body) = send(
            &app,
            Method::GET,
            "/scim/v2/ServiceProviderConfig",
            true,
            None,
        )
        .await;
        assert_scim_error(status, &headers, &body, 429);
        assert_eq!(headers["retry-after"], "1");
    }

    #[tokio::test]
    async fn default_limits_pass_a_validator_burst_and_stop_a_flood() {
        // The test clock stands still: every request arrives at the same instant.
        let app = app(Config::default()).await;
        for i in 0..300 {
            let (status, _, body) =
                send(&app, Method::GET, "/scim/v2/ResourceTypes", true, None).await;
            assert_eq!(status, StatusCode::OK, "request {i}: {body}");
        }
        let mut refused = None;
        for _ in 0..Config::default().rate_limit.burst {
            let (status, headers, body) =
                send(&app, Method::GET, "/scim/v2/ResourceTypes", true, None).await;
            if status != StatusCode::OK {
                refused = Some((status, headers, body));
                break;
            }
        }
        let (status, headers, body) = refused.expect("a flood is refused");
        assert_scim_error(status, &headers, &body, 429);
        assert!(
            headers["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        assert_eq!(body["scimType"], json!(null), "{body}");
    }

    #[tokio::test]
    async fn repeated_failed_authentication_turns_into_429() {
        let app = app(Config::default()).await;
        let burst = Config::default().rate_limit.failed_auth_burst;
        for _ in 0..burst {
            let (status, _, _) = send(&app, Method::GET, "/scim/v2/Users", false, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, headers, body) = send(&app, Method::GET, "/scim/v2/Users", false, None).await;
        assert_scim_error(status, &headers, &body, 429);
        assert!(headers.contains_key("retry-after"));
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("failed authentications")
        );
        // A good credential from the same address is not locked out.
        let (status, _, _) = send(&app, Method::GET, "/scim/v2/ResourceTypes", true, None).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn token_endpoint_has_its_own_limit_and_is_documented() {
        let app = app(Config::default()).await;
        // No OAuth clients configured: the endpoint answers 404, but still counts requests.
        let burst = Config::default().rate_limit.token_burst;
        for _ in 0..burst {
            let (status, _, _) = send(&app, Method::POST, "/oauth/token", false, Some("")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (status, headers, body) =
            send(&app, Method::POST, "/oauth/token", false, Some("")).await;
        assert_scim_error(status, &headers, &body, 429);
        let (_, _, api) = send(&app, Method::GET, "/openapi.json", false, None).await;
        assert!(api["paths"]["/oauth/token"]["post"].is_object());
        let users = &api["paths"]["/scim/v2/Users"];
        for status in ["401", "403", "429"] {
            assert!(users["post"]["responses"][status].is_object(), "{status}");
        }
        assert!(users["get"]["responses"]["403"].is_null());
    }

    #[tokio::test]
    async fn discovery_and_operational_endpoints() {
        let app = app(Config::default()).await;
        let (status, headers, spc) = send(
            &app,
            Method::GET,
            "/scim/v2/ServiceProviderConfig",
            true,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/scim+json");
        assert_eq!(spc["bulk"]["maxOperations"], 1000);
        assert_eq!(
            spc["meta"]["location"],
            "http://localhost/scim/v2/ServiceProviderConfig"
        );
        let (_, _, schemas) = send(&app, Method::GET, "/scim/v2/Schemas", true, None).await;
        assert_eq!(schemas["totalResults"], 3);
        let (_, _, rts) = send(
            &app,
            Method::GET,
            "/scim/v2/ResourceTypes/Group",
            true,
            None,
        )
        .await;
        assert_eq!(rts["endpoint"], "/Groups");
        for path in ["/healthz", "/readyz", "/openapi.json", "/docs", "/metrics"] {
            let (status, headers, _) = send(&app, Method::GET, path, false, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(headers.contains_key("x-request-id"), "{path}");
        }
        let (_, _, api) = send(&app, Method::GET, "/openapi.json", false, None).await;
        assert!(api["paths"]["/scim/v2/Users/{id}"]["patch"].is_object());
    }

    #[tokio::test]
    async fn slow_requests_time_out_with_a_scim_error() {
        let slow = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                std::time::Duration::from_millis(20),
                middleware::timeout,
            ));
        let res = slow
            .oneshot(Request::builder().uri("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_scim_error(status, &headers, &body, 503);
    }

    #[tokio::test]
    async fn request_ids_are_echoed() {
        let app = app(Config::default()).await;
        let req = Request::builder()
            .uri("/healthz")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "abc-123");
    }

    /// The server's own ids (a resource's, a request's without one) are UUIDv7: each later
    /// than the ones before, so the indexes they lead grow at their end (see
    /// `service::write::new_resource_id`).
    #[tokio::test]
    async fn ids_the_server_gives_are_in_creation_order() {
        let app = app(Config::default()).await;
        let mut resource_ids = Vec::new();
        let mut request_ids = Vec::new();
        for i in 0..8 {
            let body = format!(r#"{{"userName": "user-{i}"}}"#);
            let (status, headers, body) =
                send(&app, Method::POST, "/scim/v2/Users", true, Some(&body)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            resource_ids.push(body["id"].as_str().unwrap().to_string());
            request_ids.push(headers["x-request-id"].to_str().unwrap().to_string());
        }
        for ids in [&resource_ids, &request_ids] {
            for id in ids.iter() {
                let uuid = uuid::Uuid::parse_str(id).unwrap();
                assert_eq!(uuid.get_version_num(), 7, "{id}");
            }
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(&sorted, ids, "not in creation order");
        }
        // Lists are in id order: the users come back as they were created.
        let (_, _, list) = send(&app, Method::GET, "/scim/v2/Users", true, None).await;
        let names: Vec<&str> = list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap())
            .collect();
        let created: Vec<String> = (0..8).map(|i| format!("user-{i}")).collect();
        assert_eq!(names, created);
    }
}
