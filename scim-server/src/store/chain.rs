//! The change log's hash chain: each record carries the hash of its predecessor in the tenant's
//! chain, so an altered, removed or reordered record is detected by [`Verifier`].
//!
//! A record's hash is the lower-case hex SHA-256 of its canonical encoding: the fields
//! `tenant, seq, resource_type, resource_id, version, operation, change_json, principal,
//! request_id, occurred_at, prev_hash`, in this order, each written as its UTF-8 byte length in
//! decimal, a `:`, the bytes and a `,` (numbers as decimal text); an absent `request_id` is written
//! as `-,`. Length prefixes make the encoding unambiguous whatever the fields contain.

use super::{ChainReport, ChangeRecord, Result, StoreError, WriteContext};
use scim_core::change::{Change, Operation};
use scim_core::change_log::{AuditEvent, EVENT_OPERATION};
use scim_core::resource::format_datetime;
use sha2::{Digest, Sha256};

/// The `prev_hash` of a tenant's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical byte encoding of a record's hashed fields (see the module documentation).
pub fn canonical_encoding(record: &ChangeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + record.change_json.len());
    let mut field = |s: Option<&str>| match s {
        Some(s) => {
            out.extend_from_slice(s.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(s.as_bytes());
            out.push(b',');
        }
        None => out.extend_from_slice(b"-,"),
    };
    field(Some(&record.tenant));
    field(Some(&record.seq.to_string()));
    field(Some(&record.resource_type));
    field(Some(&record.resource_id));
    field(Some(&record.version.to_string()));
    field(Some(&record.operation));
    field(Some(&record.change_json));
    field(Some(&record.principal));
    field(record.request_id.as_deref());
    field(Some(&record.occurred_at));
    field(Some(&record.prev_hash));
    out
}

/// The hash a record should carry: hex SHA-256 of [`canonical_encoding`] (its own `hash` field is
/// not part of the input).
pub fn record_hash(record: &ChangeRecord) -> String {
    hex::encode(Sha256::digest(canonical_encoding(record)))
}

/// What a new record says, before the chain numbers and hashes it: a resource write
/// ([`RecordBody::write`]) or an audit event ([`RecordBody::event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBody {
    resource_type: String,
    resource_id: String,
    version: u64,
    operation: &'static str,
    change_json: String,
}

impl RecordBody {
    /// A write of `resource_id` (of type `resource_type`) described by `change`.
    pub fn write(resource_type: &str, resource_id: &str, change: &Change) -> Result<Self> {
        Ok(Self {
            resource_type: resource_type.to_string(),
            resource_id: resource_id.to_string(),
            version: change.version,
            operation: match change.operation {
                Operation::Create => "create",
                Operation::Replace => "replace",
                Operation::Patch => "patch",
                Operation::Delete => "delete",
            },
            change_json: serde_json::to_string(change)
                .map_err(|e| StoreError::Corrupt(format!("change description: {e}")))?,
        })
    }

    /// An audit event: its subject stands in the resource columns (so a resource's timeline,
    /// read by id, shows the events about it), version 0, operation
    /// [`EVENT_OPERATION`], and the event itself as the record's JSON.
    pub fn event(event: &AuditEvent) -> Result<Self> {
        Ok(Self {
            resource_type: event.subject().subject_type.clone(),
            resource_id: event.subject().id.clone(),
            version: 0,
            operation: EVENT_OPERATION,
            change_json: serde_json::to_string(event)
                .map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))?,
        })
    }
}

/// A record as its writer leaves it: every hashed field but the chain's own (`seq`,
/// `prev_hash`), which [`Unsealed::seal`] adds. On PostgreSQL this is what a write commits
/// (`scim_changes_pending`); the sealer numbers it later (see `store::seal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsealed {
    /// Tenant.
    pub tenant: String,
    /// Resource type (or an event's subject type).
    pub resource_type: String,
    /// Resource id (or an event's subject id).
    pub resource_id: String,
    /// Resource version (0 for an event).
    pub version: u64,
    /// `create`, `replace`, `patch`, `delete` or `event`.
    pub operation: String,
    /// The change description or event, JSON.
    pub change_json: String,
    /// Who wrote.
    pub principal: String,
    /// The request's id, if any.
    pub request_id: Option<String>,
    /// RFC 3339.
    pub occurred_at: String,
}

impl Unsealed {
    /// `body` as written by `ctx`.
    pub fn new(ctx: &WriteContext, body: RecordBody) -> Self {
        Self {
            tenant: ctx.tenant.clone(),
            resource_type: body.resource_type,
            resource_id: body.resource_id,
            version: body.version,
            operation: body.operation.to_string(),
            change_json: body.change_json,
            principal: ctx.principal.clone(),
            request_id: ctx.request_id.clone(),
            occurred_at: format_datetime(ctx.now),
        }
    }

    /// The record appended after `(last_seq, last_hash)` of its tenant's chain.
    pub fn seal(self, last_seq: u64, last_hash: &str) -> ChangeRecord {
        let mut record = ChangeRecord {
            tenant: self.tenant,
            seq: last_seq + 1,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            version: self.version,
            operation: self.operation,
            change_json: self.change_json,
            principal: self.principal,
            request_id: self.request_id,
            occurred_at: self.occurred_at,
            prev_hash: last_hash.to_string(),
            hash: String::new(),
        };
        record.hash = record_hash(&record);
        record
    }
}

/// The record appended after `(last_seq, last_hash)` for `body`, written by `ctx`.
pub fn next_record(
    ctx: &WriteContext,
    body: RecordBody,
    last_seq: u64,
    last_hash: &str,
) -> ChangeRecord {
    Unsealed::new(ctx, body).seal(last_seq, last_hash)
}

/// Incremental chain verification: feed records in `seq` order, then [`Verifier::finish`].
#[derive(Debug)]
pub struct Verifier {
    report: ChainReport,
    last_seq: u64,
    last_hash: String,
}

impl Verifier {
    /// Starts verifying `tenant`'s chain.
    pub fn new(tenant: &str) -> Self {
        Self {
            report: ChainReport {
                tenant: tenant.to_string(),
                records: 0,
                problems: Vec::new(),
            },
            last_seq: 0,
            last_hash: GENESIS_HASH.to_string(),
        }
    }

    /// Checks the next record (records must come in increasing `seq` order).
    pub fn push(&mut self, record: &ChangeRecord) {
        let problems = &mut self.report.problems;
        self.report.records += 1;
        let expected = self.last_seq + 1;
        if record.seq > expected {
            if record.seq == expected + 1 {
                problems.push(format!("record {expected} is missing"));
            } else {
                problems.push(format!(
                    "records {expected}..={} are missing",
                    record.seq - 1
                ));
            }
        } else if record.seq < expected {
            problems.push(format!("record {} is out of order", record.seq));
        }
        if record.prev_hash != self.last_hash {
            problems.push(format!(
                "record {}: broken link (prev_hash does not match the hash of record {})",
                record.seq, self.last_seq
            ));
        }
        if record_hash(record) != record.hash {
            problems.push(format!(
                "record {}: altered (stored hash does not match its contents)",
                record.seq
            ));
        }
        self.last_seq = record.seq;
        self.last_hash = record.hash.clone();
    }

    /// Compares the end of the records seen with the chain head the database keeps
    /// (`tenant_chain`), which reveals records removed from the end, and returns the report.
    pub fn finish(mut self, head: Option<(u64, String)>) -> ChainReport {
        let (head_seq, head_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        if head_seq > self.last_seq {
            self.report.problems.push(format!(
                "records {}..={head_seq} are missing (the chain head is at {head_seq})",
                self.last_seq + 1
            ));
        } else if head_seq < self.last_seq {
            self.report.problems.push(format!(
                "records after {head_seq} are not covered by the chain head",
            ));
        } else if head_hash != self.last_hash {
            self.report.problems.push(format!(
                "record {head_seq}: hash differs from the chain head's"
            ));
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, prev: &str) -> ChangeRecord {
        let mut r = ChangeRecord {
            tenant: "t".into(),
            seq,
            resource_type: "User".into(),
            resource_id: "1".into(),
            version: seq,
            operation: "patch".into(),
            change_json: "{}".into(),
            principal: "p".into(),
            request_id: None,
            occurred_at: "2026-01-01T00:00:00Z".into(),
            prev_hash: prev.into(),
            hash: String::new(),
        };
        r.hash = record_hash(&r);
        r
    }

    fn chain(n: u64) -> Vec<ChangeRecord> {
        let mut out: Vec<ChangeRecord> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_string(), |r| r.hash.clone());
            out.push(record(seq, &prev));
        }
        out
    }

    fn verify(records: &[ChangeRecord], head: Option<(u64, String)>) -> ChainReport {
        let mut v = Verifier::new("t");
        records.iter().for_each(|r| v.push(r));
        v.finish(head)
    }

    #[test]
    fn encoding_is_length_prefixed_and_request_id_absent_differs_from_empty() {
        let mut a = record(1, GENESIS_HASH);
        let enc = String::from_utf8(canonical_encoding(&a)).unwrap();
        assert!(enc.starts_with("1:t,1:1,4:User,1:1,1:1,5:patch,2:{},1:p,-,20:"));
        let none = record_hash(&a);
        a.request_id = Some(String::new());
        assert_ne!(record_hash(&a), none);
    }

    #[test]
    fn intact_chain_has_no_problems() {
        let c = chain(3);
        let head = Some((3, c[2].hash.clone()));
        let report = verify(&c, head);
        assert_eq!(report.records, 3);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn altered_missing_and_truncated_records_are_reported() {
        let c = chain(4);
        let head = Some((4, c[3].hash.clone()));
        let mut altered = c.clone();
        altered[1].change_json = "{\"x\":1}".into();
        let report = verify(&altered, head.clone());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("record 2: altered"))
        );

        let mut missing = c.clone();
        missing.remove(1);
        let report = verify(&missing, head.clone());
        assert!(report.problems.iter().any(|p| p == "record 2 is missing"));
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("record 3: broken link"))
        );

        let report = verify(&c[..3], head);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("4..=4 are missing"))
        );
    }
}
