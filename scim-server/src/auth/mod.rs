//! Authentication: every credential belongs to exactly one tenant.
//!
//! Supported credentials: static bearer tokens (stored as hashes, constant-time compared),
//! Entra-issued JWTs (JWKS by `kid`), access tokens issued by our own OAuth 2.0 token endpoint
//! (client credentials, and the RFC 7523 assertion grant for workload identity federation).
//!
//! (contract; the auth helper implements the submodules)

use http::HeaderMap;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant the credential belongs to.
    pub tenant: String,
    /// A stable, non-secret name for the caller (token id, JWT `sub`/`appid`, OAuth client id),
    /// recorded in the change log.
    pub id: String,
    /// Read-only credentials may not write (403).
    pub read_only: bool,
    /// How the caller authenticated.
    pub kind: CredentialKind,
}

/// Why authentication failed. Every variant answers 401 with `WWW-Authenticate: Bearer` and a
/// SCIM error body; the detail is safe to show (it never echoes the credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Authenticates requests.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The principal for a request's headers.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError>;
}
