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
//! let registry = scim_core::schema::SchemaRegistry::builtin();
//! let change = Change::replaced(&registry, &before, &after, None);
//! assert_eq!(change.operation, Operation::Replace);
//! assert_eq!(change.changed_paths, ["title", "password"]);
//! let stored = serde_json::to_value(&change).unwrap();
//! assert_eq!(stored["operation"], "replace");
//! assert_eq!(stored["version"], 2);
//! assert!(stored["after"].get("password").is_none());
//! ```

use crate::patch::{MembershipDelta, PatchOutcome};
use crate::resource::{Attributes, Resource, changed_paths};
use crate::schema::SchemaRegistry;
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
    fn new(
        registry: &SchemaRegistry,
        operation: Operation,
        subject: &Resource,
        before: Option<&Attributes>,
        after: Option<&Attributes>,
    ) -> Self {
        let empty = Attributes::new();
        Self {
            resource_type: subject.resource_type.clone(),
            id: subject.id.clone(),
            version: subject.meta.version,
            operation,
            changed_paths: changed_paths(before.unwrap_or(&empty), after.unwrap_or(&empty)),
            before: before.map(|a| snapshot(registry, &subject.resource_type, a)),
            after: after.map(|a| snapshot(registry, &subject.resource_type, a)),
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
        Self {
            resource_type: after.resource_type.clone(),
            id: after.id.clone(),
            version: after.meta.version,
            operation: Operation::Patch,
            changed_paths: outcome.changed_paths.clone(),
            before: Some(snapshot(
                registry,
                &before.resource_type,
                &before.attributes,
            )),
            after: Some(snapshot(registry, &after.resource_type, &after.attributes)),
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
        let attrs = Value::Object(group.attributes.clone());
        Self {
            resource_type: group.resource_type.clone(),
            id: group.id.clone(),
            version: group.meta.version,
            operation: Operation::Patch,
            changed_paths: vec!["members".into()],
            before: Some(attrs.clone()),
            after: Some(attrs),
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
        }
        self.members = members;
    }
}

/// The attributes as a JSON object without secrets (the schema's one rule,
/// [`SchemaRegistry::strip_secrets`]).
fn snapshot(registry: &SchemaRegistry, resource_type: &str, attrs: &Attributes) -> Value {
    let mut out = attrs.clone();
    if let Some(rt) = registry.resource_type(resource_type) {
        registry.strip_secrets(rt, &mut out);
    }
    Value::Object(out)
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

    #[test]
    fn constructors_and_redaction() {
        let reg = crate::schema::SchemaRegistry::builtin();
        let before = resource(
            1,
            json!({"userName": "a", "password": "old", "active": true}),
        );
        let after = resource(
            2,
            json!({"userName": "a", "password": "new", "active": false}),
        );

        let c = Change::created(&reg, &before);
        assert_eq!((c.operation, c.version), (Operation::Create, 1));
        assert_eq!(c.changed_paths, ["userName", "password", "active"]);
        assert_eq!(c.after, Some(json!({"userName": "a", "active": true})));
        assert!(c.before.is_none());

        let c = Change::replaced(&reg, &before, &after, None);
        assert_eq!(c.changed_paths, ["password", "active"]);
        assert_eq!(c.before, Some(json!({"userName": "a", "active": true})));

        let c = Change::deleted(&reg, &after);
        assert_eq!((c.operation, c.version), (Operation::Delete, 2));
        assert!(c.after.is_none());
        assert_eq!(c.before, Some(json!({"userName": "a", "active": false})));
        // Nothing secret anywhere in the stored form.
        let stored = serde_json::to_string(&Change::replaced(&reg, &before, &after, None)).unwrap();
        assert!(
            !stored.contains("old") && !stored.contains("new"),
            "{stored}"
        );
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
        assert!(c.members.is_none());
    }
}
