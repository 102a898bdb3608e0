//! The server's change log as the bridge reads it ([`StoreChangeLog`]), on SQLite and PostgreSQL:
//! typed entries in commit order, per-tenant heads, paging after a cursor, and the worker
//! consuming it with no SQL of `scim_changes` on the bridge's side.

use crate::support::{Raw, TestDb};
use scim_core::change::{Change, Operation};
use scim_core::change_log::ChangeCursor;
use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use scim_graph_bridge::outbox::OutboxReader;
use scim_graph_bridge::store::BridgeStore;
use scim_server::auth::CredentialKind;
use scim_server::store::WriteContext;
use scim_server::store::change_log::StoreChangeLog;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

fn log_of(db: &TestDb) -> StoreChangeLog {
    match &db.raw {
        Raw::Sqlite(s, _) => StoreChangeLog::sqlite(s.pool().clone()),
        Raw::Postgres(s, _, _) => StoreChangeLog::postgres(s.pool().clone()),
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + seconds).unwrap()
}

/// A write context as the service's write capability makes it (the only way to get one).
fn ctx(tenant: &str, seconds: i64) -> WriteContext {
    let request = scim_server::test_support::request_ctx(
        scim_server::test_support::principal(
            tenant,
            "token:test",
            false,
            CredentialKind::StaticToken,
        ),
        None,
        "http://localhost/scim/v2",
    );
    request.writer().unwrap().context(at(seconds))
}

async fn entries_are_typed_in_commit_order_with_heads(db: Arc<TestDb>) {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").unwrap();
    let groups = registry.resource_type("Group").unwrap();
    let log = log_of(&db);
    assert!(
        log.heads().await.unwrap().is_empty(),
        "an empty database has no heads"
    );

    let alice = Resource::new(
        "User",
        "u-alice",
        json!({"userName": "alice"}).as_object().unwrap().clone(),
        Meta::new(at(0)),
    );
    db.store
        .create(
            &ctx("t1", 0),
            users,
            &alice,
            &Change::created(&registry, &alice),
        )
        .await
        .unwrap();
    let mut renamed = alice.clone();
    renamed.attributes.insert("title".into(), json!("VP"));
    renamed.meta.version = 2;
    db.store
        .update(
            &ctx("t1", 1),
            users,
            &renamed,
            1,
            None,
            &Change::replaced(&registry, &alice, &renamed, None),
        )
        .await
        .unwrap();
    let staff = Resource::new(
        "Group",
        "g-staff",
        json!({"displayName": "staff"}).as_object().unwrap().clone(),
        Meta::new(at(2)),
    );
    db.store
        .create(
            &ctx("t2", 2),
            groups,
            &staff,
            &Change::created(&registry, &staff),
        )
        .await
        .unwrap();
    db.store
        .delete(
            &ctx("t1", 3),
            users,
            "u-alice",
            Some(2),
            &Change::deleted(&registry, &renamed),
        )
        .await
        .unwrap();

    assert_eq!(
        log.heads().await.unwrap(),
        [
            ChangeCursor {
                tenant: "t1".into(),
                seq: 3
            },
            ChangeCursor {
                tenant: "t2".into(),
                seq: 1
            },
        ]
    );
    let t1 = log
        .read_after(&ChangeCursor::start("t1"), 100)
        .await
        .unwrap();
    let summary: Vec<_> = t1
        .iter()
        .map(|e| {
            let w = e.write().expect("a resource write");
            (
                e.seq,
                w.resource_type.as_str(),
                w.resource_id.as_str(),
                w.version,
                w.operation,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "User", "u-alice", 1, Operation::Create),
            (2, "User", "u-alice", 2, Operation::Replace),
            (3, "User", "u-alice", 2, Operation::Delete),
        ]
    );
    assert_eq!(t1[1].occurred_at, at(1));
    assert!(
        t1.iter().all(|e| e.tenant == "t1"),
        "no entry of another tenant"
    );

    // paging after a cursor
    let page = log
        .read_after(
            &ChangeCursor {
                tenant: "t1".into(),
                seq: 1,
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    assert!(
        log.read_after(
            &ChangeCursor {
                tenant: "t1".into(),
                seq: 3
            },
            10
        )
        .await
        .unwrap()
        .is_empty()
    );
    let t2 = log
        .read_after(&ChangeCursor::start("t2"), 10)
        .await
        .unwrap();
    assert_eq!(
        (t2.len(), t2[0].write().map(|w| w.resource_type.as_str())),
        (1, Some("Group"))
    );
}

async fn a_corrupt_operation_is_an_error_not_a_skip(db: Arc<TestDb>) {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").unwrap();
    let bob = Resource::new(
        "User",
        "u-bob",
        json!({"userName": "bob"}).as_object().unwrap().clone(),
        Meta::new(at(0)),
    );
    db.store
        .create(
            &ctx("t1", 0),
            users,
            &bob,
            &Change::created(&registry, &bob),
        )
        .await
        .unwrap();
    // Sealed first (on PostgreSQL a record is sealed just after its write returns).
    db.store.seal().await.unwrap();
    db.execute("UPDATE scim_changes SET operation = 'upsert' WHERE tenant_id = 't1'")
        .await;
    let err = log_of(&db)
        .read_after(&ChangeCursor::start("t1"), 10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("upsert"), "{err}");
}

/// The server's and the bridge's sqlx migrators share `_sqlx_migrations`, each ignoring the
/// other's versions: either may run first, and again, on every start.
async fn server_and_bridge_migrations_share_one_database(db: Arc<TestDb>) {
    let bridge_store = match &db.raw {
        Raw::Sqlite(s, _) => BridgeStore::Sqlite(s.pool().clone()),
        Raw::Postgres(s, _, _) => BridgeStore::Postgres(s.pool().clone()),
    };
    bridge_store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    bridge_store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert!(bridge_store.cursors().await.unwrap().is_empty());
}

crate::support::both!(
    entries_are_typed_in_commit_order_with_heads,
    a_corrupt_operation_is_an_error_not_a_skip,
    server_and_bridge_migrations_share_one_database,
);
