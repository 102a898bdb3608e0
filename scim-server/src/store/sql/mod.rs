//! Filter, sort and paging compilation to parameterised SQL, for SQLite and PostgreSQL alike.
//!
//! Every value from a request is bound as a parameter, JSON paths included; only fixed
//! fragments and placeholders are written into the SQL text.
//!
//! How a filter path compiles (the semantics are `scim_core`'s evaluator's, which the storage
//! suite uses as the oracle):
//! - `id`, `externalId`, `meta.created`, `meta.lastModified`, a User's `userName`, a Group's
//!   `displayName` and the enterprise `manager` read indexed columns (`userName` and a Group's
//!   `displayName` through their lower-cased unique key);
//! - `emails[type eq "work"].value eq "x"`, `emails.value eq "x"` and their kin over the
//!   attributes in [`INDEXED_MULTI_VALUED`](crate::store::row::INDEXED_MULTI_VALUED) are
//!   lookups in `resource_values`; `members[value eq "id"]` on Groups is a lookup in
//!   `memberships`;
//! - a Group's `members` and a User's `groups` otherwise read an array built from
//!   `memberships` (they are not in the row);
//! - anything else reads the JSON attributes (`json_extract`/`json_each` on SQLite, `jsonb`
//!   operators and `jsonb_array_elements` on PostgreSQL). An array matches when one of its
//!   values does; `caseExact: false` compares case-folded text (SQLite reads the row's folded
//!   copy, `attributes_ci`); `ne` is the negation of `eq` (so an absent attribute is `ne`
//!   anything); strings order by code point; dateTimes compare as instants; undeclared
//!   attributes compare by the comparison value's JSON type.
//!
//! Every compiled condition is two-valued (never SQL `NULL`), so `not` negates exactly.

mod filter;
mod json;
mod sort;

use filter::{Ctx, Scope};
use scim_core::query::{ListQuery, SortOrder};
use scim_core::schema::{Location, ResolvedPath, ResourceType};

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
    /// Text or NULL.
    OptText(Option<String>),
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
    /// The page as stored (`attributes` not yet converted to text), `… LIMIT … OFFSET …`: the
    /// derived table `q` the row columns are read from on PostgreSQL and with groups.
    inner_page: String,
    /// `SELECT COUNT(*) …` (parameters: the first `count_args` of `args`).
    pub count: String,
    /// Parameters.
    pub args: Vec<Arg>,
    /// How many leading parameters the count query uses.
    pub count_args: usize,
    /// The page's order again, over the page as a derived table `q` (see
    /// [`ListSql::page_with_groups`]).
    outer_order: String,
    dialect: Dialect,
}

impl ListSql {
    /// The page query with each user's groups in a `groups_json` column, so a page of users is
    /// one statement: the page is chosen first (its `LIMIT` inside), and only its rows look up
    /// their groups. Parameters: all of `args`.
    pub fn page_with_groups(&self) -> String {
        format!(
            "SELECT {}, {} FROM ({}) q ORDER BY {}",
            self.dialect.page_columns(),
            groups_column(self.dialect, "$1", "q.id"),
            self.inner_page,
            self.outer_order
        )
    }
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

    /// The columns a page selects inside its `LIMIT … OFFSET` (table alias `r`): attributes as
    /// stored. A row the `OFFSET` skips is still produced, so on PostgreSQL a `::text` there
    /// printed the `jsonb` of every skipped row: the last page of 5,000 users took 13.0 ms, and
    /// 2.7–4.7 ms with the conversion outside (issue 14, W8).
    fn stored_columns(self) -> &'static str {
        "r.resource_type, r.id, r.version, r.created_ns, r.last_modified_ns, r.attributes"
    }

    /// [`Dialect::resource_columns`] read from a page's derived table `q` (see
    /// [`Dialect::stored_columns`]).
    fn page_columns(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "q.resource_type, q.id, q.version, q.created_ns, q.last_modified_ns, q.attributes"
            }
            Dialect::Postgres => {
                "q.resource_type, q.id, q.version, q.created_ns, q.last_modified_ns, q.attributes::text AS attributes"
            }
        }
    }

    /// Whether rows carry `attributes_ci` (SQLite: see `JsonRef::folded_text`).
    pub fn has_folded_copy(self) -> bool {
        self == Dialect::Sqlite
    }

    /// Whether an update sets the columns with indexes of their own (`unique_key`,
    /// `external_id`, `manager_id`) in a statement of its own, only when one of them changed.
    /// SQLite rewrites the entries of every index whose column an `UPDATE` names, changed or
    /// not: each a page written to the WAL at commit, at a random place in its index (as the
    /// keys are the client's), so an e-mail change dirtied three index pages for nothing.
    /// PostgreSQL compares the values itself (a heap-only update, with no index entry, when no
    /// indexed value changed and the row's page has room), and the extra statement would only
    /// cost it time.
    pub fn sets_indexed_columns_apart(self) -> bool {
        self == Dialect::Sqlite
    }

    /// The collation suffix that orders text by code point (SQLite's default already does).
    pub fn byte_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
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

    /// A table of the strings of a text-array parameter (bound as [`Arg::TextArray`]), one row
    /// per element in column `j.value`: `json_each` of the array's JSON text on SQLite,
    /// `unnest` of a `text[]` on PostgreSQL. Joined to `resources` with `CROSS JOIN`, which
    /// makes SQLite's planner look each element up by key (without it, SQLite walked every
    /// resource of the tenant and tested it against the list: issue 14).
    pub fn string_rows(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_each({placeholder}) AS j"),
            Dialect::Postgres => format!("unnest({placeholder}::text[]) AS j(value)"),
        }
    }

    /// Adds a group's members (parameters: tenant, group, [`Arg::TextArray`] of ids); ids that
    /// name no resource of the tenant add nothing.
    pub fn add_members_sql(self) -> String {
        format!(
            "INSERT INTO memberships (tenant_id, group_id, member_id, member_type) \
             SELECT $1, $2, r.id, r.resource_type FROM {} CROSS JOIN resources r \
             WHERE r.tenant_id = $1 AND r.id = j.value \
             ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING",
            self.string_rows("$3")
        )
    }

    /// Removes a group's members (parameters: tenant, group, [`Arg::TextArray`] of ids). On
    /// PostgreSQL `= ANY` puts the list into the primary key's index condition; a semi-join
    /// with `unnest` was planned, without statistics, as a walk over all the group's members.
    pub fn remove_members_sql(self) -> String {
        match self {
            Dialect::Sqlite => format!(
                "DELETE FROM memberships WHERE tenant_id = $1 AND group_id = $2 \
                 AND member_id IN (SELECT j.value FROM {})",
                self.string_rows("$3")
            ),
            Dialect::Postgres => "DELETE FROM memberships WHERE tenant_id = $1 AND group_id = $2 \
                 AND member_id = ANY($3::text[])"
                .to_string(),
        }
    }

    /// Removes a group's members except those in a list (parameters: tenant, group,
    /// [`Arg::TextArray`] of ids to keep): a `replace` of `members` keeps the members it names
    /// again instead of deleting and re-inserting them, so its removal and its insertion touch
    /// different rows and may run in either order (one statement on PostgreSQL).
    pub fn clear_members_sql(self) -> String {
        match self {
            Dialect::Sqlite => format!(
                "DELETE FROM memberships WHERE tenant_id = $1 AND group_id = $2 \
                 AND member_id NOT IN (SELECT j.value FROM {})",
                self.string_rows("$3")
            ),
            Dialect::Postgres => "DELETE FROM memberships WHERE tenant_id = $1 AND group_id = $2 \
                 AND member_id <> ALL($3::text[])"
                .to_string(),
        }
    }

    /// The ids among a list that name resources of one type (parameters: tenant, resource
    /// type, [`Arg::TextArray`] of ids), each looked up by primary key.
    pub fn existing_ids_sql(self) -> String {
        format!(
            "SELECT r.id FROM {} CROSS JOIN resources r \
             WHERE r.tenant_id = $1 AND r.id = j.value AND r.resource_type = $2",
            self.string_rows("$3")
        )
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

/// The statement reading one resource by id (`$1` tenant, `$2` id): the primary key's two
/// columns and nothing else, so no other index can look as cheap to PostgreSQL's planner
/// without statistics (a condition on `resource_type` too made indexes led by `(tenant_id,
/// resource_type)` tie with the key, and a generic plan once filtered a tenant's whole type by
/// id, issue 14); the caller checks the type of the row it gets. With `groups`
/// (a User whose `groups` the reply shows) the row also carries them as a JSON array of
/// `[group id, display]` pairs in `groups_json` (NULL or `[]` when there are none), so a read is
/// one statement and one round trip: the correlated subquery searches `memberships_member` and
/// the groups' primary key.
pub fn get_statement(dialect: Dialect, groups: bool) -> String {
    let cols = dialect.resource_columns();
    let extra = if groups {
        format!(", {}", groups_column(dialect, "r.tenant_id", "r.id"))
    } else {
        String::new()
    };
    format!("SELECT {cols}{extra} FROM resources r WHERE r.tenant_id = $1 AND r.id = $2")
}

/// The `groups_json` column: the groups of the user whose tenant and id are the SQL expressions
/// `tenant` and `id`, as a JSON array of `[group id, display]` pairs (NULL or `[]` when none).
fn groups_column(dialect: Dialect, tenant: &str, id: &str) -> String {
    let aggregate = match dialect {
        Dialect::Sqlite => "json_group_array(json_array(m.group_id, g.display))",
        Dialect::Postgres => "jsonb_agg(jsonb_build_array(m.group_id, g.display))::text",
    };
    format!(
        "(SELECT {aggregate} FROM memberships m \
         JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
         WHERE m.tenant_id = {tenant} AND m.member_id = {id}) AS groups_json"
    )
}

/// The members of one group in member id order (`$1` tenant, `$2` group id): member id, type
/// and display name, searching the membership primary key and the members' primary key.
pub fn members_statement(dialect: Dialect) -> String {
    format!(
        "SELECT m.member_id, m.member_type, r.display FROM memberships m \
         JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
         WHERE m.tenant_id = $1 AND m.group_id = $2 ORDER BY m.member_id{}",
        dialect.byte_order()
    )
}

/// The members of a page of groups in one statement (`$1` tenant, `$2` the groups' ids as a
/// JSON array): rows of group id, member id, member type and display name, in no particular
/// order.
pub fn members_of_statement(dialect: Dialect) -> String {
    format!(
        "SELECT m.group_id, m.member_id, m.member_type, r.display FROM memberships m \
         JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
         WHERE m.tenant_id = $1 AND {}",
        match dialect {
            Dialect::Sqlite => format!("m.group_id IN ({})", dialect.strings_of("$2")),
            // An array, not a set-returning function: PostgreSQL estimates
            // `jsonb_array_elements_text` at 100 rows whatever the page holds, and for a page of
            // two groups then hashed a scan of every membership of the tenant; `= ANY (array)`
            // is an index condition on `(tenant_id, group_id)`.
            Dialect::Postgres => format!("m.group_id = ANY (ARRAY({}))", dialect.strings_of("$2")),
        }
    )
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
        let cond = filter::compile(&mut sql, &ctx, &Scope::Resource, filter);
        where_.push_str(" AND ");
        where_.push_str(&cond);
    }
    let count = format!("SELECT COUNT(*) FROM resources r WHERE {where_}");
    let count_args = sql.args.len();
    let collate = if sql.pg() { " COLLATE \"C\"" } else { "" };
    let cols = dialect.stored_columns();
    let mut outer_order = format!("q.id{collate} ASC");
    let inner_page = match &query.sort {
        Some(sort) => {
            let key = sort::sort_key(&mut sql, rt, &sort.path);
            let dir = match sort.order {
                SortOrder::Ascending => "ASC",
                SortOrder::Descending => "DESC",
            };
            let limit = sql.bind(Arg::Int(i64::try_from(query.count).unwrap_or(i64::MAX)));
            let offset = sql.bind(Arg::Int(
                i64::try_from(query.start_index.max(1) - 1).unwrap_or(i64::MAX),
            ));
            outer_order = format!("(q.sort_key IS NULL), q.sort_key {dir}, q.id{collate} ASC");
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
            // With a filter, the index that yields id order looked as cheap to both planners
            // (without statistics every equality estimates about one row) as the filter's own
            // index, and walking it skips a sort, so they scanned a tenant's whole type to find
            // one row. Ordering by an expression no index provides leaves the choice to the
            // filter's index; the matches are few or counted by a scan anyway. Without a filter,
            // pages walk the list index in order.
            let order_term = if query.filter.is_some() {
                "(r.id || '')"
            } else {
                "r.id"
            };
            format!(
                "SELECT {cols} FROM resources r WHERE {where_} \
                 ORDER BY {order_term}{collate} ASC LIMIT {limit} OFFSET {offset}"
            )
        }
    };
    // SQLite stores attributes as text: its inner page is the page.
    let page = match dialect {
        Dialect::Sqlite => inner_page.clone(),
        Dialect::Postgres => format!(
            "SELECT {} FROM ({inner_page}) q ORDER BY {outer_order}",
            dialect.page_columns()
        ),
    };
    ListSql {
        page,
        inner_page,
        count,
        args: sql.args,
        count_args,
        outer_order,
        dialect,
    }
}

/// The JSON keys of a path's attribute (not its sub-attribute) within the attributes object.
fn attr_keys(path: &ResolvedPath) -> Vec<&str> {
    match path.location {
        Location::Extension => vec![path.schema.as_str(), path.attr.name.as_str()],
        _ => vec![path.attr.name.as_str()],
    }
}

/// `sql` with every placeholder `$N` renumbered `$(N + offset)`, so statements written with
/// their own `$1`… can share one query's arguments. (No statement of the store holds a `$`
/// followed by a digit outside a placeholder.)
pub fn renumber_placeholders(sql: &str, offset: usize) -> std::borrow::Cow<'_, str> {
    if offset == 0 {
        return std::borrow::Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let end = (i + 1..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            let n: usize = sql[i + 1..end].parse().unwrap_or(0);
            out.push_str(&sql[copied..i]);
            out.push('$');
            out.push_str(&(n + offset).to_string());
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests;
