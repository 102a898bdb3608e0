//! # scim-core
//!
//! The SCIM 2.0 engine (RFC 7643, RFC 7644) with no I/O and no async runtime: schemas and
//! resource types, resources, the request dialects real clients send, validation, filters, PATCH,
//! list queries, ETags, changes and Bulk. Wire grammars come from the [`scim_v2`] crate; this crate
//! decides what they mean against the schemas.
//!
//! A server embeds it as: normalise the body ([`normalize::request_body`]), validate it
//! ([`validate`]), apply PATCH ([`patch::apply`]), evaluate or compile filters ([`filter::Filter`]),
//! render ([`resource::Resource::to_json`]) and report failures as [`Error`] bodies.

pub mod bulk;
pub mod change;
pub mod error;
pub mod etag;
pub mod filter;
pub mod normalize;
pub mod patch;
pub mod query;
pub mod resource;
pub mod schema;
pub mod validate;

pub use error::{Error, Result, ScimType};
