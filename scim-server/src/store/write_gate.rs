//! Turns at writing an SQLite file for the server's side pools (the HR intake, the console,
//! governance: [`super::side_pool`]), with the store's writes: the mechanism is
//! [`scim_graph_bridge::write_gate`] (the lowest crate with sqlx, whose own store takes turns
//! too); the SQLite store registers its writer lock there when it opens a file.

pub(crate) use scim_graph_bridge::write_gate::register;
pub use scim_graph_bridge::write_gate::{SideWrites, WriteTransaction, WriteTurn, WriterSlot};

/// Commits a side pool's write transaction as [`super::commit`] does (on PostgreSQL a lost
/// connection leaves the outcome unknown), then ends its turn.
pub(crate) trait CommitWrite {
    /// See the trait.
    fn commit_write(self) -> impl Future<Output = super::Result<()>> + Send;
}

impl<DB: sqlx::Database> CommitWrite for WriteTransaction<DB> {
    async fn commit_write(self) -> super::Result<()> {
        let (tx, turn) = self.into_parts();
        let committed = super::commit(tx).await;
        drop(turn);
        committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use crate::store::side_pool::{SidePool, open_side_pool};
    use scim_graph_bridge::write_gate::writer_lock;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    /// Long enough for a write that does not wait to have finished many times over.
    const WHILE_HELD: Duration = Duration::from_millis(300);

    async fn side_pool(path: &Path) -> sqlx::SqlitePool {
        match open_side_pool(path.to_str().unwrap(), "a test")
            .await
            .unwrap()
        {
            SidePool::Sqlite(pool) => pool,
            SidePool::Postgres(_) => unreachable!("a file path opens SQLite"),
        }
    }

    #[tokio::test]
    async fn side_writes_and_the_stores_writes_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim.db");
        let store = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
        let pool = side_pool(&path).await;
        sqlx::query("CREATE TABLE side_rows (n INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();

        // A side pool's turn holds the store's writes back until it ends.
        let turn = pool.write_turn().await;
        let write = tokio::spawn({
            let store = store.clone();
            async move { crate::test_support::create_user(&*store, "t1", "waits-for-the-side").await }
        });
        tokio::time::sleep(WHILE_HELD).await;
        assert!(!write.is_finished(), "the store wrote during a side turn");
        drop(turn);
        write.await.unwrap().unwrap();

        // A side write transaction waits for the store's writer lock (held here as a group
        // commit holds it), instead of polling SQLite's lock.
        let held = writer_lock(&path)
            .expect("the store registered its lock")
            .lock_owned()
            .await;
        let side = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin_write().await?;
                sqlx::query("INSERT INTO side_rows (n) VALUES (1)")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
        });
        tokio::time::sleep(WHILE_HELD).await;
        assert!(
            !side.is_finished(),
            "a side write did not wait for its turn"
        );
        drop(held);
        side.await.unwrap().unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM side_rows")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 1);

        // Another file, which no store of this process has open: no turn to wait for.
        let other = dir.path().join("other.db");
        let other_pool = side_pool(&other).await;
        let _store_turn = writer_lock(&path).unwrap().lock_owned().await;
        let _turn = tokio::time::timeout(Duration::from_secs(5), other_pool.write_turn())
            .await
            .expect("a file without a store has no turns");
    }
}
