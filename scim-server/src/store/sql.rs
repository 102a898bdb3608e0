//! Filter, sort and paging compilation to parameterised SQL, for SQLite and PostgreSQL alike.
//!
//! Every value from a request is bound as a parameter, JSON paths included; only fixed
//! fragments and placeholders are written into the SQL text.
//!
//! How a filter path compiles:
//! - `id`, `externalId`, `meta.created`, `meta.lastModified`, a User's `userName`, a Group's
//!   `displayName` and the enterprise `manager` read indexed columns (`userName` and a Group's
//!   `displayName` through their lower-cased unique key);
//! - `emails[type eq "work"].value eq "x"`, `emails.value eq "x"` and their kin over the
//!   attributes in [`INDEXED_MULTI_VALUED`] are lookups in `resource_values`;
//! - anything else reads the JSON attributes (`json_extract`/`json_each` on SQLite, `jsonb`
//!   operators and `jsonb_array_elements` on PostgreSQL). A multi-valued attribute matches when
//!   one of its values does; a complex attribute compared without a sub-attribute compares its
//!   `value`; `caseExact: false` compares lower-cased text; `ne` is the negation of `eq`
//!   (so an absent attribute is `ne` anything); strings order by code point.
//!
//! Every compiled condition is two-valued (never SQL `NULL`), so `not` negates exactly.

use super::row::{INDEXED_MULTI_VALUED, fold};
use scim_core::filter::{CompareOp, Comparison, Filter};
use scim_core::query::{ListQuery, SortOrder};
use scim_core::resource::parse_datetime;
use scim_core::schema::{
    AttributeDef, AttributeType, ENTERPRISE_USER_URN, GROUP_URN, Location, ResolvedPath,
    ResourceType, USER_URN,
};
use serde_json::Value;

/// The SQL dialect compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (JSON as text, `json_extract`/`json_each`).
    Sqlite,
    /// PostgreSQL (`jsonb`).
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double (SQLite numeric comparisons of non-integral literals).
    Float(f64),
    /// A text array (PostgreSQL `#>` paths).
    TextArray(Vec<String>),
}

/// SQL text with its parameters, placeholders numbered in push order.
#[derive(Debug, Clone)]
pub struct Sql {
    /// The dialect.
    pub dialect: Dialect,
    /// The SQL text.
    pub text: String,
    /// The parameters, `args[i]` bound to placeholder `i + 1`.
    pub args: Vec<Arg>,
    aliases: usize,
}

impl Sql {
    /// Empty SQL for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: String::new(),
            args: Vec::new(),
            aliases: 0,
        }
    }

    /// Adds a parameter and returns its placeholder `$N` (SQLite accepts the PostgreSQL form),
    /// which may be used several times.
    pub fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: impl Into<String>) -> String {
        self.bind(Arg::Text(s.into()))
    }

    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }
}

/// A compiled list query: the shared `WHERE`, the page query and the count query.
#[derive(Debug, Clone)]
pub struct ListSql {
    /// `SELECT <row columns> … ORDER BY … LIMIT … OFFSET …` (parameters: all of `args`).
    pub page: String,
    /// `SELECT COUNT(*) …` (parameters: the first `count_args` of `args`).
    pub count: String,
    /// Parameters.
    pub args: Vec<Arg>,
    /// How many leading parameters the count query uses.
    pub count_args: usize,
}

impl Dialect {
    /// The columns every resource read selects (table alias `r`), attributes as JSON text.
    pub fn resource_columns(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "r.resource_type, r.id, r.version, r.created_ns, r.last_modified_ns, r.attributes"
            }
            Dialect::Postgres => {
                "r.resource_type, r.id, r.version, r.created_ns, r.last_modified_ns, r.attributes::text AS attributes"
            }
        }
    }

    /// Whether rows carry `attributes_ci` (SQLite: see `JsonRef::folded_text`).
    pub fn has_folded_copy(self) -> bool {
        self == Dialect::Sqlite
    }

    /// A JSON text parameter as the attributes column's type.
    pub fn json_param(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => placeholder.to_string(),
            Dialect::Postgres => format!("{placeholder}::jsonb"),
        }
    }

    /// A subquery yielding the strings of a JSON array text parameter.
    pub fn strings_of(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({placeholder})"),
            Dialect::Postgres => format!("SELECT jsonb_array_elements_text({placeholder}::jsonb)"),
        }
    }

    /// The row-locking suffix for reading the chain head (SQLite's write transaction already
    /// excludes other writers).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// Compiles a list query for `tenant` and resource type `rt`.
pub fn compile_list(
    dialect: Dialect,
    tenant: &str,
    rt: &ResourceType,
    query: &ListQuery,
) -> ListSql {
    let mut sql = Sql::new(dialect);
    let t = sql.text(tenant);
    let ty = sql.text(rt.name.clone());
    let mut where_ = format!("r.tenant_id = {t} AND r.resource_type = {ty}");
    if let Some(filter) = &query.filter {
        let ctx = Ctx { tenant: &t, rt };
        let cond = compile(&mut sql, &ctx, &Scope::Resource, filter);
        where_.push_str(" AND ");
        where_.push_str(&cond);
    }
    let count = format!("SELECT COUNT(*) FROM resources r WHERE {where_}");
    let count_args = sql.args.len();
    let collate = if sql.pg() { " COLLATE \"C\"" } else { "" };
    let cols = dialect.resource_columns();
    let page = match &query.sort {
        Some(sort) => {
            let key = sort_key(&mut sql, rt, &sort.path);
            let dir = match sort.order {
                SortOrder::Ascending => "ASC",
                SortOrder::Descending => "DESC",
            };
            let limit = sql.bind(Arg::Int(i64::try_from(query.count).unwrap_or(i64::MAX)));
            let offset = sql.bind(Arg::Int(
                i64::try_from(query.start_index.max(1) - 1).unwrap_or(i64::MAX),
            ));
            // The key is computed once per row in a derived table (SQLite does not resolve
            // correlated table-valued functions inside ORDER BY).
            format!(
                "SELECT * FROM (SELECT {cols}, {key} AS sort_key FROM resources r WHERE {where_}) s \
                 ORDER BY (s.sort_key IS NULL), s.sort_key {dir}, s.id{collate} ASC \
                 LIMIT {limit} OFFSET {offset}"
            )
        }
        None => {
            let limit = sql.bind(Arg::Int(i64::try_from(query.count).unwrap_or(i64::MAX)));
            let offset = sql.bind(Arg::Int(
                i64::try_from(query.start_index.max(1) - 1).unwrap_or(i64::MAX),
            ));
            format!(
                "SELECT {cols} FROM resources r WHERE {where_} \
                 ORDER BY r.id{collate} ASC LIMIT {limit} OFFSET {offset}"
            )
        }
    };
    ListSql {
        page,
        count,
        args: sql.args,
        count_args,
    }
}

struct Ctx<'a> {
    tenant: &'a str,
    rt: &'a ResourceType,
}

/// Where a filter's paths are read from.
enum Scope {
    /// The resource row.
    Resource,
    /// One element of a multi-valued (or the object of a complex) attribute.
    Element(JsonRef),
}

/// A JSON value inside a row.
#[derive(Clone)]
enum JsonRef {
    /// SQLite: `json_*(doc, path)` with `path` an SQL expression giving a JSON path.
    Sqlite { doc: String, path: String },
    /// PostgreSQL: a `jsonb` expression.
    Pg(String),
}

/// JSON value kinds the compiler tests for.
#[derive(Clone, Copy)]
enum Kind {
    String,
    Number,
    True,
    False,
    Array,
    Object,
}

impl JsonRef {
    fn root(sql: &mut Sql, keys: &[&str]) -> JsonRef {
        match sql.dialect {
            Dialect::Sqlite => {
                let mut path = String::from("$");
                for k in keys {
                    path.push_str(&format!(".{}", sqlite_label(k)));
                }
                JsonRef::Sqlite {
                    doc: "r.attributes".into(),
                    path: sql.text(path),
                }
            }
            Dialect::Postgres => {
                let p = sql.bind(Arg::TextArray(keys.iter().map(|k| k.to_string()).collect()));
                JsonRef::Pg(format!("(r.attributes #> {p})"))
            }
        }
    }

    fn child(&self, sql: &mut Sql, key: &str) -> JsonRef {
        match self {
            JsonRef::Sqlite { doc, path } => {
                let label = sql.text(format!(".{}", sqlite_label(key)));
                JsonRef::Sqlite {
                    doc: doc.clone(),
                    path: format!("({path} || {label})"),
                }
            }
            JsonRef::Pg(j) => {
                let k = sql.text(key);
                JsonRef::Pg(format!("({j} -> {k})"))
            }
        }
    }

    fn type_sql(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } => format!("json_type({doc}, {path})"),
            JsonRef::Pg(j) => format!("jsonb_typeof({j})"),
        }
    }

    fn is(&self, kind: Kind) -> String {
        let t = self.type_sql();
        match (self, kind) {
            (JsonRef::Sqlite { .. }, Kind::String) => format!("{t} = 'text'"),
            (JsonRef::Sqlite { .. }, Kind::Number) => format!("{t} IN ('integer', 'real')"),
            (JsonRef::Sqlite { .. }, Kind::True) => format!("{t} = 'true'"),
            (JsonRef::Sqlite { .. }, Kind::False) => format!("{t} = 'false'"),
            (JsonRef::Pg(_), Kind::String) => format!("{t} = 'string'"),
            (JsonRef::Pg(_), Kind::Number) => format!("{t} = 'number'"),
            (JsonRef::Pg(j), Kind::True) => format!("{j} = 'true'::jsonb"),
            (JsonRef::Pg(j), Kind::False) => format!("{j} = 'false'::jsonb"),
            (_, Kind::Array) => format!("{t} = 'array'"),
            (_, Kind::Object) => format!("{t} = 'object'"),
        }
    }

    /// The value as SQL text (meaningful when it is a JSON string).
    fn text(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } => format!("json_extract({doc}, {path})"),
            JsonRef::Pg(j) => format!("({j} #>> '{{}}')"),
        }
    }

    /// The value as case-folded SQL text, folded as [`fold`] folds literals. SQLite's `lower()`
    /// folds ASCII only, so SQLite reads the row's `attributes_ci` (the attributes with every
    /// string folded in Rust, same shape); PostgreSQL's `lower()` folds per the database's
    /// `LC_CTYPE` (a UTF-8 locale folds as Rust does).
    fn folded_text(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } if doc == "r.attributes" => {
                format!("json_extract(r.attributes_ci, {path})")
            }
            _ => format!("lower({})", self.text()),
        }
    }

    /// The value as an SQL number, `NULL` unless it is a JSON number.
    fn number(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } => format!(
                "CASE WHEN {} THEN json_extract({doc}, {path}) END",
                self.is(Kind::Number)
            ),
            JsonRef::Pg(j) => format!(
                "CASE WHEN {} THEN ({j} #>> '{{}}')::numeric END",
                self.is(Kind::Number)
            ),
        }
    }

    /// The value as an instant (`NULL` unless it is an RFC 3339 string): SQLite's `julianday`,
    /// PostgreSQL's `timestamptz` (guarded by a pattern, since a failed cast is an error).
    fn instant(&self) -> String {
        let t = self.text();
        match self {
            JsonRef::Sqlite { .. } => {
                format!(
                    "CASE WHEN {} THEN julianday({t}) END",
                    self.is(Kind::String)
                )
            }
            JsonRef::Pg(_) => {
                // Without an offset, UTC (as the core's `parse_datetime` reads it).
                let re = "'^\\d{4}-[01]\\d-[0-3]\\dT[0-2]\\d:[0-5]\\d:[0-6]\\d(\\.\\d+)?'";
                format!(
                    "CASE WHEN {} AND {t} ~ ({re} || '(Z|[+-]\\d\\d:\\d\\d)$') THEN ({t})::timestamptz \
                     WHEN {} AND {t} ~ ({re} || '$') THEN ({t} || 'Z')::timestamptz END",
                    self.is(Kind::String),
                    self.is(Kind::String)
                )
            }
        }
    }

    /// RFC 7644 §3.4.2.2 `pr`: present and not empty (not null, `""`, `[]` or `{}`).
    fn present(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } => format!(
                "CASE json_type({doc}, {path}) WHEN 'null' THEN FALSE \
                 WHEN 'text' THEN json_extract({doc}, {path}) <> '' \
                 WHEN 'array' THEN json_array_length({doc}, {path}) > 0 \
                 WHEN 'object' THEN json_extract({doc}, {path}) <> '{{}}' \
                 ELSE json_type({doc}, {path}) IS NOT NULL END"
            ),
            JsonRef::Pg(j) => format!(
                "({j} IS NOT NULL AND {j} NOT IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{{}}'::jsonb))"
            ),
        }
    }

    /// Iterates the elements of an array value (nothing for a non-array): the `FROM` item, the
    /// element, and an expression giving the element's position.
    fn elements(&self, sql: &mut Sql) -> (String, JsonRef, String) {
        sql.aliases += 1;
        let alias = format!("e{}", sql.aliases);
        match self {
            JsonRef::Sqlite { doc, path } => {
                let array = self.is(Kind::Array);
                (
                    format!(
                        "json_each(CASE WHEN {array} THEN {doc} ELSE '[]' END, CASE WHEN {array} THEN {path} ELSE '$' END) AS {alias}"
                    ),
                    JsonRef::Sqlite {
                        doc: doc.clone(),
                        path: format!("{alias}.fullkey"),
                    },
                    format!("{alias}.key"),
                )
            }
            JsonRef::Pg(j) => (
                format!(
                    "jsonb_array_elements(CASE WHEN jsonb_typeof({j}) = 'array' THEN {j} ELSE '[]'::jsonb END) WITH ORDINALITY AS {alias}(v, n)"
                ),
                JsonRef::Pg(format!("{alias}.v")),
                format!("{alias}.n"),
            ),
        }
    }
}

/// A JSON object label for an SQLite path, quoted.
fn sqlite_label(key: &str) -> String {
    format!("\"{}\"", key.replace('"', "\\\""))
}

/// The JSON keys of a path's attribute (not its sub-attribute) within the attributes object.
fn attr_keys(path: &ResolvedPath) -> Vec<&str> {
    match path.location {
        Location::Extension => vec![path.schema.as_str(), path.attr.name.as_str()],
        _ => vec![path.attr.name.as_str()],
    }
}

/// A column a path maps to.
enum Column {
    /// A text column, case-exact, or holding lower-cased text (`folded`).
    Text { expr: String, folded: bool },
    /// A nanosecond timestamp column.
    Time(String),
    /// A known constant (`meta.resourceType`).
    Const(String),
    /// A value the store does not have (`meta.location`): never present.
    Absent,
}

fn column_for(rt: &ResourceType, path: &ResolvedPath) -> Option<Column> {
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

const TRUE: &str = "(1 = 1)";
const FALSE: &str = "(1 = 0)";

fn compile(sql: &mut Sql, ctx: &Ctx<'_>, scope: &Scope, filter: &Filter) -> String {
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
fn target(sql: &mut Sql, scope: &Scope, path: &ResolvedPath) -> (JsonRef, Option<String>) {
    let json = match scope {
        Scope::Resource => JsonRef::root(sql, &attr_keys(path)),
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
        Scope::Resource => JsonRef::root(sql, &attr_keys(path)),
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
    }
    let (json, sub) = target(sql, scope, &c.path);
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
            let p = sql.bind(Arg::Int(super::row::to_ns(at)));
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
    // Some element of an array, or a single complex value as its own element.
    let json = JsonRef::root(sql, &attr_keys(path));
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
fn sort_key(sql: &mut Sql, rt: &ResourceType, path: &ResolvedPath) -> String {
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
