//! Change descriptions: what every accepted write did, the input of the outbox, the audit log and
//! the Graph bridge.
//!
//! A [`Change`] is stored as JSON, so its serde form is a contract: camelCase keys, the
//! operation in lower case. It never carries a secret: `password` is removed from the
//! `before`/`after` snapshots (its path still appears in `changedPaths`, so a consumer knows a
//! password was set without seeing it).
//!
//! ```
//! use scim_core::change::{Change, Operation};
//! use scim_core::resource::{Meta, Resource};
//! use serde_json::json;
//!
//! let attrs = |v: serde_json::Value| v.as_object().unwrap().clone();
//! let now = time::OffsetDateTime::UNIX_EPOCH;
//! let before = Resource::new("User", "u1", attrs(json!({"userName": "a", "title": "Dev"})), Meta::new(now));
//! let mut after = Resource::new("User", "u1", attrs(json!({"userName": "a", "title": "VP", "password": "s3cret"})), Meta::new(now));
//! after.meta.version = 2;
//!
//! let change = Change::replaced(&before, &after);
//! assert_eq!(change.operation, Operation::Replace);
//! assert_eq!(change.changed_paths, ["title", "password"]);
//! let stored = serde_json::to_value(&change).unwrap();
//! assert_eq!(stored["operation"], "replace");
//! assert_eq!(stored["version"], 2);
//! assert!(stored["after"].get("password").is_none());
//! ```

use crate::patch::{MembershipDelta, PatchOutcome};
use crate::resource::{Attributes, Resource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// POST (RFC 7644 §3.3).
    Create,
    /// PUT (RFC 7644 §3.5.1).
    Replace,
    /// PATCH (RFC 7644 §3.5.2).
    Patch,
    /// DELETE (RFC 7644 §3.6).
    Delete,
}

/// What one accepted write did to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The resource type name, e.g. `User`.
    pub resource_type: String,
    /// The resource id.
    pub id: String,
    /// The resource version after the write (for a delete: the version deleted).
    pub version: u64,
    /// The kind of write.
    pub operation: Operation,
    /// Top-level wire paths whose value changed (extension attributes URN-qualified), in
    /// attribute order. `members` appears when membership changed.
    pub changed_paths: Vec<String>,
    /// The attributes before the write (none for a create), without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The attributes after the write (none for a delete), without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Membership changes of a group PATCH applied as a delta (the member list itself is then
    /// in neither snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MembershipDelta>,
}

impl Change {
    /// A create: every attribute of `created` is a changed path.
    pub fn created(created: &Resource) -> Self {
        Self {
            resource_type: created.resource_type.clone(),
            id: created.id.clone(),
            version: created.meta.version,
            operation: Operation::Create,
            changed_paths: diff_paths(&Attributes::new(), &created.attributes),
            before: None,
            after: Some(snapshot(&created.attributes)),
            members: None,
        }
    }

    /// A replace (PUT).
    pub fn replaced(before: &Resource, after: &Resource) -> Self {
        Self {
            resource_type: after.resource_type.clone(),
            id: after.id.clone(),
            version: after.meta.version,
            operation: Operation::Replace,
            changed_paths: diff_paths(&before.attributes, &after.attributes),
            before: Some(snapshot(&before.attributes)),
            after: Some(snapshot(&after.attributes)),
            members: None,
        }
    }

    /// A PATCH. The changed paths are the outcome's; when the outcome names none they are
    /// computed from the snapshots. A membership delta adds `members` to the paths.
    ///
    /// A PATCH whose outcome is not `changed` is no write: it bumps no version and records no
    /// change, so a server does not call this for it.
    pub fn patched(before: &Resource, after: &Resource, outcome: &PatchOutcome) -> Self {
        let mut changed_paths = if outcome.changed_paths.is_empty() {
            diff_paths(&before.attributes, &after.attributes)
        } else {
            outcome.changed_paths.clone()
        };
        let delta_changes = outcome
            .members
            .as_ref()
            .is_some_and(|d| d.clear || !d.added.is_empty() || !d.removed.is_empty());
        if delta_changes && !changed_paths.iter().any(|p| p == "members") {
            changed_paths.push("members".into());
        }
        Self {
            resource_type: after.resource_type.clone(),
            id: after.id.clone(),
            version: after.meta.version,
            operation: Operation::Patch,
            changed_paths,
            before: Some(snapshot(&before.attributes)),
            after: Some(snapshot(&after.attributes)),
            members: outcome.members.clone(),
        }
    }

    /// A delete: every attribute of `deleted` is a changed path.
    pub fn deleted(deleted: &Resource) -> Self {
        Self {
            resource_type: deleted.resource_type.clone(),
            id: deleted.id.clone(),
            version: deleted.meta.version,
            operation: Operation::Delete,
            changed_paths: diff_paths(&deleted.attributes, &Attributes::new()),
            before: Some(snapshot(&deleted.attributes)),
            after: None,
            members: None,
        }
    }
}

/// Attribute names never copied into a change: secrets must not reach the outbox or the audit
/// log (RFC 7643 §7 `returned: never`).
const SECRETS: &[&str] = &["password"];

fn is_secret(key: &str) -> bool {
    SECRETS.iter().any(|s| s.eq_ignore_ascii_case(key))
}

/// The attributes as a JSON object without secrets (also inside extension objects).
fn snapshot(attrs: &Attributes) -> Value {
    let mut out = attrs.clone();
    out.retain(|k, _| !is_secret(k));
    for value in out.values_mut() {
        if let Value::Object(ext) = value {
            ext.retain(|k, _| !is_secret(k));
        }
    }
    Value::Object(out)
}

/// The top-level wire paths whose value differs between two attribute maps: keys of `after` in
/// order, then keys only in `before`. An extension object (a key starting with `urn:`) is
/// compared attribute by attribute, giving URN-qualified paths such as
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`. `null` counts as
/// absent.
pub fn diff_paths(before: &Attributes, after: &Attributes) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(before, after, None, &mut out);
    out
}

fn diff_into(
    before: &serde_json::Map<String, Value>,
    after: &serde_json::Map<String, Value>,
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
            && key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
            && old.is_none_or(Value::is_object)
            && new.is_none_or(Value::is_object);
        if is_extension {
            let empty = serde_json::Map::new();
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
    use crate::resource::Meta;
    use crate::schema::ENTERPRISE_USER_URN;
    use serde_json::json;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    fn resource(version: u64, v: Value) -> Resource {
        let mut r = Resource::new(
            "User",
            "u1",
            attrs(v),
            Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        );
        r.meta.version = version;
        r
    }

    /// (before, after, expected paths)
    #[test]
    fn diff_paths_table() {
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
            (
                json!({"a": 1, "b": 2, "c": 3}),
                json!({"c": 4, "b": 2, "d": 5}),
                vec!["c", "d", "a"],
            ),
        ];
        for (before, after, want) in cases {
            assert_eq!(
                diff_paths(&attrs(before.clone()), &attrs(after.clone())),
                want,
                "{before} -> {after}"
            );
        }
    }

    #[test]
    fn constructors_and_redaction() {
        let before = resource(
            1,
            json!({"userName": "a", "password": "old", "active": true}),
        );
        let after = resource(
            2,
            json!({"userName": "a", "password": "new", "active": false}),
        );

        let c = Change::created(&before);
        assert_eq!((c.operation, c.version), (Operation::Create, 1));
        assert_eq!(c.changed_paths, ["userName", "password", "active"]);
        assert_eq!(c.after, Some(json!({"userName": "a", "active": true})));
        assert!(c.before.is_none());

        let c = Change::replaced(&before, &after);
        assert_eq!(c.changed_paths, ["password", "active"]);
        assert_eq!(c.before, Some(json!({"userName": "a", "active": true})));

        let c = Change::deleted(&after);
        assert_eq!((c.operation, c.version), (Operation::Delete, 2));
        assert!(c.after.is_none());
        assert_eq!(c.before, Some(json!({"userName": "a", "active": false})));
        // Nothing secret anywhere in the stored form.
        let stored = serde_json::to_string(&Change::replaced(&before, &after)).unwrap();
        assert!(
            !stored.contains("old") && !stored.contains("new"),
            "{stored}"
        );
    }

    #[test]
    fn patched_uses_outcome_paths_and_members_delta() {
        let before = resource(3, json!({"displayName": "G"}));
        let after = resource(4, json!({"displayName": "G"}));
        let outcome = PatchOutcome {
            attributes: after.attributes.clone(),
            changed: true,
            changed_paths: Vec::new(),
            members: Some(MembershipDelta {
                clear: false,
                added: vec!["u1".into()],
                removed: vec![],
            }),
        };
        let c = Change::patched(&before, &after, &outcome);
        assert_eq!(c.changed_paths, ["members"]);
        assert_eq!(c.version, 4);
        let stored = serde_json::to_value(&c).unwrap();
        assert_eq!(stored["members"], json!({"added": ["u1"], "removed": []}));
        assert_eq!(stored["operation"], "patch");
        assert_eq!(stored["resourceType"], "User");
        assert_eq!(stored["changedPaths"], json!(["members"]));
        // The stored form reads back.
        let back: Change = serde_json::from_value(stored).unwrap();
        assert_eq!(back, c);

        let renamed = resource(5, json!({"displayName": "H"}));
        let outcome = PatchOutcome {
            attributes: renamed.attributes.clone(),
            changed: true,
            changed_paths: vec!["displayName".into()],
            members: None,
        };
        let c = Change::patched(&after, &renamed, &outcome);
        assert_eq!(c.changed_paths, ["displayName"]);
        assert!(c.members.is_none());
    }
}
