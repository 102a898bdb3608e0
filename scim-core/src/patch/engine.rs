//! Applying operations to a copy of the attributes, then working out what changed.

use super::matcher::{ElementFilter, eq_template};
use super::members::{DeltaBuilder, member_ids};
use super::parse::check;
use super::target::{self, Target};
use super::values::*;
use super::{Members, PatchOp, PatchOperation, PatchOutcome, PatchRequest};
use crate::error::{Error, Result};
use crate::normalize::attribute_value;
use crate::resource::{Attributes, Resource, changed_paths};
use crate::schema::{
    AttributeDef, AttributeType, Location, Mutability, ResolvedPath, ResourceType, SchemaRegistry,
    split_path,
};
use scim_v2::filter::{PatchPath, ValFilter};
use serde_json::{Map, Value};

pub(super) fn run(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    resource: &Resource,
    request: &PatchRequest,
    members: Members,
) -> Result<PatchOutcome> {
    let mut engine = Engine {
        registry,
        rt,
        resource_id: &resource.id,
        attrs: resource.attributes.clone(),
        members,
        delta: None,
    };
    for (i, op) in request.operations.iter().enumerate() {
        engine
            .operation(op)
            .map_err(|e| e.context(format!("Operations[{i}] ({op})")))?;
    }
    let mut changed_paths = changed_paths(&resource.attributes, &engine.attrs);
    let delta = engine.delta.map(DeltaBuilder::finish);
    if delta.is_some() && !changed_paths.iter().any(|p| p == "members") {
        changed_paths.push("members".into());
    }
    Ok(PatchOutcome {
        changed: !changed_paths.is_empty(),
        attributes: engine.attrs,
        changed_paths,
        members: delta,
    })
}

struct Engine<'a> {
    registry: &'a SchemaRegistry,
    rt: &'a ResourceType,
    resource_id: &'a str,
    attrs: Attributes,
    members: Members,
    delta: Option<DeltaBuilder>,
}

impl Engine<'_> {
    fn operation(&mut self, op: &PatchOperation) -> Result<()> {
        check(op)?;
        let value = op.value.as_ref();
        match &op.path {
            None => self.resource_op(op.op, value),
            Some(PatchPath::Attr(p)) => {
                if p.uri.is_none() && p.name.eq_ignore_ascii_case("schemas") {
                    return Err(Error::mutability(
                        "schemas is set by the server from the attributes present",
                    ));
                }
                let target = target::resolve(
                    self.registry,
                    self.rt,
                    p.uri.as_deref(),
                    &p.name,
                    p.sub_attr.as_deref(),
                )?;
                if let Target::Attr(path) = &target {
                    read_only_check(path)?;
                }
                self.target_op(op.op, target, value)
            }
            Some(PatchPath::Value(vp)) => {
                let target = target::resolve(
                    self.registry,
                    self.rt,
                    vp.attr.uri.as_deref(),
                    &vp.attr.name,
                    vp.attr.sub_attr.as_deref(),
                )?;
                let Target::Attr(path) = target else {
                    return Err(Error::invalid_path(
                        "a value filter selects elements of an attribute, not of a schema",
                    ));
                };
                if path.sub.is_some() {
                    return Err(Error::invalid_path(
                        "a value filter follows the attribute, not one of its sub-attributes",
                    ));
                }
                let sub = match &vp.sub_attr {
                    None => None,
                    Some(name) => Some(self.filtered_sub(&path, name)?),
                };
                let checked = ResolvedPath {
                    sub: sub.clone(),
                    ..(*path).clone()
                };
                read_only_check(&checked)?;
                self.filtered_op(op.op, &path, &vp.filter, sub.as_ref(), value)
            }
        }
    }

    fn filtered_sub(&self, path: &ResolvedPath, name: &str) -> Result<AttributeDef> {
        if path.declared && path.attr.kind != AttributeType::Complex {
            return Err(Error::invalid_path(format!(
                "{path} is not complex and has no sub-attribute {name:?}"
            )));
        }
        Ok(path
            .attr
            .sub_attribute(name)
            .cloned()
            .unwrap_or_else(|| AttributeDef::undeclared(name)))
    }

    /// A path-less operation (or a path naming the core schema): each key of the value object is
    /// an attribute path of its own.
    fn resource_op(&mut self, op: PatchOp, value: Option<&Value>) -> Result<()> {
        match (op, value) {
            (PatchOp::Remove, _) => {
                Err(Error::invalid_path("the resource itself cannot be removed"))
            }
            (_, Some(Value::Object(obj))) => {
                for (key, v) in obj {
                    self.object_entry(op, None, key, v)?;
                }
                Ok(())
            }
            _ => Err(Error::invalid_syntax(
                "the value must be an object of attributes",
            )),
        }
    }

    /// One key of a path-less value object (or of an extension object when `ext` is its URN).
    fn object_entry(&mut self, op: PatchOp, ext: Option<&str>, key: &str, v: &Value) -> Result<()> {
        let target = match ext {
            Some(urn) => {
                let (name, sub) = match key.split_once('.') {
                    Some((n, s)) => (n, Some(s)),
                    None => (key, None),
                };
                target::resolve_in_extension(self.registry, self.rt, urn, name, sub)?
            }
            None => {
                if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
                    return Ok(());
                }
                if key.eq_ignore_ascii_case("id") {
                    return match v {
                        Value::Null => Ok(()),
                        Value::String(id) if id == self.resource_id => Ok(()),
                        _ => Err(Error::mutability(
                            "id is readOnly and differs from the id of the resource patched",
                        )),
                    };
                }
                let (uri, name, sub) = split_path(key);
                target::resolve(self.registry, self.rt, uri, name, sub)?
            }
        };
        match &target {
            // RFC 7643 §7: readOnly values a client sends "SHALL be ignored".
            Target::Attr(path) if target::read_only(path) => Ok(()),
            _ => self.target_op(op, target, Some(v)),
        }
    }

    fn target_op(&mut self, op: PatchOp, target: Target, value: Option<&Value>) -> Result<()> {
        match target {
            Target::Resource => self.resource_op(op, value),
            Target::Extension(urn) => match (op, value) {
                (PatchOp::Remove, _) => {
                    if let Some(key) = find_key(&self.attrs, &urn) {
                        self.attrs.shift_remove(&key);
                    }
                    Ok(())
                }
                (_, Some(Value::Object(obj))) => {
                    for (key, v) in obj {
                        self.object_entry(op, Some(&urn), key, v)?;
                    }
                    Ok(())
                }
                (_, Some(v)) if blank(v) => {
                    if op == PatchOp::Replace
                        && let Some(key) = find_key(&self.attrs, &urn)
                    {
                        self.attrs.shift_remove(&key);
                    }
                    Ok(())
                }
                _ => Err(Error::invalid_value(format!(
                    "{urn} takes an object of the extension's attributes"
                ))),
            },
            Target::Attr(path) => self.attr_op(op, &path, value),
        }
    }

    fn is_delta_members(&self, path: &ResolvedPath) -> bool {
        self.members == Members::Delta
            && path.declared
            && path.location == Location::Core
            && path.attr.name == "members"
            && path.attr.is_multi_complex()
    }

    fn attr_op(&mut self, op: PatchOp, path: &ResolvedPath, value: Option<&Value>) -> Result<()> {
        if self.is_delta_members(path) {
            return self.delta.get_or_insert_with(Default::default).apply(
                &path.attr,
                op,
                None,
                path.sub.is_some(),
                value,
            );
        }
        let wire = path.to_string();
        if path.sub.is_some() {
            return self.sub_op(op, path, value, &wire);
        }
        let v = value.unwrap_or(&Value::Null);
        match op {
            PatchOp::Remove if path.attr.multi_valued && !blank(v) => {
                let patterns = self.elements(path, v, &wire)?;
                let mut cur = self.current_elements(path);
                remove_matching(&path.attr, &mut cur, &patterns);
                self.put(path, non_empty(cur));
                Ok(())
            }
            PatchOp::Remove => {
                self.check_immutable(path, None, &wire)?;
                self.put(path, None);
                Ok(())
            }
            _ if !path.attr.multi_valued => self.set_single(path, v, &wire),
            PatchOp::Add => {
                let mut cur = self.current_elements(path);
                if !blank(v) {
                    merge_elements(&path.attr, &mut cur, self.elements(path, v, &wire)?);
                }
                self.put(path, non_empty(cur));
                Ok(())
            }
            PatchOp::Replace => {
                let mut cur = Vec::new();
                if !blank(v) {
                    merge_elements(&path.attr, &mut cur, self.elements(path, v, &wire)?);
                }
                self.put(path, non_empty(cur));
                Ok(())
            }
        }
    }

    /// `add`/`replace` of a single-valued attribute. A complex value is merged into the current
    /// one (RFC 7644 §3.5.2.3: "Sub-attributes that are not specified in the 'value' parameter
    /// are left unchanged"), except that a different `value` (a new manager) starts afresh.
    fn set_single(&mut self, path: &ResolvedPath, v: &Value, wire: &str) -> Result<()> {
        if blank(v) {
            self.check_immutable(path, None, wire)?;
            self.put(path, None);
            return Ok(());
        }
        if !path.declared {
            self.put(path, Some(v.clone()));
            return Ok(());
        }
        if path.attr.kind != AttributeType::Complex {
            let new = attribute_value(&path.attr, v.clone(), wire)?;
            self.check_immutable(path, new.as_ref(), wire)?;
            self.put(path, new);
            return Ok(());
        }
        let (clears, rest) = split_blanks(&path.attr, v);
        let new = attribute_value(&path.attr, rest, wire)?;
        let mut cur = self
            .get(path)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Object(new)) = new {
            if let (Some(a), Some(b)) = (cur.get("value"), new.get("value"))
                && a != b
            {
                cur.clear();
            }
            for (k, v) in new {
                cur.insert(k, v);
            }
        }
        // Clearing the `value` of a complex attribute (Entra's `"manager": {"value": ""}`) clears
        // the attribute: what is left (a displayName) describes nothing.
        if clears.iter().any(|k| k == "value") && path.attr.sub_attribute("value").is_some() {
            cur.clear();
        }
        for k in clears {
            cur.shift_remove(&k);
        }
        let new = (!cur.is_empty()).then_some(Value::Object(cur));
        self.check_immutable(path, new.as_ref(), wire)?;
        self.put(path, new);
        Ok(())
    }

    /// A path naming a sub-attribute: of the attribute, or of every element of a multi-valued
    /// one.
    fn sub_op(
        &mut self,
        op: PatchOp,
        path: &ResolvedPath,
        value: Option<&Value>,
        wire: &str,
    ) -> Result<()> {
        let sub = path
            .sub
            .as_ref()
            .expect("sub_op on a path with a sub-attribute");
        let new = match value {
            Some(v) if op != PatchOp::Remove && !blank(v) => sub_value(path, sub, v, wire)?,
            _ => None,
        };
        if !path.attr.multi_valued {
            let mut cur = self
                .get(path)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let clears_value = new.is_none() && sub.name == "value";
            set_sub(&mut cur, sub, new, wire)?;
            if clears_value && path.declared {
                cur.clear();
            }
            self.put(path, (!cur.is_empty()).then_some(Value::Object(cur)));
            return Ok(());
        }
        let mut cur = self.current_elements(path);
        if cur.is_empty() {
            if let Some(v) = new {
                let mut el = Map::new();
                el.insert(sub.name.clone(), v);
                cur.push(Value::Object(el));
            }
        } else {
            for el in &mut cur {
                if let Some(obj) = el.as_object_mut() {
                    set_sub(obj, sub, new.clone(), wire)?;
                }
            }
            drop_empty(&mut cur);
        }
        self.put(path, non_empty(cur));
        Ok(())
    }

    /// A value path: `emails[type eq "work"]`, `emails[type eq "work"].value`,
    /// `members[value eq "x"]`, `manager[value eq "x"]`.
    fn filtered_op(
        &mut self,
        op: PatchOp,
        path: &ResolvedPath,
        filter: &ValFilter,
        sub: Option<&AttributeDef>,
        value: Option<&Value>,
    ) -> Result<()> {
        if self.is_delta_members(path) {
            return self.delta.get_or_insert_with(Default::default).apply(
                &path.attr,
                op,
                Some(filter),
                sub.is_some(),
                value,
            );
        }
        if path.declared && path.attr.kind != AttributeType::Complex {
            return Err(Error::invalid_path(format!(
                "{path} is not complex: a value filter selects elements of a complex attribute"
            )));
        }
        let matcher = ElementFilter::new(self.registry, self.rt, path, filter)?;
        let mut wire = format!("{path}[{filter}]");
        if let Some(sub) = sub {
            wire = format!("{wire}.{}", sub.name);
        }
        let mut cur = self.current_elements(path);
        let hits: Vec<usize> = (0..cur.len())
            .filter(|&i| matcher.matches(&cur[i]))
            .collect();
        let v = value.unwrap_or(&Value::Null);
        let mut touched = hits.clone();
        match (op, sub) {
            (PatchOp::Remove, _) if hits.is_empty() => return Ok(()),
            (PatchOp::Remove, Some(sub)) => {
                for &i in &hits {
                    if let Some(obj) = cur[i].as_object_mut() {
                        set_sub(obj, sub, None, &wire)?;
                    }
                }
            }
            (PatchOp::Remove, None) => remove_indices(&mut cur, &hits),
            (_, Some(sub)) => {
                let new = if blank(v) {
                    None
                } else {
                    sub_value(path, sub, v, &wire)?
                };
                if hits.is_empty() {
                    let Some(new) = new else { return Ok(()) };
                    let mut el = template(path, filter, &wire)?;
                    el.insert(sub.name.clone(), new);
                    if !path.attr.multi_valued {
                        cur.clear();
                    }
                    cur.push(Value::Object(el));
                    touched = vec![cur.len() - 1];
                } else {
                    for &i in &hits {
                        if let Some(obj) = cur[i].as_object_mut() {
                            set_sub(obj, sub, new.clone(), &wire)?;
                        }
                    }
                }
            }
            (PatchOp::Replace, None) if blank(v) => remove_indices(&mut cur, &hits),
            (_, None) if blank(v) => return Ok(()),
            (_, None) => {
                let el = self.one_element(path, v, &wire)?;
                if hits.is_empty() {
                    let mut new = template(path, filter, &wire)?;
                    new.extend(el);
                    if !path.attr.multi_valued {
                        cur.clear();
                    }
                    cur.push(Value::Object(new));
                    touched = vec![cur.len() - 1];
                } else {
                    for &i in &hits {
                        let replaced = match (op, cur[i].as_object()) {
                            (PatchOp::Add, Some(existing)) => {
                                let mut merged = existing.clone();
                                merged.extend(el.clone());
                                merged
                            }
                            (_, existing) => {
                                let mut new = eq_template(&path.attr, filter).unwrap_or_default();
                                new.extend(el.clone());
                                keep_immutable(&path.attr, existing, &mut new);
                                new
                            }
                        };
                        self.check_immutable_element(path, &cur[i], &replaced, &wire)?;
                        cur[i] = Value::Object(replaced);
                    }
                }
            }
        }
        if op != PatchOp::Remove {
            single_primary(&mut cur, &touched);
        }
        drop_empty(&mut cur);
        if path.attr.multi_valued {
            self.put(path, non_empty(cur));
        } else {
            self.put(path, cur.into_iter().next());
        }
        Ok(())
    }

    /// The elements of a multi-valued value, normalised (a bare object or string counts as one).
    fn elements(&self, path: &ResolvedPath, v: &Value, wire: &str) -> Result<Vec<Value>> {
        if !path.declared {
            return Ok(match v {
                Value::Array(items) => items.iter().filter(|x| !x.is_null()).cloned().collect(),
                other => vec![other.clone()],
            });
        }
        if path.attr.name == "members" && path.location == Location::Core {
            // Validates that every entry names a member id.
            member_ids(&path.attr, v)?;
        }
        Ok(match attribute_value(&path.attr, v.clone(), wire)? {
            Some(Value::Array(items)) => items,
            Some(other) => vec![other],
            None => Vec::new(),
        })
    }

    /// One element of a complex attribute, for a value path without sub-attribute.
    fn one_element(
        &self,
        path: &ResolvedPath,
        v: &Value,
        wire: &str,
    ) -> Result<Map<String, Value>> {
        let mut items = self.elements(path, v, wire)?;
        let item = match items.len() {
            1 => items.remove(0),
            0 => Value::Object(Map::new()),
            _ => {
                return Err(Error::invalid_value(format!(
                    "{wire} selects elements; its value must be one element, not several"
                )));
            }
        };
        match item {
            Value::Object(obj) => Ok(obj),
            _ => Err(Error::invalid_value(format!(
                "{wire} selects elements; its value must be an object of sub-attributes"
            ))),
        }
    }

    fn current_elements(&self, path: &ResolvedPath) -> Vec<Value> {
        match self.get(path) {
            Some(Value::Array(items)) => items.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(other) => vec![other.clone()],
        }
    }

    fn check_immutable(&self, path: &ResolvedPath, new: Option<&Value>, wire: &str) -> Result<()> {
        if path.attr.mutability == Mutability::Immutable
            && let Some(cur) = self.get(path)
            && Some(cur) != new
        {
            return Err(Error::mutability(format!(
                "{wire} is immutable: it can be set once, not changed"
            )));
        }
        Ok(())
    }

    fn check_immutable_element(
        &self,
        path: &ResolvedPath,
        old: &Value,
        new: &Map<String, Value>,
        wire: &str,
    ) -> Result<()> {
        for sub in &path.attr.sub_attributes {
            if sub.mutability != Mutability::Immutable {
                continue;
            }
            let before = old.get(&sub.name);
            if before.is_some() && before != new.get(&sub.name) {
                return Err(Error::mutability(format!(
                    "{wire}: {}.{} is immutable on an existing element",
                    path.attr.name, sub.name
                )));
            }
        }
        Ok(())
    }

    fn get(&self, path: &ResolvedPath) -> Option<&Value> {
        let container = match path.location {
            Location::Extension => {
                let key = find_key(&self.attrs, &path.schema)?;
                self.attrs.get(&key)?.as_object()?
            }
            Location::Core | Location::Common => &self.attrs,
        };
        let key = find_key(container, &path.attr.name)?;
        container.get(&key)
    }

    /// Sets (or, with `None`, removes) the attribute; an extension object left empty goes too.
    fn put(&mut self, path: &ResolvedPath, value: Option<Value>) {
        match path.location {
            Location::Extension => {
                let key =
                    find_key(&self.attrs, &path.schema).unwrap_or_else(|| path.schema.clone());
                let entry = self
                    .attrs
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                let obj = entry.as_object_mut().expect("an object was just ensured");
                set_in(obj, &path.attr.name, value);
                if obj.is_empty() {
                    self.attrs.shift_remove(&key);
                }
            }
            Location::Core | Location::Common => set_in(&mut self.attrs, &path.attr.name, value),
        }
    }
}
