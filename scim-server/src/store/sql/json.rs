//! JSON access in each dialect: a value inside a row's attributes, its type, text, number,
//! instant and presence, and iteration over array elements.

use super::{Arg, Dialect, Sql};

/// A JSON value inside a row.
#[derive(Clone)]
pub(super) enum JsonRef {
    /// SQLite: `json_*(doc, path)` with `path` an SQL expression giving a JSON path.
    Sqlite { doc: String, path: String },
    /// PostgreSQL: a `jsonb` expression.
    Pg(String),
}

/// JSON value kinds the compiler tests for.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    String,
    Number,
    True,
    False,
    Array,
    Object,
}

impl JsonRef {
    pub(super) fn root(sql: &mut Sql, keys: &[&str]) -> JsonRef {
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

    pub(super) fn child(&self, sql: &mut Sql, key: &str) -> JsonRef {
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

    pub(super) fn type_sql(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } => format!("json_type({doc}, {path})"),
            JsonRef::Pg(j) => format!("jsonb_typeof({j})"),
        }
    }

    pub(super) fn is(&self, kind: Kind) -> String {
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
    pub(super) fn text(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } => format!("json_extract({doc}, {path})"),
            JsonRef::Pg(j) => format!("({j} #>> '{{}}')"),
        }
    }

    /// The value as case-folded SQL text, folded as [`fold`](crate::store::row::fold) folds literals. SQLite's `lower()`
    /// folds ASCII only, so SQLite reads the row's `attributes_ci` (the attributes with every
    /// string folded in Rust, same shape); PostgreSQL's `lower()` folds per the database's
    /// `LC_CTYPE` (a UTF-8 locale folds as Rust does).
    pub(super) fn folded_text(&self) -> String {
        match self {
            JsonRef::Sqlite { doc, path } if doc == "r.attributes" => {
                format!("json_extract(r.attributes_ci, {path})")
            }
            _ => format!("lower({})", self.text()),
        }
    }

    /// The value as an SQL number, `NULL` unless it is a JSON number.
    pub(super) fn number(&self) -> String {
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
    pub(super) fn instant(&self) -> String {
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
    pub(super) fn present(&self) -> String {
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
    pub(super) fn elements(&self, sql: &mut Sql) -> (String, JsonRef, String) {
        sql.aliases += 1;
        let alias = format!("e{}", sql.aliases);
        match self {
            JsonRef::Sqlite { doc, path } => {
                let array = self.is(Kind::Array);
                (
                    format!(
                        "json_each(CASE WHEN {array} THEN {doc} ELSE '[]' END, CASE WHEN {array} THEN {path} ELSE '$' END) AS {alias}"
                    ),
                    if doc == "r.attributes" {
                        // Addressed from the row, so the folded copy can be read alike.
                        JsonRef::Sqlite {
                            doc: doc.clone(),
                            path: format!("{alias}.fullkey"),
                        }
                    } else {
                        // A computed array (membership) holds objects only.
                        JsonRef::Sqlite {
                            doc: format!("{alias}.value"),
                            path: "'$'".into(),
                        }
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
