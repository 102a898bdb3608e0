//! `[auth]` configuration: which credentials the server accepts, and for which tenant.
//!
//! ```toml
//! [auth]
//! accept_bare_token = true
//! token_cache_seconds = 5                # how long a verified credential is reused without a check
//!
//! [auth.entra_jwt]                      # Entra "blank secret token" mode (testing only)
//! tenants = { "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb" = "default" }
//!
//! [[auth.oauth_clients]]                # client credentials with a secret
//! client_id = "entra-prod"
//! tenant = "default"
//! token_lifetime_seconds = 3600
//! secrets = [
//!   { sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", expires = "2027-11-01T00:00:00Z" },
//! ]
//!
//! [[auth.federated]]                    # RFC 7523 workload identity federation
//! client_id = "entra-wif"
//! tenant = "default"
//! issuer = "https://login.microsoftonline.com/aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb/v2.0"
//! subject = "00000000-1111-2222-3333-444444444444"
//! audience = "api://my-scim-app"
//! entra_tenant_id = "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb"
//! jwks_url = "https://login.microsoftonline.com/aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb/discovery/v2.0/keys"
//! ```
//!
//! Static tokens need no configuration (they are managed with `scim-server token`), nor does the
//! `SCIM_TOKEN` environment token (see [`super::StaticTokens::with_env_token`]).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::secret::{SecretString, is_sha256_hex};

/// The audience Entra puts in the JWTs it issues for non-gallery applications.
pub const DEFAULT_ENTRA_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";
/// Entra's multi-tenant signing keys.
pub const DEFAULT_ENTRA_JWKS_URL: &str = "https://login.microsoftonline.com/common/discovery/keys";
/// Shortest access-token lifetime (Entra gallery requirement: 60 minutes to 6 hours).
pub const MIN_TOKEN_LIFETIME_SECONDS: u64 = 3600;
/// Longest access-token lifetime.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 21600;
/// Largest accepted clock skew for `exp`/`nbf`.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The workspace's one configuration error, naming the key at fault.
pub use scim_graph_bridge::config::ConfigError;

/// The `[auth]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accept `Authorization: <token>` with no scheme, as some Okta orgs send it (default true).
    pub accept_bare_token: bool,
    /// How long a verified credential (static or issued token, Basic credential, Entra JWT) is
    /// trusted before it is checked again (default 5): the most a revocation by another replica
    /// or `token revoke` takes to apply (a revocation through this process's console applies at
    /// once). A JWT is never trusted past its `exp` plus leeway. 0 checks every request.
    pub token_cache_seconds: u64,
    /// Entra-issued JWTs ("blank secret token" mode). Off when absent.
    pub entra_jwt: Option<EntraJwtConfig>,
    /// Clients of `POST /oauth/token` authenticating with a client secret.
    pub oauth_clients: Vec<OAuthClientConfig>,
    /// Clients of `POST /oauth/token` authenticating with a signed assertion (RFC 7523; Entra
    /// workload identity federation).
    pub federated: Vec<FederatedClientConfig>,
    /// Least time between two JWKS fetches triggered by an unknown `kid` (default 30).
    pub jwks_refresh_cooldown_seconds: u64,
    /// Timeout of a JWKS fetch (default 10).
    pub jwks_timeout_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            accept_bare_token: true,
            token_cache_seconds: super::token::DEFAULT_TOKEN_CACHE_SECONDS,
            entra_jwt: None,
            oauth_clients: Vec::new(),
            federated: Vec::new(),
            jwks_refresh_cooldown_seconds: 30,
            jwks_timeout_seconds: 10,
        }
    }
}

/// `[auth.entra_jwt]`: JWTs Entra issues itself when the application's secret token is left
/// blank. Microsoft documents this mode as for testing; the allow-list of tenants and the
/// audience are the only binding, since every application of a tenant gets the same issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraJwtConfig {
    /// Entra tenant id (GUID) → our tenant id. A token's `iss` must be exactly
    /// `https://sts.windows.net/{guid}/` for one of these GUIDs, which selects our tenant.
    pub tenants: BTreeMap<String, String>,
    /// The required `aud` (default `8adf8e6e-67b2-4cf2-a259-e3dc5476c621`, Entra's audience for
    /// non-gallery applications).
    #[serde(default = "default_entra_audience")]
    pub audience: String,
    /// Where the signing keys are (default `https://login.microsoftonline.com/common/discovery/keys`).
    #[serde(default = "default_entra_jwks_url")]
    pub jwks_url: String,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Whether these callers are read-only (default false).
    #[serde(default)]
    pub read_only: bool,
}

impl EntraJwtConfig {
    /// A configuration with the defaults and one tenant mapping.
    pub fn new(entra_tenant_id: impl Into<String>, tenant: impl Into<String>) -> Self {
        Self {
            tenants: BTreeMap::from([(entra_tenant_id.into(), tenant.into())]),
            audience: default_entra_audience(),
            jwks_url: default_entra_jwks_url(),
            leeway_seconds: default_leeway(),
            read_only: false,
        }
    }
}

/// One `[[auth.oauth_clients]]` entry: a client of `POST /oauth/token` with
/// `grant_type=client_credentials` and a client secret (in the body or HTTP Basic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientConfig {
    /// The client identifier given to the identity provider.
    pub client_id: String,
    /// Our tenant the issued tokens belong to.
    pub tenant: String,
    /// The accepted secrets; several at once during a rotation.
    pub secrets: Vec<ClientSecretConfig>,
    /// Lifetime of issued access tokens in seconds, 3600 to 21600 (default 3600).
    #[serde(default = "default_lifetime")]
    pub token_lifetime_seconds: u64,
    /// Whether issued tokens are read-only (default false).
    #[serde(default)]
    pub read_only: bool,
}

/// One accepted client secret: its hash (preferred) or its value, and an optional expiry after
/// which it no longer obtains tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecretConfig {
    /// Lowercase hex SHA-256 of the secret (`scim-server` prints it with the new secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The secret itself (for development or when injected from the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretString>,
    /// When the secret stops working (RFC 3339 string), if ever.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
}

impl ClientSecretConfig {
    /// A secret given by its hash, without expiry.
    pub fn from_hash(sha256: impl Into<String>) -> Self {
        Self {
            sha256: Some(sha256.into()),
            value: None,
            expires: None,
        }
    }

    /// The hex SHA-256 this entry stands for (lowercase).
    pub fn hash(&self) -> Option<String> {
        match (&self.sha256, &self.value) {
            (Some(h), _) => Some(h.to_ascii_lowercase()),
            (None, Some(v)) => Some(super::secret::hash_secret(v.expose())),
            (None, None) => None,
        }
    }
}

/// One `[[auth.federated]]` entry: a client of `POST /oauth/token` that authenticates with a
/// JWT assertion (RFC 7523), as Entra does with workload identity federation. Every listed
/// claim must match exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedClientConfig {
    /// The client identifier (`client_id`) the identity provider sends.
    pub client_id: String,
    /// Our tenant the issued tokens belong to.
    pub tenant: String,
    /// The assertion's `iss` (Entra: `https://login.microsoftonline.com/{tid}/v2.0`).
    pub issuer: String,
    /// The assertion's `sub` (Entra: the provisioning service's workload identity object id).
    pub subject: String,
    /// The assertion's `aud` (e.g. `api://{app id}`, or a bare GUID).
    pub audience: String,
    /// The assertion's `tid` claim, when the issuer is Entra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra_tenant_id: Option<String>,
    /// Where the issuer's signing keys are (Entra:
    /// `https://login.microsoftonline.com/{tid}/discovery/v2.0/keys`).
    pub jwks_url: String,
    /// Lifetime of issued access tokens in seconds, 3600 to 21600 (default 3600); never beyond
    /// the assertion's own `exp`.
    #[serde(default = "default_lifetime")]
    pub token_lifetime_seconds: u64,
    /// Clock skew tolerated on `nbf`/`iat`, in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Whether issued tokens are read-only (default false).
    #[serde(default)]
    pub read_only: bool,
}

fn default_entra_audience() -> String {
    DEFAULT_ENTRA_AUDIENCE.to_owned()
}
fn default_entra_jwks_url() -> String {
    DEFAULT_ENTRA_JWKS_URL.to_owned()
}
fn default_leeway() -> u64 {
    60
}
fn default_lifetime() -> u64 {
    MIN_TOKEN_LIFETIME_SECONDS
}

/// Whether `s` has the shape of a GUID (`8-4-4-4-12` hex digits).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(ConfigError::new(key, "must be an http(s) URL")),
    }
}

fn check_nonempty(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::new(key, "must not be empty"))
    } else {
        Ok(())
    }
}

fn check_lifetime(key: &str, value: u64) -> Result<(), ConfigError> {
    if (MIN_TOKEN_LIFETIME_SECONDS..=MAX_TOKEN_LIFETIME_SECONDS).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "must be between {MIN_TOKEN_LIFETIME_SECONDS} and {MAX_TOKEN_LIFETIME_SECONDS} seconds (1 to 6 hours)"
            ),
        ))
    }
}

fn check_leeway(key: &str, value: u64) -> Result<(), ConfigError> {
    if value <= MAX_LEEWAY_SECONDS {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be at most {MAX_LEEWAY_SECONDS} seconds"),
        ))
    }
}

impl AuthConfig {
    /// Checks the configuration; the error names the first key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.jwks_refresh_cooldown_seconds == 0 || self.jwks_refresh_cooldown_seconds > 3600 {
            return Err(ConfigError::new(
                "auth.jwks_refresh_cooldown_seconds",
                "must be between 1 and 3600",
            ));
        }
        if self.jwks_timeout_seconds == 0 || self.jwks_timeout_seconds > 60 {
            return Err(ConfigError::new(
                "auth.jwks_timeout_seconds",
                "must be between 1 and 60",
            ));
        }
        if let Some(entra) = &self.entra_jwt {
            if entra.tenants.is_empty() {
                return Err(ConfigError::new(
                    "auth.entra_jwt.tenants",
                    "must list at least one Entra tenant id",
                ));
            }
            let mut seen = HashSet::new();
            for (guid, tenant) in &entra.tenants {
                let key = format!("auth.entra_jwt.tenants.{guid:?}");
                if !is_guid(guid) {
                    return Err(ConfigError::new(key, "must be an Entra tenant id (a GUID)"));
                }
                if !seen.insert(guid.to_ascii_lowercase()) {
                    return Err(ConfigError::new(key, "listed twice"));
                }
                check_nonempty(&key, tenant)?;
            }
            check_nonempty("auth.entra_jwt.audience", &entra.audience)?;
            check_url("auth.entra_jwt.jwks_url", &entra.jwks_url)?;
            check_leeway("auth.entra_jwt.leeway_seconds", entra.leeway_seconds)?;
        }
        let mut ids = HashSet::new();
        for (i, client) in self.oauth_clients.iter().enumerate() {
            let key = |field: &str| format!("auth.oauth_clients[{i}].{field}");
            check_nonempty(&key("client_id"), &client.client_id)?;
            if !ids.insert(client.client_id.as_str()) {
                return Err(ConfigError::new(key("client_id"), "listed twice"));
            }
            check_nonempty(&key("tenant"), &client.tenant)?;
            if client.secrets.is_empty() {
                return Err(ConfigError::new(
                    key("secrets"),
                    "must list at least one secret",
                ));
            }
            for (j, secret) in client.secrets.iter().enumerate() {
                let key = format!("auth.oauth_clients[{i}].secrets[{j}]");
                match (&secret.sha256, &secret.value) {
                    (Some(h), None) if is_sha256_hex(h) => {}
                    (Some(_), None) => {
                        return Err(ConfigError::new(
                            format!("{key}.sha256"),
                            "must be 64 hex digits (a SHA-256)",
                        ));
                    }
                    (None, Some(v)) if v.expose().len() >= 16 => {}
                    (None, Some(_)) => {
                        return Err(ConfigError::new(
                            format!("{key}.value"),
                            "must be at least 16 characters",
                        ));
                    }
                    _ => {
                        return Err(ConfigError::new(
                            key,
                            "must have exactly one of `sha256` and `value`",
                        ));
                    }
                }
            }
            check_lifetime(
                &key("token_lifetime_seconds"),
                client.token_lifetime_seconds,
            )?;
        }
        for (i, fed) in self.federated.iter().enumerate() {
            let key = |field: &str| format!("auth.federated[{i}].{field}");
            check_nonempty(&key("client_id"), &fed.client_id)?;
            check_nonempty(&key("tenant"), &fed.tenant)?;
            check_nonempty(&key("issuer"), &fed.issuer)?;
            check_nonempty(&key("subject"), &fed.subject)?;
            check_nonempty(&key("audience"), &fed.audience)?;
            if let Some(tid) = &fed.entra_tenant_id {
                check_nonempty(&key("entra_tenant_id"), tid)?;
            }
            check_url(&key("jwks_url"), &fed.jwks_url)?;
            check_lifetime(&key("token_lifetime_seconds"), fed.token_lifetime_seconds)?;
            check_leeway(&key("leeway_seconds"), fed.leeway_seconds)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AuthConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn empty_section_is_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, AuthConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn full_example_parses_and_validates() {
        let c = parse(
            r#"
            accept_bare_token = false
            [entra_jwt]
            tenants = { "AAAAAAAA-0000-1111-2222-bbbbbbbbbbbb" = "default" }
            [[oauth_clients]]
            client_id = "entra"
            tenant = "default"
            token_lifetime_seconds = 7200
            secrets = [
              { sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", expires = "2027-11-01T00:00:00Z" },
              { value = "0123456789abcdef-plain" },
            ]
            [[federated]]
            client_id = "wif"
            tenant = "default"
            issuer = "https://login.microsoftonline.com/t/v2.0"
            subject = "s"
            audience = "api://a"
            entra_tenant_id = "t"
            jwks_url = "https://login.microsoftonline.com/t/discovery/v2.0/keys"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let entra = c.entra_jwt.as_ref().unwrap();
        assert_eq!(entra.audience, DEFAULT_ENTRA_AUDIENCE);
        assert_eq!(entra.jwks_url, DEFAULT_ENTRA_JWKS_URL);
        assert_eq!(entra.leeway_seconds, 60);
        assert_eq!(c.oauth_clients[0].secrets.len(), 2);
        assert!(c.oauth_clients[0].secrets[0].expires.is_some());
        assert_eq!(c.federated[0].token_lifetime_seconds, 3600);
        // Secrets never show in Debug or serialized output.
        assert!(!format!("{c:?}").contains("0123456789abcdef-plain"));
        assert!(
            !serde_json::to_string(&c)
                .unwrap()
                .contains("0123456789abcdef-plain")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("bogus = 1").is_err());
        assert!(parse("[entra_jwt]\ntenants = {}\nbogus = 1").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let err = |s: &str| parse(s).unwrap().validate().unwrap_err().key;
        assert_eq!(
            err(
                "[[oauth_clients]]\nclient_id='c'\ntenant='t'\ntoken_lifetime_seconds=60\nsecrets=[{value='0123456789abcdef'}]"
            ),
            "auth.oauth_clients[0].token_lifetime_seconds"
        );
        assert_eq!(
            err(
                "[[oauth_clients]]\nclient_id='c'\ntenant='t'\ntoken_lifetime_seconds=21601\nsecrets=[{value='0123456789abcdef'}]"
            ),
            "auth.oauth_clients[0].token_lifetime_seconds"
        );
        assert_eq!(
            err("[[oauth_clients]]\nclient_id='c'\ntenant='t'\nsecrets=[{sha256='abc'}]"),
            "auth.oauth_clients[0].secrets[0].sha256"
        );
        assert_eq!(
            err("[[oauth_clients]]\nclient_id='c'\ntenant='t'\nsecrets=[{}]"),
            "auth.oauth_clients[0].secrets[0]"
        );
        assert_eq!(
            err("[[oauth_clients]]\nclient_id='c'\ntenant='t'\nsecrets=[]"),
            "auth.oauth_clients[0].secrets"
        );
        assert_eq!(
            err("[entra_jwt]\ntenants = { \"not-a-guid\" = \"t\" }"),
            "auth.entra_jwt.tenants.\"not-a-guid\""
        );
        assert_eq!(err("[entra_jwt]\ntenants = {}"), "auth.entra_jwt.tenants");
        assert_eq!(
            err(
                "[entra_jwt]\ntenants = { \"aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb\" = \"t\" }\njwks_url = 'ftp://x'"
            ),
            "auth.entra_jwt.jwks_url"
        );
        assert_eq!(
            err(
                "[[federated]]\nclient_id='c'\ntenant='t'\nissuer='i'\nsubject=''\naudience='a'\njwks_url='https://k'"
            ),
            "auth.federated[0].subject"
        );
        assert_eq!(
            err("jwks_refresh_cooldown_seconds = 0"),
            "auth.jwks_refresh_cooldown_seconds"
        );
    }

    #[test]
    fn guids() {
        assert!(is_guid("8adf8e6e-67b2-4cf2-a259-e3dc5476c621"));
        assert!(!is_guid("8adf8e6e67b24cf2a259e3dc5476c621"));
        assert!(!is_guid("8adf8e6e-67b2-4cf2-a259-e3dc5476c62g"));
    }
}
