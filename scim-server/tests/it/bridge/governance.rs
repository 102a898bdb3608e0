//! Access reviews end to end (issue 11, item 1): the real `scim-server serve` binary with
//! `[governance]` (webhook and SMTP notifications to local sinks), the fake Graph, the bridge,
//! on SQLite and PostgreSQL. A quarterly review of the catalog group `eng` with three holders:
//! one kept, one revoked by the reviewer, one left undecided and revoked by the default
//! (the recommendation: no sign-in for 200 days). Then: exactly the expected Graph calls, the
//! exceptions survive `bridge reconcile --all`, `audit verify` accepts the chain (which holds
//! the governance events), and removing an exception gives the grant back.
//!
//! The due-date path runs in-process on a `ManualClock`: the durable schedule starts the
//! review, reminds, and applies it at the due date, across a "restart" (a fresh `Governance`
//! over the same database).

use super::*;
use crate::support::{SmtpSink, WebhookSink};
use scim_server::governance::{Governance, open_governance, reviews, schedule};
use scim_server::inbound::signature::{SigningKey, verify};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `whsec_` + base64 of 32 bytes.
const WEBHOOK_SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The manager (Sales) and three engineers reporting to her, reconciled into Graph; the
/// engineers' last sign-ins: ada and bob recent, cy 200 days ago. Returns the SCIM ids
/// `[mia, ada, bob, cy]`.
async fn seed_people(env: &Env, now: OffsetDateTime) -> Vec<String> {
    let mia = env
        .create_user("mia@contoso.example", "Sales", "Director")
        .await;
    let mut ids = vec![mia.clone()];
    for upn in ["ada", "bob", "cy"] {
        let (status, body) = env
            .scim(
                reqwest::Method::POST,
                "/Users",
                Some(json!({
                    "schemas": [USER_URN, ENTERPRISE],
                    "userName": format!("{upn}@contoso.example"),
                    "active": true,
                    "displayName": upn,
                    ENTERPRISE: {"department": "Engineering", "manager": {"value": mia}}
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    env.drain().await;
    // A second pass sets the managers (mia had no Graph user when her reports were first seen).
    scim_graph_bridge::worker::reconcile_all(
        &env.ctx.store,
        env.ctx.directory.as_ref(),
        TENANT,
        now,
    )
    .await
    .unwrap();
    env.drain().await;
    for (upn, days) in [("ada", 3), ("bob", 10), ("cy", 200)] {
        assert!(env.fake.set_last_sign_in(
            &format!("{upn}@contoso.example"),
            Some(&rfc3339(now - time::Duration::days(days)))
        ));
    }
    ids
}

/// The configuration of the test's server plus `[governance]` with both sinks.
fn governance_config(env: &Env, smtp: &SmtpSink, hook: &WebhookSink) -> PathBuf {
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    let text = format!(
        "{base}\n[governance]\nreview_url = \"https://console.contoso.example/reviews\"\n\
         [governance.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"governance@contoso.example\"\n\
         [[governance.webhooks]]\nurl = {:?}\nsecret = {WEBHOOK_SECRET:?}\n",
        smtp.port, hook.url
    );
    let path = env.dir.path().join("governance.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits (bounded) until no bridge work is pending or leased: `serve`'s own worker may hold some.
async fn bridge_idle(env: &Env) {
    for _ in 0..600 {
        env.drain().await;
        let s = env
            .ctx
            .store
            .status(env.ctx.change_log.as_ref())
            .await
            .unwrap();
        if s.pending == 0 && s.leased == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the bridge queue did not drain");
}

fn binary(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scim-server"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("running scim-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn run_binary(config: &Path, args: &[&str]) -> (bool, String, String) {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        binary(&config, &args)
    })
    .await
    .unwrap()
}

/// `scim-server serve` on 127.0.0.1:0; returns the guard and the server's root URL.
fn serve(config: &Path) -> (crate::support::ChildGuard, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = crate::support::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_scim-server"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SCIM_LISTEN", "127.0.0.1:0")
            .env("SCIM_SHUTDOWN_GRACE_SECONDS", "5")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning scim-server serve"),
    );
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("scim-server listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("scim-server serve reports its address");
    let root = base.trim_end_matches("/scim/v2").to_string();
    (child, root)
}

async fn call(
    env: &Env,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = env.http.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn campaign(now: OffsetDateTime, default: &str, starts_at: Option<OffsetDateTime>) -> Value {
    let mut spec = json!({
        "name": "Q3 privileged groups",
        "scope": [{"group": "eng"}],
        "reviewers": {"mode": "manager", "fallback": "secops@contoso.example"},
        "dueAt": rfc3339(now + time::Duration::days(14)),
        "remindersBeforeDueHours": [72],
        "defaultDecision": default,
        "inactivityDays": 90
    });
    if let Some(s) = starts_at {
        spec["startsAt"] = json!(rfc3339(s));
    }
    spec
}

fn item_of<'a>(items: &'a [Value], upn: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["userPrincipalName"] == upn)
        .unwrap_or_else(|| panic!("no item for {upn}: {items:?}"))
}

async fn quarterly_review(postgres: Option<String>) {
    let env = Env::start_on("apply", postgres).await;
    let smtp = SmtpSink::start().await;
    let hook = WebhookSink::start().await;
    let now = OffsetDateTime::now_utc();
    let ids = seed_people(&env, now).await;
    let (mia, ada, bob, cy) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let config = governance_config(&env, &smtp, &hook);
    let (mut server, root) = serve(&config);
    let api = format!("{root}/governance/v1");

    // A campaign that names a group outside the catalog is refused, naming it.
    let mut bad = campaign(now, "recommendation", None);
    bad["scope"] = json!([{"group": "finance"}]);
    let (status, body) = call(
        &env,
        reqwest::Method::POST,
        format!("{api}/reviews"),
        Some(bad),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("finance"),
        "{body}"
    );

    // Create: it starts at once; every holder of `eng` read from Graph is an item.
    let (status, review) = call(
        &env,
        reqwest::Method::POST,
        format!("{api}/reviews"),
        Some(campaign(now, "recommendation", None)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(review["status"], "active", "{review}");
    assert_eq!(review["counts"]["items"], 3, "{review}");
    let id = review["id"].as_str().unwrap().to_string();
    let (_, items) = call(
        &env,
        reqwest::Method::GET,
        format!("{api}/reviews/{id}/items"),
        None,
    )
    .await;
    let items = items["items"].as_array().unwrap().clone();
    for (upn, scim, rec) in [
        ("ada@contoso.example", ada, "keep"),
        ("bob@contoso.example", bob, "keep"),
        ("cy@contoso.example", cy, "revoke"),
    ] {
        let i = item_of(&items, upn);
        assert_eq!(i["scimUserId"], scim.as_str(), "{i}");
        assert_eq!(
            i["reviewer"], "mia@contoso.example",
            "the manager reviews: {i}"
        );
        assert_eq!(i["recommendation"], rec, "{i}");
        assert_eq!(i["ruleDerived"], true, "{i}");
    }
    assert!(
        item_of(&items, "cy@contoso.example")["recommendationReason"]
            .as_str()
            .unwrap()
            .contains("no sign-in for 200 days")
    );
    let _ = mia;

    // The reviewer was told: one signed webhook, one e-mail.
    let hooks = hook.received();
    assert_eq!(hooks.len(), 1, "one notification per reviewer");
    let (headers, body) = &hooks[0];
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    verify(
        &[SigningKey::parse(WEBHOOK_SECRET).unwrap()],
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        body,
        OffsetDateTime::now_utc(),
    )
    .expect("a valid Standard Webhooks signature");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["type"], "review.assigned");
    assert_eq!(payload["data"]["recipient"], "mia@contoso.example");
    assert_eq!(payload["data"]["pendingItems"], 3);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, vec!["mia@contoso.example".to_string()]);
    assert_eq!(mails[0].from, "governance@contoso.example");
    assert!(
        mails[0]
            .data
            .contains("Subject: Access review \"Q3 privileged groups\": 3 item(s)")
    );
    assert!(
        mails[0]
            .data
            .contains("https://console.contoso.example/reviews")
    );

    // A read-only credential may read the review, and change nothing.
    let (_, read_only) = scim_server::auth::create_token(
        env.store.as_ref(),
        TENANT,
        "auditor",
        true,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    for (method, path, want) in [
        (
            reqwest::Method::GET,
            format!("{api}/reviews/{id}"),
            StatusCode::OK,
        ),
        (
            reqwest::Method::POST,
            format!("{api}/reviews/{id}/apply"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let res = env
            .http
            .request(method, path)
            .bearer_auth(read_only.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want);
    }
    let res = env.http.get(format!("{api}/reviews")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no credential");

    // Decisions: ada kept (single), bob revoked (bulk); bad ones are refused, nothing recorded.
    let ada_item = item_of(&items, "ada@contoso.example")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_item = item_of(&items, "bob@contoso.example")["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (body, want) in [
        (json!({"decision": "maybe", "justification": "x"}), "keep"),
        (
            json!({"decision": "keep", "justification": "  "}),
            "justification",
        ),
        (json!({"decision": "keep"}), "justification"),
    ] {
        let (status, err) = call(
            &env,
            reqwest::Method::POST,
            format!("{api}/reviews/{id}/items/{ada_item}/decision"),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["detail"].as_str().unwrap().contains(want), "{err}");
    }
    let (status, _) = call(
        &env,
        reqwest::Method::POST,
        format!("{api}/reviews/{id}/items/no-such-item/decision"),
        Some(json!({"decision": "keep", "justification": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, r) = call(
        &env,
        reqwest::Method::POST,
        format!("{api}/reviews/{id}/items/{ada_item}/decision"),
        Some(json!({"decision": "keep", "justification": "builds the platform"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let (status, r) = call(
        &env,
        reqwest::Method::POST,
        format!("{api}/reviews/{id}/decisions"),
        Some(json!({"decisions": [{"itemId": bob_item, "decision": "revoke", "justification": "moved to Sales"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["counts"]["undecided"], 1, "{r}");

    // Apply through the CLI (closing it before its due date): exactly two Graph removals.
    env.fake.clear_log();
    let (ok, out, err) = run_binary(&config, &["governance", "review", "apply", &id]).await;
    assert!(ok, "{out}\n{err}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied["status"], "applied", "{applied}");
    assert_eq!(applied["counts"]["revoke"], 2, "{applied}");
    assert_eq!(applied["counts"]["keep"], 1, "{applied}");
    assert_eq!(applied["counts"]["applied"], 3, "{applied}");
    let graph_id = |upn: &str| env.graph(upn).id;
    let writes: BTreeSet<(String, String)> = env
        .fake
        .writes()
        .into_iter()
        .map(|w| (w.method, w.path))
        .collect();
    let expected: BTreeSet<(String, String)> = ["bob", "cy"]
        .iter()
        .map(|u| {
            (
                "DELETE".to_string(),
                format!(
                    "/groups/{}/members/{}/$ref",
                    env.cat.eng,
                    graph_id(&format!("{u}@contoso.example"))
                ),
            )
        })
        .collect();
    assert_eq!(writes, expected);
    assert_eq!(env.fake.writes().len(), 2, "{:?}", env.fake.writes());
    let (_, items) = call(
        &env,
        reqwest::Method::GET,
        format!("{api}/reviews/{id}/items"),
        None,
    )
    .await;
    let cy_item = item_of(items["items"].as_array().unwrap(), "cy@contoso.example");
    assert_eq!(cy_item["decidedBy"], "default", "{cy_item}");
    assert_eq!(cy_item["outcome"], "revoked", "{cy_item}");

    // Exceptions for bob and cy; a reconcile of everyone does not re-add `eng`.
    let (_, x) = call(
        &env,
        reqwest::Method::GET,
        format!("{api}/exceptions"),
        None,
    )
    .await;
    let exceptions = x["exceptions"].as_array().unwrap().clone();
    let users: BTreeSet<&str> = exceptions
        .iter()
        .map(|e| e["scimUserId"].as_str().unwrap())
        .collect();
    assert_eq!(users, BTreeSet::from([bob.as_str(), cy.as_str()]));
    assert!(
        exceptions
            .iter()
            .all(|e| e["grantName"] == "eng" && e["grantKind"] == "group")
    );
    env.fake.clear_log();
    let (ok, out, err) = run_binary(&config, &["bridge", "reconcile", "--all"]).await;
    assert!(ok, "{out}\n{err}");
    bridge_idle(&env).await;
    assert!(env.fake.writes().is_empty(), "{:?}", env.fake.writes());
    assert_grants(
        &env.graph("bob@contoso.example"),
        &["all-staff"],
        &["e5"],
        &[],
    );
    assert_grants(
        &env.graph("ada@contoso.example"),
        &["all-staff", "eng"],
        &["e5"],
        &[],
    );
    let plans = env.ctx.store.plans_for_user(TENANT, bob, 1).await.unwrap();
    assert!(
        plans[0]
            .plan
            .notes
            .iter()
            .any(|n| n.contains("suppressed by review")),
        "{:?}",
        plans[0].plan.notes
    );

    // The chain holds the governance events and verifies.
    let (ok, out, err) = run_binary(&config, &["audit", "verify"]).await;
    assert!(ok, "{out}\n{err}");
    let records = env.store.changes_after(TENANT, 0, 100_000).await.unwrap();
    let kinds: Vec<String> = records
        .iter()
        .filter_map(|r| r.event())
        .map(|e| e.kind().to_string())
        .collect();
    for k in [
        "governance.review.created",
        "governance.review.started",
        "governance.review.item.decided",
        "governance.review.completed",
        "governance.review.item.applied",
        "governance.exception.created",
        "governance.review.applied",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }

    // Reversible: removing bob's exception queues him, and the rules give `eng` back.
    let bob_exception = exceptions
        .iter()
        .find(|e| e["scimUserId"] == bob.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, removed) = call(
        &env,
        reqwest::Method::DELETE,
        format!("{api}/exceptions/{bob_exception}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    bridge_idle(&env).await;
    assert_grants(
        &env.graph("bob@contoso.example"),
        &["all-staff", "eng"],
        &["e5"],
        &[],
    );
    assert_grants(
        &env.graph("cy@contoso.example"),
        &["all-staff"],
        &["e5"],
        &[],
    );
    let (_, x) = call(
        &env,
        reqwest::Method::GET,
        format!("{api}/exceptions?all=true"),
        None,
    )
    .await;
    assert_eq!(x["exceptions"].as_array().unwrap().len(), 2);
    let (ok, out, err) = run_binary(&config, &["audit", "verify"]).await;
    assert!(ok, "{out}\n{err}");

    let pid = server.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = tokio::task::spawn_blocking(move || server.wait()).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarterly_review_of_a_catalog_group_sqlite() {
    quarterly_review(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarterly_review_of_a_catalog_group_postgres() {
    let Some(base) = postgres_base().await else {
        return;
    };
    quarterly_review(Some(base)).await;
}

/// Governance in-process on `clock`, over the test's database, with the webhook sink.
async fn governance_on(
    env: &Env,
    clock: Arc<scim_server::clock::ManualClock>,
    hook: &WebhookSink,
) -> Arc<Governance> {
    let text = format!(
        "{}\n[governance]\n[[governance.webhooks]]\nurl = {:?}\nsecret = {WEBHOOK_SECRET:?}\n",
        std::fs::read_to_string(env.config_path()).unwrap(),
        hook.url
    );
    let config = Config::from_parts(Some(&text), &[]).unwrap();
    let registry = Arc::new(scim_core::schema::SchemaRegistry::builtin());
    let bridge = BridgeContext::open(
        &env.graph,
        &config.database_url,
        env.store.clone(),
        registry.clone(),
        clock.clone(),
    )
    .await
    .unwrap();
    open_governance(&config, env.store.clone(), registry, Some(bridge), clock)
        .await
        .unwrap()
        .expect("governance on")
}

async fn due_date_on_the_schedule(postgres: Option<String>) {
    let env = Env::start_on("apply", postgres).await;
    let hook = WebhookSink::start().await;
    let start = OffsetDateTime::now_utc();
    let clock = Arc::new(scim_server::clock::ManualClock::new(start));
    seed_people(&env, start).await;
    let gov = governance_on(&env, clock.clone(), &hook).await;
    let spec = serde_json::from_value(campaign(
        start,
        "recommendation",
        Some(start + time::Duration::hours(1)),
    ))
    .unwrap();
    let review = reviews::create(&gov, TENANT, "it", spec).await.unwrap();
    assert_eq!(review.status, "scheduled");
    let run = |g: Arc<Governance>| async move { schedule::run_due(&g, "it", 10).await.unwrap() };
    assert_eq!(run(gov.clone()).await.done, 0, "nothing due yet");
    clock.advance(time::Duration::hours(1));
    assert_eq!(run(gov.clone()).await.done, 1, "the start");
    assert_eq!(
        reviews::get(&gov, TENANT, &review.id).await.unwrap().status,
        "active"
    );
    assert_eq!(hook.received().len(), 1);
    // 72 hours before the due date: a reminder of the three undecided items.
    clock.set(start + time::Duration::days(14) - time::Duration::hours(72));
    assert_eq!(run(gov.clone()).await.done, 1, "the reminder");
    let reminders = hook.received();
    let last: Value = serde_json::from_slice(&reminders.last().unwrap().1).unwrap();
    assert_eq!(last["type"], "review.reminder");
    assert_eq!(last["data"]["pendingItems"], 3);
    // "Restart": a new Governance over the same tables finds the due date.
    drop(gov);
    let gov = governance_on(&env, clock.clone(), &hook).await;
    env.fake.clear_log();
    clock.set(start + time::Duration::days(14));
    assert_eq!(run(gov.clone()).await.done, 1, "the due date");
    let done = reviews::get(&gov, TENANT, &review.id).await.unwrap();
    assert_eq!(done.status, "applied");
    assert_eq!((done.counts.keep, done.counts.revoke), (2, 1));
    let writes = env.fake.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let cy = env.graph("cy@contoso.example").id;
    assert_eq!(
        writes[0].path,
        format!("/groups/{}/members/{cy}/$ref", env.cat.eng)
    );
    assert_eq!(
        run(gov.clone()).await.done,
        0,
        "nothing left on the schedule"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_date_applies_from_the_durable_schedule_sqlite() {
    due_date_on_the_schedule(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_date_applies_from_the_durable_schedule_postgres() {
    let Some(base) = postgres_base().await else {
        return;
    };
    due_date_on_the_schedule(Some(base)).await;
}
