//! The change log as its consumers see it: typed entries and per-tenant positions.
//!
//! Every accepted write appends one record to its tenant's change log in the same transaction
//! (the server's outbox). Records of a tenant are numbered 1, 2, 3, … gap-free, in commit order,
//! so a consumer's whole progress is one number per tenant: the last sequence number it has
//! handled (a [`ChangeCursor`]). Consumers in other crates (the Graph bridge) read entries
//! through a reader the storage owner implements and never through the storage's tables: this
//! module is the contract between them.
//!
//! An entry names what changed ([`Operation`], resource type, id, version) but carries neither
//! the attribute snapshots nor the hash chain: a consumer that reconciles desired state reads the
//! resource's current representation instead of replaying snapshots, and verifying the chain is
//! the storage owner's job.
//!
//! ```
//! use scim_core::change::Operation;
//! use scim_core::change_log::{ChangeCursor, ChangeLogEntry};
//!
//! let cursor = ChangeCursor::start("acme");
//! let entry = ChangeLogEntry {
//!     tenant: "acme".into(),
//!     seq: 1,
//!     resource_type: "User".into(),
//!     resource_id: "u1".into(),
//!     version: 1,
//!     operation: Operation::Create,
//!     occurred_at: time::OffsetDateTime::UNIX_EPOCH,
//! };
//! assert!(entry.follows(&cursor));
//! assert_eq!(cursor.advanced_to(&entry).seq, 1);
//! ```

use crate::change::Operation;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A tenant's position in the change log: the last sequence number handled (`0` before the
/// first record). As the answer of a "heads" query, the tenant's newest sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChangeCursor {
    /// The tenant.
    pub tenant: String,
    /// The last sequence number handled (or, for a head, written).
    pub seq: u64,
}

impl ChangeCursor {
    /// The position before a tenant's first record.
    pub fn start(tenant: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            seq: 0,
        }
    }

    /// The position after `entry` (same tenant).
    pub fn advanced_to(&self, entry: &ChangeLogEntry) -> Self {
        Self {
            tenant: self.tenant.clone(),
            seq: entry.seq,
        }
    }
}

/// One record of the change log, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeLogEntry {
    /// The tenant written to.
    pub tenant: String,
    /// 1, 2, 3, … per tenant, gap-free, in commit order.
    pub seq: u64,
    /// The resource type name, e.g. `User`.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// The resource version after the write (for a delete: the version deleted).
    pub version: u64,
    /// The kind of write.
    pub operation: Operation,
    /// When the write was accepted (the server's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

impl ChangeLogEntry {
    /// Whether this entry is the very next one after `cursor` (same tenant, `seq` one more).
    /// A reader that meets an entry that does not follow has seen a gap: a record that is not
    /// visible yet, which it must wait for rather than skip.
    pub fn follows(&self, cursor: &ChangeCursor) -> bool {
        self.tenant == cursor.tenant && Some(self.seq) == cursor.seq.checked_add(1)
    }
}

/// The leading entries of `entries` that continue `cursor` without a gap (entries are in
/// sequence order, as a reader returns them).
pub fn contiguous<'a>(
    cursor: &ChangeCursor,
    entries: &'a [ChangeLogEntry],
) -> &'a [ChangeLogEntry] {
    let mut at = cursor.clone();
    let mut n = 0;
    for e in entries {
        if !e.follows(&at) {
            break;
        }
        at.seq = e.seq;
        n += 1;
    }
    &entries[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tenant: &str, seq: u64) -> ChangeLogEntry {
        ChangeLogEntry {
            tenant: tenant.into(),
            seq,
            resource_type: "User".into(),
            resource_id: format!("u{seq}"),
            version: 1,
            operation: Operation::Patch,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn contiguous_stops_at_the_first_gap() {
        let cursor = ChangeCursor {
            tenant: "t".into(),
            seq: 4,
        };
        let cases: &[(&[u64], usize)] = &[
            (&[], 0),
            (&[5, 6, 7], 3),
            (&[5, 7, 8], 1),
            (&[6, 7], 0),
            (&[4, 5], 0),
        ];
        for (seqs, expected) in cases {
            let entries: Vec<_> = seqs.iter().map(|s| entry("t", *s)).collect();
            assert_eq!(
                contiguous(&cursor, &entries).len(),
                *expected,
                "after 4: {seqs:?}"
            );
        }
    }

    #[test]
    fn an_entry_of_another_tenant_never_follows() {
        assert!(!entry("other", 1).follows(&ChangeCursor::start("t")));
        assert!(entry("t", 1).follows(&ChangeCursor::start("t")));
    }

    #[test]
    fn serde_form_is_camel_case_with_rfc3339_time() {
        let v = serde_json::to_value(entry("t", 3)).unwrap();
        assert_eq!(v["resourceType"], "User");
        assert_eq!(v["operation"], "patch");
        assert_eq!(v["occurredAt"], "1970-01-01T00:00:00Z");
        let back: ChangeLogEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, entry("t", 3));
    }
}
