//! Router-level tests through `Router::oneshot` (no socket), as tables: content types, error
//! bodies, every limit, authentication and authorisation, tenant isolation, rate limiting,
//! discovery, ETags, PATCH status codes, soft delete, Bulk, and the OpenAPI snapshot.
//!
//! Each test is a scenario: a [`Setup`] (configuration, clock, tenants, tokens, a storage spy)
//! and rows of [`Step`]s, mostly [`Call`]s that each state the status they must answer and the
//! few properties the test is about. [`check`] runs the rows in order and compares the whole
//! transcript (every request and reply, [`normalise`]d: ids named, times redacted) with an insta
//! JSON snapshot `snapshots/it__http__<name>.snap`, so the snapshot pins everything else a client
//! sees (rust-analyzer's `check(input, expect)` habit). Review a changed snapshot like code:
//! `INSTA_UPDATE=always cargo nextest run -p scim-server http::` then `git diff`.

use axum::Router;
use axum::body::Body;
use http::{Method, Request};
use http_body_util::BodyExt;
use scim_core::bulk::BULK_REQUEST_URN as BULK;
use scim_core::change::Change;
use scim_core::error::ERROR_URN;
use scim_core::patch::{MembershipDelta, PATCH_OP_URN};
use scim_core::query::ListQuery;
use scim_core::resource::Resource;
use scim_core::schema::{ENTERPRISE_USER_URN as ENTERPRISE, GROUP_URN, ResourceType, USER_URN};
use scim_server::auth::{AuthConfig, AuthService, token_store};
use scim_server::clock::{Clock, ManualClock, SystemClock};
use scim_server::config::{Config, SecretString};
use scim_server::state::AppState;
use scim_server::store::{
    Load, Page, Resources, Result as StoreResult, Store, StoreError, Tenant, WriteContext,
    WriteStep,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use time::OffsetDateTime;
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789abcdef";
const BASE: &str = "/scim/v2";

/// The response headers a transcript keeps (the others vary or say nothing SCIM-specific).
const KEPT_HEADERS: [&str; 5] = [
    "content-type",
    "location",
    "etag",
    "retry-after",
    "www-authenticate",
];

// ---------------------------------------------------------------------------------------------
// The table language.

/// What a scenario starts from.
#[derive(Default)]
struct Setup {
    /// Changes to the default test configuration (which has the [`TOKEN`] for `default`).
    config: Option<fn(&mut Config)>,
    /// A manual clock starting here (otherwise the system clock).
    manual_clock: Option<OffsetDateTime>,
    /// Wrap the resource store in a [`ResourceSpy`], whose counts each transcript row records.
    spy: bool,
    /// With the spy: each create moves the manual clock forward ten seconds (a slow database).
    slow_creates: bool,
    /// Extra tenants: (id, `bulk_upsert_by_external_id`).
    tenants: &'static [(&'static str, bool)],
    /// Static tokens: (name a row uses in [`Call::by`], tenant, read-only).
    tokens: &'static [(&'static str, &'static str, bool)],
}

/// One row of a scenario.
enum Step {
    /// A request and what must come back.
    Call(Box<Call>),
    /// Moves the manual clock forward this many seconds.
    Advance(i64),
    /// Revokes the named token in the store.
    Revoke(&'static str),
}

/// Who sends a request.
enum Who {
    /// The configured [`TOKEN`] of tenant `default`.
    Admin,
    /// No `Authorization` header (set one with [`Call::with`] for odd schemes).
    Anonymous,
    /// A token from [`Setup::tokens`], by name.
    Token(&'static str),
    /// This bearer value, as is.
    Bearer(&'static str),
}

/// A request body.
enum Send {
    None,
    /// JSON, sent as `application/scim+json`.
    Json(Value),
    /// Bytes with this `Content-Type` (or none).
    Raw(Option<&'static str>, &'static str),
}

/// A request, the status it must answer, and the properties the row is about.
///
/// `${name}` in the path, the headers or the body's strings stands for an id a previous row saved
/// with [`Call::save`]; the transcript writes the ids back as `${name}`.
struct Call {
    method: Method,
    path: String,
    /// The path is under [`BASE`] (false: `/healthz`, `/metrics`, …).
    scim: bool,
    who: Who,
    headers: Vec<(&'static str, String)>,
    send: Send,
    expect: u16,
    scim_type: Option<&'static str>,
    /// (name, JSON pointer of an id or a URL ending in one).
    save: Option<(&'static str, &'static str)>,
    /// JSON pointers that must be missing from the reply (or an empty array).
    absent: Vec<&'static str>,
    /// The reply's keys, in order.
    keys: Option<Vec<&'static str>>,
    /// Text the raw reply must contain / must not contain.
    contains: Vec<&'static str>,
    lacks: Vec<&'static str>,
    /// A targeted assertion on the reply body.
    check: Option<fn(&Value)>,
    /// Leave the body out of the transcript (large or varying documents).
    no_body: bool,
    /// A created resource: `Location` is `meta.location`, ends in `/Users/{id}` or
    /// `/Groups/{id}`, and an ETag comes with it.
    located: bool,
    /// Spy: updates to refuse with a version mismatch first; expected resource reads, member
    /// loads and clock sleeps during this call.
    lose_races: usize,
    reads: Option<usize>,
    member_loads: Option<usize>,
    sleeps: Option<u64>,
}

fn call(method: Method, path: impl Into<String>) -> Call {
    Call {
        method,
        path: path.into(),
        scim: true,
        who: Who::Admin,
        headers: Vec::new(),
        send: Send::None,
        expect: 200,
        scim_type: None,
        save: None,
        absent: Vec::new(),
        keys: None,
        contains: Vec::new(),
        lacks: Vec::new(),
        check: None,
        no_body: false,
        located: false,
        lose_races: 0,
        reads: None,
        member_loads: None,
        sleeps: None,
    }
}

fn get(path: impl Into<String>) -> Call {
    call(Method::GET, path)
}

fn delete(path: impl Into<String>) -> Call {
    call(Method::DELETE, path).expect(204)
}

fn post(path: impl Into<String>, body: Value) -> Call {
    call(Method::POST, path).json(body)
}

fn put(path: impl Into<String>, body: Value) -> Call {
    call(Method::PUT, path).json(body)
}

/// A PATCH with these operations.
fn patch(path: impl Into<String>, ops: Value) -> Call {
    call(Method::PATCH, path).json(json!({"schemas": [PATCH_OP_URN], "Operations": ops}))
}

/// A request outside the SCIM base (`/metrics`, `/healthz`, …), without credentials.
fn root(path: &str) -> Call {
    Call {
        scim: false,
        who: Who::Anonymous,
        ..get(path)
    }
}

/// Creates a user (active) and saves its id as `name`.
fn new_user(user_name: &str, name: &'static str) -> Call {
    post(
        "/Users",
        json!({"schemas": [USER_URN], "userName": user_name, "active": true}),
    )
    .expect(201)
    .save(name)
}

/// Creates a group and saves its id as `name`.
fn new_group(display_name: &str, name: &'static str) -> Call {
    post(
        "/Groups",
        json!({"schemas": [GROUP_URN], "displayName": display_name}),
    )
    .expect(201)
    .save(name)
}

fn bulk(ops: Value) -> Call {
    post("/Bulk", json!({"schemas": [BULK], "Operations": ops}))
}

impl Call {
    fn expect(mut self, status: u16) -> Self {
        self.expect = status;
        self
    }
    /// A SCIM error with this status and `scimType` (RFC 7644 §3.12).
    fn fails(mut self, status: u16, scim_type: &'static str) -> Self {
        self.expect = status;
        self.scim_type = Some(scim_type);
        self
    }
    fn json(mut self, body: Value) -> Self {
        self.send = Send::Json(body);
        self
    }
    fn raw(mut self, content_type: Option<&'static str>, body: &'static str) -> Self {
        self.send = Send::Raw(content_type, body);
        self
    }
    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn by(mut self, token: &'static str) -> Self {
        self.who = Who::Token(token);
        self
    }
    fn who(mut self, who: Who) -> Self {
        self.who = who;
        self
    }
    fn save(self, name: &'static str) -> Self {
        self.save_at(name, "/id")
    }
    fn save_at(mut self, name: &'static str, pointer: &'static str) -> Self {
        self.save = Some((name, pointer));
        self
    }
    fn absent(mut self, pointer: &'static str) -> Self {
        self.absent.push(pointer);
        self
    }
    fn keys(mut self, keys: &[&'static str]) -> Self {
        self.keys = Some(keys.to_vec());
        self
    }
    fn contains(mut self, text: &'static str) -> Self {
        self.contains.push(text);
        self
    }
    fn lacks(mut self, text: &'static str) -> Self {
        self.lacks.push(text);
        self
    }
    fn check(mut self, f: fn(&Value)) -> Self {
        self.check = Some(f);
        self
    }
    fn no_body(mut self) -> Self {
        self.no_body = true;
        self
    }
    fn located(mut self) -> Self {
        self.located = true;
        self
    }
    fn losing_races(mut self, n: usize) -> Self {
        self.lose_races = n;
        self
    }
    fn reads(mut self, n: usize) -> Self {
        self.reads = Some(n);
        self
    }
    fn member_loads(mut self, n: usize) -> Self {
        self.member_loads = Some(n);
        self
    }
    fn sleeps(mut self, n: u64) -> Self {
        self.sleeps = Some(n);
        self
    }
}

impl From<Call> for Step {
    fn from(c: Call) -> Step {
        Step::Call(Box::new(c))
    }
}

/// Rows from calls and other steps alike.
macro_rules! steps {
    ($($step:expr),* $(,)?) => { vec![$(Step::from($step)),*] };
}

// ---------------------------------------------------------------------------------------------
// The runner.

/// Runs `steps` against a fresh app built from `setup`, asserts each row, and compares the
/// normalised transcript with the snapshot `name`.
async fn check(name: &str, setup: Setup, steps: Vec<Step>) {
    let app = TestApp::start(&setup).await;
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut transcript = Vec::new();
    for (row, step) in steps.into_iter().enumerate() {
        match step {
            Step::Advance(seconds) => {
                let clock = app
                    .manual
                    .as_ref()
                    .expect("Advance needs Setup::manual_clock");
                clock.advance(time::Duration::seconds(seconds));
                transcript.push(json!({"advanceClockSeconds": seconds}));
            }
            Step::Revoke(token) => {
                let (id, _) = &app.tokens[token];
                app.store.revoke_token(id, app.clock.now()).await.unwrap();
                transcript.push(json!({"revokeToken": token}));
            }
            Step::Call(c) => {
                let entry = app.run(row, &c, &mut vars).await;
                transcript.push(entry);
            }
        }
    }
    insta::assert_json_snapshot!(name, normalise(Value::Array(transcript), &vars));
}

struct TestApp {
    router: Router,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    spy: Option<Arc<SpyCounts>>,
    /// Token name -> (token id, secret).
    tokens: BTreeMap<&'static str, (String, String)>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    async fn start(setup: &Setup) -> TestApp {
        let mut config = Config {
            token: Some(SecretString::new(TOKEN)),
            ..Config::default()
        };
        if let Some(f) = setup.config {
            f(&mut config);
        }
        let manual = setup.manual_clock.map(|t| Arc::new(ManualClock::new(t)));
        let clock: Arc<dyn Clock> = match &manual {
            Some(m) => m.clone(),
            None => Arc::new(SystemClock),
        };
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scim.db").display());
        let store = scim_server::server::open_store(&url).await.unwrap();
        store.migrate().await.unwrap();
        scim_server::server::ensure_tenant(store.as_ref(), &config.default_tenant, clock.as_ref())
            .await
            .unwrap();
        for (id, upsert) in setup.tenants {
            store
                .create_tenant(&Tenant {
                    id: (*id).into(),
                    name: (*id).into(),
                    bulk_upsert_by_external_id: *upsert,
                    created: clock.now(),
                })
                .await
                .unwrap();
        }
        let mut tokens = BTreeMap::new();
        for (name, tenant, read_only) in setup.tokens {
            if store.tenant(tenant).await.unwrap().is_none() {
                store
                    .create_tenant(&Tenant {
                        id: (*tenant).into(),
                        name: (*tenant).into(),
                        bulk_upsert_by_external_id: false,
                        created: clock.now(),
                    })
                    .await
                    .unwrap();
            }
            let (record, secret) = scim_server::auth::create_token(
                store.as_ref(),
                tenant,
                "test",
                *read_only,
                clock.now(),
            )
            .await
            .unwrap();
            tokens.insert(*name, (record.id, secret.expose().to_string()));
        }
        let auth = AuthService::from_config(
            &AuthConfig::default(),
            token_store(store.clone()),
            clock.clone(),
        )
        .unwrap()
        .with_env_token(config.default_tenant.clone(), TOKEN);
        let mut state = AppState::with_clock(&config, store.clone(), Arc::new(auth), clock.clone());
        let spy = setup.spy.then(|| {
            Arc::new(SpyCounts {
                slow_creates: setup
                    .slow_creates
                    .then(|| manual.clone().expect("slow creates need a manual clock")),
                ..SpyCounts::default()
            })
        });
        if let Some(counts) = &spy {
            state = state.with_resources(Arc::new(ResourceSpy {
                inner: store.clone(),
                counts: counts.clone(),
            }));
        }
        TestApp {
            router: scim_server::http::router(state),
            store,
            clock,
            manual,
            spy,
            tokens,
            _dir: dir,
        }
    }

    /// Sends one row's request, asserts the row, and returns its transcript entry.
    async fn run(&self, row: usize, c: &Call, vars: &mut Vec<(String, String)>) -> Value {
        let path = format!(
            "{}{}",
            if c.scim { BASE } else { "" },
            substitute(&c.path, vars)
        );
        let what = format!("row {row}: {} {path}", c.method);
        let mut req = Request::builder().method(c.method.clone()).uri(&path);
        let mut entry = serde_json::Map::new();
        entry.insert("call".into(), json!(format!("{} {path}", c.method)));
        match &c.who {
            Who::Admin => req = req.header("authorization", format!("Bearer {TOKEN}")),
            Who::Anonymous => {
                if !c.headers.iter().any(|(h, _)| *h == "authorization") {
                    entry.insert("as".into(), json!("anonymous"));
                }
            }
            Who::Token(name) => {
                let (_, secret) = self.tokens.get(name).expect("token named in Setup::tokens");
                req = req.header("authorization", format!("Bearer {secret}"));
                entry.insert("as".into(), json!(name));
            }
            Who::Bearer(value) => {
                req = req.header("authorization", format!("Bearer {value}"));
                entry.insert("as".into(), json!(format!("Bearer {value}")));
            }
        }
        if !c.headers.is_empty() {
            let mut sent = serde_json::Map::new();
            for (name, value) in &c.headers {
                let value = substitute(value, vars);
                req = req.header(*name, &value);
                sent.insert((*name).into(), json!(value));
            }
            entry.insert("with".into(), Value::Object(sent));
        }
        let req = match &c.send {
            Send::None => req.body(Body::empty()),
            Send::Json(v) => {
                let v = substitute_json(v.clone(), vars);
                let bytes = serde_json::to_vec(&v).unwrap();
                entry.insert("send".into(), v);
                req.header("content-type", "application/scim+json")
                    .body(Body::from(bytes))
            }
            Send::Raw(ct, text) => {
                if let Some(ct) = ct {
                    req = req.header("content-type", *ct);
                    entry.insert("contentType".into(), json!(ct));
                }
                entry.insert("sendRaw".into(), json!(text));
                req.body(Body::from(*text))
            }
        }
        .unwrap();

        if let Some(spy) = &self.spy {
            spy.lose_races.store(c.lose_races, SeqCst);
        }
        let before = self
            .spy
            .as_ref()
            .map(|s| s.snapshot(self.manual.as_deref()));
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.clone()))
        };

        assert_eq!(status, c.expect, "{what}: {body}");
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if c.expect >= 400 && c.method != Method::HEAD {
            assert_scim_error(&what, status, header("content-type"), &body, c.scim_type);
        }
        for pointer in &c.absent {
            assert!(
                body.pointer(pointer).is_none_or(|v| v == &json!([])),
                "{what}: {pointer} present in {body}"
            );
        }
        if let Some(keys) = &c.keys {
            let got: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(&got, keys, "{what}: {body}");
        }
        for t in &c.contains {
            assert!(text.contains(t), "{what}: no {t:?} in {text}");
        }
        for t in &c.lacks {
            assert!(!text.contains(t), "{what}: {t:?} in {text}");
        }
        if let Some(f) = c.check {
            f(&body);
        }
        if c.located {
            let location = header("location").unwrap_or_else(|| panic!("{what}: no Location"));
            let id = body["id"].as_str().unwrap();
            assert!(
                location.ends_with(&format!("{BASE}/Users/{id}")),
                "{what}: {location}"
            );
            assert_eq!(body["meta"]["location"], location, "{what}");
            assert!(header("etag").is_some(), "{what}: no ETag");
        }
        if let (Some(spy), Some(before)) = (&self.spy, before) {
            let after = spy.snapshot(self.manual.as_deref());
            let (reads, loads, sleeps) =
                (after.0 - before.0, after.1 - before.1, after.2 - before.2);
            if let Some(n) = c.reads {
                assert_eq!(reads, n, "{what}: resource reads");
            }
            if let Some(n) = c.member_loads {
                assert_eq!(loads, n, "{what}: member-list loads");
            }
            if let Some(n) = c.sleeps {
                assert_eq!(sleeps, n, "{what}: waits on the clock");
            }
            if c.lose_races > 0 {
                entry.insert("losingRaces".into(), json!(c.lose_races));
            }
            entry.insert(
                "storage".into(),
                json!({"reads": reads, "memberLoads": loads, "sleeps": sleeps}),
            );
        }
        if let Some((name, pointer)) = c.save {
            let v = body
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{what}: nothing at {pointer} to save: {body}"));
            let id = v.rsplit('/').next().unwrap().to_string();
            vars.push((name.to_string(), id));
        }

        entry.insert("status".into(), json!(status));
        let kept: serde_json::Map<String, Value> = KEPT_HEADERS
            .iter()
            .filter_map(|h| header(h).map(|v| ((*h).to_string(), json!(v))))
            .collect();
        if !kept.is_empty() {
            entry.insert("headers".into(), Value::Object(kept));
        }
        if !c.no_body && !body.is_null() {
            entry.insert("body".into(), body);
        }
        Value::Object(entry)
    }
}

/// A SCIM error (RFC 7644 §3.12): `application/scim+json`, the Error schema, the status as a
/// string, and `scimType` exactly when expected.
fn assert_scim_error(
    what: &str,
    status: u16,
    content_type: Option<&str>,
    body: &Value,
    scim_type: Option<&str>,
) {
    assert_eq!(
        content_type,
        Some("application/scim+json"),
        "{what}: {body}"
    );
    assert_eq!(body["schemas"], json!([ERROR_URN]), "{what}: {body}");
    assert_eq!(body["status"], json!(status.to_string()), "{what}: {body}");
    match scim_type {
        Some(t) => assert_eq!(body["scimType"], t, "{what}: {body}"),
        None => assert!(body.get("scimType").is_none(), "{what}: {body}"),
    }
}

/// `${name}` -> the saved id.
fn substitute(s: &str, vars: &[(String, String)]) -> String {
    vars.iter().fold(s.to_string(), |s, (k, v)| {
        s.replace(&format!("${{{k}}}"), v)
    })
}

fn substitute_json(v: Value, vars: &[(String, String)]) -> Value {
    map_strings(v, &mut |s| substitute(s, vars))
}

fn map_strings(v: Value, f: &mut impl FnMut(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (f(&k), map_strings(v, f)))
                .collect(),
        ),
        v => v,
    }
}

/// What varies between runs, made stable: saved ids become `${name}`, other UUIDs `[id1]`,
/// `[id2]`, … by first appearance (so the transcript still shows which ids are the same),
/// `meta.created`/`meta.lastModified` `[time]`, and strings over 200 characters (oversized
/// bodies of limit tests) their length.
fn normalise(v: Value, vars: &[(String, String)]) -> Value {
    let mut unnamed: Vec<String> = Vec::new();
    let v = map_strings(v, &mut |s| {
        if s.len() > 200 {
            return format!("[{} characters]", s.len());
        }
        let mut s = vars.iter().fold(s.to_string(), |s, (k, v)| {
            s.replace(v, &format!("${{{k}}}"))
        });
        while let Some(at) = find_uuid(&s) {
            let id = s[at..at + 36].to_string();
            let n = match unnamed.iter().position(|u| *u == id) {
                Some(n) => n + 1,
                None => {
                    unnamed.push(id.clone());
                    unnamed.len()
                }
            };
            s = s.replace(&id, &format!("[id{n}]"));
        }
        s
    });
    redact_times(v)
}

fn redact_times(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(redact_times).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = if matches!(k.as_str(), "created" | "lastModified") && v.is_string() {
                        json!("[time]")
                    } else {
                        redact_times(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        v => v,
    }
}

/// The byte offset of the first hyphenated UUID in `s`.
fn find_uuid(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(35)).find(|&i| {
        b[i..i + 36].iter().enumerate().all(|(j, c)| match j {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The storage spy.

/// What the spy saw, shared with the runner.
#[derive(Default)]
struct SpyCounts {
    /// Reads of one resource by id (`get`).
    gets: AtomicUsize,
    /// Reads (`get` or `list`) that loaded a group's members.
    member_loads: AtomicUsize,
    /// Updates still to refuse with `VersionMismatch` before letting one through.
    lose_races: AtomicUsize,
    /// A clock each create moves forward by ten seconds (a slow database).
    slow_creates: Option<Arc<ManualClock>>,
}

impl SpyCounts {
    /// (reads, member loads, clock sleeps) so far.
    fn snapshot(&self, clock: Option<&ManualClock>) -> (usize, usize, u64) {
        (
            self.gets.load(SeqCst),
            self.member_loads.load(SeqCst),
            clock.map_or(0, ManualClock::sleeps),
        )
    }

    fn saw(&self, load: Load) {
        if load.members {
            self.member_loads.fetch_add(1, SeqCst);
        }
    }
}

/// Passes resource calls to the real store, counting reads and able to lose compare-and-swap
/// races on purpose.
struct ResourceSpy {
    inner: Arc<dyn Resources>,
    counts: Arc<SpyCounts>,
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
        if let Some(clock) = &self.counts.slow_creates {
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
        self.counts.saw(load);
        self.counts.gets.fetch_add(1, SeqCst);
        self.inner.get(tenant, rt, id, load).await
    }
    async fn update_successive(
        &self,
        rt: &ResourceType,
        r: &Resource,
        v: u64,
        m: Option<&MembershipDelta>,
        steps: &[WriteStep<'_>],
    ) -> StoreResult<()> {
        if self
            .counts
            .lose_races
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::VersionMismatch { current: v + 1 });
        }
        self.inner.update_successive(rt, r, v, m, steps).await
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
        self.counts.saw(load);
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

// ---------------------------------------------------------------------------------------------
// The tables.

#[test]
fn openapi_document_matches_snapshot() {
    let doc = serde_json::to_value(scim_server::http::openapi("/scim/v2")).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}

#[test]
fn default_rate_limit_is_generous_enough_for_entra() {
    let c = Config::default();
    assert!(c.rate_limit.enabled);
    assert!(c.rate_limit.requests_per_second >= 25.0);
    assert!(c.rate_limit.burst >= 25);
}

/// Any JSON content type (or none) is accepted; replies are `application/scim+json` with a
/// `Location` that is `meta.location` and an ETag; `text/plain` is 415.
#[tokio::test]
async fn request_content_types() {
    let created = |ct: Option<&'static str>, body: &'static str| {
        call(Method::POST, "/Users")
            .raw(ct, body)
            .expect(201)
            .located()
    };
    check(
        "request_content_types",
        Setup::default(),
        steps![
            created(
                Some("application/scim+json"),
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ct0"}"#
            ),
            created(
                Some("application/json"),
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ct1"}"#
            ),
            created(
                Some("application/json; charset=utf-8"),
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ct2"}"#
            ),
            created(
                Some("application/scim+json;charset=UTF-8"),
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ct3"}"#
            ),
            created(
                None,
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ct4"}"#
            ),
            call(Method::POST, "/Users")
                .raw(Some("text/plain"), "userName=x")
                .expect(415),
        ],
    )
    .await;
}

/// Every error is a SCIM error body with the status as a string; uniqueness is
/// case-insensitive for userName and applies to group names.
#[tokio::test]
async fn errors_are_scim_bodies_with_string_status() {
    check(
        "errors_are_scim_bodies_with_string_status",
        Setup::default(),
        steps![
            get("/Users/does-not-exist").expect(404),
            get("/Groups/does-not-exist").expect(404),
            get("/Nope").expect(404),
            call(Method::DELETE, "/Users").expect(405),
            call(Method::POST, "/Users")
                .raw(Some("application/scim+json"), "{not json")
                .fails(400, "invalidSyntax"),
            call(Method::POST, "/Users").fails(400, "invalidSyntax"),
            post("/Users", json!({"schemas": [USER_URN], "displayName": "x"}))
                .fails(400, "invalidValue"),
            new_user("dup@example.com", "dup"),
            post(
                "/Users",
                json!({"schemas": [USER_URN], "userName": "DUP@example.com"})
            )
            .fails(409, "uniqueness"),
            new_group("Sales", "sales"),
            post(
                "/Groups",
                json!({"schemas": [GROUP_URN], "displayName": "Sales"})
            )
            .fails(409, "uniqueness"),
        ],
    )
    .await;
}

/// Entra's probes (no User-Agent, unknown parameters) get an empty list; `+` is a space.
#[tokio::test]
async fn probe_without_user_agent_and_unknown_parameters_gets_an_empty_list() {
    let empty = |path: &'static str| {
        get(path).check(|b| {
            assert_eq!(b["totalResults"], 0);
            assert_eq!(b["Resources"], json!([]));
            assert_eq!(b["schemas"], json!([scim_core::query::LIST_RESPONSE_URN]));
        })
    };
    check(
        "probe_without_user_agent_and_unknown_parameters_gets_an_empty_list",
        Setup::default(),
        steps![
            empty(
                "/Users?aadOptscim062020&filter=userName+eq+%2201a1c4f0-0000-4000-8000-000000000000%22"
            ),
            empty("/Users?filter=userName%20eq%20%22nobody%22&startIndex=1&count=100"),
            empty("/Groups?excludedAttributes=members&filter=displayName+eq+%22nobody%22"),
            new_user("jane doe", "jane"),
            get("/Users?filter=userName+eq+%22jane+doe%22")
                .check(|b| assert_eq!(b["totalResults"], 1)),
        ],
    )
    .await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    check(
        "body_over_the_limit_is_413",
        Setup {
            config: Some(|c| c.limits.max_body_bytes = 1024),
            ..Setup::default()
        },
        steps![
            post(
                "/Users",
                json!({"schemas": [USER_URN], "userName": "big", "displayName": "x".repeat(4096)})
            )
            .expect(413),
            // Small bodies still pass.
            new_user("small", "small"),
        ],
    )
    .await;
}

#[tokio::test]
async fn filter_over_the_limit_is_400_invalid_filter() {
    let long = format!("userName eq \"{}\"", "a".repeat(100));
    let encoded = percent_encoding::utf8_percent_encode(&long, percent_encoding::NON_ALPHANUMERIC);
    check(
        "filter_over_the_limit_is_400_invalid_filter",
        Setup {
            config: Some(|c| c.limits.max_filter_length = 64),
            ..Setup::default()
        },
        steps![
            get(format!("/Users?filter={encoded}")).fails(400, "invalidFilter"),
            post("/Users/.search", json!({"filter": long})).fails(400, "invalidFilter"),
            // A malformed filter is invalidFilter too.
            get("/Users?filter=userName+eq").fails(400, "invalidFilter"),
        ],
    )
    .await;
}

#[tokio::test]
async fn count_is_capped_at_the_maximum_page_size() {
    check(
        "count_is_capped_at_the_maximum_page_size",
        Setup {
            config: Some(|c| c.limits.max_page_size = 2),
            ..Setup::default()
        },
        steps![
            new_user("u0", "u0"),
            new_user("u1", "u1"),
            new_user("u2", "u2"),
            // Bodies of lists with several resources stay out of the snapshots: resources
            // created in the same instant come back in id order, which differs run to run.
            get("/Users?count=100").no_body().check(|b| {
                assert_eq!(b["totalResults"], 3);
                assert_eq!(b["itemsPerPage"], 2);
                assert_eq!(b["Resources"].as_array().unwrap().len(), 2);
            }),
            get("/ServiceProviderConfig").check(|b| assert_eq!(b["filter"]["maxResults"], 2)),
        ],
    )
    .await;
}

#[tokio::test]
async fn patch_with_too_many_operations_is_400_too_many() {
    let ops: Vec<Value> = (0..3)
        .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
        .collect();
    check(
        "patch_with_too_many_operations_is_400_too_many",
        Setup {
            config: Some(|c| c.limits.max_patch_operations = 2),
            ..Setup::default()
        },
        steps![
            new_user("ops", "u"),
            patch("/Users/${u}", json!(ops)).fails(400, "tooMany"),
        ],
    )
    .await;
}

#[tokio::test]
async fn bulk_over_the_limits_is_413() {
    let op = |i: usize| {
        json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
               "data": {"schemas": [USER_URN], "userName": format!("bulk{i}")}})
    };
    check(
        "bulk_over_the_limits_is_413",
        Setup {
            config: Some(|c| {
                c.limits.max_bulk_operations = 2;
                c.limits.max_bulk_payload_bytes = 4096;
            }),
            ..Setup::default()
        },
        steps![
            bulk(json!([op(0), op(1), op(2)])).expect(413),
            bulk(json!([{"method": "POST", "path": "/Users",
                         "data": {"userName": "x", "displayName": "y".repeat(8192)}}]))
            .expect(413),
            get("/ServiceProviderConfig").check(|b| {
                assert_eq!(b["bulk"]["maxOperations"], 2);
                assert_eq!(b["bulk"]["maxPayloadSize"], 4096);
            }),
        ],
    )
    .await;
}

/// 401 with `WWW-Authenticate: Bearer`, never echoing the credential; the scheme is
/// case-insensitive; operational endpoints need no credential.
#[tokio::test]
async fn missing_or_bad_credentials_are_401_with_www_authenticate() {
    let operational = |path: &'static str| root(path).no_body();
    check(
        "missing_or_bad_credentials_are_401_with_www_authenticate",
        Setup::default(),
        steps![
            get("/Users").who(Who::Anonymous).expect(401),
            get("/Users")
                .who(Who::Bearer("wrong-token-wrong-token"))
                .expect(401)
                .lacks("wrong-token"),
            get("/Users")
                .who(Who::Anonymous)
                .with("authorization", format!("bearer {TOKEN}")),
            operational("/healthz"),
            operational("/readyz"),
            operational("/metrics"),
            operational("/openapi.json"),
            operational("/docs"),
        ],
    )
    .await;
}

/// A token revoked in the store is refused once the verified-token cache lifetime has passed
/// (`[auth] token_cache_seconds`, the documented revocation bound).
#[tokio::test]
async fn revoked_tokens_are_refused() {
    check(
        "revoked_tokens_are_refused",
        Setup {
            manual_clock: Some(OffsetDateTime::now_utc()),
            tokens: &[("t", "default", false)],
            ..Setup::default()
        },
        steps![
            get("/Users").by("t"),
            Step::Revoke("t"),
            Step::Advance(scim_server::auth::DEFAULT_TOKEN_CACHE_SECONDS as i64),
            get("/Users").by("t").expect(401),
        ],
    )
    .await;
}

#[tokio::test]
async fn read_only_token_may_read_but_not_write() {
    check(
        "read_only_token_may_read_but_not_write",
        Setup {
            tokens: &[("ro", "default", true)],
            ..Setup::default()
        },
        steps![
            new_user("ro-target", "u"),
            get("/Users").by("ro"),
            post("/Users/.search", json!({})).by("ro"),
            post("/Users", json!({"userName": "nope"}))
                .by("ro")
                .expect(403),
            put("/Users/${u}", json!({"userName": "ro-target"}))
                .by("ro")
                .expect(403),
            patch(
                "/Users/${u}",
                json!([{"op": "replace", "path": "title", "value": "x"}])
            )
            .by("ro")
            .expect(403),
            delete("/Users/${u}").by("ro").expect(403),
            post(
                "/Bulk",
                json!({"Operations": [{"method": "DELETE", "path": "/Users/${u}"}]})
            )
            .by("ro")
            .expect(403),
        ],
    )
    .await;
}

#[tokio::test]
async fn tenants_are_isolated() {
    check(
        "tenants_are_isolated",
        Setup {
            tokens: &[("other", "other", false)],
            ..Setup::default()
        },
        steps![
            new_user("shared-name", "u"),
            new_group("Shared", "g"),
            get("/Users/${u}").by("other").expect(404),
            get("/Groups/${g}").by("other").expect(404),
            delete("/Users/${u}").by("other").expect(404),
            patch(
                "/Users/${u}",
                json!([{"op": "replace", "path": "title", "value": "x"}])
            )
            .by("other")
            .expect(404),
            get("/Users")
                .by("other")
                .check(|b| assert_eq!(b["totalResults"], 0)),
            post("/.search", json!({}))
                .by("other")
                .check(|b| assert_eq!(b["totalResults"], 0)),
            // The same userName may exist in another tenant.
            post("/Users", json!({"userName": "shared-name"}))
                .by("other")
                .expect(201)
                .save("other_u"),
            // A group in another tenant cannot take our user as a member.
            post("/Groups", json!({"displayName": "G"}))
                .by("other")
                .expect(201)
                .save("other_g"),
            patch(
                "/Groups/${other_g}?attributes=members",
                json!([{"op": "add", "path": "members", "value": [{"value": "${u}"}]}])
            )
            .by("other")
            .absent("/members"),
            // Still intact for its owner.
            get("/Users/${u}"),
        ],
    )
    .await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    check(
        "rate_limit_answers_429_with_retry_after",
        Setup {
            config: Some(|c| {
                c.rate_limit.requests_per_second = 0.5;
                c.rate_limit.burst = 2;
            }),
            manual_clock: Some(OffsetDateTime::UNIX_EPOCH),
            tokens: &[("other", "other", false)],
            ..Setup::default()
        },
        steps![
            get("/Users"),
            get("/Users"),
            get("/Users").expect(429),
            // Another tenant is not affected.
            get("/Users").by("other"),
            Step::Advance(2),
            get("/Users"),
        ],
    )
    .await;
}

#[tokio::test]
async fn discovery_documents() {
    check(
        "discovery_documents",
        Setup::default(),
        steps![
            get("/ServiceProviderConfig").check(|b| {
                for feature in ["patch", "bulk", "filter", "sort", "etag"] {
                    assert_eq!(b[feature]["supported"], true, "{feature}");
                }
                assert_eq!(b["changePassword"]["supported"], false);
                assert_eq!(b["authenticationSchemes"][0]["type"], "oauthbearertoken");
            }),
            get("/Schemas").check(|b| {
                assert_eq!(b["totalResults"], 3);
                let ids: Vec<&str> = b["Resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["id"].as_str().unwrap())
                    .collect();
                assert_eq!(ids, [USER_URN, GROUP_URN, ENTERPRISE]);
                let user = &b["Resources"][0];
                assert_eq!(user["description"], "User Account");
                let attrs: Vec<&str> = user["attributes"]
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
            }),
            get(format!("/Schemas/{ENTERPRISE}"))
                .check(|b| assert_eq!(b["id"], ENTERPRISE))
                .no_body(),
            get("/Schemas/urn:nope").expect(404),
            get("/ResourceTypes").check(|b| assert_eq!(b["totalResults"], 2)),
            get("/ResourceTypes/User").check(|b| {
                assert_eq!(b["endpoint"], "/Users");
                assert_eq!(b["schemaExtensions"][0]["schema"], ENTERPRISE);
            }),
            get("/ResourceTypes/Device").expect(404),
        ],
    )
    .await;
}

#[tokio::test]
async fn me_is_not_implemented() {
    check(
        "me_is_not_implemented",
        Setup::default(),
        steps![
            get("/Me").expect(501),
            call(Method::PUT, "/Me").expect(501),
            call(Method::PATCH, "/Me").expect(501),
            call(Method::DELETE, "/Me").expect(501),
        ],
    )
    .await;
}

/// The ETag is `meta.version`; `If-None-Match` answers 304; a stale `If-Match` 412.
#[tokio::test]
async fn etags_if_none_match_and_if_match() {
    let set_title = || {
        patch(
            "/Users/${u}",
            json!([{"op": "replace", "path": "title", "value": "VP"}]),
        )
    };
    check(
        "etags_if_none_match_and_if_match",
        Setup::default(),
        steps![
            new_user("etag", "u"),
            get("/Users/${u}").check(|b| assert_eq!(b["meta"]["version"], "W/\"1\"")),
            get("/Users/${u}")
                .with("if-none-match", "W/\"1\"")
                .expect(304),
            set_title()
                .with("if-match", "W/\"1\"")
                .check(|b| assert_eq!(b["meta"]["version"], "W/\"2\"")),
            set_title().with("if-match", "W/\"1\"").expect(412),
        ],
    )
    .await;
}

/// PATCH answers 200 with the resource for users, 204 for groups (unless attributes are asked
/// for, Entra's habit), and `excludedAttributes=members` leaves the members out.
#[tokio::test]
async fn patch_status_codes_users_200_groups_204() {
    check(
        "patch_status_codes_users_200_groups_204",
        Setup::default(),
        steps![
            new_user("patchme", "u"),
            new_group("PatchGroup", "g"),
            patch(
                "/Users/${u}",
                json!([{"op": "Replace", "path": "title", "value": "Boss"}])
            )
            .check(|b| assert_eq!(b["title"], "Boss")),
            patch(
                "/Groups/${g}",
                json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "${u}"}]}])
            )
            .expect(204)
            .check(|b| assert!(b.is_null())),
            patch(
                "/Groups/${g}?attributes=displayName",
                json!([{"op": "replace", "path": "displayName", "value": "Renamed"}])
            )
            .absent("/members")
            .check(|b| assert_eq!(b["displayName"], "Renamed")),
            get("/Groups/${g}").check(|b| assert_eq!(b["members"].as_array().unwrap().len(), 1)),
            get("/Groups/${g}?excludedAttributes=members")
                .absent("/members")
                .check(|b| assert_eq!(b["displayName"], "Renamed")),
        ],
    )
    .await;
}

/// Unknown member ids are skipped; adding only unknown ids changes nothing (no new version, no
/// change record).
#[tokio::test]
async fn unknown_member_ids_are_skipped() {
    check(
        "unknown_member_ids_are_skipped",
        Setup::default(),
        steps![
            new_user("member", "u"),
            new_group("Mixed", "g"),
            patch(
                "/Groups/${g}",
                json!([{"op": "add", "path": "members",
                        "value": [{"value": "${u}"}, {"value": "no-such-user"}]}])
            )
            .expect(204),
            get("/Groups/${g}").check(|b| {
                assert_eq!(b["members"].as_array().unwrap().len(), 1);
                assert_eq!(b["meta"]["version"], "W/\"2\"");
            }),
            patch(
                "/Groups/${g}",
                json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}])
            )
            .expect(204),
            get("/Groups/${g}").check(|b| assert_eq!(b["meta"]["version"], "W/\"2\"")),
        ],
    )
    .await;
}

/// Deactivation keeps the user readable and findable; DELETE removes it and its memberships,
/// moving the group's version so a client holding the old ETag re-reads.
#[tokio::test]
async fn soft_delete_keeps_users_readable_and_delete_removes_memberships() {
    check(
        "soft_delete_keeps_users_readable_and_delete_removes_memberships",
        Setup::default(),
        steps![
            new_user("soft@example.com", "u"),
            patch(
                "/Users/${u}",
                json!([{"op": "Replace", "path": "active", "value": "False"}])
            )
            .check(|b| assert_eq!(b["active"], false)),
            get("/Users/${u}").check(|b| assert_eq!(b["active"], false)),
            get("/Users?filter=userName+eq+%22soft%40example.com%22").check(|b| {
                assert_eq!(b["totalResults"], 1);
                assert_eq!(b["Resources"][0]["active"], false);
            }),
            new_group("Leavers", "g"),
            patch(
                "/Groups/${g}",
                json!([{"op": "add", "path": "members", "value": [{"value": "${u}"}]}])
            )
            .expect(204),
            get("/Groups/${g}").check(|b| assert_eq!(b["meta"]["version"], "W/\"2\"")),
            delete("/Users/${u}"),
            get("/Groups/${g}")
                .absent("/members")
                .check(|b| assert_eq!(b["meta"]["version"], "W/\"3\"")),
            get("/Users/${u}").expect(404),
            delete("/Users/${u}").expect(404),
        ],
    )
    .await;
}

#[tokio::test]
async fn put_without_active_keeps_it_and_password_is_never_returned() {
    check(
        "put_without_active_keeps_it_and_password_is_never_returned",
        Setup::default(),
        steps![
            post(
                "/Users",
                json!({"userName": "okta@example.com", "password": "hunter22", "active": false})
            )
            .expect(201)
            .save("u")
            .absent("/password")
            .lacks("hunter22"),
            put(
                "/Users/${u}",
                json!({"schemas": [USER_URN], "userName": "okta@example.com",
                       "displayName": "Okta", "password": "x"})
            )
            .absent("/password")
            .check(|b| {
                assert_eq!(b["active"], false);
                assert_eq!(b["displayName"], "Okta");
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn meta_location_follows_forwarded_headers() {
    check(
        "meta_location_follows_forwarded_headers",
        Setup::default(),
        steps![
            call(Method::POST, "/Users")
                .raw(Some("application/json"), r#"{"userName":"fwd"}"#)
                .with("host", "internal:8080")
                .with("x-forwarded-proto", "https")
                .with("x-forwarded-host", "scim.example.com")
                .expect(201)
                .check(|b| assert!(
                    b["meta"]["location"]
                        .as_str()
                        .unwrap()
                        .starts_with("https://scim.example.com/scim/v2/Users/")
                )),
        ],
    )
    .await;
}

#[tokio::test]
async fn meta_location_follows_public_url() {
    check(
        "meta_location_follows_public_url",
        Setup {
            config: Some(|c| c.public_url = Some("https://public.example/tenant-a/scim/v2".into())),
            ..Setup::default()
        },
        steps![
            post("/Users", json!({"userName": "pub"}))
                .expect(201)
                .check(|b| assert!(
                    b["meta"]["location"]
                        .as_str()
                        .unwrap()
                        .starts_with("https://public.example/tenant-a/scim/v2/Users/")
                )),
        ],
    )
    .await;
}

/// bulkIds resolve in dependency order (results in execution order: the user the group refers
/// to first); a failure does not stop the rest unless `failOnErrors` is reached.
#[tokio::test]
async fn bulk_resolves_bulk_ids_and_honours_fail_on_errors() {
    check(
        "bulk_resolves_bulk_ids_and_honours_fail_on_errors",
        Setup::default(),
        steps![
            bulk(json!([
                {"method": "POST", "path": "/Groups", "bulkId": "g",
                 "data": {"displayName": "Bulk", "members": [{"value": "bulkId:u"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "bulk-user"}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "bulk-user"}},
            ]))
            .save_at("g", "/Operations/1/location")
            .check(|b| {
                let ops = b["Operations"].as_array().unwrap();
                let by = |id: &str| ops.iter().find(|o| o["bulkId"] == id).unwrap();
                assert_eq!(ops.len(), 3);
                assert_eq!(ops[0]["bulkId"], "u");
                assert_eq!(by("g")["status"], "201");
                assert_eq!(by("u")["status"], "201");
                assert_eq!(by("dup")["status"], "409");
                assert_eq!(by("dup")["response"]["scimType"], "uniqueness");
            }),
            get("/Groups/${g}"),
            post(
                "/Bulk",
                json!({"failOnErrors": 1, "Operations": [
                    {"method": "POST", "path": "/Users", "data": {"userName": "bulk-user"}},
                    {"method": "POST", "path": "/Users", "data": {"userName": "never-created"}},
                ]})
            )
            .check(|b| assert_eq!(b["Operations"].as_array().unwrap().len(), 1)),
            get("/Users?filter=userName+eq+%22never-created%22")
                .check(|b| assert_eq!(b["totalResults"], 0)),
        ],
    )
    .await;
}

/// With `bulk_upsert_by_external_id` a Bulk POST of a known externalId updates (200); without
/// it (the default tenant) it is a uniqueness failure.
#[tokio::test]
async fn bulk_hr_upsert_updates_by_external_id_when_enabled() {
    let op = |title: &str| {
        json!([{"method": "POST", "path": "/Users", "bulkId": "same",
                "data": {"schemas": [USER_URN, ENTERPRISE], "externalId": "701984",
                         "userName": "bjensen@example.com", "title": title,
                         ENTERPRISE: {"employeeNumber": "701984"}}}])
    };
    check(
        "bulk_hr_upsert_updates_by_external_id_when_enabled",
        Setup {
            tenants: &[("hr", true)],
            tokens: &[("hr", "hr", false)],
            ..Setup::default()
        },
        steps![
            bulk(op("Tour Guide"))
                .by("hr")
                .check(|b| assert_eq!(b["Operations"][0]["status"], "201")),
            bulk(op("Tour Lead"))
                .by("hr")
                .check(|b| assert_eq!(b["Operations"][0]["status"], "200")),
            get("/Users").by("hr").check(|b| {
                assert_eq!(b["totalResults"], 1);
                assert_eq!(b["Resources"][0]["title"], "Tour Lead");
            }),
            bulk(op("A")).check(|b| assert_eq!(b["Operations"][0]["status"], "201")),
            bulk(op("B")).check(|b| assert_eq!(b["Operations"][0]["status"], "409")),
        ],
    )
    .await;
}

#[tokio::test]
async fn root_search_pages_users_then_groups() {
    check(
        "root_search_pages_users_then_groups",
        Setup::default(),
        steps![
            new_user("s1", "s1"),
            new_user("s2", "s2"),
            new_group("G1", "g1"),
            post("/.search", json!({"startIndex": 2, "count": 2}))
                .no_body()
                .check(|b| {
                    assert_eq!(b["totalResults"], 3);
                    assert_eq!(b["Resources"].as_array().unwrap().len(), 2);
                    assert_eq!(b["Resources"][1]["displayName"], "G1");
                }),
        ],
    )
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    check(
        "metrics_count_requests_by_route",
        Setup::default(),
        steps![
            get("/Users"),
            root("/metrics")
                .no_body()
                .contains("scim_http_requests_total")
                .contains("route=\"/scim/v2/Users\"")
                // The list's page ran on the request's thread (a SQLite file database).
                .contains("scim_sqlite_inline_reads_total{outcome=\"answered\"}"),
        ],
    )
    .await;
}

#[tokio::test]
async fn attributes_apply_to_write_responses() {
    check(
        "attributes_apply_to_write_responses",
        Setup::default(),
        steps![
            post(
                "/Users?attributes=userName",
                json!({"userName": "proj", "title": "T", "displayName": "D"})
            )
            .expect(201)
            .save("u")
            .keys(&["schemas", "id", "userName"]),
            put(
                "/Users/${u}?excludedAttributes=title",
                json!({"userName": "proj", "title": "T2", "displayName": "D2"})
            )
            .absent("/title")
            .check(|b| assert_eq!(b["displayName"], "D2")),
        ],
    )
    .await;
}

/// The write pipeline reads the row once per attempt, and a lost compare-and-swap is retried
/// after a backoff that waits on the injected clock (a `ManualClock` here: no real sleep). With
/// If-Match a lost race is the client's answer (412), not retried.
#[tokio::test]
async fn a_patch_reads_once_per_attempt_and_retries_on_the_clock() {
    let set_title = |t: &'static str| {
        patch(
            "/Users/${u}",
            json!([{"op": "replace", "path": "title", "value": t}]),
        )
    };
    check(
        "a_patch_reads_once_per_attempt_and_retries_on_the_clock",
        Setup {
            manual_clock: Some(OffsetDateTime::UNIX_EPOCH),
            spy: true,
            ..Setup::default()
        },
        steps![
            new_user("racer", "u"),
            set_title("A")
                .reads(1)
                .sleeps(0)
                .check(|b| assert_eq!(b["meta"]["version"], "W/\"2\"")),
            set_title("B")
                .losing_races(3)
                .reads(4)
                .sleeps(3)
                .check(|b| {
                    assert_eq!(b["title"], "B");
                    assert_eq!(b["meta"]["version"], "W/\"3\"");
                }),
            set_title("C")
                .with("if-match", "W/\"3\"")
                .losing_races(1)
                .expect(412)
                .reads(1)
                .sleeps(0),
        ],
    )
    .await;
}

/// A Bulk that would outlast the request timeout stops between operations and says which ran:
/// the operations it did not start answer 503 each, and none is half-applied.
#[tokio::test]
async fn a_bulk_out_of_time_stops_between_operations_and_says_what_ran() {
    let ops: Vec<Value> = (0..5)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                   "data": {"schemas": [USER_URN], "userName": format!("late{i}")}})
        })
        .collect();
    check(
        "a_bulk_out_of_time_stops_between_operations_and_says_what_ran",
        Setup {
            config: Some(|c| c.limits.request_timeout_seconds = 30),
            manual_clock: Some(OffsetDateTime::UNIX_EPOCH),
            spy: true,
            slow_creates: true,
            ..Setup::default()
        },
        steps![
            bulk(json!(ops)).contains("not run").check(|b| {
                let statuses: Vec<&str> = b["Operations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["status"].as_str().unwrap())
                    .collect();
                // Each create takes 10 s of a 22.5 s budget (75 % of 30 s): three start.
                assert_eq!(statuses, ["201", "201", "201", "503", "503"]);
                assert!(
                    b["Operations"][3]["response"]["detail"]
                        .as_str()
                        .unwrap()
                        .contains("not run")
                );
            }),
            get("/Users?filter=userName+sw+%22late%22")
                .no_body()
                .check(|b| assert_eq!(b["totalResults"], 3)),
        ],
    )
    .await;
}

/// Reads without members and member PATCHes never load a group's member list; only a full read
/// does.
#[tokio::test]
async fn group_reads_without_members_and_member_patches_never_load_members() {
    check(
        "group_reads_without_members_and_member_patches_never_load_members",
        Setup {
            spy: true,
            ..Setup::default()
        },
        steps![
            new_user("m1", "m1"),
            post(
                "/Groups",
                json!({"displayName": "Big", "members": [{"value": "${m1}"}]})
            )
            .expect(201)
            .save("g"),
            new_user("m2", "m2"),
            get("/Groups/${g}?excludedAttributes=members")
                .absent("/members")
                .member_loads(0),
            get("/Groups?excludedAttributes=members&filter=displayName+eq+%22Big%22")
                .absent("/Resources/0/members")
                .member_loads(0),
            patch(
                "/Groups/${g}",
                json!([
                    {"op": "Add", "path": "members", "value": [{"value": "${m2}"}]},
                    {"op": "Remove", "path": "members", "value": [{"value": "${m1}"}]},
                    {"op": "Replace", "path": "displayName", "value": "Bigger"}
                ])
            )
            .expect(204)
            .member_loads(0),
            patch(
                "/Groups/${g}",
                json!([{"op": "remove", "path": "members[value eq \"${m2}\"]"}])
            )
            .expect(204)
            .member_loads(0),
            get("/Groups/${g}?attributes=displayName")
                .absent("/members")
                .member_loads(0),
            get("/Groups/${g}")
                .absent("/members")
                .member_loads(1)
                .check(|b| assert_eq!(b["displayName"], "Bigger")),
        ],
    )
    .await;
}
