//! Evaluation of a resolved [`Filter`] against a resource's JSON representation.
//!
//! The rules (RFC 7644 §3.4.2.2), and where this engine had to choose:
//!
//! - Strings compare per the attribute's `caseExact` (case-insensitively by lowercasing both
//!   sides); `gt`/`ge`/`lt`/`le` on strings are lexicographic, on dateTime chronological, on
//!   numbers numeric, as RFC 7644 §3.4.2.2 Table 3 defines them.
//! - dateTime values compare as instants, numbers numerically (integers exactly, otherwise as
//!   `f64`), booleans by equality. A stored value of the wrong type never matches.
//! - Multi-valued attributes, and sub-attributes of multi-valued attributes (`emails.value`),
//!   match when **any** value matches. `ne` is the negation of `eq`: `emails.value ne "x"`
//!   matches when no email is `x`, including when there are no emails, so `a ne v` and
//!   `not (a eq v)` always agree.
//! - `pr` and `eq null`/`ne null`: present means not null, not `""`, not `[]` and not an object
//!   without a present member ("If the attribute has a non-empty value, or if it contains a
//!   non-empty node for complex attributes, there is a match"). `eq null` is "not present",
//!   `ne null` is "present".
//! - `attr[filter]` matches when one element satisfies the whole inner filter; a single-valued
//!   complex attribute (`name[givenName eq "x"]`) is its own single element.
//! - Undeclared attributes are compared by the JSON type of the comparison value, strings
//!   case-insensitively; keys are looked up exactly, then case-insensitively.
//!
//! ```
//! use scim_core::filter::Filter;
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//! let user = json!({
//!     "userName": "bjensen",
//!     "emails": [{"type": "home", "value": "b@home"}, {"type": "work", "value": "b@work"}],
//!     "meta": {"lastModified": "2024-05-01T10:00:00Z"}
//! });
//! let user = user.as_object().unwrap();
//! let check = |f: &str| Filter::parse(&registry, users, f).unwrap().matches(user);
//! assert!(check(r#"emails.value ew "@work""#));
//! assert!(!check(r#"emails[type eq "home" and value ew "@work"]"#));
//! assert!(check(r#"meta.lastModified gt "2024-05-01T11:00:00+02:00""#));
//! assert!(!check(r#"noSuchAttribute eq "x""#));
//! ```

use super::{Comparison, Filter};
use crate::resource::parse_datetime;
use crate::schema::{AttributeType, Location, ResolvedPath};
use scim_v2::filter::CompareOp;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// What a filter's paths are evaluated against.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    /// A whole resource: paths start at the top level (or the extension's URN key).
    Resource(&'a Map<String, Value>),
    /// One element of a multi-valued (or the value of a single-valued) complex attribute: paths
    /// name its sub-attributes.
    Element(&'a Value),
}

impl Filter {
    /// Whether the resource (its full representation, as [`crate::resource::Resource::to_json`]
    /// gives it, with `id` and `meta`) matches.
    pub fn matches(&self, resource: &Map<String, Value>) -> bool {
        self.eval(Ctx::Resource(resource))
    }

    /// Whether one element of a multi-valued attribute matches a value-path filter (the filter's
    /// paths name sub-attributes). Used by PATCH for `emails[type eq "work"]` targets.
    pub fn matches_element(&self, element: &Value) -> bool {
        self.eval(Ctx::Element(element))
    }

    /// Recursion depth is bounded by `MAX_FILTER_DEPTH` (the parser refuses deeper trees).
    fn eval(&self, ctx: Ctx<'_>) -> bool {
        match self {
            Filter::And(items) => items.iter().all(|f| f.eval(ctx)),
            Filter::Or(items) => items.iter().any(|f| f.eval(ctx)),
            Filter::Not(inner) => !inner.eval(ctx),
            Filter::Present(path) => any_value(path, ctx, |v| is_present(v, 3)),
            Filter::Compare(c) => compare(c, ctx),
            Filter::ValuePath { path, filter } => match attribute(path, ctx) {
                Some(Value::Array(items)) => items.iter().any(|e| filter.eval(Ctx::Element(e))),
                Some(element @ Value::Object(_)) => filter.eval(Ctx::Element(element)),
                _ => false,
            },
        }
    }
}

/// A key, exactly or else case-insensitively (stored names are canonical, but undeclared ones
/// are kept as the client spelled them).
fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The attribute's value (not its sub-attribute's) in the context.
fn attribute<'a>(path: &ResolvedPath, ctx: Ctx<'a>) -> Option<&'a Value> {
    match ctx {
        Ctx::Resource(map) => match path.location {
            Location::Common | Location::Core => get_ci(map, &path.attr.name),
            Location::Extension => get_ci(get_ci(map, &path.schema)?.as_object()?, &path.attr.name),
        },
        Ctx::Element(element) => Some(element),
    }
}

/// Whether `pred` holds for any leaf value of `path`: the attribute's values (each element of a
/// multi-valued one), or the sub-attribute's value in each of them.
fn any_value(path: &ResolvedPath, ctx: Ctx<'_>, mut pred: impl FnMut(&Value) -> bool) -> bool {
    let Some(value) = attribute(path, ctx) else {
        return false;
    };
    let mut leaf = |v: &Value| match v {
        Value::Array(items) => items.iter().any(&mut pred),
        other => pred(other),
    };
    match &path.sub {
        None => leaf(value),
        Some(sub) => {
            let mut in_element = |e: &Value| {
                e.as_object()
                    .and_then(|o| get_ci(o, &sub.name))
                    .is_some_and(&mut leaf)
            };
            match value {
                Value::Array(items) => items.iter().any(in_element),
                other => in_element(other),
            }
        }
    }
}

/// RFC 7644 §3.4.2.2 `pr`: not null, not empty, or a complex node with a present member.
/// Nesting beyond `depth` counts as present when not null.
fn is_present(v: &Value, depth: u8) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(|i| depth == 0 || is_present(i, depth - 1)),
        Value::Object(o) => o.values().any(|i| depth == 0 || is_present(i, depth - 1)),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(c: &Comparison, ctx: Ctx<'_>) -> bool {
    match (&c.op, &c.value) {
        (CompareOp::Eq, Value::Null) => !any_value(&c.path, ctx, |v| is_present(v, 3)),
        (CompareOp::Ne, Value::Null) => any_value(&c.path, ctx, |v| is_present(v, 3)),
        (CompareOp::Ne, _) => !any_value(&c.path, ctx, |v| test(c, &CompareOp::Eq, v)),
        (op, _) => any_value(&c.path, ctx, |v| test(c, op, v)),
    }
}

/// One stored value against the comparison.
fn test(c: &Comparison, op: &CompareOp, actual: &Value) -> bool {
    let leaf = c.path.leaf();
    let kind = if c.path.declared {
        leaf.kind
    } else {
        match &c.value {
            Value::Bool(_) => AttributeType::Boolean,
            Value::Number(_) => AttributeType::Decimal,
            _ => AttributeType::String,
        }
    };
    match kind {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
            let (Some(actual), Some(expected)) = (text(actual), c.value.as_str()) else {
                return false;
            };
            let case_exact = c.path.declared && leaf.case_exact;
            compare_text(op, &actual, expected, case_exact)
        }
        AttributeType::Boolean => match (boolean(actual), c.value.as_bool()) {
            (Some(a), Some(b)) => matches!(op, CompareOp::Eq) && a == b,
            _ => false,
        },
        AttributeType::Integer | AttributeType::Decimal => {
            match (number(actual), c.value.as_number()) {
                (Some(a), Some(b)) => ordering_holds(op, compare_numbers(&a, b)),
                _ => false,
            }
        }
        AttributeType::DateTime => {
            let a = actual.as_str().and_then(parse_datetime);
            let b = c.value.as_str().and_then(parse_datetime);
            match (a, b) {
                (Some(a), Some(b)) => ordering_holds(op, Some(a.cmp(&b))),
                _ => false,
            }
        }
        AttributeType::Complex => false,
    }
}

/// A scalar as text (numbers and booleans as their JSON text, so an undeclared attribute stored
/// as `5` matches `"5"`).
fn text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn number(v: &Value) -> Option<Cow<'_, Number>> {
    match v {
        Value::Number(n) => Some(Cow::Borrowed(n)),
        Value::String(s) => serde_json::from_str(s.trim()).ok().map(Cow::Owned),
        _ => None,
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn compare_text(op: &CompareOp, actual: &str, expected: &str, case_exact: bool) -> bool {
    let (actual, expected) = if case_exact {
        (Cow::Borrowed(actual), Cow::Borrowed(expected))
    } else {
        (
            Cow::Owned(actual.to_lowercase()),
            Cow::Owned(expected.to_lowercase()),
        )
    };
    match op {
        CompareOp::Co => actual.contains(expected.as_ref()),
        CompareOp::Sw => actual.starts_with(expected.as_ref()),
        CompareOp::Ew => actual.ends_with(expected.as_ref()),
        op => ordering_holds(op, Some(actual.cmp(&expected))),
    }
}

fn ordering_holds(op: &CompareOp, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
