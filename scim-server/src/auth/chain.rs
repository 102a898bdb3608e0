//! The combined authenticator: every credential kind the configuration enables, behind one
//! [`Authenticator`].
//!
//! The `Authorization` header is read once ([`bearer_token`]: `Bearer` in any case, or the bare
//! token some Okta orgs send). A token shaped like a JWT goes to the Entra validator when Entra
//! JWTs are enabled; anything else is looked up among static tokens, issued access tokens and the
//! `SCIM_TOKEN` environment token.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use http::HeaderMap;

use super::clock::Clock;
use super::config::{AuthConfig, ConfigError};
use super::header::{bearer_token, looks_like_jwt};
use super::jwks::JwksCache;
use super::jwt::EntraJwt;
use super::oauth::{OAuthServer, oauth_router};
use super::token::{StaticTokens, TokenStore};
use super::{AuthError, Authenticator, Principal};

/// Every enabled credential kind, configured from [`AuthConfig`].
///
/// ```no_run
/// # use std::sync::Arc;
/// # use scim_server::auth::{AuthConfig, AuthService, SystemClock, TokenStore, Authenticator};
/// # fn f(tokens: Arc<dyn TokenStore>, config: AuthConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let auth = AuthService::from_config(&config, tokens, Arc::new(SystemClock))?
///     .with_env_token("default", &std::env::var("SCIM_TOKEN").unwrap_or_default());
/// let token_routes = auth.oauth_router(); // merge into the app, outside bearer auth
/// let authenticator: Arc<dyn Authenticator> = Arc::new(auth);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthService {
    tokens: StaticTokens,
    entra: Option<Arc<EntraJwt>>,
    oauth: Arc<OAuthServer>,
    accept_bare: bool,
}

impl fmt::Debug for AuthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("tokens", &self.tokens)
            .field("entra", &self.entra)
            .field("oauth", &self.oauth)
            .field("accept_bare", &self.accept_bare)
            .finish()
    }
}

impl AuthService {
    /// Validates `config` and builds every enabled authenticator. Tokens (static and issued)
    /// are stored in `tokens`; time is read from `clock`. JWKS are fetched lazily, on the first
    /// token that needs them.
    pub fn from_config(
        config: &AuthConfig,
        tokens: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.jwks_timeout_seconds))
            .connect_timeout(Duration::from_secs(config.jwks_timeout_seconds))
            .user_agent(concat!("scim-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError {
                key: "auth".into(),
                message: format!("HTTP client for JWKS: {e}"),
            })?;
        let cooldown = Duration::from_secs(config.jwks_refresh_cooldown_seconds);
        // One cache per JWKS URL, shared by the Entra validator and the federated clients.
        let mut caches: HashMap<String, Arc<JwksCache>> = HashMap::new();
        let mut jwks_for = |url: &str| {
            caches
                .entry(url.to_owned())
                .or_insert_with(|| {
                    Arc::new(JwksCache::new(url, http.clone(), clock.clone(), cooldown))
                })
                .clone()
        };
        let entra = config
            .entra_jwt
            .as_ref()
            .map(|c| Arc::new(EntraJwt::new(c, jwks_for(&c.jwks_url), clock.clone())));
        let oauth = Arc::new(OAuthServer::new(
            config,
            tokens.clone(),
            clock.clone(),
            &mut jwks_for,
        ));
        Ok(Self {
            tokens: StaticTokens::new(tokens, clock)
                .accept_bare_token(config.accept_bare_token)
                .cache_verified_for(std::time::Duration::from_secs(config.token_cache_seconds)),
            entra,
            oauth,
            accept_bare: config.accept_bare_token,
        })
    }

    /// Also accepts the `SCIM_TOKEN` environment token for `tenant` (see
    /// [`StaticTokens::with_env_token`]); an empty secret is ignored.
    pub fn with_env_token(mut self, tenant: impl Into<String>, secret: &str) -> Self {
        self.tokens = self.tokens.with_env_token(tenant, secret);
        self
    }

    /// The router serving `POST /oauth/token`. Mount it without bearer authentication.
    pub fn oauth_router(&self) -> Router {
        oauth_router(self.oauth.clone())
    }

    /// The token endpoint itself (for callers that route it themselves).
    pub fn oauth_server(&self) -> Arc<OAuthServer> {
        self.oauth.clone()
    }

    /// The `authenticationSchemes` of `/ServiceProviderConfig` (RFC 7643 §5): OAuth bearer
    /// tokens, which covers static tokens, Entra JWTs and our issued access tokens.
    pub fn authentication_schemes(&self) -> serde_json::Value {
        serde_json::json!([{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token: a static token, an access token \
                            from /oauth/token, or an Entra-issued JWT when enabled.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }])
    }

    /// The principal for a bearer token taken out of its header.
    pub async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        // First, because an operator-chosen SCIM_TOKEN may contain dots and look like a JWT.
        if let Some(principal) = self.tokens.verify_env_token(token) {
            return Ok(principal);
        }
        match &self.entra {
            Some(entra) if looks_like_jwt(token) => entra.verify(token).await,
            _ => self.tokens.verify(token).await,
        }
    }
}

#[async_trait]
impl Authenticator for AuthService {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = bearer_token(headers, self.accept_bare)?;
        let result = self.verify_token(token).await;
        if let Err(err) = &result {
            // The reason only: never the credential.
            tracing::debug!(reason = %err, "authentication failed");
        }
        result
    }
}
