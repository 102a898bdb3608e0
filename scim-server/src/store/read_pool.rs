//! The connections the hot reads run on (`GET` by id, list pages, existence checks).
//!
//! sqlx's `Pool` (0.8) pings every connection it takes back, always, and by default every
//! connection it lends: each is a round trip, to the connection's thread on SQLite and to the
//! server on PostgreSQL, so a one-statement `GET` cost three. `perf` over `GET /Users/{id}`
//! on SQLite put 46 % of the server's samples in the kernel, mostly the thread switches of
//! those hand-offs (`docs/benchmarks.md`, 2026-12-03). This pool lends and takes back without
//! a round trip: a connection returns to a stack when its borrower is done, unless the
//! borrower saw it fail ([`Lent::keep`]).
//!
//! PostgreSQL's hot reads no longer come here: they share pipelined connections
//! (`pg_clients.rs`), which cost its backends a wake-up per batch instead of per statement.
//!
//! An in-memory SQLite database lives in its one connection, so there the reads share the
//! store's sqlx pool ([`ReadPool::shared`]).

use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Connection, Database, Pool};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A lean pool, or the store's own pool (in-memory SQLite).
pub(crate) enum ReadPool<DB: Database> {
    Lean(Lean<DB>),
    Shared(Pool<DB>),
}

pub(crate) struct Lean<DB: Database> {
    options: <DB::Connection as Connection>::Options,
    idle: Mutex<Vec<Idle<DB::Connection>>>,
    permits: Semaphore,
    acquire_timeout: Duration,
    max_lifetime: Duration,
}

struct Idle<C> {
    conn: C,
    opened: Instant,
}

/// How a [`ReadPool::lean`] behaves.
pub(crate) struct LeanSettings {
    /// Connections open at most (borrowers beyond wait).
    pub max_connections: u32,
    /// How long a borrower waits for one before an error.
    pub acquire_timeout: Duration,
    /// A connection older than this is closed when it comes back.
    pub max_lifetime: Duration,
}

impl<DB: Database> std::fmt::Debug for ReadPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lean(lean) => f
                .debug_struct("ReadPool::Lean")
                .field(
                    "idle",
                    &lean.idle.lock().map(|v| v.len()).unwrap_or_default(),
                )
                .field("available", &lean.permits.available_permits())
                .finish(),
            Self::Shared(_) => f.write_str("ReadPool::Shared"),
        }
    }
}

impl<DB: Database> ReadPool<DB> {
    /// A lean pool opening connections with `options` (as many as the settings allow, on demand).
    pub(crate) fn lean(
        options: <DB::Connection as Connection>::Options,
        settings: LeanSettings,
    ) -> Self {
        let max = settings.max_connections.max(1) as usize;
        Self::Lean(Lean {
            options,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Semaphore::new(max),
            acquire_timeout: settings.acquire_timeout,
            max_lifetime: settings.max_lifetime,
        })
    }

    /// Reads on the store's pool itself.
    pub(crate) fn shared(pool: Pool<DB>) -> Self {
        Self::Shared(pool)
    }

    /// A connection, until the returned value is dropped.
    pub(crate) async fn acquire(&self) -> Result<Lent<'_, DB>, sqlx::Error> {
        match self {
            Self::Shared(pool) => Ok(Lent::Shared(pool.acquire().await?)),
            Self::Lean(lean) => lean.acquire().await,
        }
    }
}

impl<DB: Database> Lean<DB> {
    async fn acquire(&self) -> Result<Lent<'_, DB>, sqlx::Error> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(idle) = idle {
            return Ok(Lent::Lean {
                pool: self,
                conn: Some(idle.conn),
                opened: idle.opened,
                pending: false,
                _permit: permit,
            });
        }
        let conn = tokio::time::timeout(self.acquire_timeout, self.options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(Lent::Lean {
            pool: self,
            conn: Some(conn),
            opened: Instant::now(),
            pending: false,
            _permit: permit,
        })
    }
}

/// A lent connection; it goes back when dropped.
pub(crate) enum Lent<'a, DB: Database> {
    Lean {
        pool: &'a Lean<DB>,
        conn: Option<DB::Connection>,
        opened: Instant,
        /// A statement was started and its result not yet seen ([`Lent::keep`]): dropped in
        /// that state (the request was cancelled), the connection may still have a reply in
        /// flight, so it is retired rather than lent again.
        pending: bool,
        _permit: SemaphorePermit<'a>,
    },
    Shared(PoolConnection<DB>),
}

impl<DB: Database> Lent<'_, DB> {
    /// The connection, to run one statement on; pass its result through [`Lent::keep`].
    pub(crate) fn statement(&mut self) -> &mut DB::Connection {
        match self {
            Lent::Lean { conn, pending, .. } => {
                *pending = true;
                conn.as_mut().expect("a lent connection until dropped")
            }
            Lent::Shared(c) => c,
        }
    }

    /// Passes a statement's result through; a failure other than the database refusing the
    /// statement (the connection itself failed: I/O, protocol, a dead thread) retires the
    /// connection instead of returning it.
    pub(crate) fn keep<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Lent::Lean { pending, .. } = self {
            *pending = false;
        }
        if let Err(e) = &result
            && !matches!(
                e,
                sqlx::Error::Database(_)
                    | sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::ColumnNotFound(_)
                    | sqlx::Error::ColumnIndexOutOfBounds { .. }
                    | sqlx::Error::TypeNotFound { .. }
                    | sqlx::Error::Decode(_)
                    | sqlx::Error::Encode(_)
            )
            && let Lent::Lean { conn, .. } = self
        {
            conn.take();
        }
        result
    }
}

impl<DB: Database> Drop for Lent<'_, DB> {
    fn drop(&mut self) {
        if let Lent::Lean {
            pool,
            conn,
            opened,
            pending: false,
            ..
        } = self
            && let Some(conn) = conn.take()
            && opened.elapsed() < pool.max_lifetime
        {
            pool.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Idle {
                    conn,
                    opened: *opened,
                });
        }
        // The permit is released after the connection is back (fields drop after this body).
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Sqlite;
    use sqlx::sqlite::SqliteConnectOptions;

    fn pool(dir: &tempfile::TempDir, max: u32) -> ReadPool<Sqlite> {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("reads.db"))
            .create_if_missing(true);
        ReadPool::lean(
            options,
            LeanSettings {
                max_connections: max,
                acquire_timeout: Duration::from_millis(200),
                max_lifetime: Duration::from_secs(60),
            },
        )
    }

    fn idle(pool: &ReadPool<Sqlite>) -> usize {
        match pool {
            ReadPool::Lean(lean) => lean.idle.lock().unwrap().len(),
            ReadPool::Shared(_) => unreachable!(),
        }
    }

    async fn one(pool: &ReadPool<Sqlite>) -> i64 {
        let mut conn = pool.acquire().await.unwrap();
        let r = sqlx::query_scalar("SELECT 1")
            .fetch_one(conn.statement())
            .await;
        conn.keep(r).unwrap()
    }

    #[tokio::test]
    async fn a_connection_comes_back_after_use_and_is_lent_again() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 2);
        assert_eq!(one(&pool).await, 1);
        assert_eq!(idle(&pool), 1);
        assert_eq!(one(&pool).await, 1);
        assert_eq!(
            idle(&pool),
            1,
            "the idle connection was reused, not a second opened"
        );
    }

    /// A request cancelled while its statement runs (the client went away) drops the lent
    /// connection with the statement unfinished: it is retired, and the next borrower gets a
    /// connection that answers its own statement.
    #[tokio::test]
    async fn a_connection_dropped_mid_statement_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1);
        assert_eq!(one(&pool).await, 1);
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                    WHERE i < 5000000) SELECT count(*) FROM n";
        let cancelled = tokio::time::timeout(Duration::from_millis(20), async {
            let mut conn = pool.acquire().await.unwrap();
            let r: Result<i64, _> = sqlx::query_scalar(slow).fetch_one(conn.statement()).await;
            conn.keep(r)
        })
        .await;
        assert!(cancelled.is_err(), "the statement should still be running");
        assert_eq!(
            idle(&pool),
            0,
            "the interrupted connection was not returned"
        );
        assert_eq!(one(&pool).await, 1);
    }

    #[tokio::test]
    async fn a_failed_connection_is_retired_and_a_refused_statement_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1);
        {
            let mut conn = pool.acquire().await.unwrap();
            let r = sqlx::query("SELECT nonsense FROM nowhere")
                .execute(conn.statement())
                .await;
            assert!(matches!(conn.keep(r), Err(sqlx::Error::Database(_))));
        }
        assert_eq!(
            idle(&pool),
            1,
            "a statement the database refused leaves it usable"
        );
        {
            let mut conn = pool.acquire().await.unwrap();
            conn.statement();
            let lost: Result<(), _> = Err(sqlx::Error::WorkerCrashed);
            assert!(conn.keep(lost).is_err());
        }
        assert_eq!(idle(&pool), 0);
        assert_eq!(one(&pool).await, 1);
    }

    #[tokio::test]
    async fn borrowers_beyond_the_limit_wait_and_then_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1);
        let held = pool.acquire().await.unwrap();
        assert!(matches!(
            pool.acquire().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        drop(held);
        assert_eq!(one(&pool).await, 1);
    }
}
