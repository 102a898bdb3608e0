//! The change log as its consumers see it: typed entries and per-tenant positions.
//!
//! Every accepted write appends one record to its tenant's change log in the same transaction
//! (the server's outbox). Records of a tenant are numbered 1, 2, 3, … gap-free, in commit order,
//! so a consumer's whole progress is one number per tenant: the last sequence number it has
//! handled (a [`ChangeCursor`]). Consumers in other crates (the Graph bridge) read entries
//! through a reader the storage owner implements and never through the storage's tables: this
//! module is the contract between them.
//!
//! An entry is either a resource write ([`Record::Write`]: [`Operation`], resource type, id,
//! version) or an audit event ([`Record::Event`]: a console action, a governance decision, a JIT
//! approval, … that changed no resource but belongs in the tamper-evident log). It carries
//! neither the attribute delta nor the hash chain: a consumer that reconciles desired state
//! reads the resource's current representation instead of replaying deltas, and verifying the
//! chain is the storage owner's job. A consumer that only cares about resources takes
//! [`ChangeLogEntry::write`] and moves its cursor past events like any other entry, so an event
//! is never mistaken for a resource change and never looks like a gap.
//!
//! ```
//! use scim_core::change::Operation;
//! use scim_core::change_log::{ChangeCursor, ChangeLogEntry, Record, ResourceWrite};
//!
//! let cursor = ChangeCursor::start("acme");
//! let entry = ChangeLogEntry {
//!     tenant: "acme".into(),
//!     seq: 1,
//!     occurred_at: time::OffsetDateTime::UNIX_EPOCH,
//!     record: Record::Write(ResourceWrite {
//!         resource_type: "User".into(),
//!         resource_id: "u1".into(),
//!         version: 1,
//!         operation: Operation::Create,
//!     }),
//! };
//! assert!(entry.follows(&cursor));
//! assert_eq!(entry.write().map(|w| w.resource_id.as_str()), Some("u1"));
//! assert_eq!(cursor.advanced_to(&entry).seq, 1);
//! ```

use crate::change::Operation;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    /// 1, 2, 3, … per tenant, gap-free, in commit order (writes and events share the numbering).
    pub seq: u64,
    /// When the write or event was accepted (the server's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// What the record is.
    pub record: Record,
}

/// What a change-log record is: a resource write or an audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Record {
    /// A create, replace, PATCH or delete of a resource.
    Write(ResourceWrite),
    /// An audit event: no resource changed.
    Event(EventSummary),
}

/// A resource write as a log entry names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceWrite {
    /// The resource type name, e.g. `User`.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// The resource version after the write (for a delete: the version deleted).
    pub version: u64,
    /// The kind of write.
    pub operation: Operation,
}

/// An audit event as a log entry names it (its detail stays in the store's record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    /// The event's kind, e.g. `console.action`.
    pub kind: String,
    /// What the event is about.
    pub subject: EventSubject,
}

impl ChangeLogEntry {
    /// Whether this entry is the very next one after `cursor` (same tenant, `seq` one more).
    /// A reader that meets an entry that does not follow has seen a gap: a record that is not
    /// visible yet, which it must wait for rather than skip.
    pub fn follows(&self, cursor: &ChangeCursor) -> bool {
        self.tenant == cursor.tenant && Some(self.seq) == cursor.seq.checked_add(1)
    }

    /// The resource write this entry records; `None` for an audit event.
    pub fn write(&self) -> Option<&ResourceWrite> {
        match &self.record {
            Record::Write(w) => Some(w),
            Record::Event(_) => None,
        }
    }

    /// The audit event this entry records; `None` for a resource write.
    pub fn event(&self) -> Option<&EventSummary> {
        match &self.record {
            Record::Event(e) => Some(e),
            Record::Write(_) => None,
        }
    }
}

/// The value a store writes in a record's `operation` column for an audit event (a resource
/// write has `create`, `replace`, `patch` or `delete`).
pub const EVENT_OPERATION: &str = "event";

/// The most bytes an event's `detail` may take as compact JSON: an event says what was decided
/// and by whom, not a copy of a resource.
pub const MAX_EVENT_DETAIL_BYTES: usize = 8 * 1024;
/// The most bytes of an event kind or a subject type.
pub const MAX_EVENT_NAME_BYTES: usize = 64;
/// The most bytes of a subject id.
pub const MAX_EVENT_SUBJECT_ID_BYTES: usize = 256;

/// What an audit event is about: a resource (`User`/id, `Group`/id) or another object (a
/// `Campaign`, a `Token`, an `InboundJob`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventSubject {
    /// The subject's type, e.g. `User` or `Campaign`.
    #[serde(rename = "type")]
    pub subject_type: String,
    /// The subject's id.
    pub id: String,
}

/// An event recorded in a tenant's change log that is not a resource write: a console action, a
/// governance decision, a JIT approval, a leaver's evidence anchor. Recording it in the
/// hash-chained log (rather than a table of its own) means `audit verify` covers it: an altered
/// or removed event breaks the chain like an altered write.
///
/// Built only through [`AuditEvent::new`], which checks the bounds, so a stored event is small
/// and carries no secret: the kind is lower-case dotted words (`console.action`,
/// `governance.decision`), the subject's type a word and its id at most
/// [`MAX_EVENT_SUBJECT_ID_BYTES`], and the detail a JSON object of at most
/// [`MAX_EVENT_DETAIL_BYTES`] with no NUL character (PostgreSQL cannot store one) and no key that
/// names a secret (`password`, `secret`, `privateKey`, `…token`; see [`is_secret_key`]).
///
/// Its serde form is what the store hashes and keeps in the record's `change_json`:
///
/// ```
/// use scim_core::change_log::AuditEvent;
/// use serde_json::json;
///
/// let event = AuditEvent::new(
///     "governance.decision",
///     "Campaign",
///     "c-42",
///     json!({"reviewer": "ops@example.com", "user": "u1", "decision": "revoke"}),
/// )
/// .unwrap();
/// let stored = serde_json::to_value(&event).unwrap();
/// assert_eq!(stored["event"], "governance.decision");
/// assert_eq!(stored["subject"], json!({"type": "Campaign", "id": "c-42"}));
///
/// let refused = AuditEvent::new("console.action", "Token", "t1", json!({"secret": "x"}));
/// assert_eq!(refused.unwrap_err().status(), 400);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    event: String,
    subject: EventSubject,
    detail: Value,
}

impl AuditEvent {
    /// An event of `kind` about `subject_type`/`subject_id` with `detail` (a JSON object), or a
    /// 400 `invalidValue` naming what is out of bounds.
    pub fn new(kind: &str, subject_type: &str, subject_id: &str, detail: Value) -> Result<Self> {
        check_kind(kind)?;
        check_word("subject type", subject_type)?;
        if subject_id.is_empty()
            || subject_id.len() > MAX_EVENT_SUBJECT_ID_BYTES
            || subject_id.chars().any(char::is_control)
        {
            return Err(Error::invalid_value(format!(
                "an audit event's subject id must be 1 to {MAX_EVENT_SUBJECT_ID_BYTES} bytes \
                 without control characters"
            )));
        }
        if !detail.is_object() {
            return Err(Error::invalid_value(
                "an audit event's detail must be a JSON object",
            ));
        }
        check_detail("detail", &detail)?;
        let size = serde_json::to_string(&detail).map_or(usize::MAX, |s| s.len());
        if size > MAX_EVENT_DETAIL_BYTES {
            return Err(Error::invalid_value(format!(
                "an audit event's detail is {size} bytes as JSON; at most \
                 {MAX_EVENT_DETAIL_BYTES} are recorded"
            )));
        }
        Ok(Self {
            event: kind.to_string(),
            subject: EventSubject {
                subject_type: subject_type.to_string(),
                id: subject_id.to_string(),
            },
            detail,
        })
    }

    /// The kind, e.g. `console.action`.
    pub fn kind(&self) -> &str {
        &self.event
    }

    /// What the event is about.
    pub fn subject(&self) -> &EventSubject {
        &self.subject
    }

    /// The detail (a JSON object).
    pub fn detail(&self) -> &Value {
        &self.detail
    }

    /// The entry a change-log reader returns for this event.
    pub fn summary(&self) -> EventSummary {
        EventSummary {
            kind: self.event.clone(),
            subject: self.subject.clone(),
        }
    }
}

/// Whether an object key names a secret, which an audit event's detail may not carry: compared
/// without case, `_` or `-`, it contains `password`, `passwd`, `secret` or `privatekey`, or ends
/// in `token` (`token`, `accessToken`, `refresh_token`; `tokenId` is fine).
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    ["password", "passwd", "secret", "privatekey"]
        .iter()
        .any(|s| k.contains(s))
        || k.ends_with("token")
}

fn check_kind(kind: &str) -> Result<()> {
    let words: Vec<&str> = kind.split('.').collect();
    let word_ok = |w: &&str| {
        w.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if kind.len() > MAX_EVENT_NAME_BYTES || words.len() < 2 || !words.iter().all(word_ok) {
        return Err(Error::invalid_value(format!(
            "audit event kind {kind:?}: expected lower-case dotted words such as \
             \"console.action\", at most {MAX_EVENT_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_word(what: &str, s: &str) -> Result<()> {
    let ok = s.len() <= MAX_EVENT_NAME_BYTES
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_value(format!(
            "audit event {what} {s:?}: expected a word of letters, digits and `_`, at most \
             {MAX_EVENT_NAME_BYTES} bytes"
        )))
    }
}

fn check_detail(path: &str, v: &Value) -> Result<()> {
    match v {
        Value::String(s) if s.contains('\0') => Err(Error::invalid_value(format!(
            "audit event {path} contains a NUL character"
        ))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_detail(&format!("{path}[{i}]"), item)),
        Value::Object(map) => map.iter().try_for_each(|(k, item)| {
            let at = format!("{path}.{k}");
            if k.contains('\0') {
                Err(Error::invalid_value(format!(
                    "audit event {path} has a key with a NUL character"
                )))
            } else if is_secret_key(k) {
                Err(Error::invalid_value(format!(
                    "audit event {at} names a secret; an audit record never carries one"
                )))
            } else {
                check_detail(&at, item)
            }
        }),
        _ => Ok(()),
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
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            record: Record::Write(ResourceWrite {
                resource_type: "User".into(),
                resource_id: format!("u{seq}"),
                version: 1,
                operation: Operation::Patch,
            }),
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
        assert_eq!(v["record"]["type"], "write");
        assert_eq!(v["record"]["resourceType"], "User");
        assert_eq!(v["record"]["operation"], "patch");
        assert_eq!(v["occurredAt"], "1970-01-01T00:00:00Z");
        let back: ChangeLogEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, entry("t", 3));
    }

    #[test]
    fn audit_event_bounds() {
        use serde_json::json;
        let ok = |kind: &str, ty: &str, id: &str, detail: Value| {
            AuditEvent::new(kind, ty, id, detail)
                .map(|_| ())
                .map_err(|e| e.detail().to_string())
        };
        assert_eq!(
            ok("console.action", "User", "u1", json!({"action": "suspend"})),
            Ok(())
        );
        assert_eq!(
            ok(
                "jit.approval",
                "Group",
                "g-1",
                json!({"tokenId": "t1", "n": [1, {"a": "b"}]})
            ),
            Ok(())
        );
        let cases: &[(&str, &str, &str, Value, &str)] = &[
            (
                "console",
                "User",
                "u1",
                json!({}),
                "lower-case dotted words",
            ),
            (
                "Console.Action",
                "User",
                "u1",
                json!({}),
                "lower-case dotted words",
            ),
            (
                "console..action",
                "User",
                "u1",
                json!({}),
                "lower-case dotted words",
            ),
            ("console.action", "a b", "u1", json!({}), "subject type"),
            ("console.action", "User", "", json!({}), "subject id"),
            ("console.action", "User", "u\n1", json!({}), "subject id"),
            ("console.action", "User", "u1", json!("text"), "JSON object"),
            (
                "console.action",
                "User",
                "u1",
                json!({"a": "x\u{0}y"}),
                "detail.a contains a NUL",
            ),
            (
                "console.action",
                "User",
                "u1",
                json!({"user": {"Password": "p"}}),
                "detail.user.Password names a secret",
            ),
            (
                "console.action",
                "User",
                "u1",
                json!({"list": [{"client_secret": "s"}]}),
                "detail.list[0].client_secret names a secret",
            ),
            (
                "console.action",
                "User",
                "u1",
                json!({"access_token": "t"}),
                "names a secret",
            ),
            (
                "console.action",
                "User",
                "u1",
                json!({"big": "x".repeat(MAX_EVENT_DETAIL_BYTES)}),
                "at most 8192",
            ),
        ];
        for (kind, ty, id, detail, expected) in cases {
            let err = ok(kind, ty, id, detail.clone()).expect_err(kind);
            assert!(err.contains(expected), "{kind} {detail}: {err}");
        }
    }

    #[test]
    fn audit_event_serde_form_is_the_stored_contract() {
        use serde_json::json;
        let e =
            AuditEvent::new("console.action", "User", "u1", json!({"action": "suspend"})).unwrap();
        let stored = serde_json::to_value(&e).unwrap();
        assert_eq!(
            stored,
            json!({"event": "console.action", "subject": {"type": "User", "id": "u1"}, "detail": {"action": "suspend"}})
        );
        let back: AuditEvent = serde_json::from_value(stored).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.summary().kind, "console.action");
        let entry = ChangeLogEntry {
            tenant: "t".into(),
            seq: 1,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            record: Record::Event(e.summary()),
        };
        assert!(entry.write().is_none());
        assert_eq!(
            serde_json::to_value(&entry).unwrap()["record"]["type"],
            "event"
        );
    }
}
