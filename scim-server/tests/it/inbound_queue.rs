//! The intake queue and worker in process, on SQLite and PostgreSQL, with time driven through a
//! [`ManualClock`] (no sleeping): transient failures are retried after a backoff with jitter and
//! become a dead letter after the configured attempts; a dead letter retried completes; a job
//! whose worker died is taken again once its lease expires; re-applying records is idempotent.
//!
//! Transient failures are real database errors: a trigger refuses inserts into `resources`.

use crate::support::{Raw, TestDb, postgres_base, run};
use scim_server::auth::{AuthConfig, AuthService, CredentialKind, token_store};
use scim_server::clock::{Clock, ManualClock};
use scim_server::config::Config;
use scim_server::inbound::queue::{NewJob, NewOperation, status};
use scim_server::inbound::worker::{JobEnd, Worker};
use scim_server::inbound::{InboundConfig, Intake, accept_bulk_upload, job, open_queue};
use scim_server::service::RequestCtx;
use scim_server::state::AppState;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const TENANT: &str = "default";

pub(crate) struct Env {
    pub(crate) state: AppState,
    pub(crate) intake: Arc<Intake>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) worker: Worker,
    pub(crate) ctx: RequestCtx,
}

async fn env(db: &TestDb) -> Env {
    env_with(db, Vec::new()).await
}

/// An intake on `db` with a manual clock and the event `sources`.
pub(crate) async fn env_with(
    db: &TestDb,
    sources: Vec<scim_server::inbound::events::Source>,
) -> Env {
    env_configured(db, sources, |_| {}).await
}

/// [`env_with`], with `configure` applied to the intake's settings.
pub(crate) async fn env_configured(
    db: &TestDb,
    sources: Vec<scim_server::inbound::events::Source>,
    configure: impl FnOnce(&mut InboundConfig),
) -> Env {
    let url = match &db.raw {
        Raw::Sqlite(_, dir) => format!("sqlite://{}", dir.path().join("scim.db").display()),
        Raw::Postgres(_, _, name) => format!("{}/{name}", postgres_base()),
    };
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap(),
    ));
    let mut cfg = InboundConfig {
        max_attempts: 3,
        lease_seconds: 60,
        backoff_base_seconds: 10,
        backoff_max_seconds: 100,
        ..InboundConfig::default()
    };
    configure(&mut cfg);
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let intake = Arc::new(
        Intake::new(open_queue(&url).await.unwrap(), cfg)
            .with_sources(sources)
            .with_clock(dyn_clock.clone()),
    );
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(db.store.clone()),
        dyn_clock.clone(),
    )
    .unwrap();
    let state = AppState::with_clock(
        &Config::default(),
        db.store.clone(),
        Arc::new(auth),
        dyn_clock,
    )
    .with_inbound(intake.clone());
    let ctx = scim_server::test_support::request_ctx(
        scim_server::test_support::principal(
            TENANT,
            "hr-connector",
            false,
            CredentialKind::StaticToken,
        ),
        Some("req-1".into()),
        "http://localhost/scim/v2",
    );
    Env {
        worker: Worker::new(state.clone(), intake.clone()),
        state,
        intake,
        clock,
        ctx,
    }
}

fn upload(records: &[Value]) -> Value {
    let ops: Vec<Value> = records
        .iter()
        .map(|d| json!({"method": "POST", "path": "/Users", "bulkId": d["externalId"], "data": d}))
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
}

async fn refuse_inserts(db: &TestDb, on: bool) {
    match (&db.raw, on) {
        (Raw::Sqlite(..), true) => {
            db.execute(
                "CREATE TRIGGER refuse_inserts BEFORE INSERT ON resources \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
            .await
        }
        (Raw::Sqlite(..), false) => db.execute("DROP TRIGGER refuse_inserts").await,
        (Raw::Postgres(..), true) => {
            db.execute(
                "CREATE FUNCTION refuse_insert() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION \
                 'injected failure'; END $$ LANGUAGE plpgsql",
            )
            .await;
            db.execute(
                "CREATE TRIGGER refuse_inserts BEFORE INSERT ON resources FOR EACH ROW \
                 EXECUTE FUNCTION refuse_insert()",
            )
            .await
        }
        (Raw::Postgres(..), false) => db.execute("DROP TRIGGER refuse_inserts ON resources").await,
    }
}

async fn retries_backoff_dead_letter_and_lease(db: Arc<TestDb>) {
    let e = env(&db).await;
    let q = &e.intake.queue;
    let advance = |s: i64| e.clock.advance(time::Duration::seconds(s));

    // Transient failures: retried after a backoff, dead after max_attempts (3).
    refuse_inserts(&db, true).await;
    let id = accept_bulk_upload(
        &e.state,
        &e.ctx,
        upload(&[json!({"externalId": "1", "userName": "one"})]),
    )
    .await
    .unwrap();
    let (claimed, end) = e.worker.run_once().await.unwrap().unwrap();
    assert_eq!(claimed, id);
    assert!(matches!(end, JobEnd::RetryLater(_)), "{end:?}");
    let view = job(&e.state, &e.ctx, &id).await.unwrap();
    assert_eq!(view.status, status::QUEUED);
    assert_eq!(view.attempts, 1);
    assert_eq!(view.counts.pending, 1);
    assert!(view.last_error.is_some());
    // The first backoff is 10 s scaled by jitter into [5 s, 10 s].
    advance(4);
    assert!(
        e.worker.run_once().await.unwrap().is_none(),
        "not before the backoff"
    );
    advance(6);
    let (_, end) = e.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(end, JobEnd::RetryLater(_)), "{end:?}");
    advance(20); // the second backoff: [10 s, 20 s]
    let (_, end) = e.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(end, JobEnd::Buried(_)), "{end:?}");
    let view = job(&e.state, &e.ctx, &id).await.unwrap();
    assert_eq!((view.status.as_str(), view.attempts), (status::DEAD, 3));
    advance(1000);
    assert!(
        e.worker.run_once().await.unwrap().is_none(),
        "dead letters stay put"
    );
    let dead = q.jobs_in(status::DEAD, Some(TENANT), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(q.status(e.clock.now()).await.unwrap().dead, 1);

    // Retried once the database works again: completed.
    refuse_inserts(&db, false).await;
    assert!(q.requeue_dead(&id, e.clock.now()).await.unwrap());
    assert!(
        !q.requeue_dead(&id, e.clock.now()).await.unwrap(),
        "only dead letters"
    );
    let (_, end) = e.worker.run_once().await.unwrap().unwrap();
    assert_eq!(end, JobEnd::Finished);
    let view = job(&e.state, &e.ctx, &id).await.unwrap();
    assert_eq!(view.status, status::COMPLETED);
    assert_eq!(view.operations[0].outcome, "created");

    // A worker that died holding a job: the job is taken again once the lease expires.
    let crashed = NewJob {
        id: "job-of-a-dead-worker".into(),
        tenant: TENANT.into(),
        principal: "hr-connector".into(),
        request_id: None,
        source: "bulkUpload".into(),
        operations: vec![NewOperation {
            bulk_id: None,
            external_id: Some("2".into()),
            data: json!({"externalId": "2", "userName": "two"}),
        }],
    };
    q.enqueue(&crashed, e.clock.now()).await.unwrap();
    let ghost = q
        .claim("ghost", e.clock.now(), Duration::from_secs(60), 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ghost.id, crashed.id);
    assert!(
        e.worker.run_once().await.unwrap().is_none(),
        "leased elsewhere"
    );
    let s = q.status(e.clock.now()).await.unwrap();
    assert_eq!((s.queued, s.running), (0, 1));
    advance(61);
    let (taken, end) = e.worker.run_once().await.unwrap().unwrap();
    assert_eq!(
        (taken.as_str(), end),
        (crashed.id.as_str(), JobEnd::Finished)
    );
    assert_eq!(
        job(&e.state, &e.ctx, &crashed.id).await.unwrap().attempts,
        2
    );
    // The dead worker's late calls change nothing: its lease is gone.
    assert!(
        !q.extend_lease(&crashed.id, "ghost", e.clock.now())
            .await
            .unwrap()
    );

    // Applying the same records again: unchanged, no write.
    let again = accept_bulk_upload(
        &e.state,
        &e.ctx,
        upload(&[
            json!({"externalId": "1", "userName": "one"}),
            json!({"externalId": "2", "userName": "two"}),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(e.worker.run_until_idle(10).await.unwrap(), 1);
    let view = job(&e.state, &e.ctx, &again).await.unwrap();
    assert_eq!(view.counts.unchanged, 2, "{view:?}");
    let s = q.status(e.clock.now()).await.unwrap();
    assert_eq!((s.queued, s.running, s.dead), (0, 0, 0));

    // Another tenant cannot read the job.
    let p = e.ctx.principal();
    let other = scim_server::test_support::request_ctx(
        scim_server::test_support::principal("other", p.id(), false, p.kind()),
        e.ctx.request_id().map(str::to_string),
        e.ctx.base_url(),
    );
    assert_eq!(
        job(&e.state, &other, &again).await.unwrap_err().status(),
        404
    );
    // Read-only credentials may not upload.
    let reader = scim_server::test_support::request_ctx(
        scim_server::test_support::principal(p.tenant(), p.id(), true, p.kind()),
        e.ctx.request_id().map(str::to_string),
        e.ctx.base_url(),
    );
    let err = accept_bulk_upload(&e.state, &reader, upload(&[json!({"externalId": "3"})]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 403);
}

#[tokio::test]
async fn sqlite_queue_retries_dead_letters_and_leases() {
    run(
        TestDb::sqlite().await,
        retries_backoff_dead_letter_and_lease,
    )
    .await;
}

#[tokio::test]
async fn postgres_queue_retries_dead_letters_and_leases() {
    run(
        TestDb::postgres().await,
        retries_backoff_dead_letter_and_lease,
    )
    .await;
}

/// An idle worker's poll (nothing due) does not write, so it never waits for the database's
/// write lock: on SQLite, a poll behind a long run of writes used to wait out its busy timeout
/// and fail the worker's round.
#[tokio::test]
async fn sqlite_an_idle_poll_does_not_wait_for_writers() {
    use sqlx::Connection;
    let db = TestDb::sqlite().await;
    let e = env(&db).await;
    let Raw::Sqlite(_, dir) = &db.raw else {
        unreachable!()
    };
    let mut writer = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.path().join("scim.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let polled = tokio::time::timeout(
        Duration::from_secs(3),
        e.intake
            .queue
            .claim("idle", e.clock.now(), Duration::from_secs(60), 3),
    )
    .await
    .expect("the poll waited for the write lock");
    assert!(polled.unwrap().is_none());
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
}
