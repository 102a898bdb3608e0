//! One way, for the whole workspace, to run a statement on whichever database a component's
//! tables live in.
//!
//! A component that keeps tables (the bridge's [`crate::store::BridgeStore`], the server's
//! intake queue, governance and console pools) holds an enum with a `Sqlite` and a `Postgres`
//! variant, declares it with [`impl_on_pool!`](crate::impl_on_pool), and writes each access once with [`on_pool!`](crate::on_pool):
//! the statements use `$n` placeholders, which both sqlx drivers accept, and sqlx's generic
//! executors take either pool, so the body is the same text on both sides of the `match` the
//! macro expands to. The few fragments that differ by dialect (`FOR UPDATE SKIP LOCKED`,
//! `LEAST`/`MIN`) ask the second form's `pg` flag.
//!
//! This lives in the bridge because it is the lowest crate with sqlx (`scim-core` has none).

use sqlx::{PgPool, SqlitePool};

/// A borrowed pool of either database kind.
#[derive(Debug, Clone, Copy)]
pub enum PoolRef<'a> {
    /// SQLite.
    Sqlite(&'a SqlitePool),
    /// PostgreSQL.
    Postgres(&'a PgPool),
}

/// A handle on a database of either kind ([`impl_on_pool!`](crate::impl_on_pool) implements it).
pub trait OnPool {
    /// The pool, by kind.
    fn pool_ref(&self) -> PoolRef<'_>;
}

impl<'a> PoolRef<'a> {
    /// The pool `db` holds ([`on_pool!`](crate::on_pool) matches on it).
    pub fn of<T: OnPool + ?Sized>(db: &'a T) -> PoolRef<'a> {
        db.pool_ref()
    }
}

/// Implements [`OnPool`] for an enum with `Sqlite(SqlitePool)` and `Postgres(PgPool)` variants.
#[macro_export]
macro_rules! impl_on_pool {
    ($ty:ident) => {
        impl $crate::pool::OnPool for $ty {
            fn pool_ref(&self) -> $crate::pool::PoolRef<'_> {
                match self {
                    $ty::Sqlite(pool) => $crate::pool::PoolRef::Sqlite(pool),
                    $ty::Postgres(pool) => $crate::pool::PoolRef::Postgres(pool),
                }
            }
        }
    };
}

/// Runs the same body against whichever pool `$db` (a reference to an [`OnPool`]) holds:
/// `on_pool!(self, |pool| query.execute(pool).await)`, or with `|pool, pg|` where a fragment
/// differs by dialect (`pg` is true on PostgreSQL).
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $crate::pool::PoolRef::of($db) {
            $crate::pool::PoolRef::Sqlite($pool) => $body,
            $crate::pool::PoolRef::Postgres($pool) => $body,
        }
    };
    ($db:expr, |$pool:ident, $pg:ident| $body:expr) => {
        match $crate::pool::PoolRef::of($db) {
            $crate::pool::PoolRef::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $pg = false;
                $body
            }
            $crate::pool::PoolRef::Postgres($pool) => {
                #[allow(unused_variables)]
                let $pg = true;
                $body
            }
        }
    };
}
