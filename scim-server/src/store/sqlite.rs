//! The SQLite store: the embedded default. One file, created on first start, in WAL mode, with
//! foreign keys on and migrations applied on open.
//!
//! Writes are serialised: a process-wide lock orders this store's writers, and each write
//! transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front (another
//! process writing the same file waits up to the busy timeout instead of failing mid-way).
//! Readers never wait for writers (WAL).
//!
//! Two choices keep a write's time under that lock short (measured in `docs/benchmarks.md`,
//! "SQLite writes"):
//! - Resource writes use one connection of their own (`writer`). SQLite discards a connection's
//!   whole page cache when another connection has changed the database since its last
//!   transaction; with writes spread over the pool, every write started cold and read each page
//!   of the B-trees it touched from the file again (about 50 reads per `POST /Users`). The one
//!   writer's cache stays valid between its own writes.
//! - No commit checkpoints. SQLite's default copies the WAL back into the database (with two
//!   `fsync`s) inside whichever commit crosses 1,000 WAL pages, that is inside a write holding
//!   the lock, every twenty writes or so. Here automatic checkpoints are off and a background
//!   task runs a `PASSIVE` checkpoint every [`CHECKPOINT_INTERVAL`], beside the writers
//!   (a checkpoint does not block them). Durability is unchanged: WAL with
//!   `synchronous=NORMAL`, a commit survives a crash of the process; the last commits before a
//!   power loss may be lost (stated in the README).
//! - A write is one round trip to the connection's thread, not eight. sqlx runs each statement
//!   on the connection's worker thread, and every round trip to it costs two thread wake-ups
//!   while the lock is held: they, not SQLite, set the pace of writes (profile in
//!   `docs/benchmarks.md`). So a write's statements are queued (`WriteTx::queue`) and sent
//!   together as one multi-statement query, `BEGIN IMMEDIATE; …; COMMIT`; a statement whose
//!   result decides what follows (a compare-and-swap) is sent at once with what is queued
//!   before it (`WriteTx::run`). An error stops the query before `COMMIT`, and the write is
//!   rolled back.
//! - For that, a write's change record cannot wait for the chain head to be read: the store
//!   remembers each tenant's head (sequence and hash) as its last write committed it, and the
//!   record's `prev_hash` is the head's hash only if the database's head is still that one
//!   (else NULL, which the column refuses). Another writer of the file (another process, or
//!   this process's writers outside the lock: audit events appended inside a caller's
//!   transaction) makes the memory stale; the write then fails before `COMMIT` with
//!   [`StoreError::ChainHeadMoved`], the remembered heads are forgotten, and the store runs the
//!   write again, reading the head from the database.

use super::chain::{self, RecordBody, Unsealed};
use super::row::{version_from_db, version_to_db};
use super::sql::{Arg, Dialect};
use super::{ChangeRecord, Result, StoreError, WriteContext};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Arguments, Connection, Sqlite};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// How often the background task checkpoints the WAL into the database file.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// `ignore_missing`: the Graph bridge's migrations share `_sqlx_migrations` on this database in
/// their own version range (10001 and up), unknown to this migrator.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};

/// The SQLite [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection resource writes use (the same pool as `pool` for an in-memory
    /// database, which lives in one connection).
    writer: SqlitePool,
    write_lock: Arc<Mutex<()>>,
    /// Each tenant's chain head (last sequence number, last hash) as this store's last write of
    /// it committed them: read and changed under `write_lock` only (module docs).
    heads: Arc<std::sync::Mutex<HashMap<String, ChainHead>>>,
    /// Alive while any clone of the store is: the checkpoint task stops once it is gone.
    _alive: Arc<()>,
}

/// A tenant chain's last record: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChainHead {
    seq: u64,
    hash: String,
}

/// A write in progress on the writer connection, holding the writer lock until it ends
/// ([`SqliteStore::commit_write`] or [`WriteTx::rollback`]).
struct WriteTx {
    conn: PoolConnection<Sqlite>,
    /// Statements not sent yet, `;`-separated, their placeholders numbered over `args`.
    pending: String,
    args: SqliteArguments<'static>,
    arg_count: usize,
    /// Whether `BEGIN IMMEDIATE` has been queued and no `COMMIT`/`ROLLBACK` has ended it.
    open: bool,
    /// The chain heads this write moved, remembered once it commits.
    moved: Vec<(String, ChainHead)>,
    /// Whether the store's remembered heads may be used (not on a write's second attempt).
    trust_remembered: bool,
    /// The store's remembered heads (forgotten when one proves stale).
    heads: Arc<std::sync::Mutex<HashMap<String, ChainHead>>>,
    _guard: OwnedMutexGuard<()>,
}

impl WriteTx {
    /// Makes this write read its chain heads from the database (a second attempt after
    /// [`StoreError::ChainHeadMoved`]: another writer may keep moving them).
    fn read_heads(&mut self) {
        self.trust_remembered = false;
    }

    /// Queues `sql` (its placeholders `$1`… numbered from 1 over `args`) to be sent with the
    /// next statement that must run at once, or with the commit.
    async fn queue(&mut self, sql: &str, args: Vec<Arg>) -> Result<()> {
        if !self.pending.is_empty() {
            self.pending.push_str(";\n");
        }
        self.pending
            .push_str(&renumber_placeholders(sql, self.arg_count));
        for arg in &args {
            add_argument(&mut self.args, arg)?;
        }
        self.arg_count += args.len();
        Ok(())
    }

    /// Sends what is queued and `sql` (an `INSERT`, `UPDATE` or `DELETE`) at once; the rows
    /// `sql` changed. (They are read with `changes()` in the same query: the count sqlx reports
    /// for a multi-statement query adds up every statement's, and `BEGIN` reports the last
    /// write's.)
    async fn run(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        self.queue(sql, args).await?;
        self.queue("SELECT changes()", Vec::new()).await?;
        let (sql, args) = self.take_pending();
        let counts: Vec<i64> = match sqlx::query_scalar_with(&sql, args)
            .fetch_all(&mut *self.conn)
            .await
        {
            Ok(counts) => counts,
            Err(e) => return Err(chain_error(&self.heads, e)),
        };
        Ok(counts
            .last()
            .and_then(|n| u64::try_from(*n).ok())
            .unwrap_or(0))
    }

    /// The connection, with everything queued sent, for statements that read.
    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        self.flush().await?;
        Ok(&mut *self.conn)
    }

    /// Sends the queued statements as one query.
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (sql, args) = self.take_pending();
        match sqlx::query_with(&sql, args).execute(&mut *self.conn).await {
            Ok(_) => Ok(()),
            Err(e) => Err(chain_error(&self.heads, e)),
        }
    }

    fn take_pending(&mut self) -> (String, SqliteArguments<'static>) {
        self.arg_count = 0;
        (
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.args),
        )
    }

    /// Ends the write without committing it.
    async fn rollback(mut self) {
        self.pending.clear();
        if self.open {
            // "No transaction is active" (BEGIN itself failed) is fine; any other failure
            // leaves the connection's state unknown, so it is closed, not reused.
            let done = sqlx::query("ROLLBACK").execute(&mut *self.conn).await;
            if let Err(e) = done
                && !e.to_string().contains("no transaction is active")
            {
                self.conn.close_on_drop();
            }
            self.open = false;
        }
    }
}

impl Drop for WriteTx {
    /// A write dropped while open (its task was cancelled) must not leave the connection inside
    /// a transaction: closing it rolls the transaction back.
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// A stale remembered head shows as the change record's `prev_hash` refused as NULL: the
/// remembered heads are forgotten and the write is reported as [`StoreError::ChainHeadMoved`].
fn chain_error(heads: &std::sync::Mutex<HashMap<String, ChainHead>>, e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.message().contains("scim_changes.prev_hash")
    {
        heads.lock().unwrap_or_else(|p| p.into_inner()).clear();
        return StoreError::ChainHeadMoved;
    }
    StoreError::Database(e)
}

/// `sql` with every placeholder `$N` renumbered `$(N + offset)`, so statements written with
/// their own `$1`… can share one query's arguments. (No statement of the store holds a `$`
/// followed by a digit outside a placeholder.)
fn renumber_placeholders(sql: &str, offset: usize) -> std::borrow::Cow<'_, str> {
    if offset == 0 {
        return std::borrow::Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let end = (i + 1..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            let n: usize = sql[i + 1..end].parse().unwrap_or(0);
            out.push_str(&sql[copied..i]);
            out.push('$');
            out.push_str(&(n + offset).to_string());
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    std::borrow::Cow::Owned(out)
}

fn add_argument(out: &mut SqliteArguments<'static>, arg: &Arg) -> Result<()> {
    let res = match arg {
        Arg::Text(s) => out.add(s.clone()),
        Arg::OptText(s) => out.add(s.clone()),
        Arg::Int(i) => out.add(*i),
        Arg::Float(f) => out.add(*f),
        Arg::TextArray(v) => out.add(serde_json::to_string(v).unwrap_or_default()),
    };
    res.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url_or_path` (`sqlite:path`,
    /// `sqlite://path`, `sqlite::memory:` or a plain path), in WAL mode with foreign keys and a
    /// busy timeout, and applies pending migrations.
    pub async fn open(url_or_path: &str) -> Result<Self> {
        Self::open_with(url_or_path, super::PoolSettings::default()).await
    }

    /// [`SqliteStore::open`] with a configured pool.
    pub async fn open_with(url_or_path: &str, settings: super::PoolSettings) -> Result<Self> {
        let memory = url_or_path.contains(":memory:") || url_or_path.contains("mode=memory");
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        if !memory {
            // A first start creates the file, and the directory it lives in.
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.into()))?;
            }
        }
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .synchronous(SqliteSynchronous::Normal);
        let options = if memory {
            options
        } else {
            // Checkpoints run in the background task, not inside commits (module docs).
            options
                .journal_mode(SqliteJournalMode::Wal)
                .pragma("wal_autocheckpoint", "0")
        };
        let pool = Self::pool_options(memory, &settings)
            .connect_with(options.clone())
            .await?;
        let writer = if memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(settings.acquire_timeout.unwrap_or(Duration::from_secs(30)))
                .min_connections(0)
                .idle_timeout(Some(Duration::from_secs(600)))
                .max_lifetime(Some(Duration::from_secs(3600)))
                .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                // SQLite's default page cache (2 MiB): a larger one bought little at 100,000
                // users and counted against the server's 100 MB memory target.
                .connect_with(options)
                .await?
        };
        let alive = Arc::new(());
        let store = Self {
            pool,
            writer,
            write_lock: Arc::new(Mutex::new(())),
            heads: Arc::default(),
            _alive: alive.clone(),
        };
        super::Store::migrate(&store).await?;
        if !memory {
            tokio::spawn(checkpoint_loop(store.pool.clone(), Arc::downgrade(&alive)));
        }
        Ok(store)
    }

    /// The reading pool's options (also the connections of writers other than resource writes).
    fn pool_options(memory: bool, settings: &super::PoolSettings) -> SqlitePoolOptions {
        SqlitePoolOptions::new()
            // An in-memory database lives in one connection, which must then never close.
            .max_connections(if memory {
                1
            } else {
                settings
                    .max_connections
                    .unwrap_or(super::SQLITE_MAX_CONNECTIONS)
                    .max(1)
            })
            .acquire_timeout(settings.acquire_timeout.unwrap_or(Duration::from_secs(30)))
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            // A COMMIT that fails (a full disk) leaves sqlx believing the connection is still in
            // a transaction (SQLite has rolled it back, so the ROLLBACK on drop fails too); such a
            // connection would refuse every later BEGIN. It is closed instead of reused.
            // (Not for an in-memory database, whose one connection is the database.)
            .before_acquire(move |conn, _| {
                Box::pin(async move { Ok(memory || !conn.is_in_transaction()) })
            })
    }

    /// The connection pool (for tests and diagnostics).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// SQLite's planner chooses lookups by their equality terms without statistics (and
    /// `ANALYZE` would change its choices), so there is nothing to refresh.
    async fn analyze_stale_tables(&self) -> Result<Vec<&'static str>> {
        Ok(Vec::new())
    }

    /// Nothing is ever pending on SQLite.
    async fn seal_pending(&self) -> Result<u64> {
        Ok(0)
    }

    async fn sweep_changes(&self) -> Result<u64> {
        Ok(0)
    }

    /// Appends `event` in a transaction of its own (numbered and chained in it).
    async fn append_event_own(
        &self,
        ctx: &WriteContext,
        event: &scim_core::change_log::AuditEvent,
    ) -> Result<u64> {
        let mut retried = false;
        loop {
            let mut w = self.begin_write().await?;
            if retried {
                w.read_heads();
            }
            let outcome = self
                .append_record(&mut w, ctx, RecordBody::event(event)?)
                .await;
            let seq = w.moved.last().map(|(_, head)| head.seq);
            match self.finish_write(w, outcome).await {
                Ok(()) => {
                    return seq.ok_or_else(|| {
                        StoreError::Corrupt("an SQLite append returned no sequence number".into())
                    });
                }
                // A stale remembered head: the second attempt reads it from the database.
                Err(StoreError::ChainHeadMoved) if !retried => retried = true,
                Err(e) => return Err(e),
            }
        }
    }

    async fn begin_write(&self) -> Result<WriteTx> {
        let guard = self.write_lock.clone().lock_owned().await;
        let conn = self.writer.acquire().await?;
        Ok(WriteTx {
            conn,
            pending: "BEGIN IMMEDIATE".to_string(),
            args: SqliteArguments::default(),
            arg_count: 0,
            open: true,
            moved: Vec::new(),
            trust_remembered: true,
            heads: self.heads.clone(),
            _guard: guard,
        })
    }

    /// Queues a write's change record, numbered and chained in the write's transaction: after
    /// the head this write or the store remembers, else after the head read from the database.
    async fn append_record(
        &self,
        w: &mut WriteTx,
        ctx: &WriteContext,
        body: RecordBody,
    ) -> Result<()> {
        let remembered = w
            .moved
            .iter()
            .rev()
            .find(|(tenant, _)| *tenant == ctx.tenant)
            .map(|(_, head)| head.clone())
            .or_else(|| {
                w.trust_remembered
                    .then(|| self.remembered_head(&ctx.tenant))
                    .flatten()
            });
        let head = match remembered {
            Some(head) => head,
            None => read_head(w.conn().await?, &ctx.tenant).await?,
        };
        let record = Unsealed::new(ctx, body).seal(head.seq, &head.hash);
        let moved = queue_append(w, record, &head).await?;
        w.moved.push((ctx.tenant.clone(), moved));
        Ok(())
    }

    /// Commits a write and remembers the chain heads it moved (before the lock is released, so
    /// the next writer starts from them). On failure the write is rolled back.
    async fn commit_write(&self, mut w: WriteTx) -> Result<()> {
        w.queue("COMMIT", Vec::new()).await?;
        match w.flush().await {
            Ok(_) => {
                w.open = false;
                let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
                for (tenant, head) in std::mem::take(&mut w.moved) {
                    heads.insert(tenant, head);
                }
                Ok(())
            }
            Err(e) => {
                w.rollback().await;
                Err(e)
            }
        }
    }

    fn remembered_head(&self, tenant: &str) -> Option<ChainHead> {
        self.heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    fn arguments(&self, args: &[Arg]) -> Result<SqliteArguments<'static>> {
        let mut out = SqliteArguments::default();
        for arg in args {
            add_argument(&mut out, arg)?;
        }
        Ok(out)
    }
}

/// `tenant`'s chain head as the database has it (creating the chain's row on its first record).
async fn read_head(conn: &mut SqliteConnection, tenant: &str) -> Result<ChainHead> {
    let (seq, hash): (i64, String) = sqlx::query_as(
        "INSERT INTO tenant_chain (tenant_id, last_seq, last_hash) VALUES ($1, 0, $2) \
         ON CONFLICT (tenant_id) DO NOTHING; \
         SELECT last_seq, last_hash FROM tenant_chain WHERE tenant_id = $1",
    )
    .bind(tenant)
    .bind(chain::GENESIS_HASH)
    .fetch_one(conn)
    .await?;
    Ok(ChainHead {
        seq: version_from_db(seq)?,
        hash,
    })
}

/// Queues `record` and the move of its tenant's head to it. The record's `prev_hash` is read
/// from the head row only if that is still `head`; else it is NULL, which the column refuses,
/// and the write fails before its commit (module docs).
async fn queue_append(
    w: &mut WriteTx,
    record: ChangeRecord,
    head: &ChainHead,
) -> Result<ChainHead> {
    // The record's fields move into the arguments (the change JSON is the bulk of a write).
    let moved = ChainHead {
        seq: record.seq,
        hash: record.hash.clone(),
    };
    w.queue(
        "INSERT INTO scim_changes (tenant_id, tenant_seq, resource_type, resource_id, \
         version, operation, change_json, principal, request_id, occurred_at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT last_hash FROM tenant_chain \
         WHERE tenant_id = $1 AND last_seq = $13 AND last_hash = $11), $12); \
         UPDATE tenant_chain SET last_seq = $2, last_hash = $12 WHERE tenant_id = $1",
        vec![
            Arg::Text(record.tenant),
            Arg::Int(version_to_db(record.seq)?),
            Arg::Text(record.resource_type),
            Arg::Text(record.resource_id),
            Arg::Int(version_to_db(record.version)?),
            Arg::Text(record.operation),
            Arg::Text(record.change_json),
            Arg::Text(record.principal),
            Arg::OptText(record.request_id),
            Arg::Text(record.occurred_at),
            Arg::Text(record.prev_hash),
            Arg::Text(record.hash),
            Arg::Int(version_to_db(head.seq)?),
        ],
    )
    .await?;
    Ok(moved)
}

/// Checkpoints the WAL every [`CHECKPOINT_INTERVAL`] until the store is dropped. `PASSIVE`
/// copies what no reader still needs and waits for nobody; what it cannot copy yet, the next
/// round does. A `PASSIVE` checkpoint never makes the WAL file start over while readers come
/// and go (measured: 8 GB of WAL after Entra's initial cycle at 100,000 users), so once the WAL
/// holds [`WAL_TRUNCATE_FRAMES`] a `TRUNCATE` checkpoint follows: it waits (up to the busy
/// timeout) for the readers of older snapshots to finish, holding writers back meanwhile, and
/// empties the file. A failure is logged and retried next round (the WAL only grows meanwhile).
async fn checkpoint_loop(pool: SqlitePool, alive: Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        if let Err(e) = checkpoint(&pool).await {
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retried in the next round");
        }
    }
}

/// How many WAL frames (pages, 4 KiB each) make the checkpoint task empty the WAL file.
pub const WAL_TRUNCATE_FRAMES: i64 = 16_384;

/// One round of [`checkpoint_loop`]: the WAL's size in frames after it.
pub(crate) async fn checkpoint(pool: &SqlitePool) -> std::result::Result<i64, sqlx::Error> {
    // (busy, frames in the WAL, frames copied)
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    if frames < WAL_TRUNCATE_FRAMES {
        return Ok(frames);
    }
    let (busy, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    if busy != 0 {
        tracing::warn!(
            frames,
            "SQLite WAL not emptied: readers still held older snapshots"
        );
    }
    Ok(frames)
}

super::imp::impl_sql_store!(SqliteStore, Sqlite);

#[cfg(test)]
mod tests {
    use super::renumber_placeholders;

    #[test]
    fn placeholders_are_renumbered_and_nothing_else_changes() {
        assert_eq!(
            renumber_placeholders("SELECT $1, $2 FROM t WHERE a = $10", 12),
            "SELECT $13, $14 FROM t WHERE a = $22"
        );
        // JSON paths hold `$` without a digit; text around the placeholders (UTF-8) is kept.
        assert_eq!(
            renumber_placeholders("SELECT json_extract(j.value, '$[0]'), 'é' || $3", 2),
            "SELECT json_extract(j.value, '$[0]'), 'é' || $5"
        );
        assert_eq!(renumber_placeholders("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumber_placeholders("COMMIT$", 4), "COMMIT$");
    }
}
