//! Bulk (RFC 7644 §3.7): `scim-core` parses the request and orders the operations so every
//! `bulkId` reference runs after the operation that defines it; each operation then runs through
//! the same service functions as a single request (same rules, limits and change records).
//! `failOnErrors` stops processing after that many failures. With the tenant's "HR upsert" option
//! a `POST /Users` whose `externalId` already exists updates that user (200) instead of failing.

use super::{PatchReply, RequestCtx, ResourceReply, resources};
use crate::state::AppState;
use scim_core::bulk::{
    BulkMethod, BulkOperation, BulkOperationResult, BulkRequest, BulkResponse, FailureCounter,
    execution_order,
};
use scim_core::query::QueryParams;
use scim_core::schema::USER_RESOURCE;
use scim_core::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;

/// The outcome of one operation that succeeded.
struct Done {
    status: u16,
    id: Option<String>,
    location: Option<String>,
    version: Option<String>,
}

impl Done {
    fn written(r: ResourceReply, status: u16) -> Self {
        Self {
            status,
            id: r.body.get("id").and_then(Value::as_str).map(str::to_string),
            location: Some(r.location),
            version: Some(r.etag.to_string()),
        }
    }
}

/// The resource type an endpoint such as `/Users` names.
fn resource_type_at(state: &AppState, endpoint: &str) -> Result<String> {
    state
        .registry
        .resource_types()
        .find(|rt| rt.endpoint.eq_ignore_ascii_case(endpoint))
        .map(|rt| rt.name.clone())
        .ok_or_else(|| Error::invalid_path(format!("{endpoint:?} names no resource endpoint")))
}

async fn run(state: &AppState, ctx: &RequestCtx, op: BulkOperation, upsert: bool) -> Result<Done> {
    let (endpoint, id) = op.target();
    let rt_name = resource_type_at(state, endpoint)?;
    let id = id.map(str::to_string);
    let need_id = || {
        id.clone().ok_or_else(|| {
            Error::invalid_path(format!(
                "a bulk {} needs a resource path such as /Users/{{id}}, not {:?}",
                op.method.as_str(),
                op.path
            ))
        })
    };
    let data = op.data.clone().unwrap_or(Value::Null);
    let if_match = op.version.as_deref();
    match op.method {
        BulkMethod::Post => {
            if id.is_some() {
                return Err(Error::invalid_path(
                    "a bulk POST path names an endpoint such as /Users, not a resource",
                ));
            }
            if upsert && rt_name == USER_RESOURCE {
                let external = data.as_object().and_then(|d| {
                    d.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("externalId"))
                        .and_then(|(_, v)| v.as_str())
                });
                if let Some(external) = external
                    && let Some(existing) =
                        resources::find_by_external_id(state, ctx, &rt_name, external).await?
                {
                    let r = resources::replace(
                        state,
                        ctx,
                        &rt_name,
                        &existing,
                        data,
                        None,
                        &QueryParams::default(),
                    )
                    .await?;
                    return Ok(Done::written(r, 200));
                }
            }
            let r = resources::create(state, ctx, &rt_name, data, &QueryParams::default()).await?;
            Ok(Done::written(r, 201))
        }
        BulkMethod::Put => {
            let r = resources::replace(
                state,
                ctx,
                &rt_name,
                &need_id()?,
                data,
                if_match,
                &QueryParams::default(),
            )
            .await?;
            Ok(Done::written(r, 200))
        }
        BulkMethod::Patch => {
            let id = need_id()?;
            let reply = resources::patch(
                state,
                ctx,
                &rt_name,
                &id,
                data,
                if_match,
                &QueryParams::default(),
            )
            .await?;
            match reply {
                PatchReply::Resource(r) => Ok(Done::written(r, 200)),
                PatchReply::NoContent(etag) => {
                    let rt = super::resource_type(state, &rt_name)?;
                    Ok(Done {
                        status: 204,
                        location: Some(super::location(&ctx.base_url, rt, &id)),
                        version: Some(etag.to_string()),
                        id: Some(id),
                    })
                }
            }
        }
        BulkMethod::Delete => {
            let id = need_id()?;
            resources::delete(state, ctx, &rt_name, &id, if_match).await?;
            let rt = super::resource_type(state, &rt_name)?;
            Ok(Done {
                status: 204,
                location: Some(super::location(&ctx.base_url, rt, &id)),
                version: None,
                id: Some(id),
            })
        }
    }
}

/// The share of the request timeout a Bulk may spend starting operations; the rest is headroom
/// for the operation running when the budget runs out and for writing the response.
const BULK_BUDGET_PERCENT: u32 = 75;

/// When a Bulk stops starting operations: [`BULK_BUDGET_PERCENT`] of the request timeout from
/// now, on the injected clock.
fn time_budget(state: &AppState) -> time::OffsetDateTime {
    let timeout = std::time::Duration::from_secs(state.settings.limits.request_timeout_seconds);
    state.clock.now() + timeout * BULK_BUDGET_PERCENT / 100
}

/// The result of an operation a Bulk did not start because its time budget ran out: 503, as
/// RFC 7644 §3.7.3 reports each operation's own status, so the client resends only these.
fn not_run() -> Error {
    Error::new(
        503,
        None,
        "not run: the Bulk request used up its time budget before this operation started; \
         resend the operations answered 503",
    )
}

/// The context of the operation at `index`: its request id is the Bulk's plus `#index`, so the
/// change log tells operations apart, and a create retried with the whole Bulk (same
/// `X-Request-Id`) is recognised per operation, while two creates in one Bulk are not mistaken
/// for a retry of each other.
fn operation_ctx(ctx: &RequestCtx, index: usize) -> RequestCtx {
    RequestCtx {
        request_id: ctx.request_id.as_ref().map(|r| format!("{r}#{index}")),
        ..ctx.clone()
    }
}

/// Runs a BulkRequest and returns the BulkResponse (results in the order the operations ran).
/// More operations than `maxOperations` is 413 for the whole request; a circular reference is
/// 409; each failed operation carries its own SCIM error. A Bulk that would outlast the request
/// timeout stops at an operation boundary and answers the operations it did not start 503, so
/// the client gets a BulkResponse saying exactly what ran instead of a bare 503 with part of the
/// work applied.
pub async fn execute(state: &AppState, ctx: &RequestCtx, body: Value) -> Result<Value> {
    let request = BulkRequest::parse(body, state.settings.limits.max_bulk_operations)?;
    if request.operations.is_empty() {
        return Ok(BulkResponse::default().to_json());
    }
    // Every bulk method writes.
    ctx.require_write()?;
    let order = execution_order(&request.operations)?;
    let upsert = state
        .store
        .tenant(ctx.tenant())
        .await?
        .is_some_and(|t| t.bulk_upsert_by_external_id);
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failures = FailureCounter::new(request.fail_on_errors);
    let mut response = BulkResponse::default();
    let deadline = time_budget(state);
    for i in order {
        if failures.should_stop() {
            break;
        }
        let mut op = request.operations[i].clone();
        if state.clock.now() >= deadline {
            // Stop at an operation boundary: every operation has run whole or not at all.
            response
                .operations
                .push(BulkOperationResult::error(&op, &not_run()));
            continue;
        }
        let result = match op.resolve(&ids) {
            Err(e) => BulkOperationResult::error(&op, &e),
            Ok(()) => match run(state, &operation_ctx(ctx, i), op.clone(), upsert).await {
                Ok(done) => {
                    if let (BulkMethod::Post, Some(bulk_id), Some(id)) =
                        (op.method, &op.bulk_id, &done.id)
                    {
                        ids.insert(bulk_id.clone(), id.clone());
                    }
                    BulkOperationResult::success(&op, done.status, done.location, done.version)
                }
                Err(e) => {
                    if e.status() >= 500 {
                        crate::fault::record(format!("bulk operation failed: {e}"));
                    }
                    BulkOperationResult::error(&op, &e)
                }
            },
        };
        failures.record(&result);
        response.operations.push(result);
    }
    Ok(response.to_json())
}
