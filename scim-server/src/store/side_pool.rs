//! A small connection pool of its own on the server's database, for a component that keeps
//! tables beside the store's (the Graph bridge, the HR intake, the console).

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
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
    let options = options
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("{component} opening the SQLite database (`database_url`)"))?;
    Ok(SidePool::Sqlite(pool))
}
