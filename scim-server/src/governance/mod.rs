//! Governance: keeping access right over time, on top of provisioning (issue 11). Per tenant,
//! stored in the server's database, driven by a durable schedule and the [`crate::clock`],
//! executed in Graph by the bridge, reachable under `/governance/v1` and `scim-server
//! governance …`.
//!
//! - [`store`]: the `gov_*` tables on a pool of their own (`store::side_pool`, as the HR intake
//!   does): the schedule, the event record, reviews, items, exceptions;
//! - [`schedule`]: the durable schedule (claim by compare-and-swap on a lease, run, mark done;
//!   a restart loses nothing) and its worker in `serve`;
//! - [`overrides`]: the bridge's [`AccessOverrides`] over the governance tables, so the planner
//!   honours review exceptions (and time-bound grants);
//! - [`reviews`]: access review campaigns (scope, reviewers, recommendations, decisions,
//!   application at the due date);
//! - [`notify`]: reviewers told of pending items and reminders through Standard Webhooks signed
//!   webhooks and e-mail over SMTP;
//! - [`http`]: the JSON API handlers; [`cli`]: `scim-server governance …`.
//!
//! Invariants:
//! - every decision, exception and application is recorded (`gov_events`) in the same
//!   transaction as the state it changes;
//! - Graph is changed only by the bridge ([`scim_graph_bridge::reconcile::Bridge`]); governance
//!   never writes the bridge's tables except through its API (queueing a user);
//! - a review exception is honoured by the planner until removed, and removing it queues the
//!   user for reconciliation, so the rules decide again;
//! - read-only credentials may read every governance resource and change none.

pub mod cli;
pub mod cli_access;
pub mod evidence;
pub mod http;
pub mod http_access;
pub mod hygiene;
pub mod jit;
pub mod notify;
pub mod overrides;
pub mod reviews;
pub mod schedule;
pub mod store;

use crate::bridge::BridgeContext;
use crate::store::Store;
use scim_core::schema::SchemaRegistry;
use scim_graph_bridge::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub use scim_graph_bridge::overrides::AccessOverrides;
pub use store::GovStore;

/// Where the governance API lives, under the server's root.
pub const API_PATH: &str = "/governance/v1";

/// `[governance]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Serve `/governance/v1` and keep the governance tables.
    pub enabled: bool,
    /// Run the schedule worker in `serve` (another replica may run it instead).
    pub worker: bool,
    /// Seconds between looks at the schedule when nothing is due.
    pub poll_interval_seconds: u64,
    /// Seconds a worker holds a claimed schedule entry; a worker that died is replaced after it.
    pub lease_seconds: u64,
    /// Days without a sign-in after which a review recommends revoking (a campaign may say
    /// otherwise).
    pub inactivity_days: u32,
    /// Where reviewers are sent to decide (e.g. the console's URL), quoted in notifications.
    pub review_url: Option<String>,
    /// Webhook receivers of notifications (`[[governance.webhooks]]`).
    pub webhooks: Vec<notify::WebhookConfig>,
    /// E-mail over SMTP (`[governance.smtp]`); no e-mail without it.
    pub smtp: Option<notify::SmtpConfig>,
    /// Time-bound grants (`[[governance.jit.policies]]`).
    pub jit: jit::JitConfig,
    /// Minutes between the hygiene reports the schedule worker makes of every tenant (for the
    /// gauges on `/metrics`); 0 makes none (reports are then made only when asked for).
    pub hygiene_interval_minutes: u64,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            worker: true,
            poll_interval_seconds: 30,
            lease_seconds: 300,
            inactivity_days: 90,
            review_url: None,
            webhooks: Vec::new(),
            smtp: None,
            jit: jit::JitConfig::default(),
            hygiene_interval_minutes: 60,
        }
    }
}

impl GovernanceConfig {
    /// The section parsed from `table` (defaults when absent) and validated; errors name the key.
    pub fn from_table(table: Option<&toml::Table>) -> Result<Self, ConfigError> {
        let config = match table {
            Some(t) => Self::deserialize(toml::Value::Table(t.clone()))
                .map_err(|e| ConfigError::new("governance", e.to_string().trim_end()))?,
            None => Self::default(),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("poll_interval_seconds", self.poll_interval_seconds),
            ("lease_seconds", self.lease_seconds),
            ("inactivity_days", u64::from(self.inactivity_days)),
        ] {
            if value == 0 {
                return Err(ConfigError::new(
                    format!("governance.{key}"),
                    "must be greater than 0",
                ));
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            w.check()
                .map_err(|why| ConfigError::new(format!("governance.webhooks[{i}]"), why))?;
        }
        if let Some(smtp) = &self.smtp {
            smtp.check()
                .map_err(|(key, why)| ConfigError::new(format!("governance.smtp.{key}"), why))?;
        }
        self.jit
            .validate(None)
            .map_err(|why| ConfigError::new("governance.jit", why))?;
        Ok(())
    }

    /// How long a claimed schedule entry stays with its worker.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

/// Governance of one process: its tables, settings, notifier, and (when `[graph]` is set) the
/// bridge that reads Graph and carries out revocations.
pub struct Governance {
    /// The `gov_*` tables.
    pub store: GovStore,
    /// `[governance]`.
    pub config: GovernanceConfig,
    /// The server's store (SCIM users: managers, the match from a Graph user to a SCIM user).
    pub scim: Arc<dyn Store>,
    /// The schemas SCIM users are read with.
    pub registry: Arc<SchemaRegistry>,
    /// The bridge, when `[graph]` is configured; reviews need it to read Graph.
    pub bridge: Option<BridgeContext>,
    /// Webhooks and e-mail.
    pub notifier: notify::Notifier,
    /// The time source.
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("config", &self.config)
            .field("bridge", &self.bridge.is_some())
            .finish_non_exhaustive()
    }
}

impl Governance {
    /// The bridge, or 409 naming what to configure: the server's configuration, not a passing
    /// outage, stands in the way (a 503 would invite clients to retry), as with the bridge in
    /// plan mode.
    pub(crate) fn bridge(&self) -> scim_core::Result<&BridgeContext> {
        self.bridge.as_ref().ok_or_else(|| {
            scim_core::Error::new(
                409,
                None,
                "access reviews read and change Microsoft Graph: configure the Graph bridge \
                 (`[graph]`) on this server",
            )
        })
    }
}

/// Opens governance over the server's database for `serve` and the CLI: `None` when
/// `[governance] enabled` is off or the database is in memory (logged: governance needs a
/// database other pools can open). `bridge` is the Graph bridge when configured.
pub async fn open_governance(
    config: &crate::config::Config,
    scim: Arc<dyn Store>,
    registry: Arc<SchemaRegistry>,
    bridge: Option<BridgeContext>,
    clock: Arc<dyn crate::clock::Clock>,
) -> anyhow::Result<Option<Arc<Governance>>> {
    let gov_config = config.governance_config()?;
    if !gov_config.enabled {
        return Ok(None);
    }
    let lower = config.database_url.to_ascii_lowercase();
    if lower.contains(":memory:") || lower.contains("mode=memory") {
        tracing::warn!(
            "governance off: it needs a database file or PostgreSQL, not an in-memory database"
        );
        return Ok(None);
    }
    let store = store::open(&config.database_url).await?;
    if let Some(b) = &bridge {
        let catalog = &b.bridge.rules().catalog;
        let exists = |g: &scim_graph_bridge::overrides::Grant| g.in_catalog(catalog);
        gov_config
            .jit
            .validate(Some(&exists))
            .map_err(|why| anyhow::anyhow!("`governance.jit`: {why}"))?;
    }
    // the planner reads which grants are held only through time-bound grants from the database,
    // whichever process it runs in
    let only_jit: Vec<String> = gov_config
        .jit
        .only_jit()
        .map(|g| jit::grant_text(&g))
        .collect();
    jit::JitStore::new(store.clone())
        .sync_only_jit(&only_jit)
        .await
        .map_err(|e| anyhow::anyhow!("storing the time-bound grant policies: {}", e.detail()))?;
    let notifier = notify::Notifier::new(&gov_config)?;
    Ok(Some(Arc::new(Governance {
        store,
        config: gov_config,
        scim,
        registry,
        bridge,
        notifier,
        clock,
    })))
}

/// The caller's governance, or 404 when this server has none.
pub(crate) fn governance_of(state: &crate::state::AppState) -> scim_core::Result<&Governance> {
    // 404, not 503: the API does not exist on this server until configured, which no retry
    // changes.
    state.governance.as_deref().ok_or_else(|| {
        scim_core::Error::new(
            404,
            None,
            "governance is not enabled on this server (`[governance] enabled`, and a database \
             file or PostgreSQL in `database_url`)",
        )
    })
}

/// The governance event record of a tenant (or of one review or exception), oldest first.
pub async fn events(
    gov: &Governance,
    tenant: &str,
    subject: Option<&str>,
) -> scim_core::Result<Vec<store::Event>> {
    Ok(gov.store.events(tenant, subject, 10_000).await?)
}
