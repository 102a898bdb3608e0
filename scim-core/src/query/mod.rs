//! List queries (RFC 7644 §3.4.2): filter, sorting, paging, projection, POST `.search` bodies and
//! the ListResponse.
//!
//! [`ListQuery::from_params`] validates GET parameters and [`ListQuery::from_search`] a POST
//! `/.search` body into the same [`ListQuery`]. A storage layer compiles its filter, sort and
//! page; [`ListQuery::run`] is the in-memory reference implementation (and the oracle server tests
//! compare storage against).
//!
//! ```
//! use scim_core::query::{ListQuery, ListResponse, QueryLimits, QueryParams, SortOrder};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::builtin();
//! let groups = registry.resource_type("Group").unwrap();
//! let params = QueryParams {
//!     sort_by: Some("DisplayName".into()),
//!     sort_order: Some("DESCENDING".into()),
//!     count: Some("5000".into()),
//!     excluded_attributes: Some("members".into()),
//!     ..QueryParams::default()
//! };
//! let query = ListQuery::from_params(&registry, groups, &params, QueryLimits::default()).unwrap();
//! assert_eq!(query.count, 1000); // lowered to max_page_size
//! assert_eq!(query.sort.as_ref().unwrap().order, SortOrder::Descending);
//! assert!(!query.projection.includes_members()); // Entra's excludedAttributes=members
//!
//! let page = query.run(&registry, groups, vec![
//!     json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "1", "displayName": "a", "members": [{"value": "u"}]}),
//!     json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "2", "displayName": "b"}),
//! ]);
//! let body = page.to_json();
//! assert_eq!(body["totalResults"], 2);
//! assert_eq!(body["Resources"][0]["displayName"], "b");
//! assert!(body["Resources"][1].get("members").is_none());
//! ```

mod projection;
mod sort;

pub use sort::sort_resources;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::schema::{ResolvedPath, ResourceType, SchemaRegistry, split_path};
use serde_json::{Map, Value};

/// The ListResponse message URN.
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The SearchRequest message URN.
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Limits a service provider applies to list queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// The page size when the client gives no `count`.
    pub default_page_size: u64,
    /// The largest page served; a larger `count` is lowered to it (RFC 7644 §3.4.2.4: "the
    /// service provider MAY return fewer results than requested").
    pub max_page_size: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            default_page_size: 100,
            max_page_size: 1000,
        }
    }
}

/// The raw query parameters of a GET list request (names matched case-insensitively by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// `filter`
    pub filter: Option<String>,
    /// `sortBy`
    pub sort_by: Option<String>,
    /// `sortOrder`
    pub sort_order: Option<String>,
    /// `startIndex`
    pub start_index: Option<String>,
    /// `count`
    pub count: Option<String>,
    /// `attributes` (comma-separated)
    pub attributes: Option<String>,
    /// `excludedAttributes` (comma-separated)
    pub excluded_attributes: Option<String>,
    /// `cursor` (RFC 9865)
    pub cursor: Option<String>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Ascending (the default, RFC 7644 §3.4.2.3).
    #[default]
    Ascending,
    /// Descending.
    Descending,
}

impl SortOrder {
    /// Parses `ascending` / `descending` in any case (RFC 7644 §3.4.2.3); anything else is
    /// `invalidValue`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("ascending") {
            Ok(Self::Ascending)
        } else if s.eq_ignore_ascii_case("descending") {
            Ok(Self::Descending)
        } else {
            Err(Error::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", got {s:?}"
            )))
        }
    }
}

/// A resolved `sortBy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// The attribute sorted by.
    pub path: ResolvedPath,
    /// The direction.
    pub order: SortOrder,
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), resolved.
///
/// Names no schema declares are dropped when the projection is built: RFC 7644 §3.4.2.5 only
/// says which attributes are returned, and an unknown one simply has nothing to return.
/// [`Projection::apply`] applies it to a full representation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// Attributes asked for; empty means "the default set".
    pub attributes: Vec<ResolvedPath>,
    /// Attributes excluded.
    pub excluded: Vec<ResolvedPath>,
}

impl Projection {
    /// Resolves `attributes` and `excludedAttributes` as given in a query string (comma-separated)
    /// for any request that returns a resource: a list, a GET by id, and the responses of POST,
    /// PUT and PATCH (RFC 7644 §3.9). Names are trimmed and resolved case-insensitively; unknown
    /// names are ignored (an `attributes` list of only unknown names returns only `id` and
    /// `schemas`); a whole extension URN names every attribute of the extension.
    pub fn parse(
        registry: &SchemaRegistry,
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> Self {
        Self {
            attributes: resolve_list(registry, rt, attributes, true),
            excluded: resolve_list(registry, rt, excluded_attributes, false),
        }
    }

    /// True when the projection asks for nothing special (the default set).
    pub fn is_default(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }
}

/// A validated list query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// The filter, if any.
    pub filter: Option<Filter>,
    /// The sort, if any.
    pub sort: Option<Sort>,
    /// 1-based index of the first result (values below 1 are 1).
    pub start_index: u64,
    /// Page size after limits; 0 asks for totals only.
    pub count: u64,
    /// The projection.
    pub projection: Projection,
    /// The RFC 9865 `cursor` as sent (an empty string asks for the first page). The engine does
    /// not interpret cursors; a server that does not implement them ignores this.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// Validates GET parameters.
    ///
    /// - `filter`: [`Filter::parse`] (`invalidFilter`); an empty or blank filter is no filter.
    /// - `sortBy`: resolved against the schemas; an unknown attribute is `invalidValue` naming it
    ///   (RFC 7644 §3.4.2.3 leaves the choice open; a typo should not silently sort by nothing).
    /// - `sortOrder`: `ascending`/`descending` in any case, else `invalidValue`.
    /// - `startIndex`: "A value less than 1 SHALL be interpreted as 1" (RFC 7644 §3.4.2.4);
    ///   not an integer: `invalidValue`.
    /// - `count`: "A negative value SHALL be interpreted as "0""; above
    ///   [`QueryLimits::max_page_size`] it is lowered to it; absent: the default page size; not an
    ///   integer: `invalidValue`.
    /// - a parameter given empty (`count=`) counts as absent;
    /// - `attributes` / `excludedAttributes`: comma-separated, trimmed, resolved; unknown names
    ///   are ignored (an `attributes` list of only unknown names returns only `id` and
    ///   `schemas`); a whole extension URN names every attribute of the extension.
    pub fn from_params(
        registry: &SchemaRegistry,
        rt: &ResourceType,
        params: &QueryParams,
        limits: QueryLimits,
    ) -> Result<Self> {
        let filter = match params.filter.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => Some(Filter::parse(registry, rt, text)?),
            _ => None,
        };
        let order = match params.sort_order.as_deref() {
            Some(s) if !s.trim().is_empty() => SortOrder::parse(s)?,
            _ => SortOrder::Ascending,
        };
        let sort = match params.sort_by.as_deref().map(str::trim) {
            Some(path) if !path.is_empty() => {
                let path = registry.resolve_str(rt, path).map_err(|_| {
                    Error::invalid_value(format!(
                        "sortBy {path:?} is not an attribute of resource type {}",
                        rt.name
                    ))
                })?;
                Some(Sort { path, order })
            }
            _ => None,
        };
        let start_index = match non_blank(&params.start_index) {
            Some(s) => parse_integer("startIndex", s)?.max(1) as u64,
            None => 1,
        };
        let count = match non_blank(&params.count) {
            Some(s) => (parse_integer("count", s)?.max(0) as u64).min(limits.max_page_size),
            None => limits.default_page_size.min(limits.max_page_size),
        };
        Ok(Self {
            filter,
            sort,
            start_index,
            count,
            projection: Projection::parse(
                registry,
                rt,
                params.attributes.as_deref(),
                params.excluded_attributes.as_deref(),
            ),
            cursor: params.cursor.clone(),
        })
    }

    /// Validates a POST `/.search` body (RFC 7644 §3.4.3): `attributes` and
    /// `excludedAttributes` as arrays of strings, `filter`, `sortBy`, `sortOrder` as strings,
    /// `startIndex` and `count` as integers, `cursor` (RFC 9865). Then the rules of
    /// [`ListQuery::from_params`] apply.
    ///
    /// Lenient where it costs nothing: member names in any case, `schemas` not required,
    /// numbers sent as strings, attribute lists sent as one comma-separated string, `null` for
    /// absent. A body that is not an object, or a member of the wrong JSON type, is
    /// `invalidSyntax` naming the member.
    pub fn from_search(
        registry: &SchemaRegistry,
        rt: &ResourceType,
        body: Value,
        limits: QueryLimits,
    ) -> Result<Self> {
        let Value::Object(body) = body else {
            return Err(Error::invalid_syntax(
                "a SearchRequest body must be a JSON object (RFC 7644 §3.4.3)",
            ));
        };
        let mut params = QueryParams::default();
        for (key, value) in body {
            let slot = match key.to_ascii_lowercase().as_str() {
                "filter" => &mut params.filter,
                "sortby" => &mut params.sort_by,
                "sortorder" => &mut params.sort_order,
                "startindex" => &mut params.start_index,
                "count" => &mut params.count,
                "attributes" => &mut params.attributes,
                "excludedattributes" => &mut params.excluded_attributes,
                "cursor" => &mut params.cursor,
                _ => continue,
            };
            *slot = search_member(&key, value)?;
        }
        Self::from_params(registry, rt, &params, limits)
    }

    /// The in-memory reference implementation of a list request over full representations (as
    /// [`crate::resource::Resource::to_json`] gives them): filter, sort, page, project.
    ///
    /// Without `sortBy` the input order is kept (RFC 7644 §3.4.2.4 asks for a consistent order;
    /// that is the caller's storage order).
    pub fn run(
        &self,
        registry: &SchemaRegistry,
        rt: &ResourceType,
        mut resources: Vec<Value>,
    ) -> ListResponse {
        if let Some(filter) = &self.filter {
            resources.retain(|r| r.as_object().is_some_and(|o| filter.matches(o)));
        }
        if let Some(sort) = &self.sort {
            sort_resources(&mut resources, sort);
        }
        let total = resources.len() as u64;
        let skip = usize::try_from(self.start_index.saturating_sub(1)).unwrap_or(usize::MAX);
        let take = usize::try_from(self.count).unwrap_or(usize::MAX);
        let page = resources
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|r| self.projection.apply(registry, rt, r))
            .collect();
        ListResponse::new(total, self.start_index, page)
    }
}

fn non_blank(param: &Option<String>) -> Option<&str> {
    param.as_deref().filter(|s| !s.trim().is_empty())
}

fn parse_integer(name: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    t.parse::<i64>().or_else(|_| {
        // Out of i64 range but still an integer: saturate.
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(if t.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        } else {
            Err(Error::invalid_value(format!(
                "{name} must be an integer (RFC 7644 §3.4.2.4), got {s:?}"
            )))
        }
    })
}

/// Resolves a comma-separated attribute list. A name that is a whole extension URN stands for
/// every attribute of the extension. Unknown names are dropped; when `attributes` names nothing
/// known, the result is `[id]`, so that only `returned: always` attributes come back rather
/// than the default set (RFC 7644 §3.4.2.5: the list overrides the default set).
fn resolve_list(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    list: Option<&str>,
    is_attributes: bool,
) -> Vec<ResolvedPath> {
    let names: Vec<&str> = list
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = Vec::new();
    for name in &names {
        if let Some(urn) = registry.extension_urn(rt, name) {
            let attrs = registry.schema(urn).map(|s| s.attributes.as_slice());
            out.extend(
                attrs
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|a| registry.resolve(rt, Some(urn), &a.name, None)),
            );
            continue;
        }
        let (uri, attr, sub) = split_path(name);
        out.extend(registry.resolve(rt, uri, attr, sub));
    }
    if is_attributes && out.is_empty() && !names.is_empty() {
        out.extend(registry.resolve(rt, None, "id", None));
    }
    out
}

fn search_member(key: &str, value: Value) -> Result<Option<String>> {
    Ok(match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Number(n) => {
            return Err(Error::invalid_value(format!(
                "{key} must be an integer, got {n}"
            )));
        }
        Value::Array(items) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => names.push(s),
                    _ => {
                        return Err(Error::invalid_syntax(format!(
                            "{key} must be an array of strings"
                        )));
                    }
                }
            }
            Some(names.join(","))
        }
        _ => {
            return Err(Error::invalid_syntax(format!(
                "{key} has the wrong JSON type (RFC 7644 §3.4.3)"
            )));
        }
    })
}

/// A ListResponse (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    /// The full number of matches, not the page size.
    pub total_results: u64,
    /// The 1-based index of the first result on this page.
    pub start_index: u64,
    /// The resources on this page (already projected).
    pub resources: Vec<Value>,
    /// The RFC 9865 `nextCursor`, for a server that implements cursor pagination.
    pub next_cursor: Option<String>,
}

impl ListResponse {
    /// A page without a cursor.
    pub fn new(total_results: u64, start_index: u64, resources: Vec<Value>) -> Self {
        Self {
            total_results,
            start_index,
            resources,
            next_cursor: None,
        }
    }

    /// The wire form: `schemas`, integer `totalResults`, `startIndex` and `itemsPerPage` (the
    /// number of resources on this page), and `Resources` with a capital R, present even when
    /// empty (Entra expects `"Resources": []` for no match, reference §1.4 C); `nextCursor` when
    /// set (RFC 9865).
    pub fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    /// [`Self::to_json`], consuming the response: the resources move into it, uncopied.
    pub fn into_json(self) -> Value {
        let mut out = Map::new();
        out.insert("schemas".into(), Value::from(vec![LIST_RESPONSE_URN]));
        out.insert("totalResults".into(), Value::from(self.total_results));
        out.insert("startIndex".into(), Value::from(self.start_index));
        out.insert("itemsPerPage".into(), Value::from(self.resources.len()));
        if let Some(cursor) = self.next_cursor {
            out.insert("nextCursor".into(), Value::String(cursor));
        }
        out.insert("Resources".into(), Value::Array(self.resources));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests;
