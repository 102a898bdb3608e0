//! Shared fixtures: a fake Graph tenant seeded with a catalog, a client and rules.

use std::sync::Arc;

use scim_graph_bridge::clock::ManualClock;
use scim_graph_bridge::directory::MemoryDirectory;
use scim_graph_bridge::fake_graph::fixtures::DemoCatalog;
use scim_graph_bridge::fake_graph::{FakeConfig, FakeGraph};
use scim_graph_bridge::graph::Credential;
use scim_graph_bridge::graph::{GraphClient, RetryPolicy};
use scim_graph_bridge::reconcile::Bridge;
use scim_graph_bridge::rules::Rules;
use scim_graph_bridge::secret::SecretString;
use serde_json::{Value, json};

pub const TENANT: &str = "t1";
pub use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;
use scim_core::schema::USER_URN;
pub use scim_graph_bridge::fake_graph::fixtures::HELPDESK_ROLE;

pub struct Env {
    pub fake: FakeGraph,
    pub clock: Arc<ManualClock>,
    pub client: Arc<GraphClient>,
    pub rules: Arc<Rules>,
    pub dir: Arc<MemoryDirectory>,
    pub g_all: String,
    pub g_eng: String,
    pub g_sup: String,
    pub g_manual: String,
    pub sku_e5: String,
    pub sku_e3: String,
}

pub fn client(fake: &FakeGraph, clock: Arc<ManualClock>, rate: f64, burst: u32) -> GraphClient {
    let cfg = fake.config();
    GraphClient::new(
        &fake.authority_url(),
        &fake.graph_url(),
        &cfg.tenant_id,
        &cfg.client_id,
        Credential::Secret(SecretString::new(
            cfg.client_secret.clone().unwrap_or_default(),
        )),
        rate,
        burst,
        RetryPolicy::default(),
        clock,
    )
}

pub async fn env_with(create: bool, extra_rules: &str) -> Env {
    let fake = FakeGraph::start(FakeConfig::default())
        .await
        .expect("fake graph");
    let cat = DemoCatalog::seed(&fake, 10);
    let rules =
        Arc::new(Rules::from_toml(&cat.rules_toml(create, "e5", extra_rules)).expect("rules"));
    let clock = Arc::new(ManualClock::fixed());
    let client = Arc::new(client(&fake, clock.clone(), 15.0, 15));
    Env {
        fake,
        clock,
        client,
        rules,
        dir: Arc::new(MemoryDirectory::new()),
        g_all: cat.all_staff,
        g_eng: cat.eng,
        g_sup: cat.support,
        g_manual: cat.manual,
        sku_e5: cat.e5,
        sku_e3: cat.e3,
    }
}

pub async fn env() -> Env {
    env_with(true, "").await
}

impl Env {
    pub fn bridge(&self) -> Bridge {
        Bridge::new(
            self.rules.clone(),
            Some(self.client.clone()),
            self.clock.clone(),
        )
    }
    pub fn plan_bridge(&self) -> Bridge {
        Bridge::new(self.rules.clone(), None, self.clock.clone())
    }
    /// Seeds a Graph user that the SCIM user `upn` matches.
    pub fn graph_user(&self, upn: &str) -> String {
        self.fake.with_directory(|d| {
            d.add_user(json!({"userPrincipalName": upn, "displayName": upn, "mailNickname": "x", "usageLocation": "US"}))
        })
    }
}

pub fn scim_user(upn: &str, dept: &str, title: &str, active: bool) -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE],
        "userName": upn,
        "displayName": format!("User {upn}"),
        "name": {"givenName": "Given", "familyName": "Family"},
        "title": title,
        "active": active,
        ENTERPRISE: {"department": dept, "employeeNumber": "E-1"}
    })
}

/// GETs the fake's inspection endpoint `/_fake/{what}` over HTTP and returns the JSON answer.
pub async fn inspect(fake: &FakeGraph, what: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/_fake/{what}", fake.authority_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
