//! Every failure the HTTP layer reports is a SCIM error body (RFC 7644 §3.12) with
//! `Content-Type: application/scim+json`: service errors, authentication failures, body and query
//! rejections, unknown routes, timeouts and panics. A 5xx body is generic; the cause is logged
//! with the request id (the request's span carries it).

use super::response::SCIM_CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A [`scim_core::Error`] as an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The SCIM error.
    pub error: scim_core::Error,
    /// `Retry-After` seconds (429).
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut error = self.error;
        if status.is_server_error() {
            // The cause never reaches the client; the span adds the request id to this line.
            tracing::error!(status = status.as_u16(), cause = %error, "request failed");
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                error = scim_core::Error::internal();
            }
        }
        let body = serde_json::to_vec(&error.to_body()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The answer for a path no route serves.
pub async fn not_found() -> ApiError {
    scim_core::Error::not_found_detail("no endpoint at this path").into()
}

/// The answer for a method a route does not serve.
pub async fn method_not_allowed() -> ApiError {
    scim_core::Error::new(405, None, "this endpoint does not support the method").into()
}
