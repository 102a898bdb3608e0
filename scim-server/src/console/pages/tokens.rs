//! Admin: the tenant's bearer tokens: list, create (the secret is shown once), revoke (after a
//! confirmation page). Creating and revoking are actions: [`crate::console::service`] refuses
//! them to every role but `admin`, whatever the page shows.

use super::CsrfForm;
use crate::console::roles::{Action, authorize};
use crate::console::service::{self, FieldError, MAX_LABEL_LEN};
use crate::console::session::Session;
use crate::console::views::{Nav, csrf_field, dash, page, when};
use crate::console::{Console, ConsoleError};
use crate::store::TokenRecord;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

fn create_form(session: &Session, label: &str, error: Option<&FieldError>) -> Markup {
    html! {
        form method="post" action="/console/admin/tokens" {
            (csrf_field(session))
            div.field {
                label for="label" { "Label" }
                input #label type="text" name="label" value=(label) required maxlength=(MAX_LABEL_LEN)
                    aria-describedby=[error.map(|_| "label-error")];
                @if let Some(e) = error { p.error #label-error role="alert" { (e.message) } }
            }
            div.field.inline {
                input #read_only type="checkbox" name="read_only" value="on";
                label for="read_only" { "Read-only (may read, may not write)" }
            }
            p { button type="submit" { "Create token" } }
        }
    }
}

fn tokens_table(tokens: &[TokenRecord], can_revoke: bool) -> Markup {
    html! {
        @if tokens.is_empty() {
            p { "This tenant has no static token." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Label" } th scope="col" { "Id" } th.optional scope="col" { "Created" }
                    th scope="col" { "Access" } th scope="col" { "State" }
                    @if can_revoke { th scope="col" { span.vh { "Actions" } } }
                } }
                tbody { @for t in tokens { tr {
                    td { (t.label) }
                    td { code { (t.id) } }
                    td.optional { (when(t.created)) }
                    td { @if t.read_only { "read-only" } @else { "read and write" } }
                    td { @match t.revoked { Some(at) => { "revoked " (when(at)) }, None => "active" } }
                    @if can_revoke {
                        td { @if t.revoked.is_none() {
                            a href=(format!("/console/admin/tokens/{}/revoke", t.id)) aria-label=(format!("Revoke {}", t.label)) { "Revoke" }
                        } @else { (dash()) } }
                    }
                } } }
            } }
        }
    }
}

async fn list_page(
    console: &Console,
    session: &Session,
    form: Markup,
) -> Result<Markup, ConsoleError> {
    let tokens = service::tokens(console, &session.operator).await?;
    let is_admin = authorize(&session.operator, Action::CreateToken).is_ok();
    Ok(page(
        session,
        Nav::Tokens,
        "Tokens",
        html! {
            p { "Bearer tokens of tenant " code { (session.operator.tenant) } " for SCIM clients such as Entra ID or Okta. Secrets are stored only as hashes." }
            (tokens_table(&tokens, is_admin))
            @if is_admin {
                h2 { "Create a token" }
                (form)
            } @else {
                p.notice { "Only an admin can create or revoke tokens." }
            }
        },
    ))
}

/// `GET /console/admin/tokens`.
pub async fn list(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let form = create_form(&session, "", None);
    list_page(&console, &session, form).await
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    read_only: Option<String>,
}

/// `POST /console/admin/tokens`.
pub async fn create(
    State(console): State<Console>,
    posted: CsrfForm<CreateForm>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let outcome = service::create_token(
        &console,
        &session.operator,
        &form.label,
        form.read_only.is_some(),
        session.request_id.as_deref(),
    )
    .await?;
    match outcome {
        Ok((record, secret)) => Ok(page(
            &session,
            Nav::Tokens,
            "Token created",
            html! {
                p.notice.ok role="status" { "Token " code { (record.id) } " (" (record.label) ") was created. Copy its secret now: it is shown only this once." }
                div.field {
                    label for="secret" { "Secret" }
                    input #secret.secret.mono type="text" readonly value=(secret.expose());
                }
                p { a href="/console/admin/tokens" { "Back to tokens" } }
            },
        )
        .into_response()),
        Err(error) => {
            let form_markup = create_form(&session, &form.label, Some(&error));
            let body = list_page(&console, &session, form_markup).await?;
            Ok((StatusCode::BAD_REQUEST, body).into_response())
        }
    }
}

/// `GET /console/admin/tokens/{id}/revoke`: a confirmation page.
pub async fn confirm_revoke(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let token = service::token(&console, &session.operator, &id).await?;
    Ok(page(
        &session,
        Nav::Tokens,
        "Revoke a token",
        html! {
            p { "Revoke token " code { (token.id) } " (" (token.label) ")? Every client using it is refused within seconds on every replica (at most `[auth] token_cache_seconds`, 5 by default). This cannot be undone." }
            form method="post" action=(format!("/console/admin/tokens/{}/revoke", token.id)) {
                (csrf_field(&session))
                button.danger type="submit" { "Revoke token" }
                " "
                a href="/console/admin/tokens" { "Cancel" }
            }
        },
    ))
}

/// `POST /console/admin/tokens/{id}/revoke`.
pub async fn revoke(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<std::collections::HashMap<String, String>>,
) -> Result<Markup, ConsoleError> {
    let session = posted.session;
    let token = service::revoke_token(
        &console,
        &session.operator,
        &id,
        session.request_id.as_deref(),
    )
    .await?;
    Ok(page(
        &session,
        Nav::Tokens,
        "Token revoked",
        html! {
            p.notice.ok role="status" { "Token " code { (token.id) } " (" (token.label) ") is revoked." }
            p { a href="/console/admin/tokens" { "Back to tokens" } }
        },
    ))
}
