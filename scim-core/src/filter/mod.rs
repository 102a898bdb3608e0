//! SCIM filters (RFC 7644 §3.4.2.2): parsing with hard limits, resolution of every attribute path
//! against the schemas, and evaluation against a resource.
//!
//! The grammar comes from `scim_v2`; this module turns its AST into a [`Filter`] whose every path
//! is a [`ResolvedPath`] (canonical names, the attribute definitions that govern comparison), so
//! the engine's evaluator and a storage layer's SQL compiler read the same tree.
//!
//! # What a storage layer compiling this tree can rely on
//!
//! - **Shape.** `And`/`Or` are n-ary with at least two operands and never directly contain the
//!   same operator (`a and (b and c)` is one `And`). Depth is at most [`MAX_FILTER_DEPTH`] and the
//!   node count at most [`MAX_FILTER_NODES`], so recursive compilation is safe.
//! - **Paths.** Canonical names. [`Location`](crate::schema::Location) says where the value
//!   lives (`id`/`externalId`/`meta.*` are `Common`; extension attributes sit under
//!   `ResolvedPath::schema` as a JSON key). A [`Comparison`] on a complex attribute always has
//!   `sub` set: `manager eq "x"` arrives as `manager.value eq "x"` (see [`Filter::parse`]).
//!   Inside [`Filter::ValuePath`] every path has `sub` set and the parent's `attr`.
//! - **Undeclared attributes** have `declared: false` and are compared by the JSON type of the
//!   comparison value, strings case-insensitively; compile them against the stored JSON, and let
//!   them match nothing when nothing is stored.
//! - **Values are type-checked and normalised** against the leaf's type: strings for string,
//!   reference and binary attributes (an unquoted `12345` becomes `"12345"`); `true`/`false`
//!   for booleans (also from `"True"`); JSON numbers for integer and decimal; for dateTime an
//!   RFC 3339 UTC string as [`format_datetime`](crate::resource::format_datetime) writes it
//!   (compare as instants); `null` only with `eq` (not present) and `ne` (present). Operators a
//!   type does not support never reach the tree (`gt` on a boolean, `co` on a number or
//!   dateTime are `invalidFilter` at parse time, RFC 7644 §3.4.2.2).
//! - **Semantics** (see the evaluator's module doc): string comparison per `caseExact`; any
//!   element of a multi-valued attribute may match; `ne` is exactly `not eq` (also true when the
//!   attribute is absent); `pr` means present and non-empty.
//!
//! ```
//! use scim_core::filter::Filter;
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//! let filter = Filter::parse(&registry, users, r#"USERNAME eq "BJensen" and emails[type eq "work"]"#).unwrap();
//! let user = json!({"id": "1", "userName": "bjensen", "emails": [{"type": "work", "value": "b@x"}]});
//! assert!(filter.matches(user.as_object().unwrap()));
//! ```

mod display;
mod eval;
mod parse;
mod rewrite;
mod simple;

use crate::schema::ResolvedPath;
pub use scim_v2::filter::CompareOp;
use serde_json::Value;

/// Longest filter string accepted, in bytes. Longer ones are `invalidFilter`, before parsing.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Most nested levels (`not`, grouping that changes operator, value paths) a filter may have.
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most nodes (comparisons, presence tests and logical operators) a filter may have.
pub const MAX_FILTER_NODES: usize = 512;

/// A parsed filter whose attribute paths are resolved against a resource type.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every operand matches.
    And(Vec<Filter>),
    /// At least one operand matches.
    Or(Vec<Filter>),
    /// The operand does not match.
    Not(Box<Filter>),
    /// `path pr`: the attribute is present and not empty (RFC 7644 §3.4.2.2 "If the attribute
    /// has a non-empty value, or if it contains a non-empty node for complex attributes, there is
    /// a match").
    Present(ResolvedPath),
    /// `path op value`.
    Compare(Comparison),
    /// `attr[filter]`: some element of the multi-valued (or complex) attribute `path` satisfies
    /// `filter`, whose paths are sub-attributes of `path` (each with `sub` set).
    ///
    /// Entra's `emails[type eq "work"].value eq "x"` (outside the RFC ABNF) is accepted and
    /// represented as `emails[type eq "work" and value eq "x"]`: the same element must satisfy
    /// both, which is what the client means.
    ValuePath {
        /// The multi-valued or complex attribute.
        path: ResolvedPath,
        /// The condition on one element; its paths name sub-attributes of `path`.
        filter: Box<Filter>,
    },
}

/// A comparison `path op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The attribute (and sub-attribute) compared.
    pub path: ResolvedPath,
    /// The operator (`eq`, `ne`, `co`, `sw`, `ew`, `gt`, `lt`, `ge`, `le`).
    pub op: CompareOp,
    /// The comparison value as JSON (`"str"`, a number, `true`/`false` or `null`).
    pub value: Value,
}

#[cfg(test)]
mod tests;
