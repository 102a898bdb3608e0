//! Shared test helpers: fresh databases for the storage suite.

use scim_server::store::{PostgresStore, SqliteStore, Store};
use sqlx::Connection;
use std::sync::Arc;

/// Which database a [`TestDb`] is.
pub enum Raw {
    /// SQLite, with its temporary directory.
    Sqlite(SqliteStore, #[allow(dead_code)] tempfile::TempDir),
    /// PostgreSQL, with the admin URL and the database name (dropped by `cleanup`).
    Postgres(PostgresStore, String, String),
}

/// A fresh, migrated database and its store.
pub struct TestDb {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Raw access for tampering and EXPLAIN.
    pub raw: Raw,
}

/// The PostgreSQL server tests use (trust auth), without a database name.
pub fn postgres_base() -> String {
    std::env::var("SCIM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

impl TestDb {
    /// A new SQLite database in a temporary directory (the file does not exist beforehand).
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scim.db");
        let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open sqlite");
        TestDb {
            store: Arc::new(store.clone()),
            raw: Raw::Sqlite(store, dir),
        }
    }

    /// A new PostgreSQL database `scim_test_<uuid>`.
    pub async fn postgres() -> TestDb {
        let base = postgres_base();
        let admin_url = format!("{base}/postgres");
        let name = format!("scim_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url}: {e} (set SCIM_TEST_POSTGRES_URL)")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let store = PostgresStore::connect(&format!("{base}/{name}"))
            .await
            .expect("connect postgres");
        TestDb {
            store: Arc::new(store.clone()),
            raw: Raw::Postgres(store, admin_url, name),
        }
    }

    /// Runs raw SQL (tests that tamper with the database).
    pub async fn execute(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(s, _) => {
                sqlx::query(sql).execute(s.pool()).await.expect(sql);
            }
            Raw::Postgres(s, _, _) => {
                sqlx::query(sql).execute(s.pool()).await.expect(sql);
            }
        }
    }

    /// Drops the PostgreSQL database (SQLite's directory goes with the value).
    pub async fn cleanup(self) {
        if let Raw::Postgres(store, admin_url, name) = self.raw {
            drop(self.store);
            store.pool().close().await;
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                admin.close().await.ok();
            }
        }
    }
}

/// Runs `test` against a database and cleans the database up even when the test fails.
pub async fn run<F, Fut>(db: TestDb, test: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(db);
    let outcome = tokio::spawn(test(db.clone())).await;
    if let Ok(db) = Arc::try_unwrap(db) {
        db.cleanup().await;
    }
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}
