//! Test databases: a temp-file SQLite, or a fresh PostgreSQL database per test.

use std::time::Duration;

use scim_graph_bridge::store::BridgeStore;
use sqlx::ConnectOptions;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDb {
    pub store: BridgeStore,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
    seqs: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

const SCIM_CHANGES: &str = "CREATE TABLE scim_changes (
  tenant_id     TEXT    NOT NULL,
  tenant_seq    INTEGER NOT NULL,
  resource_type TEXT    NOT NULL,
  resource_id   TEXT    NOT NULL,
  version       INTEGER NOT NULL,
  operation     TEXT    NOT NULL,
  change_json   TEXT    NOT NULL,
  principal     TEXT    NOT NULL,
  request_id    TEXT,
  occurred_at   TEXT    NOT NULL,
  prev_hash     TEXT    NOT NULL,
  hash          TEXT    NOT NULL,
  PRIMARY KEY (tenant_id, tenant_seq))";

pub async fn sqlite() -> TestDb {
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
    sqlx::query(SCIM_CHANGES).execute(&pool).await.unwrap();
    let store = BridgeStore::Sqlite(pool);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    TestDb {
        store,
        _dir: Some(dir),
        pg_name: None,
        seqs: Default::default(),
    }
}

/// `None` when no PostgreSQL is reachable.
pub async fn postgres() -> Option<TestDb> {
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
    sqlx::query(&SCIM_CHANGES.replace("INTEGER", "BIGINT"))
        .execute(&pool)
        .await
        .unwrap();
    let store = BridgeStore::Postgres(pool);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    Some(TestDb {
        store,
        _dir: None,
        pg_name: Some(name),
        seqs: Default::default(),
    })
}

impl TestDb {
    /// Appends a change row as the server would.
    pub async fn change(&self, tenant: &str, rtype: &str, id: &str, op: &str) {
        let seq = {
            let mut s = self.seqs.lock().unwrap();
            let e = s.entry(tenant.to_owned()).or_insert(0);
            *e += 1;
            *e
        };
        let q = "INSERT INTO scim_changes (tenant_id, tenant_seq, resource_type, resource_id, version, operation, change_json, principal, request_id, occurred_at, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, 1, $5, '{}', 'test', NULL, '2026-01-01T00:00:00Z', 'p', 'h')";
        match &self.store {
            BridgeStore::Sqlite(p) => {
                sqlx::query(&q.replace('$', "?"))
                    .bind(tenant)
                    .bind(seq)
                    .bind(rtype)
                    .bind(id)
                    .bind(op)
                    .execute(p)
                    .await
                    .unwrap();
            }
            BridgeStore::Postgres(p) => {
                sqlx::query(q)
                    .bind(tenant)
                    .bind(seq)
                    .bind(rtype)
                    .bind(id)
                    .bind(op)
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
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
