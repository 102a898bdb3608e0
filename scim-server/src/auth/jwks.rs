//! A JSON Web Key Set fetched over HTTPS and cached by `kid`.
//!
//! Keys are looked up by the `kid` of a token's header. An unknown `kid` (the issuer rotated its
//! keys) refetches the set, at most once per cooldown, so a stream of tokens with made-up key ids
//! cannot turn the server into a traffic generator against the key endpoint. The cooldown is
//! measured on the [`Clock`], so tests move time instead of sleeping.
//!
//! Only RSA signature keys of at least 2048 bits are kept: a JWKS entry of type `oct` (an HMAC
//! secret) or with `use`/`alg` other than signature/RS256 is ignored, so no key from the set can
//! ever verify an HS* token (key confusion).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use time::OffsetDateTime;

use super::clock::Clock;

/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Why no key was found.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The set (as fetched within the cooldown) has no usable key with this `kid`.
    #[error("signing key not found")]
    UnknownKid,
    /// The set could not be fetched or parsed (the detail is for logs).
    #[error("signing keys unavailable: {0}")]
    Unavailable(String),
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<OffsetDateTime>,
    last_failed: bool,
}

/// A cached JWKS by URL.
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    cooldown: time::Duration,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<String> = self.read_keys().keys().cloned().collect();
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("cooldown", &self.cooldown)
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache for the set at `url`, fetched with `http` (give it a timeout), refetched on an
    /// unknown `kid` at most once per `cooldown`. While the last fetch failed, an unknown `kid` is
    /// [`JwksError::Unavailable`] (not the caller's fault) until the cooldown allows a retry.
    pub fn new(
        url: impl Into<String>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        cooldown: Duration,
    ) -> Self {
        Self {
            url: url.into(),
            http,
            clock,
            cooldown: time::Duration::try_from(cooldown).unwrap_or(time::Duration::seconds(30)),
            keys: RwLock::new(HashMap::new()),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<DecodingKey>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.read_keys().get(kid).cloned()
    }

    /// The verification key with this `kid`, fetching the set when the `kid` is unknown and the
    /// last fetch is older than the cooldown.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, JwksError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut state = self.fetch.lock().await;
        // Another request may have refreshed the set while this one waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let now = self.clock.now();
        if let Some(last) = state.last_attempt
            && now < last + self.cooldown
        {
            return Err(if state.last_failed {
                JwksError::Unavailable("the last fetch failed".into())
            } else {
                JwksError::UnknownKid
            });
        }
        state.last_attempt = Some(now);
        let keys = self.fetch_keys().await;
        state.last_failed = keys.is_err();
        let keys = keys.inspect_err(|err| {
            tracing::warn!(url = %self.url, error = %err, "JWKS fetch failed");
        })?;
        tracing::info!(url = %self.url, keys = keys.len(), "JWKS refreshed");
        let found = keys.get(kid).cloned();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        found.ok_or(JwksError::UnknownKid)
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<DecodingKey>>, JwksError> {
        let unavailable = |e: reqwest::Error| JwksError::Unavailable(e.without_url().to_string());
        let mut response = self
            .http
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?;
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksError::Unavailable("JWKS document too large".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::Unavailable("JWKS document too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

/// The usable keys of a JWKS document, by `kid`.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, JwksError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| JwksError::Unavailable(format!("JWKS is not JSON: {e}")))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError::Unavailable("JWKS has no \"keys\" array".into()))?;
    let mut out = HashMap::new();
    for jwk in keys {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("kty") != Some("RSA") {
            continue;
        }
        if field("use").is_some_and(|u| u != "sig") || field("alg").is_some_and(|a| a != "RS256") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
            continue;
        };
        let modulus_ok = URL_SAFE_NO_PAD
            .decode(n.trim_end_matches('='))
            .map(|bytes| {
                let significant = bytes.iter().skip_while(|b| **b == 0).count();
                significant >= MIN_RSA_MODULUS_BYTES
            })
            .unwrap_or(false);
        if !modulus_ok {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
            out.insert(kid.to_owned(), Arc::new(key));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_signature_keys_are_kept() {
        let n = URL_SAFE_NO_PAD.encode([0xABu8; 256]);
        let short = URL_SAFE_NO_PAD.encode([0xABu8; 128]);
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "ok", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "ok-sig", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "small", "n": short, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": n, "e": "AQAB"}
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["ok", "ok-sig"]);
    }

    #[test]
    fn malformed_documents() {
        assert!(parse_jwks(b"not json").is_err());
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(br#"{"keys": []}"#).unwrap().is_empty());
    }
}
