//! `[console]`: whether the console is served, session lifetimes, the OpenID Connect provider and
//! how its groups or app roles map to console roles per tenant.
//!
//! ```toml
//! [console]
//! idle_timeout_minutes = 30
//! absolute_timeout_hours = 12
//!
//! [console.oidc]                       # absent: `serve` prints a one-time admin sign-in link
//! issuer = "https://login.microsoftonline.com/<directory id>/v2.0"
//! client_id = "<application id>"
//! client_secret = "<secret>"           # optional: PKCE alone for a public client
//! # redirect_url = "https://scim.example.com/console/auth/callback"
//!
//! [console.roles.default]              # one table per SCIM tenant
//! viewer = ["<group object id>"]       # matched against the ID token's `groups` and `roles`
//! operator = ["Console.Operator"]
//! approver = []
//! admin = ["<group object id>"]
//! ```

use crate::config::{ConfigError, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::roles::Role;

/// The `[console]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console at `/console` (default true).
    pub enabled: bool,
    /// A session not used for this many minutes ends (default 30).
    pub idle_timeout_minutes: u64,
    /// A session ends this many hours after sign-in, however active (default 12).
    pub absolute_timeout_hours: u64,
    /// Minutes a one-time admin sign-in link stays valid (default 15).
    pub link_valid_minutes: u64,
    /// The OpenID Connect provider; without one, `serve` prints a one-time admin sign-in link.
    pub oidc: Option<OidcConfig>,
    /// Per SCIM tenant: which `groups` / `roles` claim values grant which console role.
    pub roles: BTreeMap<String, RoleMapping>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 12,
            link_valid_minutes: 15,
            oidc: None,
            roles: BTreeMap::new(),
        }
    }
}

/// `[console.oidc]`: an OpenID Connect provider (Entra ID, or any provider with discovery).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer; `{issuer}/.well-known/openid-configuration` is its discovery document, and the
    /// ID token's `iss` must equal it exactly.
    pub issuer: String,
    /// The client (application) id registered at the provider; the ID token's `aud`.
    pub client_id: String,
    /// The client secret (sent with HTTP Basic), if the client is confidential.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The redirect URI registered at the provider. Default: the request's origin followed by
    /// `/console/auth/callback`.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Scopes requested (default `openid profile email`; `openid` is always sent).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

/// `[console.roles.<tenant>]`: claim values (group object ids, group names or app role values,
/// compared exactly) that grant each role in one tenant. A person matching several roles gets
/// the highest (`admin` > `approver` > `operator` > `viewer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleMapping {
    /// Values granting `viewer`.
    pub viewer: Vec<String>,
    /// Values granting `operator`.
    pub operator: Vec<String>,
    /// Values granting `approver`.
    pub approver: Vec<String>,
    /// Values granting `admin`.
    pub admin: Vec<String>,
}

impl RoleMapping {
    /// The highest role any of `values` grants.
    pub fn role_for(&self, values: &[&str]) -> Option<Role> {
        let grants = |list: &[String]| values.iter().any(|v| list.iter().any(|g| g == v));
        [
            (Role::Admin, &self.admin),
            (Role::Approver, &self.approver),
            (Role::Operator, &self.operator),
            (Role::Viewer, &self.viewer),
        ]
        .into_iter()
        .find(|(_, list)| grants(list))
        .map(|(role, _)| role)
    }
}

impl ConsoleConfig {
    /// Parses and validates the `[console]` table (defaults when absent), without environment
    /// overrides.
    pub fn from_table(table: Option<&toml::Table>) -> Result<Self, ConfigError> {
        Self::from_table_and_env(table, &[])
    }

    /// Parses the `[console]` table with `SCIM_CONSOLE_*` overrides from `env` (pairs of
    /// variable name and value), then validates it. A variable overrides the key it names:
    ///
    /// | variable | key |
    /// |---|---|
    /// | `SCIM_CONSOLE_ENABLED` | `enabled` (`true` / `false`) |
    /// | `SCIM_CONSOLE_IDLE_TIMEOUT_MINUTES`, `…_ABSOLUTE_TIMEOUT_HOURS`, `…_LINK_VALID_MINUTES` | the timeouts |
    /// | `SCIM_CONSOLE_OIDC_ISSUER`, `…_CLIENT_ID`, `…_CLIENT_SECRET`, `…_REDIRECT_URL` | `oidc.*` |
    /// | `SCIM_CONSOLE_OIDC_SCOPES` | `oidc.scopes`, separated by commas or spaces |
    /// | `SCIM_CONSOLE_ROLES_<tenant>_<ROLE>` | `roles.<tenant>.<role>`, comma-separated (the tenant as spelled, the role last: `SCIM_CONSOLE_ROLES_default_ADMIN`) |
    ///
    /// An unknown `SCIM_CONSOLE_` variable is an error naming it, as a misspelt key is.
    pub fn from_table_and_env(
        table: Option<&toml::Table>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut table = table.cloned().unwrap_or_default();
        let mut overridden = false;
        for (name, value) in env {
            let Some(key) = name.strip_prefix("SCIM_CONSOLE_") else {
                continue;
            };
            overridden = true;
            let bad = |why: &str| ConfigError::new(name.as_str(), why);
            let list = || {
                toml::Value::Array(
                    value
                        .split([',', ' '])
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| toml::Value::String(v.to_string()))
                        .collect(),
                )
            };
            let sub = |table: &mut toml::Table, name: &str| -> Result<toml::Table, ConfigError> {
                match table.remove(name) {
                    Some(toml::Value::Table(t)) => Ok(t),
                    None => Ok(toml::Table::new()),
                    Some(_) => Err(ConfigError::new(
                        format!("console.{name}"),
                        "must be a table",
                    )),
                }
            };
            match key {
                "ENABLED" => {
                    let v = match value.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => return Err(bad("expected true or false")),
                    };
                    table.insert("enabled".into(), toml::Value::Boolean(v));
                }
                "IDLE_TIMEOUT_MINUTES" | "ABSOLUTE_TIMEOUT_HOURS" | "LINK_VALID_MINUTES" => {
                    let v: i64 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected a whole number"))?;
                    table.insert(key.to_ascii_lowercase(), toml::Value::Integer(v));
                }
                "OIDC_ISSUER" | "OIDC_CLIENT_ID" | "OIDC_CLIENT_SECRET" | "OIDC_REDIRECT_URL"
                | "OIDC_SCOPES" => {
                    let mut oidc = sub(&mut table, "oidc")?;
                    let field = key["OIDC_".len()..].to_ascii_lowercase();
                    let v = if field == "scopes" {
                        list()
                    } else {
                        toml::Value::String(value.clone())
                    };
                    oidc.insert(field, v);
                    table.insert("oidc".into(), toml::Value::Table(oidc));
                }
                _ => {
                    let Some((tenant, role)) = key
                        .strip_prefix("ROLES_")
                        .and_then(|rest| rest.rsplit_once('_'))
                        .filter(|(t, r)| {
                            !t.is_empty()
                                && ["VIEWER", "OPERATOR", "APPROVER", "ADMIN"]
                                    .contains(&r.to_ascii_uppercase().as_str())
                        })
                    else {
                        return Err(bad(
                            "not a [console] key; see docs/console.md for the SCIM_CONSOLE_ \
                             variables",
                        ));
                    };
                    let mut roles = sub(&mut table, "roles")?;
                    let mut mapping = match roles.remove(tenant) {
                        Some(toml::Value::Table(t)) => t,
                        _ => toml::Table::new(),
                    };
                    mapping.insert(role.to_ascii_lowercase(), list());
                    roles.insert(tenant.to_string(), toml::Value::Table(mapping));
                    table.insert("roles".into(), toml::Value::Table(roles));
                }
            }
        }
        let config = Self::deserialize(toml::Value::Table(table)).map_err(|e| {
            let why = e.to_string();
            let why = why.trim_end();
            if overridden {
                ConfigError::new("console", format!("{why} (with SCIM_CONSOLE_* variables)"))
            } else {
                ConfigError::new("console", why)
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, why: &str| Err(ConfigError::new(format!("console.{key}"), why));
        for (key, value) in [
            ("idle_timeout_minutes", self.idle_timeout_minutes),
            ("absolute_timeout_hours", self.absolute_timeout_hours),
            ("link_valid_minutes", self.link_valid_minutes),
        ] {
            if value == 0 {
                return err(key, "must be greater than 0");
            }
        }
        if let Some(oidc) = &self.oidc {
            match url::Url::parse(&oidc.issuer) {
                Ok(u) if u.scheme() == "https" || is_loopback_http(&u) => {}
                _ => {
                    return err(
                        "oidc.issuer",
                        "must be an https URL (http only on a loopback address, for tests)",
                    );
                }
            }
            if oidc.client_id.trim().is_empty() {
                return err("oidc.client_id", "must not be empty");
            }
            if let Some(url) = &oidc.redirect_url {
                match url::Url::parse(url) {
                    Ok(u) if u.path().ends_with("/console/auth/callback") => {}
                    _ => {
                        return err(
                            "oidc.redirect_url",
                            "must be an absolute URL ending in /console/auth/callback",
                        );
                    }
                }
            }
            if self.roles.values().all(|m| *m == RoleMapping::default()) {
                return err(
                    "roles",
                    "with [console.oidc] set, map at least one group or app role to a console \
                     role, e.g. [console.roles.default] admin = [\"<group id>\"]",
                );
            }
        }
        Ok(())
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> time::Duration {
        time::Duration::minutes(i64::try_from(self.idle_timeout_minutes).unwrap_or(i64::MAX / 60))
    }

    /// The absolute timeout.
    pub fn absolute_timeout(&self) -> time::Duration {
        time::Duration::hours(i64::try_from(self.absolute_timeout_hours).unwrap_or(i64::MAX / 3600))
    }
}

fn is_loopback_http(u: &url::Url) -> bool {
    u.scheme() == "http"
        && matches!(
            u.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConsoleConfig, ConfigError> {
        ConsoleConfig::from_table(Some(&text.parse::<toml::Table>().unwrap()))
    }

    #[test]
    fn defaults_without_a_table() {
        let c = ConsoleConfig::from_table(None).unwrap();
        assert!(c.enabled && c.oidc.is_none());
        assert_eq!(c.idle_timeout(), time::Duration::minutes(30));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("idle_timeout_minutes = 0", "console.idle_timeout_minutes"),
            ("nope = 1", "nope"),
            (
                "[oidc]\nissuer = \"http://idp.example\"\nclient_id = \"c\"",
                "console.oidc.issuer",
            ),
            (
                "[oidc]\nissuer = \"https://idp.example\"\nclient_id = \"c\"",
                "console.roles",
            ),
            (
                "[oidc]\nissuer = \"https://idp.example\"\nclient_id = \"c\"\nredirect_url = \"https://x/cb\"\n[roles.default]\nadmin = [\"a\"]",
                "console.oidc.redirect_url",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_variables_override_the_table() {
        let file: toml::Table = "idle_timeout_minutes = 10\n[roles.default]\nviewer = [\"v\"]"
            .parse()
            .unwrap();
        let c = ConsoleConfig::from_table_and_env(
            Some(&file),
            &env(&[
                ("SCIM_CONSOLE_IDLE_TIMEOUT_MINUTES", "5"),
                ("SCIM_CONSOLE_ENABLED", "false"),
                ("SCIM_CONSOLE_OIDC_ISSUER", "https://login.example/v2.0"),
                ("SCIM_CONSOLE_OIDC_CLIENT_ID", "app"),
                ("SCIM_CONSOLE_OIDC_CLIENT_SECRET", "s3cret"),
                ("SCIM_CONSOLE_OIDC_SCOPES", "openid, email"),
                ("SCIM_CONSOLE_ROLES_default_ADMIN", "Console.Admin, g-1"),
                ("SCIM_CONSOLE_ROLES_eu_west_operator", "ops"),
                ("SCIM_LOG", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(c.idle_timeout_minutes, 5);
        assert!(!c.enabled);
        let oidc = c.oidc.as_ref().unwrap();
        assert_eq!(oidc.issuer, "https://login.example/v2.0");
        assert_eq!(oidc.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(oidc.scopes, vec!["openid", "email"]);
        assert_eq!(c.roles["default"].admin, vec!["Console.Admin", "g-1"]);
        assert_eq!(c.roles["default"].viewer, vec!["v"], "the file's keys stay");
        assert_eq!(c.roles["eu_west"].operator, vec!["ops"]);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the secret is redacted"
        );
    }

    #[test]
    fn bad_environment_variables_are_named() {
        for (name, value) in [
            ("SCIM_CONSOLE_IDLE_TIMEOUT_MINUTES", "soon"),
            ("SCIM_CONSOLE_ENABLED", "perhaps"),
            ("SCIM_CONSOLE_COLOUR", "blue"),
            ("SCIM_CONSOLE_ROLES_default_ROOT", "x"),
        ] {
            let e = ConsoleConfig::from_table_and_env(None, &env(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
        let e = ConsoleConfig::from_table_and_env(
            None,
            &env(&[("SCIM_CONSOLE_IDLE_TIMEOUT_MINUTES", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("console.idle_timeout_minutes"), "{e}");
    }

    #[test]
    fn highest_matching_role_wins() {
        let m = RoleMapping {
            viewer: vec!["all-staff".into()],
            operator: vec!["it-ops".into()],
            approver: vec![],
            admin: vec!["Console.Admin".into()],
        };
        assert_eq!(m.role_for(&["all-staff", "it-ops"]), Some(Role::Operator));
        assert_eq!(
            m.role_for(&["Console.Admin", "all-staff"]),
            Some(Role::Admin)
        );
        assert_eq!(m.role_for(&["ALL-STAFF"]), None, "values compare exactly");
        assert_eq!(m.role_for(&[]), None);
    }
}
