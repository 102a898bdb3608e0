//! The PostgreSQL store, for deployments that outgrow one machine: any number of stateless
//! `scim-server` replicas over one database. Nothing here depends on a single process: unique
//! keys are constraints, versions are compare-and-swap in the `UPDATE`, and writers of one tenant
//! serialise on the tenant's `tenant_chain` row (`SELECT … FOR UPDATE`, taken as the last step of
//! the transaction) so change-log sequence numbers are gap-free and in commit order.

use super::sql::{Arg, Dialect};
use super::{Result, StoreError};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Arguments, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// `ignore_missing`: the Graph bridge's migrations share `_sqlx_migrations` on this database in
/// their own version range (10001 and up), unknown to this migrator.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

/// The PostgreSQL [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// An open write transaction.
struct WriteTx {
    tx: sqlx::Transaction<'static, Postgres>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations (replicas starting
    /// together are safe: sqlx takes an advisory lock while migrating).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        super::Store::migrate(&store).await?;
        Ok(store)
    }

    /// The connection pool (for tests and diagnostics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn begin_write(&self) -> Result<WriteTx> {
        Ok(WriteTx {
            tx: self.pool.begin().await?,
        })
    }

    fn arguments(&self, args: &[Arg]) -> Result<PgArguments> {
        let mut out = PgArguments::default();
        for arg in args {
            let res = match arg {
                Arg::Text(s) => out.add(s.clone()),
                Arg::Int(i) => out.add(*i),
                Arg::Float(f) => out.add(*f),
                Arg::TextArray(v) => out.add(v.clone()),
            };
            res.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
        }
        Ok(out)
    }
}

super::imp::impl_sql_store!(PostgresStore, Postgres);
