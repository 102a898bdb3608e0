//! Where the bridge reads the change log from: implemented by the server over its store.
//!
//! The bridge never reads the server's tables. It asks an [`OutboxReader`] for each tenant's head
//! and for the typed entries after its cursor ([`scim_core::change_log`]), and keeps its cursor
//! in its own table. [`MemoryChangeLog`] is an in-memory log for tests and demos.

use std::collections::BTreeMap;
use std::sync::Mutex;

use scim_core::change::Operation;
use scim_core::change_log::{ChangeCursor, ChangeLogEntry, EventSummary, Record, ResourceWrite};
use time::OffsetDateTime;

use crate::Result;

/// Read access to the server's change log (the outbox).
#[async_trait::async_trait]
pub trait OutboxReader: Send + Sync {
    /// Every tenant with at least one record, with its newest sequence number, by tenant.
    /// Errors use [`crate::Error::ChangeLog`].
    async fn heads(&self) -> Result<Vec<ChangeCursor>>;
    /// Up to `limit` entries of `cursor.tenant` with `seq > cursor.seq`, in sequence order.
    async fn read_after(&self, cursor: &ChangeCursor, limit: usize) -> Result<Vec<ChangeLogEntry>>;
}

/// An in-memory change log, for tests and demos: [`MemoryChangeLog::append`] numbers entries per
/// tenant as the server does.
#[derive(Debug, Default)]
pub struct MemoryChangeLog {
    entries: Mutex<BTreeMap<String, Vec<ChangeLogEntry>>>,
}

impl MemoryChangeLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a write of `resource_type`/`id` to `tenant`'s log; returns its sequence number.
    pub fn append(
        &self,
        tenant: &str,
        resource_type: &str,
        id: &str,
        operation: Operation,
        at: OffsetDateTime,
    ) -> u64 {
        self.push(tenant, at, |seq| {
            Record::Write(ResourceWrite {
                resource_type: resource_type.to_owned(),
                resource_id: id.to_owned(),
                version: seq,
                operation,
            })
        })
    }

    /// Appends an audit event (no resource changed) to `tenant`'s log; returns its sequence
    /// number.
    pub fn append_event(&self, tenant: &str, event: EventSummary, at: OffsetDateTime) -> u64 {
        self.push(tenant, at, |_| Record::Event(event))
    }

    fn push(&self, tenant: &str, at: OffsetDateTime, record: impl FnOnce(u64) -> Record) -> u64 {
        let mut all = self.entries.lock().expect("change log");
        let log = all.entry(tenant.to_owned()).or_default();
        let seq = log.len() as u64 + 1;
        log.push(ChangeLogEntry {
            tenant: tenant.to_owned(),
            seq,
            occurred_at: at,
            record: record(seq),
        });
        seq
    }

    /// Removes an entry, leaving a gap (a record written but not yet visible to readers).
    pub fn hide(&self, tenant: &str, seq: u64) -> Option<ChangeLogEntry> {
        let mut all = self.entries.lock().expect("change log");
        let log = all.get_mut(tenant)?;
        let at = log.iter().position(|e| e.seq == seq)?;
        Some(log.remove(at))
    }

    /// Puts back an entry removed by [`MemoryChangeLog::hide`].
    pub fn reveal(&self, entry: ChangeLogEntry) {
        let mut all = self.entries.lock().expect("change log");
        let log = all.entry(entry.tenant.clone()).or_default();
        log.push(entry);
        log.sort_by_key(|e| e.seq);
    }
}

#[async_trait::async_trait]
impl OutboxReader for MemoryChangeLog {
    async fn heads(&self) -> Result<Vec<ChangeCursor>> {
        let all = self.entries.lock().expect("change log");
        Ok(all
            .iter()
            .filter_map(|(tenant, log)| {
                log.iter().map(|e| e.seq).max().map(|seq| ChangeCursor {
                    tenant: tenant.clone(),
                    seq,
                })
            })
            .collect())
    }

    async fn read_after(&self, cursor: &ChangeCursor, limit: usize) -> Result<Vec<ChangeLogEntry>> {
        let all = self.entries.lock().expect("change log");
        Ok(all
            .get(&cursor.tenant)
            .map(|log| {
                log.iter()
                    .filter(|e| e.seq > cursor.seq)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}
