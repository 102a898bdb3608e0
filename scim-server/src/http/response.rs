//! Successful SCIM responses: `application/scim+json` bodies, `Location` and `ETag` headers.

use crate::service::{GetReply, PatchReply, ResourceReply};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

/// The SCIM media type (RFC 7644 §8.1), as every response carries it.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A JSON body answered as `application/scim+json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scim(pub StatusCode, pub Value);

impl IntoResponse for Scim {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.1).unwrap_or_default();
        let mut response = (self.0, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        response
    }
}

fn etag_header(response: &mut Response, etag: &scim_core::etag::ETag) {
    if let Ok(v) = HeaderValue::from_str(&etag.to_string()) {
        response.headers_mut().insert(header::ETAG, v);
    }
}

/// A resource with its `ETag` (and `Location` when `created`).
pub fn resource(status: StatusCode, reply: ResourceReply) -> Response {
    let mut response = Scim(status, reply.body).into_response();
    etag_header(&mut response, &reply.etag);
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&reply.location)
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

impl IntoResponse for GetReply {
    fn into_response(self) -> Response {
        match self {
            GetReply::Found(reply) => resource(StatusCode::OK, reply),
            GetReply::NotModified(etag) => {
                let mut response = StatusCode::NOT_MODIFIED.into_response();
                etag_header(&mut response, &etag);
                response
            }
        }
    }
}

impl IntoResponse for PatchReply {
    fn into_response(self) -> Response {
        match self {
            PatchReply::Resource(reply) => resource(StatusCode::OK, reply),
            PatchReply::NoContent(etag) => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                etag_header(&mut response, &etag);
                response
            }
        }
    }
}
