//! The Graph bridge end to end: SCIM requests over real HTTP → scim-server (its router on
//! 127.0.0.1) → the `scim_changes` outbox → the bridge worker → the fake Microsoft Graph, whose
//! directory is then inspected. Joiner (existing and created Graph user), mover, leaver (PATCH
//! `active` "False", and DELETE), re-hire, a rules change followed by `bridge reconcile --all`,
//! plan mode (no Graph call at all), the background worker of `serve`, and the `bridge` CLI
//! through the real binary.
//!
//! The worker is driven by rounds until idle (bounded), never by sleeping. The one exception is
//! the test of `serve`'s background worker, which polls the fake Graph a bounded number of times.
//!
//! PostgreSQL: the joiner path also runs on a fresh database created through
//! `SCIM_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`) and dropped at the end;
//! skipped with a note when that variable is unset and no server answers.

use reqwest::StatusCode;
use scim_graph_bridge::clock::SystemClock;
use scim_graph_bridge::config::GraphConfig;
use scim_graph_bridge::fake_graph::{FakeConfig, FakeGraph};
use scim_graph_bridge::worker::{RoundStats, Worker, WorkerConfig};
use scim_server::auth::{AuthConfig, AuthService, token_store};
use scim_server::bridge::cli::{BridgeCommand, execute};
use scim_server::bridge::{BackgroundWorker, BridgeContext, StoreDirectory, run_until_idle};
use scim_server::config::Config;
use scim_server::state::AppState;
use scim_server::store::Store;
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "bridge-test-token-0123456789abcdef";
const TENANT: &str = "default";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Helpdesk Administrator's role definition id.
const HELPDESK_ROLE: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

/// The Graph objects seeded in the fake and named by the rules file.
struct Catalog {
    all_staff: String,
    eng: String,
    support: String,
    /// Not in the catalog: the bridge must never touch it.
    manual: String,
    e5: String,
    e3: String,
}

/// The rules file: everyone gets `all-staff`; Engineering `eng` + E5; support staff in IT
/// `support` + E3 + Helpdesk Administrator. `engineering_license` lets a test change the rules.
fn rules_text(c: &Catalog, engineering_license: &str) -> String {
    format!(
        r#"
[match]
scim = "userName"
graph = "userPrincipalName"
[create]
enabled = true
usage_location = "US"
[catalog.groups]
all-staff = "{all}"
eng = "{eng}"
support = "{support}"
[catalog.licenses]
e5 = {{ sku_id = "{e5}" }}
e3 = {{ sku_id = "{e3}" }}
[catalog.roles]
helpdesk = {{ role_definition_id = "{HELPDESK_ROLE}", directory_scope_id = "/" }}
[defaults]
groups = ["all-staff"]
[[rule]]
name = "engineering"
when = {{ department = "Engineering" }}
groups = ["eng"]
licenses = ["{engineering_license}"]
[[rule]]
name = "support"
when = {{ department = {{ in = ["IT", "Service Desk"] }}, title = {{ starts_with = "Support" }} }}
groups = ["support"]
licenses = ["e3"]
roles = ["helpdesk"]
"#,
        all = c.all_staff,
        eng = c.eng,
        support = c.support,
        e5 = c.e5,
        e3 = c.e3,
    )
}

/// Which database a test runs on.
enum Db {
    Sqlite,
    /// A fresh PostgreSQL database: (admin URL, database name).
    Postgres(String, String),
}

/// The PostgreSQL server the tests use, without a database name; `None` (with a note) when it is
/// not required and does not answer.
async fn postgres_base() -> Option<String> {
    let required = std::env::var("SCIM_TEST_POSTGRES_URL").ok();
    let base = required
        .clone()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string();
    match sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
        Ok(c) => {
            c.close().await.ok();
            Some(base)
        }
        Err(e) if required.is_none() => {
            eprintln!(
                "note: PostgreSQL not reachable at {base} ({e}); bridge PostgreSQL test skipped"
            );
            None
        }
        Err(e) => panic!("PostgreSQL at {base}: {e}"),
    }
}

/// A fake Graph, a scim-server on 127.0.0.1 over a fresh database, and a bridge on the same
/// database configured from a `[graph]` section.
struct Env {
    fake: FakeGraph,
    cat: Catalog,
    dir: tempfile::TempDir,
    db: Db,
    config: Config,
    graph: GraphConfig,
    store: Arc<dyn Store>,
    ctx: BridgeContext,
    worker: Worker,
    base: String,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Env {
    /// `mode`: `"apply"`, or `"plan"` (then without credentials: plan is the default).
    async fn start(mode: &str) -> Env {
        Env::start_on(mode, None).await
    }

    async fn start_on(mode: &str, postgres: Option<String>) -> Env {
        let fake = FakeGraph::start(FakeConfig::default())
            .await
            .expect("fake graph");
        let cat = fake.with_directory(|d| Catalog {
            all_staff: d.add_group("all-staff"),
            eng: d.add_group("eng"),
            support: d.add_group("support"),
            manual: d.add_group("manual"),
            e5: d.add_sku("SPE_E5", 100),
            e3: d.add_sku("ENTERPRISEPACK", 100),
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("graph-rules.toml");
        std::fs::write(&rules, rules_text(&cat, "e5")).expect("rules file");
        let (database_url, db) = match postgres {
            None => (
                format!("sqlite://{}", dir.path().join("scim.db").display()),
                Db::Sqlite,
            ),
            Some(base) => {
                let admin = format!("{base}/postgres");
                let name = format!("scim_bridge_it_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                conn.close().await.ok();
                (format!("{base}/{name}"), Db::Postgres(admin, name))
            }
        };
        let cfg = FakeConfig::default();
        let credentials = if mode == "plan" {
            String::new()
        } else {
            format!(
                "tenant_id = {:?}\nclient_id = {:?}\nclient_secret = {:?}\nmode = {mode:?}\n",
                cfg.tenant_id,
                cfg.client_id,
                cfg.client_secret.clone().unwrap_or_default()
            )
        };
        let text = format!(
            "database_url = {database_url:?}\ntoken = {TOKEN:?}\n\
             [log]\nfilter = \"warn\"\n\
             [rate_limit]\nenabled = false\n\
             [graph]\n{credentials}authority_url = {:?}\ngraph_url = {:?}\nrules = {:?}\n",
            fake.authority_url(),
            fake.graph_url(),
            rules.display().to_string(),
        );
        std::fs::write(dir.path().join("scim.toml"), &text).expect("config file");
        let config = Config::from_parts(Some(&text), &[]).expect("config");
        let graph = config
            .graph_config(&[])
            .expect("[graph] valid")
            .expect("[graph] present");
        let store = scim_server::server::open_store(&database_url)
            .await
            .expect("open store");
        store.migrate().await.expect("migrate");
        let clock = Arc::new(scim_server::clock::SystemClock);
        scim_server::server::ensure_tenant(store.as_ref(), TENANT, clock.as_ref())
            .await
            .expect("tenant");
        let auth = AuthService::from_config(
            &AuthConfig::default(),
            token_store(store.clone()),
            clock.clone(),
        )
        .expect("auth")
        .with_env_token(TENANT, TOKEN);
        let state = AppState::with_clock(&config, store.clone(), Arc::new(auth), clock);
        let ctx = BridgeContext::open(
            &graph,
            &database_url,
            store.clone(),
            state.registry.clone(),
            Arc::new(SystemClock),
        )
        .await
        .expect("bridge context");
        let worker = ctx.worker(test_worker_config());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = scim_server::http::router(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Env {
            fake,
            cat,
            dir,
            db,
            config,
            graph,
            store,
            ctx,
            worker,
            base: format!("http://{addr}/scim/v2"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            server,
        }
    }

    /// Stops the server and drops the PostgreSQL database, if any.
    async fn finish(self) {
        self.server.abort();
        drop(self.worker);
        if let scim_graph_bridge::store::BridgeStore::Postgres(pool) = &self.ctx.store {
            pool.close().await;
        }
        drop(self.ctx);
        drop(self.store);
        if let Db::Postgres(admin, name) = &self.db {
            let mut conn = sqlx::PgConnection::connect(admin).await.expect("admin");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop database");
            conn.close().await.ok();
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("scim.toml")
    }

    /// A SCIM request with the bearer token; returns status and JSON body.
    async fn scim(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /Users` as Entra ID sends it; returns the SCIM id.
    async fn create_user(&self, upn: &str, department: &str, title: &str) -> String {
        let (status, body) = self
            .scim(
                reqwest::Method::POST,
                "/Users",
                Some(json!({
                    "schemas": [USER_URN, ENTERPRISE],
                    "userName": upn,
                    "active": true,
                    "displayName": format!("User {upn}"),
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "title": title,
                    ENTERPRISE: {"department": department, "employeeNumber": "E-1"}
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// `PATCH /Users/{id}` with `operations`.
    async fn patch_user(&self, id: &str, operations: Value) {
        let (status, body) = self
            .scim(
                reqwest::Method::PATCH,
                &format!("/Users/{id}"),
                Some(json!({"schemas": [PATCH_OP], "Operations": operations})),
            )
            .await;
        assert!(status.is_success(), "{status}: {body}");
    }

    async fn delete_user(&self, id: &str) {
        let (status, body) = self
            .scim(reqwest::Method::DELETE, &format!("/Users/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// Runs worker rounds until one claims nothing (bounded).
    async fn drain(&self) -> RoundStats {
        run_until_idle(&self.worker, 50).await.expect("drain")
    }

    /// Seeds a Graph user the SCIM user `upn` matches (in the non-catalog `manual` group).
    fn graph_user(&self, upn: &str) -> String {
        self.fake.with_directory(|d| {
            let id = d.add_user(json!({
                "userPrincipalName": upn, "displayName": upn, "mailNickname": "x", "usageLocation": "US"
            }));
            d.add_member(&self.cat.manual, &id);
            id
        })
    }

    /// What the fake Graph holds for `upn`, with catalog ids turned back into names.
    fn graph(&self, upn: &str) -> GraphView {
        self.fake.with_directory(|d| {
            let id = d
                .user_by_upn(upn)
                .unwrap_or_else(|| panic!("no Graph user {upn}"));
            let c = &self.cat;
            let group_name = |g: &String| {
                [
                    (&c.all_staff, "all-staff"),
                    (&c.eng, "eng"),
                    (&c.support, "support"),
                    (&c.manual, "manual"),
                ]
                .iter()
                .find(|(k, _)| *k == g)
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| g.clone())
            };
            let sku_name = |s: &String| {
                if *s == c.e5 {
                    "e5".to_string()
                } else if *s == c.e3 {
                    "e3".to_string()
                } else {
                    s.clone()
                }
            };
            let user = d.user(&id).expect("user");
            GraphView {
                enabled: user["accountEnabled"].as_bool().expect("accountEnabled"),
                department: user["department"].as_str().map(str::to_string),
                groups: d.groups_of(&id).iter().map(group_name).collect(),
                licenses: d.licenses_of(&id).iter().map(sku_name).collect(),
                roles: d
                    .roles_of(&id)
                    .iter()
                    .map(|(def, _)| {
                        if def == HELPDESK_ROLE {
                            "helpdesk".to_string()
                        } else {
                            def.clone()
                        }
                    })
                    .collect(),
                deleted: d.is_deleted(&id),
                id,
            }
        })
    }

    /// The newest recorded plan of a SCIM user: (mode, status, kind).
    async fn last_plan(&self, id: &str) -> (String, String, String) {
        let plans = self
            .ctx
            .store
            .plans_for_user(TENANT, id, 1)
            .await
            .expect("plans");
        let p = plans.first().expect("a recorded plan");
        let kind = serde_json::to_value(p.plan.kind).expect("kind");
        (
            p.mode.clone(),
            p.status.clone(),
            kind.as_str().unwrap_or_default().to_string(),
        )
    }

    /// Runs a `bridge` subcommand in-process; returns its exit code and output.
    async fn cli(&self, command: BridgeCommand) -> (ExitCode, String) {
        let mut out = Vec::new();
        let code = execute(
            command,
            &self.config,
            &self.graph,
            Arc::new(SystemClock),
            &mut out,
        )
        .await
        .expect("bridge command");
        (code, String::from_utf8(out).expect("utf-8"))
    }
}

/// Worker settings for tests: a fixed owner, short backoff.
fn test_worker_config() -> WorkerConfig {
    WorkerConfig {
        owner: "it-worker".into(),
        base_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    }
}

/// A Graph user as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GraphView {
    id: String,
    enabled: bool,
    department: Option<String>,
    groups: BTreeSet<String>,
    licenses: BTreeSet<String>,
    roles: BTreeSet<String>,
    deleted: bool,
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts groups, licenses and roles of `upn`.
fn assert_grants(v: &GraphView, groups: &[&str], licenses: &[&str], roles: &[&str]) {
    assert_eq!(
        (&v.groups, &v.licenses, &v.roles),
        (&set(groups), &set(licenses), &set(roles)),
        "{v:?}"
    );
}

/// Joiner onto an existing Graph user, mover, leaver by `active: "False"` (as Entra sends it),
/// and re-hire; the non-catalog group survives every step.
async fn joiner_mover_leaver_rehire(env: &Env) {
    let ada = "ada@contoso.example";
    let graph_id = env.graph_user(ada);

    // joiner: the existing Graph user is matched by UPN and granted the Engineering set
    let id = env.create_user(ada, "Engineering", "Developer").await;
    let s = env.drain().await;
    assert_eq!(
        (s.completed, s.retried, s.dead_lettered),
        (1, 0, 0),
        "{s:?}"
    );
    let v = env.graph(ada);
    assert_eq!(v.id, graph_id, "matched, not created");
    assert!(v.enabled);
    assert_eq!(v.department.as_deref(), Some("Engineering"));
    assert_grants(&v, &["all-staff", "eng", "manual"], &["e5"], &[]);
    assert_eq!(
        env.last_plan(&id).await,
        ("apply".into(), "applied".into(), "update".into())
    );

    // mover: Engineering → IT support swaps groups, licenses and roles
    env.patch_user(
        &id,
        json!([
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "IT"},
            {"op": "Replace", "path": "title", "value": "Support Agent"}
        ]),
    )
    .await;
    env.drain().await;
    let v = env.graph(ada);
    assert_eq!(v.department.as_deref(), Some("IT"));
    assert_grants(
        &v,
        &["all-staff", "manual", "support"],
        &["e3"],
        &["helpdesk"],
    );

    // leaver: Entra's soft delete
    env.fake.clear_log();
    env.patch_user(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    env.drain().await;
    let v = env.graph(ada);
    assert!(!v.enabled, "{v:?}");
    assert!(!v.deleted);
    assert_grants(&v, &["manual"], &[], &[]);
    let revoked =
        env.fake.requests().iter().any(|r| {
            r.method == "POST" && r.path == format!("/users/{graph_id}/revokeSignInSessions")
        });
    assert!(revoked, "sessions revoked: {:?}", env.fake.requests());
    assert_eq!(env.last_plan(&id).await.2, "leaver");

    // re-hire: active again restores the account and the grants
    env.patch_user(
        &id,
        json!([{"op": "Replace", "path": "active", "value": true}]),
    )
    .await;
    env.drain().await;
    let v = env.graph(ada);
    assert!(v.enabled);
    assert_grants(
        &v,
        &["all-staff", "manual", "support"],
        &["e3"],
        &["helpdesk"],
    );
    assert_eq!(env.last_plan(&id).await.2, "rehire");

    // nothing changed since: another round is a no-op without Graph writes
    env.fake.clear_log();
    assert_eq!(env.drain().await.claimed, 0);
    assert!(env.fake.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_mover_leaver_rehire_on_sqlite() {
    let env = Env::start("apply").await;
    joiner_mover_leaver_rehire(&env).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_on_postgres() {
    let Some(base) = postgres_base().await else {
        return;
    };
    let env = Env::start_on("apply", Some(base)).await;
    let ada = "ada@contoso.example";
    let graph_id = env.graph_user(ada);
    let id = env.create_user(ada, "Engineering", "Developer").await;
    let s = env.drain().await;
    assert_eq!((s.ingested, s.completed), (1, 1), "{s:?}");
    let v = env.graph(ada);
    assert_eq!(v.id, graph_id);
    assert_grants(&v, &["all-staff", "eng", "manual"], &["e5"], &[]);
    assert_eq!(
        env.last_plan(&id).await,
        ("apply".into(), "applied".into(), "update".into())
    );
    let (_, status) = env.cli(BridgeCommand::Status { json: true }).await;
    let status: Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(
        status["cursors"][0]["last_seq"],
        status["cursors"][0]["head_seq"]
    );
    env.finish().await;
}

/// A joiner without a Graph user is created; DELETE is a leaver (disabled, not deleted: no
/// retention is configured); a new SCIM user with the same userName re-hires the same Graph user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_joiner_delete_and_rehire() {
    let env = Env::start("apply").await;
    let bob = "bob@contoso.example";
    let id = env.create_user(bob, "Engineering", "Developer").await;
    env.drain().await;
    let v = env.graph(bob);
    assert!(v.enabled);
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    assert_eq!(env.last_plan(&id).await.2, "create");
    let created = v.id;

    env.delete_user(&id).await;
    env.drain().await;
    let v = env.graph(bob);
    assert_eq!(v.id, created);
    assert!(!v.enabled && !v.deleted, "{v:?}");
    assert_grants(&v, &[], &[], &[]);

    let again = env.create_user(bob, "Engineering", "Developer").await;
    assert_ne!(again, id);
    env.drain().await;
    let v = env.graph(bob);
    assert_eq!(
        v.id, created,
        "the disabled Graph user is re-hired, not duplicated"
    );
    assert!(v.enabled);
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    assert_eq!(env.last_plan(&again).await.2, "rehire");
    env.finish().await;
}

/// A changed rules file takes effect for existing users only after `bridge reconcile --all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_change_then_reconcile_all() {
    let env = Env::start("apply").await;
    let users = [
        "u1@contoso.example",
        "u2@contoso.example",
        "u3@contoso.example",
    ];
    for u in users {
        env.create_user(u, "Engineering", "Developer").await;
    }
    // a user the rules do not touch beyond the defaults
    env.create_user("u4@contoso.example", "Sales", "Rep").await;
    let s = env.drain().await;
    assert_eq!(s.completed, 4, "{s:?}");
    for u in users {
        assert_eq!(env.graph(u).licenses, set(&["e5"]));
    }

    // Engineering moves from E5 to E3; a restarted bridge reads the new rules
    std::fs::write(
        env.dir.path().join("graph-rules.toml"),
        rules_text(&env.cat, "e3"),
    )
    .unwrap();
    let ctx = BridgeContext::open(
        &env.graph,
        &env.config.database_url,
        env.store.clone(),
        Arc::new(scim_core::schema::SchemaRegistry::builtin()),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let worker = ctx.worker(test_worker_config());
    env.fake.clear_log();
    // no SCIM change: nothing to do yet
    assert_eq!(run_until_idle(&worker, 50).await.unwrap().claimed, 0);
    assert!(env.fake.writes().is_empty());

    let (code, out) = env
        .cli(BridgeCommand::Reconcile {
            all: true,
            user: None,
            tenant: None,
        })
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out.trim(), "tenant \"default\": 4 users queued");
    let s = run_until_idle(&worker, 50).await.unwrap();
    assert_eq!(s.completed, 4, "{s:?}");
    for u in users {
        let v = env.graph(u);
        assert_grants(&v, &["all-staff", "eng"], &["e3"], &[]);
    }
    let sales = env.graph("u4@contoso.example");
    assert_grants(&sales, &["all-staff"], &[], &[]);
    // one assignLicense per Engineering user, nothing for the Sales user
    let writes = env.fake.writes();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(writes.iter().all(|w| w.path.ends_with("/assignLicense")));
    env.finish().await;
}

/// Without credentials the bridge plans only: plans are recorded and nothing reaches Graph, not
/// even a token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_mode_makes_no_graph_call() {
    let env = Env::start("plan").await;
    assert_eq!(
        env.graph.effective_mode(),
        scim_graph_bridge::config::Mode::Plan
    );
    env.graph_user("ada@contoso.example");
    env.fake.clear_log();
    let id = env
        .create_user("ada@contoso.example", "Engineering", "Developer")
        .await;
    env.patch_user(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    let other = env
        .create_user("bob@contoso.example", "IT", "Support Agent")
        .await;
    env.delete_user(&other).await;
    let s = env.drain().await;
    assert_eq!((s.ingested, s.completed), (4, 2), "{s:?}");
    assert_eq!(
        env.last_plan(&id).await,
        ("plan".into(), "planned".into(), "leaver".into())
    );
    let (code, out) = env
        .cli(BridgeCommand::Plan {
            user: id.clone(),
            tenant: None,
        })
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let plan: Value = serde_json::from_str(&out).expect("plan JSON");
    assert_eq!(plan["actual_known"], false);
    assert_eq!(plan["kind"], "leaver");
    let (_, status) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(status.starts_with("mode: plan\n"), "{status}");
    assert!(env.fake.requests().is_empty(), "{:?}", env.fake.requests());
    assert_eq!(env.fake.token_requests(), 0);
    let ada = env.graph("ada@contoso.example");
    assert!(ada.enabled);
    assert_grants(&ada, &["manual"], &[], &[]);
    env.finish().await;
}

/// The directory pages user ids in ascending order, strictly after the cursor, per tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_pages_user_ids() {
    use scim_graph_bridge::directory::UserDirectory;
    let env = Env::start("plan").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            env.create_user(&format!("p{i}@contoso.example"), "Sales", "Rep")
                .await,
        );
    }
    ids.sort();
    let dir = StoreDirectory::new(
        env.store.clone(),
        Arc::new(scim_core::schema::SchemaRegistry::builtin()),
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let page = dir
            .list_user_ids(TENANT, after.as_deref(), 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen, ids);
    assert!(
        dir.list_user_ids("nobody", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let user = dir.get_user(TENANT, &ids[0]).await.unwrap().expect("user");
    assert_eq!(user["id"], ids[0].as_str());
    assert_eq!(user[ENTERPRISE]["department"], "Sales");
    assert!(dir.get_user(TENANT, "missing").await.unwrap().is_none());
    env.finish().await;
}

/// The background worker `serve` runs picks up changes by itself and stops on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_worker_applies_changes_and_stops() {
    let env = Env::start("apply").await;
    let background = BackgroundWorker::spawn(
        env.ctx.worker(WorkerConfig {
            owner: "background".into(),
            ..test_worker_config()
        }),
        Duration::from_secs(10),
    );
    assert!(background.is_running());
    env.create_user("bg@contoso.example", "Engineering", "Developer")
        .await;
    let mut applied = false;
    for _ in 0..400 {
        let done = env.fake.with_directory(|d| {
            d.user_by_upn("bg@contoso.example")
                .is_some_and(|u| d.licenses_of(&u).len() == 1)
        });
        if done {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(applied, "the background worker reconciled the joiner");
    background.shutdown().await;
    let v = env.graph("bg@contoso.example");
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    env.finish().await;
}

/// Runs the real binary with the test's configuration file; returns (success, stdout, stderr).
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

/// `bridge plan`, `status`, `run --until-idle` and `dead-letters list` through the binary, on the
/// database the in-process server writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_through_the_binary() {
    let env = Env::start("apply").await;
    let ada = "ada@contoso.example";
    env.graph_user(ada);
    let id = env.create_user(ada, "Engineering", "Developer").await;
    env.drain().await;
    // a mover the worker has not seen yet
    env.patch_user(
        &id,
        json!([
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "IT"},
            {"op": "Replace", "path": "title", "value": "Support Agent"}
        ]),
    )
    .await;
    let config = env.config_path();
    let (config, id2) = (config.clone(), id.clone());
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "plan", "--user", &id2]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(plan["kind"], "update");
    assert_eq!(plan["actual_known"], true);
    let ops: Vec<(&str, &str)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["op"].as_str().unwrap(),
                s["group"].as_str().or(s["role"].as_str()).unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("add_group", "support"),
        ("remove_group", "eng"),
        ("add_role", "helpdesk"),
        ("assign_licenses", ""),
    ] {
        assert!(ops.contains(&expected), "{expected:?} in {ops:?}");
    }
    // planning applied nothing
    assert!(env.graph(ada).groups.contains("eng"));

    let config = env.config_path();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "status"]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("mode: apply\n"), "{out}");
    assert!(out.contains("pending: 0 (leased 0, retrying 0)\n"), "{out}");
    assert!(out.contains("dead letters: 0\n"), "{out}");
    assert!(
        out.contains("outbox \"default\": consumed 1 of 2\n"),
        "{out}"
    );

    let config = env.config_path();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "run", "--until-idle"]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("reconciled: 1\n"), "{out}");
    let v = env.graph(ada);
    assert_grants(
        &v,
        &["all-staff", "manual", "support"],
        &["e3"],
        &["helpdesk"],
    );

    let config = env.config_path();
    let (status, letters) = tokio::task::spawn_blocking(move || {
        (
            binary(&config, &["bridge", "status", "--json"]),
            binary(&config, &["bridge", "dead-letters", "list"]),
        )
    })
    .await
    .unwrap();
    assert!(status.0, "{}", status.2);
    let status: Value = serde_json::from_str(&status.1).expect("status JSON");
    assert_eq!(status["mode"], "apply");
    assert_eq!(status["cursors"][0]["last_seq"], 2);
    assert_eq!(status["dead_letters"], 0);
    assert!(letters.0, "{}", letters.2);
    assert_eq!(letters.1.lines().count(), 1, "header only: {}", letters.1);

    // a configuration without [graph]: a clear error naming the section
    let bare = env.dir.path().join("bare.toml");
    std::fs::write(
        &bare,
        format!("database_url = {:?}\n", env.config.database_url),
    )
    .unwrap();
    let (ok, _, err) = tokio::task::spawn_blocking(move || binary(&bare, &["bridge", "status"]))
        .await
        .unwrap();
    assert!(!ok);
    assert!(err.contains("[graph]"), "{err}");
    env.finish().await;
}

/// `serve` with `[graph]` runs the bridge worker next to the HTTP server (the hook-up in
/// `server::serve`), and stops it with the server on SIGTERM. The worker polls the outbox on its
/// own schedule, so this test polls the fake Graph a bounded number of times.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_bridge_worker() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let env = Env::start("apply").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_scim-server"))
        .arg("--config")
        .arg(env.config_path())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SCIM_LISTEN", "127.0.0.1:0")
        .env("SCIM_SHUTDOWN_GRACE_SECONDS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning scim-server serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("scim-server listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("scim-server serve did not report its address");
    };
    let res = env
        .http
        .post(format!("{base}/Users"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": [USER_URN, ENTERPRISE],
                "userName": "served@contoso.example",
                "active": true,
                ENTERPRISE: {"department": "Engineering"}
            })
            .to_string(),
        )
        .send()
        .await
        .expect("POST /Users");
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut applied = false;
    for _ in 0..600 {
        applied = env.fake.with_directory(|d| {
            d.user_by_upn("served@contoso.example")
                .is_some_and(|u| d.licenses_of(&u).len() == 1 && d.groups_of(&u).len() == 2)
        });
        if applied {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait");
    assert!(applied, "serve's bridge worker reconciled the joiner");
    assert!(killed.is_ok_and(|s| s.success()));
    assert!(status.success(), "graceful exit: {status:?}");
    let v = env.graph("served@contoso.example");
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    env.finish().await;
}

/// A permanent Graph error dead-letters the user at once; `bridge dead-letters list` shows it and
/// `retry --all` queues it again once the cause is fixed. `reconcile --user` queues one user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_list_and_retry() {
    use scim_graph_bridge::fake_graph::Fault;
    use scim_server::bridge::cli::DeadLettersCommand;
    let env = Env::start("apply").await;
    env.fake.inject(Fault {
        path_contains: "/assignLicense".into(),
        times: 10_000,
        status: 400,
        message: Some("Subscription with SKU x does not have any available licenses.".into()),
        ..Fault::default()
    });
    let id = env
        .create_user("nolic@contoso.example", "Engineering", "Developer")
        .await;
    let s = env.drain().await;
    assert_eq!(s.dead_lettered, 1, "{s:?}");
    let (code, out) = env
        .cli(BridgeCommand::DeadLetters(DeadLettersCommand::List {
            tenant: Some(TENANT.into()),
            json: true,
        }))
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let letters: Value = serde_json::from_str(&out).expect("dead letters JSON");
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{letters}");
    assert_eq!(letters[0]["user_id"], id.as_str());
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("permanent:") && reason.contains("available licenses"),
        "{reason}"
    );
    let (_, text) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(text.contains("dead letters: 1\n"), "{text}");

    // an unknown id fails without touching the others
    let (code, _) = env
        .cli(BridgeCommand::DeadLetters(DeadLettersCommand::Retry {
            id: Some("no-such-letter".into()),
            all: false,
        }))
        .await;
    assert_eq!(code, ExitCode::FAILURE);

    env.fake.clear_faults();
    let (code, out) = env
        .cli(BridgeCommand::DeadLetters(DeadLettersCommand::Retry {
            id: None,
            all: true,
        }))
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(env.drain().await.completed, 1);
    assert_grants(
        &env.graph("nolic@contoso.example"),
        &["all-staff", "eng"],
        &["e5"],
        &[],
    );
    let (_, text) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(text.contains("dead letters: 0\n"), "{text}");

    // one user on demand: converged already, so no Graph write
    env.fake.clear_log();
    let (code, out) = env
        .cli(BridgeCommand::Reconcile {
            all: false,
            user: Some(id.clone()),
            tenant: None,
        })
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.contains("queued"), "{out}");
    assert_eq!(env.drain().await.completed, 1);
    assert!(env.fake.writes().is_empty(), "{:?}", env.fake.writes());
    assert_eq!(
        env.last_plan(&id).await,
        ("apply".into(), "noop".into(), "update".into())
    );
    env.finish().await;
}
