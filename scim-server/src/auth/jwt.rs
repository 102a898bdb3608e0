//! RS256 JWT verification, and the Entra "blank secret token" validator.
//!
//! Nothing in a token is trusted before its signature is verified. The header is read first only
//! to refuse every algorithm but RS256 (so `alg: none`, HS* and key-confusion tokens are refused
//! before any key is touched) and to find the `kid`; the key comes from a [`JwksCache`], which
//! holds RSA keys only. jsonwebtoken checks the signature with an explicit
//! `Validation::new(Algorithm::RS256)`; the time claims are then checked here against the
//! [`Clock`] with a small leeway, and `iss`/`aud` by exact comparison.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::cache::{DEFAULT_CAPACITY, VerifiedCache};
use super::clock::Clock;
use super::config::EntraJwtConfig;
use super::jwks::{JwksCache, JwksError};
use super::secret::sha256;
use super::{AuthError, CredentialKind, Principal};

/// The claims of a verified JWT.
pub type Claims = Map<String, Value>;

/// Verifies an RS256 compact JWS against the keys of `jwks` and returns its claims. Checks the
/// signature only: the caller checks the claims ([`check_times`], [`audience_matches`], …).
///
/// `what` names the token in error details ("JWT", "assertion").
pub async fn verify_rs256(token: &str, jwks: &JwksCache, what: &str) -> Result<Claims, AuthError> {
    let header = read_header(token).ok_or_else(|| AuthError(format!("malformed {what}")))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(AuthError(format!("{what} algorithm not allowed")));
    }
    if header.contains_key("crit") {
        return Err(AuthError(format!(
            "{what} has unsupported critical headers"
        )));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError(format!("{what} has no key id")))?;
    let key = jwks.key(kid).await.map_err(|err| match err {
        JwksError::UnknownKid => AuthError(format!("{what} signing key not found")),
        JwksError::Unavailable(_) => AuthError::unavailable("signing keys could not be fetched"),
    })?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Claims are checked by the caller against our clock, not by jsonwebtoken's wall clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::InvalidSignature => AuthError(format!("{what} signature invalid")),
            ErrorKind::InvalidAlgorithm => AuthError(format!("{what} algorithm not allowed")),
            _ => AuthError(format!("malformed {what}")),
        }
    })?;
    Ok(data.claims)
}

/// The decoded JOSE header, or `None` when it is not a base64url JSON object.
fn read_header(token: &str) -> Option<Map<String, Value>> {
    let segment = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A NumericDate claim (seconds since the epoch; fractions are truncated).
pub fn numeric_date(claims: &Claims, name: &str) -> Option<Result<OffsetDateTime, ()>> {
    let value = claims.get(name)?;
    let secs = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    };
    Some(
        secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or(()),
    )
}

/// Checks `exp` (required), `nbf` and `iat` (optional) against `now` with `leeway` seconds of
/// skew. Returns `exp`.
pub fn check_times(
    claims: &Claims,
    now: OffsetDateTime,
    leeway: u64,
    what: &str,
) -> Result<OffsetDateTime, AuthError> {
    let leeway = time::Duration::seconds(i64::try_from(leeway).unwrap_or(i64::MAX));
    let bad = |claim: &str| AuthError(format!("{what} has an invalid {claim} claim"));
    let exp = match numeric_date(claims, "exp") {
        None => return Err(AuthError(format!("{what} has no exp claim"))),
        Some(Err(())) => return Err(bad("exp")),
        Some(Ok(exp)) => exp,
    };
    if now > exp + leeway {
        return Err(AuthError(format!("{what} expired")));
    }
    match numeric_date(claims, "nbf") {
        Some(Err(())) => return Err(bad("nbf")),
        Some(Ok(nbf)) if nbf > now + leeway => {
            return Err(AuthError(format!("{what} not yet valid")));
        }
        _ => {}
    }
    match numeric_date(claims, "iat") {
        Some(Err(())) => return Err(bad("iat")),
        Some(Ok(iat)) if iat > now + leeway => {
            return Err(AuthError(format!("{what} issued in the future")));
        }
        _ => {}
    }
    Ok(exp)
}

/// Whether the `aud` claim (a string, or an array of strings) contains `expected` exactly.
pub fn audience_matches(claims: &Claims, expected: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
        _ => false,
    }
}

/// A string claim.
pub fn string_claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// Validates Entra-issued JWTs ("blank secret token" mode).
pub struct EntraJwt {
    /// `https://sts.windows.net/{guid}/` → (guid, our tenant).
    issuers: HashMap<String, (String, String)>,
    audience: String,
    leeway: u64,
    read_only: bool,
    jwks: Arc<JwksCache>,
    clock: Arc<dyn Clock>,
    /// Principals of JWTs verified recently, by the token's digest, each trusted until the
    /// earlier of the cache lifetime and the token's `exp` plus leeway (see [`super::cache`]).
    verified: VerifiedCache<Principal>,
}

impl fmt::Debug for EntraJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraJwt")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

/// The issuer Entra puts in the JWTs of a tenant.
pub fn entra_issuer(entra_tenant_id: &str) -> String {
    format!(
        "https://sts.windows.net/{}/",
        entra_tenant_id.to_ascii_lowercase()
    )
}

impl EntraJwt {
    /// A validator for `config` (validated), with keys from `jwks`.
    pub fn new(config: &EntraJwtConfig, jwks: Arc<JwksCache>, clock: Arc<dyn Clock>) -> Self {
        let issuers = config
            .tenants
            .iter()
            .map(|(guid, tenant)| {
                (
                    entra_issuer(guid),
                    (guid.to_ascii_lowercase(), tenant.clone()),
                )
            })
            .collect();
        Self {
            verified: VerifiedCache::new(
                time::Duration::seconds(super::token::DEFAULT_TOKEN_CACHE_SECONDS as i64),
                DEFAULT_CAPACITY,
            ),
            issuers,
            audience: config.audience.clone(),
            leeway: config.leeway_seconds,
            read_only: config.read_only,
            jwks,
            clock,
        }
    }

    /// Trusts a verified JWT for at most `lifetime` (never past its `exp` plus leeway) before
    /// checking its signature and claims again; zero checks every request.
    pub fn cache_verified_for(mut self, lifetime: std::time::Duration) -> Self {
        let lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::ZERO);
        self.verified = VerifiedCache::new(lifetime, DEFAULT_CAPACITY);
        self
    }

    /// The principal for an Entra-issued JWT: from the cache when the same token was verified
    /// within the cache lifetime and is still within its `exp` plus leeway, otherwise by checking
    /// signature and claims.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest = sha256(token);
        let now = self.clock.now();
        if let Some(principal) = self.verified.get(&digest, now) {
            return Ok(principal);
        }
        let (principal, exp) = self.verify_uncached(token, now).await?;
        let leeway = time::Duration::seconds(i64::try_from(self.leeway).unwrap_or(i64::MAX));
        // `check_times` accepts up to and including `exp + leeway`; the cache stops trusting the
        // entry at that instant and leaves the last word to a fresh check.
        self.verified
            .keep(digest, principal.clone(), now, exp.checked_add(leeway));
        Ok(principal)
    }

    /// How many verified JWTs are cached (for tests of the cache).
    pub fn cached(&self) -> usize {
        self.verified.len()
    }

    async fn verify_uncached(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(Principal, OffsetDateTime), AuthError> {
        let claims = verify_rs256(token, &self.jwks, "JWT").await?;
        let iss = string_claim(&claims, "iss").unwrap_or_default();
        let (guid, tenant) = self
            .issuers
            .get(iss)
            .ok_or_else(|| AuthError::new("JWT issuer not allowed"))?;
        if !audience_matches(&claims, &self.audience) {
            return Err(AuthError::new("JWT audience not accepted"));
        }
        let exp = check_times(&claims, now, self.leeway, "JWT")?;
        if let Some(tid) = claims.get("tid")
            && tid.as_str().map(str::to_ascii_lowercase).as_deref() != Some(guid.as_str())
        {
            return Err(AuthError::new("JWT tenant does not match its issuer"));
        }
        let id = ["appid", "azp", "sub", "oid"]
            .iter()
            .find_map(|c| string_claim(&claims, c))
            .unwrap_or("entra")
            .to_owned();
        let principal = Principal {
            tenant: tenant.clone(),
            id,
            read_only: self.read_only,
            kind: CredentialKind::EntraJwt,
        };
        Ok((principal, exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn times() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let check = |v: Value| check_times(&claims(v), now, 60, "JWT").map_err(|e| e.0);
        assert!(check(json!({"exp": 1_000_100})).is_ok());
        assert!(check(json!({"exp": 999_950})).is_ok(), "within leeway");
        assert_eq!(check(json!({"exp": 999_900})).unwrap_err(), "JWT expired");
        assert_eq!(check(json!({})).unwrap_err(), "JWT has no exp claim");
        assert_eq!(
            check(json!({"exp": "soon"})).unwrap_err(),
            "JWT has an invalid exp claim"
        );
        assert!(check(json!({"exp": 1_000_100, "nbf": 1_000_050})).is_ok());
        assert_eq!(
            check(json!({"exp": 1_000_500, "nbf": 1_000_100})).unwrap_err(),
            "JWT not yet valid"
        );
        assert_eq!(
            check(json!({"exp": 1_000_500, "iat": 1_000_100})).unwrap_err(),
            "JWT issued in the future"
        );
        assert!(check(json!({"exp": 1_000_100.5})).is_ok());
    }

    #[test]
    fn audiences() {
        assert!(audience_matches(&claims(json!({"aud": "a"})), "a"));
        assert!(audience_matches(&claims(json!({"aud": ["b", "a"]})), "a"));
        assert!(!audience_matches(&claims(json!({"aud": "A"})), "a"));
        assert!(!audience_matches(&claims(json!({})), "a"));
    }

    #[test]
    fn issuer_form() {
        assert_eq!(
            entra_issuer("AAAAAAAA-0000-1111-2222-bbbbbbbbbbbb"),
            "https://sts.windows.net/aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb/"
        );
    }
}
