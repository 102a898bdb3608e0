//! The crate's error type.

use crate::rules::RulesError;

/// Result alias for the bridge.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The rules file is invalid.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A Graph call failed (after retries, where retrying applies).
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    /// The bridge's database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The user directory (the SCIM store) failed.
    #[error("user directory: {0}")]
    Directory(String),
    /// The change log (the server's outbox) could not be read.
    #[error("change log: {0}")]
    ChangeLog(String),
    /// A local I/O error (reading a key or rules file).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A background task failed unexpectedly.
    #[error("internal: {0}")]
    Internal(String),
    /// Stored JSON could not be (de)serialised.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A configuration error whose message names the key itself.
    pub fn config(message: String) -> Self {
        Error::Config(crate::config::ConfigError::message(message))
    }
}
