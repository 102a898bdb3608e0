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
use super::secret::SecretString;
use super::token::{StaticTokens, TokenStore};
use super::{AuthError, Authenticator, Principal, basic};

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
    basic: Arc<BasicPresence>,
}

/// How long the answer to "does any Basic credential exist?" is reused: a 401 flood must not
/// become a query flood, and a credential made by `token create` in another process shows in
/// the challenge within this time.
pub const BASIC_PRESENCE_TTL: Duration = Duration::from_secs(30);

/// Whether any tenant has a live Basic credential, asked of the token store at most once per
/// [`BASIC_PRESENCE_TTL`] (on the injected clock).
struct BasicPresence {
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    last: std::sync::Mutex<Option<(time::OffsetDateTime, bool)>>,
}

impl BasicPresence {
    async fn any(&self) -> bool {
        let now = self.clock.now();
        let cached = *self.last.lock().expect("basic presence");
        if let Some((at, answer)) = cached
            && now - at < BASIC_PRESENCE_TTL
        {
            return answer;
        }
        // A store that cannot answer keeps the previous answer (Bearer alone at first).
        let answer = match self.tokens.has_basic_credentials().await {
            Ok(answer) => answer,
            Err(_) => cached.is_some_and(|(_, a)| a),
        };
        *self.last.lock().expect("basic presence") = Some((now, answer));
        answer
    }
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
        let cache_for = Duration::from_secs(config.token_cache_seconds);
        let entra = config.entra_jwt.as_ref().map(|c| {
            Arc::new(
                EntraJwt::new(c, jwks_for(&c.jwks_url), clock.clone())
                    .cache_verified_for(cache_for),
            )
        });
        let oauth = Arc::new(OAuthServer::new(
            config,
            tokens.clone(),
            clock.clone(),
            &mut jwks_for,
        ));
        let basic = Arc::new(BasicPresence {
            tokens: tokens.clone(),
            clock: clock.clone(),
            last: std::sync::Mutex::new(None),
        });
        Ok(Self {
            basic,
            tokens: StaticTokens::new(tokens, clock)
                .accept_bare_token(config.accept_bare_token)
                .cache_verified_for(cache_for),
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
    /// tokens, which covers static tokens, Entra JWTs and our issued access tokens; and HTTP
    /// Basic for Okta's Basic Auth mode.
    pub fn authentication_schemes(&self) -> serde_json::Value {
        serde_json::json!([{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token: a static token, an access token \
                            from /oauth/token, or an Entra-issued JWT when enabled.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }, {
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": "A username and generated password per tenant (Okta's Basic Auth \
                            mode), from `scim-server token create --basic-username`.",
            "specUri": "https://www.rfc-editor.org/info/rfc7617",
            "primary": false,
        }])
    }

    /// The principal for an HTTP Basic username and password (see [`basic`]).
    pub async fn verify_basic(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Principal, AuthError> {
        let refused = || AuthError::new("invalid Basic credentials");
        match self
            .tokens
            .verify(&basic::lookup_secret(username, password.expose()))
            .await
        {
            Ok(p) if p.id.starts_with(basic::BASIC_ID_PREFIX) => Ok(p),
            Ok(_) => Err(refused()),
            Err(e) if e.is_unavailable() => Err(e),
            Err(e) if e.0 == "token is revoked" => {
                Err(AuthError::new("Basic credentials are revoked"))
            }
            Err(_) => Err(refused()),
        }
    }

    /// How many verified credentials this process holds in its caches (tokens and JWTs).
    pub fn cached_credentials(&self) -> usize {
        self.tokens.cached() + self.entra.as_ref().map_or(0, |e| e.cached())
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
        let result = match basic::credentials(headers)? {
            Some((username, password)) => self.verify_basic(&username, &password).await,
            None => {
                let token = bearer_token(headers, self.accept_bare)?;
                self.verify_token(token).await
            }
        };
        if let Err(err) = &result {
            // The reason only: never the credential.
            tracing::debug!(reason = %err, "authentication failed");
        }
        result
    }

    async fn offers_basic(&self) -> bool {
        self.basic.any().await
    }

    fn forget_credential(&self, id: &str) {
        self.tokens.forget(id);
    }
}
