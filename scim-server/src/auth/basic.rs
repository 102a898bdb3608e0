//! Okta's "Basic Auth" mode for SCIM apps: `Authorization: Basic base64(username:password)`
//! (RFC 7617), next to the bearer modes.
//!
//! A Basic credential is a per-tenant username with a password the server generates (32 random
//! bytes, so a plain SHA-256 is as safe as for bearer tokens; a chosen password would need a slow
//! hash). It is stored like a static token, in the tokens table, with the hash of
//! `username:password`: the username is bound into the hash, so a password works only with its
//! own username, and `token list` / `token revoke` manage it. A bearer token can never match one
//! (RFC 6750 `b64token` has no `:`), and Basic matches only records made here (`bas_` ids).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use time::OffsetDateTime;

use super::AuthError;
use super::secret::{SecretString, generate_secret, hash_secret};
use super::token::TokenStore;
use crate::store::{self, TokenRecord};

/// Id prefix of Basic credentials.
pub const BASIC_ID_PREFIX: &str = "bas_";
/// Prefix of generated Basic passwords.
pub const BASIC_PASSWORD_PREFIX: &str = "scimbp_";
/// Longest username accepted.
pub const MAX_USERNAME_LEN: usize = 256;

/// The Basic username and password of a request; `Ok(None)` when it does not use Basic.
///
/// Errors (safe to show): "malformed Basic credentials".
pub fn credentials(headers: &HeaderMap) -> Result<Option<(String, SecretString)>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Ok(None);
    };
    let Some((scheme, rest)) = value.trim().split_once([' ', '\t']) else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || AuthError::new("malformed Basic credentials");
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    // RFC 7617 §2: the user-id cannot contain a colon; the password may.
    let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
    if username.is_empty() || username.len() > MAX_USERNAME_LEN || password.is_empty() {
        return Err(malformed());
    }
    Ok(Some((username.to_owned(), SecretString::new(password))))
}

/// What is hashed and looked up for a username and password.
pub fn lookup_secret(username: &str, password: &str) -> String {
    format!("{username}:{password}")
}

/// Creates a Basic credential for `username` in `tenant` (`scim-server token create
/// --basic-username`): stores its record and returns it with the password, shown once.
pub async fn create_basic_credential<S: TokenStore + ?Sized>(
    store: &S,
    tenant: &str,
    username: &str,
    read_only: bool,
    now: OffsetDateTime,
) -> store::Result<(TokenRecord, SecretString)> {
    let password = generate_secret(BASIC_PASSWORD_PREFIX);
    let record = TokenRecord {
        id: format!("{BASIC_ID_PREFIX}{}", uuid::Uuid::new_v4().simple()),
        tenant: tenant.to_owned(),
        secret_hash: hash_secret(&lookup_secret(username, password.expose())),
        label: format!("basic:{username}"),
        read_only,
        created: now,
        expires: None,
        revoked: None,
    };
    store.insert_token(&record).await?;
    Ok((record, password))
}

/// Whether `username` can name a Basic credential (RFC 7617: no colon, no control characters).
pub fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= MAX_USERNAME_LEN
        && !username.contains(':')
        && !username.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn parsing() {
        let basic = |user_pass: &str| with(&format!("Basic {}", STANDARD.encode(user_pass)));
        let (user, pass) = credentials(&basic("okta:pa:ss")).unwrap().unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("okta", "pa:ss"));
        assert!(credentials(&with("Bearer abc")).unwrap().is_none());
        assert!(credentials(&HeaderMap::new()).unwrap().is_none());
        for bad in ["Basic !!!", "basic b2t0YQ=="] {
            assert_eq!(
                credentials(&with(bad)).unwrap_err().0,
                "malformed Basic credentials",
                "{bad}"
            );
        }
        assert!(credentials(&basic(":pw")).is_err());
        assert!(credentials(&basic("user:")).is_err());
        assert!(valid_username("okta-prod"));
        assert!(!valid_username("a:b"));
        assert!(!valid_username(""));
    }
}
