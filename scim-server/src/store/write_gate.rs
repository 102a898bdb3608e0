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

    async fn create_side_rows(pool: &sqlx::SqlitePool) {
        let turn = pool.write_turn().await;
        sqlx::query("CREATE TABLE side_rows (n INTEGER NOT NULL)")
            .execute(pool)
            .await
            .unwrap();
        drop(turn);
    }

    /// A side write that forgets its turn while the store has the file open is rolled back at
    /// its commit in debug builds (`write_gate::commit_check`), so the omission fails the test
    /// that makes it; the same write in its turn commits, and a write to a file no store of this
    /// process has open needs none.
    #[tokio::test]
    async fn a_side_write_without_its_turn_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let pool = side_pool(&path).await;
        create_side_rows(&pool).await;
        let insert = "INSERT INTO side_rows (n) VALUES (1)";
        let count = "SELECT count(*) FROM side_rows";

        let err = sqlx::query(insert).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("constraint failed"),
            "a commit hook's rollback: {err}"
        );
        // (On a pool of its own: sqlx does not reuse a connection cleanly after its COMMIT
        // failed, which is fine for a write that must not exist.)
        let refused = side_pool(&path).await;
        let mut tx = refused.begin().await.unwrap();
        sqlx::query(insert).execute(&mut *tx).await.unwrap();
        assert!(tx.commit().await.is_err(), "a transaction without a turn");
        refused.close().await;
        let rows: i64 = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
        assert_eq!(rows, 0, "nothing of the refused writes is stored");

        let turn = pool.write_turn().await;
        sqlx::query(insert).execute(&pool).await.unwrap();
        drop(turn);
        let mut tx = pool.begin_write().await.unwrap();
        sqlx::query(insert).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let rows: i64 = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
        assert_eq!(rows, 2);

        // Once the store is closed (its writer thread ends soon after), there is no turn to take.
        drop(store);
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            while writer_lock(&path).is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        gone.await.expect("the closed store's lock is released");
        sqlx::query(insert).execute(&pool).await.unwrap();
    }

    #[tokio::test]
    async fn side_writes_and_the_stores_writes_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim.db");
        let store = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
        let pool = side_pool(&path).await;
        create_side_rows(&pool).await;

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
