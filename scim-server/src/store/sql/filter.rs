//! Filter compilation: a resolved [`Filter`] to a two-valued SQL condition.

use super::json::{JsonRef, Kind};
use super::{Arg, Dialect, Sql, attr_keys};
use crate::store::row::{INDEXED_MULTI_VALUED, fold};
use scim_core::filter::{CompareOp, Comparison, Filter};
use scim_core::resource::parse_datetime;
use scim_core::schema::{
    AttributeType, ENTERPRISE_USER_URN, GROUP_URN, Location, ResolvedPath, ResourceType, USER_URN,
};
use serde_json::Value;

pub(super) struct Ctx<'a> {
    /// The tenant's placeholder.
    pub(super) tenant: &'a str,
    /// The resource type listed.
    pub(super) rt: &'a ResourceType,
}

/// Where a filter's paths are read from.
pub(super) enum Scope {
    /// The resource row.
    Resource,
    /// One element of a multi-valued (or the object of a complex) attribute.
    Element(JsonRef),
}

/// A column a path maps to.
pub(super) enum Column {
    /// A text column, case-exact, or holding lower-cased text (`folded`).
    Text { expr: String, folded: bool },
    /// A nanosecond timestamp column.
    Time(String),
    /// A known constant (`meta.resourceType`).
    Const(String),
    /// A value the store does not have (`meta.location`): never present.
    Absent,
}

pub(super) fn column_for(rt: &ResourceType, path: &ResolvedPath) -> Option<Column> {
    let sub = path.sub.as_ref().map(|s| s.name.as_str());
    let text = |expr: &str, folded| Column::Text {
        expr: expr.into(),
        folded,
    };
    match (path.location, path.attr.name.as_str(), sub) {
        (Location::Common, "id", None) => Some(text("r.id", false)),
        (Location::Common, "externalId", None) => Some(text("r.external_id", false)),
        (Location::Common, "meta", Some("created")) => Some(Column::Time("r.created_ns".into())),
        (Location::Common, "meta", Some("lastModified")) => {
            Some(Column::Time("r.last_modified_ns".into()))
        }
        (Location::Common, "meta", Some("resourceType")) => Some(Column::Const(rt.name.clone())),
        (Location::Common, "meta", Some("version")) => {
            Some(text("('W/\"' || r.version || '\"')", false))
        }
        (Location::Common, "meta", _) => Some(Column::Absent),
        (Location::Core, "userName", None) if rt.schema.eq_ignore_ascii_case(USER_URN) => {
            Some(text("r.unique_key", true))
        }
        (Location::Core, "displayName", None) if rt.schema.eq_ignore_ascii_case(GROUP_URN) => {
            Some(text("r.unique_key", true))
        }
        (Location::Extension, "manager", None | Some("value"))
            if path.schema.eq_ignore_ascii_case(ENTERPRISE_USER_URN) =>
        {
            Some(text("r.manager_id", false))
        }
        _ => None,
    }
}

pub(super) const TRUE: &str = "(1 = 1)";
pub(super) const FALSE: &str = "(1 = 0)";

pub(super) fn compile(sql: &mut Sql, ctx: &Ctx<'_>, scope: &Scope, filter: &Filter) -> String {
    match filter {
        Filter::And(items) | Filter::Or(items) => {
            let sep = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            if items.is_empty() {
                return if matches!(filter, Filter::And(_)) {
                    TRUE.into()
                } else {
                    FALSE.into()
                };
            }
            let parts: Vec<String> = items.iter().map(|f| compile(sql, ctx, scope, f)).collect();
            format!("({})", parts.join(sep))
        }
        Filter::Not(inner) => format!("(NOT {})", compile(sql, ctx, scope, inner)),
        Filter::Present(path) => present(sql, ctx, scope, path),
        Filter::Compare(c) => compare(sql, ctx, scope, c),
        Filter::ValuePath { path, filter } => value_path(sql, ctx, scope, path, filter),
    }
}

/// The JSON value a path reads in a scope (the attribute, or the element inside `attr[...]`) and
/// the sub-attribute to read in it.
fn target(
    sql: &mut Sql,
    ctx: &Ctx<'_>,
    scope: &Scope,
    path: &ResolvedPath,
) -> (JsonRef, Option<String>) {
    let json = match scope {
        Scope::Resource => resource_json(sql, ctx, path),
        Scope::Element(elem) => elem.clone(),
    };
    let sub = match (&path.sub, scope) {
        (Some(s), _) => Some(s.name.clone()),
        // A complex attribute compared alone compares its `value` (the parser already rewrites
        // `manager eq "x"` to `manager.value eq "x"`; hand-built trees may not).
        (None, Scope::Resource) if path.attr.kind == AttributeType::Complex => {
            path.attr.sub_attribute("value").map(|v| v.name.clone())
        }
        (None, _) => None,
    };
    (json, sub)
}

/// Applies `cond` to every value `json` (and `sub`) denotes, true when one matches: the
/// elements of an array (their `sub`), else the value itself (its `sub`). Driven by the stored
/// JSON's shape, as the core evaluator is.
fn over_values(
    sql: &mut Sql,
    json: &JsonRef,
    sub: Option<&str>,
    mut cond: impl FnMut(&mut Sql, &JsonRef) -> String,
) -> String {
    let (from, elem, _) = json.elements(sql);
    let elem_value = match sub {
        Some(s) => elem.child(sql, s),
        None => elem,
    };
    let in_array = cond(sql, &elem_value);
    let single = match sub {
        Some(s) => json.child(sql, s),
        None => json.clone(),
    };
    let in_single = cond(sql, &single);
    format!(
        "(CASE WHEN {} THEN EXISTS (SELECT 1 FROM {from} WHERE {in_array}) \
         ELSE COALESCE({in_single}, FALSE) END)",
        json.is(Kind::Array)
    )
}

fn present(sql: &mut Sql, ctx: &Ctx<'_>, scope: &Scope, path: &ResolvedPath) -> String {
    if let Scope::Resource = scope {
        match column_for(ctx.rt, path) {
            Some(Column::Text { expr, .. }) => {
                return format!("({expr} IS NOT NULL AND {expr} <> '')");
            }
            Some(Column::Time(_)) | Some(Column::Const(_)) => return TRUE.into(),
            Some(Column::Absent) => return FALSE.into(),
            None => {}
        }
        if path.attr.name == "meta" && path.location == Location::Common {
            return TRUE.into();
        }
    }
    let json = match scope {
        Scope::Resource => resource_json(sql, ctx, path),
        Scope::Element(elem) => elem.clone(),
    };
    let sub = path.sub.as_ref().map(|s| s.name.clone());
    over_values(sql, &json, sub.as_deref(), |_, v| v.present())
}

fn compare(sql: &mut Sql, ctx: &Ctx<'_>, scope: &Scope, c: &Comparison) -> String {
    if c.op == CompareOp::Ne {
        let eq = Comparison {
            op: CompareOp::Eq,
            ..c.clone()
        };
        return format!("(NOT {})", compare(sql, ctx, scope, &eq));
    }
    if c.value.is_null() {
        // `eq null`: absent (RFC 7644 treats null as "no value"); other operators never match.
        return if c.op == CompareOp::Eq {
            format!("(NOT {})", present(sql, ctx, scope, &c.path))
        } else {
            FALSE.into()
        };
    }
    if let Scope::Resource = scope {
        if let Some(col) = column_for(ctx.rt, &c.path) {
            return compare_column(sql, col, c);
        }
        if let Some(lookup) = value_lookup(sql, ctx, &c.path, std::slice::from_ref(c)) {
            return lookup;
        }
        if let Some(lookup) = member_lookup(sql, ctx, &c.path, std::slice::from_ref(c)) {
            return lookup;
        }
    }
    let (json, sub) = target(sql, ctx, scope, &c.path);
    let leaf = match (&c.path.sub, &sub) {
        (Some(s), _) => s.clone(),
        (None, Some(name)) => c
            .path
            .attr
            .sub_attribute(name)
            .cloned()
            .unwrap_or_else(|| c.path.attr.clone()),
        (None, None) => c.path.attr.clone(),
    };
    // Undeclared attributes compare by the comparison value's type, strings case-insensitively.
    let (kind, case_exact) = if c.path.declared {
        (leaf.kind, leaf.case_exact)
    } else {
        let kind = match &c.value {
            Value::Bool(_) => AttributeType::Boolean,
            Value::Number(_) => AttributeType::Decimal,
            _ => AttributeType::String,
        };
        (kind, false)
    };
    over_values(sql, &json, sub.as_deref(), |sql, v| {
        compare_json(sql, v, kind, case_exact, c.op.clone(), &c.value)
    })
}

fn compare_column(sql: &mut Sql, col: Column, c: &Comparison) -> String {
    match col {
        Column::Absent => FALSE.into(),
        Column::Const(k) => {
            let ok = c
                .value
                .as_str()
                .is_some_and(|v| string_op(&k, c.op.clone(), v));
            if ok { TRUE.into() } else { FALSE.into() }
        }
        Column::Time(expr) => {
            let Some(at) = c.value.as_str().and_then(parse_datetime) else {
                return FALSE.into();
            };
            let Some(op) = ordering_op(c.op.clone()) else {
                return FALSE.into();
            };
            let p = sql.bind(Arg::Int(crate::store::row::to_ns(at)));
            format!("({expr} {op} {p})")
        }
        Column::Text { expr, folded } => {
            let Some(v) = c.value.as_str() else {
                return FALSE.into();
            };
            let v = if folded { fold(v) } else { v.to_string() };
            // Two-valued without COALESCE, so the planner can use the column's index.
            format!(
                "({expr} IS NOT NULL AND {})",
                text_op(sql, &expr, c.op.clone(), &v)
            )
        }
    }
}

/// A comparison done in Rust for a constant (the same rules as in SQL).
fn string_op(k: &str, op: CompareOp, v: &str) -> bool {
    match op {
        CompareOp::Eq => k == v,
        CompareOp::Ne => k != v,
        CompareOp::Co => k.contains(v),
        CompareOp::Sw => k.starts_with(v),
        CompareOp::Ew => k.ends_with(v),
        CompareOp::Gt => k > v,
        CompareOp::Lt => k < v,
        CompareOp::Ge => k >= v,
        CompareOp::Le => k <= v,
    }
}

fn ordering_op(op: CompareOp) -> Option<&'static str> {
    Some(match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Lt => "<",
        CompareOp::Ge => ">=",
        CompareOp::Le => "<=",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => return None,
    })
}

/// `expr op literal` on text, code-point ordered.
fn text_op(sql: &mut Sql, expr: &str, op: CompareOp, v: &str) -> String {
    let pg = sql.pg();
    match op {
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew if v.is_empty() => {
            format!("({expr} IS NOT NULL)")
        }
        CompareOp::Co => {
            let p = sql.text(v);
            if pg {
                format!("(strpos({expr}, {p}) > 0)")
            } else {
                format!("(instr({expr}, {p}) > 0)")
            }
        }
        CompareOp::Sw => {
            let p = sql.text(v);
            if pg {
                format!("(left({expr}, length({p})) = {p})")
            } else {
                format!("(substr({expr}, 1, length({p})) = {p})")
            }
        }
        CompareOp::Ew => {
            let p = sql.text(v);
            if pg {
                format!("(right({expr}, length({p})) = {p})")
            } else {
                format!("(substr({expr}, -length({p})) = {p})")
            }
        }
        _ => {
            let sym = ordering_op(op).unwrap_or("=");
            let p = sql.text(v);
            if pg && sym != "=" && sym != "<>" {
                format!("({expr} COLLATE \"C\" {sym} {p})")
            } else {
                format!("({expr} {sym} {p})")
            }
        }
    }
}

fn compare_json(
    sql: &mut Sql,
    v: &JsonRef,
    kind: AttributeType,
    case_exact: bool,
    op: CompareOp,
    lit: &Value,
) -> String {
    match (kind, lit) {
        (AttributeType::Boolean, Value::Bool(b)) => match op {
            CompareOp::Eq => v.is(if *b { Kind::True } else { Kind::False }),
            _ => FALSE.into(),
        },
        (AttributeType::Integer | AttributeType::Decimal, Value::Number(n)) => {
            let Some(sym) = ordering_op(op) else {
                return FALSE.into();
            };
            let p = match sql.dialect {
                Dialect::Postgres => format!("{}::numeric", sql.text(n.to_string())),
                Dialect::Sqlite => match n.as_i64() {
                    Some(i) => sql.bind(Arg::Int(i)),
                    None => sql.bind(Arg::Float(n.as_f64().unwrap_or(f64::NAN))),
                },
            };
            format!("({} {sym} {p})", v.number())
        }
        (AttributeType::DateTime, Value::String(s)) => {
            // Instants, not text: the literal is parsed here, the stored value in SQL.
            let (Some(at), Some(sym)) = (parse_datetime(s), ordering_op(op)) else {
                return FALSE.into();
            };
            let p = sql.text(scim_core::resource::format_datetime(at));
            let stored = v.instant();
            let lit = match sql.dialect {
                Dialect::Sqlite => format!("julianday({p})"),
                Dialect::Postgres => format!("{p}::timestamptz"),
            };
            format!("({stored} {sym} {lit})")
        }
        (
            AttributeType::String | AttributeType::Reference | AttributeType::Binary,
            Value::String(s),
        ) => {
            let (expr, lit) = if case_exact {
                (v.text(), s.clone())
            } else {
                (v.folded_text(), fold(s))
            };
            format!(
                "({} AND {})",
                v.is(Kind::String),
                text_op(sql, &expr, op, &lit)
            )
        }
        _ => FALSE.into(),
    }
}

fn value_path(
    sql: &mut Sql,
    ctx: &Ctx<'_>,
    scope: &Scope,
    path: &ResolvedPath,
    filter: &Filter,
) -> String {
    if !matches!(scope, Scope::Resource) {
        // Value paths do not nest (RFC 7644 §3.4.2.2 grammar).
        return FALSE.into();
    }
    let conj: Vec<Comparison> = match filter {
        Filter::Compare(c) => vec![c.clone()],
        Filter::And(items) => items
            .iter()
            .filter_map(|f| match f {
                Filter::Compare(c) => Some(c.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let all_compares = match filter {
        Filter::And(items) => conj.len() == items.len(),
        _ => !conj.is_empty(),
    };
    if all_compares && let Some(lookup) = value_lookup(sql, ctx, path, &conj) {
        return lookup;
    }
    if all_compares && let Some(lookup) = member_lookup(sql, ctx, path, &conj) {
        return lookup;
    }
    // Some element of an array, or a single complex value as its own element.
    let json = resource_json(sql, ctx, path);
    let (from, elem, _) = json.elements(sql);
    let in_array = compile(sql, ctx, &Scope::Element(elem), filter);
    let single = compile(sql, ctx, &Scope::Element(json.clone()), filter);
    format!(
        "(CASE WHEN {} THEN EXISTS (SELECT 1 FROM {from} WHERE {in_array}) \
         WHEN {} THEN {single} ELSE FALSE END)",
        json.is(Kind::Array),
        json.is(Kind::Object)
    )
}

/// The JSON a top-level path reads in a resource row: the stored attributes, or for a Group's
/// `members` and a User's `groups` (which live in `memberships`, not in the row) an array built
/// from the membership table in the shape a read with members or groups returns.
fn resource_json(sql: &mut Sql, ctx: &Ctx<'_>, path: &ResolvedPath) -> JsonRef {
    let pg = sql.pg();
    let (key, other, fields) = match (path.location, path.attr.name.as_str()) {
        (Location::Core, "members") if ctx.rt.is_group() => (
            "group_id",
            "member_id",
            "'value', m.member_id, 'type', m.member_type, 'display', x.display",
        ),
        (Location::Core, "groups") if ctx.rt.is_user() => (
            "member_id",
            "group_id",
            "'value', m.group_id, 'display', x.display, 'type', 'direct'",
        ),
        _ => return JsonRef::root(sql, &attr_keys(path)),
    };
    let from = format!(
        "FROM memberships m JOIN resources x ON x.tenant_id = m.tenant_id AND x.id = m.{other} \
         WHERE m.tenant_id = r.tenant_id AND m.{key} = r.id"
    );
    if pg {
        JsonRef::Pg(format!(
            "(SELECT COALESCE(jsonb_agg(jsonb_strip_nulls(jsonb_build_object({fields}))), '[]'::jsonb) {from})"
        ))
    } else {
        JsonRef::Sqlite {
            doc: format!("(SELECT json_group_array(json_object({fields})) {from})"),
            path: "'$'".into(),
        }
    }
}

/// The index lookup for `members[value eq "id"]` / `members.value eq "id"` on Groups (a
/// member's `value` is case-exact): the groups having that member.
fn member_lookup(
    sql: &mut Sql,
    ctx: &Ctx<'_>,
    path: &ResolvedPath,
    conj: &[Comparison],
) -> Option<String> {
    if path.location != Location::Core || path.attr.name != "members" || !ctx.rt.is_group() {
        return None;
    }
    let [c] = conj else { return None };
    let sub = c.path.sub.as_ref()?;
    if sub.name != "value" || !sub.case_exact || c.op != CompareOp::Eq {
        return None;
    }
    let id = sql.text(c.value.as_str()?);
    Some(format!(
        "r.id IN (SELECT m.group_id FROM memberships m WHERE m.tenant_id = {} AND m.member_id = {id})",
        ctx.tenant
    ))
}

/// The `resource_values` lookup for a conjunction of `eq` comparisons on an indexed attribute's
/// `value` (at least one) and `type`, when it applies.
fn value_lookup(
    sql: &mut Sql,
    ctx: &Ctx<'_>,
    path: &ResolvedPath,
    conj: &[Comparison],
) -> Option<String> {
    if path.location != Location::Core
        || !path.schema.eq_ignore_ascii_case(USER_URN)
        || !ctx.rt.schema.eq_ignore_ascii_case(USER_URN)
        || !INDEXED_MULTI_VALUED.contains(&path.attr.name.as_str())
    {
        return None;
    }
    let mut value = None;
    let mut ty = None;
    for c in conj {
        let sub = c.path.sub.as_ref().map_or("value", |s| s.name.as_str());
        let def = path.attr.sub_attribute(sub)?;
        let lit = c.value.as_str()?;
        if c.op != CompareOp::Eq || def.case_exact {
            return None;
        }
        let slot = match sub {
            "value" => &mut value,
            "type" => &mut ty,
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(fold(lit));
    }
    let value = value?;
    let attr = sql.text(path.attr.name.clone());
    let v = sql.text(value);
    let mut cond = format!(
        "r.id IN (SELECT v.resource_id FROM resource_values v WHERE v.tenant_id = {} AND v.attr = {attr} AND v.value_ci = {v}",
        ctx.tenant
    );
    if let Some(ty) = ty {
        let p = sql.text(ty);
        cond.push_str(&format!(" AND v.type_ci = {p}"));
    }
    cond.push(')');
    Some(cond)
}
