//! The Graph client over real HTTP against the fake.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use scim_graph_bridge::clock::ManualClock;
use scim_graph_bridge::fake_graph::{FakeConfig, FakeGraph, Fault};
use scim_graph_bridge::graph::Credential;
use scim_graph_bridge::graph::{
    GraphClient, GraphError, GraphRequest, OpKind, Outcome, RetryPolicy, classify,
};
use scim_graph_bridge::secret::SecretString;
use serde_json::json;

use crate::support::{self, env, inspect};

fn member_ref(uid: &str) -> serde_json::Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")})
}

#[tokio::test]
async fn token_is_cached_and_refreshed_after_401() {
    let e = env().await;
    for _ in 0..3 {
        let r = e
            .client
            .send(&GraphRequest::get("/subscribedSkus"))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(e.fake.token_requests(), 1);
    e.fake.expire_tokens();
    let r = e
        .client
        .send(&GraphRequest::get("/subscribedSkus"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(e.fake.token_requests(), 2);
    assert_eq!(e.client.stats().auth_refreshes, 1);
    // near expiry (within 5 minutes of expires_in) the token is refreshed proactively
    e.clock.advance(Duration::from_secs(3599 - 200));
    e.client
        .send(&GraphRequest::get("/subscribedSkus"))
        .await
        .unwrap();
    assert_eq!(e.fake.token_requests(), 3);
}

#[tokio::test]
async fn bad_secret_is_an_auth_error() {
    let fake = FakeGraph::start_default().await.unwrap();
    let c = GraphClient::new(
        &fake.authority_url(),
        &fake.graph_url(),
        "fake-tenant",
        "fake-client",
        Credential::Secret(SecretString::new("wrong")),
        10.0,
        10,
        RetryPolicy::default(),
        Arc::new(ManualClock::fixed()),
    );
    let err = c.send(&GraphRequest::get("/users")).await.unwrap_err();
    assert!(
        matches!(&err, GraphError::Auth(m) if m.contains("AADSTS7000215")),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn certificate_assertion_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let pubkey = dir.path().join("pub.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=bridge",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let Ok(out) = ok else {
        eprintln!("openssl not available; skipping");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&pubkey)
        .output()
        .unwrap();
    assert!(out.status.success());
    let fake = FakeGraph::start(FakeConfig {
        client_secret: None,
        client_public_key_pem: Some(std::fs::read_to_string(&pubkey).unwrap()),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let cred = Credential::Certificate {
        cert_pem: std::fs::read_to_string(&cert).unwrap(),
        key_pem: SecretString::new(std::fs::read_to_string(&key).unwrap()),
    };
    // the fake checks the assertion's expiry against the wall clock
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let c = GraphClient::new(
        &fake.authority_url(),
        &fake.graph_url(),
        "fake-tenant",
        "fake-client",
        cred,
        10.0,
        10,
        RetryPolicy::default(),
        clock,
    );
    let r = c.send(&GraphRequest::get("/subscribedSkus")).await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn throttling_honours_fractional_retry_after() {
    let e = env().await;
    e.fake.inject(Fault {
        path_contains: "/subscribedSkus".into(),
        times: 2,
        status: 429,
        retry_after: Some("2.5".into()),
        ..Fault::default()
    });
    let r = e
        .client
        .send(&GraphRequest::get("/subscribedSkus"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(e.client.stats().throttled_retries, 2);
    let slept = e.clock.slept().as_secs_f64();
    assert!((5.0..5.3).contains(&slept), "slept {slept}");
}

#[tokio::test]
async fn throttling_without_retry_after_backs_off_and_gives_up_eventually() {
    let e = env().await;
    e.fake.inject(Fault {
        path_contains: "/subscribedSkus".into(),
        times: 100,
        status: 503,
        ..Fault::default()
    });
    let r = e
        .client
        .send(&GraphRequest::get("/subscribedSkus"))
        .await
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(e.client.stats().throttled_retries, 5);
    assert!(e.clock.slept() > Duration::ZERO);
    assert!(classify(OpKind::UpdateUser, r.status, &r.body).is_transient());
}

#[tokio::test]
async fn duplicate_and_missing_members_are_done() {
    let e = env().await;
    let uid = e.graph_user("a@x.com");
    let add = GraphRequest::with_body(
        Method::POST,
        format!("/groups/{}/members/$ref", e.g_eng),
        member_ref(&uid),
    );
    let r = e.client.send(&add).await.unwrap();
    assert_eq!(
        classify(OpKind::AddMember, r.status, &r.body),
        Outcome::Done
    );
    let r = e.client.send(&add).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(matches!(
        classify(OpKind::AddMember, r.status, &r.body),
        Outcome::AlreadyDone { .. }
    ));
    let del = GraphRequest::new(
        Method::DELETE,
        format!("/groups/{}/members/{uid}/$ref", e.g_eng),
    );
    assert_eq!(e.client.send(&del).await.unwrap().status, 204);
    let r = e.client.send(&del).await.unwrap();
    assert_eq!(r.status, 404);
    assert!(matches!(
        classify(OpKind::RemoveMember, r.status, &r.body),
        Outcome::AlreadyDone { .. }
    ));
}

#[tokio::test]
async fn applied_then_429_converges_on_retry() {
    let e = env().await;
    let uid = e.graph_user("a@x.com");
    e.fake.inject(Fault {
        path_contains: "/members/$ref".into(),
        times: 1,
        status: 429,
        retry_after: Some("1".into()),
        apply_then_fail: true,
        ..Fault::default()
    });
    let add = GraphRequest::with_body(
        Method::POST,
        format!("/groups/{}/members/$ref", e.g_eng),
        member_ref(&uid),
    );
    let r = e.client.send(&add).await.unwrap();
    // the first attempt took effect, so the retry is told "already exist"
    assert!(classify(OpKind::AddMember, r.status, &r.body).is_success());
    assert!(
        e.fake
            .with_directory(|d| d.members(&e.g_eng).contains(&uid))
    );
}

#[tokio::test]
async fn batch_retries_only_throttled_items() {
    let e = env().await;
    let users: Vec<String> = (0..25)
        .map(|i| e.graph_user(&format!("u{i}@x.com")))
        .collect();
    e.fake.inject(Fault {
        path_contains: format!("/groups/{}/members/$ref", e.g_sup),
        times: 3,
        status: 429,
        retry_after: Some("0.25".into()),
        ..Fault::default()
    });
    let reqs: Vec<GraphRequest> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let g = if i % 5 == 0 { &e.g_sup } else { &e.g_all };
            GraphRequest::with_body(
                Method::POST,
                format!("/groups/{g}/members/$ref"),
                member_ref(u),
            )
        })
        .collect();
    let rs = e.client.batch(&reqs).await.unwrap();
    assert_eq!(rs.len(), 25);
    assert!(
        rs.iter().all(|r| r.status == 204),
        "{:?}",
        rs.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let log = e.fake.requests();
    let envelopes = log.iter().filter(|r| r.path == "/$batch").count();
    assert!((2..=4).contains(&envelopes), "{envelopes}");
    // each member add succeeded exactly once; throttled items were re-sent, others not
    let adds_ok = log.iter().filter(|r| r.in_batch && r.status == 204).count();
    assert_eq!(adds_ok, 25);
    let throttled = log.iter().filter(|r| r.in_batch && r.status == 429).count();
    assert_eq!(throttled, 3);
    assert_eq!(log.iter().filter(|r| r.in_batch).count(), 28);
    assert_eq!(e.fake.with_directory(|d| d.members(&e.g_all).len()), 20);
}

#[tokio::test]
async fn replication_delay_after_create_is_retried() {
    let e = env().await;
    e.fake.with_directory(|d| d.replication_delay = 2);
    let body = json!({"accountEnabled": true, "displayName": "N", "mailNickname": "n", "userPrincipalName": "n@x.com",
                      "passwordProfile": {"password": "Secr3t!Secr3t!", "forceChangePasswordNextSignIn": true}});
    let r = e
        .client
        .send(&GraphRequest::with_body(Method::POST, "/users", body))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "GUID id");
    let r = e
        .client
        .send(&GraphRequest::with_body(
            Method::PATCH,
            format!("/users/{id}"),
            json!({"department": "X"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(e.client.stats().replication_retries, 2);
    // a 404 on an id the client did not create is real
    let r = e
        .client
        .send(&GraphRequest::get(
            "/users/00000000-0000-0000-0000-000000000000",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(e.client.stats().replication_retries, 2);
}

#[tokio::test]
async fn license_and_role_errors() {
    let e = env().await;
    let uid = e
        .fake
        .with_directory(|d| d.add_user(json!({"userPrincipalName": "nl@x.com"})));
    let lic = |sku: &str| {
        GraphRequest::with_body(
            Method::POST,
            format!("/users/{uid}/assignLicense"),
            json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []}),
        )
    };
    let r = e.client.send(&lic(&e.sku_e5)).await.unwrap();
    assert!(
        matches!(
            classify(OpKind::AssignLicense, r.status, &r.body),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ),
        "{r:?}"
    );
    let role = GraphRequest::with_body(
        Method::POST,
        "/roleManagement/directory/roleAssignments",
        json!({"roleDefinitionId": support::HELPDESK_ROLE, "principalId": uid, "directoryScopeId": "/"}),
    );
    let r = e.client.send(&role).await.unwrap();
    assert_eq!(r.status, 201);
    assert!(!r.body["id"].as_str().unwrap().is_empty());
    let r = e.client.send(&role).await.unwrap();
    assert!(
        matches!(
            classify(OpKind::AddRole, r.status, &r.body),
            Outcome::AlreadyDone { .. }
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn inspection_endpoint_serves_log_and_state() {
    let e = env().await;
    e.client
        .send(&GraphRequest::get("/subscribedSkus"))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let log = inspect(&e.fake, "requests").await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "/subscribedSkus")
    );
    let state = inspect(&e.fake, "state").await;
    assert_eq!(state["groups"].as_array().unwrap().len(), 4);
    let st = http
        .post(format!("{}/_fake/faults", e.fake.authority_url()))
        .json(&json!({"path_contains": "/subscribedSkus", "times": 1, "status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(st.status(), 204);
    e.client
        .send(&GraphRequest::get("/subscribedSkus"))
        .await
        .unwrap();
    assert_eq!(e.client.stats().throttled_retries, 1);
}

#[tokio::test]
async fn usage_location_lag_after_patch_is_retried() {
    let e = env().await;
    e.fake.with_directory(|d| d.usage_location_delay = 2);
    let uid = e
        .fake
        .with_directory(|d| d.add_user(json!({"userPrincipalName": "ul@x.com"})));
    let r = e
        .client
        .send(&GraphRequest::with_body(
            Method::PATCH,
            format!("/users/{uid}"),
            json!({"usageLocation": "GB"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    let lic = GraphRequest::with_body(
        Method::POST,
        format!("/users/{uid}/assignLicense"),
        json!({"addLicenses": [{"skuId": e.sku_e5, "disabledPlans": []}], "removeLicenses": []}),
    );
    let r = e.client.send(&lic).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(e.client.stats().replication_retries, 2);
    assert!(
        e.fake
            .with_directory(|d| d.licenses_of(&uid).contains(&e.sku_e5))
    );
}
