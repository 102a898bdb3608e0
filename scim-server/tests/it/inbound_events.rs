//! HR events on SQLite and PostgreSQL, in process, time driven by a [`ManualClock`]: Standard
//! Webhooks signatures (good, bad, stale, rotated secret, unsigned: 401 and nothing queued),
//! replay of an event id (nothing queued), the mapping applied, a future-dated hire created
//! inactive and activated at its start, a future termination applied at its time, and a later
//! termination superseding a pending one. The HTTP route is exercised through the router.

use crate::inbound_queue::{Env, env_configured};
use crate::support::{TestDb, run};
use axum::body::Body;
use base64::Engine;
use scim_server::clock::Clock;
use scim_server::config::SecretString;
use scim_server::inbound::events::{Signed, SourceConfig, accept_event};
use scim_server::inbound::signature::SigningKey;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const MAPPING: &str = r#"
[attributes]
externalId = { from = "employeeId" }
userName = { from = "email", transform = ["trim", "lowercase"] }
"name.givenName" = { from = "firstName" }
"name.familyName" = { from = "lastName" }
displayName = { concat = ["firstName", "lastName"] }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "dept", lookup = "departments" }

[lookup.departments]
"100" = "Engineering"
"200" = "IT"
"#;

fn secret(byte: u8) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

async fn events_env(db: &TestDb) -> Env {
    events_env_configured(db, |_| {}).await
}

async fn events_env_configured(
    db: &TestDb,
    configure: impl FnOnce(&mut scim_server::inbound::InboundConfig),
) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("workday.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let source = SourceConfig {
        tenant: "default".into(),
        source: "workday".into(),
        // rotation: the old and the new secret are both accepted
        secrets: vec![SecretString::new(secret(1)), SecretString::new(secret(2))],
        mapping,
    }
    .load()
    .unwrap();
    env_configured(db, vec![source], configure).await
}

/// Signs `body` with secret `byte` at the clock's time (offset by `skew` seconds).
fn sign(e: &Env, byte: u8, msg: &str, body: &Value, skew: i64) -> (String, String, Vec<u8>) {
    let bytes = body.to_string().into_bytes();
    let ts = e.clock.now().unix_timestamp() + skew;
    let sig = SigningKey::parse(&secret(byte))
        .unwrap()
        .sign(msg, ts, &bytes);
    (ts.to_string(), sig, bytes)
}

async fn post(e: &Env, byte: u8, msg: &str, body: &Value) -> scim_core::Result<Value> {
    let (ts, sig, bytes) = sign(e, byte, msg, body, 0);
    let signed = Signed {
        id: Some(msg),
        timestamp: Some(&ts),
        signature: Some(&sig),
    };
    accept_event(&e.state, "default", "workday", signed, &bytes)
        .await
        .map(|r| serde_json::to_value(r).unwrap())
}

async fn user(e: &Env, external: &str) -> Value {
    let rt = e.state.registry.resource_type("User").unwrap();
    let r = e
        .state
        .store
        .find_by_external_id("default", rt, external)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no user {external}"));
    r.to_json(&e.state.registry, None)
}

async fn drain(e: &Env) -> usize {
    e.worker.run_until_idle(20).await.unwrap()
}

async fn signed_events_and_effective_dates(db: Arc<TestDb>) {
    let e = events_env(&db).await;
    let day = time::Duration::days(1);
    let at = |d: time::Duration| {
        (e.clock.now() + d)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let hire = json!({"id": "evt-1", "type": "hire", "effective": at(day * 2), "employee": {
        "employeeId": "E7", "email": " Grace@Contoso.example", "firstName": "Grace",
        "lastName": "Hopper", "dept": "100"}});

    // Refused: unsigned, bad signature (unknown secret), stale, other source; nothing queued.
    let (ts, sig, bytes) = sign(&e, 1, "m1", &hire, 0);
    let (stale_ts, stale_sig, _) = sign(&e, 1, "m1", &hire, -301);
    let (_, bad_sig, _) = sign(&e, 9, "m1", &hire, 0);
    let cases = [
        ("workday", Signed::default()),
        (
            "workday",
            Signed {
                id: Some("m1"),
                timestamp: Some(&ts),
                signature: Some(&bad_sig),
            },
        ),
        (
            "workday",
            Signed {
                id: Some("m1"),
                timestamp: Some(&stale_ts),
                signature: Some(&stale_sig),
            },
        ),
        (
            "bamboohr",
            Signed {
                id: Some("m1"),
                timestamp: Some(&ts),
                signature: Some(&sig),
            },
        ),
    ];
    for (source, signed) in cases {
        let err = accept_event(&e.state, "default", source, signed, &bytes)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 401, "{source}: {}", err.detail());
    }
    assert_eq!(drain(&e).await, 0, "nothing was queued");

    // A future-dated hire, signed with the old secret (rotation): created now, inactive.
    let reply = post(&e, 1, "m1", &hire).await.unwrap();
    assert_eq!(reply["duplicate"], false);
    assert_eq!(reply["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(drain(&e).await, 1, "only the pre-hire record is due");
    let s = e.intake.queue.status(e.clock.now()).await.unwrap();
    assert_eq!(
        (s.queued, s.scheduled),
        (0, 1),
        "a scheduled job is not a backlog"
    );
    let grace = user(&e, "E7").await;
    assert_eq!(grace["active"], false, "pre-hire: inactive until the start");
    assert_eq!(grace["userName"], "grace@contoso.example");
    assert_eq!(grace["displayName"], "Grace Hopper");
    assert_eq!(
        grace["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Engineering"
    );
    // Replayed (a new webhook id, the same event id): nothing queued.
    let again = post(&e, 2, "m2", &hire).await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert!(again["jobs"].as_array().unwrap().is_empty());
    // The start arrives.
    e.clock.advance(day);
    assert_eq!(drain(&e).await, 0);
    e.clock.advance(day);
    assert_eq!(drain(&e).await, 1);
    assert_eq!(user(&e, "E7").await["active"], true);

    // A termination next week, then moved to the week after: the first one is superseded.
    let terminate = |id: &str, when: time::Duration| json!({"id": id, "type": "terminate", "effective": at(when), "employee": {"employeeId": "E7"}});
    post(&e, 2, "m3", &terminate("evt-2", day * 7))
        .await
        .unwrap();
    post(&e, 2, "m4", &terminate("evt-3", day * 14))
        .await
        .unwrap();
    e.clock.advance(day * 8);
    assert_eq!(drain(&e).await, 0, "the first termination was superseded");
    assert_eq!(user(&e, "E7").await["active"], true);
    e.clock.advance(day * 7);
    assert_eq!(drain(&e).await, 1);
    assert_eq!(user(&e, "E7").await["active"], false);

    // An update without a date applies at once; a value the lookup lacks is refused (400).
    let update =
        json!({"id": "evt-4", "type": "update", "employee": {"employeeId": "E7", "dept": "200"}});
    post(&e, 2, "m5", &update).await.unwrap();
    assert_eq!(drain(&e).await, 1);
    assert_eq!(
        user(&e, "E7").await["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "IT"
    );
    let bad =
        json!({"id": "evt-5", "type": "update", "employee": {"employeeId": "E7", "dept": "999"}});
    assert_eq!(post(&e, 2, "m6", &bad).await.unwrap_err().status(), 400);
    let odd = json!({"id": "evt-6", "type": "promote", "employee": {"employeeId": "E7"}});
    assert_eq!(post(&e, 2, "m7", &odd).await.unwrap_err().status(), 400);

    // Through the router: no bearer token needed, the signature decides.
    let app = scim_server::http::router(e.state.clone());
    let rehire = json!({"id": "evt-7", "type": "rehire", "employee": {"employeeId": "E7", "email": "grace@contoso.example"}});
    let (ts, sig, bytes) = sign(&e, 2, "m8", &rehire, 0);
    let request = |signature: &str| {
        http::Request::post("/inbound/v1/events/default/workday")
            .header("content-type", "application/json")
            .header("webhook-id", "m8")
            .header("webhook-timestamp", &ts)
            .header("webhook-signature", signature)
            .body(Body::from(bytes.clone()))
            .unwrap()
    };
    let refused = app.clone().oneshot(request("v1,AAAA")).await.unwrap();
    assert_eq!(refused.status(), 401);
    let accepted = app.clone().oneshot(request(&sig)).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let replayed = app.oneshot(request(&sig)).await.unwrap();
    assert_eq!(replayed.status(), 200);
    assert_eq!(drain(&e).await, 1);
    assert_eq!(user(&e, "E7").await["active"], true, "rehired");
}

/// Verified events count against their source's limit (a bad signature is 401 and counts
/// nothing); the limit refills on the clock. Finished jobs and event ids older than the retention
/// are purged, while queued jobs stay; a replay of a purged event is refused by its stale
/// timestamp.
async fn event_rate_limit_and_purge(db: Arc<TestDb>) {
    let e = events_env_configured(&db, |cfg| {
        cfg.events_per_second = 1;
        cfg.events_burst = 2;
        cfg.job_retention_days = 30;
    })
    .await;
    let event = |i: u32| json!({"id": format!("evt-{i}"), "type": "update", "employee": {"employeeId": format!("E{i}"), "email": format!("e{i}@contoso.example")}});
    post(&e, 1, "m1", &event(1)).await.unwrap();
    let (ts, _, bytes) = sign(&e, 1, "m2", &event(2), 0);
    let bad = Signed {
        id: Some("m2"),
        timestamp: Some(&ts),
        signature: Some("v1,AAAA"),
    };
    let err = accept_event(&e.state, "default", "workday", bad, &bytes)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401, "a bad signature is refused, not counted");
    post(&e, 1, "m2", &event(2)).await.unwrap();
    let err = post(&e, 1, "m3", &event(3)).await.unwrap_err();
    assert_eq!(err.status(), 429, "{}", err.detail());
    assert!(
        err.detail().contains("events_per_second"),
        "{}",
        err.detail()
    );
    e.clock.advance(time::Duration::seconds(1));
    let (old_ts, old_sig, old_bytes) = sign(&e, 1, "m3", &event(3), 0);
    post(&e, 1, "m3", &event(3)).await.unwrap();
    assert_eq!(drain(&e).await, 3);
    // A job still waiting is never purged.
    e.clock.advance(time::Duration::seconds(1));
    let waiting = post(&e, 1, "m4", &event(4)).await.unwrap();

    e.clock.advance(time::Duration::days(29));
    assert_eq!(
        e.intake.purge(e.clock.now()).await.unwrap().jobs,
        0,
        "kept 30 days"
    );
    e.clock.advance(time::Duration::days(2));
    let purged = e.intake.purge(e.clock.now()).await.unwrap();
    assert_eq!((purged.jobs, purged.events), (3, 4), "{purged:?}");
    let job = waiting["jobs"][0]["id"].as_str().unwrap();
    let kept = e.intake.queue.job("default", job).await.unwrap().unwrap();
    assert_eq!(kept.status, "queued");
    assert_eq!(drain(&e).await, 1);
    // The purged event id cannot be replayed: its signed timestamp is long stale.
    let replay = Signed {
        id: Some("m3"),
        timestamp: Some(&old_ts),
        signature: Some(&old_sig),
    };
    let err = accept_event(&e.state, "default", "workday", replay, &old_bytes)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[tokio::test]
async fn sqlite_event_rate_limit_and_purge() {
    run(TestDb::sqlite().await, event_rate_limit_and_purge).await;
}

#[tokio::test]
async fn postgres_event_rate_limit_and_purge() {
    run(TestDb::postgres().await, event_rate_limit_and_purge).await;
}

#[tokio::test]
async fn sqlite_signed_events_and_effective_dates() {
    run(TestDb::sqlite().await, signed_events_and_effective_dates).await;
}

#[tokio::test]
async fn postgres_signed_events_and_effective_dates() {
    run(TestDb::postgres().await, signed_events_and_effective_dates).await;
}
