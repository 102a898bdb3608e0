//! PATCH (RFC 7644 §3.5.2): operations applied in order, all or nothing.
//!
//! [`PatchRequest::parse`] reads a PatchOp body leniently (any case for `op` and for the
//! `Operations` key, missing `schemas` accepted) and parses every `path` with the `scim_v2`
//! grammar. [`apply`] resolves each path against the schemas (case-insensitive, canonical names,
//! unqualified extension attributes such as Entra's `manager`), normalises every value with
//! [`crate::normalize::attribute_value`] and works on a copy of the attributes, so a failing
//! operation leaves nothing half-applied: the input [`Resource`] is borrowed and never changed.
//!
//! Dialects accepted (see the reference notes Q1–Q8, Q13, Q16, Q19 and Okta's group push):
//!
//! - `add` on a single-valued attribute that has a value replaces it (RFC 7644 §3.5.2.1);
//! - path-less `add`/`replace` whose value object uses nested objects, dotted keys
//!   (`"name.givenName"`), URN-qualified keys or whole extension objects; `id` equal to the
//!   resource id, `meta` and `schemas` in such an object are ignored (Okta sends them);
//! - value paths such as `emails[type eq "work"].value` create `{"type": "work", "value": …}`
//!   when no element matches and the filter is an `eq` conjunction (Entra relies on it);
//! - `remove` of `members` with a `value` array removes only those members;
//! - `replace` with `""` or `null` clears;
//! - attributes no schema declares (custom extension attributes) are stored as sent.
//!
//! ```
//! use scim_core::patch::{self, Members, PatchRequest};
//! use scim_core::resource::{Meta, Resource};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//! let attrs = json!({"userName": "bjensen", "active": true});
//! let user = Resource::new("User", "2819c223", attrs.as_object().unwrap().clone(),
//!     Meta::new(time::OffsetDateTime::UNIX_EPOCH));
//!
//! // Entra without `aadOptscim062020`: capitalised op, string boolean.
//! let body = json!({
//!     "schemas": [patch::PATCH_OP_URN],
//!     "Operations": [
//!         {"op": "Replace", "path": "active", "value": "False"},
//!         {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "b@example.com"}
//!     ]
//! });
//! let request = PatchRequest::parse(body, 100).unwrap();
//! let outcome = patch::apply(&registry, users, &user, &request, Members::Inline).unwrap();
//! assert!(outcome.changed);
//! assert_eq!(outcome.attributes["active"], json!(false));
//! assert_eq!(outcome.attributes["emails"], json!([{"type": "work", "value": "b@example.com"}]));
//! assert_eq!(outcome.changed_paths, ["active", "emails"]);
//! ```

mod engine;
mod matcher;
mod members;
mod parse;
mod target;
mod values;

use crate::error::Result;
use crate::resource::{Attributes, Resource};
use crate::schema::{ResourceType, SchemaRegistry};

pub use parse::{PatchOp, PatchOperation, parse_path};
pub use scim_v2::filter::PatchPath;

/// The PatchOp message URN.
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A parsed PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, in order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses a PatchOp body.
    ///
    /// - the body must be a JSON object (else `invalidSyntax`); `schemas` may be missing;
    /// - `Operations` (any case) must be an array (else `invalidSyntax`) of at most
    ///   `max_operations` entries (else `tooMany`);
    /// - each `op` is `add`, `replace` or `remove` in any case (RFC 7644 §3.5.2; Entra sends
    ///   `"Replace"`); a `path` that does not parse is `invalidPath`;
    /// - `add` and `replace` need a `value`, an object when there is no `path` (`invalidSyntax`);
    ///   `remove` needs a `path`: RFC 7644 §3.5.2.2 "If 'path' is unspecified, the operation
    ///   fails with HTTP status code 400 and a 'scimType' error code of 'noTarget'".
    ///
    /// Error details start with the failing operation, e.g. `Operations[2]: …`.
    ///
    /// ```
    /// use scim_core::patch::{PatchOp, PatchRequest};
    /// use scim_core::ScimType;
    /// use serde_json::json;
    ///
    /// let req = PatchRequest::parse(json!({"Operations": [{"op": "Remove", "path": "title"}]}), 10).unwrap();
    /// assert_eq!(req.operations[0].op, PatchOp::Remove);
    ///
    /// let err = PatchRequest::parse(json!({"Operations": [{"op": "remove"}]}), 10).unwrap_err();
    /// assert_eq!(err.scim_type(), Some(ScimType::NoTarget));
    /// let err = PatchRequest::parse(json!({"Operations": [{"op": "add", "value": {}}, {"op": "add", "value": {}}]}), 1).unwrap_err();
    /// assert_eq!(err.scim_type(), Some(ScimType::TooMany));
    /// ```
    pub fn parse(body: serde_json::Value, max_operations: usize) -> Result<Self> {
        parse::request(body, max_operations)
    }
}

/// How group membership is handled while patching.
///
/// ```
/// use scim_core::patch::{self, Members, MembershipDelta, PatchRequest};
/// use scim_core::resource::{Meta, Resource};
/// use scim_core::schema::SchemaRegistry;
/// use serde_json::json;
///
/// let registry = SchemaRegistry::builtin();
/// let groups = registry.resource_type("Group").unwrap();
/// // The stored group, loaded without its members.
/// let group = Resource::new("Group", "g-1", json!({"displayName": "Sales"}).as_object().unwrap().clone(),
///     Meta::new(time::OffsetDateTime::UNIX_EPOCH));
/// let body = json!({"Operations": [
///     {"op": "remove", "path": "members[value eq \"u-1\"]"},
///     {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u-2"}, {"value": "u-3"}]}
/// ]});
/// let request = PatchRequest::parse(body, 100).unwrap();
/// assert!(!patch::needs_inline_members(&request));
/// let outcome = patch::apply(&registry, groups, &group, &request, Members::Delta).unwrap();
/// assert_eq!(outcome.members, Some(MembershipDelta {
///     clear: false,
///     added: vec!["u-2".into(), "u-3".into()],
///     removed: vec!["u-1".into()],
/// }));
/// assert_eq!(outcome.changed_paths, ["members"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// `members` is in the resource's attributes and is patched like any attribute.
    Inline,
    /// `members` is not loaded: member operations become a [`MembershipDelta`] for storage to
    /// apply, so a PATCH to a 100,000-member group never loads the member list.
    ///
    /// Only member operations that name ids can be applied this way; check
    /// [`needs_inline_members`] first.
    Delta,
}

/// Member ids added and removed by a PATCH.
///
/// Storage applies it as: remove every member when `clear`, then remove `removed`, then add
/// `added`. `added` and `removed` never share an id: operations on the same id within one request
/// net out in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MembershipDelta {
    /// Every existing member is removed first (a `replace` of `members`, or a `remove` with
    /// neither value nor filter).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear: bool,
    /// Member ids added (after `clear`), each at most once.
    pub added: Vec<String>,
    /// Member ids removed, each at most once.
    pub removed: Vec<String>,
}

impl MembershipDelta {
    /// Whether the delta changes nothing: no clear, no id added, none removed. This is the one
    /// answer to "did the members change?".
    pub fn is_empty(&self) -> bool {
        !self.clear && self.added.is_empty() && self.removed.is_empty()
    }

    /// The one delta that stores what `self` and then `next` store: how a server writes
    /// several successive member `PATCH`es of one group as one write. Ids net out in order, as
    /// the operations of one request do, and `added` and `removed` stay disjoint.
    pub fn followed_by(self, next: &MembershipDelta) -> MembershipDelta {
        let mut builder = members::DeltaBuilder::from_delta(self);
        if next.clear {
            builder.clear();
        }
        for id in &next.removed {
            builder.remove(id.clone());
        }
        for id in &next.added {
            builder.add(id.clone());
        }
        builder.finish()
    }
}

/// The result of applying a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The attributes after every operation.
    pub attributes: Attributes,
    /// Whether anything changed (a no-op PATCH must not bump the version). With
    /// [`Members::Delta`], any member operation counts as a change: storage knows whether rows
    /// actually changed.
    pub changed: bool,
    /// Wire paths of the top-level attributes that changed, e.g. `active`, `emails`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`.
    pub changed_paths: Vec<String>,
    /// Membership changes, when `members` was handled as [`Members::Delta`] and some operation
    /// touched it.
    pub members: Option<MembershipDelta>,
}

impl PatchOutcome {
    /// Replaces the membership delta (after a server dropped member ids that do not exist, or
    /// turned a patched inline member list into a delta) and keeps `changed_paths` and `changed`
    /// true to it: `members` is a changed path exactly when the delta changes something.
    pub fn set_members(&mut self, members: Option<MembershipDelta>) {
        let changes = members.as_ref().is_some_and(|d| !d.is_empty());
        let listed = self.changed_paths.iter().any(|p| p == "members");
        if changes && !listed {
            self.changed_paths.push("members".into());
        } else if !changes && listed {
            self.changed_paths.retain(|p| p != "members");
        }
        self.members = members;
        self.changed = !self.changed_paths.is_empty();
    }
}

/// Applies `request` to `resource`, atomically: either every operation applies, in order, or
/// the first failure is returned (its detail names the operation index and path) and nothing
/// changes.
///
/// Errors: `invalidPath` (a path that names no attribute of the resource type, a filter on a
/// simple attribute), `noTarget` (a value path with no match that cannot create an element),
/// `mutability` (a path naming `id`, `meta`, `groups` or another readOnly attribute; changing an
/// immutable value; an `id` different from the resource's), `invalidValue` (a value of the wrong
/// type), `invalidSyntax`.
///
/// The result is not validated (required attributes, one primary): callers run
/// [`crate::validate::patch_result`].
pub fn apply(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    resource: &Resource,
    request: &PatchRequest,
    members: Members,
) -> Result<PatchOutcome> {
    engine::run(registry, rt, resource, request, members)
}

/// Whether some operation of `request` needs the group's members loaded ([`Members::Inline`]):
/// a member filter other than `value eq "…"` (possibly `or`-ed), or a path into member
/// sub-attributes. A server calls this before choosing [`Members::Delta`].
///
/// ```
/// use scim_core::patch::{needs_inline_members, PatchRequest};
/// use serde_json::json;
///
/// let by_id = json!({"Operations": [{"op": "remove", "path": "members[value eq \"u1\" or value eq \"u2\"]"}]});
/// assert!(!needs_inline_members(&PatchRequest::parse(by_id, 10).unwrap()));
/// let by_display = json!({"Operations": [{"op": "remove", "path": "members[display sw \"A\"]"}]});
/// assert!(needs_inline_members(&PatchRequest::parse(by_display, 10).unwrap()));
/// ```
pub fn needs_inline_members(request: &PatchRequest) -> bool {
    request.operations.iter().any(members::needs_inline)
}
