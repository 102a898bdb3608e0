//! Resource operations (RFC 7644 §3.3–§3.6): create, get, list, search, replace, patch, delete.
//!
//! Project decisions encoded here (see `docs/` and the README):
//! - a filter with no match is a 200 ListResponse with `totalResults: 0`, never 404;
//! - `password` (any `returned: never` attribute) is accepted and dropped (never stored, never
//!   returned; `changePassword` is advertised unsupported);
//! - a group PATCH or write naming member ids that do not exist applies the known ids and skips
//!   (and logs) the unknown ones;
//! - a write without `If-Match` that loses a compare-and-swap race is re-read and re-applied, a
//!   bounded number of times, so concurrent member adds all land; with `If-Match` it is 412.
//!
//! Every write goes through the pipeline in [`super::write`]; the functions here turn HTTP-shaped
//! arguments into a [`WriteRequest`] and the result into a reply.

use super::write::{self, WriteRequest, Written};
use super::{GetReply, PatchReply, RequestCtx, ResourceReply, location, resource_type};
use crate::state::AppState;
use crate::store::Load;
use scim_core::etag::{ETag, if_none_match_hit};
use scim_core::patch::PatchRequest;
use scim_core::query::{ListQuery, ListResponse, Projection, QueryParams};
use scim_core::resource::Resource;
use scim_core::schema::ResourceType;
use scim_core::{Error, Result, validate};
use serde_json::Value;

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
        members: rt.is_group() && projection.includes_members(),
        groups: rt.is_user()
            && state
                .registry
                .resolve(rt, None, "groups", None)
                .is_some_and(|p| projection.includes(&p)),
    }
}

/// The representation of `r` as the projection shows it. The resource is consumed: its
/// attribute values move into the body rather than being copied.
fn render(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    r: Resource,
    p: &Projection,
) -> Value {
    p.apply(
        &state.registry,
        rt,
        r.into_json(&state.registry, Some(&ctx.base_url)),
    )
}

fn reply(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    r: Resource,
    p: &Projection,
) -> ResourceReply {
    let etag = r.etag();
    let location = location(&ctx.base_url, rt, &r.id);
    ResourceReply {
        body: render(state, ctx, rt, r, p),
        etag,
        location,
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
        .resources
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
        resource,
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
    ListResponse::new(total, start_index, resources).into_json()
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
        .resources
        .list(
            ctx.tenant(),
            rt,
            query,
            load_for(state, rt, &query.projection),
        )
        .await?;
    let resources = page
        .resources
        .into_iter()
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
            .resources
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
            .resources
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
                .into_iter()
                .map(|r| render(state, ctx, rt, r, &page_query.projection)),
        );
    }
    Ok(list_response(total, start_index, resources))
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
    let writer = ctx.writer()?;
    let rt = resource_type(state, rt_name)?;
    let written = write::write(state, &writer, rt, WriteRequest::Create { body }).await?;
    written_reply(state, ctx, rt, written, params).await
}

/// The reply to a write: the written resource, read again only when the projection shows
/// something the write did not load (a Group's members, a new User's groups).
async fn written_reply(
    state: &AppState,
    ctx: &RequestCtx,
    rt: &ResourceType,
    written: Written,
    params: &QueryParams,
) -> Result<ResourceReply> {
    let projection = projection_of(state, rt, params);
    let load = load_for(state, rt, &projection);
    let covered =
        (!load.members || written.loaded.members) && (!load.groups || written.loaded.groups);
    let resource = match written.resource {
        Some(r) if covered => r,
        _ => fetch(state, ctx, rt, &written.id, load).await?,
    };
    Ok(reply(state, ctx, rt, resource, &projection))
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
    let writer = ctx.writer()?;
    let rt = resource_type(state, rt_name)?;
    let request = WriteRequest::Replace {
        id: id.to_string(),
        body,
        if_match: if_match.map(str::to_string),
    };
    let extra = load_for(state, rt, &projection_of(state, rt, params));
    let written = write::write_loading(state, &writer, rt, request, extra).await?;
    written_reply(state, ctx, rt, written, params).await
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
    let writer = ctx.writer()?;
    let rt = resource_type(state, rt_name)?;
    let request = WriteRequest::Patch {
        id: id.to_string(),
        request: PatchRequest::parse(body, state.settings.limits.max_patch_operations)?,
        if_match: if_match.map(str::to_string),
    };
    let wants_body =
        !rt.is_group() || params.attributes.is_some() || params.excluded_attributes.is_some();
    let extra = load_for(state, rt, &projection_of(state, rt, params));
    let written = write::write_loading(state, &writer, rt, request, extra).await?;
    if !wants_body {
        return Ok(PatchReply::NoContent(ETag::new(written.version)));
    }
    Ok(PatchReply::Resource(
        written_reply(state, ctx, rt, written, params).await?,
    ))
}

/// DELETE a resource (RFC 7644 §3.6): the resource and every group membership naming it (each
/// such group gets a new version and change record).
pub async fn delete(
    state: &AppState,
    ctx: &RequestCtx,
    rt_name: &str,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    let writer = ctx.writer()?;
    let rt = resource_type(state, rt_name)?;
    let request = WriteRequest::Delete {
        id: id.to_string(),
        if_match: if_match.map(str::to_string),
    };
    write::write(state, &writer, rt, request).await?;
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
        .resources
        .find_by_external_id(ctx.tenant(), rt, external_id)
        .await?
        .map(|r| r.id))
}
