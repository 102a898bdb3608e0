//! `sortBy` compilation: a typed SQL sort key, as `scim_core::query::sort_resources` orders.

use super::filter::{Column, column_for};
use super::json::{JsonRef, Kind};
use super::{Sql, attr_keys};
use scim_core::schema::{AttributeDef, AttributeType, ResolvedPath, ResourceType};

/// The sub-attribute a path sorts by: its own, or `value` for a complex attribute named alone.
fn effective_sub(path: &ResolvedPath) -> (Option<String>, AttributeDef) {
    if let Some(sub) = &path.sub {
        return (Some(sub.name.clone()), sub.clone());
    }
    if path.attr.kind == AttributeType::Complex
        && let Some(v) = path.attr.sub_attribute("value")
    {
        return (Some(v.name.clone()), v.clone());
    }
    (None, path.attr.clone())
}

/// The SQL sort key of `sortBy` (NULL when the resource has no value to sort by).
pub(super) fn sort_key(sql: &mut Sql, rt: &ResourceType, path: &ResolvedPath) -> String {
    let pg = sql.pg();
    let collate = if pg { " COLLATE \"C\"" } else { "" };
    match column_for(rt, path) {
        Some(Column::Text { expr, folded }) => {
            let ci = !folded && !path.leaf().case_exact;
            // An empty string counts as no value.
            return if ci {
                format!("NULLIF(lower({expr}), ''){collate}")
            } else {
                format!("NULLIF({expr}, ''){collate}")
            };
        }
        Some(Column::Time(expr)) => return expr,
        Some(Column::Const(_)) | Some(Column::Absent) => return "NULL".into(),
        None => {}
    }
    let keys = attr_keys(path);
    let json = JsonRef::root(sql, &keys);
    let (sub, leaf) = effective_sub(path);
    // Typed as `scim_core::query::sort_resources` compares: numbers numerically, booleans false
    // first, dateTimes as instants, strings per caseExact (code-point order); "" is no value.
    let typed = |v: &JsonRef| -> String {
        match leaf.kind {
            AttributeType::Integer | AttributeType::Decimal => v.number(),
            AttributeType::Boolean => format!(
                "CASE WHEN {} THEN 1 WHEN {} THEN 0 END",
                v.is(Kind::True),
                v.is(Kind::False)
            ),
            AttributeType::DateTime => v.instant(),
            AttributeType::Complex => "NULL".into(),
            _ => {
                let text = if leaf.case_exact {
                    v.text()
                } else {
                    v.folded_text()
                };
                format!(
                    "CASE WHEN {} AND {} <> '' THEN {text}{collate} END",
                    v.is(Kind::String),
                    v.text()
                )
            }
        }
    };
    // An array sorts by its primary element, else its first (RFC 7644 §3.4.2.3), whatever that
    // element holds.
    let (from, elem, ord) = json.elements(sql);
    let primary = elem.child(sql, "primary");
    let elem_value = match &sub {
        Some(s) => elem.child(sql, s),
        None => elem.clone(),
    };
    let in_array = typed(&elem_value);
    let single = match &sub {
        Some(s) => json.child(sql, s),
        None => json.clone(),
    };
    let single = typed(&single);
    // (SQLite cannot resolve outer columns in the ORDER BY of a subquery over `json_each`, so
    // the ordering terms are computed one level down.)
    format!(
        "CASE WHEN {} THEN (SELECT x.k FROM (SELECT {in_array} AS k, \
         CASE WHEN {} THEN 0 ELSE 1 END AS p, {ord} AS n FROM {from}) x \
         ORDER BY x.p, x.n LIMIT 1) ELSE {single} END",
        json.is(Kind::Array),
        primary.is(Kind::True)
    )
}
