//! Resource operations (RFC 7644 §3.3–§3.6): create, get, list, search, replace, patch, delete.
//!
//! Project decisions encoded here (see `docs/` and the README):
//! - a filter with no match is a 200 ListResponse with `totalResults: 0`, never 404;
//! - `password` is accepted and dropped (never stored, never returned; `changePassword` is
//!   advertised unsupported);
//! - a group PATCH or write naming member ids that do not exist applies the known ids and skips
//!   (and logs) the unknown ones;
//! - a write without `If-Match` that loses a compare-and-swap race is re-read and re-applied, a
//!   bounded number of times, so concurrent member adds all land; with `If-Match` it is 412.

use super::{GetReply, PatchReply, RequestCtx, ResourceReply, location, resource_type};
use crate::state::AppState;
// Group-ness decides where members live, so the service asks the store's own rule (by core
// schema, so a custom type on the Group schema behaves as a Group in both layers).
use crate::store::row::{is_group, is_user};
use crate::store::{Load, StoreError};
use scim_core::change::Change;
use scim_core::etag::{ETag, check_if_match, if_none_match_hit};
use scim_core::patch::{self, Members, MembershipDelta, PatchRequest};
use scim_core::query::{ListQuery, ListResponse, Projection, QueryParams};
use scim_core::resource::{Attributes, Meta, Resource};
use scim_core::schema::{GROUP_RESOURCE, ResourceType, USER_RESOURCE};
use scim_core::{Error, Result, normalize, validate};
use serde_json::Value;
use std::collections::HashSet;
use time::OffsetDateTime;

/// How many times a write that lost a compare-and-swap race (without `If-Match`) is retried.
const MAX_WRITE_ATTEMPTS: usize = 16;

/// Attributes accepted on input but never stored.
const DROPPED_ATTRIBUTES: &[&str] = &["password"];

fn drop_unstored(attrs: &mut Attributes) {
    attrs.retain(|k, _| !DROPPED_ATTRIBUTES.iter().any(|d| d.eq_ignore_ascii_case(k)));
}

/// The projection of `attributes`/`excludedAttributes` parameters alone.
fn projection_of(state: &AppState, rt: &ResourceType, params: &QueryParams) -> Projection {
    Projection::parse(
        &state.registry,
        rt,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )
}

/// What to load for a projection: a Group's members and a User's groups only when returned.
fn load_for(state: &AppState, rt: &ResourceType, projection: &Projection) -> Load {
    Load {
        members: is_group(rt) && projection.includes_members(),
        groups: is_user(rt)
            && state
                .registry
                .resolve(rt, None, "groups", None)
                .is_some_and(|p| projection.includes(&p)),
    }
}

fn render(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    r: &Resource,
    p: &Projection,
) -> Value {
    p.apply(
        &state.registry,
        rt,
        r.to_json(&state.registry, Some(&ctx.base_url)),
    )
}

fn reply(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    r: &Resource,
    p: &Projection,
) -> ResourceReply {
    ResourceReply {
        body: render(state, ctx, rt, r, p),
        etag: r.etag(),
        location: location(&ctx.base_url, rt, &r.id),
    }
}

async fn fetch(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    id: &str,
    load: Load,
) -> Result<Resource> {
    if id.contains('\0') {
        // No id holds a NUL (ids are UUIDs); PostgreSQL could not even compare one.
        return Err(Error::not_found(&rt.name, &id.replace('\0', "\\u0000")));
    }
    state
        .store
        .get(ctx.tenant(), rt, id, load)
        .await?
        .ok_or_else(|| Error::not_found(&rt.name, id))
}

/// GET a resource by id, honouring `attributes`, `excludedAttributes` and `If-None-Match`.
pub async fn get(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    id: &str,
    params: &QueryParams,
    if_none_match: Option<&str>,
) -> Result<GetReply> {
    let rt = resource_type(state, rt_name)?;
    let projection = projection_of(state, rt, params);
    let resource = fetch(state, ctx, rt, id, load_for(state, rt, &projection)).await?;
    if if_none_match_hit(if_none_match, resource.meta.version) {
        return Ok(GetReply::NotModified(resource.etag()));
    }
    Ok(GetReply::Found(reply(
        state,
        ctx,
        rt,
        &resource,
        &projection,
    )))
}

fn check_filter_length(state: &AppState, filter: &str) -> Result<()> {
    let max = state.settings.limits.max_filter_length;
    if filter.len() > max {
        Err(Error::invalid_filter(format!(
            "the filter is {} bytes long; at most {max} are accepted",
            filter.len()
        )))
    } else {
        Ok(())
    }
}

fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    ListResponse::new(total, start_index, resources).to_json()
}

/// GET a list (RFC 7644 §3.4.2): filter, sort, paging, projection. No match is 200 with
/// `totalResults: 0`.
pub async fn list(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    params: &QueryParams,
) -> Result<Value> {
    let rt = resource_type(state, rt_name)?;
    if let Some(filter) = &params.filter {
        check_filter_length(state, filter)?;
    }
    let query = ListQuery::from_params(&state.registry, rt, params, state.settings.query_limits())?;
    run_list(state, ctx, rt, &query).await
}

async fn run_list(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    query: &ListQuery,
) -> Result<Value> {
    if let Some(filter) = &query.filter {
        validate::limits::filter_values(filter)?;
    }
    let page = state
        .store
        .list(
            ctx.tenant(),
            rt,
            query,
            load_for(state, rt, &query.projection),
        )
        .await?;
    let resources = page
        .resources
        .iter()
        .map(|r| render(state, ctx, rt, r, &query.projection))
        .collect();
    Ok(list_response(page.total, query.start_index, resources))
}

/// POST `/.search` (RFC 7644 §3.4.3), per resource type (`rt_name`) or across all of them (the
/// root: results are Users then Groups, paged as one list).
pub async fn search(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: Option<&str>,
    body: Value,
) -> Result<Value> {
    if let Some(filter) = body
        .as_object()
        .and_then(|b| b.iter().find(|(k, _)| k.eq_ignore_ascii_case("filter")))
        .and_then(|(_, v)| v.as_str())
    {
        check_filter_length(state, filter)?;
    }
    let limits = state.settings.query_limits();
    if let Some(name) = rt_name {
        let rt = resource_type(state, name)?;
        let query = ListQuery::from_search(&state.registry, rt, body, limits)?;
        return run_list(state, ctx, rt, &query).await;
    }
    let mut queries = Vec::new();
    let mut first_error = None;
    for rt in state.registry.resource_types() {
        match ListQuery::from_search(&state.registry, rt, body.clone(), limits) {
            Ok(q) => queries.push((rt, q)),
            // A filter naming attributes of one type only matches nothing in the others.
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if queries.is_empty() {
        return Err(first_error.unwrap_or_else(|| Error::bad_request("nothing to search")));
    }
    let start_index = queries[0].1.start_index;
    let mut skip = start_index - 1;
    let mut remaining = queries[0].1.count;
    let mut total = 0;
    let mut resources = Vec::new();
    for (rt, query) in queries {
        if let Some(filter) = &query.filter {
            validate::limits::filter_values(filter)?;
        }
        let counting = ListQuery {
            start_index: 1,
            count: 0,
            ..query.clone()
        };
        let type_total = state
            .store
            .list(ctx.tenant(), rt, &counting, Load::default())
            .await?
            .total;
        total += type_total;
        if remaining == 0 || skip >= type_total {
            skip = skip.saturating_sub(type_total);
            continue;
        }
        let page_query = ListQuery {
            start_index: skip + 1,
            count: remaining.min(type_total - skip),
            ..query
        };
        skip = 0;
        let page = state
            .store
            .list(
                ctx.tenant(),
                rt,
                &page_query,
                load_for(state, rt, &page_query.projection),
            )
            .await?;
        remaining = remaining.saturating_sub(page.resources.len() as u64);
        resources.extend(
            page.resources
                .iter()
                .map(|r| render(state, ctx, rt, r, &page_query.projection)),
        );
    }
    Ok(list_response(total, start_index, resources))
}

/// The ids among `ids` that exist as Users or Groups of the tenant.
async fn known_members(state: &AppState, tenant: &str, ids: &[String]) -> Result<HashSet<String>> {
    let mut known = HashSet::new();
    if ids.is_empty() {
        return Ok(known);
    }
    let mut rest: Vec<String> = ids.to_vec();
    for name in [USER_RESOURCE, GROUP_RESOURCE] {
        if rest.is_empty() {
            break;
        }
        let Some(rt) = state.registry.resource_type(name) else {
            continue;
        };
        let found = state.store.existing_ids(tenant, rt, &rest).await?;
        known.extend(found);
        rest.retain(|id| !known.contains(id));
    }
    Ok(known)
}

fn member_ids(attrs: &Attributes) -> Vec<String> {
    attrs
        .get("members")
        .and_then(Value::as_array)
        .map(|items| {
            let mut seen = HashSet::new();
            items
                .iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str))
                .filter(|id| seen.insert(id.to_string()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Logs the ids among `ids` that are not in `known` (members skipped because they do not exist).
fn log_skipped(resource_id: &str, ids: &[String], known: &HashSet<String>) {
    let skipped: Vec<&String> = ids.iter().filter(|id| !known.contains(*id)).collect();
    if !skipped.is_empty() {
        tracing::warn!(
            group = resource_id,
            skipped = ?skipped,
            "group members that do not exist were skipped"
        );
    }
}

/// Keeps only the members of a Group body that exist (project decision: unknown ids are skipped
/// and logged, not rejected). Returns the kept ids.
async fn retain_known_members(
    state: &AppState,
    tenant: &str,
    group_id: &str,
    attrs: &mut Attributes,
) -> Result<Vec<String>> {
    let ids = member_ids(attrs);
    let known = known_members(state, tenant, &ids).await?;
    log_skipped(group_id, &ids, &known);
    if let Some(Value::Array(items)) = attrs.get_mut("members") {
        let mut seen = HashSet::new();
        items.retain(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .is_some_and(|id| known.contains(id) && seen.insert(id.to_string()))
        });
    }
    Ok(ids.into_iter().filter(|id| known.contains(id)).collect())
}

/// POST a resource (RFC 7644 §3.3): 201 with the resource (projected by `attributes` /
/// `excludedAttributes`, RFC 7644 §3.9); a uniqueness conflict is 409.
pub async fn create(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    body: Value,
    params: &QueryParams,
) -> Result<ResourceReply> {
    ctx.require_write()?;
    let rt = resource_type(state, rt_name)?;
    let mut attrs = normalize::request_body(&state.registry, rt, body)?;
    drop_unstored(&mut attrs);
    validate::create(&state.registry, rt, &attrs)?;
    check_limits(state, rt, &attrs)?;
    let id = uuid::Uuid::new_v4().to_string();
    if is_group(rt) {
        retain_known_members(state, ctx.tenant(), &id, &mut attrs).await?;
    }
    let wctx = ctx.write_context(state);
    let resource = Resource::new(rt.name.clone(), id.clone(), attrs, Meta::new(wctx.now));
    let change = Change::created(&resource);
    let projection = projection_of(state, rt, params);
    match state.store.create(&wctx, rt, &resource, &change).await {
        Ok(()) => {}
        Err(e @ StoreError::Uniqueness { .. }) => {
            let load = load_for(state, rt, &projection);
            return match earlier_create(state, ctx, rt, load).await? {
                Some(stored) => Ok(reply(state, ctx, rt, &stored, &projection)),
                None => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    }
    let stored = state
        .store
        .get(ctx.tenant(), rt, &id, load_for(state, rt, &projection))
        .await?
        .unwrap_or(resource);
    Ok(reply(state, ctx, rt, &stored, &projection))
}

/// Checks what a write would store against the configured resource limits, the same on every
/// database (`scim_core::validate::limits`).
fn check_limits(state: &AppState, rt: &ResourceType, attrs: &Attributes) -> Result<()> {
    validate::limits::resource(rt, attrs, &state.settings.limits.resource_limits())
}

/// A create that a client retries after an unknown outcome (503 for a lost connection): when
/// the earlier attempt with the same request id (`X-Request-Id`) by the same principal stored
/// its resource, that resource, so the retry answers as the first attempt would have.
async fn earlier_create(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    load: Load,
) -> Result<Option<Resource>> {
    let Some(request_id) = ctx.request_id.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let Some(id) = state
        .store
        .created_by_request(ctx.tenant(), rt, &ctx.principal.id, request_id)
        .await?
    else {
        return Ok(None);
    };
    Ok(state.store.get(ctx.tenant(), rt, &id, load).await?)
}

/// Whether a failed compare-and-swap should be retried: only when the client gave no `If-Match`.
fn retry(err: &StoreError, if_match: Option<&str>, attempt: usize) -> bool {
    matches!(err, StoreError::VersionMismatch { .. })
        && if_match.is_none_or(|h| h.trim().is_empty())
        && attempt + 1 < MAX_WRITE_ATTEMPTS
}

/// Waits before retrying a lost compare-and-swap: a random delay that doubles with each attempt
/// (capped), so writers racing from several replicas spread out instead of colliding again.
async fn backoff(attempt: usize) {
    use rand::Rng;
    let cap_ms = 1u64 << attempt.min(6);
    let ms = rand::thread_rng().gen_range(0..=cap_ms);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// The lock serialising this process's writes to one resource.
async fn write_lock(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    id: &str,
) -> tokio::sync::OwnedMutexGuard<()> {
    state
        .write_locks
        .lock(format!("{}\u{0}{}\u{0}{}", ctx.tenant(), rt.name, id))
        .await
}

/// The next version of `existing` holding `attrs`: version + 1, created as before, modified `now`.
fn successor(
    rt: &ResourceType,
    id: &str,
    existing: &Resource,
    attrs: Attributes,
    now: OffsetDateTime,
) -> Resource {
    Resource::new(
        rt.name.clone(),
        id,
        attrs,
        Meta {
            created: existing.meta.created,
            last_modified: now,
            version: existing.meta.version + 1,
        },
    )
}

/// PUT a resource (RFC 7644 §3.5.1): 200 with the resource (projected by `attributes` /
/// `excludedAttributes`). `active` absent keeps its value.
pub async fn replace(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    id: &str,
    body: Value,
    if_match: Option<&str>,
    params: &QueryParams,
) -> Result<ResourceReply> {
    ctx.require_write()?;
    let rt = resource_type(state, rt_name)?;
    let mut incoming = normalize::request_body(&state.registry, rt, body)?;
    drop_unstored(&mut incoming);
    let _serialised = write_lock(state, ctx, rt, id).await;
    let mut attempt = 0;
    loop {
        let existing = fetch(state, ctx, rt, id, Load::default()).await?;
        check_if_match(if_match, existing.meta.version)?;
        let mut attrs = validate::replace(&state.registry, rt, &existing, incoming.clone())?;
        drop_unstored(&mut attrs);
        check_limits(state, rt, &attrs)?;
        let members = if is_group(rt) {
            let added = retain_known_members(state, ctx.tenant(), id, &mut attrs).await?;
            attrs.remove("members");
            Some(MembershipDelta {
                clear: true,
                added,
                removed: Vec::new(),
            })
        } else {
            None
        };
        let wctx = ctx.write_context(state);
        let resource = successor(rt, id, &existing, attrs, wctx.now);
        let mut change = Change::replaced(&existing, &resource);
        if members.is_some() {
            change.changed_paths.push("members".into());
            change.members = members.clone();
        }
        match state
            .store
            .update(
                &wctx,
                rt,
                &resource,
                existing.meta.version,
                members.as_ref(),
                &change,
            )
            .await
        {
            Ok(()) => break,
            Err(e) if retry(&e, if_match, attempt) => {
                attempt += 1;
                backoff(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let projection = projection_of(state, rt, params);
    let stored = fetch(state, ctx, rt, id, load_for(state, rt, &projection)).await?;
    Ok(reply(state, ctx, rt, &stored, &projection))
}

/// PATCH a resource (RFC 7644 §3.5.2). Users answer 200 with the resource; Groups answer 204
/// unless the request names `attributes` or `excludedAttributes`, and never load their member
/// list to apply member operations.
pub async fn patch(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    id: &str,
    body: Value,
    if_match: Option<&str>,
    params: &QueryParams,
) -> Result<PatchReply> {
    ctx.require_write()?;
    let rt = resource_type(state, rt_name)?;
    let request = PatchRequest::parse(body, state.settings.limits.max_patch_operations)?;
    let projection = projection_of(state, rt, params);
    // Member operations by id become a delta for storage, so a PATCH to a 100,000-member group
    // never loads its members; only filters on other member sub-attributes need them loaded.
    let inline_members = is_group(rt) && patch::needs_inline_members(&request);
    let mode = if is_group(rt) && !inline_members {
        Members::Delta
    } else {
        Members::Inline
    };
    let load = Load {
        members: inline_members,
        groups: false,
    };
    let _serialised = write_lock(state, ctx, rt, id).await;
    let mut attempt = 0;
    let version = loop {
        let existing = fetch(state, ctx, rt, id, load).await?;
        check_if_match(if_match, existing.meta.version)?;
        let mut outcome = patch::apply(&state.registry, rt, &existing, &request, mode)?;
        drop_unstored(&mut outcome.attributes);
        if inline_members && outcome.changed {
            // The whole member list was patched in place: store it as a replacement.
            let added =
                retain_known_members(state, ctx.tenant(), id, &mut outcome.attributes).await?;
            outcome.members = Some(MembershipDelta {
                clear: true,
                added,
                removed: Vec::new(),
            });
        } else if let Some(delta) = outcome.members.as_mut() {
            let known = known_members(state, ctx.tenant(), &delta.added).await?;
            log_skipped(id, &delta.added, &known);
            delta.added.retain(|m| known.contains(m));
        }
        let members_changed = outcome
            .members
            .as_ref()
            .is_some_and(|d| d.clear || !d.added.is_empty() || !d.removed.is_empty());
        if !outcome.changed && !members_changed {
            break existing.meta.version;
        }
        validate::patch_result(&state.registry, rt, &outcome.attributes)?;
        check_limits(state, rt, &outcome.attributes)?;
        let wctx = ctx.write_context(state);
        let mut attrs = outcome.attributes.clone();
        if is_group(rt) {
            attrs.remove("members");
        }
        let resource = successor(rt, id, &existing, attrs, wctx.now);
        let version = resource.meta.version;
        let change = Change::patched(&existing, &resource, &outcome);
        let members = outcome.members.filter(|_| members_changed);
        match state
            .store
            .update(
                &wctx,
                rt,
                &resource,
                existing.meta.version,
                members.as_ref(),
                &change,
            )
            .await
        {
            Ok(()) => break version,
            Err(e) if retry(&e, if_match, attempt) => {
                attempt += 1;
                metrics::counter!(crate::metrics::PATCH_RETRIES).increment(1);
                backoff(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let wants_body =
        !is_group(rt) || params.attributes.is_some() || params.excluded_attributes.is_some();
    if !wants_body {
        return Ok(PatchReply::NoContent(ETag::new(version)));
    }
    let stored = fetch(state, ctx, rt, id, load_for(state, rt, &projection)).await?;
    Ok(PatchReply::Resource(reply(
        state,
        ctx,
        rt,
        &stored,
        &projection,
    )))
}

/// DELETE a resource (RFC 7644 §3.6): the resource and every group membership naming it.
pub async fn delete(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    ctx.require_write()?;
    let rt = resource_type(state, rt_name)?;
    let existing = fetch(state, ctx, rt, id, Load::default()).await?;
    check_if_match(if_match, existing.meta.version)?;
    let expected = if_match
        .filter(|h| !h.trim().is_empty())
        .map(|_| existing.meta.version);
    let change = Change::deleted(&existing);
    let wctx = ctx.write_context(state);
    state.store.delete(&wctx, rt, id, expected, &change).await?;
    Ok(())
}

/// Finds a resource by `externalId` (HR-style Bulk upserts).
pub(crate) async fn find_by_external_id(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    external_id: &str,
) -> Result<Option<String>> {
    let rt = resource_type(state, rt_name)?;
    Ok(state
        .store
        .find_by_external_id(ctx.tenant(), rt, external_id)
        .await?
        .map(|r| r.id))
}
