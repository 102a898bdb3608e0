//! Configuration: embedded defaults, an optional TOML file, then `SCIM_` environment overrides.
//!
//! `scim-server serve` works with no configuration at all: it listens on `127.0.0.1:8080`,
//! stores data in `./scim.db` (SQLite) and serves SCIM under `/scim/v2`.
//!
//! Every key of the file can be overridden from the environment: a top-level key `listen` by
//! `SCIM_LISTEN`, a key `max_body_bytes` of section `[limits]` by `SCIM_LIMITS__MAX_BODY_BYTES`
//! (section and key joined by a double underscore). Two short aliases exist: `SCIM_LOG` for
//! `log.filter` and `SCIM_TOKEN` for `token`. Unknown keys in the file are errors naming the key;
//! environment variables that name no key are ignored (the `SCIM_` prefix is shared with other
//! tools, such as the test suite's `SCIM_TEST_POSTGRES_URL`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The workspace's one configuration error (naming the key or environment variable at fault).
pub use scim_graph_bridge::config::ConfigError;

pub use scim_graph_bridge::secret::SecretString;

/// A TOML table passed through unparsed to a component configured elsewhere (`[auth]`,
/// `[graph]`). Its `Debug` shows only the keys, since such tables hold secrets.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpaqueTable(pub toml::Table);

impl fmt::Debug for OpaqueTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (`SCIM_LISTEN`). Port 0 picks a free port; the bound address is
    /// printed on standard output either way.
    pub listen: String,
    /// Database URL (`SCIM_DATABASE_URL`): `sqlite://path` (created if missing) or
    /// `postgres://user@host/db`.
    pub database_url: String,
    /// The store's connection pool (`[database]`).
    pub database: DatabaseConfig,
    /// Path the SCIM endpoints are served under (`SCIM_BASE_PATH`).
    pub base_path: String,
    /// The externally visible SCIM base URL, e.g. `https://scim.example.com/scim/v2`
    /// (`SCIM_PUBLIC_URL`). Used for `meta.location` and `Location`. When absent, the URL is
    /// derived from the request (`X-Forwarded-Proto`/`X-Forwarded-Host` when
    /// `trust_forwarded_headers` is set, else the `Host` header).
    pub public_url: Option<String>,
    /// Honour `X-Forwarded-Proto` and `X-Forwarded-Host` (`SCIM_TRUST_FORWARDED_HEADERS`).
    pub trust_forwarded_headers: bool,
    /// The tenant created at start-up and used by `SCIM_TOKEN` and the first-start token
    /// (`SCIM_DEFAULT_TENANT`).
    pub default_tenant: String,
    /// A static bearer token for the default tenant, for automation and CI (`SCIM_TOKEN`).
    pub token: Option<SecretString>,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C
    /// (`SCIM_SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace_seconds: u64,
    /// Logging.
    pub log: LogConfig,
    /// Limits on what clients control.
    pub limits: LimitsConfig,
    /// Per-tenant rate limit.
    pub rate_limit: RateLimitConfig,
    /// HTTPS served directly (both keys or neither).
    pub tls: TlsConfig,
    /// Authentication options beyond static tokens (Entra JWT, OAuth token endpoint); passed to
    /// the auth module.
    pub auth: Option<OpaqueTable>,
    /// The Graph bridge (`scim_graph_bridge::config::GraphConfig`, see [`Config::graph_config`]); its
    /// keys are overridden by `SCIM_GRAPH_<KEY>` variables.
    pub graph: Option<OpaqueTable>,
    /// The operator console at `/console` (`crate::console::ConsoleConfig`, see
    /// [`Config::console_config`]).
    pub console: Option<OpaqueTable>,
    /// The HR intake (`/inbound/v1/bulkUpload`, its queue and worker).
    pub inbound: crate::inbound::InboundConfig,
    /// Governance (`/governance/v1`: access reviews and their notifications), see
    /// [`Config::governance_config`].
    pub governance: Option<OpaqueTable>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scim.db".into(),
            database: DatabaseConfig::default(),
            base_path: "/scim/v2".into(),
            public_url: None,
            trust_forwarded_headers: true,
            default_tenant: "default".into(),
            token: None,
            shutdown_grace_seconds: 30,
            log: LogConfig::default(),
            limits: LimitsConfig::default(),
            rate_limit: RateLimitConfig::default(),
            tls: TlsConfig::default(),
            auth: None,
            graph: None,
            console: None,
            inbound: crate::inbound::InboundConfig::default(),
            governance: None,
        }
    }
}

/// `[database]`: the store's connection pool. Both keys are optional; the defaults depend on
/// the database (see [`crate::store::PoolSettings`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The store's connections (`SCIM_DATABASE__MAX_CONNECTIONS`); default 8 on SQLite, 16 on
    /// PostgreSQL. On SQLite half of them (at least 1) serve the hot reads (`GET` by id, list
    /// pages, `store/read_pool.rs`) and a quarter (at least 2) everything else; writes take
    /// turns on one connection of their own. On PostgreSQL they serve writes and everything
    /// else, and the hot reads have half as many again (rounded up): with several replicas on
    /// one PostgreSQL server, replicas × 1.5 × this must stay below the server's
    /// `max_connections`. An in-memory SQLite database always has exactly one.
    pub max_connections: Option<u32>,
    /// Seconds a request waits for a free connection before it fails with 503
    /// (`SCIM_DATABASE__ACQUIRE_TIMEOUT_SECONDS`); default 30 on SQLite, 10 on PostgreSQL.
    pub acquire_timeout_seconds: Option<u64>,
    /// SQLite only: how many SQLite virtual machine instructions a hot read (`GET` by id, list
    /// pages) may run on the request's own thread before it is handed to sqlx's connection
    /// threads (`SCIM_DATABASE__SQLITE_INLINE_READ_STEPS`); default 10,000 (under a
    /// millisecond of a scan here), 0 sends every read to sqlx's threads. A lookup by key runs
    /// a few hundred; the budget bounds how long a scan holds a thread that serves other
    /// requests.
    pub sqlite_inline_read_steps: Option<u64>,
}

impl DatabaseConfig {
    /// The most connections a pool may be configured with.
    pub const MAX_CONNECTIONS: u32 = 1000;

    /// The largest budget a read on the request's thread may be given (about 10 ms here).
    pub const MAX_INLINE_READ_STEPS: u64 = 1_000_000;

    /// The store's pool settings.
    pub fn pool_settings(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            max_connections: self.max_connections,
            acquire_timeout: self
                .acquire_timeout_seconds
                .map(std::time::Duration::from_secs),
            sqlite_inline_read_steps: self.sqlite_inline_read_steps,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `scim_server=debug,info` (`SCIM_LOG`; `RUST_LOG` is
    /// not read).
    pub filter: String,
    /// `text` or `json` (`SCIM_LOG__FORMAT`).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[limits]`: every bound on what a client controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body in bytes, except `/Bulk` (413 beyond).
    pub max_body_bytes: usize,
    /// Longest `filter` in bytes (400 `invalidFilter` beyond).
    pub max_filter_length: usize,
    /// Page size when a list request gives no `count`.
    pub default_page_size: u64,
    /// Largest page served; a larger `count` is lowered to it.
    pub max_page_size: u64,
    /// Most operations in one PATCH (400 `tooMany` beyond).
    pub max_patch_operations: usize,
    /// Most operations in one Bulk request (413 beyond), advertised as `bulk.maxOperations`.
    pub max_bulk_operations: usize,
    /// Largest Bulk request body in bytes (413 beyond), advertised as `bulk.maxPayloadSize`.
    pub max_bulk_payload_bytes: usize,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_seconds: u64,
    /// Requests processed at once; more wait.
    pub max_concurrent_requests: usize,
    /// Seconds a client may take to send its request headers before the connection is closed.
    pub header_read_timeout_seconds: u64,
    /// Seconds a client may pause while sending a request body before it is answered 408.
    pub body_read_timeout_seconds: u64,
    /// The largest resource, as stored JSON without a Group's members (413 beyond).
    pub max_resource_bytes: usize,
    /// The most values of one multi-valued attribute, a Group's `members` aside (400 beyond).
    pub max_values_per_attribute: usize,
    /// The longest value of an attribute clients match on (`userName`, a Group's
    /// `displayName`, `externalId`, `manager.value`, `emails.value`, …), in bytes (400 beyond;
    /// at most 1600, what PostgreSQL's index keys can hold once lower-cased).
    pub max_indexed_value_bytes: usize,
}

impl LimitsConfig {
    /// The limits `scim-core` checks every stored resource against.
    pub fn resource_limits(&self) -> scim_core::validate::ResourceLimits {
        scim_core::validate::ResourceLimits {
            max_resource_bytes: self.max_resource_bytes,
            max_values_per_attribute: self.max_values_per_attribute,
            max_indexed_value_bytes: self.max_indexed_value_bytes,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_filter_length: scim_core::filter::MAX_FILTER_LEN,
            default_page_size: 100,
            max_page_size: 1000,
            max_patch_operations: 1000,
            max_bulk_operations: 1000,
            max_bulk_payload_bytes: 4 * 1024 * 1024,
            request_timeout_seconds: 30,
            max_concurrent_requests: 512,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 10,
            max_resource_bytes: scim_core::validate::ResourceLimits::default().max_resource_bytes,
            max_values_per_attribute: scim_core::validate::ResourceLimits::default()
                .max_values_per_attribute,
            max_indexed_value_bytes: scim_core::validate::ResourceLimits::default()
                .max_indexed_value_bytes,
        }
    }
}

/// `[rate_limit]`: request limits in this process (see [`crate::ratelimit`] for the reasoning
/// behind the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether requests are rate limited at all.
    pub enabled: bool,
    /// Sustained requests per second per tenant (Entra needs at least 25 per provisioning job).
    pub requests_per_second: f64,
    /// Requests a tenant may send at once above the sustained rate (a validator run is a few
    /// hundred).
    pub burst: u32,
    /// Failed authentications per minute per client address before 401 turns into 429.
    pub failed_auth_per_minute: u32,
    /// Failed authentications a client address may make at once.
    pub failed_auth_burst: u32,
    /// `POST /oauth/token` requests per minute per client address.
    pub token_requests_per_minute: u32,
    /// Token requests a client address may make at once.
    pub token_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            requests_per_second: 100.0,
            burst: 1000,
            failed_auth_per_minute: 60,
            failed_auth_burst: 30,
            token_requests_per_minute: 60,
            token_burst: 20,
        }
    }
}

/// `[tls]`: serve HTTPS directly with rustls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain (`SCIM_TLS__CERT`).
    pub cert: Option<PathBuf>,
    /// PEM private key (`SCIM_TLS__KEY`).
    pub key: Option<PathBuf>,
}

/// Environment variables that are short names for a key.
const ALIASES: &[(&str, &str)] = &[("SCIM_LOG", "log.filter"), ("SCIM_TOKEN", "token")];

/// Optional keys that have no default value to discover them by.
const OPTIONAL_KEYS: &[(&str, Kind)] = &[
    ("public_url", Kind::String),
    ("token", Kind::String),
    ("tls.cert", Kind::String),
    ("tls.key", Kind::String),
    ("database.max_connections", Kind::Integer),
    ("database.acquire_timeout_seconds", Kind::Integer),
    ("database.sqlite_inline_read_steps", Kind::Integer),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Float,
    Boolean,
}

impl Config {
    /// Loads the configuration: defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let text = match file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::message(format!("cannot read {}: {e}", path.display()))
            })?),
            None => None,
        };
        let config = Self::from_parts(text.as_deref(), &env)?;
        config.auth_config()?;
        config.graph_config(&env)?;
        config.console_config()?;
        config.governance_config()?;
        Ok(config)
    }

    /// The `[auth]` section as the auth module's [`crate::auth::AuthConfig`] (its defaults when
    /// the section is absent), validated; errors name the key.
    pub fn auth_config(&self) -> Result<crate::auth::AuthConfig, ConfigError> {
        let config = match &self.auth {
            Some(table) => crate::auth::AuthConfig::deserialize(toml::Value::Table(
                table.0.clone(),
            ))
            .map_err(|e| ConfigError::message(format!("[auth]: {}", e.to_string().trim_end())))?,
            None => crate::auth::AuthConfig::default(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The `[console]` section as [`crate::console::ConsoleConfig`] (its defaults when absent)
    /// with `SCIM_CONSOLE_*` overrides from the process environment, validated; errors name the
    /// key or the variable.
    pub fn console_config(&self) -> Result<crate::console::ConsoleConfig, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        crate::console::ConsoleConfig::from_table_and_env(self.console.as_ref().map(|t| &t.0), &env)
    }

    /// The `[governance]` section as [`crate::governance::GovernanceConfig`] (its defaults when
    /// absent), validated; errors name the key.
    pub fn governance_config(&self) -> Result<crate::governance::GovernanceConfig, ConfigError> {
        crate::governance::GovernanceConfig::from_table(self.governance.as_ref().map(|t| &t.0))
    }

    /// The Graph bridge configuration: the `[graph]` table with `SCIM_GRAPH_*` overrides from
    /// `env`, validated. `None` when neither is present.
    pub fn graph_config(
        &self,
        env: &[(String, String)],
    ) -> Result<Option<scim_graph_bridge::config::GraphConfig>, ConfigError> {
        let from_env: Vec<&(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("SCIM_GRAPH_"))
            .collect();
        if self.graph.is_none() && from_env.is_empty() {
            return Ok(None);
        }
        let mut graph: scim_graph_bridge::config::GraphConfig = match &self.graph {
            Some(table) => scim_graph_bridge::config::GraphConfig::deserialize(toml::Value::Table(
                table.0.clone(),
            ))
            .map_err(|e| ConfigError::message(format!("[graph]: {}", e.to_string().trim_end())))?,
            None => scim_graph_bridge::config::GraphConfig::default(),
        };
        graph
            .apply_env(from_env.into_iter().map(|(k, v)| (k.as_str(), v.clone())))
            .map_err(|e| ConfigError::message(format!("[graph]: {e}")))?;
        graph
            .validate()
            .map_err(|e| ConfigError::message(format!("[graph]: {e}")))?;
        Ok(Some(graph))
    }

    /// Builds the configuration from a TOML text and environment pairs (testable without
    /// touching the process environment), then validates it.
    pub fn from_parts(
        toml_text: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut table = match toml_text {
            Some(text) => text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::message(e.to_string().trim_end().to_string()))?,
            None => toml::Table::new(),
        };
        // Check the file alone first so its errors name the file's key, not an env variable.
        if toml_text.is_some() {
            Config::deserialize(toml::Value::Table(table.clone()))
                .map_err(|e| ConfigError::message(e.to_string().trim_end().to_string()))?;
        }
        let keys = known_keys();
        for (name, value) in env {
            let Some(key) = env_key(name, &keys) else {
                continue;
            };
            let kind = keys
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, kind)| *kind)
                .unwrap_or(Kind::String);
            let parsed = parse_env(kind, value)
                .map_err(|why| ConfigError::message(format!("{name} (key `{key}`): {why}")))?;
            set_path(&mut table, &key, parsed);
        }
        let config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::message(e.to_string().trim_end().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, why: String| Err(ConfigError::message(format!("`{key}`: {why}")));
        if self.listen.parse::<SocketAddr>().is_err() {
            return err(
                "listen",
                format!("{:?} is not an address such as 127.0.0.1:8080", self.listen),
            );
        }
        if self.database_url.trim().is_empty() {
            return err("database_url", "must not be empty".into());
        }
        if let Some(n) = self.database.max_connections
            && !(1..=DatabaseConfig::MAX_CONNECTIONS).contains(&n)
        {
            return err(
                "database.max_connections",
                format!(
                    "{n} is not between 1 and {}",
                    DatabaseConfig::MAX_CONNECTIONS
                ),
            );
        }
        if let Some(steps) = self.database.sqlite_inline_read_steps
            && steps > DatabaseConfig::MAX_INLINE_READ_STEPS
        {
            return err(
                "database.sqlite_inline_read_steps",
                format!(
                    "{steps} is over {}: a read that long would hold up every request its \
                     thread serves; 0 turns reads on the request's thread off",
                    DatabaseConfig::MAX_INLINE_READ_STEPS
                ),
            );
        }
        if self.database.acquire_timeout_seconds == Some(0) {
            return err(
                "database.acquire_timeout_seconds",
                "must be at least 1".into(),
            );
        }
        if !self.base_path.starts_with('/')
            || (self.base_path.len() > 1 && self.base_path.ends_with('/'))
        {
            return err(
                "base_path",
                format!(
                    "{:?} must start with `/` and not end with one",
                    self.base_path
                ),
            );
        }
        if let Some(url) = &self.public_url {
            match url::Url::parse(url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => return err("public_url", format!("{url:?} is not an http(s) URL")),
            }
        }
        if self.default_tenant.trim().is_empty() {
            return err("default_tenant", "must not be empty".into());
        }
        if let Some(token) = &self.token
            && token.expose().trim().len() < 16
        {
            return err("token", "must be at least 16 characters".into());
        }
        let l = &self.limits;
        for (key, value) in [
            ("limits.max_body_bytes", l.max_body_bytes as u64),
            ("limits.max_filter_length", l.max_filter_length as u64),
            ("limits.default_page_size", l.default_page_size),
            ("limits.max_page_size", l.max_page_size),
            ("limits.max_patch_operations", l.max_patch_operations as u64),
            ("limits.max_bulk_operations", l.max_bulk_operations as u64),
            (
                "limits.max_bulk_payload_bytes",
                l.max_bulk_payload_bytes as u64,
            ),
            ("limits.request_timeout_seconds", l.request_timeout_seconds),
            (
                "limits.max_concurrent_requests",
                l.max_concurrent_requests as u64,
            ),
            (
                "limits.header_read_timeout_seconds",
                l.header_read_timeout_seconds,
            ),
            (
                "limits.body_read_timeout_seconds",
                l.body_read_timeout_seconds,
            ),
            ("limits.max_resource_bytes", l.max_resource_bytes as u64),
            (
                "limits.max_values_per_attribute",
                l.max_values_per_attribute as u64,
            ),
            (
                "limits.max_indexed_value_bytes",
                l.max_indexed_value_bytes as u64,
            ),
        ] {
            if value == 0 {
                return err(key, "must be greater than 0".into());
            }
        }
        let ceiling = scim_core::validate::ResourceLimits::INDEXED_VALUE_CEILING;
        if l.max_indexed_value_bytes > ceiling {
            return err(
                "limits.max_indexed_value_bytes",
                format!(
                    "{} is above {ceiling}, the longest value PostgreSQL's indexes can hold",
                    l.max_indexed_value_bytes
                ),
            );
        }
        if self.rate_limit.enabled
            && (self.rate_limit.requests_per_second.is_nan()
                || self.rate_limit.requests_per_second <= 0.0)
        {
            return err(
                "rate_limit.requests_per_second",
                "must be greater than 0".into(),
            );
        }
        if self.rate_limit.enabled {
            let r = &self.rate_limit;
            for (key, value) in [
                ("rate_limit.burst", r.burst),
                (
                    "rate_limit.failed_auth_per_minute",
                    r.failed_auth_per_minute,
                ),
                ("rate_limit.failed_auth_burst", r.failed_auth_burst),
                (
                    "rate_limit.token_requests_per_minute",
                    r.token_requests_per_minute,
                ),
                ("rate_limit.token_burst", r.token_burst),
            ] {
                if value == 0 {
                    return err(key, "must be at least 1".into());
                }
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return err("tls", "set both `cert` and `key`, or neither".into());
        }
        self.inbound.validate().map_err(ConfigError::message)?;
        Ok(())
    }

    /// The query limits for `scim-core`.
    pub fn query_limits(&self) -> scim_core::query::QueryLimits {
        scim_core::query::QueryLimits {
            default_page_size: self.limits.default_page_size.min(self.limits.max_page_size),
            max_page_size: self.limits.max_page_size,
        }
    }
}

/// Every settable key as a dotted path with its type, taken from the defaults.
fn known_keys() -> Vec<(String, Kind)> {
    let defaults =
        toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Table(toml::Table::new()));
    let mut keys = Vec::new();
    if let toml::Value::Table(t) = defaults {
        for (k, v) in t {
            match v {
                toml::Value::Table(section) => {
                    for (sk, sv) in section {
                        keys.push((format!("{k}.{sk}"), kind_of(&sv)));
                    }
                }
                other => keys.push((k, kind_of(&other))),
            }
        }
    }
    for (k, kind) in OPTIONAL_KEYS {
        if !keys.iter().any(|(key, _)| key == k) {
            keys.push(((*k).to_string(), *kind));
        }
    }
    keys
}

fn kind_of(v: &toml::Value) -> Kind {
    match v {
        toml::Value::Integer(_) => Kind::Integer,
        toml::Value::Float(_) => Kind::Float,
        toml::Value::Boolean(_) => Kind::Boolean,
        _ => Kind::String,
    }
}

/// The dotted key an environment variable names, if any.
fn env_key(name: &str, keys: &[(String, Kind)]) -> Option<String> {
    if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some((*key).to_string());
    }
    let rest = name.strip_prefix("SCIM_")?;
    let key = rest.to_ascii_lowercase().replace("__", ".");
    keys.iter().any(|(k, _)| *k == key).then_some(key)
}

fn parse_env(kind: Kind, value: &str) -> Result<toml::Value, String> {
    let v = value.trim();
    match kind {
        Kind::String => Ok(toml::Value::String(value.to_string())),
        Kind::Integer => v
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("{v:?} is not an integer")),
        Kind::Float => v
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("{v:?} is not a number")),
        Kind::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("{v:?} is not a boolean (true/false)")),
        },
    }
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((section, rest)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
        None => {
            table.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_configuration_gives_working_defaults() {
        let c = Config::from_parts(None, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://scim.db");
        assert_eq!(c.base_path, "/scim/v2");
        assert!(c.rate_limit.requests_per_second >= 25.0);
    }

    #[test]
    fn database_pool_keys_are_optional_overridable_and_validated() {
        let c = Config::from_parts(None, &[]).unwrap();
        assert_eq!(c.database, DatabaseConfig::default());
        let c = Config::from_parts(
            Some("[database]\nmax_connections = 4\n"),
            &env(&[("SCIM_DATABASE__ACQUIRE_TIMEOUT_SECONDS", "5")]),
        )
        .unwrap();
        assert_eq!(c.database.max_connections, Some(4));
        assert_eq!(
            c.database.pool_settings().acquire_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        let c =
            Config::from_parts(None, &env(&[("SCIM_DATABASE__MAX_CONNECTIONS", "32")])).unwrap();
        assert_eq!(c.database.pool_settings().max_connections, Some(32));
        let c = Config::from_parts(
            None,
            &env(&[("SCIM_DATABASE__SQLITE_INLINE_READ_STEPS", "0")]),
        )
        .unwrap();
        assert_eq!(c.database.pool_settings().sqlite_inline_read_steps, Some(0));
        for (file, key) in [
            (
                "[database]\nmax_connections = 0\n",
                "database.max_connections",
            ),
            (
                "[database]\nmax_connections = 5000\n",
                "database.max_connections",
            ),
            (
                "[database]\nacquire_timeout_seconds = 0\n",
                "database.acquire_timeout_seconds",
            ),
            (
                "[database]\nsqlite_inline_read_steps = 2000000\n",
                "database.sqlite_inline_read_steps",
            ),
            ("[database]\npool = 3\n", "pool"),
        ] {
            let e = Config::from_parts(Some(file), &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{file:?}: {e}");
        }
        let e = Config::from_parts(None, &env(&[("SCIM_DATABASE__MAX_CONNECTIONS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCIM_DATABASE__MAX_CONNECTIONS"), "{e}");
    }

    #[test]
    fn environment_overrides_file_and_aliases_work() {
        let file = "listen = \"0.0.0.0:9000\"\n[limits]\nmax_page_size = 50\n";
        let c = Config::from_parts(
            Some(file),
            &env(&[
                ("SCIM_LISTEN", "127.0.0.1:0"),
                ("SCIM_DATABASE_URL", "postgres://x@y/z"),
                ("SCIM_LOG", "debug"),
                ("SCIM_TOKEN", "0123456789abcdef0123"),
                ("SCIM_LIMITS__MAX_BODY_BYTES", "2048"),
                ("SCIM_RATE_LIMIT__ENABLED", "false"),
                ("SCIM_TLS__CERT", "/c.pem"),
                ("SCIM_TLS__KEY", "/k.pem"),
                ("SCIM_TEST_POSTGRES_URL", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.database_url, "postgres://x@y/z");
        assert_eq!(c.log.filter, "debug");
        assert_eq!(c.token, Some(SecretString::new("0123456789abcdef0123")));
        assert_eq!(c.limits.max_body_bytes, 2048);
        assert_eq!(c.limits.max_page_size, 50);
        assert!(!c.rate_limit.enabled);
        assert_eq!(c.tls.cert.as_deref(), Some(Path::new("/c.pem")));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (Some("lisen = \"x\""), vec![], "lisen"),
            (Some("[limits]\nmax_body = 1"), vec![], "max_body"),
            (Some("listen = \"nope\""), vec![], "listen"),
            (
                None,
                env(&[("SCIM_LIMITS__MAX_PAGE_SIZE", "many")]),
                "SCIM_LIMITS__MAX_PAGE_SIZE",
            ),
            (
                None,
                env(&[("SCIM_LIMITS__MAX_PAGE_SIZE", "0")]),
                "limits.max_page_size",
            ),
            (None, env(&[("SCIM_TLS__CERT", "/c")]), "tls"),
            (None, env(&[("SCIM_PUBLIC_URL", "ftp://x")]), "public_url"),
            (None, env(&[("SCIM_BASE_PATH", "scim")]), "base_path"),
        ];
        for (file, env, key) in cases {
            let e = Config::from_parts(file, &env).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn graph_section_is_checked_with_its_environment_overrides() {
        let c = Config::from_parts(Some("[graph]\nmode = \"plan\"\n"), &[]).unwrap();
        assert!(c.graph_config(&[]).unwrap().is_some());
        let bad = Config::from_parts(Some("[graph]\nbogus = 1\n"), &[]).unwrap();
        let e = bad.graph_config(&[]).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let none = Config::from_parts(None, &[]).unwrap();
        assert!(none.graph_config(&[]).unwrap().is_none());
        let e = none
            .graph_config(&env(&[("SCIM_GRAPH_NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCIM_GRAPH_NOPE"), "{e}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut auth = toml::Table::new();
        auth.insert(
            "client_secret".into(),
            toml::Value::String("hush-hush".into()),
        );
        let c = Config {
            token: Some(SecretString::new("supersecretsupersecret")),
            auth: Some(OpaqueTable(auth)),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("supersecret"));
        assert!(!shown.contains("hush-hush"));
        assert!(shown.contains("client_secret"));
    }
}
