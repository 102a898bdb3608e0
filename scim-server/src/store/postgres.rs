//! The PostgreSQL store, for deployments that outgrow one machine: any number of stateless
//! `scim-server` replicas over one database. Nothing here depends on a single process: unique
//! keys are constraints, versions are compare-and-swap in the `UPDATE`, and writers of one tenant
//! do not wait for each other: each write commits an unnumbered change record, which a single
//! sealer at a time (across replicas) numbers and chains after commit ([`super::seal`]), so
//! readers see sequence numbers gap-free and never filled in later.

use super::seal::Sealer;
use super::sql::{Arg, Dialect};
use super::{Result, StoreError, WriteContext};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Arguments, Postgres};
use std::str::FromStr;
use std::sync::Arc;
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
    /// This process's change-log sealer (see [`super::seal`]).
    sealer: Arc<Sealer>,
}

/// An open write transaction.
struct WriteTx {
    tx: sqlx::Transaction<'static, Postgres>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations (replicas starting
    /// together are safe: sqlx takes an advisory lock while migrating).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, super::PoolSettings::default()).await
    }

    /// [`PostgresStore::connect`] with a configured pool.
    pub async fn connect_with(url: &str, settings: super::PoolSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(
                settings
                    .max_connections
                    .unwrap_or(super::POSTGRES_MAX_CONNECTIONS)
                    .max(1),
            )
            .acquire_timeout(settings.acquire_timeout.unwrap_or(Duration::from_secs(10)))
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            sealer: Arc::default(),
        };
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

    /// Analyses each large table that has no statistics yet or has changed by more than 500 rows
    /// plus a tenth since it was last analysed, and returns their names.
    ///
    /// Why the product does this itself: without statistics PostgreSQL gives every equality the
    /// same default selectivity, so `tenant_id = $1 AND resource_type = $2` looks like one row,
    /// and at tens of thousands of rows an index that matches only those two columns costs the
    /// same, to the planner, as the exact lookup index; it may then read a tenant's whole type
    /// (issue 14 saw 10,000 rows read for a GET by id). Production clusters usually run
    /// autovacuum, which analyses in time; this keeps the same promise where it is off (as on
    /// our CI machines) and early in an initial sync. The distribution it records (one tenant,
    /// two types, unique ids) stays true as the table grows, so a few analyses suffice.
    /// Replicas take turns through a transaction-level advisory lock; one that does not get it
    /// skips the round.
    async fn analyze_stale_tables(&self) -> Result<Vec<&'static str>> {
        const TABLES: [&str; 4] = [
            "resources",
            "resource_values",
            "memberships",
            "scim_changes",
        ];
        /// An arbitrary constant naming this job among advisory locks ("scimstat").
        const ADVISORY_KEY: i64 = 0x7363_696d_7374_6174;
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(ADVISORY_KEY)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(Vec::new());
        }
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT t FROM unnest($1::text[]) AS t \
             JOIN pg_class c ON c.oid = to_regclass(t) \
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE (c.reltuples < 0 AND pg_relation_size(c.oid) > 0) \
                OR COALESCE(s.n_mod_since_analyze, 0) > 500 + GREATEST(c.reltuples, 0) / 10",
        )
        .bind(TABLES.map(String::from).to_vec())
        .fetch_all(&mut *tx)
        .await?;
        let mut analysed = Vec::new();
        for table in TABLES {
            if stale.iter().any(|t| t == table) {
                // The name comes from the constant list above, never from input.
                sqlx::query(&format!("ANALYZE {table}"))
                    .execute(&mut *tx)
                    .await?;
                analysed.push(table);
            }
        }
        tx.commit().await?;
        Ok(analysed)
    }

    /// After a write's commit: seals its change record (and any other sealable one).
    async fn after_write(&self) {
        self.sealer.after_commit(&self.pool).await;
    }

    /// Seals every change record committed so far that no running transaction can precede.
    async fn seal_pending(&self) -> Result<u64> {
        self.sealer.seal(&self.pool).await
    }

    /// The server's sweep: seals what a crash or a caller's own transaction left pending, and
    /// vacuums the pending table once many sealed rows have left dead tuples in it (its index is
    /// read from the oldest entry on; where autovacuum is off, nothing else would clean it).
    async fn sweep_changes(&self) -> Result<u64> {
        let sealed = self.seal_pending().await?;
        let dead: Option<i64> = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'scim_changes_pending'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if dead.unwrap_or(0) > 10_000 {
            sqlx::query("VACUUM (SKIP_LOCKED) scim_changes_pending")
                .execute(&self.pool)
                .await?;
        }
        Ok(sealed)
    }

    /// Appends `event` in a transaction of its own and returns its sequence number, once sealed.
    async fn append_event_own(
        &self,
        ctx: &WriteContext,
        event: &scim_core::change_log::AuditEvent,
    ) -> Result<u64> {
        let record = super::chain::Unsealed::new(ctx, super::chain::RecordBody::event(event)?);
        let mut tx = self.pool.begin().await?;
        let change_id = super::seal::insert_pending(&mut tx, &record).await?;
        super::commit(tx).await?;
        self.sealer
            .sequence_of(&self.pool, &record.tenant, &record.resource_id, change_id)
            .await
    }

    async fn begin_write(&self) -> Result<WriteTx> {
        Ok(WriteTx {
            tx: self.pool.begin().await?,
        })
    }

    /// Appends a write's change record, unnumbered (sealed after commit).
    async fn append_record(
        &self,
        w: &mut WriteTx,
        ctx: &WriteContext,
        body: super::chain::RecordBody,
    ) -> Result<()> {
        super::change_log::append_in(&mut *w.tx, ctx, body).await?;
        Ok(())
    }

    /// Commits a write, then seals its change record.
    async fn commit_write(&self, w: WriteTx) -> Result<()> {
        super::commit(w.tx).await?;
        self.after_write().await;
        Ok(())
    }

    fn arguments(&self, args: &[Arg]) -> Result<PgArguments> {
        pg_arguments(args)
    }
}

fn pg_arguments(args: &[Arg]) -> Result<PgArguments> {
    let mut out = PgArguments::default();
    for arg in args {
        let res = match arg {
            Arg::Text(s) => out.add(s.clone()),
            Arg::OptText(s) => out.add(s.clone()),
            Arg::Int(i) => out.add(*i),
            Arg::Float(f) => out.add(*f),
            Arg::TextArray(v) => out.add(v.clone()),
        };
        res.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

/// A write's statements run one by one in the transaction (each is a round trip either way).
impl WriteTx {
    /// Nothing is remembered between writes here: records are sealed after commit.
    fn read_heads(&mut self) {}

    async fn queue(&mut self, sql: &str, args: Vec<Arg>) -> Result<()> {
        self.run(sql, args).await.map(drop)
    }

    async fn run(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        let args = pg_arguments(&args)?;
        Ok(sqlx::query_with(sql, args)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }

    /// A compare-and-swap: whether it matched (known at once here).
    async fn compare_and_swap(&mut self, sql: &str, args: Vec<Arg>) -> Result<bool> {
        Ok(self.run(sql, args).await? > 0)
    }

    async fn conn(&mut self) -> Result<&mut sqlx::PgConnection> {
        Ok(&mut *self.tx)
    }

    async fn rollback(self) {
        // A failed rollback leaves the connection to sqlx, which closes a broken one.
        let _ = self.tx.rollback().await;
    }
}

super::imp::impl_sql_store!(PostgresStore, Postgres);
