//! Bulk (RFC 7644 §3.7): request and response types, `bulkId` references, cycle detection,
//! `failOnErrors`.
//!
//! The engine parses and orders; the server executes each operation with the same services as
//! the single-resource endpoints, resolving `bulkId:` references to the ids created so far.
//!
//! ```
//! use scim_core::bulk::{BulkRequest, execution_order, references};
//! use serde_json::json;
//!
//! let body = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
//!     "Operations": [
//!         {"method": "POST", "path": "/Groups", "bulkId": "g1",
//!          "data": {"displayName": "Tour Guides", "members": [{"value": "bulkId:u1"}]}},
//!         {"method": "post", "path": "/Users", "bulkId": "u1", "data": {"userName": "alice"}}
//!     ]
//! });
//! let request = BulkRequest::parse(body, 1000).unwrap();
//! assert_eq!(references(request.operations[0].data.as_ref().unwrap()), ["u1"]);
//! // The group references the user, so the user is created first.
//! assert_eq!(execution_order(&request.operations).unwrap(), [1, 0]);
//! ```

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

/// The BulkRequest message URN.
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The BulkResponse message URN.
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The HTTP method of one bulk operation (RFC 7644 §3.7: "POST", "PUT", "PATCH" or "DELETE").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkMethod {
    /// Create.
    Post,
    /// Replace.
    Put,
    /// Modify.
    Patch,
    /// Delete.
    Delete,
}

impl BulkMethod {
    /// Parses a method name in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The upper-case wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One operation of a BulkRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    /// The method.
    pub method: BulkMethod,
    /// The client's surrogate id for a POST (RFC 7644 §3.7: "REQUIRED when "method" is "POST"";
    /// tolerated when absent, as HR pushers omit or reuse it).
    pub bulk_id: Option<String>,
    /// The ETag the client expects (an If-Match for PUT, PATCH and DELETE).
    pub version: Option<String>,
    /// The resource path relative to the base URL: `/Users` for a POST, `/Users/{id}` otherwise.
    pub path: String,
    /// The request body (required for POST, PUT and PATCH).
    pub data: Option<Value>,
}

impl BulkOperation {
    /// Every `bulkId` this operation refers to, in its path and its data, each once.
    pub fn references(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_refs(&self.path, &mut out);
        if let Some(data) = &self.data {
            walk_refs(data, &mut out);
        }
        out
    }

    /// Replaces `bulkId:` references in the path and the data with the ids in `ids` (see
    /// [`resolve_references`]).
    pub fn resolve(&mut self, ids: &HashMap<String, String>) -> Result<()> {
        let mut path = Value::String(std::mem::take(&mut self.path));
        let result = resolve_references(&mut path, ids);
        if let Value::String(p) = path {
            self.path = p;
        }
        result?;
        match &mut self.data {
            Some(data) => resolve_references(data, ids),
            None => Ok(()),
        }
    }

    /// The endpoint and id the path names: `/Users/2819c223` → (`/Users`, `Some("2819c223")`),
    /// `/Users` → (`/Users`, `None`). A trailing slash is ignored.
    pub fn target(&self) -> (&str, Option<&str>) {
        let path = self.path.trim_end_matches('/');
        match path.get(1..).and_then(|rest| rest.find('/')) {
            Some(i) => (&path[..=i], Some(&path[i + 2..])),
            None => (path, None),
        }
    }
}

/// A parsed BulkRequest (RFC 7644 §3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// "An integer specifying the number of errors that the service provider will accept before
    /// the operation is terminated"; `None` when absent or `null` (HR pushers send `null`):
    /// process everything.
    pub fail_on_errors: Option<usize>,
    /// The operations, in request order.
    pub operations: Vec<BulkOperation>,
}

impl BulkRequest {
    /// Parses a BulkRequest body.
    ///
    /// - the body must be an object with an `Operations` array (member names in any case;
    ///   `schemas` not required), else `invalidSyntax`;
    /// - more than `max_operations` operations is 413 Payload Too Large (RFC 7644 §3.7.4: "If
    ///   either limit is exceeded, the service provider MUST return HTTP response code 413");
    /// - `failOnErrors`: an integer of at least 1, or `null`/absent, else `invalidValue`;
    /// - each operation needs a `method` (any case) and a `path` starting with `/`, and `data`
    ///   unless it is a DELETE; a structural error is `invalidSyntax` naming `Operations[i]`.
    ///   Whether `data` is a valid resource is decided when the operation runs.
    pub fn parse(body: Value, max_operations: usize) -> Result<Self> {
        let Value::Object(body) = body else {
            return Err(Error::invalid_syntax(
                "a BulkRequest body must be a JSON object (RFC 7644 §3.7)",
            ));
        };
        let operations = match get_ci(&body, "Operations") {
            Some(Value::Array(ops)) => ops,
            Some(_) => return Err(Error::invalid_syntax("Operations must be an array")),
            None => {
                return Err(Error::invalid_syntax(
                    "a BulkRequest needs an Operations array (RFC 7644 §3.7)",
                ));
            }
        };
        if operations.len() > max_operations {
            return Err(Error::payload_too_large(format!(
                "the bulk request has {} operations; maxOperations is {max_operations} \
                 (RFC 7644 §3.7.4)",
                operations.len()
            )));
        }
        let fail_on_errors = match get_ci(&body, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                integer(v)
                    .filter(|n| *n >= 1)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        Error::invalid_value(format!(
                            "failOnErrors must be an integer of at least 1, got {v}"
                        ))
                    })?,
            ),
        };
        let operations = operations
            .iter()
            .enumerate()
            .map(|(i, op)| parse_operation(op).map_err(|e| e.context(format!("Operations[{i}]"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            fail_on_errors,
            operations,
        })
    }
}

/// Checks a bulk body's size before parsing: more than `max_payload_size` bytes is 413 (RFC 7644
/// §3.7.4, `maxPayloadSize` of `/ServiceProviderConfig`).
pub fn check_payload_size(len: usize, max_payload_size: usize) -> Result<()> {
    if len > max_payload_size {
        Err(Error::payload_too_large(format!(
            "the bulk request is {len} bytes; maxPayloadSize is {max_payload_size} (RFC 7644 §3.7.4)"
        )))
    } else {
        Ok(())
    }
}

fn parse_operation(op: &Value) -> Result<BulkOperation> {
    let Value::Object(op) = op else {
        return Err(Error::invalid_syntax("an operation must be a JSON object"));
    };
    let method = match get_ci(op, "method") {
        Some(Value::String(m)) => BulkMethod::parse(m).ok_or_else(|| {
            Error::invalid_syntax(format!(
                "method must be POST, PUT, PATCH or DELETE, got {m:?}"
            ))
        })?,
        _ => return Err(Error::invalid_syntax("method is required (RFC 7644 §3.7)")),
    };
    let path = match get_ci(op, "path") {
        Some(Value::String(p)) if p.starts_with('/') => p.clone(),
        Some(Value::String(p)) => {
            return Err(Error::invalid_syntax(format!(
                "path must start with '/', e.g. /Users, got {p:?}"
            )));
        }
        _ => return Err(Error::invalid_syntax("path is required (RFC 7644 §3.7)")),
    };
    let bulk_id = match get_ci(op, "bulkId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(Error::invalid_syntax("bulkId must be a string")),
    };
    let version = match get_ci(op, "version") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::invalid_syntax("version must be a string (an ETag)")),
    };
    let data = match get_ci(op, "data") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    if data.is_none() && method != BulkMethod::Delete {
        return Err(Error::invalid_syntax(format!(
            "data is required for {} (RFC 7644 §3.7)",
            method.as_str()
        )));
    }
    Ok(BulkOperation {
        method,
        bulk_id,
        version,
        path,
        data: if method == BulkMethod::Delete {
            None
        } else {
            data
        },
    })
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

const PREFIX: &str = "bulkid:";

/// Every `bulkId` referenced anywhere in `data` (RFC 7644 §3.7.2: "bulkId:" followed by the
/// id), each once, in document order: a whole string value (`"value": "bulkId:u1"`) or a path
/// segment (`/Groups/bulkId:g1`). The prefix is matched in any case.
pub fn references(data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_refs(data, &mut out);
    out
}

fn walk_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => collect_refs(s, out),
        Value::Array(items) => items.iter().for_each(|i| walk_refs(i, out)),
        Value::Object(obj) => obj.values().for_each(|i| walk_refs(i, out)),
        _ => {}
    }
}

/// The byte ranges `(start of "bulkId:", end of id)` of the references in `s`.
fn ref_spans(s: &str) -> Vec<(usize, usize)> {
    let lower = s.to_ascii_lowercase();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find(PREFIX) {
        let start = from + found;
        let at_boundary = start == 0 || s.as_bytes()[start - 1] == b'/';
        let id_start = start + PREFIX.len();
        let id_end = s[id_start..]
            .find(['/', '?', '#'])
            .map_or(s.len(), |i| id_start + i);
        if at_boundary && id_end > id_start {
            spans.push((start, id_end));
        }
        from = id_end.max(id_start);
    }
    spans
}

fn collect_refs(s: &str, out: &mut Vec<String>) {
    for (start, end) in ref_spans(s) {
        let id = &s[start + PREFIX.len()..end];
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
}

/// Replaces every `bulkId:<id>` reference in `value` with the resource id `ids` maps it to.
///
/// A reference to a bulkId not in `ids` (never defined, or its operation failed) is 400
/// `invalidValue` naming the bulkId; `value` may then be partly resolved and should be
/// discarded.
pub fn resolve_references(value: &mut Value, ids: &HashMap<String, String>) -> Result<()> {
    match value {
        Value::String(s) => {
            let spans = ref_spans(s);
            if spans.is_empty() {
                return Ok(());
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for (start, end) in spans {
                let bulk_id = &s[start + PREFIX.len()..end];
                let id = ids.get(bulk_id).ok_or_else(|| {
                    Error::invalid_value(format!(
                        "bulkId {bulk_id:?} does not name a resource created earlier in this \
                         request (RFC 7644 §3.7.2)"
                    ))
                })?;
                out.push_str(&s[last..start]);
                out.push_str(id);
                last = end;
            }
            out.push_str(&s[last..]);
            *s = out;
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|i| resolve_references(i, ids)),
        Value::Object(obj) => obj
            .values_mut()
            .try_for_each(|i| resolve_references(i, ids)),
        _ => Ok(()),
    }
}

/// The order to run `operations` in: every operation after the operations whose `bulkId` it
/// references, otherwise request order (RFC 7644 §3.7.2: "the service provider MUST process
/// … in an order that resolves the references").
///
/// - Duplicate `bulkId`s (Entra's inbound-provisioning sample reuses one) are tolerated: a
///   reference means the *last* operation defining the bulkId, the one whose id
///   [`resolve_references`] sees after both ran.
/// - A reference to an undefined bulkId adds no ordering; it fails when resolved.
/// - A cycle (an operation referring to itself, or A → B → A) is 409 Conflict naming the
///   bulkIds: RFC 7644 §3.7.1 lets the service provider "stop after a failed attempt and
///   instead return HTTP status code 409 (Conflict)".
pub fn execution_order(operations: &[BulkOperation]) -> Result<Vec<usize>> {
    let mut defined: HashMap<&str, usize> = HashMap::new();
    for (i, op) in operations.iter().enumerate() {
        if let Some(id) = &op.bulk_id {
            defined.insert(id.as_str(), i);
        }
    }
    let n = operations.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pending = vec![0usize; n];
    for (i, op) in operations.iter().enumerate() {
        let mut deps: Vec<usize> = op
            .references()
            .iter()
            .filter_map(|r| defined.get(r.as_str()).copied())
            .collect();
        deps.sort_unstable();
        deps.dedup();
        for d in deps {
            dependents[d].push(i);
            pending[i] += 1;
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() < n {
        let mut stuck: Vec<String> = (0..n)
            .filter(|&i| pending[i] > 0)
            .map(|i| {
                operations[i]
                    .bulk_id
                    .clone()
                    .unwrap_or_else(|| format!("Operations[{i}]"))
            })
            .collect();
        stuck.dedup();
        return Err(Error::conflict(format!(
            "circular bulkId references between {} (RFC 7644 §3.7.1)",
            stuck.join(", ")
        )));
    }
    Ok(order)
}

/// The result of one operation in a BulkResponse (RFC 7644 §3.7.3).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperationResult {
    /// The operation's method.
    pub method: BulkMethod,
    /// The operation's bulkId, echoed.
    pub bulk_id: Option<String>,
    /// The resource's ETag after the operation.
    pub version: Option<String>,
    /// The resource's URI (`meta.location`), when the operation reached a resource.
    pub location: Option<String>,
    /// The HTTP status of the operation; a JSON string on the wire, as in the RFC 7644 §3.7.3
    /// examples (`"status": "201"`).
    pub status: u16,
    /// The response body: the SCIM error for a failure; usually absent for a success.
    pub response: Option<Value>,
}

impl BulkOperationResult {
    /// A success without a body.
    pub fn success(
        op: &BulkOperation,
        status: u16,
        location: Option<String>,
        version: Option<String>,
    ) -> Self {
        Self {
            method: op.method,
            bulk_id: op.bulk_id.clone(),
            version,
            location,
            status,
            response: None,
        }
    }

    /// A failure carrying the SCIM error body (RFC 7644 §3.7.3: "response … in the case of an
    /// error").
    pub fn error(op: &BulkOperation, error: &Error) -> Self {
        Self {
            method: op.method,
            bulk_id: op.bulk_id.clone(),
            version: None,
            location: None,
            status: error.status(),
            response: serde_json::to_value(error.to_body()).ok(),
        }
    }

    /// Whether the status is an error (4xx or 5xx).
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }

    /// The wire form of one operation result.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("method".into(), Value::from(self.method.as_str()));
        if let Some(b) = &self.bulk_id {
            out.insert("bulkId".into(), Value::from(b.as_str()));
        }
        if let Some(v) = &self.version {
            out.insert("version".into(), Value::from(v.as_str()));
        }
        if let Some(l) = &self.location {
            out.insert("location".into(), Value::from(l.as_str()));
        }
        out.insert("status".into(), Value::String(self.status.to_string()));
        if let Some(r) = &self.response {
            out.insert("response".into(), r.clone());
        }
        Value::Object(out)
    }
}

/// A BulkResponse (RFC 7644 §3.7.3). Served with HTTP 200 whatever the operations' statuses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkResponse {
    /// The results, in the order the operations ran.
    pub operations: Vec<BulkOperationResult>,
}

impl BulkResponse {
    /// The wire form: `schemas` and `Operations`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("schemas".into(), Value::from(vec![BULK_RESPONSE_URN]));
        out.insert(
            "Operations".into(),
            Value::Array(self.operations.iter().map(|o| o.to_json()).collect()),
        );
        Value::Object(out)
    }
}

/// Counts failed operations against `failOnErrors` (RFC 7644 §3.7.3: "The service provider
/// MUST continue performing as many changes as possible and disregard partial failures" unless
/// failOnErrors is given, in which case it stops once that many errors occurred).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounter {
    limit: Option<usize>,
    failures: usize,
}

impl FailureCounter {
    /// A counter for a request's `failOnErrors`.
    pub fn new(fail_on_errors: Option<usize>) -> Self {
        Self {
            limit: fail_on_errors,
            failures: 0,
        }
    }

    /// Records an operation's result; returns true when processing must stop.
    pub fn record(&mut self, result: &BulkOperationResult) -> bool {
        if result.is_error() {
            self.failures += 1;
        }
        self.should_stop()
    }

    /// Whether the limit has been reached.
    pub fn should_stop(&self) -> bool {
        self.limit.is_some_and(|l| self.failures >= l)
    }

    /// The failures so far.
    pub fn failures(&self) -> usize {
        self.failures
    }
}

#[cfg(test)]
mod tests;
