//! Versions and weak ETags (RFC 7644 §3.14), and the If-Match / If-None-Match decisions.
//!
//! ```
//! use scim_core::etag::ETag;
//! let tag = ETag::new(7);
//! assert_eq!(tag.to_string(), "W/\"7\"");
//! assert_eq!(ETag::parse("W/\"7\""), Some(tag));
//! ```

use std::fmt;

/// A weak entity tag derived from a resource's version counter: `W/"<version>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ETag(u64);

impl ETag {
    /// The tag for a version.
    pub fn new(version: u64) -> Self {
        Self(version)
    }
    /// The version the tag stands for.
    pub fn version(self) -> u64 {
        self.0
    }
    /// Parses `W/"7"` or `"7"` (a strong tag is compared weakly, RFC 7232 §2.3.2). Returns
    /// `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s
            .strip_prefix("W/")
            .or_else(|| s.strip_prefix("w/"))
            .unwrap_or(s);
        let inner = s.strip_prefix('"')?.strip_suffix('"')?;
        inner.parse().ok().map(Self)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "W/\"{}\"", self.0)
    }
}

/// Decides an `If-Match` precondition (RFC 7644 §3.14, RFC 7232 §3.1) for a write to a resource at
/// version `current`.
///
/// - no header (or an empty one): no precondition, `Ok`;
/// - `*`: matches any existing resource;
/// - a comma-separated list of tags: `Ok` when one names `current` (weak comparison: `W/"7"` and
///   `"7"` both match version 7);
/// - otherwise 412 Precondition Failed: "If the ETag does not match, the service provider …
///   SHALL return HTTP status code 412" (RFC 7644 §3.14). Tags that do not parse never match.
///
/// ```
/// use scim_core::etag::check_if_match;
/// assert!(check_if_match(None, 3).is_ok());
/// assert!(check_if_match(Some("W/\"2\", W/\"3\""), 3).is_ok());
/// assert_eq!(check_if_match(Some("W/\"2\""), 3).unwrap_err().status(), 412);
/// ```
pub fn check_if_match(header: Option<&str>, current: u64) -> crate::Result<()> {
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    if matches_any(header, current) {
        Ok(())
    } else {
        Err(crate::Error::precondition_failed(format!(
            "If-Match {header} does not match the current version {}",
            ETag::new(current)
        )))
    }
}

/// Whether an `If-None-Match` header matches version `current`, in which case a GET answers
/// 304 Not Modified (RFC 7232 §3.2; RFC 7644 §3.14). `*` matches any existing resource; no
/// header never matches.
///
/// ```
/// use scim_core::etag::if_none_match_hit;
/// assert!(if_none_match_hit(Some("W/\"4\""), 4));
/// assert!(!if_none_match_hit(Some("W/\"3\""), 4));
/// assert!(!if_none_match_hit(None, 4));
/// ```
pub fn if_none_match_hit(header: Option<&str>, current: u64) -> bool {
    header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .is_some_and(|h| matches_any(h, current))
}

fn matches_any(header: &str, current: u64) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || ETag::parse(tag).is_some_and(|t| t.version() == current))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (If-Match header, current version, expected to pass)
    #[test]
    fn if_match_table() {
        let cases = [
            (None, 1, true),
            (Some(""), 1, true),
            (Some("*"), 9, true),
            (Some("W/\"9\""), 9, true),
            (Some("\"9\""), 9, true),
            (Some("w/\"9\""), 9, true),
            (Some("W/\"8\""), 9, false),
            (Some("W/\"1\", W/\"9\""), 9, true),
            (Some("W/\"1\",W/\"2\""), 9, false),
            (Some("garbage"), 9, false),
            (Some("W/\"abc\""), 9, false),
        ];
        for (header, current, ok) in cases {
            let got = check_if_match(header, current);
            assert_eq!(got.is_ok(), ok, "{header:?} vs {current}");
            if let Err(e) = got {
                assert_eq!(e.status(), 412);
                assert!(e.detail().contains("W/\"9\""), "{}", e.detail());
            }
        }
    }

    /// (If-None-Match header, current version, hit)
    #[test]
    fn if_none_match_table() {
        let cases = [
            (None, 1, false),
            (Some("*"), 1, true),
            (Some("W/\"1\""), 1, true),
            (Some("W/\"2\", \"1\""), 1, true),
            (Some("W/\"2\""), 1, false),
            (Some(" "), 1, false),
        ];
        for (header, current, hit) in cases {
            assert_eq!(if_none_match_hit(header, current), hit, "{header:?}");
        }
    }
}
