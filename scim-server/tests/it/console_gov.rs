//! The console's governance pages through its router (`Router::oneshot`), on SQLite and
//! PostgreSQL, over the governance test environment (`gov_access::Env`: the fake Microsoft
//! Graph, the bridge, governance with the JIT policies, a `ManualClock`): a reviewer's inbox,
//! one decision and a bulk decision recorded with the person's identity, items of another
//! reviewer refused, campaigns for admins; a time-bound grant requested by an operator and
//! approved (and another denied) by approvers the policy names; the hygiene report; leaver
//! evidence listed and downloaded; the pages without governance or without the bridge.
//! The viewer's 403 for each governance action is in `console_actions.rs`'s table.

use crate::console::{Fixture, Reply, csrf_of};
use crate::gov_access::Env;
use http::StatusCode;
use scim_server::auth::{AuthConfig, AuthService, Clock, token_store};
use scim_server::console::db::ConsoleDb;
use scim_server::console::governance::ReviewerIdentity;
use scim_server::console::roles::{Operator, Role};
use scim_server::console::{Console, ConsoleConfig};
use scim_server::governance::jit::{GrantFilter, GrantStatus};
use scim_server::governance::reviews;
use scim_server::state::AppState;
use serde_json::json;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;

/// A console over `env`'s database and governance (`governance: false` leaves it out, as a
/// server with `[governance] enabled = false`).
async fn console(env: &Env, governance: bool) -> Fixture {
    let clock: Arc<dyn scim_server::clock::Clock> = env.clock.clone();
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(env.store.clone()),
        clock.clone(),
    )
    .unwrap();
    let mut app = AppState::with_clock(&env._config, env.store.clone(), Arc::new(auth), clock);
    if governance {
        app = app.with_governance(env.gov.clone());
    }
    let bridge = scim_server::bridge::open_bridge_store(&env.db.url)
        .await
        .unwrap();
    let console = Console::new(
        app.clone(),
        ConsoleDb::open(&env.db.url).await.unwrap(),
        ConsoleConfig::default(),
        "default",
        Some(bridge.clone()),
    )
    .unwrap();
    Fixture {
        router: scim_server::console::router(console.clone()),
        console,
        clock: env.clock.clone(),
        app,
        bridge,
    }
}

/// Signs in `who` with `role`, known to governance by `email`; returns the cookie and CSRF token.
async fn sign_in(f: &Fixture, who: &str, role: Role, email: Option<&str>) -> (String, String) {
    let operator = Operator {
        tenant: "default".into(),
        subject: format!("sub-{who}"),
        display_name: who.to_string(),
        role,
    };
    let names = ReviewerIdentity {
        email: email.map(str::to_string),
        username: None,
    };
    let set_cookie = f.console.start_session_as(&operator, &names).await.unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let page = f.get("/console", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    (cookie, csrf_of(&page.body))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The manager mia and three engineers reporting to her, in SCIM and Graph (eng members);
/// returns `[mia, ada, bob, cy]` SCIM ids.
async fn seed_team(env: &Env) -> Vec<String> {
    let mia = "mia@contoso.example";
    env.graph_user(mia);
    let mia_id = env.create_user(mia, "Sales", "Director", None).await;
    let mut ids = vec![mia_id.clone()];
    for upn in ["ada", "bob", "cy"] {
        let upn = format!("{upn}@contoso.example");
        env.graph_user(&upn);
        ids.push(
            env.create_user(&upn, "Engineering", "Engineer", Some(&mia_id))
                .await,
        );
    }
    env.drain().await;
    ids
}

async fn campaign(env: &Env, name: &str, reviewers: serde_json::Value) -> reviews::ReviewView {
    let spec = serde_json::from_value(json!({
        "name": name,
        "scope": [{"group": "eng"}],
        "reviewers": reviewers,
        "dueAt": rfc3339(env.clock.now() + time::Duration::days(14)),
        "defaultDecision": "keep",
        "autoApply": false
    }))
    .unwrap();
    reviews::create(&env.gov, "default", "cli", spec)
        .await
        .unwrap()
}

fn item_of<'a>(items: &'a [reviews::ItemView], upn: &str) -> &'a reviews::ItemView {
    items
        .iter()
        .find(|i| i.user_principal_name.as_deref() == Some(upn))
        .unwrap_or_else(|| panic!("no item of {upn}: {items:?}"))
}

fn assert_ok(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
}

async fn a_reviewer_decides_one_item_and_then_two_at_once(env: Env) {
    let _ids = seed_team(&env).await;
    let review = campaign(
        &env,
        "Q3 engineering access",
        json!({"mode": "manager", "fallback": "secops@contoso.example"}),
    )
    .await;
    let other = campaign(
        &env,
        "Security's review",
        json!({"mode": "named", "reviewer": "secops@contoso.example"}),
    )
    .await;
    assert_eq!(review.counts.items, 3, "{review:?}");
    let items = reviews::items(&env.gov, "default", &review.id, None, false)
        .await
        .unwrap();
    assert!(items.iter().all(|i| i.reviewer == "mia@contoso.example"));
    let f = console(&env, true).await;
    // mia's e-mail claim, in another case than her SCIM userName
    let (cookie, csrf) = sign_in(&f, "mia", Role::Approver, Some("Mia@Contoso.example")).await;

    let dashboard = f.get("/console", Some(&cookie)).await;
    assert!(
        dashboard
            .body
            .contains("<div class=\"figure\">3</div><div class=\"label\"><a href=\"/console/reviews\">review items waiting for you"),
        "{}",
        dashboard.body
    );
    let inbox = f.get("/console/reviews", Some(&cookie)).await;
    assert_ok(&inbox, "inbox");
    assert!(inbox.body.contains("Waiting for your decision (3)"));
    assert!(inbox.body.contains("Q3 engineering access"));
    assert!(
        !inbox.body.contains("Security&#39;s review") && !inbox.body.contains("Security's review")
    );
    for upn in ["ada", "bob", "cy"] {
        assert!(
            inbox.body.contains(&format!("{upn}@contoso.example")),
            "{upn}"
        );
    }
    // someone else's inbox is empty
    let (bob_cookie, _) = sign_in(&f, "bob", Role::Approver, Some("bob@contoso.example")).await;
    let theirs = f.get("/console/reviews", Some(&bob_cookie)).await;
    assert!(theirs.body.contains("Nothing waits for your decision."));

    // one item: a justification is required, shown next to its field; nothing recorded
    let ada = item_of(&items, "ada@contoso.example");
    let path = format!("/console/reviews/{}/items/{}", review.id, ada.id);
    let page = f.get(&path, Some(&cookie)).await;
    assert_ok(&page, "item page");
    assert!(page.body.contains("Record decision"));
    let r = f
        .post(
            &path,
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("decision", "keep"),
                ("justification", " "),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("id=\"justification-error\"") && r.body.contains("justification"),
        "{}",
        r.body
    );
    assert!(r.body.contains("aria-invalid=\"true\""));
    let r = f
        .post(
            &path,
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("decision", "maybe"),
                ("justification", "x"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("id=\"decision-error\""), "{}", r.body);
    let r = f
        .post(
            &path,
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("decision", "keep"),
                ("justification", "still on the platform team"),
            ]),
        )
        .await;
    assert_ok(&r, "decide one");
    assert!(r.body.contains("Your decision is recorded"));
    assert!(r.body.contains("still on the platform team"));

    // two at once: nothing selected is an error next to the selection; then bob and cy
    let bulk = format!("/console/reviews/{}/decisions", review.id);
    let r = f
        .post(
            &bulk,
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("decision", "revoke"),
                ("justification", "left"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains(&format!("id=\"item-error-{}\"", review.id)));
    assert!(r.body.contains("select at least one item"));
    let (bob, cy) = (
        item_of(&items, "bob@contoso.example"),
        item_of(&items, "cy@contoso.example"),
    );
    let r = f
        .post(
            &bulk,
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("item", &bob.id),
                ("item", &cy.id),
                ("decision", "revoke"),
                ("justification", "moved to another team"),
            ]),
        )
        .await;
    assert_ok(&r, "bulk");
    assert!(r.body.contains("2 decisions are recorded"), "{}", r.body);

    let items = reviews::items(&env.gov, "default", &review.id, None, false)
        .await
        .unwrap();
    let decided: Vec<(&str, &str, &str)> = ["ada", "bob", "cy"]
        .iter()
        .map(|u| {
            let i = item_of(&items, &format!("{u}@contoso.example"));
            (
                i.decision.as_deref().unwrap(),
                i.decided_by.as_deref().unwrap(),
                i.justification.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        vec![
            ("keep", "console:sub-mia", "still on the platform team"),
            ("revoke", "console:sub-mia", "moved to another team"),
            ("revoke", "console:sub-mia", "moved to another team"),
        ]
    );
    // recorded as the API records a credential's decision, with the person as the actor, in
    // the governance record and in the hash chain
    let events = scim_server::governance::events(&env.gov, "default", Some(&review.id))
        .await
        .unwrap();
    let decided_by: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "review.item.decided")
        .map(|e| e.actor.as_str())
        .collect();
    assert_eq!(decided_by, vec!["console:sub-mia"; 3]);
    let chain = f
        .console
        .db()
        .recent_changes("default", Some(&review.id), None, 50)
        .await
        .unwrap();
    let principals: Vec<&str> = chain
        .iter()
        .filter(|c| {
            c.event()
                .is_some_and(|e| e.kind() == "governance.review.item.decided")
        })
        .map(|c| c.principal.as_str())
        .collect();
    assert_eq!(principals, vec!["governance:console:sub-mia"; 3]);
    let actions: Vec<(String, String)> = f
        .console
        .db()
        .recent_actions("default", 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "decide_review")
        .map(|a| (a.subject, a.outcome))
        .collect();
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(env.audit_problems().await.is_empty());

    let inbox = f.get("/console/reviews", Some(&cookie)).await;
    assert!(inbox.body.contains("Waiting for your decision (0)"));
    let decided = f.get("/console/reviews?show=decided", Some(&cookie)).await;
    assert!(decided.body.contains("moved to another team"));
    assert!(decided.body.contains("still on the platform team"));

    // another reviewer's item: not hers to open or decide, even in a bulk; nothing recorded
    let theirs = reviews::items(&env.gov, "default", &other.id, None, false)
        .await
        .unwrap();
    let path = format!("/console/reviews/{}/items/{}", other.id, theirs[0].id);
    let r = f.get(&path, Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body
            .contains("assigned to secops@contoso.example, not to you")
    );
    for (path, body) in [
        (
            path.clone(),
            form(&[
                ("csrf", &csrf),
                ("decision", "revoke"),
                ("justification", "x"),
            ]),
        ),
        (
            format!("/console/reviews/{}/decisions", other.id),
            form(&[
                ("csrf", &csrf),
                ("item", &theirs[0].id),
                ("decision", "revoke"),
                ("justification", "x"),
            ]),
        ),
    ] {
        let r = f.post(&path, Some(&cookie), &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    let theirs = reviews::items(
        &env.gov,
        "default",
        &other.id,
        Some("secops@contoso.example"),
        true,
    )
    .await
    .unwrap();
    assert_eq!(theirs.len(), 3, "still undecided");

    // campaigns: the admin's overview; an approver is refused
    let r = f.get("/console/reviews/campaigns", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (admin, _) = sign_in(&f, "root", Role::Admin, None).await;
    let list = f.get("/console/reviews/campaigns", Some(&admin)).await;
    assert_ok(&list, "campaigns");
    assert!(list.body.contains("Q3 engineering access") && list.body.contains("Security"));
    assert!(list.body.contains("3 items: 0 undecided, 1 keep, 2 revoke"));
    let one = f
        .get(
            &format!("/console/reviews/campaigns/{}", review.id),
            Some(&admin),
        )
        .await;
    assert_ok(&one, "campaign");
    assert!(one.body.contains("console:sub-mia"));
    // the admin may open any item, but the one-time link names no reviewer: no inbox
    assert_ok(&f.get(&path, Some(&admin)).await, "admin opens an item");
    let inbox = f.get("/console/reviews", Some(&admin)).await;
    assert!(
        inbox
            .body
            .contains("Your sign-in carries no e-mail address or user name")
    );
}

async fn an_operator_requests_time_bound_access_and_an_approver_decides(env: Env) {
    let (mgr, ada, bob) = (
        "mgr@contoso.example",
        "ada@contoso.example",
        "bob@contoso.example",
    );
    for upn in [mgr, ada, bob] {
        env.graph_user(upn);
    }
    let mgr_id = env.create_user(mgr, "IT", "Lead", None).await;
    let ada_id = env
        .create_user(ada, "IT", "Support Agent", Some(&mgr_id))
        .await;
    env.create_user(bob, "IT", "Support Agent", Some(&mgr_id))
        .await;
    env.drain().await;
    let f = console(&env, true).await;
    let (otto, csrf) = sign_in(&f, "otto", Role::Operator, Some("otto@contoso.example")).await;
    let page = f.get("/console/jit", Some(&otto)).await;
    assert_ok(&page, "jit page");
    assert!(page.body.contains("Request access") && page.body.contains("role:helpdesk"));

    // policy checks, each next to its field; nothing stored
    for (change, field, expect) in [
        (
            ("duration", "PT9H"),
            "duration",
            "longer than the policy allows",
        ),
        (
            ("justification", " "),
            "justification",
            "justification: required",
        ),
        (("user", "nobody@contoso.example"), "user", "no SCIM user"),
        (
            ("grant", "role:global-admin"),
            "grant",
            "cannot be requested",
        ),
    ] {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("user", ada),
            ("grant", "role:helpdesk"),
            ("duration", "PT4H"),
            ("justification", "incident INC-1042"),
        ];
        for (k, v) in fields.iter_mut() {
            if *k == change.0 {
                *v = change.1;
            }
        }
        let r = f.post("/console/jit", Some(&otto), &form(&fields)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        assert!(
            r.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            r.body
        );
        assert!(r.body.contains(expect), "{field}: {}", r.body);
    }
    let all = |status: &str| GrantFilter {
        user: None,
        status: Some(status.into()),
    };
    assert!(
        scim_server::governance::jit::list(&env.gov, "default", &all("pending"))
            .await
            .unwrap()
            .is_empty()
    );
    let request = |user: &'static str| {
        form(&[
            ("csrf", &csrf),
            ("user", user),
            ("grant", "role:helpdesk"),
            ("duration", "PT4H"),
            ("justification", "incident INC-1042"),
        ])
    };
    let r = f.post("/console/jit", Some(&otto), &request(ada)).await;
    assert_ok(&r, "request");
    assert!(r.body.contains("waits for an approver"), "{}", r.body);
    let r = f.post("/console/jit", Some(&otto), &request(bob)).await;
    assert_ok(&r, "request bob");
    let pending = scim_server::governance::jit::list(&env.gov, "default", &all("pending"))
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    let ada_grant = pending
        .iter()
        .find(|g| g.user == ada_id)
        .unwrap()
        .id
        .clone();
    let bob_grant = pending
        .iter()
        .find(|g| g.user != ada_id)
        .unwrap()
        .id
        .clone();
    let list = f.get("/console/jit?status=pending", Some(&otto)).await;
    assert!(list.body.contains("PT4H from approval"), "{}", list.body);

    // an operator may not decide; the user may not approve her own grant (the policy says so);
    // the manager may
    let approve = format!("/console/jit/{ada_grant}/approve");
    let r = f
        .post(&approve, Some(&otto), &form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body
            .contains("the operator role may not approve or deny time-bound access")
    );
    let (self_cookie, self_csrf) = sign_in(&f, "ada", Role::Approver, Some(ada)).await;
    let r = f
        .post(&approve, Some(&self_cookie), &form(&[("csrf", &self_csrf)]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("cannot approve their own"), "{}", r.body);
    let (boss, boss_csrf) = sign_in(&f, "mgr", Role::Approver, Some(mgr)).await;
    let page = f
        .get(&format!("/console/jit/{ada_grant}"), Some(&boss))
        .await;
    assert!(page.body.contains("Approve") && page.body.contains("Deny"));
    let approved_at = env.clock.now();
    let r = f
        .post(
            &approve,
            Some(&boss),
            &form(&[("csrf", &boss_csrf), ("note", "ok for the incident")]),
        )
        .await;
    assert_ok(&r, "approve");
    let expires = approved_at + time::Duration::hours(4);
    assert!(
        r.body.contains(&format!(
            "expires {}",
            scim_server::console::views::when(expires)
        )),
        "{}",
        r.body
    );
    let g = scim_server::governance::jit::get(&env.gov, "default", &ada_grant)
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    assert_eq!(g.decided_by.as_deref(), Some(mgr_id.as_str()));
    assert_eq!(g.note.as_deref(), Some("ok for the incident"));
    let r = f
        .post(
            &format!("/console/jit/{bob_grant}/deny"),
            Some(&boss),
            &form(&[("csrf", &boss_csrf)]),
        )
        .await;
    assert_ok(&r, "deny");
    assert!(r.body.contains("Denied"));
    // a decided grant cannot be decided again: the error is on the page, nothing changes
    let r = f
        .post(&approve, Some(&boss), &form(&[("csrf", &boss_csrf)]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("not pending"), "{}", r.body);

    let events = scim_server::governance::events(&env.gov, "default", Some(&ada_grant))
        .await
        .unwrap();
    let by: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.kind.starts_with("jit.") && e.kind != "jit.notified")
        .map(|e| (e.kind.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        by,
        vec![
            ("jit.requested", "console:sub-otto"),
            ("jit.approved", "console:sub-mgr")
        ]
    );
    env.drain().await;
    assert!(env.roles(ada).contains("helpdesk"), "the bridge granted it");
    assert!(env.audit_problems().await.is_empty());
    let active = f.get("/console/jit?status=active", Some(&otto)).await;
    assert!(active.body.contains("expires "));
}

async fn hygiene_and_leaver_evidence(env: Env) {
    let ids = seed_team(&env).await;
    let f = console(&env, true).await;
    let (cookie, csrf) = sign_in(&f, "vic", Role::Viewer, None).await;
    let cy_seen = env.clock.now() - time::Duration::days(200);
    assert!(
        env.fake
            .set_last_sign_in("cy@contoso.example", Some(&rfc3339(cy_seen)))
    );
    let page = f.get("/console/hygiene", Some(&cookie)).await;
    assert_ok(&page, "hygiene");
    assert!(page.body.contains("Report made"));
    assert!(page.body.contains("Stale accounts") && page.body.contains("Orphaned accounts"));
    assert!(page.body.contains("cy@contoso.example"), "{}", page.body);
    // the report is kept until a new one is asked for
    assert!(
        env.fake
            .set_last_sign_in("cy@contoso.example", Some(&rfc3339(env.clock.now())))
    );
    assert!(
        f.get("/console/hygiene", Some(&cookie))
            .await
            .body
            .contains("cy@contoso.example")
    );
    let fresh = f
        .post("/console/hygiene", Some(&cookie), &form(&[("csrf", &csrf)]))
        .await;
    assert_ok(&fresh, "refresh");
    assert!(!fresh.body.contains("cy@contoso.example"), "{}", fresh.body);

    // a leaver: bob is terminated, the bridge revokes
    env.clock.advance(time::Duration::hours(1));
    env.patch_user(
        &ids[2],
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    env.clock.advance(time::Duration::minutes(1));
    env.drain().await;
    // an hour on, the first session is over (idle timeout): a new one
    let (cookie, _) = sign_in(&f, "vic", Role::Viewer, None).await;
    let list = f.get("/console/evidence", Some(&cookie)).await;
    assert_ok(&list, "evidence");
    assert!(list.body.contains("bob@contoso.example"), "{}", list.body);
    assert!(list.body.contains("Download CSV"));
    let now = env.clock.now();
    let from = (now - time::Duration::days(1)).date().to_string();
    let to = (now + time::Duration::days(1)).date().to_string();
    let csv = f
        .get(
            &format!("/console/evidence/export?from={from}&to={to}&format=csv"),
            Some(&cookie),
        )
        .await;
    assert_ok(&csv, "csv");
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"leaver-evidence-default-")
    );
    assert!(csv.body.contains("bob@contoso.example"));
    let doc = f
        .get(
            &format!("/console/evidence/export?from={from}&to={to}&format=json"),
            Some(&cookie),
        )
        .await;
    assert_ok(&doc, "json");
    let doc: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
    assert_eq!(doc["records"][0]["userName"], "bob@contoso.example");
    assert!(doc["records"][0]["digest"].as_str().is_some());
    let html = f
        .get(
            &format!("/console/evidence/export?from={from}&to={to}&format=html"),
            Some(&cookie),
        )
        .await;
    assert_ok(&html, "html");
    assert!(html.body.contains("bob@contoso.example"));
    // bad input: named, never a 500
    let bad = f
        .get("/console/evidence?from=yesterday", Some(&cookie))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"from-error\""), "{}", bad.body);
    let bad = f
        .get(
            &format!("/console/evidence/export?from={from}&to={to}&format=xml"),
            Some(&cookie),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("json, csv, html"));
}

/// A review of `n` items for `reviewer` (and its e-mail address), stored as a started review
/// stores them; returns the review id.
async fn stored_review(
    env: &Env,
    name: &str,
    reviewer: &str,
    email: Option<&str>,
    n: usize,
) -> String {
    use scim_server::governance::store::{ItemRow, ReviewRow};
    let now = env.clock.now();
    let ms = scim_graph_bridge::clock::to_millis(now);
    let id = uuid::Uuid::new_v4().to_string();
    let spec = json!({
        "name": name, "scope": [{"group": "eng"}],
        "reviewers": {"mode": "named", "reviewer": reviewer},
        "dueAt": rfc3339(now + time::Duration::days(7)), "defaultDecision": "keep"
    });
    let row = ReviewRow {
        tenant_id: "default".into(),
        id: id.clone(),
        name: name.into(),
        spec: spec.to_string(),
        status: "scheduled".into(),
        starts_at_ms: ms,
        due_at_ms: ms + 7 * 86_400_000,
        created_at_ms: ms,
        created_by: "cli".into(),
        started_at_ms: None,
        completed_at_ms: None,
        applied_at_ms: None,
    };
    env.gov.store.insert_review(&row, &[], &[]).await.unwrap();
    let items: Vec<ItemRow> = (0..n)
        .map(|i| ItemRow {
            tenant_id: "default".into(),
            review_id: id.clone(),
            id: format!("item-{i:03}"),
            target: json!({"catalog": {"grant": {"kind": "group", "name": "eng"}}}).to_string(),
            target_label: "group \"eng\"".into(),
            graph_user_id: format!("g-{i:03}"),
            user_principal_name: Some(format!("holder{i:03}@contoso.example")),
            display_name: None,
            scim_user_id: None,
            assignment_id: None,
            reviewer: reviewer.into(),
            reviewer_email: email.map(str::to_string),
            last_sign_in_ms: None,
            rule_derived: 1,
            recommendation: "keep".into(),
            recommendation_reason: "the rules grant it".into(),
            decision: None,
            justification: None,
            decided_by: None,
            decided_at_ms: None,
            outcome: None,
            outcome_detail: None,
            applied_at_ms: None,
        })
        .collect();
    assert!(
        env.gov
            .store
            .start_review("default", &id, &items, &[], &[], now)
            .await
            .unwrap()
    );
    id
}

async fn the_inbox_pages_by_key_and_matches_either_name(env: Env) {
    // 30 items naming mia by user name, 12 naming her only by e-mail address, 5 for someone else
    let first = stored_review(&env, "Big review", "Mia.K@contoso.example", None, 30).await;
    stored_review(
        &env,
        "Second review",
        "Mia K",
        Some("mia@CONTOSO.example"),
        12,
    )
    .await;
    stored_review(&env, "Not hers", "secops@contoso.example", None, 5).await;
    let f = console(&env, true).await;
    let operator = Operator {
        tenant: "default".into(),
        subject: "sub-mia".into(),
        display_name: "mia".into(),
        role: Role::Approver,
    };
    let names = ReviewerIdentity {
        email: Some("mia@contoso.example".into()),
        username: Some("mia.k@contoso.example".into()),
    };
    let set_cookie = f.console.start_session_as(&operator, &names).await.unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let mut path = "/console/reviews".to_string();
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let page = f.get(&path, Some(&cookie)).await;
        assert_ok(&page, &path);
        assert!(
            page.body.contains("Waiting for your decision (42)"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("Not hers"));
        pages += 1;
        seen.extend(
            page.body
                .split("<a href=\"/console/reviews/")
                .skip(1)
                .filter_map(|s| s.split('"').next())
                .filter(|s| s.contains("/items/"))
                .map(str::to_string),
        );
        match page
            .body
            .split("href=\"")
            .find(|s| s.contains(">Next page<"))
        {
            Some(next) => path = next.split('"').next().unwrap().replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 42, "{seen:?}");
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 42, "each item once");
    // deciding one moves it to the decided tab
    let page = f.get("/console/reviews", Some(&cookie)).await;
    let csrf = csrf_of(&page.body);
    let r = f
        .post(
            &format!("/console/reviews/{first}/items/item-007"),
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("decision", "revoke"),
                ("justification", "not needed"),
            ]),
        )
        .await;
    assert_ok(&r, "decide");
    let decided = f.get("/console/reviews?show=decided", Some(&cookie)).await;
    assert!(decided.body.contains("holder007@contoso.example"));
    assert!(decided.body.contains("Waiting for your decision (41)"));
}

async fn pages_say_when_governance_or_the_bridge_is_missing(env: Env) {
    let f = console(&env, false).await;
    let (cookie, _) = sign_in(&f, "ada", Role::Admin, Some("ada@contoso.example")).await;
    for path in [
        "/console/reviews",
        "/console/reviews/campaigns",
        "/console/jit",
        "/console/hygiene",
        "/console/evidence",
    ] {
        let r = f.get(path, Some(&cookie)).await;
        assert_ok(&r, path);
        assert!(
            r.body.contains("Governance is not enabled on this server"),
            "{path}"
        );
    }
    let dashboard = f.get("/console", Some(&cookie)).await;
    assert!(
        dashboard
            .body
            .contains("<div class=\"figure\">off</div><div class=\"label\">governance")
    );

    // governance without the Graph bridge: reviews and grants work, hygiene says why not
    let config = &env._config;
    let gov = scim_server::governance::open_governance(
        config,
        env.store.clone(),
        f.app.registry.clone(),
        None,
        env.clock.clone(),
    )
    .await
    .unwrap()
    .unwrap();
    let app = f.app.clone().with_governance(gov);
    let console = Console::new(
        app,
        ConsoleDb::open(&env.db.url).await.unwrap(),
        ConsoleConfig::default(),
        "default",
        None,
    )
    .unwrap();
    let f = Fixture {
        router: scim_server::console::router(console.clone()),
        console,
        ..f
    };
    let (cookie, _) = sign_in(&f, "ada", Role::Admin, Some("ada@contoso.example")).await;
    let r = f.get("/console/hygiene", Some(&cookie)).await;
    assert_ok(&r, "hygiene without bridge");
    assert!(r.body.contains("No report can be made"), "{}", r.body);
    assert!(r.body.contains("configure the Graph bridge"));
    for path in ["/console/reviews", "/console/jit", "/console/evidence"] {
        assert_ok(&f.get(path, Some(&cookie)).await, path);
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::gov_access::on_both(super::$name).await;
            }
        )*
    };
}

mod run {
    both!(
        a_reviewer_decides_one_item_and_then_two_at_once,
        an_operator_requests_time_bound_access_and_an_approver_decides,
        hygiene_and_leaver_evidence,
        pages_say_when_governance_or_the_bridge_is_missing,
        the_inbox_pages_by_key_and_matches_either_name,
    );
}
