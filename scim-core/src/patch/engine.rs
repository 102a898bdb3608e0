//! Applying operations to a copy of the attributes, then working out what changed.

use super::matcher::{ElementFilter, eq_template};
use super::members::{DeltaBuilder, member_ids};
use super::parse::check;
use super::target::{self, Target};
use super::{Members, PatchOp, PatchOperation, PatchOutcome, PatchRequest};
use crate::error::{Error, Result};
use crate::normalize::attribute_value;
use crate::resource::{Attributes, Resource};
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
    let mut changed_paths = diff(registry, rt, &resource.attributes, &engine.attrs);
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

/// `null` and `""` both mean "no value" in a PATCH (RFC 7644 §3.5.2.3 for `null`; Entra's and
/// Microsoft's validator's "replace with empty" for `""`, reference Q8 and Q19).
pub(super) fn blank(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
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
                target::resolve(self.registry, self.rt, Some(urn), name, sub)?
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
                cur.retain(|e| !patterns.iter().any(|p| selects(&path.attr, p, e)));
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
                    for el in self.elements(path, v, &wire)? {
                        merge_element(&path.attr, &mut cur, el);
                    }
                }
                self.put(path, non_empty(cur));
                Ok(())
            }
            PatchOp::Replace => {
                let mut cur = Vec::new();
                if !blank(v) {
                    for el in self.elements(path, v, &wire)? {
                        merge_element(&path.attr, &mut cur, el);
                    }
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
        let matcher = ElementFilter::new(path, filter)?;
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

fn read_only_check(path: &ResolvedPath) -> Result<()> {
    if target::read_only(path) {
        return Err(Error::mutability(format!(
            "{path} is readOnly (RFC 7643 §7) and cannot be patched"
        )));
    }
    Ok(())
}

/// The key of `map` equal to `name` ignoring case (the exact key first).
fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Sets `name` in `map` (removing a differently-cased spelling), or removes it, keeping the order
/// of the other keys.
fn set_in(map: &mut Map<String, Value>, name: &str, value: Option<Value>) {
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

fn set_sub(
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
fn sub_value(
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
fn split_blanks(def: &AttributeDef, v: &Value) -> (Vec<String>, Value) {
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

fn template(path: &ResolvedPath, filter: &ValFilter, wire: &str) -> Result<Map<String, Value>> {
    eq_template(&path.attr, filter).ok_or_else(|| {
        Error::no_target(format!(
            "{wire}: no element matches, and only a filter of eq comparisons joined by and says \
             which element to create"
        ))
    })
}

/// A replaced element keeps the immutable sub-attributes it had (`members.type`, `members.$ref`)
/// unless the new element gives them.
fn keep_immutable(
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

fn non_empty(items: Vec<Value>) -> Option<Value> {
    (!items.is_empty()).then_some(Value::Array(items))
}

fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
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
fn drop_empty(items: &mut Vec<Value>) {
    items.retain(|el| match el {
        Value::Object(obj) => obj.keys().any(|k| k != "type" && k != "primary"),
        Value::Null => false,
        _ => true,
    });
}

/// RFC 7643 §2.4: "The primary attribute value 'true' MUST appear no more than once". When a
/// touched element is primary, the others stop being.
fn single_primary(items: &mut [Value], touched: &[usize]) {
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

/// Adds `el` unless an element with the same identity exists, in which case `el`'s
/// sub-attributes are merged into it (RFC 7644 §3.5.2.1: an existing value is not duplicated).
fn merge_element(def: &AttributeDef, items: &mut Vec<Value>, el: Value) {
    let idx = match items.iter().position(|e| same_element(def, e, &el)) {
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
            items.len() - 1
        }
    };
    single_primary(items, &[idx]);
}

fn scalar_eq(def: Option<&AttributeDef>, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if def.is_none_or(|d| !d.case_exact) => {
            a.to_lowercase() == b.to_lowercase()
        }
        _ => a == b,
    }
}

/// Element identity: `value` (with its `caseExact`) and `type`; for `members` the `value` alone;
/// for elements without `value`, the whole element.
fn same_element(def: &AttributeDef, a: &Value, b: &Value) -> bool {
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
fn selects(def: &AttributeDef, pattern: &Value, el: &Value) -> bool {
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

/// Wire paths of the top-level attributes that differ; extension attributes are named one by
/// one (`urn:…:User:manager`).
fn diff(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    before: &Attributes,
    after: &Attributes,
) -> Vec<String> {
    let mut out = Vec::new();
    let keys = after
        .keys()
        .chain(before.keys().filter(|k| !after.contains_key(*k)));
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        if b == a {
            continue;
        }
        let objects = b.is_none_or(Value::is_object) && a.is_none_or(Value::is_object);
        let extension = registry.extension_urn(rt, key).is_some() || (key.contains(':') && objects);
        if !(extension && objects) {
            out.push(key.clone());
            continue;
        }
        let empty = Map::new();
        let bo = b.and_then(Value::as_object).unwrap_or(&empty);
        let ao = a.and_then(Value::as_object).unwrap_or(&empty);
        let inner = ao.keys().chain(bo.keys().filter(|k| !ao.contains_key(*k)));
        for k in inner {
            if bo.get(k) != ao.get(k) {
                out.push(format!("{key}:{k}"));
            }
        }
    }
    out
}
