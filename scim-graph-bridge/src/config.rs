//! The `[graph]` section of the server configuration.
//!
//! ```toml
//! [graph]
//! tenant_id = "contoso.onmicrosoft.com"
//! client_id = "…"
//! client_secret = "…"            # or client_certificate + client_key (PEM paths)
//! mode = "apply"                 # "plan" (default without credentials) or "apply"
//! rules = "/etc/scim/graph-rules.toml"
//! ```
//! Every key can be overridden by `SCIM_GRAPH_<KEY>` (upper case), see
//! [`GraphConfig::apply_env`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, Result};
pub use crate::graph::Credential;
use crate::graph::{GraphClient, RetryPolicy};
use crate::secret::SecretString;
use std::sync::Arc;

/// Default OAuth authority.
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// Default Graph base URL.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// A configuration error, the workspace's one: it names the key (or environment variable) at
/// fault when there is one. `scim-server` re-exports it for its own sections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ConfigError {
    /// The key, e.g. `graph.writes_per_second` or `SCIM_GRAPH_MODE`; empty when the message
    /// names what is wrong by itself.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error whose message names the key (or keys) itself.
    pub fn message(message: impl Into<String>) -> Self {
        Self::new(String::new(), message)
    }
}

/// Whether the bridge only records plans or also applies them.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Compute and record plans; call nothing.
    Plan,
    /// Apply plans to Microsoft Graph.
    Apply,
}

/// The `[graph]` configuration section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// Entra tenant id or domain.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Application (client) id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client secret (redacted in `Debug`).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// PEM certificate path for a signed client assertion.
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    /// PEM RSA private key path for a signed client assertion.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// OAuth authority base URL.
    #[serde(default = "default_authority")]
    pub authority_url: String,
    /// Graph base URL including the version segment.
    #[serde(default = "default_graph")]
    pub graph_url: String,
    /// `plan` or `apply`; defaults to `apply` when credentials are configured, else `plan`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Path of the rules file.
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Client-side Graph write rate (writes per second).
    #[serde(default = "default_write_rate")]
    pub writes_per_second: f64,
    /// Burst size of the write rate limiter.
    #[serde(default = "default_write_burst")]
    pub write_burst: u32,
    /// Attempts per work item before it goes to the dead-letter list.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The mass-change guard (`[graph.guard]`, on by default): see [`crate::guard`].
    #[serde(default)]
    pub guard: GuardConfig,
}

/// `[graph.guard]`: the mass-change guard (accidental-deletion prevention).
///
/// Microsoft Entra's provisioning stops and asks an administrator when one cycle would disable or
/// delete more than a threshold of accounts ("accidental deletions threshold", 500 by default).
/// The bridge applies changes continuously rather than in cycles, so it counts leaver actions
/// (an account disabled or deleted in Graph) per tenant in a sliding window instead: an hour,
/// longer than one Entra cycle (about 40 minutes), with Entra's 500 as the count. A share of the
/// tenant's active users may tighten it for small tenants.
///
/// ```toml
/// [graph.guard]
/// enabled = true           # SCIM_GRAPH_GUARD_ENABLED
/// max_leavers = 500        # SCIM_GRAPH_GUARD_MAX_LEAVERS
/// max_leaver_share = 0.1   # SCIM_GRAPH_GUARD_MAX_LEAVER_SHARE (optional; 0 < share <= 1)
/// window_minutes = 60      # SCIM_GRAPH_GUARD_WINDOW_MINUTES
/// ```
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Whether leaver actions are counted and held at all.
    pub enabled: bool,
    /// Leaver actions a tenant may take within the window; the next one is held.
    pub max_leavers: u32,
    /// When set, also at most this share of the tenant's active users (plus those already
    /// counted in the window) per window; the smaller limit applies.
    pub max_leaver_share: Option<f64>,
    /// The sliding window, in minutes.
    pub window_minutes: u32,
}

/// Entra's default accidental-deletions threshold.
pub const DEFAULT_MAX_LEAVERS: u32 = 500;

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_leavers: DEFAULT_MAX_LEAVERS,
            max_leaver_share: None,
            window_minutes: 60,
        }
    }
}

impl GuardConfig {
    /// The window as a duration.
    pub fn window(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.window_minutes))
    }

    /// Checks the section; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.window_minutes == 0 {
            return Err(Error::Config(ConfigError::new(
                "graph.guard.window_minutes",
                "must be at least 1",
            )));
        }
        if let Some(share) = self.max_leaver_share
            && !(share > 0.0 && share <= 1.0)
        {
            return Err(Error::Config(ConfigError::new(
                "graph.guard.max_leaver_share",
                format!("must be a fraction above 0 and at most 1 (0.1 is 10%), got {share}"),
            )));
        }
        Ok(())
    }
}

fn default_authority() -> String {
    DEFAULT_AUTHORITY_URL.to_owned()
}
fn default_graph() -> String {
    DEFAULT_GRAPH_URL.to_owned()
}
fn default_write_rate() -> f64 {
    10.0
}
fn default_write_burst() -> u32 {
    10
}
fn default_max_attempts() -> u32 {
    8
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            client_certificate: None,
            client_key: None,
            authority_url: default_authority(),
            graph_url: default_graph(),
            mode: None,
            rules: None,
            writes_per_second: default_write_rate(),
            write_burst: default_write_burst(),
            max_attempts: default_max_attempts(),
            guard: GuardConfig::default(),
        }
    }
}

impl GraphConfig {
    /// The Graph client for this section (which must carry credentials).
    pub fn client(&self, clock: Arc<dyn Clock>) -> Result<GraphClient> {
        let cred = self
            .credential()?
            .ok_or_else(|| Error::config("graph credentials are not configured".into()))?;
        let (Some(tenant), Some(client)) = (&self.tenant_id, &self.client_id) else {
            return Err(Error::config(
                "graph.tenant_id and graph.client_id are required".into(),
            ));
        };
        Ok(GraphClient::new(
            &self.authority_url,
            &self.graph_url,
            tenant,
            client,
            cred,
            self.writes_per_second,
            self.write_burst,
            RetryPolicy::default(),
            clock,
        ))
    }

    /// Applies `SCIM_GRAPH_*` overrides from `vars` (e.g. `std::env::vars()`).
    /// Unknown `SCIM_GRAPH_*` keys are an error that names the key.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        for (k, v) in vars {
            let Some(key) = k.as_ref().strip_prefix("SCIM_GRAPH_") else {
                continue;
            };
            let v: String = v.into();
            let num = |name: &str| -> Result<f64> {
                v.parse::<f64>()
                    .map_err(|_| Error::config(format!("SCIM_GRAPH_{name}: not a number: {v:?}")))
            };
            match key {
                "TENANT_ID" => self.tenant_id = Some(v),
                "CLIENT_ID" => self.client_id = Some(v),
                "CLIENT_SECRET" => self.client_secret = Some(SecretString::new(v)),
                "CLIENT_CERTIFICATE" => self.client_certificate = Some(v.into()),
                "CLIENT_KEY" => self.client_key = Some(v.into()),
                "AUTHORITY_URL" => self.authority_url = v,
                "GRAPH_URL" => self.graph_url = v,
                "RULES" => self.rules = Some(v.into()),
                "MODE" => {
                    self.mode = Some(match v.to_ascii_lowercase().as_str() {
                        "plan" => Mode::Plan,
                        "apply" => Mode::Apply,
                        _ => {
                            return Err(Error::config(format!(
                                "SCIM_GRAPH_MODE: expected \"plan\" or \"apply\", got {v:?}"
                            )));
                        }
                    })
                }
                "WRITES_PER_SECOND" => self.writes_per_second = num(key)?,
                "WRITE_BURST" => self.write_burst = num(key)? as u32,
                "MAX_ATTEMPTS" => self.max_attempts = num(key)? as u32,
                "GUARD_ENABLED" => {
                    self.guard.enabled = match v.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => {
                            return Err(Error::config(format!(
                                "SCIM_GRAPH_GUARD_ENABLED: expected true or false, got {v:?}"
                            )));
                        }
                    }
                }
                "GUARD_MAX_LEAVERS" => {
                    self.guard.max_leavers = v.trim().parse().map_err(|_| {
                        Error::config(format!(
                            "SCIM_GRAPH_GUARD_MAX_LEAVERS: not a whole number: {v:?}"
                        ))
                    })?
                }
                "GUARD_MAX_LEAVER_SHARE" => self.guard.max_leaver_share = Some(num(key)?),
                "GUARD_WINDOW_MINUTES" => {
                    self.guard.window_minutes = v.trim().parse().map_err(|_| {
                        Error::config(format!(
                            "SCIM_GRAPH_GUARD_WINDOW_MINUTES: not a whole number: {v:?}"
                        ))
                    })?
                }
                other => {
                    return Err(Error::config(format!(
                        "unknown environment key SCIM_GRAPH_{other}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether enough is configured to obtain tokens.
    pub fn has_credentials(&self) -> bool {
        self.tenant_id.is_some()
            && self.client_id.is_some()
            && (self.client_secret.is_some()
                || (self.client_certificate.is_some() && self.client_key.is_some()))
    }

    /// The effective mode: explicit, else `apply` with credentials and `plan` without.
    pub fn effective_mode(&self) -> Mode {
        self.mode.unwrap_or(if self.has_credentials() {
            Mode::Apply
        } else {
            Mode::Plan
        })
    }

    /// Checks the section; errors name the offending key.
    pub fn validate(&self) -> Result<()> {
        if self.effective_mode() == Mode::Apply && !self.has_credentials() {
            return Err(Error::config(
                "graph.mode = \"apply\" needs graph.tenant_id, graph.client_id and \
                 graph.client_secret (or graph.client_certificate and graph.client_key)"
                    .into(),
            ));
        }
        if self.client_certificate.is_some() != self.client_key.is_some() {
            return Err(Error::config(
                "graph.client_certificate and graph.client_key must be given together".into(),
            ));
        }
        for (key, value) in [
            ("graph.authority_url", &self.authority_url),
            ("graph.graph_url", &self.graph_url),
        ] {
            url::Url::parse(value).map_err(|e| Error::config(format!("{key}: {e}")))?;
        }
        if self.writes_per_second.is_nan() || self.writes_per_second <= 0.0 {
            return Err(Error::config(
                "graph.writes_per_second must be positive".into(),
            ));
        }
        if self.write_burst == 0 || self.max_attempts == 0 {
            return Err(Error::config(
                "graph.write_burst and graph.max_attempts must be positive".into(),
            ));
        }
        self.guard.validate()?;
        Ok(())
    }

    /// Loads the credential (reading certificate files if configured).
    pub fn credential(&self) -> Result<Option<Credential>> {
        if let Some(s) = &self.client_secret {
            return Ok(Some(Credential::Secret(s.clone())));
        }
        match (&self.client_certificate, &self.client_key) {
            (Some(c), Some(k)) => Ok(Some(Credential::Certificate {
                cert_pem: std::fs::read_to_string(c)?,
                key_pem: SecretString::new(std::fs::read_to_string(k)?),
            })),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_section_and_redacts_secret() {
        let c: GraphConfig = toml::from_str(
            r#"tenant_id = "t"
client_id = "c"
client_secret = "hunter2"
rules = "rules.toml""#,
        )
        .unwrap();
        assert_eq!(c.effective_mode(), Mode::Apply);
        assert_eq!(c.graph_url, DEFAULT_GRAPH_URL);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        c.validate().unwrap();
    }

    #[test]
    fn default_is_plan_mode_and_unknown_keys_fail() {
        assert_eq!(GraphConfig::default().effective_mode(), Mode::Plan);
        GraphConfig::default().validate().unwrap();
        assert!(toml::from_str::<GraphConfig>("bogus = 1").is_err());
        let c: GraphConfig = toml::from_str("mode = \"apply\"").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("graph.tenant_id")
        );
    }

    #[test]
    fn env_overrides() {
        let mut c = GraphConfig::default();
        c.apply_env([
            ("SCIM_GRAPH_TENANT_ID", "t"),
            ("SCIM_GRAPH_CLIENT_ID", "c"),
            ("SCIM_GRAPH_CLIENT_SECRET", "s3cret"),
            ("SCIM_GRAPH_MODE", "plan"),
            ("SCIM_GRAPH_GRAPH_URL", "http://127.0.0.1:1/v1.0"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert_eq!(c.client_secret, Some(SecretString::new("s3cret")));
        assert_eq!(c.effective_mode(), Mode::Plan);
        assert_eq!(c.graph_url, "http://127.0.0.1:1/v1.0");
        let err = c.apply_env([("SCIM_GRAPH_NOPE", "x")]).unwrap_err();
        assert!(err.to_string().contains("SCIM_GRAPH_NOPE"));
        assert!(c.apply_env([("SCIM_GRAPH_MODE", "yolo")]).is_err());
    }

    #[test]
    fn guard_is_on_by_default_and_its_errors_name_the_key() {
        let c = GraphConfig::default();
        assert!(c.guard.enabled);
        assert_eq!(c.guard.max_leavers, 500);
        let c: GraphConfig =
            toml::from_str("[guard]\nmax_leavers = 20\nmax_leaver_share = 0.05\n").unwrap();
        assert_eq!(c.guard.max_leavers, 20);
        assert_eq!(c.guard.max_leaver_share, Some(0.05));
        assert!(toml::from_str::<GraphConfig>("[guard]\nthreshold = 3\n").is_err());
        // (environment, words of the error)
        let cases = [
            (
                ("SCIM_GRAPH_GUARD_MAX_LEAVER_SHARE", "1.5"),
                "graph.guard.max_leaver_share",
            ),
            (
                ("SCIM_GRAPH_GUARD_MAX_LEAVER_SHARE", "0"),
                "graph.guard.max_leaver_share",
            ),
            (
                ("SCIM_GRAPH_GUARD_WINDOW_MINUTES", "0"),
                "graph.guard.window_minutes",
            ),
            (
                ("SCIM_GRAPH_GUARD_WINDOW_MINUTES", "-3"),
                "SCIM_GRAPH_GUARD_WINDOW_MINUTES",
            ),
            (
                ("SCIM_GRAPH_GUARD_MAX_LEAVERS", "many"),
                "SCIM_GRAPH_GUARD_MAX_LEAVERS",
            ),
            (
                ("SCIM_GRAPH_GUARD_ENABLED", "perhaps"),
                "SCIM_GRAPH_GUARD_ENABLED",
            ),
        ];
        for ((key, value), words) in cases {
            let mut c = GraphConfig::default();
            let e = c
                .apply_env([(key, value)])
                .and_then(|()| c.validate())
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{key}={value}: {e}");
        }
        let mut c = GraphConfig::default();
        c.apply_env([
            ("SCIM_GRAPH_GUARD_ENABLED", "false"),
            ("SCIM_GRAPH_GUARD_MAX_LEAVERS", "7"),
        ])
        .unwrap();
        assert!(!c.guard.enabled);
        assert_eq!(c.guard.max_leavers, 7);
    }
}
