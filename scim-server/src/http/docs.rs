//! OpenAPI document parts: the document's header and security scheme, and schemas for the SCIM
//! message envelopes. Resources themselves are free-form objects described by `/Schemas`.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
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

/// A SearchRequest (RFC 7644 §3.4.3).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequestDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]`
    pub schemas: Vec<String>,
    /// Attributes to return.
    pub attributes: Option<Vec<String>>,
    /// Attributes to omit.
    pub excluded_attributes: Option<Vec<String>>,
    /// A SCIM filter.
    pub filter: Option<String>,
    /// Attribute to sort by.
    pub sort_by: Option<String>,
    /// `ascending` or `descending`.
    pub sort_order: Option<String>,
    /// 1-based index of the first result.
    pub start_index: Option<u64>,
    /// Page size.
    pub count: Option<u64>,
}

/// A PatchOp request (RFC 7644 §3.5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct PatchOpDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`
    pub schemas: Vec<String>,
    /// The operations, applied in order, all or nothing.
    #[serde(rename = "Operations")]
    pub operations: Vec<PatchOperationDoc>,
}

/// One PATCH operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatchOperationDoc {
    /// `add`, `replace` or `remove` (any case).
    pub op: String,
    /// The attribute path; optional for `add` and `replace`.
    pub path: Option<String>,
    /// The value.
    pub value: Option<serde_json::Value>,
}

/// A BulkRequest (RFC 7644 §3.7).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkRequestDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]`
    pub schemas: Vec<String>,
    /// Stop after this many errors.
    pub fail_on_errors: Option<u64>,
    /// The operations.
    #[serde(rename = "Operations")]
    pub operations: Vec<serde_json::Value>,
}
