//! The intake's HTTP handlers (thin: one call into the intake, then the answer). Authenticated
//! like SCIM (same credentials, per tenant); routes are listed in [`routes()`].

use crate::http::error::ApiError;
use crate::http::extract::{Caller, ScimJson};
use crate::http::response::Scim;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The intake's routes that take the SCIM credentials (the caller adds the authentication).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk_upload))
        .routes(routes!(upload_csv))
        .routes(routes!(get_job))
}

/// The intake's routes authenticated by a Standard Webhooks signature instead of a bearer token.
pub fn signed_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_event))
}

/// The server's root URL as the client sees it: the SCIM base URL without the base path.
fn root_url(state: &AppState, scim_base: &str) -> String {
    let base = scim_base.trim_end_matches('/');
    base.strip_suffix(state.settings.base_path.trim_end_matches('/'))
        .unwrap_or(base)
        .to_string()
}

/// Accepts HR records in Microsoft Entra's API-driven inbound provisioning format (a SCIM
/// BulkRequest of `POST /Users` operations), queued as one job and applied asynchronously as
/// upserts keyed on `externalId`.
#[utoipa::path(post, path = "/inbound/v1/bulkUpload", tag = "HR intake",
    request_body(content = crate::http::request_docs::BulkUploadDoc, content_type = "application/scim+json"),
    responses(
        (status = 202, description = "queued; `Location` names the job to poll", body = Object, content_type = "application/scim+json"),
        (status = 400, description = "not a bulkUpload body, too many operations, or an operation other than POST /Users", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 403, description = "read-only credential", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn bulk_upload(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    ScimJson(body): ScimJson<Value>,
) -> Result<Response, ApiError> {
    let id = crate::inbound::accept_bulk_upload(&state, &ctx, body).await?;
    Ok(queued(&state, &ctx, &id))
}

/// The query of `POST /inbound/v1/imports`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    mapping: String,
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
    #[serde(default)]
    delimiter: Option<String>,
}

/// The query of `GET /inbound/v1/jobs/{id}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JobQuery {
    #[serde(default, rename = "startIndex")]
    start_index: Option<u64>,
    #[serde(default)]
    count: Option<u32>,
}

/// Media types a CSV upload may be sent as (RFC 4180 registers `text/csv`; some clients send a
/// file as `text/plain` or `application/octet-stream`).
const CSV_TYPES: [&str; 4] = [
    "text/csv",
    "application/csv",
    "text/plain",
    "application/octet-stream",
];

/// Accepts a CSV file of employees (a header row naming the HR fields), mapped by a configured
/// mapping and upserted by `externalId` like bulkUpload. Every row is checked first: a refused
/// row is a 400 naming its row and column, and nothing is queued. Otherwise `202` with the job
/// (`Location`), whose records are the rows (`bulkId` = row number, the header being row 1).
/// With `dryRun=true`: `200` with each row's would-be outcome, nothing written.
#[utoipa::path(post, path = "/inbound/v1/imports", tag = "HR intake",
    params(
        ("mapping" = String, Query, description = "a mapping of `[inbound.mappings]`, or the name of one of the tenant's HR event sources"),
        ("dryRun" = Option<bool>, Query, description = "preview each row (created, updated, unchanged, failed, rejected); write nothing"),
        ("delimiter" = Option<String>, Query, description = "`,` (default), `;`, `tab` or `|`"),
    ),
    request_body(content = String, content_type = "text/csv", description = "the CSV file, UTF-8, header row first"),
    responses(
        (status = 202, description = "queued; `Location` names the job to poll", body = Object, content_type = "application/scim+json"),
        (status = 200, description = "dryRun: counts and each row's outcome", body = Object, content_type = "application/scim+json"),
        (status = 400, description = "a refused row (named with its column), an unknown mapping, or a bad query", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 403, description = "read-only credential", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 413, description = "larger than `inbound.max_import_bytes`", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 415, description = "not sent as `text/csv`", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn upload_csv(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query: ImportQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|e| {
            scim_core::Error::invalid_value(format!(
                "query: {e} (`mapping` is required; `dryRun` and `delimiter` are optional)"
            ))
        })?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !CSV_TYPES.contains(&media.as_str()) {
        return Err(scim_core::Error::new(
            415,
            None,
            format!("send the file as `Content-Type: text/csv` (got {media:?})"),
        )
        .into());
    }
    let limit = crate::inbound::intake_of(&state)?.config.max_import_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        scim_core::Error::payload_too_large(format!(
            "the file is larger than {limit} bytes (`inbound.max_import_bytes`); import it with \
             `scim-server import` instead"
        ))
    })?;
    let reply = crate::inbound::accept_import(
        &state,
        &ctx,
        &query.mapping,
        query.delimiter.as_deref(),
        query.dry_run,
        &bytes,
    )
    .await?;
    Ok(match reply {
        crate::inbound::ImportReply::Preview(preview) => Scim(
            StatusCode::OK,
            serde_json::to_value(preview).unwrap_or_default(),
        )
        .into_response(),
        crate::inbound::ImportReply::Queued(id) => queued(&state, &ctx, &id),
    })
}

/// `202 Accepted` for a queued job, with its `Location`.
fn queued(state: &AppState, ctx: &crate::service::RequestCtx, id: &str) -> Response {
    let location = format!(
        "{}{}/{id}",
        root_url(state, ctx.base_url()),
        crate::inbound::JOBS_PATH
    );
    let mut response = Scim(
        StatusCode::ACCEPTED,
        serde_json::json!({ "id": id, "status": "queued", "location": location }),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// An intake job: its status (`queued`, `running`, `completed`, `completedWithErrors`, `dead`),
/// counts per outcome, and per record its `bulkId`, outcome, SCIM `id` and SCIM error.
#[utoipa::path(get, path = "/inbound/v1/jobs/{id}", tag = "HR intake",
    params(
        ("id" = String, Path, description = "the job id from the bulkUpload or imports answer"),
        ("startIndex" = Option<u64>, Query, description = "the first operation shown, 1-based (default 1)"),
        ("count" = Option<u32>, Query, description = "operations shown (default 1000, at most 10000); `counts` covers them all"),
    ),
    responses(
        (status = 200, description = "the job", body = Object, content_type = "application/scim+json"),
        (status = 404, description = "no such job in the caller's tenant", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Scim, ApiError> {
    let page: JobQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|e| {
            scim_core::Error::invalid_value(format!(
                "query: {e} (`startIndex` and `count` are whole numbers)"
            ))
        })?;
    let job = crate::inbound::job_page(
        &state,
        &ctx,
        &id,
        page.start_index.unwrap_or(1),
        page.count.unwrap_or(crate::inbound::queue::OPERATIONS_PAGE),
    )
    .await?;
    Ok(Scim(
        StatusCode::OK,
        serde_json::to_value(job).unwrap_or_default(),
    ))
}

/// Accepts an HR event (hire, update, terminate, rehire; optionally effective later) from a
/// configured source of a tenant, signed per Standard Webhooks (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`); no bearer token. Unsigned, badly signed or stale
/// requests are 401 and change nothing; a replayed event id is 200 and changes nothing.
#[utoipa::path(post, path = "/inbound/v1/events/{tenant}/{source}", tag = "HR intake",
    params(
        ("tenant" = String, Path, description = "the tenant the source belongs to"),
        ("source" = String, Path, description = "the source's name in `[[inbound.sources]]`"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 202, description = "queued: the jobs and when each runs", body = Object, content_type = "application/scim+json"),
        (status = 200, description = "a replay of an event already received: nothing queued", body = Object, content_type = "application/scim+json"),
        (status = 400, description = "not an HR event, or a value the mapping refuses", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 401, description = "unknown source, unsigned, bad signature or stale timestamp", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 429, description = "the source sent more than `inbound.events_per_second` (with `Retry-After`)", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ))]
pub async fn post_event(
    State(state): State<AppState>,
    Path((tenant, source)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Scim, ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = crate::inbound::events::Signed {
        id: text("webhook-id"),
        timestamp: text("webhook-timestamp"),
        signature: text("webhook-signature"),
    };
    let reply = crate::inbound::events::accept_event(&state, &tenant, &source, signed, &body)
        .await
        .map_err(|error| ApiError {
            // The limit is at least one event per second, so the next one is due within 1 s.
            retry_after: (error.status() == 429).then_some(1),
            error,
        })?;
    let status = if reply.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(Scim(
        status,
        serde_json::to_value(reply).unwrap_or_default(),
    ))
}
