//! What a PATCH path (or a key of a path-less value object) designates, resolved against the
//! schemas.

use crate::error::{Error, Result};
use crate::schema::{
    AttributeDef, AttributeType, Location, Mutability, ResolvedPath, ResourceType, SchemaRegistry,
};

/// A resolved PATCH target.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// The resource itself (no path, or the core schema URN used as a path).
    Resource,
    /// A whole extension object, e.g. the path `urn:…:enterprise:2.0:User`. Holds the URN.
    Extension(String),
    /// An attribute or one of its sub-attributes (for a multi-valued attribute: of every element).
    Attr(Box<ResolvedPath>),
}

/// Resolves `[uri:]name[.sub]`. Names no schema declares become undeclared attributes (stored as
/// sent): under the URN key when a URN was given, else at the top level.
pub(super) fn resolve(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    uri: Option<&str>,
    name: &str,
    sub: Option<&str>,
) -> Result<Target> {
    if !is_name(name) || sub.is_some_and(|s| !is_name(s)) {
        return Err(Error::invalid_path(format!(
            "{:?} is not an attribute name (RFC 7643 §2.1)",
            shown(name, sub)
        )));
    }
    if let (Some(uri), None) = (uri, sub) {
        let full = format!("{uri}:{name}");
        if let Some(urn) = registry.extension_urn(rt, &full) {
            return Ok(Target::Extension(urn.to_string()));
        }
        if rt.schema.eq_ignore_ascii_case(&full) {
            return Ok(Target::Resource);
        }
    }
    if let Some(path) = registry.resolve(rt, uri, name, sub) {
        return Ok(Target::Attr(Box::new(path)));
    }
    if let Some(sub) = sub {
        // A declared attribute with a sub-attribute no schema declares: kept as sent.
        if let Some(mut path) = registry.resolve(rt, uri, name, None) {
            if path.attr.kind != AttributeType::Complex {
                return Err(Error::invalid_path(format!(
                    "{path} is not complex and has no sub-attribute {sub:?}"
                )));
            }
            path.sub = Some(AttributeDef::undeclared(sub));
            path.declared = false;
            return Ok(Target::Attr(Box::new(path)));
        }
    }
    if let (Some(uri), None) = (uri, sub) {
        // `urn:…:CustomExtensionName:2.0:User` names an extension object no schema declares:
        // attribute names are camelCase, schema URNs end in a resource name.
        if registry.schema(uri).is_none() && name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Ok(Target::Extension(format!("{uri}:{name}")));
        }
    }
    undeclared(registry, rt, uri, name, sub)
}

/// Resolves a key of an extension object (`urn` is the extension): always an attribute of that
/// extension, even when the name is capitalised as HR systems write them (`HireDate`), which
/// [`resolve`] would otherwise read as a further extension URN.
pub(super) fn resolve_in_extension(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    urn: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<Target> {
    match resolve(registry, rt, Some(urn), name, sub)? {
        Target::Extension(_) => undeclared(registry, rt, Some(urn), name, sub),
        other => Ok(other),
    }
}

/// A name no schema declares, stored as sent: under the URN key when a URN was given, else at
/// the top level.
fn undeclared(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    uri: Option<&str>,
    name: &str,
    sub: Option<&str>,
) -> Result<Target> {
    let (schema, location) = match uri {
        Some(uri) => match registry.schema(uri) {
            Some(s) if !rt.has_schema(&s.id) => {
                return Err(Error::invalid_path(format!(
                    "schema {} is not a schema of resource type {}",
                    s.id, rt.name
                )));
            }
            Some(s) if s.id.eq_ignore_ascii_case(&rt.schema) => (rt.schema.clone(), Location::Core),
            Some(s) => (s.id.clone(), Location::Extension),
            None => (uri.to_string(), Location::Extension),
        },
        None => (rt.schema.clone(), Location::Core),
    };
    let mut attr = AttributeDef::undeclared(name);
    if sub.is_some() {
        attr.kind = AttributeType::Complex;
    }
    Ok(Target::Attr(Box::new(ResolvedPath {
        schema,
        location,
        attr,
        sub: sub.map(AttributeDef::undeclared),
        declared: false,
    })))
}

/// The readOnly attribute or sub-attribute a path names, if any.
pub(super) fn read_only(path: &ResolvedPath) -> bool {
    path.attr.mutability == Mutability::ReadOnly
        || path
            .sub
            .as_ref()
            .is_some_and(|s| s.mutability == Mutability::ReadOnly)
}

/// RFC 7643 §2.1 ATTRNAME (letters, digits, `_`, `-`, and `$` for `$ref`).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

fn shown(name: &str, sub: Option<&str>) -> String {
    let mut s: String = name.chars().take(100).collect();
    if let Some(sub) = sub {
        s.push('.');
        s.extend(sub.chars().take(100));
    }
    s
}
