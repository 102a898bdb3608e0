//! The Graph bridge end to end: SCIM requests over real HTTP → scim-server (its router on
//! 127.0.0.1) → the `scim_changes` outbox → the bridge worker → the fake Microsoft Graph, whose
//! directory is then inspected. Joiner (existing and created Graph user), mover, leaver (PATCH
//! `active` "False", and DELETE), re-hire, a rules change followed by `bridge reconcile --all`,
//! plan mode (no Graph call at all), the background worker of `serve`, and the `bridge` CLI
//! through the real binary.
//!
//! The worker is driven by rounds until idle (bounded), never by sleeping. The exceptions are the
//! two tests of the background worker (in-process, and `serve`'s), which work on their own schedule:
//! they poll the fake Graph a bounded number of times.
//!
//! PostgreSQL: the joiner path also runs on a fresh database created through
//! `SCIM_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`) and dropped at the end;
//! skipped with a note when that variable is unset and no server answers.
//!
//! This file holds the harness ([`Env`]); the tests are in `lifecycle` (the JML paths, plan mode,
//! rules change, directory, background worker) and `commands` (the CLI and `serve`).

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

mod callbacks;
mod change_log;
mod commands;
mod governance;
mod guard;
mod inbound;
mod lifecycle;

const TOKEN: &str = "bridge-test-token-0123456789abcdef";
const TENANT: &str = "default";
use scim_core::patch::PATCH_OP_URN as PATCH_OP;
use scim_core::schema::{ENTERPRISE_USER_URN as ENTERPRISE, USER_URN};
use scim_graph_bridge::fake_graph::fixtures::{DemoCatalog as Catalog, HELPDESK_ROLE};

/// The rules file of the demo tenant; `engineering_license` lets a test change the rules.
fn rules_text(c: &Catalog, engineering_license: &str) -> String {
    c.rules_toml(true, engineering_license, "")
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
        let cat = Catalog::seed(&fake, 100);
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
             [graph]\n{credentials}writes_per_second = 1000.0\nwrite_burst = 1000\nauthority_url = {:?}\ngraph_url = {:?}\nrules = {:?}\n",
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
impl Env {
    /// The database the server and the bridge share, as a `database_url`.
    fn database_url(&self) -> String {
        match &self.db {
            Db::Sqlite => format!("sqlite://{}", self.dir.path().join("scim.db").display()),
            Db::Postgres(admin, name) => format!("{}/{name}", admin.trim_end_matches("/postgres")),
        }
    }
}

/// Sends one Entra-format bulkUpload record through the HR intake as the `hr` credential and
/// runs the intake worker until idle; returns the caller's context and the job id.
async fn send_hr_record(
    state: &AppState,
    worker: &scim_server::inbound::worker::Worker,
    record: Value,
) -> (scim_server::service::RequestCtx, String) {
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
        "schemas": [scim_core::bulk::BULK_REQUEST_URN],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "1", "data": record}],
    });
    let id = scim_server::inbound::accept_bulk_upload(state, &ctx, body)
        .await
        .expect("accepted");
    assert_eq!(worker.run_until_idle(10).await.expect("intake round"), 1);
    (ctx, id)
}

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
