//! PostgreSQL connections that every request shares: `tokio_postgres` clients, each with a
//! task of its own reading the socket all the time, for the store's hot reads and its
//! one-statement writes. A request never checks one out, and nothing pings one before use.
//!
//! **Reads** (`GET` by id, list pages, members, existence checks), pipelined. On a machine
//! whose cores the database shares, most of a lookup's cost is not the lookup but the hand-off.
//! Each statement sent to an idle backend wakes that process (the sending thread pays for the
//! wake-up inside `send`), and each answer wakes ours. `perf` over `GET /Users/{id}` on
//! PostgreSQL (issue 14, `docs/benchmarks.md`, 2026-12-05) put 14 % of the server's samples
//! inside the `send` to PostgreSQL, most of them waking the backend; `pgbench` replaying the same
//! statement spent 68–80 µs of PostgreSQL's CPU per statement sent one per round trip and 32–35
//! µs sent eight to a pipeline (its own CPU 23–25 against 4–5 µs). A backend with a queue of
//! statements never sleeps between them, and replies arrive together. So the reads issued on a
//! connection while earlier ones are in flight go out in the same write and are answered in
//! order; the next connection takes the overflow past [`PIPELINE_DEPTH`]. A read lost with a
//! connection opened earlier is sent once more on a new one (a read changes nothing).
//!
//! **Writes** that are one statement committing on its own (`postgres.rs`,
//! `one_statement_write`): one in flight per connection while a connection is free (a backend
//! commits one statement at a time, and concurrent commits on different backends share a WAL
//! flush). Why not sqlx's pool: it pings a connection before lending it, a round trip (and a
//! wake-up of the backend) per write before the write's own (issue 14, `docs/benchmarks.md`,
//! "Writes without a ping"); without the ping a write could not tell a connection that had
//! closed while idle (a restart, an outage) from one lost after the write was sent. Here the
//! client's task sees a close when it happens, so a write is sent only on a connection open at
//! that moment; a write that finds none opens one, and if that fails nothing was sent
//! ("unavailable"). A write that was sent and then lost its connection is never sent again:
//! its outcome is unknown ([`WriteFailure::Lost`]). (A close still on its way when a write is
//! sent is the same as a close after: the write's outcome is unknown.)
//!
//! A connection that failed (or is older than `max_lifetime`) is replaced by the next statement
//! that picks it. Statements are prepared once per connection with the parameter types the
//! arguments have (as sqlx declares them), and kept until a connection holds
//! [`STATEMENTS_PER_CONNECTION`] of them (list filters compile to many texts); preparing changes
//! nothing, so a write whose connection is lost while preparing goes to a new one.
//!
//! Transactions (a write that must read inside it, the change log's sealing) stay on sqlx's
//! pool: they need a connection to themselves.

use super::refusal::Refusal;
use super::sql::Arg;
use sqlx::postgres::PgConnectOptions;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::types::{FromSqlOwned, ToSql, Type};
use tokio_postgres::{Client, Row, Statement};

/// Reads in flight on a connection before the next one goes to another connection. A backend
/// runs one statement at a time: while its queue is short, adding to it costs no wake-up; once
/// it is long (the backend is busy), another backend takes the overflow. W1 on PostgreSQL
/// (2026-12-05, 16 HTTP connections): 16 → 9,164 req/s, 53 µs of PostgreSQL's CPU per request;
/// 8 → 8,914, 60 µs; 4 → 8,190, 70 µs.
pub(crate) const PIPELINE_DEPTH: usize = 16;

/// Writes in flight on a connection before the next one goes to another: one. A backend
/// commits its statements one after another, each waiting for its WAL flush; spread over
/// backends, concurrent commits share one.
pub(crate) const WRITE_DEPTH: usize = 1;

/// Prepared statements a connection keeps before it starts over (each holds a plan in the
/// backend; a filter's text depends on its shape, so their number is not bounded otherwise).
pub(crate) const STATEMENTS_PER_CONNECTION: usize = 256;

/// A set of shared connections of one store (its reads, or its one-statement writes).
pub(crate) struct PgClients {
    config: tokio_postgres::Config,
    slots: Vec<Slot>,
    /// Statements in flight on a connection before the next statement goes to another one.
    depth: usize,
    connect_timeout: Duration,
    max_lifetime: Duration,
    /// The zero of the slots' `last_used`.
    epoch: Instant,
}

/// One connection's place: the connection while it is usable, and a lock that lets one
/// statement at a time open its replacement.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    opening: tokio::sync::Mutex<()>,
    /// Statements sent on this slot and not yet answered.
    in_flight: AtomicUsize,
    /// When a statement last picked this slot, in milliseconds since the set's `epoch`.
    last_used: AtomicU64,
}

struct Connection {
    client: Client,
    opened: Instant,
    statements: Mutex<HashMap<String, Statement>>,
}

/// Why a write failed, by whether it reached the database.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// Nothing was sent: no connection could be opened (the database is unavailable), or
    /// the one there was lost before the statement went out.
    Unsent(sqlx::Error),
    /// The database refused the statement (a constraint, a failed compare-and-swap, an
    /// invalid plan): it changed nothing. Carries the SQLSTATE.
    Refused(sqlx::Error),
    /// Sent, and the connection failed before the answer: the statement may have committed.
    Lost(sqlx::Error),
}

impl std::fmt::Debug for PgClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgClients")
            .field("connections", &self.slots.len())
            .field("depth", &self.depth)
            .field("open", &self.open_connections())
            .finish()
    }
}

/// A row type a hot read returns, taken from a `tokio_postgres` row.
pub(crate) trait DecodeRow: Sized {
    fn decode(row: &Row) -> Result<Self, tokio_postgres::Error>;
}

macro_rules! decode_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromSqlOwned),+> DecodeRow for ($($t,)+) {
            fn decode(row: &Row) -> Result<Self, tokio_postgres::Error> {
                Ok(($(row.try_get::<_, $t>($i)?,)+))
            }
        }
    };
}
decode_tuple!(A 0);
decode_tuple!(A 0, B 1, C 2);
decode_tuple!(A 0, B 1, C 2, D 3);

impl PgClients {
    /// Up to `connections` connections (at least one) opened with `options`, `depth`
    /// statements in flight on each before the next goes elsewhere ([`PIPELINE_DEPTH`] for
    /// reads, [`WRITE_DEPTH`] for writes); `url` is the one `options` came from (sqlx keeps the
    /// password to itself).
    pub(crate) fn new(
        options: &PgConnectOptions,
        url: &str,
        connections: usize,
        depth: usize,
        connect_timeout: Duration,
        max_lifetime: Duration,
    ) -> Self {
        Self {
            config: client_config(options, url),
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            depth: depth.max(1),
            connect_timeout,
            max_lifetime,
            epoch: Instant::now(),
        }
    }

    /// Opens the first connection, so that settings only these connections use (the password,
    /// see [`client_config`]) fail the start instead of every statement.
    pub(crate) async fn open(&self) -> Result<(), sqlx::Error> {
        self.connection(&self.slots[0]).await.map(|_| ())
    }

    /// Connections open now (for diagnostics and tests).
    pub(crate) fn open_connections(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| {
                lock(&s.current)
                    .as_ref()
                    .is_some_and(|c| !c.client.is_closed())
            })
            .count()
    }

    /// Runs the read `sql` with `args` and decodes every row. Connection failures are
    /// [`sqlx::Error::Io`] (unavailable); the database's refusals keep their SQLSTATE.
    pub(crate) async fn query<T: DecodeRow>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, sqlx::Error> {
        let out = self.outgoing(args);
        let (slot, types, params) = (out.slot, &out.types, &out.params);
        let mut retry = true;
        loop {
            let (conn, fresh) = self.connection(slot).await?;
            let outcome = match conn.statement(sql, types).await {
                Ok(statement) => conn.run(sql, conn.client.query(&statement, params)).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(rows) => {
                    return rows
                        .iter()
                        .map(|row| T::decode(row).map_err(|e| sqlx::Error::Decode(Box::new(e))))
                        .collect();
                }
                // A read changes nothing: one that was lost with a connection opened earlier
                // (closed by the server meanwhile, a restart, an idle timeout on the way) is
                // sent once more, on a new connection. A new connection that fails is the
                // database's state: unavailable.
                Err(e) if retry && !fresh && connection_lost(&e) => {
                    retry = false;
                    slot.retire(&conn);
                }
                Err(e) => return Err(into_sqlx(e)),
            }
        }
    }

    /// Runs the statement `sql` (one that changes data and commits on its own) with `args`,
    /// sending it at most once; the rows it returned or changed.
    pub(crate) async fn execute_once(&self, sql: &str, args: &[Arg]) -> Result<u64, WriteFailure> {
        let out = self.outgoing(args);
        let (slot, types, params) = (out.slot, &out.types, &out.params);
        let mut retry = true;
        loop {
            let (conn, fresh) = self.connection(slot).await.map_err(WriteFailure::Unsent)?;
            // Preparing executes nothing: a connection lost meanwhile is replaced (once, as a
            // read's), and a refusal is the statement's.
            let statement = match conn.statement(sql, types).await {
                Ok(statement) => statement,
                Err(e) if retry && !fresh && connection_lost(&e) => {
                    retry = false;
                    slot.retire(&conn);
                    continue;
                }
                Err(e) if connection_lost(&e) => return Err(WriteFailure::Unsent(into_sqlx(e))),
                Err(e) => return Err(WriteFailure::Refused(into_sqlx(e))),
            };
            if conn.client.is_closed() {
                // Closed since it was picked: nothing was sent on it.
                if !retry {
                    return Err(WriteFailure::Unsent(closed_before_sending()));
                }
                retry = false;
                slot.retire(&conn);
                continue;
            }
            return match conn.run(sql, conn.client.execute(&statement, params)).await {
                Ok(n) => Ok(n),
                Err(e) if connection_lost(&e) => {
                    slot.retire(&conn);
                    Err(WriteFailure::Lost(into_sqlx(e)))
                }
                Err(e) => Err(WriteFailure::Refused(into_sqlx(e))),
            };
        }
    }

    /// A statement's slot (counted as in flight until the statement is answered) and its
    /// parameters with their types.
    fn outgoing<'a>(&'a self, args: &'a [Arg]) -> Outgoing<'a> {
        let slot = self.pick();
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        slot.last_used
            .store(self.millis_since_epoch(), Ordering::Relaxed);
        Outgoing {
            slot,
            types: args.iter().map(parameter_type).collect(),
            params: args.iter().map(parameter).collect(),
            _in_flight: InFlight(&slot.in_flight),
        }
    }

    /// Closes the connections no statement has picked for `idle` or longer (none is in
    /// flight on them); returns how many. The next statement that picks such a slot opens a
    /// new connection. Why: a slot beyond the first is used only while the others are busy,
    /// so after a burst its connection would stay open, holding a backend, until its
    /// lifetime ran out (sqlx's pool closes connections idle for 10 minutes; the store calls
    /// this with the same).
    pub(crate) fn close_idle(&self, idle: Duration) -> usize {
        let now = self.millis_since_epoch();
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let mut closed = 0;
        for slot in &self.slots {
            if slot.in_flight.load(Ordering::Relaxed) > 0
                || now.saturating_sub(slot.last_used.load(Ordering::Relaxed)) < idle
            {
                continue;
            }
            // Dropping the last handle of a client ends its connection.
            if lock(&slot.current).take().is_some() {
                closed += 1;
            }
        }
        closed
    }

    fn millis_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The first slot with fewer than `depth` statements in flight, else the least busy.
    fn pick(&self) -> &Slot {
        let mut least = &self.slots[0];
        for slot in &self.slots {
            let n = slot.in_flight.load(Ordering::Relaxed);
            if n < self.depth {
                return slot;
            }
            if n < least.in_flight.load(Ordering::Relaxed) {
                least = slot;
            }
        }
        least
    }

    /// The slot's connection, opened (again) if it has none, failed or grew old; and whether it
    /// was opened by this call.
    async fn connection(&self, slot: &Slot) -> Result<(Arc<Connection>, bool), sqlx::Error> {
        if let Some(conn) = self.usable(slot) {
            return Ok((conn, false));
        }
        let _opening = slot.opening.lock().await;
        if let Some(conn) = self.usable(slot) {
            return Ok((conn, false));
        }
        let (client, connection) = tokio::time::timeout(
            self.connect_timeout,
            self.config.connect(tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(into_sqlx)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a shared PostgreSQL connection closed");
            }
        });
        let conn = Arc::new(Connection {
            client,
            opened: Instant::now(),
            statements: Mutex::default(),
        });
        *lock(&slot.current) = Some(conn.clone());
        Ok((conn, true))
    }

    fn usable(&self, slot: &Slot) -> Option<Arc<Connection>> {
        lock(&slot.current)
            .as_ref()
            .filter(|c| !c.client.is_closed() && c.opened.elapsed() < self.max_lifetime)
            .cloned()
    }
}

impl Slot {
    /// Forgets `conn` (if it is still this slot's): the next read opens another.
    fn retire(&self, conn: &Arc<Connection>) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *current = None;
        }
    }
}

impl Connection {
    /// Awaits `sent`, a statement sent with `sql`'s prepared statement: a refusal forgets the
    /// statement, in case a migration by a newer replica invalidated its plan (prepared again
    /// by the next use).
    async fn run<T>(
        &self,
        sql: &str,
        sent: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        sent.await.inspect_err(|e| {
            if e.as_db_error().is_some() {
                lock(&self.statements).remove(sql);
            }
        })
    }

    /// `sql` prepared on this connection with parameters of `types`.
    async fn statement(
        &self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = lock(&self.statements).get(sql)
            && statement.params() == types
        {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare_typed(sql, types).await?;
        let mut statements = lock(&self.statements);
        if statements.len() >= STATEMENTS_PER_CONNECTION {
            statements.clear();
        }
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// Whether `e` lost the connection rather than the statement being refused: anything but a
/// database error, and the database's own "connection is going away" answers (SQLSTATE class 08,
/// 57P01–57P03: an administrator or a shutdown ended the session).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
    }
}

/// A statement on its way: see [`PgClients::outgoing`].
struct Outgoing<'a> {
    slot: &'a Slot,
    types: Vec<Type>,
    params: Vec<&'a (dyn ToSql + Sync)>,
    _in_flight: InFlight<'a>,
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The type a parameter is declared with, as sqlx declares it.
fn parameter_type(arg: &Arg) -> Type {
    match arg {
        Arg::Text(_) | Arg::OptText(_) => Type::TEXT,
        Arg::Int(_) => Type::INT8,
        Arg::Float(_) => Type::FLOAT8,
        Arg::TextArray(_) => Type::TEXT_ARRAY,
    }
}

fn parameter(arg: &Arg) -> &(dyn ToSql + Sync) {
    match arg {
        Arg::Text(s) => s,
        Arg::OptText(s) => s,
        Arg::Int(i) => i,
        Arg::Float(f) => f,
        Arg::TextArray(v) => v,
    }
}

/// The client's settings from sqlx's: host or socket directory, port, user, database,
/// application name and options; the password from the URL (percent-decoded) or `PGPASSWORD`,
/// as sqlx takes it (a password only in a `.pgpass` file is not read here).
fn client_config(options: &PgConnectOptions, url: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    match options.get_socket() {
        Some(dir) => config.host_path(dir),
        None => config.host(options.get_host()),
    };
    config
        .port(options.get_port())
        .user(options.get_username())
        .ssl_mode(tokio_postgres::config::SslMode::Disable);
    if let Some(database) = options.get_database() {
        config.dbname(database);
    }
    if let Some(name) = options.get_application_name() {
        config.application_name(name);
    }
    if let Some(extra) = options.get_options() {
        config.options(extra);
    }
    let from_url = url::Url::parse(url).ok().and_then(|u| {
        u.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
    });
    if let Some(password) = from_url.or_else(|| std::env::var("PGPASSWORD").ok()) {
        config.password(password);
    }
    config
}

/// A refusal keeps its SQLSTATE; anything else (closed, I/O, a reply that does not parse) is the
/// connection's failure.
fn into_sqlx(e: tokio_postgres::Error) -> sqlx::Error {
    match e.as_db_error() {
        Some(db) => Refusal {
            code: db.code().code().to_owned(),
            message: db.message().to_owned(),
            constraint: db.constraint().map(str::to_owned),
            kind_of: postgres_kind,
        }
        .into_sqlx(),
        None => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            e,
        )),
    }
}

/// A write's connection that closed between its choice and the sending (nothing sent).
fn closed_before_sending() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the connection closed before the statement was sent",
    ))
}

/// As sqlx's PostgreSQL driver classifies SQLSTATEs.
fn postgres_kind(code: &str) -> sqlx::error::ErrorKind {
    match code {
        "23505" => sqlx::error::ErrorKind::UniqueViolation,
        "23503" => sqlx::error::ErrorKind::ForeignKeyViolation,
        "23502" => sqlx::error::ErrorKind::NotNullViolation,
        "23514" => sqlx::error::ErrorKind::CheckViolation,
        _ => sqlx::error::ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio_postgres::config::Host;

    fn config_of(url: &str) -> tokio_postgres::Config {
        client_config(&PgConnectOptions::from_str(url).unwrap(), url)
    }

    #[test]
    fn the_client_takes_sqlx_settings_and_the_urls_password_decoded() {
        let config = config_of(
            "postgres://scim:p%40ss%2Fword@db.example:6543/idm?application_name=replica-2",
        );
        assert_eq!(config.get_hosts(), [Host::Tcp("db.example".into())]);
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_user(), Some("scim"));
        assert_eq!(config.get_password(), Some(&b"p@ss/word"[..]));
        assert_eq!(config.get_dbname(), Some("idm"));
        assert_eq!(config.get_application_name(), Some("replica-2"));
    }

    #[test]
    fn a_socket_directory_in_the_url_is_the_clients_host() {
        let config = config_of("postgres://scim@localhost/idm?host=/var/run/postgresql");
        assert_eq!(
            config.get_hosts(),
            [Host::Unix("/var/run/postgresql".into())]
        );
        assert_eq!(config.get_ports(), [5432]);
        assert_eq!(config.get_user(), Some("scim"));
    }
}
