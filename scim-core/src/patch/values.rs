//! Helpers on attribute maps and multi-valued elements: case-insensitive keys, element identity
//! and merging, one primary. (What a PATCH changed is [`crate::resource::changed_paths`].)

use super::matcher::eq_template;
use super::target;
use crate::error::{Error, Result};
use crate::normalize::attribute_value;
use crate::schema::{AttributeDef, Mutability, ResolvedPath};
use scim_v2::filter::ValFilter;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// `null` and `""` both mean "no value" in a PATCH (RFC 7644 §3.5.2.3 for `null`; Entra's and
/// Microsoft's validator's "replace with empty" for `""`, reference Q8 and Q19).
pub(super) fn blank(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

pub(super) fn read_only_check(path: &ResolvedPath) -> Result<()> {
    if target::read_only(path) {
        return Err(Error::mutability(format!(
            "{path} is readOnly (RFC 7643 §7) and cannot be patched"
        )));
    }
    Ok(())
}

/// The key of `map` equal to `name` ignoring case (the exact key first).
pub(super) fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Sets `name` in `map` (removing a differently-cased spelling), or removes it, keeping the order
/// of the other keys.
pub(super) fn set_in(map: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(other) = map
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name) && k.as_str() != name)
        .cloned()
    {
        map.shift_remove(&other);
    }
    match value {
        Some(v) => {
            map.insert(name.to_string(), v);
        }
        None => {
            map.shift_remove(name);
        }
    }
}

pub(super) fn set_sub(
    obj: &mut Map<String, Value>,
    sub: &AttributeDef,
    new: Option<Value>,
    wire: &str,
) -> Result<()> {
    if sub.mutability == Mutability::Immutable {
        let before = find_key(obj, &sub.name).and_then(|k| obj.get(&k));
        if before.is_some() && before != new.as_ref() {
            return Err(Error::mutability(format!(
                "{wire} is immutable: it can be set once, not changed"
            )));
        }
    }
    set_in(obj, &sub.name, new);
    Ok(())
}

/// A sub-attribute value, normalised when the schema declares it.
pub(super) fn sub_value(
    path: &ResolvedPath,
    sub: &AttributeDef,
    v: &Value,
    wire: &str,
) -> Result<Option<Value>> {
    if path.declared && path.attr.sub_attribute(&sub.name).is_some() {
        attribute_value(sub, v.clone(), wire)
    } else {
        Ok(Some(v.clone()))
    }
}

/// Splits the keys of an object value whose value is `null` or `""` (to be cleared) from the
/// rest (to be normalised and set).
pub(super) fn split_blanks(def: &AttributeDef, v: &Value) -> (Vec<String>, Value) {
    let Value::Object(obj) = v else {
        return (Vec::new(), v.clone());
    };
    let mut clears = Vec::new();
    let mut rest = Map::new();
    for (k, x) in obj {
        if blank(x) {
            clears.push(
                def.sub_attribute(k)
                    .map_or_else(|| k.clone(), |s| s.name.clone()),
            );
        } else {
            rest.insert(k.clone(), x.clone());
        }
    }
    (clears, Value::Object(rest))
}

pub(super) fn template(
    path: &ResolvedPath,
    filter: &ValFilter,
    wire: &str,
) -> Result<Map<String, Value>> {
    eq_template(&path.attr, filter).ok_or_else(|| {
        Error::no_target(format!(
            "{wire}: no element matches, and only a filter of eq comparisons joined by and says \
             which element to create"
        ))
    })
}

/// A replaced element keeps the immutable sub-attributes it had (`members.type`, `members.$ref`)
/// unless the new element gives them.
pub(super) fn keep_immutable(
    def: &AttributeDef,
    old: Option<&Map<String, Value>>,
    new: &mut Map<String, Value>,
) {
    let Some(old) = old else { return };
    for sub in &def.sub_attributes {
        if sub.mutability == Mutability::Immutable
            && !new.contains_key(&sub.name)
            && let Some(v) = old.get(&sub.name)
        {
            new.insert(sub.name.clone(), v.clone());
        }
    }
}

pub(super) fn non_empty(items: Vec<Value>) -> Option<Value> {
    (!items.is_empty()).then_some(Value::Array(items))
}

pub(super) fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
    let mut doomed = vec![false; items.len()];
    for &i in indices {
        doomed[i] = true;
    }
    let mut i = 0;
    items.retain(|_| {
        let keep = !doomed[i];
        i += 1;
        keep
    });
}

/// Drops elements left with nothing but `type`/`primary` (e.g. after clearing
/// `emails[type eq "work"].value`).
pub(super) fn drop_empty(items: &mut Vec<Value>) {
    items.retain(|el| match el {
        Value::Object(obj) => obj.keys().any(|k| k != "type" && k != "primary"),
        Value::Null => false,
        _ => true,
    });
}

/// RFC 7643 §2.4: "The primary attribute value 'true' MUST appear no more than once". When a
/// touched element is primary, the others stop being.
pub(super) fn single_primary(items: &mut [Value], touched: &[usize]) {
    let primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(&keep) = touched
        .iter()
        .rev()
        .find(|&&i| items.get(i).is_some_and(primary))
    else {
        return;
    };
    for (i, el) in items.iter_mut().enumerate() {
        if i != keep
            && primary(el)
            && let Some(obj) = el.as_object_mut()
        {
            obj.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// Adds each of `new` unless an element with the same identity exists, in which case its
/// sub-attributes are merged into that element (RFC 7644 §3.5.2.1: an existing value is not
/// duplicated). Identities are hashed, so replacing a large member list stays linear.
pub(super) fn merge_elements(def: &AttributeDef, items: &mut Vec<Value>, new: Vec<Value>) {
    let mut index: HashMap<Identity, usize> = HashMap::new();
    for (i, el) in items.iter().enumerate() {
        if let Some(key) = identity(def, el) {
            index.entry(key).or_insert(i);
        }
    }
    for el in new {
        let key = identity(def, &el);
        let found = match &key {
            Some(key) => index.get(key).copied(),
            None => items.iter().position(|e| same_element(def, e, &el)),
        };
        let idx = match found {
            Some(i) => {
                match (items[i].as_object_mut(), el) {
                    // The existing element keeps its identity (`value`, `type`) as first spelled.
                    (Some(dst), Value::Object(src)) => {
                        for (k, v) in src {
                            if !(dst.contains_key(&k) && (k == "value" || k == "type")) {
                                dst.insert(k, v);
                            }
                        }
                    }
                    (_, el) => items[i] = el,
                }
                i
            }
            None => {
                items.push(el);
                if let Some(key) = key {
                    index.insert(key, items.len() - 1);
                }
                items.len() - 1
            }
        };
        single_primary(items, &[idx]);
    }
}

/// Removes the elements any of `patterns` [`selects`]; member ids are looked up in a set.
pub(super) fn remove_matching(def: &AttributeDef, items: &mut Vec<Value>, patterns: &[Value]) {
    let ids: Option<HashSet<&str>> = (def.name == "members")
        .then(|| patterns.iter().map(|p| p.get("value")?.as_str()).collect())
        .flatten();
    match ids {
        Some(ids) => items.retain(|e| {
            !e.get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| ids.contains(v))
        }),
        None => items.retain(|e| !patterns.iter().any(|p| selects(def, p, e))),
    }
}

/// What [`same_element`] compares, as a hashable key (`None` when an element has no `value`).
type Identity = (String, Option<String>);

fn identity(def: &AttributeDef, el: &Value) -> Option<Identity> {
    if !def.is_multi_complex() {
        return None;
    }
    let folded = |v: &Value, case_exact: bool| match v {
        Value::String(s) if !case_exact => format!("s:{}", s.to_lowercase()),
        other => other.to_string(),
    };
    let value = folded(
        el.get("value")?,
        def.sub_attribute("value").is_some_and(|d| d.case_exact),
    );
    let kind = if def.name == "members" {
        None
    } else {
        el.get("type").map(|t| folded(t, false))
    };
    Some((value, kind))
}

pub(super) fn scalar_eq(def: Option<&AttributeDef>, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if def.is_none_or(|d| !d.case_exact) => {
            a.to_lowercase() == b.to_lowercase()
        }
        _ => a == b,
    }
}

/// Element identity: `value` (with its `caseExact`) and `type`; for `members` the `value` alone;
/// for elements without `value`, the whole element.
pub(super) fn same_element(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    if !def.is_multi_complex() {
        return scalar_eq(Some(def), a, b);
    }
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => {
            scalar_eq(def.sub_attribute("value"), x, y)
                && (def.name == "members"
                    || match (a.get("type"), b.get("type")) {
                        (None, None) => true,
                        (Some(s), Some(t)) => scalar_eq(None, s, t),
                        _ => false,
                    })
        }
        _ => a == b,
    }
}

/// Whether a removal pattern (`{"value": "u1"}` from `remove members` with a value array)
/// selects an element: same `value` (and `type` when the pattern gives one), else every
/// sub-attribute the pattern gives.
pub(super) fn selects(def: &AttributeDef, pattern: &Value, el: &Value) -> bool {
    if !def.is_multi_complex() {
        return scalar_eq(Some(def), pattern, el);
    }
    if let Some(pv) = pattern.get("value") {
        return el
            .get("value")
            .is_some_and(|ev| scalar_eq(def.sub_attribute("value"), pv, ev))
            && (def.name == "members"
                || pattern
                    .get("type")
                    .is_none_or(|t| el.get("type").is_some_and(|u| scalar_eq(None, t, u))));
    }
    match pattern.as_object() {
        Some(p) => p.iter().all(|(k, v)| el.get(k) == Some(v)),
        None => pattern == el,
    }
}
