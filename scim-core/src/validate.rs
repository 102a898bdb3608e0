//! Validation by direction (RFC 7643 §2.2, §7): what a create, a replace and a PATCH result must
//! satisfy. Errors name the attribute by its wire path.
//!
//! Responses need no validator of their own: [`Resource::to_json`] drops `returned: never`
//! attributes, and [`crate::query::Projection`] applies `attributes`/`excludedAttributes`.
//!
//! ```
//! use scim_core::{normalize, validate, ScimType};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//! let attrs = normalize::request_body(&registry, users, json!({"userName": ""})).unwrap();
//! let err = validate::create(&registry, users, &attrs).unwrap_err();
//! assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
//! assert!(err.detail().contains("userName"));
//! ```

pub mod limits;

pub use limits::ResourceLimits;

use crate::error::{Error, Result};
use crate::resource::{Attributes, Resource};
use crate::schema::{
    AttributeDef, AttributeType, Mutability, ResourceType, Schema, SchemaRegistry,
};
use serde_json::{Map, Value};

/// Checks a normalised create body: required attributes present, at most one `primary: true` per
/// multi-valued attribute, required extensions present.
///
/// - RFC 7643 §2.2 `required`: an absent value, `null`, `""`, `[]` or `{}` counts as missing
///   (`invalidValue` naming the attribute). readOnly required attributes are the service
///   provider's to assign and are not checked.
/// - RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once."
/// - RFC 7643 §6 `schemaExtensions.required`: a required extension must be present.
/// - Required sub-attributes are checked in every value of a complex attribute that is present.
pub fn create(registry: &SchemaRegistry, rt: &ResourceType, attrs: &Attributes) -> Result<()> {
    if let Some(core) = registry.schema(&rt.schema) {
        check_schema(core, attrs, "")?;
    }
    for ext in &rt.schema_extensions {
        let Some(schema) = registry.schema(&ext.schema) else {
            continue;
        };
        match attrs.get(&schema.id).and_then(Value::as_object) {
            Some(obj) if !obj.is_empty() => check_schema(schema, obj, &format!("{}:", schema.id))?,
            _ if ext.required => {
                return Err(Error::invalid_value(format!(
                    "the extension {} is required for resource type {}",
                    schema.id, rt.name
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Builds the attributes of a replace (PUT, RFC 7644 §3.5.1) from the stored resource and the
/// normalised body: readOnly attributes keep their stored values, an `immutable` attribute that
/// changes is `mutability`, and `active` absent from the body keeps its stored value (project
/// decision: Okta and Entra PUTs that omit it must not suspend the user). Then validates as
/// [`create`] does.
///
/// Also kept when the body omits them:
/// - writeOnly attributes (`password`): a client cannot echo back what it was never shown
///   (RFC 7643 §7 `returned: never`), so its PUT omitting the password must not clear it;
/// - immutable attributes already set (RFC 7644 §3.5.1: "If one or more values are already set
///   for the attribute, the input value(s) MUST match, or HTTP status code 400 SHOULD be returned
///   with a "scimType" error code of "mutability""). Values compare case-insensitively unless the
///   attribute is `caseExact`.
///
/// Immutability is checked per attribute, not per sub-attribute: replacing a group's member list
/// adds and removes members, it does not modify one (`members.value` is immutable per element).
pub fn replace(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    existing: &Resource,
    incoming: Attributes,
) -> Result<Attributes> {
    let mut out = incoming;
    if let Some(core) = registry.schema(&rt.schema) {
        carry_over(core, &existing.attributes, &mut out, "")?;
    }
    for schema in registry.extensions(rt) {
        let stored = existing
            .attributes
            .get(&schema.id)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut ext = match out.remove(&schema.id) {
            Some(Value::Object(obj)) => obj,
            _ => Map::new(),
        };
        carry_over(schema, &stored, &mut ext, &format!("{}:", schema.id))?;
        if !ext.is_empty() {
            out.insert(schema.id.clone(), Value::Object(ext));
        }
    }
    create(registry, rt, &out)?;
    Ok(out)
}

/// Checks the attributes a PATCH produced (required attributes still present, one primary,
/// required extensions present): the same rules as [`create`], so a PATCH cannot remove
/// `userName` or set two primary emails.
pub fn patch_result(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    attrs: &Attributes,
) -> Result<()> {
    create(registry, rt, attrs)
}

fn carry_over(
    schema: &Schema,
    stored: &Map<String, Value>,
    out: &mut Map<String, Value>,
    prefix: &str,
) -> Result<()> {
    for def in &schema.attributes {
        let name = &def.name;
        let old = stored.get(name).filter(|v| !is_missing(v));
        match def.mutability {
            Mutability::ReadOnly => {
                out.remove(name);
                if let Some(old) = old {
                    out.insert(name.clone(), old.clone());
                }
            }
            Mutability::Immutable => match (old, out.get(name)) {
                (Some(old), Some(new)) if !same_value(def, old, new) => {
                    return Err(Error::mutability(format!(
                        "{prefix}{name} is immutable and already set; a replace must send the \
                         stored value or omit it (RFC 7644 §3.5.1)"
                    )));
                }
                (Some(old), None) => {
                    out.insert(name.clone(), old.clone());
                }
                _ => {}
            },
            Mutability::WriteOnly => {
                if let (Some(old), false) = (old, out.contains_key(name)) {
                    out.insert(name.clone(), old.clone());
                }
            }
            Mutability::ReadWrite => {
                let keep =
                    prefix.is_empty() && name == "active" && def.kind == AttributeType::Boolean;
                if let (true, Some(old), false) = (keep, old, out.contains_key(name)) {
                    out.insert(name.clone(), old.clone());
                }
            }
        }
    }
    Ok(())
}

fn check_schema(schema: &Schema, attrs: &Map<String, Value>, prefix: &str) -> Result<()> {
    for def in &schema.attributes {
        let value = attrs.get(&def.name);
        let missing = value.is_none_or(is_missing);
        if def.required && def.mutability != Mutability::ReadOnly && missing {
            return Err(Error::invalid_value(format!(
                "{prefix}{} is required (RFC 7643 §2.2) and was missing or empty",
                def.name
            )));
        }
        let Some(value) = value else { continue };
        if def.kind != AttributeType::Complex {
            continue;
        }
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut primaries = 0;
        for (i, item) in items.iter().enumerate() {
            let Some(obj) = item.as_object() else {
                continue;
            };
            if obj.get("primary") == Some(&Value::Bool(true)) {
                primaries += 1;
            }
            let at = if def.multi_valued {
                format!("{prefix}{}[{i}]", def.name)
            } else {
                format!("{prefix}{}", def.name)
            };
            check_subs(def, obj, &at)?;
        }
        if def.multi_valued && primaries > 1 {
            return Err(Error::invalid_value(format!(
                "{prefix}{}: {primaries} values have primary true; at most one may (RFC 7643 §2.4)",
                def.name
            )));
        }
    }
    Ok(())
}

fn check_subs(def: &AttributeDef, obj: &Map<String, Value>, at: &str) -> Result<()> {
    for sub in &def.sub_attributes {
        if sub.required
            && sub.mutability != Mutability::ReadOnly
            && obj.get(&sub.name).is_none_or(is_missing)
        {
            return Err(Error::invalid_value(format!(
                "{at}.{} is required (RFC 7643 §2.2) and was missing or empty",
                sub.name
            )));
        }
    }
    Ok(())
}

/// Absent for the purposes of `required`: null, "", [] and {}.
fn is_missing(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn same_value(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !def.case_exact => {
            x.to_lowercase() == y.to_lowercase()
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::resource::Meta;
    use crate::schema::{ENTERPRISE_USER_URN, SchemaRegistry};
    use serde_json::json;

    fn registry() -> SchemaRegistry {
        let mut r = SchemaRegistry::builtin();
        let doc = json!({"id": "urn:example:acme:2.0:User", "attributes": [
            {"name": "badge", "type": "string", "mutability": "immutable"},
            {"name": "level", "type": "integer", "required": true}
        ]});
        r.add_schema(Schema::from_json(&doc).unwrap());
        r
    }

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    /// The expected failure: its scimType and a fragment of its detail.
    type Failure = (ScimType, &'static str);

    /// (case, resource type, attributes, Ok or (scimType, detail fragment))
    #[test]
    fn create_table() {
        let r = registry();
        let cases: Vec<(&str, &str, Value, Option<Failure>)> = vec![
            ("minimal user", "User", json!({"userName": "a"}), None),
            (
                "missing userName",
                "User",
                json!({"active": true}),
                Some((ScimType::InvalidValue, "userName")),
            ),
            (
                "empty userName",
                "User",
                json!({"userName": ""}),
                Some((ScimType::InvalidValue, "userName")),
            ),
            ("minimal group", "Group", json!({"displayName": "G"}), None),
            (
                "missing displayName",
                "Group",
                json!({"members": [{"value": "1"}]}),
                Some((ScimType::InvalidValue, "displayName")),
            ),
            (
                "one primary",
                "User",
                json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": false}]}),
                None,
            ),
            (
                "two primaries",
                "User",
                json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                Some((ScimType::InvalidValue, "emails")),
            ),
            (
                "two primary addresses",
                "User",
                json!({"userName": "a", "addresses": [{"primary": true}, {"primary": true}]}),
                Some((ScimType::InvalidValue, "addresses")),
            ),
        ];
        for (name, rt, body, want) in cases {
            let rt = r.resource_type(rt).unwrap();
            match (create(&r, rt, &attrs(body)), want) {
                (Ok(()), None) => {}
                (Err(e), Some((t, d))) => {
                    assert_eq!(e.scim_type(), Some(t), "{name}: {e}");
                    assert!(e.detail().contains(d), "{name}: {}", e.detail());
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn required_extension_and_its_required_attributes() {
        let mut r = registry();
        r.extend_resource_type("User", "urn:example:acme:2.0:User", true)
            .unwrap();
        let rt = r.resource_type("User").unwrap();
        let err = create(&r, rt, &attrs(json!({"userName": "a"}))).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
        assert!(err.detail().contains("urn:example:acme:2.0:User"), "{err}");
        let err = create(
            &r,
            rt,
            &attrs(json!({"userName": "a", "urn:example:acme:2.0:User": {"badge": "b"}})),
        )
        .unwrap_err();
        assert!(
            err.detail().contains("urn:example:acme:2.0:User:level"),
            "{err}"
        );
        create(
            &r,
            rt,
            &attrs(json!({"userName": "a", "urn:example:acme:2.0:User": {"level": 3}})),
        )
        .unwrap();
    }

    fn stored(v: Value) -> Resource {
        Resource::new(
            "User",
            "1",
            attrs(v),
            Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// (case, stored attributes, PUT body, expected result or (scimType, detail fragment))
    #[test]
    fn replace_table() {
        let mut r = registry();
        r.extend_resource_type("User", "urn:example:acme:2.0:User", false)
            .unwrap();
        let acme = "urn:example:acme:2.0:User";
        let cases: Vec<(&str, Value, Value, std::result::Result<Value, Failure>)> = vec![
            (
                "omitted active keeps the stored value (project decision)",
                json!({"userName": "a", "active": true}),
                json!({"userName": "a"}),
                Ok(json!({"userName": "a", "active": true})),
            ),
            (
                "active sent false is applied",
                json!({"userName": "a", "active": true}),
                json!({"userName": "a", "active": false}),
                Ok(json!({"userName": "a", "active": false})),
            ),
            (
                "omitted password (writeOnly) is kept",
                json!({"userName": "a", "password": "s3cret"}),
                json!({"userName": "b"}),
                Ok(json!({"userName": "b", "password": "s3cret"})),
            ),
            (
                "other omitted attributes are cleared (RFC 7644 §3.5.1)",
                json!({"userName": "a", "title": "VP", ENTERPRISE_USER_URN: {"department": "Eng"}}),
                json!({"userName": "a"}),
                Ok(json!({"userName": "a"})),
            ),
            (
                "readOnly groups are not taken from the body",
                json!({"userName": "a"}),
                json!({"userName": "a", "groups": [{"value": "g"}]}),
                Ok(json!({"userName": "a"})),
            ),
            (
                "immutable value resent unchanged",
                json!({"userName": "a", acme: {"badge": "B-1", "level": 1}}),
                json!({"userName": "a", acme: {"badge": "b-1", "level": 2}}),
                Ok(json!({"userName": "a", acme: {"badge": "b-1", "level": 2}})),
            ),
            (
                "immutable value omitted is kept",
                json!({"userName": "a", acme: {"badge": "B-1", "level": 1}}),
                json!({"userName": "a", acme: {"level": 2}}),
                Ok(json!({"userName": "a", acme: {"level": 2, "badge": "B-1"}})),
            ),
            (
                "immutable value changed",
                json!({"userName": "a", acme: {"badge": "B-1", "level": 1}}),
                json!({"userName": "a", acme: {"badge": "B-2", "level": 1}}),
                Err((ScimType::Mutability, "urn:example:acme:2.0:User:badge")),
            ),
            (
                "immutable value set for the first time",
                json!({"userName": "a"}),
                json!({"userName": "a", acme: {"badge": "B-2", "level": 1}}),
                Ok(json!({"userName": "a", acme: {"badge": "B-2", "level": 1}})),
            ),
            (
                "replace still requires userName",
                json!({"userName": "a"}),
                json!({"displayName": "A"}),
                Err((ScimType::InvalidValue, "userName")),
            ),
        ];
        for (name, old, body, want) in cases {
            let rt = r.resource_type("User").unwrap();
            let got = replace(&r, rt, &stored(old), attrs(body));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(Value::Object(got), want, "{name}"),
                (Err(e), Err((t, d))) => {
                    assert_eq!(e.scim_type(), Some(t), "{name}: {e}");
                    assert!(e.detail().contains(d), "{name}: {}", e.detail());
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn patch_result_rejects_removed_user_name_and_second_primary() {
        let r = registry();
        let rt = r.resource_type("User").unwrap();
        assert!(patch_result(&r, rt, &attrs(json!({"userName": "a"}))).is_ok());
        let e = patch_result(&r, rt, &attrs(json!({"name": {"givenName": "x"}}))).unwrap_err();
        assert!(e.detail().contains("userName"));
        let e = patch_result(
            &r,
            rt,
            &attrs(json!({"userName": "a", "phoneNumbers": [{"value": "1", "primary": true}, {"value": "2", "primary": true}]})),
        )
        .unwrap_err();
        assert!(e.detail().contains("phoneNumbers"));
    }
}
