//! Test databases: a temp-file SQLite, or a fresh PostgreSQL database per test.

use std::sync::Arc;
use std::time::Duration;

use scim_core::change::Operation;
use scim_graph_bridge::outbox::{MemoryChangeLog, OutboxReader};
use scim_graph_bridge::store::BridgeStore;
use sqlx::ConnectOptions;
use time::OffsetDateTime;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDb {
    pub store: BridgeStore,
    /// The server's change log as the bridge sees it (the server's own implementation over its
    /// store is tested in `scim-server`).
    pub log: Arc<MemoryChangeLog>,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

pub async fn sqlite() -> TestDb {
    let db = sqlite_unmigrated().await;
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap(); // idempotent
    db
}

/// `None` when no PostgreSQL is reachable.
pub async fn postgres() -> Option<TestDb> {
    let db = postgres_unmigrated().await?;
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    Some(db)
}

/// An empty SQLite database file.
pub async fn sqlite_unmigrated() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("bridge.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .unwrap();
    let store = BridgeStore::Sqlite(pool);
    TestDb {
        store,
        _dir: Some(dir),
        pg_name: None,
        log: Arc::default(),
    }
}

/// A fresh, empty PostgreSQL database; `None` when no PostgreSQL is reachable.
pub async fn postgres_unmigrated() -> Option<TestDb> {
    let admin = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(PG_ADMIN)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("PostgreSQL not reachable ({e}); skipping");
            return None;
        }
    };
    let name = format!("bridge_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let opts: sqlx::postgres::PgConnectOptions =
        format!("postgres://postgres@127.0.0.1:5432/{name}")
            .parse()
            .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect_with(opts.disable_statement_logging())
        .await
        .unwrap();
    let store = BridgeStore::Postgres(pool);
    Some(TestDb {
        store,
        _dir: None,
        pg_name: Some(name),
        log: Arc::default(),
    })
}

impl TestDb {
    /// Appends a change-log entry as the server would (`op`: `create`, `replace`, `patch` or
    /// `delete`).
    pub async fn change(&self, tenant: &str, rtype: &str, id: &str, op: &str) {
        let operation: Operation = serde_json::from_value(op.into()).expect("operation");
        self.log
            .append(tenant, rtype, id, operation, OffsetDateTime::UNIX_EPOCH);
    }

    /// The change log as the worker takes it.
    pub fn change_log(&self) -> Arc<dyn OutboxReader> {
        self.log.clone()
    }

    pub async fn cleanup(mut self) {
        if let (BridgeStore::Postgres(pool), Some(name)) = (&self.store, self.pg_name.take()) {
            pool.close().await;
            drop_database(name).await;
        }
    }
}

async fn drop_database(name: String) {
    if let Ok(admin) = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(PG_ADMIN)
        .await
    {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

impl Drop for TestDb {
    /// A test that panicked before `cleanup` still drops its database.
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_database(name));
                }
            })
            .join();
        }
    }
}
