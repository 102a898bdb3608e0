//! Request middleware: authentication with the per-tenant and failed-authentication rate
//! limits, the request timeout, and request metrics.

use super::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Authenticates the request, records the tenant in the request's span, applies the tenant's
/// rate limit and hands the [`crate::auth::Principal`] to the handler. Failures are 401 with
/// `WWW-Authenticate: Bearer` and, while Basic credentials exist, `Basic` (429 once the client address has failed too often), or 429 with
/// `Retry-After` when the tenant is over its limit.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match state.authenticator.authenticate(req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            // 401 with `WWW-Authenticate: Bearer`, or 503 when the credential could not be
            // checked; a client that keeps failing is told to back off instead.
            let client = client_address(&req, state.settings.trust_forwarded_headers);
            if let Err(retry_after) = state.rate_limiter.check_failed_auth(client) {
                metrics::counter!(crate::metrics::RATE_LIMITED, "tenant" => "").increment(1);
                return rate_limited(
                    retry_after,
                    "too many failed authentications from this address",
                );
            }
            let mut response = e.to_response();
            crate::auth::challenge_basic_too(state.authenticator.as_ref(), &mut response).await;
            return response;
        }
    };
    tracing::Span::current().record("tenant", principal.tenant());
    if let Err(retry_after) = state.rate_limiter.check(principal.tenant()) {
        metrics::counter!(crate::metrics::RATE_LIMITED, "tenant" => principal.tenant().to_string())
            .increment(1);
        return ApiError::rate_limited(retry_after).into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// A 429 SCIM error with `Retry-After` and a detail naming which limit was hit.
pub fn rate_limited(retry_after: u64, what: &str) -> Response {
    ApiError {
        error: scim_core::Error::too_many_requests(format!("{what}; retry after {retry_after} s")),
        retry_after: Some(retry_after),
    }
    .into_response()
}

/// The address a request came from: the peer of the connection, or with
/// `trust_forwarded_headers` the last `X-Forwarded-For` entry (the one our own proxy appended; the
/// earlier ones are the client's to forge). Requests that reach the router without a connection
/// (in-process tests, embedding) count as the unspecified address.
pub fn client_address(req: &Request, trust_forwarded_headers: bool) -> IpAddr {
    if trust_forwarded_headers {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
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
