//! Value-path filters (`emails[type eq "work"]`): matching one element, and reading what an
//! `eq` conjunction says an element must contain.
//!
//! Matching is the filter module's ([`crate::filter::Filter::resolve_value_filter`] and
//! [`crate::filter::Filter::matches_element`]), so a PATCH value path selects exactly the
//! elements the same filter selects in a query (`caseExact`, types, undeclared sub-attributes).

use crate::error::{Error, Result};
use crate::schema::{AttributeDef, AttributeType, ResolvedPath, ResourceType, SchemaRegistry};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, ValFilter};
use serde_json::{Map, Value};

/// A value filter resolved against the attribute it selects elements of.
#[derive(Debug, Clone)]
pub(super) struct ElementFilter {
    filter: crate::filter::Filter,
}

impl ElementFilter {
    /// Resolves `filter` against `parent` with the filter module (`invalidPath` when it names
    /// something that is not a sub-attribute of `parent`).
    pub(super) fn new(
        registry: &SchemaRegistry,
        rt: &ResourceType,
        parent: &ResolvedPath,
        filter: &ValFilter,
    ) -> Result<Self> {
        check_paths(&parent.attr, filter)?;
        let filter = crate::filter::Filter::resolve_value_filter(registry, rt, parent, filter)
            .map_err(|e| Error::invalid_path(e.detail().to_string()))?;
        Ok(Self { filter })
    }

    /// Whether one element satisfies the filter.
    pub(super) fn matches(&self, element: &Value) -> bool {
        self.filter.matches_element(element)
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
