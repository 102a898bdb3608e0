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
//!
//! ```
//! use scim_core::patch::{self, Members, PatchRequest};
//! use scim_core::resource::{Meta, Resource};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//!
//! // A create in Entra's legacy dialect: capitalised names and a string boolean.
//! let attrs = scim_core::normalize::request_body(
//!     &registry,
//!     users,
//!     json!({"UserName": "alice@contoso.com", "Active": "True"}),
//! )?;
//! scim_core::validate::create(&registry, users, &attrs)?;
//! let alice = Resource::new("User", "u-alice", attrs, Meta::new(time::OffsetDateTime::UNIX_EPOCH));
//!
//! // Entra disables her with `"value": "False"`.
//! let request = PatchRequest::parse(
//!     json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
//!     100,
//! )?;
//! let outcome = patch::apply(&registry, users, &alice, &request, Members::Inline)?;
//! assert!(outcome.changed);
//! assert_eq!(outcome.attributes["active"], json!(false));
//! # Ok::<(), scim_core::Error>(())
//! ```

pub mod bulk;
pub mod change;
pub mod change_log;
pub mod error;
pub mod etag;
pub mod filter;
pub mod normalize;
pub mod patch;
pub mod query;
pub mod resource;
pub mod schema;
pub mod validate;

pub use change_log::{ChangeCursor, ChangeLogEntry};
pub use error::{Error, Result, ScimType};
