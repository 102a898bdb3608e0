//! Server administration in the console: the tenants (list, create), the Graph rules in effect
//! (what each rule grants, read-only) and the configuration in effect with every secret
//! redacted.
//!
//! These belong to the whole server, not to one tenant's directory: a tenant list names every
//! customer, the configuration holds every tenant's sources and role mappings. So they need the
//! `admin` role *in the server's default tenant* (the tenant of the first-start sign-in link);
//! an admin of another tenant is refused (403) like a role that may not.
//!
//! Redaction reuses the configuration's own rule: secrets are [`crate::config::SecretString`]s,
//! which serialise as `<redacted>`. The sections other components parse (`[auth]`, `[graph]`,
//! `[console]`, `[governance]`) are shown as their typed configurations serialise (with the
//! environment overrides in effect), not as the raw table; a section that does not parse shows
//! its keys only. Two more rules close the gaps a type cannot: the database URL's password, and
//! any string under a key that names a secret (belt and braces for a field someone adds as a
//! plain `String`).

use super::roles::{Action, Operator, Permit, authorize};
use super::service::{FieldError, log_action, permit, record_action};
use super::{Console, ConsoleError};
use crate::config::Config;
use crate::store::{StoreError, Tenant};
use scim_graph_bridge::rules::Rules;
use serde::Serialize;
use std::path::PathBuf;

/// What the admin pages show about the server, built once at start-up.
#[derive(Debug, Clone)]
pub struct ServerView {
    /// The configuration in effect as TOML, every secret redacted.
    pub config_toml: String,
    /// The Graph rules in effect.
    pub rules: RulesView,
}

/// The Graph bridge's rules as the admin page shows them.
#[derive(Debug, Clone)]
pub enum RulesView {
    /// No `[graph]` section: the bridge is off.
    NoBridge,
    /// `[graph]` without `rules`.
    NoRulesFile,
    /// The rules file, parsed and checked as the bridge reads it.
    Loaded {
        /// Where it was read from.
        path: PathBuf,
        /// Its rules.
        rules: Box<Rules>,
    },
    /// The file could not be read or is invalid (the bridge refuses to start then too).
    Unreadable {
        /// Where it should be.
        path: PathBuf,
        /// Why it could not be read.
        error: String,
    },
}

impl ServerView {
    /// The view of `config` (with the process environment's overrides) and of the rules file it
    /// names.
    pub fn from_config(config: &Config) -> Self {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let rules = match config.graph_config(&env) {
            Ok(None) => RulesView::NoBridge,
            Ok(Some(graph)) => match graph.rules {
                None => RulesView::NoRulesFile,
                Some(path) => match Rules::load(&path) {
                    Ok(rules) => RulesView::Loaded {
                        path,
                        rules: Box::new(rules),
                    },
                    Err(e) => RulesView::Unreadable {
                        path,
                        error: e.to_string(),
                    },
                },
            },
            Err(e) => RulesView::Unreadable {
                path: PathBuf::new(),
                error: e.to_string(),
            },
        };
        let config_toml = toml::to_string_pretty(&redacted_config(config, &env))
            .unwrap_or_else(|e| format!("# the configuration could not be shown: {e}\n"));
        Self { config_toml, rules }
    }
}

/// The marker shown in place of a secret (what [`crate::config::SecretString`] serialises as).
pub const REDACTED: &str = "<redacted>";

/// `config` as a TOML table with every secret replaced by [`REDACTED`]; `env` holds the
/// `SCIM_GRAPH_*` and `SCIM_CONSOLE_*` overrides in effect.
pub fn redacted_config(config: &Config, env: &[(String, String)]) -> toml::Table {
    let mut table = toml::Table::try_from(config).unwrap_or_default();
    let console_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("SCIM_CONSOLE_"))
        .cloned()
        .collect();
    let typed = [
        ("auth", config.auth_config().ok().and_then(|c| as_value(&c))),
        (
            "graph",
            config
                .graph_config(env)
                .ok()
                .flatten()
                .and_then(|c| as_value(&c)),
        ),
        (
            "console",
            crate::console::ConsoleConfig::from_table_and_env(
                config.console.as_ref().map(|t| &t.0),
                &console_env,
            )
            .ok()
            .and_then(|c| as_value(&c)),
        ),
        (
            "governance",
            config
                .governance
                .as_ref()
                .and_then(|_| config.governance_config().ok())
                .and_then(|c| as_value(&c)),
        ),
    ];
    for (key, value) in typed {
        match value {
            Some(v) => {
                table.insert(key.to_string(), v);
            }
            None => {
                if let Some(raw) = table.get_mut(key) {
                    keys_only(raw);
                }
            }
        }
    }
    if let Some(toml::Value::String(url)) = table.get_mut("database_url") {
        *url = redact_url(url);
    }
    redact_secret_keys(&mut table);
    table
}

fn as_value<T: Serialize>(v: &T) -> Option<toml::Value> {
    toml::Value::try_from(v).ok()
}

/// Replaces every value under `v` by `"<set>"`, keeping the keys (as `check-config` shows a
/// section it cannot type).
fn keys_only(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| keys_only(v)),
        toml::Value::Array(a) => a.iter_mut().for_each(keys_only),
        other => *other = toml::Value::String("<set>".into()),
    }
}

/// Whether a key's name says its value is a secret.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "private",
        "credential",
        "api_key",
        "apikey",
        "key_pem",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Every string (or list of strings) under a secret-naming key becomes [`REDACTED`].
fn redact_secret_keys(table: &mut toml::Table) {
    fn hide(v: &mut toml::Value) {
        match v {
            toml::Value::String(s) if s != REDACTED => *s = REDACTED.into(),
            toml::Value::Array(a) => a.iter_mut().for_each(hide),
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| hide(v)),
            _ => {}
        }
    }
    fn walk(v: &mut toml::Value) {
        match v {
            toml::Value::Table(t) => redact_secret_keys(t),
            toml::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    for (key, value) in table.iter_mut() {
        if is_secret_key(key) {
            hide(value);
        } else {
            walk(value);
        }
    }
}

/// A database URL without its password (in the user part or as a `password` parameter).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("redacted"));
            }
            if url.query().is_some() {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if is_secret_key(&k) {
                            REDACTED.to_string()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        // Not a URL: it may still hold credentials somewhere.
        Err(_) if raw.contains('@') || raw.contains("password") => REDACTED.into(),
        Err(_) => raw.to_string(),
    }
}

/// Refuses an admin of another tenant than the server's default one.
fn server_wide(console: &Console, operator: &Operator) -> Result<(), ConsoleError> {
    if operator.tenant == console.default_tenant() {
        Ok(())
    } else {
        Err(ConsoleError::Refused(format!(
            "tenants, the Graph rules and the configuration belong to the whole server: only an \
             admin of the default tenant {:?} sees them (you are signed in to tenant {:?})",
            console.default_tenant(),
            operator.tenant
        )))
    }
}

/// Authorises reading an admin page.
pub fn view(console: &Console, operator: &Operator) -> Result<(), ConsoleError> {
    authorize(operator, Action::ViewAdmin)?;
    server_wide(console, operator)
}

/// The server's tenants, by id.
pub async fn tenants(console: &Console, operator: &Operator) -> Result<Vec<Tenant>, ConsoleError> {
    view(console, operator)?;
    Ok(console.app().store.list_tenants().await?)
}

/// The create-tenant form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct TenantForm {
    /// The tenant's id.
    pub id: String,
    /// Its display name (default: the id).
    pub name: String,
    /// `on` when checked: a Bulk `POST /Users` whose `externalId` exists updates that user.
    pub bulk_upsert: Option<String>,
}

/// Longest tenant id accepted.
pub const MAX_TENANT_ID_LEN: usize = 64;
/// Longest tenant name accepted.
pub const MAX_TENANT_NAME_LEN: usize = 200;

/// Creates a tenant (as `scim-server tenant create` does). A bad id or name, or an id in use,
/// is an error for that field.
pub async fn create_tenant(
    console: &Console,
    operator: &Operator,
    form: &TenantForm,
    request_id: Option<&str>,
) -> Result<Result<Tenant, FieldError>, ConsoleError> {
    let id = form.id.trim();
    let permit: Permit = permit(console, operator, Action::CreateTenant, id, request_id).await?;
    if let Err(e) = server_wide(console, operator) {
        log_action(
            console,
            operator,
            Action::CreateTenant,
            id,
            "refused",
            request_id,
        )
        .await?;
        return Err(e);
    }
    let field = |field: &'static str, message: String| Ok(Err(FieldError { field, message }));
    if id.is_empty()
        || id.len() > MAX_TENANT_ID_LEN
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return field(
            "id",
            format!(
                "give an id of 1 to {MAX_TENANT_ID_LEN} letters, digits, `-`, `_` or `.`, such \
                 as \"contoso\" (it appears in URLs and configuration keys)"
            ),
        );
    }
    let name = match form.name.trim() {
        "" => id,
        n => n,
    };
    if name.chars().count() > MAX_TENANT_NAME_LEN || name.chars().any(char::is_control) {
        return field(
            "name",
            format!("give a name of at most {MAX_TENANT_NAME_LEN} characters, on one line"),
        );
    }
    let tenant = Tenant {
        id: id.to_string(),
        name: name.to_string(),
        bulk_upsert_by_external_id: form.bulk_upsert.is_some(),
        created: console.app().clock.now(),
    };
    match console.app().store.create_tenant(&tenant).await {
        Ok(()) => {}
        Err(StoreError::Uniqueness { .. }) => {
            return field("id", format!("a tenant with the id {id:?} already exists"));
        }
        Err(e) => return Err(e.into()),
    }
    record_action(console, &permit, id, request_id).await?;
    Ok(Ok(tenant))
}

/// The server's view for the admin pages (after [`view`] allowed it).
pub fn server_view<'a>(
    console: &'a Console,
    operator: &Operator,
) -> Result<&'a ServerView, ConsoleError> {
    view(console, operator)?;
    console.server_view().ok_or_else(|| {
        ConsoleError::NotFound(
            "this console was started without the server's configuration (an embedding \
             application's console): there is nothing to show"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_lose_their_passwords() {
        for (raw, shown) in [
            (
                "postgres://scim:hunter2@db.example/scim",
                "postgres://scim:redacted@db.example/scim",
            ),
            (
                "postgres://scim@db.example/scim?sslmode=require&password=hunter2",
                "postgres://scim@db.example/scim?sslmode=require&password=%3Credacted%3E",
            ),
            ("sqlite://scim.db", "sqlite://scim.db"),
            ("not a url with password=x", REDACTED),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn secret_keys_are_hidden_at_any_depth() {
        let mut t: toml::Table = toml::from_str(
            r#"
            listen = "x"
            [a]
            client_secret = "s1"
            token_cache_seconds = 5
            [[a.b]]
            secrets = ["s2", "s3"]
            smtp_password = "s4"
            name = "kept"
            "#,
        )
        .unwrap();
        redact_secret_keys(&mut t);
        let text = toml::to_string(&t).unwrap();
        for s in ["s1", "s2", "s3", "s4"] {
            assert!(!text.contains(&format!("\"{s}\"")), "{text}");
        }
        assert!(text.contains("kept") && text.contains("token_cache_seconds = 5"));
    }
}
