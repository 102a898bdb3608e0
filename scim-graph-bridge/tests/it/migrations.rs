//! The bridge's tables migrate with sqlx (`_sqlx_migrations`, versions 10001 and up), and a
//! database created by the hand-rolled migrator of earlier versions upgrades in place.

use sqlx::Row;

use crate::db::{self, TestDb};
use scim_graph_bridge::store::BridgeStore;

/// The schema as the earlier, hand-rolled migrator left it: its bookkeeping table with version 1
/// recorded, and the bridge tables (the statements of that version, unchanged since).
const OLD_BOOKKEEPING: &str = "CREATE TABLE bridge_schema_migrations (version BIGINT PRIMARY KEY, \
     name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL); \
     INSERT INTO bridge_schema_migrations VALUES (1, 'bridge_state', 1767225600000)";
const OLD_SQLITE_TABLES: &str = include_str!("../../migrations/sqlite/10001_bridge_state.sql");
const OLD_POSTGRES_TABLES: &str = include_str!("../../migrations/postgres/10001_bridge_state.sql");

async fn raw(store: &BridgeStore, sql: &str) {
    match store {
        BridgeStore::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        BridgeStore::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn strings(store: &BridgeStore, sql: &str) -> Vec<String> {
    match store {
        BridgeStore::Sqlite(p) => sqlx::query(sql).fetch_all(p).await.unwrap(),
        BridgeStore::Postgres(p) => {
            return sqlx::query(sql)
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
        }
    }
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

async fn old_database_upgrades_in_place(db: TestDb) {
    let tables = match &db.store {
        BridgeStore::Sqlite(_) => OLD_SQLITE_TABLES,
        BridgeStore::Postgres(_) => OLD_POSTGRES_TABLES,
    };
    raw(&db.store, tables).await;
    raw(&db.store, OLD_BOOKKEEPING).await;
    raw(
        &db.store,
        "INSERT INTO bridge_cursor (tenant_id, last_seq) VALUES ('t1', 41); \
         INSERT INTO bridge_links (tenant_id, user_id, graph_id, left_at_ms, updated_at_ms) \
         VALUES ('t1', 'u1', 'g-1', NULL, 1767225600000)",
    )
    .await;

    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();

    let cursors = db.store.cursors().await.unwrap();
    assert_eq!(
        (cursors[0].tenant.as_str(), cursors[0].seq),
        ("t1", 41),
        "rows survive"
    );
    let link = db.store.get_link("t1", "u1").await.unwrap();
    assert_eq!(link.graph_id.as_deref(), Some("g-1"));
    let applied = strings(
        &db.store,
        "SELECT CAST(version AS TEXT) FROM _sqlx_migrations ORDER BY version",
    )
    .await;
    // the two that bring an old database up to date come first; later ones add tables
    assert_eq!(applied[..2], ["10001", "10002"], "{applied:?}");
    assert_eq!(applied, migration_versions());
    // the hand-rolled bookkeeping is gone
    match &db.store {
        BridgeStore::Sqlite(p) => {
            assert!(
                sqlx::query("SELECT 1 FROM bridge_schema_migrations")
                    .fetch_all(p)
                    .await
                    .is_err()
            )
        }
        BridgeStore::Postgres(p) => {
            assert!(
                sqlx::query("SELECT 1 FROM bridge_schema_migrations")
                    .fetch_all(p)
                    .await
                    .is_err()
            )
        }
    }
    db.cleanup().await;
}

async fn a_foreign_migration_in_the_shared_table_is_not_refused(db: TestDb) {
    // the server's migrator records its own versions (below 10001) in the same table
    db.store.migrate().await.unwrap();
    raw(
        &db.store,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (1, 'initial', TRUE, X'00', 0)",
    )
    .await;
    db.store.migrate().await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_old_database_upgrades_in_place() {
    old_database_upgrades_in_place(db::sqlite_unmigrated().await).await;
}

#[tokio::test]
async fn postgres_old_database_upgrades_in_place() {
    if let Some(db) = db::postgres_unmigrated().await {
        old_database_upgrades_in_place(db).await;
    }
}

#[tokio::test]
async fn sqlite_a_foreign_migration_in_the_shared_table_is_not_refused() {
    a_foreign_migration_in_the_shared_table_is_not_refused(db::sqlite_unmigrated().await).await;
}

/// The versions of the bridge's migration files (both dialects are numbered alike), ascending.
fn migration_versions() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut versions: Vec<u64> = std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.split('_').next()?.parse().ok()
        })
        .collect();
    versions.sort_unstable();
    versions.iter().map(u64::to_string).collect()
}
