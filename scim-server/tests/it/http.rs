//! Router-level tests through `Router::oneshot` (no socket): content types, error bodies, every
//! limit, authentication and authorisation, tenant isolation, rate limiting, discovery, ETags,
//! PATCH status codes, soft delete, Bulk, and the OpenAPI snapshot.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use scim_core::change::Change;
use scim_core::patch::MembershipDelta;
use scim_core::query::ListQuery;
use scim_core::resource::Resource;
use scim_core::schema::ResourceType;
use scim_server::auth::{AuthConfig, AuthService, token_store};
use scim_server::clock::{Clock, ManualClock, SystemClock};
use scim_server::config::{Config, Secret};
use scim_server::state::AppState;
use scim_server::store::{
    Load, Page, Resources, Result as StoreResult, Store, StoreError, Tenant, WriteContext,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789abcdef";
const BASE: &str = "/scim/v2";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

struct TestApp {
    router: Router,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a SCIM error body with this status and optional scimType.
    fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/scim+json"),
            "{}",
            self.body
        );
        assert_eq!(self.body["schemas"], json!([ERROR_URN]), "{}", self.body);
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "{}",
            self.body
        );
        match scim_type {
            Some(t) => assert_eq!(self.body["scimType"], t, "{}", self.body),
            None => assert!(self.body.get("scimType").is_none(), "{}", self.body),
        }
    }
}

fn config() -> Config {
    Config {
        token: Some(Secret(TOKEN.into())),
        ..Config::default()
    }
}

async fn app() -> TestApp {
    app_with(config(), Arc::new(SystemClock)).await
}

async fn app_with(config: Config, clock: Arc<dyn Clock>) -> TestApp {
    app_wrapping(config, clock, |s| s).await
}

/// An app whose resource store is wrapped by `wrap` (to observe what the service asks of
/// storage).
async fn app_wrapping(
    config: Config,
    clock: Arc<dyn Clock>,
    wrap: impl FnOnce(Arc<dyn Resources>) -> Arc<dyn Resources>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scim.db").display());
    let store = scim_server::server::open_store(&url).await.unwrap();
    store.migrate().await.unwrap();
    scim_server::server::ensure_tenant(store.as_ref(), &config.default_tenant, clock.as_ref())
        .await
        .unwrap();
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(store.clone()),
        clock.clone(),
    )
    .unwrap()
    .with_env_token(
        config.default_tenant.clone(),
        &config.token.as_ref().unwrap().0,
    );
    let auth = Arc::new(auth);
    let resources = wrap(store.clone());
    let state =
        AppState::with_clock(&config, store.clone(), auth, clock.clone()).with_resources(resources);
    TestApp {
        router: scim_server::http::router(state),
        store,
        clock,
        _dir: dir,
    }
}

impl TestApp {
    async fn raw(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    fn request(
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        match body {
            Some(v) => b
                .header("content-type", "application/scim+json")
                .body(Body::from(serde_json::to_vec(v).unwrap()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }

    async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.raw(Self::request(
            method,
            &format!("{BASE}{path}"),
            Some(token),
            body.as_ref(),
        ))
        .await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(TOKEN, method, path, body).await
    }

    async fn create_user(&self, user_name: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_URN], "userName": user_name, "active": true})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    async fn create_group(&self, name: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP_URN], "displayName": name})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    async fn token_for(&self, tenant: &str, read_only: bool) -> String {
        if self.store.tenant(tenant).await.unwrap().is_none() {
            self.store
                .create_tenant(&Tenant {
                    id: tenant.into(),
                    name: tenant.into(),
                    bulk_upsert_by_external_id: false,
                    created: self.clock.now(),
                })
                .await
                .unwrap();
        }
        let (_, secret) = scim_server::auth::create_token(
            self.store.as_ref(),
            tenant,
            "test",
            read_only,
            self.clock.now(),
        )
        .await
        .unwrap();
        secret.expose().to_string()
    }
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn openapi_document_matches_snapshot() {
    let doc = serde_json::to_value(scim_server::http::openapi("/scim/v2")).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn request_content_types_are_accepted_and_responses_are_scim_json() {
    let app = app().await;
    for (i, ct) in [
        Some("application/scim+json"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/scim+json;charset=UTF-8"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(format!("{BASE}/Users"))
            .header("authorization", format!("Bearer {TOKEN}"));
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let body = json!({"schemas": [USER_URN], "userName": format!("ct{i}")});
        let r = app
            .raw(
                b.body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{ct:?}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        let location = r.header("location").unwrap();
        assert!(
            location.ends_with(&format!("/scim/v2/Users/{}", id(&r.body))),
            "{location}"
        );
        assert_eq!(r.body["meta"]["location"], location);
        assert!(r.header("etag").is_some());
    }
    let r = app
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{BASE}/Users"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "text/plain")
                .body(Body::from("userName=x"))
                .unwrap(),
        )
        .await;
    r.assert_error(415, None);
}

#[tokio::test]
async fn errors_are_scim_bodies_with_string_status() {
    let app = app().await;
    app.call(Method::GET, "/Users/does-not-exist", None)
        .await
        .assert_error(404, None);
    app.call(Method::GET, "/Groups/does-not-exist", None)
        .await
        .assert_error(404, None);
    app.call(Method::GET, "/Nope", None)
        .await
        .assert_error(404, None);
    app.call(Method::DELETE, "/Users", None)
        .await
        .assert_error(405, None);
    let junk = app
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{BASE}/Users"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/scim+json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    junk.assert_error(400, Some("invalidSyntax"));
    let empty = app
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{BASE}/Users"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    empty.assert_error(400, Some("invalidSyntax"));
    // No userName: 400.
    let r = app
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_URN], "displayName": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["schemas"], json!([ERROR_URN]));
    // Duplicate userName: 409 uniqueness, case-insensitively.
    app.create_user("dup@example.com").await;
    app.call(
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER_URN], "userName": "DUP@example.com"})),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    app.create_group("Sales").await;
    app.call(
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP_URN], "displayName": "Sales"})),
    )
    .await
    .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn probe_without_user_agent_and_unknown_parameters_gets_an_empty_list() {
    let app = app().await;
    for path in [
        "/Users?aadOptscim062020&filter=userName+eq+%2201a1c4f0-0000-4000-8000-000000000000%22",
        "/Users?filter=userName%20eq%20%22nobody%22&startIndex=1&count=100",
        "/Groups?excludedAttributes=members&filter=displayName+eq+%22nobody%22",
    ] {
        let r = app.call(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        assert_eq!(r.body["totalResults"], 0, "{path}");
        assert_eq!(r.body["Resources"], json!([]), "{path}");
        assert_eq!(
            r.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
    }
    // `+` is a space in a query string.
    app.create_user("jane doe").await;
    let r = app
        .call(
            Method::GET,
            "/Users?filter=userName+eq+%22jane+doe%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let mut c = config();
    c.limits.max_body_bytes = 1024;
    let app = app_with(c, Arc::new(SystemClock)).await;
    let big = json!({"schemas": [USER_URN], "userName": "big", "displayName": "x".repeat(4096)});
    app.call(Method::POST, "/Users", Some(big))
        .await
        .assert_error(413, None);
    // Small bodies still pass.
    app.create_user("small").await;
}

#[tokio::test]
async fn filter_over_the_limit_is_400_invalid_filter() {
    let mut c = config();
    c.limits.max_filter_length = 64;
    let app = app_with(c, Arc::new(SystemClock)).await;
    let long = format!("userName eq \"{}\"", "a".repeat(100));
    let path = format!(
        "/Users?filter={}",
        percent_encoding::utf8_percent_encode(&long, percent_encoding::NON_ALPHANUMERIC)
    );
    app.call(Method::GET, &path, None)
        .await
        .assert_error(400, Some("invalidFilter"));
    app.call(
        Method::POST,
        "/Users/.search",
        Some(json!({"filter": long})),
    )
    .await
    .assert_error(400, Some("invalidFilter"));
    // A malformed filter is invalidFilter too.
    app.call(Method::GET, "/Users?filter=userName+eq", None)
        .await
        .assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn count_is_capped_at_the_maximum_page_size() {
    let mut c = config();
    c.limits.max_page_size = 2;
    let app = app_with(c, Arc::new(SystemClock)).await;
    for i in 0..3 {
        app.create_user(&format!("u{i}")).await;
    }
    let r = app.call(Method::GET, "/Users?count=100", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 3);
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 2);
    let spc = app.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(spc.body["filter"]["maxResults"], 2);
}

#[tokio::test]
async fn patch_with_too_many_operations_is_400_too_many() {
    let mut c = config();
    c.limits.max_patch_operations = 2;
    let app = app_with(c, Arc::new(SystemClock)).await;
    let user = app.create_user("ops").await;
    let ops: Vec<Value> = (0..3)
        .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
        .collect();
    app.call(
        Method::PATCH,
        &format!("/Users/{}", id(&user)),
        Some(patch(json!(ops))),
    )
    .await
    .assert_error(400, Some("tooMany"));
}

#[tokio::test]
async fn bulk_over_the_limits_is_413() {
    let mut c = config();
    c.limits.max_bulk_operations = 2;
    c.limits.max_bulk_payload_bytes = 4096;
    let app = app_with(c, Arc::new(SystemClock)).await;
    let op = |i: usize| {
        json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
               "data": {"schemas": [USER_URN], "userName": format!("bulk{i}")}})
    };
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                      "Operations": [op(0), op(1), op(2)]});
    app.call(Method::POST, "/Bulk", Some(body))
        .await
        .assert_error(413, None);
    let huge = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                      "Operations": [{"method": "POST", "path": "/Users",
                                      "data": {"userName": "x", "displayName": "y".repeat(8192)}}]});
    app.call(Method::POST, "/Bulk", Some(huge))
        .await
        .assert_error(413, None);
    let spc = app.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(spc.body["bulk"]["maxOperations"], 2);
    assert_eq!(spc.body["bulk"]["maxPayloadSize"], 4096);
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_with_www_authenticate() {
    let app = app().await;
    for token in [None, Some("wrong-token-wrong-token")] {
        let r = app
            .raw(TestApp::request(
                Method::GET,
                &format!("{BASE}/Users"),
                token,
                None,
            ))
            .await;
        r.assert_error(401, None);
        assert!(
            r.header("www-authenticate").unwrap().starts_with("Bearer"),
            "{:?}",
            r.headers
        );
        assert!(!r.body.to_string().contains("wrong-token"));
    }
    // The scheme is case-insensitive.
    let r = app
        .raw(
            Request::builder()
                .uri(format!("{BASE}/Users"))
                .header("authorization", format!("bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Operational endpoints need no credential.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        let r = app
            .raw(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
}

/// A token revoked in the store is refused once the verified-token cache lifetime has passed
/// (`[auth] token_cache_seconds`, the documented revocation bound).
#[tokio::test]
async fn revoked_tokens_are_refused() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = app_with(config(), clock.clone()).await;
    let secret = app.token_for("default", false).await;
    assert_eq!(
        app.call_as(&secret, Method::GET, "/Users", None)
            .await
            .status,
        StatusCode::OK
    );
    let tokens = app.store.list_tokens(Some("default")).await.unwrap();
    app.store
        .revoke_token(&tokens[0].id, app.clock.now())
        .await
        .unwrap();
    let bound = scim_server::auth::DEFAULT_TOKEN_CACHE_SECONDS as i64;
    clock.advance(time::Duration::seconds(bound));
    app.call_as(&secret, Method::GET, "/Users", None)
        .await
        .assert_error(401, None);
}

#[tokio::test]
async fn read_only_token_may_read_but_not_write() {
    let app = app().await;
    let user = app.create_user("ro-target").await;
    let ro = app.token_for("default", true).await;
    assert_eq!(
        app.call_as(&ro, Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call_as(&ro, Method::POST, "/Users/.search", Some(json!({})))
            .await
            .status,
        StatusCode::OK
    );
    let path = format!("/Users/{}", id(&user));
    app.call_as(
        &ro,
        Method::POST,
        "/Users",
        Some(json!({"userName": "nope"})),
    )
    .await
    .assert_error(403, None);
    app.call_as(
        &ro,
        Method::PUT,
        &path,
        Some(json!({"userName": "ro-target"})),
    )
    .await
    .assert_error(403, None);
    app.call_as(
        &ro,
        Method::PATCH,
        &path,
        Some(patch(
            json!([{"op": "replace", "path": "title", "value": "x"}]),
        )),
    )
    .await
    .assert_error(403, None);
    app.call_as(&ro, Method::DELETE, &path, None)
        .await
        .assert_error(403, None);
    app.call_as(
        &ro,
        Method::POST,
        "/Bulk",
        Some(json!({"Operations": [{"method": "DELETE", "path": path}]})),
    )
    .await
    .assert_error(403, None);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let app = app().await;
    let user = app.create_user("shared-name").await;
    let group = app.create_group("Shared").await;
    let other = app.token_for("other", false).await;
    let user_path = format!("/Users/{}", id(&user));
    let group_path = format!("/Groups/{}", id(&group));
    app.call_as(&other, Method::GET, &user_path, None)
        .await
        .assert_error(404, None);
    app.call_as(&other, Method::GET, &group_path, None)
        .await
        .assert_error(404, None);
    app.call_as(&other, Method::DELETE, &user_path, None)
        .await
        .assert_error(404, None);
    app.call_as(
        &other,
        Method::PATCH,
        &user_path,
        Some(patch(
            json!([{"op": "replace", "path": "title", "value": "x"}]),
        )),
    )
    .await
    .assert_error(404, None);
    let list = app.call_as(&other, Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
    let search = app
        .call_as(&other, Method::POST, "/.search", Some(json!({})))
        .await;
    assert_eq!(search.body["totalResults"], 0, "{}", search.body);
    // The same userName may exist in another tenant.
    let r = app
        .call_as(
            &other,
            Method::POST,
            "/Users",
            Some(json!({"userName": "shared-name"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A group in another tenant cannot take our user as a member.
    let og = app
        .call_as(
            &other,
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "G"})),
        )
        .await;
    let r = app
        .call_as(
            &other,
            Method::PATCH,
            &format!("/Groups/{}?attributes=members", id(&og.body)),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": id(&user)}]}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.get("members").is_none_or(|m| m == &json!([])),
        "{}",
        r.body
    );
    // Still intact for its owner.
    assert_eq!(
        app.call(Method::GET, &user_path, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut c = config();
    c.rate_limit.requests_per_second = 0.5;
    c.rate_limit.burst = 2;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
    let app = app_with(c, clock.clone()).await;
    assert_eq!(
        app.call(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    let r = app.call(Method::GET, "/Users", None).await;
    r.assert_error(429, None);
    assert_eq!(r.header("retry-after"), Some("2"));
    // Another tenant is not affected.
    let other = app.token_for("other", false).await;
    assert_eq!(
        app.call_as(&other, Method::GET, "/Users", None)
            .await
            .status,
        StatusCode::OK
    );
    clock.advance(time::Duration::seconds(2));
    assert_eq!(
        app.call(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
}

#[test]
fn default_rate_limit_is_generous_enough_for_entra() {
    let c = Config::default();
    assert!(c.rate_limit.enabled);
    assert!(c.rate_limit.requests_per_second >= 25.0);
    assert!(c.rate_limit.burst >= 25);
}

#[tokio::test]
async fn discovery_documents() {
    let app = app().await;
    let spc = app.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], true);
    assert_eq!(spc.body["filter"]["supported"], true);
    assert_eq!(spc.body["sort"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["changePassword"]["supported"], false);
    assert_eq!(
        spc.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );

    let schemas = app.call(Method::GET, "/Schemas", None).await;
    assert_eq!(schemas.status, StatusCode::OK);
    assert_eq!(schemas.body["totalResults"], 3);
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [USER_URN, GROUP_URN, ENTERPRISE]);
    let user_schema = &schemas.body["Resources"][0];
    assert_eq!(user_schema["description"], "User Account");
    let attrs: Vec<&str> = user_schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(attrs.contains(&"userName") && attrs.contains(&"active"));
    assert!(
        !attrs.contains(&"password"),
        "password is accepted and dropped, so not advertised"
    );
    let one = app
        .call(Method::GET, &format!("/Schemas/{ENTERPRISE}"), None)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["id"], ENTERPRISE);
    app.call(Method::GET, "/Schemas/urn:nope", None)
        .await
        .assert_error(404, None);

    let rts = app.call(Method::GET, "/ResourceTypes", None).await;
    assert_eq!(rts.body["totalResults"], 2);
    let user_rt = app.call(Method::GET, "/ResourceTypes/User", None).await;
    assert_eq!(user_rt.body["endpoint"], "/Users");
    assert_eq!(user_rt.body["schemaExtensions"][0]["schema"], ENTERPRISE);
    app.call(Method::GET, "/ResourceTypes/Device", None)
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn me_is_not_implemented() {
    let app = app().await;
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        app.call(method, "/Me", None).await.assert_error(501, None);
    }
}

#[tokio::test]
async fn etags_if_none_match_and_if_match() {
    let app = app().await;
    let user = app.create_user("etag").await;
    let path = format!("/Users/{}", id(&user));
    let get = app.call(Method::GET, &path, None).await;
    let etag = get.header("etag").unwrap().to_string();
    assert_eq!(get.body["meta"]["version"], etag);
    let not_modified = app
        .raw(
            Request::builder()
                .uri(format!("{BASE}{path}"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("if-none-match", &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    let with_if_match = |tag: &str| {
        Request::builder()
            .method(Method::PATCH)
            .uri(format!("{BASE}{path}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/scim+json")
            .header("if-match", tag)
            .body(Body::from(
                serde_json::to_vec(&patch(
                    json!([{"op": "replace", "path": "title", "value": "VP"}]),
                ))
                .unwrap(),
            ))
            .unwrap()
    };
    let ok = app.raw(with_if_match(&etag)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_ne!(ok.header("etag").unwrap(), etag);
    app.raw(with_if_match(&etag)).await.assert_error(412, None);
}

#[tokio::test]
async fn patch_status_codes_users_200_groups_204() {
    let app = app().await;
    let user = app.create_user("patchme").await;
    let group = app.create_group("PatchGroup").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/Users/{}", id(&user)),
            Some(patch(
                json!([{"op": "Replace", "path": "title", "value": "Boss"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["title"], "Boss");
    let gpath = format!("/Groups/{}", id(&group));
    let add = patch(
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id(&user)}]}]),
    );
    let r = app.call(Method::PATCH, &gpath, Some(add)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(r.header("etag").is_some());
    let r = app
        .call(
            Method::PATCH,
            &format!("{gpath}?attributes=displayName"),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Renamed"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["displayName"], "Renamed");
    assert!(r.body.get("members").is_none());
    let full = app.call(Method::GET, &gpath, None).await;
    assert_eq!(full.body["members"][0]["value"], id(&user));
    let lean = app
        .call(
            Method::GET,
            &format!("{gpath}?excludedAttributes=members"),
            None,
        )
        .await;
    assert!(lean.body.get("members").is_none(), "{}", lean.body);
    assert_eq!(lean.body["displayName"], "Renamed");
}

#[tokio::test]
async fn unknown_member_ids_are_skipped() {
    let app = app().await;
    let user = app.create_user("member").await;
    let group = app.create_group("Mixed").await;
    let gpath = format!("/Groups/{}", id(&group));
    let r = app
        .call(
            Method::PATCH,
            &gpath,
            Some(patch(json!([{"op": "add", "path": "members",
                "value": [{"value": id(&user)}, {"value": "no-such-user"}]}]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let g = app.call(Method::GET, &gpath, None).await;
    let members: Vec<&str> = g.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [id(&user)]);
}

#[tokio::test]
async fn soft_delete_keeps_users_readable_and_delete_removes_memberships() {
    let app = app().await;
    let user = app.create_user("soft@example.com").await;
    let upath = format!("/Users/{}", id(&user));
    let r = app
        .call(
            Method::PATCH,
            &upath,
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(
        app.call(Method::GET, &upath, None).await.body["active"],
        false
    );
    let found = app
        .call(
            Method::GET,
            "/Users?filter=userName+eq+%22soft%40example.com%22",
            None,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["active"], false);

    let group = app.create_group("Leavers").await;
    let gpath = format!("/Groups/{}", id(&group));
    app.call(
        Method::PATCH,
        &gpath,
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": id(&user)}]}]),
        )),
    )
    .await;
    assert_eq!(
        app.call(Method::DELETE, &upath, None).await.status,
        StatusCode::NO_CONTENT
    );
    app.call(Method::GET, &upath, None)
        .await
        .assert_error(404, None);
    let g = app.call(Method::GET, &gpath, None).await;
    assert!(
        g.body.get("members").is_none_or(|m| m == &json!([])),
        "{}",
        g.body
    );
    app.call(Method::DELETE, &upath, None)
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn put_without_active_keeps_it_and_password_is_never_returned() {
    let app = app().await;
    let r = app
        .call(
            Method::POST,
            "/Users",
            Some(json!({"userName": "okta@example.com", "password": "hunter22", "active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body.get("password").is_none());
    let path = format!("/Users/{}", id(&r.body));
    let put = app
        .call(
            Method::PUT,
            &path,
            Some(json!({"schemas": [USER_URN], "userName": "okta@example.com", "displayName": "Okta", "password": "x"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["active"], false);
    assert_eq!(put.body["displayName"], "Okta");
    assert!(put.body.get("password").is_none());
}

#[tokio::test]
async fn meta_location_follows_forwarded_headers_or_public_url() {
    let app = app().await;
    let r = app
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{BASE}/Users"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .header("host", "internal:8080")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "scim.example.com")
                .body(Body::from(r#"{"userName":"fwd"}"#))
                .unwrap(),
        )
        .await;
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("https://scim.example.com/scim/v2/Users/"),
        "{location}"
    );

    let mut c = config();
    c.public_url = Some("https://public.example/tenant-a/scim/v2".into());
    let app = app_with(c, Arc::new(SystemClock)).await;
    let r = app
        .call(Method::POST, "/Users", Some(json!({"userName": "pub"})))
        .await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://public.example/tenant-a/scim/v2/Users/")
    );
}

#[tokio::test]
async fn bulk_resolves_bulk_ids_and_honours_fail_on_errors() {
    let app = app().await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "Bulk", "members": [{"value": "bulkId:u"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "bulk-user"}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "bulk-user"}},
        ]
    });
    let r = app.call(Method::POST, "/Bulk", Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 3);
    let by_bulk_id = |b: &str| {
        ops.iter()
            .find(|o| o["bulkId"] == b)
            .unwrap_or_else(|| panic!("no result for {b}: {}", r.body))
    };
    // Results come in execution order: the user the group refers to runs first.
    assert_eq!(ops[0]["bulkId"], "u");
    assert_eq!(by_bulk_id("g")["status"], "201", "{}", r.body);
    assert_eq!(by_bulk_id("u")["status"], "201");
    assert_eq!(by_bulk_id("dup")["status"], "409");
    assert_eq!(by_bulk_id("dup")["response"]["scimType"], "uniqueness");
    let group_location = by_bulk_id("g")["location"].as_str().unwrap();
    let group_id = group_location.rsplit('/').next().unwrap();
    let g = app
        .call(Method::GET, &format!("/Groups/{group_id}"), None)
        .await;
    let user_location = by_bulk_id("u")["location"].as_str().unwrap();
    let user_id = user_location.rsplit('/').next().unwrap();
    assert_eq!(g.body["members"][0]["value"], user_id);

    let stop = json!({
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "data": {"userName": "bulk-user"}},
            {"method": "POST", "path": "/Users", "data": {"userName": "never-created"}},
        ]
    });
    let r = app.call(Method::POST, "/Bulk", Some(stop)).await;
    assert_eq!(
        r.body["Operations"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let none = app
        .call(
            Method::GET,
            "/Users?filter=userName+eq+%22never-created%22",
            None,
        )
        .await;
    assert_eq!(none.body["totalResults"], 0);
}

#[tokio::test]
async fn bulk_hr_upsert_updates_by_external_id_when_enabled() {
    let app = app().await;
    app.store
        .create_tenant(&Tenant {
            id: "hr".into(),
            name: "HR".into(),
            bulk_upsert_by_external_id: true,
            created: app.clock.now(),
        })
        .await
        .unwrap();
    let hr = app.token_for("hr", false).await;
    let op = |title: &str| {
        json!({"method": "POST", "path": "/Users", "bulkId": "same",
               "data": {"schemas": [USER_URN, ENTERPRISE], "externalId": "701984",
                        "userName": "bjensen@example.com", "title": title,
                        ENTERPRISE: {"employeeNumber": "701984"}}})
    };
    let first = app
        .call_as(
            &hr,
            Method::POST,
            "/Bulk",
            Some(json!({"Operations": [op("Tour Guide")]})),
        )
        .await;
    assert_eq!(
        first.body["Operations"][0]["status"], "201",
        "{}",
        first.body
    );
    let second = app
        .call_as(
            &hr,
            Method::POST,
            "/Bulk",
            Some(json!({"Operations": [op("Tour Lead")]})),
        )
        .await;
    assert_eq!(
        second.body["Operations"][0]["status"], "200",
        "{}",
        second.body
    );
    let list = app.call_as(&hr, Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 1);
    assert_eq!(list.body["Resources"][0]["title"], "Tour Lead");
    // Without the option (default tenant) the same request is a uniqueness failure.
    app.call(
        Method::POST,
        "/Bulk",
        Some(json!({"Operations": [op("A")]})),
    )
    .await;
    let again = app
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({"Operations": [op("B")]})),
        )
        .await;
    assert_eq!(
        again.body["Operations"][0]["status"], "409",
        "{}",
        again.body
    );
}

#[tokio::test]
async fn root_search_pages_users_then_groups() {
    let app = app().await;
    app.create_user("s1").await;
    app.create_user("s2").await;
    app.create_group("G1").await;
    let r = app
        .call(
            Method::POST,
            "/.search",
            Some(json!({"startIndex": 2, "count": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 3);
    let resources = r.body["Resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[1]["displayName"], "G1");
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = app().await;
    app.call(Method::GET, "/Users", None).await;
    let r = app
        .raw(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let text = r.body.as_str().unwrap_or_default().to_string();
    assert!(text.contains("scim_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/scim/v2/Users\""), "{text}");
}

#[tokio::test]
async fn attributes_apply_to_write_responses() {
    let app = app().await;
    let r = app
        .call(
            Method::POST,
            "/Users?attributes=userName",
            Some(json!({"userName": "proj", "title": "T", "displayName": "D"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["schemas", "id", "userName"], "{}", r.body);
    let r = app
        .call(
            Method::PUT,
            &format!("/Users/{}?excludedAttributes=title", id(&r.body)),
            Some(json!({"userName": "proj", "title": "T2", "displayName": "D2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("title").is_none(), "{}", r.body);
    assert_eq!(r.body["displayName"], "D2");
}

/// Passes resource calls to the real store, observing reads and able to lose
/// compare-and-swap races on purpose.
struct ResourceSpy {
    inner: Arc<dyn Resources>,
    /// Reads that loaded a group's members.
    member_loads: Arc<AtomicUsize>,
    /// Reads of one resource by id (`get`).
    gets: Arc<AtomicUsize>,
    /// Updates still to refuse with `VersionMismatch` before letting one through.
    lose_races: Arc<AtomicUsize>,
    /// A clock each create moves forward by ten seconds (a slow database).
    slow_creates: Option<Arc<ManualClock>>,
}

impl ResourceSpy {
    fn new(inner: Arc<dyn Resources>) -> Self {
        Self {
            inner,
            member_loads: Arc::default(),
            gets: Arc::default(),
            lose_races: Arc::default(),
            slow_creates: None,
        }
    }

    fn saw(&self, load: Load) {
        if load.members {
            self.member_loads.fetch_add(1, SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl Resources for ResourceSpy {
    async fn create(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        r: &Resource,
        c: &Change,
    ) -> StoreResult<()> {
        if let Some(clock) = &self.slow_creates {
            clock.advance(time::Duration::seconds(10));
        }
        self.inner.create(ctx, rt, r, c).await
    }
    async fn get(
        &self,
        tenant: &str,
        rt: &ResourceType,
        id: &str,
        load: Load,
    ) -> StoreResult<Option<Resource>> {
        self.saw(load);
        self.gets.fetch_add(1, SeqCst);
        self.inner.get(tenant, rt, id, load).await
    }
    async fn update(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        r: &Resource,
        v: u64,
        m: Option<&MembershipDelta>,
        c: &Change,
    ) -> StoreResult<()> {
        if self
            .lose_races
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::VersionMismatch { current: v + 1 });
        }
        self.inner.update(ctx, rt, r, v, m, c).await
    }
    async fn delete(
        &self,
        ctx: &WriteContext,
        rt: &ResourceType,
        id: &str,
        v: Option<u64>,
        c: &Change,
    ) -> StoreResult<()> {
        self.inner.delete(ctx, rt, id, v, c).await
    }
    async fn list(
        &self,
        tenant: &str,
        rt: &ResourceType,
        q: &ListQuery,
        load: Load,
    ) -> StoreResult<Page> {
        self.saw(load);
        self.inner.list(tenant, rt, q, load).await
    }
    async fn find_by_external_id(
        &self,
        tenant: &str,
        rt: &ResourceType,
        e: &str,
    ) -> StoreResult<Option<Resource>> {
        self.inner.find_by_external_id(tenant, rt, e).await
    }
    async fn existing_ids(
        &self,
        tenant: &str,
        rt: &ResourceType,
        ids: &[String],
    ) -> StoreResult<Vec<String>> {
        self.inner.existing_ids(tenant, rt, ids).await
    }
}

/// The write pipeline reads the row once per attempt, and a lost compare-and-swap is retried
/// after a backoff that waits on the injected clock (a `ManualClock` here: no real sleep).
#[tokio::test]
async fn a_patch_reads_once_per_attempt_and_retries_on_the_clock() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
    let (gets, lose) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (spy_gets, spy_lose) = (gets.clone(), lose.clone());
    let app = app_wrapping(config(), clock.clone(), move |inner| {
        let mut spy = ResourceSpy::new(inner);
        spy.gets = spy_gets;
        spy.lose_races = spy_lose;
        Arc::new(spy)
    })
    .await;
    let user = app.create_user("racer").await;
    let path = format!("/Users/{}", id(&user));
    let body = |title: &str| patch(json!([{"op": "replace", "path": "title", "value": title}]));

    // No race: one read, no wait.
    gets.store(0, SeqCst);
    let r = app.call(Method::PATCH, &path, Some(body("A"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(gets.load(SeqCst), 1, "one read for one attempt");
    assert_eq!(clock.sleeps(), 0);
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");

    // Three lost races: four attempts, four reads, three waits on the clock.
    gets.store(0, SeqCst);
    lose.store(3, SeqCst);
    let r = app.call(Method::PATCH, &path, Some(body("B"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["title"], "B");
    assert_eq!(r.body["meta"]["version"], "W/\"3\"");
    assert_eq!(gets.load(SeqCst), 4, "one read per attempt");
    assert_eq!(clock.sleeps(), 3, "each retry waits on the clock");

    // With If-Match a lost race is the client's answer (412), not retried.
    gets.store(0, SeqCst);
    lose.store(1, SeqCst);
    let r = app
        .raw(
            Request::builder()
                .method(Method::PATCH)
                .uri(format!("{BASE}{path}"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/scim+json")
                .header("if-match", "W/\"3\"")
                .body(Body::from(body("C").to_string()))
                .unwrap(),
        )
        .await;
    r.assert_error(412, None);
    assert_eq!((gets.load(SeqCst), clock.sleeps()), (1, 3));
}

/// A Bulk that would outlast the request timeout stops between operations and says which ran:
/// the operations it did not start answer 503 each, and none is half-applied.
#[tokio::test]
async fn a_bulk_out_of_time_stops_between_operations_and_says_what_ran() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
    let mut c = config();
    c.limits.request_timeout_seconds = 30;
    let slow = clock.clone();
    let app = app_wrapping(c, clock.clone(), move |inner| {
        let mut spy = ResourceSpy::new(inner);
        spy.slow_creates = Some(slow);
        Arc::new(spy)
    })
    .await;
    let ops: Vec<Value> = (0..5)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                   "data": {"schemas": [USER_URN], "userName": format!("late{i}")}})
        })
        .collect();
    let r = app
        .call(
            Method::POST,
            "/Bulk",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                        "Operations": ops}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    // Each create takes 10 s of a 22.5 s budget (75 % of 30 s): three start, two do not.
    assert_eq!(statuses, ["201", "201", "201", "503", "503"], "{}", r.body);
    assert!(
        r.body["Operations"][3]["response"]["detail"]
            .as_str()
            .unwrap()
            .contains("not run"),
        "{}",
        r.body
    );
    let listed = app
        .call(Method::GET, "/Users?filter=userName+sw+%22late%22", None)
        .await;
    assert_eq!(listed.body["totalResults"], 3, "{}", listed.body);
}

#[tokio::test]
async fn group_reads_without_members_and_member_patches_never_load_members() {
    let loads = Arc::new(AtomicUsize::new(0));
    let spy_loads = loads.clone();
    let app = app_wrapping(config(), Arc::new(SystemClock), move |inner| {
        let mut spy = ResourceSpy::new(inner);
        spy.member_loads = spy_loads;
        Arc::new(spy)
    })
    .await;
    let count = || loads.load(SeqCst);
    let user = app.create_user("m1").await;
    let r = app
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Big", "members": [{"value": id(&user)}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let gpath = format!("/Groups/{}", id(&r.body));
    let before = count();
    let other = app.create_user("m2").await;
    for (method, path, body) in [
        (
            Method::GET,
            format!("{gpath}?excludedAttributes=members"),
            None,
        ),
        (
            Method::GET,
            "/Groups?excludedAttributes=members&filter=displayName+eq+%22Big%22".to_string(),
            None,
        ),
        (
            Method::PATCH,
            gpath.clone(),
            Some(patch(json!([
                {"op": "Add", "path": "members", "value": [{"value": id(&other)}]},
                {"op": "Remove", "path": "members", "value": [{"value": id(&user)}]},
                {"op": "Replace", "path": "displayName", "value": "Bigger"}
            ]))),
        ),
        (
            Method::PATCH,
            gpath.clone(),
            Some(patch(
                json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", id(&other))}]),
            )),
        ),
        (Method::GET, format!("{gpath}?attributes=displayName"), None),
    ] {
        let r = app.call(method.clone(), &path, body).await;
        assert!(r.status.is_success(), "{method} {path}: {}", r.body);
        assert!(
            r.body.get("members").is_none(),
            "{method} {path}: {}",
            r.body
        );
    }
    assert_eq!(
        count(),
        before,
        "a read or PATCH above loaded the member list"
    );
    let full = app.call(Method::GET, &gpath, None).await;
    assert_eq!(full.body["displayName"], "Bigger");
    assert!(full.body.get("members").is_none_or(|m| m == &json!([])));
    assert_eq!(count(), before + 1);
}
