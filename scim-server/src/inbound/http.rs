//! The intake's HTTP handlers (thin: one call into the intake, then the answer). Authenticated
//! like SCIM (same credentials, per tenant); routes are listed in [`routes`].

use crate::http::error::ApiError;
use crate::http::extract::{Caller, ScimJson};
use crate::http::response::Scim;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The intake's routes (authenticated by the caller of this function's router).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk_upload))
        .routes(routes!(get_job))
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
    request_body(content = crate::http::docs::BulkRequestDoc, content_type = "application/scim+json"),
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
    let location = format!(
        "{}{}/{id}",
        root_url(&state, &ctx.base_url),
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
    Ok(response)
}

/// An intake job: its status (`queued`, `running`, `completed`, `completedWithErrors`, `dead`),
/// counts per outcome, and per record its `bulkId`, outcome, SCIM `id` and SCIM error.
#[utoipa::path(get, path = "/inbound/v1/jobs/{id}", tag = "HR intake",
    params(("id" = String, Path, description = "the job id from the bulkUpload answer")),
    responses(
        (status = 200, description = "the job", body = Object, content_type = "application/scim+json"),
        (status = 404, description = "no such job in the caller's tenant", body = crate::http::docs::ErrorDoc, content_type = "application/scim+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Scim, ApiError> {
    let job = crate::inbound::job(&state, &ctx, &id).await?;
    Ok(Scim(
        StatusCode::OK,
        serde_json::to_value(job).unwrap_or_default(),
    ))
}
