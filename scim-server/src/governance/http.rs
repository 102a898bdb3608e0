//! The governance API under `/governance/v1` (thin handlers: extract, one call into
//! [`super::reviews`], answer). Authenticated like SCIM (the same credentials, per tenant);
//! read-only credentials may read everything and change nothing (403). Errors are SCIM error
//! bodies like every other endpoint's; answers are `application/json`.

use super::reviews::{self, DecisionRequest, ItemView, ReviewSpec, ReviewView};
use super::store::{Event, ExceptionRow};
use crate::http::error::ApiError;
use crate::http::extract::{Caller, ScimJson};
use crate::service::RequestCtx;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The governance routes (the caller adds the authentication).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reviews, create_review))
        .routes(routes!(get_review))
        .routes(routes!(list_items))
        .routes(routes!(decide_item))
        .routes(routes!(decide_bulk))
        .routes(routes!(apply_review))
        .routes(routes!(list_exceptions))
        .routes(routes!(remove_exception))
        .routes(routes!(list_events))
        .merge(super::http_access::routes())
}

/// The body as `T`, or a 400 `invalidValue` naming what is wrong.
fn body_as<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| scim_core::Error::invalid_value(format!("the body is not valid: {e}")).into())
}

fn query(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(scim_core::Error::invalid_value(format!(
            "`{name}` must be true or false, not {other:?}"
        ))
        .into()),
    }
}

fn actor(ctx: &RequestCtx) -> String {
    format!("token:{}", ctx.principal().id())
}

fn gov(state: &AppState) -> Result<&super::Governance, ApiError> {
    Ok(super::governance_of(state)?)
}

/// Creates an access review campaign; it starts at `startsAt` (at once when omitted): every
/// current holder of each grant in `scope` is read from Graph and becomes an item.
#[utoipa::path(post, path = "/governance/v1/reviews", tag = "Governance",
    request_body(content = ReviewSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "created (and started when due)", body = ReviewView),
        (status = 400, description = "an invalid campaign: the detail names the field", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 403, description = "read-only credential", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 502, description = "Graph could not be read", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 404, description = "governance is not enabled on this server", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the Graph bridge is not configured, or in plan mode (a review reads Graph)", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_review(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimJson(body): ScimJson<Value>,
) -> Result<Response, ApiError> {
    ctx.require_write()?;
    let spec: ReviewSpec = body_as(body)?;
    let review = reviews::create(gov(&state)?, ctx.tenant(), &actor(&ctx), spec).await?;
    Ok((StatusCode::CREATED, Json(review)).into_response())
}

/// The tenant's access reviews, newest first.
#[utoipa::path(get, path = "/governance/v1/reviews", tag = "Governance",
    responses((status = 200, description = "the reviews", body = Object)),
    security(("bearer" = [])))]
pub async fn list_reviews(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let list = reviews::list(gov(&state)?, ctx.tenant()).await?;
    Ok(Json(json!({ "reviews": list })))
}

/// One access review with its item counts.
#[utoipa::path(get, path = "/governance/v1/reviews/{id}", tag = "Governance",
    params(("id" = String, Path, description = "the review id")),
    responses(
        (status = 200, description = "the review", body = ReviewView),
        (status = 404, description = "no such review in the caller's tenant", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_review(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Json<ReviewView>, ApiError> {
    Ok(Json(reviews::get(gov(&state)?, ctx.tenant(), &id).await?))
}

/// A review's items (one per holder of a reviewed grant), with recommendation and decision.
#[utoipa::path(get, path = "/governance/v1/reviews/{id}/items", tag = "Governance",
    params(
        ("id" = String, Path, description = "the review id"),
        ("reviewer" = Option<String>, Query, description = "only this reviewer's items"),
        ("undecided" = Option<bool>, Query, description = "only items without a decision"),
    ),
    responses(
        (status = 200, description = "the items", body = Object),
        (status = 404, description = "no such review", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_items(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw);
    let items: Vec<ItemView> = reviews::items(
        gov(&state)?,
        ctx.tenant(),
        &id,
        q.get("reviewer").map(String::as_str),
        flag(&q, "undecided")?,
    )
    .await?;
    Ok(Json(json!({ "items": items })))
}

/// Decides one item: `keep` or `revoke`, with a justification (while the review is active).
#[utoipa::path(post, path = "/governance/v1/reviews/{id}/items/{item}/decision", tag = "Governance",
    params(
        ("id" = String, Path, description = "the review id"),
        ("item" = String, Path, description = "the item id"),
    ),
    request_body(content = DecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "recorded; the review", body = ReviewView),
        (status = 400, description = "not keep/revoke, or no justification", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 404, description = "no such review or item", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the review is not active", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn decide_item(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, item)): Path<(String, String)>,
    ScimJson(body): ScimJson<Value>,
) -> Result<Json<ReviewView>, ApiError> {
    ctx.require_write()?;
    let mut d: DecisionRequest = body_as(body)?;
    d.item_id = Some(item);
    let review = reviews::decide(gov(&state)?, ctx.tenant(), &id, &actor(&ctx), vec![d]).await?;
    Ok(Json(review))
}

/// Decides many items at once, all or none: `{"decisions": [{"itemId", "decision",
/// "justification"}]}` (at most 1000).
#[utoipa::path(post, path = "/governance/v1/reviews/{id}/decisions", tag = "Governance",
    params(("id" = String, Path, description = "the review id")),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "recorded; the review", body = ReviewView),
        (status = 400, description = "a decision is invalid (named by its position); nothing recorded", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 404, description = "no such review or item; nothing recorded", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the review is not active", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn decide_bulk(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    ScimJson(body): ScimJson<Value>,
) -> Result<Json<ReviewView>, ApiError> {
    ctx.require_write()?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Bulk {
        decisions: Vec<DecisionRequest>,
    }
    let bulk: Bulk = body_as(body)?;
    let review = reviews::decide(
        gov(&state)?,
        ctx.tenant(),
        &id,
        &actor(&ctx),
        bulk.decisions,
    )
    .await?;
    Ok(Json(review))
}

/// Closes the review now if still active (undecided items take the default decision) and
/// carries out its decisions in Graph; revoking a rule-derived grant records an exception.
/// Applying again retries failed items only.
#[utoipa::path(post, path = "/governance/v1/reviews/{id}/apply", tag = "Governance",
    params(("id" = String, Path, description = "the review id")),
    responses(
        (status = 200, description = "applied (see the counts for failures)", body = ReviewView),
        (status = 404, description = "no such review", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the review has not started", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn apply_review(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Json<ReviewView>, ApiError> {
    ctx.require_write()?;
    Ok(Json(
        reviews::apply(gov(&state)?, ctx.tenant(), &id, &actor(&ctx)).await?,
    ))
}

/// Review exceptions: revoked grants the rules still derive, which the planner withholds.
#[utoipa::path(get, path = "/governance/v1/exceptions", tag = "Governance",
    params(
        ("user" = Option<String>, Query, description = "only this SCIM user's"),
        ("all" = Option<bool>, Query, description = "removed ones too"),
    ),
    responses((status = 200, description = "the exceptions", body = Object)),
    security(("bearer" = [])))]
pub async fn list_exceptions(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw);
    let list: Vec<ExceptionRow> = reviews::exceptions(
        gov(&state)?,
        ctx.tenant(),
        q.get("user").map(String::as_str),
        flag(&q, "all")?,
    )
    .await?;
    Ok(Json(json!({ "exceptions": list })))
}

/// Removes an exception (kept on record) and queues the user for reconciliation: the rules
/// decide again.
#[utoipa::path(delete, path = "/governance/v1/exceptions/{id}", tag = "Governance",
    params(("id" = String, Path, description = "the exception id")),
    responses(
        (status = 200, description = "removed", body = Object),
        (status = 404, description = "no active exception with this id", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove_exception(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Json<ExceptionRow>, ApiError> {
    ctx.require_write()?;
    Ok(Json(
        reviews::remove_exception(gov(&state)?, ctx.tenant(), &id, &actor(&ctx)).await?,
    ))
}

/// The governance event record (decisions, exceptions, applications, notifications), oldest
/// first; `subject` narrows it to a review or exception.
#[utoipa::path(get, path = "/governance/v1/events", tag = "Governance",
    params(("subject" = Option<String>, Query, description = "a review or exception id")),
    responses((status = 200, description = "the events", body = Object)),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw);
    let events: Vec<Event> = super::events(
        gov(&state)?,
        ctx.tenant(),
        q.get("subject").map(String::as_str),
    )
    .await?;
    Ok(Json(json!({ "events": events })))
}
