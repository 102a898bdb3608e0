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
