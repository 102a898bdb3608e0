//! Outcome callbacks with the Graph bridge running: an HR record sent through the intake is
//! reported once applied (`job.completed`) and again once the bridge has applied the user's plan
//! in the fake Graph (`provisioning.applied`, naming the job): for a hire and for a leaver. The
//! receiver is a real loopback server checking every signature.

use super::*;
use crate::callbacks::{Receiver, callback_config};
use scim_server::inbound::callback::Callbacks;
use scim_server::inbound::worker::Worker as IntakeWorker;
use scim_server::inbound::{InboundConfig, Intake, accept_bulk_upload, open_queue};

fn database_url(env: &Env) -> String {
    match &env.db {
        Db::Sqlite => format!("sqlite://{}", env.dir.path().join("scim.db").display()),
        Db::Postgres(admin, name) => format!("{}/{name}", admin.trim_end_matches("/postgres")),
    }
}

async fn send(state: &AppState, worker: &IntakeWorker, record: Value) -> String {
    let ctx = scim_server::test_support::request_ctx(
        scim_server::test_support::principal(
            TENANT,
            "hr",
            false,
            scim_server::auth::CredentialKind::StaticToken,
        ),
        None,
        "http://localhost/scim/v2",
    );
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "1", "data": record}],
    });
    let id = accept_bulk_upload(state, &ctx, body)
        .await
        .expect("accepted");
    assert_eq!(worker.run_until_idle(10).await.expect("intake round"), 1);
    id
}

/// The types and job ids of the messages the receiver got so far (all signed).
fn received(receiver: &Receiver) -> Vec<(String, String)> {
    let seen = receiver.seen();
    assert!(seen.iter().all(|r| r.signed), "{seen:?}");
    seen.iter()
        .map(|r| {
            let job = r.body["data"]["jobId"]
                .as_str()
                .or(r.body["data"]["job"]["id"].as_str())
                .unwrap_or_default();
            (
                r.body["type"].as_str().unwrap_or_default().to_string(),
                job.to_string(),
            )
        })
        .collect()
}

async fn hr_outcomes_follow_the_bridge(env: &Env) {
    let clock: Arc<dyn scim_server::clock::Clock> = Arc::new(scim_server::clock::SystemClock);
    let receiver = Receiver::start(clock.clone()).await;
    let queue = open_queue(&database_url(env)).await.expect("queue");
    let callbacks = Arc::new(
        Callbacks::new(
            queue.clone(),
            &[callback_config(&receiver.url)],
            true,
            clock.clone(),
        )
        .expect("callbacks"),
    );
    let intake = Arc::new(Intake::new(queue, InboundConfig::default()));
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(env.store.clone()),
        clock.clone(),
    )
    .expect("auth");
    let state = AppState::with_clock(&env.config, env.store.clone(), Arc::new(auth), clock)
        .with_inbound(intake.clone())
        .with_callbacks(callbacks.clone());
    let intake_worker = IntakeWorker::new(state.clone(), intake);
    let bridge = env
        .ctx
        .clone()
        .with_callbacks(Some(callbacks.clone()))
        .worker(test_worker_config());

    let upn = "lin.hr@contoso.example";
    let hire = json!({"externalId": "E-7", "userName": upn, "title": "Developer",
                      ENTERPRISE: {"department": "Engineering"}});
    let hired = send(&state, &intake_worker, hire).await;
    callbacks.deliver_due("it", 10).await.expect("deliver");
    assert_eq!(
        received(&receiver),
        [("job.completed".to_string(), hired.clone())]
    );
    run_until_idle(&bridge, 50).await.expect("bridge");
    assert!(env.graph(upn).enabled);
    callbacks.deliver_due("it", 10).await.expect("deliver");
    let got = received(&receiver);
    assert_eq!(
        got[1],
        ("provisioning.applied".to_string(), hired.clone()),
        "{got:?}"
    );
    let report = &receiver.seen()[1].body["data"];
    assert_eq!(report["planKind"], "create");
    assert_eq!(report["externalId"], "E-7");

    // A leaver: reported applied, then disabled in Graph and reported again.
    let left = send(
        &state,
        &intake_worker,
        json!({"externalId": "E-7", "userName": upn, "active": false}),
    )
    .await;
    run_until_idle(&bridge, 50).await.expect("bridge");
    assert!(!env.graph(upn).enabled);
    callbacks.deliver_due("it", 10).await.expect("deliver");
    let got = received(&receiver);
    assert_eq!(
        got[2..],
        [
            ("job.completed".to_string(), left.clone()),
            ("provisioning.applied".to_string(), left.clone())
        ],
        "{got:?}"
    );
    assert_eq!(receiver.seen()[3].body["data"]["planKind"], "leaver");
    // nothing left waiting: the bridge's later runs report nothing more
    run_until_idle(&bridge, 50).await.expect("bridge");
    callbacks.deliver_due("it", 10).await.expect("deliver");
    assert_eq!(receiver.seen().len(), 4);
    receiver.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_hr_outcomes_follow_the_bridge() {
    let env = Env::start("apply").await;
    hr_outcomes_follow_the_bridge(&env).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hr_outcomes_follow_the_bridge() {
    let Some(base) = postgres_base().await else {
        return;
    };
    let env = Env::start_on("apply", Some(base)).await;
    hr_outcomes_follow_the_bridge(&env).await;
    env.finish().await;
}
