//! Outbox consumption, leases, retries and dead letters on SQLite and PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use scim_graph_bridge::clock::Clock;
use scim_graph_bridge::directory::UserDirectory;
use scim_graph_bridge::fake_graph::Fault;
use scim_graph_bridge::worker::{self, RoundStats, Worker, WorkerConfig};

use crate::db::{self, TestDb};
use crate::support::{Env, TENANT, env, scim_user};

fn worker(e: &Env, db: &TestDb, owner: &str, apply: bool) -> Worker {
    let bridge = if apply { e.bridge() } else { e.plan_bridge() };
    let cfg = WorkerConfig {
        owner: owner.into(),
        max_attempts: 3,
        base_backoff: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    Worker::new(
        db.store.clone(),
        db.change_log(),
        bridge,
        e.dir.clone() as Arc<dyn UserDirectory>,
        cfg,
    )
}

/// Runs rounds until nothing is claimed (bounded).
async fn drain(w: &Worker) -> RoundStats {
    let mut total = RoundStats::default();
    for _ in 0..20 {
        let s = w.run_once().await.unwrap();
        total.ingested += s.ingested;
        total.claimed += s.claimed;
        total.completed += s.completed;
        total.retried += s.retried;
        total.dead_lettered += s.dead_lettered;
        if s.claimed == 0 {
            return total;
        }
    }
    panic!("queue did not drain");
}

async fn outbox_changes_reach_graph(db: TestDb) {
    let e = env().await;
    let u1 = e.graph_user("w1@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("w1@x.com", "Engineering", "Dev", true),
    );
    e.dir.put(
        TENANT,
        "s2",
        scim_user("w2@x.com", "IT", "Support Agent", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    db.change(TENANT, "User", "s2", "create").await;
    db.change(TENANT, "Group", "g1", "patch").await;
    db.change(TENANT, "User", "s1", "patch").await;
    db.change(TENANT, "User", "s1", "patch").await;
    let w = worker(&e, &db, "w-a", true);
    let s = drain(&w).await;
    assert_eq!(s.ingested, 5);
    assert_eq!(
        s.completed, 2,
        "three s1 changes coalesce into one reconcile: {s:?}"
    );
    let plans = db.store.plans_for_user(TENANT, "s1", 10).await.unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].status, "applied");
    assert!(
        plans[0]
            .report
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .all(|s| s.outcome.is_success())
    );
    e.fake.with_directory(|d| {
        assert_eq!(d.groups_of(&u1).len(), 2);
        let u2 = d.user_by_upn("w2@x.com").expect("created");
        assert_eq!(d.roles_of(&u2).len(), 1);
    });
    let st = worker::status(&db.store, db.log.as_ref()).await.unwrap();
    assert_eq!((st.pending, st.dead_letters), (0, 0));
    assert_eq!(st.cursors[0].last_seq, 5);
    assert_eq!(st.cursors[0].head_seq, 5);
    // a later change is picked up; nothing changed, so no writes
    e.fake.clear_log();
    db.change(TENANT, "User", "s1", "replace").await;
    let s = drain(&w).await;
    assert_eq!((s.ingested, s.completed), (1, 1));
    assert!(e.fake.writes().is_empty());
    // the leaver arrives as a DELETE row
    e.dir.remove(TENANT, "s1");
    db.change(TENANT, "User", "s1", "delete").await;
    drain(&w).await;
    e.fake.with_directory(|d| {
        assert_eq!(d.user(&u1).unwrap()["accountEnabled"], false);
        assert!(d.groups_of(&u1).is_empty());
    });
    db.cleanup().await;
}

async fn plan_mode_records_plans_only(db: TestDb) {
    let e = env().await;
    e.dir.put(
        TENANT,
        "s1",
        scim_user("p@x.com", "Engineering", "Dev", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    let w = worker(&e, &db, "w-p", false);
    drain(&w).await;
    let plans = db.store.plans_for_user(TENANT, "s1", 10).await.unwrap();
    assert_eq!(
        (
            plans.len(),
            plans[0].mode.as_str(),
            plans[0].status.as_str()
        ),
        (1, "plan", "planned")
    );
    assert!(e.fake.requests().is_empty());
    let p = worker::plan_for_user(&db.store, &e.plan_bridge(), e.dir.as_ref(), TENANT, "s1")
        .await
        .unwrap();
    assert!(!p.steps.is_empty());
    db.cleanup().await;
}

async fn failures_back_off_then_dead_letter_and_retry(db: TestDb) {
    let e = env().await;
    let uid = e.graph_user("f@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("f@x.com", "Engineering", "Dev", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    e.fake.inject(Fault {
        path_contains: "/members/$ref".into(),
        times: 10_000,
        status: 503,
        retry_after: Some("1".into()),
        ..Fault::default()
    });
    let w = worker(&e, &db, "w-f", true);
    let s = w.run_once().await.unwrap();
    assert_eq!((s.claimed, s.retried), (1, 1));
    // not due yet: nothing is claimed until the backoff has passed
    assert_eq!(w.run_once().await.unwrap().claimed, 0);
    let st = worker::status(&db.store, db.log.as_ref()).await.unwrap();
    assert_eq!((st.pending, st.retrying), (1, 1));
    let mut dead = 0;
    for _ in 0..5 {
        e.clock.advance(Duration::from_secs(3600));
        dead += w.run_once().await.unwrap().dead_lettered;
    }
    assert_eq!(dead, 1);
    let letters = worker::dead_letters(&db.store, Some(TENANT)).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].user_id, "s1");
    assert_eq!(letters[0].attempts, 3);
    assert!(letters[0].reason.contains("503"), "{}", letters[0].reason);
    // the operator fixes the cause and replays
    e.fake.clear_faults();
    assert!(
        worker::retry_dead_letter(&db.store, &letters[0].id, e.clock.now())
            .await
            .unwrap()
    );
    assert!(
        !worker::retry_dead_letter(&db.store, &letters[0].id, e.clock.now())
            .await
            .unwrap()
    );
    let s = drain(&w).await;
    assert_eq!(s.completed, 1);
    assert!(
        worker::dead_letters(&db.store, None)
            .await
            .unwrap()
            .is_empty()
    );
    e.fake
        .with_directory(|d| assert_eq!(d.groups_of(&uid).len(), 2));
    db.cleanup().await;
}

async fn permanent_failure_is_dead_lettered_at_once(db: TestDb) {
    let e = env().await;
    e.graph_user("nolic@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("nolic@x.com", "Engineering", "Dev", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    e.fake.inject(Fault {
        path_contains: "/assignLicense".into(),
        times: 10_000,
        status: 400,
        message: Some("Subscription with SKU x does not have any available licenses.".into()),
        ..Fault::default()
    });
    let w = worker(&e, &db, "w-perm", true);
    let s = drain(&w).await;
    assert_eq!(s.dead_lettered, 1);
    let letters = worker::dead_letters(&db.store, None).await.unwrap();
    assert!(
        letters[0].reason.starts_with("permanent:")
            && letters[0].reason.contains("available licenses"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        e.fake
            .writes()
            .iter()
            .filter(|w| w.path.ends_with("/assignLicense"))
            .count(),
        1,
        "never hot-looped"
    );
    db.cleanup().await;
}

async fn killed_worker_is_taken_over_after_its_lease(db: TestDb) {
    let e = env().await;
    let uid = e.graph_user("k@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("k@x.com", "IT", "Support Agent", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    // worker A hangs on the license call, after attributes and group adds were applied
    e.fake.inject(Fault {
        path_contains: "/assignLicense".into(),
        times: 1,
        hang: true,
        ..Fault::default()
    });
    let a = Arc::new(worker(&e, &db, "w-a", true));
    let task = tokio::spawn({
        let a = a.clone();
        async move { a.run_once().await }
    });
    let mut hung = false;
    for _ in 0..500 {
        if e.fake.requests().iter().any(|r| r.status == 0) {
            hung = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(hung, "worker A never reached the license call");
    task.abort(); // the crash
    let _ = task.await;
    e.fake
        .with_directory(|d| assert!(d.licenses_of(&uid).is_empty()));
    let b = worker(&e, &db, "w-b", true);
    assert_eq!(
        b.run_once().await.unwrap().claimed,
        0,
        "A's lease still holds"
    );
    e.clock.advance(Duration::from_secs(301));
    let s = drain(&b).await;
    assert_eq!(s.completed, 1);
    e.fake.with_directory(|d| {
        assert_eq!(d.groups_of(&uid).len(), 2);
        assert_eq!(d.licenses_of(&uid).len(), 1);
        assert_eq!(d.roles_of(&uid).len(), 1);
    });
    // the re-run recomputed the plan: group adds already done were not repeated
    let adds: Vec<_> = e
        .fake
        .writes()
        .into_iter()
        .filter(|w| w.path.contains("/members/$ref") && w.status == 204)
        .collect();
    assert_eq!(adds.len(), 2);
    db.cleanup().await;
}

async fn reconcile_all_queues_everyone(db: TestDb) {
    let e = env().await;
    for i in 0..7 {
        e.dir.put(
            TENANT,
            &format!("u{i}"),
            scim_user(&format!("a{i}@x.com"), "Sales", "Rep", true),
        );
    }
    assert_eq!(
        worker::reconcile_all(&db.store, e.dir.as_ref(), TENANT, e.clock.now())
            .await
            .unwrap(),
        7
    );
    assert_eq!(
        worker::status(&db.store, db.log.as_ref())
            .await
            .unwrap()
            .pending,
        7
    );
    let s = drain(&worker(&e, &db, "w", true)).await;
    assert_eq!(s.completed, 7);
    e.fake
        .with_directory(|d| assert_eq!(d.members(&e.g_all).len(), 7));
    db.cleanup().await;
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::db::sqlite().await).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = super::db::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

async fn leaver_is_hard_deleted_when_retention_passes(db: TestDb) {
    let e = crate::support::env_with(true, "[leaver]\ndelete_after_days = 30\n").await;
    let uid = e.graph_user("h@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("h@x.com", "Engineering", "Dev", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    let w = worker(&e, &db, "w-h", true);
    drain(&w).await;
    e.dir.remove(TENANT, "s1");
    db.change(TENANT, "User", "s1", "delete").await;
    drain(&w).await;
    e.fake.with_directory(|d| assert!(!d.is_deleted(&uid)));
    // the leaver stays queued for its hard delete
    assert_eq!(
        worker::status(&db.store, db.log.as_ref())
            .await
            .unwrap()
            .pending,
        1
    );
    e.clock.advance(Duration::from_secs(29 * 86_400));
    assert_eq!(w.run_once().await.unwrap().claimed, 0);
    e.clock.advance(Duration::from_secs(2 * 86_400));
    let s = drain(&w).await;
    assert_eq!(s.completed, 1);
    e.fake.with_directory(|d| assert!(d.is_deleted(&uid)));
    assert_eq!(
        worker::status(&db.store, db.log.as_ref())
            .await
            .unwrap()
            .pending,
        0
    );
    assert_eq!(
        db.store.get_link(TENANT, "s1").await.unwrap().graph_id,
        None
    );
    db.cleanup().await;
}

both!(outbox_changes_reach_graph);
both!(leaver_is_hard_deleted_when_retention_passes);
both!(plan_mode_records_plans_only);
both!(failures_back_off_then_dead_letter_and_retry);
both!(permanent_failure_is_dead_lettered_at_once);
both!(killed_worker_is_taken_over_after_its_lease);
both!(reconcile_all_queues_everyone);
both!(ingestion_waits_at_a_gap_in_the_change_log);
both!(concurrent_ingestion_consumes_each_entry_once);

/// A record written but not yet visible (a gap) holds the cursor before it: nothing after it is
/// consumed until it appears, and then nothing is lost.
async fn ingestion_waits_at_a_gap_in_the_change_log(db: TestDb) {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    for id in ["a", "b", "c"] {
        db.change(TENANT, "User", id, "create").await;
    }
    let hidden = db.log.hide(TENANT, 2).expect("entry 2");
    assert_eq!(db.store.ingest(db.log.as_ref(), now, 100).await.unwrap(), 1);
    assert_eq!(db.store.cursors().await.unwrap()[0].seq, 1);
    assert_eq!(
        worker::status(&db.store, db.log.as_ref())
            .await
            .unwrap()
            .pending,
        1
    );
    db.log.reveal(hidden);
    assert_eq!(db.store.ingest(db.log.as_ref(), now, 100).await.unwrap(), 2);
    let st = worker::status(&db.store, db.log.as_ref()).await.unwrap();
    assert_eq!(
        (st.pending, st.cursors[0].last_seq, st.cursors[0].head_seq),
        (3, 3, 3)
    );
    db.cleanup().await;
}

/// Two workers ingesting at once: the cursor moves by compare-and-swap, so every entry is
/// counted once however the rounds interleave.
async fn concurrent_ingestion_consumes_each_entry_once(db: TestDb) {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    for i in 0..40 {
        db.change(TENANT, "User", &format!("u{}", i % 10), "patch")
            .await;
        db.change("t2", "Group", &format!("g{i}"), "patch").await;
    }
    let mut consumed = 0;
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            db.store.ingest(db.log.as_ref(), now, 7),
            db.store.ingest(db.log.as_ref(), now, 7)
        );
        consumed += a.unwrap() + b.unwrap();
    }
    assert_eq!(consumed, 80);
    let st = worker::status(&db.store, db.log.as_ref()).await.unwrap();
    assert_eq!(
        st.pending, 10,
        "one coalesced work row per user, none for groups"
    );
    assert!(
        st.cursors
            .iter()
            .all(|c| c.last_seq == 40 && c.head_seq == 40),
        "{st:?}"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn two_postgres_workers_never_apply_the_same_step_twice() {
    let Some(db) = db::postgres().await else {
        return;
    };
    let e = env().await;
    for i in 0..24 {
        e.dir.put(
            TENANT,
            &format!("u{i:02}"),
            scim_user(
                &format!("c{i}@x.com"),
                if i % 2 == 0 { "Engineering" } else { "Sales" },
                "Dev",
                true,
            ),
        );
        e.graph_user(&format!("c{i}@x.com"));
        db.change(TENANT, "User", &format!("u{i:02}"), "create")
            .await;
    }
    let mut a_cfg = WorkerConfig {
        owner: "A".into(),
        batch: 3,
        ..WorkerConfig::default()
    };
    let a = Worker::new(
        db.store.clone(),
        db.change_log(),
        e.bridge(),
        e.dir.clone() as Arc<dyn UserDirectory>,
        a_cfg.clone(),
    );
    a_cfg.owner = "B".into();
    let b = Worker::new(
        db.store.clone(),
        db.change_log(),
        e.bridge(),
        e.dir.clone() as Arc<dyn UserDirectory>,
        a_cfg,
    );
    let mut claimed = (0, 0);
    for _ in 0..40 {
        let (sa, sb) = tokio::join!(a.run_once(), b.run_once());
        let (sa, sb) = (sa.unwrap(), sb.unwrap());
        claimed.0 += sa.claimed;
        claimed.1 += sb.claimed;
        if sa.claimed == 0 && sb.claimed == 0 {
            break;
        }
    }
    assert_eq!(
        claimed.0 + claimed.1,
        24,
        "each user claimed exactly once: {claimed:?}"
    );
    assert!(
        claimed.0 > 0 && claimed.1 > 0,
        "both workers took part: {claimed:?}"
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for w in e.fake.writes() {
        let key = format!(
            "{} {} {}",
            w.method,
            w.path,
            w.body.map(|b| b.to_string()).unwrap_or_default()
        );
        *counts.entry(key).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "{dups:?}");
    assert_eq!(
        counts.len(),
        24 + 24 + 12 * 2,
        "24 attribute PATCHes, 24 all-staff adds, 12 eng adds + 12 license calls"
    );
    for i in 0..24 {
        assert_eq!(
            db.store
                .plans_for_user(TENANT, &format!("u{i:02}"), 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    db.cleanup().await;
}

#[tokio::test]
async fn run_loop_processes_until_shutdown_and_leases_extend() {
    let db = db::sqlite().await;
    let e = env().await;
    e.dir.put(
        TENANT,
        "s1",
        scim_user("loop@x.com", "Engineering", "Dev", true),
    );
    db.change(TENANT, "User", "s1", "create").await;
    let w = worker(&e, &db, "w-loop", true);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let w = w.clone();
        async move {
            w.run(async {
                let _ = rx.await;
            })
            .await
        }
    });
    let mut planned = false;
    for _ in 0..500 {
        if !db
            .store
            .plans_for_user(TENANT, "s1", 1)
            .await
            .unwrap()
            .is_empty()
        {
            planned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(planned);
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    // extend_lease only works for the holder
    db.change(TENANT, "User", "s1", "patch").await;
    db.store
        .ingest(db.log.as_ref(), e.clock.now(), 100)
        .await
        .unwrap();
    let items = db
        .store
        .claim("me", e.clock.now(), Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let later = e.clock.now() + Duration::from_secs(600);
    assert!(db.store.extend_lease(&items[0], "me", later).await.unwrap());
    assert!(
        !db.store
            .extend_lease(&items[0], "other", later)
            .await
            .unwrap()
    );
    e.clock.advance(Duration::from_secs(120));
    assert!(
        db.store
            .claim("other", e.clock.now(), Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "extended lease holds"
    );
    db.cleanup().await;
}
