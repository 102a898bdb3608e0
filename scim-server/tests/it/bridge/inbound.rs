//! HR intake -> change log -> Graph bridge -> the fake Graph: a hire, a mover and a leaver sent
//! as Entra-format bulkUpload records reach Graph like SCIM writes do; a record re-sent unchanged
//! gives the bridge nothing to do. The intake worker and the bridge worker are driven in rounds
//! until idle (no sleeping).

use super::*;
use scim_server::inbound::worker::Worker as IntakeWorker;
use scim_server::inbound::{InboundConfig, Intake, accept_bulk_upload, job, open_queue};

fn database_url(env: &Env) -> String {
    match &env.db {
        Db::Sqlite => format!("sqlite://{}", env.dir.path().join("scim.db").display()),
        Db::Postgres(admin, name) => format!("{}/{name}", admin.trim_end_matches("/postgres")),
    }
}

/// Sends one record through the intake and applies it; returns its outcome.
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
    let view = job(state, &ctx, &id).await.expect("job");
    assert_eq!(view.status, "completed", "{view:?}");
    view.operations[0].outcome.clone()
}

async fn hr_joiner_mover_leaver(env: &Env) {
    let intake = Arc::new(Intake::new(
        open_queue(&database_url(env)).await.expect("intake queue"),
        InboundConfig::default(),
    ));
    let clock = Arc::new(scim_server::clock::SystemClock);
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(env.store.clone()),
        clock.clone(),
    )
    .expect("auth");
    let state = AppState::with_clock(&env.config, env.store.clone(), Arc::new(auth), clock)
        .with_inbound(intake.clone());
    let worker = IntakeWorker::new(state.clone(), intake);
    let ada = "ada.hr@contoso.example";
    let hire = json!({
        "schemas": [USER_URN, ENTERPRISE],
        "externalId": "E-1001",
        "userName": ada,
        "title": "Developer",
        ENTERPRISE: {"department": "Engineering", "employeeNumber": "E-1001"}
    });
    assert_eq!(send(&state, &worker, hire.clone()).await, "created");
    env.drain().await;
    let v = env.graph(ada);
    assert!(
        v.enabled,
        "a new hire is active when the record leaves `active` out"
    );
    assert_eq!(v.department.as_deref(), Some("Engineering"));
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);

    // Re-sent unchanged: no change record, so the bridge has nothing to ingest.
    assert_eq!(send(&state, &worker, hire.clone()).await, "unchanged");
    assert_eq!(env.drain().await.ingested, 0);

    // Mover: the HR record changes department and title.
    let mut mover = hire.clone();
    mover["title"] = json!("Support Agent");
    mover[ENTERPRISE]["department"] = json!("IT");
    assert_eq!(send(&state, &worker, mover).await, "updated");
    env.drain().await;
    let v = env.graph(ada);
    assert_eq!(v.department.as_deref(), Some("IT"));
    assert_grants(&v, &["all-staff", "support"], &["e3"], &["helpdesk"]);

    // Leaver: `active: false` disables the account in Graph.
    let leaver = json!({"externalId": "E-1001", "userName": ada, "active": false});
    assert_eq!(send(&state, &worker, leaver).await, "updated");
    env.drain().await;
    assert!(!env.graph(ada).enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_hr_records_reach_graph() {
    let env = Env::start("apply").await;
    hr_joiner_mover_leaver(&env).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hr_records_reach_graph() {
    let Some(base) = postgres_base().await else {
        return;
    };
    let env = Env::start_on("apply", Some(base)).await;
    hr_joiner_mover_leaver(&env).await;
    env.finish().await;
}
