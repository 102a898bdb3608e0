//! Request dialects normalised on the way in (Entra ID with and without `aadOptscim062020`, Okta,
//! HR-style pushers): canonical attribute names, string booleans, nulls, unknown schema URNs,
//! readOnly attributes, the many shapes of `manager`, JSON-encoded `roles`.
//!
//! Everything here accepts what real clients send; what is genuinely invalid becomes a SCIM error
//! naming the attribute by its wire path.

mod value;

pub use value::attribute_value;

use crate::error::Result;
use crate::resource::Attributes;
use crate::schema::{ResourceType, SchemaRegistry};
use serde_json::Value;

/// Normalises a POST or PUT body into canonical [`Attributes`].
///
/// - top-level names in any case become canonical (RFC 7643 §2.1); unqualified extension
///   attributes (Entra's legacy `"department": null` at the top level) move under their URN;
/// - `schemas`, `id`, `meta`, `groups` and other readOnly attributes are dropped (RFC 7643 §7:
///   readOnly values sent by a client "SHALL be ignored");
/// - unknown `schemas` URNs are ignored (Entra's `…enterprise:2.0User`, Microsoft's ADSCIM group
///   URN); extension objects keyed by an unknown URN are kept as sent;
/// - every value goes through [`attribute_value`].
///
/// The body must be a JSON object, else `invalidSyntax`.
pub fn request_body(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    body: Value,
) -> Result<Attributes> {
    let _ = (registry, rt, body);
    todo!("resource helper")
}
