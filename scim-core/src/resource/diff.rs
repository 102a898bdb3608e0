//! What changed between two versions of a resource's attributes: the one diff behind
//! `PatchOutcome::changed_paths` and every `Change::changed_paths`.

use super::Attributes;
use serde_json::{Map, Value};

/// The top-level wire paths whose value differs between two attribute maps: keys of `after` in
/// order, then keys only in `before`. An extension object (a key starting with `urn:` whose
/// values are objects) is compared attribute by attribute, giving URN-qualified paths such as
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`. `null` counts as
/// absent (RFC 7644 §3.5.2.3: a `null` value is "unassigned").
///
/// ```
/// use scim_core::resource::changed_paths;
/// use serde_json::json;
///
/// let attrs = |v: serde_json::Value| v.as_object().unwrap().clone();
/// let before = attrs(json!({"title": "Dev", "nickName": null}));
/// let after = attrs(json!({"title": "VP"}));
/// assert_eq!(changed_paths(&before, &after), ["title"]);
/// ```
pub fn changed_paths(before: &Attributes, after: &Attributes) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(before, after, None, &mut out);
    out
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

fn diff_into(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    urn: Option<&str>,
    out: &mut Vec<String>,
) {
    let keys = after
        .keys()
        .chain(before.keys().filter(|k| !after.contains_key(*k)));
    for key in keys {
        let old = before.get(key).filter(|v| !v.is_null());
        let new = after.get(key).filter(|v| !v.is_null());
        if old == new {
            continue;
        }
        let is_extension = urn.is_none()
            && is_urn(key)
            && old.is_none_or(Value::is_object)
            && new.is_none_or(Value::is_object);
        if is_extension {
            let empty = Map::new();
            let old = old.and_then(Value::as_object).unwrap_or(&empty);
            let new = new.and_then(Value::as_object).unwrap_or(&empty);
            diff_into(old, new, Some(key), out);
            continue;
        }
        let path = match urn {
            Some(urn) => format!("{urn}:{key}"),
            None => key.clone(),
        };
        if !out.contains(&path) {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE_USER_URN;
    use serde_json::json;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    /// (before, after, expected paths)
    #[test]
    fn changed_paths_table() {
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (json!({"userName": "a"}), json!({"userName": "a"}), vec![]),
            (
                json!({"userName": "a"}),
                json!({"userName": "b"}),
                vec!["userName"],
            ),
            (json!({"title": "x"}), json!({}), vec!["title"]),
            (json!({}), json!({"title": "x"}), vec!["title"]),
            (json!({"title": null}), json!({}), vec![]),
            (json!({}), json!({"title": null}), vec![]),
            (
                json!({"name": {"givenName": "a"}}),
                json!({"name": {"givenName": "b"}}),
                vec!["name"],
            ),
            (
                json!({ENTERPRISE_USER_URN: {"department": "A", "manager": {"value": "1"}}}),
                json!({ENTERPRISE_USER_URN: {"department": "A", "manager": {"value": "2"}}}),
                vec!["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"],
            ),
            (
                json!({ENTERPRISE_USER_URN: {"department": "A"}}),
                json!({}),
                vec!["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"],
            ),
            // An undeclared custom extension is compared attribute by attribute too.
            (
                json!({"urn:example:ext:1.0:User": {"badge": "1"}}),
                json!({"urn:example:ext:1.0:User": {"badge": "2", "floor": 3}}),
                vec![
                    "urn:example:ext:1.0:User:badge",
                    "urn:example:ext:1.0:User:floor",
                ],
            ),
            (
                json!({"a": 1, "b": 2, "c": 3}),
                json!({"c": 4, "b": 2, "d": 5}),
                vec!["c", "d", "a"],
            ),
        ];
        for (before, after, want) in cases {
            assert_eq!(
                changed_paths(&attrs(before.clone()), &attrs(after.clone())),
                want,
                "{before} -> {after}"
            );
        }
    }
}
