//! Shared test helpers: fresh databases for the storage suite.

use scim_server::store::{PostgresStore, SqliteStore, Store};
use sqlx::Connection;
use std::sync::Arc;

/// Which database a [`TestDb`] is.
pub enum Raw {
    /// SQLite, with its temporary directory.
    Sqlite(SqliteStore, #[allow(dead_code)] tempfile::TempDir),
    /// PostgreSQL, with the admin URL and the database name (dropped by `cleanup`).
    Postgres(PostgresStore, String, String),
}

/// A fresh, migrated database and its store.
pub struct TestDb {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Raw access for tampering and EXPLAIN.
    pub raw: Raw,
}

/// The PostgreSQL server tests use (trust auth), without a database name.
pub fn postgres_base() -> String {
    std::env::var("SCIM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

impl TestDb {
    /// A new SQLite database in a temporary directory (the file does not exist beforehand).
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scim.db");
        let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open sqlite");
        TestDb {
            store: Arc::new(store.clone()),
            raw: Raw::Sqlite(store, dir),
        }
    }

    /// A new PostgreSQL database `scim_test_<uuid>`.
    pub async fn postgres() -> TestDb {
        let base = postgres_base();
        let admin_url = format!("{base}/postgres");
        let name = format!("scim_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url}: {e} (set SCIM_TEST_POSTGRES_URL)")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let store = PostgresStore::connect(&format!("{base}/{name}"))
            .await
            .expect("connect postgres");
        TestDb {
            store: Arc::new(store.clone()),
            raw: Raw::Postgres(store, admin_url, name),
        }
    }

    /// Runs raw SQL (tests that tamper with the database).
    pub async fn execute(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(s, _) => {
                sqlx::query(sql).execute(s.pool()).await.expect(sql);
            }
            Raw::Postgres(s, _, _) => {
                sqlx::query(sql).execute(s.pool()).await.expect(sql);
            }
        }
    }

    /// Drops the PostgreSQL database (SQLite's directory goes with the value).
    pub async fn cleanup(self) {
        if let Raw::Postgres(store, admin_url, name) = self.raw {
            drop(self.store);
            store.pool().close().await;
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                admin.close().await.ok();
            }
        }
    }
}

/// Runs `test` against a database and cleans the database up even when the test fails.
pub async fn run<F, Fut>(db: TestDb, test: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(db);
    let outcome = tokio::spawn(test(db.clone())).await;
    if let Ok(db) = Arc::try_unwrap(db) {
        db.cleanup().await;
    }
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// A spawned `scim-server` process that is killed when the guard drops, so a failing test never
/// leaves a server running.
pub struct ChildGuard(pub std::process::Child);

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // After a clean exit both calls are no-ops.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh PostgreSQL database for a test that runs the binary against it, dropped when the value
/// is. `None` (with a note on stderr) when no server answers and `SCIM_TEST_POSTGRES_URL` is unset;
/// a panic when it is set and unreachable, so CI never skips silently.
pub struct PgDatabase {
    admin: String,
    name: String,
    /// The database's URL.
    pub url: String,
}

impl PgDatabase {
    /// Creates `scim_e2e_<uuid>` on the test server.
    pub async fn create() -> Option<PgDatabase> {
        let configured = std::env::var("SCIM_TEST_POSTGRES_URL").ok();
        let root = postgres_base();
        let admin = format!("{root}/postgres");
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if configured.is_none() => {
                eprintln!(
                    "skipping the PostgreSQL run: {e} (set SCIM_TEST_POSTGRES_URL to require it)"
                );
                return None;
            }
            Err(e) => panic!("SCIM_TEST_POSTGRES_URL is set but unreachable: {e}"),
        };
        let name = format!("scim_e2e_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        Some(PgDatabase {
            url: format!("{root}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Best effort, on a runtime of its own (drop may run inside or outside one).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A mail message an [`SmtpSink`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The DATA, dot-stuffing undone, CRLF line ends.
    pub data: String,
}

/// A local SMTP server on 127.0.0.1 (RFC 5321 server side: greeting, EHLO/HELO, MAIL, RCPT,
/// DATA, RSET, NOOP, QUIT) that keeps what it receives, for tests of e-mail notifications.
pub struct SmtpSink {
    pub port: u16,
    mails: std::sync::Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let mails: std::sync::Arc<std::sync::Mutex<Vec<ReceivedMail>>> = Default::default();
        let store = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
                    let (mut from, mut to) = (String::new(), Vec::new());
                    loop {
                        let mut line = String::new();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let upper = line.to_ascii_uppercase();
                        let addr = |l: &str| {
                            l.split_once('<')
                                .and_then(|(_, r)| r.split_once('>'))
                                .map(|(a, _)| a.to_string())
                                .unwrap_or_default()
                        };
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink.test\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                            b"250 ok\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            from = addr(&line);
                            b"250 ok\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(addr(&line));
                            b"250 ok\r\n"
                        } else if upper.starts_with("RSET") {
                            from.clear();
                            to.clear();
                            b"250 ok\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if read.read_line(&mut l).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == ".\r\n" {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                            }
                            store.lock().unwrap().push(ReceivedMail {
                                from: std::mem::take(&mut from),
                                to: std::mem::take(&mut to),
                                data,
                            });
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"500 unknown command\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { port, mails, task }
    }

    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }
}

/// The webhook requests received: headers and body of each.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that keeps each request's headers and body.
pub struct WebhookSink {
    pub url: String,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let received: Received = Default::default();
        let store = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push((headers, body.to_vec()));
                    http::StatusCode::NO_CONTENT
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookSink {
            url,
            received,
            task,
        }
    }

    pub fn received(&self) -> Vec<(http::HeaderMap, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}

/// Runs each named suite function (`async fn(Arc<TestDb>)`) against a fresh SQLite and a fresh
/// PostgreSQL database: `both!(a, b)` makes `sqlite::a`, `postgres::a`, `sqlite::b`, ….
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::run(crate::support::TestDb::sqlite().await, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::run(crate::support::TestDb::postgres().await, super::$name).await;
                }
            )*
        }
    };
}
pub(crate) use both;
