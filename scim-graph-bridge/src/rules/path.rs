//! SCIM attribute paths as used in `when` keys and `[match] scim`, on `scim-core`'s grammar and
//! schemas.
//!
//! A path is what a PATCH `path` may be (RFC 7644 §3.5.2, parsed by
//! [`scim_core::patch::parse_path`]): `[URN ":"] attr ["." subAttr]` or
//! `[URN ":"] attr "[" valFilter "]" ["." subAttr]`. It is resolved against the builtin User
//! resource type ([`SchemaRegistry::resolve`]): names compare case-insensitively (RFC 7643 §2.1)
//! and come out canonical; an unqualified name the core schema does not declare is looked up in
//! the enterprise extension, so `department` and `manager.value` work without their URN.
//! Attributes no schema declares (a custom extension's) are kept as written and read as such.
//!
//! The filter inside `[...]` is a full RFC 7644 §3.4.2.2 value filter, evaluated by
//! [`Filter::matches_element`]: every operator (`eq ne co sw ew pr gt ge lt le`) with `and`,
//! `or`, `not`, and string comparisons that follow the sub-attribute's `caseExact` (RFC 7643
//! §2.2): `emails[type eq "WORK"]` matches a `work` email because `type` is not case-exact.
//! The conditions of a `when` table are another matter: they compare values case-insensitively
//! whatever the attribute (see [`super::Condition`]).

use std::sync::OnceLock;

use scim_core::filter::Filter;
use scim_core::patch::{PatchPath, parse_path};
use scim_core::schema::{
    AttributeDef, AttributeType, Location, ResolvedPath, ResourceType, SchemaRegistry,
    USER_RESOURCE,
};
use serde_json::{Map, Value};

/// The schemas paths resolve against: the builtin User (core and enterprise extension), the
/// representation the server's directory hands the bridge.
fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(SchemaRegistry::builtin)
}

fn users() -> &'static ResourceType {
    registry()
        .resource_type(USER_RESOURCE)
        .expect("the builtin registry has a User resource type")
}

/// A parsed and resolved attribute path.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrPath {
    /// The attribute (and sub-attribute, when the path names one after the attribute or after
    /// the `[...]` filter).
    pub path: ResolvedPath,
    /// The value filter of `attr[...]`, its paths naming sub-attributes of the attribute.
    pub filter: Option<Filter>,
}

impl AttrPath {
    /// Parses and resolves a path; the error explains what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim();
        if text.is_empty() {
            return Err("empty path".into());
        }
        let parsed = parse_path(text).map_err(|e| e.detail().to_owned())?;
        let (attr, filter, sub) = match &parsed {
            PatchPath::Attr(a) => (a, None, a.sub_attr.as_deref()),
            PatchPath::Value(v) => {
                if v.attr.sub_attr.is_some() {
                    return Err(format!(
                        "{text:?}: a filter applies to an attribute, not to a sub-attribute"
                    ));
                }
                (&v.attr, Some(&v.filter), v.sub_attr.as_deref())
            }
        };
        let uri = attr.uri.as_deref();
        let filter = match filter {
            None => None,
            Some(f) => {
                let parent = resolve(uri, &attr.name, None);
                Some(
                    Filter::resolve_value_filter(registry(), users(), &parent, f)
                        .map_err(|e| e.detail().to_owned())?,
                )
            }
        };
        Ok(Self {
            path: resolve(uri, &attr.name, sub),
            filter,
        })
    }

    /// The scalar values at this path in a SCIM user (multi-valued attributes flatten).
    /// `null` values are skipped.
    pub fn resolve(&self, resource: &Value) -> Vec<Value> {
        let Some(map) = resource.as_object() else {
            return Vec::new();
        };
        let Some(value) = attribute_value(&self.path, map) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            if self
                .filter
                .as_ref()
                .is_some_and(|f| !f.matches_element(item))
            {
                continue;
            }
            let leaf = match &self.path.sub {
                Some(sub) => item.as_object().and_then(|o| get_ci(o, &sub.name)),
                None => Some(item),
            };
            match leaf {
                Some(Value::Null) | None => {}
                Some(Value::Array(a)) => out.extend(a.iter().filter(|x| !x.is_null()).cloned()),
                Some(x) => out.push(x.clone()),
            }
        }
        out
    }
}

/// Resolves `[uri:]name[.sub]` against the User schemas; a name no schema declares becomes an
/// undeclared attribute where it was written (under its URN, else at the top level).
fn resolve(uri: Option<&str>, name: &str, sub: Option<&str>) -> ResolvedPath {
    let (registry, rt) = (registry(), users());
    if let Some(path) = registry.resolve(rt, uri, name, sub) {
        return path;
    }
    if let Some(sub) = sub
        && let Some(parent) = registry.resolve(rt, uri, name, None)
    {
        return ResolvedPath {
            sub: Some(AttributeDef::undeclared(sub)),
            declared: false,
            ..parent
        };
    }
    let (schema, location) = match uri {
        Some(uri) if !uri.eq_ignore_ascii_case(&rt.schema) => (
            registry.extension_urn(rt, uri).unwrap_or(uri).to_owned(),
            Location::Extension,
        ),
        _ => (rt.schema.clone(), Location::Core),
    };
    let mut attr = AttributeDef::undeclared(name);
    if sub.is_some() {
        attr.kind = AttributeType::Complex;
    }
    ResolvedPath {
        schema,
        location,
        attr,
        sub: sub.map(AttributeDef::undeclared),
        declared: false,
    }
}

/// The attribute's value, keys looked up exactly and else case-insensitively (a user from a
/// test directory need not use canonical names).
fn attribute_value<'a>(path: &ResolvedPath, user: &'a Map<String, Value>) -> Option<&'a Value> {
    match path.location {
        Location::Common | Location::Core => get_ci(user, &path.attr.name),
        Location::Extension => get_ci(get_ci(user, &path.schema)?.as_object()?, &path.attr.name),
    }
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Equality of scalars as rule conditions compare them: strings case-insensitively, numbers
/// numerically.
pub fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.to_lowercase() == y.to_lowercase(),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::{ENTERPRISE_USER_URN, USER_URN};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "ada@example.com",
            "title": "Support Engineer",
            "emails": [{"value": "a@x.example", "type": "work"}, {"value": "b@y.example", "type": "home"}],
            "addresses": [{"type": "work", "country": "GB"}, {"type": "home", "country": "FR"}],
            "name": {"givenName": "Ada"},
            ENTERPRISE_USER_URN: {"department": "IT", "manager": {"value": "m-1"}},
            "urn:example:acme:2.0:User": {"badge": "B-7"}
        })
    }

    #[test]
    fn resolves_paths() {
        let cases: &[(&str, Value)] = &[
            ("userName", json!(["ada@example.com"])),
            ("USERNAME", json!(["ada@example.com"])),
            ("name.givenName", json!(["Ada"])),
            ("emails.value", json!(["a@x.example", "b@y.example"])),
            ("emails[type eq \"work\"].value", json!(["a@x.example"])),
            // `type` is not caseExact (RFC 7643 §4.1.2): the comparison ignores case
            ("emails[type eq \"WORK\"].value", json!(["a@x.example"])),
            ("emails[value co \"@y.\"].type", json!(["home"])),
            (
                "emails[value ew \".example\" and not (type eq \"home\")].value",
                json!(["a@x.example"]),
            ),
            (
                "emails[type eq \"work\" or type eq \"home\"].value",
                json!(["a@x.example", "b@y.example"]),
            ),
            ("addresses[type eq \"work\"].country", json!(["GB"])),
            (
                "addresses[type eq \"WORK\" and country pr].country",
                json!(["GB"]),
            ),
            ("department", json!(["IT"])),
            ("manager.value", json!(["m-1"])),
            (&format!("{ENTERPRISE_USER_URN}:department"), json!(["IT"])),
            (&format!("{USER_URN}:title"), json!(["Support Engineer"])),
            ("urn:example:acme:2.0:User:badge", json!(["B-7"])),
            ("costCenter", json!([])),
            ("nickName", json!([])),
            ("undeclaredThing", json!([])),
        ];
        for (path, want) in cases {
            let p = AttrPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(Value::Array(p.resolve(&user())), *want, "{path}");
        }
    }

    #[test]
    fn names_come_out_canonical() {
        let p = AttrPath::parse("DEPARTMENT").unwrap();
        assert_eq!(
            (p.path.schema.as_str(), p.path.attr.name.as_str()),
            (ENTERPRISE_USER_URN, "department")
        );
        let p = AttrPath::parse("Name.GivenName").unwrap();
        assert_eq!(p.path.sub.map(|s| s.name), Some("givenName".into()));
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "",
            "1abc",
            "emails[type eq]",
            "emails[type eq \"x\"",
            "emails[type xx \"x\"].value",
            "a b",
            "emails[type eq \"w\"]value",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
