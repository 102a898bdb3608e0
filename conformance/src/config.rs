//! Run configuration: the server under test and the selection of checks.

use std::time::Duration;

/// A set of checks named after the client behaviour they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// RFC 7643 / RFC 7644 behaviour.
    Rfc,
    /// What Microsoft Entra ID provisioning sends (legacy and `aadOptscim062020` dialects).
    Entra,
    /// What Okta provisioning sends.
    Okta,
    /// Every check.
    All,
}

impl Profile {
    /// Parses `rfc`, `entra`, `okta` or `all` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rfc" => Some(Self::Rfc),
            "entra" => Some(Self::Entra),
            "okta" => Some(Self::Okta),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// The lowercase name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rfc => "rfc",
            Self::Entra => "entra",
            Self::Okta => "okta",
            Self::All => "all",
        }
    }

    /// Whether a check of profile `check` belongs to this selection.
    pub fn includes(self, check: Profile) -> bool {
        self == Self::All || self == check
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to run, and against which server.
#[derive(Clone)]
pub struct RunConfig {
    /// SCIM base URL, e.g. `http://127.0.0.1:8080/scim/v2` (a trailing slash is accepted).
    pub base_url: String,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// Which profile(s) to run.
    pub profile: Profile,
    /// Only run checks whose id equals one of these, or starts with one of them
    /// followed by `.` (or with a trailing `*`). Empty means all.
    pub only: Vec<String>,
    /// Timeout of each HTTP request.
    pub timeout: Duration,
    /// Print one line per check to standard output as the run goes.
    pub verbose: bool,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("profile", &self.profile)
            .field("only", &self.only)
            .field("timeout", &self.timeout)
            .field("verbose", &self.verbose)
            .finish()
    }
}

impl RunConfig {
    /// A configuration running every profile, quietly, with a 15 s request timeout.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token: token.into(),
            profile: Profile::All,
            only: Vec::new(),
            timeout: Duration::from_secs(15),
            verbose: false,
        }
    }

    /// Selects a profile.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Restricts the run to these ids or id prefixes.
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.only = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Prints one line per check as the run goes.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Whether the check `id` is selected by [`RunConfig::only`].
    pub fn selects(&self, id: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|o| {
                let o = o.trim();
                if let Some(prefix) = o.strip_suffix('*') {
                    id.starts_with(prefix)
                } else {
                    id == o || (id.starts_with(o) && id[o.len()..].starts_with('.'))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matches_ids_and_dotted_prefixes() {
        let c = RunConfig::new("http://x", "t").only([
            "filter",
            "patch.add.single-valued",
            "entra.group.l*",
        ]);
        assert!(c.selects("filter.eq.username"));
        assert!(!c.selects("filterx.eq"));
        assert!(c.selects("patch.add.single-valued"));
        assert!(!c.selects("patch.add.single-valued-x"));
        assert!(c.selects("entra.group.legacy-member-remove"));
        assert!(!c.selects("entra.group.rename"));
        assert!(RunConfig::new("http://x", "t").selects("anything"));
    }

    #[test]
    fn profiles_parse_and_include() {
        assert_eq!(Profile::parse("ENTRA"), Some(Profile::Entra));
        assert_eq!(Profile::parse("nope"), None);
        assert!(Profile::All.includes(Profile::Okta));
        assert!(!Profile::Rfc.includes(Profile::Okta));
        assert!(!format!("{:?}", RunConfig::new("http://x", "secret")).contains("secret"));
    }
}
