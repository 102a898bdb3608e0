//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`, built from
//! the schema registry and the configured limits so they advertise exactly what is supported.
//! (Entra's SCIM Validator exercises every advertised attribute; `password` is accepted and
//! dropped, so it is not advertised.)

use crate::state::AppState;
use scim_core::query::LIST_RESPONSE_URN;
use scim_core::schema::{ResourceType, Schema};
use scim_core::{Error, Result};
use serde_json::{Value, json};

/// The ServiceProviderConfig schema URN.
pub const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The ResourceType schema URN.
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The Schema schema URN.
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Attributes defined by a schema but not supported by this server (not advertised).
const UNADVERTISED: &[&str] = &["password"];

/// The ServiceProviderConfig (RFC 7643 §5).
pub fn service_provider_config(state: &AppState, base_url: &str) -> Value {
    let limits = &state.settings.limits;
    json!({
        "schemas": [SPC_URN],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": limits.max_bulk_operations,
            "maxPayloadSize": limits.max_bulk_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": limits.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token (RFC 6750) in the Authorization header",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }, {
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": "A username and generated password per tenant (Okta's Basic Auth mode)",
            "specUri": "https://www.rfc-editor.org/rfc/rfc7617",
            "primary": false,
        }],
        "pagination": {
            "cursor": false,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": state.settings.query_limits().default_page_size,
            "maxPageSize": limits.max_page_size,
        },
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base_url.trim_end_matches('/')),
        },
    })
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

fn resource_type_json(rt: &ResourceType, base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": rt.id,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema,
        "schemaExtensions": rt.schema_extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", base_url.trim_end_matches('/'), rt.name),
        },
    })
}

fn schema_json(schema: &Schema, base_url: &str) -> Value {
    let mut schema = schema.clone();
    schema
        .attributes
        .retain(|a| !UNADVERTISED.iter().any(|u| u.eq_ignore_ascii_case(&a.name)));
    let mut doc = serde_json::to_value(&schema).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut doc {
        let mut out = serde_json::Map::new();
        out.insert("schemas".into(), json!([SCHEMA_URN]));
        out.extend(std::mem::take(map));
        out.insert(
            "meta".into(),
            json!({
                "resourceType": "Schema",
                "location": format!("{}/Schemas/{}", base_url.trim_end_matches('/'), schema.id),
            }),
        );
        *map = out;
    }
    doc
}

/// `/ResourceTypes` as a ListResponse.
pub fn resource_types(state: &AppState, base_url: &str) -> Value {
    list(
        state
            .registry
            .resource_types()
            .map(|rt| resource_type_json(rt, base_url))
            .collect(),
    )
}

/// `/ResourceTypes/{name}`.
pub fn resource_type(state: &AppState, base_url: &str, name: &str) -> Result<Value> {
    state
        .registry
        .resource_type(name)
        .map(|rt| resource_type_json(rt, base_url))
        .ok_or_else(|| Error::not_found("ResourceType", name))
}

/// `/Schemas` as a ListResponse.
pub fn schemas(state: &AppState, base_url: &str) -> Value {
    list(
        state
            .registry
            .schemas()
            .map(|s| schema_json(s, base_url))
            .collect(),
    )
}

/// `/Schemas/{urn}`.
pub fn schema(state: &AppState, base_url: &str, urn: &str) -> Result<Value> {
    state
        .registry
        .schema(urn)
        .map(|s| schema_json(s, base_url))
        .ok_or_else(|| Error::not_found("Schema", urn))
}
