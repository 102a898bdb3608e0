//! The operator console through its router (`Router::oneshot`), on SQLite and PostgreSQL: the
//! one-time admin link, sessions and their timeouts on a manual clock, CSRF, per-role
//! authorisation of every action, search and a person's timeline, security headers. The browser
//! journeys (OpenID Connect sign-in, Chromium) are in `console_browser.rs`.

use crate::support::{Raw, TestDb};
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use scim_graph_bridge::store::BridgeStore;
use scim_server::auth::{AuthConfig, AuthService, CredentialKind, ManualClock, token_store};
use scim_server::config::Config;
use scim_server::console::db::ConsoleDb;
use scim_server::console::roles::{Operator, Role};
use scim_server::console::{Console, ConsoleConfig};
use scim_server::inbound::{InboundConfig, Intake, Queue};
use scim_server::state::AppState;
use serde_json::json;
use std::sync::Arc;
use time::macros::datetime;
use tower::ServiceExt;

pub(crate) struct Fixture {
    pub console: Console,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub app: AppState,
    pub bridge: BridgeStore,
}

/// A console on `db` with the HR intake's queue and the Graph bridge's tables on the same
/// database, as `serve` opens them with `[graph]` set.
pub(crate) async fn fixture(db: &TestDb) -> Fixture {
    fixture_with_intake(db, |queue, _| Intake::new(queue, InboundConfig::default()))
        .await
        .0
}

/// As [`fixture`], with the HR intake `intake` makes of the queue on `db` (and the console's
/// clock), for tests that need mappings or other intake settings.
pub(crate) async fn fixture_with_intake(
    db: &TestDb,
    intake: impl FnOnce(Queue, Arc<ManualClock>) -> Intake,
) -> (Fixture, Arc<Intake>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
    let config = Config::default();
    scim_server::server::ensure_tenant(db.store.as_ref(), "default", clock.as_ref())
        .await
        .unwrap();
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(db.store.clone()),
        clock.clone(),
    )
    .unwrap();
    let (console_db, queue, bridge) = match &db.raw {
        Raw::Sqlite(s, _) => (
            ConsoleDb::Sqlite(s.pool().clone()),
            Queue::Sqlite(s.pool().clone()),
            BridgeStore::Sqlite(s.pool().clone()),
        ),
        Raw::Postgres(s, _, _) => (
            ConsoleDb::Postgres(s.pool().clone()),
            Queue::Postgres(s.pool().clone()),
            BridgeStore::Postgres(s.pool().clone()),
        ),
    };
    bridge.migrate().await.unwrap();
    let intake = Arc::new(intake(queue, clock.clone()));
    let app = AppState::with_clock(&config, db.store.clone(), Arc::new(auth), clock.clone())
        .with_inbound(intake.clone());
    let console = Console::new(
        app.clone(),
        console_db,
        ConsoleConfig::default(),
        "default",
        Some(bridge.clone()),
    )
    .unwrap();
    (
        Fixture {
            router: scim_server::console::router(console.clone()),
            console,
            clock,
            app,
            bridge,
        },
        intake,
    )
}

pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Fixture {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Reply {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::from(form.to_string())).unwrap())
            .await
    }

    /// Signs in with `role` and returns the `Cookie` header value and the CSRF token.
    pub async fn sign_in(&self, role: Role) -> (String, String) {
        let operator = Operator {
            tenant: "default".into(),
            subject: format!("sub-{role}"),
            display_name: format!("A {role}"),
            role,
        };
        let set_cookie = self.console.start_session(&operator).await.unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let page = self.get("/console", Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        (cookie, csrf_of(&page.body))
    }

    pub async fn create_user(&self, user_name: &str, display: &str) -> String {
        let ctx = scim_server::test_support::request_ctx(
            scim_server::test_support::principal(
                "default",
                "tok_hr",
                false,
                CredentialKind::StaticToken,
            ),
            Some("req-hr-1".into()),
            "http://localhost/scim/v2",
        );
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name, "displayName": display,
            "emails": [{"value": user_name, "primary": true}]
        });
        let reply = scim_server::service::resources::create(
            &self.app,
            &ctx,
            "User",
            body,
            &Default::default(),
        )
        .await
        .unwrap();
        reply.body["id"].as_str().unwrap().to_string()
    }
}

pub(crate) fn csrf_of(page: &str) -> String {
    let at =
        page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

pub(crate) fn location(reply: &Reply) -> &str {
    reply
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn one_time_link_signs_in_once(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let signed_out = f.get("/console", None).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_out), "/console/signin?reason=signin");

    let secret = f.console.issue_admin_link().await.unwrap();
    let path = format!("/console/auth/link/{secret}");
    // Fetching the link (a mail scanner, a preview) does not use it.
    let confirm = f.get(&path, None).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Sign in as administrator"));
    let used = f.post(&path, None, "").await;
    assert_eq!(used.status, StatusCode::SEE_OTHER);
    let set_cookie = used
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP: no Secure attribute"
    );
    let cookie = set_cookie.split(';').next().unwrap();
    let dashboard = f.get("/console", Some(cookie)).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("first-start administrator · admin"));

    let again = f.post(&path, None, "").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains("already used"));

    // An expired link is refused too.
    let late = f.console.issue_admin_link().await.unwrap();
    f.clock.advance(time::Duration::minutes(16));
    let expired = f
        .post(&format!("/console/auth/link/{late}"), None, "")
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
}

async fn sessions_end_when_idle_or_too_old_and_on_sign_out(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let (cookie, _) = f.sign_in(Role::Viewer).await;
    f.clock.advance(time::Duration::minutes(29));
    assert_eq!(
        f.get("/console", Some(&cookie)).await.status,
        StatusCode::OK
    );
    f.clock.advance(time::Duration::minutes(31));
    let idle = f.get("/console", Some(&cookie)).await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&idle), "/console/signin?reason=expired");
    // The session is gone, not merely refused once.
    f.clock.set(datetime!(2026-03-01 09:00 UTC));
    assert_eq!(
        location(&f.get("/console", Some(&cookie)).await),
        "/console/signin?reason=signin"
    );
    let expired_page = f.get("/console/signin?reason=expired", None).await;
    assert!(expired_page.body.contains("Your session ended"));

    // Active every 20 minutes, the session still ends 12 hours after sign-in.
    let (cookie, _) = f.sign_in(Role::Viewer).await;
    for _ in 0..35 {
        f.clock.advance(time::Duration::minutes(20));
        assert_eq!(
            f.get("/console", Some(&cookie)).await.status,
            StatusCode::OK
        );
    }
    // 12 hours and a minute after sign-in.
    f.clock.advance(time::Duration::minutes(21));
    assert_eq!(
        location(&f.get("/console", Some(&cookie)).await),
        "/console/signin?reason=expired"
    );

    // Sign-out needs the CSRF token, then ends the session.
    let (cookie, csrf) = f.sign_in(Role::Viewer).await;
    assert_eq!(
        f.post("/console/signout", Some(&cookie), "").await.status,
        StatusCode::FORBIDDEN
    );
    let out = f
        .post("/console/signout", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        f.get("/console", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn forms_without_the_session_csrf_token_are_refused(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let (cookie, csrf) = f.sign_in(Role::Admin).await;
    let (_, other_csrf) = f.sign_in(Role::Admin).await;
    for form in [
        "label=ci".to_string(),
        "label=ci&csrf=".to_string(),
        format!("label=ci&csrf={other_csrf}"),
    ] {
        let refused = f.post("/console/admin/tokens", Some(&cookie), &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{form}");
        assert!(
            refused.body.contains("not sent from a console page"),
            "{}",
            refused.body
        );
    }
    assert!(
        scim_server::auth::list_tokens(token_store(db.store.clone()).as_ref(), Some("default"))
            .await
            .unwrap()
            .is_empty()
    );

    let created = f
        .post(
            "/console/admin/tokens",
            Some(&cookie),
            &format!("label=Entra+ID&csrf={csrf}"),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let tokens =
        scim_server::auth::list_tokens(token_store(db.store.clone()).as_ref(), Some("default"))
            .await
            .unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].label, "Entra ID");
    // The secret is on the creation page, once; it authenticates.
    let at = created.body.find("value=\"scim_").expect("the secret") + "value=\"".len();
    let secret = created.body[at..].split('"').next().unwrap();
    assert!(
        f.app
            .authenticator
            .authenticate(&{
                let mut h = http::HeaderMap::new();
                h.insert(
                    header::AUTHORIZATION,
                    format!("Bearer {secret}").parse().unwrap(),
                );
                h
            })
            .await
            .is_ok()
    );
    let list = f.get("/console/admin/tokens", Some(&cookie)).await;
    assert!(list.body.contains("Entra ID") && !list.body.contains(secret));

    // An empty label is an error next to the field, and nothing is created.
    let bad = f
        .post(
            "/console/admin/tokens",
            Some(&cookie),
            &format!("label=++&csrf={csrf}"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"label-error\""), "{}", bad.body);
    assert!(bad.body.contains("aria-describedby=\"label-error\""));
    assert_eq!(
        scim_server::auth::list_tokens(token_store(db.store.clone()).as_ref(), Some("default"))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn token_actions_are_refused_to_every_role_but_admin(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let (admin, admin_csrf) = f.sign_in(Role::Admin).await;
    let created = f
        .post(
            "/console/admin/tokens",
            Some(&admin),
            &format!("label=okta&csrf={admin_csrf}"),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    // The secret, shown once, authenticates (and this replica now caches its verification).
    let secret = created
        .body
        .split("value=\"scim_")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("scim_{rest}"))
        .expect("the secret is shown once");
    let mut bearer = http::HeaderMap::new();
    bearer.insert(
        header::AUTHORIZATION,
        format!("Bearer {secret}").parse().unwrap(),
    );
    assert!(f.app.authenticator.authenticate(&bearer).await.is_ok());
    let store = token_store(db.store.clone());
    let id = scim_server::auth::list_tokens(store.as_ref(), Some("default"))
        .await
        .unwrap()[0]
        .id
        .clone();

    for role in [Role::Viewer, Role::Operator, Role::Approver] {
        let (cookie, csrf) = f.sign_in(role).await;
        let list = f.get("/console/admin/tokens", Some(&cookie)).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(
            !list.body.contains("Create token"),
            "{role}: no create form shown"
        );
        let create = f
            .post(
                "/console/admin/tokens",
                Some(&cookie),
                &format!("label=x&csrf={csrf}"),
            )
            .await;
        assert_eq!(create.status, StatusCode::FORBIDDEN, "{role} create");
        assert!(
            create
                .body
                .contains(&format!("the {role} role may not create tokens"))
        );
        let revoke = f
            .post(
                &format!("/console/admin/tokens/{id}/revoke"),
                Some(&cookie),
                &format!("csrf={csrf}"),
            )
            .await;
        assert_eq!(revoke.status, StatusCode::FORBIDDEN, "{role} revoke");
    }
    let tokens = scim_server::auth::list_tokens(store.as_ref(), Some("default"))
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked.is_none());

    let confirm = f
        .get(&format!("/console/admin/tokens/{id}/revoke"), Some(&admin))
        .await;
    assert!(confirm.body.contains("Revoke token"));
    let revoked = f
        .post(
            &format!("/console/admin/tokens/{id}/revoke"),
            Some(&admin),
            &format!("csrf={admin_csrf}"),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert!(
        scim_server::auth::list_tokens(store.as_ref(), Some("default"))
            .await
            .unwrap()[0]
            .revoked
            .is_some()
    );
    // Revoked through this replica: refused on its next request, without waiting for the
    // verified-credential cache lifetime (the clock has not moved).
    assert_eq!(
        f.app
            .authenticator
            .authenticate(&bearer)
            .await
            .unwrap_err()
            .to_string(),
        "token is revoked"
    );
    let missing = f
        .post(
            "/console/admin/tokens/tok_nope/revoke",
            Some(&admin),
            &format!("csrf={admin_csrf}"),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Every action, allowed or refused, is in the log with who took it.
    let actions = f.console.db().recent_actions("default", 100).await.unwrap();
    let summary: Vec<(String, String, String)> = actions
        .iter()
        .rev()
        .map(|a| (a.subject.clone(), a.action.clone(), a.outcome.clone()))
        .collect();
    let s = |sub: &str, action: &str, outcome: &str| {
        (sub.to_string(), action.to_string(), outcome.to_string())
    };
    assert_eq!(
        summary,
        vec![
            s("sub-admin", "create_token", "ok"),
            s("sub-viewer", "create_token", "refused"),
            s("sub-viewer", "revoke_token", "refused"),
            s("sub-operator", "create_token", "refused"),
            s("sub-operator", "revoke_token", "refused"),
            s("sub-approver", "create_token", "refused"),
            s("sub-approver", "revoke_token", "refused"),
            s("sub-admin", "revoke_token", "ok"),
        ]
    );
    let activity = f.get("/console/activity", Some(&admin)).await;
    assert!(activity.body.contains("A viewer") && activity.body.contains("refused"));
}

async fn people_search_paging_and_a_person_timeline(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let ada = f.create_user("ada@example.com", "Ada Lovelace").await;
    for i in 0..30 {
        f.create_user(&format!("user{i:02}@example.com"), &format!("User {i:02}"))
            .await;
    }
    let (cookie, _) = f.sign_in(Role::Viewer).await;

    let found = f.get("/console/people?q=ada", Some(&cookie)).await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains("Showing 1–1 of 1."), "{}", found.body);
    assert!(found.body.contains(&format!("/console/people/{ada}")));

    let first = f.get("/console/people", Some(&cookie)).await;
    assert!(first.body.contains("Showing 1–25 of 31."), "{}", first.body);
    assert!(first.body.contains("Next page") && !first.body.contains("Previous page"));
    let second = f
        .get(
            "/console/people?q=&filter=&sort=userName&order=ascending&start=26",
            Some(&cookie),
        )
        .await;
    assert!(second.body.contains("Showing 26–31 of 31."));
    assert!(second.body.contains("Previous page") && !second.body.contains("Next page"));
    let desc = f
        .get(
            "/console/people?sort=userName&order=descending",
            Some(&cookie),
        )
        .await;
    let (u29, u28) = (
        desc.body.find("user29@").unwrap(),
        desc.body.find("user28@").unwrap(),
    );
    assert!(u29 < u28, "descending order");

    let filtered = f
        .get(
            "/console/people?filter=userName+eq+%22user07%40example.com%22",
            Some(&cookie),
        )
        .await;
    assert!(filtered.body.contains("Showing 1–1 of 1."));
    let bad = f
        .get("/console/people?filter=userName+eq", Some(&cookie))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"filter-error\""), "{}", bad.body);
    let bad_sort = f.get("/console/people?sort=password", Some(&cookie)).await;
    assert_eq!(bad_sort.status, StatusCode::BAD_REQUEST);

    let person = f
        .get(&format!("/console/people/{ada}"), Some(&cookie))
        .await;
    assert_eq!(person.status, StatusCode::OK);
    assert!(person.body.contains("<h1>ada@example.com</h1>"));
    assert!(person.body.contains("Ada Lovelace"));
    assert!(
        person.body.contains("create User") && person.body.contains("tok_hr"),
        "the timeline names the credential"
    );
    assert!(person.body.contains("Not a member of any group."));
    let missing = f.get("/console/people/nope", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let dashboard = f.get("/console", Some(&cookie)).await;
    assert!(
        dashboard.body.contains("<div class=\"figure\">31</div>"),
        "{}",
        dashboard.body
    );
    assert!(
        dashboard
            .body
            .contains("The change log's head is record 31")
    );
}

async fn pages_carry_security_headers_and_assets_are_immutable(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let (cookie, _) = f.sign_in(Role::Viewer).await;
    let page = f.get("/console", Some(&cookie)).await;
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(
        page.headers.get(header::REFERRER_POLICY).unwrap(),
        "no-referrer"
    );
    assert!(
        !page.body.contains("<script>") && !page.body.contains("style=\""),
        "no inline script or style"
    );
    let css = scim_server::console::assets::url("console.css");
    assert!(page.body.contains(&css));
    let asset = f.get(&css, None).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(
        asset.headers.get(header::CACHE_CONTROL).unwrap(),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        f.get("/console/assets/console.css", None).await.status,
        StatusCode::NOT_FOUND
    );
}

crate::support::both!(
    one_time_link_signs_in_once,
    sessions_end_when_idle_or_too_old_and_on_sign_out,
    forms_without_the_session_csrf_token_are_refused,
    token_actions_are_refused_to_every_role_but_admin,
    people_search_paging_and_a_person_timeline,
    pages_carry_security_headers_and_assets_are_immutable,
);
