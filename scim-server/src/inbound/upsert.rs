//! One HR record applied as an upsert keyed on `externalId`, through the service's write
//! functions (so each write gets its change record and the Graph bridge sees it like any other):
//!
//! - no user has the `externalId`: `create`, with `active: true` when the record leaves it out
//!   (a new hire is active unless the HR source says otherwise);
//! - one has: a path-less PATCH `replace` of exactly the attributes the record carries, so
//!   anything it leaves out (`active` included) keeps its value. A record that matches the user
//!   already changes nothing: the service writes nothing and no change record appears
//!   (`unchanged`).
//!
//! Entra's inbound provisioning names a manager by the manager's employee id: `manager.value` is
//! looked up as an `externalId`. When no such user exists yet, the record is written without a
//! manager and the link waits in `inbound_manager_links`; writing the manager later (in the same
//! or a later job) sets it on every report waiting for it.

use super::queue::{Outcome, Queue};
use crate::service::write::{self, Preview, WriteRequest};
use crate::service::{PatchReply, RequestCtx, resources};
use crate::state::AppState;
use scim_core::patch::{PATCH_OP_URN, PatchRequest};
use scim_core::query::QueryParams;
use scim_core::schema::{ENTERPRISE_USER_URN, USER_RESOURCE};
use scim_core::{Error, Result};
use serde_json::{Map, Value, json};

/// What applying a record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Created, updated or unchanged.
    pub outcome: Outcome,
    /// The user's SCIM id.
    pub id: String,
}

fn key_of<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name))
}

/// The record's `externalId`, required: it is the matching key.
pub fn external_id(data: &Value) -> Result<String> {
    let obj = data
        .as_object()
        .ok_or_else(|| Error::invalid_syntax("`data` must be a SCIM User object"))?;
    match key_of(obj, "externalId").and_then(|k| obj.get(k)) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(Error::invalid_value(
            "`data.externalId` (the employee id) is required: it is the key records are matched on",
        )),
    }
}

/// The manager's employee id a record names (`manager.value` of the enterprise extension), taken
/// out of the record. `Some("")` means the record clears the manager.
fn take_manager(obj: &mut Map<String, Value>) -> Option<String> {
    let ext_key = key_of(obj, ENTERPRISE_USER_URN)?.clone();
    let ext = obj.get_mut(&ext_key)?.as_object_mut()?;
    let mgr_key = key_of(ext, "manager")?.clone();
    let manager = ext.remove(&mgr_key)?;
    match manager {
        Value::Object(m) => Some(
            key_of(&m, "value")
                .and_then(|k| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        Value::String(s) => Some(s),
        _ => Some(String::new()),
    }
}

/// Puts `manager.value` (a SCIM id) back into the record's enterprise extension.
fn put_manager(obj: &mut Map<String, Value>, manager_id: Option<&str>) {
    let ext_key = key_of(obj, ENTERPRISE_USER_URN)
        .cloned()
        .unwrap_or_else(|| ENTERPRISE_USER_URN.to_string());
    let ext = obj
        .entry(ext_key)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(ext) = ext {
        let value = match manager_id {
            Some(id) => json!({ "value": id }),
            None => Value::Null,
        };
        ext.insert("manager".into(), value);
    }
}

async fn find(state: &AppState, ctx: &RequestCtx, external: &str) -> Result<Option<(String, u64)>> {
    let rt = state
        .registry
        .resource_type(USER_RESOURCE)
        .ok_or_else(|| Error::not_found_detail("no User resource type"))?;
    Ok(state
        .resources
        .find_by_external_id(ctx.tenant(), rt, external)
        .await?
        .map(|r| (r.id, r.meta.version)))
}

/// A path-less PATCH replacing what `value` carries; returns the user's version afterwards.
async fn patch_user(state: &AppState, ctx: &RequestCtx, id: &str, value: Value) -> Result<u64> {
    let body = patch_body(value);
    let reply = resources::patch(
        state,
        ctx,
        USER_RESOURCE,
        id,
        body,
        None,
        &QueryParams::default(),
    )
    .await?;
    Ok(match reply {
        PatchReply::Resource(r) => r.etag.version(),
        PatchReply::NoContent(etag) => etag.version(),
    })
}

/// What a record comes to before anything is written: its key, the manager it waits for (named
/// by an `externalId` no user has yet), and the write.
struct Planned {
    external: String,
    waiting_for: Option<String>,
    step: Step,
}

enum Step {
    /// No user has the `externalId`: create this body.
    Create(Value),
    /// The user `id` at `version`: a path-less PATCH `replace` of this value.
    Patch {
        id: String,
        version: u64,
        value: Value,
    },
}

fn patch_body(value: Value) -> Value {
    json!({
        "schemas": [PATCH_OP_URN],
        "Operations": [{ "op": "replace", "value": value }],
    })
}

/// Reads what `data` needs (its user, its manager) and decides the write.
async fn plan(state: &AppState, ctx: &RequestCtx, data: Value) -> Result<Planned> {
    let external = external_id(&data)?;
    let Value::Object(mut obj) = data else {
        return Err(Error::invalid_syntax("`data` must be a SCIM User object"));
    };
    for readonly in ["id", "meta"] {
        if let Some(k) = key_of(&obj, readonly).cloned() {
            obj.remove(&k);
        }
    }
    let mut waiting_for = None;
    if let Some(manager) = take_manager(&mut obj) {
        if manager.trim().is_empty() {
            put_manager(&mut obj, None);
        } else if let Some((manager_id, _)) = find(state, ctx, &manager).await? {
            put_manager(&mut obj, Some(&manager_id));
        } else {
            waiting_for = Some(manager);
        }
    }
    let step = match find(state, ctx, &external).await? {
        None => {
            if key_of(&obj, "active").is_none() {
                obj.insert("active".into(), Value::Bool(true));
            }
            Step::Create(Value::Object(obj))
        }
        Some((id, version)) => {
            if let Some(k) = key_of(&obj, "schemas").cloned() {
                obj.remove(&k);
            }
            Step::Patch {
                id,
                version,
                value: Value::Object(obj),
            }
        }
    };
    Ok(Planned {
        external,
        waiting_for,
        step,
    })
}

/// What applying `data` would do, decided by the write pipeline's own steps
/// ([`write::preview`]) and written nowhere: `created`, `updated` or `unchanged`, or the error
/// the write would answer. A manager who does not exist yet is left out, as the write would.
pub async fn preview(state: &AppState, ctx: &RequestCtx, data: Value) -> Result<Outcome> {
    let writer = ctx.writer()?;
    let rt = state
        .registry
        .resource_type(USER_RESOURCE)
        .ok_or_else(|| Error::not_found_detail("no User resource type"))?;
    let planned = plan(state, ctx, data).await?;
    let (own_id, body) = match &planned.step {
        Step::Create(body) => (None, body),
        Step::Patch { id, value, .. } => (Some(id.as_str()), value),
    };
    if let Some(user_name) = body
        .as_object()
        .and_then(|o| key_of(o, "userName").and_then(|k| o.get(k)))
        .and_then(Value::as_str)
    {
        check_user_name_free(state, ctx, user_name, own_id).await?;
    }
    let request = match planned.step {
        Step::Create(body) => WriteRequest::Create { body },
        Step::Patch { id, value, .. } => WriteRequest::Patch {
            id,
            request: PatchRequest::parse(
                patch_body(value),
                state.settings.limits.max_patch_operations,
            )?,
            if_match: None,
        },
    };
    Ok(match write::preview(state, &writer, rt, request).await? {
        Preview::Create => Outcome::Created,
        Preview::Unchanged => Outcome::Unchanged,
        Preview::Change | Preview::Delete => Outcome::Updated,
    })
}

/// A preview's stand-in for the store's uniqueness constraint (which only a write meets): the
/// 409 the write would answer when another user holds `user_name` (RFC 7643 §4.1: `userName`
/// is unique, compared case-insensitively).
async fn check_user_name_free(
    state: &AppState,
    ctx: &RequestCtx,
    user_name: &str,
    own_id: Option<&str>,
) -> Result<()> {
    let params = QueryParams {
        filter: Some(format!(
            "userName eq {}",
            Value::String(user_name.to_string())
        )),
        attributes: Some("id".into()),
        count: Some("2".into()),
        ..QueryParams::default()
    };
    let found = resources::list(state, ctx, USER_RESOURCE, &params).await?;
    let taken = found["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .any(|id| Some(id) != own_id);
    if taken {
        return Err(Error::uniqueness(format!(
            "userName {user_name:?} is already taken by another user"
        )));
    }
    Ok(())
}

/// Applies one HR user record for the caller's tenant.
pub async fn apply(
    state: &AppState,
    queue: &Queue,
    ctx: &RequestCtx,
    data: Value,
) -> Result<Applied> {
    let Planned {
        external,
        waiting_for,
        step,
    } = plan(state, ctx, data).await?;
    let applied = match step {
        Step::Create(body) => {
            let reply =
                resources::create(state, ctx, USER_RESOURCE, body, &QueryParams::default()).await?;
            let id = reply
                .body
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Applied {
                outcome: Outcome::Created,
                id,
            }
        }
        Step::Patch { id, version, value } => {
            let after = patch_user(state, ctx, &id, value).await?;
            Applied {
                outcome: if after == version {
                    Outcome::Unchanged
                } else {
                    Outcome::Updated
                },
                id,
            }
        }
    };
    match &waiting_for {
        Some(manager) => {
            tracing::info!(
                employee = %external,
                manager = %manager,
                "manager not provisioned yet; the link waits for it"
            );
            queue.link_manager(ctx.tenant(), &external, manager).await?
        }
        None => queue.unlink_manager(ctx.tenant(), &external).await?,
    }
    resolve_reports(state, queue, ctx, &external, &applied.id).await?;
    Ok(applied)
}

/// Sets the manager of every report that was waiting for `manager_external`.
async fn resolve_reports(
    state: &AppState,
    queue: &Queue,
    ctx: &RequestCtx,
    manager_external: &str,
    manager_id: &str,
) -> Result<()> {
    for report in queue
        .reports_waiting_for(ctx.tenant(), manager_external)
        .await?
    {
        if let Some((report_id, _)) = find(state, ctx, &report).await? {
            let value = json!({ ENTERPRISE_USER_URN: { "manager": { "value": manager_id } } });
            patch_user(state, ctx, &report_id, value).await?;
        }
        queue.unlink_manager(ctx.tenant(), &report).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manager_is_taken_out_by_employee_id() {
        // (record, manager taken, what remains of the extension)
        let cases = [
            (
                json!({ ENTERPRISE_USER_URN: { "department": "Ops", "manager": { "value": "89607", "displayName": "J" } } }),
                Some("89607"),
                json!({ "department": "Ops" }),
            ),
            (
                json!({ "urn:ietf:params:scim:schemas:extension:Enterprise:2.0:User": { "Manager": "42" } }),
                Some("42"),
                json!({}),
            ),
            (
                json!({ ENTERPRISE_USER_URN: { "manager": null } }),
                Some(""),
                json!({}),
            ),
            (
                json!({ ENTERPRISE_USER_URN: { "department": "Ops" } }),
                None,
                json!({ "department": "Ops" }),
            ),
        ];
        for (record, want, rest) in cases {
            let Value::Object(mut obj) = record else {
                unreachable!()
            };
            assert_eq!(take_manager(&mut obj).as_deref(), want);
            assert_eq!(obj.values().next().unwrap(), &rest);
        }
    }

    #[test]
    fn external_id_is_required() {
        assert_eq!(external_id(&json!({"externalId": "7"})).unwrap(), "7");
        assert_eq!(external_id(&json!({"EXTERNALID": "7"})).unwrap(), "7");
        for bad in [json!({}), json!({"externalId": " "}), json!([1])] {
            let e = external_id(&bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }
}
