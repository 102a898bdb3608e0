//! The PostgreSQL store, for deployments that outgrow one machine: any number of stateless
//! `scim-server` replicas over one database. Nothing here depends on a single process: unique
//! keys are constraints, versions are compare-and-swap in the `UPDATE`, and writers of one tenant
//! do not wait for each other: each write commits an unnumbered change record, which a single
//! sealer at a time (across replicas) numbers and chains after commit ([`super::seal`]), so
//! readers see sequence numbers gap-free and never filled in later. A resource write (its row,
//! its value rows, its members and its change record) is one statement, sent at commit
//! (`WriteTx`, `one_statement_write`) on a connection the writes share (`pg_clients.rs`).
//!
//! Connections, of `database.max_connections` (N): the one-statement writes' shared
//! connections, N less a quarter; sqlx's pool, a quarter (at least 2), for transactions (a
//! write that must read inside one, sealing, the change log, statistics, everything else); the
//! hot reads' shared connections, half of N again (rounded up), opened as they are needed.

use super::pg_clients::{DecodeRow, PgClients, WriteFailure};
use super::seal::Sealer;
use super::sql::{Arg, Dialect};
use super::{Result, StoreError, WriteContext};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Arguments, Postgres};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// `ignore_missing`: the Graph bridge's migrations share `_sqlx_migrations` on this database in
/// their own version range (10001 and up), unknown to this migrator.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

/// The PostgreSQL [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The hot reads' shared connections (`GET`, list pages).
    reads: Arc<PgClients>,
    /// The one-statement writes' shared connections.
    writes: Arc<PgClients>,
    /// This process's change-log sealer (see [`super::seal`]).
    sealer: Arc<Sealer>,
}

/// A write in progress. It starts deferred: its statements are kept in memory and sent at
/// commit as one statement, each of them a data-modifying `WITH` query of it, which PostgreSQL
/// runs atomically on its own (one round trip, where `BEGIN`, a round trip per statement and
/// `COMMIT` took five or six). A write that must read inside its transaction (a delete reads
/// the groups it leaves) opens one and sends what it queued first.
struct WriteTx {
    pool: PgPool,
    state: WriteState,
}

enum WriteState {
    Deferred(Vec<Deferred>),
    Open(sqlx::Transaction<'static, Postgres>),
}

/// A statement kept for the commit (placeholders `$1`… numbered over its own arguments).
struct Deferred {
    sql: String,
    args: Vec<Arg>,
    kind: DeferredKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DeferredKind {
    Statement,
    /// A compare-and-swap: the write fails unless the statement changed a row.
    CompareAndSwap,
    /// The change record ([`super::seal::INSERT_PENDING`]).
    Record,
}

/// Fails the statement it appears in when its argument, the number of rows a compare-and-swap
/// changed, is 0 (SQLSTATE [`CAS_LOST`], migration 0096): the one-statement write then
/// changes nothing.
const CAS_CHECK: &str = "scim_expect_rows";

/// The SQLSTATE [`CAS_CHECK`] raises.
const CAS_LOST: &str = "SCAS0";

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations (replicas starting
    /// together are safe: sqlx takes an advisory lock while migrating).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, super::PoolSettings::default()).await
    }

    /// [`PostgresStore::connect`] with a configured pool.
    pub async fn connect_with(url: &str, settings: super::PoolSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        // The configured number serves writes (most of them one statement each, on connections
        // of their own) and everything else; the hot reads may open half as many (rounded
        // up) of their own, and use one until it is busy (`pg_clients`). Writes need the
        // most: PostgreSQL commits concurrent writes together, and W3 halved with 8 of 16
        // connections taken away.
        let total = settings
            .max_connections
            .unwrap_or(super::POSTGRES_MAX_CONNECTIONS)
            .max(1);
        let shares = ConnectionShares::of(total);
        let acquire_timeout = settings.acquire_timeout.unwrap_or(Duration::from_secs(10));
        let lifetime = Duration::from_secs(1800);
        let reads = PgClients::new(
            &options,
            url,
            shares.reads,
            super::pg_clients::PIPELINE_DEPTH,
            acquire_timeout,
            lifetime,
        );
        let writes = PgClients::new(
            &options,
            url,
            shares.writes,
            super::pg_clients::WRITE_DEPTH,
            acquire_timeout,
            lifetime,
        );
        let pool = PgPoolOptions::new()
            .max_connections(shares.pool)
            .acquire_timeout(acquire_timeout)
            // sqlx's ping before lending stays for this pool's transactions (a delete, an
            // event's append, sealing): it is what lets them answer "nothing was changed"
            // during an outage instead of "may or may not have been stored"
            // (`reliability::outage`). The one-statement writes need none: their connections'
            // clients see a close when it happens (`pg_clients.rs`).
            .idle_timeout(Some(SHARED_IDLE_TIMEOUT))
            .connect_with(options)
            .await?;
        let store = Self {
            reads: Arc::new(reads),
            writes: Arc::new(writes),
            pool,
            sealer: Arc::default(),
        };
        super::Store::migrate(&store).await?;
        store.reads.open().await?;
        Ok(store)
    }

    /// The hot reads' connections open now (for tests and diagnostics).
    pub fn read_connections_open(&self) -> Option<u32> {
        Some(u32::try_from(self.reads.open_connections()).unwrap_or(u32::MAX))
    }

    /// Closes the reads' and the writes' shared connections that no statement has used for
    /// `idle` or longer; returns how many. The server's sweep calls it every second with
    /// 10 minutes (as long as sqlx's pool keeps an idle connection).
    pub fn close_idle_connections(&self, idle: Duration) -> usize {
        self.reads.close_idle(idle) + self.writes.close_idle(idle)
    }

    /// The one-statement writes' connections open now (for tests and diagnostics).
    pub fn write_connections_open(&self) -> Option<u32> {
        Some(u32::try_from(self.writes.open_connections()).unwrap_or(u32::MAX))
    }

    /// The connection pool (for tests and diagnostics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    /// PostgreSQL is another process: every read is a round trip to it.
    fn inline_reads(&self) -> Option<&super::inline_reads::InlineReads> {
        None
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// Analyses each large table that has no statistics yet or has changed by more than 500 rows
    /// plus a tenth since it was last analysed, and returns their names.
    ///
    /// Why the product does this itself: without statistics PostgreSQL gives every equality the
    /// same default selectivity, so `tenant_id = $1 AND resource_type = $2` looks like one row,
    /// and at tens of thousands of rows an index that matches only those two columns costs the
    /// same, to the planner, as the exact lookup index; it may then read a tenant's whole type
    /// (issue 14 saw 10,000 rows read for a GET by id). Production clusters usually run
    /// autovacuum, which analyses in time; this keeps the same promise where it is off (as on
    /// our CI machines) and early in an initial sync. The distribution it records (one tenant,
    /// two types, unique ids) stays true as the table grows, so a few analyses suffice.
    /// Replicas take turns through a transaction-level advisory lock; one that does not get it
    /// skips the round.
    ///
    /// Each analysis reads a 3,000-row sample (a statistics target of 10, for these analyses
    /// only) and leaves the stored documents out (`postgres/0098`): during an initial sync the
    /// tables grow by a tenth between most rounds, and full analyses at the default target cost
    /// PostgreSQL 0.7 s of CPU per round at 17,000 users, on the cores it may share with the
    /// writes (issue 14, `docs/benchmarks.md`); these cost 15–55 ms a table. (Not a column list: a
    /// partial ANALYZE does not reset the table's count of changes, so it would stay stale.)
    /// Autovacuum, where it runs, analyses with the cluster's own target.
    async fn analyze_stale_tables(&self) -> Result<Vec<&'static str>> {
        const TABLES: [&str; 4] = [
            "resources",
            "resource_values",
            "memberships",
            "scim_changes",
        ];
        /// An arbitrary constant naming this job among advisory locks ("scimstat").
        const ADVISORY_KEY: i64 = 0x7363_696d_7374_6174;
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(ADVISORY_KEY)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(Vec::new());
        }
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT t FROM unnest($1::text[]) AS t \
             JOIN pg_class c ON c.oid = to_regclass(t) \
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE (c.reltuples < 0 AND pg_relation_size(c.oid) > 0) \
                OR COALESCE(s.n_mod_since_analyze, 0) > 500 + GREATEST(c.reltuples, 0) / 10",
        )
        .bind(TABLES.map(String::from).to_vec())
        .fetch_all(&mut *tx)
        .await?;
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query("SET LOCAL default_statistics_target = 10")
            .execute(&mut *tx)
            .await?;
        let mut analysed = Vec::new();
        for table in TABLES {
            if stale.iter().any(|t| t == table) {
                // The name comes from the constant list above, never from input.
                sqlx::query(&format!("ANALYZE {table}"))
                    .execute(&mut *tx)
                    .await?;
                analysed.push(table);
            }
        }
        tx.commit().await?;
        Ok(analysed)
    }

    /// Seals every change record committed so far that no running transaction can precede.
    async fn seal_pending(&self) -> Result<u64> {
        self.sealer.seal(&self.pool).await
    }

    /// The server's sweep: closes the shared connections unused for 10 minutes, seals what a
    /// crash or a caller's own transaction left pending, and vacuums the pending table once
    /// many sealed rows have left dead tuples in it (its index is read from the oldest entry
    /// on; where autovacuum is off, nothing else would clean it).
    async fn sweep_changes(&self) -> Result<u64> {
        self.close_idle_connections(SHARED_IDLE_TIMEOUT);
        let sealed = self.seal_pending().await?;
        let dead: Option<i64> = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'scim_changes_pending'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if dead.unwrap_or(0) > 10_000 {
            sqlx::query("VACUUM (SKIP_LOCKED) scim_changes_pending")
                .execute(&self.pool)
                .await?;
        }
        Ok(sealed)
    }

    /// Appends `event` in a transaction of its own and returns its sequence number, once sealed.
    async fn append_event_own(
        &self,
        ctx: &WriteContext,
        event: &scim_core::change_log::AuditEvent,
    ) -> Result<u64> {
        let record = super::chain::Unsealed::new(ctx, super::chain::RecordBody::event(event)?);
        let mut tx = self.pool.begin().await?;
        let change_id = super::seal::insert_pending(&mut tx, &record).await?;
        super::commit(tx).await?;
        self.sealer
            .sequence_of(&self.pool, &record.tenant, &record.resource_id, change_id)
            .await
    }

    async fn begin_write(&self) -> Result<WriteTx> {
        Ok(WriteTx {
            pool: self.pool.clone(),
            state: WriteState::Deferred(Vec::new()),
        })
    }

    /// Appends a write's change record, unnumbered (sealed after commit).
    async fn append_record(
        &self,
        w: &mut WriteTx,
        ctx: &WriteContext,
        body: super::chain::RecordBody,
    ) -> Result<()> {
        let record = super::chain::Unsealed::new(ctx, body);
        w.push(
            super::seal::INSERT_PENDING,
            super::seal::pending_arguments(record)?,
            DeferredKind::Record,
        )
        .await
        .map(drop)
    }

    /// Commits a write, and has its change record sealed after it (not waiting for that: see
    /// [`Sealer::seal_soon`]).
    async fn commit_write(&self, w: WriteTx) -> Result<()> {
        match w.state {
            WriteState::Deferred(items) if items.is_empty() => return Ok(()),
            WriteState::Deferred(items) => one_statement_write(&self.writes, items).await?,
            WriteState::Open(tx) => super::commit(tx).await?,
        }
        self.sealer.seal_soon(&self.pool);
        Ok(())
    }

    /// A hot read, pipelined with the others in flight on one of the shared connections.
    async fn pooled_read<T: DecodeRow>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>> {
        Ok(self.reads.query(sql, args).await?)
    }
}

/// How long a shared connection may stay unused before the sweep closes it (sqlx's pool's
/// `idle_timeout` below is the same).
const SHARED_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// How `database.max_connections` (`total`) is shared out (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectionShares {
    /// The one-statement writes' shared connections.
    writes: usize,
    /// sqlx's pool.
    pool: u32,
    /// The hot reads' shared connections, apart from `total`.
    reads: usize,
}

impl ConnectionShares {
    fn of(total: u32) -> Self {
        let pool = total / 4;
        Self {
            writes: (total - pool).max(1) as usize,
            pool: pool.max(2),
            reads: total.div_ceil(2) as usize,
        }
    }
}

pub(super) fn pg_arguments(args: &[Arg]) -> Result<PgArguments> {
    let mut out = PgArguments::default();
    for arg in args {
        add_argument(&mut out, arg.clone())?;
    }
    Ok(out)
}

fn add_argument(out: &mut PgArguments, arg: Arg) -> Result<()> {
    let res = match arg {
        Arg::Text(s) => out.add(s),
        Arg::OptText(s) => out.add(s),
        Arg::Int(i) => out.add(i),
        Arg::Float(f) => out.add(f),
        Arg::TextArray(v) => out.add(v),
    };
    res.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

impl WriteTx {
    /// Nothing is remembered between writes here: records are sealed after commit.
    fn read_heads(&mut self) {}

    /// Queues `sql` (its placeholders `$1`… numbered from 1 over `args`) for the commit, or
    /// runs it at once in an open write.
    async fn queue(&mut self, sql: &str, args: Vec<Arg>) -> Result<()> {
        self.push(sql, args, DeferredKind::Statement)
            .await
            .map(drop)
    }

    /// A compare-and-swap (`sql` changes one row only if it holds the expected version):
    /// whether it matched. A deferred write cannot know before its commit, so it answers `true`
    /// and the commit fails with [`StoreError::CompareAndSwapLost`], storing nothing, if the
    /// row did not match.
    async fn compare_and_swap(&mut self, sql: &str, args: Vec<Arg>) -> Result<bool> {
        self.push(sql, args, DeferredKind::CompareAndSwap).await
    }

    /// Queues a statement, or runs it in an open write; whether it changed a row (always
    /// `true` when queued).
    async fn push(&mut self, sql: &str, args: Vec<Arg>, kind: DeferredKind) -> Result<bool> {
        match &mut self.state {
            WriteState::Deferred(items) => {
                items.push(Deferred {
                    sql: sql.to_string(),
                    args,
                    kind,
                });
                Ok(true)
            }
            WriteState::Open(tx) => Ok(run(tx, sql, &args).await? > 0),
        }
    }

    /// The transaction's connection, for statements that read (opens the write: `BEGIN`,
    /// then what was queued, in order).
    async fn conn(&mut self) -> Result<&mut sqlx::PgConnection> {
        if let WriteState::Deferred(items) = &mut self.state {
            let items = std::mem::take(items);
            let mut tx = self.pool.begin().await?;
            for item in items {
                let changed = run(&mut tx, &item.sql, &item.args).await?;
                if changed == 0 && item.kind == DeferredKind::CompareAndSwap {
                    return Err(StoreError::CompareAndSwapLost);
                }
            }
            self.state = WriteState::Open(tx);
        }
        match &mut self.state {
            WriteState::Open(tx) => Ok(&mut **tx),
            WriteState::Deferred(_) => Err(StoreError::Corrupt(
                "a PostgreSQL write did not open".into(),
            )),
        }
    }

    async fn rollback(self) {
        if let WriteState::Open(tx) = self.state {
            // A failed rollback leaves the connection to sqlx, which closes a broken one.
            let _ = tx.rollback().await;
        }
    }
}

/// Runs one statement in `tx`; the rows it changed.
async fn run(tx: &mut sqlx::PgConnection, sql: &str, args: &[Arg]) -> Result<u64> {
    Ok(sqlx::query_with(sql, pg_arguments(args)?)
        .execute(tx)
        .await?
        .rows_affected())
}

/// Sends a deferred write's statements as one statement and lets it commit on its own: each
/// is a `WITH` query of it, and the main query checks every compare-and-swap's row count.
///
/// Why this is the same write as a transaction of the statements run in order: PostgreSQL runs
/// a statement atomically (its effects commit together or not at all), and every `WITH`
/// query sees the same snapshot. No write of ours queues two statements that depend on each
/// other's effects: an update deletes a resource's value rows and inserts the new ones (no
/// unique key: either order leaves the new ones), and member changes touch disjoint members
/// ([`MembershipDelta`](scim_core::patch::MembershipDelta): added and removed never share an
/// id; a `clear` keeps the ids it re-adds). Foreign keys are checked when the statement ends,
/// when the rows of its other queries are there. A compare-and-swap locks its row, and waits
/// for a concurrent writer of it, as it would in a transaction.
async fn one_statement_write(writes: &PgClients, items: Vec<Deferred>) -> Result<()> {
    use std::fmt::Write;
    let mut sql = String::from("WITH ");
    let mut args = Vec::new();
    let mut numbered = 0;
    let mut checks = Vec::new();
    // What the next change record selects from: the compare-and-swap, then each record.
    let mut record_after = None;
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(
            sql,
            "s{i} AS ({}",
            super::sql::renumber_placeholders(&item.sql, numbered)
        );
        match item.kind {
            DeferredKind::CompareAndSwap => {
                sql.push_str(" RETURNING 1");
                checks.push(format!("{CAS_CHECK}((SELECT count(*) FROM s{i}))"));
                record_after = Some(i);
            }
            // The record's row id is taken after the compare-and-swap has locked its row, and
            // after the previous record's: successive writes of one resource stored together
            // (`update_successive`) keep their order in the change log, which the sealer takes
            // from row ids. (Sibling `WITH` queries run in no defined order; one that reads
            // another's `RETURNING` rows runs after it has produced them.)
            DeferredKind::Record => {
                if let Some(before) = record_after {
                    let _ = write!(sql, " FROM s{before}");
                }
                sql.push_str(" RETURNING 1");
                record_after = Some(i);
            }
            DeferredKind::Statement => {}
        }
        sql.push(')');
        numbered += item.args.len();
        args.extend(item.args);
    }
    sql.push_str(" SELECT ");
    if checks.is_empty() {
        sql.push('1');
    } else {
        sql.push_str(&checks.join(", "));
    }
    match writes.execute_once(&sql, &args).await {
        Ok(_) => Ok(()),
        Err(WriteFailure::Refused(sqlx::Error::Database(db)))
            if db.code().as_deref() == Some(CAS_LOST) =>
        {
            Err(StoreError::CompareAndSwapLost)
        }
        // Sent, and the connection failed: the statement may have committed.
        Err(WriteFailure::Lost(e)) => Err(StoreError::OutcomeUnknown(e)),
        Err(WriteFailure::Unsent(e) | WriteFailure::Refused(e)) => Err(StoreError::Database(e)),
    }
}

super::imp::impl_sql_store!(PostgresStore, Postgres);
