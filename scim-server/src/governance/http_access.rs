//! The governance API's time-bound grants, hygiene reports and leaver evidence (thin handlers:
//! extract, one call into [`super::jit`], [`super::hygiene`] or [`super::evidence`], answer).
//! Authenticated like SCIM; read-only credentials may read and not change (403).

use super::evidence::{self, AnchoredEvidence};
use super::hygiene::{self, HygieneOptions, HygieneReport};
use super::jit::{self, Decision, ExtendRequest, GrantFilter, GrantRequest, JitGrant, Revocation};
use crate::http::error::ApiError;
use crate::http::extract::{Caller, ScimJson};
use crate::service::RequestCtx;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this file (the caller adds the authentication).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_grants, request_grant))
        .routes(routes!(get_grant))
        .routes(routes!(approve_grant))
        .routes(routes!(deny_grant))
        .routes(routes!(extend_grant))
        .routes(routes!(revoke_grant))
        .routes(routes!(hygiene_report))
        .routes(routes!(evidence_export))
        .routes(routes!(evidence_verify))
}

fn body_as<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| scim_core::Error::invalid_value(format!("the body is not valid: {e}")).into())
}

fn query(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn actor(ctx: &RequestCtx) -> String {
    format!("token:{}", ctx.principal().id())
}

fn gov(state: &AppState) -> Result<&super::Governance, ApiError> {
    Ok(super::governance_of(state)?)
}

fn text(content_type: &'static str, body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The `format` query parameter among `allowed` (the first is the default).
fn format_of(
    q: &HashMap<String, String>,
    allowed: &[&'static str],
) -> Result<&'static str, ApiError> {
    match q.get("format") {
        None => Ok(allowed[0]),
        Some(f) => allowed.iter().copied().find(|a| a == f).ok_or_else(|| {
            scim_core::Error::invalid_value(format!(
                "format: {f:?} is not one of {}",
                allowed.join(", ")
            ))
            .into()
        }),
    }
}

/// Parses a time parameter: RFC 3339, or a date (`2026-03-31`, midnight UTC).
pub fn parse_time(name: &str, s: &str) -> Result<OffsetDateTime, scim_core::Error> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            scim_core::Error::invalid_value(format!(
                "{name}: {s:?} is neither an RFC 3339 time nor a date (YYYY-MM-DD)"
            ))
        })
}

/// Requests a time-bound grant of a catalog group, role or license for a user. Policies say
/// which grants may be requested, for how long, and who approves; an auto-approved policy
/// grants at once.
#[utoipa::path(post, path = "/governance/v1/grants", tag = "Governance",
    request_body(content = GrantRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "requested (pending), or granted at once (active)", body = JitGrant),
        (status = 400, description = "no policy for the grant, a duration beyond the policy, no justification, an inactive user", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 403, description = "read-only credential", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 404, description = "no such user", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the user has this grant pending or active already", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn request_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimJson(body): ScimJson<Value>,
) -> Result<Response, ApiError> {
    ctx.require_write()?;
    let req: GrantRequest = body_as(body)?;
    let g = jit::request(gov(&state)?, ctx.tenant(), &actor(&ctx), req).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

/// The tenant's time-bound grants, newest first (at most 500).
#[utoipa::path(get, path = "/governance/v1/grants", tag = "Governance",
    params(GrantFilter),
    responses(
        (status = 200, description = "the grants", body = Object),
        (status = 400, description = "an unknown status", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_grants(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw);
    let filter = GrantFilter {
        user: q.get("user").cloned(),
        status: q.get("status").cloned(),
    };
    let grants = jit::list(gov(&state)?, ctx.tenant(), &filter).await?;
    Ok(Json(json!({ "grants": grants })))
}

/// One time-bound grant.
#[utoipa::path(get, path = "/governance/v1/grants/{id}", tag = "Governance",
    params(("id" = String, Path, description = "the grant id")),
    responses(
        (status = 200, description = "the grant", body = JitGrant),
        (status = 404, description = "no such grant in the caller's tenant", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Json<JitGrant>, ApiError> {
    Ok(Json(jit::get(gov(&state)?, ctx.tenant(), &id).await?))
}

/// Approves a pending request: `approver` must be the user's manager (SCIM `manager`) or one of
/// the policy's approvers, never the user. The grant is held from now (an extension: from the
/// end of the grant it extends) for the duration asked.
#[utoipa::path(post, path = "/governance/v1/grants/{id}/approve", tag = "Governance",
    params(("id" = String, Path, description = "the grant id")),
    request_body(content = Decision, content_type = "application/json"),
    responses(
        (status = 200, description = "approved: active", body = JitGrant),
        (status = 403, description = "read-only credential, or an approver the policy does not allow", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 404, description = "no such grant", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "not pending", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn approve_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    ScimJson(body): ScimJson<Value>,
) -> Result<Json<JitGrant>, ApiError> {
    ctx.require_write()?;
    let d: Decision = body_as(body)?;
    Ok(Json(
        jit::approve(gov(&state)?, ctx.tenant(), &actor(&ctx), &id, d).await?,
    ))
}

/// Denies a pending request (the same approvers as for an approval).
#[utoipa::path(post, path = "/governance/v1/grants/{id}/deny", tag = "Governance",
    params(("id" = String, Path, description = "the grant id")),
    request_body(content = Decision, content_type = "application/json"),
    responses(
        (status = 200, description = "denied", body = JitGrant),
        (status = 403, description = "read-only credential, or an approver the policy does not allow", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "not pending", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn deny_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    ScimJson(body): ScimJson<Value>,
) -> Result<Json<JitGrant>, ApiError> {
    ctx.require_write()?;
    let d: Decision = body_as(body)?;
    Ok(Json(
        jit::deny(gov(&state)?, ctx.tenant(), &actor(&ctx), &id, d).await?,
    ))
}

/// Asks to extend an active grant: a new request, approved like the first, that starts when
/// the grant it extends ends.
#[utoipa::path(post, path = "/governance/v1/grants/{id}/extend", tag = "Governance",
    params(("id" = String, Path, description = "the active grant to extend")),
    request_body(content = ExtendRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "the extension request (pending, or active when auto-approved)", body = JitGrant),
        (status = 400, description = "a duration beyond the policy, or no justification", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the grant is not active", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn extend_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    ScimJson(body): ScimJson<Value>,
) -> Result<Response, ApiError> {
    ctx.require_write()?;
    let req: ExtendRequest = body_as(body)?;
    let g = jit::extend(gov(&state)?, ctx.tenant(), &actor(&ctx), &id, req).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

/// Ends an active grant now (the bridge removes it), or withdraws a pending request.
#[utoipa::path(post, path = "/governance/v1/grants/{id}/revoke", tag = "Governance",
    params(("id" = String, Path, description = "the grant id")),
    request_body(content = Revocation, content_type = "application/json"),
    responses(
        (status = 200, description = "revoked", body = JitGrant),
        (status = 409, description = "neither active nor pending", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    ScimJson(body): ScimJson<Value>,
) -> Result<Json<JitGrant>, ApiError> {
    ctx.require_write()?;
    let r: Revocation = if body.is_null() {
        Revocation::default()
    } else {
        body_as(body)?
    };
    Ok(Json(
        jit::revoke(gov(&state)?, ctx.tenant(), &actor(&ctx), &id, r).await?,
    ))
}

/// The tenant's hygiene report, read now from SCIM, the bridge and Microsoft Graph: stale,
/// orphaned and drifted accounts, and the holders of catalog roles with how they got them.
/// `format=csv` answers CSV (one row per finding).
#[utoipa::path(get, path = "/governance/v1/hygiene", tag = "Governance",
    params(
        ("staleDays" = Option<u32>, Query, description = "days without a sign-in that make an active account stale (default 90)"),
        ("convergenceMinutes" = Option<u32>, Query, description = "minutes the bridge gets before a difference counts as drift (default 60)"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
    ),
    responses(
        (status = 200, description = "the report", body = HygieneReport),
        (status = 400, description = "a bad parameter", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 409, description = "the Graph bridge is not configured, or in plan mode (the report reads Graph)", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 502, description = "Graph could not be read", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 404, description = "governance is not enabled on this server", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn hygiene_report(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(raw);
    let format = format_of(&q, &["json", "csv"])?;
    let number = |name: &str, default: u32| -> Result<u32, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0 && *n <= 36_500)
                .ok_or_else(|| {
                    scim_core::Error::invalid_value(format!(
                        "{name}: {v:?} is not a whole number from 1 to 36500"
                    ))
                    .into()
                }),
        }
    };
    let defaults = HygieneOptions::default();
    let options = HygieneOptions {
        stale_days: number("staleDays", defaults.stale_days)?,
        convergence_minutes: number("convergenceMinutes", defaults.convergence_minutes)?,
    };
    let report = hygiene::report(gov(&state)?, ctx.tenant(), options).await?;
    Ok(match format {
        "csv" => text("text/csv; charset=utf-8", hygiene::to_csv(&report)),
        _ => Json(report).into_response(),
    })
}

/// The tenant's leaver evidence for revocations completed in `[from, to)`: each leaver's HR
/// event, SCIM change, every Graph step with its time, request id and outcome, and the time to
/// full revocation; each record's digest is anchored in the change log. `format=csv` (one row
/// per Graph step) or `format=html` (a printable report).
#[utoipa::path(get, path = "/governance/v1/evidence", tag = "Governance",
    params(
        ("from" = String, Query, description = "start of the period (RFC 3339 or YYYY-MM-DD)"),
        ("to" = String, Query, description = "end of the period, exclusive"),
        ("format" = Option<String>, Query, description = "`json` (default), `csv` or `html`"),
    ),
    responses(
        (status = 200, description = "the records", body = Object),
        (status = 400, description = "a missing or bad period, or an unknown format", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn evidence_export(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(raw);
    let format = format_of(&q, &["json", "csv", "html"])?;
    let required = |name: &str| -> Result<OffsetDateTime, ApiError> {
        let v = q.get(name).ok_or_else(|| {
            scim_core::Error::invalid_value(format!("{name}: required (RFC 3339 or YYYY-MM-DD)"))
        })?;
        Ok(parse_time(name, v)?)
    };
    let (from, to) = (required("from")?, required("to")?);
    let records: Vec<AnchoredEvidence> =
        evidence::export(gov(&state)?, ctx.tenant(), from, to).await?;
    Ok(match format {
        "csv" => text("text/csv; charset=utf-8", evidence::to_csv(&records)),
        "html" => text(
            "text/html; charset=utf-8",
            evidence::to_html(ctx.tenant(), from, to, &records),
        ),
        _ => Json(json!({
            "tenant": ctx.tenant(),
            "from": evidence::rfc3339(from),
            "to": evidence::rfc3339(to),
            "records": records,
        }))
        .into_response(),
    })
}

/// Checks the tenant's stored evidence: each record still matches its digest, and the change
/// log's anchor event carries that digest.
#[utoipa::path(get, path = "/governance/v1/evidence/verify", tag = "Governance",
    responses((status = 200, description = "`problems` is empty when all is well", body = Object)),
    security(("bearer" = [])))]
pub async fn evidence_verify(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let problems = evidence::verify_tenant(gov(&state)?, ctx.tenant()).await?;
    Ok(Json(
        json!({ "tenant": ctx.tenant(), "problems": problems }),
    ))
}
