//! Static bearer tokens: issuing, listing and revoking them, the first-start token, and an
//! authenticator for static tokens (stored hashes plus the configured `SCIM_TOKEN`).
//!
//! TODO(lead): when the auth helper's combined authenticator and token helpers land in
//! [`crate::auth`], `serve` and the `token` subcommands should use those; this module keeps the
//! binary usable until then and is what the tests exercise.

use crate::auth::{AuthError, Authenticator, CredentialKind, Principal};
use crate::store::{Store, TokenRecord};
use http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// Hex SHA-256 of a token secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random token secret (256 bits, URL-safe).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("scim_{}", hex::encode(bytes))
}

/// Issues a token for `tenant`: stores its hash and returns the record and the secret, which is
/// shown once and never stored.
pub async fn issue(
    store: &dyn Store,
    tenant: &str,
    label: &str,
    read_only: bool,
    now: OffsetDateTime,
) -> crate::store::Result<(TokenRecord, String)> {
    let secret = new_secret();
    let mut id = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut id);
    let record = TokenRecord {
        id: format!("tok_{}", hex::encode(id)),
        tenant: tenant.to_string(),
        secret_hash: hash_secret(&secret),
        label: label.to_string(),
        read_only,
        created: now,
        expires: None,
        revoked: None,
    };
    store.insert_token(&record).await?;
    Ok((record, secret))
}

/// The credential in an `Authorization` header: `Bearer <token>` (scheme matched
/// case-insensitively, RFC 6750), or a bare token (some Okta "HTTP Header" setups send one).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None if value.eq_ignore_ascii_case("bearer") => return None,
        None => value,
    };
    (!token.is_empty()).then_some(token)
}

/// Authenticates static bearer tokens: the configured `SCIM_TOKEN` (compared in constant time)
/// and tokens stored by `scim-server token create` (looked up by hash).
pub struct StaticTokenAuthenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::clock::Clock>,
    configured: Option<(String, String)>,
}

impl std::fmt::Debug for StaticTokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokenAuthenticator")
            .field("configured", &self.configured.is_some())
            .finish_non_exhaustive()
    }
}

impl StaticTokenAuthenticator {
    /// An authenticator over `store`, plus an optional configured token for `tenant`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn crate::clock::Clock>,
        configured: Option<(&str, &str)>,
    ) -> Self {
        Self {
            store,
            clock,
            configured: configured.map(|(tenant, token)| (tenant.to_string(), hash_secret(token))),
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for StaticTokenAuthenticator {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token =
            bearer_token(headers).ok_or_else(|| AuthError("a bearer token is required".into()))?;
        let hash = hash_secret(token);
        if let Some((tenant, configured)) = &self.configured
            && bool::from(configured.as_bytes().ct_eq(hash.as_bytes()))
        {
            return Ok(Principal {
                tenant: tenant.clone(),
                id: "SCIM_TOKEN".into(),
                read_only: false,
                kind: CredentialKind::StaticToken,
            });
        }
        let record = self
            .store
            .token_by_hash(&hash)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "token lookup failed");
                AuthError("the credential could not be checked".into())
            })?
            .ok_or_else(|| AuthError("the bearer token is not valid".into()))?;
        let now = self.clock.now();
        if record.revoked.is_some() {
            return Err(AuthError("the bearer token has been revoked".into()));
        }
        if record.expires.is_some_and(|e| e <= now) {
            return Err(AuthError("the bearer token has expired".into()));
        }
        Ok(Principal {
            tenant: record.tenant,
            id: record.id,
            read_only: record.read_only,
            kind: CredentialKind::StaticToken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_bare_tokens_are_accepted() {
        let cases = [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("abc", Some("abc")),
            ("Basic abc", None),
            ("Bearer ", None),
        ];
        for (header, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, header.parse().unwrap());
            assert_eq!(bearer_token(&h), want, "{header:?}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn secrets_are_random_and_hashes_are_hex_sha256() {
        assert_ne!(new_secret(), new_secret());
        assert_eq!(hash_secret("a").len(), 64);
    }
}
