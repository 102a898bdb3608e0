//! `attributes` / `excludedAttributes` applied to a representation (RFC 7644 §3.4.2.5, RFC 7643 §7
//! `returned`).

use super::Projection;
use crate::schema::{
    AttributeDef, Location, ResolvedPath, ResourceType, Returned, SchemaRegistry, common_attributes,
};
use serde_json::{Map, Value};

/// Which sub-attributes of a complex attribute survive.
enum Subs {
    /// All sub-attributes returned by default.
    All,
    /// Only these (plus `returned: always` ones).
    Only(Vec<String>),
}

impl Projection {
    /// Applies the projection to a full representation (as
    /// [`crate::resource::Resource::to_json`] gives it), honouring each attribute's `returned`
    /// characteristic (RFC 7643 §7):
    ///
    /// - `always` (`id`): returned whatever the lists say; `schemas` is always kept too;
    /// - `never` (`password`): never returned;
    /// - `request`: returned only when named in `attributes`;
    /// - `default`: returned unless excluded, or, when `attributes` is given, only if named.
    ///
    /// "attributes … overrides the list of attributes … returned by default" and
    /// "excludedAttributes … SHALL have no effect on attributes whose "returned" characteristic
    /// is "always"" (RFC 7644 §3.4.2.5). Sub-attribute paths (`name.givenName`, `emails.value`)
    /// select or exclude inside the parent, in every element of a multi-valued one; extension
    /// attributes are named with their URN (`urn:…:enterprise:2.0:User:department`) or, as
    /// Entra does, without it. An extension left empty is dropped from the body and from
    /// `schemas`. Attributes no schema declares are returned by default and dropped when
    /// `attributes` is given.
    pub fn apply(
        &self,
        registry: &SchemaRegistry,
        rt: &ResourceType,
        representation: Value,
    ) -> Value {
        let Value::Object(obj) = representation else {
            return representation;
        };
        let core = registry.schema(&rt.schema);
        let mut out = Map::new();
        let mut emptied: Vec<String> = Vec::new();
        for (key, value) in obj {
            if key == "schemas" {
                out.insert(key, value);
                continue;
            }
            if let Some(urn) = registry.extension_urn(rt, &key) {
                let schema = registry.schema(urn);
                let Value::Object(ext) = value else {
                    continue;
                };
                let mut kept = Map::new();
                for (name, v) in ext {
                    let def = schema.and_then(|s| s.attribute(&name));
                    if let Some(v) = self.project(Some(urn), def, &name, v) {
                        kept.insert(name, v);
                    }
                }
                if kept.is_empty() {
                    emptied.push(urn.to_string());
                } else {
                    out.insert(key, Value::Object(kept));
                }
                continue;
            }
            let def = common_attributes()
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&key))
                .or_else(|| core.and_then(|s| s.attribute(&key)));
            if let Some(v) = self.project(None, def, &key, value) {
                out.insert(key, v);
            }
        }
        if !emptied.is_empty()
            && let Some(Value::Array(schemas)) = out.get_mut("schemas")
        {
            schemas.retain(|s| {
                !s.as_str()
                    .is_some_and(|s| emptied.iter().any(|e| e.eq_ignore_ascii_case(s)))
            });
        }
        Value::Object(out)
    }

    /// Whether values at `path` appear in a projected representation. A server asks this before
    /// loading expensive attributes; a path naming a whole complex attribute is included when
    /// any of its sub-attributes would be.
    pub fn includes(&self, path: &ResolvedPath) -> bool {
        let ext = extension_of(path);
        let attr = &path.attr;
        match attr.returned {
            Returned::Never => return false,
            Returned::Always => {
                return path
                    .sub
                    .as_ref()
                    .is_none_or(|s| s.returned != Returned::Never);
            }
            _ => {}
        }
        if path
            .sub
            .as_ref()
            .is_some_and(|s| s.returned == Returned::Never)
        {
            return false;
        }
        let naming = |p: &&ResolvedPath| names(p, ext, &attr.name);
        if !self.attributes.is_empty() {
            return self
                .attributes
                .iter()
                .filter(naming)
                .any(|p| match (&p.sub, &path.sub) {
                    (None, _) | (_, None) => true,
                    (Some(a), Some(b)) => a.name.eq_ignore_ascii_case(&b.name),
                });
        }
        if attr.returned == Returned::Request {
            return false;
        }
        !self
            .excluded
            .iter()
            .filter(naming)
            .any(|p| match (&p.sub, &path.sub) {
                (None, _) => true,
                (Some(a), Some(b)) => a.name.eq_ignore_ascii_case(&b.name),
                (Some(_), None) => false,
            })
    }

    /// Whether a Group's `members` appear in the projected representation, so a server loads
    /// the member list only when it is returned (Entra reads groups with
    /// `excludedAttributes=members`, reference Q9).
    pub fn includes_members(&self) -> bool {
        let is_members = |p: &&ResolvedPath| {
            p.location == Location::Core && p.attr.name.eq_ignore_ascii_case("members")
        };
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(|p| is_members(&p));
        }
        !self
            .excluded
            .iter()
            .filter(is_members)
            .any(|p| p.sub.is_none())
    }

    /// The projected value of one attribute, or `None` when it is not returned.
    fn project(
        &self,
        ext: Option<&str>,
        def: Option<&AttributeDef>,
        name: &str,
        value: Value,
    ) -> Option<Value> {
        let returned = def.map_or(Returned::Default, |d| d.returned);
        let naming = |p: &&ResolvedPath| names(p, ext, name);
        let subs = match returned {
            Returned::Never => return None,
            Returned::Always => Subs::All,
            _ if !self.attributes.is_empty() => {
                let asked: Vec<&ResolvedPath> = self.attributes.iter().filter(naming).collect();
                if asked.iter().any(|p| p.sub.is_none()) {
                    Subs::All
                } else if asked.is_empty() {
                    return None;
                } else {
                    Subs::Only(
                        asked
                            .iter()
                            .filter_map(|p| p.sub.as_ref())
                            .map(|s| s.name.clone())
                            .collect(),
                    )
                }
            }
            Returned::Request => return None,
            Returned::Default => Subs::All,
        };
        let excluded: Vec<&str> = if returned == Returned::Always {
            Vec::new()
        } else {
            let excluded: Vec<&ResolvedPath> = self.excluded.iter().filter(naming).collect();
            if excluded.iter().any(|p| p.sub.is_none()) {
                return None;
            }
            excluded
                .iter()
                .filter_map(|p| p.sub.as_ref())
                .map(|s| s.name.as_str())
                .collect()
        };
        let Some(def) = def.filter(|d| !d.sub_attributes.is_empty()) else {
            return Some(value);
        };
        let keep = |sub: &str| -> bool {
            let sub_def = def.sub_attribute(sub);
            let sub_returned = sub_def.map_or(Returned::Default, |s| s.returned);
            let named = |list: &[String]| list.iter().any(|n| n.eq_ignore_ascii_case(sub));
            match sub_returned {
                Returned::Never => false,
                Returned::Always => true,
                r => {
                    let selected = match &subs {
                        Subs::All => r != Returned::Request,
                        Subs::Only(list) => named(list),
                    };
                    selected && !excluded.iter().any(|e| e.eq_ignore_ascii_case(sub))
                }
            }
        };
        let filter_obj = |mut obj: Map<String, Value>| -> Option<Value> {
            obj.retain(|k, _| keep(k));
            (!obj.is_empty()).then_some(Value::Object(obj))
        };
        match value {
            Value::Object(obj) => filter_obj(obj),
            Value::Array(items) => {
                let items: Vec<Value> = items
                    .into_iter()
                    .filter_map(|item| match item {
                        Value::Object(obj) => filter_obj(obj),
                        other => Some(other),
                    })
                    .collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            other => Some(other),
        }
    }
}

/// The extension URN a path lives under, `None` for core and common attributes.
fn extension_of(p: &ResolvedPath) -> Option<&str> {
    (p.location == Location::Extension).then_some(p.schema.as_str())
}

/// Whether `p` names the attribute `name` of the extension `ext` (or of the core schema).
fn names(p: &ResolvedPath, ext: Option<&str>, name: &str) -> bool {
    let same_scope = match (extension_of(p), ext) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    same_scope && p.attr.name.eq_ignore_ascii_case(name)
}
