//! Value-path filters (`emails[type eq "work"]`): matching one element, and reading what an
//! `eq` conjunction says an element must contain.
//!
//! TEMPORARY: `crate::filter::Filter::resolve_value_filter` and `Filter::matches_element` are
//! being written on the filter branch and `todo!()` until it is merged. Until then
//! [`ElementFilter`] evaluates the `scim_v2` value filter itself (comparisons on sub-attributes,
//! `and`/`or`/`not`, `pr`), with each sub-attribute's `caseExact`. When the filter branch lands,
//! `ElementFilter::new` becomes `Filter::resolve_value_filter(..)` and `matches` becomes
//! `filter.matches_element(element)`; nothing else in the PATCH engine changes.

use crate::error::{Error, Result};
use crate::schema::{AttributeDef, AttributeType, ResolvedPath, ResourceType, SchemaRegistry};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, ValFilter};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A value filter resolved against the attribute it selects elements of.
#[derive(Debug, Clone)]
pub(super) struct ElementFilter {
    filter: ValFilter,
    parent: AttributeDef,
}

impl ElementFilter {
    /// Checks that every path in `filter` names a sub-attribute of `parent` directly
    /// (`invalidPath` for `emails[name.givenName eq "x"]`). Names the parent does not declare
    /// are undeclared sub-attributes, as in the filter module.
    pub(super) fn new(
        registry: &SchemaRegistry,
        rt: &ResourceType,
        parent: &ResolvedPath,
        filter: &ValFilter,
    ) -> Result<Self> {
        let _ = (registry, rt); // for `Filter::resolve_value_filter` once the filter branch lands
        check_paths(&parent.attr, filter)?;
        Ok(Self {
            filter: filter.clone(),
            parent: parent.attr.clone(),
        })
    }

    /// Whether one element satisfies the filter.
    pub(super) fn matches(&self, element: &Value) -> bool {
        eval(&self.parent, &self.filter, element)
    }
}

fn check_paths(parent: &AttributeDef, filter: &ValFilter) -> Result<()> {
    match filter {
        ValFilter::Attr(AttrExp::Present(p) | AttrExp::Comparison(p, _, _)) => {
            if p.sub_attr.is_some() || p.uri.is_some() {
                return Err(Error::invalid_path(format!(
                    "{p}: a value filter names sub-attributes of {} directly",
                    parent.name
                )));
            }
            Ok(())
        }
        ValFilter::Not(inner) => check_paths(parent, inner),
        ValFilter::And(items) | ValFilter::Or(items) => {
            items.iter().try_for_each(|f| check_paths(parent, f))
        }
    }
}

fn sub_value<'a>(element: &'a Value, name: &str) -> Option<&'a Value> {
    element
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn eval(parent: &AttributeDef, filter: &ValFilter, element: &Value) -> bool {
    match filter {
        ValFilter::Attr(AttrExp::Present(p)) => sub_value(element, &p.name).is_some_and(|v| {
            !(v.is_null()
                || v.as_str().is_some_and(str::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(Map::is_empty))
        }),
        ValFilter::Attr(AttrExp::Comparison(p, op, value)) => {
            let case_exact = parent.sub_attribute(&p.name).is_some_and(|s| s.case_exact);
            compare(sub_value(element, &p.name), op, value, case_exact)
        }
        ValFilter::Not(inner) => !eval(parent, inner, element),
        ValFilter::And(items) => items.iter().all(|f| eval(parent, f, element)),
        ValFilter::Or(items) => items.iter().any(|f| eval(parent, f, element)),
    }
}

fn compare(actual: Option<&Value>, op: &CompareOp, wanted: &CompValue, case_exact: bool) -> bool {
    let actual = actual.unwrap_or(&Value::Null);
    let ordering = match (actual, wanted) {
        (Value::String(a), CompValue::Str(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ => Some(a.cmp(&b)),
            }
        }
        (Value::Number(a), CompValue::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), CompValue::True) => Some(a.cmp(&true)),
        (Value::Bool(a), CompValue::False) => Some(a.cmp(&false)),
        (Value::Null, CompValue::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        CompareOp::Eq => ordering == Some(Ordering::Equal),
        CompareOp::Ne => ordering != Some(Ordering::Equal),
        CompareOp::Gt => ordering == Some(Ordering::Greater),
        CompareOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        CompareOp::Lt => ordering == Some(Ordering::Less),
        CompareOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// The element an `eq` conjunction describes (`type eq "work"` → `{"type": "work"}`), with
/// canonical sub-attribute names; `None` for any other filter. Used to create the element a
/// value path names when none matches (Entra's `emails[type eq "work"].value`).
pub(super) fn eq_template(parent: &AttributeDef, filter: &ValFilter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    collect_eq(parent, filter, &mut out)?;
    Some(out)
}

fn collect_eq(
    parent: &AttributeDef,
    filter: &ValFilter,
    out: &mut Map<String, Value>,
) -> Option<()> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) if simple(p) => {
            let name = parent
                .sub_attribute(&p.name)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| p.name.clone());
            let kind = parent.sub_attribute(&p.name).map(|s| s.kind);
            let value = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Null => return None,
            };
            if kind == Some(AttributeType::Complex) {
                return None;
            }
            match out.get(&name) {
                Some(existing) if *existing != value => None,
                _ => {
                    out.insert(name, value);
                    Some(())
                }
            }
        }
        ValFilter::And(items) => items.iter().try_for_each(|f| collect_eq(parent, f, out)),
        _ => None,
    }
}

/// The ids named by `value eq "…"` (possibly `or`-ed), the only member filters storage can apply
/// without loading the members; `None` for any other filter.
pub(super) fn value_eq_ids(filter: &ValFilter) -> Option<Vec<String>> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, CompValue::Str(id)))
            if simple(p) && p.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        ValFilter::Or(items) => {
            let mut ids = Vec::new();
            for item in items.iter() {
                ids.extend(value_eq_ids(item)?);
            }
            Some(ids)
        }
        _ => None,
    }
}

fn simple(p: &AttrPath) -> bool {
    p.uri.is_none() && p.sub_attr.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SchemaRegistry, USER_RESOURCE};
    use serde_json::json;

    fn registry() -> SchemaRegistry {
        SchemaRegistry::builtin()
    }

    fn user() -> &'static ResourceType {
        static RT: std::sync::OnceLock<ResourceType> = std::sync::OnceLock::new();
        RT.get_or_init(|| registry().resource_type(USER_RESOURCE).unwrap().clone())
    }

    fn emails() -> ResolvedPath {
        let r = SchemaRegistry::builtin();
        let rt = r.resource_type(USER_RESOURCE).unwrap();
        r.resolve_str(rt, "emails").unwrap()
    }

    fn filter(text: &str) -> ValFilter {
        match crate::patch::parse_path(&format!("emails[{text}]")).unwrap() {
            scim_v2::filter::PatchPath::Value(vp) => vp.filter,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn matches_elements_with_case_rules() {
        let el = json!({"type": "Work", "value": "B@x.com", "primary": true});
        let cases = [
            (r#"type eq "work""#, true),
            (r#"type eq "home""#, false),
            (r#"type ne "home""#, true),
            (r#"value sw "b@""#, true),
            (r#"value ew ".COM""#, true),
            (r#"value co "nope""#, false),
            (r#"primary eq true"#, true),
            (r#"display pr"#, false),
            (r#"type pr and not (primary eq false)"#, true),
            (r#"type eq "home" or value eq "b@x.com""#, true),
        ];
        for (text, want) in cases {
            let f = ElementFilter::new(&registry(), user(), &emails(), &filter(text)).unwrap();
            assert_eq!(f.matches(&el), want, "{text}");
        }
        let undeclared =
            ElementFilter::new(&registry(), user(), &emails(), &filter(r#"nope eq "x""#));
        assert!(!undeclared.unwrap().matches(&el));
    }

    #[test]
    fn eq_templates_and_member_ids() {
        let def = emails().attr;
        assert_eq!(
            eq_template(&def, &filter(r#"TYPE eq "work" and primary eq true"#)),
            json!({"type": "work", "primary": true})
                .as_object()
                .cloned()
        );
        for text in [
            r#"type ne "work""#,
            r#"type eq "a" or type eq "b""#,
            r#"type eq "a" and type eq "b""#,
        ] {
            assert_eq!(eq_template(&def, &filter(text)), None, "{text}");
        }
        assert_eq!(
            value_eq_ids(&filter(r#"value eq "a" or value eq "b" or VALUE eq "c""#)),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            value_eq_ids(&filter(r#"value eq "a" and type eq "User""#)),
            None
        );
        assert_eq!(value_eq_ids(&filter(r#"display eq "a""#)), None);
    }
}
