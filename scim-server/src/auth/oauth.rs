//! Our OAuth 2.0 token endpoint, `POST /oauth/token` (RFC 6749 §4.4, RFC 7523).
//!
//! Grants:
//! - `grant_type=client_credentials` with a client secret, in the body (`client_id` +
//!   `client_secret`) or with HTTP Basic (RFC 6749 §2.3.1). Several secrets may be active at
//!   once (rotation); each may expire.
//! - `grant_type=client_credentials` with `client_assertion_type=
//!   urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and `client_assertion=<JWT>`
//!   (RFC 7523 §2.2; what Entra sends with workload identity federation).
//! - `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with `assertion=<JWT>` (RFC 7523
//!   §2.1).
//!
//! An assertion's `iss`, `sub`, `aud` and `tid` must equal the configured values, its RS256
//! signature must verify with a key of the configured JWKS, and the token issued for it never
//! outlives it.
//!
//! Issued access tokens are opaque random secrets stored as [`TokenRecord`]s with an expiry
//! (their ids start with `oat_`, their label is the client id), so every replica over the same
//! database accepts them and nothing lives in process memory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::clock::Clock;
use super::config::{AuthConfig, FederatedClientConfig, OAuthClientConfig};
use super::jwks::JwksCache;
use super::jwt::{audience_matches, check_times, string_claim, verify_rs256};
use super::secret::{SecretString, digest_matches_hex, generate_secret, hash_secret, sha256};
use super::token::{ACCESS_TOKEN_ID_PREFIX, ACCESS_TOKEN_SECRET_PREFIX, TokenStore};
use super::{AuthError, CredentialKind};
use crate::store::TokenRecord;

/// The path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// RFC 7523 §2.2 client assertion type.
pub const CLIENT_ASSERTION_TYPE_JWT: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 7523 §2.1 grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Largest token request body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// An RFC 6749 §5.2 error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error` code (`invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type`, `server_error`).
    pub error: &'static str,
    /// The `error_description` (safe to show; never contains a credential).
    pub description: String,
    /// Whether the client authenticated with HTTP Basic (adds `WWW-Authenticate: Basic`).
    pub basic_challenge: bool,
}

impl OAuthError {
    fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
            basic_challenge: false,
        }
    }
    fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
            basic_challenge: basic,
        }
    }
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: description.into(),
            basic_challenge: false,
        }
    }
    fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description: "supported grant types: client_credentials, \
                          urn:ietf:params:oauth:grant-type:jwt-bearer"
                .into(),
            basic_challenge: false,
        }
    }
    /// A refused assertion: `invalid_grant` for the RFC 7523 §2.1 grant, `invalid_client` when
    /// it was client authentication (§2.2); 503 when its keys could not be fetched.
    fn from_assertion(err: AuthError, as_grant: bool) -> Self {
        if err.is_unavailable() {
            return Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "temporarily_unavailable",
                description: err.0,
                basic_challenge: false,
            };
        }
        if as_grant {
            Self::invalid_grant(err.0)
        } else {
            Self::invalid_client(err.0, false)
        }
    }
    fn server_error() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the token could not be issued".into(),
            basic_challenge: false,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if self.basic_challenge {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scim\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The access token (shown to the client once; only its hash is stored).
    pub access_token: SecretString,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The stored record.
    pub record: TokenRecord,
}

impl IntoResponse for IssuedToken {
    fn into_response(self) -> Response {
        let body = json!({
            "access_token": self.access_token.expose(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        });
        let mut response = (StatusCode::OK, axum::Json(body)).into_response();
        no_store(response.headers_mut());
        response
    }
}

struct SecretClient {
    client_id: String,
    tenant: String,
    secrets: Vec<(String, Option<OffsetDateTime>)>,
    lifetime: time::Duration,
    read_only: bool,
}

struct FederatedClient {
    config: FederatedClientConfig,
    jwks: Arc<JwksCache>,
}

/// The token endpoint's state: the configured clients and where issued tokens are stored.
pub struct OAuthServer {
    clients: HashMap<String, SecretClient>,
    federated: Vec<FederatedClient>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthServer")
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .field(
                "federated",
                &self
                    .federated
                    .iter()
                    .map(|c| &c.config.client_id)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn lifetime(seconds: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

impl OAuthServer {
    /// The token endpoint for a validated `config`. `jwks_for` gives the (shared) key cache of a
    /// JWKS URL.
    pub fn new(
        config: &AuthConfig,
        tokens: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        mut jwks_for: impl FnMut(&str) -> Arc<JwksCache>,
    ) -> Self {
        let clients = config
            .oauth_clients
            .iter()
            .map(|c: &OAuthClientConfig| {
                let secrets = c
                    .secrets
                    .iter()
                    .filter_map(|s| Some((s.hash()?, s.expires)))
                    .collect();
                (
                    c.client_id.clone(),
                    SecretClient {
                        client_id: c.client_id.clone(),
                        tenant: c.tenant.clone(),
                        secrets,
                        lifetime: lifetime(c.token_lifetime_seconds),
                        read_only: c.read_only,
                    },
                )
            })
            .collect();
        let federated = config
            .federated
            .iter()
            .map(|c| FederatedClient {
                config: c.clone(),
                jwks: jwks_for(&c.jwks_url),
            })
            .collect();
        Self {
            clients,
            federated,
            tokens,
            clock,
        }
    }

    /// Handles one token request: `headers` (for HTTP Basic) and the form-encoded body.
    pub async fn token_request(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<IssuedToken, OAuthError> {
        let form_ok = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_ok {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let params = parse_form(body)?;
        let basic = basic_credentials(headers)?;
        let get = |name: &str| params.get(name).map(String::as_str);
        let grant_type = get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        match grant_type {
            "client_credentials" => {
                if get("client_assertion").is_some() || get("client_assertion_type").is_some() {
                    if basic.is_some() || get("client_secret").is_some() {
                        return Err(OAuthError::invalid_request(
                            "more than one client authentication method",
                        ));
                    }
                    if get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE_JWT) {
                        return Err(OAuthError::invalid_client(
                            "unsupported client_assertion_type",
                            false,
                        ));
                    }
                    let assertion = get("client_assertion").ok_or_else(|| {
                        OAuthError::invalid_request("client_assertion is required")
                    })?;
                    self.assertion_grant(get("client_id"), assertion)
                        .await
                        .map_err(|e| OAuthError::from_assertion(e, false))?
                        .issue(self)
                        .await
                } else {
                    self.secret_grant(basic, get("client_id"), get("client_secret"))?
                        .issue(self)
                        .await
                }
            }
            JWT_BEARER_GRANT => {
                let assertion = get("assertion")
                    .ok_or_else(|| OAuthError::invalid_request("assertion is required"))?;
                self.assertion_grant(get("client_id"), assertion)
                    .await
                    .map_err(|e| OAuthError::from_assertion(e, true))?
                    .issue(self)
                    .await
            }
            _ => Err(OAuthError::unsupported_grant_type()),
        }
    }

    fn secret_grant(
        &self,
        basic: Option<(String, String)>,
        body_id: Option<&str>,
        body_secret: Option<&str>,
    ) -> Result<Grant, OAuthError> {
        let used_basic = basic.is_some();
        let (client_id, secret) = match (basic, body_id, body_secret) {
            (Some(_), _, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "more than one client authentication method",
                ));
            }
            (Some((id, _)), Some(body_id), None) if id != body_id => {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the Basic credentials",
                ));
            }
            (Some((id, secret)), _, None) => (id, secret),
            (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            (None, _, _) => {
                return Err(OAuthError::invalid_client(
                    "client authentication is required",
                    false,
                ));
            }
        };
        let fail = |description: &str| OAuthError::invalid_client(description, used_basic);
        let client = self
            .clients
            .get(&client_id)
            .ok_or_else(|| fail("client authentication failed"))?;
        let digest = sha256(&secret);
        let now = self.clock.now();
        // Compare with every configured secret (no early exit), then judge expiry.
        let mut matched = None;
        for (hash, expires) in &client.secrets {
            if digest_matches_hex(&digest, hash) {
                matched = Some(*expires);
            }
        }
        match matched {
            None => {
                tracing::info!(client_id = %client.client_id, "token request with a wrong client secret");
                Err(fail("client authentication failed"))
            }
            Some(Some(expires)) if now >= expires => {
                tracing::warn!(client_id = %client.client_id, "token request with an expired client secret");
                Err(fail("client secret expired"))
            }
            Some(_) => Ok(Grant {
                client_id: client.client_id.clone(),
                tenant: client.tenant.clone(),
                read_only: client.read_only,
                expires: now + client.lifetime,
                replay_key: None,
            }),
        }
    }

    /// Verifies an RFC 7523 assertion against the federated clients (those with `client_id`
    /// when given, else those whose issuer is the assertion's).
    async fn assertion_grant(
        &self,
        client_id: Option<&str>,
        assertion: &str,
    ) -> Result<Grant, AuthError> {
        let unverified_iss = unverified_claim(assertion, "iss");
        let candidates: Vec<&FederatedClient> = self
            .federated
            .iter()
            .filter(|c| match client_id {
                Some(id) => c.config.client_id == id,
                None => Some(c.config.issuer.as_str()) == unverified_iss.as_deref(),
            })
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::new(match client_id {
                Some(_) => "client authentication failed",
                None => "assertion issuer not accepted",
            }));
        }
        let now = self.clock.now();
        let mut first_error = None;
        for candidate in candidates {
            match verify_assertion(candidate, assertion, now).await {
                Ok(grant) => return Ok(grant),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        let err = first_error.unwrap_or_else(|| AuthError::new("assertion not accepted"));
        tracing::info!(client_id = ?client_id, reason = %err, "assertion refused");
        Err(err)
    }
}

async fn verify_assertion(
    client: &FederatedClient,
    assertion: &str,
    now: OffsetDateTime,
) -> Result<Grant, AuthError> {
    let c = &client.config;
    let claims = verify_rs256(assertion, &client.jwks, "assertion").await?;
    if string_claim(&claims, "iss") != Some(c.issuer.as_str()) {
        return Err(AuthError::new("assertion issuer not accepted"));
    }
    if string_claim(&claims, "sub") != Some(c.subject.as_str()) {
        return Err(AuthError::new("assertion subject not accepted"));
    }
    if !audience_matches(&claims, &c.audience) {
        return Err(AuthError::new("assertion audience not accepted"));
    }
    if let Some(tid) = &c.entra_tenant_id
        && string_claim(&claims, "tid").map(str::to_ascii_lowercase)
            != Some(tid.to_ascii_lowercase())
    {
        return Err(AuthError::new("assertion tenant not accepted"));
    }
    let exp = check_times(&claims, now, c.leeway_seconds, "assertion")?;
    // The issued token never outlives the assertion; an assertion at or past its expiry (even
    // within the skew allowance) cannot yield a usable token.
    let expires = exp.min(now + lifetime(c.token_lifetime_seconds));
    if expires <= now {
        return Err(AuthError::new("assertion expired"));
    }
    // RFC 7523 §3 item 7: the server may keep used `jti`s for as long as the assertion is
    // valid and refuse a second use; the `jti` is kept until the assertion's expiry plus the
    // allowed skew.
    let replay_key = string_claim(&claims, "jti").map(|jti| {
        (
            c.issuer.clone(),
            jti.to_string(),
            exp + time::Duration::seconds(i64::try_from(c.leeway_seconds).unwrap_or(i64::MAX)),
        )
    });
    Ok(Grant {
        client_id: c.client_id.clone(),
        tenant: c.tenant.clone(),
        read_only: c.read_only,
        expires,
        replay_key,
    })
}

/// A claim of an unverified JWT, used only to choose which configuration to verify it with.
fn unverified_claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get(name)?.as_str().map(str::to_owned)
}

/// An authenticated client about to receive a token.
struct Grant {
    client_id: String,
    tenant: String,
    read_only: bool,
    expires: OffsetDateTime,
    /// An assertion's issuer, `jti` and how long to remember it (assertion grants with a `jti`).
    replay_key: Option<(String, String, OffsetDateTime)>,
}

impl Grant {
    async fn issue(self, server: &OAuthServer) -> Result<IssuedToken, OAuthError> {
        let now = server.clock.now();
        // A credential names an existing tenant (checked at start-up too): a token for a tenant
        // that was never created, or was removed, would write where no listing shows.
        match server.tokens.tenant_exists(&self.tenant).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(client_id = %self.client_id, tenant = %self.tenant,
                    "token request for a client whose tenant does not exist");
                return Err(OAuthError::invalid_client(
                    "the client's tenant does not exist",
                    false,
                ));
            }
            Err(err) => {
                tracing::error!(error = %err, client_id = %self.client_id, "checking the client's tenant failed");
                return Err(OAuthError::server_error());
            }
        }
        if let Some((issuer, jti, until)) = &self.replay_key {
            match server.tokens.claim_assertion_jti(issuer, jti, *until).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(client_id = %self.client_id, "replayed assertion refused");
                    return Err(OAuthError::from_assertion(
                        AuthError::new("assertion already used (jti replay)"),
                        true,
                    ));
                }
                Err(err) => {
                    tracing::error!(error = %err, client_id = %self.client_id, "recording an assertion jti failed");
                    return Err(OAuthError::server_error());
                }
            }
        }
        let secret = generate_secret(ACCESS_TOKEN_SECRET_PREFIX);
        let record = TokenRecord {
            id: format!("{ACCESS_TOKEN_ID_PREFIX}{}", uuid::Uuid::new_v4().simple()),
            tenant: self.tenant,
            secret_hash: hash_secret(secret.expose()),
            label: self.client_id,
            read_only: self.read_only,
            created: now,
            expires: Some(self.expires),
            revoked: None,
        };
        if let Err(err) = server.tokens.insert_token(&record).await {
            tracing::error!(error = %err, client_id = %record.label, "storing an access token failed");
            return Err(OAuthError::server_error());
        }
        tracing::info!(
            client_id = %record.label,
            tenant = %record.tenant,
            token_id = %record.id,
            kind = ?CredentialKind::OAuthAccessToken,
            "access token issued"
        );
        Ok(IssuedToken {
            access_token: secret,
            expires_in: (self.expires - now).whole_seconds(),
            record,
        })
    }
}

/// A new OAuth client secret and its hex SHA-256, for the operator tooling: the secret goes to
/// the identity provider (shown once), the hash into `[[auth.oauth_clients]] secrets`.
pub fn new_client_secret() -> (SecretString, String) {
    let secret = generate_secret("scimcs_");
    let hash = hash_secret(secret.expose());
    (secret, hash)
}

/// The form parameters; a repeated parameter is an error (RFC 6749 §3.2).
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        match params.entry(name.into_owned()) {
            Entry::Occupied(e) => {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    e.key()
                )));
            }
            Entry::Vacant(e) => {
                e.insert(value.into_owned());
            }
        }
    }
    // An empty value is the same as an absent parameter (RFC 6749 §3.1).
    params.retain(|_, v| !v.is_empty());
    Ok(params)
}

/// HTTP Basic client credentials (RFC 6749 §2.3.1: id and secret are form-urlencoded before
/// base64). `None` without a Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client("malformed Basic credentials", true);
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

async fn token_handler(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return OAuthError::invalid_request("the request body is too large or unreadable")
            .into_response();
    };
    match server.token_request(&headers, &body).await {
        Ok(token) => token.into_response(),
        Err(err) => err.into_response(),
    }
}

/// The router serving `POST /oauth/token`, to be merged into the server's router (outside the
/// bearer-authenticated routes).
pub fn oauth_router(server: Arc<OAuthServer>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token_handler))
        .with_state(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parsing() {
        let p = parse_form(b"grant_type=client_credentials&client_id=a%2Bb&scope=").unwrap();
        assert_eq!(p["client_id"], "a+b");
        assert!(!p.contains_key("scope"));
        let e = parse_form(b"a=1&a=2").unwrap_err();
        assert_eq!(e.error, "invalid_request");
    }

    #[test]
    fn basic_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_credentials(&h).unwrap(), None);
        let encoded = STANDARD.encode("my%3Aclient:s%20e+cret");
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my:client".into(), "s e cret".into()))
        );
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).unwrap_err().basic_challenge);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h).unwrap(), None);
    }
}
