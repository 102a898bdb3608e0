//! Request dialects normalised on the way in (Entra ID with and without `aadOptscim062020`, Okta,
//! HR-style pushers): canonical attribute names, string booleans, nulls, unknown schema URNs,
//! readOnly attributes, the many shapes of `manager`, JSON-encoded `roles`.
//!
//! Everything here accepts what real clients send; what is genuinely invalid becomes a SCIM error
//! naming the attribute by its wire path.
//!
//! ```
//! use scim_core::normalize::request_body;
//! use scim_core::schema::{SchemaRegistry, ENTERPRISE_USER_URN};
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//! // Microsoft's Postman collection: capitalised names, string booleans, `Manager: {Value}`.
//! let body = json!({
//!     "schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
//!     "UserName": "bjensen", "Active": "True", "id": "client-chosen", "title": null,
//!     "Manager": {"Value": "42"}
//! });
//! let attrs = request_body(&registry, users, body).unwrap();
//! assert_eq!(attrs["userName"], "bjensen");
//! assert_eq!(attrs["active"], true);
//! assert!(attrs.get("id").is_none() && attrs.get("title").is_none());
//! assert_eq!(attrs[ENTERPRISE_USER_URN]["manager"], json!({"value": "42"}));
//! ```

mod value;

pub use value::attribute_value;
use value::kind_name;

use crate::error::{Error, Result};
use crate::resource::Attributes;
use crate::schema::{
    AttributeDef, Location, Mutability, ResolvedPath, ResourceType, SchemaRegistry, split_path,
};
use serde_json::{Map, Value};

/// Normalises a POST or PUT body into canonical [`Attributes`].
///
/// - top-level names in any case become canonical (RFC 7643 §2.1); unqualified extension
///   attributes (Entra's legacy `"department": null` at the top level) move under their URN;
/// - `schemas`, `id`, `meta`, `groups` and other readOnly attributes are dropped (RFC 7643 §7:
///   readOnly values sent by a client "SHALL be ignored"); so are readOnly sub-attributes such as
///   `manager.displayName` and `members.display`;
/// - unknown `schemas` URNs are ignored (Entra's `…enterprise:2.0User`, Microsoft's ADSCIM group
///   URN); extension objects keyed by an unknown URN are kept as sent;
/// - every value goes through [`attribute_value`].
///
/// Keys are taken in document order, so when a body names one attribute twice (for example
/// `department` at the top level and again under the enterprise URN) the later value wins; a
/// `null` never erases a value given elsewhere in the same body.
///
/// The body must be a JSON object, else `invalidSyntax`.
pub fn request_body(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    body: Value,
) -> Result<Attributes> {
    let Value::Object(body) = body else {
        return Err(Error::invalid_syntax(format!(
            "the request body must be a JSON object, got {}",
            kind_name(&body)
        )));
    };
    let mut out = Attributes::new();
    for (key, value) in body {
        top_level(registry, rt, &mut out, key, value)?;
    }
    Ok(out)
}

fn top_level(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    out: &mut Attributes,
    key: String,
    value: Value,
) -> Result<()> {
    if key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    // `{"urn:…:enterprise:2.0:User": {…}}`: an extension object, key matched case-insensitively.
    if let Some(urn) = registry.extension_urn(rt, &key) {
        return extension_object(registry, out, urn, value);
    }
    // Some clients nest core attributes under the core URN; treat them as top-level ones.
    if key.eq_ignore_ascii_case(&rt.schema) {
        return match value {
            Value::Null => Ok(()),
            Value::Object(obj) => {
                for (k, v) in obj {
                    top_level(registry, rt, out, k, v)?;
                }
                Ok(())
            }
            other => Err(Error::invalid_value(format!(
                "{} must be an object, got {}",
                rt.schema,
                kind_name(&other)
            ))),
        };
    }
    let (uri, name, sub) = split_path(&key);
    let Some(path) = registry.resolve(rt, uri, name, sub) else {
        // Undeclared attributes and extension objects of unknown URNs are kept as sent (reference
        // Q13: rejecting them blocks a deactivation riding in the same request).
        if !value.is_null() {
            out.insert(key, value);
        }
        return Ok(());
    };
    place(out, &path, value)
}

fn extension_object(
    registry: &SchemaRegistry,
    out: &mut Attributes,
    urn: &str,
    value: Value,
) -> Result<()> {
    let obj = match value {
        Value::Null => return Ok(()),
        Value::Object(obj) => obj,
        other => {
            return Err(Error::invalid_value(format!(
                "{urn} must be an object of extension attributes, got {}",
                kind_name(&other)
            )));
        }
    };
    let Some(schema) = registry.schema(urn) else {
        out.insert(urn.to_string(), Value::Object(obj));
        return Ok(());
    };
    for (key, value) in obj {
        // `{"manager.value": "42"}` inside the extension object names a sub-attribute.
        let (name, sub) = match key.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (key.as_str(), None),
        };
        let attr = schema.attribute(name);
        let sub = match (attr, sub) {
            (Some(attr), Some(sub)) => attr.sub_attribute(sub).map(|s| Some(s.clone())),
            (_, None) => Some(None),
            (None, Some(_)) => None,
        };
        match (attr, sub) {
            (Some(attr), Some(sub)) => {
                let path = ResolvedPath {
                    schema: schema.id.clone(),
                    location: Location::Extension,
                    attr: attr.clone(),
                    sub,
                    declared: true,
                };
                place(out, &path, value)?;
            }
            _ if value.is_null() => {}
            _ => {
                ext_map(out, urn).insert(key, value);
            }
        }
    }
    Ok(())
}

/// Stores one resolved attribute (or `parent.sub` key) in `out`.
fn place(out: &mut Attributes, path: &ResolvedPath, value: Value) -> Result<()> {
    if path.attr.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    // A dotted key (`"name.givenName": "B"`) sets one sub-attribute of a single-valued complex.
    let value = match &path.sub {
        Some(sub) if !path.attr.multi_valued => {
            let mut obj = Map::new();
            obj.insert(sub.name.clone(), value);
            Value::Object(obj)
        }
        Some(_) => {
            return Err(Error::invalid_value(format!(
                "{path} names a sub-attribute of a multi-valued attribute; send {} as an array",
                path.attr.name
            )));
        }
        None => value,
    };
    let wire_path = ResolvedPath {
        sub: None,
        ..path.clone()
    }
    .to_string();
    let Some(mut value) = attribute_value(&path.attr, value, &wire_path)? else {
        return Ok(());
    };
    if !drop_read_only_subs(&path.attr, &mut value) {
        return Ok(());
    }
    let target = match path.location {
        Location::Common | Location::Core => out,
        Location::Extension => ext_map(out, &path.schema),
    };
    match (target.get_mut(&path.attr.name), &path.sub) {
        // Merge `name.givenName` into an existing `name`.
        (Some(Value::Object(existing)), Some(_)) => {
            if let Value::Object(new) = value {
                existing.extend(new);
            }
        }
        _ => {
            target.insert(path.attr.name.clone(), value);
        }
    }
    Ok(())
}

/// Removes readOnly sub-attributes from a normalised complex value (every element of a
/// multi-valued one). Returns false when nothing is left.
fn drop_read_only_subs(def: &AttributeDef, value: &mut Value) -> bool {
    let read_only = |k: &String| {
        def.sub_attribute(k)
            .is_some_and(|s| s.mutability == Mutability::ReadOnly)
    };
    match value {
        Value::Object(obj) => {
            obj.retain(|k, _| !read_only(k));
            !obj.is_empty()
        }
        Value::Array(items) => {
            items.retain_mut(|item| match item {
                Value::Object(obj) => {
                    obj.retain(|k, _| !read_only(k));
                    !obj.is_empty()
                }
                _ => true,
            });
            !items.is_empty()
        }
        _ => true,
    }
}

/// The object stored under an extension URN, created when missing.
fn ext_map<'a>(out: &'a mut Attributes, urn: &str) -> &'a mut Map<String, Value> {
    let slot = out
        .entry(urn.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{ENTERPRISE_USER_URN, SchemaRegistry};
    use serde_json::json;

    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

    fn normalize(rt: &str, body: Value) -> Result<Value> {
        let r = SchemaRegistry::builtin();
        let rt = r.resource_type(rt).unwrap();
        request_body(&r, rt, body).map(Value::Object)
    }

    /// (dialect, resource type, body, expected attributes)
    #[test]
    fn dialects() {
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            (
                "names in any case become canonical",
                "User",
                json!({"UserName": "a", "Active": true, "NAME": {"GivenName": "B"}, "Emails": [{"Value": "a@b", "Primary": true}]}),
                json!({"userName": "a", "active": true, "name": {"givenName": "B"}, "emails": [{"value": "a@b", "primary": true}]}),
            ),
            (
                "string booleans at the top level and nested in primary",
                "User",
                json!({"userName": "a", "active": "False", "emails": [{"value": "a@b", "primary": "True"}]}),
                json!({"userName": "a", "active": false, "emails": [{"value": "a@b", "primary": true}]}),
            ),
            (
                "null means absent (Entra legacy example 2)",
                "User",
                json!({"userName": "jyoung", "addresses": null, "phoneNumbers": null, "preferredLanguage": null,
                       "title": null, "department": null, "manager": null}),
                json!({"userName": "jyoung"}),
            ),
            (
                "unknown and malformed schemas URNs are ignored",
                "User",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"], "userName": "a"}),
                json!({"userName": "a"}),
            ),
            (
                "Microsoft ADSCIM group URN is ignored; meta and id dropped",
                "Group",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                                   "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                       "externalId": "8aa1", "displayName": "G", "meta": {"resourceType": "Group"}, "id": "x"}),
                json!({"externalId": "8aa1", "displayName": "G"}),
            ),
            (
                "Okta create: groups (readOnly) dropped, password kept",
                "User",
                json!({"userName": "t", "groups": [], "password": "1mz050nq", "locale": "en-US"}),
                json!({"userName": "t", "password": "1mz050nq", "locale": "en-US"}),
            ),
            (
                "manager as a string id under the extension",
                "User",
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": "123456"}}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": {"value": "123456"}}}),
            ),
            (
                "manager as an object with a capitalised key",
                "User",
                json!({"userName": "a", "Manager": {"Value": "42"}}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": {"value": "42"}}}),
            ),
            (
                "manager as the legacy array",
                "User",
                json!({"userName": "a", "manager": [{"$ref": "https://x/Users/1", "value": "1"}]}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": {"$ref": "https://x/Users/1", "value": "1"}}}),
            ),
            (
                "top-level unqualified manager and department move under the URN",
                "User",
                json!({"userName": "a", "manager": "9", "department": "Eng"}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": {"value": "9"}, "department": "Eng"}}),
            ),
            (
                "HR push: manager.displayName is readOnly and dropped; employeeNumber kept",
                "User",
                json!({"userName": "b", ENTERPRISE_USER_URN: {"employeeNumber": "701984",
                       "manager": {"value": "89607", "displayName": "John Smith"}}}),
                json!({"userName": "b", ENTERPRISE_USER_URN: {"employeeNumber": "701984", "manager": {"value": "89607"}}}),
            ),
            (
                "URN-qualified top-level key",
                "User",
                json!({"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops"}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"department": "Ops"}}),
            ),
            (
                "extension key matched case-insensitively; attribute names canonical",
                "User",
                json!({"userName": "a", "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"Department": "Ops", "CostCenter": "4130"}}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"department": "Ops", "costCenter": "4130"}}),
            ),
            (
                "roles whose value is a JSON-encoded object are unwrapped",
                "User",
                json!({"userName": "a", "roles": [{"value": "{\"id\":\"827f\",\"value\":\"Admin\",\"displayName\":\"Doc Admin\"}"}]}),
                json!({"userName": "a", "roles": [{"value": "Admin", "id": "827f", "displayName": "Doc Admin"}]}),
            ),
            (
                "roles: [] is absent",
                "User",
                json!({"userName": "a", "roles": []}),
                json!({"userName": "a"}),
            ),
            (
                "custom extension of an undeclared URN kept as sent",
                "User",
                json!({"userName": "a", CUSTOM: {"tag": "701984"}}),
                json!({"userName": "a", CUSTOM: {"tag": "701984"}}),
            ),
            (
                "undeclared top-level attributes kept as sent",
                "User",
                json!({"userName": "a", "favouriteColour": "teal", "nothing": null}),
                json!({"userName": "a", "favouriteColour": "teal"}),
            ),
            (
                "dotted keys set a sub-attribute",
                "User",
                json!({"userName": "a", "name": {"givenName": "B"}, "name.familyName": "J"}),
                json!({"userName": "a", "name": {"givenName": "B", "familyName": "J"}}),
            ),
            (
                "dotted key inside an extension object",
                "User",
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager.value": "42", "department": "Ops"}}),
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": {"value": "42"}, "department": "Ops"}}),
            ),
            (
                "core attributes nested under the core URN",
                "User",
                json!({"urn:ietf:params:scim:schemas:core:2.0:User": {"userName": "a"}}),
                json!({"userName": "a"}),
            ),
            (
                "group members: display is readOnly, $ref null dropped",
                "Group",
                json!({"displayName": "G", "members": [{"value": "u1", "display": "A", "$ref": null}]}),
                json!({"displayName": "G", "members": [{"value": "u1"}]}),
            ),
        ];
        for (name, rt, body, want) in cases {
            let got = normalize(rt, body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    /// (case, body, scimType, text the detail must contain)
    #[test]
    fn errors() {
        let cases: Vec<(&str, Value, ScimType, &str)> = vec![
            (
                "array body",
                json!([]),
                ScimType::InvalidSyntax,
                "JSON object",
            ),
            (
                "string body",
                json!("x"),
                ScimType::InvalidSyntax,
                "a string",
            ),
            (
                "non-boolean string",
                json!({"userName": "a", "active": "yes"}),
                ScimType::InvalidValue,
                "active",
            ),
            (
                "nested non-boolean primary",
                json!({"userName": "a", "emails": [{"value": "a@b", "primary": "maybe"}]}),
                ScimType::InvalidValue,
                "emails[0].primary",
            ),
            (
                "extension given a scalar",
                json!({"userName": "a", ENTERPRISE_USER_URN: "x"}),
                ScimType::InvalidValue,
                ENTERPRISE_USER_URN,
            ),
            (
                "manager given a number",
                json!({"userName": "a", "manager": 3}),
                ScimType::InvalidValue,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            ),
            (
                "dotted key into a multi-valued attribute",
                json!({"userName": "a", "emails.value": "a@b"}),
                ScimType::InvalidValue,
                "emails.value",
            ),
            (
                "single-valued given several values",
                json!({"userName": ["a", "b"]}),
                ScimType::InvalidValue,
                "userName",
            ),
        ];
        for (name, body, scim_type, detail) in cases {
            let err = normalize("User", body).expect_err(name);
            assert_eq!(err.scim_type(), Some(scim_type), "{name}: {err}");
            assert!(err.detail().contains(detail), "{name}: {}", err.detail());
        }
    }
}
