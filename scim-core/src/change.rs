//! Change descriptions: what every accepted write did, the input of the outbox, the audit log and
//! the Graph bridge.
//!
//! (placeholder contract; the query helper implements this module)

use crate::patch::MembershipDelta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// POST
    Create,
    /// PUT
    Replace,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

/// What one accepted write did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The resource type.
    pub resource_type: String,
    /// The resource id.
    pub id: String,
    /// The version after the write.
    pub version: u64,
    /// The kind of write.
    pub operation: Operation,
    /// Top-level wire paths that changed.
    pub changed_paths: Vec<String>,
    /// Attributes before (password removed).
    pub before: Option<Value>,
    /// Attributes after (password removed).
    pub after: Option<Value>,
    /// Membership changes of a Group.
    pub members: Option<MembershipDelta>,
}
