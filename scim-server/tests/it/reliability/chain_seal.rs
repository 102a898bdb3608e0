//! The change log without a per-tenant lock (issue 14): on PostgreSQL writes commit unnumbered
//! change records that a sealer numbers and chains after commit (`store::seal`). Proven here:
//! many concurrent writers of one tenant → every change sealed exactly once in a chain `audit
//! verify` accepts, and a reader polling meanwhile never sees a gap (a sequence number that a
//! later read would fill in); a long-running transaction holds back neither other writers nor
//! the sealing of their records, and its own record follows theirs once it commits; a record
//! committed but left
//! unsealed (the state a crash between commit and sealing leaves) is sealed by the restarted
//! server's sweep. The concurrency case also runs on SQLite, which seals in the write's
//! transaction; there a store remembers each tenant's chain head between its writes, and
//! `sqlite_writers_of_one_file_keep_one_chain` moves the head behind its back.

use super::*;
use crate::support::{Raw, TestDb};
use scim_core::change::Change;
use scim_core::change_log::{AuditEvent, ChangeCursor};
use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use scim_graph_bridge::outbox::OutboxReader as _;
use scim_server::auth::CredentialKind;
use scim_server::store::WriteContext;
use scim_server::store::change_log::{StoreChangeLog, append_event_in};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use time::OffsetDateTime;

const TASKS: usize = 16;
const USERS_PER_TASK: usize = 20;

fn ctx(tenant: &str, principal: &str) -> WriteContext {
    let request = scim_server::test_support::request_ctx(
        scim_server::test_support::principal(tenant, principal, false, CredentialKind::StaticToken),
        None,
        "http://localhost/scim/v2",
    );
    request
        .writer()
        .unwrap()
        .context(OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap())
}

async fn create_user(db: &TestDb, id: &str) {
    create_user_in(&*db.store, id).await;
}

async fn create_user_in(store: &dyn scim_server::store::Store, id: &str) {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").unwrap();
    let user = Resource::new(
        "User",
        id,
        serde_json::json!({"userName": id})
            .as_object()
            .unwrap()
            .clone(),
        Meta::new(OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()),
    );
    store
        .create(
            &ctx("t1", "token:hr"),
            users,
            &user,
            &Change::created(&registry, &user),
        )
        .await
        .unwrap();
}

fn log_of(db: &TestDb) -> StoreChangeLog {
    match &db.raw {
        Raw::Sqlite(s, _) => StoreChangeLog::sqlite(s.pool().clone()),
        Raw::Postgres(s, _, _) => StoreChangeLog::postgres(s.pool().clone()),
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    match &db.raw {
        Raw::Sqlite(s, _) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        Raw::Postgres(s, _, _) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
    }
}

/// Reads the log of `t1` from the start through the bridge's reader (which never seals itself)
/// until `stop`, checking that every read continues the last one without a gap; returns the
/// records' resource ids in sequence order.
async fn gapless_reader(log: StoreChangeLog, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut cursor = ChangeCursor::start("t1");
    let mut seen = Vec::new();
    loop {
        let finished = stop.load(Ordering::SeqCst);
        let batch = log.read_after(&cursor, 50).await.unwrap();
        for entry in &batch {
            assert_eq!(
                entry.seq,
                cursor.seq + 1,
                "the reader saw sequence number {} after {}: a gap a later read would fill",
                entry.seq,
                cursor.seq
            );
            cursor = cursor.advanced_to(entry);
            seen.push(entry.write().unwrap().resource_id.clone());
        }
        if finished && batch.is_empty() {
            return seen;
        }
        if batch.is_empty() {
            tokio::task::yield_now().await;
        }
    }
}

async fn concurrent_writers_are_sealed_once_in_one_verifiable_chain(db: Arc<TestDb>) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(gapless_reader(log_of(&db), stop.clone()));
    let writers: Vec<_> = (0..TASKS)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                for n in 0..USERS_PER_TASK {
                    create_user(&db, &format!("w{t}-{n}")).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    // Every write has returned, so every record has committed: one more round seals what a
    // concurrent round may have left (`heads` seals), and the reader then drains the log.
    let heads = log_of(&db).heads().await.unwrap();
    let total = (TASKS * USERS_PER_TASK) as u64;
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].seq, total, "every write sealed");
    stop.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    assert_eq!(seen.len() as u64, total, "the reader saw every record");
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len() as u64, total, "each record exactly once");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM scim_changes_pending").await,
        0
    );
    let report = db.store.verify_chain("t1").await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, total);
}

/// PostgreSQL only (SQLite lets one write transaction run at a time).
async fn a_long_transaction_holds_back_neither_writers_nor_sealing(db: Arc<TestDb>) {
    let Raw::Postgres(store, _, _) = &db.raw else {
        unreachable!()
    };
    create_user(&db, "before").await;
    assert_eq!(db.store.changes_after("t1", 0, 10).await.unwrap().len(), 1);

    // A transaction that has written (the change record of an event) and stays open.
    let mut long = store.pool().begin().await.unwrap();
    let event = AuditEvent::new(
        "governance.decision",
        "User",
        "before",
        serde_json::json!({"decision": "keep"}),
    )
    .unwrap();
    let seq = append_event_in(&mut *long, &ctx("t1", "governance:carol"), &event)
        .await
        .unwrap();
    assert_eq!(seq, None, "PostgreSQL numbers records after commit");

    // Other writers of the tenant commit meanwhile, and their records are sealed by the rounds
    // their commits start (in the background: nothing here reads the log or seals).
    for id in ["during-1", "during-2", "during-3"] {
        create_user(&db, id).await;
    }
    let mut pending = -1;
    for _ in 0..200 {
        pending = count(&db, "SELECT COUNT(*) FROM scim_changes_pending").await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "every committed record is sealed");
    let sealed = db.store.changes_after("t1", 0, 10).await.unwrap();
    assert_eq!(sealed.len(), 4);

    // The open transaction's record is sealed once it commits, after those that committed first.
    long.commit().await.unwrap();
    let sealed = db.store.changes_after("t1", 0, 10).await.unwrap();
    let order: Vec<(u64, &str, &str)> = sealed
        .iter()
        .map(|r| (r.seq, r.operation.as_str(), r.resource_id.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (1, "create", "before"),
            (2, "create", "during-1"),
            (3, "create", "during-2"),
            (4, "create", "during-3"),
            (5, "event", "before"),
        ]
    );
    let report = db.store.verify_chain("t1").await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
}

/// The state a `kill -9` between a write's commit and its sealing leaves (a committed pending
/// record, no sealer running) is sealed by the server's sweep after a restart, with no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_left_unsealed_by_a_crash_is_sealed_by_the_sweep_after_restart() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let launch = Launch::new(&pg.url);
    // First start: migrations, the default tenant; then stopped.
    drop(launch.start());
    {
        let store = scim_server::store::PostgresStore::connect(&pg.url)
            .await
            .unwrap();
        let event = AuditEvent::new(
            "console.action",
            "User",
            "u1",
            serde_json::json!({"action": "suspend"}),
        )
        .unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        append_event_in(&mut *tx, &ctx("default", "console:alice"), &event)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // Nothing sealed it: this process "crashed" after the commit.
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scim_changes_pending")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(pending, 1);
        store.pool().close().await;
    }
    let s = launch.start();
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let mut sealed = 0;
    for _ in 0..300 {
        sealed = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM scim_changes WHERE tenant_id = 'default' AND operation = 'event'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if sealed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sealed, 1, "the sweep sealed the record");
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scim_changes_pending")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    pool.close().await;
    drop(s);
    let (ok, out) = launch.run(&["audit", "verify"]);
    assert!(ok, "{out}");
}

/// SQLite: a store remembers each tenant's chain head between its writes, so a write's record
/// needs no read of the head. Other writers of the file move the head behind its back: a second
/// store on the same file (as another process would be) and an audit event appended inside a
/// caller's own transaction. Every write still lands, each record once, in one chain that
/// verifies, from alternating and from concurrent writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_of_one_file_keep_one_chain() {
    let db = Arc::new(TestDb::sqlite().await);
    let Raw::Sqlite(first, dir) = &db.raw else {
        unreachable!()
    };
    let path = dir.path().join("scim.db");
    let second = scim_server::store::SqliteStore::open(path.to_str().unwrap())
        .await
        .unwrap();
    let event = AuditEvent::new(
        "console.action",
        "User",
        "a0",
        serde_json::json!({"action": "suspend", "reason": "test"}),
    )
    .unwrap();
    let mut expected = 0;
    for n in 0..5 {
        create_user_in(first, &format!("a{n}")).await;
        create_user_in(&second, &format!("b{n}")).await;
        let mut tx = first.pool().begin().await.unwrap();
        append_event_in(&mut *tx, &ctx("t1", "console:ops"), &event)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        expected += 3;
    }
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (first, second) = (first.clone(), second.clone());
            tokio::spawn(async move {
                for n in 0..10 {
                    if (t + n) % 2 == 0 {
                        create_user_in(&first, &format!("c{t}-{n}")).await;
                    } else {
                        create_user_in(&second, &format!("c{t}-{n}")).await;
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    expected += 40;
    let report = db.store.verify_chain("t1").await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, expected);
    let heads = log_of(&db).heads().await.unwrap();
    assert_eq!(heads[0].seq, expected, "gap-free: the head is the count");
    let users = count(
        &db,
        "SELECT COUNT(*) FROM resources WHERE resource_type = 'User'",
    )
    .await;
    assert_eq!(users, 50, "every write landed");
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_are_sealed_once_in_one_verifiable_chain() {
        crate::support::run(
            crate::support::TestDb::sqlite().await,
            super::concurrent_writers_are_sealed_once_in_one_verifiable_chain,
        )
        .await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_are_sealed_once_in_one_verifiable_chain() {
        crate::support::run(
            crate::support::TestDb::postgres().await,
            super::concurrent_writers_are_sealed_once_in_one_verifiable_chain,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_transaction_holds_back_neither_writers_nor_sealing() {
        crate::support::run(
            crate::support::TestDb::postgres().await,
            super::a_long_transaction_holds_back_neither_writers_nor_sealing,
        )
        .await;
    }
}
