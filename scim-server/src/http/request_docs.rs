//! OpenAPI schemas of request bodies, as strict as the server: a body valid by its schema is one
//! the server accepts (unless it conflicts with stored data: a taken `userName` is 409, an
//! unknown id 404), so a generator working from `/openapi.json` (schemathesis) reaches the
//! server's logic instead of its validation.
//!
//! They describe the subset of RFC 7643 attributes a provisioning client sends, with the
//! characters the server accepts in indexed values (no NUL, at most
//! `limits.max_indexed_value_bytes`); the full attribute catalogue is `/Schemas`, which a client
//! reads at run time. Written as JSON Schema (the OpenAPI 3.1 dialect) and turned into utoipa's
//! schema type once, so what is documented is exactly this text.

use serde_json::{Value, json};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const BULK_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// A name-like value: letters, digits and `._@+-`, 1 to 128 characters (well inside the
/// indexed-value limit, and free of what a filter or path would need quoted).
fn identifier() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9._@+-]{1,128}$"})
}

/// Free text without control characters (NUL is refused on both databases).
fn text() -> Value {
    json!({"type": "string", "pattern": "^[^\\u0000-\\u001f]{1,256}$"})
}

fn schemas_of(urns: &[&str]) -> Value {
    json!({
        "type": "array",
        "items": {"type": "string", "enum": urns},
        "minItems": 1,
        "uniqueItems": true,
        "description": "the schemas the body uses (RFC 7643 §3)"
    })
}

fn user_attributes() -> Value {
    json!({
        "userName": identifier(),
        "externalId": identifier(),
        "displayName": text(),
        "nickName": text(),
        "title": text(),
        "userType": text(),
        "preferredLanguage": {"type": "string", "enum": ["en", "en-US", "de-DE", "fr-FR"]},
        "active": {"type": "boolean"},
        "name": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"givenName": text(), "familyName": text(), "formatted": text()}
        },
        "emails": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["value"],
                "additionalProperties": false,
                "properties": {
                    "value": {"type": "string", "pattern": "^[a-z0-9._-]{1,64}@[a-z0-9-]{1,63}\\.[a-z]{2,10}$"},
                    "type": {"type": "string", "enum": ["work", "home", "other"]}
                }
            }
        },
        ENTERPRISE_URN: {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "employeeNumber": identifier(),
                "department": text(),
                "costCenter": text()
            }
        }
    })
}

fn user_write() -> Value {
    json!({
        "type": "object",
        "description": "a User to create or replace (RFC 7643 §4.1); `/Schemas` lists every attribute",
        "required": ["schemas", "userName"],
        "additionalProperties": false,
        "properties": merged(json!({"schemas": schemas_of(&[USER_URN, ENTERPRISE_URN])}), user_attributes())
    })
}

fn group_write() -> Value {
    json!({
        "type": "object",
        "description": "a Group to create or replace (RFC 7643 §4.2); unknown member ids are skipped",
        "required": ["schemas", "displayName"],
        "additionalProperties": false,
        "properties": {
            "schemas": schemas_of(&[GROUP_URN]),
            "displayName": identifier(),
            "externalId": identifier(),
            "members": members()
        }
    })
}

fn members() -> Value {
    json!({
        "type": "array",
        "maxItems": 20,
        "items": {
            "type": "object",
            "required": ["value"],
            "additionalProperties": false,
            "properties": {"value": identifier()}
        }
    })
}

fn op(names: &[&str]) -> Value {
    json!({"type": "string", "enum": names})
}

fn patch_request(operations: Value) -> Value {
    json!({
        "type": "object",
        "description": "a PatchOp (RFC 7644 §3.5.2): operations applied in order, all or nothing; `op` in any case",
        "required": ["schemas", "Operations"],
        "additionalProperties": false,
        "properties": {
            "schemas": schemas_of(&[PATCH_URN]),
            "Operations": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"oneOf": operations}}
        }
    })
}

fn user_patch() -> Value {
    let texts = [
        "displayName",
        "nickName",
        "title",
        "userType",
        "name.givenName",
        "name.familyName",
    ];
    let path_less = merged(json!({}), user_attributes());
    patch_request(json!([
        {
            "type": "object", "required": ["op", "path", "value"], "additionalProperties": false,
            "properties": {"op": op(&["add", "replace", "Add", "Replace"]), "path": {"type": "string", "enum": texts}, "value": text()}
        },
        {
            "type": "object", "required": ["op", "path", "value"], "additionalProperties": false,
            "properties": {"op": op(&["replace", "Replace"]), "path": {"type": "string", "enum": ["active"]}, "value": {"type": "boolean"}}
        },
        {
            "type": "object", "required": ["op", "path"], "additionalProperties": false,
            "properties": {"op": op(&["remove", "Remove"]), "path": {"type": "string", "enum": texts}}
        },
        {
            "type": "object", "required": ["op", "value"], "additionalProperties": false,
            "properties": {
                "op": op(&["add", "replace", "Add", "Replace"]),
                "value": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": without(path_less, "userName")}
            }
        }
    ]))
}

fn group_patch() -> Value {
    patch_request(json!([
        {
            "type": "object", "required": ["op", "path", "value"], "additionalProperties": false,
            "properties": {"op": op(&["add", "Add"]), "path": {"type": "string", "enum": ["members"]}, "value": members()}
        },
        {
            "type": "object", "required": ["op", "path"], "additionalProperties": false,
            "properties": {"op": op(&["remove", "Remove"]), "path": {"type": "string", "enum": ["members", "externalId"]}}
        },
        {
            "type": "object", "required": ["op", "path", "value"], "additionalProperties": false,
            "properties": {"op": op(&["replace", "Replace"]), "path": {"type": "string", "enum": ["displayName", "externalId"]}, "value": identifier()}
        }
    ]))
}

fn search_request() -> Value {
    json!({
        "type": "object",
        "description": "a SearchRequest (RFC 7644 §3.4.3)",
        "required": ["schemas"],
        "additionalProperties": false,
        "properties": {
            "schemas": schemas_of(&[SEARCH_URN]),
            "attributes": {"type": "array", "items": {"type": "string", "enum": ["userName", "displayName", "emails", "active", "members"]}},
            "excludedAttributes": {"type": "array", "items": {"type": "string", "enum": ["emails", "members", "groups"]}},
            "filter": {"type": "string", "description": "a SCIM filter (RFC 7644 §3.4.2.2)", "pattern": "^(userName|displayName|externalId) (eq|ne|co|sw|ew) \"[A-Za-z0-9._@-]{0,64}\"$"},
            "sortBy": {"type": "string", "enum": ["userName", "displayName", "meta.lastModified"]},
            "sortOrder": {"type": "string", "enum": ["ascending", "descending"]},
            "startIndex": {"type": "integer", "minimum": 1, "maximum": 1000000},
            "count": {"type": "integer", "minimum": 0, "maximum": 1000}
        }
    })
}

fn bulk_request() -> Value {
    let create_user = json!({
        "type": "object", "required": ["method", "path", "bulkId", "data"], "additionalProperties": false,
        "properties": {
            "method": {"type": "string", "enum": ["POST"]},
            "path": {"type": "string", "enum": ["/Users"]},
            "bulkId": identifier(),
            "data": user_write()
        }
    });
    let delete = json!({
        "type": "object", "required": ["method", "path"], "additionalProperties": false,
        "properties": {
            "method": {"type": "string", "enum": ["DELETE"]},
            "path": {"type": "string", "pattern": "^/(Users|Groups)/[A-Za-z0-9-]{1,64}$"}
        }
    });
    json!({
        "type": "object",
        "description": "a BulkRequest (RFC 7644 §3.7); each operation as its own endpoint takes it",
        "required": ["schemas", "Operations"],
        "additionalProperties": false,
        "properties": {
            "schemas": schemas_of(&[BULK_URN]),
            "failOnErrors": {"type": "integer", "minimum": 1, "maximum": 1000},
            "Operations": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"oneOf": [create_user, delete]}}
        }
    })
}

/// The HR intake's bulkUpload body (Microsoft's API-driven inbound provisioning format): only
/// `POST /Users` operations, each a User whose `externalId` is the employee id, at most 50 by
/// default (`inbound.max_operations`); `failOnErrors` is ignored and Microsoft's samples send
/// `null`.
fn bulk_upload() -> Value {
    let data = merged(
        user_write(),
        json!({"required": ["schemas", "userName", "externalId"]}),
    );
    let create_user = json!({
        "type": "object", "required": ["method", "path", "bulkId", "data"], "additionalProperties": false,
        "properties": {
            "method": {"type": "string", "enum": ["POST"]},
            "path": {"type": "string", "enum": ["/Users"]},
            "bulkId": identifier(),
            "data": data
        }
    });
    json!({
        "type": "object",
        "description": "an Entra API-driven inbound provisioning bulkUpload: a BulkRequest (RFC 7644 §3.7) of `POST /Users` operations, upserted by `externalId`",
        "required": ["schemas", "Operations"],
        "additionalProperties": false,
        "properties": {
            "schemas": schemas_of(&[BULK_URN]),
            "failOnErrors": {"type": ["integer", "null"], "minimum": 0},
            "Operations": {"type": "array", "minItems": 1, "maxItems": 50, "items": create_user}
        }
    })
}

fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn without(mut v: Value, key: &str) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.remove(key);
    }
    v
}

/// The JSON Schema text as utoipa's schema type.
fn schema(v: Value) -> RefOr<Schema> {
    serde_json::from_value(v).expect("request schemas are valid OpenAPI schema objects")
}

macro_rules! request_schema {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $build:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                schema($build())
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

request_schema!(
    /// A User body of `POST /Users` and `PUT /Users/{id}`.
    UserWriteDoc, "UserWrite", user_write
);
request_schema!(
    /// A Group body of `POST /Groups` and `PUT /Groups/{id}`.
    GroupWriteDoc, "GroupWrite", group_write
);
request_schema!(
    /// A PatchOp for a User.
    UserPatchDoc, "UserPatchOp", user_patch
);
request_schema!(
    /// A PatchOp for a Group.
    GroupPatchDoc, "GroupPatchOp", group_patch
);
request_schema!(
    /// A SearchRequest.
    SearchRequestDoc, "SearchRequest", search_request
);
request_schema!(
    /// A BulkRequest.
    BulkRequestDoc, "BulkRequest", bulk_request
);
request_schema!(
    /// The HR intake's bulkUpload body.
    BulkUploadDoc, "BulkUpload", bulk_upload
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema survives the conversion whole: utoipa's type drops keywords it does not
    /// know, which would silently loosen a schema.
    #[test]
    fn schemas_convert_without_losing_keywords() {
        for (name, text) in [
            ("UserWrite", user_write()),
            ("GroupWrite", group_write()),
            ("UserPatchOp", user_patch()),
            ("GroupPatchOp", group_patch()),
            ("SearchRequest", search_request()),
            ("BulkRequest", bulk_request()),
            ("BulkUpload", bulk_upload()),
        ] {
            let back = serde_json::to_value(schema(text.clone())).unwrap();
            assert_eq!(back, text, "{name}");
        }
    }
}
