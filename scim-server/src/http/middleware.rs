//! Request middleware: authentication with the per-tenant rate limit, the request timeout, and
//! request metrics.

use super::error::ApiError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};

/// Authenticates the request, records the tenant in the request's span, applies the tenant's
/// rate limit and hands the [`crate::auth::Principal`] to the handler. Failures are 401 with
/// `WWW-Authenticate: Bearer`, or 429 with `Retry-After`.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match state.authenticator.authenticate(req.headers()).await {
        Ok(p) => p,
        // 401 with `WWW-Authenticate: Bearer`, or 503 when the credential could not be checked.
        Err(e) => return e.to_response(),
    };
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    if let Err(retry_after) = state.rate_limiter.check(&principal.tenant) {
        metrics::counter!(crate::metrics::RATE_LIMITED, "tenant" => principal.tenant.clone())
            .increment(1);
        return ApiError::rate_limited(retry_after).into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Answers 503 (a SCIM error) when the handler takes longer than the configured timeout.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::from(scim_core::Error::new(
            503,
            None,
            format!("the request took longer than {} s", limit.as_secs()),
        ))
        .into_response(),
    }
}

/// Counts requests and observes latency by method, matched route and status.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(crate::metrics::HTTP_REQUESTS,
        "method" => method.clone(), "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!(crate::metrics::HTTP_DURATION, "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
