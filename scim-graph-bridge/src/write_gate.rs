//! Turns at writing an SQLite file, for the components that write it through pools of their
//! own beside the server's store (this crate's [`crate::store::BridgeStore`]; the server's HR
//! intake, console and governance).
//!
//! SQLite lets one connection write a file at a time. A connection that finds the write lock
//! taken polls for it (SQLite's busy handler sleeps up to 100 ms between tries) and fails after
//! its busy timeout. The store's writer thread takes the lock again microseconds after each
//! commit, so under a sustained run of writes (Entra's initial sync) a side pool's write found it
//! free only by luck: during the full-size cycle an HR `bulkUpload` waited up to 10 s for it and
//! then failed ("database is locked"; the server's `docs/benchmarks.md`, 2026-12-04 evening).
//! The store's writer lock is a fair (first come, first served) `tokio` mutex taken around every
//! group commit and every open write; a side write that takes it first waits behind the writes
//! already queued, no more, and then finds SQLite's lock free.
//!
//! The store registers its lock under its file's canonical path when it opens; a side pool finds
//! it by its own file's path. Where no store of this process has the file open (a separate
//! process, a tool), or on PostgreSQL (row locks, no file lock), a turn is nothing and the write
//! goes on as before.
//!
//! Inside a turn nothing may wait for the store's own writes (a deferred store write waits for
//! the writer thread, which waits for the turn to end) or take another turn: a turn holds a
//! side-pool statement or transaction, nothing else.

use sqlx::pool::PoolConnection;
use sqlx::{Pool, Postgres, Sqlite, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The store's writer lock (with the writer connection it keeps between writes, which a turn
/// leaves alone).
pub type WriterSlot = Mutex<Option<PoolConnection<Sqlite>>>;

/// A store's writer lock, under its file's canonical path.
type Registered = (PathBuf, Weak<WriterSlot>);

/// Each open SQLite store's writer lock.
static WRITER_LOCKS: LazyLock<std::sync::Mutex<Vec<Registered>>> = LazyLock::new(Default::default);

/// Makes `slot` the writer lock of the database file at `file` for this process's side pools
/// (replacing a store of the same file opened earlier). The server's SQLite store calls this when
/// it opens a file.
pub fn register(file: &Path, slot: &Arc<WriterSlot>) {
    let Ok(path) = file.canonicalize() else {
        return;
    };
    let mut locks = WRITER_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.retain(|(registered, lock)| lock.strong_count() > 0 && *registered != path);
    locks.push((path, Arc::downgrade(slot)));
}

/// The writer lock registered for the database file at `file`, if its store is still open.
pub fn writer_lock(file: &Path) -> Option<Arc<WriterSlot>> {
    writer_lock_at(&file.canonicalize().ok()?)
}

/// [`writer_lock`] of a path already canonical (no file system call).
fn writer_lock_at(canonical: &Path) -> Option<Arc<WriterSlot>> {
    let locks = WRITER_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks
        .iter()
        .find(|(registered, _)| registered == canonical)
        .and_then(|(_, lock)| lock.upgrade())
}

/// What a side connection to the SQLite file at `file` checks as it commits (install it with
/// `LockedSqliteHandle::set_commit_hook`): whether a turn is held. Every side write takes one
/// by a line of its own (`write_turn`, `begin_write`), and a write that forgets it does not
/// fail: it waits on SQLite's busy handler, polling behind a writer thread that retakes the
/// lock after every commit (up to a 503 after 10 s under Entra's initial sync). This makes the
/// omission visible: a commit while this process's store is open and nobody holds its writer
/// lock is logged as an error, and in debug builds (every test run) it is rolled back, so the
/// write fails where it was made. A commit while the lock is held passes, whoever holds it.
pub fn commit_check(file: &Path) -> impl FnMut() -> bool + Send + 'static {
    let canonical = file.canonicalize().ok();
    move || {
        let Some(file) = canonical.as_deref() else {
            return true;
        };
        let Some(slot) = writer_lock_at(file) else {
            return true;
        };
        if slot.try_lock().is_err() {
            return true;
        }
        tracing::error!(
            file = %file.display(),
            "a write beside the store's committed without taking its turn \
             (write_gate: write_turn or begin_write)"
        );
        !cfg!(debug_assertions)
    }
}

/// A turn at writing: while it lives, the store's writers wait. Nothing on PostgreSQL, or where
/// no store of this process has the file open.
#[must_use = "the turn ends when it is dropped"]
pub struct WriteTurn {
    _held: Option<OwnedMutexGuard<Option<PoolConnection<Sqlite>>>>,
}

/// A side pool's write transaction, begun in a [`WriteTurn`] that ends with it. It dereferences
/// to the connection, like sqlx's [`Transaction`], so statements run on `&mut *tx`.
pub struct WriteTransaction<DB: sqlx::Database> {
    // Declared before the turn: dropped first (a transaction dropped unfinished rolls back).
    tx: Transaction<'static, DB>,
    _turn: WriteTurn,
}

impl<DB: sqlx::Database> WriteTransaction<DB> {
    /// Commits, then ends the turn.
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }

    /// The transaction and its turn, for a caller that commits it its own way: keep the turn
    /// until the commit has returned.
    pub fn into_parts(self) -> (Transaction<'static, DB>, WriteTurn) {
        (self.tx, self._turn)
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTransaction<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTransaction<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Writes through a side pool, in turn with the store's writers.
pub trait SideWrites {
    /// The database of the pool.
    type Database: sqlx::Database;

    /// Waits for a turn to write: hold it across one writing statement run on the pool.
    fn write_turn(&self) -> impl Future<Output = WriteTurn> + Send;

    /// Begins a write transaction in a turn of its own (on SQLite with `BEGIN IMMEDIATE`: the
    /// write lock from its start, so it never fails half-way to upgrade a read).
    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<WriteTransaction<Self::Database>>> + Send;
}

/// How long a wait for a turn goes before the log says so (and again after each as long).
/// Turns last a group commit, milliseconds; one this long is a writer stuck, or a turn taken
/// inside another (which waits for itself): a hang the log should name, not hide.
pub const TURN_WAIT_WARNING: Duration = Duration::from_secs(10);

/// Waits for `lock`, keeping its place in the queue, and logs a warning after each `warn_every`
/// ([`TURN_WAIT_WARNING`]) it is still waiting.
async fn wait_for_turn(
    lock: Arc<WriterSlot>,
    warn_every: Duration,
) -> OwnedMutexGuard<Option<PoolConnection<Sqlite>>> {
    let turn = lock.lock_owned();
    tokio::pin!(turn);
    let mut waited = Duration::ZERO;
    loop {
        match tokio::time::timeout(warn_every, &mut turn).await {
            Ok(held) => return held,
            Err(_) => {
                waited += warn_every;
                tracing::warn!(
                    waited_ms = waited.as_millis(),
                    "still waiting for a turn to write the SQLite file (a writer holds it: a \
                     stuck write, or a turn taken inside another)"
                );
            }
        }
    }
}

impl SideWrites for Pool<Sqlite> {
    type Database = Sqlite;

    async fn write_turn(&self) -> WriteTurn {
        let options = self.connect_options();
        let held = match writer_lock(options.get_filename()) {
            Some(lock) => Some(wait_for_turn(lock, TURN_WAIT_WARNING).await),
            None => None,
        };
        WriteTurn { _held: held }
    }

    async fn begin_write(&self) -> sqlx::Result<WriteTransaction<Sqlite>> {
        let turn = self.write_turn().await;
        let tx = self.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTransaction { tx, _turn: turn })
    }
}

impl SideWrites for Pool<Postgres> {
    type Database = Postgres;

    async fn write_turn(&self) -> WriteTurn {
        WriteTurn { _held: None }
    }

    async fn begin_write(&self) -> sqlx::Result<WriteTransaction<Postgres>> {
        Ok(WriteTransaction {
            tx: self.begin().await?,
            _turn: WriteTurn { _held: None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long wait is reported and keeps its place: the first in line still gets the turn first.
    #[tokio::test]
    async fn a_long_wait_keeps_its_place_in_the_queue() {
        const WARN_EVERY: Duration = Duration::from_millis(50);
        let lock: Arc<WriterSlot> = Arc::new(Mutex::new(None));
        let held = lock.clone().lock_owned().await;
        let (order, mut taken) = tokio::sync::mpsc::unbounded_channel();
        let first = tokio::spawn({
            let (lock, order) = (lock.clone(), order.clone());
            async move {
                let _turn = wait_for_turn(lock, WARN_EVERY).await;
                order.send("first").unwrap();
            }
        });
        // Past two warnings.
        tokio::time::sleep(WARN_EVERY * 2 + WARN_EVERY / 2).await;
        assert!(!first.is_finished());
        let second = tokio::spawn({
            let lock = lock.clone();
            async move {
                let _turn = wait_for_turn(lock, WARN_EVERY).await;
                order.send("second").unwrap();
            }
        });
        // Past another warning of the first: had it left the queue to warn, it would now be
        // behind the second.
        tokio::time::sleep(WARN_EVERY).await;
        drop(held);
        first.await.unwrap();
        second.await.unwrap();
        assert_eq!(taken.recv().await, Some("first"));
        assert_eq!(taken.recv().await, Some("second"));
    }
}
