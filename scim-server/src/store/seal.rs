//! Sealing the change log on PostgreSQL: numbering and hash-chaining change records after the
//! writes that made them have committed, so that writers of one tenant never wait for each other.
//!
//! Why: a chain whose next number and hash are taken inside the write's transaction needs the
//! tenant's chain head locked from that moment until commit (the `tenant_chain` row, `FOR
//! UPDATE`), which caps a tenant's writes at one commit latency each, across every replica
//! (issue 14). Instead:
//!
//! - a write inserts its record into `scim_changes_pending`, unnumbered, in its own transaction
//!   (the write and its record still commit together) as its last statement, and commits;
//! - a sealer moves the pending records it can see (committed ones) into `scim_changes`, in the
//!   order of their row ids, giving each the tenant's next sequence number and the hash over its
//!   predecessor, and deletes them from `scim_changes_pending`, in one transaction per batch: a
//!   record is sealed exactly once, and readers see a batch whole or not at all;
//! - one sealer runs at a time across replicas (a transaction-level advisory lock); each write
//!   asks for a round after its commit without waiting for it ([`Sealer::seal_soon`]), and
//!   within a process [`Sealer`] lets the writes that committed while a round was running share
//!   the next round instead of running one each (a group commit of the chain): at most one
//!   round asked for by writes is queued, and it starts no sooner than [`ROUND_PACE`] after
//!   the last one began, so that under load each round seals many records (readers that seal
//!   first do not wait for the pace).
//!
//! Why this keeps the guarantees the Graph bridge and `audit verify` rely on: numbers are given
//! at sealing, to committed records only, each one more than the last, so a reader never sees a
//! gap that a later read fills, and a cursor never skips a record. The sealing commits durably
//! (`synchronous_commit` as configured) before anyone can read it, so what a reader saw survives
//! a crash as it saw it. The order is commit order where it matters: records committed before a
//! round began precede those committed after it; within a round, row ids order them, and a row
//! id is taken at the record's insert, after the write's row locks, so of two writes of one
//! resource (the second cannot lock its row before the first commits) the first has the smaller
//! id, whatever either did before.
//!
//! Rejected: numbering records in transaction-id order and sealing only below the oldest running
//! transaction id (`pg_snapshot_xmin`). That order inverts two writes of one resource when the
//! later one began writing earlier (a user's deletion, which also moves the user's groups to new
//! versions, against a concurrent group `PATCH`), and the oldest running transaction is the whole
//! cluster's: one long-running write in any database of the server would stall every change log.
//! Here a long-running transaction delays only its own records.
//!
//! A record is sealed within a round or two of its commit. A reader that must see every
//! committed record seals first; a crash between a write's commit and its sealing leaves a
//! pending record, which the next round seals: another write's, a reader's ([`super::ChangeLogStore::changes_after`], `verify_chain`, the
//! bridge's `heads`), or the server's sweep every second.

use super::chain::{self, Unsealed};
use super::row::{version_from_db, version_to_db};
use super::sql::Arg;
use super::{Result, StoreError};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// An arbitrary constant naming the sealer among advisory locks ("scimseal").
const SEAL_LOCK: i64 = 0x7363_696d_7365_616c;

/// Records sealed per transaction.
const BATCH: i64 = 1000;

/// The least time between the starts of two rounds asked for by writes
/// ([`Sealer::seal_soon`]). A round costs the same four round trips and a commit whether it
/// seals one record or a hundred; back to back under load, each sealed the few records
/// committed while the last one ran. Paced, a round seals what 10 ms of writes committed, and
/// the Graph bridge sees a change at most that much later (`docs/benchmarks.md`, "Writes
/// without a ping").
pub const ROUND_PACE: Duration = Duration::from_millis(10);

/// How long [`Sealer::sequence_of`] waits for its record (sealed by the first round after its
/// commit, unless that round fails).
const SEQUENCE_WAIT: Duration = Duration::from_secs(30);

/// Inserts a pending change record (parameters: [`pending_arguments`]). A `SELECT`, so that a
/// one-statement write can add `FROM` its compare-and-swap: the record's row id is then taken
/// after the resource's row is locked, as the ordering argument in the module documentation
/// needs.
pub const INSERT_PENDING: &str = "INSERT INTO scim_changes_pending (tenant_id, resource_type, \
     resource_id, version, operation, change_json, principal, request_id, occurred_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9";

/// [`INSERT_PENDING`]'s arguments for `record`.
pub fn pending_arguments(record: Unsealed) -> Result<Vec<Arg>> {
    let version = i32::try_from(record.version)
        .map_err(|_| StoreError::Corrupt(format!("version {} out of range", record.version)))?;
    Ok(vec![
        Arg::Text(record.tenant),
        Arg::Text(record.resource_type),
        Arg::Text(record.resource_id),
        Arg::Int(i64::from(version)),
        Arg::Text(record.operation),
        Arg::Text(record.change_json),
        Arg::Text(record.principal),
        Arg::OptText(record.request_id),
        Arg::Text(record.occurred_at),
    ])
}

/// Inserts `record` as a pending change inside the transaction open on `conn`; returns its row
/// id (the `change_id` its sealed record will carry).
pub async fn insert_pending(conn: &mut PgConnection, record: &Unsealed) -> Result<i64> {
    let args = super::postgres::pg_arguments(&pending_arguments(record.clone())?)?;
    Ok(
        sqlx::query_scalar_with(&format!("{INSERT_PENDING} RETURNING id"), args)
            .fetch_one(conn)
            .await?,
    )
}

/// A process's sealer: runs sealing rounds one at a time and lets writers share them.
#[derive(Debug, Default)]
pub struct Sealer {
    /// Rounds begun; a round increments it before it reads the pending records.
    rounds: AtomicU64,
    /// Held by the running round; when the last round began.
    running: Mutex<Option<tokio::time::Instant>>,
    /// A round asked for by a write is queued and has not yet read the pending records: a
    /// write that commits now is sealed by it and need not ask for another.
    asked: AtomicBool,
}

impl Sealer {
    /// Seals every sealable record, as seen after the caller's last commit; returns the number
    /// sealed by this call (0 when a round that began after that commit has already run).
    pub async fn seal(&self, pool: &PgPool) -> Result<u64> {
        let seen = self.rounds.load(Ordering::Acquire);
        let mut last_start = self.running.lock().await;
        if self.rounds.load(Ordering::Acquire) != seen {
            // A round began after the caller's commit (it incremented the counter after the
            // caller read it) and has finished: it saw everything the caller committed.
            return Ok(0);
        }
        self.begin_round(&mut last_start);
        seal_round(pool).await
    }

    /// Rounds begun so far by this sealer (for tests and diagnostics).
    pub fn rounds_begun(&self) -> u64 {
        self.rounds.load(Ordering::Acquire)
    }

    /// Seals after a write's commit, in a task of its own: the writer does not wait for it. A
    /// failure is logged, not returned: the write has committed, and its record waits for the
    /// next round or the sweep. At most one such round is queued at a time: a write that finds
    /// one queued (not yet reading) is sealed by it, and asks for nothing. The queued round
    /// starts no sooner than [`ROUND_PACE`] after the last one began.
    ///
    /// Why the writer does not wait: rounds run one at a time, and a record committed while a
    /// round runs is sealed by the next one, so a writer that waited for its record waited for
    /// up to two rounds (each a transaction with its own commit) after its own commit: on a
    /// PostgreSQL shared with the server on two cores, that wait, not the write, set the pace
    /// of every writer (issue 14, `docs/benchmarks.md`). Nothing a writer answers depends on the
    /// sequence number; every reader of the log seals first or, like the Graph bridge's reader,
    /// reads on until it has caught up; the sweep seals anything left.
    pub fn seal_soon(self: &Arc<Self>, pool: &PgPool) {
        // Sequentially consistent with the round's clearing: a write that saw the flag set
        // committed before the queued round clears it, and so before that round reads.
        if self.asked.swap(true, Ordering::SeqCst) {
            return;
        }
        let (sealer, pool) = (Arc::clone(self), pool.clone());
        tokio::spawn(async move {
            let mut last_start = sealer.running.lock().await;
            if let Some(last) = *last_start {
                tokio::time::sleep_until(last + ROUND_PACE).await;
            }
            sealer.begin_round(&mut last_start);
            if let Err(e) = seal_round(&pool).await {
                tracing::warn!(error = %e, "sealing the change log after a write failed; the sweep retries");
            }
        });
    }

    /// Marks a round as begun, just before it reads the pending records (the caller holds
    /// `running`): writes that commit from now on ask for the next round.
    fn begin_round(&self, last_start: &mut Option<tokio::time::Instant>) {
        self.asked.store(false, Ordering::SeqCst);
        self.rounds.fetch_add(1, Ordering::AcqRel);
        *last_start = Some(tokio::time::Instant::now());
    }

    /// The sequence number of the record that was pending as `change_id` (about `resource_id` of
    /// `tenant`), sealing until it is sealed. Waits at most 30 s (`SEQUENCE_WAIT`; a round that
    /// fails, say on a lost connection, is retried).
    pub async fn sequence_of(
        &self,
        pool: &PgPool,
        tenant: &str,
        resource_id: &str,
        change_id: i64,
    ) -> Result<u64> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let round = self.seal(pool).await;
            // `scim_changes_resource (tenant_id, resource_id, tenant_seq)` narrows the search to
            // the subject's records.
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT tenant_seq FROM scim_changes \
                 WHERE tenant_id = $1 AND resource_id = $2 AND change_id = $3",
            )
            .bind(tenant)
            .bind(resource_id)
            .bind(change_id)
            .fetch_optional(pool)
            .await?;
            if let Some(seq) = seq {
                return version_from_db(seq);
            }
            if started.elapsed() > SEQUENCE_WAIT {
                round?;
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// Seals every record committed so far, for a reader with a pool of its own (no [`Sealer`] to
/// share rounds with); returns how many it sealed.
pub async fn seal_committed(pool: &PgPool) -> Result<u64> {
    seal_round(pool).await
}

/// A pending row as the sealer reads it, with its tenant's chain head (none before the
/// tenant's first sealed record).
#[derive(Debug, sqlx::FromRow)]
struct PendingRow {
    id: i64,
    tenant_id: String,
    resource_type: String,
    resource_id: String,
    version: i64,
    operation: String,
    change_json: String,
    principal: String,
    request_id: Option<String>,
    occurred_at: String,
    last_seq: Option<i64>,
    last_hash: Option<String>,
}

/// Seals batches until no sealable record is left; returns how many it sealed.
async fn seal_round(pool: &PgPool) -> Result<u64> {
    let mut total = 0;
    loop {
        let sealed = seal_batch(pool).await?;
        total += sealed;
        if sealed < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// One batch in four round trips: `BEGIN` with the sealer's lock, the pending records with
/// their tenants' heads, the sealed records with the heads moved and the pending rows removed
/// (one statement), `COMMIT`.
async fn seal_batch(pool: &PgPool) -> Result<u64> {
    // The lock's key is a constant, written into the text (a simple query takes no parameters).
    let mut tx = pool
        .begin_with(format!("BEGIN; SELECT pg_advisory_xact_lock({SEAL_LOCK})"))
        .await?;
    // This statement's snapshot is taken after the lock: it sees what any earlier sealer
    // committed, and every write committed before this round began.
    let rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT p.id, p.tenant_id, p.resource_type, p.resource_id, \
         CAST(p.version AS BIGINT) AS version, p.operation, p.change_json, p.principal, \
         p.request_id, p.occurred_at, h.last_seq, h.last_hash \
         FROM (SELECT * FROM scim_changes_pending ORDER BY id LIMIT $1) p \
         LEFT JOIN tenant_chain h ON h.tenant_id = p.tenant_id ORDER BY p.id",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let mut head: HashMap<String, (u64, String)> = HashMap::new();
    let mut cols = Columns::default();
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        ids.push(r.id);
        let (last_seq, last_hash) = match head.get(&r.tenant_id) {
            Some(moved) => moved.clone(),
            None => match (r.last_seq, r.last_hash) {
                (Some(seq), Some(hash)) => (version_from_db(seq)?, hash),
                _ => (0, chain::GENESIS_HASH.to_string()),
            },
        };
        let record = Unsealed {
            tenant: r.tenant_id,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            version: version_from_db(r.version)?,
            operation: r.operation,
            change_json: r.change_json,
            principal: r.principal,
            request_id: r.request_id,
            occurred_at: r.occurred_at,
        }
        .seal(last_seq, &last_hash);
        head.insert(record.tenant.clone(), (record.seq, record.hash.clone()));
        cols.push(record, r.id)?;
    }
    let sealed = ids.len() as u64;
    let (tenants, seqs, hashes): (Vec<String>, Vec<i64>, Vec<String>) = {
        let mut t = Vec::new();
        let mut s = Vec::new();
        let mut h = Vec::new();
        for (tenant, (seq, hash)) in head {
            t.push(tenant);
            s.push(version_to_db(seq)?);
            h.push(hash);
        }
        (t, s, h)
    };
    // Three tables, no row touched twice: the order in which PostgreSQL runs the three parts
    // of the statement does not matter.
    sqlx::query(
        "WITH sealed AS (INSERT INTO scim_changes (tenant_id, tenant_seq, resource_type, \
         resource_id, version, operation, change_json, principal, request_id, occurred_at, \
         prev_hash, hash, change_id) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
         $13::bigint[])), \
         gone AS (DELETE FROM scim_changes_pending WHERE id = ANY($14)), \
         heads AS (INSERT INTO tenant_chain (tenant_id, last_seq, last_hash) \
         SELECT * FROM UNNEST($15::text[], $16::bigint[], $17::text[]) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, \
         last_hash = EXCLUDED.last_hash) \
         SELECT 1",
    )
    .bind(cols.tenant)
    .bind(cols.seq)
    .bind(cols.resource_type)
    .bind(cols.resource_id)
    .bind(cols.version)
    .bind(cols.operation)
    .bind(cols.change_json)
    .bind(cols.principal)
    .bind(cols.request_id)
    .bind(cols.occurred_at)
    .bind(cols.prev_hash)
    .bind(cols.hash)
    .bind(cols.change_id)
    .bind(&ids)
    .bind(tenants)
    .bind(seqs)
    .bind(hashes)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(sealed)
}

/// Sealed records as columns, for one `UNNEST` insert.
#[derive(Default)]
struct Columns {
    tenant: Vec<String>,
    seq: Vec<i64>,
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    version: Vec<i64>,
    operation: Vec<String>,
    change_json: Vec<String>,
    principal: Vec<String>,
    request_id: Vec<Option<String>>,
    occurred_at: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    change_id: Vec<i64>,
}

impl Columns {
    fn push(&mut self, r: super::ChangeRecord, change_id: i64) -> Result<()> {
        self.tenant.push(r.tenant);
        self.seq.push(version_to_db(r.seq)?);
        self.resource_type.push(r.resource_type);
        self.resource_id.push(r.resource_id);
        self.version.push(version_to_db(r.version)?);
        self.operation.push(r.operation);
        self.change_json.push(r.change_json);
        self.principal.push(r.principal);
        self.request_id.push(r.request_id);
        self.occurred_at.push(r.occurred_at);
        self.prev_hash.push(r.prev_hash);
        self.hash.push(r.hash);
        self.change_id.push(change_id);
        Ok(())
    }
}
