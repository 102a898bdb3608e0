//! PATCH (RFC 7644 §3.5.2): operations applied in order, all or nothing.
//!
//! (the patch helper implements this module; the types below are the contract the server uses)

use crate::error::Result;
use crate::resource::{Attributes, Resource};
use crate::schema::{ResourceType, SchemaRegistry};
use serde_json::Value;

/// The PatchOp message URN.
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A parsed PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, in order.
    pub operations: Vec<Value>,
}

impl PatchRequest {
    /// Parses a PatchOp body (`invalidSyntax` when malformed; `tooMany` past `max_operations`).
    pub fn parse(body: Value, max_operations: usize) -> Result<Self> {
        let _ = (body, max_operations);
        todo!("patch helper")
    }
}

/// How group membership is handled while patching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// `members` is in the resource's attributes and is patched like any attribute.
    Inline,
    /// `members` is not loaded: member operations become a [`MembershipDelta`] for storage to
    /// apply, so a PATCH to a 100,000-member group never loads the member list.
    Delta,
}

/// Member ids added and removed by a PATCH.
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

/// The result of applying a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The attributes after every operation.
    pub attributes: Attributes,
    /// Whether anything changed (a no-op PATCH must not bump the version).
    pub changed: bool,
    /// Wire paths of the attributes that changed.
    pub changed_paths: Vec<String>,
    /// Membership changes, when `members` was handled as [`Members::Delta`].
    pub members: Option<MembershipDelta>,
}

/// Applies `request` to `resource`, atomically.
pub fn apply(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    resource: &Resource,
    request: &PatchRequest,
    members: Members,
) -> Result<PatchOutcome> {
    let _ = (registry, rt, resource, request, members);
    todo!("patch helper")
}
