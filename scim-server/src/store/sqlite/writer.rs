//! The SQLite writer thread: group commit without hand-offs.
//!
//! A file database's deferred writes (the parent module's docs) are committed here, by a thread
//! of our own that owns a connection to the file (rusqlite, over the same bundled SQLite as
//! sqlx) and runs each group's statements itself. Before, a writer task sent each group to
//! sqlx's connection thread as one multi-statement query: two thread wake-ups per group while
//! the writer lock was held, and the query's text differed from group to group (its
//! placeholders renumbered over the group's arguments), so SQLite compiled every statement of
//! every group again. Here each statement runs as the store wrote it, prepared once and kept
//! (`prepare_cached`); the only hand-offs left are a write arriving and its answer leaving
//! (figures in `docs/benchmarks.md`, "The SQLite writer thread").
//!
//! Nothing else changes: the thread takes the store's writer lock (the `tokio::sync::Mutex`
//! that open writes take; blocking on it, as this is not a runtime thread) around each group,
//! so it and the open writes on sqlx's writer connection write one at a time; its connection
//! has the writer connection's settings ([`connect`]); each write is answered once its group's
//! `COMMIT` returned, with its own outcome.

use super::{
    BUSY_TIMEOUT, CAS_GUARD_TABLE, CREATE_CHAIN_ROW, ChainHead, Job, MAX_GROUP_ARGUMENTS,
    MAX_GROUP_WRITES, SELECT_CHAIN_HEAD, StatementSink, WAL_SIZE_LIMIT, WRITER_CACHE_KIB, Writer,
    queue_job, record_tenants, write_error,
};
use crate::store::inline_reads;
use crate::store::refusal::Refusal;
use crate::store::row::version_from_db;
use crate::store::sql::Arg;
use crate::store::{Result, StoreError, chain};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Statements kept prepared: each distinct text a write runs (a few dozen).
const PREPARED_STATEMENTS: usize = 128;

/// Opens the writer thread's connection to the database file at `path` and starts the thread;
/// where to send it writes. The thread stops once every sender is gone (the store dropped).
pub(super) fn start(path: &Path, writer: Writer) -> Result<mpsc::Sender<Job>> {
    let mut conn =
        WriterConnection::open(path).map_err(|e| StoreError::Database(database_error(e)))?;
    let (jobs, queue) = mpsc::channel();
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("scim-sqlite-writer".into())
        .spawn(move || {
            supervise(&mut conn, &writer, &queue);
            // The last of the store may go with this thread, and with it the open writes'
            // connection, which sqlx returns to its pool from a task: that needs the runtime.
            let _runtime = runtime.enter();
            drop(writer);
        })
        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    Ok(jobs)
}

/// The thread's life: [`commit_groups`] until the store is dropped, started again after a
/// panic. The thread is the only way a file database's deferred writes reach it, so if a panic
/// ended it every later write would fail as "unavailable" until the process restarted. Nothing
/// in it is known to panic (SQLite's errors are values); should a bug panic, the writes of the
/// group it hit fail with their outcome unknown (their callers get 503 and read again: the panic
/// may have come after the `COMMIT`), the connection is replaced (closing the old one rolls
/// back a transaction left open), the remembered chain heads are forgotten (the next group
/// reads them in its transaction), and the writes waiting behind it commit as usual.
fn supervise(conn: &mut WriterConnection, writer: &Writer, queue: &mpsc::Receiver<Job>) {
    // Outlives a panic: the write held back for the next group never ran.
    let mut carried: Option<Job> = None;
    loop {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_groups(conn, writer, queue, &mut carried)
        }));
        let Err(panic) = run else { return };
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(
            panic = %message,
            "SQLite writer: a group commit panicked; its writes' outcome is unknown; going on \
             with a new connection"
        );
        crate::fault::record(format!("SQLite writer panicked: {message}"));
        writer.forget_heads();
        conn.replace();
    }
}

/// Waits for a write, takes the writer lock, and commits every write waiting by then (up to
/// [`MAX_GROUP_WRITES`], [`MAX_GROUP_ARGUMENTS`]) in one transaction. Under load, writes
/// arriving while one group commits form the next, so a write waits at most one group's
/// commit, and a commit's fixed costs (the WAL's commit frame, pages several writes share) are
/// paid once per group. Returns once every sender is gone.
fn commit_groups(
    conn: &mut WriterConnection,
    writer: &Writer,
    queue: &mpsc::Receiver<Job>,
    carried: &mut Option<Job>,
) {
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(mpsc::RecvError) => return,
            },
        };
        let lock = writer.slot.clone().blocking_lock_owned();
        let mut arguments = first.argument_count();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_WRITES {
            let Ok(job) = queue.try_recv() else { break };
            let n = job.argument_count();
            if arguments + n > MAX_GROUP_ARGUMENTS {
                *carried = Some(job);
                break;
            }
            arguments += n;
            group.push(job);
        }
        // A write whose caller has gone (its request was cancelled) is dropped, as an open
        // write is rolled back when dropped.
        group.retain(|job| !job.reply.is_closed());
        if !group.is_empty() {
            commit_group(conn, writer, group);
        }
        drop(lock);
    }
}

/// Commits `jobs` together, each write with its own outcome: first all in one transaction; if
/// that fails (one of them failed, and the transaction was rolled back), in one transaction
/// again, each write in a savepoint of its own, so a failing write is undone alone and the
/// others still commit together; if that transaction cannot commit either, each write in a
/// transaction of its own. One write's error never fails another.
fn commit_group(conn: &mut WriterConnection, writer: &Writer, jobs: Vec<Job>) {
    if jobs.iter().any(|job| !job.trust_remembered) {
        writer.forget_heads();
    }
    if jobs.len() > 1 {
        if let Ok(moved) = execute(conn, writer, &jobs) {
            writer.counted(jobs.len());
            writer.remember(moved);
            for job in jobs {
                let _ = job.reply.send(Ok(()));
            }
            return;
        }
        if let Ok((outcomes, moved)) = execute_each(conn, writer, &jobs) {
            let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
            if succeeded > 0 {
                writer.counted(succeeded);
            }
            writer.remember(moved);
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
            return;
        }
    }
    for job in jobs {
        let alone = std::slice::from_ref(&job);
        let mut outcome = execute(conn, writer, alone);
        if matches!(outcome, Err(StoreError::ChainHeadMoved)) {
            // The heads are forgotten: the second run reads them in its transaction.
            outcome = execute(conn, writer, alone);
        }
        let outcome = outcome.map(|moved| {
            writer.counted(1);
            writer.remember(moved);
        });
        let _ = job.reply.send(outcome);
    }
}

/// Runs `jobs` as one transaction, each change record chained after the previous one of its
/// tenant; the heads they moved. A tenant whose head is not remembered has it read first,
/// inside the transaction. On an error the transaction is rolled back and nothing of `jobs` is
/// stored.
fn execute(
    conn: &mut WriterConnection,
    writer: &Writer,
    jobs: &[Job],
) -> Result<HashMap<String, ChainHead>> {
    let mut heads: HashMap<String, ChainHead> = HashMap::new();
    let mut unknown: Vec<&str> = Vec::new();
    for tenant in record_tenants(jobs) {
        match writer.remembered_head(tenant) {
            Some(head) => {
                heads.insert(tenant.to_string(), head);
            }
            None => unknown.push(tenant),
        }
    }
    let outcome = execute_in_transaction(conn, jobs, &unknown, &mut heads);
    match outcome {
        Ok(()) => Ok(heads),
        Err(e) => {
            conn.roll_back();
            Err(refined(writer, e))
        }
    }
}

fn execute_in_transaction(
    conn: &mut WriterConnection,
    jobs: &[Job],
    unknown: &[&str],
    heads: &mut HashMap<String, ChainHead>,
) -> Result<()> {
    conn.push("BEGIN IMMEDIATE", &[])?;
    #[cfg(test)]
    tests::panic_if_asked(jobs);
    for tenant in unknown {
        heads.insert((*tenant).to_string(), conn.read_head(tenant)?);
    }
    for job in jobs {
        queue_job(conn, job, heads)?;
    }
    conn.push("COMMIT", &[])
}

/// Runs `jobs` in one transaction, each in a savepoint of its own: a write that fails is
/// rolled back to its savepoint alone and its change record leaves the chain as it was. The
/// heads are read from the database inside the transaction. Each write's outcome and the heads
/// moved, once the transaction committed; an error when it could not (then nothing of `jobs` is
/// stored).
#[allow(clippy::type_complexity)]
fn execute_each(
    conn: &mut WriterConnection,
    writer: &Writer,
    jobs: &[Job],
) -> Result<(Vec<Result<()>>, HashMap<String, ChainHead>)> {
    let outcome = (|| {
        conn.push("BEGIN IMMEDIATE", &[])?;
        let mut heads: HashMap<String, ChainHead> = HashMap::new();
        for tenant in record_tenants(jobs) {
            heads.insert(tenant.to_string(), conn.read_head(tenant)?);
        }
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let before = heads.clone();
            conn.push("SAVEPOINT write", &[])?;
            let done =
                queue_job(conn, job, &mut heads).and_then(|()| conn.push("RELEASE write", &[]));
            if let Err(e) = done {
                // Undone alone. An error here (SQLite rolled the whole transaction back, as it
                // does on a full disk) fails the transaction.
                conn.push("ROLLBACK TO write", &[])?;
                conn.push("RELEASE write", &[])?;
                heads = before;
                outcomes.push(Err(refined(writer, e)));
                continue;
            }
            outcomes.push(Ok(()));
        }
        conn.push("COMMIT", &[])?;
        Ok((outcomes, heads))
    })();
    if outcome.is_err() {
        conn.roll_back();
    }
    outcome
}

/// A statement's error as the store reports it (a stale chain head, a lost compare-and-swap:
/// [`write_error`]).
fn refined(writer: &Writer, e: StoreError) -> StoreError {
    match e {
        StoreError::Database(e) => write_error(&writer.heads, e),
        other => other,
    }
}

/// The writer thread's connection, and what it keeps between writes.
struct WriterConnection {
    conn: Connection,
    path: PathBuf,
}

impl WriterConnection {
    fn open(path: &Path) -> rusqlite::Result<Self> {
        Ok(Self {
            conn: connect(path)?,
            path: path.to_path_buf(),
        })
    }

    /// Runs `sql` (one statement or several, `;`-separated, each numbering its placeholders
    /// `$1`… over `args`): SQLite prepares one statement at a time.
    fn run(&mut self, sql: &str, args: &[Arg]) -> rusqlite::Result<()> {
        // Nearly every statement is one: no splitting (nor its allocation) on each write.
        if !sql.contains(';') {
            return run_statement(&self.conn, sql, args);
        }
        for statement in split_statements(sql) {
            run_statement(&self.conn, statement, args)?;
        }
        Ok(())
    }

    /// `tenant`'s chain head as the database has it (creating the chain's row on its first
    /// record).
    fn read_head(&mut self, tenant: &str) -> Result<ChainHead> {
        let args = [
            Arg::Text(tenant.to_string()),
            Arg::Text(chain::GENESIS_HASH.to_string()),
        ];
        self.push(CREATE_CHAIN_ROW, &args)?;
        let (seq, hash): (i64, String) = self
            .conn
            .prepare_cached(SELECT_CHAIN_HEAD)
            .and_then(|mut statement| {
                inline_reads::bind(&mut statement, &args[..1])?;
                let mut rows = statement.raw_query();
                let row = rows.next()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(|e| StoreError::Database(database_error(e)))?;
        Ok(ChainHead {
            seq: version_from_db(seq)?,
            hash,
        })
    }

    /// Ends the connection's transaction, if one is open (SQLite has already rolled back a
    /// transaction whose `COMMIT` failed on a full disk). If even that fails, the connection's
    /// state is unknown: another one replaces it (closing this one rolls back).
    fn roll_back(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        let Err(e) = self.conn.execute_batch("ROLLBACK") else {
            return;
        };
        tracing::warn!(error = %e, "SQLite writer: ROLLBACK failed; reopening the connection");
        match connect(&self.path) {
            Ok(fresh) => self.conn = fresh,
            Err(e) => tracing::error!(error = %e, "SQLite writer: could not reopen the connection"),
        }
    }

    /// Replaces the connection with a new one (after a panic: whatever it was doing is
    /// abandoned; dropping it rolls back its open transaction). If the file cannot be opened
    /// again, the old connection stays, rolled back.
    fn replace(&mut self) {
        match connect(&self.path) {
            Ok(fresh) => self.conn = fresh,
            Err(e) => {
                tracing::error!(error = %e, "SQLite writer: could not open a new connection");
                self.roll_back();
            }
        }
    }
}

impl StatementSink for WriterConnection {
    /// Runs the statement at once.
    fn push(&mut self, sql: &str, args: &[Arg]) -> Result<()> {
        self.run(sql, args)
            .map_err(|e| StoreError::Database(database_error(e)))
    }
}

fn run_statement(conn: &Connection, sql: &str, args: &[Arg]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    inline_reads::bind(&mut statement, args)?;
    statement.raw_execute().map(drop)
}

/// Opens a connection to the database file at `path` with the writer connection's settings
/// (the parent module's `open_with`): foreign keys on, `synchronous = NORMAL` (the durability
/// the README states), a busy timeout for other processes writing the file, no checkpoints in
/// commits (the checkpoint task's), statement journals in memory, the writer's page cache, and
/// the temporary table `CAS_GUARD` writes into.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    conn.execute_batch(CAS_GUARD_TABLE)?;
    conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    Ok(conn)
}

/// `sql`'s statements: split at each `;` outside a quoted string or identifier.
fn split_statements(sql: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in sql.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ';') => {
                statements.push(sql[start..i].trim());
                start = i + 1;
            }
            (None, _) => {}
        }
    }
    statements.push(sql[start..].trim());
    statements.retain(|s| !s.is_empty());
    statements
}

/// A rusqlite error as sqlx reports SQLite's: a database error carries SQLite's message and
/// its extended result code as the code, so the store reads it as it reads sqlx's (a
/// uniqueness conflict, a full disk: `store::classify`, `store::unique_violation`).
fn database_error(e: rusqlite::Error) -> sqlx::Error {
    let (code, message) = match e {
        rusqlite::Error::SqliteFailure(failure, message) => (
            failure.extended_code,
            message.unwrap_or_else(|| failure.to_string()),
        ),
        // SQLITE_ERROR: a statement the store built wrongly (a bug), not the client's.
        other => (1, other.to_string()),
    };
    Refusal {
        code: code.to_string(),
        message,
        constraint: None,
        kind_of: sqlite_kind,
    }
    .into_sqlx()
}

/// As sqlx's SQLite driver classifies the extended result codes.
fn sqlite_kind(code: &str) -> sqlx::error::ErrorKind {
    use rusqlite::ffi;
    match code.parse() {
        Ok(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            sqlx::error::ErrorKind::UniqueViolation
        }
        Ok(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => sqlx::error::ErrorKind::ForeignKeyViolation,
        Ok(ffi::SQLITE_CONSTRAINT_NOTNULL) => sqlx::error::ErrorKind::NotNullViolation,
        Ok(ffi::SQLITE_CONSTRAINT_CHECK) => sqlx::error::ErrorKind::CheckViolation,
        _ => sqlx::error::ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// Writes of this tenant make the writer thread panic inside its transaction.
    const PANICKING_TENANT: &str = "panics-in-the-writer";

    /// The fault the supervision test injects (a bug's panic), in test builds only.
    pub(super) fn panic_if_asked(jobs: &[Job]) {
        if record_tenants(jobs).contains(&PANICKING_TENANT) {
            panic!("a test's injected panic");
        }
    }

    #[tokio::test]
    async fn a_panic_fails_its_group_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        crate::test_support::create_user(&store, "t1", "before")
            .await
            .unwrap();

        // The panic comes after `BEGIN IMMEDIATE`: the transaction is open and SQLite's write
        // lock taken when the thread unwinds.
        let lost = crate::test_support::create_user(&store, PANICKING_TENANT, "lost")
            .await
            .unwrap_err();
        assert!(matches!(lost, StoreError::OutcomeUnknown(_)), "{lost:?}");
        assert_eq!(lost.fault(), crate::store::Fault::Unavailable);

        // The same thread goes on, on a new connection: writes commit, the chain continues
        // from the database's head, and nothing of the failed write was stored.
        for name in ["after-1", "after-2"] {
            crate::test_support::create_user(&store, "t1", name)
                .await
                .unwrap();
        }
        let verify = rusqlite::Connection::open(&path).unwrap();
        let users: Vec<String> = verify
            .prepare("SELECT id FROM resources ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(users, ["after-1", "after-2", "before"]);
        let seqs: Vec<i64> = verify
            .prepare(
                "SELECT tenant_seq FROM scim_changes WHERE tenant_id = 't1' ORDER BY tenant_seq",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(store.group_commit_counts().writes, 3);
    }

    #[test]
    fn splits_statements_outside_quotes() {
        assert_eq!(
            split_statements("INSERT INTO t VALUES ('a;b', \"c;\"); UPDATE t SET x = 1;\n"),
            ["INSERT INTO t VALUES ('a;b', \"c;\")", "UPDATE t SET x = 1"]
        );
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn sqlite_failures_keep_their_code_and_kind() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        conn.execute("INSERT INTO t VALUES ('a', 'x')", []).unwrap();
        let duplicate = conn
            .execute("INSERT INTO t VALUES ('a', 'y')", [])
            .unwrap_err();
        let sqlx::Error::Database(db) = database_error(duplicate) else {
            panic!("not a database error")
        };
        assert!(db.is_unique_violation(), "{db}");
        assert!(db.message().contains("t.k"), "{}", db.message());
        let null = conn
            .execute("INSERT INTO t VALUES ('b', NULL)", [])
            .unwrap_err();
        let sqlx::Error::Database(db) = database_error(null) else {
            panic!("not a database error")
        };
        assert_eq!(db.kind(), sqlx::error::ErrorKind::NotNullViolation);
        assert_eq!(db.code().as_deref(), Some("1299"));
        assert!(db.message().contains("t.v"), "{}", db.message());
    }
}
