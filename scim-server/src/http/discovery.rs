//! Handlers for discovery (RFC 7644 §4).

use super::error::ApiError;
use super::extract::Caller;
use super::response::Scim;
use crate::service::discovery as svc;
use crate::state::AppState;
use axum::extract::{Path, State};
use http::StatusCode;

/// The ServiceProviderConfig.
#[utoipa::path(get, path = "/ServiceProviderConfig", tag = "Discovery",
    responses((status = 200, description = "what this server supports, with its limits", body = Object, content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn service_provider_config(State(state): State<AppState>, Caller(ctx): Caller) -> Scim {
    Scim(
        StatusCode::OK,
        svc::service_provider_config(&state, ctx.base_url()),
    )
}

/// Resource types as a ListResponse.
#[utoipa::path(get, path = "/ResourceTypes", tag = "Discovery",
    responses((status = 200, description = "ListResponse of ResourceType", body = super::docs::ListResponseDoc, content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn resource_types(State(state): State<AppState>, Caller(ctx): Caller) -> Scim {
    Scim(StatusCode::OK, svc::resource_types(&state, ctx.base_url()))
}

/// One resource type.
#[utoipa::path(get, path = "/ResourceTypes/{name}", tag = "Discovery",
    params(("name" = String, Path, description = "resource type name, e.g. User")),
    responses(
        (status = 200, description = "the ResourceType", body = Object, content_type = "application/scim+json"),
        (status = 404, description = "no such resource type", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn resource_type(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(name): Path<String>,
) -> Result<Scim, ApiError> {
    Ok(Scim(
        StatusCode::OK,
        svc::resource_type(&state, ctx.base_url(), &name)?,
    ))
}

/// Schemas as a ListResponse: exactly the attributes this server supports.
#[utoipa::path(get, path = "/Schemas", tag = "Discovery",
    responses((status = 200, description = "ListResponse of Schema", body = super::docs::ListResponseDoc, content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn schemas(State(state): State<AppState>, Caller(ctx): Caller) -> Scim {
    Scim(StatusCode::OK, svc::schemas(&state, ctx.base_url()))
}

/// One schema by URN.
#[utoipa::path(get, path = "/Schemas/{urn}", tag = "Discovery",
    params(("urn" = String, Path, description = "schema URN")),
    responses(
        (status = 200, description = "the Schema", body = Object, content_type = "application/scim+json"),
        (status = 404, description = "no such schema", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn schema(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(urn): Path<String>,
) -> Result<Scim, ApiError> {
    Ok(Scim(
        StatusCode::OK,
        svc::schema(&state, ctx.base_url(), &urn)?,
    ))
}
