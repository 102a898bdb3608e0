//! OpenAPI document parts: the document's header and security scheme, and schemas for the SCIM
//! message envelopes. Resources themselves are free-form objects described by `/Schemas`.

use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// The OpenAPI document's fixed part; paths are added from the route list.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scim-server",
        description = "SCIM 2.0 service provider (RFC 7643, RFC 7644) for Microsoft Entra ID, Okta and HR-style clients. Resource schemas are served at /Schemas.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "Users", description = "User resources"),
        (name = "Groups", description = "Group resources"),
        (name = "Protocol", description = "Search across types, Bulk, /Me"),
        (name = "Discovery", description = "ServiceProviderConfig, ResourceTypes, Schemas"),
        (name = "OAuth", description = "The token endpoint for OAuth 2.0 client credentials and RFC 7523 assertions"),
        (name = "Governance", description = "Access reviews and their exceptions (/governance/v1), with the same credentials as SCIM"),
        (name = "Operations", description = "Health, readiness, metrics")
    )
)]
pub struct ApiDoc;

/// Adds the bearer-token security scheme.
#[derive(Debug)]
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Adds the answers every authenticated operation can give, so each operation lists them instead
/// of leaving clients to guess: 401 (no or bad credential, with `WWW-Authenticate: Bearer`), 429
/// (the tenant's or the client address's rate limit, with `Retry-After`), and on writes 403 (a
/// read-only credential).
pub fn document_common_responses(api: &mut utoipa::openapi::OpenApi) {
    for item in api.paths.paths.values_mut() {
        let writes = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for (i, op) in [&mut item.get]
            .into_iter()
            .chain(writes)
            .enumerate()
            .filter_map(|(i, op)| op.as_mut().map(|op| (i, op)))
        {
            let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if !authenticated {
                continue;
            }
            add_response(op, "401", unauthorized());
            // A search is a POST that does not write.
            let is_search = op
                .operation_id
                .as_deref()
                .is_some_and(|id| id.contains("search"));
            if i > 0 && !is_search {
                add_response(
                    op,
                    "403",
                    scim_error("the credential is read-only and may not write"),
                );
            }
            add_response(op, "429", too_many_requests());
        }
    }
}

fn add_response(op: &mut Operation, status: &str, response: utoipa::openapi::Response) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert(RefOr::T(response));
}

fn scim_error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("ErrorDoc")))
}

fn scim_error(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/scim+json", scim_error_content())
        .build()
}

fn unauthorized() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("no credential, or one that is unknown, expired or revoked (429 instead once the client address has failed too often)")
        .header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`Bearer`, with `error=\"invalid_token\"` for a bad token (RFC 6750 §3); a second field `Basic realm=\"scim-server\", charset=\"UTF-8\"` while HTTP Basic credentials exist (RFC 7235 §4.1, RFC 7617)"))
                .build(),
        )
        .content("application/scim+json", scim_error_content())
        .build()
}

fn too_many_requests() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("over the tenant's rate limit")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("seconds to wait before retrying"))
                .build(),
        )
        .content("application/scim+json", scim_error_content())
        .build()
}

/// A SCIM error (RFC 7644 §3.12).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:Error"]`
    pub schemas: Vec<String>,
    /// The HTTP status as a string, e.g. `"404"`.
    pub status: String,
    /// The RFC 7644 §3.12 error type, e.g. `uniqueness`.
    pub scim_type: Option<String>,
    /// A human-readable detail.
    pub detail: Option<String>,
}

/// A ListResponse (RFC 7644 §3.4.2).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponseDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:ListResponse"]`
    pub schemas: Vec<String>,
    /// Matches in total.
    pub total_results: u64,
    /// Resources on this page.
    pub items_per_page: u64,
    /// 1-based index of the first resource on this page.
    pub start_index: u64,
    /// The resources.
    #[serde(rename = "Resources")]
    pub resources: Vec<serde_json::Value>,
}
