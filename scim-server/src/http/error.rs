//! The one path from a failure to a response. Every failure the HTTP layer reports is a SCIM
//! error body (RFC 7644 §3.12) with `Content-Type: application/scim+json`: service errors,
//! authentication failures, body and query rejections, unknown routes, timeouts and panics.
//!
//! A 500 body is generic; its cause is recorded ([`crate::fault::record`]) where it happens and
//! logged once, by [`log_failures`], with the request id and status as fields of the line itself
//! (so a `SCIM_LOG=warn` filter, which disables the request's info span, still shows them). A 503
//! always carries `Retry-After`; a 401 always carries the same `WWW-Authenticate: Bearer` (the
//! authentication middleware adds a `Basic` challenge after it while Basic credentials exist,
//! [`crate::auth::challenge_basic_too`]).

use super::response::SCIM_CONTENT_TYPE;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// `Retry-After` seconds of a 503 that names none: the database or the server is briefly
/// unavailable.
pub const DEFAULT_RETRY_AFTER: u64 = 5;

/// A [`scim_core::Error`] as an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The SCIM error.
    pub error: scim_core::Error,
    /// `Retry-After` seconds (429, 503; a 503 without one gets [`DEFAULT_RETRY_AFTER`]).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            error: scim_core::Error::too_many_requests(format!(
                "too many requests for this tenant; retry after {retry_after} s"
            )),
            retry_after: Some(retry_after),
        }
    }
}

impl From<scim_core::Error> for ApiError {
    fn from(error: scim_core::Error) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::from(scim_core::Error::from(error))
    }
}

impl From<crate::auth::AuthError> for ApiError {
    /// 401 (RFC 6750 §3), or 503 with `Retry-After: 30` when the credential could not be checked
    /// (an identity provider then retries instead of treating the credential as revoked).
    fn from(error: crate::auth::AuthError) -> Self {
        if error.is_unavailable() {
            Self {
                error: scim_core::Error::new(503, None, error.0),
                retry_after: Some(30),
            }
        } else {
            scim_core::Error::unauthorized(error.0).into()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut error = self.error;
        if status == StatusCode::INTERNAL_SERVER_ERROR && error != scim_core::Error::internal() {
            // The cause never reaches the client; `log_failures` logs it with the request id.
            crate::fault::record(&error);
            error = scim_core::Error::internal();
        }
        let body = serde_json::to_vec(&error.to_body()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        let retry_after = self
            .retry_after
            .or((status == StatusCode::SERVICE_UNAVAILABLE).then_some(DEFAULT_RETRY_AFTER));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Logs each failed request once: a 5xx other than 501, or any request during which a cause was recorded (a
/// Bulk whose operations failed answers 200), with the request id, method, path and status on
/// the line and every recorded cause.
pub async fn log_failures(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (response, causes) = crate::fault::collect(next.run(req)).await;
    let status = response.status();
    // 501 is a deliberate answer (an optional feature, such as `/Me`), not a failure.
    let failed = status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED;
    if failed || !causes.is_empty() {
        tracing::error!(
            request_id,
            %method,
            path,
            status = status.as_u16(),
            cause = %if causes.is_empty() { "see the response body".into() } else { causes.join("; ") },
            "request failed"
        );
    }
    response
}

/// The answer for a path no route serves.
pub async fn not_found() -> ApiError {
    scim_core::Error::not_found_detail("no endpoint at this path").into()
}

/// The answer for a method a route does not serve.
pub async fn method_not_allowed() -> ApiError {
    scim_core::Error::new(405, None, "this endpoint does not support the method").into()
}
