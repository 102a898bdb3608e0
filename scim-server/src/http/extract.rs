//! Extractors whose rejections are SCIM errors: [`ScimJson`] for bodies, [`ScimQuery`] for query
//! parameters, [`Caller`] for the authenticated principal and the request's SCIM base URL.

use super::error::ApiError;
use crate::auth::Principal;
use crate::service::RequestCtx;
use crate::state::{AppState, Settings};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use scim_core::Error;
use scim_core::query::QueryParams;
use serde::de::DeserializeOwned;

/// Whether a `Content-Type` is one SCIM clients send: `application/scim+json` or
/// `application/json` (any parameters, such as a charset, in any case), or another `+json` type.
pub fn acceptable_content_type(value: &str) -> bool {
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.is_empty()
        || mime == "application/json"
        || mime == "application/scim+json"
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A JSON request body. Accepts `application/scim+json` and `application/json` (or no
/// `Content-Type` at all); a body over the limit is 413, malformed JSON is 400 `invalidSyntax`,
/// another media type is 415, each as a SCIM error.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ScimJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !acceptable_content_type(ct) {
                return Err(Error::new(
                    415,
                    None,
                    "the body must be application/scim+json or application/json",
                )
                .into());
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::payload_too_large("the request body exceeds the size limit")
            } else if is_body_timeout(&rejection) {
                Error::new(
                    408,
                    None,
                    "the request body stopped arriving before it was complete",
                )
            } else {
                Error::invalid_syntax("the request body could not be read")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid_syntax("a JSON request body is required").into());
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid_syntax(format!("the body is not valid JSON: {e}")))?;
        // What no database may store differently: NUL characters and integers beyond 64 bits.
        scim_core::validate::limits::no_nul(&value)?;
        scim_core::validate::limits::exact_integers(&bytes)?;
        T::deserialize(value)
            .map(ScimJson)
            .map_err(|e| Error::invalid_syntax(format!("the body is not valid JSON: {e}")).into())
    }
}

/// Whether a body rejection comes from the body read timeout
/// (`tower_http::timeout::RequestBodyTimeoutLayer`).
fn is_body_timeout(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    rejection.body_text().contains("designated timeout")
}

/// The SCIM query parameters of a request. Names are matched case-insensitively, `+` is a space,
/// unknown parameters (such as Entra's `aadOptscim062020`) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScimQuery(pub QueryParams);

/// Parses a raw query string into SCIM parameters.
pub fn parse_query(raw: &str) -> QueryParams {
    let mut p = QueryParams::default();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let value = Some(value.into_owned());
        match name.to_ascii_lowercase().as_str() {
            "filter" => p.filter = value,
            "sortby" => p.sort_by = value,
            "sortorder" => p.sort_order = value,
            "startindex" => p.start_index = value,
            "count" => p.count = value,
            "attributes" => p.attributes = value,
            "excludedattributes" => p.excluded_attributes = value,
            "cursor" => p.cursor = value,
            _ => {}
        }
    }
    p
}

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ScimQuery(parse_query(parts.uri.query().unwrap_or(""))))
    }
}

/// The SCIM base URL a client sees: the configured `public_url`, else the scheme and host from
/// `X-Forwarded-Proto`/`X-Forwarded-Host` (when trusted) or `Host`, plus the base path.
pub fn base_url(settings: &Settings, headers: &HeaderMap, authority: Option<&str>) -> String {
    if let Some(url) = &settings.public_url {
        return url.clone();
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name| {
        settings
            .trust_forwarded_headers
            .then(|| first(name))
            .flatten()
    };
    let scheme = match forwarded("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ if settings.tls => "https",
        _ => "http",
    };
    let host = forwarded("x-forwarded-host")
        .or_else(|| first(header::HOST.as_str()))
        .or(authority)
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        })
        .unwrap_or("localhost");
    let base = if settings.base_path == "/" {
        ""
    } else {
        settings.base_path.as_str()
    };
    format!("{scheme}://{host}{base}")
}

/// The request id set by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The authenticated caller of a SCIM endpoint, with the request id and base URL: the
/// [`RequestCtx`] a service function takes.
#[derive(Debug, Clone)]
pub struct Caller(pub RequestCtx);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Error::unauthorized("authentication is required"))?;
        Ok(Caller(RequestCtx::new(
            principal,
            request_id(&parts.headers),
            base_url(
                &state.settings,
                &parts.headers,
                parts.uri.authority().map(|a| a.as_str()),
            ),
        )))
    }
}

/// A header's value as text, when present and valid.
pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "application/scim+json",
            "application/json",
            "application/json; charset=utf-8",
            "Application/SCIM+JSON;charset=UTF-8",
            "",
        ] {
            assert!(acceptable_content_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/xml", "multipart/form-data"] {
            assert!(!acceptable_content_type(bad), "{bad}");
        }
    }

    #[test]
    fn query_names_are_case_insensitive_plus_is_space_unknown_ignored() {
        let p = parse_query(
            "aadOptscim062020&FILTER=userName+eq+%22a+b%22&StartIndex=2&count=5&excludedattributes=members",
        );
        assert_eq!(p.filter.as_deref(), Some("userName eq \"a b\""));
        assert_eq!(p.start_index.as_deref(), Some("2"));
        assert_eq!(p.count.as_deref(), Some("5"));
        assert_eq!(p.excluded_attributes.as_deref(), Some("members"));
    }

    #[test]
    fn base_url_sources() {
        let mut settings = Settings::default();
        let mut h = HeaderMap::new();
        h.insert("host", "scim.local:8080".parse().unwrap());
        assert_eq!(
            base_url(&settings, &h, None),
            "http://scim.local:8080/scim/v2"
        );
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-host", "idp.example.com".parse().unwrap());
        assert_eq!(
            base_url(&settings, &h, None),
            "https://idp.example.com/scim/v2"
        );
        settings.trust_forwarded_headers = false;
        assert_eq!(
            base_url(&settings, &h, None),
            "http://scim.local:8080/scim/v2"
        );
        settings.public_url = Some("https://public.example/scim/v2".into());
        assert_eq!(
            base_url(&settings, &h, None),
            "https://public.example/scim/v2"
        );
        let mut bad = HeaderMap::new();
        bad.insert("host", "evil.com/x?".parse().unwrap());
        settings.public_url = None;
        assert_eq!(base_url(&settings, &bad, None), "http://localhost/scim/v2");
    }
}
