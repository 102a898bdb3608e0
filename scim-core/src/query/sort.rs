//! `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3) over representations, as the in-memory reference.

use super::{Sort, SortOrder};
use crate::resource::parse_datetime;
use crate::schema::{AttributeDef, AttributeType, ResolvedPath};
use serde_json::Value;
use std::cmp::Ordering;

/// Sorts full representations (as [`crate::resource::Resource::to_json`] gives them) by `sort`.
///
/// - Values compare by the attribute's type: strings honour `caseExact` (a case-insensitive
///   attribute compares lower-cased), numbers numerically, `dateTime`s chronologically, booleans
///   `false` before `true` (RFC 7644 §3.4.2.3: "the sort order … depends on the attribute type").
/// - A multi-valued attribute sorts by its primary value, else its first ("if [the attribute]
///   is a multi-valued attribute, resources MUST be sorted by the value of the primary attribute
///   … if any, or else the first value in the list"); a complex attribute without a
///   sub-attribute sorts by its `value`.
/// - Resources without a value come last in both directions (RFC 7644 §3.4.2.3: "null or
///   unassigned attribute values … SHALL be sorted last").
/// - Ties, and resources without a value, are ordered by `id` ascending, so pages are stable.
pub fn sort_resources(resources: &mut [Value], sort: &Sort) {
    let leaf = sort.path.leaf();
    resources.sort_by(|a, b| {
        let by_value = match (sort_key(a, &sort.path), sort_key(b, &sort.path)) {
            (Some(x), Some(y)) => {
                let o = compare(leaf, x, y);
                match sort.order {
                    SortOrder::Ascending => o,
                    SortOrder::Descending => o.reverse(),
                }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_value.then_with(|| id_of(a).cmp(id_of(b)))
    });
}

fn id_of(v: &Value) -> &str {
    v.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// The value a resource sorts by, or `None` when it has none.
fn sort_key<'a>(resource: &'a Value, path: &ResolvedPath) -> Option<&'a Value> {
    let value = path.attribute_value(resource.as_object()?)?;
    let value = match value {
        Value::Array(items) => items
            .iter()
            .find(|i| i.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?,
        other => other,
    };
    let value = match &path.sub {
        Some(sub) => value.get(&sub.name)?,
        None if path.attr.kind == AttributeType::Complex => value.get("value")?,
        None => value,
    };
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(other),
    }
}

fn compare(def: &AttributeDef, a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
        },
        (Value::String(x), Value::String(y)) => {
            if def.kind == AttributeType::DateTime
                && let (Some(x), Some(y)) = (parse_datetime(x), parse_datetime(y))
            {
                return x.cmp(&y);
            }
            if def.case_exact {
                x.cmp(y)
            } else {
                x.to_lowercase().cmp(&y.to_lowercase())
            }
        }
        // Mixed JSON types (undeclared attributes): order by type, then by text.
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}
