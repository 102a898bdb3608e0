//! Outcome callbacks to a real loopback HTTP receiver that checks every Standard Webhooks
//! signature, on SQLite and PostgreSQL, with time driven by a [`ManualClock`] (no sleeping):
//! a job's report fails twice at the receiver and is delivered on the third attempt after
//! backoffs with jitter (the same `webhook-id` and body each time); the outbox survives a new
//! `Callbacks` (a restart) between attempts; a receiver that keeps failing gets the message
//! dead-lettered after `max_attempts`; reporting a job twice queues one message; an HR event's
//! job is reported as `event.applied`.

use crate::inbound_queue::env_with;
use crate::support::{TestDb, run};
use axum::http::{HeaderMap, StatusCode};
use scim_graph_bridge::notify::{Settled, SettledOutcome};
use scim_server::clock::Clock;
use scim_server::config::SecretString;
use scim_server::inbound::accept_bulk_upload;
use scim_server::inbound::callback::{Attempt, CallbackConfig, Callbacks, JobEnd};
use scim_server::inbound::events::{Signed, SourceConfig, accept_event};
use scim_server::inbound::signature::{SigningKey, verify};
use scim_server::inbound::worker::Worker;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) signed: bool,
    pub(crate) body: Value,
}

/// A loopback receiver: answers 500 to the next `fail` requests, then 200; verifies every
/// signature against [`SECRET`] at the shared clock's time.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) fail: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Received>>>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start(clock: Arc<dyn Clock>) -> Receiver {
        let fail = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let keys = vec![SigningKey::parse(SECRET).unwrap()];
        let (f, s) = (fail.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (f, s, keys, clock) = (f.clone(), s.clone(), keys.clone(), clock.clone());
                async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                    let signed = verify(
                        &keys,
                        h("webhook-id"),
                        h("webhook-timestamp"),
                        h("webhook-signature"),
                        &body,
                        clock.now(),
                    )
                    .is_ok();
                    s.lock().unwrap().push(Received {
                        id: h("webhook-id").unwrap_or_default().to_string(),
                        signed,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    if !signed {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let failing = f
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hooks"),
            fail,
            seen,
            task,
        }
    }

    pub(crate) fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

pub(crate) fn callback_config(url: &str) -> CallbackConfig {
    CallbackConfig {
        tenant: "default".into(),
        url: url.into(),
        secrets: vec![SecretString::new(SECRET)],
        max_attempts: 3,
        backoff_base_seconds: 10,
        backoff_max_seconds: 100,
        timeout_seconds: 5,
    }
}

fn upload(records: &[Value]) -> Value {
    let ops: Vec<Value> = records
        .iter()
        .map(|d| json!({"method": "POST", "path": "/Users", "bulkId": d["externalId"], "data": d}))
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
}

async fn reports_are_signed_retried_and_durable(db: Arc<TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("workday.toml");
    std::fs::write(
        &mapping,
        "[attributes]\nexternalId = { from = \"employeeId\" }\nuserName = { from = \"email\" }\n",
    )
    .unwrap();
    let source = SourceConfig {
        tenant: "default".into(),
        source: "workday".into(),
        secrets: vec![SecretString::new(SECRET)],
        mapping,
    }
    .load()
    .unwrap();
    let e = env_with(&db, vec![source]).await;
    let clock: Arc<dyn Clock> = e.clock.clone();
    let receiver = Receiver::start(clock.clone()).await;
    let config = callback_config(&receiver.url);
    let callbacks = Arc::new(
        Callbacks::new(
            e.intake.queue.clone(),
            std::slice::from_ref(&config),
            false,
            clock.clone(),
        )
        .unwrap(),
    );
    let state = e.state.clone().with_callbacks(callbacks.clone());
    let worker = Worker::new(state.clone(), e.intake.clone());
    let advance = |s: i64| e.clock.advance(time::Duration::seconds(s));

    // A job with one good and one refused record, reported once applied.
    let job_id = accept_bulk_upload(
        &state,
        &e.ctx,
        upload(&[
            json!({"externalId": "E-1", "userName": "ada@example.com"}),
            json!({"externalId": "E-2"}),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(callbacks.deliveries(None).await.unwrap().len(), 0);
    worker.run_until_idle(10).await.unwrap();
    let queued = callbacks.deliveries(Some("default")).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        queued[0].event_type, "job.completedWithErrors",
        "{}",
        queued[0].payload
    );
    assert_eq!(queued[0].status, "pending");

    // The receiver fails twice: each failure waits out a backoff on the clock.
    receiver.fail.store(2, Ordering::SeqCst);
    let owner = "it";
    let (_, first) = callbacks.deliver_one(owner).await.unwrap().unwrap();
    assert!(matches!(first, Attempt::Retrying(_)), "{first:?}");
    assert!(
        callbacks.deliver_one(owner).await.unwrap().is_none(),
        "not due before its backoff"
    );
    advance(10); // the first backoff is at most 10 s (base 10, jitter in [0.5, 1])
    // A restart between attempts: a new Callbacks over the same database finds the message.
    let restarted = Callbacks::new(
        e.intake.queue.clone(),
        std::slice::from_ref(&config),
        false,
        clock.clone(),
    )
    .unwrap();
    let (_, second) = restarted.deliver_one(owner).await.unwrap().unwrap();
    assert!(matches!(second, Attempt::Retrying(_)), "{second:?}");
    assert!(restarted.deliver_one(owner).await.unwrap().is_none());
    advance(20);
    let (_, third) = restarted.deliver_one(owner).await.unwrap().unwrap();
    assert_eq!(third, Attempt::Delivered);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|r| r.signed), "every request is signed");
    assert!(
        seen.iter()
            .all(|r| r.id == seen[0].id && r.body == seen[0].body),
        "a retry is the same message"
    );
    let body = &seen[2].body;
    assert_eq!(body["type"], "job.completedWithErrors");
    assert_eq!(body["data"]["job"]["id"], job_id.as_str());
    assert_eq!(body["data"]["job"]["status"], "completedWithErrors");
    assert_eq!(body["data"]["job"]["counts"]["created"], 1);
    assert_eq!(body["data"]["job"]["operations"][1]["outcome"], "failed");
    let done = callbacks.deliveries(None).await.unwrap();
    assert_eq!(
        (done[0].status.as_str(), done[0].attempts),
        ("delivered", 3)
    );

    // A receiver that keeps failing: dead after max_attempts (3).
    receiver.fail.store(usize::MAX, Ordering::SeqCst);
    accept_bulk_upload(
        &state,
        &e.ctx,
        upload(&[json!({"externalId": "E-3", "userName": "grace@example.com"})]),
    )
    .await
    .unwrap();
    worker.run_until_idle(10).await.unwrap();
    let mut ends = Vec::new();
    for _ in 0..3 {
        advance(100);
        let (_, end) = callbacks.deliver_one(owner).await.unwrap().unwrap();
        ends.push(end);
    }
    assert!(matches!(ends[2], Attempt::Dead(_)), "{ends:?}");
    advance(1000);
    assert!(callbacks.deliver_one(owner).await.unwrap().is_none());
    let all = callbacks.deliveries(None).await.unwrap();
    assert_eq!(all[1].event_type, "job.completed");
    assert_eq!((all[1].status.as_str(), all[1].attempts), ("dead", 3));
    assert!(
        all[1]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("500"),
        "{:?}",
        all[1].last_error
    );
    // Reporting a job again (a crash between the report and the job's end) queues nothing new.
    let again =
        scim_server::inbound::callback::job_settled(&state, "default", &job_id, JobEnd::Finished)
            .await;
    assert!(again.is_ok());
    assert_eq!(callbacks.deliveries(None).await.unwrap().len(), 2);

    // An HR event's job is reported as the event.
    let event = json!({"id": "evt-1", "type": "hire",
                       "employee": {"employeeId": "E-9", "email": "lin@example.com"}});
    let bytes = event.to_string().into_bytes();
    let ts = e.clock.now().unix_timestamp();
    let sig = SigningKey::parse(SECRET).unwrap().sign("msg-1", ts, &bytes);
    let ts = ts.to_string();
    let signed = Signed {
        id: Some("msg-1"),
        timestamp: Some(&ts),
        signature: Some(&sig),
    };
    accept_event(&state, "default", "workday", signed, &bytes)
        .await
        .unwrap();
    worker.run_until_idle(10).await.unwrap();
    let all = callbacks.deliveries(None).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[2].event_type, "event.applied");
    let body: Value = serde_json::from_str(&all[2].payload).unwrap();
    assert_eq!(
        body["data"]["event"],
        json!({"id": "evt-1", "type": "hire"})
    );
    assert_eq!(body["data"]["job"]["operations"][0]["outcome"], "created");

    // With the bridge: when the bridge settled the user before the job reported (the job's
    // later records were still running), the job's report queues the bridge's at once.
    let following = Callbacks::new(
        e.intake.queue.clone(),
        std::slice::from_ref(&config),
        true,
        clock.clone(),
    )
    .unwrap();
    let user_id = body["data"]["job"]["operations"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = state.registry.resource_type("User").unwrap();
    let version = state
        .store
        .get("default", rt, &user_id, Default::default())
        .await
        .unwrap()
        .unwrap()
        .meta
        .version;
    let settled = |v: u64| Settled {
        tenant_id: "default".into(),
        user_id: user_id.clone(),
        scim_version: Some(v),
        outcome: SettledOutcome::Applied,
        kind: None,
        steps: 2,
        detail: None,
        at: e.clock.now(),
    };
    // an older plan does not answer the write; nothing is waiting yet either
    following
        .bridge_settled(&settled(version - 1))
        .await
        .unwrap();
    following.bridge_settled(&settled(version)).await.unwrap();
    let event_job = body["data"]["job"]["id"].as_str().unwrap().to_string();
    following
        .job_settled(
            &state,
            &e.intake.queue,
            "default",
            &event_job,
            JobEnd::Finished,
        )
        .await
        .unwrap();
    let all = callbacks.deliveries(None).await.unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    let bridged = all
        .iter()
        .find(|d| d.event_type == "provisioning.applied")
        .expect("the bridge's report");
    let report: Value = serde_json::from_str(&bridged.payload).unwrap();
    assert_eq!(report["data"]["jobId"], event_job.as_str());
    assert_eq!(report["data"]["eventId"], "evt-1");
    assert_eq!(report["data"]["externalId"], "E-9");
    // a later settlement has nothing left to answer
    following
        .bridge_settled(&settled(version + 1))
        .await
        .unwrap();
    assert_eq!(callbacks.deliveries(None).await.unwrap().len(), 4);
    // purging forgets what was delivered before the cut-off, never what is pending or dead
    let now = e.clock.now();
    let purged = callbacks
        .purge(now + time::Duration::seconds(1), now)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let mut left: Vec<String> = callbacks
        .deliveries(None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.status)
        .collect();
    left.sort();
    assert_eq!(left, ["dead", "pending", "pending"], "{left:?}");
    receiver.task.abort();
}

#[tokio::test]
async fn sqlite_callbacks_are_signed_retried_and_durable() {
    run(
        TestDb::sqlite().await,
        reports_are_signed_retried_and_durable,
    )
    .await;
}

#[tokio::test]
async fn postgres_callbacks_are_signed_retried_and_durable() {
    run(
        TestDb::postgres().await,
        reports_are_signed_retried_and_durable,
    )
    .await;
}
