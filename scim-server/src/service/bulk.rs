//! Bulk (RFC 7644 §3.7): operations in order, `bulkId` references resolved as the resources they
//! name are created (an operation that refers to a later one waits for it), `failOnErrors`, and
//! the per-tenant "HR upsert" option (a `POST /Users` whose `externalId` exists updates that user).
//!
//! Every operation goes through the same service functions as a single request, so its rules,
//! limits and change records are the same.

use super::{PatchReply, RequestCtx, resources};
use crate::state::AppState;
use scim_core::query::QueryParams;
use scim_core::schema::USER_RESOURCE;
use scim_core::{Error, Result, ScimType};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// The BulkRequest message URN.
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The BulkResponse message URN.
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// One operation of a BulkRequest.
#[derive(Debug, Clone, PartialEq)]
struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

/// A parsed BulkRequest.
#[derive(Debug, Clone, PartialEq)]
struct BulkRequest {
    fail_on_errors: Option<u64>,
    operations: Vec<std::result::Result<Operation, Error>>,
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn parse(body: Value, max_operations: usize) -> Result<BulkRequest> {
    let Value::Object(body) = body else {
        return Err(Error::invalid_syntax("a BulkRequest must be a JSON object"));
    };
    let fail_on_errors = match get_ci(&body, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid_syntax("failOnErrors must be a positive integer"))?,
        ),
    };
    let Some(Value::Array(ops)) = get_ci(&body, "Operations") else {
        return Err(Error::invalid_syntax(
            "a BulkRequest needs an Operations array",
        ));
    };
    if ops.len() > max_operations {
        return Err(Error::payload_too_large(format!(
            "the request has {} operations; at most {max_operations} are accepted (maxOperations)",
            ops.len()
        )));
    }
    let operations = ops.iter().map(parse_operation).collect();
    Ok(BulkRequest {
        fail_on_errors,
        operations,
    })
}

fn parse_operation(op: &Value) -> Result<Operation> {
    let Value::Object(op) = op else {
        return Err(Error::invalid_syntax(
            "a bulk operation must be a JSON object",
        ));
    };
    let text = |key: &str| get_ci(op, key).and_then(Value::as_str).map(str::to_string);
    let method = text("method")
        .ok_or_else(|| Error::invalid_syntax("a bulk operation needs a method"))?
        .to_ascii_uppercase();
    if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
        return Err(Error::invalid_syntax(format!(
            "bulk method {method} is not one of POST, PUT, PATCH, DELETE"
        )));
    }
    let path =
        text("path").ok_or_else(|| Error::invalid_syntax("a bulk operation needs a path"))?;
    let data = get_ci(op, "data").filter(|d| !d.is_null()).cloned();
    if data.is_none() && method != "DELETE" {
        return Err(Error::invalid_syntax(format!("a bulk {method} needs data")));
    }
    Ok(Operation {
        method,
        path,
        bulk_id: text("bulkId"),
        version: text("version"),
        data,
    })
}

/// `bulkId:x` references in a value (strings anywhere in the tree).
fn references(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.insert(id.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn op_references(op: &Operation) -> HashSet<String> {
    let mut refs = HashSet::new();
    references(
        &Value::String(op.path.rsplit('/').next().unwrap_or("").into()),
        &mut refs,
    );
    if let Some(d) = &op.data {
        references(d, &mut refs);
    }
    refs
}

fn substitute(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, ids)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, ids)),
        _ => {}
    }
}

/// The resource type and optional id a bulk path names, e.g. `/Users/42`.
fn target(state: &AppState, path: &str) -> Result<(String, Option<String>)> {
    let trimmed = path.trim().trim_start_matches('/');
    let (endpoint, id) = match trimmed.split_once('/') {
        Some((e, id)) if !id.is_empty() && !id.contains('/') => (e, Some(id.to_string())),
        Some(_) => {
            return Err(Error::invalid_path(format!(
                "bulk path {path:?} is not a resource path"
            )));
        }
        None => (trimmed, None),
    };
    let rt = state
        .registry
        .resource_types()
        .find(|rt| {
            rt.endpoint
                .trim_start_matches('/')
                .eq_ignore_ascii_case(endpoint)
        })
        .ok_or_else(|| {
            Error::invalid_path(format!("bulk path {path:?} names no resource endpoint"))
        })?;
    Ok((rt.name.clone(), id))
}

struct Outcome {
    status: u16,
    location: Option<String>,
    version: Option<String>,
    id: Option<String>,
}

async fn run(state: &AppState, ctx: &RequestCtx, op: &Operation, upsert: bool) -> Result<Outcome> {
    let (rt_name, id) = target(state, &op.path)?;
    let data = op.data.clone().unwrap_or(Value::Null);
    let if_match = op.version.as_deref();
    let need_id = || {
        id.clone().ok_or_else(|| {
            Error::invalid_path(format!(
                "bulk {} needs a path with an id, not {:?}",
                op.method, op.path
            ))
        })
    };
    let written = |r: super::ResourceReply, status| Outcome {
        status,
        id: r.body.get("id").and_then(Value::as_str).map(str::to_string),
        location: Some(r.location),
        version: Some(r.etag.to_string()),
    };
    match op.method.as_str() {
        "POST" => {
            if id.is_some() {
                return Err(Error::invalid_path(
                    "a bulk POST path names an endpoint, not a resource",
                ));
            }
            if upsert && rt_name == USER_RESOURCE {
                let external = data
                    .as_object()
                    .and_then(|d| get_ci(d, "externalId"))
                    .and_then(Value::as_str);
                if let Some(external) = external
                    && let Some(existing) =
                        resources::find_by_external_id(state, ctx, &rt_name, external).await?
                {
                    let r = resources::replace(state, ctx, &rt_name, &existing, data, None).await?;
                    return Ok(written(r, 200));
                }
            }
            let r = resources::create(state, ctx, &rt_name, data).await?;
            Ok(written(r, 201))
        }
        "PUT" => {
            let r = resources::replace(state, ctx, &rt_name, &need_id()?, data, if_match).await?;
            Ok(written(r, 200))
        }
        "PATCH" => {
            let id = need_id()?;
            match resources::patch(
                state,
                ctx,
                &rt_name,
                &id,
                data,
                if_match,
                &QueryParams::default(),
            )
            .await?
            {
                PatchReply::Resource(r) => Ok(written(r, 200)),
                PatchReply::NoContent(etag) => {
                    let rt = super::resource_type(state, &rt_name)?;
                    Ok(Outcome {
                        status: 204,
                        location: Some(super::location(&ctx.base_url, rt, &id)),
                        version: Some(etag.to_string()),
                        id: Some(id),
                    })
                }
            }
        }
        _ => {
            let id = need_id()?;
            resources::delete(state, ctx, &rt_name, &id, if_match).await?;
            let rt = super::resource_type(state, &rt_name)?;
            Ok(Outcome {
                status: 204,
                location: Some(super::location(&ctx.base_url, rt, &id)),
                version: None,
                id: Some(id),
            })
        }
    }
}

fn entry(op: Option<&Operation>, outcome: std::result::Result<Outcome, Error>) -> Value {
    let mut e = Map::new();
    if let Some(op) = op {
        e.insert("method".into(), json!(op.method));
        if let Some(b) = &op.bulk_id {
            e.insert("bulkId".into(), json!(b));
        }
    }
    match outcome {
        Ok(o) => {
            if let Some(l) = o.location {
                e.insert("location".into(), json!(l));
            }
            if let Some(v) = o.version {
                e.insert("version".into(), json!(v));
            }
            e.insert("status".into(), json!(o.status.to_string()));
        }
        Err(err) => {
            if err.status() >= 500 {
                tracing::error!(error = %err, "bulk operation failed");
            }
            e.insert("status".into(), json!(err.status().to_string()));
            e.insert(
                "response".into(),
                serde_json::to_value(err.to_body()).unwrap_or(Value::Null),
            );
        }
    }
    Value::Object(e)
}

/// Runs a BulkRequest and returns the BulkResponse. More operations than `maxOperations` is 413
/// for the whole request; each failed operation carries its own SCIM error.
pub async fn execute(state: &AppState, ctx: &RequestCtx, body: Value) -> Result<Value> {
    let request = parse(body, state.settings.limits.max_bulk_operations)?;
    // Every bulk method writes.
    ctx.require_write()?;
    let upsert = state
        .store
        .tenant(ctx.tenant())
        .await?
        .is_some_and(|t| t.bulk_upsert_by_external_id);
    let n = request.operations.len();
    let mut results: Vec<Option<Value>> = vec![None; n];
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failed_bulk_ids: HashSet<String> = HashSet::new();
    let defined: HashSet<String> = request
        .operations
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .filter(|o| o.method == "POST")
        .filter_map(|o| o.bulk_id.clone())
        .collect();
    let mut errors = 0u64;
    let mut pending: Vec<usize> = (0..n).collect();
    'rounds: loop {
        let mut progressed = false;
        let mut deferred = Vec::new();
        for i in pending {
            if request.fail_on_errors.is_some_and(|f| errors >= f) {
                break 'rounds;
            }
            let op = match &request.operations[i] {
                Ok(op) => op,
                Err(e) => {
                    errors += 1;
                    results[i] = Some(entry(None, Err(e.clone())));
                    progressed = true;
                    continue;
                }
            };
            let refs = op_references(op);
            let unresolved: Vec<&String> = refs.iter().filter(|r| !ids.contains_key(*r)).collect();
            if let Some(bad) = unresolved
                .iter()
                .find(|r| !defined.contains(**r) || failed_bulk_ids.contains(**r))
            {
                errors += 1;
                progressed = true;
                if let Some(b) = &op.bulk_id {
                    failed_bulk_ids.insert(b.clone());
                }
                results[i] = Some(entry(
                    Some(op),
                    Err(Error::new(
                        409,
                        Some(ScimType::InvalidValue),
                        format!("bulkId {bad:?} names no operation that created a resource"),
                    )),
                ));
                continue;
            }
            if !unresolved.is_empty() {
                deferred.push(i);
                continue;
            }
            progressed = true;
            let mut op = op.clone();
            if let Some(d) = op.data.as_mut() {
                substitute(d, &ids);
            }
            if let Some((head, last)) = op.path.rsplit_once('/')
                && let Some(id) = last.strip_prefix("bulkId:").and_then(|b| ids.get(b))
            {
                op.path = format!("{head}/{id}");
            }
            let outcome = run(state, ctx, &op, upsert).await;
            match &outcome {
                Ok(o) => {
                    if let (Some(b), Some(id), "POST") = (&op.bulk_id, &o.id, op.method.as_str()) {
                        ids.insert(b.clone(), id.clone());
                    }
                }
                Err(_) => {
                    errors += 1;
                    if let Some(b) = &op.bulk_id {
                        failed_bulk_ids.insert(b.clone());
                    }
                }
            }
            results[i] = Some(entry(Some(&op), outcome));
        }
        if deferred.is_empty() {
            break;
        }
        if !progressed {
            for i in deferred {
                if let Ok(op) = &request.operations[i] {
                    results[i] = Some(entry(
                        Some(op),
                        Err(Error::new(
                            409,
                            Some(ScimType::InvalidValue),
                            "circular bulkId references could not be resolved",
                        )),
                    ));
                }
            }
            break;
        }
        pending = deferred;
    }
    Ok(json!({
        "schemas": [BULK_RESPONSE_URN],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_limits_and_shapes() {
        let ops: Vec<Value> = (0..3)
            .map(|i| json!({"method": "post", "path": "/Users", "bulkId": format!("b{i}"), "data": {}}))
            .collect();
        let body = json!({"schemas": [BULK_REQUEST_URN], "Operations": ops});
        assert_eq!(parse(body.clone(), 2).unwrap_err().status(), 413);
        let req = parse(body, 3).unwrap();
        assert_eq!(req.operations.len(), 3);
        assert_eq!(req.operations[0].as_ref().unwrap().method, "POST");
        assert!(parse(json!({"failOnErrors": 0, "Operations": []}), 3).is_err());
        assert!(parse(json!({"Operations": {}}), 3).is_err());
        let bad = parse(
            json!({"Operations": [{"method": "GET", "path": "/Users"}]}),
            3,
        )
        .unwrap();
        assert!(bad.operations[0].is_err());
    }

    #[test]
    fn references_are_found_and_substituted() {
        let mut data = json!({"members": [{"value": "bulkId:a"}, {"value": "x"}], "n": "bulkId:b"});
        let mut refs = HashSet::new();
        references(&data, &mut refs);
        assert_eq!(refs, HashSet::from(["a".to_string(), "b".to_string()]));
        let ids = HashMap::from([("a".to_string(), "42".to_string())]);
        substitute(&mut data, &ids);
        assert_eq!(data["members"][0]["value"], "42");
        assert_eq!(data["n"], "bulkId:b");
    }
}
