//! Handlers for the resource endpoints (`/Users`, `/Groups`): extract, call one service function,
//! map the result. The same handler set is generated for each resource type so the OpenAPI
//! document lists every path explicitly.

use super::error::ApiError;
use super::extract::{Caller, ScimJson, ScimQuery, header_str};
use super::response::{Scim, resource};
use crate::service::{GetReply, PatchReply, resources as svc};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

macro_rules! resource_handlers {
    (
        rt: $rt:tt, tag: $tag:tt,
        list_path: $list_path:tt, item_path: $item_path:tt, search_path: $search_path:tt,
        list: $list:ident, create: $create:ident, search: $search:ident,
        get: $get:ident, replace: $replace:ident, patch: $patch:ident, delete: $delete:ident,
        write_body: $write_body:path, patch_body: $patch_body:path $(,)?
    ) => {
        #[doc = concat!("Lists ", $rt, "s: filter, sort, paging, projection (RFC 7644 §3.4.2).")]
        #[utoipa::path(get, path = $list_path, tag = $tag,
            params(
                ("filter" = Option<String>, Query, description = "SCIM filter, e.g. userName eq \"bjensen\""),
                ("startIndex" = Option<u64>, Query, description = "1-based index of the first result"),
                ("count" = Option<u64>, Query, description = "page size (capped at the server maximum)"),
                ("sortBy" = Option<String>, Query, description = "attribute to sort by"),
                ("sortOrder" = Option<String>, Query, description = "ascending or descending"),
                ("attributes" = Option<String>, Query, description = "comma-separated attributes to return"),
                ("excludedAttributes" = Option<String>, Query, description = "comma-separated attributes to omit"),
            ),
            responses(
                (status = 200, description = "ListResponse (totalResults 0 when nothing matches)", body = super::docs::ListResponseDoc, content_type = "application/scim+json"),
                (status = 400, description = "invalid filter or parameter", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $list(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            ScimQuery(params): ScimQuery,
        ) -> Result<Scim, ApiError> {
            Ok(Scim(StatusCode::OK, svc::list(&state, &ctx, $rt, &params).await?))
        }

        #[doc = concat!("Creates a ", $rt, " (RFC 7644 §3.3).")]
        #[utoipa::path(post, path = $list_path, tag = $tag,
            params(
                ("attributes" = Option<String>, Query, description = "comma-separated attributes to return"),
                ("excludedAttributes" = Option<String>, Query, description = "comma-separated attributes to omit"),
            ),
            request_body(content = $write_body, content_type = "application/scim+json"),
            responses(
                (status = 201, description = "created; Location and ETag headers", body = Object, content_type = "application/scim+json"),
                (status = 400, description = "invalid body", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
                (status = 409, description = "uniqueness conflict", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $create(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            ScimQuery(params): ScimQuery,
            ScimJson(body): ScimJson<Value>,
        ) -> Result<Response, ApiError> {
            let reply = svc::create(&state, &ctx, $rt, body, &params).await?;
            Ok(resource(StatusCode::CREATED, reply))
        }

        #[doc = concat!("Searches ", $rt, "s with a SearchRequest body (RFC 7644 §3.4.3).")]
        #[utoipa::path(post, path = $search_path, tag = $tag,
            request_body(content = super::request_docs::SearchRequestDoc, content_type = "application/scim+json"),
            responses(
                (status = 200, description = "ListResponse", body = super::docs::ListResponseDoc, content_type = "application/scim+json"),
                (status = 400, description = "invalid request", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $search(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            ScimJson(body): ScimJson<Value>,
        ) -> Result<Scim, ApiError> {
            Ok(Scim(StatusCode::OK, crate::service::resources::search(&state, &ctx, Some($rt), body).await?))
        }

        #[doc = concat!("Reads a ", $rt, " by id (RFC 7644 §3.4.1); If-None-Match gives 304.")]
        #[utoipa::path(get, path = $item_path, tag = $tag,
            params(
                ("id" = String, Path, description = "resource id"),
                ("attributes" = Option<String>, Query, description = "comma-separated attributes to return"),
                ("excludedAttributes" = Option<String>, Query, description = "comma-separated attributes to omit"),
            ),
            responses(
                (status = 200, description = "the resource; ETag header", body = Object, content_type = "application/scim+json"),
                (status = 304, description = "If-None-Match matched"),
                (status = 404, description = "no such resource", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $get(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<String>,
            ScimQuery(params): ScimQuery,
            headers: HeaderMap,
        ) -> Result<GetReply, ApiError> {
            let inm = header_str(&headers, header::IF_NONE_MATCH);
            Ok(svc::get(&state, &ctx, $rt, &id, &params, inm).await?)
        }

        #[doc = concat!("Replaces a ", $rt, " (RFC 7644 §3.5.1); `active` absent keeps its value.")]
        #[utoipa::path(put, path = $item_path, tag = $tag,
            params(
                ("id" = String, Path, description = "resource id"),
                ("attributes" = Option<String>, Query, description = "comma-separated attributes to return"),
                ("excludedAttributes" = Option<String>, Query, description = "comma-separated attributes to omit"),
            ),
            request_body(content = $write_body, content_type = "application/scim+json"),
            responses(
                (status = 200, description = "the replaced resource; ETag header", body = Object, content_type = "application/scim+json"),
                (status = 404, description = "no such resource", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
                (status = 412, description = "If-Match did not match", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $replace(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<String>,
            ScimQuery(params): ScimQuery,
            headers: HeaderMap,
            ScimJson(body): ScimJson<Value>,
        ) -> Result<Response, ApiError> {
            let if_match = header_str(&headers, header::IF_MATCH);
            let reply = svc::replace(&state, &ctx, $rt, &id, body, if_match, &params).await?;
            Ok(resource(StatusCode::OK, reply))
        }

        #[doc = concat!("Modifies a ", $rt, " with a PatchOp (RFC 7644 §3.5.2).")]
        #[utoipa::path(patch, path = $item_path, tag = $tag,
            params(
                ("id" = String, Path, description = "resource id"),
                ("attributes" = Option<String>, Query, description = "return the resource with these attributes"),
                ("excludedAttributes" = Option<String>, Query, description = "return the resource without these attributes"),
            ),
            request_body(content = $patch_body, content_type = "application/scim+json"),
            responses(
                (status = 200, description = "the modified resource (Users, or Groups when attributes are asked for)", body = Object, content_type = "application/scim+json"),
                (status = 204, description = "modified (Groups)"),
                (status = 400, description = "invalid operation", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
                (status = 404, description = "no such resource", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
                (status = 412, description = "If-Match did not match", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $patch(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<String>,
            ScimQuery(params): ScimQuery,
            headers: HeaderMap,
            ScimJson(body): ScimJson<Value>,
        ) -> Result<PatchReply, ApiError> {
            let if_match = header_str(&headers, header::IF_MATCH);
            Ok(svc::patch(&state, &ctx, $rt, &id, body, if_match, &params).await?)
        }

        #[doc = concat!("Deletes a ", $rt, " and its group memberships (RFC 7644 §3.6).")]
        #[utoipa::path(delete, path = $item_path, tag = $tag,
            params(("id" = String, Path, description = "resource id")),
            responses(
                (status = 204, description = "deleted"),
                (status = 404, description = "no such resource", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
            ),
            security(("bearer" = [])))]
        pub async fn $delete(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<String>,
            headers: HeaderMap,
        ) -> Result<StatusCode, ApiError> {
            let if_match = header_str(&headers, header::IF_MATCH);
            svc::delete(&state, &ctx, $rt, &id, if_match).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

resource_handlers! {
    rt: "User", tag: "Users",
    list_path: "/Users", item_path: "/Users/{id}", search_path: "/Users/.search",
    list: list_users, create: create_user, search: search_users,
    get: get_user, replace: replace_user, patch: patch_user, delete: delete_user,
    write_body: super::request_docs::UserWriteDoc, patch_body: super::request_docs::UserPatchDoc,
}

resource_handlers! {
    rt: "Group", tag: "Groups",
    list_path: "/Groups", item_path: "/Groups/{id}", search_path: "/Groups/.search",
    list: list_groups, create: create_group, search: search_groups,
    get: get_group, replace: replace_group, patch: patch_group, delete: delete_group,
    write_body: super::request_docs::GroupWriteDoc, patch_body: super::request_docs::GroupPatchDoc,
}
