//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) applied to a resource's JSON, and the
//! question "does this projection need attribute X loaded at all?" (so `excludedAttributes=members`
//! never touches the membership table).

use scim_core::query::Projection;
use scim_core::schema::{Location, ResolvedPath, ResourceType, Returned, SchemaRegistry};
use serde_json::{Map, Value};

/// Whether the projection returns the top-level attribute `name` of the core schema (for
/// deciding what to load). `returned: default` attributes are returned unless excluded or unless
/// `attributes` lists others.
pub fn includes(projection: &Projection, name: &str) -> bool {
    let names = |p: &ResolvedPath| p.location != Location::Extension && p.attr.name == name;
    if projection
        .excluded
        .iter()
        .any(|p| names(p) && p.sub.is_none())
    {
        return false;
    }
    projection.attributes.is_empty() || projection.attributes.iter().any(names)
}

/// Applies a projection to a resource representation (as `Resource::to_json` gives it).
///
/// `schemas`, `id` and every `returned: always` attribute are kept whatever the projection says;
/// `returned: request` attributes appear only when named.
pub fn project(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    json: Value,
    projection: &Projection,
) -> Value {
    let Value::Object(full) = json else {
        return json;
    };
    let mut out = if projection.attributes.is_empty() {
        let mut out = full.clone();
        drop_requested_only(registry, rt, &mut out);
        out
    } else {
        let mut out = Map::new();
        for key in ["schemas", "id"] {
            if let Some(v) = full.get(key) {
                out.insert(key.to_string(), v.clone());
            }
        }
        copy_always(registry, rt, &full, &mut out);
        for path in &projection.attributes {
            copy_path(&full, &mut out, path);
        }
        out
    };
    for path in &projection.excluded {
        if path.attr.returned == Returned::Always || path.attr.name == "id" {
            continue;
        }
        remove_path(&mut out, path);
    }
    Value::Object(reorder(&full, out))
}

/// Keeps the representation's key order.
fn reorder(full: &Map<String, Value>, mut out: Map<String, Value>) -> Map<String, Value> {
    let mut ordered = Map::new();
    for key in full.keys() {
        if let Some(v) = out.remove(key) {
            ordered.insert(key.clone(), v);
        }
    }
    ordered.extend(out);
    ordered
}

fn schemas_of<'a>(
    registry: &'a SchemaRegistry,
    rt: &'a ResourceType,
) -> impl Iterator<Item = (bool, &'a scim_core::schema::Schema)> + 'a {
    registry
        .schema(&rt.schema)
        .map(|s| (true, s))
        .into_iter()
        .chain(registry.extensions(rt).map(|s| (false, s)))
}

fn copy_always(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    full: &Map<String, Value>,
    out: &mut Map<String, Value>,
) {
    for (core, schema) in schemas_of(registry, rt) {
        for attr in schema
            .attributes
            .iter()
            .filter(|a| a.returned == Returned::Always)
        {
            if core {
                if let Some(v) = full.get(&attr.name) {
                    out.insert(attr.name.clone(), v.clone());
                }
            } else if let Some(v) = full
                .get(&schema.id)
                .and_then(|e| e.as_object())
                .and_then(|e| e.get(&attr.name))
            {
                ext_object(out, &schema.id).insert(attr.name.clone(), v.clone());
            }
        }
    }
}

fn drop_requested_only(registry: &SchemaRegistry, rt: &ResourceType, out: &mut Map<String, Value>) {
    for (core, schema) in schemas_of(registry, rt) {
        for attr in schema
            .attributes
            .iter()
            .filter(|a| a.returned == Returned::Request)
        {
            if core {
                out.remove(&attr.name);
            } else if let Some(ext) = out.get_mut(&schema.id).and_then(|e| e.as_object_mut()) {
                ext.remove(&attr.name);
            }
        }
    }
}

fn ext_object<'a>(out: &'a mut Map<String, Value>, urn: &str) -> &'a mut Map<String, Value> {
    let entry = out
        .entry(urn.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("just made an object")
}

/// The container holding the attribute: the top level, or the extension object.
fn container<'a>(
    full: &'a Map<String, Value>,
    path: &ResolvedPath,
) -> Option<&'a Map<String, Value>> {
    match path.location {
        Location::Extension => full.get(&path.schema)?.as_object(),
        _ => Some(full),
    }
}

fn copy_path(full: &Map<String, Value>, out: &mut Map<String, Value>, path: &ResolvedPath) {
    let Some(value) = container(full, path).and_then(|c| c.get(&path.attr.name)) else {
        return;
    };
    let target = match path.location {
        Location::Extension => ext_object(out, &path.schema),
        _ => out,
    };
    let Some(sub) = &path.sub else {
        target.insert(path.attr.name.clone(), value.clone());
        return;
    };
    let pick = |v: &Value| -> Option<Value> {
        let field = v.as_object()?.get(&sub.name)?;
        Some(Value::Object(Map::from_iter([(
            sub.name.clone(),
            field.clone(),
        )])))
    };
    let merge = |existing: Option<&mut Value>, new: Value| match (existing, new) {
        (Some(Value::Object(e)), Value::Object(n)) => {
            e.extend(n);
            None
        }
        (_, n) => Some(n),
    };
    match value {
        Value::Array(items) => {
            let existing = target
                .get_mut(&path.attr.name)
                .and_then(|v| v.as_array_mut());
            match existing {
                Some(existing) if existing.len() == items.len() => {
                    for (e, item) in existing.iter_mut().zip(items) {
                        if let Some(p) = pick(item)
                            && let Some(n) = merge(Some(e), p)
                        {
                            *e = n;
                        }
                    }
                }
                _ => {
                    let picked: Vec<Value> = items
                        .iter()
                        .map(|i| pick(i).unwrap_or_else(|| Value::Object(Map::new())))
                        .collect();
                    target.insert(path.attr.name.clone(), Value::Array(picked));
                }
            }
        }
        other => {
            if let Some(p) = pick(other)
                && let Some(n) = merge(target.get_mut(&path.attr.name), p)
            {
                target.insert(path.attr.name.clone(), n);
            }
        }
    }
}

fn remove_path(out: &mut Map<String, Value>, path: &ResolvedPath) {
    let holder = match path.location {
        Location::Extension => match out.get_mut(&path.schema).and_then(|e| e.as_object_mut()) {
            Some(e) => e,
            None => return,
        },
        _ => out,
    };
    match &path.sub {
        None => {
            holder.remove(&path.attr.name);
        }
        Some(sub) => match holder.get_mut(&path.attr.name) {
            Some(Value::Array(items)) => {
                for item in items {
                    if let Some(o) = item.as_object_mut() {
                        o.remove(&sub.name);
                    }
                }
            }
            Some(Value::Object(o)) => {
                o.remove(&sub.name);
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proj(attrs: &[&str], excluded: &[&str]) -> (SchemaRegistry, Projection) {
        let registry = SchemaRegistry::builtin();
        let rt = registry.resource_type("User").unwrap().clone();
        let resolve = |p: &&str| registry.resolve_str(&rt, p).unwrap();
        let projection = Projection {
            attributes: attrs.iter().map(resolve).collect(),
            excluded: excluded.iter().map(resolve).collect(),
        };
        (registry, projection)
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@x", "type": "work"}, {"value": "c@x", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng", "employeeNumber": "7"},
            "meta": {"resourceType": "User"}
        })
    }

    /// (attributes, excludedAttributes, expected)
    #[test]
    fn projection_table() {
        let cases: Vec<(&[&str], &[&str], Value)> = vec![
            (&[], &[], user()),
            (
                &["userName"],
                &[],
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "bjensen"}),
            ),
            (
                &["emails.value", "name.givenName"],
                &[],
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1",
                       "name": {"givenName": "Barbara"}, "emails": [{"value": "b@x"}, {"value": "c@x"}]}),
            ),
            (
                &["department"],
                &[],
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng"}}),
            ),
            (
                &[],
                &["emails", "name.familyName", "id", "employeeNumber"],
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "bjensen",
                       "name": {"givenName": "Barbara"},
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng"},
                       "meta": {"resourceType": "User"}}),
            ),
        ];
        for (attrs, excluded, want) in cases {
            let (registry, p) = proj(attrs, excluded);
            let rt = registry.resource_type("User").unwrap();
            assert_eq!(
                project(&registry, rt, user(), &p),
                want,
                "{attrs:?} {excluded:?}"
            );
        }
    }

    #[test]
    fn includes_decides_loading() {
        let registry = SchemaRegistry::builtin();
        let groups = registry.resource_type("Group").unwrap();
        let members = registry.resolve_str(groups, "members").unwrap();
        let display = registry.resolve_str(groups, "displayName").unwrap();
        let member_value = registry.resolve_str(groups, "members.value").unwrap();
        let p = |attributes: Vec<ResolvedPath>, excluded: Vec<ResolvedPath>| Projection {
            attributes,
            excluded,
        };
        assert!(includes(&p(vec![], vec![]), "members"));
        assert!(!includes(&p(vec![], vec![members.clone()]), "members"));
        assert!(includes(&p(vec![], vec![member_value.clone()]), "members"));
        assert!(!includes(&p(vec![display], vec![]), "members"));
        assert!(includes(&p(vec![member_value], vec![]), "members"));
    }
}
