//! The mass-change guard in the worker, on SQLite and PostgreSQL, time on the manual clock: the
//! share limit (of the tenant's active users), holds kept while the tenant is tripped, a held
//! user re-hired before any decision (its hold superseded, no Graph write), the window sliding
//! on, and a plan-mode worker never holding anything.

use std::sync::Arc;
use std::time::Duration;

use scim_graph_bridge::clock::Clock;
use scim_graph_bridge::config::GuardConfig;
use scim_graph_bridge::directory::UserDirectory;
use scim_graph_bridge::guard::{Decision, HoldStatus};
use scim_graph_bridge::worker::{RoundStats, Worker, WorkerConfig};

use crate::db::{self, TestDb};
use crate::support::{Env, TENANT, env, scim_user};

fn worker(e: &Env, db: &TestDb, apply: bool, guard: GuardConfig) -> Worker {
    let bridge = if apply { e.bridge() } else { e.plan_bridge() };
    Worker::new(
        db.store.clone(),
        db.change_log(),
        bridge,
        e.dir.clone() as Arc<dyn UserDirectory>,
        WorkerConfig {
            owner: "w-guard".into(),
            guard: Some(guard),
            ..WorkerConfig::default()
        },
    )
}

async fn drain(w: &Worker) -> RoundStats {
    let mut total = RoundStats::default();
    for _ in 0..20 {
        let s = w.run_once().await.unwrap();
        total.completed += s.completed;
        total.held += s.held;
        if s.claimed == 0 {
            return total;
        }
    }
    panic!("queue did not drain");
}

fn enabled(e: &Env, graph_id: &str) -> bool {
    e.fake
        .with_directory(|d| d.user(graph_id).unwrap()["accountEnabled"] == true)
}

async fn share_limit_and_supersede(db: TestDb) {
    let e = env().await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let upn = format!("g{i}@x.com");
        ids.push(e.graph_user(&upn));
        e.dir.put(
            TENANT,
            &format!("s{i}"),
            scim_user(&upn, "Engineering", "Dev", true),
        );
        db.change(TENANT, "User", &format!("s{i}"), "create").await;
    }
    let share = GuardConfig {
        max_leaver_share: Some(0.2),
        ..GuardConfig::default()
    };
    let w = worker(&e, &db, true, share.clone());
    assert_eq!(drain(&w).await.completed, 10);

    // Three leave at once: 7 active remain; 20% of (7 + counted) lets one through.
    for i in 0..3 {
        let upn = format!("g{i}@x.com");
        e.dir.put(
            TENANT,
            &format!("s{i}"),
            scim_user(&upn, "Engineering", "Dev", false),
        );
        db.change(TENANT, "User", &format!("s{i}"), "patch").await;
    }
    let s = drain(&w).await;
    assert_eq!((s.completed, s.held), (1, 2), "{s:?}");
    let off: Vec<usize> = (0..3).filter(|i| !enabled(&e, &ids[*i])).collect();
    assert_eq!(off.len(), 1, "{off:?}");
    let holds = db.store.holds(Some(TENANT), true).await.unwrap();
    assert_eq!(holds.len(), 2);
    assert!(
        holds.iter().any(|h| h.reason.contains("limit is 1")),
        "the hold that tripped names the limit: {holds:?}"
    );

    // One held user is re-hired before anyone decides: its plan is no leaver action any more,
    // its hold is superseded, and nothing is written for it.
    let back = &holds[0].user_id;
    let i: usize = back.trim_start_matches('s').parse().unwrap();
    e.fake.clear_log();
    e.dir.put(
        TENANT,
        back,
        scim_user(&format!("g{i}@x.com"), "Engineering", "Dev", true),
    );
    db.change(TENANT, "User", back, "patch").await;
    let s = drain(&w).await;
    assert_eq!((s.completed, s.held), (1, 0), "{s:?}");
    assert!(enabled(&e, &ids[i]));
    assert!(e.fake.writes().is_empty(), "{:?}", e.fake.writes());
    let all = db.store.holds(Some(TENANT), false).await.unwrap();
    let by_user = |u: &str| all.iter().find(|h| h.user_id == u).unwrap().status;
    assert_eq!(by_user(back), HoldStatus::Superseded);
    assert_eq!(by_user(&holds[1].user_id), HoldStatus::Held);

    // Still tripped: a new leaver is held even though an hour has passed.
    e.clock.advance(Duration::from_secs(3600));
    e.dir.put(
        TENANT,
        "s9",
        scim_user("g9@x.com", "Engineering", "Dev", false),
    );
    db.change(TENANT, "User", "s9", "patch").await;
    let s = drain(&w).await;
    assert_eq!(s.held, 1, "{s:?}");
    assert!(enabled(&e, &ids[9]));
    // Rejecting both ends the trip; the next leaver is counted afresh and applied.
    for h in db.store.holds(Some(TENANT), true).await.unwrap() {
        let d = db
            .store
            .decide_hold(&h.id, Decision::Reject, "ops", e.clock.now())
            .await;
        assert_eq!(d.unwrap().unwrap().status, HoldStatus::Rejected);
    }
    assert!(
        db.store
            .decide_hold(&holds[1].id, Decision::Approve, "ops", e.clock.now())
            .await
            .unwrap()
            .is_none(),
        "a decided hold cannot be decided again"
    );
    e.dir.put(
        TENANT,
        "s8",
        scim_user("g8@x.com", "Engineering", "Dev", false),
    );
    db.change(TENANT, "User", "s8", "patch").await;
    let s = drain(&w).await;
    assert_eq!((s.completed, s.held), (1, 0), "{s:?}");
    assert!(!enabled(&e, &ids[8]));
    assert!(enabled(&e, &ids[9]), "rejected: never applied");
    let st = scim_graph_bridge::worker::status(&db.store, db.log.as_ref())
        .await
        .unwrap();
    assert_eq!(st.held, 0);

    // Plan mode calls nothing, so it holds nothing, whatever the limit.
    let planner = worker(
        &e,
        &db,
        false,
        GuardConfig {
            max_leavers: 0,
            ..GuardConfig::default()
        },
    );
    e.dir.put(
        TENANT,
        "s7",
        scim_user("g7@x.com", "Engineering", "Dev", false),
    );
    db.change(TENANT, "User", "s7", "patch").await;
    let s = drain(&planner).await;
    assert_eq!((s.completed, s.held), (1, 0), "{s:?}");
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_share_limit_and_supersede() {
    share_limit_and_supersede(db::sqlite().await).await;
}

#[tokio::test]
async fn postgres_share_limit_and_supersede() {
    if let Some(db) = db::postgres().await {
        share_limit_and_supersede(db).await;
    }
}
