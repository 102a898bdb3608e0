//! The SQLite store: the embedded default. One file, created on first start, in WAL mode, with
//! foreign keys on and migrations applied on open.
//!
//! Writes are serialised: a process-wide lock orders this store's writers, and each write
//! transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front (another
//! process writing the same file waits up to the busy timeout instead of failing mid-way).
//! Readers never wait for writers (WAL).

use super::sql::{Arg, Dialect};
use super::{Result, StoreError, WriteContext};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Arguments, Connection, Sqlite};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

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
    write_lock: Arc<Mutex<()>>,
}

/// An open write transaction and the writer lock it holds (released after the transaction ends).
struct WriteTx {
    tx: sqlx::Transaction<'static, Sqlite>,
    _guard: OwnedMutexGuard<()>,
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
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let pool = SqlitePoolOptions::new()
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
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            write_lock: Arc::new(Mutex::new(())),
        };
        super::Store::migrate(&store).await?;
        Ok(store)
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

    /// Change records are sealed in their write's transaction here: nothing to do after commit.
    async fn after_write(&self) {}

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
        let mut w = self.begin_write().await?;
        let seq = super::change_log::append_event_in(&mut *w.tx, ctx, event).await?;
        super::commit(w.tx).await?;
        seq.ok_or_else(|| {
            StoreError::Corrupt("an SQLite append returned no sequence number".into())
        })
    }

    async fn begin_write(&self) -> Result<WriteTx> {
        let guard = self.write_lock.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    fn arguments(&self, args: &[Arg]) -> Result<SqliteArguments<'static>> {
        let mut out = SqliteArguments::default();
        for arg in args {
            let res = match arg {
                Arg::Text(s) => out.add(s.clone()),
                Arg::Int(i) => out.add(*i),
                Arg::Float(f) => out.add(*f),
                Arg::TextArray(v) => out.add(serde_json::to_string(v).unwrap_or_default()),
            };
            res.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
        }
        Ok(out)
    }
}

super::imp::impl_sql_store!(SqliteStore, Sqlite);
