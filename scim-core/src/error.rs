//! The one SCIM error type: HTTP status, RFC 7644 §3.12 `scimType` and a detail a person can act on.
//!
//! ```
//! use scim_core::error::{Error, ScimType};
//!
//! let err = Error::invalid_filter("unexpected token after `eq` at offset 9");
//! assert_eq!(err.status(), 400);
//! assert_eq!(err.scim_type(), Some(ScimType::InvalidFilter));
//! let body = serde_json::to_value(err.to_body()).unwrap();
//! assert_eq!(body["status"], "400"); // RFC 7644 §3.12: status is a string
//! assert_eq!(body["scimType"], "invalidFilter");
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// The URN of the SCIM error message schema (RFC 7644 §3.12).
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// RFC 7644 §3.12 Table 9 `scimType` values, plus the RFC 9865 cursor errors.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    /// "The specified filter syntax was invalid … or the specified attribute and filter comparison
    /// combination is not supported."
    InvalidFilter,
    /// "The specified filter yields many more results than the server is willing to calculate or
    /// process."
    TooMany,
    /// "One or more of the attribute values are already in use or are reserved."
    Uniqueness,
    /// "The attempted modification is not compatible with the target attribute's mutability."
    Mutability,
    /// "The request body message structure was invalid or did not conform to the request schema."
    InvalidSyntax,
    /// "The 'path' attribute was invalid or malformed."
    InvalidPath,
    /// "The specified 'path' did not yield an attribute or attribute value that could be operated on."
    NoTarget,
    /// "A required value was missing, or the value specified was not compatible with the operation
    /// or attribute type, or resource schema."
    InvalidValue,
    /// "The specified SCIM protocol version is not supported."
    InvalidVers,
    /// "The specified request cannot be completed, due to the passing of sensitive information in a
    /// request URI."
    Sensitive,
    /// RFC 9865: the cursor value is invalid.
    InvalidCursor,
    /// RFC 9865: the cursor has expired.
    ExpiredCursor,
    /// RFC 9865: the count value is invalid.
    InvalidCount,
}

impl ScimType {
    /// The wire spelling, e.g. `invalidFilter`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SCIM protocol error. Every failure the engine reports is one of these, so a server can answer
/// any of them with [`Error::to_body`] and [`Error::status`] and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.map(ScimType::as_str).unwrap_or("error"))]
pub struct Error {
    status: u16,
    scim_type: Option<ScimType>,
    detail: String,
}

impl Error {
    /// An error with an explicit status and optional `scimType`.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidFilter), detail)
    }
    /// 400 `tooMany`.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::TooMany), detail)
    }
    /// 409 `uniqueness` (RFC 7644 §3.3: "If the service provider determines that the creation of
    /// the requested resource conflicts with existing resources … the service provider MUST
    /// return HTTP status code 409 (Conflict) with a "scimType" error code of "uniqueness"").
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::Mutability), detail)
    }
    /// 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidSyntax), detail)
    }
    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidPath), detail)
    }
    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::NoTarget), detail)
    }
    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }
    /// 400 `invalidVers`.
    pub fn invalid_vers(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidVers), detail)
    }
    /// 400 with no `scimType` (a malformed request that fits no listed type).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, None, detail)
    }
    /// 401: missing or invalid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }
    /// 403: the credential is valid but may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }
    /// 404 for a resource type and id.
    pub fn not_found(resource_type: &str, id: &str) -> Self {
        Self::new(404, None, format!("{resource_type} {id:?} not found"))
    }
    /// 404 with a free detail (unknown endpoint, unknown schema).
    pub fn not_found_detail(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    /// 409 without `scimType` (a version conflict that is not an If-Match failure).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, None, detail)
    }
    /// 412: If-Match did not match (RFC 7644 §3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }
    /// 413: body or bulk request too large (RFC 7644 §3.7.4).
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }
    /// 429: rate limited.
    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Self::new(429, None, detail)
    }
    /// 500 with a generic detail. The cause belongs in the server's log, never in the body.
    pub fn internal() -> Self {
        Self::new(
            500,
            None,
            "internal server error; the request id in the logs identifies the cause",
        )
    }
    /// 501: an optional feature this service provider does not implement.
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The RFC 7644 §3.12 `scimType`, when one applies.
    pub fn scim_type(&self) -> Option<ScimType> {
        self.scim_type
    }
    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Prefixes the detail with a location, e.g. the index of a failing PATCH operation.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.detail = format!("{prefix}: {}", self.detail);
        self
    }

    /// The RFC 7644 §3.12 response body.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            schemas: vec![ERROR_URN.to_string()],
            status: self.status.to_string(),
            scim_type: self.scim_type,
            detail: Some(self.detail.clone()),
        }
    }
}

/// The RFC 7644 §3.12 error body. `status` is a string: "status: The HTTP status code … expressed as
/// a JSON string. REQUIRED."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Always `[ERROR_URN]`.
    pub schemas: Vec<String>,
    /// The HTTP status code as a string.
    pub status: String,
    /// The `scimType`, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<ScimType>,
    /// The human-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_string_status_and_scim_type() {
        let body =
            serde_json::to_value(Error::uniqueness("userName \"a\" is taken").to_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "schemas": [ERROR_URN],
                "status": "409",
                "scimType": "uniqueness",
                "detail": "userName \"a\" is taken"
            })
        );
    }

    #[test]
    fn body_without_scim_type_omits_it() {
        let body = serde_json::to_value(Error::not_found("User", "x").to_body()).unwrap();
        assert!(body.get("scimType").is_none());
        assert_eq!(body["status"], "404");
    }

    #[test]
    fn context_prefixes_detail() {
        let e = Error::no_target("no member x").context("Operations[2]");
        assert_eq!(e.detail(), "Operations[2]: no member x");
    }
}
