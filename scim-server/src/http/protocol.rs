//! Handlers for the protocol endpoints that are not one resource type: root `/.search`,
//! `/Bulk` and `/Me`.

use super::error::ApiError;
use super::extract::{Caller, ScimJson};
use super::response::Scim;
use crate::service::{bulk as bulk_svc, resources};
use crate::state::AppState;
use axum::extract::State;
use http::StatusCode;
use serde_json::Value;

/// Searches every resource type with a SearchRequest (RFC 7644 §3.4.3).
#[utoipa::path(post, path = "/.search", tag = "Protocol",
    request_body(content = super::request_docs::SearchRequestDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "ListResponse of Users then Groups", body = super::docs::ListResponseDoc, content_type = "application/scim+json"),
        (status = 400, description = "invalid request", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn root_search(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimJson(body): ScimJson<Value>,
) -> Result<Scim, ApiError> {
    Ok(Scim(
        StatusCode::OK,
        resources::search(&state, &ctx, None, body).await?,
    ))
}

/// Runs a BulkRequest (RFC 7644 §3.7).
#[utoipa::path(post, path = "/Bulk", tag = "Protocol",
    request_body(content = super::request_docs::BulkRequestDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "BulkResponse with one result per operation run", body = Object, content_type = "application/scim+json"),
        (status = 400, description = "malformed BulkRequest", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 413, description = "more operations or bytes than advertised", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn bulk(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimJson(body): ScimJson<Value>,
) -> Result<Scim, ApiError> {
    Ok(Scim(
        StatusCode::OK,
        bulk_svc::execute(&state, &ctx, body).await?,
    ))
}

/// `/Me` (RFC 7644 §3.11): no user is bound to a bearer token here, so every method answers 501.
#[utoipa::path(method(get, post, put, patch, delete), path = "/Me", tag = "Protocol",
    responses((status = 501, description = "not implemented: credentials are not bound to a user", body = super::docs::ErrorDoc, content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn me(Caller(_ctx): Caller) -> ApiError {
    scim_core::Error::not_implemented(
        "/Me is not supported: credentials here belong to a provisioning client, not to a user",
    )
    .into()
}
