//! Standalone conformance and interoperability runner for SCIM 2.0 servers.
//!
//! The runner speaks HTTP and JSON only: it deliberately shares no code with the
//! server crates of this workspace, so a defect common to a server and its checker
//! cannot hide itself. Every check writes out the values it expects, carries a stable
//! id and a reference (an RFC 7643/7644 section or an Entra ID / Okta client
//! behaviour), and creates uniquely named objects that it deletes afterwards.
//!
//! ```no_run
//! use scim_conformance::{run, Profile, RunConfig};
//!
//! let config = RunConfig::new("http://127.0.0.1:8080/scim/v2", "token").profile(Profile::All);
//! let report = run(&config);
//! assert_eq!(report.failed(), 0, "{}", report.summary_line());
//! ```
//!
//! Modules:
//! - [`config`]: what to run and against which server;
//! - [`report`]: outcomes and the text, JSON and JUnit writers;
//! - [`ctx`]: the HTTP client, the recorded exchanges and the cleanup registry;
//! - [`checks`]: the registry of checks, grouped by area;
//! - [`load`]: the load generator behind `scim-conformance load` (benchmarks).

pub mod checks;
pub mod config;
pub mod ctx;
pub mod load;
pub mod report;
mod runner;

pub use checks::{Area, Check, Feature, registry};
pub use config::{Profile, RunConfig};
pub use report::{CheckResult, Outcome, Report};
pub use runner::{run, run_async, run_with};

/// Errors of the library API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL could not be parsed.
    #[error("invalid base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result type of the library API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
