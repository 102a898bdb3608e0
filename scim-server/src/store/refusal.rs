//! A database's refusal reported by a driver other than sqlx's (the SQLite writer thread's
//! rusqlite connection, PostgreSQL's shared connections), carried as [`sqlx::Error::Database`] so
//! that the store reads it as it reads sqlx's ([`super::classify`], [`super::unique_violation`]).

use sqlx::error::ErrorKind;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct Refusal {
    /// The database's code: SQLite's extended result code as a number, or PostgreSQL's SQLSTATE.
    pub code: String,
    pub message: String,
    /// The constraint a PostgreSQL refusal names (a unique key's, say); SQLite names none.
    pub constraint: Option<String>,
    /// The kind of refusal `code` is, by the driver's codes.
    pub kind_of: fn(&str) -> ErrorKind,
}

impl Refusal {
    pub(crate) fn into_sqlx(self) -> sqlx::Error {
        sqlx::Error::Database(Box::new(self))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

impl sqlx::error::DatabaseError for Refusal {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.code))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    fn kind(&self) -> ErrorKind {
        (self.kind_of)(&self.code)
    }
}
