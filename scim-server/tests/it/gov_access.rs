//! Time-bound grants, hygiene reports and leaver evidence end to end, on SQLite and PostgreSQL:
//! the server's router on 127.0.0.1 (the governance API), the Graph bridge's worker, the
//! governance schedule and the fake Microsoft Graph, with time driven by a [`ManualClock`]
//! (never by sleeping). A "restart" drops every component and reopens them from the database
//! with a new clock, so what survives is what the database holds. `binary` runs `serve` and
//! the `governance` commands through the real binary.

use reqwest::StatusCode;
use scim_graph_bridge::clock::{Clock, ManualClock};
use scim_graph_bridge::fake_graph::fixtures::{DemoCatalog as Catalog, HELPDESK_ROLE};
use scim_graph_bridge::fake_graph::{FakeConfig, FakeGraph};
use scim_graph_bridge::worker::{Worker, WorkerConfig};
use scim_server::auth::{AuthConfig, AuthService, token_store};
use scim_server::bridge::{BridgeContext, run_until_idle};
use scim_server::config::Config;
use scim_server::governance::Governance;
use scim_server::state::AppState;
use scim_server::store::Store;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

mod binary;
mod evidence;
mod hygiene;
mod jit;

const TOKEN: &str = "gov-access-test-token-0123456789abcdef";
const TENANT: &str = "default";
use scim_core::patch::PATCH_OP_URN as PATCH_OP;
use scim_core::schema::{ENTERPRISE_USER_URN as ENTERPRISE, USER_URN};

/// The policy of the tests: Helpdesk Administrator only ever through a time-bound grant of at
/// most eight hours, approved by the manager or `secops@contoso.example`; the `eng` group
/// auto-approved for up to a day.
pub const JIT_POLICIES: &str = r#"
[[governance.jit.policies]]
grant = "role:helpdesk"
max_duration = "PT8H"
approval = "manager"
approvers = ["secops@contoso.example"]
only_jit = true

[[governance.jit.policies]]
grant = "group:eng"
max_duration = "P1D"
approval = "auto"
"#;

/// The database a test's components share across restarts.
pub struct Db {
    pub url: String,
    /// Where approvers' e-mail goes (`[governance.smtp]`), alive across restarts.
    pub smtp: crate::support::SmtpSink,
    /// Where governance webhooks go (`[[governance.webhooks]]`, signed with [`WEBHOOK_SECRET`]).
    pub hook: crate::support::WebhookSink,
    _dir: tempfile::TempDir,
    _pg: Option<crate::support::PgDatabase>,
}

/// The governance webhooks' signing secret in these tests.
pub const WEBHOOK_SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

impl Db {
    /// SQLite in a temporary directory, or a fresh PostgreSQL database (`None` when PostgreSQL
    /// is not required and does not answer).
    pub async fn new(postgres: bool) -> Option<Db> {
        let dir = tempfile::tempdir().expect("tempdir");
        if postgres {
            let pg = crate::support::PgDatabase::create().await?;
            return Some(Db {
                url: pg.url.clone(),
                smtp: crate::support::SmtpSink::start().await,
                hook: crate::support::WebhookSink::start().await,
                _dir: dir,
                _pg: Some(pg),
            });
        }
        Some(Db {
            url: format!("sqlite://{}", dir.path().join("scim.db").display()),
            smtp: crate::support::SmtpSink::start().await,
            hook: crate::support::WebhookSink::start().await,
            _dir: dir,
            _pg: None,
        })
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// The components of one "process": server, bridge worker, governance, on one clock.
pub struct Env {
    pub fake: FakeGraph,
    pub cat: Catalog,
    pub db: Db,
    pub _config: Config,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    pub gov: Arc<Governance>,
    pub worker: Worker,
    pub intake: scim_server::inbound::worker::Worker,
    pub root: String,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

/// The configuration file of a test: the fake Graph in apply mode, the demo rules, the JIT
/// policies.
pub fn config_text(fake: &FakeGraph, db: &Db, rules: &std::path::Path) -> String {
    let cfg = FakeConfig::default();
    format!(
        "database_url = {:?}\ntoken = {TOKEN:?}\n\
         [log]\nfilter = \"warn\"\n\
         [rate_limit]\nenabled = false\n\
         [inbound]\npoll_interval_ms = 50\n\
         [graph]\ntenant_id = {:?}\nclient_id = {:?}\nclient_secret = {:?}\nmode = \"apply\"\n\
         writes_per_second = 1000.0\nwrite_burst = 1000\nauthority_url = {:?}\ngraph_url = {:?}\nrules = {:?}\n\
         [governance]\npoll_interval_seconds = 1\n{JIT_POLICIES}\n\
         [governance.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"governance@contoso.example\"\n\
         [[governance.webhooks]]\nurl = {:?}\nsecret = {WEBHOOK_SECRET:?}\n",
        db.url,
        cfg.tenant_id,
        cfg.client_id,
        cfg.client_secret.clone().unwrap_or_default(),
        fake.authority_url(),
        fake.graph_url(),
        rules.display().to_string(),
        db.smtp.port,
        db.hook.url,
    )
}

impl Env {
    /// A fresh environment; `None` when PostgreSQL is asked for and not available.
    pub async fn start(postgres: bool) -> Option<Env> {
        let db = Db::new(postgres).await?;
        let fake = FakeGraph::start(FakeConfig::default())
            .await
            .expect("fake graph");
        let cat = Catalog::seed(&fake, 100);
        let rules = db.dir().join("graph-rules.toml");
        std::fs::write(&rules, cat.rules_toml(true, "e5", "")).expect("rules file");
        let text = config_text(&fake, &db, &rules);
        std::fs::write(db.dir().join("scim.toml"), &text).expect("config file");
        let clock = Arc::new(ManualClock::fixed());
        Some(Env::open(fake, cat, db, clock).await)
    }

    /// Opens every component over `db` on `clock`.
    async fn open(fake: FakeGraph, cat: Catalog, db: Db, clock: Arc<ManualClock>) -> Env {
        let text = std::fs::read_to_string(db.dir().join("scim.toml")).expect("config");
        let config = Config::from_parts(Some(&text), &[]).expect("config");
        let graph = config
            .graph_config(&[])
            .expect("[graph] valid")
            .expect("[graph] present");
        let store = scim_server::server::open_store(&config.database_url)
            .await
            .expect("open store");
        store.migrate().await.expect("migrate");
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        scim_server::server::ensure_tenant(store.as_ref(), TENANT, dyn_clock.as_ref())
            .await
            .expect("tenant");
        let auth = AuthService::from_config(
            &AuthConfig::default(),
            token_store(store.clone()),
            dyn_clock.clone(),
        )
        .expect("auth")
        .with_env_token(TENANT, TOKEN);
        let state = AppState::with_clock(&config, store.clone(), Arc::new(auth), dyn_clock.clone());
        let ctx = BridgeContext::open(
            &graph,
            &config.database_url,
            store.clone(),
            state.registry.clone(),
            dyn_clock.clone(),
        )
        .await
        .expect("bridge context");
        let worker = ctx.worker(WorkerConfig {
            owner: "gov-it-worker".into(),
            base_backoff: Duration::from_millis(10),
            ..WorkerConfig::default()
        });
        let gov = scim_server::governance::open_governance(
            &config,
            store.clone(),
            state.registry.clone(),
            Some(ctx),
            dyn_clock,
        )
        .await
        .expect("governance")
        .expect("governance on");
        let intake = scim_server::inbound::open_intake(&config)
            .await
            .expect("intake")
            .expect("intake on");
        let state = state
            .with_governance(gov.clone())
            .with_inbound(intake.clone());
        let intake = scim_server::inbound::worker::Worker::new(state.clone(), intake);
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
            db,
            _config: config,
            clock,
            store,
            gov,
            worker,
            intake,
            root: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            server,
        }
    }

    /// Stops every component and opens them again over the same database, on a new clock
    /// showing `later` than this one did: nothing held in memory survives.
    pub async fn restart(self, later: time::Duration) -> Env {
        let at = self.clock.now() + later;
        let Env {
            fake,
            cat,
            db,
            server,
            gov,
            worker,
            store,
            intake,
            ..
        } = self;
        server.abort();
        let _ = server.await;
        drop((gov, worker, store, intake));
        Env::open(fake, cat, db, Arc::new(ManualClock::new(at))).await
    }

    /// A request with the bearer token; returns status and JSON body (or the text as a string).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST /scim/v2/Users`; returns the id.
    pub async fn create_user(
        &self,
        upn: &str,
        department: &str,
        title: &str,
        manager: Option<&str>,
    ) -> String {
        let mut enterprise = json!({"department": department});
        if let Some(m) = manager {
            enterprise["manager"] = json!({"value": m});
        }
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/scim/v2/Users",
                Some(json!({
                    "schemas": [USER_URN, ENTERPRISE],
                    "userName": upn,
                    "active": true,
                    "displayName": format!("User {upn}"),
                    "title": title,
                    ENTERPRISE: enterprise,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// `PATCH /scim/v2/Users/{id}`.
    pub async fn patch_user(&self, id: &str, operations: Value) {
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/scim/v2/Users/{id}"),
                Some(json!({"schemas": [PATCH_OP], "Operations": operations})),
            )
            .await;
        assert!(status.is_success(), "{status}: {body}");
    }

    /// Seeds a Graph user the SCIM user `upn` matches.
    pub fn graph_user(&self, upn: &str) -> String {
        self.fake.with_directory(|d| {
            d.add_user(json!({
                "userPrincipalName": upn, "displayName": upn, "mailNickname": "x", "usageLocation": "US"
            }))
        })
    }

    /// Runs bridge rounds until idle (bounded).
    pub async fn drain(&self) {
        run_until_idle(&self.worker, 50).await.expect("drain");
    }

    /// Runs the HR intake's due jobs (bounded).
    pub async fn run_intake(&self) {
        for _ in 0..20 {
            if self.intake.run_once().await.expect("intake").is_none() {
                return;
            }
        }
        panic!("the intake was still busy");
    }

    /// Runs the governance schedule (what is due on the clock), then the bridge.
    pub async fn run_schedule(&self) {
        scim_server::governance::schedule::run_due(&self.gov, "gov-it", 100)
            .await
            .expect("schedule");
        self.drain().await;
    }

    /// The catalog roles `upn` holds in Graph.
    pub fn roles(&self, upn: &str) -> BTreeSet<String> {
        self.fake.with_directory(|d| {
            let id = d.user_by_upn(upn).expect("graph user");
            d.roles_of(&id)
                .iter()
                .map(|(def, _)| {
                    if def == HELPDESK_ROLE {
                        "helpdesk".to_string()
                    } else {
                        def.clone()
                    }
                })
                .collect()
        })
    }

    /// The catalog groups `upn` is a member of in Graph, by catalog name.
    pub fn groups(&self, upn: &str) -> BTreeSet<String> {
        self.fake.with_directory(|d| {
            let id = d.user_by_upn(upn).expect("graph user");
            let c = &self.cat;
            d.groups_of(&id)
                .iter()
                .filter_map(|g| {
                    [
                        (&c.all_staff, "all-staff"),
                        (&c.eng, "eng"),
                        (&c.support, "support"),
                    ]
                    .iter()
                    .find(|(k, _)| *k == g)
                    .map(|(_, n)| n.to_string())
                })
                .collect()
        })
    }

    /// Governance events of a subject, as kinds.
    pub async fn event_kinds(&self, subject: &str) -> Vec<String> {
        scim_server::governance::events(&self.gov, TENANT, Some(subject))
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// `audit verify` of the tenant: the problems found.
    pub async fn audit_problems(&self) -> Vec<String> {
        self.store
            .verify_chain(TENANT)
            .await
            .expect("verify")
            .problems
    }
}

/// Runs `test` on SQLite, then on PostgreSQL when available.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for postgres in [false, true] {
        match Env::start(postgres).await {
            Some(env) => test(env).await,
            None => eprintln!("PostgreSQL not available: skipped"),
        }
    }
}
