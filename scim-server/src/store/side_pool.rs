//! A small connection pool of its own on the server's database, for a component that keeps
//! tables beside the store's (the Graph bridge, the HR intake, the console).

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// A pool on the server's database, by dialect.
#[derive(Debug, Clone)]
pub enum SidePool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite, on the same file as the store.
    Sqlite(SqlitePool),
}

/// Opens a four-connection pool on `database_url` (`sqlite://…`, a file path, or `postgres://…`)
/// for `component` (named in errors, e.g. "the HR intake").
///
/// An in-memory SQLite database is refused: it is private to the pool that opened it, so the
/// component could not see the store's rows. On SQLite the pool waits for the store's writers
/// (busy timeout) rather than fail, in WAL mode like the store.
pub async fn open_side_pool(database_url: &str, component: &str) -> anyhow::Result<SidePool> {
    let lower = database_url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect(database_url)
            .await
            .with_context(|| format!("{component} connecting to `database_url`"))?;
        return Ok(SidePool::Postgres(pool));
    }
    if lower.contains(":memory:") || lower.contains("mode=memory") {
        anyhow::bail!(
            "{component} needs a database file or PostgreSQL: an in-memory SQLite database \
             (`database_url`) is private to one connection pool"
        );
    }
    let options = if lower.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(database_url)
            .context("`database_url` is not a valid SQLite URL")?
    } else {
        SqliteConnectOptions::new().filename(database_url)
    };
    // The store's durability (`synchronous = NORMAL`, the README's) and no checkpoints inside
    // commits (the store's background task runs them): with SQLite's defaults each commit here
    // synced the whole WAL the store had written since the last sync, and ran a checkpoint
    // once the WAL passed 1,000 pages (always, during an initial sync), holding every writer of
    // the file meanwhile (turns held 12 ms at the median, 56 ms at p90 during Entra's cycle).
    let options = options
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(super::sqlite::BUSY_TIMEOUT)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("wal_autocheckpoint", "0");
    let file = options.get_filename().to_path_buf();
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        // Each commit checks that its write took a turn (`write_gate::commit_check`).
        .after_connect(move |conn, _meta| {
            let check = scim_graph_bridge::write_gate::commit_check(&file);
            Box::pin(async move {
                conn.lock_handle().await?.set_commit_hook(check);
                Ok(())
            })
        })
        // In-process: nothing can break a connection behind our back, and a ping before each
        // use is one more wait for this task's turn on a busy runtime, which a write makes
        // while holding its turn to write (`write_gate`).
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .with_context(|| format!("{component} opening the SQLite database (`database_url`)"))?;
    Ok(SidePool::Sqlite(pool))
}
