//! The application state every handler receives: shared parts behind `Arc`s, no globals.

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LimitsConfig};
use crate::ratelimit::RateLimiter;
use crate::store::{Resources, Store};
use scim_core::query::QueryLimits;
use scim_core::schema::SchemaRegistry;
use std::sync::Arc;

/// Settings the HTTP and service layers read on every request.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Path the SCIM endpoints are served under, e.g. `/scim/v2`.
    pub base_path: String,
    /// The externally visible SCIM base URL, when configured.
    pub public_url: Option<String>,
    /// Honour `X-Forwarded-Proto` / `X-Forwarded-Host`.
    pub trust_forwarded_headers: bool,
    /// Whether the server itself terminates TLS (the scheme of derived URLs).
    pub tls: bool,
    /// Limits on what clients control.
    pub limits: LimitsConfig,
}

impl Settings {
    /// Settings from the configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            base_path: config.base_path.clone(),
            public_url: config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_string()),
            trust_forwarded_headers: config.trust_forwarded_headers,
            tls: config.tls.cert.is_some(),
            limits: config.limits,
        }
    }

    /// The list-query limits for `scim-core`.
    pub fn query_limits(&self) -> QueryLimits {
        QueryLimits {
            default_page_size: self.limits.default_page_size.min(self.limits.max_page_size),
            max_page_size: self.limits.max_page_size,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// Everything a request needs: one `Arc` to the [`AppParts`], which it dereferences to.
///
/// axum clones the state for every extractor and middleware that takes it; a clone is one
/// reference-count increment, not one per part (with the parts inline, cloning and dropping
/// the state took 2.4 % of a `POST /Users`' server CPU in `perf`, the parts' counters shared
/// between the runtime's threads).
#[derive(Clone)]
pub struct AppState {
    parts: Arc<AppParts>,
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.parts
    }
}

/// The parts of [`AppState`], shared by every request of a server.
#[derive(Clone)]
pub struct AppParts {
    /// Resources, tenants, credentials and the change log.
    pub store: Arc<dyn Store>,
    /// The resource capability of `store`, which the service reads and writes through (a
    /// separate handle so a wrapper or test double needs only [`Resources`]' methods).
    pub resources: Arc<dyn Resources>,
    /// Turns request headers into a [`crate::auth::Principal`].
    pub authenticator: Arc<dyn Authenticator>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Schemas and resource types served.
    pub registry: Arc<SchemaRegistry>,
    /// Per-tenant request rate limit.
    pub rate_limiter: Arc<RateLimiter>,
    /// Limits, base path, public URL.
    pub settings: Arc<Settings>,
    /// Per-resource write locks of this process (see [`crate::service::locks`]).
    pub write_locks: Arc<crate::service::locks::KeyedLocks>,
    /// Member `PATCH`es waiting to be written together (see `service::write`'s `member_batch`).
    pub(crate) member_patches: Arc<crate::service::write::MemberPatchQueues>,
    /// The OAuth token endpoint `POST /oauth/token` serves (404 without one).
    pub oauth: Option<Arc<crate::auth::OAuthServer>>,
    /// The HR intake (`/inbound/v1/…`), when this server has one.
    pub inbound: Option<Arc<crate::inbound::Intake>>,
    /// Governance (`/governance/v1/…`), when this server has it.
    pub governance: Option<Arc<crate::governance::Governance>>,
    /// Outcome callbacks (`[[inbound.callbacks]]`), when configured.
    pub callbacks: Option<Arc<crate::inbound::callback::Callbacks>>,
    /// The database's last observed health (`/readyz`).
    pub db_health: Arc<crate::http::ops::DbHealth>,
}

impl std::fmt::Debug for AppParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppParts")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.parts.fmt(f)
    }
}

impl AppState {
    /// State with the builtin schemas, the system clock and the configuration's limits.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        authenticator: Arc<dyn Authenticator>,
    ) -> Self {
        Self::with_clock(config, store, authenticator, Arc::new(SystemClock))
    }

    /// State with an explicit clock (tests).
    pub fn with_clock(
        config: &Config,
        store: Arc<dyn Store>,
        authenticator: Arc<dyn Authenticator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let parts = AppParts {
            resources: store.clone(),
            store,
            authenticator,
            rate_limiter: Arc::new(RateLimiter::new(config.rate_limit, clock.clone())),
            clock,
            registry: Arc::new(SchemaRegistry::builtin()),
            settings: Arc::new(Settings::from_config(config)),
            write_locks: Arc::default(),
            member_patches: Arc::default(),
            oauth: None,
            inbound: None,
            governance: None,
            callbacks: None,
            db_health: Arc::default(),
        };
        Self {
            parts: Arc::new(parts),
        }
    }

    /// The parts, to change while the state is being built (a copy when already shared).
    fn parts_mut(&mut self) -> &mut AppParts {
        Arc::make_mut(&mut self.parts)
    }

    /// Serves `POST /oauth/token` with `server` (from [`crate::auth::AuthService::oauth_server`]).
    pub fn with_oauth(mut self, server: Arc<crate::auth::OAuthServer>) -> Self {
        self.parts_mut().oauth = Some(server);
        self
    }

    /// Serves the HR intake with `intake`.
    pub fn with_inbound(mut self, intake: Arc<crate::inbound::Intake>) -> Self {
        self.parts_mut().inbound = Some(intake);
        self
    }

    /// Serves governance with `governance`.
    pub fn with_governance(mut self, governance: Arc<crate::governance::Governance>) -> Self {
        self.parts_mut().governance = Some(governance);
        self
    }

    /// Reports intake outcomes through `callbacks`.
    pub fn with_callbacks(mut self, callbacks: Arc<crate::inbound::callback::Callbacks>) -> Self {
        self.parts_mut().callbacks = Some(callbacks);
        self
    }

    /// Serves resources through `resources` (a wrapper of the store's, e.g. a test spy); tenants,
    /// credentials and the change log stay with `store`.
    pub fn with_resources(mut self, resources: Arc<dyn Resources>) -> Self {
        self.parts_mut().resources = resources;
        self
    }

    /// Replaces the schema registry (custom extensions).
    pub fn with_registry(mut self, registry: SchemaRegistry) -> Self {
        self.parts_mut().registry = Arc::new(registry);
        self
    }
}
