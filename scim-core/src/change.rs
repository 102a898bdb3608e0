//! Change descriptions: what every accepted write did, the input of the outbox, the audit log and
//! the Graph bridge.
//!
//! A [`Change`] is stored as JSON, so its serde form is a contract: camelCase keys, the
//! operation in lower case. It records **what changed, not two copies of the resource**: per
//! changed top-level path a [`PathChange`] with the new value (and the old one when it is at most
//! [`MAX_OLD_VALUE_BYTES`]); for an attribute that is an array on both sides, the elements added
//! and removed instead. A record stays small whatever the resource's size: a path whose values
//! take more than [`MAX_PATH_CHANGE_BYTES`] keeps only the SHA-256 and size of its new value
//! ([`Withheld`]), and while the paths together take more than [`MAX_DELTA_BYTES`] the largest
//! are withheld the same way (issue 13: a Bulk of 1,000 small PATCHes on a 0.9 MB user wrote
//! 685 MB of change log when every record held whole before/after snapshots).
//!
//! It never carries a secret: `password` is removed before the delta is taken (its path still
//! appears in `changedPaths` and in the delta without a value, so a consumer knows a password
//! was set without seeing it).
//!
//! Records written before the delta format hold whole `before`/`after` snapshots; they still
//! read as a [`Change`] (the delta is derived from the snapshots when read) and their stored
//! text, which the hash chain covers, is never rewritten.
//!
//! ```
//! use scim_core::change::{Change, Operation};
//! use scim_core::resource::{Meta, Resource};
//! use serde_json::json;
//!
//! let attrs = |v: serde_json::Value| v.as_object().unwrap().clone();
//! let now = time::OffsetDateTime::UNIX_EPOCH;
//! let before = Resource::new("User", "u1", attrs(json!({"userName": "a", "title": "Dev", "emails": [{"value": "a@x"}]})), Meta::new(now));
//! let mut after = Resource::new("User", "u1", attrs(json!({"userName": "a", "title": "VP", "emails": [{"value": "b@x"}], "password": "s3cret"})), Meta::new(now));
//! after.meta.version = 2;
//!
//! let registry = scim_core::schema::SchemaRegistry::builtin();
//! let change = Change::replaced(&registry, &before, &after, None);
//! assert_eq!(change.operation, Operation::Replace);
//! assert_eq!(change.changed_paths, ["title", "emails", "password"]);
//! let stored = serde_json::to_value(&change).unwrap();
//! assert_eq!(stored["operation"], "replace");
//! assert_eq!(stored["version"], 2);
//! assert_eq!(stored["delta"][0], json!({"path": "title", "value": "VP", "old": "Dev"}));
//! assert_eq!(stored["delta"][1], json!({"path": "emails", "added": [{"value": "b@x"}], "removed": [{"value": "a@x"}]}));
//! assert_eq!(stored["delta"][2], json!({"path": "password"}));
//! assert!(!stored.to_string().contains("s3cret"));
//! ```

use crate::patch::{MembershipDelta, PatchOutcome};
use crate::resource::{Attributes, Resource, changed_paths};
use crate::schema::SchemaRegistry;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The largest old value a [`PathChange`] keeps (compact JSON bytes): "the old one when small".
pub const MAX_OLD_VALUE_BYTES: usize = 1024;
/// The most bytes one path's values may take in a record before only their digest is kept.
pub const MAX_PATH_CHANGE_BYTES: usize = 8 * 1024;
/// The most bytes all paths' values of one record may take: beyond it the largest are withheld
/// (digest and size only) until the rest fits.
pub const MAX_DELTA_BYTES: usize = 32 * 1024;

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
#[serde(rename_all = "camelCase", from = "StoredChange")]
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
    /// What changed at each of `changed_paths`, in the same order, without secrets. A Group's
    /// membership delta is in `members`, not here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta: Vec<PathChange>,
    /// Membership changes of a group PATCH applied as a delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MembershipDelta>,
}

/// What a write did at one top-level path (see the module documentation for the bounds).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathChange {
    /// The wire path, as in `changedPaths`.
    pub path: String,
    /// The new value; absent when the attribute was removed, is secret, is an array on both
    /// sides (see `added`/`removed`), or is withheld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The previous value, when there was one of at most [`MAX_OLD_VALUE_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// An array on both sides: the elements now present that were not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<Value>>,
    /// An array on both sides: the elements no longer present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<Value>>,
    /// Set when the values were too large to keep: what identifies the new value instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

/// A new value too large to keep in a change record, identified by its size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    /// Its compact JSON length in bytes (0 when the attribute was removed).
    pub bytes: u64,
    /// Lower-case hex SHA-256 of its compact JSON (of the empty string when removed).
    pub sha256: String,
}

/// A record as stored: the delta format, or the earlier format with whole snapshots.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredChange {
    resource_type: String,
    id: String,
    version: u64,
    operation: Operation,
    changed_paths: Vec<String>,
    #[serde(default)]
    delta: Vec<PathChange>,
    #[serde(default)]
    members: Option<MembershipDelta>,
    /// Records before the delta format: the attributes before the write, without secrets.
    #[serde(default)]
    before: Option<Value>,
    /// Records before the delta format: the attributes after the write, without secrets.
    #[serde(default)]
    after: Option<Value>,
}

impl From<StoredChange> for Change {
    fn from(s: StoredChange) -> Self {
        let delta = if s.delta.is_empty() && (s.before.is_some() || s.after.is_some()) {
            let empty = Attributes::new();
            let as_map = |v: &Option<Value>| v.as_ref().and_then(Value::as_object).cloned();
            let (before, after) = (as_map(&s.before), as_map(&s.after));
            delta(
                &s.changed_paths,
                before.as_ref().unwrap_or(&empty),
                after.as_ref().unwrap_or(&empty),
            )
        } else {
            s.delta
        };
        Self {
            resource_type: s.resource_type,
            id: s.id,
            version: s.version,
            operation: s.operation,
            changed_paths: s.changed_paths,
            delta,
            members: s.members,
        }
    }
}

impl Change {
    fn new(
        registry: &SchemaRegistry,
        operation: Operation,
        subject: &Resource,
        before: Option<&Attributes>,
        after: Option<&Attributes>,
    ) -> Self {
        let empty = Attributes::new();
        let changed_paths = changed_paths(before.unwrap_or(&empty), after.unwrap_or(&empty));
        let before = before.map(|a| without_secrets(registry, &subject.resource_type, a));
        let after = after.map(|a| without_secrets(registry, &subject.resource_type, a));
        Self {
            resource_type: subject.resource_type.clone(),
            id: subject.id.clone(),
            version: subject.meta.version,
            operation,
            delta: delta(
                &changed_paths,
                before.as_ref().unwrap_or(&empty),
                after.as_ref().unwrap_or(&empty),
            ),
            changed_paths,
            members: None,
        }
    }

    /// A create: every attribute of `created` is a changed path.
    pub fn created(registry: &SchemaRegistry, created: &Resource) -> Self {
        Self::new(
            registry,
            Operation::Create,
            created,
            None,
            Some(&created.attributes),
        )
    }

    /// A replace (PUT). A Group's replaced member list is `members` (applied as a delta that
    /// clears first); it adds `members` to the changed paths.
    pub fn replaced(
        registry: &SchemaRegistry,
        before: &Resource,
        after: &Resource,
        members: Option<MembershipDelta>,
    ) -> Self {
        let mut change = Self::new(
            registry,
            Operation::Replace,
            after,
            Some(&before.attributes),
            Some(&after.attributes),
        );
        change.with_members(members);
        change
    }

    /// A PATCH: the changed paths and membership delta are the outcome's (the engine computed
    /// them; nothing recomputes them here).
    ///
    /// A PATCH whose outcome is not `changed` is no write: it bumps no version and records no
    /// change, so a server does not call this for it.
    pub fn patched(
        registry: &SchemaRegistry,
        before: &Resource,
        after: &Resource,
        outcome: &PatchOutcome,
    ) -> Self {
        let old = without_secrets(registry, &before.resource_type, &before.attributes);
        let new = without_secrets(registry, &after.resource_type, &after.attributes);
        Self {
            resource_type: after.resource_type.clone(),
            id: after.id.clone(),
            version: after.meta.version,
            operation: Operation::Patch,
            delta: delta(&outcome.changed_paths, &old, &new),
            changed_paths: outcome.changed_paths.clone(),
            members: outcome.members.clone(),
        }
    }

    /// A delete: every attribute of `deleted` is a changed path.
    pub fn deleted(registry: &SchemaRegistry, deleted: &Resource) -> Self {
        Self::new(
            registry,
            Operation::Delete,
            deleted,
            Some(&deleted.attributes),
            None,
        )
    }

    /// The membership side effect of deleting `member_id` on a group it belonged to: a PATCH
    /// of `group` (its new version) removing that member, so the group's ETag moves and change
    /// readers see the removal (RFC 7644 §3.6: the deleted resource "SHALL NOT" be returned,
    /// including as a member). `group` is a stored row, which never holds a secret.
    pub fn member_removed(group: &Resource, member_id: &str) -> Self {
        Self {
            resource_type: group.resource_type.clone(),
            id: group.id.clone(),
            version: group.meta.version,
            operation: Operation::Patch,
            changed_paths: vec!["members".into()],
            delta: vec![PathChange {
                path: "members".into(),
                ..PathChange::default()
            }],
            members: Some(MembershipDelta {
                clear: false,
                added: Vec::new(),
                removed: vec![member_id.to_string()],
            }),
        }
    }

    /// Records a membership delta: it adds `members` to the changed paths unless it changes
    /// nothing.
    pub fn with_members(&mut self, members: Option<MembershipDelta>) {
        if members.as_ref().is_some_and(|d| !d.is_empty())
            && !self.changed_paths.iter().any(|p| p == "members")
        {
            self.changed_paths.push("members".into());
            self.delta.push(PathChange {
                path: "members".into(),
                ..PathChange::default()
            });
        }
        self.members = members;
    }
}

/// The attributes without secrets (the schema's one rule, [`SchemaRegistry::strip_secrets`]).
fn without_secrets(
    registry: &SchemaRegistry,
    resource_type: &str,
    attrs: &Attributes,
) -> Attributes {
    let mut out = attrs.clone();
    if let Some(rt) = registry.resource_type(resource_type) {
        registry.strip_secrets(rt, &mut out);
    }
    out
}

/// The value at a wire path of `changedPaths`: a top-level attribute, or
/// `<extension URN>:<attribute>` inside that extension's object.
fn value_at<'a>(attrs: &'a Attributes, path: &str) -> Option<&'a Value> {
    if let Some(v) = attrs.get(path) {
        return Some(v).filter(|v| !v.is_null());
    }
    attrs.iter().find_map(|(urn, ext)| {
        let rest = path.strip_prefix(urn.as_str())?.strip_prefix(':')?;
        ext.as_object()?.get(rest).filter(|v| !v.is_null())
    })
}

fn json_len(v: &impl Serialize) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// What changed at each of `paths` between `before` and `after` (both without secrets),
/// bounded as the module documentation says.
fn delta(paths: &[String], before: &Attributes, after: &Attributes) -> Vec<PathChange> {
    let mut out: Vec<PathChange> = paths
        .iter()
        .map(|path| path_change(path, value_at(before, path), value_at(after, path)))
        .collect();
    let mut sizes: Vec<(usize, usize)> = out.iter().map(json_len).enumerate().collect();
    let mut total: usize = sizes.iter().map(|(_, n)| n).sum();
    sizes.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    for (i, size) in sizes {
        if total <= MAX_DELTA_BYTES {
            break;
        }
        let new = value_at(after, &out[i].path);
        out[i] = withheld(&out[i].path, new);
        total = total - size + json_len(&out[i]);
    }
    out
}

fn path_change(path: &str, old: Option<&Value>, new: Option<&Value>) -> PathChange {
    let mut change = PathChange {
        path: path.to_string(),
        ..PathChange::default()
    };
    match (old, new) {
        (Some(Value::Array(old)), Some(Value::Array(new))) => {
            // Elements compared by their JSON text through a set, so a long list (a Group's
            // members) costs linear time, not a comparison of every pair.
            let texts = |list: &[Value]| -> HashSet<String> {
                list.iter()
                    .map(|v| serde_json::to_string(v).unwrap_or_default())
                    .collect()
            };
            let (before, after) = (texts(old), texts(new));
            let missing_from = |list: &[Value], set: &HashSet<String>| -> Vec<Value> {
                list.iter()
                    .filter(|v| !set.contains(&serde_json::to_string(v).unwrap_or_default()))
                    .cloned()
                    .collect()
            };
            change.added = Some(missing_from(new, &before));
            change.removed = Some(missing_from(old, &after));
        }
        _ => {
            change.value = new.cloned();
            change.old = old.filter(|v| json_len(v) <= MAX_OLD_VALUE_BYTES).cloned();
        }
    }
    if json_len(&change) > MAX_PATH_CHANGE_BYTES {
        withheld(path, new)
    } else {
        change
    }
}

/// A path's change reduced to the size and SHA-256 of its new value.
fn withheld(path: &str, new: Option<&Value>) -> PathChange {
    let text = new.map_or_else(String::new, |v| {
        serde_json::to_string(v).unwrap_or_default()
    });
    let digest = Sha256::digest(text.as_bytes());
    PathChange {
        path: path.to_string(),
        withheld: Some(Withheld {
            bytes: text.len() as u64,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }),
        ..PathChange::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Meta;
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

    fn stored(c: &Change) -> Value {
        serde_json::to_value(c).unwrap()
    }

    #[test]
    fn constructors_and_redaction() {
        let reg = crate::schema::SchemaRegistry::builtin();
        let before = resource(
            1,
            json!({"userName": "a", "password": "pw-before-1", "active": true}),
        );
        let after = resource(
            2,
            json!({"userName": "a", "password": "pw-after-2", "active": false}),
        );

        let c = Change::created(&reg, &before);
        assert_eq!((c.operation, c.version), (Operation::Create, 1));
        assert_eq!(c.changed_paths, ["userName", "password", "active"]);
        assert_eq!(
            stored(&c)["delta"],
            json!([{"path": "userName", "value": "a"}, {"path": "password"}, {"path": "active", "value": true}])
        );

        let c = Change::replaced(&reg, &before, &after, None);
        assert_eq!(c.changed_paths, ["password", "active"]);
        assert_eq!(
            stored(&c)["delta"],
            json!([{"path": "password"}, {"path": "active", "value": false, "old": true}])
        );

        let c = Change::deleted(&reg, &after);
        assert_eq!((c.operation, c.version), (Operation::Delete, 2));
        assert_eq!(
            stored(&c)["delta"],
            json!([{"path": "userName", "old": "a"}, {"path": "password"}, {"path": "active", "old": false}])
        );
        // Nothing secret anywhere in the stored form.
        let text = serde_json::to_string(&Change::replaced(&reg, &before, &after, None)).unwrap();
        assert!(!text.contains("pw-"), "{text}");
    }

    #[test]
    fn multi_valued_and_extension_paths() {
        let reg = crate::schema::SchemaRegistry::builtin();
        let ent = crate::schema::ENTERPRISE_USER_URN;
        let before = resource(
            1,
            json!({"emails": [{"value": "a@x"}, {"value": "b@x"}], ent: {"department": "R&D", "costCenter": "1"}}),
        );
        let after = resource(
            2,
            json!({"emails": [{"value": "b@x"}, {"value": "c@x"}], ent: {"department": "Sales", "costCenter": "1"}}),
        );
        let c = Change::replaced(&reg, &before, &after, None);
        let dept = format!("{ent}:department");
        assert_eq!(c.changed_paths, ["emails", dept.as_str()]);
        assert_eq!(
            stored(&c)["delta"],
            json!([
                {"path": "emails", "added": [{"value": "c@x"}], "removed": [{"value": "a@x"}]},
                {"path": dept, "value": "Sales", "old": "R&D"},
            ])
        );
    }

    #[test]
    fn large_values_are_withheld_and_a_record_is_bounded() {
        let reg = crate::schema::SchemaRegistry::builtin();
        let big = "x".repeat(MAX_PATH_CHANGE_BYTES);
        let medium = "m".repeat(MAX_OLD_VALUE_BYTES + 1);
        let before = resource(1, json!({"title": medium, "nickName": "n"}));
        let after = resource(2, json!({"title": "VP", "nickName": big}));
        let c = Change::replaced(&reg, &before, &after, None);
        let d = stored(&c)["delta"].clone();
        // A large old value is dropped; the new one kept.
        assert_eq!(d[0], json!({"path": "title", "value": "VP"}));
        // A new value over the path bound: its size and hash only.
        let expected = Sha256::digest(serde_json::to_string(&json!(big)).unwrap().as_bytes());
        assert_eq!(d[1]["withheld"]["bytes"], big.len() + 2);
        assert_eq!(
            d[1]["withheld"]["sha256"],
            expected
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert!(d[1].get("value").is_none());

        // Many paths, each under the path bound, together over the record bound.
        let many: Attributes = (0..40)
            .map(|i| (format!("urn:x:{i}"), json!("y".repeat(4000))))
            .collect();
        let grown = Resource::new(
            "User",
            "u1",
            many,
            Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        );
        let c = Change::created(&reg, &grown);
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.len() <= MAX_DELTA_BYTES + 2048, "{} bytes", text.len());
        assert_eq!(c.delta.len(), 40, "every path is still named");
        assert!(c.delta.iter().any(|p| p.withheld.is_some()));
        assert!(c.delta.iter().any(|p| p.value.is_some()));
    }

    #[test]
    fn long_lists_report_only_their_added_and_removed_elements() {
        let reg = crate::schema::SchemaRegistry::builtin();
        let list = |range: std::ops::Range<u32>| -> Value {
            range.map(|i| json!({"value": format!("m{i}")})).collect()
        };
        let before = resource(1, json!({"emails": list(0..5000)}));
        let after = resource(2, json!({"emails": list(1..5001)}));
        let c = Change::replaced(&reg, &before, &after, None);
        assert_eq!(
            stored_delta(&c),
            json!([{"path": "emails", "added": [{"value": "m5000"}], "removed": [{"value": "m0"}]}])
        );
    }

    #[test]
    fn records_of_the_snapshot_format_still_read() {
        let old = json!({
            "resourceType": "User", "id": "u1", "version": 2, "operation": "replace",
            "changedPaths": ["title"],
            "before": {"userName": "a", "title": "Dev"},
            "after": {"userName": "a", "title": "VP"}
        });
        let c: Change = serde_json::from_value(old).unwrap();
        assert_eq!(c.changed_paths, ["title"]);
        assert_eq!(
            c.delta,
            [PathChange {
                path: "title".into(),
                value: Some(json!("VP")),
                old: Some(json!("Dev")),
                ..PathChange::default()
            }]
        );
        // Written again, it takes the delta form.
        assert!(stored(&c).get("before").is_none());
    }

    #[test]
    fn patched_uses_outcome_paths_and_members_delta() {
        let reg = crate::schema::SchemaRegistry::builtin();
        let before = resource(3, json!({"displayName": "G"}));
        let after = resource(4, json!({"displayName": "G"}));
        let outcome = PatchOutcome {
            attributes: after.attributes.clone(),
            changed: true,
            changed_paths: vec!["members".into()],
            members: Some(MembershipDelta {
                clear: false,
                added: vec!["u1".into()],
                removed: vec![],
            }),
        };
        let c = Change::patched(&reg, &before, &after, &outcome);
        assert_eq!(c.changed_paths, ["members"]);
        assert_eq!(c.version, 4);
        let stored = serde_json::to_value(&c).unwrap();
        assert_eq!(stored["members"], json!({"added": ["u1"], "removed": []}));
        assert_eq!(stored["operation"], "patch");
        assert_eq!(stored["resourceType"], "User");
        assert_eq!(stored["changedPaths"], json!(["members"]));
        assert_eq!(stored["delta"], json!([{"path": "members"}]));
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
        let c = Change::patched(&reg, &after, &renamed, &outcome);
        assert_eq!(c.changed_paths, ["displayName"]);
        assert_eq!(
            stored_delta(&c),
            json!([{"path": "displayName", "value": "H", "old": "G"}])
        );
        assert!(c.members.is_none());
    }

    fn stored_delta(c: &Change) -> Value {
        stored(c)["delta"].clone()
    }
}
