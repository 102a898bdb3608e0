//! Authentication: every credential belongs to exactly one tenant.
//!
//! Supported credentials: static bearer tokens (stored as hashes, constant-time compared), HTTP
//! Basic usernames and generated passwords (Okta's Basic mode, stored the same way),
//! Entra-issued JWTs (JWKS by `kid`), access tokens issued by our own OAuth 2.0 token endpoint
//! (client credentials, and the RFC 7523 assertion grant for workload identity federation).
//!
//! Map of the module:
//! - [`header`]: the `Authorization` header (`Bearer` in any case, or a bare token);
//! - [`token`]: static tokens and issued access tokens in the store, the `SCIM_TOKEN`
//!   environment token, and the `scim-server token` helpers;
//! - [`jwt`] and [`jwks`]: RS256 verification with keys cached by `kid`; the Entra validator;
//! - [`oauth`]: `POST /oauth/token`;
//! - [`basic`]: Okta's Basic mode (a per-tenant username and a generated password);
//! - [`config`]: the `[auth]` section;
//! - [`chain`]: [`AuthService`], all of the above behind one [`Authenticator`];
//! - [`middleware`]: an axum middleware putting the [`Principal`] into request extensions;
//! - [`secret`] and [`clock`]: hashing and redaction of secrets; time as a parameter.
//!
//! Invariants: no secret is stored or logged (only SHA-256 hashes are stored); every hash
//! comparison is constant-time; only RS256 JWTs are accepted; every [`Principal`] names the one
//! tenant its credential belongs to.

use axum::response::{IntoResponse, Response};
use http::HeaderMap;

pub mod basic;
pub mod chain;
pub mod clock;
pub mod config;
pub mod header;
pub mod jwks;
pub mod jwt;
pub mod middleware;
pub mod oauth;
pub mod secret;
pub mod token;

pub use chain::AuthService;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AuthConfig, ClientSecretConfig, ConfigError, EntraJwtConfig, FederatedClientConfig,
    OAuthClientConfig,
};
pub use oauth::{OAuthServer, oauth_router};
pub use secret::SecretString;
pub use token::{
    DEFAULT_TOKEN_CACHE_SECONDS, StaticTokens, TokenStore, create_token, list_access_tokens,
    list_tokens, revoke_token, token_kind, token_store,
};

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A static bearer token from `scim-server token create` or `SCIM_TOKEN`.
    StaticToken,
    /// An Entra-issued JWT ("blank secret token" mode).
    EntraJwt,
    /// An access token issued by `/oauth/token`.
    OAuthAccessToken,
}

/// The authenticated caller: the tenant every data access is keyed by.
///
/// A capability (STYLE.md, lldap's habit): its fields are private and only this crate's
/// authenticators (static tokens, Entra JWTs, OAuth access tokens) and its own internal actors
/// (the console after its role check, the HR intake worker for the job's submitter) make one, so
/// holding a `Principal` means a credential was checked. Tests build one through
/// `crate::test_support` (feature `test-support`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    tenant: String,
    id: String,
    read_only: bool,
    kind: CredentialKind,
}

impl Principal {
    /// A caller authenticated as `id` of `tenant` (crate-private: see the type's doc).
    pub(crate) fn new(
        tenant: impl Into<String>,
        id: impl Into<String>,
        read_only: bool,
        kind: CredentialKind,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            id: id.into(),
            read_only,
            kind,
        }
    }

    /// The tenant the credential belongs to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// A stable, non-secret name for the caller (token id, JWT `sub`/`appid`, OAuth client id),
    /// recorded in the change log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the credential is read-only (writes answer 403).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// How the caller authenticated.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }
}

/// Why authentication failed. It answers 401 with `WWW-Authenticate: Bearer` (and `Basic`, added
/// by [`challenge_basic_too`], when Basic credentials exist) and a SCIM error
/// body; the detail is safe to show (it never echoes the credential). The one exception: when
/// the credential could not be checked at all (database or JWKS endpoint unreachable,
/// [`AuthError::is_unavailable`]), [`AuthError::to_response`] answers 503, so an identity provider
/// retries instead of treating a healthy credential as revoked (Entra quarantines on 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// The start of the detail of an [`AuthError::unavailable`].
pub const UNAVAILABLE_PREFIX: &str = "authentication temporarily unavailable";

impl AuthError {
    /// An error with a detail that is safe to show the client.
    pub fn new(detail: impl Into<String>) -> Self {
        Self(detail.into())
    }

    /// The credential could not be checked (a dependency failed); `reason` is safe to show.
    pub fn unavailable(reason: &str) -> Self {
        Self(format!("{UNAVAILABLE_PREFIX}: {reason}"))
    }

    /// Whether the credential could not be checked, rather than being refused.
    pub fn is_unavailable(&self) -> bool {
        self.0.starts_with(UNAVAILABLE_PREFIX)
    }

    /// The HTTP status: 401, or 503 when [unavailable](Self::is_unavailable).
    pub fn status(&self) -> http::StatusCode {
        if self.is_unavailable() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::UNAUTHORIZED
        }
    }

    /// The response: 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3) and a SCIM error body
    /// (RFC 7644 §3.12) carrying the detail; or 503 with `Retry-After` when unavailable. Built by
    /// the HTTP layer's one error path ([`crate::http::error::ApiError`]).
    pub fn to_response(&self) -> Response {
        crate::http::error::ApiError::from(self.clone()).into_response()
    }
}

/// A 401 with `WWW-Authenticate: Bearer` and a SCIM error body with `detail`.
pub fn unauthorized_response(detail: &str) -> Response {
    AuthError::new(detail).to_response()
}

/// Authenticates requests.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The principal for a request's headers.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError>;

    /// Whether a 401 offers the `Basic` challenge next to `Bearer`: true while some tenant has a
    /// live HTTP Basic credential (Okta's Basic Auth mode). Authenticators without Basic
    /// credentials answer false.
    async fn offers_basic(&self) -> bool {
        false
    }
}

/// The `Basic` challenge (RFC 7617 §2: `realm` is required; `charset="UTF-8"` says how the
/// username and password are encoded).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"scim-server\", charset=\"UTF-8\"";

/// Adds the `Basic` challenge to a 401 when `authenticator` offers it: a second
/// `WWW-Authenticate` field after `Bearer` (RFC 7235 §4.1: a server may send several challenges,
/// in one field or several), so a client that reads only the first still sees `Bearer`.
pub async fn challenge_basic_too(authenticator: &dyn Authenticator, response: &mut Response) {
    if response.status() == http::StatusCode::UNAUTHORIZED && authenticator.offers_basic().await {
        response.headers_mut().append(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(BASIC_CHALLENGE),
        );
    }
}
