//! Static bearer tokens and the opaque access tokens issued by `/oauth/token`.
//!
//! Both are [`TokenRecord`]s in the store, found by the SHA-256 of the presented secret (see
//! [`super::secret`] for why a fast hash is right for high-entropy secrets). The lookup by hash is
//! not timing-sensitive in a useful way (an attacker does not know the hash he would have to
//! approach), and the found record's hash is still compared in constant time before it is
//! trusted. Revoked and expired records are refused. Because the records live in the shared
//! database, every replica accepts every token: there is no in-process token state.
//!
//! The `SCIM_TOKEN` environment token (automation, CI) is never stored: only its digest is kept
//! in memory and compared in constant time.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderMap;
use time::OffsetDateTime;

use super::cache::{DEFAULT_CAPACITY, VerifiedCache};
use super::clock::Clock;
use super::header::bearer_token;
use super::secret::{SecretString, digest_matches_hex, generate_secret, hash_secret, sha256};
use super::{AuthError, Authenticator, CredentialKind, Principal};
use crate::store::{self, Store, TokenRecord};

/// Prefix of static token secrets (`scim-server token create`).
pub const STATIC_SECRET_PREFIX: &str = "scim_";
/// Prefix of access token secrets issued by `/oauth/token`.
pub const ACCESS_TOKEN_SECRET_PREFIX: &str = "scimat_";
/// Prefix of static token ids.
pub const STATIC_ID_PREFIX: &str = "tok_";
/// Prefix of issued access token ids; their `label` is the OAuth client id.
pub const ACCESS_TOKEN_ID_PREFIX: &str = "oat_";
/// The principal id of the `SCIM_TOKEN` environment token.
pub const ENV_TOKEN_PRINCIPAL: &str = "SCIM_TOKEN";

/// The token part of the storage: what authentication needs from a [`Store`], and all a test
/// double has to implement. Every [`Store`] is a `TokenStore`; for an `Arc<dyn Store>` use
/// [`token_store`].
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a token record.
    async fn insert_token(&self, token: &TokenRecord) -> store::Result<()>;
    /// A token by the hash of its secret.
    async fn token_by_hash(&self, secret_hash: &str) -> store::Result<Option<TokenRecord>>;
    /// Tokens, optionally of one tenant.
    async fn list_tokens(&self, tenant: Option<&str>) -> store::Result<Vec<TokenRecord>>;
    /// Revokes a token by id; false if there was none.
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> store::Result<bool>;
    /// Whether any tenant has a live HTTP Basic credential (so a 401 offers the `Basic`
    /// challenge too). The default lists every token.
    async fn has_basic_credentials(&self) -> store::Result<bool> {
        Ok(self
            .list_tokens(None)
            .await?
            .iter()
            .any(|t| t.id.starts_with(super::basic::BASIC_ID_PREFIX) && t.revoked.is_none()))
    }
    /// Whether the tenant exists (a token is issued only for one that does). Stores without
    /// tenants (test doubles) answer yes.
    async fn tenant_exists(&self, tenant: &str) -> store::Result<bool> {
        let _ = tenant;
        Ok(true)
    }
    /// Records an assertion's `jti` as used until `expires`: false for a replay. Stores that
    /// keep no state (test doubles) accept every `jti`.
    async fn claim_assertion_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires: OffsetDateTime,
    ) -> store::Result<bool> {
        let _ = (issuer, jti, expires);
        Ok(true)
    }
}

#[async_trait]
impl<T: Store + ?Sized> TokenStore for T {
    async fn insert_token(&self, token: &TokenRecord) -> store::Result<()> {
        store::Tenants::insert_token(self, token).await
    }
    async fn token_by_hash(&self, secret_hash: &str) -> store::Result<Option<TokenRecord>> {
        store::Tenants::token_by_hash(self, secret_hash).await
    }
    async fn list_tokens(&self, tenant: Option<&str>) -> store::Result<Vec<TokenRecord>> {
        store::Tenants::list_tokens(self, tenant).await
    }
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> store::Result<bool> {
        store::Tenants::revoke_token(self, id, at).await
    }
    async fn tenant_exists(&self, tenant: &str) -> store::Result<bool> {
        Ok(store::Tenants::tenant(self, tenant).await?.is_some())
    }
    async fn has_basic_credentials(&self) -> store::Result<bool> {
        store::Tenants::has_live_token_with_prefix(self, super::basic::BASIC_ID_PREFIX).await
    }
    async fn claim_assertion_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires: OffsetDateTime,
    ) -> store::Result<bool> {
        store::Tenants::claim_assertion_jti(self, issuer, jti, expires).await
    }
}

/// Adapts a shared `Arc<dyn Store>` to the token part (a trait object cannot be converted to
/// another trait's object directly).
pub fn token_store(store: Arc<dyn Store>) -> Arc<dyn TokenStore> {
    Arc::new(StoreTokens(store))
}

struct StoreTokens(Arc<dyn Store>);

#[async_trait]
impl TokenStore for StoreTokens {
    async fn insert_token(&self, token: &TokenRecord) -> store::Result<()> {
        self.0.insert_token(token).await
    }
    async fn token_by_hash(&self, secret_hash: &str) -> store::Result<Option<TokenRecord>> {
        self.0.token_by_hash(secret_hash).await
    }
    async fn list_tokens(&self, tenant: Option<&str>) -> store::Result<Vec<TokenRecord>> {
        self.0.list_tokens(tenant).await
    }
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> store::Result<bool> {
        self.0.revoke_token(id, at).await
    }
    async fn tenant_exists(&self, tenant: &str) -> store::Result<bool> {
        Ok(self.0.tenant(tenant).await?.is_some())
    }
    async fn has_basic_credentials(&self) -> store::Result<bool> {
        self.0
            .has_live_token_with_prefix(super::basic::BASIC_ID_PREFIX)
            .await
    }
    async fn claim_assertion_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires: OffsetDateTime,
    ) -> store::Result<bool> {
        self.0.claim_assertion_jti(issuer, jti, expires).await
    }
}

/// How a token record was made: a static token or an access token from `/oauth/token`.
pub fn token_kind(record: &TokenRecord) -> CredentialKind {
    if record.id.starts_with(ACCESS_TOKEN_ID_PREFIX) {
        CredentialKind::OAuthAccessToken
    } else {
        CredentialKind::StaticToken
    }
}

/// Creates a static token for `scim-server token create`: stores its record and returns it
/// with the secret, which exists nowhere else and must be shown to the operator exactly once.
///
/// The caller checks that the tenant exists.
pub async fn create_token<S: TokenStore + ?Sized>(
    store: &S,
    tenant: &str,
    label: &str,
    read_only: bool,
    now: OffsetDateTime,
) -> store::Result<(TokenRecord, SecretString)> {
    let secret = generate_secret(STATIC_SECRET_PREFIX);
    let record = TokenRecord {
        id: format!("{STATIC_ID_PREFIX}{}", uuid::Uuid::new_v4().simple()),
        tenant: tenant.to_owned(),
        secret_hash: hash_secret(secret.expose()),
        label: label.to_owned(),
        read_only,
        created: now,
        expires: None,
        revoked: None,
    };
    store.insert_token(&record).await?;
    Ok((record, secret))
}

/// Static token records for `scim-server token list`, oldest first (revoked ones included, so
/// the list shows them as revoked). Records carry hashes, never secrets. Access tokens issued by
/// `/oauth/token` are left out: see [`list_access_tokens`].
pub async fn list_tokens<S: TokenStore + ?Sized>(
    store: &S,
    tenant: Option<&str>,
) -> store::Result<Vec<TokenRecord>> {
    let mut tokens: Vec<TokenRecord> = store
        .list_tokens(tenant)
        .await?
        .into_iter()
        .filter(|t| token_kind(t) == CredentialKind::StaticToken)
        .collect();
    tokens.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    Ok(tokens)
}

/// Access tokens issued by `/oauth/token` that are still valid at `now` (neither expired nor
/// revoked), oldest first; their `label` is the OAuth client id. Any of them can be revoked by id
/// with [`revoke_token`].
pub async fn list_access_tokens<S: TokenStore + ?Sized>(
    store: &S,
    tenant: Option<&str>,
    now: OffsetDateTime,
) -> store::Result<Vec<TokenRecord>> {
    let mut tokens: Vec<TokenRecord> = store
        .list_tokens(tenant)
        .await?
        .into_iter()
        .filter(|t| {
            token_kind(t) == CredentialKind::OAuthAccessToken
                && t.revoked.is_none()
                && t.expires.is_none_or(|e| now < e)
        })
        .collect();
    tokens.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    Ok(tokens)
}

/// Revokes a token by id for `scim-server token revoke`; false if there is no such token.
/// Takes effect on the next request on every replica.
pub async fn revoke_token<S: TokenStore + ?Sized>(
    store: &S,
    id: &str,
    now: OffsetDateTime,
) -> store::Result<bool> {
    store.revoke_token(id, now).await
}

/// The in-memory form of the `SCIM_TOKEN` environment token: its digest only.
#[derive(Clone)]
struct EnvToken {
    tenant: String,
    digest: [u8; 32],
}

impl fmt::Debug for EnvToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvToken")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// How long a verified token record is trusted without asking the store again, unless
/// configured (`[auth] token_cache_seconds`): the time a revocation made elsewhere (another
/// replica, `scim-server token revoke`) may take to reach this process.
pub const DEFAULT_TOKEN_CACHE_SECONDS: u64 = 5;

/// Authenticates static tokens and issued access tokens (and the `SCIM_TOKEN` environment
/// token, when given).
#[derive(Clone)]
pub struct StaticTokens {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    env: Option<EnvToken>,
    accept_bare: bool,
    /// Records valid when read, by the digest of their secret (see [`super::cache`]).
    verified: Arc<VerifiedCache<TokenRecord>>,
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokens")
            .field("env", &self.env)
            .field("accept_bare", &self.accept_bare)
            .finish_non_exhaustive()
    }
}

impl StaticTokens {
    /// Tokens looked up in `store`, expiry judged by `clock`.
    ///
    /// Verified records are trusted for [`DEFAULT_TOKEN_CACHE_SECONDS`]; see
    /// [`Self::cache_verified_for`].
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            env: None,
            accept_bare: true,
            verified: Arc::new(VerifiedCache::new(
                time::Duration::seconds(DEFAULT_TOKEN_CACHE_SECONDS as i64),
                DEFAULT_CAPACITY,
            )),
        }
    }

    /// Trusts a verified token record for `lifetime` before reading it from the store again,
    /// which bounds how long a revocation made by another process takes to apply here (zero:
    /// every request reads the store), keeping at most [`DEFAULT_CAPACITY`] records.
    pub fn cache_verified_for(self, lifetime: std::time::Duration) -> Self {
        self.cache_verified(lifetime, DEFAULT_CAPACITY)
    }

    /// [`Self::cache_verified_for`] with at most `capacity` records kept.
    pub fn cache_verified(mut self, lifetime: std::time::Duration, capacity: usize) -> Self {
        let lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::ZERO);
        self.verified = Arc::new(VerifiedCache::new(lifetime, capacity));
        self
    }

    /// Forgets the cached record of token `id` (static, access token or Basic credential): a
    /// revocation made through this process applies to its next request, not after the cache
    /// lifetime.
    pub fn forget(&self, id: &str) {
        self.verified.forget(|record| record.id == id);
    }

    /// How many verified records are cached (for tests of the bound).
    pub fn cached(&self) -> usize {
        self.verified.len()
    }

    /// Also accepts `secret` (the `SCIM_TOKEN` environment variable) as a read-write token of
    /// `tenant`. Only its SHA-256 is kept; it is compared in constant time and never stored. An
    /// empty secret is ignored.
    pub fn with_env_token(mut self, tenant: impl Into<String>, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        if secret.len() < 32 {
            tracing::warn!("SCIM_TOKEN is shorter than 32 characters; use a long random secret");
        }
        self.env = Some(EnvToken {
            tenant: tenant.into(),
            digest: sha256(secret),
        });
        self
    }

    /// Whether a token without a scheme (`Authorization: <token>`) is accepted when this is
    /// used as an [`Authenticator`] on its own (default true).
    pub fn accept_bare_token(mut self, accept: bool) -> Self {
        self.accept_bare = accept;
        self
    }

    /// The principal of the `SCIM_TOKEN` environment token, if `secret` is it (constant-time).
    pub fn verify_env_token(&self, secret: &str) -> Option<Principal> {
        let env = self.env.as_ref()?;
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(&sha256(secret)[..], &env.digest[..]).into();
        matches.then(|| Principal {
            tenant: env.tenant.clone(),
            id: ENV_TOKEN_PRINCIPAL.to_owned(),
            read_only: false,
            kind: CredentialKind::StaticToken,
        })
    }

    /// The principal for a presented secret: the environment token, or a stored token.
    pub async fn verify(&self, secret: &str) -> Result<Principal, AuthError> {
        if let Some(principal) = self.verify_env_token(secret) {
            return Ok(principal);
        }
        let digest = sha256(secret);
        let now = self.clock.now();
        let record = match self.verified.get(&digest, now) {
            Some(record) => record,
            None => match self.store.token_by_hash(&hex::encode(digest)).await {
                Ok(Some(record)) => {
                    if record.revoked.is_none() && digest_matches_hex(&digest, &record.secret_hash)
                    {
                        self.verified
                            .keep(digest, record.clone(), now, record.expires);
                    }
                    record
                }
                Ok(None) => return Err(AuthError::new("invalid bearer token")),
                Err(err) => {
                    tracing::error!(error = %err, "token lookup failed");
                    return Err(AuthError::unavailable("credentials could not be checked"));
                }
            },
        };
        // The store found the record by this hash; compare again, in constant time, so that a
        // store with a case-insensitive or prefix index cannot make a different secret pass.
        if !digest_matches_hex(&digest, &record.secret_hash) {
            return Err(AuthError::new("invalid bearer token"));
        }
        if record.revoked.is_some() {
            return Err(AuthError::new("token is revoked"));
        }
        if let Some(expires) = record.expires
            && now >= expires
        {
            return Err(AuthError::new("token expired"));
        }
        let kind = token_kind(&record);
        let id = match kind {
            CredentialKind::OAuthAccessToken => record.label,
            _ => record.id,
        };
        Ok(Principal {
            tenant: record.tenant,
            id,
            read_only: record.read_only,
            kind,
        })
    }
}

#[async_trait]
impl Authenticator for StaticTokens {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = bearer_token(headers, self.accept_bare)?;
        self.verify(token).await
    }
}
