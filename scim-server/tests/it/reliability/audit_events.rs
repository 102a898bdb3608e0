//! Audit events in the change log's hash chain, on SQLite and PostgreSQL: an event appended on
//! its own or inside a caller's transaction takes the next sequence number of the tenant's chain,
//! `audit verify` covers it (an altered event is reported), readers see it typed (never as a
//! resource write), and the Graph bridge moves its cursor past it without queuing anyone.

use crate::support::{Raw, TestDb};
use scim_core::change::{Change, Operation};
use scim_core::change_log::{AuditEvent, ChangeCursor, EventSubject, Record};
use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use scim_graph_bridge::outbox::OutboxReader as _;
use scim_graph_bridge::store::BridgeStore;
use scim_server::auth::CredentialKind;
use scim_server::store::WriteContext;
use scim_server::store::change_log::{StoreChangeLog, append_event_in};
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + seconds).unwrap()
}

/// A write context as the write capability makes it (the only way to get one).
fn ctx(principal: &str, seconds: i64) -> WriteContext {
    let request = scim_server::test_support::request_ctx(
        scim_server::test_support::principal("t1", principal, false, CredentialKind::StaticToken),
        Some(format!("req-{seconds}")),
        "http://localhost/scim/v2",
    );
    request.writer().unwrap().context(at(seconds))
}

fn log_of(db: &TestDb) -> StoreChangeLog {
    match &db.raw {
        Raw::Sqlite(s, _) => StoreChangeLog::sqlite(s.pool().clone()),
        Raw::Postgres(s, _, _) => StoreChangeLog::postgres(s.pool().clone()),
    }
}

async fn create_user(db: &TestDb, id: &str, seconds: i64) {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").unwrap();
    let user = Resource::new(
        "User",
        id,
        json!({"userName": id}).as_object().unwrap().clone(),
        Meta::new(at(seconds)),
    );
    db.store
        .create(
            &ctx("token:hr", seconds),
            users,
            &user,
            &Change::created(&registry, &user),
        )
        .await
        .unwrap();
}

fn suspend(user: &str) -> AuditEvent {
    AuditEvent::new(
        "console.action",
        "User",
        user,
        json!({"action": "suspend", "role": "operator", "reason": "leaver"}),
    )
    .unwrap()
}

async fn events_share_the_chain_and_audit_verify_covers_them(db: Arc<TestDb>) {
    create_user(&db, "u1", 0).await;
    let seq = db
        .store
        .append_event(&ctx("console:alice@example.com", 1), &suspend("u1"))
        .await
        .unwrap();
    assert_eq!(seq, 2, "the event takes the chain's next number");
    create_user(&db, "u2", 2).await;

    let records = db.store.changes_after("t1", 0, 10).await.unwrap();
    let kinds: Vec<_> = records
        .iter()
        .map(|r| (r.seq, r.operation.as_str(), r.is_event()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "create", false),
            (2, "event", true),
            (3, "create", false)
        ]
    );
    let event = &records[1];
    assert_eq!(event.principal, "console:alice@example.com");
    assert_eq!(event.request_id.as_deref(), Some("req-1"));
    assert_eq!(
        (
            event.resource_type.as_str(),
            event.resource_id.as_str(),
            event.version
        ),
        ("User", "u1", 0),
        "the subject stands in the resource columns, so the user's timeline shows it"
    );
    assert_eq!(event.event(), Some(suspend("u1")));
    assert!(records[0].event().is_none());

    let report = db.store.verify_chain("t1").await.unwrap();
    assert_eq!(report.records, 3);
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // An event altered after the fact breaks the chain like an altered write.
    db.execute(
        "UPDATE scim_changes SET change_json = replace(change_json, 'leaver', 'mover') \
         WHERE tenant_id = 't1' AND tenant_seq = 2",
    )
    .await;
    let report = db.store.verify_chain("t1").await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("record 2: altered")),
        "{:?}",
        report.problems
    );
}

async fn an_event_commits_or_rolls_back_with_the_callers_transaction(db: Arc<TestDb>) {
    create_user(&db, "u1", 0).await;
    let event = AuditEvent::new(
        "governance.decision",
        "Campaign",
        "c-1",
        json!({"user": "u1", "decision": "revoke"}),
    )
    .unwrap();
    let who = ctx("governance:bob@example.com", 1);
    macro_rules! in_tx {
        ($pool:expr, $commit:expr) => {{
            let mut tx = $pool.begin().await.unwrap();
            let seq = append_event_in(&mut *tx, &who, &event).await.unwrap();
            if $commit {
                tx.commit().await.unwrap();
            } else {
                tx.rollback().await.unwrap();
            }
            seq
        }};
    }
    let (rolled_back, committed) = match &db.raw {
        Raw::Sqlite(s, _) => (in_tx!(s.pool(), false), in_tx!(s.pool(), true)),
        Raw::Postgres(s, _, _) => (in_tx!(s.pool(), false), in_tx!(s.pool(), true)),
    };
    assert_eq!(
        (rolled_back, committed),
        (2, 2),
        "a rolled-back event leaves no record and no gap"
    );
    let records = db.store.changes_after("t1", 0, 10).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].event(), Some(event));
    let report = db.store.verify_chain("t1").await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, 2);
}

async fn readers_see_events_typed_and_the_bridge_moves_past_them(db: Arc<TestDb>) {
    create_user(&db, "u1", 0).await;
    db.store
        .append_event(&ctx("console:alice", 1), &suspend("u1"))
        .await
        .unwrap();
    db.store
        .append_event(&ctx("console:alice", 2), &suspend("u-elsewhere"))
        .await
        .unwrap();
    let log = log_of(&db);
    let entries = log
        .read_after(&ChangeCursor::start("t1"), 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0]
            .write()
            .map(|w| (w.resource_id.as_str(), w.operation)),
        Some(("u1", Operation::Create))
    );
    match &entries[1].record {
        Record::Event(e) => {
            assert_eq!(e.kind, "console.action");
            assert_eq!(
                e.subject,
                EventSubject {
                    subject_type: "User".into(),
                    id: "u1".into()
                }
            );
        }
        other => panic!("expected an event, got {other:?}"),
    }
    assert!(entries[1].write().is_none() && entries[2].write().is_none());

    // The bridge consumes all three entries (no gap), queuing only the user that was written.
    let bridge = match &db.raw {
        Raw::Sqlite(s, _) => BridgeStore::Sqlite(s.pool().clone()),
        Raw::Postgres(s, _, _) => BridgeStore::Postgres(s.pool().clone()),
    };
    bridge.migrate().await.unwrap();
    assert_eq!(bridge.ingest(&log, at(3), 100).await.unwrap(), 3);
    assert_eq!(
        bridge.cursors().await.unwrap(),
        [ChangeCursor {
            tenant: "t1".into(),
            seq: 3
        }]
    );
    let queued = bridge
        .claim("w", at(3), std::time::Duration::from_secs(60), 10)
        .await
        .unwrap();
    let users: Vec<_> = queued.iter().map(|w| w.user_id.as_str()).collect();
    assert_eq!(users, ["u1"], "an event about a user queues no work for it");
}

crate::support::both!(
    events_share_the_chain_and_audit_verify_covers_them,
    an_event_commits_or_rolls_back_with_the_callers_transaction,
    readers_see_events_typed_and_the_bridge_moves_past_them,
);
