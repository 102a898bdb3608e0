//! Reading the credential out of the `Authorization` header.
//!
//! RFC 6750 §2.1: `Authorization: Bearer <b64token>`; the scheme is case-insensitive (RFC 9110
//! §11.1), so `bearer` and `BEARER` are accepted. Some Okta orgs send the token with no scheme at
//! all (entra-okta.md §3.1); that bare form is accepted when enabled.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::AuthError;

/// The longest credential accepted (a JWT from Entra is 1–3 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The bearer credential of a request.
///
/// Errors (safe to show): "missing Authorization header", "multiple Authorization headers",
/// "malformed Authorization header", "unsupported authorization scheme", "missing bearer token",
/// "malformed bearer token".
pub fn bearer_token(headers: &HeaderMap, accept_bare: bool) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or_else(|| AuthError::new("missing Authorization header"))?;
    if values.next().is_some() {
        return Err(AuthError::new("multiple Authorization headers"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::new("malformed Authorization header"))?
        .trim();
    if value.is_empty() {
        return Err(AuthError::new("missing bearer token"));
    }
    let token = match value.split_once([' ', '\t']) {
        Some((scheme, rest)) => {
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::new("unsupported authorization scheme"));
            }
            rest.trim()
        }
        None if value.eq_ignore_ascii_case("bearer") => {
            return Err(AuthError::new("missing bearer token"));
        }
        None if accept_bare => value,
        None => return Err(AuthError::new("missing authorization scheme")),
    };
    if token.is_empty() {
        return Err(AuthError::new("missing bearer token"));
    }
    if token.len() > MAX_TOKEN_LEN || !is_b64token(token) {
        return Err(AuthError::new("malformed bearer token"));
    }
    Ok(token)
}

/// RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Whether a token has the shape of a compact JWS: three base64url segments separated by dots
/// (the first two non-empty). Our own secrets never contain a dot.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64url = |seg: &str| {
        seg.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !h.is_empty() && !p.is_empty() && b64url(h) && b64url(p) && b64url(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cases() {
        let ok = |v: &str, bare: bool| bearer_token(&headers(&[v]), bare).map(str::to_owned);
        let err = |r: Result<String, AuthError>| r.unwrap_err().0;
        assert_eq!(ok("Bearer abc", true).unwrap(), "abc");
        assert_eq!(ok("bearer abc", true).unwrap(), "abc");
        assert_eq!(ok("BEARER   abc  ", true).unwrap(), "abc");
        assert_eq!(ok("bEaReR\tabc", true).unwrap(), "abc");
        assert_eq!(ok("abc", true).unwrap(), "abc");
        assert_eq!(ok("a.b.c", true).unwrap(), "a.b.c");
        assert_eq!(ok("abc==", true).unwrap(), "abc==");
        assert_eq!(err(ok("abc", false)), "missing authorization scheme");
        assert_eq!(
            err(ok("Basic YTpi", true)),
            "unsupported authorization scheme"
        );
        assert_eq!(err(ok("Bearer", true)), "missing bearer token");
        assert_eq!(err(ok("Bearer a b", true)), "malformed bearer token");
        assert_eq!(err(ok("Bearer a\"b", true)), "malformed bearer token");
        assert_eq!(err(ok("Bearer ===", true)), "malformed bearer token");
        assert_eq!(
            bearer_token(&HeaderMap::new(), true).unwrap_err().0,
            "missing Authorization header"
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"]), true)
                .unwrap_err()
                .0,
            "multiple Authorization headers"
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(err(ok(&long, true)), "malformed bearer token");
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("scim_abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a+.b.c"));
    }
}
