//! Validation by direction (RFC 7643 §2.2, §7): what a create, a replace, a PATCH result and a
//! response must satisfy. Errors name the attribute by its wire path.

use crate::error::Result;
use crate::resource::{Attributes, Resource};
use crate::schema::{ResourceType, SchemaRegistry};

/// Checks a normalised create body: required attributes present, at most one `primary: true` per
/// multi-valued attribute, required extensions present.
pub fn create(registry: &SchemaRegistry, rt: &ResourceType, attrs: &Attributes) -> Result<()> {
    let _ = (registry, rt, attrs);
    todo!("resource helper")
}

/// Builds the attributes of a replace (PUT, RFC 7644 §3.5.1) from the stored resource and the
/// normalised body: readOnly attributes keep their stored values, an `immutable` attribute that
/// changes is `mutability`, and `active` absent from the body keeps its stored value (project
/// decision: Okta and Entra PUTs that omit it must not suspend the user). Then validates as
/// [`create`] does.
pub fn replace(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    existing: &Resource,
    incoming: Attributes,
) -> Result<Attributes> {
    let _ = (registry, rt, existing, incoming);
    todo!("resource helper")
}

/// Checks the attributes a PATCH produced (required attributes still present, one primary).
pub fn patch_result(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    attrs: &Attributes,
) -> Result<()> {
    let _ = (registry, rt, attrs);
    todo!("resource helper")
}
