//! SQLite reads run on the calling thread, within a budget of work.
//!
//! sqlx runs every SQLite statement on the connection's own thread: the statement goes over a
//! channel, that thread wakes, runs it, sends the rows back and the runtime's thread wakes
//! again. For a `GET /Users/{id}` (a primary-key lookup of microseconds) those two hand-offs
//! were most of the request: `perf` put 48 % of the server's samples in the kernel, mostly
//! switching to and from those threads (`docs/benchmarks.md`, 2026-12-03). The database is in
//! our process, so the hot reads ask SQLite directly here (rusqlite, over the same bundled
//! SQLite), on the thread that serves the request.
//!
//! A statement may not hold a runtime thread for long: a filter no index serves can scan a
//! million rows. So each connection has a progress handler that interrupts its statement once
//! it has run a budget of SQLite virtual machine instructions ([`DEFAULT_STEPS`]); the caller
//! then runs the statement on sqlx's threads as before ([`InlineReads::query`] answers `None`),
//! and the statement's text is remembered for a while ([`AVOID_FOR`]) so that it goes there
//! directly meanwhile. The budget counts work, not time: a first version stopped statements
//! after 500 µs of wall-clock time, and on the loaded 2-core machine a lookup by key whose
//! thread the kernel preempted ran out of it, so the hottest statement of all went back to
//! sqlx's threads for most of a run. Anything unexpected (a busy
//! database, an error) takes the same way back, and is remembered the same way (a statement
//! that cannot run here would otherwise fail here first on every request): the threaded path
//! answers with the errors the store has always given. What a read sees does not change: each statement is its own read
//! transaction over the last committed state (WAL), as on sqlx's connections.

use super::sql::Arg;
use rusqlite::{Connection, OpenFlags, Row};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many SQLite virtual machine instructions a statement may run on the calling thread
/// before it is sent to sqlx's threads. Measured here (`docs/benchmarks.md`): a `GET` of a user
/// in 18 groups runs 322, a page of 100 users with their groups 18,147 (it goes to sqlx's
/// threads, where one hand-off is shared by 100 rows); 10,000 instructions of a scan that calls
/// a function per row take 0.6–0.8 ms of one core, of one that reads its pages from disk
/// several times that. A runtime thread held for longer delays every other request it serves.
pub(crate) const DEFAULT_STEPS: u64 = 10_000;

/// How often (in instructions) a statement's budget is checked; budgets are whole multiples.
const CHECK_EVERY: u64 = 1_000;

/// Idle connections kept: each statement holds one only while it runs, so there are about as
/// many in use as threads running statements.
const MAX_IDLE: usize = 8;

/// Each connection's page cache, in KiB (SQLite's default is 2,000 KiB). Under a stream of
/// writes a reader's cache is emptied at its next transaction anyway; what stays useful between
/// reads is an index's interior pages, which fit. Entra's initial cycle at full size peaked at
/// 73.1 MiB with 512 KiB against 86.7 MiB with the default (the member existence checks filled
/// the caches), and lookups at 1,000,000 users were as fast (`docs/benchmarks.md`, "The
/// binary's allocator").
const CACHE_KIB: i64 = 512;

/// Statement texts remembered as not to be run here, before the memory is cleared.
const MAX_AVOIDED: usize = 512;

/// How long a statement text that ran out of budget (or failed) here goes to sqlx's threads
/// directly. Not for ever: a filter's cost depends on its values as well as its text (`co` of
/// a rare string scans, of a common one stops at the first page's rows), and a busy database
/// is busy for a moment.
pub(crate) const AVOID_FOR: Duration = Duration::from_secs(10);

/// Connections to one database file for reads on the calling thread.
pub(crate) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<InlineConnection>>,
    /// Budget checks a statement may pass ([`CHECK_EVERY`] instructions each); 0: reads here
    /// are off (configured so), every statement goes to sqlx's threads uncounted.
    checks: u32,
    /// Hashes of statement texts that ran out of budget or failed here, and when: they go to
    /// sqlx's threads meanwhile ([`AVOID_FOR`]).
    avoided: Mutex<HashMap<u64, Instant>>,
    /// Set when a connection could not be opened: every read goes to sqlx's threads.
    disabled: AtomicBool,
    /// Statements answered here, and those handed back to the caller.
    answered: AtomicU64,
    handed_back: AtomicU64,
}

struct InlineConnection {
    conn: Connection,
    /// Budget checks its running statement has passed.
    checks: Arc<AtomicU32>,
}

impl std::fmt::Debug for InlineReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReads")
            .field("path", &self.path)
            .field("steps", &(u64::from(self.checks) * CHECK_EVERY))
            .field("answered", &self.answered.load(Ordering::Relaxed))
            .field("handed_back", &self.handed_back.load(Ordering::Relaxed))
            .finish()
    }
}

/// Why a statement did not finish here (either way, its text is avoided for a while).
#[derive(Debug)]
enum NotHere {
    /// Over budget.
    Slow,
    /// Anything else (busy, an error): sqlx's threads answer it, with their own error if any.
    Other(rusqlite::Error),
}

impl InlineReads {
    /// Reads of the database file at `path`, each interrupted after about `steps` SQLite
    /// instructions (at least [`CHECK_EVERY`]); `steps` 0: none here at all.
    pub(crate) fn new(path: &Path, steps: u64) -> Self {
        let checks = match steps {
            0 => 0,
            steps => u32::try_from((steps / CHECK_EVERY).max(1)).unwrap_or(u32::MAX),
        };
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            checks,
            avoided: Mutex::new(HashMap::new()),
            disabled: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            handed_back: AtomicU64::new(0),
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Statements answered here, and those handed back to sqlx's threads.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.handed_back.load(Ordering::Relaxed),
        )
    }

    /// Runs `sql` (placeholders `$1`, `$2`, … as sqlx's SQLite driver reads them) with `args`,
    /// mapping each row with `map`. `None`: it did not finish here (over budget, or anything
    /// unexpected); the caller runs it on sqlx's threads.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        args: &[Arg],
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Vec<T>> {
        if self.checks == 0 {
            return None;
        }
        if self.disabled.load(Ordering::Relaxed) || self.avoids(sql) {
            self.handed_back.fetch_add(1, Ordering::Relaxed);
            count("skipped");
            return None;
        }
        let conn = match self.take() {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    path = %self.path.display(),
                    "SQLite reads on the calling thread are off: a connection could not be opened"
                );
                self.disabled.store(true, Ordering::Relaxed);
                self.handed_back.fetch_add(1, Ordering::Relaxed);
                count("skipped");
                return None;
            }
        };
        conn.checks.store(0, Ordering::Relaxed);
        let outcome = run(&conn.conn, sql, args, map);
        match outcome {
            Ok(rows) => {
                self.give_back(conn);
                self.answered.fetch_add(1, Ordering::Relaxed);
                count("answered");
                Some(rows)
            }
            Err(NotHere::Slow) => {
                self.give_back(conn);
                self.avoid(sql);
                self.handed_back.fetch_add(1, Ordering::Relaxed);
                count("over_budget");
                None
            }
            Err(NotHere::Other(e)) => {
                // Not returned: whatever went wrong stays with this connection.
                tracing::debug!(error = %e, "a read handed back to sqlx's threads");
                self.avoid(sql);
                self.handed_back.fetch_add(1, Ordering::Relaxed);
                count("failed");
                None
            }
        }
    }

    /// Whether `sql` was handed back less than [`AVOID_FOR`] ago. The text is hashed only when
    /// something is remembered at all, which is rarely.
    fn avoids(&self, sql: &str) -> bool {
        let avoided = self.lock_avoided();
        !avoided.is_empty()
            && avoided
                .get(&text_hash(sql))
                .is_some_and(|since| since.elapsed() < AVOID_FOR)
    }

    fn avoid(&self, sql: &str) {
        let key = text_hash(sql);
        let mut avoided = self.lock_avoided();
        if avoided.len() >= MAX_AVOIDED {
            avoided.clear();
        }
        avoided.insert(key, Instant::now());
    }

    fn lock_avoided(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.avoided.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> rusqlite::Result<InlineConnection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: InlineConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    fn open(&self) -> rusqlite::Result<InlineConnection> {
        // Read-write without create: a read-only connection could not recover a WAL left by a
        // crash; `query_only` keeps this one from ever writing.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "query_only", true)?;
        // No waiting on the calling thread: a busy database is sqlx's threads' to wait for.
        conn.busy_timeout(Duration::ZERO)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        conn.set_prepared_statement_cache_capacity(64);
        let checks = Arc::new(AtomicU32::new(0));
        let counted = checks.clone();
        let budget = self.checks;
        conn.progress_handler(
            CHECK_EVERY as i32,
            // `true` interrupts the statement.
            Some(move || counted.fetch_add(1, Ordering::Relaxed) + 1 > budget),
        );
        Ok(InlineConnection { conn, checks })
    }
}

fn run<T>(
    conn: &Connection,
    sql: &str,
    args: &[Arg],
    mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, NotHere> {
    let outcome = (|| {
        let mut statement = conn.prepare_cached(sql)?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    })();
    outcome.map_err(|e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::OperationInterrupted) => NotHere::Slow,
        _ => NotHere::Other(e),
    })
}

/// Binds `args` as sqlx's SQLite driver does: a placeholder `$N` or `?N` takes `args[N - 1]`,
/// an anonymous `?` the next one in order.
pub(super) fn bind(
    statement: &mut rusqlite::CachedStatement<'_>,
    args: &[Arg],
) -> rusqlite::Result<()> {
    let mut next = 0usize;
    for index in 1..=statement.parameter_count() {
        let numbered = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix(['$', '?']))
            .and_then(|n| n.parse::<usize>().ok());
        let n = match numbered {
            Some(n) => n,
            None => {
                next += 1;
                next
            }
        };
        let Some(arg) = n.checked_sub(1).and_then(|i| args.get(i)) else {
            return Err(rusqlite::Error::InvalidParameterCount(n, args.len()));
        };
        match arg {
            Arg::Text(s) => statement.raw_bind_parameter(index, s.as_str())?,
            Arg::OptText(s) => statement.raw_bind_parameter(index, s.as_deref())?,
            Arg::Int(i) => statement.raw_bind_parameter(index, *i)?,
            Arg::Float(f) => statement.raw_bind_parameter(index, *f)?,
            // As `sqlite::add_argument` binds it: a JSON array the statement reads with
            // `json_each`.
            Arg::TextArray(v) => {
                statement.raw_bind_parameter(index, serde_json::to_string(v).unwrap_or_default())?
            }
        }
    }
    Ok(())
}

/// Counts a read on `/metrics` by where it ran ([`crate::metrics::SQLITE_INLINE_READS`]).
fn count(outcome: &'static str) {
    metrics::counter!(crate::metrics::SQLITE_INLINE_READS, "outcome" => outcome).increment(1);
}

/// A statement text's key in the memory of avoided statements.
fn text_hash(sql: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    sql.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("inline.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER);
             INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);",
        )
        .unwrap();
        path
    }

    #[test]
    fn connections_keep_a_small_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let reads = InlineReads::new(&database(&dir), DEFAULT_STEPS);
        let size = reads
            .query("PRAGMA cache_size", &[], |row| row.get::<_, i64>(0))
            .expect("answered here");
        assert_eq!(size, [-CACHE_KIB]);
    }

    #[test]
    fn numbered_placeholders_take_their_argument_whatever_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let reads = InlineReads::new(&database(&dir), DEFAULT_STEPS);
        let rows = reads
            .query(
                "SELECT id FROM t WHERE n > $2 AND id <> $1 ORDER BY id",
                &[Arg::Text("c".into()), Arg::Int(1)],
                |row| row.get::<_, String>(0),
            )
            .expect("answered here");
        assert_eq!(rows, ["b"]);
        assert_eq!(reads.counts(), (1, 0));
    }

    #[test]
    fn a_statement_over_budget_is_handed_back_and_then_not_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let reads = InlineReads::new(&database(&dir), CHECK_EVERY);
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                    WHERE i < 2000000) SELECT count(*) FROM n WHERE i > $1";
        assert!(
            reads
                .query(slow, &[Arg::Int(0)], |r| r.get::<_, i64>(0))
                .is_none()
        );
        assert_eq!(reads.counts(), (0, 1));
        assert!(
            reads
                .query(slow, &[Arg::Int(0)], |r| r.get::<_, i64>(0))
                .is_none()
        );
        assert_eq!(reads.counts(), (0, 2), "remembered as over budget");
        // The connection interrupted is still good for the next statement.
        let quick = reads.query(
            "SELECT n FROM t WHERE id = $1",
            &[Arg::Text("b".into())],
            |r| r.get::<_, i64>(0),
        );
        assert_eq!(quick, Some(vec![2]));
        assert_eq!(
            reads.idle.lock().unwrap().len(),
            1,
            "one connection, reused"
        );
    }

    #[test]
    fn an_error_is_handed_back_and_the_connection_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let reads = InlineReads::new(&database(&dir), DEFAULT_STEPS);
        assert!(
            reads
                .query("SELECT x FROM later", &[], |r| r.get::<_, i64>(0))
                .is_none()
        );
        assert_eq!(reads.idle.lock().unwrap().len(), 0);
        assert_eq!(reads.counts(), (0, 1));
        // Not tried here again for a while, even once it would run: sqlx's threads answer it.
        Connection::open(dir.path().join("inline.db"))
            .unwrap()
            .execute_batch("CREATE TABLE later (x INTEGER)")
            .unwrap();
        assert!(
            reads
                .query("SELECT x FROM later", &[], |r| r.get::<_, i64>(0))
                .is_none()
        );
        assert_eq!(reads.counts(), (0, 2));
        assert!(
            reads
                .query("SELECT n FROM t", &[], |r| r.get::<_, i64>(0))
                .is_some()
        );
    }

    #[test]
    fn these_connections_do_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(&dir);
        let reads = InlineReads::new(&path, DEFAULT_STEPS);
        assert!(
            reads
                .query("DELETE FROM t RETURNING id", &[], |r| r.get::<_, String>(0))
                .is_none()
        );
        let left: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 3);
    }

    #[test]
    fn a_missing_file_turns_reads_here_off() {
        let dir = tempfile::tempdir().unwrap();
        let reads = InlineReads::new(&dir.path().join("absent.db"), DEFAULT_STEPS);
        assert!(
            reads
                .query("SELECT 1", &[], |r| r.get::<_, i64>(0))
                .is_none()
        );
        assert!(reads.disabled.load(Ordering::Relaxed));
        assert!(!dir.path().join("absent.db").exists(), "not created");
    }
}
