//! The SQLite store: the embedded default. One file, created on first start, in WAL mode, with
//! foreign keys on and migrations applied on open.
//!
//! Writes are serialised: a process-wide lock orders this store's writers, and each write
//! transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front (another
//! process writing the same file waits up to the busy timeout instead of failing mid-way).
//! Readers never wait for writers (WAL).
//!
//! Several choices keep a write's time under that lock short (measured in `docs/benchmarks.md`,
//! "SQLite writes"):
//! - Resource writes use one connection of their own (the writer thread's, `sqlite/writer.rs`).
//!   SQLite discards a connection's whole page cache when another connection has changed the
//!   database since its last transaction; with writes spread over the pool, every write started
//!   cold and read each page of the B-trees it touched from the file again (about 50 reads per
//!   `POST /Users`). The one writer's cache stays valid between its own writes. It is larger
//!   than a reader's (8 MiB) and keeps statement journals in memory (`temp_store`; see
//!   `SqliteStore::open_with`). The writes that open (below) have a connection of their own
//!   (the writer connection), under the same lock.
//! - No commit checkpoints. SQLite's default copies the WAL back into the database (with two
//!   `fsync`s) inside whichever commit crosses 1,000 WAL pages, that is inside a write holding
//!   the lock, every twenty writes or so. Here automatic checkpoints are off and a background
//!   task runs a `PASSIVE` checkpoint every [`CHECKPOINT_INTERVAL`] (sooner while the WAL
//!   grows fast), beside the writers
//!   (it does not block them; the `RESTART` that starts a large WAL over holds them for a
//!   moment, see `checkpoint`). Durability is unchanged: WAL with
//!   `synchronous=NORMAL`, a commit survives a crash of the process; the last commits before a
//!   power loss may be lost (stated in the README).
//! - No round trips to another thread while the lock is held. sqlx runs each statement on the
//!   connection's worker thread, and every round trip to it costs two thread wake-ups: they,
//!   not SQLite, set the pace of writes (profile in `docs/benchmarks.md`). So a write's
//!   statements are queued (`WriteTx::queue`) and run together by the writer thread, which
//!   owns its connection (group commit, below); a write that opens sends them as one
//!   multi-statement query, `BEGIN IMMEDIATE; …; COMMIT`. An error stops the write before
//!   `COMMIT`, and it is rolled back.
//! - For that, a write's change record cannot wait for the chain head to be read: the store
//!   remembers each tenant's head (sequence and hash) as its last write committed it, and the
//!   record's `prev_hash` is the head's hash only if the database's head is still that one
//!   (else NULL, which the column refuses). Another writer of the file (another process, or
//!   this process's writers outside the lock: audit events appended inside a caller's
//!   transaction) makes the memory stale; the write then fails before `COMMIT` with
//!   [`StoreError::ChainHeadMoved`], the remembered heads are forgotten, and the store runs the
//!   write again, reading the head from the database.
//!
//! **Group commit.** With one writer, writes wait for each other; each paid a whole
//! transaction (its hand-off to SQLite's thread, its `COMMIT` and the WAL pages it dirtied,
//! several of them the same pages as the next write's). So a resource write is *deferred*: its
//! statements and change record are kept in memory (`WriteTx`) and handed to the writer thread
//! at commit. The thread takes every write waiting by then (up to 64) and runs them in one
//! transaction, `BEGIN IMMEDIATE; …; COMMIT`, chaining their change records in order;
//! each caller is answered once that `COMMIT` returned, so what is acknowledged is exactly as
//! durable as before (WAL, `synchronous = NORMAL`: it survives a crash of the process; the
//! last commits before a power loss may be lost, as the README states). A write never waits
//! for a timer: under light load a group is one write; under load, the writes arriving while
//! one group commits form the next (figures in `docs/benchmarks.md`).
//! - One write's failure is its own. If the group's transaction fails (a `userName` taken, a lost
//!   compare-and-swap, a stale chain head), SQLite's transaction is rolled back and the group
//!   runs again in one transaction with each write in a savepoint of its own: a failing write
//!   is rolled back to its savepoint alone, its change record leaves the chain as it was, and
//!   the others commit together. If even that transaction cannot commit (a full disk), each
//!   write runs in a transaction of its own, so each gets its own error.
//! - A deferred write cannot see a statement's result before its commit, so the one that
//!   decides (the compare-and-swap of an update) is followed by a guard statement that fails
//!   the write when it matched no row (`CAS_GUARD`); the store then reads what is stored to
//!   answer "version mismatch" or "not found".
//! - A write that must read inside its transaction (a delete reads the groups it leaves, an
//!   event's append needs its sequence number) *opens*: it takes the writer lock and the
//!   writer connection for itself, as every write did before.
//! - An in-memory database lives in sqlx's one connection, so it has no writer thread: each
//!   deferred write opens to commit, alone.

use super::chain::{self, RecordBody, Unsealed};
use super::inline_reads::{self, InlineReads};
use super::read_pool::{LeanSettings, ReadPool};
use super::row::{version_from_db, version_to_db};
use super::sql::{Arg, Dialect};
use super::write_gate::WriterSlot;
use super::{ChangeRecord, Result, StoreError, WriteContext};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Arguments, Connection, Sqlite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

mod writer;

/// How many SQLite instructions a hot read may run on the request's thread by default before
/// sqlx's threads take it over (`store/inline_reads.rs`).
pub const INLINE_READ_STEPS: u64 = inline_reads::DEFAULT_STEPS;

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
    /// The hot reads' connections (`GET`, list pages), lent without sqlx's pings.
    reads: Arc<ReadPool<Sqlite>>,
    /// The hot reads, first tried on the calling thread (none in memory).
    inline: Option<Arc<InlineReads>>,
    /// What the writer thread and the writes that hold the lock themselves share.
    writer: Writer,
    /// Where deferred writes go to be committed by the writer thread (group commit, module
    /// docs); none in memory, where a deferred write opens to commit.
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    /// Alive while any clone of the store is: the checkpoint task stops once it is gone.
    _alive: Arc<()>,
}

/// The writer lock, the writer connection and what goes with them: shared by the writer thread
/// and by the writes that hold the writer lock themselves (an open [`WriteTx`]).
#[derive(Debug, Clone)]
struct Writer {
    /// Where the writer connection comes from: a pool of one (the store's own pool for an
    /// in-memory database, which lives in one connection).
    pool: SqlitePool,
    /// The writer lock, and the writer connection while nobody holds it ([`Writer::lock`]).
    slot: Arc<WriterSlot>,
    /// Whether the connection stays in `slot` between writes (not for an in-memory database,
    /// whose one connection the readers need too).
    keep: bool,
    /// Each tenant's chain head (last sequence number, last hash) as this store's last write of
    /// it committed them: read and changed under `lock` only (module docs).
    heads: Arc<std::sync::Mutex<HashMap<String, ChainHead>>>,
    /// Transactions that committed deferred writes, and the writes in them.
    commits: Arc<AtomicU64>,
    grouped_writes: Arc<AtomicU64>,
}

/// The writer lock held, with the writer connection.
///
/// The connection stays with the lock between writes instead of going back to its pool: sqlx
/// returns a connection to its pool from a task spawned on drop, and the next write waited for
/// that task to be scheduled behind the requests' tasks (half a millisecond per write under
/// load, measured in `docs/benchmarks.md`).
struct WriterGuard {
    slot: OwnedMutexGuard<Option<PoolConnection<Sqlite>>>,
    pool: SqlitePool,
    keep: bool,
}

impl WriterGuard {
    /// The writer connection (another one opened if the last was discarded).
    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        if self.slot.is_none() {
            *self.slot = Some(self.pool.acquire().await?);
        }
        match self.slot.as_mut() {
            Some(conn) => Ok(&mut **conn),
            None => Err(StoreError::Corrupt(
                "the SQLite writer connection is missing".into(),
            )),
        }
    }

    /// Closes the connection instead of keeping it: its state is unknown (a failed rollback,
    /// a write dropped mid-transaction). The next writer opens another.
    fn discard(&mut self) {
        if let Some(mut conn) = self.slot.take() {
            conn.close_on_drop();
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.keep {
            self.slot.take();
        }
    }
}

/// How many transactions committed deferred writes and how many writes they held (see
/// [`SqliteStore::group_commit_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitCounts {
    /// Transactions that committed deferred writes (the writer thread's).
    pub commits: u64,
    /// Writes in them.
    pub writes: u64,
}

/// A tenant chain's last record: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChainHead {
    seq: u64,
    hash: String,
}

/// Most writes the writer thread commits in one transaction.
const MAX_GROUP_WRITES: usize = 64;

/// Most arguments in one group's query (SQLite numbers placeholders up to 32,766).
const MAX_GROUP_ARGUMENTS: usize = 30_000;

/// Makes a deferred compare-and-swap fail its whole write when it matched no row: it inserts a
/// NULL into a column that refuses one (a temporary table of the writer connection, empty
/// always), so the query stops before `COMMIT` with an error naming the table.
const CAS_GUARD: &str =
    "INSERT INTO temp.write_guard (version_matched) SELECT NULL WHERE changes() = 0";

/// Created on each writer connection for [`CAS_GUARD`].
const CAS_GUARD_TABLE: &str =
    "CREATE TEMP TABLE IF NOT EXISTS write_guard (version_matched INTEGER NOT NULL)";

/// Statements for one multi-statement query: `;`-separated, their placeholders renumbered
/// over one argument list.
#[derive(Default)]
struct QueryBuf {
    sql: String,
    args: SqliteArguments<'static>,
    count: usize,
}

impl QueryBuf {
    /// Appends `sql` (its placeholders `$1`… numbered from 1 over `args`).
    fn push(&mut self, sql: &str, args: impl IntoIterator<Item = Arg>) -> Result<()> {
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
        self.sql
            .push_str(&super::sql::renumber_placeholders(sql, self.count));
        for arg in args {
            add_argument(&mut self.args, arg)?;
            self.count += 1;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    fn take(&mut self) -> (String, SqliteArguments<'static>) {
        self.count = 0;
        (
            std::mem::take(&mut self.sql),
            std::mem::take(&mut self.args),
        )
    }
}

/// Where a write's statements go, in order: a multi-statement query being built ([`QueryBuf`],
/// an open write's) or SQLite itself (the writer thread's connection, `sqlite/writer.rs`).
trait StatementSink {
    /// Takes `sql` (its placeholders `$1`… numbered from 1 over `args`).
    fn push(&mut self, sql: &str, args: &[Arg]) -> Result<()>;
}

impl StatementSink for QueryBuf {
    /// Appends the statement to the query.
    fn push(&mut self, sql: &str, args: &[Arg]) -> Result<()> {
        QueryBuf::push(self, sql, args.iter().cloned())
    }
}

/// What a deferred write queued, in order.
#[derive(Debug)]
enum Queued {
    Statement(String, Vec<Arg>),
    /// A change record, numbered and chained when its transaction is built.
    Record(Unsealed),
}

impl Queued {
    fn argument_count(&self) -> usize {
        match self {
            Queued::Statement(_, args) => args.len(),
            Queued::Record(_) => APPEND_ARGUMENTS,
        }
    }
}

/// A write handed to the writer thread: what it queued, and where its outcome goes.
#[derive(Debug)]
struct Job {
    items: Vec<Queued>,
    /// Whether the remembered chain heads may be used (not on a write's second attempt).
    trust_remembered: bool,
    reply: oneshot::Sender<Result<()>>,
}

impl Job {
    fn argument_count(&self) -> usize {
        self.items.iter().map(Queued::argument_count).sum()
    }
}

/// A write in progress. It starts deferred: its statements and change records are kept in
/// memory and committed by the writer thread together with other writes waiting at the same
/// time (group commit, module docs). A write that needs the connection before its commit (to
/// read inside the transaction, or to know what a statement changed) opens: it takes the writer
/// lock and connection for itself, as every write did before group commit.
struct WriteTx {
    state: WriteState,
}

enum WriteState {
    Deferred {
        store: SqliteStore,
        items: Vec<Queued>,
        trust_remembered: bool,
    },
    Open(OpenWrite),
}

impl WriteTx {
    /// Makes this write read its chain heads from the database (a second attempt after
    /// [`StoreError::ChainHeadMoved`]: another writer may keep moving them).
    fn read_heads(&mut self) {
        match &mut self.state {
            WriteState::Deferred {
                trust_remembered, ..
            } => *trust_remembered = false,
            WriteState::Open(w) => w.trust_remembered = false,
        }
    }

    /// Queues `sql` (its placeholders `$1`… numbered from 1 over `args`): sent with the commit,
    /// or, once the write is open, with the next statement that must run at once.
    async fn queue(&mut self, sql: &str, args: Vec<Arg>) -> Result<()> {
        match &mut self.state {
            WriteState::Deferred { items, .. } => {
                items.push(Queued::Statement(sql.to_string(), args));
                Ok(())
            }
            WriteState::Open(w) => w.buf.push(sql, args),
        }
    }

    /// A compare-and-swap (`sql` changes one row only if it holds the expected version):
    /// whether it matched. A deferred write cannot know before its commit, so it answers `true`
    /// and queues [`CAS_GUARD`] after it: if the row did not match, the commit fails with
    /// [`StoreError::CompareAndSwapLost`] and nothing of the write is stored.
    async fn compare_and_swap(&mut self, sql: &str, args: Vec<Arg>) -> Result<bool> {
        match &mut self.state {
            WriteState::Deferred { items, .. } => {
                items.push(Queued::Statement(sql.to_string(), args));
                items.push(Queued::Statement(CAS_GUARD.to_string(), Vec::new()));
                Ok(true)
            }
            WriteState::Open(w) => Ok(w.run(sql, args).await? > 0),
        }
    }

    /// The connection, with everything queued sent, for statements that read (opens the
    /// write).
    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        self.open().await?.conn().await
    }

    /// Takes the writer lock and connection for this write, and sends what it queued so far.
    async fn open(&mut self) -> Result<&mut OpenWrite> {
        if let WriteState::Deferred {
            store,
            items,
            trust_remembered,
        } = &mut self.state
        {
            let store = store.clone();
            let items = std::mem::take(items);
            let mut w = store.begin_open_write().await?;
            w.trust_remembered = *trust_remembered;
            for item in items {
                match item {
                    Queued::Statement(sql, args) => w.buf.push(&sql, args)?,
                    Queued::Record(record) => store.queue_record(&mut w, record).await?,
                }
            }
            self.state = WriteState::Open(w);
        }
        match &mut self.state {
            WriteState::Open(w) => Ok(w),
            WriteState::Deferred { .. } => {
                Err(StoreError::Corrupt("an SQLite write did not open".into()))
            }
        }
    }

    /// Ends the write without committing it.
    async fn rollback(self) {
        if let WriteState::Open(w) = self.state {
            w.rollback().await;
        }
    }
}

/// A write holding the writer lock and connection until it ends ([`SqliteStore::commit_write`]
/// or [`OpenWrite::rollback`]).
struct OpenWrite {
    writer: WriterGuard,
    /// Statements not sent yet.
    buf: QueryBuf,
    /// Whether `BEGIN IMMEDIATE` has been queued and no `COMMIT`/`ROLLBACK` has ended it.
    open: bool,
    /// The chain heads this write moved, remembered once it commits.
    moved: HashMap<String, ChainHead>,
    /// Whether the store's remembered heads may be used (not on a write's second attempt).
    trust_remembered: bool,
    /// The store's remembered heads (forgotten when one proves stale).
    heads: Arc<std::sync::Mutex<HashMap<String, ChainHead>>>,
}

impl OpenWrite {
    /// Sends what is queued and `sql` (an `INSERT`, `UPDATE` or `DELETE`) at once; the rows
    /// `sql` changed. (They are read with `changes()` in the same query: the count sqlx reports
    /// for a multi-statement query adds up every statement's, and `BEGIN` reports the last
    /// write's.)
    async fn run(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        self.buf.push(sql, args)?;
        self.buf.push("SELECT changes()", [])?;
        let (sql, args) = self.buf.take();
        let counts: Vec<i64> = match sqlx::query_scalar_with(&sql, args)
            .fetch_all(self.writer.conn().await?)
            .await
        {
            Ok(counts) => counts,
            Err(e) => return Err(write_error(&self.heads, e)),
        };
        Ok(counts
            .last()
            .and_then(|n| u64::try_from(*n).ok())
            .unwrap_or(0))
    }

    /// The connection, with everything queued sent, for statements that read.
    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        self.flush().await?;
        self.writer.conn().await
    }

    /// Sends the queued statements as one query.
    async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (sql, args) = self.buf.take();
        match sqlx::query_with(&sql, args)
            .execute(self.writer.conn().await?)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(write_error(&self.heads, e)),
        }
    }

    /// Ends the write without committing it.
    async fn rollback(mut self) {
        self.buf.take();
        if self.open {
            roll_back(&mut self.writer).await;
            self.open = false;
        }
    }
}

impl Drop for OpenWrite {
    /// A write dropped while open (its task was cancelled) must not leave the connection inside
    /// a transaction: closing it rolls the transaction back.
    fn drop(&mut self) {
        if self.open {
            self.writer.discard();
        }
    }
}

/// Rolls back the connection's transaction. "No transaction is active" (`BEGIN` itself
/// failed, or SQLite already rolled back a failed `COMMIT`) is fine; any other failure leaves
/// the connection's state unknown, so it is closed, not reused.
async fn roll_back(writer: &mut WriterGuard) {
    let Ok(conn) = writer.conn().await else {
        return;
    };
    let done = sqlx::query("ROLLBACK").execute(conn).await;
    if let Err(e) = done
        && !e.to_string().contains("no transaction is active")
    {
        writer.discard();
    }
}

/// A write's error: a stale remembered head shows as the change record's `prev_hash` refused as
/// NULL (the remembered heads are forgotten and the write is reported as
/// [`StoreError::ChainHeadMoved`]); a deferred compare-and-swap that matched no row as
/// [`CAS_GUARD`]'s refused NULL ([`StoreError::CompareAndSwapLost`]).
fn write_error(heads: &std::sync::Mutex<HashMap<String, ChainHead>>, e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.message().contains("scim_changes.prev_hash") {
            heads.lock().unwrap_or_else(|p| p.into_inner()).clear();
            return StoreError::ChainHeadMoved;
        }
        if db.message().contains("write_guard.version_matched") {
            return StoreError::CompareAndSwapLost;
        }
    }
    StoreError::Database(e)
}

fn add_argument(out: &mut SqliteArguments<'static>, arg: Arg) -> Result<()> {
    let res = match arg {
        Arg::Text(s) => out.add(s),
        Arg::OptText(s) => out.add(s),
        Arg::Int(i) => out.add(i),
        Arg::Float(f) => out.add(f),
        Arg::TextArray(v) => out.add(serde_json::to_string(&v).unwrap_or_default()),
    };
    res.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

/// How a file database shares the configured `max_connections` (the writer has one of its
/// own besides). A SQLite read takes microseconds of one thread, so a few connections keep
/// both cores busy, and each costs a thread and its page cache: 8 for the hot reads and 8 for
/// the rest took Entra's initial cycle at 100,000 users from 80–84 MiB to 90–97 MiB at its
/// peak, 4 and 2 left it at 83.6 MiB with `GET` as fast (`docs/benchmarks.md`, 2026-12-03).
struct ConnectionShares {
    /// The hot reads' (`read_pool.rs`): half, at least 1.
    reads: u32,
    /// Everything else's (tokens, the change log, events, the administration): a quarter, at
    /// least 2.
    rest: u32,
}

impl ConnectionShares {
    fn of(settings: &super::PoolSettings) -> Self {
        let configured = settings
            .max_connections
            .unwrap_or(super::SQLITE_MAX_CONNECTIONS);
        Self {
            reads: (configured / 2).max(1),
            rest: (configured / 4).max(2),
        }
    }
}

/// How long a statement waits for a connection: configured, else 30 s.
fn acquire_timeout(settings: &super::PoolSettings) -> Duration {
    settings.acquire_timeout.unwrap_or(Duration::from_secs(30))
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
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        let options = if memory {
            options
        } else {
            // Checkpoints run in the background task, not inside commits (module docs).
            options
                .journal_mode(SqliteJournalMode::Wal)
                .pragma("wal_autocheckpoint", "0")
                // The WAL file is reused from its start after each `RESTART` checkpoint, and
                // cut to this size by the first commit after it (and emptied once writes pause).
                .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
        };
        let pool = Self::pool_options(memory, &settings)
            .connect_with(options.clone())
            .await?;
        let read_options = options.clone();
        let file = options.get_filename().to_path_buf();
        let writer_pool = if memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(acquire_timeout(&settings))
                .test_before_acquire(false)
                .min_connections(0)
                .idle_timeout(Some(Duration::from_secs(600)))
                .max_lifetime(Some(Duration::from_secs(3600)))
                .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                .after_connect(|conn, _| {
                    Box::pin(
                        async move { sqlx::query(CAS_GUARD_TABLE).execute(conn).await.map(drop) },
                    )
                })
                .connect_with(
                    options
                        // A statement inside a transaction that may fail halfway (any with a
                        // foreign key or a unique index) first copies every page it changes
                        // into a statement journal, a temporary file by default: as many bytes
                        // as the WAL itself. Kept in memory, it costs one statement's pages
                        // (Entra's initial cycle at 100,000 users: 27.6 GB written -> 15.6 GB).
                        .pragma("temp_store", "memory")
                        // 8 MiB of page cache instead of SQLite's 2 MiB: the writer walks the
                        // same index interiors in every write (the cycle's membership phase
                        // 52.7 s -> 43.9 s, peak memory 87.5 MiB; 16 and 32 MiB bought no more
                        // and peaked at 94 and 101 MiB). Readers keep the default: any write
                        // empties a reader's cache at its next transaction anyway.
                        .pragma("cache_size", WRITER_CACHE_KIB.to_string()),
                )
                .await?
        };
        let writer = Writer {
            pool: writer_pool,
            slot: Arc::new(Mutex::new(None)),
            keep: !memory,
            heads: Arc::default(),
            commits: Arc::default(),
            grouped_writes: Arc::default(),
        };
        let jobs = if memory {
            None
        } else {
            // The components writing this file through pools of their own take turns with us.
            super::write_gate::register(&file, &writer.slot);
            Some(writer::start(&file, writer.clone())?)
        };
        let alive = Arc::new(());
        let reads = if memory {
            ReadPool::shared(pool.clone())
        } else {
            ReadPool::lean(
                read_options,
                LeanSettings {
                    max_connections: ConnectionShares::of(&settings).reads,
                    acquire_timeout: acquire_timeout(&settings),
                    max_lifetime: Duration::from_secs(3600),
                },
            )
        };
        let inline = (!memory).then(|| {
            Arc::new(InlineReads::new(
                &file,
                settings
                    .sqlite_inline_read_steps
                    .unwrap_or(INLINE_READ_STEPS),
            ))
        });
        let store = Self {
            pool,
            reads: Arc::new(reads),
            inline,
            writer,
            jobs,
            _alive: alive.clone(),
        };
        super::Store::migrate(&store).await?;
        if !memory {
            tokio::spawn(checkpoint_loop(
                store.pool.clone(),
                store.writer.slot.clone(),
                WalFile::of(&file),
                Arc::downgrade(&alive),
            ));
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
                ConnectionShares::of(settings).rest
            })
            .acquire_timeout(acquire_timeout(settings))
            // sqlx pings a connection before lending it by default: on SQLite a round trip to
            // the connection's thread that cannot find anything (the database is in-process),
            // costing a third of a `GET`'s thread hand-offs.
            .test_before_acquire(false)
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
            // An in-memory database's one connection is also its writer connection.
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if memory {
                        sqlx::query(CAS_GUARD_TABLE).execute(conn).await?;
                    }
                    Ok(())
                })
            })
    }

    /// The hot reads run in process or on the pool: no connections apart.
    fn read_connections_open(&self) -> Option<u32> {
        None
    }

    /// Writes go to the writer thread or the pool: no connections apart.
    fn write_connections_open(&self) -> Option<u32> {
        None
    }

    /// The connection pool (for tests and diagnostics).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many transactions have committed deferred writes and how many writes they held
    /// (group commit: more writes than commits means writes shared transactions), for tests
    /// and diagnostics.
    pub fn group_commit_counts(&self) -> GroupCommitCounts {
        GroupCommitCounts {
            commits: self.writer.commits.load(Ordering::Relaxed),
            writes: self.writer.grouped_writes.load(Ordering::Relaxed),
        }
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// The hot reads on the calling thread ([`InlineReads`]); none for an in-memory database
    /// (it lives in sqlx's one connection).
    fn inline_reads(&self) -> Option<&InlineReads> {
        self.inline.as_deref()
    }

    /// How many reads ran on the calling thread, and how many were handed back to sqlx's
    /// threads (over budget, or not possible there), since the store was opened or given its
    /// budget.
    pub fn inline_read_counts(&self) -> (u64, u64) {
        self.inline
            .as_deref()
            .map(InlineReads::counts)
            .unwrap_or_default()
    }

    /// This store with each read on the calling thread given a budget of `steps` SQLite
    /// instructions before sqlx's threads take it over (default [`INLINE_READ_STEPS`]; 0:
    /// every read on sqlx's threads, as before 2026-12-03). For tests and measurements; an
    /// in-memory database has no such reads.
    pub fn with_inline_read_steps(mut self, steps: u64) -> Self {
        if let Some(inline) = &self.inline {
            self.inline = Some(Arc::new(InlineReads::new(inline.path(), steps)));
        }
        self
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
            let mut w = self.begin_open_write().await?;
            w.trust_remembered = !retried;
            let record = Unsealed::new(ctx, RecordBody::event(event)?);
            let outcome = self.queue_record(&mut w, record).await;
            let seq = w.moved.get(&ctx.tenant).map(|head| head.seq);
            let committed = match outcome {
                Ok(()) => self.commit_open(w).await,
                Err(e) => {
                    w.rollback().await;
                    Err(e)
                }
            };
            match committed {
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

    /// A deferred write (committed by the writer thread unless it opens).
    async fn begin_write(&self) -> Result<WriteTx> {
        Ok(WriteTx {
            state: WriteState::Deferred {
                store: self.clone(),
                items: Vec::new(),
                trust_remembered: true,
            },
        })
    }

    /// A write holding the writer lock and connection from the start.
    async fn begin_open_write(&self) -> Result<OpenWrite> {
        let writer = self.writer.lock().await?;
        let mut buf = QueryBuf::default();
        buf.push("BEGIN IMMEDIATE", [])?;
        Ok(OpenWrite {
            writer,
            buf,
            open: true,
            moved: HashMap::new(),
            trust_remembered: true,
            heads: self.writer.heads.clone(),
        })
    }

    /// Adds a write's change record: kept with a deferred write (numbered when its transaction
    /// is built), queued at once in an open one.
    async fn append_record(
        &self,
        w: &mut WriteTx,
        ctx: &WriteContext,
        body: RecordBody,
    ) -> Result<()> {
        let record = Unsealed::new(ctx, body);
        match &mut w.state {
            WriteState::Deferred { items, .. } => {
                items.push(Queued::Record(record));
                Ok(())
            }
            WriteState::Open(w) => self.queue_record(w, record).await,
        }
    }

    /// Queues a change record in an open write, numbered and chained in its transaction: after
    /// the head this write or the store remembers, else after the head read from the database.
    async fn queue_record(&self, w: &mut OpenWrite, record: Unsealed) -> Result<()> {
        if !w.moved.contains_key(&record.tenant) {
            let remembered = w
                .trust_remembered
                .then(|| self.writer.remembered_head(&record.tenant))
                .flatten();
            let head = match remembered {
                Some(head) => head,
                None => read_head(w.conn().await?, &record.tenant).await?,
            };
            w.moved.insert(record.tenant.clone(), head);
        }
        queue_sealed(&mut w.buf, record, &mut w.moved)
    }

    /// Commits a write: a deferred one through the writer thread (with whatever other writes
    /// wait at the same time), an open one itself. On failure nothing of it is stored.
    async fn commit_write(&self, w: WriteTx) -> Result<()> {
        match w.state {
            WriteState::Deferred {
                items,
                trust_remembered,
                ..
            } => {
                if items.is_empty() {
                    return Ok(());
                }
                let Some(jobs) = &self.jobs else {
                    // In memory: no writer thread (its database lives in sqlx's one
                    // connection); the write takes the lock and commits itself, on a task of its
                    // own as the writer thread would: a caller cancelled half-way must not drop
                    // an open write, which closes its connection, the whole in-memory database.
                    let store = self.clone();
                    let commit = tokio::spawn(async move {
                        let mut w = WriteTx {
                            state: WriteState::Deferred {
                                store: store.clone(),
                                items,
                                trust_remembered,
                            },
                        };
                        w.open().await?;
                        let WriteState::Open(open) = w.state else {
                            return Err(StoreError::Corrupt("an SQLite write did not open".into()));
                        };
                        store.commit_open(open).await?;
                        store.writer.counted(1);
                        Ok(())
                    });
                    return commit
                        .await
                        .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)));
                };
                let (reply, outcome) = oneshot::channel();
                let job = Job {
                    items,
                    trust_remembered,
                    reply,
                };
                jobs.send(job)
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
                // No answer: the thread dropped the write in a panic, before or after its
                // group's `COMMIT`.
                outcome
                    .await
                    .unwrap_or(Err(StoreError::OutcomeUnknown(sqlx::Error::PoolClosed)))
            }
            WriteState::Open(w) => self.commit_open(w).await,
        }
    }

    /// Commits an open write and remembers the chain heads it moved (before the lock is
    /// released, so the next writer starts from them). On failure it is rolled back.
    async fn commit_open(&self, mut w: OpenWrite) -> Result<()> {
        w.buf.push("COMMIT", [])?;
        match w.flush().await {
            Ok(()) => {
                w.open = false;
                self.writer.remember(std::mem::take(&mut w.moved));
                Ok(())
            }
            Err(e) => {
                w.rollback().await;
                Err(e)
            }
        }
    }

    /// A hot read the calling thread handed back, on the read pool.
    async fn pooled_read<T>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let args = self.arguments(args)?;
        let mut conn = self.reads.acquire().await?;
        let fetched = sqlx::query_as_with(sql, args)
            .fetch_all(conn.statement())
            .await;
        Ok(conn.keep(fetched)?)
    }

    fn arguments(&self, args: &[Arg]) -> Result<SqliteArguments<'static>> {
        let mut out = SqliteArguments::default();
        for arg in args {
            add_argument(&mut out, arg.clone())?;
        }
        Ok(out)
    }
}

impl Writer {
    /// Takes the writer lock, with the writer connection (opened if there is none).
    async fn lock(&self) -> Result<WriterGuard> {
        let mut writer = WriterGuard {
            slot: self.slot.clone().lock_owned().await,
            pool: self.pool.clone(),
            keep: self.keep,
        };
        writer.conn().await?;
        Ok(writer)
    }

    fn remembered_head(&self, tenant: &str) -> Option<ChainHead> {
        self.heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    /// Remembers the heads a committed write moved (the last one per tenant wins).
    fn remember(&self, moved: impl IntoIterator<Item = (String, ChainHead)>) {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        for (tenant, head) in moved {
            heads.insert(tenant, head);
        }
    }

    fn forget_heads(&self) {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Counts a commit of `writes` writes.
    fn counted(&self, writes: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.grouped_writes
            .fetch_add(u64::try_from(writes).unwrap_or(u64::MAX), Ordering::Relaxed);
        metrics::histogram!(crate::metrics::SQLITE_WRITES_PER_COMMIT).record(writes as f64);
    }
}

/// The tenants of `jobs`' change records, each once.
fn record_tenants(jobs: &[Job]) -> Vec<&str> {
    let mut tenants: Vec<&str> = Vec::new();
    for item in jobs.iter().flat_map(|job| &job.items) {
        if let Queued::Record(record) = item
            && !tenants.contains(&record.tenant.as_str())
        {
            tenants.push(&record.tenant);
        }
    }
    tenants
}

/// Queues `job`'s statements into `buf`, each change record chained after its tenant's entry
/// in `heads` (which moves to it).
fn queue_job(
    out: &mut impl StatementSink,
    job: &Job,
    heads: &mut HashMap<String, ChainHead>,
) -> Result<()> {
    for item in &job.items {
        match item {
            Queued::Statement(sql, args) => out.push(sql, args)?,
            Queued::Record(record) => queue_sealed(out, record.clone(), heads)?,
        }
    }
    Ok(())
}

/// Queues `record` numbered and chained after its tenant's head in `heads`, which moves to it.
fn queue_sealed(
    out: &mut impl StatementSink,
    record: Unsealed,
    heads: &mut HashMap<String, ChainHead>,
) -> Result<()> {
    let head = heads.get(&record.tenant).cloned().ok_or_else(|| {
        StoreError::Corrupt(format!("no chain head for tenant {}", record.tenant))
    })?;
    let tenant = record.tenant.clone();
    let moved = queue_append(out, record.seal(head.seq, &head.hash), &head)?;
    heads.insert(tenant, moved);
    Ok(())
}

/// Creates a tenant's chain row before its first record (`$1` the tenant, `$2` the genesis hash).
const CREATE_CHAIN_ROW: &str = "INSERT INTO tenant_chain (tenant_id, last_seq, last_hash) \
     VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING";

/// A tenant's chain head (`$1` the tenant): its last sequence number and hash.
const SELECT_CHAIN_HEAD: &str = "SELECT last_seq, last_hash FROM tenant_chain WHERE tenant_id = $1";

/// `tenant`'s chain head as the database has it (creating the chain's row on its first record).
async fn read_head(conn: &mut SqliteConnection, tenant: &str) -> Result<ChainHead> {
    let (seq, hash): (i64, String) =
        sqlx::query_as(&format!("{CREATE_CHAIN_ROW}; {SELECT_CHAIN_HEAD}"))
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
fn queue_append(
    out: &mut impl StatementSink,
    record: ChangeRecord,
    head: &ChainHead,
) -> Result<ChainHead> {
    // The record's fields move into the arguments (the change JSON is the bulk of a write).
    let moved = ChainHead {
        seq: record.seq,
        hash: record.hash.clone(),
    };
    out.push(
        "INSERT INTO scim_changes (tenant_id, tenant_seq, resource_type, resource_id, \
         version, operation, change_json, principal, request_id, occurred_at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT last_hash FROM tenant_chain \
         WHERE tenant_id = $1 AND last_seq = $13 AND last_hash = $11), $12); \
         UPDATE tenant_chain SET last_seq = $2, last_hash = $12 WHERE tenant_id = $1",
        &[
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
    )?;
    Ok(moved)
}

/// The arguments [`queue_append`] adds.
const APPEND_ARGUMENTS: usize = 13;

/// Checkpoints the WAL until the store is dropped, every [`CHECKPOINT_INTERVAL`] or sooner
/// while the WAL grows fast ([`WalGrowth::next_round`]). `PASSIVE`
/// copies what no reader still needs and waits for nobody; what it cannot copy yet, the next
/// round does. A `PASSIVE` checkpoint never makes the WAL file start over while readers come
/// and go (measured: 8 GB of WAL after Entra's initial cycle at 100,000 users), so once the WAL
/// holds [`WAL_RESTART_FRAMES`] a `RESTART` checkpoint follows ([`checkpoint`]), so that the
/// next write starts the WAL over from its beginning and cuts the file to at most
/// [`WAL_SIZE_LIMIT`]. (`TRUNCATE` after every restart, used before, emptied the file, and every
/// write then grew it again page by page: the kernel zeroed each new page, 5 % of the writer
/// thread's time in Entra's initial cycle, whose users phase took 43.2–43.8 s after against
/// 46.3–47.8 s.) Once writes pause, a WAL file larger than [`WAL_IDLE_SIZE`] is emptied
/// (`TRUNCATE`), so a burst does not leave its disk space behind. A failure is logged and
/// retried next round (the WAL only grows meanwhile).
async fn checkpoint_loop(
    pool: SqlitePool,
    writers: Arc<WriterSlot>,
    mut wal: WalFile,
    alive: Weak<()>,
) {
    let mut growth = WalGrowth::default();
    let mut wait = Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        wait = match checkpoint(&pool, &writers, &mut wal).await {
            Ok(round) => growth.next_round(std::time::Instant::now(), round),
            Err(e) => {
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retried in the next round");
                CHECKPOINT_INTERVAL
            }
        };
    }
}

/// A checkpoint round's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// The WAL holds this many frames, fewer than [`WAL_RESTART_FRAMES`].
    Below(i64),
    /// The WAL was started over (the next write writes from its beginning).
    Restarted,
    /// No write since the last round, and the WAL file was larger than [`WAL_IDLE_SIZE`]: it
    /// was emptied (the next write writes from its beginning).
    Emptied,
    /// The WAL could not be started over this round (readers held it off).
    HeldOff,
}

/// The fastest the checkpoint task runs rounds, however fast the WAL grows.
const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(50);

/// How fast the WAL grew between checkpoint rounds, to run the next round before it holds much
/// more than [`WAL_RESTART_FRAMES`]. With a fixed 500 ms, writes at 2,000/s (the writer thread's
/// rate for one writer at a time) wrote 1.6 times [`WAL_RESTART_FRAMES`] between two rounds, and
/// the WAL reached 2.4 times it before a round saw it (`sqlite_wal_starts_over_once_large`).
#[derive(Debug, Default)]
struct WalGrowth {
    /// The last round that saw the WAL below the threshold: when, and its frames.
    last: Option<(std::time::Instant, i64)>,
    /// Frames per second, as last measured.
    rate: f64,
}

impl WalGrowth {
    /// How long until the next round, after `round` at `now`.
    fn next_round(&mut self, now: std::time::Instant, round: Round) -> Duration {
        let room = match round {
            // Readers held a restart off: the next attempt waits a whole interval (a restart
            // holds writes while it waits).
            Round::HeldOff => {
                self.last = None;
                return CHECKPOINT_INTERVAL;
            }
            Round::Restarted | Round::Emptied => {
                self.last = None;
                WAL_RESTART_FRAMES
            }
            Round::Below(frames) => {
                if let Some((then, before)) = self.last
                    && frames >= before
                {
                    let seconds = now.duration_since(then).as_secs_f64();
                    if seconds > 0.0 {
                        self.rate = (frames - before) as f64 / seconds;
                    }
                }
                self.last = Some((now, frames));
                WAL_RESTART_FRAMES - frames
            }
        };
        if self.rate <= 0.0 {
            return CHECKPOINT_INTERVAL;
        }
        Duration::try_from_secs_f64(room.max(0) as f64 / self.rate)
            .unwrap_or(CHECKPOINT_INTERVAL)
            .clamp(MIN_ROUND_INTERVAL, CHECKPOINT_INTERVAL)
    }
}

/// How many WAL frames (pages, 4 KiB each) make the checkpoint task start the WAL over.
pub const WAL_RESTART_FRAMES: i64 = 16_384;

/// The WAL file's largest size once it starts over (`journal_size_limit`, bytes): above what
/// [`WAL_RESTART_FRAMES`] frames and the writes until a round has copied them and started the
/// WAL over take, so under load the file is reused as it is, and cut back only after readers
/// held a restart off for long.
///
/// Why so large: writing into the file's existing blocks is cheaper than growing it (a block
/// to allocate and a page-cache page to add for each frame). The WAL grows faster than a
/// round copies it: at 14,000 `POST /Users` a second (about five 4 KiB frames each) it reached
/// 283 MB between restarts. With the limit at 96 MiB, each restart cut the file and the writer
/// thread grew it again, 2 % of the server's time in `ftruncate` alone; at 512 MiB W3 ran
/// 15–20 % faster (`docs/benchmarks.md`, "A WAL file that is not cut back under load"). The
/// space is given back once writes pause ([`WAL_IDLE_SIZE`]).
pub const WAL_SIZE_LIMIT: i64 = 512 * 1024 * 1024;

/// A WAL file larger than this (bytes) is emptied by the first checkpoint round that finds no
/// write since the round before: the size a WAL reaches between restarts at modest write rates
/// ([`WAL_RESTART_FRAMES`] pages) is kept, what a burst grew beyond it is not.
pub const WAL_IDLE_SIZE: u64 = 64 * 1024 * 1024;

/// The WAL file, as the checkpoint rounds follow it.
#[derive(Debug)]
pub(crate) struct WalFile {
    path: PathBuf,
    /// The frames the WAL held at the last round, when that round had copied them all.
    settled: Option<i64>,
}

impl WalFile {
    /// The WAL of the database file at `database`.
    pub(crate) fn of(database: &Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: PathBuf::from(path),
            settled: None,
        }
    }

    fn len(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

/// The writer connection's page cache (`cache_size`; negative: KiB).
const WRITER_CACHE_KIB: i64 = -8 * 1024;

/// How long a `RESTART` checkpoint waits for the readers of older snapshots before this round
/// gives up (the writes wait as long; see the checkpoint task).
pub const RESTART_READER_WAIT: Duration = Duration::from_millis(250);

/// The busy timeout of every connection to the file, the side pools' too (other processes
/// writing the file wait this long).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One round of [`checkpoint_loop`]: the WAL's size in frames after it.
///
/// A `RESTART` needs SQLite's write lock and then waits for the readers of older snapshots to
/// finish, holding writers back meanwhile. It used to ask for SQLite's lock with the 10 s busy
/// timeout while the writer thread took that lock again as soon as each group committed:
/// SQLite's busy handler polls, so the checkpoint found the lock free only by luck, and then
/// held every write for as long as a reader took. In Entra's initial cycle at 100,000 users
/// this stalled writes for seconds at a time and, when the wait ran out, left the WAL to grow
/// to gigabytes (`docs/benchmarks.md`, "The SQLite writer thread"). So the round takes the
/// store's own writer lock first (the writer thread and the open writes finish what they are
/// committing and wait), and waits at most [`RESTART_READER_WAIT`] for readers: a reader still
/// reading by then makes this round give up, and the next one tries again.
///
/// A round that finds the WAL as the last round left it, every frame copied (no write since),
/// and the file larger than [`WAL_IDLE_SIZE`], empties it the same way (`TRUNCATE`: a restart
/// that also cuts the file to nothing).
pub(crate) async fn checkpoint(
    pool: &SqlitePool,
    writers: &WriterSlot,
    wal: &mut WalFile,
) -> std::result::Result<Round, sqlx::Error> {
    // (busy, frames in the WAL, frames copied)
    let (_, frames, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let idle = wal.settled == Some(frames);
    wal.settled = (copied == frames).then_some(frames);
    let empty = idle && wal.len() > WAL_IDLE_SIZE;
    if frames < WAL_RESTART_FRAMES && !empty {
        return Ok(Round::Below(frames));
    }
    let mode = if empty { "TRUNCATE" } else { "RESTART" };
    let mut conn = pool.acquire().await?;
    let timeout = |wait: Duration| format!("PRAGMA busy_timeout = {}", wait.as_millis());
    sqlx::query(&timeout(RESTART_READER_WAIT))
        .execute(&mut *conn)
        .await?;
    let restarted = {
        let _writes_held = writers.lock().await;
        sqlx::query_as::<_, (i64, i64, i64)>(&format!("PRAGMA wal_checkpoint({mode})"))
            .fetch_one(&mut *conn)
            .await
    };
    if sqlx::query(&timeout(BUSY_TIMEOUT))
        .execute(&mut *conn)
        .await
        .is_err()
    {
        // Not back to the pool with the short timeout.
        conn.close_on_drop();
    }
    // `settled` stands: a `RESTART` leaves the WAL's frames as they were until the next write
    // starts it over, so the next round sees the same frames unless something was written.
    let (busy, frames, _) = restarted?;
    if busy != 0 {
        // Emptying an idle WAL only gives disk space back: a long read that holds it off (an
        // export, say) is no operator's concern, and it would be retried every round.
        if empty {
            tracing::debug!(
                frames,
                "SQLite WAL not emptied yet: a reader holds an older snapshot"
            );
        } else {
            tracing::warn!(
                frames,
                "SQLite WAL not started over: readers still held older snapshots"
            );
        }
        return Ok(Round::HeldOff);
    }
    Ok(if empty {
        Round::Emptied
    } else {
        Round::Restarted
    })
}

super::imp::impl_sql_store!(SqliteStore, Sqlite);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn checkpoint_rounds_come_sooner_while_the_wal_grows_fast() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut growth = WalGrowth::default();
        // Nothing measured yet, then an idle WAL: the whole interval.
        assert_eq!(
            growth.next_round(at(0), Round::Below(0)),
            CHECKPOINT_INTERVAL
        );
        assert_eq!(
            growth.next_round(at(500), Round::Below(0)),
            CHECKPOINT_INTERVAL
        );
        // 8,192 frames in 500 ms, 8,192 to go: the next round in 500 ms.
        assert_eq!(
            growth.next_round(at(1_000), Round::Below(8_192)),
            Duration::from_millis(500)
        );
        // Faster: 6,144 frames in 250 ms, 2,048 to go: 83 ms.
        let next = growth.next_round(at(1_250), Round::Below(14_336));
        assert!(
            next > Duration::from_millis(80) && next < Duration::from_millis(90),
            "{next:?}"
        );
        // Started over: a whole threshold of room at the last rate (24,576 frames a second).
        let next = growth.next_round(at(1_340), Round::Restarted);
        assert!(next > Duration::from_millis(490), "{next:?}");
        // Past the threshold: the next round as soon as allowed.
        growth.next_round(at(1_400), Round::Below(1_000));
        assert_eq!(
            growth.next_round(at(1_900), Round::Below(WAL_RESTART_FRAMES + 10)),
            MIN_ROUND_INTERVAL
        );
        // Readers held a restart off: not again before a whole interval.
        assert_eq!(
            growth.next_round(at(1_950), Round::HeldOff),
            CHECKPOINT_INTERVAL
        );
        // Emptied once writes paused: a whole threshold of room at the last rate, as after a
        // restart (a held-off round would wait the whole interval). 16,000 frames in 100 ms:
        // 160,000 a second, so 16,384 frames of room last about 102 ms.
        growth.next_round(at(2_450), Round::Below(0));
        growth.next_round(at(2_550), Round::Below(16_000));
        let next = growth.next_round(at(2_600), Round::Emptied);
        assert!(
            next > Duration::from_millis(95) && next < Duration::from_millis(110),
            "{next:?}"
        );
    }
}
